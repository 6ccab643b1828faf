#pragma once
// AVX-512 VBMI 64-entry LUT kernel on bit-plane index activations (bitplane/):
// qgemm_a<A>w<W>_64x4c<cpb>__avx512vbmi_lut6, b_a in {2, 3}, b_w <= 4.
//
// Math: one index byte = every plane of cpb channels (6 bits), one table zmm
// = the 64 subset sums of one (output channel n, lookup step k):
//   C[m][n] = sum_k T_{n,k}[ idx_k(m) ] + corr[n]
// where step k is a (tap t, group g) pair, idx_k(m) = byte pix_off[m] +
// tap_off[t] + g*group_stride, or (packed remainders, bitplane/pack.hpp) cpb
// remainder codes of several taps combined in-register. vpermb(idx, table)
// performs 64 lookups = 64 pixels x cpb channels x b_a planes (192 MACs for
// A2). Lanes are PIXELS.
//
// Exact accumulation (entries stored as u8 T - tmin, each table offset by its
// own minimum, so entries are <= span = cpb (2^b_a - 1) 2^(b_w-1)):
//   u8   : vpaddb of the lookups of one run, as long as the tables' largest
//          entries add up to <= 255 (pw.widen_len; at least L = floor(255 /
//          span), W2A2: 14, about twice that for typical weights) -> no wrap
//   u16  : all += a8 (as words), odd += a8 >> 8, every L lookups; then
//          even = all - (odd << 8) (mod 2^16, exact since even <= 65534) and
//          odd are the sums of the even / odd pixels; at most F =
//          flush_every lookups (F * span <= 65534, W2A2: 3640) per u16 chunk
//   int32: longer K flushes the u16 sums into an int32 stack tile (scalar).
// Tile: 2 x 64 pixels x 4 channels (24 accumulator zmm); each table load
//   feeds 2 vpermb, each index load 4 (6 loads per 8 vpermb; the table is
//   forced into a register: GCC otherwise folds it into both vpermb).
// Index vectors (bitplane_index.hpp): prepared once per 2-tile step into a stack buffer
//   (bitplane_index_capacity zmm, up to 8 steps) and reused by every channel
//   block: a tile that is one contiguous run of index bytes is one load (conv
//   planes without halo columns; GEMMs), 2 x 32 / 4 x 16 pixel rows are loads
//   + inserts, other splits into <= 8 runs masked loads, scattered pixels
//   (stride 2) <= 4 windows of 128 bytes (two masked loads + vpermt2b each),
//   anything else a byte gather. Row-masked problems (bitplane_problem::
//   row_len) zero the lanes whose tap column leaves the image. Beyond the
//   buffer (K' > 1600 lookups) vectors are read per use (direct / gather).
// K chunks: with prepared vectors and K' > 64, the lookups run in chunks of
//   <= 48 so a 4-channel table chunk (<= 12 KB) serves every step of the
//   group from L1; the u16 sums wait in memory between chunks.
// Epilogues: (1) bit-plane output (the next layer's input, fast): per-channel
//   thresholds (exactly the requant rule) compared on the u16 sums
//   (vpcmpuw, 32 pixels each), counted into codes right at the end of the
//   block's lookups (from the registers, lut6_fuse), combined into
//   index bytes and stored with masked stores per output run; with a
//   residual, each pixel's 2-bit residual code picks one of 4 threshold sets
//   (vpermw); channels run in ranges of <= 504 (120 with a residual), the
//   codes of 12 channels at a time staged per tile;
//   (2) raw int32 / u8 NHWC (requant.hpp rule, no residual): scalar, for
//   tests and compatibility. Residual codes of other than 2 bits: the
//   dispatcher writes the planes with the scalar twin (lut6_takes_output).
// Over-read: up to 63 bytes past the last addressed index byte (direct loads
//   of a partial last tile); masked loads may address bytes before a run.
// Stack: about 270 KB per call (index buffer 200 KB, thresholds 21 KB, K
//   chunk sums 16 KB, code staging 12 KB, int32 flush tile 2 KB); nothing is
//   allocated. Threads calling it need stacks of >= 512 KB (glibc and
//   libgomp defaults are MBs).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "mixq/kernels/bitplane/format.hpp"
#include "mixq/kernels/bitplane/pack.hpp"
#include "mixq/kernels/requant.hpp"
#include "mixq/kernels/x86_avx512vbmi/bitplane_index.hpp"
#include "mixq/kernels/x86_avx512vbmi/transpose16.hpp"
#include "mixq/kernels/x86_target.hpp"

MIXQ_X86_DIAG_PUSH

