// Bit-plane index format + the 64-entry LUT kernel (kernels/.../bitplane/):
// converters, thresholds, and the kernel (SIMD and scalar twin) against an
// oracle computed from the u8 codes with int64 sums and exact-division
// rounding (kernels_test_util.hpp), on GEMMs with tails, 3x3 implicit convs
// over padded planes (stride 1 and 2), every supported (b_w, b_a) pair,
// worst-case codes and the u16 -> int32 flush.
#include <doctest/doctest.h>

#include <climits>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <mixq/kernels/bitplane/qgemm_bitplane.hpp>

#include "kernels_test_util.hpp"

namespace {

namespace mk = mixq::kernels;

bool simd_or_message() {
  if (mk::bitplane_simd_active()) return true;
  MESSAGE(
      "SKIPPED avx512vbmi_lut6 (bit-plane LUT): CPU lacks AVX-512 VBMI/BITALG or MIXQ_ISA < "
      "avx512; "
      "only the scalar twin is checked");
  return false;
}

enum class fill { random, worst_min, worst_max, worst_span };

/// A conv (or GEMM: h = 1, kernel 1, no padding) on a padded u8 NHWC image,
/// converted to bit-plane planes; outputs raw, u8 NHWC and bit-plane.
struct bp_case {
  int bw = 2, ba = 2, bout = 2;
  std::int64_t batch = 1, h = 1, w = 1;
  std::int32_t c = 1, n = 1;
  int ks = 3, stride = 1;
  fill mode = fill::random;
};

struct bp_data {
  bp_case k;
  std::int64_t hp = 0, wp = 0, oh = 0, ow = 0, m = 0;
  std::int32_t groups = 0, taps = 0;
  std::vector<std::uint8_t> codes;                  // [batch][hp][wp][c]
  std::vector<std::uint8_t> planes;                 // [batch][groups][hp][wp] + overread
  std::vector<std::int8_t> wts;                     // [n][taps][c]
  std::vector<std::int64_t> pix_off, tap_off, acc;  // acc: oracle [m][n]
  std::vector<std::int32_t> bias, qm, rshift, offset;
  std::int32_t zp = 0, lo = 0, hi = 3;
};

bp_data make(const bp_case& k, std::uint64_t seed) {
  ktest::rng r(seed);
  bp_data d;
  d.k = k;
  const int pad = k.ks / 2;
  d.hp = k.h + 2 * pad;
  d.wp = k.w + 2 * pad;
  d.oh = (d.hp - k.ks) / k.stride + 1;
  d.ow = (d.wp - k.ks) / k.stride + 1;
  d.m = k.batch * d.oh * d.ow;
  d.groups = mk::bitplane_groups(k.c, k.ba);
  d.taps = k.ks * k.ks;
  const int amax = (1 << k.ba) - 1, wmin = -(1 << (k.bw - 1)), wmax = (1 << (k.bw - 1)) - 1;
  d.codes.assign(std::size_t(k.batch * d.hp * d.wp * k.c), 0);
  for (std::int64_t i = 0; i < k.batch; ++i)
    for (std::int64_t y = pad; y < d.hp - pad; ++y)
      for (std::int64_t x = pad; x < d.wp - pad; ++x)
        for (std::int32_t ch = 0; ch < k.c; ++ch)
          d.codes[std::size_t(((i * d.hp + y) * d.wp + x) * k.c + ch)] =
              static_cast<std::uint8_t>(k.mode == fill::random       ? r.uniform(0, amax)
                                        : k.mode == fill::worst_span ? 0
                                                                     : amax);
  d.wts.resize(std::size_t(k.n) * d.taps * k.c);
  for (auto& v : d.wts)
    v = static_cast<std::int8_t>(
        k.mode == fill::random ? r.uniform(wmin, wmax) : (k.mode == fill::worst_max ? wmax : wmin));
  const std::int64_t plane = d.hp * d.wp, img = plane * d.groups;
  d.planes.assign(std::size_t(k.batch * img) + mk::bitplane_overread_bytes, 0x5A);
  for (std::int64_t i = 0; i < k.batch; ++i)
    mk::bitplane_from_codes_ref(&d.codes[std::size_t(i * plane * k.c)], plane, k.c, k.c, k.ba,
                                &d.planes[std::size_t(i * img)], plane);
  for (std::int32_t t = 0; t < d.taps; ++t) d.tap_off.push_back((t / k.ks) * d.wp + t % k.ks);
  for (std::int64_t i = 0; i < k.batch; ++i)
    for (std::int64_t y = 0; y < d.oh; ++y)
      for (std::int64_t x = 0; x < d.ow; ++x)
        d.pix_off.push_back(i * img + y * k.stride * d.wp + x * k.stride);
  // oracle from the u8 codes
  d.acc.assign(std::size_t(d.m * k.n), 0);
  for (std::int64_t mm = 0; mm < d.m; ++mm) {
    const std::int64_t i = mm / (d.oh * d.ow), y = mm / d.ow % d.oh, x = mm % d.ow;
    for (std::int32_t nn = 0; nn < k.n; ++nn) {
      std::int64_t s = 0;
      for (std::int32_t t = 0; t < d.taps; ++t) {
        const std::int64_t yy = y * k.stride + t / k.ks, xx = x * k.stride + t % k.ks;
        const std::uint8_t* a = &d.codes[std::size_t(((i * d.hp + yy) * d.wp + xx) * k.c)];
        const std::int8_t* wv = &d.wts[std::size_t((std::int64_t(nn) * d.taps + t) * k.c)];
        for (std::int32_t ch = 0; ch < k.c; ++ch) s += std::int64_t(a[ch]) * wv[ch];
      }
      d.acc[std::size_t(mm * k.n + nn)] = s;
    }
  }
  // epilogue: outputs spread over the b_out-bit range
  const double typ = 1.0 + double(d.taps) * k.c * amax * (1 << (k.bw - 1)) / 6.0;
  d.hi = (1 << k.bout) - 1;
  d.lo = r.uniform(0, 1);
  d.zp = r.uniform(-1, 2);
  for (std::int32_t nn = 0; nn < k.n; ++nn) {
    // some channels saturate at hi / lo for every pixel (thresholds <= 0 or beyond every sum)
    const int bsc = nn % 7 == 2 ? 8 : (nn % 7 == 6 ? -8 : 0);
    d.bias.push_back(bsc ? int(bsc * typ * 6) : r.uniform(-int(typ), int(typ)));
    const mk::quant_multiplier q = mk::quantize_multiplier((1 + r.uniform(0, 600)) / (100.0 * typ));
    d.qm.push_back(nn % 11 == 5 ? 0 : q.qm);
    d.rshift.push_back(nn % 11 == 5 ? 31 : q.rshift);
    // rounding offsets; a dead channel's offset of half a step is its whole
    // output (a code of zp + 1), so a path that drops the offsets fails
    d.offset.push_back(nn % 11 == 5 ? mk::max_requant_offset
                                    : r.uniform(-mk::max_requant_offset, mk::max_requant_offset));
  }
  return d;
}

std::uint8_t oracle_code(const bp_data& d, std::int64_t acc, std::int32_t nn) {
  const std::int64_t t =
      (acc + d.bias[std::size_t(nn)]) * d.qm[std::size_t(nn)] + d.offset[std::size_t(nn)];
  std::int64_t y = d.zp + ktest::oracle_round_shift(t, d.rshift[std::size_t(nn)]);
  y = y < d.lo ? d.lo : (y > d.hi ? d.hi : y);
  return static_cast<std::uint8_t>(y);
}

/// Runs the SIMD kernel (simd = true) or the scalar twin; checks raw int32,
/// u8 NHWC and bit-plane outputs. Returns mismatches.
// The problem over d's planes and the requant epilogue of d (no outputs).
mk::bitplane_problem problem_of(const bp_data& d) {
  mk::bitplane_problem p;
  p.m = d.m;
  p.a = d.planes.data();
  p.group_stride = d.hp * d.wp;
  p.pix_off = d.pix_off.data();
  p.tap_off = d.tap_off.data();
  return p;
}

mk::epilogue requant_of(const bp_data& d) {
  mk::epilogue ep;
  ep.bias = d.bias.data();
  ep.qm = d.qm.data();
  ep.rshift = d.rshift.data();
  ep.offset = d.offset.data();
  ep.zp_out = d.zp;
  ep.lo = d.lo;
  ep.hi = d.hi;
  return ep;
}

// split > 0: the kernel runs as separate channel ranges of `split` channels
// (a multiple of bitplane_channel_step), as the conv driver does at batch 1.
int run_check(const bp_data& d, bool simd, std::int32_t split = 0) {
  const bp_case& k = d.k;
  const mk::bitplane_weights pw =
      mk::pack_bitplane_weights(d.wts.data(), k.n, d.taps, k.c, k.bw, k.ba);
  const mk::bitplane_problem p = problem_of(d);
  auto run = [&](const mk::epilogue& ep, const mk::bitplane_output* bo) {
    for (std::int32_t n0 = 0; n0<k.n; n0 += split> 0 ? split : k.n) {
      const std::int32_t n1 = split > 0 && n0 + split < k.n ? n0 + split : k.n;
      if (simd)
        mk::qgemm_bitplane_tile(p, pw, ep, bo, 0, d.m, n0, n1);
      else
        mk::ref::qgemm_bitplane_range(p, pw, ep, bo, 0, d.m, n0, n1);
    }
  };
  int bad = 0;
  // raw int32 (row gap 3)
  {
    const std::int64_t ld = k.n + 3;
    std::vector<std::int32_t> out(std::size_t(d.m * ld), 0x7EADBEEF);
    mk::epilogue ep;
    ep.bias = d.bias.data();
    ep.out_i32 = out.data();
    ep.ld_i32 = ld;
    run(ep, nullptr);
    for (std::int64_t mm = 0; mm < d.m; ++mm)
      for (std::int64_t j = 0; j < ld; ++j) {
        const std::int64_t want =
            j < k.n ? d.acc[std::size_t(mm * k.n + j)] + d.bias[std::size_t(j)] : 0x7EADBEEF;
        if (out[std::size_t(mm * ld + j)] != want && bad++ < 5)
          CHECK_MESSAGE(false, "raw m=" << mm << " n=" << j << " got "
                                        << out[std::size_t(mm * ld + j)] << " want " << want);
      }
  }
  // u8 NHWC (gap 5) and the fused bit-plane output into a padded next-layer buffer
  {
    const std::int64_t ldo = k.n + 5;
    std::vector<std::uint8_t> out(std::size_t(d.m * ldo), 0xCD);
    std::vector<std::int64_t> out_off;
    for (std::int64_t mm = 0; mm < d.m; ++mm) out_off.push_back(mm * ldo);
    const std::int32_t go_n = mk::bitplane_groups(k.n, k.bout);
    const std::int64_t ohp = d.oh + 2, owp = d.ow + 2, oplane = ohp * owp, oimg = oplane * go_n;
    std::vector<std::uint8_t> nxt(std::size_t(k.batch * oimg) + 64, 0xA5);
    std::vector<std::int64_t> nxt_off;
    for (std::int64_t mm = 0; mm < d.m; ++mm) {
      const std::int64_t i = mm / (d.oh * d.ow), y = mm / d.ow % d.oh, x = mm % d.ow;
      nxt_off.push_back(i * oimg + (y + 1) * owp + x + 1);
    }
    mk::epilogue ep = requant_of(d);
    ep.out = out.data();
    ep.out_pix_off = out_off.data();
    std::vector<std::int64_t> thr(std::size_t(k.n) * (d.hi - d.lo));
    mk::bitplane_thresholds(ep, k.n, thr.data());
    mk::bitplane_output bo;
    bo.base = nxt.data();
    bo.group_stride = oplane;
    bo.pix_off = nxt_off.data();
    bo.b_out = k.bout;
    bo.thresholds = thr.data();
    run(ep, &bo);
    std::vector<std::uint8_t> touched(nxt.size(), 0);
    for (std::int64_t mm = 0; mm < d.m; ++mm) {
      for (std::int64_t j = 0; j < ldo; ++j) {
        const int want =
            j < k.n ? oracle_code(d, d.acc[std::size_t(mm * k.n + j)], std::int32_t(j)) : 0xCD;
        if (out[std::size_t(mm * ldo + j)] != want && bad++ < 5)
          CHECK_MESSAGE(false, "u8 m=" << mm << " n=" << j << " got "
                                       << int(out[std::size_t(mm * ldo + j)]) << " want " << want);
      }
      for (std::int32_t j = 0; j < k.n; ++j) {
        const int got =
            mk::bitplane_code_at(nxt.data(), nxt_off[std::size_t(mm)], oplane, j, k.bout);
        const int want = oracle_code(d, d.acc[std::size_t(mm * k.n + j)], j);
        if (got != want && bad++ < 5)
          CHECK_MESSAGE(
              false, "bitplane out m=" << mm << " n=" << j << " got " << got << " want " << want);
      }
      for (std::int32_t g = 0; g < go_n; ++g) {
        const std::size_t at = std::size_t(nxt_off[std::size_t(mm)] + g * oplane);
        touched[at] = 1;
        if ((nxt[at] & 0xC0) != 0 && bad++ < 5) CHECK_MESSAGE(false, "bits 6,7 set");
      }
    }
    for (std::size_t b = 0; b < nxt.size(); ++b)
      if (!touched[b] && nxt[b] != 0xA5 && bad++ < 5) CHECK_MESSAGE(false, "stray write at " << b);
  }
  return bad;
}

const int pairs[][2] = {{2, 2}, {3, 2}, {4, 2}, {2, 3}, {3, 3}, {4, 3}};  // (bw, ba)

}  // namespace

