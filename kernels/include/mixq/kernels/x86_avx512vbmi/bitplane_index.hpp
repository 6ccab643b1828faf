#pragma once
// Index-vector preparation of the AVX-512 VBMI LUT6 kernel
// (qgemm_64x4__avx512vbmi_lut6.hpp): how the 64 index bytes of one 64-pixel
// tile and one (tap, group) step become one zmm.
//
// - Runs (lut6_find_runs): the tile's pixel offsets split into maximal runs
//   of consecutive bytes (<= 8: one load, loads + inserts or masked loads
//   per run) or, for scattered pixels (stride 2), up to 4 windows of 128
//   bytes (two masked loads + one vpermt2b each; the windows of the last
//   such tile are cached relative to its first offset and reused when the
//   next tile has the same pattern); anything else is a byte gather.
// - Preparation (lut6_prepare): every step's vector of one tile, classified
//   once per tile; the three dx taps of a kernel row share one set of window
//   loads; row masks (bitplane_problem::row_len) zero the lanes whose tap
//   column leaves the image; packed remainder steps are built in-register
//   from the taps' remainder-group vectors (shift, byte mask, OR).
// Over-read: direct loads read up to 63 bytes past the last addressed byte
// (bitplane_overread_bytes); masked loads never touch masked-off bytes.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "mixq/kernels/bitplane/pack.hpp"
#include "mixq/kernels/x86_target.hpp"

MIXQ_X86_DIAG_PUSH

