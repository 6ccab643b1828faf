// qconv2d (implicit GEMM over a padded NHWC buffer) against the scalar
// reference convolution, bit-exactly, for every ISA the CPU has (forced via
// the pack level), every (b_w, b_a) in 2..8, odd shapes, stride 1 and 2,
// 3x3 and 1x1, residuals (identity and option A), dense and padded outputs.
#include <doctest/doctest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "kernels_test_util.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using namespace ktest;

enum class res_kind { none, identity, option_a };

struct conv_case {
  std::int64_t batch, h, w, c_in, c_out;
  int kernel, stride;
  res_kind res = res_kind::none;
  std::int64_t res_c = 0, ch_lo = 0;  // option A
  bool padded_out = false;
};

std::string describe(const conv_case& c, mk::isa l, int bw, int ba) {
  std::ostringstream os;
  os << mk::isa_name(l) << " W" << bw << "A" << ba << " b" << c.batch << " " << c.h << "x" << c.w
     << " " << c.c_in << "->" << c.c_out << " k" << c.kernel << " s" << c.stride
     << " res=" << int(c.res) << " padded_out=" << c.padded_out;
  return os.str();
}

// Returns the number of mismatching values (raw int32 + uint8 codes + halo).
// `forced`: pack for this kernel family instead of the dispatcher's choice.
std::int64_t run_case(const conv_case& cc, mk::isa l, int bw, int ba, std::uint64_t seed,
                      std::string* first, const mk::kernel_id* forced = nullptr) {
  rng r(seed);
  const mk::conv_geometry g =
      make_geometry(cc.batch, cc.h, cc.w, cc.c_in, cc.c_out, cc.kernel, cc.stride);
  const std::int64_t oh = g.out_h(), ow = g.out_w(), P = g.pixels_out();
  const auto x = random_codes(g.batch * g.h * g.w * g.c_in, ba, r);
  const auto xp = make_padded(x, g.batch, g.h, g.w, g.c_in, 0);
  REQUIRE(std::int64_t(xp.size()) == mk::qconv_input_bytes(g));
  const auto w = random_weights(g.c_out * g.kernel * g.kernel * g.c_in, bw, r);
  const mk::qconv_weights wts = forced ? mk::qconv_pack_for(*forced, g, w.data(), bw, ba)
                                       : mk::qconv_pack(g, w.data(), bw, ba, l);
  std::int64_t bad = 0;
  auto note = [&](const std::string& s) {
    if (bad++ == 0 && first) *first = s;
  };
  if (forced ? wts.pw.kernel != *forced : !kernel_is_dispatch_choice(wts.pw, l))
    note(std::string("packed for kernel ") + wts.pw.name.data());

  // reference accumulators
  const mk::ref::conv_ref_shape rs(g);
  REQUIRE(rs.out_h() == oh);
  REQUIRE(rs.out_w() == ow);
  std::vector<std::int64_t> acc(static_cast<size_t>(P * g.c_out));
  mk::ref::qconv_ref_acc(rs, x.data(), w.data(), acc.data());
  const requant_set q = make_requant(g.c_out, g.kernel * g.kernel * g.c_in, bw, ba, ba, r);

  // 1) raw int32 accumulators (+ bias)
  mk::requant_params rq{q.bias.data(), q.qm.data(), q.rshift.data(), q.zp,
                        q.lo,          q.hi,        q.offset.data()};
  std::vector<std::int32_t> raw(static_cast<size_t>(P * g.c_out), 0x5A5A5A5A);
  mk::qconv2d(g, wts, xp.data(), rq, nullptr, mk::conv_output{}, raw.data());
  if (mk::last_used_kernel() != wts.pw.name.data())
    note("last_used_kernel = " + mk::last_used_kernel());
  for (size_t i = 0; i < raw.size(); ++i) {
    const std::int64_t want = acc[i] + q.bias[i % size_t(g.c_out)];
    if (raw[i] != want) {
      std::ostringstream os;
      os << "raw[" << i << "] = " << raw[i] << ", reference " << want;
      note(os.str());
    }
  }

  // 2) residual input (semantic description for the reference, byte offsets for the driver)
  std::vector<std::uint8_t> res_dense, res_padded;
  mk::ref::conv_ref_residual rr;
  mk::conv_residual dr;
  if (cc.res != res_kind::none) {
    const std::int64_t rh = cc.res == res_kind::identity ? oh : g.h;
    const std::int64_t rw = cc.res == res_kind::identity ? ow : g.w;
    const std::int64_t rc = cc.res == res_kind::identity ? g.c_out : cc.res_c;
    res_dense = random_codes(g.batch * rh * rw * rc, ba, r);
    // halo and tail hold garbage: only lanes with res_qm = 0 may touch them
    res_padded =
        make_padded(res_dense, g.batch, rh, rw, rc, 0xAB, std::int64_t(mk::res_overread_bytes));
    rr.res = res_dense.data();
    rr.rh = rh;
    rr.rw = rw;
    rr.rc = rc;
    rr.stride = cc.res == res_kind::identity ? 1 : 2;
    rr.ch_lo = cc.res == res_kind::identity ? 0 : cc.ch_lo;
    std::vector<std::int32_t>& rqm = const_cast<std::vector<std::int32_t>&>(q.res_qm);
    for (std::int64_t n = 0; n < g.c_out; ++n)
      if (n < rr.ch_lo || n >= rr.ch_lo + rc) rqm[size_t(n)] = 0;  // option A: zero channels
    rr.res_qm = q.res_qm.data();
    const std::int64_t rwp = rw + 2;
    dr.data = res_padded.data() + (rwp + 1) * rc;
    dr.img_stride = (rh + 2) * rwp * rc;
    dr.row_stride = rwp * rc;
    dr.pix_stride = rc;
    dr.stride = rr.stride;
    dr.ch_lo = rr.ch_lo;
    dr.res_qm = q.res_qm.data();
  }

  // 3) requantized uint8 output vs reference
  std::vector<std::uint8_t> want(static_cast<size_t>(P * g.c_out));
  mk::requant_params rrq{q.bias.data(), q.qm.data(), q.rshift.data(), q.zp,
                         q.lo,          q.hi,        q.offset.data()};
  mk::ref::qconv_ref_requantize(rs, acc.data(), rrq, rr, want.data());
  std::vector<std::uint8_t> outbuf;
  mk::conv_output out;
  if (cc.padded_out) {
    outbuf.assign(static_cast<size_t>(g.batch * (oh + 2) * (ow + 2) * g.c_out), 0xCD);
    out = mk::padded_output(g, outbuf.data());
  } else {
    outbuf.assign(static_cast<size_t>(P * g.c_out), 0xCD);
    out = mk::dense_output(g, outbuf.data());
  }
  mk::qconv2d(g, wts, xp.data(), rq, cc.res != res_kind::none ? &dr : nullptr, out);
  for (std::int64_t i = 0; i < g.batch; ++i)
    for (std::int64_t y = 0; y < oh; ++y)
      for (std::int64_t xx = 0; xx < ow; ++xx)
        for (std::int64_t n = 0; n < g.c_out; ++n) {
          const std::uint8_t got =
              out.data[i * out.img_stride + y * out.row_stride + xx * g.c_out + n];
          const std::uint8_t ref = want[size_t(((i * oh + y) * ow + xx) * g.c_out + n)];
          if (got != ref) {
            std::ostringstream os;
            os << "out(" << i << "," << y << "," << xx << "," << n << ") = " << int(got)
               << ", reference " << int(ref);
            note(os.str());
          }
        }
  if (cc.padded_out) {  // the halo of the output buffer is never written
    const std::int64_t hp = oh + 2, wp = ow + 2;
    for (std::int64_t i = 0; i < g.batch; ++i)
      for (std::int64_t y = 0; y < hp; ++y)
        for (std::int64_t xx = 0; xx < wp; ++xx)
          if (y == 0 || xx == 0 || y == hp - 1 || xx == wp - 1)
            for (std::int64_t n = 0; n < g.c_out; ++n)
              if (outbuf[size_t(((i * hp + y) * wp + xx) * g.c_out + n)] != 0xCD)
                note("halo written");
  }
  return bad;
}

