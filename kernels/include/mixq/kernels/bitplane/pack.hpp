#pragma once
// LUT6 weights: 64-entry subset-sum tables of b_w-bit weight codes, packed
// once per layer for one bit-plane kernel family (and so its ISA), the way
// pack.hpp packs the qgemm families. Also where the path pays
// (bitplane_preferred) and its sizing constants.
#include <array>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "mixq/kernels/bitplane/format.hpp"
#include "mixq/kernels/common.hpp"
#include "mixq/kernels/dispatch.hpp"
#include "mixq/kernels/pack.hpp"
#include "mixq/kernels/registry.hpp"

namespace mixq {
namespace kernels {

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

/// Weights packed for one bit-plane kernel family (bound at pack time, with
/// its ISA) and one (b_w, b_a) pair. Pass it to qgemm_bitplane().
struct bitplane_weights {
  bitplane_kernel_id kernel = bitplane_kernel_id::scalar_bitplane_1x1c1;
  isa level = isa::scalar;
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
  std::array<char, 64> name{};  ///< full kernel name
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
/// weights) stop being served from the caches fast enough for the path to
/// beat W8A8 VNNI (measured on square GEMMs, docs/kernels_lut.md section 6).
constexpr std::int64_t bitplane_table_budget = std::int64_t(24) << 20;

/// Where the LUT6 path measured faster than the W8A8 VNNI kernel
/// (qconv2d_bitplane vs qconv2d, docs/kernels_lut.md section 6): A2 with
/// W2..W4, at least two 64-pixel tiles (m >= 128 output pixels: a single
/// tile reads every 64-byte table for 64 pixels only), a reduction k = taps
/// * C_in of at least 16, and tables (n x ceil(k / 3) x 64 B) within
/// bitplane_table_budget. The A3 pairs are exact but not faster, so a caller
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

/// Pack W [n][taps][k_seg] (b_w-bit codes) for b_a-bit bit-plane activations
/// and the bit-plane family of `level` (default: active_isa(), i.e. CPUID
/// clamped by MIXQ_ISA / set_isa(); the AVX-512 VBMI kernel when the CPU has
/// it, else the scalar twin). Throws mixq::error on unsupported pairs, bad
/// codes or bad sizes.
inline bitplane_weights pack_bitplane_weights(const std::int8_t* w, std::int32_t n,
                                              std::int32_t taps, std::int32_t k_seg, int b_w,
                                              int b_a, isa level = isa::automatic) {
  MIXQ_CHECK(bitplane_supports(b_w, b_a), "mixq::kernels::pack_bitplane_weights: (b_w, b_a) = (",
             b_w, ", ", b_a, "), expected b_a in {2, 3} and b_w in 2..4");
  MIXQ_CHECK(w != nullptr && n >= 1 && taps >= 1 && k_seg >= 1,
             "mixq::kernels::pack_bitplane_weights: n = ", n, ", taps = ", taps,
             ", k_seg = ", k_seg, ", expected all >= 1 and weights");
  MIXQ_CHECK(std::int64_t(taps) * k_seg <= max_k_total,
             "mixq::kernels::pack_bitplane_weights: taps * k_seg = ", std::int64_t(taps) * k_seg,
             ", expected <= max_k_total (", max_k_total, ")");
  const std::int64_t total = std::int64_t(n) * taps * k_seg;
  const int wmin = -(1 << (b_w - 1)), wmax = (1 << (b_w - 1)) - 1;
  for (std::int64_t i = 0; i < total; ++i)
    MIXQ_CHECK(w[i] >= wmin && w[i] <= wmax, "mixq::kernels::pack_bitplane_weights: weight code ",
               int(w[i]), " at index ", i, ", expected a signed ", b_w, "-bit code in [", wmin,
               ", ", wmax, "]");
  const isa l = level == isa::automatic ? active_isa() : clamp_isa(detail::state().caps, level);
  const bitplane_kernel_info& ki = get_bitplane_kernel_info(choose_bitplane_kernel(l));
  bitplane_weights p;
  p.kernel = ki.id;
  p.level = ki.level;
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
  std::snprintf(p.name.data(), p.name.size(), "qgemm_a%dw%d_%dx%dc%d__%s", b_a, b_w, ki.mr, ki.nr,
                ki.kr ? ki.kr : p.cpb, ki.arch);
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

}  // namespace kernels
}  // namespace mixq