TEST_CASE("bitplane: format, converters and round trip") {
  ktest::rng r(7);
  for (int ba = 2; ba <= 3; ++ba)
    for (std::int32_t c : {1, 3, 5, 16, 32, 48, 64, 7}) {
      for (std::int64_t npix : {1, 63, 64, 65, 130}) {
        const std::int64_t stride = c + r.uniform(0, 3);
        std::vector<std::uint8_t> codes(std::size_t(npix * stride + 16));
        for (auto& v : codes) v = static_cast<std::uint8_t>(r.uniform(0, (1 << ba) - 1));
        const std::int32_t g = mk::bitplane_groups(c, ba);
        const std::int64_t gs = npix + 70;
        std::vector<std::uint8_t> a(std::size_t(g * gs) + 64, 0xEE), b = a;
        mk::bitplane_from_codes_ref(codes.data(), npix, stride, c, ba, a.data(), gs);
        mk::bitplane_from_codes(codes.data(), npix, stride, c, ba, b.data(), gs);
        CHECK(a == b);
        int bad = 0;
        for (std::int64_t x = 0; x < npix; ++x)
          for (std::int32_t ch = 0; ch < c; ++ch)
            bad += mk::bitplane_code_at(a.data(), x, gs, ch, ba) !=
                   codes[std::size_t(x * stride + ch)];
        for (std::int64_t x = 0; x < npix; ++x)
          for (std::int32_t gg = 0; gg < g; ++gg) bad += (a[std::size_t(gg * gs + x)] & 0xC0) != 0;
        CHECK(bad == 0);
      }
    }
  // explicit layout: b_a = 2, codes (1, 2, 3) -> 1 | 2 << 2 | 3 << 4
  const std::uint8_t c3[3] = {1, 2, 3};
  CHECK(mk::bitplane_index_byte(c3, 3, 2) == (1 | 8 | 48));
  CHECK(mk::bitplane_index_byte(c3, 2, 3) == (1 | 16));
  if (!mk::bitplane_simd_active()) simd_or_message();
}

