#pragma once
// Bit-plane index activations for the 64-entry LUT kernels (b_a in {2, 3}).
//
// ## Why a second activation format
// The LUT family looks up table entries with vpermb; its index bytes are made
// of activation bits. Rebuilding them from one-code-per-byte NHWC activations
// inside the consumer kernel (once per tile, tap and k block) costs about as
// many shuffle-port ops as the lookups themselves (docs/kernels.md section 10).
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
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"
#include "pack.hpp"
#include "requant.hpp"

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
                             ep.hi, r, rqm);
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

/// Weights packed as 64-entry subset-sum tables for the LUT6 kernels.
/// Table (n, t, g), entry i: T[i] = sum_{j<cpb} ((i >> b_a j) & (2^b_a - 1)) * W[n][t][cpb g + j],
/// stored as the unsigned byte T[i] - tmin(n, t, g), where tmin = (2^b_a - 1) * sum_j min(W_j, 0)
/// is that table's own smallest entry; the kernel adds corr[n] = sum_{t,g} tmin(n, t, g)
/// back. A table's entries then lie in [0, (2^b_a - 1) sum_j |W_j|], so every stored
/// byte is <= span = cpb (2^b_a - 1) 2^(b_w-1) (W2A2: 18, vs 27 for one common
/// offset): u8 sums of floor(255 / span) lookups are exact (W2A2: 14 lookups per
/// widening instead of 9). Formats exist for b_w <= 4 (bitplane_supports).
/// Lookup order (k steps): tap-major (t, g) over the G groups; or, with
/// packed remainders (rem = k_seg % cpb > 0, 2 <= taps <= 9, so 3x3 convs
/// with C % 3 != 0 for A2), (t, g) over the full groups only, followed by
/// ceil(taps * rem / cpb) steps that each hold cpb remainder codes of
/// different taps: remainder code q = t * rem + j (channel cpb*full + j of tap
/// t) sits in slot q % cpb of step q / cpb. The kernel builds those index
/// vectors from the taps' remainder-group vectors (shift, mask, OR), so C = 16
/// at A2 costs 9*5 + 3 = 48 lookups per output instead of 9*6 = 54.
/// Layout: [ceil(N/NB)][ksteps][NB][64] bytes, NB = bitplane_nb; zero weights
/// for n >= N and channels >= k_seg.
constexpr std::int32_t bitplane_nb = 4;
/// Index vectors (zmm) the LUT6 kernel prepares per 2-tile step (stack).
constexpr std::int32_t bitplane_index_capacity = 3200;
/// Output channels of one call range of the LUT6 kernel's fused bit-plane
/// epilogue (its per-channel u16 thresholds, <= 7 levels, live on the stack):
/// wider layers run in ranges of at most this many channels (a quarter of it
/// with a residual: one threshold set per residual code). 1536 measured no
/// faster on a 1024-channel GEMM (the index preparation is not what a second
/// range costs there) and 3% slower on the 16-channel stage (stack layout).
constexpr std::int32_t bitplane_stage_channels = 512;

struct bitplane_weights {
  std::int32_t n = 0, taps = 0, k_seg = 0, b_w = 0, b_a = 0;
  std::int32_t cpb = 0, groups = 0, ksteps = 0;  ///< ksteps: lookups per output
  std::int32_t full = 0, rem = 0;                ///< groups with cpb channels; channels left over
  bool packed_rem = false;                       ///< remainder codes of several taps share steps
  std::int32_t span = 0;           ///< largest stored entry: cpb (2^b_a - 1) 2^(b_w-1)
  std::vector<std::int32_t> corr;  ///< [n]: sum of the table offsets, C = sums + corr[n]
  std::int32_t widen_every = 0;    ///< u8 sums per lane before widening: floor(255 / span)
  std::int32_t flush_every =
      0;  ///< lookups per u16 chunk (multiple of widen_every, * span <= 65534)
  /// [ceil(N/4)][ksteps]: u8 lookups the kernel may sum starting at step k of
  /// block b before widening: the longest run whose tables' largest entries
  /// (max over the block's 4 channels) add up to <= 255, at most 255 and at
  /// least widen_every (the worst-case bound); trained weights rarely fill
  /// every table's span, so runs are longer than widen_every.
  std::vector<std::uint8_t> widen_len;
  std::vector<std::int8_t> codes;  ///< W [n][taps][k_seg] (ref twin)
  aligned_buffer tables;
  std::array<char, 64> name{};
};

