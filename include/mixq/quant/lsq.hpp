#pragma once
// LSQ: learned step size quantization (Esser et al., ICLR 2020), for weights
// (signed, per tensor or per output channel) and activations (unsigned).
//
//   v = x / s,   code = clamp(round(v), -Qn, Qp),   y = s * code
//   weights:     [-Qn, Qp] = the signed b-bit range (bits.hpp: full or symmetric)
//   activations: [0, 2^b - 1] (inputs of a conv or linear layer follow a ReLU)
//
// Gradients (straight-through estimator for round):
//   dy/dx = 1 where -Qn <= v <= Qp, else 0
//   dy/ds = round(v) - v where -Qn < v < Qp;  -Qn where v <= -Qn;  Qp where v >= Qp
// and the step's gradient is multiplied by the LSQ gradient scale
//   weights per tensor:   1 / sqrt(numel * Qp)
//   weights per channel:  1 / sqrt(numel_per_channel * Qp)
//   activations:          1 / sqrt(features_per_sample * Qp)
// Initialisation (first forward, from the data it sees; per output channel
// for per-channel weights), one of two rules (step_init):
//   lsq: s = 2 mean|x| / sqrt(Qp), the LSQ paper's rule;
//   mse: the step of least quantization error sum (x - q(x; s))^2, searched
//        over s = m k / (K Qp), k = 1..K (K = 128, m = max|x|: from almost
//        all clipped to none clipped), on at most 2^16 evenly strided
//        elements. LSQ's rule assumes a bell-shaped x and clips hard at 2
//        bits (Qp = 1: s = 2 mean|x|, most weights round to 0); the search
//        minimises the error on the data it sees, to its grid's
//        resolution (docs/quantization.md 3.1).
//
// Step band (weights, band > 0; off = 0). Where a batch norm follows, the
// loss hardly depends on a weight step at high bits (scaling a channel's
// weights and step together changes nothing, and the rounding error is
// noise), so SGD walks the step at random: per-channel 6- to 8-bit steps of
// a 30-epoch supernet crossed zero (a step <= 0 acts as min_step: every code
// clipped) or grew past every weight (every code 0), and such a channel's
// weights, still fed straight-through gradients, walked to +-900
// (docs/quantization.md 3.1, step band). With a band B, every forward at b
// bits uses
//   s_c <- clamp(s_c, m_c / (B_b Qp'), m_c / Qp'),  m_c = max |w| of channel c,
//   B_b = max(min(B, 2), B / 2^(b-2)),             Qp' = max(Qp, 1)
// (per tensor: c = the tensor): the largest weight never rounds below the
// top code, and the step never falls below 1/B_b of that. The band narrows
// as the width grows (B = 16: 16 at 2 bits, 8 at 3, 4 at 4, 2 from 5 on),
// as the least-error step does (it is 0.16-0.73 of the upper end at 2 bits,
// 0.73-1 from 5 bits on, for ResNet20's channels). A forward with
// gradients writes the clamped step back into the parameter (projected
// SGD), so it cannot drift outside; export and the AdaQAT probe use the
// same clamp, and a file written without a band loads without one.
//
// Bit changes. The learned step s belongs to the width b_s it was set at
// (buffer "step_bits"; 0 = not initialised yet). At b bits the quantizer uses
// s_b = s * (2^b_s - 1) / (2^b - 1), which keeps the clipping span
// (Qn + Qp) * s_b of the grid. set_bits() never touches s: a forward without
// gradients at another width (an AdaQAT probe, an evaluation) sees the range
// the step learned. A forward with gradients at b != b_s first moves the step
// to b (s <- s_b, b_s <- b; the forward is the same): trained through the
// factor instead, the step's effective learning rate would grow with the
// factor squared ((255/3)^2 = 7,225 from 8 to 2 bits), which threw AdaQAT
// fine-tunes with LSQ weights off as their bits fell (docs/quantization.md
// 12.2). At b = b_s nothing changes (fixed-bit QAT is plain LSQ); the
// optimizer's momentum of the step, if any, stays in the old width's units.
#include <algorithm>
#include <cmath>
#include <memory>

