// Loader for tests/golden/op_goldens.txt (written by tests/golden/make_op_goldens.py from
// PyTorch) and the CPU-vs-CUDA parity harness used by the op tests.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "test_util.h"

namespace genie::test {

struct GoldenTensor {
  Shape shape;
  std::vector<float> v;
  // A fresh CPU f32 tensor with these values (a leaf; optionally requiring grad).
  Tensor tensor(bool requires_grad = false) const;
  Tensor i32() const;  // labels stored as floats
};

// The named tensor from the op golden file (loaded once; REQUIREs that it exists).
const GoldenTensor& golden(const std::string& name);

// Compares a computed tensor with the golden `name`: same shape and rel_err <= tol.
void check_golden(const Tensor& got, const std::string& name, double tol);

// CPU-vs-CUDA parity: runs f on CPU inputs and on CUDA copies (same requires_grad), backpropagates
// the same random probe, and checks the output and every input gradient agree within tol
// (rel_err). Call only after GENIE_REQUIRE_GPU().
void check_parity(const char* what, const std::function<Tensor(const std::vector<Tensor>&)>& f,
                  const std::vector<Tensor>& cpu_inputs, double tol);

}  // namespace genie::test
