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
//   With MR = 16 a row tail of <= 4 or <= 8 rows runs a 4- or 8-row tile;
//   other tails re-read the last valid row (never stored).
// Taps: all packed taps in order, or the subset p.tap_idx (problem.hpp);
//   tap t's weights start at t * kg * NR * 4 bytes inside the block.
// Over-read: the last k-group of a tap reads up to 3 bytes past k_seg
//   (those bytes meet zero weights). No other over-read; residual and output
//   use masked loads/stores (no residual over-read either).
// Overflow: |acc| <= taps*k_seg * 255 * 128 <= 65536 * 32640 < 2^31
//   (max_k_total); bias is added in int32 (caller keeps |acc + bias| < 2^31).
// Epilogue: requant.hpp's rule in 8 x int64 lanes, even and odd channels
//   separately: vpmuldq, + rounding constant + sign (srai 63), vpsravq,
//   vpmaxsq/vpminsq clamp to [lo - zp, hi - zp], recombine, + zp, vpmovdb.
//   Fast path when every rshift of the block is >= 32: after the rounding
//   constant, the high dwords of the even/odd int64 sums blend into one zmm
//   (floor(t/2^s) = floor(hi32(t)/2^(s-32))), then vpsravd and an int32
//   clamp; the sign term is dropped when lo >= zp (results it can move are
//   <= 0 and clamp to lo - zp anyway). 13 vector ops per 16 outputs vs 20.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../pack.hpp"
#include "../problem.hpp"
#include "../requant.hpp"

#define MIXQ_TARGET_AVX512VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define MIXQ_INLINE_AVX512VNNI \
  __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))