#include "mixq/autograd/tape.hpp"
#include "mixq/quant/quantizer.hpp"

namespace mixq {
namespace quant {

// How a step is initialised from the first data it sees (above).
enum class step_init { lsq, mse };

namespace detail {
// Step at bits b for a step learned at bits bs.
inline double step_ratio(int bs, int b) {
  return static_cast<double>(grid_steps(bs)) / static_cast<double>(grid_steps(b));
}
constexpr float min_step = 1e-8f;  // guard: a step driven to <= 0 acts as this

// The step s of least squared error for the codes [-qn, qp] on n values x
// (read with stride), over s = m k / (K max(qp, 1)), k = 1..K, m = max|x|.
// Ties keep the smaller step. 0 when every value is 0.
inline double mse_step(const float* x, int64_t n, int qn, int qp) {
  constexpr int K = 128;
  constexpr int64_t max_samples = int64_t{1} << 16;
  const int64_t stride = std::max<int64_t>(1, n / max_samples);
  double m = 0.0;
  for (int64_t i = 0; i < n; i += stride) m = std::max(m, std::fabs(static_cast<double>(x[i])));
  if (!(m > 0.0) || !std::isfinite(m)) return 0.0;
  const double top = static_cast<double>(std::max(qp, 1));
  double best_s = m / top, best_e = -1.0;
  for (int k = 1; k <= K; ++k) {
    const double s = m * k / (K * top), inv = 1.0 / s;
    double e = 0.0;
    for (int64_t i = 0; i < n; i += stride) {
      const double v = static_cast<double>(x[i]);
      const double c = std::min(std::max(std::nearbyint(v * inv), -static_cast<double>(qn)),
                                static_cast<double>(qp));
      e += (v - s * c) * (v - s * c);
    }
    if (best_e < 0.0 || e < best_e) {
      best_e = e;
      best_s = s;
    }
  }
  return best_s;
}

// ---------------------------------------------------------------- activations
struct lsq_act_saved {
  float s;       // step at the current bits (guarded)
  float dscale;  // gradient scale x step ratio: d(step param) = dscale * d(s)
  int qp;
  int probe_qp;   // 0 = no probe
  float probe_s;  // step at the probe bits
  double* est;
};

inline void lsq_act_backward(tape& t, const node& nd) {
  const lsq_act_saved sv = nd.extension_saved<lsq_act_saved>();
  const int32_t xi = nd.inputs[0], si = nd.inputs[1];
  const tensor_view xv = t.at(xi).value;
  const float* x = xv.data();
  const float* dy = t.grad_of(nd.output);
  const int64_t n = xv.numel();
  const float inv = 1.0f / sv.s, qp = static_cast<float>(sv.qp);
  const bool need_x = t.needs_grad(xi), need_s = t.needs_grad(si);
  bool acc_x = false;
  float* dx = need_x ? t.grad_for_write(xi, &acc_x) : nullptr;
  double ds = 0.0;
  ordered_sums<1>(n, &ds, [=](int64_t i0, int64_t i1, double* out) {
    if (dx) ste_pass(x + i0, dy + i0, dx + i0, i1 - i0, inv, 0.0f, qp, acc_x);
    out[0] = need_s ? lsq_step_sum(x + i0, dy + i0, i1 - i0, inv, 0.0f, qp) : 0.0;
  });
  if (need_s) {
    bool acc = false;
    float* g = t.grad_for_write(si, &acc);
    const float v = static_cast<float>(ds) * sv.dscale;
    g[0] = acc ? g[0] + v : v;
  }
  if (sv.est) {
    const float pinv = 1.0f / sv.probe_s, pqp = static_cast<float>(sv.probe_qp);
    add_sample_probe(t, dy, n, xv.shape()[0], sv.est, [=](int64_t i) {
      const float q0 = sv.s * std::min(std::max(round_code(x[i] * inv), 0.0f), qp);
      return sv.probe_s * std::min(std::max(round_code(x[i] * pinv), 0.0f), pqp) - q0;
    });
  }
}

// ---------------------------------------------------------------- weights
struct lsq_weight_saved {
  const float* s;        // [channels] steps at the current bits (arena)
  const float* probe_s;  // [channels] steps at the probe bits, or nullptr
  int64_t channels;
  float dscale;  // gradient scale x step ratio
  int qn, qp, probe_qn, probe_qp;
  int64_t batch;  // for the probe's second-order term
  double* est;
};

inline void lsq_weight_backward(tape& t, const node& nd) {
  const lsq_weight_saved sv = nd.extension_saved<lsq_weight_saved>();
  const int32_t wi = nd.inputs[0], si = nd.inputs[1];
  const tensor_view wv = t.at(wi).value;
  const float* w = wv.data();
  const float* dy = t.grad_of(nd.output);
  const int64_t n = wv.numel(), per = n / sv.channels;
  const float qn = static_cast<float>(sv.qn), qp = static_cast<float>(sv.qp);
  const bool need_w = t.needs_grad(wi), need_s = t.needs_grad(si);
  bool acc_w = false, acc_s = false;
  float* dw = need_w ? t.grad_for_write(wi, &acc_w) : nullptr;
  float* ds = need_s ? t.grad_for_write(si, &acc_s) : nullptr;
  for (int64_t c = 0; c < sv.channels; ++c) {
    const float s = sv.s[c], inv = 1.0f / s;
    const int64_t i0 = c * per, i1 = i0 + per;
    float part = 0.0f;
    for (int64_t i = i0; i < i1; ++i) {
      const float v = w[i] * inv;
      const float g = (v >= -qn && v <= qp) ? dy[i] : 0.0f;
      if (dw) dw[i] = acc_w ? dw[i] + g : g;
      const float d = v <= -qn ? -qn : (v >= qp ? qp : round_code(v) - v);
      part += dy[i] * d;
    }
    if (ds) {
      const float v = part * sv.dscale;
      if (sv.channels == 1)
        ds[0] = acc_s ? ds[0] + v : v;
      else
        ds[c] = acc_s ? ds[c] + v : v;
    }
  }
  if (sv.est) {
    const float pqn = static_cast<float>(sv.probe_qn), pqp = static_cast<float>(sv.probe_qp);
    add_element_probe(dy, n, sv.batch, sv.est, [=](int64_t i) {
      const int64_t c = i / per;
      const float q0 = sv.s[c] * std::min(std::max(round_code(w[i] * (1.0f / sv.s[c])), -qn), qp);
      const float q1 =
          sv.probe_s[c] * std::min(std::max(round_code(w[i] * (1.0f / sv.probe_s[c])), -pqn), pqp);
      return q1 - q0;
    });
  }
}
}  // namespace detail

// Unsigned LSQ activation quantizer. Parameter "step" (no weight decay unless
// asked), buffers "bits" and "step_bits".
class lsq_act : public act_quantizer {
 public:
  explicit lsq_act(int bits, bool step_decay = false, step_init rule = step_init::lsq)
      : act_quantizer(bits), step("step", shape{}, step_decay), step_bits_(shape{}), rule_(rule) {
    register_parameter("step", step);
    register_buffer("step_bits", step_bits_);
  }
  const char* family() const override { return "lsq"; }
  bool ready() const override { return step_bits_[0] > 0.0f; }

