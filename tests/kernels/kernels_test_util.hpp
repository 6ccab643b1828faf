#pragma once
// Helpers for the kernel tests (tests/kernels/*.cpp), written independently
// of kernels/ except for the types they fill in:
// - rng: mixq's one generator (core/rng.hpp, PCG32) with the integer draws
//   the tests use;
// - qgemm: deterministic random operands, an oracle (int64 sums, requant by
//   exact integer division) and a runner that checks one kernel on one
//   problem (check_kernel), the kernels this CPU can run;
// - conv, pooling, linear: padded buffers with a garbage over-read tail,
//   requant parameters that spread the outputs over the whole code range (so
//   the comparison is not all clamps), ISA skips with a visible message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <mixq/core/rng.hpp>
#include <mixq/kernels/conv/qconv.hpp>
#include <mixq/kernels/conv/qconv_ref.hpp>
#include <mixq/kernels/qgemm.hpp>

namespace ktest {

namespace mk = mixq::kernels;

/// mixq::rng with the integer draws of the kernel tests.
struct rng {
  mixq::rng gen;
  explicit rng(std::uint64_t seed) : gen(seed) {}
  /// 64 random bits.
  std::uint64_t next() {
    const std::uint64_t hi = gen.next_u32();
    return hi << 32 | gen.next_u32();
  }
  /// Uniform integer in [lo, hi].
  int uniform(int lo, int hi) {
    return lo + static_cast<int>(gen.below(static_cast<std::uint32_t>(hi - lo + 1)));
  }
};

// ---- qgemm: operands, oracle, runner --------------------------------------

/// Round t / 2^s to nearest, ties away from zero, by integer division (an
/// independent restatement of the rule in requant.hpp).
inline std::int64_t oracle_round_shift(std::int64_t t, int s) {
  const __int128 d = static_cast<__int128>(1) << s;
  const __int128 tt = t;
  __int128 q = tt / d;  // truncates toward zero
  __int128 r = tt % d;
  if (r < 0) r = -r;
  if (2 * r >= d) q += (tt < 0 ? -1 : 1);
  return static_cast<std::int64_t>(q);
}

enum class data_mode { random, max_pos, max_neg, zero };

/// One problem: W [n][taps][k_seg], A buffer, offsets, epilogue params.
struct problem_data {
  std::int64_t m = 0;
  std::int32_t n = 0, taps = 1, k_seg = 0;
  int bw = 8, ba = 8;
  std::vector<std::int8_t> w;
  std::vector<std::uint8_t> a;  // includes a_overread_bytes padding
  std::vector<std::int64_t> pix_off, tap_off;
  std::vector<std::int32_t> tap_idx;  // non-empty: sum only these packed taps (increasing)
  std::vector<std::int32_t> bias, qm, rshift, res_qm;
  std::vector<std::int32_t> offset;  // empty: no offset array (nullptr)
  std::vector<std::uint8_t> res;
  std::vector<std::int64_t> res_off, out_off;
  std::int64_t out_bytes = 0;
  std::int32_t zp_out = 0, lo = 0, hi = 255;
  bool use_res = false;
};

inline void fill_codes(problem_data& d, data_mode mode, rng& r) {
  const int amax = (1 << d.ba) - 1, wmin = -(1 << (d.bw - 1)), wmax = (1 << (d.bw - 1)) - 1;
  for (auto& v : d.w) {
    switch (mode) {
      case data_mode::random:
        v = static_cast<std::int8_t>(r.uniform(wmin, wmax));
        break;
      case data_mode::max_pos:
        v = static_cast<std::int8_t>(wmax);
        break;
      case data_mode::max_neg:
        v = static_cast<std::int8_t>(wmin);
        break;
      case data_mode::zero:
        v = 0;
        break;
    }
  }
  // Every byte of A (also the padding, also bytes between rows) gets a code,
  // so a kernel that reads a wrong byte produces a wrong answer.
  for (auto& v : d.a)
    v = static_cast<std::uint8_t>(mode == data_mode::random ? r.uniform(0, amax) : amax);
  if (mode == data_mode::zero)
    for (auto& v : d.a) v = static_cast<std::uint8_t>(r.uniform(0, amax));
}

/// Per-channel requant params: multipliers spanning typical conv scales.
inline void fill_epilogue(problem_data& d, rng& r, bool with_bias, bool with_res) {
  d.bias.assign(d.n, 0);
  d.qm.assign(d.n, 0);
  d.rshift.assign(d.n, 31);
  d.res_qm.assign(d.n, 0);
  d.offset.assign(d.n, 0);
  const std::int64_t kt = std::int64_t(d.taps) * d.k_seg;
  const double acc_scale = double(kt) * ((1 << d.ba) - 1) * (1 << (d.bw - 1));
  for (std::int32_t j = 0; j < d.n; ++j) {
    if (with_bias) d.bias[j] = r.uniform(-(1 << 20), 1 << 20);
    // multiplier so that a typical |acc| maps to a few output steps
    const double mult = (1 + r.uniform(0, 1000)) / (250.0 * (1.0 + acc_scale / 64.0));
    const mk::quant_multiplier q = mk::quantize_multiplier(mult);
    d.qm[j] = q.qm;
    d.rshift[j] = q.rshift;
    if (j % 7 == 3) d.qm[j] = 0;  // a dead channel
    // rounding offsets of both signs over the whole range, the ends included
    const int kind = r.uniform(0, 5);
    d.offset[j] = kind == 0   ? mk::max_requant_offset
                  : kind == 1 ? -mk::max_requant_offset
                              : r.uniform(-mk::max_requant_offset, mk::max_requant_offset);
    if (with_res) {
      // residual multiplier res_mult in about [-0.5, 1.5] output steps per code,
      // expressed on the channel's shift: res_qm = res_mult * 2^rshift
      const double res_mult = (r.uniform(0, 2000) - 500) / 1000.0;
      double q = res_mult * double(std::int64_t(1) << d.rshift[j]);
      if (q > 2147483647.0) q = 2147483647.0;
      if (q < -2147483648.0) q = -2147483648.0;
      d.res_qm[j] = static_cast<std::int32_t>(q);
    }
  }
  d.zp_out = r.uniform(-3, 3);
  d.lo = r.uniform(0, 2);
  d.hi = (1 << r.uniform(2, 8)) - 1;
  d.use_res = with_res;
}

/// Plain GEMM problem with row stride lda >= k (extra bytes between rows).
inline problem_data make_gemm(std::int64_t m, std::int32_t n, std::int32_t k, int bw, int ba,
                              std::int64_t lda, data_mode mode, rng& r) {
  problem_data d;
  d.m = m;
  d.n = n;
  d.taps = 1;
  d.k_seg = k;
  d.bw = bw;
  d.ba = ba;
  d.w.resize(std::size_t(n) * k);
  d.a.resize(std::size_t((m - 1) * lda + k) + mk::a_overread_bytes);
  d.pix_off.resize(m);
  for (std::int64_t i = 0; i < m; ++i) d.pix_off[i] = i * lda;
  d.tap_off = {0};
  fill_codes(d, mode, r);
  return d;
}

/// 3x3 (or kh x kw) conv over a zero-padded NHWC image (padding bytes are
/// codes too, the kernel must not care which): H x W output at stride s.
inline problem_data make_conv(int h, int wd, int c, std::int32_t n, int kh, int kw, int s, int bw,
                              int ba, data_mode mode, rng& r) {
  problem_data d;
  const int ho = (h - 1) / s + 1, wo = (wd - 1) / s + 1;
  const int hp = h + kh - 1, wp = wd + kw - 1;
  d.m = std::int64_t(ho) * wo;
  d.n = n;
  d.taps = kh * kw;
  d.k_seg = c;
  d.bw = bw;
  d.ba = ba;
  d.w.resize(std::size_t(n) * d.taps * c);
  d.a.resize(std::size_t(hp) * wp * c + mk::a_overread_bytes);
  for (int dy = 0; dy < kh; ++dy)
    for (int dx = 0; dx < kw; ++dx) d.tap_off.push_back((std::int64_t(dy) * wp + dx) * c);
  for (int y = 0; y < ho; ++y)
    for (int x = 0; x < wo; ++x)
      d.pix_off.push_back((std::int64_t(y) * s * wp + std::int64_t(x) * s) * c);
  fill_codes(d, mode, r);
  return d;
}

/// Output rows at stride ldo >= n (a gap the kernel must not touch), and an
/// optional residual image with the same layout.
inline void layout_outputs(problem_data& d, std::int64_t ldo, rng& r) {
  d.out_off.resize(d.m);
  d.res_off.resize(d.m);
  for (std::int64_t i = 0; i < d.m; ++i) d.out_off[i] = d.res_off[i] = i * ldo + 1;
  d.out_bytes = d.m * ldo + 1 + 64;
  d.res.resize(std::size_t(d.out_bytes) + mk::res_overread_bytes);
  for (auto& v : d.res) v = static_cast<std::uint8_t>(r.uniform(0, 255));
}

/// Oracle accumulators (no bias).
inline std::vector<std::int64_t> oracle_acc(const problem_data& d) {
  std::vector<std::int64_t> c(std::size_t(d.m) * d.n, 0);
  for (std::int64_t i = 0; i < d.m; ++i)
    for (std::int32_t j = 0; j < d.n; ++j) {
      std::int64_t s = 0;
      for (std::int32_t t = 0; t < d.taps; ++t) {
        if (!d.tap_idx.empty() &&
            std::find(d.tap_idx.begin(), d.tap_idx.end(), t) == d.tap_idx.end())
          continue;
        for (std::int32_t k = 0; k < d.k_seg; ++k)
          s += std::int64_t(d.a[std::size_t(d.pix_off[i] + d.tap_off[t] + k)]) *
               d.w[(std::size_t(j) * d.taps + t) * d.k_seg + k];
      }
      c[std::size_t(i) * d.n + j] = s;
    }
  return c;
}

inline std::uint8_t oracle_requant(const problem_data& d, std::int64_t acc, std::int64_t i,
                                   std::int32_t j) {
  const std::int64_t v = acc + d.bias[j];
  std::int64_t t = v * d.qm[j];
  if (d.use_res) t += std::int64_t(d.res[std::size_t(d.res_off[i] + j)]) * d.res_qm[j];
  if (!d.offset.empty()) t += d.offset[j];
  std::int64_t y = d.zp_out + oracle_round_shift(t, d.rshift[j]);
  y = y < d.lo ? d.lo : (y > d.hi ? d.hi : y);
  return static_cast<std::uint8_t>(y);
}

/// Makes exact requantization ties that only the offsets produce: for every
/// third live channel j, row i = j % m gets t = v * qm + offset on a half
/// step (r + 1/2) 2^rshift with r drawn so the code is not clamped (negative
/// ties where the zero point allows), by moving bias[j] and choosing
/// offset[j] with |offset| <= qm / 2. Channels whose bias would move by more
/// than 2^20 are left alone. Call after fill_epilogue, with want =
/// oracle_acc(d).
inline void make_offset_ties(problem_data& d, const std::vector<std::int64_t>& want, rng& r) {
  if (d.hi - d.lo < 1) return;
  for (std::int32_t j = 1; j < d.n; j += 3) {
    if (d.qm[j] == 0 || d.rshift[j] > 50) continue;
    const std::int64_t i = j % d.m;
    const std::int64_t step = std::int64_t(1) << d.rshift[j];
    std::int64_t res_t = 0;
    if (d.use_res) res_t = std::int64_t(d.res[std::size_t(d.res_off[i] + j)]) * d.res_qm[j];
    // target code offset q in [lo - zp, hi - zp - 1]: a tie between q and q + 1
    const std::int64_t q = r.uniform(d.lo - d.zp_out, d.hi - d.zp_out - 1);
    const std::int64_t target = q * step + step / 2;  // t wanted
    const std::int64_t v0 = want[std::size_t(i * d.n + j)] + d.bias[j];
    // v * qm + offset = target - res_t, offset = remainder in [-qm/2, qm/2]
    const std::int64_t need = target - res_t;
    const std::int64_t v = (need >= 0 ? need + d.qm[j] / 2 : need - d.qm[j] / 2) / d.qm[j];
    const std::int64_t off = need - v * d.qm[j];
    const std::int64_t moved = v - v0;
    if (moved > (1 << 20) || moved < -(1 << 20) || off < -mk::max_requant_offset ||
        off > mk::max_requant_offset)
      continue;
    d.bias[j] = static_cast<std::int32_t>(d.bias[j] + moved);
    d.offset[j] = static_cast<std::int32_t>(off);
  }
}

/// Outputs whose code changes when the offsets are dropped (0: the data
/// cannot tell a path that ignores the offsets).
inline std::int64_t offset_sensitive_outputs(const problem_data& d,
                                             const std::vector<std::int64_t>& want) {
  problem_data z = d;
  z.offset.clear();
  std::int64_t k = 0;
  for (std::int64_t i = 0; i < d.m; ++i)
    for (std::int32_t j = 0; j < d.n; ++j)
      k += oracle_requant(d, want[std::size_t(i * d.n + j)], i, j) !=
           oracle_requant(z, want[std::size_t(i * d.n + j)], i, j);
  return k;
}

/// Runs kernel `id` on d (raw int32 and requantized u8, optionally through
/// qgemm_parallel) and checks every output and every untouched byte.
/// Returns the number of mismatches (also reported through CHECK).
inline int check_kernel(mk::kernel_id id, const problem_data& d,
                        const std::vector<std::int64_t>& want, bool parallel = false) {
  const mk::packed_weights pw =
      mk::pack_weights_for(id, d.w.data(), d.n, d.taps, d.k_seg, d.bw, d.ba);
  mk::qgemm_problem p;
  p.m = d.m;
  p.a = d.a.data();
  p.pix_off = d.pix_off.data();
  p.tap_off = d.tap_off.data();
  std::vector<std::int64_t> sub_off;  // a tap subset: the selected taps' offsets
  if (!d.tap_idx.empty()) {
    for (std::int32_t t : d.tap_idx) sub_off.push_back(d.tap_off[std::size_t(t)]);
    p.tap_off = sub_off.data();
    p.tap_idx = d.tap_idx.data();
    p.taps = static_cast<std::int32_t>(d.tap_idx.size());
  }
  int bad = 0;
  // raw int32
  {
    const std::int64_t ld = d.n + 3;
    std::vector<std::int32_t> out(std::size_t(d.m * ld + 8), 0x5A5A5A5A);
    mk::epilogue ep;
    ep.bias = d.bias.data();
    ep.out_i32 = out.data();
    ep.ld_i32 = ld;
    if (parallel)
      mk::qgemm_parallel(p, pw, ep);
    else
      mk::qgemm(p, pw, ep);
    for (std::int64_t i = 0; i < d.m; ++i)
      for (std::int64_t j = 0; j < ld; ++j) {
        const std::int32_t got = out[std::size_t(i * ld + j)];
        const std::int64_t exp =
            j < d.n ? want[std::size_t(i * d.n + j)] + d.bias[std::size_t(j)] : 0x5A5A5A5A;
        if (got != exp && bad++ < 5)
          FAIL_CHECK(std::string(pw.name.data())
                     << " raw m=" << i << " n=" << j << " got " << got << " want " << exp << " (M="
                     << d.m << " N=" << d.n << " taps=" << d.taps << " k_seg=" << d.k_seg << ")");
      }
  }
  // requantized u8 (+ residual)
  {
    std::vector<std::uint8_t> out(std::size_t(d.out_bytes), 0xA7);
    mk::epilogue ep;
    ep.bias = d.bias.data();
    ep.qm = d.qm.data();
    ep.rshift = d.rshift.data();
    ep.offset = d.offset.empty() ? nullptr : d.offset.data();
    ep.zp_out = d.zp_out;
    ep.lo = d.lo;
    ep.hi = d.hi;
    ep.out = out.data();
    ep.out_pix_off = d.out_off.data();
    if (d.use_res) {
      ep.res = d.res.data();
      ep.res_pix_off = d.res_off.data();
      ep.res_qm = d.res_qm.data();
    }
    if (parallel)
      mk::qgemm_parallel(p, pw, ep);
    else
      mk::qgemm(p, pw, ep);
    std::vector<std::uint8_t> exp(out.size(), 0xA7);
    for (std::int64_t i = 0; i < d.m; ++i)
      for (std::int32_t j = 0; j < d.n; ++j)
        exp[std::size_t(d.out_off[i] + j)] =
            oracle_requant(d, want[std::size_t(i * d.n + j)], i, j);
    for (std::size_t b = 0; b < out.size(); ++b)
      if (out[b] != exp[b] && bad++ < 10)
        FAIL_CHECK(std::string(pw.name.data())
                   << " u8 byte " << b << " got " << int(out[b]) << " want " << int(exp[b])
                   << " (M=" << d.m << " N=" << d.n << " taps=" << d.taps << " k_seg=" << d.k_seg
                   << " res=" << d.use_res << ")");
  }
  CHECK(mk::last_used_kernel() == std::string(pw.name.data()));
  return bad;
}

/// Kernels of the enumerator that this CPU can run; the others are reported
/// with a visible MESSAGE (never a silent pass).
inline std::vector<mk::kernel_info> runnable_kernels() {
  std::size_t cnt = 0;
  const mk::kernel_info* t = mk::kernel_table(&cnt);
  std::vector<mk::kernel_info> out;
  for (std::size_t i = 0; i < cnt; ++i) {
    if (mk::kernel_runnable(t[i].id))
      out.push_back(t[i]);
    else
      MESSAGE("SKIPPED kernel " << std::string(t[i].name) << ": this CPU lacks ISA "
                                << std::string(mk::isa_name(t[i].level))
                                << std::string(t[i].needs_vbmi ? " + VBMI/BITALG" : ""));
  }
  return out;
}

// ---- conv, pooling, linear -------------------------------------------------

inline const mk::isa all_isas[] = {mk::isa::scalar, mk::isa::avx2, mk::isa::avx512, mk::isa::neon,
                                   mk::isa::neon_dotprod};

/// True when `l` runs here; prints a visible skip message otherwise.
inline bool isa_or_skip(mk::isa l, const char* what) {
  if (mk::isa_supported(l)) return true;
  MESSAGE("SKIPPED " << std::string(what) << " for ISA " << std::string(mk::isa_name(l))
                     << ": not available on this CPU/build");
  return false;
}

/// Whether packed weights use the kernel the dispatcher picks for ISA `l`
/// (i.e. forcing the ISA through the pack level worked).
inline bool kernel_is_dispatch_choice(const mk::packed_weights& pw, mk::isa l) {
  return pw.kernel == mk::choose_kernel(l, pw.b_w, pw.b_a, pw.n);
}

/// Prints once per ISA when the dispatcher has no SIMD kernel for it yet,
/// so a run that only exercised the scalar fallback says so.
inline void note_fallback(mk::isa l) {
  if (l != mk::isa::scalar && mk::choose_kernel(l, 4, 4, 32) == mk::kernel_id::scalar_1x1c1)
    MESSAGE("NOTE: no SIMD kernel is registered for ISA "
            << std::string(mk::isa_name(l)) << "; its runs exercise the scalar fallback");
}

inline mk::conv_geometry make_geometry(std::int64_t batch, std::int64_t h, std::int64_t w,
                                       std::int64_t c_in, std::int64_t c_out, int kernel,
                                       int stride) {
  mk::conv_geometry g;
  g.batch = batch;
  g.h = h;
  g.w = w;
  g.c_in = c_in;
  g.c_out = c_out;
  g.kernel = kernel;
  g.stride = stride;
  return g;
}

/// Unpadded NHWC codes -> padded buffer [b][h+2][w+2][c] with halo `halo`
/// and an over-read tail of garbage (0xFF) that must never change a result.
inline std::vector<std::uint8_t> make_padded(
    const std::vector<std::uint8_t>& x, std::int64_t b, std::int64_t h, std::int64_t w,
    std::int64_t c, std::uint8_t halo, std::int64_t extra = std::int64_t(mk::a_overread_bytes)) {
  const std::int64_t wp = w + 2, hp = h + 2;
  std::vector<std::uint8_t> p(static_cast<size_t>(b * hp * wp * c + extra), 0xFF);
  for (std::int64_t i = 0; i < b; ++i)
    for (std::int64_t y = 0; y < hp; ++y)
      for (std::int64_t xx = 0; xx < wp; ++xx)
        for (std::int64_t ch = 0; ch < c; ++ch) {
          const bool inside = y >= 1 && y <= h && xx >= 1 && xx <= w;
          p[static_cast<size_t>(((i * hp + y) * wp + xx) * c + ch)] =
              inside ? x[static_cast<size_t>(((i * h + y - 1) * w + xx - 1) * c + ch)] : halo;
        }
  return p;
}

/// Per-channel requant parameters scaled to the accumulator range of a
/// reduction of depth k with (bw, ba) codes, outputs of b_out bits.
struct requant_set {
  std::vector<std::int32_t> bias, qm, rshift, res_qm, offset;
  std::int32_t zp = 0, lo = 0, hi = 255;
};

inline int floor_log2(std::int64_t v) {
  int l = 0;
  while (v > 1) {
    v >>= 1;
    ++l;
  }
  return l;
}

inline requant_set make_requant(std::int64_t n, std::int64_t k, int bw, int ba, int b_out, rng& r) {
  requant_set q;
  const std::int64_t acc_max = k * ((1 << ba) - 1) * (1 << (bw - 1));
  const int L = floor_log2(acc_max);
  q.zp = r.uniform(0, 3);
  q.lo = 0;
  q.hi = (1 << b_out) - 1;
  for (std::int64_t j = 0; j < n; ++j) {
    q.bias.push_back(r.uniform(-1000, 1000));
    q.qm.push_back(static_cast<std::int32_t>((1u << 30) + (r.next() % (1u << 30))));
    int sh = L + 28 - b_out + r.uniform(-2, 1);
    if (sh < 1) sh = 1;
    if (sh > 62) sh = 62;
    q.rshift.push_back(sh);
    q.offset.push_back(r.uniform(-mk::max_requant_offset, mk::max_requant_offset));
    // residual weight: a code step of the residual moves the output by ~0.25..2 steps
    std::int64_t rq = (std::int64_t(1) << sh) / (1 << r.uniform(0, 3));
    rq = rq * (r.uniform(0, 1) ? 1 : -1) / 2 + r.uniform(-5, 5);
    if (rq > INT32_MAX) rq = INT32_MAX;
    if (rq < INT32_MIN) rq = INT32_MIN;
    q.res_qm.push_back(static_cast<std::int32_t>(rq));
  }
  return q;
}

inline std::vector<std::uint8_t> random_codes(std::int64_t count, int bits, rng& r) {
  std::vector<std::uint8_t> v(static_cast<size_t>(count));
  for (auto& e : v) e = static_cast<std::uint8_t>(r.uniform(0, (1 << bits) - 1));
  return v;
}

inline std::vector<std::int8_t> random_weights(std::int64_t count, int bits, rng& r) {
  std::vector<std::int8_t> v(static_cast<size_t>(count));
  for (auto& e : v)
    e = static_cast<std::int8_t>(r.uniform(-(1 << (bits - 1)), (1 << (bits - 1)) - 1));
  return v;
}

}  // namespace ktest
