#pragma once
// NEON requantization epilogue for 4 output channels (one int32x4),
// bit-identical to requant.hpp:
//   t = acc * qm (+ res * res_qm)           smull / smlal  (int64x2 halves)
//     + offset                               saddw (int32 offsets widened)
//   t' = t - [t < 0]                         sshr #63 + add
//   y = rounding_shift_right(t', s)          srshl by -s: (t' + 2^(s-1)) >> s,
//                                            computed without overflow
//   => y = rhaz(t, s); then + zp, saturating narrow to int32 (keeps the
//   clamp exact), clamp to [lo, hi], narrow to bytes.
// Channel tails (< 4) use the scalar epilogue (the definition).
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "mixq/kernels/requant.hpp"

namespace mixq {
namespace kernels {
namespace detail {
namespace neon_epi {

struct epi_consts {
  int32x4_t bias, qm, rq, off, lo, hi;
  int64x2_t nsh_lo, nsh_hi, zp;
  std::int32_t cnt;
};

inline void make_consts(const epilogue& ep, std::int32_t n, std::int32_t cnt,
                        epi_consts& c) noexcept {
  c.cnt = cnt;
  if (cnt < 4) return;
  c.bias = ep.bias ? vld1q_s32(ep.bias + n) : vdupq_n_s32(0);
  if (ep.out_i32) return;
  c.qm = vld1q_s32(ep.qm + n);
  const int32x4_t sh = vld1q_s32(ep.rshift + n);
  c.nsh_lo = vnegq_s64(vmovl_s32(vget_low_s32(sh)));
  c.nsh_hi = vnegq_s64(vmovl_high_s32(sh));
  c.rq = ep.res ? vld1q_s32(ep.res_qm + n) : vdupq_n_s32(0);
  c.off = ep.offset ? vld1q_s32(ep.offset + n) : vdupq_n_s32(0);
  c.lo = vdupq_n_s32(ep.lo);
  c.hi = vdupq_n_s32(ep.hi);
  c.zp = vdupq_n_s64(ep.zp_out);
}

/// Epilogue of one row's channels n .. n + c.cnt - 1 (acc without bias).
inline void epi4(int32x4_t acc, const epilogue& ep, const epi_consts& c, std::int64_t m,
                 std::int32_t n) noexcept {
  if (c.cnt < 4) {
    std::int32_t tmp[4];
    vst1q_s32(tmp, acc);
    ref::epilogue_row(ep, m, n, c.cnt, tmp);
    return;
  }
  acc = vaddq_s32(acc, c.bias);
  if (ep.out_i32) {
    vst1q_s32(ep.out_i32 + m * ep.ld_i32 + n, acc);
    return;
  }
  int64x2_t t_lo = vmull_s32(vget_low_s32(acc), vget_low_s32(c.qm));
  int64x2_t t_hi = vmull_high_s32(acc, c.qm);
  if (ep.res) {
    std::uint32_t r4;
    std::memcpy(&r4, ep.res + ep.res_pix_off[m] + n, 4);
    const int32x4_t r32 = vreinterpretq_s32_u32(
        vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(r4))))));
    t_lo = vmlal_s32(t_lo, vget_low_s32(r32), vget_low_s32(c.rq));
    t_hi = vmlal_high_s32(t_hi, r32, c.rq);
  }
  if (ep.offset) {
    t_lo = vaddw_s32(t_lo, vget_low_s32(c.off));
    t_hi = vaddw_high_s32(t_hi, c.off);
  }
  t_lo = vaddq_s64(t_lo, vshrq_n_s64(t_lo, 63));
  t_hi = vaddq_s64(t_hi, vshrq_n_s64(t_hi, 63));
  const int64x2_t y_lo = vaddq_s64(vrshlq_s64(t_lo, c.nsh_lo), c.zp);
  const int64x2_t y_hi = vaddq_s64(vrshlq_s64(t_hi, c.nsh_hi), c.zp);
  int32x4_t y = vcombine_s32(vqmovn_s64(y_lo), vqmovn_s64(y_hi));
  y = vminq_s32(vmaxq_s32(y, c.lo), c.hi);
  const uint16x4_t u16 = vqmovun_s32(y);
  const uint8x8_t u8 = vqmovn_u16(vcombine_u16(u16, u16));
  const std::uint32_t out4 = vget_lane_u32(vreinterpret_u32_u8(u8), 0);
  std::memcpy(ep.out + ep.out_pix_off[m] + n, &out4, 4);
}

}  // namespace neon_epi
}  // namespace detail
}  // namespace kernels
}  // namespace mixq