  // Sets the step for the current bits (skips the data initialisation).
  void set_step(float s) {
    MIXQ_CHECK(s > 0.0f && std::isfinite(s), prefix(), ": LSQ step ", s, ", expected > 0");
    step.value[0] = s;
    step_bits_[0] = static_cast<float>(bits());
  }
  // Forgets the step: the next forward initialises it from its data.
  void reset_range() override { step_bits_[0] = 0.0f; }
  // The step at bits b (after initialisation).
  float step_at(int b) const {
    const double s =
        static_cast<double>(step.value[0]) * detail::step_ratio(static_cast<int>(step_bits_[0]), b);
    return std::max(static_cast<float>(s), detail::min_step);
  }

  var apply(tape& t, var x) override {
    const int b = bits();
    if (!ready()) init_from(x.value(), b);
    if (t.grad_enabled() && static_cast<int>(step_bits_[0]) != b) rebase(b);
    const float s = step_at(b), inv = 1.0f / s, qp = static_cast<float>(act_max_code(b));
    const bool rg = x.requires_grad() || t.grad_enabled();
    var sp = t.param(step);
    var y = t.new_value(x.shape(), rg);
    const float* xd = x.value().data();
    float* yd = y.value().data();
    const int64_t n = x.value().numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i)
      yd[i] = s * std::min(std::max(round_code(xd[i] * inv), 0.0f), qp);
    if (t.grad_enabled()) {
      detail::lsq_act_saved sv{};
      sv.s = s;
      const int64_t feat = n / x.shape()[0];
      const double gscale = 1.0 / std::sqrt(static_cast<double>(feat) * act_max_code(b));
      sv.dscale =
          static_cast<float>(gscale * detail::step_ratio(static_cast<int>(step_bits_[0]), b));
      sv.qp = act_max_code(b);
      if (probe_) {
        sv.probe_qp = act_max_code(probe_);
        sv.probe_s = step_at(probe_);
        sv.est = estimate_sink();
      }
      t.record_extension(&detail::lsq_act_backward, {x, sp}, y, sv);
    }
    return y;
  }