// GCC 12's intrinsic headers implement _mm512_undefined_* as a self-initialized
// variable, which -Wmaybe-uninitialized reports at every use; silence it here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace mixq {
namespace kernels {
namespace detail {
namespace avx512vnni {

/// Per 16-channel block epilogue constants (hoisted out of the row loop).
/// The int64 work runs on the even and the odd int32 lanes separately
/// (vpmuldq reads the low dword of each qword), so no cross-lane widening is
/// needed; one vpmovdb narrows the recombined 16 lanes.
struct epi_consts {
  __m512i bias;
  __m512i qm_e, qm_o;    // multipliers of the even / odd channels (low dword of each qword)
  __m512i sh_e, sh_o;    // shifts, int64 lanes
  __m512i rnd_e, rnd_o;  // 2^(sh-1)
  __m512i rq_e, rq_o;    // residual multipliers (low dword of each qword)
  __m512i lo, hi;        // clamp bounds minus zp_out, int64
  __m512i zp;            // zp_out, int32 lanes
  __m512i sh32;          // rshift - 32, int32 lanes (fast path)
  __m512i lo32, hi32;    // clamp bounds minus zp_out, int32 lanes (fast path)
  bool fast = false;     // every rshift >= 32: shift the high dwords in int32
  bool sign = true;      // the sign term of rhaz can change the result (lo < zp)
  __mmask16 mask;
};

MIXQ_INLINE_AVX512VNNI inline void make_consts(const epilogue& ep, std::int32_t n, std::int32_t cnt,
                                               epi_consts& c) noexcept {
  c.mask = static_cast<__mmask16>(cnt >= 16 ? 0xFFFFu : ((1u << cnt) - 1u));
  c.bias = ep.bias ? _mm512_maskz_loadu_epi32(c.mask, ep.bias + n) : _mm512_setzero_si512();
  if (ep.out_i32) return;
  const __m512i qm = _mm512_maskz_loadu_epi32(c.mask, ep.qm + n);
  const __m512i sh = _mm512_mask_loadu_epi32(_mm512_set1_epi32(31), c.mask, ep.rshift + n);
  const __m512i low32 = _mm512_set1_epi64(0xFFFFFFFFll);
  c.qm_e = qm;
  c.qm_o = _mm512_srli_epi64(qm, 32);
  c.sh_e = _mm512_and_si512(sh, low32);
  c.sh_o = _mm512_srli_epi64(sh, 32);
  const __m512i one = _mm512_set1_epi64(1);
  c.rnd_e = _mm512_sllv_epi64(one, _mm512_sub_epi64(c.sh_e, one));
  c.rnd_o = _mm512_sllv_epi64(one, _mm512_sub_epi64(c.sh_o, one));
  if (ep.res) {
    const __m512i rq = _mm512_maskz_loadu_epi32(c.mask, ep.res_qm + n);
    c.rq_e = rq;
    c.rq_o = _mm512_srli_epi64(rq, 32);
  } else {
    c.rq_e = c.rq_o = _mm512_setzero_si512();
  }
  // clamp(zp + r, lo, hi) == zp + clamp(r, lo - zp, hi - zp), done in int64
  c.lo = _mm512_set1_epi64(std::int64_t(ep.lo) - ep.zp_out);
  c.hi = _mm512_set1_epi64(std::int64_t(ep.hi) - ep.zp_out);
  c.zp = _mm512_set1_epi32(ep.zp_out);
  // Fast path: with rshift >= 32 for all 16 channels, floor(t / 2^s) =
  // floor(hi32(t) / 2^(s-32)) (arithmetic shifts compose), where hi32(t) is
  // the high dword of the int64 t; the high dwords of the even and odd
  // products blend into one zmm and the rest runs on 16 int32 lanes.
  const __m512i s_all = _mm512_mask_loadu_epi32(_mm512_set1_epi32(32), c.mask, ep.rshift + n);
  c.fast = _mm512_cmplt_epi32_mask(s_all, _mm512_set1_epi32(32)) == 0;
  c.sh32 = _mm512_sub_epi32(s_all, _mm512_set1_epi32(32));
  c.lo32 = _mm512_set1_epi32(ep.lo - ep.zp_out);
  c.hi32 = _mm512_set1_epi32(ep.hi - ep.zp_out);
  // The sign term (-1 for t < 0) only moves results <= 0; with lo >= zp those
  // all clamp to lo - zp anyway (the ReLU case), so it can be dropped.
  c.sign = std::int64_t(ep.lo) - ep.zp_out < 0;
}

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

MIXQ_INLINE_AVX512VNNI inline __m512i requant8(__m512i t, __m512i rnd, __m512i sh, __m512i lo,
                                               __m512i hi) noexcept {
  t = _mm512_add_epi64(_mm512_add_epi64(t, rnd), _mm512_srai_epi64(t, 63));
  return _mm512_min_epi64(_mm512_max_epi64(_mm512_srav_epi64(t, sh), lo), hi);
}

/// Epilogue of one row's 16 channels n .. n+15 (masked by c.mask). With
/// HasBias the accumulator already holds the bias (the kernel starts its sums
/// from it), otherwise it is added here.
template <bool Raw, bool Res, bool HasBias = false>
MIXQ_INLINE_AVX512VNNI inline void epi16(__m512i acc, const epilogue& ep, const epi_consts& c,
                                         std::int64_t m, std::int32_t n) noexcept {
  if (!HasBias) acc = _mm512_add_epi32(acc, c.bias);
  if (Raw) {
    _mm512_mask_storeu_epi32(ep.out_i32 + m * ep.ld_i32 + n, c.mask, acc);
    return;
  }
  __m512i t_e = _mm512_mul_epi32(acc, c.qm_e);
  __m512i t_o = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), c.qm_o);
  if (Res) {
    const __m512i r32 =
        _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(c.mask, ep.res + ep.res_pix_off[m] + n));
    t_e = _mm512_add_epi64(t_e, _mm512_mul_epi32(r32, c.rq_e));
    t_o = _mm512_add_epi64(t_o, _mm512_mul_epi32(_mm512_srli_epi64(r32, 32), c.rq_o));
  }
  __m512i y;
  if (c.fast) {
    __m512i u_e = _mm512_add_epi64(t_e, c.rnd_e), u_o = _mm512_add_epi64(t_o, c.rnd_o);
    if (c.sign) {
      u_e = _mm512_add_epi64(u_e, _mm512_srai_epi64(t_e, 63));
      u_o = _mm512_add_epi64(u_o, _mm512_srai_epi64(t_o, 63));
    }
    const __m512i hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(u_e, 32), u_o);
    y = _mm512_srav_epi32(hi, c.sh32);
    y = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(y, c.lo32), c.hi32), c.zp);
  } else {
    const __m512i y_e = requant8(t_e, c.rnd_e, c.sh_e, c.lo, c.hi);
    const __m512i y_o = requant8(t_o, c.rnd_o, c.sh_o, c.lo, c.hi);
    y = _mm512_add_epi32(_mm512_mask_blend_epi32(0xAAAA, y_e, _mm512_slli_epi64(y_o, 32)), c.zp);
  }
  _mm512_mask_cvtepi32_storeu_epi8(ep.out + ep.out_pix_off[m] + n, c.mask, y);
}

/// Runtime epilogue mode -> template instance.
MIXQ_INLINE_AVX512VNNI inline void epi16(__m512i acc, const epilogue& ep, const epi_consts& c,
                                         std::int64_t m, std::int32_t n) noexcept {
  if (ep.out_i32)
    epi16<true, false>(acc, ep, c, m, n);
  else if (ep.res)
    epi16<false, true>(acc, ep, c, m, n);
  else
    epi16<false, false>(acc, ep, c, m, n);
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

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