TEST_CASE("bitplane: thresholds reproduce the requant rule") {
  ktest::rng r(11);
  for (int it = 0; it < 40; ++it) {
    const std::int32_t n = 3;
    std::vector<std::int32_t> qm(n), sh(n), off(n);
    for (std::int32_t j = 0; j < n; ++j) {
      const mk::quant_multiplier q =
          mk::quantize_multiplier((1 + r.uniform(0, 5000)) / 3000.0 / (1 << r.uniform(0, 12)));
      qm[j] = (it % 9 == 4 && j == 1) ? 0 : q.qm;
      sh[j] = q.rshift;
      off[j] = it % 2 ? r.uniform(-mk::max_requant_offset, mk::max_requant_offset) : 0;
    }
    mk::epilogue ep;
    ep.qm = qm.data();
    ep.rshift = sh.data();
    ep.offset = off.data();
    ep.zp_out = r.uniform(-3, 3);
    ep.lo = r.uniform(0, 2);
    ep.hi = ep.lo + r.uniform(0, 6);
    const std::int32_t lv = ep.hi - ep.lo;
    std::vector<std::int64_t> thr(std::size_t(n * (lv ? lv : 1)));
    mk::bitplane_thresholds(ep, n, thr.data());
    int bad = 0;
    for (std::int32_t j = 0; j < n; ++j)
      for (int s = 0; s < 3000; ++s) {
        std::int64_t v = r.uniform(-5000, 5000) * (s % 3 == 0 ? 1 : (1 << r.uniform(0, 12)));
        if (s % 5 == 0 && lv)
          v = thr[std::size_t(j * lv + r.uniform(0, lv - 1))] - r.uniform(0, 1);  // boundaries
        if (v < INT32_MIN || v > INT32_MAX) continue;
        int cnt = ep.lo;
        for (std::int32_t l = 0; l < lv; ++l) cnt += v >= thr[std::size_t(j * lv + l)];
        const int want = mk::requant_one(static_cast<std::int32_t>(v), qm[j], sh[j], ep.zp_out,
                                         ep.lo, ep.hi, 0, 0, off[j]);
        bad += cnt != want;
      }
    CHECK(bad == 0);
  }
}

