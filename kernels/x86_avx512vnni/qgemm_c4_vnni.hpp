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
//   (12x32: 24 accumulators; 16x16: 16), + NV weight registers + 1 broadcast.
//   Rows beyond M re-read the last valid row (never stored).
// Over-read: the last k-group of a tap reads up to 3 bytes past k_seg
//   (those bytes meet zero weights). No other over-read; residual and output
//   use masked loads/stores (no residual over-read either).
// Overflow: |acc| <= taps*k_seg * 255 * 128 <= 65536 * 32640 < 2^31
//   (max_k_total); bias is added in int32 (caller keeps |acc + bias| < 2^31).
// Epilogue: requant.hpp's rule in 8 x int64 lanes: vpmuldq, + rounding
//   constant + sign (srai 63), vpsravq, + zp, vpmaxsq/vpminsq clamp, vpmovqb.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../pack.hpp"
#include "../problem.hpp"
#include "../requant.hpp"

#define MIXQ_TARGET_AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define MIXQ_INLINE_AVX512VNNI __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

// GCC 12's intrinsic headers implement _mm512_undefined_* as a self-initialized
// variable, which -Wmaybe-uninitialized reports at every use; silence it here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace mixq {
namespace kernels {
namespace detail {
namespace avx512vnni {

/// Per 16-channel block epilogue constants (hoisted out of the row loop).
struct epi_consts {
  __m512i bias;
  __m512i qm_lo, qm_hi;    // int64 lanes
  __m512i sh_lo, sh_hi;    // int64 lanes
  __m512i rnd_lo, rnd_hi;  // 2^(sh-1)
  __m512i rq_lo, rq_hi;    // residual multipliers, int64 lanes
  __mmask16 mask;
};

MIXQ_INLINE_AVX512VNNI inline void make_consts(const epilogue& ep, std::int32_t n, std::int32_t cnt,
                                               epi_consts& c) noexcept {
  c.mask = static_cast<__mmask16>(cnt >= 16 ? 0xFFFFu : ((1u << cnt) - 1u));
  c.bias = ep.bias ? _mm512_maskz_loadu_epi32(c.mask, ep.bias + n) : _mm512_setzero_si512();
  if (ep.out_i32) return;
  const __m512i qm = _mm512_maskz_loadu_epi32(c.mask, ep.qm + n);
  const __m512i sh = _mm512_mask_loadu_epi32(_mm512_set1_epi32(31), c.mask, ep.rshift + n);
  c.qm_lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(qm));
  c.qm_hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(qm, 1));
  c.sh_lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(sh));
  c.sh_hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(sh, 1));
  const __m512i one = _mm512_set1_epi64(1);
  c.rnd_lo = _mm512_sllv_epi64(one, _mm512_sub_epi64(c.sh_lo, one));
  c.rnd_hi = _mm512_sllv_epi64(one, _mm512_sub_epi64(c.sh_hi, one));
  if (ep.res) {
    const __m512i rq = _mm512_maskz_loadu_epi32(c.mask, ep.res_qm + n);
    c.rq_lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(rq));
    c.rq_hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(rq, 1));
  } else {
    c.rq_lo = c.rq_hi = _mm512_setzero_si512();
  }
}

MIXQ_INLINE_AVX512VNNI inline __m512i requant8(__m512i v64, __m512i qm, __m512i rq, __m512i rc, __m512i rnd,
                                               __m512i sh, __m512i zp, __m512i lo, __m512i hi) noexcept {
  __m512i t = _mm512_mul_epi32(v64, qm);
  t = _mm512_add_epi64(t, _mm512_mul_epi32(rc, rq));
  t = _mm512_add_epi64(_mm512_add_epi64(t, rnd), _mm512_srai_epi64(t, 63));
  __m512i y = _mm512_add_epi64(_mm512_srav_epi64(t, sh), zp);
  return _mm512_min_epi64(_mm512_max_epi64(y, lo), hi);
}

