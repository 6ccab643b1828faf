#pragma once
// AVX-512 requantization epilogue for 16 output channels (one zmm of int32),
// bit-identical to requant.hpp; shared by the AVX-512 kernels (VNNI, LUT16).
//
// requant.hpp's rule in 8 x int64 lanes, even and odd channels separately:
// vpmuldq, + the offsets (sign-extended once per block), + rounding constant + sign (srai 63),
// vpsravq, vpmaxsq/vpminsq clamp to [lo - zp, hi - zp], recombine, + zp, vpmovdb. Fast path when
// every rshift of the block is >= 32: after the rounding constant, the high dwords of the even/odd
// int64 sums blend into one zmm (floor(t/2^s) = floor(hi32(t)/2^(s-32))), then vpsravd and an int32
// clamp; the sign term is dropped when lo >= zp (results it can move are <= 0 and clamp to lo - zp
// anyway). 13 vector ops per 16 outputs vs 20. Channel tails are masked
// (loads and stores), so there is no residual over-read either.
#include <immintrin.h>

#include <cstdint>

#include "mixq/kernels/requant.hpp"
#include "mixq/kernels/x86_target.hpp"

MIXQ_X86_DIAG_PUSH

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
  __m512i off_e, off_o;  // rounding offsets, int64 lanes
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
  if (ep.offset) {  // sign-extend the even / odd int32 offsets to int64
    const __m512i off = _mm512_maskz_loadu_epi32(c.mask, ep.offset + n);
    c.off_e = _mm512_srai_epi64(_mm512_slli_epi64(off, 32), 32);
    c.off_o = _mm512_srai_epi64(off, 32);
  } else {
    c.off_e = c.off_o = _mm512_setzero_si512();
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
  if (ep.offset) {
    t_e = _mm512_add_epi64(t_e, c.off_e);
    t_o = _mm512_add_epi64(t_o, c.off_o);
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

}  // namespace avx512vnni
}  // namespace detail
}  // namespace kernels
}  // namespace mixq

MIXQ_X86_DIAG_POP