/// Whether the LUT6 format and kernel are exact for (b_w, b_a).
inline constexpr bool bitplane_supports(int b_w, int b_a) noexcept {
  return b_a >= 2 && b_a <= 3 && b_w >= 2 && b_w <= 8 &&
         (6 / b_a) * ((1 << b_a) - 1) * ((1 << b_w) - 1) <= 255;
}
static_assert(bitplane_supports(2, 2) && bitplane_supports(4, 2) && bitplane_supports(4, 3),
              "W<=4, A<=3");
static_assert(!bitplane_supports(5, 2) && !bitplane_supports(2, 4),
              "W5 or A4 would overflow u8 entries");

/// Table bytes above which the LUT6 tables (64 B per 3 weights, 21x the int8
/// weights) stop being served from this machine's caches fast enough: a
/// 1024^3 GEMM (22 MB of tables) runs 1.06-1.30x W8A8, while the kernel
/// itself falls to 397 and 279 GOP/s (1 thread) at 50 and 89 MB (1536^3,
/// 2048^3), below the 433-441 of W8A8 VNNI on square GEMMs (docs/kernels_lut.md
/// section 10).
constexpr std::int64_t bitplane_table_budget = std::int64_t(24) << 20;

/// Where the LUT6 path measured faster than the W8A8 VNNI kernel on the dev
/// machine (docs/kernels_lut.md sections 7 and 10, qconv2d_bitplane vs
/// qconv2d): A2 with W2..W4 (W2A2 1.6-1.8x, W3A2 and W4A2 1.4-1.7x on the
/// ResNet20 3x3 convs at batch 128), at least two 64-pixel tiles (m >= 128
/// output pixels: a single tile reads every 64-byte table for 64 pixels only,
/// 0.9-1.05x at batch 1 on 8x8 outputs), a reduction of at least 16 (k =
/// taps * C_in; the 1x1 projections with k = 16 / 32 run 1.56 / 1.97x at
/// batch 128) and tables (n output channels x ceil(k / 3) x 64 B) within
/// bitplane_table_budget. The A3 pairs are exact but 0.8-1.2x, so a caller
/// that wants "lower bit-widths never slower" runs them through
/// qconv2d()/qgemm().
inline constexpr bool bitplane_preferred(int b_w, int b_a, std::int64_t m, std::int64_t k,
                                         std::int64_t n) noexcept {
  return b_a == 2 && b_w >= 2 && b_w <= 4 && m >= 128 && k >= 16 &&
         n * ((k + 2) / 3) * 64 <= bitplane_table_budget;
}
static_assert(bitplane_preferred(2, 2, 131072, 144, 16) &&
                  !bitplane_preferred(2, 3, 131072, 144, 16) &&
                  !bitplane_preferred(2, 2, 64, 576, 64) &&
                  !bitplane_preferred(2, 2, 8192, 8, 16) &&
                  bitplane_preferred(2, 2, 1024, 1024, 1024) &&
                  !bitplane_preferred(2, 2, 1536, 1536, 1536),
              "LUT6 for A2 layers with >= 2 tiles, k >= 16 and tables within the budget");

