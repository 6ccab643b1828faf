// mixq_bench_qconv: ResNet20 convolutions and square GEMMs through mixq's
// integer conv driver (kernels/conv/qconv.hpp) for every (b_w, b_a) and
// every ISA the CPU has, interleaved with the peer libraries (peers.hpp) on
// the same shapes, in one run.
//
// Rows (CSV or JSON lines, see harness.hpp for the options):
//   bench=peak   the machine's measured arithmetic peaks (peak.hpp)
//   bench=conv   one 3x3 (or first-layer) convolution at batch 1 / 128
//   bench=gemm   a square M=N=K GEMM (a 1x1 conv over M one-pixel images)
// impl: mixq = qconv2d() with the dispatcher's kernel (u8 NHWC in and out);
// mixq_lut6 (AVX-512 VBMI, b_a <= 3, b_w <= 4) = qconv2d_bitplane(), whose
// input and output are bit-plane planes (the format a chain of LUT6 layers
// passes along; converting NHWC input is not timed, see qconv_bitplane.hpp).
// Columns: gops = 2*MACs / min time; pct_peak = gops / the measured int8 peak
// of the ISA at that thread count (VNNI vpdpbusd for avx512, vpmaddubsw +
// vpmaddwd for avx2; FP32 FMA for float peers); ratio_w8a8 = gops / the same
// ISA's W8A8 on the same shape and thread count; ratio_onednn = gops /
// oneDNN's int8 conv (or int8 GEMM for GEMM rows) measured just before;
// res_min_ms / res_overhead_pct (W=A rows of ResNet block shapes) = the same
// conv with the residual fused into the epilogue (identity or option A).
// Every mixq configuration is validated bit-exactly against the scalar int64
// reference convolution (kernels/conv/qconv_ref.hpp) on the first and last
// image before it is timed; a mismatch is reported in `valid` and not timed.
// Row names for --filter: <bench>/<shape>/b<batch>/t<threads>/<impl>[/<isa>/w<W>a<A>].
#include <cmath>
#include <cstring>
#include <exception>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <mixq/kernels/conv/qconv.hpp>
#include <mixq/kernels/bitplane/qconv_bitplane.hpp>
#include <mixq/kernels/conv/qconv_ref.hpp>

#include "harness.hpp"
#include "peak.hpp"
#include "peers.hpp"

namespace mk = mixq::kernels;
using namespace mixq_bench;