TEST_CASE("bitplane: LUT6 kernel on GEMMs with tails, every pair") {
  const bool simd = simd_or_message();
  ktest::rng r(3);
  int cases = 0;
  for (const auto& pr : pairs)
    for (int it = 0; it < 6; ++it) {
      bp_case k;
      k.bw = pr[0];
      k.ba = pr[1];
      k.bout = 2 + (it & 1);
      k.ks = 1;
      const std::int64_t ms[] = {1, 63, 64, 65, 127, 129, 200, 17};
      const std::int32_t ns[] = {1, 3, 4, 5, 16, 17, 32, 9};
      const std::int32_t ks[] = {1, 2, 3, 7, 16, 65, 100, 257};
      k.w = ms[r.uniform(0, 7)];
      k.n = ns[r.uniform(0, 7)];
      k.c = ks[r.uniform(0, 7)];
      const bp_data d = make(k, 100 + cases);
      INFO("bw=" << k.bw << " ba=" << k.ba << " M=" << k.w << " N=" << k.n << " K=" << k.c);
      if (simd) CHECK(run_check(d, true) == 0);
      if (it < 2) CHECK(run_check(d, false) == 0);
      ++cases;
    }
  MESSAGE("bit-plane LUT6 GEMM cases: "
          << cases << std::string(simd ? " (SIMD + scalar twin)" : " (scalar twin only)"));
}