/// Pack W [n][taps][k_seg] (b_w-bit codes) for b_a-bit bit-plane activations.
/// Throws std::invalid_argument on unsupported pairs or bad codes.
inline bitplane_weights pack_bitplane_weights(const std::int8_t* w, std::int32_t n,
                                              std::int32_t taps, std::int32_t k_seg, int b_w,
                                              int b_a) {
  if (!bitplane_supports(b_w, b_a))
    throw std::invalid_argument("mixq::kernels::pack_bitplane_weights: (b_w, b_a) = (" +
                                std::to_string(b_w) + ", " + std::to_string(b_a) +
                                "), expected b_a in {2, 3} and b_w in 2..4");
  detail::pack_check(w != nullptr && n >= 1 && taps >= 1 && k_seg >= 1,
                     "n, taps, k_seg must be >= 1");
  detail::pack_check(std::int64_t(taps) * k_seg <= max_k_total,
                     "taps * k_seg exceeds max_k_total (65536)");
  const std::int64_t total = std::int64_t(n) * taps * k_seg;
  const int wmin = -(1 << (b_w - 1)), wmax = (1 << (b_w - 1)) - 1;
  for (std::int64_t i = 0; i < total; ++i)
    if (w[i] < wmin || w[i] > wmax)
      throw std::invalid_argument("mixq::kernels::pack_bitplane_weights: weight code " +
                                  std::to_string(int(w[i])) + " at index " + std::to_string(i) +
                                  ", expected a signed " + std::to_string(b_w) + "-bit code in [" +
                                  std::to_string(wmin) + ", " + std::to_string(wmax) + "]");
  bitplane_weights p;
  p.n = n;
  p.taps = taps;
  p.k_seg = k_seg;
  p.b_w = b_w;
  p.b_a = b_a;
  p.cpb = bitplane_cpb(b_a);
  p.groups = bitplane_groups(k_seg, b_a);
  p.full = k_seg / p.cpb;
  p.rem = k_seg % p.cpb;
  p.packed_rem = p.rem > 0 && taps >= 2 && taps <= 9 &&
                 2 * std::int64_t(taps) * p.groups <= bitplane_index_capacity;
  p.ksteps = p.packed_rem ? taps * p.full + (taps * p.rem + p.cpb - 1) / p.cpb : taps * p.groups;
  const int amax = (1 << b_a) - 1;
  p.span = p.cpb * amax * (-wmin);
  p.widen_every = 255 / p.span;
  p.flush_every = (65534 / p.span) / p.widen_every * p.widen_every;
  p.codes.assign(w, w + total);
  std::snprintf(p.name.data(), p.name.size(), "qgemm_a%dw%d_%dx%dc%d__avx512vbmi_lut6", b_a, b_w,
                64, bitplane_nb, p.cpb);
  const std::int32_t nb = (n + bitplane_nb - 1) / bitplane_nb;
  p.tables.reset(static_cast<std::size_t>(nb) * p.ksteps * bitplane_nb * 64);
  p.corr.assign(static_cast<std::size_t>(n), 0);
  std::uint8_t* d = p.tables.data();
  // step k -> (tap, channel) of each slot (-1: empty slot)
  std::vector<std::int32_t> slot_t(static_cast<std::size_t>(p.ksteps) * p.cpb, -1),
      slot_c(slot_t.size(), -1);
  {
    std::int32_t k = 0;
    const std::int32_t gsteps = p.packed_rem ? p.full : p.groups;
    for (std::int32_t t = 0; t < taps; ++t)
      for (std::int32_t g = 0; g < gsteps; ++g, ++k)
        for (int q = 0; q < p.cpb; ++q)
          if (p.cpb * g + q < k_seg) {
            slot_t[std::size_t(k) * p.cpb + q] = t;
            slot_c[std::size_t(k) * p.cpb + q] = p.cpb * g + q;
          }
    if (p.packed_rem)
      for (std::int32_t q = 0; q < taps * p.rem; ++q) {
        const std::size_t at = std::size_t(k + q / p.cpb) * p.cpb + std::size_t(q % p.cpb);
        slot_t[at] = q / p.rem;
        slot_c[at] = p.cpb * p.full + q % p.rem;
      }
  }
  std::vector<int> bspan(static_cast<std::size_t>(nb) * p.ksteps, 0);  // max entry per (b, k)
  for (std::int32_t b = 0; b < nb; ++b)
    for (std::int32_t k = 0; k < p.ksteps; ++k)
      for (std::int32_t j = 0; j < bitplane_nb; ++j) {
        const std::int32_t col = b * bitplane_nb + j;
        auto wt = [&](int q) {  // weight of slot q of this table (0 beyond n, empty slots)
          const std::size_t at = std::size_t(k) * p.cpb + std::size_t(q);
          return (col < n && slot_t[at] >= 0)
                     ? int(w[(std::int64_t(col) * taps + slot_t[at]) * k_seg + slot_c[at]])
                     : 0;
        };
        int tmin = 0;
        for (int q = 0; q < p.cpb; ++q) tmin += amax * (wt(q) < 0 ? wt(q) : 0);
        if (col < n) p.corr[static_cast<std::size_t>(col)] += tmin;
        int& bs = bspan[std::size_t(b) * p.ksteps + std::size_t(k)];
        for (int i = 0; i < 64; ++i) {
          int s = 0;
          for (int q = 0; q < p.cpb; ++q) s += ((i >> (b_a * q)) & amax) * wt(q);
          *d++ = static_cast<std::uint8_t>(s - tmin);  // in [0, span]
          if (s - tmin > bs) bs = s - tmin;
        }
      }
  p.widen_len.assign(bspan.size(), 0);
  for (std::int32_t b = 0; b < nb; ++b)
    for (std::int32_t k = 0; k < p.ksteps; ++k) {
      const int* sp = &bspan[std::size_t(b) * p.ksteps];
      int sum = 0, len = 0;
      while (k + len < p.ksteps && len < 255 && sum + sp[k + len] <= 255) sum += sp[k + len++];
      if (len < p.widen_every) len = p.widen_every;  // tail of K: any length is safe
      p.widen_len[std::size_t(b) * p.ksteps + std::size_t(k)] = static_cast<std::uint8_t>(len);
    }
  return p;
}

