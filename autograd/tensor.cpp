// Tensor storage, construction, copies and host access.
#include "autograd/tensor.h"

#include <cstring>
#include <limits>

#include "kernels/elementwise.h"
#include "kernels/graph.h"

namespace genie {

int64_t numel_of(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) {
    GENIE_CHECK(d >= 0, "[tensor] negative dimension in shape ", shape_str(s));
    GENIE_CHECK(!__builtin_mul_overflow(n, d, &n),
                "[tensor] expected an element count within int64, got shape ", shape_str(s));
  }
  return n;
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::I32:
      return 4;
    case DType::I8:
      return 1;
    case DType::U8:
      return 1;
  }
  return 4;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::I32:
      return "i32";
    case DType::I8:
      return "i8";
    case DType::U8:
      return "u8";
  }
  return "?";
}

Storage::Storage(size_t b, Device d) : bytes(b), device(d) { ptr = device_alloc(d, b); }
Storage::~Storage() { device_free(device, ptr, bytes); }

static std::shared_ptr<TensorImpl> make_impl(const Shape& shape, Device d, DType t) {
  const int64_t n = numel_of(shape);  // checks the dimensions and the count
  GENIE_CHECK(n <= std::numeric_limits<int64_t>::max() / int64_t(dtype_size(t)),
              "[tensor] expected a size in bytes within int64, got ", dtype_name(t), " shape ",
              shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = t;
  impl->storage = std::make_shared<Storage>(size_t(n) * dtype_size(t), d);
  return impl;
}

Tensor Tensor::empty(const Shape& shape, Device d, DType t) {
  return Tensor(make_impl(shape, d, t));
}

Tensor Tensor::zeros(const Shape& shape, Device d, DType t) {
  Tensor x = empty(shape, d, t);
  fill_bytes_zero(x.raw(), d, size_t(x.numel()) * dtype_size(t));
  return x;
}

Tensor Tensor::full(const Shape& shape, float value, Device d) {
  Tensor x = empty(shape, d);
  k::fill(d, x.data(), value, x.numel(), nullptr);
  return x;
}

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& shape, Device d) {
  k::check_not_capturing("from_vector");
  GENIE_CHECK(int64_t(v.size()) == numel_of(shape), "[from_vector] expected ", numel_of(shape),
              " values for shape ", shape_str(shape), ", got ", v.size());
  Tensor x = empty(shape, d);
  copy_bytes(x.raw(), d, v.data(), Device::CPU, v.size() * 4);
  return x;
}

Tensor Tensor::from_i32(const std::vector<int32_t>& v, const Shape& shape, Device d) {
  k::check_not_capturing("from_i32");
  GENIE_CHECK(int64_t(v.size()) == numel_of(shape), "[from_i32] expected ", numel_of(shape),
              " values for shape ", shape_str(shape), ", got ", v.size());
  Tensor x = empty(shape, d, DType::I32);
  copy_bytes(x.raw(), d, v.data(), Device::CPU, v.size() * 4);
  return x;
}

static TensorImpl& need(const std::shared_ptr<TensorImpl>& p) {
  GENIE_CHECK(p != nullptr, "[tensor] use of an undefined tensor");
  return *p;
}

const Shape& Tensor::shape() const { return need(impl_).shape; }
int64_t Tensor::dim(int i) const {
  const auto& s = shape();
  const int n = int(s.size());
  if (i < 0) i += n;
  GENIE_CHECK(i >= 0 && i < n, "[tensor] dimension ", i, " out of range for shape ", shape_str(s));
  return s[size_t(i)];
}
int64_t Tensor::numel() const { return numel_of(shape()); }
Device Tensor::device() const { return need(impl_).storage->device; }
DType Tensor::dtype() const { return need(impl_).dtype; }
std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return str(dtype_name(dtype()), shape_str(shape()), " ", device_name(device()));
}

float* Tensor::data() {
  GENIE_CHECK(dtype() == DType::F32, "[tensor] expected f32 data, got ", describe());
  return static_cast<float*>(need(impl_).storage->ptr);
}
const float* Tensor::data() const {
  GENIE_CHECK(dtype() == DType::F32, "[tensor] expected f32 data, got ", describe());
  return static_cast<const float*>(need(impl_).storage->ptr);
}
void* Tensor::raw() { return need(impl_).storage->ptr; }
const void* Tensor::raw() const { return need(impl_).storage->ptr; }