  act_grid export_grid() const override {
    MIXQ_CHECK(ready(), prefix(), ": LSQ activation step not initialised (run a forward first)");
    return act_grid{bits(), step_at(bits()), 0};
  }

  parameter step;

 private:
  // The step moved to width b at the same clipping span (header comment).
  void rebase(int b) {
    step.value[0] = step_at(b);
    step_bits_[0] = static_cast<float>(b);
  }
  void init_from(const tensor_view& x, int b) {
    const float* d = x.data();
    double s = 0.0;
    if (rule_ == step_init::mse) {
      s = detail::mse_step(d, x.numel(), 0, act_max_code(b));
    } else {
      double sum = 0.0;
      for (int64_t i = 0; i < x.numel(); ++i) sum += std::fabs(static_cast<double>(d[i]));
      const double mean = x.numel() ? sum / static_cast<double>(x.numel()) : 0.0;
      s = 2.0 * mean / std::sqrt(static_cast<double>(act_max_code(b)));
    }
    if (!(s > 0.0) || !std::isfinite(s)) s = 1.0;
    step.value[0] = static_cast<float>(s);
    step_bits_[0] = static_cast<float>(b);
  }
  tensor step_bits_;
  step_init rule_;
};

// The step bands a model accepts: 0 (off) or B in [1, step_band_max]. One
// predicate for the quantizer, qat_config and the model file.
inline constexpr double step_band_max = 1e6;
inline bool step_band_valid(double band) {
  return band == 0.0 || (band >= 1.0 && band <= step_band_max);
}

// Signed LSQ weight quantizer, per tensor (one step) or per output channel
// (one step per slice of dimension 0). Parameter "step", buffers "bits" and
// "step_bits".
class lsq_weight : public weight_quantizer {
 public:
  lsq_weight(int bits, int64_t out_channels, bool per_channel,
             weight_range range = weight_range::full, bool step_decay = false,
             step_init rule = step_init::lsq)
      : weight_quantizer(bits),
        step("step", shape{per_channel ? out_channels : 1}, step_decay),
        step_bits_(shape{}),
        range_(range),
        out_channels_(out_channels),
        per_channel_(per_channel),
        rule_(rule) {
    MIXQ_CHECK(out_channels > 0, "lsq_weight: out_channels = ", out_channels);
    register_parameter("step", step);
    register_buffer("step_bits", step_bits_);
  }
  const char* family() const override { return "lsq"; }
  // The step band B (header comment); 0 = off.
  void set_band(double band) {
    MIXQ_CHECK(step_band_valid(band), prefix(), ": LSQ step band ", band,
               ", expected 0 (off) or in [1, ", step_band_max, "]");
    band_ = band;
  }
  double band() const { return band_; }
  bool per_channel() const { return per_channel_; }
  bool ready() const { return step_bits_[0] > 0.0f; }
  weight_range range() const { return range_; }

