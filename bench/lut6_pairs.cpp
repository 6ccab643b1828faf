// W2A2 LUT6 convolution (qconv2d_bitplane, planes in and out) against W8A8
// qconv2d (dispatched VNNI kernel, u8 NHWC in and out) on the ResNet20 3x3
// conv shapes, measured as PAIRS: every round times W8A8 then LUT6 back to
// back (min of --calls calls each), so both see the same machine state; the
// ratio W8A8 time / LUT6 time of each round is one sample. Prints, per shape,
// batch and thread count, the median, min and max of the rounds' ratios.
// This machine (2 shared vCPUs) drifts by 10-30% between runs at 2 threads;
// pairing inside a round cancels most of it, which a whole-suite repetition
// (bench/qconv.cpp) does not.
//
//   mixq_bench_lut6_pairs [--reps 15] [--calls 9] [--threads 1,2]
//                         [--batch 1,128] [--filter s1_16] [--format md|csv|jsonl]
// (harness.hpp options: --reps is the number of rounds, --calls the calls per
// timed sample; the harness pins the threads). The outputs of both paths are
// checked against each other once per shape (same codes; the LUT6 output is
// read back from its planes); a mismatch aborts with exit code 1.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mixq/kernels/bitplane/qconv_bitplane.hpp"
#include "mixq/kernels/conv/qconv.hpp"

#include "harness.hpp"

namespace mk = mixq::kernels;
using namespace mixq_bench;

namespace {

struct shape {
  const char* name;
  std::int64_t hw, c_in, c_out;
  int stride;
};

const shape kShapes[] = {
    {"s1_16to16_32x32", 32, 16, 16, 1}, {"s1_32to32_16x16", 16, 32, 32, 1},
    {"s1_64to64_8x8", 8, 64, 64, 1},    {"s2_16to32_32x32", 32, 16, 32, 2},
    {"s2_32to64_16x16", 16, 32, 64, 2},
};

}  // namespace

