// qconv2d_bitplane (mixq/kernels/bitplane/qconv_bitplane.hpp): LUT6 convolutions on
// bit-plane planes against the scalar int64 reference convolution, on the
// AVX-512 VBMI kernel and on its scalar twin (MIXQ_ISA below avx512). The
// oracle works on u8 NHWC codes and knows nothing of planes or tables.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include <mixq/kernels/bitplane/qconv_bitplane.hpp>

#include "kernels_test_util.hpp"

namespace {

using namespace ktest;

struct bp_conv_case {
  std::int64_t batch, h, w, c_in, c_out;
  int kernel, stride, bw, ba, b_out;
};

// Restores the dispatcher's choice when a test forced a lower ISA.
struct isa_scope {
  explicit isa_scope(mk::isa l) { mk::set_isa(l); }
  ~isa_scope() { mk::reload_isa_from_env(); }
};

// 0 = exact; otherwise the number of mismatching values (codes, raw sums,
// or bytes outside the written interior that changed).
// with_res: the block input x is also the residual, added inside the rounding:
// identity when stride 1 (C_out = C_in), ResNet option A when stride 2
// (C_out = 2 C_in, residual channels at C_out / 4, every second pixel).
std::int64_t run_case(const bp_conv_case& k, std::uint64_t seed, bool with_res = false) {
  rng r(seed);
  const mk::conv_geometry g = make_geometry(k.batch, k.h, k.w, k.c_in, k.c_out, k.kernel, k.stride);
  const std::vector<std::uint8_t> x = random_codes(k.batch * k.h * k.w * k.c_in, k.ba, r);
  const std::vector<std::int8_t> w =
      random_weights(k.c_out * k.kernel * k.kernel * k.c_in, k.bw, r);
  requant_set q = make_requant(k.c_out, k.kernel * k.kernel * k.c_in, k.bw, k.ba, k.b_out, r);
  if (with_res) {  // outputs spread over the range rather than clamped: the bias
    // cancels the accumulator's mean K * mean(a) * mean(w) = -K (2^ba - 1) / 4
    q.zp = 1;
    const std::int32_t center =
        static_cast<std::int32_t>(k.kernel * k.kernel * k.c_in * ((1 << k.ba) - 1) / 4);
    for (auto& b : q.bias) b = center + r.uniform(-10, 10);
  }
  if (with_res)  // a residual worth 0.5..1.5 output steps per code needs rshift <= 30
    for (size_t c = 0; c < q.qm.size(); ++c) {
      if (q.rshift[c] > 30) {
        q.qm[c] >>= (q.rshift[c] - 30);
        q.rshift[c] = 30;
      }
      const double f = r.uniform(50, 150) / 100.0 * (r.uniform(0, 1) ? 1 : -1);
      q.res_qm[c] = static_cast<std::int32_t>(f * double(std::int64_t(1) << q.rshift[c]));
    }
  const mk::ref::conv_ref_shape rs(g);
  const std::int64_t oh = g.out_h(), ow = g.out_w(), per = oh * ow * k.c_out;
  std::vector<std::int64_t> acc(static_cast<size_t>(k.batch * per));
  mk::ref::qconv_ref_acc(rs, x.data(), w.data(), acc.data());
  std::vector<std::uint8_t> want(acc.size());
  mk::ref::conv_ref_residual rr;
  const std::int64_t ch_lo = k.stride == 1 ? 0 : k.c_out / 4;
  if (with_res) {
    rr.res = x.data();
    rr.rh = k.h;
    rr.rw = k.w;
    rr.rc = k.c_in;
    rr.stride = k.stride;
    rr.ch_lo = ch_lo;
    rr.res_qm = q.res_qm.data();
  }
  mk::ref::qconv_ref_requantize(rs, acc.data(),
                                mk::requant_params{q.bias.data(), q.qm.data(), q.rshift.data(),
                                                   q.zp, q.lo, q.hi, q.offset.data()},
                                rr, want.data());
  if (with_res) {  // the residual must matter, else the case proves nothing
    std::vector<std::uint8_t> plain(acc.size());
    mk::ref::qconv_ref_requantize(rs, acc.data(),
                                  mk::requant_params{q.bias.data(), q.qm.data(), q.rshift.data(),
                                                     q.zp, q.lo, q.hi, q.offset.data()},
                                  mk::ref::conv_ref_residual{}, plain.data());
    std::int64_t changed = 0;
    for (size_t j = 0; j < plain.size(); ++j) changed += plain[j] != want[j];
    CHECK(changed * 20 > std::int64_t(plain.size()));  // > 5 % of the outputs
  }

  // input planes: zero halo rows; garbage lead and over-read tail, which only
  // masked lanes and past-the-end loads read (must never matter)
  std::vector<std::uint8_t> in(
      static_cast<size_t>(mk::bitplane_image_bytes(k.batch, k.h, k.w, k.c_in, k.ba)), 0);
  for (size_t i = in.size() - mk::bitplane_overread_bytes; i < in.size(); ++i) in[i] = 0xFF;
  const mk::bitplane_image_layout li = mk::bitplane_layout(k.h, k.w, k.c_in, k.ba);
  for (std::int64_t i = 0; i < li.lead; ++i) in[static_cast<size_t>(i)] = 0x3F;
  mk::bitplane_planes_from_nhwc(x.data(), k.batch, k.h, k.w, static_cast<std::int32_t>(k.c_in),
                                k.ba, in.data());
  const mk::qconv_bitplane_weights wts = mk::qconv_bitplane_pack(g, w.data(), k.bw, k.ba);
  const mk::requant_params rq{q.bias.data(), q.qm.data(), q.rshift.data(), q.zp,
                              q.lo,          q.hi,        q.offset.data()};
  mk::bitplane_conv_residual res;
  res.planes = in.data();
  res.h = k.h;
  res.w = k.w;
  res.c = k.c_in;
  res.bits = k.ba;
  res.stride = k.stride;
  res.ch_lo = ch_lo;
  res.res_qm = q.res_qm.data();
  const mk::bitplane_conv_residual* resp = with_res ? &res : nullptr;
  const std::vector<std::int64_t> thr = mk::qconv_bitplane_thresholds(rq, k.c_out, resp);

  // output planes: a sentinel everywhere, the interior must be rewritten and
  // nothing else touched
  const std::uint8_t sentinel = 0xC3;
  std::vector<std::uint8_t> out(
      static_cast<size_t>(mk::bitplane_image_bytes(k.batch, oh, ow, k.c_out, k.b_out)), sentinel);
  mk::qconv2d_bitplane(g, wts, in.data(), rq, thr.data(), k.b_out, out.data(), nullptr, resp);
  std::vector<std::int32_t> raw(static_cast<size_t>(k.batch * per), -1);
  mk::qconv2d_bitplane(g, wts, in.data(), rq, nullptr, k.b_out, nullptr, raw.data());

  std::int64_t bad = 0;
  const mk::bitplane_image_layout lo = mk::bitplane_layout(oh, ow, k.c_out, k.b_out);
  const int cpo = mk::bitplane_cpb(k.b_out);
  std::vector<char> written(out.size(), 0);
  for (std::int64_t i = 0; i < k.batch; ++i)
    for (std::int64_t y = 0; y < oh; ++y)
      for (std::int64_t xx = 0; xx < ow; ++xx) {
        const std::int64_t o = mk::bitplane_pixel(lo, i, y, xx);
        for (std::int64_t n = 0; n < k.c_out; ++n) {
          const std::int64_t idx = ((i * oh + y) * ow + xx) * k.c_out + n;
          if (mk::bitplane_code_at(out.data(), o, lo.group_stride, static_cast<std::int32_t>(n),
                                   k.b_out) != want[static_cast<size_t>(idx)])
            ++bad;
          if (raw[static_cast<size_t>(idx)] != acc[static_cast<size_t>(idx)] + q.bias[size_t(n)])
            ++bad;
        }
        for (std::int32_t go = 0; go < lo.groups; ++go) {
          const std::uint8_t b = out[static_cast<size_t>(o + go * lo.group_stride)];
          written[static_cast<size_t>(o + go * lo.group_stride)] = 1;
          if (b >> (cpo * k.b_out)) ++bad;  // unused high bits must be 0
        }
      }
  for (size_t j = 0; j < out.size(); ++j)
    if (!written[j] && out[j] != sentinel) ++bad;
  return bad;
}

const bp_conv_case cases[] = {
    // ResNet20 stage shapes (stride 1, 3x3), the stride-2 transitions and
    // the 1x1 stride-2 projections
    {2, 32, 32, 16, 16, 3, 1, 2, 2, 2},
    {2, 16, 16, 32, 32, 3, 1, 2, 2, 2},
    {3, 8, 8, 64, 64, 3, 1, 2, 2, 2},
    {2, 32, 32, 16, 32, 3, 2, 2, 2, 2},
    {2, 16, 16, 32, 64, 3, 2, 3, 2, 2},
    {2, 32, 32, 16, 32, 1, 2, 2, 2, 2},
    {1, 16, 16, 32, 64, 1, 2, 2, 2, 2},
    // other pairs, odd sizes, channels that leave partial groups, 3-bit outputs
    {2, 9, 13, 5, 7, 3, 1, 3, 2, 3},
    {1, 7, 5, 16, 17, 3, 2, 4, 2, 2},
    {2, 11, 6, 7, 5, 3, 1, 2, 3, 3},
    {1, 12, 12, 8, 9, 3, 1, 4, 3, 2},
    {3, 5, 9, 3, 6, 1, 1, 3, 3, 2},
    {1, 1, 1, 4, 3, 3, 1, 2, 2, 2},
    {1, 40, 70, 6, 4, 3, 1, 2, 2, 2},  // rows longer than a 64-pixel tile
    // wider than one channel range of the fused epilogue (504): 4 ranges of
    // 408 / 376, and 7 of 444 / 436 with 3-bit outputs (2 channels per byte)
    {1, 3, 5, 8, 1600, 3, 1, 2, 2, 2},
    // 7 steps of 2 tiles per group (216 lookups), 900 pixels per image so all 7 are
    // used: 73 channels (76 rounded to blocks) x 14 tiles do not fit the
    // 1024 staged code vectors, so two windows (72 + 1)
    {2, 30, 30, 72, 73, 3, 1, 2, 2, 2},
    {1, 4, 16, 24, 3100, 1, 1, 2, 2, 3},
};

}  // namespace

