#pragma once
// AVX2 requantization epilogue for 8 output channels (one ymm of int32),
// bit-identical to requant.hpp: int64 lanes (4 per ymm), vpmuldq products,
// + 2^(s-1) + [t < 0] (vpcmpgtq), arithmetic shift emulated as
// ((t >>> s) ^ 2^(63-s)) - 2^(63-s) (AVX2 has no vpsravq), clamp with
// vpcmpgtq + vpblendvb, then pack to bytes. Channel tails (< 8) go through the
// scalar epilogue (ref::epilogue_row), which is the definition.
#include <immintrin.h>

#include <cstdint>

#include "../requant.hpp"

#define MIXQ_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define MIXQ_INLINE_AVX2 __attribute__((always_inline, target("avx2,fma")))

namespace mixq {
namespace kernels {
namespace detail {
namespace avx2 {

struct epi_consts {
  __m256i bias;
  __m256i qm_lo, qm_hi, sh_lo, sh_hi, rnd_lo, rnd_hi, sgn_lo, sgn_hi, rq_lo, rq_hi;
  std::int32_t cnt;  // valid channels (<= 8)
};

MIXQ_INLINE_AVX2 inline void make_consts(const epilogue& ep, std::int32_t n, std::int32_t cnt,
                                         epi_consts& c) noexcept {
  c.cnt = cnt;
  if (cnt < 8) return;  // tails use the scalar epilogue
  c.bias = ep.bias ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.bias + n)) : _mm256_setzero_si256();
  if (ep.out_i32) return;
  const __m256i qm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.qm + n));
  const __m256i sh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.rshift + n));
  c.qm_lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(qm));
  c.qm_hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(qm, 1));
  c.sh_lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(sh));
  c.sh_hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(sh, 1));
  const __m256i one = _mm256_set1_epi64x(1), s63 = _mm256_set1_epi64x(63);
  c.rnd_lo = _mm256_sllv_epi64(one, _mm256_sub_epi64(c.sh_lo, one));
  c.rnd_hi = _mm256_sllv_epi64(one, _mm256_sub_epi64(c.sh_hi, one));
  c.sgn_lo = _mm256_sllv_epi64(one, _mm256_sub_epi64(s63, c.sh_lo));
  c.sgn_hi = _mm256_sllv_epi64(one, _mm256_sub_epi64(s63, c.sh_hi));
  if (ep.res) {
    const __m256i rq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ep.res_qm + n));
    c.rq_lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(rq));
    c.rq_hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(rq, 1));
  } else {
    c.rq_lo = c.rq_hi = _mm256_setzero_si256();
  }
}

MIXQ_INLINE_AVX2 inline __m256i requant4(__m256i v64, __m256i qm, __m256i rq, __m256i rc, __m256i rnd, __m256i sh,
                                         __m256i sgn, __m256i zp, __m256i lo, __m256i hi) noexcept {
  __m256i t = _mm256_add_epi64(_mm256_mul_epi32(v64, qm), _mm256_mul_epi32(rc, rq));
  t = _mm256_add_epi64(_mm256_add_epi64(t, rnd), _mm256_cmpgt_epi64(_mm256_setzero_si256(), t));
  __m256i y = _mm256_sub_epi64(_mm256_xor_si256(_mm256_srlv_epi64(t, sh), sgn), sgn);
  y = _mm256_add_epi64(y, zp);
  y = _mm256_blendv_epi8(y, lo, _mm256_cmpgt_epi64(lo, y));
  y = _mm256_blendv_epi8(y, hi, _mm256_cmpgt_epi64(y, hi));
  return y;
}

/// Epilogue of one row's channels n .. n + c.cnt - 1; acc holds the sums without bias.
MIXQ_INLINE_AVX2 inline void epi8(__m256i acc, const epilogue& ep, const epi_consts& c, std::int64_t m,
                                  std::int32_t n) noexcept {
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
  __m256i rc_lo = _mm256_setzero_si256(), rc_hi = _mm256_setzero_si256();
  if (ep.res) {
    const __m128i r8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(ep.res + ep.res_pix_off[m] + n));
    rc_lo = _mm256_cvtepu8_epi64(r8);
    rc_hi = _mm256_cvtepu8_epi64(_mm_srli_si128(r8, 4));
  }
  const __m256i zp = _mm256_set1_epi64x(ep.zp_out), lo = _mm256_set1_epi64x(ep.lo), hi = _mm256_set1_epi64x(ep.hi);
  const __m256i y_lo = requant4(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(acc)), c.qm_lo, c.rq_lo, rc_lo,
                                c.rnd_lo, c.sh_lo, c.sgn_lo, zp, lo, hi);
  const __m256i y_hi = requant4(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(acc, 1)), c.qm_hi, c.rq_hi, rc_hi,
                                c.rnd_hi, c.sh_hi, c.sgn_hi, zp, lo, hi);
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m128i l = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(y_lo, even));
  const __m128i h = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(y_hi, even));
  const __m128i p16 = _mm_packus_epi32(l, h);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(ep.out + ep.out_pix_off[m] + n), _mm_packus_epi16(p16, p16));
}

}  // namespace avx2
}  // namespace detail
}  // namespace kernels
}  // namespace mixq
