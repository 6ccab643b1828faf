#pragma once
// NEON (no dotprod) qgemm family: qgemm_a<A>w<W>_4x16c4__neon, all
// (b_w, b_a) in 2..8; baseline aarch64 (armv8-a).
//
// Math: smull/smlal (vmull_s8, vmlal_s8, vmlal_high_s8) multiply s8 weights by
// a broadcast s8 activation into int16 lanes (one lane per channel) and chain
// L products per lane before widening into int32 with saddw (vaddw_s16):
//   L = floor(32767 / (amax * 2^(b_w-1))), amax = 2^b_a - 1 (b_a <= 7) or 128
// (b_a = 8, activations flipped to a - 128 with 128 * col_sum added back, as
// in the sdot family). W4A4: L = 273 products; W8A8: L = 1 (smull + saddw).
// The chain length is counted in k-groups of 4 (L / 4); when L < 4 every
// product is widened at once.
// Layouts: A: one byte per k broadcast (ld1r). W: packed c4 int8
//   [ceil(N/16)][taps][kg][16][4]; ld4 de-interleaves a group into 4
//   vectors of 16 channels (one per k).
// Taps: all packed taps, or the subset p.tap_idx (problem.hpp); the b_a = 8
//   correction then sums the used taps' weights (flip_correction.hpp).
// Tile 4 x 16: 16 int32x4 + 8 int16x8 accumulators + 4 weight vectors.
// Over-read: up to 3 bytes past k_seg (zero weights).
// Epilogue: epilogue_neon.hpp (4 channels per call; tails scalar).
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "mixq/kernels/pack.hpp"
#include "mixq/kernels/problem.hpp"
#include "mixq/kernels/requant.hpp"
#include "mixq/kernels/arm_neon/epilogue_neon.hpp"
#include "mixq/kernels/arm_neon/flip_correction.hpp"

namespace mixq {
namespace kernels {
namespace detail {
namespace neon {

/// Products an int16 lane may chain: L = floor(32767 / (amax * 2^(b_w-1))).
inline constexpr int smlal_chain(int bw, int ba) noexcept {
  return 32767 / ((ba == 8 ? 128 : (1 << ba) - 1) * (1 << (bw - 1)));
}
static_assert(smlal_chain(8, 8) == 1, "W8A8 chains one product");
static_assert(smlal_chain(4, 4) == 273, "W4A4");

template <int MR>
inline void qgemm_range(const qgemm_problem& p, const packed_weights& pw, const epilogue& ep,
                        std::int64_t m0, std::int64_t m1, std::int32_t n0,
                        std::int32_t n1) noexcept {
  constexpr int NR = 16;
  MIXQ_DASSERT(pw.nr == NR && n0 % NR == 0);
  const std::int32_t taps = pw.taps, kg = pw.kg, nt = used_taps(p, taps);
  const bool flip = pw.b_a == 8;
  const std::uint8_t flipb = flip ? 0x80 : 0;
  const std::int32_t chain_groups = smlal_chain(pw.b_w, pw.b_a) / 4;  // 0: widen every product
  const std::int64_t block_bytes = std::int64_t(taps) * kg * NR * 4;
  const std::int8_t* wbase = reinterpret_cast<const std::int8_t*>(pw.data.data());
  for (std::int32_t nb0 = n0; nb0 < n1; nb0 += NR) {
    const std::int8_t* wb = wbase + (nb0 / NR) * block_bytes;
    const std::int32_t cnt = (n1 - nb0) < NR ? (n1 - nb0) : NR;
    std::int32_t corr[NR] = {};
    if (flip) neon_epi::flip_correction(p, pw, wb, nb0, cnt, corr);
    neon_epi::epi_consts ec[4]{};
    for (int v = 0; v < 4; ++v)
      if (4 * v < cnt)
        neon_epi::make_consts(ep, nb0 + 4 * v, (cnt - 4 * v) < 4 ? (cnt - 4 * v) : 4, ec[v]);
    for (std::int64_t m = m0; m < m1; m += MR) {
      const int mr = (m1 - m) < MR ? static_cast<int>(m1 - m) : MR;
      const std::uint8_t* rp[MR];
      for (int r = 0; r < MR; ++r) rp[r] = p.a + p.pix_off[m + (r < mr ? r : mr - 1)];
      int32x4_t acc[MR][4];
      int16x8_t a16[MR][2];
      for (int r = 0; r < MR; ++r) {
        for (int v = 0; v < 4; ++v) acc[r][v] = vdupq_n_s32(0);
        a16[r][0] = a16[r][1] = vdupq_n_s16(0);
      }
      const std::int8_t* w = wb;
      std::int32_t left = chain_groups;
      for (std::int32_t t = 0; t < nt; ++t) {
        const std::int64_t toff = p.tap_off ? p.tap_off[t] : 0;
        w = wb + std::int64_t(packed_tap(p, t)) * kg * NR * 4;
        for (std::int32_t g = 0; g < kg; ++g) {
          const int8x16x4_t wq = vld4q_s8(w);  // wq.val[q] = channels 0..15 at k = 4g + q
          w += NR * 4;
          for (int r = 0; r < MR; ++r) {
            const std::uint8_t* ar = rp[r] + toff + 4 * g;
            for (int q = 0; q < 4; ++q) {
              const int8x16_t a = vdupq_n_s8(static_cast<std::int8_t>(ar[q] ^ flipb));
              if (chain_groups == 0) {
                const int16x8_t lo = vmull_s8(vget_low_s8(wq.val[q]), vget_low_s8(a));
                const int16x8_t hi = vmull_high_s8(wq.val[q], a);
                acc[r][0] = vaddw_s16(acc[r][0], vget_low_s16(lo));
                acc[r][1] = vaddw_high_s16(acc[r][1], lo);
                acc[r][2] = vaddw_s16(acc[r][2], vget_low_s16(hi));
                acc[r][3] = vaddw_high_s16(acc[r][3], hi);
              } else {
                a16[r][0] = vmlal_s8(a16[r][0], vget_low_s8(wq.val[q]), vget_low_s8(a));
                a16[r][1] = vmlal_high_s8(a16[r][1], wq.val[q], a);
              }
            }
          }
          if (chain_groups > 0 && --left == 0) {
            for (int r = 0; r < MR; ++r) {
              acc[r][0] = vaddw_s16(acc[r][0], vget_low_s16(a16[r][0]));
              acc[r][1] = vaddw_high_s16(acc[r][1], a16[r][0]);
              acc[r][2] = vaddw_s16(acc[r][2], vget_low_s16(a16[r][1]));
              acc[r][3] = vaddw_high_s16(acc[r][3], a16[r][1]);
              a16[r][0] = a16[r][1] = vdupq_n_s16(0);
            }
            left = chain_groups;
          }
        }
      }
      for (int r = 0; r < mr; ++r) {
        for (int v = 0; v < 4; ++v) {
          if (4 * v >= cnt) break;
          int32x4_t s = acc[r][v];
          if (v == 0) s = vaddw_s16(s, vget_low_s16(a16[r][0]));
          if (v == 1) s = vaddw_high_s16(s, a16[r][0]);
          if (v == 2) s = vaddw_s16(s, vget_low_s16(a16[r][1]));
          if (v == 3) s = vaddw_high_s16(s, a16[r][1]);
          neon_epi::epi4(vaddq_s32(s, vld1q_s32(corr + 4 * v)), ep, ec[v], m + r, nb0 + 4 * v);
        }
      }
    }
  }
}

}  // namespace neon
}  // namespace detail
}  // namespace kernels
}  // namespace mixq