TEST_CASE("qconv2d_bitplane: equals the reference conv (SIMD and scalar twin)") {
  const bool simd = mk::bitplane_simd_active();
  if (!simd)
    MESSAGE(
        "SKIPPED avx512vbmi_lut6 conv: CPU lacks AVX-512 VBMI/BITALG or MIXQ_ISA < avx512; "
        "only the scalar twin is checked");
  int i = 0;
  for (const bp_conv_case& k : cases) {
    INFO("case " << i << ": " << k.batch << "x" << k.h << "x" << k.w << "x" << k.c_in << " -> "
                 << k.c_out << " k" << k.kernel << " s" << k.stride << " W" << k.bw << "A" << k.ba
                 << " out" << k.b_out);
    if (simd) {
      CHECK(run_case(k, 100 + i) == 0);
      CHECK(std::string(mk::last_used_kernel()).find("lut6") != std::string::npos);
    }
    {
      isa_scope scalar(mk::isa::scalar);
      if (k.batch * k.h * k.w * k.c_in * k.c_out < 400000) CHECK(run_case(k, 100 + i) == 0);
    }
    ++i;
  }
}

TEST_CASE("qconv2d_bitplane: bad packs throw") {
  mk::conv_geometry g = make_geometry(1, 8, 8, 16, 16, 3, 1);
  std::vector<std::int8_t> w(16 * 9 * 16, 0);
  CHECK_THROWS_AS(mk::qconv_bitplane_pack(g, w.data(), 8, 2), mixq::error);
  CHECK_THROWS_AS(mk::qconv_bitplane_pack(g, w.data(), 2, 4), mixq::error);
  g.kernel = 5;
  CHECK_THROWS_AS(mk::qconv_bitplane_pack(g, w.data(), 2, 2), mixq::error);
  g.kernel = 3;
  w[5] = 2;  // outside the signed 2-bit range
  CHECK_THROWS_WITH_AS(mk::qconv_bitplane_pack(g, w.data(), 2, 2),
                       doctest::Contains("weight code 2 at index 5"), mixq::error);
  CHECK_THROWS_WITH_AS(mk::qconv_bitplane_pack(g, w.data(), 8, 2),
                       doctest::Contains("(b_w, b_a) = (8, 2)"), mixq::error);
}

