// Tensor: an owning, device-tagged, contiguous n-d array (float32, or int8/uint8/int32 storage for
// masks, integer codes and labels) that can take part in reverse-mode autograd.
// Copies of a Tensor share storage and autograd state (it is a handle, like torch.Tensor).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kernels/device.h"

namespace genie {

using Shape = std::vector<int64_t>;
// Product of the dimensions. Throws "[tensor] …" naming the shape for a negative dimension or a
// count beyond int64 (never wraps); Tensor::empty further requires the byte count within int64.
int64_t numel_of(const Shape& s);

enum class DType : uint8_t { F32, I8, U8, I32 };
size_t dtype_size(DType t);
const char* dtype_name(DType t);

struct Storage {
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;
  Storage(size_t bytes, Device d);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  static Tensor empty(const Shape& shape, Device d = Device::CPU, DType t = DType::F32);
  static Tensor zeros(const Shape& shape, Device d = Device::CPU, DType t = DType::F32);
  static Tensor full(const Shape& shape, float value, Device d = Device::CPU);
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape,
                            Device d = Device::CPU);
  static Tensor from_i32(const std::vector<int32_t>& v, const Shape& shape, Device d = Device::CPU);
  static Tensor scalar(float v, Device d = Device::CPU) { return from_vector({v}, {}, d); }

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim(int i) const;  // negative i counts from the end
  int ndim() const { return int(shape().size()); }
  int64_t numel() const;
  Device device() const;
  DType dtype() const;
  std::string describe() const;  // "f32(2, 3) cpu"

  float* data();  // float32 only (checked)
  const float* data() const;
  template <class T>
  T* data_as();
  template <class T>
  const T* data_as() const;
  void* raw();
  const void* raw() const;

  Tensor to(Device d) const;             // copy (shares when already there)
  Tensor clone() const;                  // deep copy on the same device, no autograd history
  Tensor detach() const;                 // same storage, no autograd history
  std::vector<float> to_vector() const;  // float32 → host vector
  std::vector<int32_t> to_i32() const;
  std::vector<int8_t> to_i8() const;
  float item() const;             // single-element float tensor
  void copy_(const Tensor& src);  // same shape and dtype, any devices
  void fill_(float v);
  void zero_();
  Tensor reshape(const Shape& s) const;  // view sharing storage; autograd-aware (see ops.h)

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool on = true);  // leaves only
  Tensor grad() const;                        // undefined until a backward reaches it
  void zero_grad();                           // drops the gradient buffer
  bool is_leaf() const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// A tensor's autograd state, apart from its data: the tape and the backward closures hold this
// (through GradRef, autograd/tape.h) where they only route gradients, so a tensor's memory is
// freed when its last data user is done with it, not when the backward has passed.
struct AutogradMeta {
  bool requires_grad = false;
  bool is_leaf = true;  // false for outputs of recorded ops
  Tensor grad;          // accumulated gradient (same shape/device), undefined until needed
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  DType dtype = DType::F32;
  std::shared_ptr<AutogradMeta> meta;  // created on first use (requires_grad, record)
  AutogradMeta& autograd() {
    if (!meta) meta = std::make_shared<AutogradMeta>();
    return *meta;
  }
};

template <class T>
T* Tensor::data_as() {
  return static_cast<T*>(raw());
}
template <class T>
const T* Tensor::data_as() const {
  return static_cast<const T*>(raw());
}

// Require same shape (names the op and both shapes) / same device.
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_f32(const char* op, const Tensor& a);
void check_ndim(const char* op, const Tensor& a, int nd, const char* what = "input");

}  // namespace genie