TEST_CASE("bitplane: LUT6 kernel on 3x3 implicit convs (ResNet20 shapes, odd shapes, stride 2)") {
  const bool simd = simd_or_message();
  struct cv {
    std::int64_t batch, h, w;
    std::int32_t c, n;
    int stride, bw, ba;
  };
  const cv cs[] = {
      {1, 32, 32, 16, 16, 1, 2, 2},
      {2, 16, 16, 32, 32, 1, 2, 2},
      {2, 8, 8, 64, 64, 1, 2, 2},
      {1, 8, 8, 64, 64, 1, 3, 3},
      {1, 7, 5, 5, 9, 1, 4, 2},
      {3, 6, 9, 16, 16, 1, 2, 3},
      {1, 8, 8, 16, 32, 2, 2, 2},
      {1, 6, 9, 540, 5, 1, 2, 2},  // 9*180 steps x 2 tiles > bitplane_index_capacity:
                                   // gather per use (and no packed remainders)
      {1, 4, 20, 6, 7, 2, 3, 2},
  };
  int i = 0;
  for (const cv& c : cs) {
    bp_case k;
    k.batch = c.batch;
    k.h = c.h;
    k.w = c.w;
    k.c = c.c;
    k.n = c.n;
    k.stride = c.stride;
    k.bw = c.bw;
    k.ba = c.ba;
    k.bout = 2 + (i & 1);
    const bp_data d = make(k, 500 + i++);
    INFO("conv " << c.batch << "x" << c.h << "x" << c.w << "x" << c.c << " -> " << c.n << " s"
                 << c.stride << " W" << c.bw << "A" << c.ba);
    if (simd) CHECK(run_check(d, true) == 0);
    if (d.m * c.n * 9 * c.c < 3000000) CHECK(run_check(d, false) == 0);
  }
}

