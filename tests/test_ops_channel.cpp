// Channel ops (broadcast multiplication by an (N, C, 1, 1) gate, concatenation along channels,
// channel slices, the ShuffleNet channel shuffle) against PyTorch goldens, finite-difference
// gradients, gradient accumulation, bad input, CPU-vs-CUDA parity.
#include "op_golden.h"

using namespace genie;
using test::check_golden;
using test::golden;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
struct ChannelCase {
  const char* name;
  std::vector<const char*> inputs;  // golden input names, in argument order
  Fn f;
};
std::vector<ChannelCase> cases() {
  return {
      {"mul_bcast_gate_right", {"a", "b"}, [](auto& v) { return ops::mul_bcast(v[0], v[1]); }},
      {"mul_bcast_gate_left", {"a", "b"}, [](auto& v) { return ops::mul_bcast(v[0], v[1]); }},
      {"concat3", {"a", "b", "c"}, [](auto& v) { return ops::concat_channels(v); }},
      {"concat2d", {"a", "b"}, [](auto& v) { return ops::concat_channels(v); }},
      {"slice", {"x"}, [](auto& v) { return ops::channel_slice(v[0], 2, 3); }},
      {"shuffle2", {"x"}, [](auto& v) { return ops::channel_shuffle(v[0], 2); }},
      {"shuffle3", {"x"}, [](auto& v) { return ops::channel_shuffle(v[0], 3); }},
  };
}
std::string key(const char* c, const char* t) { return std::string(c) + "." + t; }
std::vector<Tensor> inputs_of(const ChannelCase& c) {
  std::vector<Tensor> v;
  for (const char* in : c.inputs) v.push_back(golden(key(c.name, in)).tensor(true));
  return v;
}
}  // namespace

TEST_CASE("channel ops match PyTorch (values and gradients)") {
  for (const auto& c : cases()) {
    INFO(std::string(c.name));
    std::vector<Tensor> in = inputs_of(c);
    Tensor y = c.f(in);
    check_golden(y, key(c.name, "y"), 1e-6);
    backward(y, golden(key(c.name, "dy")).tensor());
    for (size_t i = 0; i < in.size(); ++i)
      check_golden(in[i].grad(), key(c.name, (std::string("d") + c.inputs[i]).c_str()), 1e-6);
  }
}

TEST_CASE("channel op gradients match finite differences and accumulate") {
  for (const auto& c : cases()) {
    INFO(std::string(c.name));
    CHECK(test::gradcheck(c.f, inputs_of(c), 1e-2) < 1e-3);
    // Two uses of the inputs: the second backward contribution is added to the first.
    std::vector<Tensor> in = inputs_of(c);
    backward(ops::add(c.f(in), c.f(in)), golden(key(c.name, "dy")).tensor());
    for (size_t i = 0; i < in.size(); ++i) {
      auto want = golden(key(c.name, (std::string("d") + c.inputs[i]).c_str())).v;
      for (float& e : want) e *= 2.f;
      CHECK(test::rel_err(in[i].grad().to_vector(), want) < 1e-6);
    }
  }
}

TEST_CASE("channel ops: equal shapes, the same tensor twice, slice zeros, shuffle inverse") {
  // Equal shapes: mul_bcast is mul.
  Tensor a = test::randn_cpu({2, 3, 4}, 1).set_requires_grad();
  Tensor b = test::randn_cpu({2, 3, 4}, 2).set_requires_grad();
  CHECK(ops::mul_bcast(a, b).to_vector() == ops::mul(a, b).to_vector());
  clear_tape();
  // cat([x, x, y]): x's gradient is the sum of its two parts.
  Tensor x = test::randn_cpu({2, 2, 3}, 3).set_requires_grad();
  Tensor y = test::randn_cpu({2, 1, 3}, 4);  // no gradient
  Tensor probe = test::randn_cpu({2, 5, 3}, 5);
  backward(ops::concat_channels({x, x, y}), probe);
  const auto pv = probe.to_vector(), gx = x.grad().to_vector();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t j = 0; j < 3; ++j) {
        const float want = pv[size_t((n * 5 + c) * 3 + j)] + pv[size_t((n * 5 + c + 2) * 3 + j)];
        CHECK(gx[size_t((n * 2 + c) * 3 + j)] == want);
      }
  CHECK_FALSE(y.grad().defined());
  // A single input is a copy.
  CHECK(ops::concat_channels({y}).to_vector() == y.to_vector());
  // Slice: exact zeros outside the slice, also when the buffer is fresh (uninitialised memory).
  Tensor s = test::randn_cpu({2, 5, 2, 2}, 6).set_requires_grad();
  backward(ops::channel_slice(s, 1, 2), Tensor::full({2, 2, 2, 2}, 1.f));
  const auto gs = s.grad().to_vector();
  for (size_t i = 0; i < gs.size(); ++i) {
    const int64_t c = int64_t(i / 4) % 5;
    CHECK(gs[i] == (c == 1 || c == 2 ? 1.f : 0.f));
  }
  // Shuffle: output channel o reads input (o % g)·(C/g) + o/g; shuffling with C/g undoes it.
  Tensor ch = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {1, 6});
  CHECK(ops::channel_shuffle(ch, 2).to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK(ops::channel_shuffle(ch, 3).to_vector() == std::vector<float>{0, 2, 4, 1, 3, 5});
  CHECK(ops::channel_shuffle(ops::channel_shuffle(ch, 3), 2).to_vector() == ch.to_vector());
  CHECK(ops::channel_shuffle(ch, 1).to_vector() == ch.to_vector());
}