  // Sets the step of channel c (0 per tensor) for the current bits; the
  // other channels keep theirs (set every channel before the first forward).
  void set_step(int64_t c, float s) {
    MIXQ_CHECK(c >= 0 && c < step.numel(), prefix(), ": LSQ step index ", c, " of ", step.numel());
    MIXQ_CHECK(s > 0.0f && std::isfinite(s), prefix(), ": LSQ step ", s, ", expected > 0");
    step.value[c] = s;
    step_bits_[0] = static_cast<float>(bits());
  }
  // Forgets the steps: the next forward initialises them from the weights.
  void reset_range() override { step_bits_[0] = 0.0f; }
  float step_at(int64_t c, int b) const {
    const double s =
        static_cast<double>(step.value[c]) * detail::step_ratio(static_cast<int>(step_bits_[0]), b);
    return std::max(static_cast<float>(s), detail::min_step);
  }
  // The band's width B_b at b bits (header comment).
  static double band_at(double band, int b) {
    return std::max(std::min(band, 2.0), band / static_cast<double>(int64_t{1} << (b - 2)));
  }
  // max |w| over channel c's slice w[c * per, (c + 1) * per).
  static float channel_max(const float* w, int64_t c, int64_t per) {
    float m = 0.0f;
    for (int64_t i = c * per; i < (c + 1) * per; ++i) m = std::max(m, std::fabs(w[i]));
    return m;
  }
  // step_at(c, b) inside the band of a channel whose max |w| is m.
  float step_in_band(int64_t c, int b, float m) const {
    const float s = step_at(c, b);
    if (band_ <= 0.0 || !(m > 0.0f) || !std::isfinite(m)) return s;
    const double top = static_cast<double>(std::max(weight_codes(b, range_).qp, 1));
    const double hi = static_cast<double>(m) / top, lo = hi / band_at(band_, b);
    return static_cast<float>(std::min(std::max(static_cast<double>(s), lo), hi));
  }

