#pragma once
// Bit-plane index activations for the 64-entry LUT kernels (b_a in {2, 3}):
// the format, its converters, the problem and output descriptions and the
// per-channel thresholds of the fused output. The bit-plane path (the LUT6
// family) lives in this folder: format.hpp, pack.hpp (weights and the
// choice of kernel), ref.hpp (the scalar twin), qgemm_bitplane.hpp (entry
// points), qconv_bitplane.hpp (the convolution driver); its AVX-512 kernel is
// x86_avx512vbmi/qgemm_64x4__avx512vbmi_lut6.hpp.
//
// ## Why a second activation format
// The LUT family looks up table entries with vpermb; its index bytes are made
// of activation bits. Rebuilding them from one-code-per-byte NHWC activations
// inside the consumer kernel (once per tile, tap and k block) costs about as
// many shuffle-port ops as the lookups themselves (docs/kernels_lut.md section 1).
// Here the PRODUCER writes the indices: its epilogue (or one conversion pass)
// emits this format, and the consumer kernel only loads ready index vectors.
//
// ## The format
// - cpb = channels per index byte = floor(6 / b_a): 3 for b_a = 2, 2 for
//   b_a = 3; G = ceil(C / cpb) groups of channels.
// - Index byte of (pixel, group g): bit (b_a*j + p) = bit p (plane p) of the
//   code of channel cpb*g + j, for j < cpb; channels >= C count as code 0;
//   bits 6 and 7 are 0. So one byte holds every plane of cpb channels and is
//   directly a 6-bit vpermb index into a 64-entry table of subset sums
//   (lookups per MAC = b_a / 6, the same as a one-plane-per-byte layout with
//   6 channels, but no per-plane scaling or merging is needed).
// - Layout: group-planar. Byte (pixel at offset o, group g) lives at
//   base[o + g * group_stride]; within one group plane, pixels are addressed
//   like a u8 image with ONE byte per pixel. For a zero-padded image of
//   Hp x Wp pixels: plane = [Hp][Wp], group_stride >= Hp*Wp, and a 3x3 conv
//   reads tap (dy, dx) at pix_off + dy*Wp + dx. Consecutive output pixels of
//   a row are consecutive bytes, so a 64-pixel index vector of one (tap,
//   group) is one load (or one masked load per image row it spans).
// - Padding: the halo holds index 0 (= all codes 0, the zero point).
// - Over-read: readers may load up to 63 bytes past the last addressed index
//   byte of the last group (allocate bitplane_overread_bytes = 64 there), and
//   masked loads may address (never touch) bytes before a row start.
#include <cstddef>
#include <cstdint>
#include <limits>

#include "mixq/kernels/common.hpp"
#include "mixq/kernels/requant.hpp"

