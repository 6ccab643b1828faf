#pragma once
// AVX2 exact int16 family: qgemm_a<A>w<W>_4x16c4__avx2_i16, exact for every
// pair (used by dispatch for W8A8, where vpmaddubsw could saturate).
//
// Math: activations zero-extended to int16 (vpmovzxbw), weights stored
// sign-extended as int16; vpmaddwd gives a0*w0 + a1*w1 in int32 exactly
// (|.| <= 2 * 255 * 128), vpaddd accumulates. 16 MAC per vpmaddwd.
//
// Layouts: A: per row and k-group the 4 bytes a0..a3 are broadcast to every
//   dword (vpbroadcastd from memory, a load); "and 0x00FF" and "srl 8" then
//   give the int16 pairs (a0, a2) and (a1, a3) in each dword without any
//   shuffle-port work.
//   W: int16 [ceil(N/16)][taps][kg][2][16][2] (pack.hpp, pairs (k0,k2) | (k1,k3)).
// Tile 4 x 16: 8 int32 accumulators + 4 weight registers + 2 activation registers.
// Over-read: up to 3 bytes past k_seg (zero weights).
// Overflow: int32 as for VNNI.
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
MIXQ_TARGET_AVX2 void qgemm_range_i16(const qgemm_problem& p, const packed_weights& pw,
                                      const epilogue& ep, std::int64_t m0, std::int64_t m1,
                                      std::int32_t n0, std::int32_t n1) noexcept {
  constexpr int NR = 8 * NV;
  MIXQ_DASSERT(pw.nr == NR && n0 % NR == 0);
  const std::int32_t taps = pw.taps, kg = pw.kg, nt = used_taps(p, taps);
  const std::int64_t block_elems = std::int64_t(taps) * kg * NR * 4;
  const std::int16_t* wbase = reinterpret_cast<const std::int16_t*>(pw.data.data());
  const __m256i low_bytes = _mm256_set1_epi16(0x00FF);
  for (std::int32_t nb0 = n0; nb0 < n1; nb0 += NR) {
    const std::int16_t* wb = wbase + (nb0 / NR) * block_elems;
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
      const std::int16_t* w = wb;
      for (std::int32_t t = 0; t < nt; ++t) {
        const std::int64_t toff = p.tap_off ? p.tap_off[t] : 0;
        w = wb + std::int64_t(packed_tap(p, t)) * kg * NR * 4;
        const std::uint8_t* ap[MR];
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) ap[r] = rp[r] + toff;
        for (std::int32_t g = 0; g < kg; ++g) {
          __m256i w01[NV], w23[NV];
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) {
            w01[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16 * v));
            w23[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 2 * NR + 16 * v));
          }
#pragma GCC unroll 16
          for (int r = 0; r < MR; ++r) {
            std::int32_t a4;
            std::memcpy(&a4, ap[r] + 4 * g, 4);
            const __m256i x = _mm256_set1_epi32(a4);
            const __m256i lo = _mm256_and_si256(x, low_bytes);  // (a0, a2)
            const __m256i hi = _mm256_srli_epi16(x, 8);         // (a1, a3)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v)
              acc[r][v] = _mm256_add_epi32(
                  acc[r][v],
                  _mm256_add_epi32(_mm256_madd_epi16(lo, w01[v]), _mm256_madd_epi16(hi, w23[v])));
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
