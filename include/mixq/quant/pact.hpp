#pragma once
// PACT: parameterised clipping activation (Choi et al., 2018), the activation
// quantizer of AdaQAT.
//
//   y   = clip(x, 0, alpha),   n = 2^b - 1
//   code = round(y * n / alpha),   y_q = code * alpha / n
//
// Gradients:
//   dy_q/dx     = 1 where 0 <= x < alpha, else 0 (straight-through round)
//   dy_q/dalpha = 1 where x >= alpha, else 0 (the PACT paper's rule: the sum
//                 of dy over the clipped elements)
// The PACT paper's dalpha treats round(.) as the identity everywhere, which
// drops the derivative of the grid step alpha / n itself. With
// scale_grad = true the quantizer adds it for the elements inside the range:
//   + (round(v) - v) / n,  v = x * n / alpha
// (the LSQ-style derivative of the step). Default false (the paper's rule);
// docs/quantization.md.
//
// alpha is the parameter "alpha" (shape {}): PACT regularises it with L2, so
// it carries weight decay unless constructed with alpha_decay = false. Its
// initial value is either a fixed number (the PACT paper uses 10) or, with
// init <= 0, calibrated on the first forward as the `percentile` quantile of
// the data it sees (buffer "initialized" records that it happened, so a
// resumed run does not recalibrate). The grid does not depend on the bits
// except through n, so set_bits() changes nothing else.
#include <algorithm>
#include <cmath>
#include <vector>

#include "mixq/autograd/tape.hpp"
#include "mixq/quant/quantizer.hpp"

namespace mixq {
namespace quant {

namespace detail {
constexpr float min_alpha = 1e-4f;

struct pact_saved {
  float alpha;
  int steps;        // n = 2^b - 1
  int probe_steps;  // 0 = no probe
  bool scale_grad;
  double* est;
};

// sum over n elements of dy * dalpha (before nothing: PACT has no gradient scale).
inline double pact_alpha_sum(const float* __restrict x, const float* __restrict dy, int64_t n,
                             float a, float inv, float nf, bool scale_grad) {
  constexpr int L = 16;
  float acc[L] = {};
  auto term = [a, inv, nf, scale_grad](float xi) {
    if (xi >= a) return 1.0f;
    if (!scale_grad || xi < 0.0f) return 0.0f;
    const float v = xi * inv;
    return (round_code(v) - v) / nf;
  };
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) acc[j] += dy[i + j] * term(x[i + j]);
  double s = 0.0;
  for (; i < n; ++i) s += static_cast<double>(dy[i] * term(x[i]));
  for (int j = 0; j < L; ++j) s += static_cast<double>(acc[j]);
  return s;
}

inline void pact_backward(tape& t, const node& nd) {
  const pact_saved sv = nd.extension_saved<pact_saved>();
  const int32_t xi = nd.inputs[0], ai = nd.inputs[1];
  const tensor_view xv = t.at(xi).value;
  const float* x = xv.data();
  const float* dy = t.grad_of(nd.output);
  const int64_t n = xv.numel();
  const float a = sv.alpha, nf = static_cast<float>(sv.steps), inv = nf / a;
  const bool need_x = t.needs_grad(xi), need_a = t.needs_grad(ai);
  bool acc_x = false;
  float* dx = need_x ? t.grad_for_write(xi, &acc_x) : nullptr;
  double da = 0.0;
  const bool sg = sv.scale_grad;
  ordered_sums<1>(n, &da, [=](int64_t i0, int64_t i1, double* out) {
    // x in [0, alpha): the upper bound is strict, x = alpha belongs to dalpha.
    if (dx) ste_pass(x + i0, dy + i0, dx + i0, i1 - i0, 1.0f, 0.0f, std::nextafter(a, 0.0f), acc_x);
    out[0] = need_a ? pact_alpha_sum(x + i0, dy + i0, i1 - i0, a, inv, nf, sg) : 0.0;
  });
  if (need_a) {
    bool acc = false;
    float* g = t.grad_for_write(ai, &acc);
    g[0] = acc ? g[0] + static_cast<float>(da) : static_cast<float>(da);
  }
  if (sv.est) {
    const float pn = static_cast<float>(sv.probe_steps), pinv = pn / a;
    const float step = a / nf, pstep = a / pn;
    add_sample_probe(t, dy, n, xv.shape()[0], sv.est, [=](int64_t i) {
      const float y = std::min(std::max(x[i], 0.0f), a);
      return pstep * round_code(y * pinv) - step * round_code(y * inv);
    });
  }
}
}  // namespace detail

struct pact_options {
  float init = 0.0f;          // > 0: fixed initial alpha; <= 0: calibrate on the first forward
  double percentile = 0.999;  // quantile used by the calibration
  bool alpha_decay = true;    // L2 on alpha through the optimizer's weight decay
  bool scale_grad = false;    // add the grid step's own derivative to dalpha
};

class pact : public act_quantizer {
 public:
  explicit pact(int bits, const pact_options& o = {})
      : act_quantizer(bits), alpha("alpha", shape{}, o.alpha_decay), init_(shape{}), opt_(o) {
    MIXQ_CHECK(o.percentile > 0.0 && o.percentile <= 1.0, "pact: percentile = ", o.percentile,
               ", expected in (0, 1]");
    alpha.value[0] = o.init > 0.0f ? o.init : 1.0f;
    init_[0] = o.init > 0.0f ? 1.0f : 0.0f;
    register_parameter("alpha", alpha);
    register_buffer("initialized", init_);
  }
  const char* family() const override { return "pact"; }
  bool ready() const override { return init_[0] > 0.0f; }
  float clip() const { return std::max(alpha.value[0], detail::min_alpha); }