namespace {

struct problem {
  std::string bench;  // conv | gemm
  std::string name;
  mk::conv_geometry g;  // batch filled per run for convs
  bool first_layer = false;
};

std::vector<problem> problems() {
  auto conv = [](const char* name, int64_t c_in, int64_t hw, int64_t c_out, int stride) {
    problem p;
    p.bench = "conv";
    p.name = name;
    p.g.h = p.g.w = hw;
    p.g.c_in = c_in;
    p.g.c_out = c_out;
    p.g.kernel = 3;
    p.g.stride = stride;
    return p;
  };
  std::vector<problem> v;
  v.push_back(conv("s1_16to16_32x32", 16, 32, 16, 1));
  v.push_back(conv("s1_32to32_16x16", 32, 16, 32, 1));
  v.push_back(conv("s1_64to64_8x8", 64, 8, 64, 1));
  v.push_back(conv("s2_16to32_32x32", 16, 32, 32, 2));
  v.push_back(conv("s2_32to64_16x16", 32, 16, 64, 2));
  // 1x1 stride-2 projections (ResNet option-B shortcuts): plain GEMMs over
  // the subsampled pixels, addressed inside the padded input
  problem pw1 = conv("pw_s2_16to32_32x32", 16, 32, 32, 2);
  pw1.g.kernel = 1;
  v.push_back(pw1);
  problem pw2 = conv("pw_s2_32to64_16x16", 32, 16, 64, 2);
  pw2.g.kernel = 1;
  v.push_back(pw2);
  problem f = conv("first_3to16_32x32", 3, 32, 16, 1);
  f.first_layer = true;
  v.push_back(f);
  for (int64_t n : {512, 1024}) {
    problem p;
    p.bench = "gemm";
    p.name = "square_" + std::to_string(n);
    p.g.batch = 1;
    p.g.h = 1;
    p.g.w = n;      // M
    p.g.c_in = n;   // K
    p.g.c_out = n;  // N
    p.g.kernel = 1;
    p.g.stride = 1;
    v.push_back(p);
  }
  return v;
}

// Operands and requant parameters for one (problem, b_w, b_a); deterministic.
struct operands {
  std::vector<uint8_t> x, xpad, outbuf;
  std::vector<int8_t> w;
  std::vector<int32_t> bias, qm, rshift;
  int32_t zp = 0, lo = 0, hi = 255;
};

operands make_operands(const mk::conv_geometry& g, int bw, int ba) {
  operands o;
  rng r(uint64_t(bw) * 131 + uint64_t(ba) * 7 + uint64_t(g.c_in) * 1000003 + uint64_t(g.w));
  const int64_t n_x = g.batch * g.h * g.w * g.c_in;
  o.x.resize(size_t(n_x));
  for (auto& v : o.x) v = uint8_t(r.uniform(0, (1 << ba) - 1));
  const int64_t wp = g.w + 2, hp = g.h + 2;
  o.xpad.assign(size_t(mk::qconv_input_bytes(g)), 0);
  for (int64_t i = 0; i < g.batch; ++i)
    for (int64_t y = 0; y < g.h; ++y)
      for (int64_t xx = 0; xx < g.w; ++xx)
        std::memcpy(&o.xpad[size_t(((i * hp + y + 1) * wp + xx + 1) * g.c_in)],
                    &o.x[size_t(((i * g.h + y) * g.w + xx) * g.c_in)], size_t(g.c_in));
  o.w.resize(size_t(g.c_out * g.kernel * g.kernel * g.c_in));
  for (auto& v : o.w) v = int8_t(r.uniform(-(1 << (bw - 1)), (1 << (bw - 1)) - 1));
  // output scale: about sqrt(K) * mean(a) * mean|w| maps to the middle of the b_a-bit range
  const double k = double(g.kernel * g.kernel * g.c_in);
  const double typical = std::sqrt(k) * ((1 << ba) - 1) * 0.5 * (1 << (bw - 1)) * 0.5 + 1;
  const double m = double((1 << ba) - 1) / (4.0 * typical);
  for (int64_t n = 0; n < g.c_out; ++n) {
    auto q = mk::quantize_multiplier(m * (0.75 + 0.5 * r.uniform(0, 100) / 100.0));
    o.qm.push_back(q.qm);
    o.rshift.push_back(q.rshift);
    o.bias.push_back(r.uniform(-64, 64));
  }
  o.hi = (1 << ba) - 1;
  o.outbuf.assign(size_t(g.batch * (g.out_h() + 2) * (g.out_w() + 2) * g.c_out), 0);
  return o;
}

// Reference results for the validated images.
struct reference {
  std::vector<int64_t> images;
  std::vector<std::vector<int64_t>> acc;
  std::vector<std::vector<uint8_t>> out;
};

reference make_reference(const mk::conv_geometry& g, const operands& o) {
  reference ref;
  ref.images.push_back(0);
  if (g.batch > 1) ref.images.push_back(g.batch - 1);
  mk::conv_geometry one = g;  // the reference runs image by image
  one.batch = 1;
  const mk::ref::conv_ref_shape s(one);
  const int64_t per = g.out_h() * g.out_w() * g.c_out;
  for (int64_t i : ref.images) {
    std::vector<int64_t> acc(static_cast<size_t>(per));
    mk::ref::qconv_ref_acc(s, o.x.data() + i * g.h * g.w * g.c_in, o.w.data(), acc.data());
    std::vector<uint8_t> out(static_cast<size_t>(per));
    mk::requant_params rq{o.bias.data(), o.qm.data(), o.rshift.data(), o.zp, o.lo, o.hi};
    mk::ref::qconv_ref_requantize(s, acc.data(), rq, mk::ref::conv_ref_residual{}, out.data());
    ref.acc.push_back(std::move(acc));
    ref.out.push_back(std::move(out));
  }
  return ref;
}

// Runs the fast path in raw and u8 mode and compares with the reference.
bool validate(const mk::conv_geometry& g, const mk::qconv_weights& wts, operands& o,
              const reference& ref) {
  const int64_t oh = g.out_h(), ow = g.out_w(), per = oh * ow * g.c_out;
  std::vector<int32_t> raw(static_cast<size_t>(g.batch * per));
  mk::requant_params rq{o.bias.data(), o.qm.data(), o.rshift.data(), o.zp, o.lo, o.hi};
  mk::qconv2d(g, wts, o.xpad.data(), rq, nullptr, mk::conv_output{}, raw.data());
  const mk::conv_output out = mk::padded_output(g, o.outbuf.data());
  mk::qconv2d(g, wts, o.xpad.data(), rq, nullptr, out);
  for (size_t t = 0; t < ref.images.size(); ++t) {
    const int64_t i = ref.images[t];
    for (int64_t j = 0; j < per; ++j)
      if (raw[size_t(i * per + j)] != ref.acc[t][size_t(j)] + o.bias[size_t(j % g.c_out)])
        return false;
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x)
        for (int64_t n = 0; n < g.c_out; ++n)
          if (out.data[i * out.img_stride + y * out.row_stride + x * g.c_out + n] !=
              ref.out[t][size_t((y * ow + x) * g.c_out + n)])
            return false;
  }
  return true;
}