namespace mixq {
namespace kernels {
namespace detail {
namespace avx512vbmi {

/// Maximal runs of consecutive offsets among off[0..mr): cnt in 1..8, or
/// cnt = 0 when there are more than 8 runs. For run i: lanes
/// [start[i], start[i+1]) = mask[i], and base + adj[i] + lane addresses lane's
/// byte (adj = off[start] - start).
// Only cnt and win are initialized: lut6_find_runs fills the fields that
// cnt / win make valid, and the kernel keeps arrays of these per step group
// (zeroing all ~600 bytes each cost the batch-1 stride-2 conv 4%).
struct lut6_runs {
  int cnt = 0;
  int start[9];
  std::int64_t off[8];
  std::int64_t adj[8];
  __mmask64 mask[8];
  // Window mode (win > 0, cnt == 0: more than 8 runs, e.g. stride-2 rows):
  // lanes wmask[w] read base[wstart[w] + widx[w][lane]], widx < wspan[w] <= 128.
  int win = 0;
  std::int64_t wstart[4];
  int wspan[4];
  __mmask64 wmask[4];
  alignas(64) std::uint8_t widx[4][64];
};

constexpr int lut6_max_windows = 4;

MIXQ_INLINE_AVX512VBMI inline __mmask64 lut6_lane_mask(int s, int e) noexcept {
  const std::uint64_t hi = e >= 64 ? ~0ull : ((1ull << e) - 1);
  const std::uint64_t lo = (1ull << s) - 1;
  return _cvtu64_mask64(hi & ~lo);
}

/// The windows of the last tile that needed them, relative to its first
/// offset: a stride-2 conv's tiles repeat one pattern (up to image edges), so
/// find_runs compares the pattern (8 vector compares) instead of rebuilding
/// the windows with a 64-lane scalar loop.
struct lut6_window_cache {
  int mr = -1;
  alignas(64) std::int64_t rel[64] = {};
  lut6_runs r;  // wstart relative to off[0]
};

MIXQ_INLINE_AVX512VBMI inline void lut6_find_runs(const std::int64_t* off, int mr, lut6_runs& r,
                                                  bool allow_windows = false,
                                                  lut6_window_cache* cache = nullptr) noexcept {
  // bit i of brk: lane i starts a run (i == 0 or off[i] != off[i-1] + 1), i < mr
  std::uint64_t brk = 1;
  const __m512i one = _mm512_set1_epi64(1);
  for (int q = 0; q < 8 && 8 * q + 1 < mr; ++q) {
    const int lanes = mr - 1 - 8 * q;  // pairs (i, i+1) with i + 1 < mr in this chunk
    const __mmask8 km = static_cast<__mmask8>(lanes >= 8 ? 0xFF : ((1u << lanes) - 1u));
    const __m512i a = _mm512_maskz_loadu_epi64(km, off + 8 * q);
    const __m512i b = _mm512_maskz_loadu_epi64(km, off + 8 * q + 1);
    const __mmask8 ne = _mm512_mask_cmpneq_epi64_mask(km, _mm512_sub_epi64(b, a), one);
    brk |= std::uint64_t(_cvtmask8_u32(ne)) << (8 * q + 1);
  }
  const int cnt = __builtin_popcountll(brk);
  r.win = 0;
  if (cnt > 8) {
    r.cnt = 0;
    if (!allow_windows) return;
    if (cache && cache->mr == mr) {  // same relative pattern as the cached tile?
      const __m512i base = _mm512_set1_epi64(off[0]);
      bool same = true;
      for (int q = 0; q < 8 && 8 * q < mr && same; ++q) {
        const int lanes = mr - 8 * q;
        const __mmask8 km = static_cast<__mmask8>(lanes >= 8 ? 0xFF : ((1u << lanes) - 1u));
        const __m512i rel = _mm512_sub_epi64(_mm512_maskz_loadu_epi64(km, off + 8 * q), base);
        same = _mm512_mask_cmpneq_epi64_mask(km, rel, _mm512_load_si512(cache->rel + 8 * q)) == 0;
      }
      if (same) {
        const int win = cache->r.win;
        r.win = win;
        for (int w = 0; w < win; ++w) {
          r.wstart[w] = cache->r.wstart[w] + off[0];
          r.wspan[w] = cache->r.wspan[w];
          r.wmask[w] = cache->r.wmask[w];
          _mm512_store_si512(r.widx[w], _mm512_load_si512(cache->r.widx[w]));
        }
        return;
      }
    }
    // windows: greedy 128-byte spans of ascending offsets (else byte gather)
    int w = 0;
    std::uint64_t m = 0;
    for (int l = 0; l < mr; ++l) {
      if (m == 0 || off[l] < r.wstart[w] || off[l] - r.wstart[w] >= 128) {
        if (m != 0) {
          r.wmask[w] = _cvtu64_mask64(m);
          if (++w == lut6_max_windows) return;  // too scattered: byte gather
        }
        r.wstart[w] = off[l];
        r.wspan[w] = 0;
        m = 0;
      }
      const int d = static_cast<int>(off[l] - r.wstart[w]);
      r.widx[w][l] = static_cast<std::uint8_t>(d);
      if (d + 1 > r.wspan[w]) r.wspan[w] = d + 1;
      m |= 1ull << l;
    }
    r.wmask[w] = _cvtu64_mask64(m);
    r.win = w + 1;
    if (cache) {
      cache->mr = mr;
      for (int l = 0; l < 64; ++l) cache->rel[l] = l < mr ? off[l] - off[0] : 0;
      cache->r = r;
      for (int i = 0; i < r.win; ++i) cache->r.wstart[i] -= off[0];
    }
    return;
  }
  r.cnt = cnt;
  for (int i = 0; i < cnt; ++i) {
    const int st = __builtin_ctzll(brk);
    brk &= brk - 1;
    r.start[i] = st;
    r.off[i] = off[st];
    r.adj[i] = off[st] - st;
  }
  r.start[cnt] = mr;
  for (int i = 0; i < cnt; ++i) r.mask[i] = lut6_lane_mask(r.start[i], r.start[i + 1]);
}

/// Window mode: per window, two masked loads fetch the (at most 128) bytes it
/// spans (no over-read) and vpermt2b routes them to the window's lanes.
MIXQ_INLINE_AVX512VBMI inline __m512i lut6_gather_windows(const std::uint8_t* base,
                                                          const lut6_runs& r) noexcept {
  const std::uintptr_t b = reinterpret_cast<std::uintptr_t>(base);
  __m512i v = _mm512_setzero_si512();
  for (int w = 0; w < r.win; ++w) {
    const int span = r.wspan[w];
    const std::uintptr_t a = b + std::uintptr_t(r.wstart[w]);
    const __m512i lo = _mm512_maskz_loadu_epi8(lut6_lane_mask(0, span < 64 ? span : 64),
                                               reinterpret_cast<const void*>(a));
    const __m512i hi = span > 64 ? _mm512_maskz_loadu_epi8(lut6_lane_mask(0, span - 64),
                                                           reinterpret_cast<const void*>(a + 64))
                                 : _mm512_setzero_si512();
    const __m512i idx = _mm512_load_si512(reinterpret_cast<const void*>(r.widx[w]));
    v = _mm512_or_si512(v, _mm512_maskz_permutex2var_epi8(r.wmask[w], lo, idx, hi));
  }
  return v;
}

/// 64 index bytes base[off[i]] (i < mr) into lanes i (lanes >= mr: any value).
MIXQ_INLINE_AVX512VBMI inline __m512i lut6_gather(const std::uint8_t* base, const lut6_runs& r,
                                                  const std::int64_t* off, int mr) noexcept {
  if (r.win > 0) return lut6_gather_windows(base, r);
  if (r.cnt == 1) return _mm512_loadu_si512(reinterpret_cast<const void*>(base + r.off[0]));
  const std::uintptr_t bb = reinterpret_cast<std::uintptr_t>(base);
  if (r.cnt == 2 && r.start[1] == 32 && mr == 64) {  // two 32-pixel rows: load + insert
    const __m256i lo =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bb + std::uintptr_t(r.off[0])));
    const __m256i hi =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bb + std::uintptr_t(r.off[1])));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
  if (r.cnt == 4 && r.start[1] == 16 && r.start[2] == 32 && r.start[3] == 48 &&
      mr == 64) {  // four 16-pixel rows
    __m512i v = _mm512_castsi128_si512(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(bb + std::uintptr_t(r.off[0]))));
    v = _mm512_inserti32x4(
        v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(bb + std::uintptr_t(r.off[1]))), 1);
    v = _mm512_inserti32x4(
        v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(bb + std::uintptr_t(r.off[2]))), 2);
    return _mm512_inserti32x4(
        v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(bb + std::uintptr_t(r.off[3]))), 3);
  }
  if (r.cnt == 8 && mr == 64 && r.start[1] == 8 &&
      r.start[7] == 56) {  // eight 8-pixel rows (equal split)
    bool eq = true;
    for (int i = 2; i < 7; ++i) eq = eq && r.start[i] == 8 * i;
    if (eq) {
      std::int64_t q[8];
      for (int i = 0; i < 8; ++i)
        std::memcpy(&q[i], reinterpret_cast<const void*>(bb + std::uintptr_t(r.off[i])), 8);
      const __m128i a = _mm_set_epi64x(q[1], q[0]), b = _mm_set_epi64x(q[3], q[2]);
      const __m128i c = _mm_set_epi64x(q[5], q[4]), d = _mm_set_epi64x(q[7], q[6]);
      const __m512i v =
          _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1));
      return _mm512_inserti64x4(v, _mm256_inserti128_si256(_mm256_castsi128_si256(c), d, 1), 1);
    }
  }
  if (r.cnt > 1) {
    // zero-masked loads are independent (a merge-masked chain would serialize
    // their latencies); ORs combine them
    const std::uintptr_t b = reinterpret_cast<std::uintptr_t>(base);
    __m512i v = _mm512_maskz_loadu_epi8(
        r.mask[0], reinterpret_cast<const void*>(b + std::uintptr_t(r.adj[0])));
    __m512i u = _mm512_maskz_loadu_epi8(
        r.mask[1], reinterpret_cast<const void*>(b + std::uintptr_t(r.adj[1])));
    for (int i = 2; i + 1 < r.cnt; i += 2) {
      v = _mm512_or_si512(v, _mm512_maskz_loadu_epi8(r.mask[i], reinterpret_cast<const void*>(
                                                                    b + std::uintptr_t(r.adj[i]))));
      u = _mm512_or_si512(
          u, _mm512_maskz_loadu_epi8(
                 r.mask[i + 1], reinterpret_cast<const void*>(b + std::uintptr_t(r.adj[i + 1]))));
    }
    if (r.cnt & 1)
      v = _mm512_or_si512(
          v, _mm512_maskz_loadu_epi8(r.mask[r.cnt - 1], reinterpret_cast<const void*>(
                                                            b + std::uintptr_t(r.adj[r.cnt - 1]))));
    return _mm512_or_si512(v, u);
  }
  alignas(64) std::uint8_t tmp[64] = {};
  for (int i = 0; i < mr; ++i) tmp[i] = base[off[i]];
  return _mm512_load_si512(tmp);
}

