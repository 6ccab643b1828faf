#pragma once
// AVX-512 VBMI lookup-table qgemm family for low-bit activations:
// qgemm_a<A>w<W>_16x16c16__avx512vbmi_lut, b_a in {2, 3}, b_w <= 6.
//
// Math (weights in the table, activations as bit-plane indices): for one
// channel n, one tap t and a block of 16 k (4 groups b of 4 k),
//   T_n[16 b + i] = sum_{q < 4, bit q of i} W[n][t][16 kb + 4 b + q]     (64 int8)
// is one zmm (|entry| <= 4 * 2^(b_w-1) <= 128 fits int8 for b_w <= 6, the
// value -128 only for the all-minimum subset). With a = sum_j 2^j a_j,
//   sum_k a_k W[n][k] = sum_j 2^j sum_b T_n[16 b + nibble_j(b)],
// nibble_j(b) = bits j of the 4 activations of group b. vpermb looks up 64
// bytes at once: byte 4 s + b of the index vector is 16 b + nibble_j(b) of
// pixel s (16 pixel slots x 4 groups), and vpdpbusd(acc, 2^j, lookup)
// adds the 4 groups of each slot, scaled by the plane weight, into the int32
// slot: 256 MACs per plane per (vpermb, vpdpbusd) pair, vs 64 per vpdpbusd
// in the int8 family.
//
// Index preparation (per 16-pixel tile, tap and 16-k block, once for all N):
// 16-byte loads of each pixel's 16 codes, vpshufbitqmb (BITALG) with control
// bytes 8 c + j gathers bit j of 8 channels into 8 mask bits per qword,
// vpmultishiftqb spreads the 64 nibbles into bytes, and-0x0F, or-16 b. The
// prepared indices of up to 8 row tiles live in a stack buffer of
// lut_index_capacity zmm (16 KB), so each 16-channel table block is reused
// from L1 by all of them; problems whose taps * ceil(k_seg/16) * b_a exceed
// the buffer run the VNNI kernel on the c4 copy the packing also keeps.
//
// Layouts: tables [ceil(N/16)][taps][ceil(k_seg/16)][16 ch][64 B] (zero
//   entries for k >= k_seg and n >= N), followed by the c4 VNNI layout.
// Tile: 16 pixels x 16 channels; 16 int32 accumulators (lanes = pixels),
//   transposed to rows (lanes = channels) for epilogue_avx512.hpp.
// Over-read: up to 15 bytes past k_seg (bits there only meet zero tables).
// Overflow: |acc| <= taps*k_seg * 7 * 32 < 2^31 for taps*k_seg <= 65536.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "mixq/kernels/pack.hpp"
#include "mixq/kernels/problem.hpp"
#include "mixq/kernels/requant.hpp"
#include "mixq/kernels/x86_avx512vbmi/transpose16.hpp"
#include "mixq/kernels/x86_avx512vnni/epilogue_avx512.hpp"
#include "mixq/kernels/x86_target.hpp"

MIXQ_X86_DIAG_PUSH

