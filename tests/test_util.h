// Shared helpers for the doctest suite: GPU gating, tolerances, finite differences, goldens.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "kernels/json.h"

namespace genie::test {

// Counts GPU cases that could not run (printed by main at the end).
int& gpu_skipped();
// Use at the top of a GPU case: returns from the case (counted as skipped) without a GPU.
#define GENIE_REQUIRE_GPU()           \
  do {                                \
    if (!::genie::cuda_available()) { \
      ++::genie::test::gpu_skipped(); \
      return;                         \
    }                                 \
  } while (0)

// Counts checks against a second implementation in PyTorch that could not run (no /usr/bin/python3
// with torch and h5py; CI has neither), printed by main at the end.
int& torch_skipped();
// Whether /usr/bin/python3 imports torch and h5py (probed once).
bool torch_available();

// Counts ONNX Runtime checks of exported models that could not run (no Python with onnx,
// onnxruntime, numpy and h5py; tests/test_export.cpp), printed by main at the end.
int& onnx_skipped();

// Whether `part` occurs in `s` (error messages, outputs).
inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Path under the source tree (tests run from anywhere).
std::string source_path(const std::string& rel);

// max |a-b| / max(max|b|, floor)
double rel_err(const std::vector<float>& a, const std::vector<float>& b, double floor = 1e-6);
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

// Deterministic test data (Philox on the CPU).
Tensor randn_cpu(const Shape& s, uint64_t seed, float std = 1.f);
Tensor rand_uniform_cpu(const Shape& s, uint64_t seed, float lo, float hi);

// Central finite-difference check of d(sum(f(inputs) * probe))/d inputs against autograd.
// Evaluates f in float on the CPU with step eps; returns the max relative error over all checked
// elements (all inputs that require grad, up to max_elems per input, sampled deterministically).
double gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                 std::vector<Tensor> inputs, double eps = 1e-2, int max_elems = 64);

// Deterministic, non-trivial values by state_dict key (He-uniform conv/linear weights, BN
// statistics away from 0/1; "input" for inputs), bit-identical to det_values() in
// tests/golden/make_model_goldens.py, so goldens need no committed weights.
Tensor det_values(const std::string& key, const Shape& shape);
// A JSON array of integers / numbers (golden files).
Shape json_shape(const Json& j);
std::vector<float> json_floats(const Json& j);

}  // namespace genie::test