MIXQ_INLINE_AVX512VBMI inline void lut6_scatter(std::uint8_t* base, const lut6_runs& r,
                                                const std::int64_t* off, int mr,
                                                __m512i v) noexcept {
  if (r.cnt >= 1) {
    for (int i = 0; i < r.cnt; ++i) {
      const std::uintptr_t a =
          reinterpret_cast<std::uintptr_t>(base) + static_cast<std::uintptr_t>(r.adj[i]);
      _mm512_mask_storeu_epi8(reinterpret_cast<void*>(a), r.mask[i], v);
    }
    return;
  }
  alignas(64) std::uint8_t tmp[64];
  _mm512_store_si512(tmp, v);
  for (int i = 0; i < mr; ++i) base[off[i]] = tmp[i];
}

/// Stores the vector of (tap t, group g): a remainder group's into rem_v[t]
/// (packed remainders), every other one at its k position in dst0.
MIXQ_INLINE_AVX512VBMI inline void lut6_put(const bitplane_weights& pw, __m512i* dst0,
                                            __m512i* rem_v, std::int32_t gstep, std::int32_t t,
                                            std::int32_t g, __m512i v) noexcept {
  if (pw.packed_rem && g == pw.full)
    rem_v[t] = v;
  else
    _mm512_store_si512(dst0 + std::int64_t(t) * gstep + g, v);
}

