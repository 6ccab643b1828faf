// qgemm micro-benchmark: single-threaded GOP/s and MAC/cycle of every
// runnable qgemm kernel family of kernels.inc on square GEMMs and ResNet20
// conv shapes, per (b_w, b_a). Every kernel is validated against the scalar
// reference before it is timed (unless --no-validate).
//
//   mixq_bench_qgemm_micro [--reps 20] [--filter substring] [--bits 2-8]
//                          [--diag] [--format csv|jsonl|md] [--no-validate]
// (harness.hpp options; --filter matches "<kernel> a<A>w<W> <shape>", the
// scalar reference runs only when the filter names "scalar").
// Columns: kernel,isa,a_bits,w_bits,shape,M,N,K,ns (min of --reps after
// --warmup),gops,mac_per_cycle (at the harness clock),pct_vnni_peak (kernel
// MAC/s over the vpdpbusd zmm peak measured in the same run by peak.hpp,
// robust to the clock estimate).
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <mixq/kernels/qgemm.hpp>

#include "harness.hpp"
#include "peak.hpp"

namespace mk = mixq::kernels;
using namespace mixq_bench;

namespace {

struct shape {
  const char* name;
  int h, w, c, n, k,
      s;  // conv: h x w output, c in, n out, k x k kernel, stride; k = 0: GEMM M=h N=n K=c
  bool rows =
      false;  // conv taps merged per kernel row: k taps of k_seg = k*c (dx and c contiguous)
};

}  // namespace