  var apply(tape& t, var x) override {
    if (!ready()) calibrate(x.value());
    const int b = bits();
    const float a = clip(), nf = static_cast<float>(grid_steps(b)), inv = nf / a, step = a / nf;
    var ap = t.param(alpha);
    var y = t.new_value(x.shape(), true);
    const float* xd = x.value().data();
    float* yd = y.value().data();
    const int64_t n = x.value().numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i)
      yd[i] = step * round_code(std::min(std::max(xd[i], 0.0f), a) * inv);
    if (t.grad_enabled()) {
      detail::pact_saved sv{};
      sv.alpha = a;
      sv.steps = grid_steps(b);
      sv.scale_grad = opt_.scale_grad;
      if (probe_) {
        sv.probe_steps = grid_steps(probe_);
        sv.est = estimate_sink();
      }
      t.record_extension(&detail::pact_backward, {x, ap}, y, sv);
    }
    return y;
  }

  // Back to the constructor's state: the fixed initial clip, or calibration
  // on the next forward.
  void reset_range() override {
    alpha.value[0] = opt_.init > 0.0f ? opt_.init : 1.0f;
    init_[0] = opt_.init > 0.0f ? 1.0f : 0.0f;
  }

  act_grid export_grid() const override {
    MIXQ_CHECK(ready(), prefix(), ": PACT clip not calibrated (run a forward first)");
    return act_grid{bits(), clip() / static_cast<float>(grid_steps(bits())), 0};
  }

  parameter alpha;

 private:
  void calibrate(const tensor_view& x) {
    std::vector<float> v(x.data(), x.data() + x.numel());
    float a = 1.0f;
    if (!v.empty()) {
      const auto k = static_cast<size_t>(opt_.percentile * static_cast<double>(v.size() - 1));
      std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
      a = v[k];
    }
    alpha.value[0] = (a > detail::min_alpha && std::isfinite(a)) ? a : 1.0f;
    init_[0] = 1.0f;
  }
  tensor init_;
  pact_options opt_;
};

}  // namespace quant
}  // namespace mixq