void run_all(const std::vector<conv_case>& cases, const std::vector<std::pair<int, int>>& pairs) {
  for (mk::isa l : all_isas) {
    if (!isa_or_skip(l, "qconv2d vs reference")) continue;
    note_fallback(l);
    std::int64_t total_bad = 0, runs = 0;
    for (const auto& cc : cases)
      for (auto [bw, ba] : pairs) {
        std::string first;
        const std::int64_t bad = run_case(cc, l, bw, ba, 1000u * bw + 10u * ba + runs, &first);
        ++runs;
        if (bad) {
          total_bad += bad;
          FAIL_CHECK(describe(cc, l, bw, ba) << ": " << bad << " mismatches, first: " << first);
        }
      }
    CHECK(total_bad == 0);
    MESSAGE("qconv2d " << std::string(mk::isa_name(l)) << ": " << runs << " cases compared");
  }
}

std::vector<std::pair<int, int>> every_pair() {
  std::vector<std::pair<int, int>> p;
  for (int bw = 2; bw <= 8; ++bw)
    for (int ba = 2; ba <= 8; ++ba) p.emplace_back(bw, ba);
  return p;
}

}  // namespace

TEST_CASE("qconv reference: hand-computed sums and option-A residual") {
  // 1 image, 4x5 map, 2 channels of ones, weights of ones, 3x3 pad 1:
  // every output sees (rows in range) * (cols in range) * 2 ones.
  mk::ref::conv_ref_shape s;
  s.g.batch = 1;
  s.g.h = 4;
  s.g.w = 5;
  s.g.c_in = 2;
  s.g.c_out = 1;
  std::vector<std::uint8_t> x(4 * 5 * 2, 1);
  std::vector<std::int8_t> w(9 * 2, 1);
  std::vector<std::int64_t> acc(20);
  mk::ref::qconv_ref_acc(s, x.data(), w.data(), acc.data());
  CHECK(acc[0] == 8);          // corner: 2x2 window
  CHECK(acc[1] == 12);         // top edge: 2x3
  CHECK(acc[5 + 1] == 18);     // interior: 3x3
  CHECK(acc[3 * 5 + 4] == 8);  // bottom-right corner
  s.g.stride = 2;              // 2x3 outputs at (0,0),(0,2),(0,4),(2,0),...
  REQUIRE(s.out_h() == 2);
  REQUIRE(s.out_w() == 3);
  mk::ref::qconv_ref_acc(s, x.data(), w.data(), acc.data());
  CHECK(acc[0] == 8);
  CHECK(acc[1] == 12);
  CHECK(acc[2] == 8);   // (0,4): right edge corner
  CHECK(acc[3] == 12);  // (2,0): left edge
  CHECK(acc[4] == 18);

  // Requant with a residual: qm = 2^30, rshift = 31 halves; res_qm = 2^31-1
  // adds ~1 per residual code. Channel 0 has no residual (option A), channel 1
  // reads residual channel 0 of the subsampled map.
  mk::ref::conv_ref_shape t;
  t.g.batch = 1;
  t.g.h = 2;
  t.g.w = 2;
  t.g.c_in = 1;
  t.g.c_out = 2;
  t.g.kernel = 1;
  t.pad = 0;
  t.g.stride = 2;                     // one output pixel, reads input (0,0)
  const std::int64_t a2[2] = {5, 7};  // acc for channels 0, 1
  const std::int32_t qm[2] = {1 << 30, 1 << 30}, sh[2] = {31, 31}, rqm[2] = {0, 2147483647};
  const std::uint8_t res[4] = {3, 9, 9, 9};  // 2x2 map, 1 channel; (0,0) = 3
  mk::ref::conv_ref_residual rr;
  rr.res = res;
  rr.rh = 2;
  rr.rw = 2;
  rr.rc = 1;
  rr.stride = 2;
  rr.ch_lo = 1;
  rr.res_qm = rqm;
  mk::requant_params rq{nullptr, qm, sh, 0, 0, 255};
  std::uint8_t out[2] = {0, 0};
  mk::ref::qconv_ref_requantize(t, a2, rq, rr, out);
  CHECK(out[0] == 3);  // 5/2 = 2.5 -> 3 (half away from zero)
  // (7*2^30 + 3*(2^31-1)) / 2^31 = 3.5 + 3 - 3/2^31 = 6.4999... -> 6
  CHECK(out[1] == 6);
}