TEST_CASE("bad input: channel ops name the op and the shapes") {
  Tensor x = Tensor::zeros({2, 3, 4, 5});
  CHECK_THROWS_WITH_AS(ops::mul_bcast(x, Tensor::zeros({2, 4, 1, 1})),
                       doctest::Contains("[mul_bcast] expected equal shapes, or (N, C, H, W) and "
                                         "(N, C, 1, 1) in either order, got (2, 3, 4, 5) and (2, "
                                         "4, 1, 1)"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::mul_bcast(Tensor::zeros({2, 3, 1, 1}), Tensor::zeros({2, 3, 4})),
                       doctest::Contains("[mul_bcast] expected equal shapes, or (N, C, H, W) and "
                                         "(N, C, 1, 1) in either order, got (2, 3, 1, 1) and (2, "
                                         "3, 4)"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::mul_bcast(x, Tensor::zeros({2, 3, 4, 1})),
                       doctest::Contains("got (2, 3, 4, 5) and (2, 3, 4, 1)"), Error);
  CHECK_THROWS_WITH_AS(ops::concat_channels({}),
                       doctest::Contains("[concat_channels] expected at least one input, got none"),
                       Error);
  CHECK_THROWS_WITH_AS(
      ops::concat_channels({x, Tensor::zeros({3, 3, 4, 5})}),
      doctest::Contains("[concat_channels] expected inputs equal in every dimension but 1, got "
                        "(2, 3, 4, 5) (input 0) and (3, 3, 4, 5) (input 1)"),
      Error);
  CHECK_THROWS_WITH_AS(
      ops::concat_channels({x, Tensor::zeros({2, 1, 4, 5}), Tensor::zeros({2, 3, 5, 4})}),
      doctest::Contains("[concat_channels] expected inputs equal in every dimension but 1, got "
                        "(2, 3, 4, 5) (input 0) and (2, 3, 5, 4) (input 2)"),
      Error);
  CHECK_THROWS_WITH_AS(ops::concat_channels({x, Tensor::zeros({2, 3, 20})}),
                       doctest::Contains("got (2, 3, 4, 5) (input 0) and (2, 3, 20) (input 1)"),
                       Error);
  CHECK_THROWS_WITH_AS(
      ops::concat_channels({Tensor::zeros({4})}),
      doctest::Contains("[concat_channels] expected input 0 (N, C, ...) with at least 2 "
                        "dimensions, got (4)"),
      Error);
  CHECK_THROWS_WITH_AS(ops::channel_slice(x, 2, 2),
                       doctest::Contains("[channel_slice] expected 0 <= start, 1 <= count, start + "
                                         "count <= C, got start 2, count 2 for input (2, 3, 4, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::channel_slice(x, -1, 1), doctest::Contains("got start -1, count 1"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::channel_slice(x, 0, 0), doctest::Contains("got start 0, count 0"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::channel_shuffle(x, 2),
                       doctest::Contains("[channel_shuffle] expected groups >= 1 dividing the "
                                         "channels, got groups 2 for input (2, 3, 4, 5)"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::channel_shuffle(x, 0), doctest::Contains("got groups 0"), Error);
}

TEST_CASE("channel ops parity CPU vs CUDA [gpu]") {
  GENIE_REQUIRE_GPU();
  for (const auto& c : cases()) test::check_parity(c.name, c.f, inputs_of(c), 1e-6);
  // Squeeze-and-excitation sizes: the gate's gradient sums 28·28 products per plane.
  test::check_parity(
      "mul_bcast SE gate",
      [](const std::vector<Tensor>& v) { return ops::mul_bcast(v[0], ops::sigmoid(v[1])); },
      {test::randn_cpu({4, 64, 28, 28}, 7).set_requires_grad(),
       test::randn_cpu({4, 64, 1, 1}, 8).set_requires_grad()},
      1e-6);
  // A DenseNet-like concat of 5 parts, sliced and shuffled (accumulating into shared gradients).
  test::check_parity(
      "concat + slice + shuffle chain",
      [](const std::vector<Tensor>& v) {
        Tensor cat = ops::concat_channels({v[0], v[1], v[0], v[2], v[1]});  // 8+4+8+12+4 = 36
        return ops::add(ops::channel_shuffle(ops::channel_slice(cat, 6, 24), 3),
                        ops::channel_slice(ops::channel_shuffle(cat, 4), 2, 24));
      },
      {test::randn_cpu({3, 8, 9, 10}, 9).set_requires_grad(),
       test::randn_cpu({3, 4, 9, 10}, 10).set_requires_grad(),
       test::randn_cpu({3, 12, 9, 10}, 11).set_requires_grad()},
      1e-6);
}