// The LUT6 conv path: decodes the output planes of the validated images.
// gemm: g is M one-pixel images, outp the planes of one 1 x M image.
bool validate_lut6(const mk::conv_geometry& g, const reference& ref,
                   const std::vector<uint8_t>& outp, int b_out, bool gemm) {
  const int64_t oh = g.out_h(), ow = g.out_w();
  const mk::bitplane_image_layout lo = gemm ? mk::bitplane_layout(1, g.batch, g.c_out, b_out)
                                            : mk::bitplane_layout(oh, ow, g.c_out, b_out);
  for (size_t t = 0; t < ref.images.size(); ++t) {
    const int64_t i = ref.images[t];
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x)
        for (int64_t n = 0; n < g.c_out; ++n) {
          const int64_t o =
              gemm ? mk::bitplane_pixel(lo, 0, 0, i) : mk::bitplane_pixel(lo, i, y, x);
          if (mk::bitplane_code_at(outp.data(), o, lo.group_stride, int32_t(n), b_out) !=
              ref.out[t][size_t((y * ow + x) * g.c_out + n)])
            return false;
        }
  }
  return true;
}

// The timing columns of one row: GOP/s (2 ops per MAC) from the minimum
// time, % of the ISA's measured peak, ratios to W8A8 and oneDNN (0 = none).
void put_timing(row& r, const timing& t, double macs, double peak, double w8a8, double onednn) {
  const double gops = 2.0 * macs / t.min_s * 1e-9;
  r.setf("min_ms", t.min_s * 1e3, 4).setf("median_ms", t.median_s * 1e3, 4).setf("gops", gops, 2);
  r.setf("wall_min_ms", t.wall_min_s * 1e3, 4);
  if (peak > 0) r.setf("peak_gops", peak, 1).setf("pct_peak", 100.0 * gops / peak, 1);
  if (w8a8 > 0) r.setf("ratio_w8a8", gops / w8a8, 3);
  if (onednn > 0) r.setf("ratio_onednn", gops / onednn, 3);
}

