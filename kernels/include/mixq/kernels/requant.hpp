#pragma once
// Requantization epilogue: the ONE fixed-point rule used by every kernel.
//
//   acc'  = acc + bias[n]                                    (int32, must not wrap)
//   t     = (int64)acc' * qm[n]  [+ (int64)res_code * res_qm[n]]  + offset[n]
//   y     = zp_out + rhaz(t, rshift[n])
//   out   = clamp(y, lo, hi)  stored as uint8
//
// rhaz(t, s) = t / 2^s rounded to nearest, ties away from zero, for 1 <= s <= 62:
//   rhaz(t, s) = (t + 2^(s-1) - [t < 0]) >> s      (arithmetic shift)
// which is exactly round(t / 2^s) with halves moved away from zero (the same
// tie rule as gemmlowp's RoundingDivideByPOT and TFLite's single-rounding
// MultiplyByQuantizedMultiplier). See docs/kernels.md for why this rule.
//
// offset[n] is the sub-unit part of the bias, in units of 2^-rshift output
// steps: a real bias b folds exactly (to 2^-rshift of a step) as the integer
// bias[n] plus offset[n] = round((b - bias[n]) * qm[n]) (docs/kernels.md,
// "Requantization"). A null offset array means 0.
//
// Ranges (asserted by the pack/requant helpers, relied on by every SIMD path):
//   qm[n]     in [0, 2^31);  rshift[n] in [1, 62]. quantize_multiplier()
//   returns qm in [2^30, 2^31) (full precision); a smaller qm on a smaller
//   shift is valid too, and is how a channel with a residual keeps
//   rshift <= 31 so that res_qm (int32) can express a weight near 1.
//   |acc'| < 2^31, so |acc' * qm| < 2^62
//   res_code in [0, 255], res_qm any int32, so |res term| < 2^39
//   offset[n] in [-2^30, 2^30]
//   => |t| + 2^(s-1) < 2^62 + 2^39 + 2^30 + 2^61 < 2^63: no int64 overflow anywhere.
//   lo <= hi, both in [0, 255]; zp_out any int32 (the clamp is done in int64).
#include <cmath>
#include <cstdint>
#include <utility>

#include "mixq/kernels/common.hpp"

namespace mixq {
namespace kernels {

/// Right shift with round-half-away-from-zero, 1 <= s <= 62.
inline constexpr std::int64_t rhaz(std::int64_t t, int s) noexcept {
  return (t + (std::int64_t(1) << (s - 1)) - (t < 0 ? 1 : 0)) >> s;
}

/// A real multiplier m ~= qm * 2^-rshift.
struct quant_multiplier {
  std::int32_t qm = 0;       // in [2^30, 2^31), or 0 for m == 0 (or |m| < 2^-32)
  std::int32_t rshift = 31;  // in [1, 62]
};

/// Turn a real multiplier (0 <= m < 2^30) into (qm, rshift) with qm in
/// [2^30, 2^31). Multipliers below 2^-32 round to qm = 0 (their contribution
/// to any int32 accumulator is below half an output step). Returns qm = 0,
/// rshift = 31 for m <= 0 or a non-finite m (callers validate their scales).
inline quant_multiplier quantize_multiplier(double m) noexcept {
  quant_multiplier r;
  if (!(m > 0.0) || !std::isfinite(m) || m >= 1073741824.0) return r;
  int e = 0;
  double f = std::frexp(m, &e);                  // m = f * 2^e, f in [0.5, 1)
  long long q = std::llround(f * 2147483648.0);  // in [2^30, 2^31]
  if (q == (1LL << 31)) {
    q /= 2;
    ++e;
  }
  int s = 31 - e;        // m ~= q * 2^-s
  if (s > 62) return r;  // m < 2^-31: treated as zero
  if (s < 1) return r;   // m >= 2^30: rejected above
  r.qm = static_cast<std::int32_t>(q);
  r.rshift = s;
  return r;
}

/// A second multiplier expressed on an existing shift: round(m * 2^rshift) as
/// int32 (saturated to the int32 range). Used for res_qm, which must share the
/// channel's rshift so the residual joins the same rounding:
///   y = zp + rhaz(acc * qm + res * res_qm, rshift), res_qm = multiplier_at_shift(m_res, rshift).
/// Accuracy: |error| <= 2^-(rshift+1) absolute, so pick the channel's qm/rshift
/// from the larger of the two multipliers when they differ a lot.
inline std::int32_t multiplier_at_shift(double m, std::int32_t rshift) noexcept {
  if (!std::isfinite(m) || rshift < 1 || rshift > 62) return 0;
  const double q = std::nearbyint(std::ldexp(m, rshift));
  if (q >= 2147483647.0) return 2147483647;
  if (q <= -2147483648.0) return -2147483647 - 1;
  return static_cast<std::int32_t>(q);
}

/// The fused epilogue, shared by every kernel. Either raw mode (out_i32 set)
/// or requantized uint8 mode (out set). Row m of the output tile lives at
///   raw : out_i32[m * ld_i32 + n]           (acc + bias, int32)
///   u8  : out[out_pix_off[m] + n]
///   residual code (optional): res[res_pix_off[m] + n]
/// All per-channel arrays are indexed by the absolute output channel n.
struct epilogue {
  const std::int32_t* bias = nullptr;  ///< [N] or nullptr (= 0)