/// Epilogue of one row's 16 channels n .. n+15 (masked by c.mask).
MIXQ_INLINE_AVX512VNNI inline void epi16(__m512i acc, const epilogue& ep, const epi_consts& c, std::int64_t m,
                                         std::int32_t n) noexcept {
  acc = _mm512_add_epi32(acc, c.bias);
  if (ep.out_i32) {
    _mm512_mask_storeu_epi32(ep.out_i32 + m * ep.ld_i32 + n, c.mask, acc);
    return;
  }
  __m512i rc_lo = _mm512_setzero_si512(), rc_hi = _mm512_setzero_si512();
  if (ep.res) {
    const __m128i r8 = _mm_maskz_loadu_epi8(c.mask, ep.res + ep.res_pix_off[m] + n);
    rc_lo = _mm512_cvtepu8_epi64(r8);
    rc_hi = _mm512_cvtepu8_epi64(_mm_srli_si128(r8, 8));
  }
  const __m512i zp = _mm512_set1_epi64(ep.zp_out), lo = _mm512_set1_epi64(ep.lo), hi = _mm512_set1_epi64(ep.hi);
  const __m512i y_lo = requant8(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(acc)), c.qm_lo, c.rq_lo, rc_lo,
                                c.rnd_lo, c.sh_lo, zp, lo, hi);
  const __m512i y_hi = requant8(_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(acc, 1)), c.qm_hi, c.rq_hi,
                                rc_hi, c.rnd_hi, c.sh_hi, zp, lo, hi);
  const __m128i b = _mm_unpacklo_epi64(_mm512_cvtepi64_epi8(y_lo), _mm512_cvtepi64_epi8(y_hi));
  _mm_mask_storeu_epi8(ep.out + ep.out_pix_off[m] + n, c.mask, b);
}

/// Rows [m0, m1) x channels [n0, n1) with an MR x (16*NV) register tile.
/// The kernel on c4 weights at `wbase` (taps, kg groups per tap).
template <int MR, int NV>
MIXQ_TARGET_AVX512VNNI void qgemm_range_w(const qgemm_problem& p, std::int32_t taps, std::int32_t kg,
                                          const std::int8_t* wbase, const epilogue& ep, std::int64_t m0,
                                          std::int64_t m1, std::int32_t n0, std::int32_t n1) noexcept {
  constexpr int NR = 16 * NV;
  MIXQ_KDASSERT(n0 % NR == 0);
  const std::int64_t block_bytes = std::int64_t(taps) * kg * NR * 4;
  for (std::int32_t nb0 = n0; nb0 < n1; nb0 += NR) {
    const std::int8_t* wb = wbase + (nb0 / NR) * block_bytes;
    epi_consts ec[NV]{};
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const std::int32_t cnt = n1 - (nb0 + 16 * v);
      if (cnt > 0) make_consts(ep, nb0 + 16 * v, cnt > 16 ? 16 : cnt, ec[v]);
    }
    for (std::int64_t m = m0; m < m1; m += MR) {
      const int mr = (m1 - m) < MR ? static_cast<int>(m1 - m) : MR;
      const std::uint8_t* rp[MR];
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) rp[r] = p.a + p.pix_off[m + (r < mr ? r : mr - 1)];
      __m512i acc[MR][NV];
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
      const std::int8_t* w = wb;
      for (std::int32_t t = 0; t < taps; ++t) {
        const std::int64_t toff = p.tap_off ? p.tap_off[t] : 0;
        const std::uint8_t* ap[MR];
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) ap[r] = rp[r] + toff;
        for (std::int32_t g = 0; g < kg; ++g) {
          __m512i wv[NV];
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) wv[v] = _mm512_load_si512(reinterpret_cast<const void*>(w + 64 * v));
#pragma GCC unroll 16
          for (int r = 0; r < MR; ++r) {
            std::int32_t a4;
            std::memcpy(&a4, ap[r] + 4 * g, 4);
            const __m512i av = _mm512_set1_epi32(a4);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, wv[v]);
          }
          w += NR * 4;
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        if (r >= mr) break;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          if (nb0 + 16 * v < n1) epi16(acc[r][v], ep, ec[v], m + r, nb0 + 16 * v);
      }
    }
  }
}

template <int MR, int NV>
MIXQ_TARGET_AVX512VNNI void qgemm_range(const qgemm_problem& p, const packed_weights& pw, const epilogue& ep,
                                        std::int64_t m0, std::int64_t m1, std::int32_t n0,
                                        std::int32_t n1) noexcept {
  MIXQ_KDASSERT(pw.nr == 16 * NV);
  qgemm_range_w<MR, NV>(p, pw.taps, pw.kg, reinterpret_cast<const std::int8_t*>(pw.data.data()), ep, m0, m1, n0,
                        n1);
}

}  // namespace avx512vnni
}  // namespace detail
}  // namespace kernels
}  // namespace mixq

#pragma GCC diagnostic pop