/// The packed remainder steps from each tap's remainder-group vector:
/// remainder code q = t*rem + j -> slot q % cpb of step q / cpb (after the
/// full groups). Codes are b_a-bit fields of index bytes: shift + byte mask
/// stay in-byte.
MIXQ_INLINE_AVX512VBMI inline void lut6_pack_rem(const bitplane_weights& pw, const __m512i* rem_v,
                                                 __m512i* out) noexcept {
  const int ba = pw.b_a, cpb = pw.cpb, rem = pw.rem;
  const std::int32_t n = pw.taps * rem;
  const __m512i fmask = _mm512_set1_epi8(static_cast<char>((1 << ba) - 1));
  std::int32_t t = 0;  // (t, j) = (q / rem, q % rem), kept incrementally
  int j = 0;
  for (std::int32_t q0 = 0; q0 < n; q0 += cpb) {
    __m512i v = _mm512_setzero_si512();
    for (int slot = 0; slot < cpb && q0 + slot < n; ++slot) {
      const __m512i code =
          _mm512_and_si512(_mm512_srli_epi16(rem_v[t], static_cast<unsigned>(ba * j)), fmask);
      v = _mm512_or_si512(v, _mm512_slli_epi16(code, static_cast<unsigned>(ba * slot)));
      if (++j == rem) {
        j = 0;
        ++t;
      }
    }
    _mm512_store_si512(out++, v);
  }
}

