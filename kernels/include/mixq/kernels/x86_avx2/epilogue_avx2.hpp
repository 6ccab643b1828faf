#pragma once
// AVX2 requantization epilogue for 8 output channels (one ymm of int32),
// bit-identical to requant.hpp: int64 lanes (4 per ymm; even and odd
// channels separately, so no cross-lane widening), vpmuldq products,
// + the sign-extended offsets, + 2^(s-1) - [t < 0] (vpcmpgtq), arithmetic shift emulated as
// ((t >>> s) ^ 2^(63-s)) - 2^(63-s) (AVX2 has no vpsravq), clamp with
// vpcmpgtq + vpblendvb, then pack to bytes. Channel tails (< 8) go through the
// scalar epilogue (ref::epilogue_row), which is the definition.
#include <immintrin.h>

#include <cstdint>

#include "mixq/kernels/requant.hpp"
#include "mixq/kernels/x86_target.hpp"

namespace mixq {
namespace kernels {
namespace detail {
namespace avx2 {

struct epi_consts {
  __m256i bias;
  __m256i qm_e, qm_o, sh_e, sh_o, rnd_e, rnd_o, sgn_e, sgn_o, rq_e, rq_o, off_e,
      off_o;         // even / odd channels, int64 lanes
  __m256i lo, hi;    // clamp bounds minus zp_out, int64
  __m256i zp;        // int32 lanes
  std::int32_t cnt;  // valid channels (<= 8)
};

MIXQ_INLINE_AVX2 inline void make_consts(const epilogue& ep, std::int32_t n, std::int32_t cnt,
                                         epi_consts& c) noexcept {
  c.cnt = cnt;
  if (cnt < 8) return;  // tails use the scalar epilogue
  c.bias = ep.bias ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.bias + n))
                   : _mm256_setzero_si256();
  if (ep.out_i32) return;
  const __m256i qm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.qm + n));
  const __m256i sh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.rshift + n));
  const __m256i low32 = _mm256_set1_epi64x(0xFFFFFFFFll);
  c.qm_e = qm;
  c.qm_o = _mm256_srli_epi64(qm, 32);
  c.sh_e = _mm256_and_si256(sh, low32);
  c.sh_o = _mm256_srli_epi64(sh, 32);
  const __m256i one = _mm256_set1_epi64x(1), s63 = _mm256_set1_epi64x(63);
  c.rnd_e = _mm256_sllv_epi64(one, _mm256_sub_epi64(c.sh_e, one));
  c.rnd_o = _mm256_sllv_epi64(one, _mm256_sub_epi64(c.sh_o, one));
  c.sgn_e = _mm256_sllv_epi64(one, _mm256_sub_epi64(s63, c.sh_e));
  c.sgn_o = _mm256_sllv_epi64(one, _mm256_sub_epi64(s63, c.sh_o));
  if (ep.res) {
    const __m256i rq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.res_qm + n));
    c.rq_e = rq;
    c.rq_o = _mm256_srli_epi64(rq, 32);
  } else {
    c.rq_e = c.rq_o = _mm256_setzero_si256();
  }
  if (ep.offset) {  // sign-extend the even / odd int32 offsets to int64
    const __m256i off = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.offset + n));
    const __m256i sgn = _mm256_srai_epi32(off, 31);
    c.off_e = _mm256_blend_epi32(off, _mm256_slli_epi64(sgn, 32), 0xAA);
    c.off_o = _mm256_blend_epi32(_mm256_srli_epi64(off, 32), sgn, 0xAA);
  } else {
    c.off_e = c.off_o = _mm256_setzero_si256();
  }
  c.lo = _mm256_set1_epi64x(std::int64_t(ep.lo) - ep.zp_out);
  c.hi = _mm256_set1_epi64x(std::int64_t(ep.hi) - ep.zp_out);
  c.zp = _mm256_set1_epi32(ep.zp_out);
}

/// rhaz(t, sh) then clamp to [lo, hi], in 4 int64 lanes.
MIXQ_INLINE_AVX2 inline __m256i requant4(__m256i t, __m256i rnd, __m256i sh, __m256i sgn,
                                         __m256i lo, __m256i hi) noexcept {
  t = _mm256_add_epi64(_mm256_add_epi64(t, rnd), _mm256_cmpgt_epi64(_mm256_setzero_si256(), t));
  __m256i y = _mm256_sub_epi64(_mm256_xor_si256(_mm256_srlv_epi64(t, sh), sgn), sgn);
  y = _mm256_blendv_epi8(y, lo, _mm256_cmpgt_epi64(lo, y));
  return _mm256_blendv_epi8(y, hi, _mm256_cmpgt_epi64(y, hi));
}

/// Epilogue of one row's channels n .. n + c.cnt - 1; acc holds the sums without bias.
MIXQ_INLINE_AVX2 inline void epi8(__m256i acc, const epilogue& ep, const epi_consts& c,
                                  std::int64_t m, std::int32_t n) noexcept {
  if (c.cnt < 8) {
    alignas(32) std::int32_t tmp[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), acc);
    ref::epilogue_row(ep, m, n, c.cnt, tmp);
    return;
  }
  acc = _mm256_add_epi32(acc, c.bias);
  if (ep.out_i32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ep.out_i32 + m * ep.ld_i32 + n), acc);
    return;
  }
  // even channels in the low dword of each qword (vpmuldq reads those), odd via a shift
  __m256i t_e = _mm256_mul_epi32(acc, c.qm_e);
  __m256i t_o = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), c.qm_o);
  if (ep.res) {
    const __m256i r32 = _mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(ep.res + ep.res_pix_off[m] + n)));
    t_e = _mm256_add_epi64(t_e, _mm256_mul_epi32(r32, c.rq_e));
    t_o = _mm256_add_epi64(t_o, _mm256_mul_epi32(_mm256_srli_epi64(r32, 32), c.rq_o));
  }
  if (ep.offset) {
    t_e = _mm256_add_epi64(t_e, c.off_e);
    t_o = _mm256_add_epi64(t_o, c.off_o);
  }
  const __m256i y_e = requant4(t_e, c.rnd_e, c.sh_e, c.sgn_e, c.lo, c.hi);
  const __m256i y_o = requant4(t_o, c.rnd_o, c.sh_o, c.sgn_o, c.lo, c.hi);
  const __m256i y =
      _mm256_add_epi32(_mm256_blend_epi32(y_e, _mm256_slli_epi64(y_o, 32), 0xAA), c.zp);
  const __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(ep.out + ep.out_pix_off[m] + n),
                   _mm_packus_epi16(p16, p16));
}

}  // namespace avx2
}  // namespace detail
}  // namespace kernels
}  // namespace mixq