TEST_CASE("qconv2d == reference: odd shapes, every ISA, every (b_w, b_a)") {
  std::vector<conv_case> cases;
  // batch 3, 7x9 maps, 5 input channels
  cases.push_back({3, 7, 9, 5, 7, 3, 1, res_kind::identity, 0, 0, true});
  cases.push_back({3, 7, 9, 5, 12, 3, 2, res_kind::option_a, 5, 3, false});
  cases.push_back({3, 7, 9, 5, 7, 1, 1, res_kind::none, 0, 0, false});
  cases.push_back({3, 7, 9, 5, 6, 1, 2, res_kind::identity, 0, 0, true});
  // the 3-channel first layer
  cases.push_back({2, 7, 9, 3, 16, 3, 1, res_kind::none, 0, 0, true});
  cases.push_back({2, 7, 9, 3, 16, 3, 1, res_kind::none, 0, 0, false});
  run_all(cases, every_pair());
}

TEST_CASE("qconv2d == reference: ResNet20 channel counts, multi-chunk") {
#ifdef _OPENMP
  // two threads even on a 1-core runner: exercises the chunk x channel-block
  // split that small maps take (and the plain chunk split for large ones)
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(2);
#endif
  std::vector<conv_case> cases;
  cases.push_back({2, 16, 16, 16, 16, 3, 1, res_kind::identity, 0, 0, true});
  cases.push_back({2, 16, 16, 16, 32, 3, 2, res_kind::option_a, 16, 8, true});  // option A 16 -> 32
  cases.push_back({1, 8, 8, 32, 64, 3, 2, res_kind::option_a, 32, 16, false});  // option A 32 -> 64
  cases.push_back({3, 5, 5, 64, 64, 3, 1, res_kind::identity, 0, 0, false});
  cases.push_back({2, 8, 8, 16, 32, 1, 2, res_kind::none, 0, 0, false});  // option-B style 1x1 s2
  cases.push_back(
      {1, 8, 8, 64, 64, 3, 1, res_kind::identity, 0, 0, true});  // batch-1 8x8: channel split
  run_all(cases, {{2, 2}, {3, 3}, {4, 4}, {5, 5}, {8, 8}, {2, 8}, {8, 2}, {4, 7}, {7, 4}});
#ifdef _OPENMP
  omp_set_num_threads(saved_threads);
#endif
}

