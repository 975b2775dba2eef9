// Losses (MSE, cross-entropy) and the activations' PyTorch goldens: values and gradients, finite
// differences, bad input, CPU-vs-CUDA parity.
#include "op_golden.h"

using namespace genie;
using test::check_golden;
using test::golden;

TEST_CASE("mse_loss matches PyTorch (gradients to both operands, scaled upstream)") {
  Tensor a = golden("mse.a").tensor(true), b = golden("mse.b").tensor(true);
  Tensor l = ops::mse_loss(a, b);
  CHECK(l.shape().empty());
  check_golden(l, "mse.y", 1e-6);
  backward(l, golden("mse.dy").tensor());  // upstream 0.7
  check_golden(a.grad(), "mse.da", 1e-6);
  check_golden(b.grad(), "mse.db", 1e-6);
  CHECK(test::gradcheck([](const std::vector<Tensor>& t) { return ops::mse_loss(t[0], t[1]); },
                        {a, b}, 1e-2) < 1e-3);
}

TEST_CASE("cross_entropy matches PyTorch and finite differences") {
  Tensor x = golden("xent.x").tensor(true);
  Tensor l = golden("xent.l").i32();
  Tensor y = ops::cross_entropy(x, l);
  check_golden(y, "xent.y", 1e-6);
  backward(y, golden("xent.dy").tensor());  // upstream 1.3
  check_golden(x.grad(), "xent.dx", 1e-6);
  CHECK(test::gradcheck([&](const std::vector<Tensor>& t) { return ops::cross_entropy(t[0], l); },
                        {x}, 1e-2) < 1e-3);
  // Huge logits stay finite (max-shifted softmax).
  Tensor big = Tensor::from_vector({1000.f, 0.f, -1000.f, 0.f}, {2, 2});
  const float v = ops::cross_entropy(big, Tensor::from_i32({1, 0}, {2})).item();
  CHECK(v == doctest::Approx(0.5 * (1000.0 + 1000.0)).epsilon(1e-6));
}

TEST_CASE("activations match PyTorch goldens (relu6, leaky_relu, tanh, sigmoid)") {
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> acts = {
      {"relu6", [](const Tensor& x) { return ops::relu6(x); }},
      {"leaky_relu", [](const Tensor& x) { return ops::leaky_relu(x, 0.1f); }},
      {"tanh", [](const Tensor& x) { return ops::tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return ops::sigmoid(x); }},
  };
  for (auto& [name, f] : acts) {
    INFO(name);
    const std::string c = name;
    Tensor x = golden(c + ".x").tensor(true);
    Tensor y = f(x);
    check_golden(y, c + ".y", 1e-6);
    backward(y, golden(c + ".dy").tensor());
    check_golden(x.grad(), c + ".dx", 1e-6);
  }
}

TEST_CASE("bad input: losses name the op and both shapes") {
  CHECK_THROWS_WITH_AS(
      ops::mse_loss(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})),
      doctest::Contains("[mse_loss] expected matching shapes, got (2, 3) and (3, 2)"), Error);
  CHECK_THROWS_WITH_AS(
      ops::cross_entropy(Tensor::zeros({4, 10}), Tensor::from_i32({0, 1, 2}, {3})),
      doctest::Contains("[cross_entropy] expected labels (4) for logits (4, 10), got (3)"), Error);
  CHECK_THROWS_WITH_AS(
      ops::cross_entropy(Tensor::zeros({2, 10}), Tensor::from_i32({0, 10}, {2})),
      doctest::Contains("[cross_entropy] expected labels in [0, 10), got 10 at row 1"), Error);
  CHECK_THROWS_WITH_AS(ops::cross_entropy(Tensor::zeros({2, 10}), Tensor::zeros({2})),
                       doctest::Contains("[cross_entropy] expected labels i32, got f32(2) cpu"),
                       Error);
  CHECK_THROWS_WITH_AS(
      ops::cross_entropy(Tensor::zeros({2, 3, 4}), Tensor::from_i32({0, 1}, {2})),
      doctest::Contains("[cross_entropy] expected logits (N, K) with 2 dimensions, got (2, 3, 4)"),
      Error);
  if (cuda_available()) {
    CHECK_THROWS_WITH_AS(ops::mse_loss(Tensor::zeros({2}), Tensor::zeros({2}, Device::CUDA)),
                         doctest::Contains("[mse_loss] expected tensors on the same device"),
                         Error);
  }
}

TEST_CASE("loss parity CPU vs CUDA [gpu]") {
  GENIE_REQUIRE_GPU();
  test::check_parity(
      "mse_loss", [](const std::vector<Tensor>& t) { return ops::mse_loss(t[0], t[1]); },
      {test::randn_cpu({64, 3, 17, 17}, 1).set_requires_grad(),
       test::randn_cpu({64, 3, 17, 17}, 2).set_requires_grad()},
      1e-5);
  std::vector<int32_t> lab(128);
  for (size_t i = 0; i < lab.size(); ++i) lab[i] = int32_t((i * 7) % 10);
  test::check_parity(
      "cross_entropy", [](const std::vector<Tensor>& t) { return ops::cross_entropy(t[0], t[1]); },
      {test::randn_cpu({128, 10}, 3, 4.f).set_requires_grad(), Tensor::from_i32(lab, {128})}, 1e-5);
}