namespace ref {

/// Scalar twin of the LUT6 kernel: same operands (index planes), int64 sums,
/// the requant.hpp epilogue (raw, u8 NHWC without residual) and/or the
/// bit-plane output. Rows [m0, m1), channels [n0, n1) (n1 < 0: all; with a
/// bit-plane output n0 and n1 must be multiples of the output's codes per byte,
/// or n1 = n, so that every written index byte is complete).
inline void qgemm_bitplane_range(const bitplane_problem& p, const bitplane_weights& pw,
                                 const epilogue& ep, const bitplane_output* bo, std::int64_t m0,
                                 std::int64_t m1, std::int32_t n0 = 0,
                                 std::int32_t n1 = -1) noexcept {
  if (n1 < 0) n1 = pw.n;
  auto acc_of = [&](std::int64_t m, std::int32_t c) {
    std::int64_t s = 0;
    for (std::int32_t t = 0; t < pw.taps; ++t) {
      if (bitplane_masked(p, m, t)) continue;
      const std::int64_t o = p.pix_off[m] + (p.tap_off ? p.tap_off[t] : 0);
      for (std::int32_t k = 0; k < pw.k_seg; ++k)
        s += std::int64_t(bitplane_code_at(p.a, o, p.group_stride, k, pw.b_a)) *
             pw.codes[(std::int64_t(c) * pw.taps + t) * pw.k_seg + k];
    }
    return static_cast<std::int32_t>(s);
  };
  for (std::int64_t m = m0; m < m1; ++m) {
    if (ep.out_i32 || ep.out)
      for (std::int32_t c = n0; c < n1; ++c) {
        const std::int32_t a = acc_of(m, c);
        epilogue_row(ep, m, c, 1, &a);
      }
    if (!bo) continue;
    const int cpo = bitplane_cpb(bo->b_out);
    for (std::int32_t go = n0 / cpo; go < bitplane_groups(n1, bo->b_out); ++go) {
      std::uint8_t codes[3] = {0, 0, 0};
      const int cnt = (n1 - cpo * go) < cpo ? n1 - cpo * go : cpo;
      for (int j = 0; j < cnt; ++j) {
        const std::int32_t c = cpo * go + j;
        const std::int32_t r = bitplane_res_code(*bo, m, c);
        codes[j] = requant_one(acc_of(m, c) + (ep.bias ? ep.bias[c] : 0), ep.qm[c], ep.rshift[c],
                               ep.zp_out, ep.lo, ep.hi, r, bo->res && ep.res_qm ? ep.res_qm[c] : 0);
      }
      bo->base[bo->pix_off[m] + go * bo->group_stride] = bitplane_index_byte(codes, cnt, bo->b_out);
    }
  }
}

}  // namespace ref
}  // namespace kernels
}  // namespace mixq