  var apply(tape& t, var w) override {
    const shape ws = w.shape();  // a copy: t.param() below may move the tape's slots
    MIXQ_CHECK(ws.rank() >= 1 && ws[0] == out_channels_, prefix(), ": weight ", ws,
               " does not have ", out_channels_, " output channels");
    const int b = bits();
    if (!ready()) init_from(w.value(), b);
    if (t.grad_enabled() && static_cast<int>(step_bits_[0]) != b) rebase(b);
    const int64_t ch = step.numel(), n = w.value().numel(), per = n / ch;
    const signed_range r = weight_codes(b, range_);
    const float qn = static_cast<float>(r.qn), qp = static_cast<float>(r.qp);
    float* s = t.alloc(2 * ch);
    float* ps = s + ch;
    const float* wd = w.value().data();
    const bool probing = t.grad_enabled() && probe_ != 0;
    for (int64_t c = 0; c < ch; ++c) {
      const float m = band_ > 0.0 ? channel_max(wd, c, per) : 0.0f;
      s[c] = step_in_band(c, b, m);
      if (probing) ps[c] = step_in_band(c, probe_, m);
    }
    // projected SGD: the parameter itself stays in the band (step_bits == b here)
    if (t.grad_enabled() && band_ > 0.0)
      for (int64_t c = 0; c < ch; ++c) step.value[c] = s[c];
    var sp = t.param(step);
    var y = t.new_value(ws, true);
    float* yd = y.value().data();
    for (int64_t c = 0; c < ch; ++c) {
      const float sc = s[c], inv = 1.0f / sc;
      for (int64_t i = c * per; i < (c + 1) * per; ++i)
        yd[i] = sc * std::min(std::max(round_code(wd[i] * inv), -qn), qp);
    }
    if (t.grad_enabled()) {
      detail::lsq_weight_saved sv{};
      sv.s = s;
      sv.channels = ch;
      const double gscale = 1.0 / std::sqrt(static_cast<double>(per) * std::max(r.qp, 1));
      sv.dscale =
          static_cast<float>(gscale * detail::step_ratio(static_cast<int>(step_bits_[0]), b));
      sv.qn = r.qn;
      sv.qp = r.qp;
      if (probing) {
        const signed_range pr = weight_codes(probe_, range_);
        sv.probe_s = ps;
        sv.probe_qn = pr.qn;
        sv.probe_qp = pr.qp;
        sv.batch = probe_batch_;
        sv.est = estimate_sink();
      }
      t.record_extension(&detail::lsq_weight_backward, {w, sp}, y, sv);
    }
    return y;
  }

  weight_grid export_grid(const tensor& w) override {
    MIXQ_CHECK(w.rank() >= 1 && w.shape()[0] == out_channels_, prefix(), ": weight ", w.shape(),
               " does not have ", out_channels_, " output channels");
    const int b = bits();
    if (!ready()) init_from(w.view(), b);
    const int64_t ch = step.numel(), n = w.numel(), per = n / ch;
    const signed_range r = weight_codes(b, range_);
    weight_grid g;
    g.bits = b;
    g.out_channels = out_channels_;
    g.codes.resize(static_cast<size_t>(n));
    for (int64_t c = 0; c < ch; ++c) {
      const float m = band_ > 0.0 ? channel_max(w.data(), c, per) : 0.0f;
      const float sc = step_in_band(c, b, m), inv = 1.0f / sc;
      g.scale.push_back(sc);
      for (int64_t i = c * per; i < (c + 1) * per; ++i)
        g.codes[static_cast<size_t>(i)] = static_cast<int8_t>(std::min(
            std::max(round_code(w[i] * inv), -static_cast<float>(r.qn)), static_cast<float>(r.qp)));
    }
    return g;
  }

  parameter step;

 private:
  // Every channel's step moved to width b at the same clipping span.
  void rebase(int b) {
    for (int64_t c = 0; c < step.numel(); ++c) step.value[c] = step_at(c, b);
    step_bits_[0] = static_cast<float>(b);
  }
  void init_from(const tensor_view& w, int b) {
    const int64_t ch = step.numel(), n = w.numel(), per = n / ch;
    const signed_range r = weight_codes(b, range_);
    const double root = std::sqrt(static_cast<double>(std::max(r.qp, 1)));
    for (int64_t c = 0; c < ch; ++c) {
      double s = 0.0;
      if (rule_ == step_init::mse) {
        s = detail::mse_step(w.data() + c * per, per, r.qn, r.qp);
      } else {
        double sum = 0.0;
        for (int64_t i = c * per; i < (c + 1) * per; ++i)
          sum += std::fabs(static_cast<double>(w[i]));
        s = 2.0 * (sum / static_cast<double>(per)) / root;
      }
      if (!(s > 0.0) || !std::isfinite(s)) s = 1e-3;
      step.value[c] = static_cast<float>(s);
    }
    step_bits_[0] = static_cast<float>(b);
  }
  tensor step_bits_;
  weight_range range_;
  int64_t out_channels_;
  bool per_channel_;
  step_init rule_;
  double band_ = 0.0;
};

}  // namespace quant
}  // namespace mixq
