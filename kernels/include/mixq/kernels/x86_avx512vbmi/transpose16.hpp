#pragma once
// 16 x 16 int32 transpose of 16 zmm, shared by the AVX-512 VBMI kernels (the
// LUT16 tile's pixel lanes -> channel lanes for the epilogue; the LUT6
// converter's 4-pixel groups -> pixel order). 32 unpacks + 32 lane shuffles.
#include <immintrin.h>

#include "mixq/kernels/x86_target.hpp"

MIXQ_X86_DIAG_PUSH

namespace mixq {
namespace kernels {
namespace detail {
namespace avx512vbmi {

/// 16x16 int32 transpose: in[c] lane s -> out[s] lane c.
MIXQ_INLINE_AVX512VBMI inline void transpose16(__m512i* r) noexcept {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // r[4q + w] now holds, in 128-bit lane L, rows 4L+{0..3} x columns of
  // "unpack order" w: lane L of r[4q + w] = (in[4q..4q+3] at row 4L + w').
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[4 + i], 0x88);
    t[4 + i] = _mm512_shuffle_i32x4(r[i], r[4 + i], 0xDD);
    t[8 + i] = _mm512_shuffle_i32x4(r[8 + i], r[12 + i], 0x88);
    t[12 + i] = _mm512_shuffle_i32x4(r[8 + i], r[12 + i], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_i32x4(t[i], t[8 + i], 0xDD);
    r[4 + i] = _mm512_shuffle_i32x4(t[4 + i], t[12 + i], 0x88);
    r[12 + i] = _mm512_shuffle_i32x4(t[4 + i], t[12 + i], 0xDD);
  }
}

}  // namespace avx512vbmi
}  // namespace detail
}  // namespace kernels
}  // namespace mixq

MIXQ_X86_DIAG_POP
