#pragma once
// AVX-512 VNNI qgemm family: qgemm_a<A>w<W>_<MR>x<NR>c4__avx512vnni, all
// (b_w, b_a) in 2..8 (codes are used as they are: u8 activations x s8 weights).
//
// Math: vpdpbusd adds, per int32 lane j, a0*w0 + a1*w1 + a2*w2 + a3*w3 (u8 x s8,
// 4 products, no intermediate saturation) to the lane. Lane j = output
// channel n0 + j; the four bytes are 4 consecutive k of one tap.
//
// Layouts:
//   A: row r of the tile reads the 4 bytes A[pix_off[m+r] + tap_off[t] + 4g ..+3]
//      and broadcasts them (vpbroadcastd) to all 16 lanes.
//   W: packed c4, int8 [ceil(N/NR)][taps][kg][NR][4] (pack.hpp); one k-group of
//      an NR block is NR*4 bytes = NR/16 zmm loads (64-byte aligned).
// Tile: MR rows x NR = 16*NV channels, MR*NV zmm int32 accumulators
//   (16x16 and 8x32: 16 accumulators), + NV weight registers + 1 broadcast.
//   With MR = 16 a row tail of <= 4 or <= 8 rows runs a 4- or 8-row tile;
//   other tails re-read the last valid row (never stored).
// Taps: all packed taps in order, or the subset p.tap_idx (problem.hpp);
//   tap t's weights start at t * kg * NR * 4 bytes inside the block.
// Over-read: the last k-group of a tap reads up to 3 bytes past k_seg
//   (those bytes meet zero weights). No other over-read; residual and output
//   use masked loads/stores (no residual over-read either).
// Overflow: |acc| <= taps*k_seg * 255 * 128 <= 65536 * 32640 < 2^31
//   (max_k_total); bias is added in int32 (caller keeps |acc + bias| < 2^31).
// Epilogue: epilogue_avx512.hpp (16 channels per call, tails masked).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "mixq/kernels/pack.hpp"
#include "mixq/kernels/problem.hpp"
#include "mixq/kernels/requant.hpp"
#include "mixq/kernels/x86_avx512vnni/epilogue_avx512.hpp"
#include "mixq/kernels/x86_target.hpp"

MIXQ_X86_DIAG_PUSH

