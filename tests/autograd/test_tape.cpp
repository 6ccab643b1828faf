// Tape mechanics: reverse walk, gradient accumulation, no-grad mode, memory reuse.
#include <doctest/doctest.h>

#include <cmath>

#include "../common/tensors.hpp"
#include "mixq/autograd/autograd.hpp"

using namespace mixq;
using mixq_test::random_tensor;

namespace {
// Naive NHWC/OHWI convolution in double.
std::vector<double> conv_ref(const tensor& x, const tensor& w, const tensor* b, int64_t s,
                             int64_t p) {
  const int64_t n = x.dim(0), h = x.dim(1), wd = x.dim(2), c = x.dim(3);
  const int64_t co = w.dim(0), kh = w.dim(1), kw = w.dim(2);
  const int64_t oh = (h + 2 * p - kh) / s + 1, ow = (wd + 2 * p - kw) / s + 1;
  std::vector<double> y(static_cast<size_t>(n * oh * ow * co));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t a = 0; a < oh; ++a)
      for (int64_t bb = 0; bb < ow; ++bb)
        for (int64_t o = 0; o < co; ++o) {
          double acc = b ? (*b)[o] : 0.0;
          for (int64_t r = 0; r < kh; ++r)
            for (int64_t q = 0; q < kw; ++q) {
              int64_t ih = a * s + r - p, iw = bb * s + q - p;
              if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
              for (int64_t ch = 0; ch < c; ++ch)
                acc += static_cast<double>(x[((i * h + ih) * wd + iw) * c + ch]) *
                       w[((o * kh + r) * kw + q) * c + ch];
            }
          y[static_cast<size_t>(((i * oh + a) * ow + bb) * co + o)] = acc;
        }
  return y;
}
}  // namespace

TEST_CASE("conv2d forward matches a naive double-precision convolution") {
  struct cfg {
    int64_t n, h, w, c, co, k, s, p;
  };
  const cfg cfgs[] = {{3, 7, 9, 5, 6, 3, 1, 1},     {2, 7, 9, 5, 17, 5, 2, 2},
                      {1, 32, 32, 16, 16, 3, 1, 1}, {2, 16, 16, 16, 32, 3, 2, 1},
                      {2, 8, 8, 64, 64, 3, 1, 1},   {3, 7, 9, 5, 33, 1, 1, 0},
                      {2, 11, 13, 3, 16, 3, 1, 0}};
  for (const cfg& c : cfgs) {
    CAPTURE(c.c);
    CAPTURE(c.co);
    CAPTURE(c.k);
    CAPTURE(c.s);
    CAPTURE(c.p);
    tensor x = random_tensor({c.n, c.h, c.w, c.c}, 1);
    tensor w = random_tensor({c.co, c.k, c.k, c.c}, 2);
    tensor b = random_tensor({c.co}, 3);
    tape t;
    var y = conv2d(t.input(x.view()), t.input(w.view()), t.input(b.view()), c.s, c.p);
    std::vector<double> ref = conv_ref(x, w, &b, c.s, c.p);
    REQUIRE(static_cast<size_t>(y.value().numel()) == ref.size());
    double worst = 0.0;
    for (size_t i = 0; i < ref.size(); ++i)
      worst = std::fmax(worst, std::fabs(ref[i] - y.value()[static_cast<int64_t>(i)]));
    CHECK(worst < 1e-4 * std::sqrt(static_cast<double>(c.k * c.k * c.c)));
  }
}

TEST_CASE("parameter gradients accumulate across backward passes until zero_grad") {
  parameter w("w", {4, 3});
  rng r(1);
  fill_uniform(w.value.view(), r, -1.0f, 1.0f);
  tensor x = random_tensor({2, 3}, 2);
  const int32_t labels[2] = {0, 3};
  tape t;
  backward(softmax_cross_entropy(linear(t.input(x.view()), t.param(w)), labels));
  tensor once = w.grad;
  t.clear();
  backward(softmax_cross_entropy(linear(t.input(x.view()), t.param(w)), labels));
  for (int64_t i = 0; i < once.numel(); ++i) CHECK(w.grad[i] == doctest::Approx(2 * once[i]));
  w.zero_grad();
  for (int64_t i = 0; i < once.numel(); ++i) CHECK(w.grad[i] == 0.0f);
}