TEST_CASE("qconv2d == reference: every registered kernel family, every pair it claims") {
  // Not only the dispatcher's picks: each family of kernels.inc that runs on
  // this CPU, through the conv addressing (taps, stride 2, 1x1, residual).
  std::vector<conv_case> cases;
  cases.push_back({2, 7, 9, 5, 7, 3, 1, res_kind::identity, 0, 0, true});
  cases.push_back({1, 8, 8, 16, 32, 3, 2, res_kind::option_a, 16, 8, false});
  cases.push_back({2, 5, 6, 32, 40, 1, 1, res_kind::none, 0, 0, false});
  std::size_t count = 0;
  const mk::kernel_info* table = mk::kernel_table(&count);
  for (std::size_t k = 0; k < count; ++k) {
    const mk::kernel_info& ki = table[k];
    if (!mk::kernel_runnable(ki.id)) {
      MESSAGE("SKIPPED kernel " << std::string(ki.name)
                                << ": its ISA is not available on this CPU/build");
      continue;
    }
    std::int64_t runs = 0, total_bad = 0;
    for (const auto& cc : cases)
      for (auto [bw, ba] : every_pair()) {
        if (!mk::kernel_supports(ki.id, bw, ba)) continue;
        std::string first;
        const std::int64_t bad =
            run_case(cc, ki.level, bw, ba, 7000u + 100u * bw + ba + runs, &first, &ki.id);
        ++runs;
        if (bad) {
          total_bad += bad;
          FAIL_CHECK(std::string(ki.name) << ": " << describe(cc, ki.level, bw, ba) << ": " << bad
                                          << " mismatches, first: " << first);
        }
      }
    CHECK(total_bad == 0);
    MESSAGE("kernel " << std::string(ki.name) << ": " << runs << " conv cases compared");
  }
}

TEST_CASE("qconv2d == reference: worst-case accumulators (C_in = 64)") {
  for (mk::isa l : all_isas) {
    if (!isa_or_skip(l, "worst-case qconv2d")) continue;
    for (int bw : {2, 4, 8})
      for (int ba : {2, 4, 8})
        for (int sign : {-1, 1}) {
          mk::conv_geometry g;
          g.batch = 1;
          g.h = 5;
          g.w = 6;
          g.c_in = 64;
          g.c_out = 32;
          std::vector<std::uint8_t> x(static_cast<size_t>(5 * 6 * 64),
                                      static_cast<std::uint8_t>((1 << ba) - 1));
          const auto xp = make_padded(x, 1, 5, 6, 64, 0);
          const std::int8_t wv =
              sign < 0 ? std::int8_t(-(1 << (bw - 1))) : std::int8_t((1 << (bw - 1)) - 1);
          std::vector<std::int8_t> w(static_cast<size_t>(32 * 9 * 64), wv);
          auto wts = mk::qconv_pack(g, w.data(), bw, ba, l);
          std::vector<std::int32_t> raw(static_cast<size_t>(30 * 32));
          mk::qconv2d(g, wts, xp.data(), mk::requant_params{}, nullptr, mk::conv_output{},
                      raw.data());
          // interior pixel (1..3, 1..4) sees all 9 taps: 9*64*a*w exactly
          const std::int64_t full = 9LL * 64 * ((1 << ba) - 1) * wv;
          CHECK(raw[size_t((1 * 6 + 1) * 32)] == full);
          CHECK(raw[0] == 4LL * 64 * ((1 << ba) - 1) * wv);  // corner: 4 taps
        }
  }
}
