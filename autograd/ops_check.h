// Input validation shared by the layer ops (conv, linear, batch norm, spatial, statistics, losses).
// Every failure names the op and the offending shapes: "[op] expected ..., got ...".
#pragma once
#include "autograd/tensor.h"

namespace genie::ops::detail {

// `t` is a defined f32 tensor with `nd` dimensions ("input", "weight", ...).
inline void need_f32_nd(const char* op, const char* what, const Tensor& t, int nd) {
  GENIE_CHECK(t.defined(), "[", op, "] expected a defined ", what, ", got an undefined tensor");
  GENIE_CHECK(t.dtype() == DType::F32, "[", op, "] expected ", what, " f32, got ", t.describe());
  GENIE_CHECK(t.ndim() == nd, "[", op, "] expected ", what, " with ", nd, " dimensions, got ",
              shape_str(t.shape()));
}

// Optional per-channel vector: undefined, or f32 of shape (n) on `dev`.
inline void need_vec_or_none(const char* op, const char* what, const Tensor& t, int64_t n,
                             Device dev) {
  if (!t.defined()) return;
  GENIE_CHECK(t.dtype() == DType::F32, "[", op, "] expected ", what, " f32, got ", t.describe());
  GENIE_CHECK(t.ndim() == 1 && t.dim(0) == n, "[", op, "] expected ", what, " (", n, "), got ",
              shape_str(t.shape()));
  GENIE_CHECK(t.device() == dev, "[", op, "] expected ", what, " on ", device_name(dev), ", got ",
              t.describe());
}

inline void need_device(const char* op, const char* what, const Tensor& t, Device dev) {
  GENIE_CHECK(t.device() == dev, "[", op, "] expected ", what, " on ", device_name(dev),
              " (the input's device), got ", t.describe());
}

// Pointer of an optional tensor (nullptr when undefined).
inline const float* ptr_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

}  // namespace genie::ops::detail
