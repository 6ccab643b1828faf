// Bit-plane LUT6 kernel vs the W8A8 AVX-512 VNNI kernel, single thread,
// pinned to one core, kernels interleaved within every round (harness
// time_rounds: a noisy period hits all of them alike); median and best of
// --reps rounds, each the minimum of --calls back-to-back calls.
//
// Shapes: square GEMMs 256^3 and 512^3; ResNet20 3x3 stride-1 convs as
// implicit GEMM (16->16 @32x32, 32->32 @16x16, 64->64 @8x8) at batch 1 and
// 128. Each kernel writes what its consumer reads:
//   vnni_w8a8    : qgemm(), u8 NHWC into the next padded NHWC buffer (requant rule)
//   lut6_wXaY    : qgemm_bitplane(), codes as the next layer's bit-plane planes
//                  (thresholds = the same requant rule, b_out = b_a)
//   lut16_w2a2   : the older in-kernel-index LUT family (u8 NHWC), for reference
//   conv_a2      : bitplane_from_codes() of the layer input (u8 NHWC -> planes),
//                  the cost of a producer that did NOT emit the format itself
// Every kernel is checked against the scalar reference once before timing.
//   mixq_bench_qgemm_lut [--reps 21] [--calls 5] [--filter substr] [--quick]
//                        [--no-validate] [--format csv|jsonl|md]
// Output: one row per (shape, kernel): GOP/s (2 ops per MAC) median and best,
// and the ratio to vnni_w8a8's median in the same run.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <mixq/kernels/qgemm.hpp>
#include <mixq/kernels/bitplane/qgemm_bitplane.hpp>

#include "harness.hpp"

namespace mk = mixq::kernels;
using namespace mixq_bench;

namespace {

struct shape {
  std::string name;
  std::int64_t batch, h, w;  // gemm: batch 1, h 1, w = M, ks 1
  std::int32_t c, n;
  int ks;
};

struct layer {  // one conv/gemm problem in both formats
  shape s;
  std::int64_t hp, wp, m;
  std::int32_t taps;
  std::vector<std::uint8_t> codes8, codes2;  // padded NHWC u8 codes (8-bit, b_a-bit)
  std::vector<std::int8_t> w8, wlo;
  std::vector<std::int64_t> pix_u8, tap_u8, out_u8;  // NHWC addressing
  std::vector<std::uint8_t> out8;
  std::vector<std::int32_t> bias, qm, rsh;
};

struct timed {
  std::string name;
  double macs;
  std::function<void()> fn;
};

}  // namespace