// One mixq_lut6 row: qconv2d_bitplane() with the operands and requant of
// the qconv2d() row, planes in and out (converting the NHWC input is not
// timed). ResNet block shapes (conv) also time the residual (the block
// input's planes) inside the threshold epilogue, as the qconv2d rows do.
void lut6_row(const options& o, writer& w, const row& base, const std::string& isa_s,
              const mk::conv_geometry& g, const operands& ops, const mk::requant_params& rq,
              const reference* ref, int bw, int ba, double peak, double w8a8, double onednn,
              bool conv) {
  row r6 = base;
  r6.set("impl", "mixq_lut6").set("isa", isa_s).set("w_bits", bw).set("a_bits", ba);
  mk::qconv_bitplane_weights wts;
  try {
    wts = mk::qconv_bitplane_pack(g, ops.w.data(), bw, ba);
  } catch (const std::exception& e) {  // e.g. C_out beyond the fused epilogue
    r6.set("valid", "skipped").set("note", e.what());
    w.print(r6);
    return;
  }
  r6.set("kernel", wts.pw.name.data());
  // A square GEMM (M one-pixel images for qconv2d) runs as ONE 1 x M image:
  // the planes of M one-pixel images would put two halo rows between
  // neighbouring pixels; [G][M] is a GEMM's natural plane layout (same MACs,
  // same operands: [M][K] codes are the NHWC map of a 1 x M image).
  const bool gemm = !conv && g.kernel == 1 && g.h == 1 && g.w == 1;
  mk::conv_geometry g6 = g;
  if (gemm) {
    g6.batch = 1;
    g6.w = g.batch;
  }
  const std::vector<int64_t> thr = mk::qconv_bitplane_thresholds(rq, g6.c_out);
  std::vector<uint8_t> inp(size_t(mk::bitplane_image_bytes(g6.batch, g6.h, g6.w, g6.c_in, ba)), 0);
  std::vector<uint8_t> outp(
      size_t(mk::bitplane_image_bytes(g6.batch, g6.out_h(), g6.out_w(), g6.c_out, ba)), 0);
  mk::bitplane_planes_from_nhwc(ops.x.data(), g6.batch, g6.h, g6.w, int32_t(g6.c_in), ba,
                                inp.data());
  auto run = [&] { mk::qconv2d_bitplane(g6, wts, inp.data(), rq, thr.data(), ba, outp.data()); };
  run();
  if (ref && !validate_lut6(g, *ref, outp, ba, gemm)) {
    r6.set("valid", "MISMATCH");
    w.print(r6);
    return;
  }
  r6.set("valid", ref ? "ok" : "unchecked");
  const timing t6 = time_it(o, run);
  put_timing(r6, t6, double(g.macs()), peak, w8a8, onednn);
  const bool res_shape =
      conv && g.kernel == 3 && ba == 2 &&
      ((g.stride == 1 && g.c_out == g.c_in) || (g.stride == 2 && g.c_out == 2 * g.c_in));
  if (res_shape) {
    std::vector<int32_t> res_qm(size_t(g.c_out), 1 << 20);
    mk::bitplane_conv_residual res;
    res.planes = inp.data();
    res.h = g.h;
    res.w = g.w;
    res.c = g.c_in;
    res.bits = ba;
    res.stride = g.stride;
    res.ch_lo = g.stride == 1 ? 0 : g.c_out / 4;
    res.res_qm = res_qm.data();
    const std::vector<int64_t> thr_r = mk::qconv_bitplane_thresholds(rq, g.c_out, &res);
    const timing tr = time_it(o, [&] {
      mk::qconv2d_bitplane(g, wts, inp.data(), rq, thr_r.data(), ba, outp.data(), nullptr, &res);
    });
    r6.setf("res_min_ms", tr.min_s * 1e3, 4)
        .setf("res_overhead_pct", 100.0 * (tr.min_s / t6.min_s - 1), 1);
  }
  w.print(r6);
}

std::vector<std::pair<int, int>> bit_pairs(const options& o) {
  std::vector<std::pair<int, int>> v{{8, 8}};  // the ratio base first
  for (int bw : o.bits)
    for (int ba : o.bits) {
      if (bw == 8 && ba == 8) continue;
      if (o.quick && !(bw == ba || bw == 8 || ba == 8)) continue;
      v.emplace_back(bw, ba);
    }
  return v;
}

mk::isa parse_isa_name(const std::string& s) { return mk::parse_isa(s.c_str()); }

}  // namespace

