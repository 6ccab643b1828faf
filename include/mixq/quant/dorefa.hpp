#pragma once
// DoReFa weight quantizer (Zhou et al., 2016), AdaQAT's weight quantizer:
// per tensor, 2^b levels symmetric about 0 with no zero level.
//
//   t = tanh(w),  m = max_i |t_i|,  u = t / (2m) + 1/2  in [0, 1]
//   j = round(u * n)  in [0, n],  n = 2^b - 1
//   w_q = S * (2 j / n - 1)
// S = 1 in the paper (dorefa_scale::unit: the levels span [-1, 1] and the
// following batch norm absorbs the scale) or S = m (dorefa_scale::max: the
// levels span the weights' own range, for a layer with no batch norm after
// it, i.e. the classifier); docs/quantization.md.
//
// Levels and codes. 2 j - n is odd, so the levels are the odd multiples of
// S / n. With c = j - 2^(b-1), a signed b-bit code in [-2^(b-1), 2^(b-1) - 1],
//   w_q = (2 S / n) * (c + 1/2)
// which is how the forward computes it and how export_grid() reports it:
// scale 2S/n, zero point -1/2. An odd level does not fit a b-bit code, so the
// integer runtime needs a lowering (quant/lower.hpp: an activation-sum
// correction, or one more bit).
//
// Gradient, as in the DoReFa reference code (automatic differentiation of
// the expression above with round as the identity): with G = dL/dw_q,
//   dL/dm   = sum_j G_j * (S' (2 j/n - 1) - S t_j / m^2)      (S' = dS/dm: 0 or 1)
//   dL/dt_i = G_i * S / m + [i = argmax] sign(t_i) * dL/dm
//   dL/dw_i = dL/dt_i * (1 - t_i^2)
// The max passes its gradient to one element, the first index holding it.
#include <cmath>
#include <cstdint>
#include <vector>

#include "mixq/autograd/tape.hpp"
#include "mixq/quant/quantizer.hpp"

namespace mixq {
namespace quant {

enum class dorefa_scale { unit, max };

namespace detail {
struct dorefa_saved {
  const float* tw;  // tanh(w) (arena)
  float m;          // max |tanh w|
  int64_t argmax;
  int steps;  // n
  int half;   // 2^(b-1)
  bool scale_max;
  int probe_steps, probe_half;  // 0 = no probe
  int64_t batch;
  double* est;
};

// Level index j of t for a grid of n steps.
inline float dorefa_level(float t, float inv2m, float nf) {
  return std::min(std::max(round_code((t * inv2m + 0.5f) * nf), 0.0f), nf);
}

inline void dorefa_backward(tape& t, const node& nd) {
  const dorefa_saved sv = nd.extension_saved<dorefa_saved>();
  const int32_t wi = nd.inputs[0];
  if (!t.needs_grad(wi) && !sv.est) return;
  const tensor_view wv = t.at(wi).value;
  const float* tw = sv.tw;
  const float* g = t.grad_of(nd.output);
  const int64_t n = wv.numel();
  const float m = sv.m, inv2m = 0.5f / m, nf = static_cast<float>(sv.steps);
  const float S = sv.scale_max ? m : 1.0f;
  const float scale = 2.0f * S / nf, hf = static_cast<float>(sv.half);
  // dL/dm
  double dm = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float ti = tw[i];
    const float j = dorefa_level(ti, inv2m, nf);
    const double sp = sv.scale_max ? static_cast<double>(2.0f * j / nf - 1.0f) : 0.0;
    dm += static_cast<double>(g[i]) *
          (sp - static_cast<double>(S) * static_cast<double>(ti) / (static_cast<double>(m) * m));
  }
  if (t.needs_grad(wi)) {
    bool acc = false;
    float* dw = t.grad_for_write(wi, &acc);
    const float direct = S / m;
    for (int64_t i = 0; i < n; ++i) {
      const float ti = tw[i];
      float d = g[i] * direct;
      if (i == sv.argmax) d += (ti < 0.0f ? -1.0f : 1.0f) * static_cast<float>(dm);
      d *= 1.0f - ti * ti;
      dw[i] = acc ? dw[i] + d : d;
    }
  }
  if (sv.est) {
    const float pnf = static_cast<float>(sv.probe_steps), phf = static_cast<float>(sv.probe_half);
    const float pscale = 2.0f * S / pnf;
    add_element_probe(g, n, sv.batch, sv.est, [=](int64_t i) {
      return pscale * (dorefa_level(tw[i], inv2m, pnf) - phf + 0.5f) -
             scale * (dorefa_level(tw[i], inv2m, nf) - hf + 0.5f);
    });
  }
}
}  // namespace detail

class dorefa_weight : public weight_quantizer {
 public:
  dorefa_weight(int bits, dorefa_scale scale = dorefa_scale::unit)
      : weight_quantizer(bits), scale_(scale) {}
  const char* family() const override { return "dorefa"; }
  dorefa_scale scale_mode() const { return scale_; }