  // raw int32 output (tests, final linear layer); takes precedence over out.
  std::int32_t* out_i32 = nullptr;
  std::int64_t ld_i32 = 0;  ///< row stride of out_i32, in elements

  // requantized uint8 output
  const std::int32_t* qm = nullptr;      ///< [N] in [0, 2^31) (see the ranges above)
  const std::int32_t* rshift = nullptr;  ///< [N] in [1, 62]
  const std::int32_t* offset = nullptr;  ///< [N] in [-2^30, 2^30], or nullptr (= 0)
  std::int32_t zp_out = 0;
  std::int32_t lo = 0;    ///< clamp low (ReLU: 0)
  std::int32_t hi = 255;  ///< clamp high (2^b_out - 1)
  std::uint8_t* out = nullptr;
  const std::int64_t* out_pix_off = nullptr;  ///< [M] byte offsets of output rows

  // optional residual (added inside the same rounding)
  const std::uint8_t* res = nullptr;
  const std::int64_t* res_pix_off = nullptr;  ///< [M]
  const std::int32_t* res_qm = nullptr;       ///< [N]
};

/// Largest |offset[n]| of the requantization (keeps t inside int64).
constexpr std::int32_t max_requant_offset = std::int32_t(1) << 30;

/// The per-channel requantization parameters of one layer (conv, linear, the
/// reference conv), without outputs: bias, multipliers and shifts per output
/// channel, the output zero point and clamp, and the rounding offsets (last,
/// so that brace-initialised parameters without them keep their meaning).
struct requant_params {
  const std::int32_t* bias = nullptr;    ///< [N] or nullptr (= 0)
  const std::int32_t* qm = nullptr;      ///< [N] (u8 outputs)
  const std::int32_t* rshift = nullptr;  ///< [N] (u8 outputs)
  std::int32_t zp = 0, lo = 0, hi = 255;
  const std::int32_t* offset = nullptr;  ///< [N] or nullptr (= 0) (u8 outputs)
};

/// The kernel epilogue of rq (bias and requantization; the caller adds the
/// output pointers).
inline epilogue requant_epilogue(const requant_params& rq) noexcept {
  epilogue ep;
  ep.bias = rq.bias;
  ep.qm = rq.qm;
  ep.rshift = rq.rshift;
  ep.offset = rq.offset;
  ep.zp_out = rq.zp;
  ep.lo = rq.lo;
  ep.hi = rq.hi;
  return ep;
}

/// Scalar requantization of one value (the definition every SIMD path matches).
inline std::uint8_t requant_one(std::int32_t acc_plus_bias, std::int32_t qm, std::int32_t rshift,
                                std::int32_t zp_out, std::int32_t lo, std::int32_t hi,
                                std::int32_t res_code, std::int32_t res_qm,
                                std::int32_t offset) noexcept {
  std::int64_t t = std::int64_t(acc_plus_bias) * qm + std::int64_t(res_code) * res_qm + offset;
  std::int64_t y = std::int64_t(zp_out) + rhaz(t, rshift);
  if (y < lo) y = lo;
  if (y > hi) y = hi;
  return static_cast<std::uint8_t>(y);
}

namespace ref {

/// Scalar epilogue over one output row: acc[j] is channel n0 + j (bias NOT yet added).
inline void epilogue_row(const epilogue& ep, std::int64_t m, std::int32_t n0, std::int32_t cnt,
                         const std::int32_t* acc) noexcept {
  if (ep.out_i32) {
    std::int32_t* dst = ep.out_i32 + m * ep.ld_i32 + n0;
    for (std::int32_t j = 0; j < cnt; ++j) dst[j] = acc[j] + (ep.bias ? ep.bias[n0 + j] : 0);
    return;
  }
  std::uint8_t* dst = ep.out + ep.out_pix_off[m] + n0;
  const std::uint8_t* res = ep.res ? ep.res + ep.res_pix_off[m] + n0 : nullptr;
  for (std::int32_t j = 0; j < cnt; ++j) {
    const std::int32_t n = n0 + j;
    const std::int32_t v = acc[j] + (ep.bias ? ep.bias[n] : 0);
    dst[j] = requant_one(v, ep.qm[n], ep.rshift[n], ep.zp_out, ep.lo, ep.hi, res ? res[j] : 0,
                         res ? ep.res_qm[n] : 0, ep.offset ? ep.offset[n] : 0);
  }
}

}  // namespace ref
}  // namespace kernels
}  // namespace mixq