Tensor Tensor::to(Device d) const {
  if (device() == d) return *this;
  Tensor y = empty(shape(), d, dtype());
  copy_bytes(y.raw(), d, raw(), device(), size_t(numel()) * dtype_size(dtype()));
  return y;
}

Tensor Tensor::clone() const {
  Tensor y = empty(shape(), device(), dtype());
  copy_bytes(y.raw(), device(), raw(), device(), size_t(numel()) * dtype_size(dtype()));
  return y;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = need(impl_).storage;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  return Tensor(impl);
}

std::vector<float> Tensor::to_vector() const {
  k::check_not_capturing("to_vector");
  GENIE_CHECK(dtype() == DType::F32, "[to_vector] expected f32, got ", describe());
  std::vector<float> v(static_cast<size_t>(numel()));
  copy_bytes(v.data(), Device::CPU, raw(), device(), v.size() * 4);
  return v;
}
std::vector<int32_t> Tensor::to_i32() const {
  k::check_not_capturing("to_i32");
  GENIE_CHECK(dtype() == DType::I32, "[to_i32] expected i32, got ", describe());
  std::vector<int32_t> v(static_cast<size_t>(numel()));
  copy_bytes(v.data(), Device::CPU, raw(), device(), v.size() * 4);
  return v;
}
std::vector<int8_t> Tensor::to_i8() const {
  k::check_not_capturing("to_i8");
  GENIE_CHECK(dtype() == DType::I8 || dtype() == DType::U8, "[to_i8] expected i8/u8, got ",
              describe());
  std::vector<int8_t> v(static_cast<size_t>(numel()));
  copy_bytes(v.data(), Device::CPU, raw(), device(), v.size());
  return v;
}

float Tensor::item() const {
  GENIE_CHECK(numel() == 1, "[item] expected a single element, got ", describe());
  return to_vector()[0];
}

void Tensor::copy_(const Tensor& src) {
  GENIE_CHECK(shape() == src.shape() && dtype() == src.dtype(), "[copy_] expected ", describe(),
              ", got ", src.describe());
  copy_bytes(raw(), device(), src.raw(), src.device(), size_t(numel()) * dtype_size(dtype()));
}

void Tensor::fill_(float v) { k::fill(device(), data(), v, numel(), nullptr); }
void Tensor::zero_() { fill_bytes_zero(raw(), device(), size_t(numel()) * dtype_size(dtype())); }

bool Tensor::requires_grad() const {
  return defined() && impl_->meta && impl_->meta->requires_grad;
}
Tensor& Tensor::set_requires_grad(bool on) {
  GENIE_CHECK(is_leaf(), "[set_requires_grad] only leaf tensors can be marked");
  GENIE_CHECK(!on || dtype() == DType::F32, "[set_requires_grad] expected f32, got ", describe());
  if (on || impl_->meta) impl_->autograd().requires_grad = on;
  return *this;
}
Tensor Tensor::grad() const { return need(impl_).meta ? impl_->meta->grad : Tensor(); }
void Tensor::zero_grad() {
  if (need(impl_).meta) impl_->meta->grad = Tensor();
}
bool Tensor::is_leaf() const { return need(impl_).meta ? impl_->meta->is_leaf : true; }

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  GENIE_CHECK(a.shape() == b.shape(), "[", op, "] expected matching shapes, got ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
}
void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  GENIE_CHECK(a.device() == b.device(), "[", op, "] expected tensors on the same device, got ",
              a.describe(), " and ", b.describe());
}
void check_f32(const char* op, const Tensor& a) {
  GENIE_CHECK(a.dtype() == DType::F32, "[", op, "] expected f32, got ", a.describe());
}
void check_ndim(const char* op, const Tensor& a, int nd, const char* what) {
  GENIE_CHECK(a.ndim() == nd, "[", op, "] expected ", what, " with ", nd, " dimensions, got ",
              shape_str(a.shape()));
}

}  // namespace genie