namespace mixq {
namespace kernels {
namespace detail {
namespace avx512vnni {

/// acc += vpdpbusd(a, w). Inline asm with the accumulator as a read-write
/// operand: GCC 12 compiles the intrinsic inside the unrolled tile with a
/// register copy in and out of every accumulator (2 extra zmm moves per
/// vpdpbusd), which the asm form cannot have.
MIXQ_INLINE_AVX512VNNI inline void dpbusd(__m512i& acc, __m512i a, __m512i w) noexcept {
#if defined(__GNUC__)
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(w));
#else
  acc = _mm512_dpbusd_epi32(acc, a, w);
#endif
}

/// One MR x (16*NV) tile: rows m .. m+mr-1 (mr <= MR; rows past mr re-read
/// row mr-1 and are not stored), channels nb0 .. of the block at `wb`.
template <int MR, int NV>
MIXQ_INLINE_AVX512VNNI inline void tile_w(const qgemm_problem& p, std::int32_t nt,
                                          std::int64_t tap_bytes, std::int32_t kg,
                                          const std::int8_t* wb, const epi_consts* ec,
                                          const epilogue& ep, std::int64_t m, int mr,
                                          std::int32_t nb0, std::int32_t n1) noexcept {
  constexpr int NR = 16 * NV;
  const std::uint8_t* rp[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) rp[r] = p.a + p.pix_off[m + (r < mr ? r : mr - 1)];
  __m512i acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = ec[v].bias;  // the sums start from the bias
  for (std::int32_t t = 0; t < nt; ++t) {
    const std::int64_t toff = p.tap_off ? p.tap_off[t] : 0;
    const std::int8_t* w = wb + packed_tap(p, t) * tap_bytes;
    const std::uint8_t* ap[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) ap[r] = rp[r] + toff;
    for (std::int32_t g = 0; g < kg; ++g) {
      __m512i wv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        wv[v] = _mm512_load_si512(reinterpret_cast<const void*>(w + 64 * v));
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        std::int32_t a4;
        std::memcpy(&a4, ap[r] + 4 * g, 4);
        const __m512i av = _mm512_set1_epi32(a4);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) dpbusd(acc[r][v], av, wv[v]);
      }
      w += NR * 4;
    }
  }
#define MIXQ_VNNI_EPI(RAW, RES)                                                 \
  _Pragma("GCC unroll 16") for (int r = 0; r < MR; ++r) {                       \
    if (r >= mr) break;                                                         \
    _Pragma("GCC unroll 4") for (int v = 0; v < NV; ++v) if (nb0 + 16 * v < n1) \
        epi16<RAW, RES, true>(acc[r][v], ep, ec[v], m + r, nb0 + 16 * v);       \
  }
  if (ep.out_i32) {
    MIXQ_VNNI_EPI(true, false)
  } else if (ep.res) {
    MIXQ_VNNI_EPI(false, true)
  } else {
    MIXQ_VNNI_EPI(false, false)
  }
#undef MIXQ_VNNI_EPI
}

/// The kernel on c4 weights at `wbase` (packed with `taps` taps of kg groups;
/// p.tap_idx may select a subset). For MR = 16, a row tail of at most 4 (8)
/// rows runs a 4- (8-) row tile instead of re-reading rows of a full one.
template <int MR, int NV>
MIXQ_TARGET_AVX512VNNI void qgemm_range_w(const qgemm_problem& p, std::int32_t taps,
                                          std::int32_t kg, const std::int8_t* wbase,
                                          const epilogue& ep, std::int64_t m0, std::int64_t m1,
                                          std::int32_t n0, std::int32_t n1) noexcept {
  constexpr int NR = 16 * NV;
  MIXQ_DASSERT(n0 % NR == 0);
  const std::int64_t tap_bytes = std::int64_t(kg) * NR * 4;
  const std::int64_t block_bytes = taps * tap_bytes;
  const std::int32_t nt = used_taps(p, taps);
  for (std::int32_t nb0 = n0; nb0 < n1; nb0 += NR) {
    const std::int8_t* wb = wbase + (nb0 / NR) * block_bytes;
    epi_consts ec[NV]{};
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const std::int32_t cnt = n1 - (nb0 + 16 * v);
      if (cnt > 0) make_consts(ep, nb0 + 16 * v, cnt > 16 ? 16 : cnt, ec[v]);
    }
    for (std::int64_t m = m0; m < m1; m += MR) {
      const std::int64_t left = m1 - m;
      const int mr = left < MR ? static_cast<int>(left) : MR;
      if constexpr (MR == 16 || MR == 8) {
        if (mr <= 4) {
          tile_w<4, NV>(p, nt, tap_bytes, kg, wb, ec, ep, m, mr, nb0, n1);
          continue;
        }
      }
      if constexpr (MR == 16) {
        if (mr <= 8) {
          tile_w<8, NV>(p, nt, tap_bytes, kg, wb, ec, ep, m, mr, nb0, n1);
          continue;
        }
      }
      tile_w<MR, NV>(p, nt, tap_bytes, kg, wb, ec, ep, m, mr, nb0, n1);
    }
  }
}

template <int MR, int NV>
MIXQ_TARGET_AVX512VNNI void qgemm_range(const qgemm_problem& p, const packed_weights& pw,
                                        const epilogue& ep, std::int64_t m0, std::int64_t m1,
                                        std::int32_t n0, std::int32_t n1) noexcept {
  MIXQ_DASSERT(pw.nr == 16 * NV);
  qgemm_range_w<MR, NV>(p, pw.taps, pw.kg, reinterpret_cast<const std::int8_t*>(pw.data.data()), ep,
                        m0, m1, n0, n1);
}

}  // namespace avx512vnni
}  // namespace detail
}  // namespace kernels
}  // namespace mixq

MIXQ_X86_DIAG_POP
