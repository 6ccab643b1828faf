// Quantizer gradients against their definitions: the straight-through and
// learned-scale rules element by element, and central finite differences
// wherever the forward is differentiable (clipped regions; DoReFa's smooth
// surrogate through tanh and the max).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/quant/quant.hpp"

using namespace mixq;
using namespace mixq::quant;

namespace {
tensor random_tensor(const shape& s, uint64_t seed, float lo, float hi) {
  tensor t(s);
  rng r(seed);
  fill_uniform(t.view(), r, lo, hi);
  return t;
}
double dot(const tensor_view& a, const tensor_view& b) {
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}
// Runs q on x (a tape input needing a gradient), seeds dL/dy = r, returns
// dL/dx; the quantizer's parameters accumulate their gradients.
tensor run_backward(nn::transform& q, const tensor& x, const tensor& r, bool x_is_param = false,
                    parameter* xp = nullptr) {
  tape t;
  var xv = x_is_param ? t.param(*xp) : t.input(x.view(), true);
  var y = q.apply(t, xv);
  backward(y, r.data());
  tensor dx(x.shape());
  if (!x_is_param) dx.view().copy_from(xv.grad());
  return dx;
}
}  // namespace

TEST_CASE("LSQ activation gradients: STE for x, LSQ rule x grad scale for the step") {
  for (int b : {2, 3, 4, 8}) {
    lsq_act q(b);
    const float s = 0.05f;
    q.set_step(s);
    const int qp = (1 << b) - 1;
    tensor x = random_tensor({4, 5, 5, 6}, 7 + b, -0.2f, s * (qp + 4));
    tensor r = random_tensor(x.shape(), 99, -1.0f, 1.0f);
    q.step.zero_grad();
    tensor dx = run_backward(q, x, r);
    const double feat = 5 * 5 * 6;
    const double gscale = 1.0 / std::sqrt(feat * qp);
    double ds = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float v = x[i] / s;
      const bool inside = v >= 0.0f && v <= static_cast<float>(qp);
      REQUIRE(dx[i] == (inside ? r[i] : 0.0f));
      const double d = v <= 0 ? 0.0 : (v >= qp ? qp : std::nearbyint(v) - v);
      ds += r[i] * d;
    }
    CHECK(q.step.grad[0] == doctest::Approx(gscale * ds).epsilon(1e-4));
  }
}

TEST_CASE("LSQ step gradient equals the finite difference where the output is clipped") {
  // Every element above the grid: y = s * Qp, so dL/ds = Qp * sum r exactly;
  // the backward reports it times the gradient scale.
  const int b = 3, qp = 7;
  lsq_act q(b);
  q.set_step(0.1f);
  tensor x = random_tensor({2, 50}, 3, 1.0f, 2.0f);  // v in [10, 20] > 7
  tensor r = random_tensor(x.shape(), 4, -1.0f, 1.0f);
  q.step.zero_grad();
  run_backward(q, x, r);
  auto loss = [&](float s) {
    q.set_step(s);
    tape t;
    no_grad_guard ng(t);
    var y = q.apply(t, t.input(x.view()));
    return dot(y.value(), r.view());
  };
  const float h = 1e-3f;
  const double fd = (loss(0.1f + h) - loss(0.1f - h)) / (2.0 * h);
  const double gscale = 1.0 / std::sqrt(50.0 * qp);
  CHECK(q.step.grad[0] / gscale == doctest::Approx(fd).epsilon(1e-3));
}

TEST_CASE("LSQ weight gradients, per tensor and per channel") {
  for (bool per_channel : {false, true}) {
    const int b = 4;
    const int64_t co = 4, k = 60;
    lsq_weight q(b, co, per_channel);
    const float steps[4] = {0.02f, 0.03f, 0.015f, 0.05f};
    for (int64_t c = 0; c < (per_channel ? co : 1); ++c) q.set_step(c, steps[c]);
    parameter w("w", {co, k});
    w.value = random_tensor(w.shape(), 11, -0.3f, 0.3f);
    tensor r = random_tensor(w.shape(), 12, -1.0f, 1.0f);
    w.zero_grad();
    q.step.zero_grad();
    run_backward(q, w.value, r, true, &w);
    const int qn = 8, qp = 7;
    const double per = per_channel ? k : co * k;
    const double gscale = 1.0 / std::sqrt(per * qp);
    std::vector<double> ds(4, 0.0);
    for (int64_t c = 0; c < co; ++c)
      for (int64_t i = c * k; i < (c + 1) * k; ++i) {
        const float s = steps[per_channel ? c : 0];
        const float v = w.value[i] / s;
        const bool inside = v >= -qn && v <= qp;
        REQUIRE(w.grad[i] == (inside ? r[i] : 0.0f));
        const double d = v <= -qn ? -qn : (v >= qp ? qp : std::nearbyint(v) - v);
        ds[per_channel ? c : 0] += r[i] * d;
      }
    for (int64_t c = 0; c < (per_channel ? co : 1); ++c)
      CHECK(q.step.grad[c] == doctest::Approx(gscale * ds[c]).epsilon(1e-4));
  }
}