namespace mixq {
namespace kernels {

/// Readable bytes callers allocate after the last addressed index byte.
constexpr std::size_t bitplane_overread_bytes = 64;

/// Channels per index byte for b_a-bit codes (0 if the format does not exist).
inline constexpr int bitplane_cpb(int b_a) noexcept { return (b_a >= 2 && b_a <= 3) ? 6 / b_a : 0; }

/// Groups (index bytes per pixel) for c channels of b_a-bit codes.
inline constexpr std::int32_t bitplane_groups(std::int32_t c, int b_a) noexcept {
  return (c + bitplane_cpb(b_a) - 1) / bitplane_cpb(b_a);
}

/// Index byte of cpb consecutive codes (codes[j] for j < cnt, the rest 0).
inline std::uint8_t bitplane_index_byte(const std::uint8_t* codes, int cnt, int b_a) noexcept {
  unsigned v = 0;
  for (int j = 0; j < cnt; ++j) v |= static_cast<unsigned>(codes[j]) << (b_a * j);
  return static_cast<std::uint8_t>(v);
}

/// Reference converter: npix pixels of u8 codes (pixel x at codes + x*pix_stride,
/// c channels, each < 2^b_a) -> index bytes dst[g*group_stride + x].
inline void bitplane_from_codes_ref(const std::uint8_t* codes, std::int64_t npix,
                                    std::int64_t pix_stride, std::int32_t c, int b_a,
                                    std::uint8_t* dst, std::int64_t group_stride) noexcept {
  const int cpb = bitplane_cpb(b_a);
  const std::int32_t g_n = bitplane_groups(c, b_a);
  for (std::int64_t x = 0; x < npix; ++x)
    for (std::int32_t g = 0; g < g_n; ++g) {
      const int cnt = (c - cpb * g) < cpb ? c - cpb * g : cpb;
      dst[g * group_stride + x] = bitplane_index_byte(codes + x * pix_stride + cpb * g, cnt, b_a);
    }
}

/// Inverse (tests, ref kernel): code of channel ch at pixel offset o.
inline std::uint8_t bitplane_code_at(const std::uint8_t* base, std::int64_t o,
                                     std::int64_t group_stride, std::int32_t ch, int b_a) noexcept {
  const int cpb = bitplane_cpb(b_a);
  const unsigned v = base[o + (ch / cpb) * group_stride];
  return static_cast<std::uint8_t>((v >> (b_a * (ch % cpb))) & ((1u << b_a) - 1u));
}

/// Activations of one LUT6 problem (implicit GEMM over index planes):
///   C[m][n] = sum_t sum_{c<k_seg} code(a, pix_off[m] + tap_off[t], channel c) * W[n][t][c]
struct bitplane_problem {
  std::int64_t m = 0;
  const std::uint8_t* a = nullptr;        ///< group-0 plane base
  std::int64_t group_stride = 0;          ///< bytes between group planes
  const std::int64_t* pix_off = nullptr;  ///< [m] offsets (one byte per pixel)
  const std::int64_t* tap_off = nullptr;  ///< [taps]; nullptr = all zero
  /// Row masks (planes without halo columns, conv_bitplane layout): when
  /// row_len > 0, rows m are output pixels in row-major order, pixel m at
  /// column x(m) = (x0 + m) % row_len, and the index byte of tap t counts as 0
  /// (the zero halo) wherever the input column stride * x(m) + tap_dx[t] lies
  /// outside [0, in_w). The byte itself is still read (it must be readable).
  std::int64_t row_len = 0, x0 = 0, in_w = 0;
  int stride = 1;
  const std::int8_t* tap_dx = nullptr;  ///< [taps] in {-1, 0, 1}
};

/// Whether tap t of problem row m reads the zero halo of a row-masked problem.
inline bool bitplane_masked(const bitplane_problem& p, std::int64_t m, std::int32_t t) noexcept {
  if (p.row_len <= 0 || !p.tap_dx) return false;
  const std::int64_t x = p.stride * ((p.x0 + m) % p.row_len) + p.tap_dx[t];
  return x < 0 || x >= p.in_w;
}

/// Optional fused output in the SAME format (the next layer's input): codes
/// (epilogue rule of requant.hpp, optional residual below) written as index bytes of
/// b_out-bit codes, byte (m, go) at base[pix_off[m] + go * group_stride]. The
/// epilogue compares acc + bias with per-channel thresholds (exactly the
/// requant rule, bitplane_thresholds()) instead of multiplying.
struct bitplane_output {
  std::uint8_t* base = nullptr;
  std::int64_t group_stride = 0;
  const std::int64_t* pix_off = nullptr;  ///< [m]
  int b_out = 2;
  /// [n][hi - lo] from bitplane_thresholds(); with a residual
  /// [n][2^res_bits][hi - lo] (one set per residual code)
  const std::int64_t* thresholds = nullptr;
  /// Optional residual inside the rounding (requant_one's res_code * res_qm,
  /// res_qm = epilogue::res_qm): codes of res_bits bits in the same planes
  /// format; output channel c adds residual channel c - res_ch_lo when that
  /// lies in [0, res_channels), else nothing.
  const std::uint8_t* res = nullptr;  ///< residual planes, group-0 base
  std::int64_t res_group_stride = 0;
  const std::int64_t* res_pix_off = nullptr;  ///< [m]
  int res_bits = 2;
  std::int32_t res_ch_lo = 0, res_channels = 0;
};

/// Residual code of output channel c at problem row m (0 without a residual).
inline std::int32_t bitplane_res_code(const bitplane_output& bo, std::int64_t m,
                                      std::int32_t c) noexcept {
  const std::int32_t rc = c - bo.res_ch_lo;
  if (!bo.res || rc < 0 || rc >= bo.res_channels) return 0;
  return bitplane_code_at(bo.res, bo.res_pix_off[m], bo.res_group_stride, rc, bo.res_bits);
}

/// Per-channel thresholds of the requant rule (qm >= 0 makes it monotone in
/// v = acc + bias): thr[n*(hi-lo) + j] = min { v in int32 : requant(v) >= lo+j+1 },
/// or 2^31 when no int32 v reaches it. Then requant(v) = lo + #{j : v >= thr_j}.
/// ep must have qm, rshift, zp_out, lo <= hi. res_bits > 0: one set per
/// residual code r in [0, 2^res_bits), thr[(n*2^res_bits + r)*(hi-lo) + j],
/// with ep.res_qm[n] (monotone in v for every fixed r).
inline void bitplane_thresholds(const epilogue& ep, std::int32_t n, std::int64_t* thr,
                                int res_bits = 0) noexcept {
  const std::int32_t levels = ep.hi - ep.lo;
  const std::int32_t nr = res_bits > 0 ? (1 << res_bits) : 1;
  for (std::int32_t c = 0; c < n; ++c)
    for (std::int32_t r = 0; r < nr; ++r)
      for (std::int32_t j = 0; j < levels; ++j) {
        const std::int32_t want = ep.lo + j + 1;
        const std::int32_t rqm = res_bits > 0 && ep.res_qm ? ep.res_qm[c] : 0;
        auto q = [&](std::int64_t v) {
          return requant_one(static_cast<std::int32_t>(v), ep.qm[c], ep.rshift[c], ep.zp_out, ep.lo,
                             ep.hi, r, rqm, ep.offset ? ep.offset[c] : 0);
        };
        std::int64_t* out = thr + (std::int64_t(c) * nr + r) * levels + j;
        std::int64_t lo = std::numeric_limits<std::int32_t>::min(),
                     hi = std::numeric_limits<std::int32_t>::max();
        if (q(hi) < want) {
          *out = std::int64_t(1) << 31;
          continue;
        }
        if (q(lo) >= want) {  // a large residual alone reaches the level
          *out = lo;
          continue;
        }
        while (lo < hi) {  // smallest v with q(v) >= want
          const std::int64_t mid = lo + (hi - lo) / 2;
          if (q(mid) >= want)
            hi = mid;
          else
            lo = mid + 1;
        }
        *out = lo;
      }
}

}  // namespace kernels
}  // namespace mixq
