// Finite-difference gradient checks for every autograd op on odd shapes
// (batch 3, channels 5, 7x9 maps, strides 1/2, kernels 1/3/5, padding 0/1/2).
// Tolerance (stated): |analytic - numeric| <= 1e-3 + 1e-2 * max(|a|, |n|),
// central differences with h = 1e-2 on FP32 forwards summed in double.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "../common/tensors.hpp"
#include "mixq/autograd/autograd.hpp"

using namespace mixq;
using mixq_test::random_tensor;

namespace {
// Values in [-1,-0.1] u [0.1,1]: at least 10 steps away from the ReLU kink.
tensor away_from_zero(const shape& s, uint64_t seed) {
  tensor t = random_tensor(s, seed, 0.1f, 1.0f);
  rng r(seed + 1);
  for (int64_t i = 0; i < t.numel(); ++i)
    if (r.uniform() < 0.5f) t[i] = -t[i];
  return t;
}
}  // namespace

TEST_CASE("gradcheck conv2d: kernels 1/3/5, strides 1/2, padding 0/1/2, with and without bias") {
  struct cfg {
    int64_t k, stride, pad;
    bool bias;
  };
  const cfg cfgs[] = {{1, 1, 0, false}, {3, 1, 1, true}, {3, 2, 1, false}, {5, 1, 2, true},
                      {5, 2, 2, false}, {3, 1, 0, true}, {1, 2, 0, true},  {3, 2, 2, true}};
  for (const cfg& c : cfgs) {
    CAPTURE(c.k);
    CAPTURE(c.stride);
    CAPTURE(c.pad);
    CAPTURE(c.bias);
    tensor x = random_tensor({3, 7, 9, 5}, 1);
    tensor w = random_tensor({6, c.k, c.k, 5}, 2, -0.5f, 0.5f);
    tensor b = random_tensor({6}, 3);
    std::vector<tensor_view> in{x.view(), w.view()};
    if (c.bias) in.push_back(b.view());
    auto rep = gradcheck(
        [&](tape& t, const std::vector<var>& v) {
          return conv2d(v[0], v[1], c.bias ? v[2] : var{}, c.stride, c.pad);
        },
        in);
    INFO(rep.message);
    CHECK(rep.ok);
    CHECK(rep.checked == x.numel() + w.numel() + (c.bias ? 6 : 0));
  }
}

TEST_CASE("gradcheck conv2d with many output channels (several register tiles)") {
  tensor x = random_tensor({2, 5, 6, 3}, 4);
  tensor w = random_tensor({37, 3, 3, 3}, 5, -0.5f, 0.5f);
  tensor b = random_tensor({37}, 6);
  auto rep =
      gradcheck([&](tape& t, const std::vector<var>& v) { return conv2d(v[0], v[1], v[2], 1, 1); },
                {x.view(), w.view(), b.view()});
  INFO(rep.message);
  CHECK(rep.ok);
}

TEST_CASE("gradcheck conv2d whose input gradient accumulates (input used twice)") {
  // Stride 1 (input gradient via the flipped-kernel forward path, accumulating)
  // and stride 2 (scatter path), each after another consumer wrote x's gradient.
  for (int64_t stride : {1, 2}) {
    CAPTURE(stride);
    tensor x = random_tensor({3, 7, 9, 5}, 60);
    tensor w = random_tensor({5, 3, 3, 5}, 61, -0.5f, 0.5f);
    auto rep = gradcheck(
        [&](tape&, const std::vector<var>& v) {
          // conv is recorded first, so its backward runs last and adds into
          // the gradient that the shortcut / identity path already wrote.
          var c = conv2d(v[0], v[1], var{}, stride, 1);
          var s = stride == 1 ? v[0] : shortcut_a(v[0], 5, 2);
          return add(s, c);
        },
        {x.view(), w.view()});
    INFO(rep.message);
    CHECK(rep.ok);
  }
}

TEST_CASE("gradcheck linear") {
  tensor x = random_tensor({3, 7}, 7);
  tensor w = random_tensor({5, 7}, 8);
  tensor b = random_tensor({5}, 9);
  auto rep = gradcheck([&](tape& t, const std::vector<var>& v) { return linear(v[0], v[1], v[2]); },
                       {x.view(), w.view(), b.view()});
  INFO(rep.message);
  CHECK(rep.ok);
}