TEST_CASE("LSQ after a width change: the step trained is the new width's, whatever it started at") {
  // Two quantizers with the same clipping span at 2 bits: one set at 8 bits
  // and switched to 2 (AdaQAT lowering a width), one set at 2 bits. Their
  // forwards, step gradients and the steps after one SGD update must agree.
  const int64_t co = 3, k = 50;
  parameter w("w", {co, k});
  w.value = random_tensor(w.shape(), 21, -0.4f, 0.4f);
  const tensor r = random_tensor(w.shape(), 22, -1.0f, 1.0f);
  const float s8[3] = {0.004f, 0.003f, 0.005f};
  lsq_weight moved(8, co, true), fresh(2, co, true);
  for (int64_t c = 0; c < co; ++c) {
    moved.set_step(c, s8[c]);
    fresh.set_step(c, s8[c] * 255.0f / 3.0f);
  }
  moved.set_bits(2);
  CHECK(moved.step_at(1, 2) == doctest::Approx(fresh.step_at(1, 2)).epsilon(1e-6));
  {
    tape t;  // a forward without gradients (a probe) leaves the step where it was
    no_grad_guard ng(t);
    moved.apply(t, t.input(w.value.view()));
    CHECK(moved.step.value[0] == s8[0]);
  }
  std::vector<float> y[2];
  lsq_weight* qs[2] = {&moved, &fresh};
  for (int i = 0; i < 2; ++i) {
    qs[i]->step.zero_grad();
    tape t;
    var out = qs[i]->apply(t, t.param(w));
    y[i].assign(out.value().data(), out.value().data() + out.value().numel());
    backward(out, r.data());
  }
  CHECK(moved.step.value[0] == doctest::Approx(fresh.step.value[0]).epsilon(1e-6));
  for (size_t j = 0; j < y[0].size(); ++j) REQUIRE(y[0][j] == doctest::Approx(y[1][j]));
  const float lr = 0.01f;
  for (int64_t c = 0; c < co; ++c) {
    CHECK(moved.step.grad[c] == doctest::Approx(fresh.step.grad[c]).epsilon(1e-5));
    moved.step.value[c] -= lr * moved.step.grad[c];
    fresh.step.value[c] -= lr * fresh.step.grad[c];
    CHECK(moved.step_at(c, 2) == doctest::Approx(fresh.step_at(c, 2)).epsilon(1e-5));
  }

  // Activations likewise.
  lsq_act a_moved(8), a_fresh(3);
  a_moved.set_step(0.01f);
  a_fresh.set_step(0.01f * 255.0f / 7.0f);
  a_moved.set_bits(3);
  const tensor x = random_tensor({4, 40}, 23, 0.0f, 3.0f);
  const tensor rx = random_tensor({4, 40}, 24, -1.0f, 1.0f);
  for (lsq_act* q : {&a_moved, &a_fresh}) {
    q->step.zero_grad();
    run_backward(*q, x, rx);
  }
  CHECK(a_moved.step.grad[0] == doctest::Approx(a_fresh.step.grad[0]).epsilon(1e-5));
  CHECK(a_moved.step_at(3) == doctest::Approx(a_fresh.step_at(3)).epsilon(1e-6));
}

