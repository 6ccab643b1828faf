#pragma once
// NEON dotprod qgemm family: qgemm_a<A>w<W>_8x8c4__neondot, all (b_w, b_a)
// in 2..8. Compiled only when the compiler targets dotprod
// (__ARM_FEATURE_DOTPROD, e.g. -march=armv8.2-a+dotprod); ARM selection is
// compile-time.
//
// Math: sdot (vdotq_laneq_s32) adds, per int32 lane j, the dot product of 4
// signed bytes of the weight vector (channel j, k 4g..4g+3) with the 4 bytes
// of lane i of the activation vector. Activations are s8: codes with
// b_a <= 7 are already valid s8 (0..127); for b_a = 8 the kernel uses
// a' = a ^ 0x80 = a - 128 and adds 128 * sum_k W[n][k] (packed_weights::
// col_sum, or the used taps' sum for a tap subset, flip_correction.hpp) to
// the accumulator before the epilogue:
//   sum a*w = sum (a - 128) * w + 128 * sum w.
// Taps: all packed taps, or the subset p.tap_idx (problem.hpp).
// Layouts: A: per row a 16-byte load holds 4 k-groups (lanes 0..3); a tap's
//   last < 4 groups use 4-byte loads into lane 0.
//   W: packed c4, int8 [ceil(N/8)][taps][kg][8][4]: two q-registers per group.
// Tile 8 x 8: 16 int32x4 accumulators + 8 activation registers + 2 weights.
// Over-read: up to 3 bytes past k_seg (zero weights, so also (a-128)*0 = 0).
// Overflow: |acc| <= 65536 * 128 * 128 = 2^30 (+ 128 * |col_sum| <= 2^31 - 2^24
//   after the correction for taps*k_seg <= 65536).
// Epilogue: arm_neon/epilogue_neon.hpp (4 channels per call; tails scalar).
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
namespace neon_dotprod {

template <int MR>
inline void qgemm_range(const qgemm_problem& p, const packed_weights& pw, const epilogue& ep,
                        std::int64_t m0, std::int64_t m1, std::int32_t n0,
                        std::int32_t n1) noexcept {
  constexpr int NR = 8;
  MIXQ_DASSERT(pw.nr == NR && n0 % NR == 0);
  const std::int32_t taps = pw.taps, kg = pw.kg, nt = used_taps(p, taps);
  const bool flip = pw.b_a == 8;
  const int8x16_t flipv = vdupq_n_s8(flip ? static_cast<std::int8_t>(-128) : 0);
  const std::int64_t block_bytes = std::int64_t(taps) * kg * NR * 4;
  const std::int8_t* wbase = reinterpret_cast<const std::int8_t*>(pw.data.data());
  for (std::int32_t nb0 = n0; nb0 < n1; nb0 += NR) {
    const std::int8_t* wb = wbase + (nb0 / NR) * block_bytes;
    const std::int32_t cnt = (n1 - nb0) < NR ? (n1 - nb0) : NR;
    std::int32_t corr[NR] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (flip) neon_epi::flip_correction(p, pw, wb, nb0, cnt, corr);
    neon_epi::epi_consts ec[2]{};
    neon_epi::make_consts(ep, nb0, cnt < 4 ? cnt : 4, ec[0]);
    if (cnt > 4) neon_epi::make_consts(ep, nb0 + 4, cnt - 4, ec[1]);
    for (std::int64_t m = m0; m < m1; m += MR) {
      const int mr = (m1 - m) < MR ? static_cast<int>(m1 - m) : MR;
      const std::uint8_t* rp[MR];
      for (int r = 0; r < MR; ++r) rp[r] = p.a + p.pix_off[m + (r < mr ? r : mr - 1)];
      int32x4_t acc[MR][2];
      for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = vdupq_n_s32(0);
      const std::int8_t* w = wb;
      for (std::int32_t t = 0; t < nt; ++t) {
        const std::int64_t toff = p.tap_off ? p.tap_off[t] : 0;
        w = wb + std::int64_t(packed_tap(p, t)) * kg * NR * 4;
        std::int32_t g = 0;
        for (; g + 4 <= kg; g += 4) {
          int8x16_t av[MR];
          for (int r = 0; r < MR; ++r)
            av[r] = veorq_s8(vreinterpretq_s8_u8(vld1q_u8(rp[r] + toff + 4 * g)), flipv);
#define MIXQ_SDOT_LANE(L)                                    \
  {                                                          \
    const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16); \
    for (int r = 0; r < MR; ++r) {                           \
      acc[r][0] = vdotq_laneq_s32(acc[r][0], w0, av[r], L);  \
      acc[r][1] = vdotq_laneq_s32(acc[r][1], w1, av[r], L);  \
    }                                                        \
    w += 32;                                                 \
  }
          MIXQ_SDOT_LANE(0)
          MIXQ_SDOT_LANE(1)
          MIXQ_SDOT_LANE(2)
          MIXQ_SDOT_LANE(3)
#undef MIXQ_SDOT_LANE
        }
        for (; g < kg; ++g) {
          const int8x16_t w0 = vld1q_s8(w), w1 = vld1q_s8(w + 16);
          for (int r = 0; r < MR; ++r) {
            std::uint32_t a4;
            std::memcpy(&a4, rp[r] + toff + 4 * g, 4);
            const int8x16_t a = veorq_s8(vreinterpretq_s8_u32(vdupq_n_u32(a4)), flipv);
            acc[r][0] = vdotq_laneq_s32(acc[r][0], w0, a, 0);
            acc[r][1] = vdotq_laneq_s32(acc[r][1], w1, a, 0);
          }
          w += 32;
        }
      }
      const int32x4_t c0 = vld1q_s32(corr), c1 = vld1q_s32(corr + 4);
      for (int r = 0; r < mr; ++r) {
        neon_epi::epi4(vaddq_s32(acc[r][0], c0), ep, ec[0], m + r, nb0);
        if (cnt > 4) neon_epi::epi4(vaddq_s32(acc[r][1], c1), ep, ec[1], m + r, nb0 + 4);
      }
    }
  }
}

}  // namespace neon_dotprod
}  // namespace detail
}  // namespace kernels
}  // namespace mixq