  var apply(tape& t, var w) override {
    const int b = bits();
    const float* wd = w.value().data();
    const int64_t n = w.value().numel();
    float* tw = t.alloc(n);
    for (int64_t i = 0; i < n; ++i) tw[i] = std::tanh(wd[i]);
    int64_t arg = 0;
    const float m = max_abs(tw, n, &arg);
    const float inv2m = 0.5f / m, nf = static_cast<float>(grid_steps(b));
    const float S = scale_ == dorefa_scale::max ? m : 1.0f;
    const float scale = 2.0f * S / nf, hf = static_cast<float>(1 << (b - 1));
    var y = t.new_value(w.shape(), true);
    float* yd = y.value().data();
    for (int64_t i = 0; i < n; ++i)
      yd[i] = scale * (detail::dorefa_level(tw[i], inv2m, nf) - hf + 0.5f);
    if (t.grad_enabled()) {
      detail::dorefa_saved sv{};
      sv.tw = tw;
      sv.m = m;
      sv.argmax = arg;
      sv.steps = grid_steps(b);
      sv.half = 1 << (b - 1);
      sv.scale_max = scale_ == dorefa_scale::max;
      if (probe_) {
        sv.probe_steps = grid_steps(probe_);
        sv.probe_half = 1 << (probe_ - 1);
        sv.batch = probe_batch_;
        sv.est = estimate_sink();
      }
      t.record_extension(&detail::dorefa_backward, {w}, y, sv);
    }
    return y;
  }

  weight_grid export_grid(const tensor& w) override {
    const int b = bits();
    const int64_t n = w.numel();
    std::vector<float> tw(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) tw[static_cast<size_t>(i)] = std::tanh(w[i]);
    int64_t arg = 0;
    const float m = max_abs(tw.data(), n, &arg);
    const float inv2m = 0.5f / m, nf = static_cast<float>(grid_steps(b));
    const float S = scale_ == dorefa_scale::max ? m : 1.0f;
    weight_grid g;
    g.bits = b;
    g.out_channels = w.rank() >= 1 ? w.shape()[0] : 1;
    g.scale = {2.0f * S / nf};
    g.zero_point = -0.5f;
    g.codes.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      g.codes[static_cast<size_t>(i)] = static_cast<int8_t>(
          static_cast<int>(detail::dorefa_level(tw[static_cast<size_t>(i)], inv2m, nf)) -
          (1 << (b - 1)));
    return g;
  }

 private:
  // max |t_i| and its first index (1 for an all-zero tensor, so the grid
  // stays defined).
  static float max_abs(const float* t, int64_t n, int64_t* arg) {
    float m = 0.0f;
    *arg = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float a = std::fabs(t[i]);
      if (a > m) {
        m = a;
        *arg = i;
      }
    }
    return m > 0.0f ? m : 1.0f;
  }
  dorefa_scale scale_;
};

}  // namespace quant
}  // namespace mixq