int main(int argc, char** argv) {
  options defaults;
  defaults.reps = 20;
  const options o = parse(argc, argv, defaults);
  const peaks pk = measure_peaks(1);  // pins this thread too
  const double ghz = pk.ghz;
  const double peak_macs = pk.vnni_zmm * 1e9 / 2;  // 2 ops per MAC
  std::fprintf(stderr, "# clock %.2f GHz; vpdpbusd zmm peak %.1f GMAC/s = %.1f MAC/cycle\n", ghz,
               peak_macs * 1e-9, ghz > 0 ? peak_macs / (ghz * 1e9) : 0.0);
  const shape shapes[] = {
      {"gemm256", 256, 0, 256, 256, 0, 1},
      {"gemm512", 512, 0, 512, 512, 0, 1},
      {"r20_s1_3x3", 32, 32, 16, 16, 3, 1},
      {"r20_s2_3x3", 16, 16, 32, 32, 3, 1},
      {"r20_s3_3x3", 8, 8, 64, 64, 3, 1},
      {"r20_first", 32, 32, 3, 16, 3, 1},
      {"r20_first_rows", 32, 32, 3, 16, 3, 1, true},
  };
  writer out_rows(o.format, {"kernel", "isa", "a_bits", "w_bits", "shape", "M", "N", "K", "ns",
                             "gops", "mac_per_cycle", "pct_vnni_peak"});
  rng r(88172645463325252ull);
  std::size_t nk = 0;
  const mk::kernel_info* table = mk::kernel_table(&nk);
  for (std::size_t ki = 0; ki < nk; ++ki) {
    const mk::kernel_info& info = table[ki];
    if (!mk::kernel_runnable(info.id)) {
      std::fprintf(stderr, "# skipped %s: ISA %s not available\n", info.name,
                   mk::isa_name(info.level));
      continue;
    }
    if (info.id == mk::kernel_id::scalar_1x1c1 && o.filter.find("scalar") == std::string::npos)
      continue;
    for (int bw : o.bits)
      for (int ba : o.bits) {
        if (o.diag && bw != ba) continue;
        if (!mk::kernel_supports(info.id, bw, ba)) continue;
        for (const shape& sh : shapes) {
          char label[160];
          std::snprintf(label, sizeof label, "%s a%dw%d %s", info.name, ba, bw, sh.name);
          if (!matches(o, label)) continue;
          // operands
          std::int64_t m;
          int taps, kseg;
          std::vector<std::int64_t> pix, tap;
          std::size_t abytes;
          if (sh.k == 0) {
            m = sh.h;
            taps = 1;
            kseg = sh.c;
            for (std::int64_t i = 0; i < m; ++i) pix.push_back(i * kseg);
            tap.push_back(0);
            abytes = std::size_t(m) * kseg;
          } else {
            const int wp = sh.w + sh.k - 1, hp = sh.h + sh.k - 1;
            m = std::int64_t(sh.h) * sh.w;
            taps = sh.rows ? sh.k : sh.k * sh.k;
            kseg = sh.rows ? sh.k * sh.c : sh.c;
            for (int dy = 0; dy < sh.k; ++dy)
              for (int dx = 0; dx < (sh.rows ? 1 : sh.k); ++dx)
                tap.push_back((std::int64_t(dy) * wp + dx) * sh.c);
            for (int y = 0; y < sh.h; ++y)
              for (int x = 0; x < sh.w; ++x) pix.push_back((std::int64_t(y) * wp + x) * sh.c);
            abytes = std::size_t(hp) * wp * sh.c;
          }
          std::vector<std::uint8_t> a(abytes + mk::a_overread_bytes);
          for (auto& v : a) v = static_cast<std::uint8_t>(r.uniform(0, (1 << ba) - 1));
          std::vector<std::int8_t> w(std::size_t(sh.n) * taps * kseg);
          for (auto& v : w)
            v = static_cast<std::int8_t>(r.uniform(-(1 << (bw - 1)), (1 << (bw - 1)) - 1));
          std::vector<std::int32_t> bias(sh.n, 7), qm(sh.n, 1 << 30), rs(sh.n, 40);
          std::vector<std::int64_t> ooff(m);
          for (std::int64_t i = 0; i < m; ++i) ooff[i] = i * sh.n;
          std::vector<std::uint8_t> out(std::size_t(m) * sh.n), ref_out(out.size());
          mk::qgemm_problem p;
          p.m = m;
          p.a = a.data();
          p.pix_off = pix.data();
          p.tap_off = tap.data();
          mk::epilogue ep;
          ep.bias = bias.data();
          ep.qm = qm.data();
          ep.rshift = rs.data();
          ep.hi = (1 << ba) - 1;
          ep.out_pix_off = ooff.data();
          const mk::packed_weights pw =
              mk::pack_weights_for(info.id, w.data(), sh.n, taps, kseg, bw, ba);
          const mk::packed_weights pr =
              mk::pack_weights_for(mk::kernel_id::scalar_1x1c1, w.data(), sh.n, taps, kseg, bw, ba);
          if (o.validate) {
            ep.out = ref_out.data();
            mk::qgemm(p, pr, ep);
            ep.out = out.data();
            mk::qgemm(p, pw, ep);
            if (out != ref_out) {
              std::fprintf(stderr, "%s: MISMATCH against the scalar reference\n", label);
              return 1;
            }
          }
          ep.out = out.data();
          const timing tm = time_it(o, [&] { mk::qgemm(p, pw, ep); });
          const double macs = double(m) * sh.n * taps * kseg;
          row rw;
          rw.set("kernel", pw.name.data()).set("isa", mk::isa_name(info.level));
          rw.set("a_bits", ba).set("w_bits", bw).set("shape", sh.name);
          rw.set("M", static_cast<long long>(m)).set("N", sh.n).set("K", taps * kseg);
          rw.setf("ns", tm.min_s * 1e9, 0).setf("gops", 2 * macs / tm.min_s * 1e-9, 2);
          rw.setf("mac_per_cycle", ghz > 0 ? macs / tm.min_s / (ghz * 1e9) : 0.0, 1);
          rw.setf("pct_vnni_peak", peak_macs > 0 ? 100.0 * macs / tm.min_s / peak_macs : 0.0, 1);
          out_rows.print(rw);
        }
      }
  }
  return 0;
}