/// The three taps t, t+1, t+2 (dx = -1, 0, +1 of one kernel row) of a tile
/// read through W windows (lut6_runs::win): per group, one set of window loads
/// (span + 2 bytes) and, per tap, W vpermt2b with indices + d; the window and
/// row masks fold into the permutes' zero masks. Indices and masks are set up
/// once per row, not per group.
template <int W>
MIXQ_INLINE_AVX512VBMI inline void lut6_prepare_row3(const bitplane_problem& p, const lut6_runs& r,
                                                     const bitplane_weights& pw,
                                                     const __mmask64* keep, __m512i* dst0,
                                                     __m512i* rem_v, std::int32_t gstep,
                                                     std::int32_t t) noexcept {
  __m512i idx[W][3];
  __mmask64 km[W][3], klo[W], khi[W];
  for (int w = 0; w < W; ++w) {
    const __m512i base = _mm512_load_si512(reinterpret_cast<const void*>(r.widx[w]));
    const int span = r.wspan[w] + 2;
    klo[w] = lut6_lane_mask(0, span < 64 ? span : 64);
    khi[w] = span > 64 ? lut6_lane_mask(0, span - 64) : _cvtu64_mask64(0);
    for (int d = 0; d < 3; ++d) {
      idx[w][d] = _mm512_add_epi8(base, _mm512_set1_epi8(static_cast<char>(d)));
      const __mmask64 kt = keep ? keep[p.tap_dx[t + d] + 1] : _cvtu64_mask64(~0ull);
      km[w][d] = _kand_mask64(r.wmask[w], kt);
    }
  }
  const std::uint8_t* cur = p.a + p.tap_off[t];
  for (std::int32_t g = 0; g < pw.groups; ++g, cur += p.group_stride) {
    __m512i lo[W], hi[W];
    for (int w = 0; w < W; ++w) {
      const std::uint8_t* a = cur + r.wstart[w];
      lo[w] = _mm512_maskz_loadu_epi8(klo[w], reinterpret_cast<const void*>(a));
      hi[w] = _mm512_maskz_loadu_epi8(khi[w], reinterpret_cast<const void*>(a + 64));
    }
    for (int d = 0; d < 3; ++d) {
      __m512i v = _mm512_maskz_permutex2var_epi8(km[0][d], lo[0], idx[0][d], hi[0]);
      for (int w = 1; w < W; ++w)
        v = _mm512_or_si512(v, _mm512_maskz_permutex2var_epi8(km[w][d], lo[w], idx[w][d], hi[w]));
      lut6_put(pw, dst0, rem_v, gstep, t + d, g, v);
    }
  }
}

/// Every (tap, group) index vector of one tile, in k order, into dst. The
/// tile's shape is classified once (not per vector): Kind 1 = one run, one
/// load; Kind 5 = windows, shared by the dx taps of a kernel row; Kind 0 =
/// anything else through lut6_gather (which handles 2..8 runs).
template <int Kind>
MIXQ_INLINE_AVX512VBMI inline void lut6_prepare_k(const bitplane_problem& p, const lut6_runs& r,
                                                  const std::int64_t* off, int mr,
                                                  const bitplane_weights& pw, const __mmask64* keep,
                                                  __m512i* dst) noexcept {
  const std::int32_t taps = pw.taps, groups = pw.groups;
  __m512i rem_v[9];  // packed remainders: each tap's remainder-group vector
  __m512i* const dst0 = dst;
  const std::int32_t gstep = pw.packed_rem ? pw.full : groups;  // vectors per tap in dst
  if constexpr (Kind == 5) {
    // windows: the taps dx = 0, 1, 2 of one kernel row read the same bytes
    // shifted by 1 and 2, so one set of window loads (span + 2 bytes) serves
    // all three (indices + d) when every window still fits 128 bytes
    bool fits = true;
    for (int w = 0; w < r.win; ++w) fits = fits && r.wspan[w] + 2 <= 128;
    for (std::int32_t t = 0; t < taps;) {
      const bool row3 = fits && p.tap_off && t + 2 < taps && p.tap_off[t + 1] == p.tap_off[t] + 1 &&
                        p.tap_off[t + 2] == p.tap_off[t] + 2;
      if (row3) {
        switch (r.win) {
          case 1:
            lut6_prepare_row3<1>(p, r, pw, keep, dst0, rem_v, gstep, t);
            break;
          case 2:
            lut6_prepare_row3<2>(p, r, pw, keep, dst0, rem_v, gstep, t);
            break;
          case 3:
            lut6_prepare_row3<3>(p, r, pw, keep, dst0, rem_v, gstep, t);
            break;
          default:
            lut6_prepare_row3<4>(p, r, pw, keep, dst0, rem_v, gstep, t);
            break;
        }
        t += 3;
        continue;
      }
      const __mmask64 kt = keep ? keep[p.tap_dx[t] + 1] : _cvtu64_mask64(~0ull);
      const std::uint8_t* cur = p.a + (p.tap_off ? p.tap_off[t] : 0);
      for (std::int32_t g = 0; g < groups; ++g, cur += p.group_stride) {
        const __m512i v = lut6_gather(cur, r, off, mr);
        lut6_put(pw, dst0, rem_v, gstep, t, g, _mm512_maskz_mov_epi8(kt, v));
      }
      ++t;
    }
  }
  for (std::int32_t t = 0; t < (Kind == 5 ? 0 : taps); ++t) {
    const std::uint8_t* cur = p.a + (p.tap_off ? p.tap_off[t] : 0);
    const __mmask64 kt = keep ? keep[p.tap_dx[t] + 1] : _cvtu64_mask64(~0ull);
    for (std::int32_t g = 0; g < groups; ++g, cur += p.group_stride) {
      const std::uintptr_t c = reinterpret_cast<std::uintptr_t>(cur);
      __m512i v;
      if constexpr (Kind == 1) {
        v = _mm512_loadu_si512(reinterpret_cast<const void*>(c + std::uintptr_t(r.off[0])));
      } else {
        v = lut6_gather(cur, r, off, mr);
      }
      __asm__("" : "+v"(v));  // a plain load, then the mask (GCC would fuse a masked load)
      lut6_put(pw, dst0, rem_v, gstep, t, g, _mm512_maskz_mov_epi8(kt, v));
    }
  }
  if (pw.packed_rem) lut6_pack_rem(pw, rem_v, dst0 + std::int64_t(taps) * pw.full);
}