TEST_CASE("no-grad mode records nothing and backward refuses") {
  parameter w("w", {4, 3});
  tensor x = random_tensor({2, 3}, 2);
  tape t;
  {
    no_grad_guard ng(t);
    var y = relu(linear(t.input(x.view()), t.param(w)));
    CHECK(t.nodes().empty());
    CHECK_FALSE(y.requires_grad());
    const float seed[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_THROWS_AS(backward(y, seed), mixq::error);
  }
  CHECK(t.grad_enabled());
  t.clear();
  var y = relu(linear(t.input(x.view()), t.param(w)));
  CHECK(t.nodes().size() == 2);
  CHECK(y.requires_grad());
}

TEST_CASE("backward twice on one recording throws; inputs without grad get none") {
  tensor x = random_tensor({2, 3}, 2);
  parameter w("w", {4, 3});
  const int32_t labels[2] = {0, 3};
  tape t;
  var xi = t.input(x.view());
  var loss = softmax_cross_entropy(linear(xi, t.param(w)), labels);
  backward(loss);
  CHECK(xi.grad().empty());
  CHECK_THROWS_AS(backward(loss), mixq::error);
}

TEST_CASE("a reused tape allocates no new memory after the first step") {
  tensor x = random_tensor({4, 9, 9, 3}, 5);
  parameter w1("w1", {8, 3, 3, 3}), g("g", {8}, false), b("b", {8}, false), wl("wl", {10, 8});
  rng r(6);
  fill_uniform(w1.value.view(), r, -0.3f, 0.3f);
  fill_uniform(wl.value.view(), r, -0.3f, 0.3f);
  g.value.fill(1.0f);
  tensor rm({8}), rv({8}, 1.0f);
  const int32_t labels[4] = {1, 2, 3, 4};
  tape t;
  int64_t reserved[3] = {0, 0, 0};
  for (int step = 0; step < 3; ++step) {
    t.clear();
    batch_norm2d_args a;
    a.relu = true;
    var h = conv2d(t.input(x.view()), t.param(w1), var{}, 1, 1);
    h = batch_norm2d(h, t.param(g), t.param(b), rm.view(), rv.view(), a);
    var loss = softmax_cross_entropy(linear(global_avg_pool(h), t.param(wl)), labels, 0.1f);
    backward(loss);
    reserved[step] = t.reserved_bytes();
  }
  CHECK(reserved[0] > 0);
  CHECK(reserved[1] == reserved[2]);
}

TEST_CASE("ops reject bad shapes with mixq::error naming the shapes") {
  tensor x({2, 5, 5, 3}), w({4, 3, 3, 2});
  tape t;
  try {
    conv2d(t.input(x.view()), t.input(w.view()), var{}, 1, 1);
    FAIL("expected mixq::error");
  } catch (const mixq::error& e) {
    CHECK(std::string(e.what()).find("[4, 3, 3, 2]") != std::string::npos);
  }
  tensor a({2, 3}), b({3, 2});
  CHECK_THROWS_AS(add(t.input(a.view()), t.input(b.view())), mixq::error);
  const int32_t bad[2] = {0, 7};
  CHECK_THROWS_AS(softmax_cross_entropy(t.input(a.view()), bad), mixq::error);
}

TEST_CASE("accuracy helpers") {
  tensor z({3, 4});
  z[0 * 4 + 2] = 5.0f;
  z[1 * 4 + 0] = 1.0f;
  z[2 * 4 + 3] = 2.0f;
  int32_t am[3];
  argmax_rows(z.view(), am);
  CHECK(am[0] == 2);
  CHECK(am[1] == 0);
  CHECK(am[2] == 3);
  const int32_t labels[3] = {2, 1, 3};
  CHECK(count_correct(z.view(), labels) == 2);
  CHECK(accuracy(z.view(), labels) == doctest::Approx(2.0 / 3.0));
}

TEST_CASE("a var from before clear() is rejected") {
  tensor x = random_tensor({2, 3}, 2);
  tape t;
  var a = t.input(x.view());
  var r = relu(a);
  t.clear();
  CHECK_THROWS_AS(r.value(), mixq::error);
  CHECK_THROWS_AS(relu(a), mixq::error);
  var b = t.input(x.view());  // same id as a, new generation
  CHECK(b.id == a.id);
  CHECK_NOTHROW(relu(b));
  CHECK_THROWS_AS(add(a, b), mixq::error);
}