TEST_CASE("bitplane: worst-case codes, long K (u16 -> int32 flush)") {
  const bool simd = simd_or_message();
  for (const auto& pr : pairs)
    // worst_span: zero codes against the most negative weights make every
    // lookup return the largest stored entry (span), the u8/u16 worst case
    for (fill f : {fill::worst_min, fill::worst_max, fill::worst_span})
      for (std::int32_t kc : {40, 12000}) {
        bp_case k;
        k.bw = pr[0];
        k.ba = pr[1];
        k.ks = 1;
        k.w = 70;
        k.n = 5;
        k.c = kc;  // 12000: K' = 4000 (A2) / 6000 (A3) lookups, beyond flush_every for every pair
        k.mode = f;
        const bp_data d = make(k, 9);
        const mk::bitplane_weights pw =
            mk::pack_bitplane_weights(d.wts.data(), k.n, 1, k.c, k.bw, k.ba);
        CHECK((pw.ksteps > pw.flush_every) == (kc == 12000));
        CHECK(std::int64_t(pw.widen_every) * pw.span <= 255);
        CHECK(std::int64_t(pw.flush_every) * pw.span <= 65534);
        const std::int64_t want =
            f == fill::worst_span
                ? 0
                : std::int64_t(k.c) * ((1 << k.ba) - 1) *
                      (f == fill::worst_min ? -(1 << (k.bw - 1)) : (1 << (k.bw - 1)) - 1);
        CHECK(d.acc[0] == want);
        if (f == fill::worst_span)  // entry 0 of every table is the span itself
          CHECK(pw.tables.data()[0] == pw.span);
        INFO("W" << k.bw << "A" << k.ba);
        if (simd) CHECK(run_check(d, true) == 0);
      }
}

TEST_CASE("bitplane: scattered pixel offsets (128-byte windows and the byte gather)") {
  // Tiles whose pixels are not a few contiguous runs: every 5th pixel of a
  // row (windows of <= 128 bytes), and a descending order (each pixel a new
  // window -> byte gather). Rows of pix_off and of the oracle move together.
  const bool simd = simd_or_message();
  for (int order = 0; order < 2; ++order) {
    bp_case k;
    k.ks = 1;
    k.w = 700;
    k.n = 7;
    k.c = 20;
    bp_data d = make(k, 77 + order);
    std::vector<std::int64_t> pix;
    std::vector<std::int64_t> acc;
    for (std::int64_t mm = 0; mm < d.m; ++mm) {
      const std::int64_t src = order == 0 ? (mm * 5) % d.m : d.m - 1 - mm;
      pix.push_back(d.pix_off[std::size_t(src)]);
      for (std::int32_t j = 0; j < k.n; ++j) acc.push_back(d.acc[std::size_t(src * k.n + j)]);
    }
    d.pix_off = pix;
    d.acc = acc;
    INFO("order " << order);
    if (simd) CHECK(run_check(d, true) == 0);
    CHECK(run_check(d, false) == 0);
  }
}

