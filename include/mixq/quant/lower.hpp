#pragma once
// lower: from a quantizer's integer grid to what the integer kernels take.
//
// 1. Weight codes (lower_weights). The kernels multiply unsigned activation
//    codes a by signed b-bit weight codes c in [-2^(b-1), 2^(b-1) - 1] into an
//    int32 accumulator (kernels/qgemm.hpp). An LSQ grid (zero point 0) is
//    already that. A DoReFa grid has zero point -1/2: its levels are
//    (scale/2) * o with o = 2c + 1 odd, in [-(2^b - 1), 2^b - 1], which does
//    not fit b bits. Two exact lowerings, both with unit scale / 2:
//      odd_lowering::wide     codes o, run at b + 1 bits (b <= 7);
//                             acc = sum o * a
//      odd_lowering::act_sum  codes c at b bits plus the activation sum:
//                             acc = 2 * sum c * a + sum a
//    since sum o * a = sum (2c + 1) a = 2 sum c a + sum a. The act_sum form
//    keeps the width (and the kernels' speed at b bits) but needs sum a over
//    each output's receptive field (one more output channel of all-one
//    weights, or a per-pixel sum in the epilogue); the wide form needs
//    nothing new. lowered_weights::acc() computes the lowered accumulator.
//
// 2. Batch norm (fold_bn). Training computes, per output channel n,
//      y = gamma_n (z - mu_n) / sigma_n + beta_n,  sigma_n = sqrt(var_n + eps)
//    on z = the float convolution of the fake-quantized input and weight,
//    which is exactly s_a * s_w,n * acc_n (acc_n: the integer accumulator of
//    the codes; for DoReFa, the lowered accumulator with scale s_w,n / 2).
//    So y = A_n * acc_n + B_n with A_n = gamma_n s_a s_w,n / sigma_n and
//    B_n = beta_n - gamma_n mu_n / sigma_n, an affine function of the integer
//    accumulator; the next quantizer (scale s_out, zero point 0, max code Q)
//    returns clamp(round(y / s_out), 0, Q) = clamp(round(M_n (acc_n + bias_n)), 0, Q)
//      M_n = A_n / s_out,   bias_n = B_n / A_n  (accumulator units)
//    which is the kernels' requantization (kernels/requant.hpp) once M_n is a
//    fixed-point multiplier and bias_n an int32. The fold touches neither the
//    weight codes nor the accumulator: the trained codes are the deployed
//    codes, and only the final rounding can differ (docs/quantization.md).
//    A residual (codes r of scale s_r) joins the same rounding:
//      + r * s_r / s_out, i.e. res_qm = multiplier_at_shift(s_r / s_out, shift),
//    with the channel's shift taken from the larger of the two multipliers so
//    that res_qm fits an int32 (kernels/requant.hpp).
//    A negative M_n (gamma_n < 0) is not a valid kernel multiplier: the
//    channel's codes are negated (fold_bn reports it; negatable() says if
//    the codes allow it exactly).
#include <cmath>
#include <cstdint>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/quant/quantizer.hpp"

namespace mixq {
namespace quant {

enum class odd_lowering { wide, act_sum };

struct lowered_weights {
  int bits = 0;               // the width the kernel runs
  std::vector<int8_t> codes;  // same layout as the grid's
  std::vector<float> scale;   // value of one accumulator unit (per tensor or channel) / s_a
  int code_mult = 1;          // acc = code_mult * sum codes * a + act_sum_coeff * sum a
  int act_sum_coeff = 0;

  // The lowered accumulator of output channel `ch` for activation codes a
  // (k values, the receptive field in the weights' per-channel layout).
  int64_t acc(int64_t ch, const uint8_t* a, int64_t k) const {
    int64_t s = 0, sa = 0;
    const int8_t* w = codes.data() + ch * k;
    for (int64_t i = 0; i < k; ++i) {
      s += static_cast<int64_t>(w[i]) * a[i];
      sa += a[i];
    }
    return code_mult * s + act_sum_coeff * sa;
  }
};

inline lowered_weights lower_weights(const weight_grid& g, odd_lowering how = odd_lowering::wide) {
  lowered_weights out;
  out.codes = g.codes;
  out.scale = g.scale;
  out.bits = g.bits;
  if (g.zero_point == 0.0f) return out;
  MIXQ_CHECK(g.zero_point == -0.5f, "lower_weights: zero point ", g.zero_point,
             " (expected 0 or -1/2)");
  for (float& s : out.scale) s *= 0.5f;
  if (how == odd_lowering::act_sum) {
    out.code_mult = 2;
    out.act_sum_coeff = 1;
    return out;
  }
  MIXQ_CHECK(g.bits + 1 <= max_bits, "lower_weights: a ", g.bits, "-bit DoReFa grid needs ",
             g.bits + 1, " bits in the wide lowering; use odd_lowering::act_sum");
  out.bits = g.bits + 1;
  for (int8_t& c : out.codes) c = static_cast<int8_t>(2 * c + 1);
  return out;
}

// Whether negating output channel ch's codes stays in the b-bit range (a
// lowering with act_sum negates c as -c - 1, always in range).
inline bool negatable(const lowered_weights& w, int64_t ch, int64_t k) {
  if (w.act_sum_coeff != 0) return true;
  const int lo = -(1 << (w.bits - 1));
  for (int64_t i = 0; i < k; ++i)
    if (w.codes[static_cast<size_t>(ch * k + i)] == lo) return false;
  return true;
}

// Per-channel real requantization of conv -> batch norm -> next quantizer.
struct bn_fold {
  std::vector<double> multiplier;  // M_n (may be negative: gamma_n < 0)
  std::vector<double> bias;        // bias_n, in accumulator units (before rounding)
};

// s_a: input scale; w_scale: per-accumulator-unit weight scale (1 entry or
// one per channel: lowered_weights::scale); s_out: the next quantizer's scale.
inline bn_fold fold_bn(double s_a, const std::vector<float>& w_scale, const tensor& gamma,
                       const tensor& beta, const tensor& mean, const tensor& var, double eps,
                       double s_out) {
  const int64_t c = gamma.numel();
  MIXQ_CHECK(w_scale.size() == 1 || static_cast<int64_t>(w_scale.size()) == c,
             "fold_bn: ", w_scale.size(), " weight scales for ", c, " channels");
  MIXQ_CHECK(s_a > 0.0 && s_out > 0.0, "fold_bn: scales must be > 0 (input ", s_a, ", output ",
             s_out, ")");
  bn_fold f;
  for (int64_t n = 0; n < c; ++n) {
    const double sw = w_scale.size() == 1 ? w_scale[0] : w_scale[static_cast<size_t>(n)];
    const double sigma = std::sqrt(static_cast<double>(var[n]) + eps);
    const double a = static_cast<double>(gamma[n]) * s_a * sw / sigma;
    const double b = static_cast<double>(beta[n]) - static_cast<double>(gamma[n]) * mean[n] / sigma;
    f.multiplier.push_back(a / s_out);
    f.bias.push_back(a != 0.0 ? b / a : 0.0);
  }
  return f;
}

}  // namespace quant
}  // namespace mixq