int main(int argc, char** argv) {
  options defaults;
  defaults.reps = 21;
  defaults.calls = 5;
  defaults.warmup = 1;
  const options o = parse(argc, argv, defaults);
  const bool quick = o.quick, validate = o.validate;
  set_threads(1);  // pins this thread
  if (!mk::bitplane_simd_active()) {
    std::printf(
        "SKIPPED: CPU lacks AVX-512 VBMI/BITALG (or MIXQ_ISA < avx512); nothing to compare\n");
    return 0;
  }
  rng rr(0x9E3779B97F4A7C15ull);
  auto rnd = [&rr] { return static_cast<std::uint32_t>(rr.next()); };
  std::vector<shape> shapes = {
      {"gemm256", 1, 1, 256, 256, 256, 1},     {"gemm512", 1, 1, 512, 512, 512, 1},
      {"r20_s1_b1", 1, 32, 32, 16, 16, 3},     {"r20_s2_b1", 1, 16, 16, 32, 32, 3},
      {"r20_s3_b1", 1, 8, 8, 64, 64, 3},       {"r20_s1_b128", 128, 32, 32, 16, 16, 3},
      {"r20_s2_b128", 128, 16, 16, 32, 32, 3}, {"r20_s3_b128", 128, 8, 8, 64, 64, 3},
  };
  writer w(o.format, {"shape", "kernel", "M", "N", "K", "us_median", "gops_median", "gops_best",
                      "ratio_vs_vnni_w8a8_median"});
  const int lut_pairs[][2] = {{2, 2}, {3, 2}, {4, 2}, {2, 3}, {3, 3}, {4, 3}};
  for (const shape& s : shapes) {
    if (!matches(o, s.name)) continue;
    const int pad = s.ks / 2;
    const std::int64_t hp = s.h + 2 * pad, wp = s.w + 2 * pad, m = s.batch * s.h * s.w;
    const std::int32_t taps = s.ks * s.ks, k = taps * s.c;
    const double macs = double(m) * s.n * k;
    // u8 NHWC input (padded), weights, epilogue
    std::vector<std::uint8_t> in8(std::size_t(s.batch * hp * wp * s.c) + 64, 0), in2 = in8;
    for (std::int64_t i = 0; i < s.batch; ++i)
      for (std::int64_t y = pad; y < hp - pad; ++y)
        for (std::int64_t x = pad; x < wp - pad; ++x)
          for (std::int32_t c = 0; c < s.c; ++c) {
            const std::size_t at = std::size_t(((i * hp + y) * wp + x) * s.c + c);
            in8[at] = static_cast<std::uint8_t>(rnd());
            in2[at] = static_cast<std::uint8_t>(rnd() & 3);
          }
    std::vector<std::int64_t> pix, tap, opix;
    const std::int64_t ohp = s.h + 2 * pad, owp = s.w + 2 * pad;  // next layer's padded buffer
    for (std::int64_t i = 0; i < s.batch; ++i)
      for (std::int64_t y = 0; y < s.h; ++y)
        for (std::int64_t x = 0; x < s.w; ++x) {
          pix.push_back(((i * hp + y) * wp + x) * s.c);
          opix.push_back(((i * ohp + y + pad) * owp + x + pad) * s.n);
        }
    for (std::int32_t t = 0; t < taps; ++t) tap.push_back(((t / s.ks) * wp + t % s.ks) * s.c);
    std::vector<std::uint8_t> out8(std::size_t(s.batch * ohp * owp * s.n) + 64, 0);
    std::vector<std::int32_t> bias(s.n), qm(s.n), rsh(s.n);
    for (std::int32_t j = 0; j < s.n; ++j) {
      bias[j] = static_cast<std::int32_t>(rnd() % 200) - 100;
      const mk::quant_multiplier q = mk::quantize_multiplier(1.0 / (8.0 * k));
      qm[j] = q.qm;
      rsh[j] = q.rshift;
    }
    std::vector<timed> ts;
    // --- VNNI W8A8 (and W2A2 codes through the same kernel, for reference) ---
    std::vector<std::int8_t> w8(std::size_t(s.n) * k);
    for (auto& v : w8) v = static_cast<std::int8_t>(rnd());
    auto* pw8 = new mk::packed_weights(
        mk::pack_weights_for(mk::kernel_id::avx512vnni_16x16c4, w8.data(), s.n, taps, s.c, 8, 8));
    mk::qgemm_problem p8;
    p8.m = m;
    p8.a = in8.data();
    p8.pix_off = pix.data();
    p8.tap_off = tap.data();
    mk::epilogue e8;
    e8.bias = bias.data();
    e8.qm = qm.data();
    e8.rshift = rsh.data();
    e8.hi = 255;
    e8.out = out8.data();
    e8.out_pix_off = opix.data();
    {  // validate once against the scalar reference
      const mk::packed_weights pr =
          mk::pack_weights_for(mk::kernel_id::scalar_1x1c1, w8.data(), s.n, taps, s.c, 8, 8);
      std::vector<std::uint8_t> o1 = out8;
      mk::qgemm(p8, *pw8, e8);
      std::vector<std::uint8_t> o0 = out8;
      mk::epilogue er = e8;
      er.out = o1.data();
      if (validate && m * double(s.n) * k < 4e8) {
        mk::qgemm(p8, pr, er);
        if (o0 != o1) std::printf("# VALIDATION FAILED vnni %s\n", s.name.c_str());
      }
    }
    ts.push_back({"vnni_w8a8", macs, [=, &p8, &e8] { mk::qgemm(p8, *pw8, e8); }});
    // --- old LUT16 family, W2A2 ---
    std::vector<std::int8_t> w2(std::size_t(s.n) * k);
    for (auto& v : w2) v = static_cast<std::int8_t>(static_cast<int>(rnd() % 4) - 2);
    auto* pwl = new mk::packed_weights(mk::pack_weights_for(mk::kernel_id::avx512vbmi_lut_16x16c16,
                                                            w2.data(), s.n, taps, s.c, 2, 2));
    mk::qgemm_problem p2 = p8;
    p2.a = in2.data();
    mk::epilogue e2 = e8;
    e2.hi = 3;
    if (!quick) ts.push_back({"lut16_w2a2", macs, [=, &p2, &e2] { mk::qgemm(p2, *pwl, e2); }});
    // --- bit-plane LUT6, every pair: planes [batch][G][hp][wp], output planes
    // [batch][Go][ohp][owp] ---
    struct lut_ctx {
      std::vector<std::uint8_t> planes, outp, incodes;
      std::vector<std::int64_t> pix, tap, opix, thr;
      mk::bitplane_weights pw;
      mk::bitplane_problem p;
      mk::bitplane_output bo;
      mk::epilogue ep;
    };
    std::vector<lut_ctx*> ctxs;
    for (const auto& pr : lut_pairs) {
      const int bw = pr[0], ba = pr[1];
      if (quick && !(bw == 2 && ba == 2)) continue;
      auto* c = new lut_ctx;
      ctxs.push_back(c);
      const std::int32_t g = mk::bitplane_groups(s.c, ba), go = mk::bitplane_groups(s.n, ba);
      const std::int64_t plane = hp * wp, img = plane * g, oplane = ohp * owp, oimg = oplane * go;
      c->incodes.assign(in8.size(), 0);
      for (std::size_t i = 0; i < in8.size() - 64; ++i)
        c->incodes[i] = static_cast<std::uint8_t>(in8[i] & ((1 << ba) - 1));
      c->planes.assign(std::size_t(s.batch * img) + 64, 0);
      for (std::int64_t i = 0; i < s.batch; ++i)
        mk::bitplane_from_codes_ref(&c->incodes[std::size_t(i * plane * s.c)], plane, s.c, s.c, ba,
                                    &c->planes[std::size_t(i * img)], plane);
      for (std::int64_t i = 0; i < s.batch; ++i)
        for (std::int64_t y = 0; y < s.h; ++y)
          for (std::int64_t x = 0; x < s.w; ++x) {
            c->pix.push_back(i * img + y * wp + x);
            c->opix.push_back(i * oimg + (y + pad) * owp + x + pad);
          }
      for (std::int32_t t = 0; t < taps; ++t) c->tap.push_back((t / s.ks) * wp + t % s.ks);
      std::vector<std::int8_t> wl(w2.size());
      for (auto& v : wl)
        v = static_cast<std::int8_t>(static_cast<int>(rnd() % (1u << bw)) - (1 << (bw - 1)));
      c->pw = mk::pack_bitplane_weights(wl.data(), s.n, taps, s.c, bw, ba);
      c->p.m = m;
      c->p.a = c->planes.data();
      c->p.group_stride = plane;
      c->p.pix_off = c->pix.data();
      c->p.tap_off = c->tap.data();
      c->outp.assign(std::size_t(s.batch * oimg) + 64, 0);
      c->ep.bias = bias.data();
      c->ep.qm = qm.data();
      c->ep.rshift = rsh.data();
      c->ep.hi = (1 << ba) - 1;
      c->thr.resize(std::size_t(s.n) * c->ep.hi);
      mk::bitplane_thresholds(c->ep, s.n, c->thr.data());
      c->bo.base = c->outp.data();
      c->bo.group_stride = oplane;
      c->bo.pix_off = c->opix.data();
      c->bo.b_out = ba;
      c->bo.thresholds = c->thr.data();
      // validate against the u8 scalar reference on the same codes
      if (validate && m * double(s.n) * k < 4e8) {
        mk::qgemm_bitplane(c->p, c->pw, c->ep, &c->bo);
        const mk::packed_weights pr =
            mk::pack_weights_for(mk::kernel_id::scalar_1x1c1, wl.data(), s.n, taps, s.c, bw, ba);
        std::vector<std::uint8_t> ref(out8.size(), 0);
        mk::qgemm_problem pq = p8;
        pq.a = c->incodes.data();
        mk::epilogue er = c->ep;
        er.out = ref.data();
        er.out_pix_off = opix.data();
        mk::qgemm(pq, pr, er);
        long bad = 0;
        for (std::int64_t mm = 0; mm < m; ++mm)
          for (std::int32_t j = 0; j < s.n; ++j)
            bad += mk::bitplane_code_at(c->outp.data(), c->opix[std::size_t(mm)], oplane, j, ba) !=
                   ref[std::size_t(opix[std::size_t(mm)] + j)];
        if (bad)
          std::printf("# VALIDATION FAILED lut6 w%da%d %s: %ld\n", bw, ba, s.name.c_str(), bad);
      }
      char nm[32];
      std::snprintf(nm, sizeof nm, "lut6_w%da%d", bw, ba);
      ts.push_back({nm, macs, [c] { mk::qgemm_bitplane(c->p, c->pw, c->ep, &c->bo); }});
      if (bw == 2 && ba == 2) {  // producer-side conversion u8 NHWC -> planes (counted separately)
        ts.push_back({"conv_a2_to_planes", macs, [c, s, plane, img] {
                        for (std::int64_t i = 0; i < s.batch; ++i)
                          mk::bitplane_from_codes(&c->incodes[std::size_t(i * plane * s.c)], plane,
                                                  s.c, s.c, 2, &c->planes[std::size_t(i * img)],
                                                  plane);
                      }});
      }
    }
    std::vector<std::function<void()>> fns;
    for (const auto& t : ts) fns.push_back(t.fn);
    const std::vector<std::vector<double>> samples = time_rounds(o, fns);
    double base = 0;
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const double med = median(samples[i]), best = minimum(samples[i]);
      const double gm = 2 * ts[i].macs / med * 1e-9, gb = 2 * ts[i].macs / best * 1e-9;
      if (ts[i].name == "vnni_w8a8") base = gm;
      row r;
      r.set("shape", s.name).set("kernel", ts[i].name).set("M", static_cast<long long>(m));
      r.set("N", s.n).set("K", k).setf("us_median", med * 1e6, 2).setf("gops_median", gm, 1);
      r.setf("gops_best", gb, 1).setf("ratio_vs_vnni_w8a8_median", base > 0 ? gm / base : 0.0, 2);
      w.print(r);
    }
    delete pw8;
    delete pwl;
    for (auto* c : ctxs) delete c;
  }
  return 0;
}
