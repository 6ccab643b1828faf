#pragma once
// AVX2 maddubs family with int16 accumulation:
// qgemm_a<A>w<W>_6x16c4__avx2_acc16, exact for every pair with T >= 1.
//
// Math: p = vpmaddubsw(a, w) = a0*w0 + a1*w1 per int16 lane (never saturates
// for (b_w, b_a) != (8, 8)), summed with vpaddw (wrapping int16) for T
// k-groups, then widened with vpmaddwd(acc16, 1) + vpaddd into int32 and
// reset. T = acc16_widen_every(b_w, b_a) = floor(32767 / (2 (2^b_a - 1) 2^(b_w-1)))
// bounds |sum of T results| <= T * 2 (2^b_a - 1) 2^(b_w-1) <= 32767, so the
// int16 sums are exact (docs/kernels.md section 4; W4A4: T = 136, so a
// ResNet20 K = 576 needs 144 groups -> one widening plus the final one;
// W2A2/W3A3 never widen before the end). 64 MAC per (maddubs, paddw) pair
// per ymm, vs 32 for the int32 family.
//
// Layouts: as the maddubs family (c4, NR = 16, two ymm per k-group).
// Tile 6 x 16: 12 int16 accumulators in registers, int32 sums in memory
// (touched only every T groups).
// Over-read: up to 3 bytes past k_seg (zero weights).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "mixq/kernels/pack.hpp"
#include "mixq/kernels/problem.hpp"
#include "mixq/kernels/x86_avx2/epilogue_avx2.hpp"
#include "mixq/kernels/x86_target.hpp"

namespace mixq {
namespace kernels {
namespace detail {
namespace avx2 {

template <int MR, int NV>
MIXQ_TARGET_AVX2 void qgemm_range_acc16(const qgemm_problem& p, const packed_weights& pw,
                                        const epilogue& ep, std::int64_t m0, std::int64_t m1,
                                        std::int32_t n0, std::int32_t n1) noexcept {
  constexpr int NR = 8 * NV;
  MIXQ_DASSERT(pw.nr == NR && n0 % NR == 0);
  const std::int32_t T = acc16_widen_every(pw.b_w, pw.b_a);
  MIXQ_DASSERT(T >= 1);
  // the bound the int16 accumulation relies on
  MIXQ_DASSERT(std::int64_t(T) * 2 * ((1 << pw.b_a) - 1) * (1 << (pw.b_w - 1)) <= 32767);
  const std::int32_t taps = pw.taps, kg = pw.kg, nt = used_taps(p, taps);
  const std::int64_t block_bytes = std::int64_t(taps) * kg * NR * 4;
  const std::int8_t* wbase = reinterpret_cast<const std::int8_t*>(pw.data.data());
  const __m256i ones = _mm256_set1_epi16(1);
  for (std::int32_t nb0 = n0; nb0 < n1; nb0 += NR) {
    const std::int8_t* wb = wbase + (nb0 / NR) * block_bytes;
    epi_consts ec[NV]{};
    for (int v = 0; v < NV; ++v) {
      const std::int32_t cnt = n1 - (nb0 + 8 * v);
      if (cnt > 0) make_consts(ep, nb0 + 8 * v, cnt > 8 ? 8 : cnt, ec[v]);
    }
    for (std::int64_t m = m0; m < m1; m += MR) {
      const int mr = (m1 - m) < MR ? static_cast<int>(m1 - m) : MR;
      const std::uint8_t* rp[MR];
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) rp[r] = p.a + p.pix_off[m + (r < mr ? r : mr - 1)];
      __m256i acc[MR][NV], acc32[MR][NV];
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = acc32[r][v] = _mm256_setzero_si256();
      const std::int8_t* w = wb;
      std::int32_t left = T;  // groups the int16 sums may still take
      for (std::int32_t t = 0; t < nt; ++t) {
        const std::int64_t toff = p.tap_off ? p.tap_off[t] : 0;
        w = wb + std::int64_t(packed_tap(p, t)) * kg * NR * 4;
        const std::uint8_t* ap[MR];
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) ap[r] = rp[r] + toff;
        std::int32_t g = 0;
        while (g < kg) {
          const std::int32_t len = (kg - g) < left ? (kg - g) : left;
          for (const std::int32_t ge = g + len; g < ge; ++g) {
            __m256i wv[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v)
              wv[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32 * v));
#pragma GCC unroll 16
            for (int r = 0; r < MR; ++r) {
              std::int32_t a4;
              std::memcpy(&a4, ap[r] + 4 * g, 4);
              const __m256i av = _mm256_set1_epi32(a4);
#pragma GCC unroll 4
              for (int v = 0; v < NV; ++v)
                acc[r][v] = _mm256_add_epi16(acc[r][v], _mm256_maddubs_epi16(av, wv[v]));
            }
            w += NR * 4;
          }
          left -= len;
          if (left == 0) {
#pragma GCC unroll 16
            for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
              for (int v = 0; v < NV; ++v) {
                acc32[r][v] = _mm256_add_epi32(acc32[r][v], _mm256_madd_epi16(acc[r][v], ones));
                acc[r][v] = _mm256_setzero_si256();
              }
            left = T;
          }
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        if (r >= mr) break;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          if (nb0 + 8 * v < n1)
            epi8(_mm256_add_epi32(acc32[r][v], _mm256_madd_epi16(acc[r][v], ones)), ep, ec[v],
                 m + r, nb0 + 8 * v);
      }
    }
  }
}

}  // namespace avx2
}  // namespace detail
}  // namespace kernels
}  // namespace mixq