namespace mixq {
namespace kernels {

/// zmm index vectors the LUT6 kernel prepares per call (200 KB of stack).
constexpr std::int32_t lut6_index_capacity = bitplane_index_capacity;
/// Channels of one range of the fused bit-plane epilogue (thresholds on the stack).
constexpr std::int32_t lut6_stage_channels = bitplane_stage_channels;

namespace detail {
namespace avx512vbmi {

constexpr int lut6_p = 2;                 // 64-pixel tiles per step
constexpr std::int32_t lut6_kchunk = 48;  // lookups per K chunk (see qgemm_bitplane_lut6)
/// 64-byte code vectors (one tile, one channel) the fused epilogue stages.
constexpr std::int32_t lut6_stage_tiles = 1024;
static_assert(lut6_stage_tiles / (8 * lut6_p) >= 12, "a 12-channel window must fit 8 steps");

/// Where the index vectors of one 2-tile step come from.
struct lut6_src {
  const bitplane_problem* p;
  std::int32_t taps, groups, ksteps;  // ksteps: the weights' lookup count (buffer stride)
  std::int64_t m[lut6_p];
  int mr[lut6_p];
  lut6_runs runs[lut6_p];
  __mmask64 keep[lut6_p][3];  // row-masked problems: lanes kept for tap_dx = -1, 0, +1
  const __m512i* buf;         // prepared [lut6_p][ksteps] or nullptr
  bool masked;                // row-masked problem (keep applies)
};

/// Cursor over (t, g) in k order.
template <int Mode>  // 0 direct, 1 buffer, 2 gather per use
struct lut6_cursor {
  const lut6_src* s;
  std::int32_t t = 0, g = 0, k = 0, ksteps = 0;
  const std::uint8_t* cur = nullptr;  // a + tap_off[t] + g * gs