TEST_CASE("PACT gradients: STE for x, dalpha = sum of dy where x >= alpha (+ optional step term)") {
  for (bool scale_grad : {false, true}) {
    pact_options o;
    o.init = 1.5f;
    o.scale_grad = scale_grad;
    const int b = 3, n = 7;
    pact q(b, o);
    tensor x = random_tensor({3, 40}, 21, -0.5f, 2.5f);
    tensor r = random_tensor(x.shape(), 22, -1.0f, 1.0f);
    q.alpha.zero_grad();
    tensor dx = run_backward(q, x, r);
    double da = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const bool inside = x[i] >= 0.0f && x[i] < 1.5f;
      REQUIRE(dx[i] == (inside ? r[i] : 0.0f));
      if (x[i] >= 1.5f) da += r[i];
      if (scale_grad && inside) {
        const float v = x[i] * n / 1.5f;
        da += r[i] * (std::nearbyint(v) - v) / n;
      }
    }
    CHECK(q.alpha.grad[0] == doctest::Approx(da).epsilon(1e-4));
  }
  // Finite difference where every element is clipped (y = alpha): dL/dalpha = sum r.
  pact_options o;
  o.init = 1.0f;
  pact q(4, o);
  tensor x = random_tensor({1, 30}, 5, 1.5f, 3.0f);
  tensor r = random_tensor(x.shape(), 6, -1.0f, 1.0f);
  q.alpha.zero_grad();
  run_backward(q, x, r);
  auto loss = [&](float a) {
    q.alpha.value[0] = a;
    tape t;
    no_grad_guard ng(t);
    var y = q.apply(t, t.input(x.view()));
    return dot(y.value(), r.view());
  };
  const double fd = (loss(1.0f + 1e-3f) - loss(1.0f - 1e-3f)) / 2e-3;
  CHECK(q.alpha.grad[0] == doctest::Approx(fd).epsilon(1e-3));
}

TEST_CASE("DoReFa gradient: the derivative through tanh and the max (finite differences)") {
  // With round as the identity, the unit-scale DoReFa weight is the smooth
  // surrogate tanh(w) / max|tanh(w)|; its exact gradient (the argmax element
  // included) is what the backward must return.
  for (int b : {2, 4, 8}) {
    parameter w("w", {3, 17});
    w.value = random_tensor(w.shape(), 31 + b, -0.6f, 0.6f);
    w.value[5] = 1.1f;  // a clear maximum
    tensor r = random_tensor(w.shape(), 32, -1.0f, 1.0f);
    dorefa_weight q(b, dorefa_scale::unit);
    w.zero_grad();
    run_backward(q, w.value, r, true, &w);
    auto surrogate = [&](const tensor& wt) {
      double m = 0;
      for (int64_t i = 0; i < wt.numel(); ++i) m = std::max(m, std::fabs(std::tanh((double)wt[i])));
      double s = 0;
      for (int64_t i = 0; i < wt.numel(); ++i) s += r[i] * std::tanh((double)wt[i]) / m;
      return s;
    };
    for (int64_t i = 0; i < w.numel(); ++i) {
      tensor wp = w.value, wm = w.value;
      const float h = 1e-3f;
      wp[i] += h;
      wm[i] -= h;
      const double fd = (surrogate(wp) - surrogate(wm)) / (2.0 * h);
      INFO("b=" << b << " i=" << i);
      CHECK(w.grad[i] == doctest::Approx(fd).epsilon(2e-3).scale(1e-3));
    }
  }
}

TEST_CASE("DoReFa with max scale: dL/dm includes the level term (definition)") {
  parameter w("w", {2, 9});
  w.value = random_tensor(w.shape(), 41, -0.5f, 0.5f);
  w.value[3] = -0.9f;
  tensor r = random_tensor(w.shape(), 42, -1.0f, 1.0f);
  const int b = 3, n = 7;
  dorefa_weight q(b, dorefa_scale::max);
  w.zero_grad();
  run_backward(q, w.value, r, true, &w);
  double m = 0;
  int64_t arg = 0;
  for (int64_t i = 0; i < w.numel(); ++i)
    if (std::fabs(std::tanh(w.value[i])) > m) {
      m = std::fabs(std::tanh(w.value[i]));
      arg = i;
    }
  double dm = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double t = std::tanh(w.value[i]);
    const double j = std::nearbyint((t / (2 * m) + 0.5) * n);
    dm += r[i] * ((2 * j / n - 1) - t / m);
  }
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double t = std::tanh(w.value[i]);
    double d = r[i] + (i == arg ? (t < 0 ? -1.0 : 1.0) * dm : 0.0);
    d *= 1 - t * t;
    CHECK(w.grad[i] == doctest::Approx(d).epsilon(1e-4).scale(1e-4));
  }
}

TEST_CASE("quantizers accumulate into gradients that already hold a value") {
  lsq_act q(4);
  q.set_step(0.1f);
  tensor x = random_tensor({2, 8}, 51, 0.0f, 2.0f);
  auto f = [&](tape&, const std::vector<var>& v) { return add(q.apply(*v[0].t, v[0]), v[0]); };
  tape t;
  var xv = t.input(x.view(), true);
  var y = f(t, {xv});
  tensor ones(y.shape(), 1.0f);
  backward(y, ones.data());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = x[i] / 0.1f;
    CHECK(xv.grad()[i] == (v <= 15.0f ? 2.0f : 1.0f));
  }
}