namespace mixq {
namespace kernels {

namespace detail {
namespace avx512vbmi {

template <int P>
MIXQ_TARGET_AVX512VBMI void qgemm_range_lut(const qgemm_problem& p, const packed_weights& pw,
                                            const epilogue& ep, std::int64_t m0, std::int64_t m1,
                                            std::int32_t n0, std::int32_t n1) noexcept {
  constexpr int MR = 16;
  const std::int32_t taps = pw.taps, kbt = (pw.k_seg + 15) / 16;
  MIXQ_DASSERT(pw.nr == 16 && n0 % 16 == 0 && pw.b_a == P);
  const std::int8_t* tables = reinterpret_cast<const std::int8_t*>(pw.data.data());
  const std::int64_t block_bytes = std::int64_t(taps) * kbt * 16 * 64;
  alignas(64) __m512i idx[lut_index_capacity];
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i grp = _mm512_set1_epi32(0x30201000);  // 16 b in byte b of each slot
  // vpmultishiftqb control: byte i of qword q takes bits [32 (q & 1) + 4 i, +8)
  alignas(64) std::int8_t msh[64];
  for (int q = 0; q < 8; ++q)
    for (int i = 0; i < 8; ++i) msh[8 * q + i] = static_cast<std::int8_t>(32 * (q & 1) + 4 * i);
  const __m512i msh_ctrl = _mm512_load_si512(msh);
  __m512i bit_ctrl[P];
  for (int j = 0; j < P; ++j) {
    alignas(64) std::int8_t c[64];
    for (int i = 0; i < 64; ++i) c[i] = static_cast<std::int8_t>(8 * (i % 8) + j);
    bit_ctrl[j] = _mm512_load_si512(c);
  }
  // Row tiles are processed in groups of G: the index vectors of G tiles are
  // prepared first, then every 16-channel block of tables is used for all G
  // tiles while it is hot in L1 (the tables are 4x the int8 weights).
  const std::int32_t per_tile = taps * kbt * P;
  std::int32_t G = lut_index_capacity / per_tile;
  if (G > 8) G = 8;
  for (std::int64_t mg = m0; mg < m1; mg += std::int64_t(MR) * G) {
    const std::int32_t ntiles =
        static_cast<std::int32_t>((m1 - mg + MR - 1) / MR < G ? (m1 - mg + MR - 1) / MR : G);
    // 1) index vectors for every (tile, tap, 16-k block, plane)
    __m512i* ix = idx;
    for (std::int32_t gi = 0; gi < ntiles; ++gi) {
      const std::int64_t m = mg + std::int64_t(MR) * gi;
      const int mr = (m1 - m) < MR ? static_cast<int>(m1 - m) : MR;
      const std::uint8_t* rp[MR];
      for (int r = 0; r < MR; ++r) rp[r] = p.a + p.pix_off[m + (r < mr ? r : mr - 1)];
      for (std::int32_t t = 0; t < taps; ++t) {
        const std::int64_t toff = p.tap_off ? p.tap_off[t] : 0;
        for (std::int32_t kb = 0; kb < kbt; ++kb) {
          std::uint64_t mk[P][4];
          for (int q = 0; q < 4; ++q) {
            const std::int64_t o = toff + 16 * kb;
            __m512i v = _mm512_castsi128_si512(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(rp[4 * q] + o)));
            v = _mm512_inserti32x4(
                v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rp[4 * q + 1] + o)), 1);
            v = _mm512_inserti32x4(
                v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rp[4 * q + 2] + o)), 2);
            v = _mm512_inserti32x4(
                v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rp[4 * q + 3] + o)), 3);
#pragma GCC unroll 3
            for (int j = 0; j < P; ++j)
              mk[j][q] = _cvtmask64_u64(_mm512_bitshuffle_epi64_mask(v, bit_ctrl[j]));
          }
#pragma GCC unroll 3
          for (int j = 0; j < P; ++j) {
            const __m512i src = _mm512_set_epi64(
                static_cast<long long>(mk[j][3]), static_cast<long long>(mk[j][3]),
                static_cast<long long>(mk[j][2]), static_cast<long long>(mk[j][2]),
                static_cast<long long>(mk[j][1]), static_cast<long long>(mk[j][1]),
                static_cast<long long>(mk[j][0]), static_cast<long long>(mk[j][0]));
            const __m512i nib = _mm512_and_si512(_mm512_multishift_epi64_epi8(msh_ctrl, src), low4);
            *ix++ = _mm512_or_si512(nib, grp);
          }
        }
      }
    }
    // 2) lookups per 16-channel block, for each prepared tile
    for (std::int32_t nb0 = n0; nb0 < n1; nb0 += 16) {
      avx512vnni::epi_consts ec{};
      const std::int32_t cnt = (n1 - nb0) < 16 ? (n1 - nb0) : 16;
      avx512vnni::make_consts(ep, nb0, cnt, ec);
      for (std::int32_t gi = 0; gi < ntiles; ++gi) {
        const std::int64_t m = mg + std::int64_t(MR) * gi;
        const int mr = (m1 - m) < MR ? static_cast<int>(m1 - m) : MR;
        const std::int8_t* tb = tables + (nb0 / 16) * block_bytes;
        __m512i acc[16];
#pragma GCC unroll 16
        for (int c = 0; c < 16; ++c) acc[c] = _mm512_setzero_si512();
        const __m512i* ixp = idx + std::int64_t(gi) * per_tile;
        for (std::int32_t blk = 0; blk < taps * kbt; ++blk) {
          __m512i iv[P];
#pragma GCC unroll 3
          for (int j = 0; j < P; ++j) iv[j] = ixp[j];
          ixp += P;
#pragma GCC unroll 16
          for (int c = 0; c < 16; ++c) {
            const __m512i tab = _mm512_load_si512(reinterpret_cast<const void*>(tb + 64 * c));
#pragma GCC unroll 3
            for (int j = 0; j < P; ++j)
              acc[c] = _mm512_dpbusd_epi32(acc[c], _mm512_set1_epi8(static_cast<char>(1 << j)),
                                           _mm512_permutexvar_epi8(iv[j], tab));
          }
          tb += 16 * 64;
        }
        transpose16(acc);  // acc[s] = row (pixel) s, lanes = channels
        for (int r = 0; r < mr; ++r) avx512vnni::epi16(acc[r], ep, ec, m + r, nb0);
      }
    }
  }
}

/// Whether the index vectors of one 16-row tile of this pack fit the stack
/// buffer (lut_index_capacity); the dispatcher runs the VNNI kernel on the
/// pack's c4 copy otherwise (qgemm.hpp).
template <int P>
inline bool lut_index_fits(const packed_weights& pw) noexcept {
  return std::int64_t(pw.taps) * ((pw.k_seg + 15) / 16) * P <= lut_index_capacity;
}

}  // namespace avx512vbmi
}  // namespace detail
}  // namespace kernels
}  // namespace mixq

MIXQ_X86_DIAG_POP