  MIXQ_INLINE_AVX512VBMI void set_tap() noexcept {
    if (t < s->taps)
      cur = s->p->a + (s->p->tap_off ? s->p->tap_off[t] : 0) + g * s->p->group_stride;
  }
  MIXQ_INLINE_AVX512VBMI void reset(const lut6_src* src, std::int32_t k0 = 0) noexcept {
    s = src;
    k = k0;
    t = k0 / src->groups;
    g = k0 % src->groups;
    ksteps = src->ksteps;
    set_tap();
  }
  MIXQ_INLINE_AVX512VBMI __m512i get(int i) const noexcept {
    if (Mode == 1)
      return _mm512_load_si512(
          reinterpret_cast<const void*>(s->buf + std::int64_t(i) * ksteps + k));
    if (Mode == 0)
      return _mm512_loadu_si512(reinterpret_cast<const void*>(cur + s->runs[i].off[0]));
    const __m512i v = lut6_gather(cur, s->runs[i], s->p->pix_off + s->m[i], s->mr[i]);
    return s->masked ? _mm512_maskz_mov_epi8(s->keep[i][s->p->tap_dx[t] + 1], v) : v;
  }
  MIXQ_INLINE_AVX512VBMI void advance() noexcept {
    ++k;
    if (Mode == 1) return;
    if (++g == s->groups) {
      g = 0;
      ++t;
      set_tap();
    } else {
      cur += s->p->group_stride;
    }
  }
};

/// Fused threshold epilogue of lut6_block (the bit-plane output, with or
/// without a residual): the codes of the block's channels go from the
/// registers straight into the code staging, [tile][channel][64 pixels] bytes.
struct lut6_fuse {
  const std::uint16_t* thr16 = nullptr;     // [c - cs][levels] thresholds, u16 sum domain
  std::int32_t levels = 0, c0 = 0, n1 = 0;  // the block's first channel; channels < n1
  std::int32_t cs = 0;                      // first channel of the call's range
  std::int32_t ts = 1;                      // threshold sets per channel (4 with a residual)
  std::uint8_t lo = 0;                      // code of a sum below every threshold
  std::uint8_t* stage[lut6_p] = {};         // tile i's [c - cs][64] codes (nullptr: absent)
  // residual (2-bit codes; rb == nullptr: none): tile i's residual index
  // bytes of residual group g at rb[i][g - rg0]; output channel c adds
  // residual channel c - res_lo when that lies in [0, res_n); thresholds
  // [c - cs][levels][4], one per residual code
  const __m512i* rb[lut6_p] = {};
  std::int32_t rg0 = 0, res_lo = 0, res_n = 0;
  bool keep_sums = false;  // also store the sums (raw int32 / u8 NHWC outputs need them)
};

/// Codes of 64 pixels of one channel: even-pixel sums ev, odd-pixel sums ov
/// (u16), thresholds thr[l * ts], l < levels; even pixels count in the low byte of
/// each u16 lane, odd pixels in the high byte, so the result is 64 code
/// bytes in pixel order.
MIXQ_INLINE_AVX512VBMI inline __m512i lut6_codes(__m512i ev, __m512i ov, const std::uint16_t* thr,
                                                 std::int32_t levels, std::uint8_t lo,
                                                 std::int32_t ts = 1) noexcept {
  __m512i codes = _mm512_set1_epi8(static_cast<char>(lo));
  const __m512i one_lo = _mm512_set1_epi16(1), one_hi = _mm512_set1_epi16(0x100);
#pragma GCC unroll 7
  for (std::int32_t l = 0; l < levels; ++l) {
    const __m512i tv = _mm512_set1_epi16(static_cast<short>(thr[l * ts]));
    codes = _mm512_mask_add_epi16(codes, _mm512_cmpge_epu16_mask(ev, tv), codes, one_lo);
    codes = _mm512_mask_add_epi16(codes, _mm512_cmpge_epu16_mask(ov, tv), codes, one_hi);
  }
  return codes;
}

/// Codes of one (tile, channel) with a residual (inlined into the fused
/// epilogue: out of line it cost the residual 3-5 points more on the 32- and
/// 64-channel convs): rb = the tile's residual index bytes, slot = the
/// channel's 2-bit field in them, thr = the channel's [levels][4] u16
/// thresholds; each pixel's residual code picks its set with vpermw.
MIXQ_INLINE_AVX512VBMI inline __m512i lut6_res_codes(__m512i ev, __m512i ov, __m512i codes,
                                                     __m512i rb, int slot, const std::uint16_t* thr,
                                                     std::int32_t levels) noexcept {
  const __m512i rcode =
      _mm512_and_si512(_mm512_srli_epi16(rb, static_cast<unsigned>(2 * slot)), _mm512_set1_epi8(3));
  const __m512i re = _mm512_and_si512(rcode, _mm512_set1_epi16(0xFF));
  const __m512i ro = _mm512_srli_epi16(rcode, 8);
  const __m512i one_lo = _mm512_set1_epi16(1), one_hi = _mm512_set1_epi16(0x100);
  for (std::int32_t l = 0; l < levels; ++l) {
    const __m512i tbl = _mm512_maskz_loadu_epi16(0xF, reinterpret_cast<const void*>(thr + l * 4));
    codes = _mm512_mask_add_epi16(
        codes, _mm512_cmpge_epu16_mask(ev, _mm512_permutexvar_epi16(re, tbl)), codes, one_lo);
    codes = _mm512_mask_add_epi16(
        codes, _mm512_cmpge_epu16_mask(ov, _mm512_permutexvar_epi16(ro, tbl)), codes, one_hi);
  }
  return codes;
}

/// Sums of one 4-channel block for both tiles over lookups [k0, k1) (tb
/// points at the block's tables for k0). k1 == ksteps: u16 even-pixel sums ->
/// ev_out, odd-pixel sums -> od_out ([lut6_p][bitplane_nb] zmm, memory); else
/// the running u16 sums go to part ([2][P][NB] zmm), which a call with
/// k0 > 0 continues from (K chunks: ksteps <= F, so no flush across them).
/// Accumulators stay in registers (fully unrolled; only the results, the
/// chunk hand-over and the rare int32 flush touch memory). With fz and no
/// int32 flush, k1 == ksteps writes the block's codes (lut6_fuse), and the
/// sums only when fz->keep_sums.
template <int Mode, int P>
MIXQ_INLINE_AVX512VBMI inline void lut6_block(const lut6_src& src, const std::uint8_t* tb,
                                              std::int32_t k0, std::int32_t k1, std::int32_t ksteps,
                                              const std::uint8_t* wlen, int F, __m512i* ev_out,
                                              __m512i* od_out, __m512i* part, std::int32_t* flush32,
                                              bool& flushed, const lut6_fuse* fz) noexcept {
  constexpr int NB = bitplane_nb;
  lut6_cursor<Mode> cur;
  cur.reset(&src, k0);
  __m512i all[P][NB], odd[P][NB];
#pragma GCC unroll 2
  for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
      all[i][j] = k0 ? _mm512_load_si512(part + i * NB + j) : _mm512_setzero_si512();
      odd[i][j] = k0 ? _mm512_load_si512(part + (P + i) * NB + j) : _mm512_setzero_si512();
    }
  std::int32_t since = 0;
  for (std::int32_t k = k0; k < k1;) {
    const int wl = wlen[k];  // >= L; the tables' actual spans allow it
    const int len = (k1 - k) < wl ? static_cast<int>(k1 - k) : wl;
    if (__builtin_expect(since + len > F,
                         0)) {  // u16 chunk full: move it to int32 (K' > F)
#pragma GCC unroll 2
      for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
        for (int j = 0; j < NB; ++j) {
          alignas(64) std::uint16_t ue[32], uo[32];
          _mm512_store_si512(ue, _mm512_sub_epi16(all[i][j], _mm512_slli_epi16(odd[i][j], 8)));
          _mm512_store_si512(uo, odd[i][j]);
          std::int32_t* f = flush32 + (i * NB + j) * 64;
          for (int l = 0; l < 32; ++l) {
            f[2 * l] += ue[l];
            f[2 * l + 1] += uo[l];
          }
          all[i][j] = odd[i][j] = _mm512_setzero_si512();
        }
      since = 0;
      flushed = true;
    }
    __m512i a8[P][NB];
    {
      __m512i ix[P];
#pragma GCC unroll 2
      for (int i = 0; i < P; ++i) ix[i] = cur.get(i);
      cur.advance();
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) {
        __m512i tab = _mm512_load_si512(reinterpret_cast<const void*>(tb + 64 * j));
        __asm__("" : "+v"(tab));  // one load per table, not one per vpermb (GCC folds it)
#pragma GCC unroll 2
        for (int i = 0; i < P; ++i) a8[i][j] = _mm512_permutexvar_epi8(ix[i], tab);
      }
      tb += 64 * NB;
    }
    for (int s = 1; s < len; ++s) {
      __m512i ix[P];
#pragma GCC unroll 2
      for (int i = 0; i < P; ++i) ix[i] = cur.get(i);
      cur.advance();
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) {
        __m512i tab = _mm512_load_si512(reinterpret_cast<const void*>(tb + 64 * j));
        __asm__("" : "+v"(tab));  // one load per table, not one per vpermb (GCC folds it)
#pragma GCC unroll 2
        for (int i = 0; i < P; ++i)
          a8[i][j] = _mm512_add_epi8(a8[i][j], _mm512_permutexvar_epi8(ix[i], tab));
      }
      tb += 64 * NB;
    }
#pragma GCC unroll 2
    for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) {
        all[i][j] = _mm512_add_epi16(all[i][j], a8[i][j]);
        odd[i][j] = _mm512_add_epi16(odd[i][j], _mm512_srli_epi16(a8[i][j], 8));
      }
    k += len;
    since += len;
  }
  if (k1 < ksteps) {
#pragma GCC unroll 2
    for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) {
        _mm512_store_si512(part + i * NB + j, all[i][j]);
        _mm512_store_si512(part + (P + i) * NB + j, odd[i][j]);
      }
    return;
  }
  if (fz && !flushed) {
#pragma GCC unroll 2
    for (int i = 0; i < P; ++i) {
      if (!fz->stage[i]) continue;
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j) {
        const std::int32_t c = fz->c0 + j;
        if (c >= fz->n1) break;
        const __m512i ev = _mm512_sub_epi16(all[i][j], _mm512_slli_epi16(odd[i][j], 8));
        const std::int32_t rc = c - fz->res_lo;
        __m512i codes;
        if (fz->rb[i] && rc >= 0 && rc < fz->res_n)
          codes = lut6_res_codes(ev, odd[i][j], _mm512_set1_epi8(static_cast<char>(fz->lo)),
                                 fz->rb[i][rc / 3 - fz->rg0], rc % 3,
                                 fz->thr16 + (c - fz->cs) * fz->levels * 4, fz->levels);
        else
          codes = lut6_codes(ev, odd[i][j], fz->thr16 + (c - fz->cs) * fz->levels * fz->ts,
                             fz->levels, fz->lo, fz->ts);
        _mm512_store_si512(fz->stage[i] + std::int64_t(c - fz->cs) * 64, codes);
      }
    }
    if (!fz->keep_sums) return;
  }