TEST_CASE("gradcheck batch_norm2d in training and eval mode") {
  for (bool training : {true, false}) {
    CAPTURE(training);
    tensor x = random_tensor({3, 7, 9, 5}, 10, -2.0f, 3.0f);
    tensor g = random_tensor({5}, 11, 0.5f, 1.5f);
    tensor b = random_tensor({5}, 12);
    tensor rm = random_tensor({5}, 13);
    tensor rv = random_tensor({5}, 14, 0.5f, 2.0f);
    batch_norm2d_args a;
    a.training = training;
    auto rep = gradcheck(
        [&](tape& t, const std::vector<var>& v) {
          return batch_norm2d(v[0], v[1], v[2], rm.view(), rv.view(), a);
        },
        {x.view(), g.view(), b.view()});
    INFO(rep.message);
    CHECK(rep.ok);
  }
}

TEST_CASE("gradcheck relu, add, global_avg_pool, flatten, shortcut_a") {
  tensor x = away_from_zero({3, 7, 9, 5}, 20);
  tensor y = random_tensor({3, 7, 9, 5}, 21);
  SUBCASE("relu") {
    auto rep = gradcheck([](tape&, const std::vector<var>& v) { return relu(v[0]); }, {x.view()});
    INFO(rep.message);
    CHECK(rep.ok);
  }
  SUBCASE("add") {
    auto rep = gradcheck([](tape&, const std::vector<var>& v) { return add(v[0], v[1]); },
                         {x.view(), y.view()});
    INFO(rep.message);
    CHECK(rep.ok);
  }
  SUBCASE("add used twice (gradient accumulation)") {
    auto rep =
        gradcheck([](tape&, const std::vector<var>& v) { return add(add(v[0], v[1]), v[0]); },
                  {x.view(), y.view()});
    INFO(rep.message);
    CHECK(rep.ok);
  }
  SUBCASE("global_avg_pool") {
    auto rep = gradcheck([](tape&, const std::vector<var>& v) { return global_avg_pool(v[0]); },
                         {y.view()});
    INFO(rep.message);
    CHECK(rep.ok);
  }
  SUBCASE("flatten") {
    auto rep =
        gradcheck([](tape&, const std::vector<var>& v) { return relu(flatten(v[0])); }, {x.view()});
    INFO(rep.message);
    CHECK(rep.ok);
  }
  SUBCASE("shortcut_a stride 2, 5 -> 12 channels") {
    auto rep = gradcheck([](tape&, const std::vector<var>& v) { return shortcut_a(v[0], 12, 2); },
                         {y.view()});
    INFO(rep.message);
    CHECK(rep.ok);
  }
}

TEST_CASE("gradcheck softmax_cross_entropy with and without label smoothing") {
  tensor z = random_tensor({3, 5}, 30, -2.0f, 2.0f);
  const int32_t labels[3] = {4, 0, 2};
  for (float eps : {0.0f, 0.1f}) {
    CAPTURE(eps);
    auto rep = gradcheck(
        [&](tape&, const std::vector<var>& v) { return softmax_cross_entropy(v[0], labels, eps); },
        {z.view()});
    INFO(rep.message);
    CHECK(rep.ok);
  }
}

TEST_CASE("gradcheck a small network: conv-bn-relu, shortcut, add, pool, linear, loss") {
  tensor x = random_tensor({3, 7, 9, 5}, 40);
  tensor w1 = random_tensor({8, 3, 3, 5}, 41, -0.3f, 0.3f);
  tensor g = random_tensor({8}, 42, 0.5f, 1.5f);
  tensor b = random_tensor({8}, 43);
  tensor wl = random_tensor({4, 8}, 44);
  tensor rm({8}), rv({8}, 1.0f);
  const int32_t labels[3] = {1, 3, 0};
  auto rep = gradcheck(
      [&](tape&, const std::vector<var>& v) {
        var h = conv2d(v[0], v[1], var{}, 2, 1);  // [3,4,5,8]
        h = batch_norm2d(h, v[2], v[3], rm.view(), rv.view());
        var s = shortcut_a(v[0], 8, 2);  // [3,4,5,8]
        h = add(h, s);
        var p = global_avg_pool(h);
        return softmax_cross_entropy(linear(p, v[4]), labels, 0.1f);
      },
      {x.view(), w1.view(), g.view(), b.view(), wl.view()});
  INFO(rep.message);
  CHECK(rep.ok);
}

TEST_CASE("gradcheck reports a wrong gradient") {
  // A deliberately wrong function: the tape records relu but the value is
  // scaled afterwards behind its back, so analytic != numeric.
  tensor x = away_from_zero({2, 3}, 50);
  auto rep = gradcheck(
      [](tape&, const std::vector<var>& v) {
        var y = relu(v[0]);
        for (int64_t i = 0; i < y.value().numel(); ++i) y.value()[i] *= 3.0f;
        return y;
      },
      {x.view()});
  CHECK_FALSE(rep.ok);
}