int main(int argc, char** argv) {
  options o = parse(argc, argv);
  writer w(o.format, {"bench",
                      "name",
                      "impl",
                      "isa",
                      "kernel",
                      "batch",
                      "threads",
                      "w_bits",
                      "a_bits",
                      "M",
                      "N",
                      "K",
                      "min_ms",
                      "median_ms",
                      "wall_min_ms",
                      "gops",
                      "peak_gops",
                      "pct_peak",
                      "ratio_w8a8",
                      "ratio_onednn",
                      "valid",
                      "res_min_ms",
                      "res_overhead_pct",
                      "unit",
                      "ghz",
                      "note"});

  // 1) peaks at each thread count (measured here, in this run)
  std::map<int, peaks> pk;
  for (int t : o.threads) {
    pk[t] = measure_peaks(t);
    if (!matches(o, "peak")) continue;
    auto emit = [&](const char* impl, double v, const char* unit) {
      row r;
      r.set("bench", "peak")
          .set("name", "peak")
          .set("impl", impl)
          .set("threads", t)
          .setf("gops", v, 1);
      r.set("unit", unit).setf("ghz", pk[t].ghz, 3);
      w.print(r);
    };
    emit("fp32_fma_zmm", pk[t].fp32_zmm, "GFLOP/s");
    emit("fp32_fma_ymm", pk[t].fp32_ymm, "GFLOP/s");
    emit("vnni_vpdpbusd_zmm", pk[t].vnni_zmm, "GOP/s");
    emit("vnni_vpdpbusd_ymm", pk[t].vnni_ymm, "GOP/s");
    emit("avx2_maddubs_maddwd_i32", pk[t].avx2_maddubs32, "GOP/s");
    emit("avx2_maddubs_paddw_i16", pk[t].avx2_maddubs16, "GOP/s");
  }

  // 2) which ISAs to run
  std::vector<mk::isa> isas;
  if (o.isas.empty()) {
    if (mk::isa_supported(mk::isa::avx512)) isas.push_back(mk::isa::avx512);
    if (mk::isa_supported(mk::isa::avx2)) isas.push_back(mk::isa::avx2);
    if (mk::isa_supported(mk::isa::neon_dotprod))
      isas.push_back(mk::isa::neon_dotprod);
    else if (mk::isa_supported(mk::isa::neon))
      isas.push_back(mk::isa::neon);
  } else {
    for (const auto& s : o.isas) {
      mk::isa l = parse_isa_name(s);
      if (l == mk::isa::automatic || !mk::isa_supported(l)) {
        std::fprintf(stderr, "skipping ISA %s: not available on this CPU/build\n", s.c_str());
        continue;
      }
      isas.push_back(l);
    }
  }

  const auto pairs = bit_pairs(o);
  for (const problem& pb : problems()) {
    const std::vector<int> batches = pb.bench == "gemm" ? std::vector<int>{1} : o.batches;
    for (int batch : batches) {
      mk::conv_geometry g = pb.g;
      g.batch = pb.bench == "gemm" ? 1 : batch;
      const std::string shape_prefix = pb.bench + "/" + pb.name + "/b" + std::to_string(batch);
      std::map<std::pair<int, int>, reference> ref_cache;
      for (int t : o.threads) {
        set_threads(t);
        const std::string prefix = shape_prefix + "/t" + std::to_string(t);
        const long long M = g.pixels_out(), N = g.c_out, K = g.c_in * g.kernel * g.kernel;
        row base;
        base.set("bench", pb.bench)
            .set("name", pb.name)
            .set("batch", (int)g.batch)
            .set("threads", t);
        base.set("M", M).set("N", N).set("K", K);
        double onednn = 0;
        if (o.peers) {
          conv_geom cg{int(g.batch), int(g.c_in), int(g.h), int(g.w),
                       int(g.c_out), g.kernel,    g.stride, g.kernel / 2};
          onednn =
              run_peers(o, w, prefix, pb.bench == "conv" ? &cg : nullptr, M, N, K, t, pk[t].fp32(),
                        pk[t].vnni() > 0 ? pk[t].vnni() : pk[t].avx2_maddubs32, base);
        }
        for (mk::isa l : isas) {
          const std::string isa_s = mk::isa_name(l);
          double w8a8 = 0;
          std::vector<std::pair<int, int>> my_pairs =
              pb.first_layer ? std::vector<std::pair<int, int>>{{8, 8}} : pairs;
          for (auto [bw, ba] : my_pairs) {
            // the dispatcher's pick first (ratios use it), then with
            // --all-kernels every other family of this ISA exact for the pair
            std::vector<mk::kernel_id> kids{
                mk::choose_kernel(l, bw, ba, static_cast<std::int32_t>(g.c_out))};
            if (o.all_kernels) {
              std::size_t count = 0;
              const mk::kernel_info* table = mk::kernel_table(&count);
              for (std::size_t k = 0; k < count; ++k)
                if (table[k].level == l && table[k].id != kids[0] &&
                    mk::kernel_runnable(table[k].id) && mk::kernel_supports(table[k].id, bw, ba))
                  kids.push_back(table[k].id);
            }
            for (mk::kernel_id kid : kids) {
              const bool alt = kid != kids[0];
              std::string impl = pb.first_layer ? "mixq_taps" : "mixq";
              if (alt) impl += "_alt";
              const std::string name = prefix + "/" + impl + "/" + isa_s + "/w" +
                                       std::to_string(bw) + "a" + std::to_string(ba);
              if (!matches(o, name)) continue;
              operands ops = make_operands(g, bw, ba);
              mk::qconv_weights wts;
              try {
                wts = mk::qconv_pack_for(kid, g, ops.w.data(), bw, ba);
              } catch (const std::exception& e) {
                std::fprintf(stderr, "%s: %s\n", name.c_str(), e.what());
                continue;
              }
              row r = base;
              r.set("impl", impl).set("isa", isa_s).set("kernel", wts.pw.name.data());
              r.set("w_bits", bw).set("a_bits", ba);
              if (l != mk::isa::scalar && wts.pw.kernel == mk::kernel_id::scalar_1x1c1) {
                r.set("valid", "skipped").set("note", "no SIMD kernel registered for this ISA");
                w.print(r);
                continue;
              }
              if (o.validate) {
                auto key = std::make_pair(bw, ba);
                auto it = ref_cache.find(key);
                if (it == ref_cache.end())
                  it = ref_cache.emplace(key, make_reference(g, ops)).first;
                if (!validate(g, wts, ops, it->second)) {
                  r.set("valid", "MISMATCH");
                  w.print(r);
                  continue;
                }
                r.set("valid", "ok");
              } else {
                r.set("valid", "unchecked");
              }
              mk::requant_params rq{ops.bias.data(), ops.qm.data(), ops.rshift.data(),
                                    ops.zp,          ops.lo,        ops.hi};
              const mk::conv_output out = mk::padded_output(g, ops.outbuf.data());
              timing tm =
                  time_it(o, [&] { mk::qconv2d(g, wts, ops.xpad.data(), rq, nullptr, out); });
              const double gops = 2.0 * double(g.macs()) / tm.min_s * 1e-9;
              // W=A rows of ResNet block shapes also time the residual fused
              // into the epilogue: identity (stride 1, C_out = C_in) or option A
              // (stride 2, C_out = 2 C_in, channels at C_out/4). The residual is
              // the block input itself (the padded conv input buffer).
              const bool res_shape = g.kernel == 3 && !pb.first_layer && pb.bench == "conv" &&
                                     ((g.stride == 1 && g.c_out == g.c_in) ||
                                      (g.stride == 2 && g.c_out == 2 * g.c_in));
              if (res_shape && bw == ba && !alt) {
                std::vector<int32_t> res_qm(size_t(g.c_out), 0);
                const int64_t ch_lo = g.stride == 1 ? 0 : g.c_out / 4;
                for (int64_t n = ch_lo; n < ch_lo + g.c_in; ++n) res_qm[size_t(n)] = 1 << 20;
                const int64_t wp = g.w + 2;
                mk::conv_residual res;
                res.data = ops.xpad.data() + (wp + 1) * g.c_in;
                res.img_stride = (g.h + 2) * wp * g.c_in;
                res.row_stride = wp * g.c_in;
                res.pix_stride = g.c_in;
                res.stride = g.stride;
                res.ch_lo = ch_lo;
                res.res_qm = res_qm.data();
                timing tr =
                    time_it(o, [&] { mk::qconv2d(g, wts, ops.xpad.data(), rq, &res, out); });
                r.setf("res_min_ms", tr.min_s * 1e3, 4)
                    .setf("res_overhead_pct", 100.0 * (tr.min_s / tm.min_s - 1), 1);
              }
              const double peak = pk[t].int8_for_isa(isa_s);
              if (bw == 8 && ba == 8 && !alt) w8a8 = gops;
              put_timing(r, tm, double(g.macs()), peak, w8a8, onednn);
              w.print(r);
              // the LUT6 path on bit-plane planes, same operands and requant
              if (l == mk::isa::avx512 && !alt && !pb.first_layer &&
                  mk::bitplane_supports(bw, ba) && mk::bitplane_simd_active() &&
                  matches(o, prefix + "/mixq_lut6/" + isa_s + "/w" + std::to_string(bw) + "a" +
                                 std::to_string(ba)))
                lut6_row(o, w, base, isa_s, g, ops, rq,
                         o.validate ? &ref_cache.at(std::make_pair(bw, ba)) : nullptr, bw, ba, peak,
                         w8a8, onednn, pb.bench == "conv");
              // the same weights with every pixel summing all 9 taps
              if (o.full_taps && g.kernel == 3 && !pb.first_layer && !alt &&
                  mk::kernel_supports_tap_subset(wts.pw.kernel)) {
                mk::qconv_weights full = wts;
                full.skip_border_taps = false;
                const timing tf =
                    time_it(o, [&] { mk::qconv2d(g, full, ops.xpad.data(), rq, nullptr, out); });
                row rf = base;
                rf.set("impl", impl + "_fulltaps").set("isa", isa_s);
                rf.set("kernel", wts.pw.name.data()).set("w_bits", bw).set("a_bits", ba);
                rf.set("valid", "unchecked");  // bit-exact in tests/kernels/test_conv_border.cpp
                put_timing(rf, tf, double(g.macs()), peak, 0, onednn);
                w.print(rf);
              }
            }
          }
        }
      }
    }
  }
  return 0;
}