#pragma GCC unroll 2
  for (int i = 0; i < P; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) {
      _mm512_store_si512(ev_out + i * NB + j,
                         _mm512_sub_epi16(all[i][j], _mm512_slli_epi16(odd[i][j], 8)));
      _mm512_store_si512(od_out + i * NB + j, odd[i][j]);
    }
}

/// Channel ranges of the fused bit-plane epilogue: its u16 thresholds cover
/// at most lut6_stage_channels channels (a quarter with a residual: one
/// threshold set per residual code), so wider layers run range by range, in
/// ranges of equal width (multiples of 12 = lcm(NB, 3): whole blocks and
/// whole output bytes; each range prepares the index vectors again).
constexpr std::int32_t lut6_range = lut6_stage_channels / 12 * 12;
constexpr std::int32_t lut6_res_range = lut6_stage_channels / 4 / 12 * 12;

/// One channel range [n0, n1) of qgemm_bitplane_lut6 (n1 - n0 <= lut6_range,
/// lut6_res_range with a residual, when bo is set).
MIXQ_TARGET_AVX512VBMI inline void qgemm_bitplane_lut6_range(
    const bitplane_problem& p, const bitplane_weights& pw, const epilogue& ep,
    const bitplane_output* bo, std::int64_t m0, std::int64_t m1, std::int32_t n0,
    std::int32_t n1) noexcept {
  constexpr int P = lut6_p, NB = bitplane_nb, MT = 64, GMAX = 8;
  const std::int32_t ksteps = pw.ksteps, n = n1 - n0;  // n: channels of this range
  const int F = pw.flush_every;
  const std::int32_t* corr = pw.corr.data();  // C = sum + corr[n]
  const bool want_u8 = ep.out_i32 || ep.out;
  const std::int32_t levels = ep.hi - ep.lo;
  // residual (fast path: 2-bit residual codes, 4 threshold sets per channel)
  const bool has_res = bo && bo->res;
  const std::int32_t R = has_res ? 4 : 1;
  const bool fast_bo =
      bo && n <= lut6_stage_channels &&
      (!has_res || (bo->res_bits == 2 && ep.res_qm && n * R <= lut6_stage_channels));
  MIXQ_DASSERT(!bo || fast_bo);
  alignas(64) __m512i ibuf[lut6_index_capacity];
  // codes of one channel window for every tile of a step group:
  // [gi][tile][c - window start][64] (G x P x WC <= lut6_stage_tiles)
  alignas(64) std::uint8_t stage[lut6_stage_tiles * 64];
  alignas(64) std::int32_t flush32[P * NB * 64];
  const bool can_prep = std::int64_t(P) * ksteps <= lut6_index_capacity;
  // K chunk: with prepared index vectors and no u16 -> int32 flush, long
  // reductions run in chunks of <= lut6_kchunk lookups (a 4-channel table
  // chunk of <= 12 KB stays in L1 for all steps of a group), else in one go
  std::int32_t kc = ksteps;
  if (can_prep && ksteps <= F && ksteps > lut6_kchunk) {
    const std::int32_t parts = (ksteps + lut6_kchunk - 1) / lut6_kchunk;
    kc = (ksteps + parts - 1) / parts;
  }
  // Row tiles are processed in groups of G 2-tile steps: their index vectors
  // are prepared first, then each 4-channel table block serves all of them
  // while it is hot in L1 (tables are 64 B per 3 weights, the larger stream).
  // With a residual, each tile's residual index bytes of the range's
  // residual groups [rg0, rg1) are gathered once per step into the index
  // buffer, after the index vectors (G x P x nrg zmm).
  std::int32_t rg0 = 0, rg1 = 0;
  if (has_res && fast_bo) {
    const std::int32_t lo_c = n0 > bo->res_ch_lo ? n0 : bo->res_ch_lo;
    const std::int32_t hi_c =
        n1 < bo->res_ch_lo + bo->res_channels ? n1 : bo->res_ch_lo + bo->res_channels;
    if (lo_c < hi_c) {
      rg0 = (lo_c - bo->res_ch_lo) / 3;
      rg1 = (hi_c - 1 - bo->res_ch_lo) / 3 + 1;
    }
  }
  const std::int32_t nrg = rg1 - rg0;
  std::int32_t G = 1;
  if (can_prep) {
    G = lut6_index_capacity / (P * (ksteps + nrg));
    if (G > GMAX) G = GMAX;
    if (G < 1) G = 1;
  }
  __m512i* const rbuf = ibuf + (can_prep ? std::int64_t(G) * P * ksteps : 0);  // [G][P][nrg]
  // Channel windows: all n channels when G x P x n code vectors fit the
  // staging (every ResNet20 layer), else multiples of 12 that do (whole
  // blocks, whole output bytes); the codes of a window are written out as
  // index bytes before the next window starts, so wide layers keep G large.
  // (G * P <= 16, so wfit >= 64 and a window of 12 always fits)
  const std::int32_t wfit = lut6_stage_tiles / (G * P), nr = (n + NB - 1) / NB * NB;
  const std::int32_t WC = nr <= wfit ? nr : wfit / 12 * 12;
  const std::int32_t WB = WC / NB;
  // thresholds moved into the u16 sum domain once per call (sums never reach 65535)
  // ([c - n0][l][r] with r the residual code; r = 0 only without a residual;
  // n * R <= lut6_stage_channels)
  alignas(64) std::uint16_t thr16[lut6_stage_channels * 7];
  if (fast_bo)
    for (std::int32_t c = n0; c < n1; ++c)
      for (std::int32_t r = 0; r < R; ++r)
        for (std::int32_t l = 0; l < levels; ++l) {
          std::int64_t t = bo->thresholds[(std::int64_t(c) * R + r) * levels + l] -
                           (ep.bias ? ep.bias[c] : 0) - corr[c];
          thr16[((c - n0) * levels + l) * R + r] =
              static_cast<std::uint16_t>(t < 0 ? 0 : (t > 65535 ? 65535 : t));
        }
  const bool masked = p.row_len > 0 && p.tap_dx;
  lut6_window_cache wcache, rcache;
  const lut6_mask_cols mcols = masked ? lut6_find_mask_cols(p) : lut6_mask_cols{};
  lut6_runs oruns[GMAX][P];  // output pixels of each tile of a step group
  lut6_src src[GMAX];        // where each step's index vectors come from
  for (std::int64_t mg = m0; mg < m1; mg += std::int64_t(G) * P * MT) {
    int mode[GMAX];
    bool two[GMAX];
    int ng = 0;
    for (; ng < G; ++ng) {
      const std::int64_t ms = mg + std::int64_t(ng) * P * MT;
      if (ms >= m1) break;
      lut6_src& sr = src[ng];
      sr.p = &p;
      sr.taps = pw.taps;
      sr.groups = pw.groups;
      sr.ksteps = pw.ksteps;
      sr.buf = nullptr;
      sr.masked = masked;
      bool direct = !masked;
      for (int i = 0; i < P; ++i) {
        const std::int64_t mi = ms + std::int64_t(i) * MT;
        const std::int64_t mb = mi < m1 ? mi : ms;  // an absent tile repeats tile 0 (never stored)
        sr.m[i] = mb;
        sr.mr[i] = static_cast<int>((m1 - mb) < MT ? (m1 - mb) : MT);
        lut6_find_runs(p.pix_off + mb, sr.mr[i], sr.runs[i], true, &wcache);
        if (masked) lut6_keep_masks(p, mcols, mb, sr.keep[i]);
        direct = direct && sr.runs[i].cnt == 1;
      }
      // prepared (contiguous, L1-friendly) index vectors whenever they fit: the
      // group planes of a direct read are group_stride apart (L1 set conflicts)
      mode[ng] = can_prep ? 1 : (direct ? 0 : 2);
      two[ng] = ms + MT < m1;
      for (int i = 0; i < P && nrg > 0; ++i) {  // the tiles' residual index bytes
        lut6_runs rr;
        lut6_find_runs(bo->res_pix_off + sr.m[i], sr.mr[i], rr, true, &rcache);
        for (std::int32_t g = rg0; g < rg1; ++g)
          rbuf[(ng * P + i) * nrg + (g - rg0)] = lut6_gather(bo->res + g * bo->res_group_stride, rr,
                                                             bo->res_pix_off + sr.m[i], sr.mr[i]);
      }
      if (mode[ng] == 1) {  // gather every (tile, tap, group) vector once for all channel blocks
        __m512i* buf = ibuf + std::int64_t(ng) * P * ksteps;
        for (int i = 0; i < (two[ng] ? 2 : 1); ++i)
          lut6_prepare(p, sr.runs[i], p.pix_off + sr.m[i], sr.mr[i], pw,
                       masked ? sr.keep[i] : nullptr, buf + std::int64_t(i) * ksteps);
        sr.buf = buf;
      }
    }
    // channels in windows of WC (WB blocks): the codes of a window are
    // complete output bytes, written before the next window starts
    if (fast_bo)
      for (int gi = 0; gi < ng; ++gi)
        for (int i = 0; i < (two[gi] ? 2 : 1); ++i)
          lut6_find_runs(bo->pix_off + src[gi].m[i], src[gi].mr[i], oruns[gi][i]);
    const std::int32_t bend = (n1 + NB - 1) / NB;
    for (std::int32_t wb = n0 / NB; wb < bend; wb += WB) {
      const std::int32_t cw0 = wb * NB, cw1 = cw0 + WC < n1 ? cw0 + WC : n1;
      lut6_fuse fz_g[GMAX];  // codes straight from lut6_block's registers
      if (fast_bo)
        for (int gi = 0; gi < ng; ++gi) {
          lut6_fuse& fz = fz_g[gi];
          fz.thr16 = thr16 + (cw0 - n0) * levels * R;
          fz.levels = levels;
          fz.cs = cw0;
          fz.n1 = n1;
          fz.lo = static_cast<std::uint8_t>(ep.lo);
          fz.ts = R;
          fz.rg0 = rg0;
          fz.res_lo = has_res ? bo->res_ch_lo : 0;
          fz.res_n = has_res ? bo->res_channels : 0;
          fz.keep_sums = want_u8;
          for (int i = 0; i < P; ++i) {
            fz.stage[i] = i == 0 || two[gi] ? stage + std::int64_t(gi * P + i) * WC * 64 : nullptr;
            fz.rb[i] = nrg > 0 ? rbuf + (gi * P + i) * nrg : nullptr;
          }
        }
      for (std::int32_t b = wb; b < wb + WB && b < bend; ++b) {
        const std::uint8_t* tb = pw.tables.data() + std::int64_t(b) * ksteps * NB * 64;
        const std::uint8_t* wl = pw.widen_len.data() + std::int64_t(b) * ksteps;
        alignas(64) __m512i evs_g[GMAX][P * NB], ods_g[GMAX][P * NB], part[GMAX][2 * P * NB];
        bool flushed_g[GMAX] = {};
        for (int gi = 0; gi < ng; ++gi) fz_g[gi].c0 = b * NB;
        const lut6_fuse* const fzs = fast_bo ? fz_g : nullptr;
        if (kc < ksteps)  // K chunks: a table chunk serves every step of the group from L1
          for (std::int32_t k0 = 0; k0 < ksteps; k0 += kc) {
            const std::int32_t k1 = k0 + kc < ksteps ? k0 + kc : ksteps;
            const std::uint8_t* tk = tb + std::int64_t(k0) * NB * 64;
            for (int gi = 0; gi < ng; ++gi) {
              if (two[gi])
                lut6_block<1, 2>(src[gi], tk, k0, k1, ksteps, wl, F, evs_g[gi], ods_g[gi], part[gi],
                                 flush32, flushed_g[gi], fzs ? fzs + gi : nullptr);
              else
                lut6_block<1, 1>(src[gi], tk, k0, k1, ksteps, wl, F, evs_g[gi], ods_g[gi], part[gi],
                                 flush32, flushed_g[gi], fzs ? fzs + gi : nullptr);
            }
          }
        for (int gi = 0; gi < ng; ++gi) {
          const lut6_src& sr = src[gi];
          __m512i* evs = evs_g[gi];
          __m512i* ods = ods_g[gi];
          bool flushed = flushed_g[gi];
          if (kc >= ksteps) {
            if (F < ksteps) std::memset(flush32, 0, sizeof(flush32));
            if (mode[gi] == 1) {
              if (two[gi])
                lut6_block<1, 2>(sr, tb, 0, ksteps, ksteps, wl, F, evs, ods, nullptr, flush32,
                                 flushed, fzs ? fzs + gi : nullptr);
              else
                lut6_block<1, 1>(sr, tb, 0, ksteps, ksteps, wl, F, evs, ods, nullptr, flush32,
                                 flushed, fzs ? fzs + gi : nullptr);
            } else if (mode[gi] == 0) {
              lut6_block<0, 2>(sr, tb, 0, ksteps, ksteps, wl, F, evs, ods, nullptr, flush32,
                               flushed, fzs ? fzs + gi : nullptr);
            } else {
              lut6_block<2, 2>(sr, tb, 0, ksteps, ksteps, wl, F, evs, ods, nullptr, flush32,
                               flushed, fzs ? fzs + gi : nullptr);
            }
          }
          if (fast_bo && !flushed && !want_u8) continue;  // codes written by lut6_block
          for (int i = 0; i < (two[gi] ? 2 : 1); ++i) {
            const std::int64_t mt = sr.m[i];
            const int mr = sr.mr[i];
            std::uint8_t* stg = stage + std::int64_t(gi * P + i) * WC * 64;
            for (int j = 0; j < NB; ++j) {
              const std::int32_t c = b * NB + j;
              if (c >= n1) break;
              const std::int32_t bias = ep.bias ? ep.bias[c] : 0;
              const __m512i ev = evs[i * NB + j], ov = ods[i * NB + j];
              const std::int32_t rc = has_res ? c - bo->res_ch_lo : -1;
              const bool res_here = has_res && rc >= 0 && rc < bo->res_channels;
              // scalar path: raw int32 / u8 NHWC outputs, and the bit-plane
              // codes of flushed (int32) sums
              alignas(64) std::uint16_t ue[32], uo[32];
              _mm512_store_si512(ue, ev);
              _mm512_store_si512(uo, ov);
              const std::int32_t* f = flush32 + (i * NB + j) * 64;
              alignas(64) std::uint8_t cb[64];
              for (int r = 0; r < mr; ++r) {
                std::int32_t v =
                    static_cast<std::int32_t>((r & 1 ? uo[r >> 1] : ue[r >> 1]) + corr[c]);
                if (flushed) v += f[r];
                if (want_u8) ref::epilogue_row(ep, mt + r, c, 1, &v);
                if (fast_bo && flushed)
                  cb[r] = requant_one(v + bias, ep.qm[c], ep.rshift[c], ep.zp_out, ep.lo, ep.hi,
                                      res_here ? bitplane_res_code(*bo, mt + r, c) : 0,
                                      res_here ? ep.res_qm[c] : 0, ep.offset ? ep.offset[c] : 0);
              }
              if (fast_bo && flushed) std::memcpy(stg + std::int64_t(c - cw0) * 64, cb, 64);
            }
          }
        }
      }
      if (!fast_bo) continue;
      // the window's output index bytes: cpo channels' codes per byte
      const int cpo = bitplane_cpb(bo->b_out);
      const std::int32_t go0 = cw0 / cpo, go1 = (cw1 + cpo - 1) / cpo;
      __m128i osh[3];
      for (int j = 0; j < 3; ++j) osh[j] = _mm_cvtsi32_si128(bo->b_out * j);
      for (int gi = 0; gi < ng; ++gi)
        for (int i = 0; i < (two[gi] ? 2 : 1); ++i) {
          const std::uint8_t* stg = stage + std::int64_t(gi * P + i) * WC * 64;
          for (std::int32_t go = go0; go < go1; ++go) {
            const std::uint8_t* sc = stg + std::int64_t(cpo * go - cw0) * 64;
            __m512i v = _mm512_load_si512(sc);
            for (int j = 1; j < cpo && cpo * go + j < cw1; ++j)
              v = _mm512_or_si512(v, _mm512_sll_epi16(_mm512_load_si512(sc + 64 * j), osh[j]));
            lut6_scatter(bo->base + go * bo->group_stride, oruns[gi][i], bo->pix_off + src[gi].m[i],
                         src[gi].mr[i], v);
          }
        }
    }
  }
}