TEST_CASE("qconv_bitplane_pack: remainder channels of the 9 taps share lookups") {
  std::vector<std::int8_t> w(size_t(8 * 9 * 64), 1);
  auto steps = [&](std::int64_t c_in, int ba, int kernel) {
    const mk::conv_geometry g = make_geometry(1, 8, 8, c_in, 8, kernel, 1);
    return mk::qconv_bitplane_pack(g, w.data(), 2, ba).pw.ksteps;
  };
  CHECK(steps(16, 2, 3) == 9 * 5 + 3);   // 9 remainder codes in 3 steps of 3
  CHECK(steps(32, 2, 3) == 9 * 10 + 6);  // 18 remainder codes in 6 steps
  CHECK(steps(64, 2, 3) == 9 * 21 + 3);
  CHECK(steps(15, 2, 3) == 9 * 5);     // no remainder
  CHECK(steps(5, 3, 3) == 9 * 2 + 5);  // A3: 2 channels per byte, 9 codes in 5 steps
  CHECK(steps(16, 2, 1) == 6);         // one tap: nothing to share
}

TEST_CASE("qconv2d_bitplane: residual inside the rounding (identity and option A)") {
  const bool simd = mk::bitplane_simd_active();
  const bp_conv_case rcases[] = {
      {2, 32, 32, 16, 16, 3, 1, 2, 2, 2},  // ResNet20 identity blocks
      {2, 16, 16, 32, 32, 3, 1, 2, 2, 2},
      {3, 8, 8, 64, 64, 3, 1, 3, 2, 2},
      {2, 32, 32, 16, 32, 3, 2, 2, 2, 2},  // option A transitions
      {2, 16, 16, 32, 64, 3, 2, 2, 2, 2},
      {2, 9, 7, 7, 7, 3, 1, 2, 2, 3},      // 3-bit output, odd sizes
      {1, 6, 10, 5, 10, 3, 2, 4, 3, 2},    // 3-bit residual codes (scalar path)
      {1, 4, 4, 400, 400, 3, 1, 2, 2, 2},  // wider than a residual range (120): 4 x 108 / 76
      {1, 8, 8, 200, 400, 3, 2, 2, 2, 2},  // option A: residual channels 100..299 span 3
  };
  int i = 0;
  for (const bp_conv_case& k : rcases) {
    INFO("case " << i << ": " << k.batch << "x" << k.h << "x" << k.w << "x" << k.c_in << " -> "
                 << k.c_out << " s" << k.stride << " W" << k.bw << "A" << k.ba << " out"
                 << k.b_out);
    if (simd) CHECK(run_case(k, 300 + i, true) == 0);
    {
      isa_scope scalar(mk::isa::scalar);
      if (k.batch * k.h * k.w * k.c_in * k.c_out < 400000) CHECK(run_case(k, 300 + i, true) == 0);
    }
    ++i;
  }
}