MIXQ_INLINE_AVX512VBMI inline void lut6_prepare(const bitplane_problem& p, const lut6_runs& r,
                                                const std::int64_t* off, int mr,
                                                const bitplane_weights& pw, const __mmask64* keep,
                                                __m512i* dst) noexcept {
  if (r.win > 0)
    lut6_prepare_k<5>(p, r, off, mr, pw, keep, dst);
  else if (r.cnt == 1)
    lut6_prepare_k<1>(p, r, off, mr, pw, keep, dst);
  else  // 2..8 runs (padded planes, GEMM tails) or a byte gather: lut6_gather
    lut6_prepare_k<0>(p, r, off, mr, pw, keep, dst);
}

/// Columns of a row-masked problem whose tap_dx = d - 1 reads the halo:
/// cols[d][0..n[d]) (at most 4 per d; conv geometries have at most 1).
struct lut6_mask_cols {
  int n[3] = {0, 0, 0};
  std::int64_t cols[3][4] = {};
  bool ok = true;  // false: more masked columns than fit (scalar lane loop)
};

MIXQ_TARGET_AVX512VBMI inline lut6_mask_cols lut6_find_mask_cols(
    const bitplane_problem& p) noexcept {
  lut6_mask_cols mc;
  for (std::int64_t x = 0; x < p.row_len; ++x)
    for (int d = 0; d < 3; ++d) {
      const std::int64_t xi = p.stride * x + d - 1;
      if (xi >= 0 && xi < p.in_w) continue;
      if (mc.n[d] == 4) {
        mc.ok = false;
        return mc;
      }
      mc.cols[d][mc.n[d]++] = x;
    }
  return mc;
}

/// keep[d]: lanes l < 64 of the tile starting at problem row mb whose column
/// is not masked for tap_dx = d - 1.
MIXQ_INLINE_AVX512VBMI inline void lut6_keep_masks(const bitplane_problem& p,
                                                   const lut6_mask_cols& mc, std::int64_t mb,
                                                   __mmask64* keep) noexcept {
  const std::int64_t xf = (p.x0 + mb) % p.row_len;
  for (int d = 0; d < 3; ++d) {
    std::uint64_t drop = 0;
    if (mc.ok) {
      for (int j = 0; j < mc.n[d]; ++j)
        for (std::int64_t l = ((mc.cols[d][j] - xf) % p.row_len + p.row_len) % p.row_len; l < 64;
             l += p.row_len)
          drop |= 1ull << l;
    } else {
      for (std::int64_t l = 0; l < 64; ++l) {
        const std::int64_t xi = p.stride * ((xf + l) % p.row_len) + d - 1;
        if (xi < 0 || xi >= p.in_w) drop |= 1ull << l;
      }
    }
    keep[d] = _cvtu64_mask64(~drop);
  }
}

}  // namespace avx512vbmi
}  // namespace detail
}  // namespace kernels
}  // namespace mixq

MIXQ_X86_DIAG_POP