/// Whether the fused epilogue takes the bit-plane output `bo` (none, or one
/// without a residual or with 2-bit residual codes); the dispatcher hands the
/// others to the scalar twin (bitplane/qgemm_bitplane.hpp).
inline bool lut6_takes_output(const epilogue& ep, const bitplane_output* bo) noexcept {
  return !bo || !bo->res || (bo->res_bits == 2 && ep.res_qm);
}

/// Rows [m0, m1), channels [n0, n1) (multiples of 12 = lcm(NB, 3), or n1 = n;
/// n1 < 0: all); bo, if set, one that lut6_takes_output(). See the header
/// comment.
MIXQ_TARGET_AVX512VBMI inline void qgemm_bitplane_lut6(const bitplane_problem& p,
                                                       const bitplane_weights& pw,
                                                       const epilogue& ep,
                                                       const bitplane_output* bo, std::int64_t m0,
                                                       std::int64_t m1, std::int32_t n0 = 0,
                                                       std::int32_t n1 = -1) noexcept {
  if (n1 < 0) n1 = pw.n;
  const std::int32_t cap = !bo ? n1 - n0 : (bo->res ? lut6_res_range : lut6_range);
  const std::int32_t parts = (n1 - n0 + cap - 1) / cap;
  const std::int32_t width = parts <= 1 ? n1 - n0 : ((n1 - n0 + parts - 1) / parts + 11) / 12 * 12;
  for (std::int32_t c = n0; c < n1; c += width)
    qgemm_bitplane_lut6_range(p, pw, ep, bo, m0, m1, c, n1 - c < width ? n1 : c + width);
}