int main(int argc, char** argv) {
  options defaults;
  defaults.reps = 15;
  defaults.calls = 9;
  defaults.warmup = 1;
  defaults.format = out_format::md;
  const options o = parse(argc, argv, defaults);
  if (!mk::bitplane_simd_active()) {
    std::printf("SKIPPED: no AVX-512 VBMI on this CPU (the LUT6 path would run its scalar twin)\n");
    return 0;
  }
  writer out(o.format, {"shape", "batch", "threads", "rounds", "w8a8_kernel", "lut6_kernel",
                        "w8a8_gops", "lut6_gops", "ratio_median", "ratio_min", "ratio_max"});
  for (int batch : o.batches)
    for (const shape& s : kShapes) {
      if (!matches(o, s.name)) continue;
      mk::conv_geometry g;
      g.batch = batch;
      g.h = g.w = s.hw;
      g.c_in = s.c_in;
      g.c_out = s.c_out;
      g.stride = s.stride;
      g.kernel = 3;
      rng r(static_cast<std::uint64_t>(s.c_in * 7919 + s.hw));
      // 2-bit codes and weights for both paths (W8A8 runs the same values)
      std::vector<std::int8_t> w(size_t(g.c_out * 9 * g.c_in));
      for (auto& v : w) v = static_cast<std::int8_t>(r.uniform(-2, 1));
      std::vector<std::uint8_t> x(size_t(g.batch * g.h * g.w * g.c_in));
      for (auto& v : x) v = static_cast<std::uint8_t>(r.uniform(0, 3));
      // requantization that spreads the sums over the 2-bit output range
      std::vector<std::int32_t> bias(size_t(g.c_out)), qm(size_t(g.c_out), 1 << 29),
          rs(size_t(g.c_out), 33);
      for (auto& b : bias) b = static_cast<std::int32_t>(9 * g.c_in * 3 / 4);
      const mk::requant_params rq{bias.data(), qm.data(), rs.data(), 0, 0, 3};
      // W8A8: padded NHWC in, padded NHWC out
      std::vector<std::uint8_t> xpad(size_t(mk::qconv_input_bytes(g)), 0);
      const std::int64_t wp = g.w + 2, hp = g.h + 2;
      for (std::int64_t i = 0; i < g.batch; ++i)
        for (std::int64_t y = 0; y < g.h; ++y)
          std::memcpy(&xpad[size_t(((i * hp + y + 1) * wp + 1) * g.c_in)],
                      &x[size_t(((i * g.h + y) * g.w) * g.c_in)], size_t(g.w * g.c_in));
      std::vector<std::uint8_t> out8(size_t(g.batch * (g.out_h() + 2) * (g.out_w() + 2) * g.c_out));
      const mk::qconv_weights w8 = mk::qconv_pack(g, w.data(), 8, 8);
      const mk::conv_output o8 = mk::padded_output(g, out8.data());
      // LUT6: planes in and out
      const mk::qconv_bitplane_weights w2 = mk::qconv_bitplane_pack(g, w.data(), 2, 2);
      const std::vector<std::int64_t> thr = mk::qconv_bitplane_thresholds(rq, g.c_out);
      std::vector<std::uint8_t> in2(size_t(mk::bitplane_image_bytes(g.batch, g.h, g.w, g.c_in, 2)));
      std::vector<std::uint8_t> out2(
          size_t(mk::bitplane_image_bytes(g.batch, g.out_h(), g.out_w(), g.c_out, 2)));
      mk::bitplane_planes_from_nhwc(x.data(), g.batch, g.h, g.w, static_cast<std::int32_t>(g.c_in),
                                    2, in2.data());
      auto run8 = [&] { mk::qconv2d(g, w8, xpad.data(), rq, nullptr, o8); };
      auto run2 = [&] { mk::qconv2d_bitplane(g, w2, in2.data(), rq, thr.data(), 2, out2.data()); };
      // the two paths agree (same codes) before anything is timed
      run8();
      run2();
      const mk::bitplane_image_layout lo = mk::bitplane_layout(g.out_h(), g.out_w(), g.c_out, 2);
      for (std::int64_t i = 0; i < g.batch; ++i)
        for (std::int64_t y = 0; y < g.out_h(); ++y)
          for (std::int64_t xx = 0; xx < g.out_w(); ++xx)
            for (std::int64_t c = 0; c < g.c_out; ++c) {
              const int a = o8.data[i * o8.img_stride + y * o8.row_stride + xx * g.c_out + c];
              const int b = mk::bitplane_code_at(out2.data(), mk::bitplane_pixel(lo, i, y, xx),
                                                 lo.group_stride, static_cast<std::int32_t>(c), 2);
              if (a != b) {
                std::fprintf(
                    stderr, "%s batch %d: W8A8 and LUT6 outputs differ at (%lld,%lld,%lld,%lld)\n",
                    s.name, batch, (long long)i, (long long)y, (long long)xx, (long long)c);
                return 1;
              }
            }
      for (int t : o.threads) {
#ifndef _OPENMP
        if (t != 1) continue;  // built without OpenMP: one thread only
#endif
        set_threads(t);
        // each round: W8A8 then LUT6, the minimum of --calls calls each
        const std::vector<std::vector<double>> sm = time_rounds(o, {run8, run2});
        std::vector<double> ratio;
        for (int q = 0; q < o.reps; ++q) ratio.push_back(sm[0][size_t(q)] / sm[1][size_t(q)]);
        const double ops = 2.0 * double(g.macs());
        row rw;
        rw.set("shape", s.name).set("batch", batch).set("threads", t).set("rounds", o.reps);
        rw.set("w8a8_kernel", w8.pw.name.data()).set("lut6_kernel", w2.pw.name.data());
        rw.setf("w8a8_gops", ops / median(sm[0]) * 1e-9, 1);
        rw.setf("lut6_gops", ops / median(sm[1]) * 1e-9, 1);
        rw.setf("ratio_median", median(ratio), 3).setf("ratio_min", minimum(ratio), 3);
        rw.setf("ratio_max", *std::max_element(ratio.begin(), ratio.end()), 3);
        out.print(rw);
      }
    }
  return 0;
}