TEST_CASE("bitplane: channel ranges (multiples of 12) give the full result") {
  const bool simd = simd_or_message();
  for (const int split : {12, 24}) {
    for (int pair = 0; pair < 2; ++pair) {
      bp_case k;
      k.batch = 1;
      k.h = 8;
      k.w = 8;
      k.c = 64;
      k.n = 64;
      k.bw = 2;
      k.ba = pair == 0 ? 2 : 3;
      k.bout = 2 + pair;
      const bp_data d = make(k, 1200 + split + pair);
      INFO("split " << split << " A" << k.ba);
      if (simd) CHECK(run_check(d, true, split) == 0);
      CHECK(run_check(d, false, split) == 0);
    }
  }
  // one middle range alone writes exactly its own output bytes
  bp_case k;
  k.h = 8;
  k.w = 8;
  k.c = 64;
  k.n = 64;
  const bp_data d = make(k, 1300);
  const mk::bitplane_weights pw = mk::pack_bitplane_weights(d.wts.data(), k.n, d.taps, k.c, 2, 2);
  const mk::bitplane_problem p = problem_of(d);
  const mk::epilogue ep = requant_of(d);
  std::vector<std::int64_t> thr(std::size_t(k.n) * (d.hi - d.lo));
  mk::bitplane_thresholds(ep, k.n, thr.data());
  const std::int64_t gs = d.m;  // output planes [22][m], pixel mm at byte mm
  std::vector<std::uint8_t> out(std::size_t(22 * gs), 0xA5);
  std::vector<std::int64_t> off(std::size_t(d.m));
  for (std::int64_t mm = 0; mm < d.m; ++mm) off[std::size_t(mm)] = mm;
  mk::bitplane_output bo;
  bo.base = out.data();
  bo.group_stride = gs;
  bo.pix_off = off.data();
  bo.b_out = 2;
  bo.thresholds = thr.data();
  for (const bool use_simd : {true, false}) {
    if (use_simd && !simd) continue;
    std::fill(out.begin(), out.end(), std::uint8_t(0xA5));
    if (use_simd)
      mk::qgemm_bitplane_tile(p, pw, ep, &bo, 0, d.m, 12, 24);
    else
      mk::ref::qgemm_bitplane_range(p, pw, ep, &bo, 0, d.m, 12, 24);
    int stray = 0, wrong = 0;
    for (std::int64_t g = 0; g < 22; ++g)
      for (std::int64_t mm = 0; mm < d.m; ++mm) {
        const std::uint8_t b = out[std::size_t(g * gs + mm)];
        if (g < 4 || g >= 8) {
          stray += b != 0xA5;
          continue;
        }
        for (int j = 0; j < 3; ++j) {
          const std::int32_t c = std::int32_t(3 * g + j);
          wrong += ((b >> (2 * j)) & 3) != oracle_code(d, d.acc[std::size_t(mm * k.n + c)], c);
        }
      }
    INFO("simd " << use_simd);
    CHECK(stray == 0);
    CHECK(wrong == 0);
  }
}

TEST_CASE("bitplane: random weights over a long K (variable widening runs across u16 flushes)") {
  const bool simd = simd_or_message();
  for (const auto& pr : pairs) {
    bp_case k;
    k.bw = pr[0];
    k.ba = pr[1];
    k.ks = 1;
    k.w = 70;
    k.n = 5;
    k.c = 12000;  // beyond flush_every for every pair
    const bp_data d = make(k, 1400 + pr[0] * 10 + pr[1]);
    const mk::bitplane_weights pw =
        mk::pack_bitplane_weights(d.wts.data(), k.n, 1, k.c, k.bw, k.ba);
    int longer = 0;  // runs longer than the worst-case bound exist for random weights
    for (std::uint8_t v : pw.widen_len) longer += v > pw.widen_every;
    INFO("W" << k.bw << "A" << k.ba);
    CHECK(longer > 0);
    if (simd) CHECK(run_check(d, true) == 0);
  }
}