/// u8 codes -> bit-plane index planes, 64 pixels per step (C % 16 == 0,
/// C <= 256; else the scalar converter). Pixel x at codes + x*pix_stride.
MIXQ_TARGET_AVX512VBMI inline void bitplane_from_codes_avx512(
    const std::uint8_t* codes, std::int64_t npix, std::int64_t pix_stride, std::int32_t c, int b_a,
    std::uint8_t* dst, std::int64_t group_stride) noexcept {
  if (c % 16 != 0 || c > 256) {
    bitplane_from_codes_ref(codes, npix, pix_stride, c, b_a, dst, group_stride);
    return;
  }
  // vpermb control: byte 4 ch + i <- byte 16 i + ch (4 pixels x 16 channels -> [ch][4 px])
  alignas(64) std::uint8_t ctl[64];
  for (int ch = 0; ch < 16; ++ch)
    for (int i = 0; i < 4; ++i) ctl[4 * ch + i] = static_cast<std::uint8_t>(16 * i + ch);
  const __m512i tctl = _mm512_load_si512(ctl);
  alignas(64) std::uint8_t planes[256][64];
  const int cpb = bitplane_cpb(b_a);
  const std::int32_t groups = bitplane_groups(c, b_a);
  for (std::int64_t x0 = 0; x0 < npix; x0 += 64) {
    const int cnt = (npix - x0) < 64 ? static_cast<int>(npix - x0) : 64;
    for (std::int32_t s = 0; s < c / 16; ++s) {
      __m512i r[16];
      for (int q = 0; q < 16; ++q) {
        const std::uint8_t* px[4];
        for (int i = 0; i < 4; ++i) {
          const std::int64_t x = x0 + 4 * q + i;
          px[i] = codes + (x < npix ? x : npix - 1) * pix_stride + 16 * s;
        }
        __m512i v =
            _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(px[0])));
        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(px[1])), 1);
        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(px[2])), 2);
        v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(px[3])), 3);
        r[q] = _mm512_permutexvar_epi8(tctl, v);  // dword ch = channel ch of pixels 4q..4q+3
      }
      transpose16(r);  // r[ch] dword q = channel ch of pixels 4q..4q+3: natural pixel order
      for (int ch = 0; ch < 16; ++ch) _mm512_store_si512(planes[16 * s + ch], r[ch]);
    }
    const __mmask64 km = lut6_lane_mask(0, cnt);
    for (std::int32_t g = 0; g < groups; ++g) {
      __m512i v = _mm512_load_si512(planes[cpb * g]);
      for (int j = 1; j < cpb && cpb * g + j < c; ++j)
        v = _mm512_or_si512(v, _mm512_slli_epi16(_mm512_load_si512(planes[cpb * g + j]), b_a * j));
      _mm512_mask_storeu_epi8(dst + g * group_stride + x0, km, v);
    }
  }
}

}  // namespace avx512vbmi
}  // namespace detail
}  // namespace kernels
}  // namespace mixq

MIXQ_X86_DIAG_POP
