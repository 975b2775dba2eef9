// Batch norm in eval and training mode: PyTorch goldens (with/without affine, 4-D and 2-D),
// finite-difference gradients, bad input, CPU-vs-CUDA parity.
#include "op_golden.h"

using namespace genie;
using test::check_golden;
using test::golden;

namespace {
std::string key(const char* c, const char* t) { return std::string(c) + "." + t; }
constexpr float kEps = 1e-5f;
}  // namespace

TEST_CASE("batch_norm_eval matches PyTorch (affine and not)") {
  for (const char* c : {"bn_eval", "bn_eval_noaffine"}) {
    INFO(c);
    const bool affine = std::string(c) == "bn_eval";
    Tensor x = golden(key(c, "x")).tensor(true);
    Tensor m = golden(key(c, "m")).tensor(), v = golden(key(c, "v")).tensor();
    Tensor g = affine ? golden(key(c, "g")).tensor(true) : Tensor();
    Tensor b = affine ? golden(key(c, "b")).tensor(true) : Tensor();
    Tensor y = ops::batch_norm_eval(x, m, v, g, b, kEps);
    check_golden(y, key(c, "y"), 1e-6);
    backward(y, golden(key(c, "dy")).tensor());
    check_golden(x.grad(), key(c, "dx"), 1e-6);
    if (affine) {
      check_golden(g.grad(), key(c, "dg"), 1e-5);
      check_golden(b.grad(), key(c, "db"), 1e-6);
    }
  }
}

TEST_CASE("batch_norm_train matches PyTorch (affine, no affine, (N, C) input)") {
  for (const char* c : {"bn_train", "bn_train_noaffine", "bn_train_2d"}) {
    INFO(c);
    const bool affine = std::string(c) != "bn_train_noaffine";
    Tensor x = golden(key(c, "x")).tensor(true);
    Tensor g = affine ? golden(key(c, "g")).tensor(true) : Tensor();
    Tensor b = affine ? golden(key(c, "b")).tensor(true) : Tensor();
    Tensor y = ops::batch_norm_train(x, g, b, kEps);
    check_golden(y, key(c, "y"), 1e-5);
    backward(y, golden(key(c, "dy")).tensor());
    check_golden(x.grad(), key(c, "dx"), 1e-5);
    if (affine) {
      check_golden(g.grad(), key(c, "dg"), 1e-5);
      check_golden(b.grad(), key(c, "db"), 1e-6);
    }
  }
}

TEST_CASE("batch norm gradients match finite differences; parameter-only gradients") {
  Tensor x = golden("bn_eval.x").tensor(true);
  Tensor m = golden("bn_eval.m").tensor(), v = golden("bn_eval.v").tensor();
  Tensor g = golden("bn_eval.g").tensor(true), b = golden("bn_eval.b").tensor(true);
  CHECK(test::gradcheck(
            [&](const std::vector<Tensor>& t) {
              return ops::batch_norm_eval(t[0], m, v, t[1], t[2], kEps);
            },
            {x, g, b}) < 1e-3);
  // Training mode: the normalised output is scale-free, so probe a nonlinear function of it.
  CHECK(test::gradcheck(
            [&](const std::vector<Tensor>& t) {
              return ops::square(ops::batch_norm_train(t[0], t[1], t[2], kEps));
            },
            {x, g, b}, 1e-2) < 2e-3);
  Tensor x2 = golden("bn_train_2d.x").tensor(true);
  CHECK(test::gradcheck(
            [&](const std::vector<Tensor>& t) {
              return ops::tanh(ops::batch_norm_train(t[0], Tensor(), Tensor(), kEps));
            },
            {x2}, 1e-2) < 2e-3);
  // Only gamma/beta require grad: dx is not produced, parameter gradients still exact.
  Tensor xc = golden("bn_train.x").tensor();
  Tensor gc = golden("bn_train.g").tensor(true), bc = golden("bn_train.b").tensor(true);
  backward(ops::batch_norm_train(xc, gc, bc, kEps), golden("bn_train.dy").tensor());
  CHECK_FALSE(xc.grad().defined());
  check_golden(gc.grad(), "bn_train.dg", 1e-5);
  check_golden(bc.grad(), "bn_train.db", 1e-6);
}

TEST_CASE("bad input: batch norm names the op and both shapes") {
  Tensor x = Tensor::zeros({2, 4, 3, 3});
  CHECK_THROWS_WITH_AS(ops::batch_norm_train(x, Tensor::zeros({3}), Tensor::zeros({4}), kEps),
                       doctest::Contains("[batch_norm_train] expected gamma (4), got (3)"), Error);
  CHECK_THROWS_WITH_AS(
      ops::batch_norm_eval(x, Tensor::zeros({4}), Tensor::zeros({5}), Tensor(), Tensor(), kEps),
      doctest::Contains("[batch_norm_eval] expected running var (4), got (5)"), Error);
  CHECK_THROWS_WITH_AS(
      ops::batch_norm_train(Tensor::zeros({2, 4, 3}), Tensor(), Tensor(), kEps),
      doctest::Contains("[batch_norm_train] expected input (N, C, H, W) or (N, C), got (2, 4, 3)"),
      Error);
  CHECK_THROWS_WITH_AS(
      ops::batch_norm_train(Tensor::zeros({1, 4}), Tensor(), Tensor(), kEps),
      doctest::Contains("[batch_norm_train] expected more than 1 value per channel"), Error);
  CHECK_THROWS_WITH_AS(
      ops::batch_norm_eval(x, Tensor(), Tensor::zeros({4}), Tensor(), Tensor(), kEps),
      doctest::Contains("[batch_norm_eval] expected running mean and var"), Error);
  if (cuda_available()) {
    CHECK_THROWS_WITH_AS(ops::batch_norm_train(x, Tensor::zeros({4}, Device::CUDA), Tensor(), kEps),
                         doctest::Contains("[batch_norm_train] expected gamma on cpu"), Error);
  }
}

TEST_CASE("batch norm parity CPU vs CUDA [gpu]") {
  GENIE_REQUIRE_GPU();
  Tensor m = golden("bn_eval.m").tensor(), v = golden("bn_eval.v").tensor();
  test::check_parity(
      "bn_eval",
      [&](const std::vector<Tensor>& t) {
        return ops::batch_norm_eval(t[0], t[3], t[4], t[1], t[2], kEps);
      },
      {golden("bn_eval.x").tensor(true), golden("bn_eval.g").tensor(true),
       golden("bn_eval.b").tensor(true), m, v},
      1e-5);
  test::check_parity(
      "bn_train",
      [](const std::vector<Tensor>& t) { return ops::batch_norm_train(t[0], t[1], t[2], kEps); },
      {golden("bn_train.x").tensor(true), golden("bn_train.g").tensor(true),
       golden("bn_train.b").tensor(true)},
      1e-5);
  test::check_parity(
      "bn_train no affine, large",
      [](const std::vector<Tensor>& t) {
        return ops::batch_norm_train(t[0], Tensor(), Tensor(), kEps);
      },
      {test::randn_cpu({32, 16, 14, 14}, 3).set_requires_grad()}, 1e-5);
  test::check_parity(
      "bn_train 2d",
      [](const std::vector<Tensor>& t) { return ops::batch_norm_train(t[0], t[1], t[2], kEps); },
      {golden("bn_train_2d.x").tensor(true), golden("bn_train_2d.g").tensor(true),
       golden("bn_train_2d.b").tensor(true)},
      1e-5);
}
