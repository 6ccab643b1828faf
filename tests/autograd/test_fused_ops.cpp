// Fused ops equal their unfused compositions (values and gradients).
#include <doctest/doctest.h>

#include <cmath>

#include "../common/tensors.hpp"
#include "mixq/autograd/autograd.hpp"

using namespace mixq;
using mixq_test::random_tensor;

namespace {
void check_close(const tensor_view& a, const tensor_view& b, float tol) {
  REQUIRE(a.numel() == b.numel());
  float worst = 0.0f;
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::fmax(worst, std::fabs(a[i] - b[i]));
  CHECK(worst <= tol);
}
}  // namespace

TEST_CASE("batch_norm2d(relu=true) == relu(batch_norm2d)") {
  for (bool training : {true, false}) {
    CAPTURE(training);
    tensor x = random_tensor({3, 7, 9, 5}, 1, -2.0f, 2.0f);
    tensor seed = random_tensor({3, 7, 9, 5}, 2);
    parameter g("g", {5}, false), b("b", {5}, false);
    rng r(3);
    fill_uniform(g.value.view(), r, 0.5f, 1.5f);
    fill_uniform(b.value.view(), r, -0.5f, 0.5f);
    tensor rm1({5}), rv1({5}, 1.0f), rm2({5}), rv2({5}, 1.0f);
    batch_norm2d_args a;
    a.training = training;

    tape t1;
    var x1 = t1.input(x.view(), true);
    a.relu = true;
    var y1 = batch_norm2d(x1, t1.param(g), t1.param(b), rm1.view(), rv1.view(), a);
    backward(y1, seed.data());
    tensor dg1 = g.grad, db1 = b.grad, dx1 = tensor::from_view(x1.grad());
    g.zero_grad();
    b.zero_grad();

    tape t2;
    var x2 = t2.input(x.view(), true);
    a.relu = false;
    var y2 = relu(batch_norm2d(x2, t2.param(g), t2.param(b), rm2.view(), rv2.view(), a));
    backward(y2, seed.data());
    check_close(y1.value(), y2.value(), 1e-6f);
    check_close(dx1.view(), x2.grad(), 1e-5f);
    check_close(dg1.view(), g.grad.view(), 1e-4f);
    check_close(db1.view(), b.grad.view(), 1e-4f);
    check_close(rm1.view(), rm2.view(), 0.0f);
    check_close(rv1.view(), rv2.view(), 0.0f);
  }
}

TEST_CASE("add(relu=true) == relu(add)") {
  tensor a = random_tensor({3, 4, 5, 6}, 4), b = random_tensor({3, 4, 5, 6}, 5);
  tensor seed = random_tensor({3, 4, 5, 6}, 6);
  tape t1, t2;
  var a1 = t1.input(a.view(), true), b1 = t1.input(b.view(), true);
  var y1 = add_relu(a1, b1);
  backward(y1, seed.data());
  var a2 = t2.input(a.view(), true), b2 = t2.input(b.view(), true);
  var y2 = relu(add(a2, b2));
  backward(y2, seed.data());
  check_close(y1.value(), y2.value(), 0.0f);
  check_close(a1.grad(), a2.grad(), 0.0f);
  check_close(b1.grad(), b2.grad(), 0.0f);
}

TEST_CASE("batch_norm2d running statistics follow PyTorch's update rule") {
  // One channel, values 1..6: mean 3.5, biased var 35/12, unbiased 3.5.
  tensor x({1, 2, 3, 1});
  for (int i = 0; i < 6; ++i) x[i] = static_cast<float>(i + 1);
  parameter g("g", {1}, false), b("b", {1}, false);
  g.value[0] = 1.0f;
  tensor rm({1}), rv({1}, 1.0f);
  tape t;
  batch_norm2d_args a;
  a.momentum = 0.25f;
  var y = batch_norm2d(t.input(x.view()), t.param(g), t.param(b), rm.view(), rv.view(), a);
  CHECK(rm[0] == doctest::Approx(0.25 * 3.5));
  CHECK(rv[0] == doctest::Approx(0.75 + 0.25 * 3.5));
  const double sd = std::sqrt(35.0 / 12.0 + 1e-5);
  CHECK(y.value()[0] == doctest::Approx((1.0 - 3.5) / sd).epsilon(1e-5));
  CHECK(y.value()[5] == doctest::Approx((6.0 - 3.5) / sd).epsilon(1e-5));
}
