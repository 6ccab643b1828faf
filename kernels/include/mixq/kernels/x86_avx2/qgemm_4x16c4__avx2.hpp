#pragma once
// AVX2 maddubs family with int32 accumulation:
// qgemm_a<A>w<W>_4x16c4__avx2, exact for every pair with T(b_w, b_a) >= 1,
// i.e. all pairs except W8A8 (one operand has <= 7 bits).
//
// Math: vpmaddubsw(a, w) gives per int16 lane a0*w0 + a1*w1 (u8 x s8,
// saturating). |a0*w0 + a1*w1| <= 2 * (2^b_a - 1) * 2^(b_w-1) <= 32640 when
// (b_w, b_a) != (8, 8), so it never saturates. vpmaddwd(., 1) then adds the
// two int16 of each dword (the 4 k of one channel) into int32, vpaddd
// accumulates. 32 MAC per (maddubs, maddwd, paddd) triple.
//
// Layouts: A as in the VNNI family (4 bytes broadcast per row and k-group);
// W packed c4 int8 [ceil(N/16)][taps][kg][16][4]: two ymm per k-group.
// Tile 4 x 16: 8 int32 accumulators + 2 weights + broadcast + ones.
// Over-read: up to 3 bytes past k_seg in the last group of a tap (zero weights).
// Overflow: int32 as for VNNI (|acc| < 2^31 for taps*k_seg <= 65536).
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
MIXQ_TARGET_AVX2 void qgemm_range(const qgemm_problem& p, const packed_weights& pw,
                                  const epilogue& ep, std::int64_t m0, std::int64_t m1,
                                  std::int32_t n0, std::int32_t n1) noexcept {
  constexpr int NR = 8 * NV;
  MIXQ_DASSERT(pw.nr == NR && n0 % NR == 0);
  MIXQ_DASSERT(acc16_widen_every(pw.b_w, pw.b_a) >= 1);
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
      __m256i acc[MR][NV];
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_si256();
      const std::int8_t* w = wb;
      for (std::int32_t t = 0; t < nt; ++t) {
        const std::int64_t toff = p.tap_off ? p.tap_off[t] : 0;
        w = wb + std::int64_t(packed_tap(p, t)) * kg * NR * 4;
        const std::uint8_t* ap[MR];
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) ap[r] = rp[r] + toff;
        for (std::int32_t g = 0; g < kg; ++g) {
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
              acc[r][v] = _mm256_add_epi32(
                  acc[r][v], _mm256_madd_epi16(_mm256_maddubs_epi16(av, wv[v]), ones));
          }
          w += NR * 4;
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        if (r >= mr) break;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          if (nb0 + 8 * v < n1) epi8(acc[r][v], ep, ec[v], m + r, nb0 + 8 * v);
      }
    }
  }
}

}  // namespace avx2
}  // namespace detail
}  // namespace kernels
}  // namespace mixq
