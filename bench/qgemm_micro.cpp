// qgemm micro-benchmark: single-threaded GOP/s and MAC/cycle of every
// runnable qgemm kernel family on square GEMMs and ResNet20 conv shapes,
// per (b_w, b_a). Every kernel is validated against the scalar reference
// before it is timed. Output: CSV rows
//   kernel,isa,a_bits,w_bits,shape,M,N,K,ns,gops,mac_per_cycle
//
// Build (outside CMake):
//   g++ -O2 -std=c++17 -I<build>/mixq_include_shim bench/qgemm_micro.cpp -o qgemm_micro
// The last column is the kernel MAC/s over a pure vpdpbusd zmm loop measured
// in the same run (the VNNI peak), which is robust to the clock estimate.
// Usage: qgemm_micro [--reps N] [--filter substring] [--pairs all|diag]
#include <chrono>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <mixq/kernels/qgemm.hpp>

namespace mk = mixq::kernels;

namespace {

std::uint64_t rng_state = 88172645463325252ull;
std::uint32_t rnd() {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return static_cast<std::uint32_t>(rng_state);
}

// Core clock from a chain of dependent adds (latency 1 cycle on x86).
double measure_ghz() {
  double best = 0;
  for (int rep = 0; rep < 40; ++rep) {  // many short runs: min filters preemption
    const std::uint64_t iters = 4000000;
    std::uint64_t x = 0;
    const auto t0 = std::chrono::steady_clock::now();
#if defined(__x86_64__)
    for (std::uint64_t i = 0; i < iters / 8; ++i)
      __asm__ volatile(
          "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
          "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
          : "+r"(x));
#else
    for (std::uint64_t i = 0; i < iters; ++i) __asm__ volatile("add %0, %0, #1" : "+r"(x));
#endif
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double ghz = double(iters) / s * 1e-9;
    if (ghz > best) best = ghz;
  }
  return best;
}

#if defined(__x86_64__)
// VNNI peak: 12 independent vpdpbusd zmm chains (64 MAC each), MAC/s.
__attribute__((target("avx512f,avx512vnni"))) double vnni_peak_macs() {
  double best = 0;
  volatile int seed = 0x01020304;
  for (int rep = 0; rep < 40; ++rep) {  // many short runs: min filters preemption
    const __m512i a = _mm512_set1_epi32(seed), b = _mm512_set1_epi32(seed + 1);
    __m512i c0 = a, c1 = b, c2 = a, c3 = b, c4 = a, c5 = b, c6 = a, c7 = b, c8 = a, c9 = b, c10 = a,
            c11 = b;
    const long iters = 300000;
    const auto t0 = std::chrono::steady_clock::now();
    for (long it = 0; it < iters; ++it) {
      c0 = _mm512_dpbusd_epi32(c0, a, b);
      c1 = _mm512_dpbusd_epi32(c1, a, b);
      c2 = _mm512_dpbusd_epi32(c2, a, b);
      c3 = _mm512_dpbusd_epi32(c3, a, b);
      c4 = _mm512_dpbusd_epi32(c4, a, b);
      c5 = _mm512_dpbusd_epi32(c5, a, b);
      c6 = _mm512_dpbusd_epi32(c6, a, b);
      c7 = _mm512_dpbusd_epi32(c7, a, b);
      c8 = _mm512_dpbusd_epi32(c8, a, b);
      c9 = _mm512_dpbusd_epi32(c9, a, b);
      c10 = _mm512_dpbusd_epi32(c10, a, b);
      c11 = _mm512_dpbusd_epi32(c11, a, b);
      __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5));
      __asm__ volatile("" : "+v"(c6), "+v"(c7), "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11));
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    __m512i t =
        _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(c0, c1), _mm512_add_epi32(c2, c3)),
                         _mm512_add_epi32(_mm512_add_epi32(c4, c5), _mm512_add_epi32(c6, c7)));
    t = _mm512_add_epi32(t, _mm512_add_epi32(_mm512_add_epi32(c8, c9), _mm512_add_epi32(c10, c11)));
    if (_mm512_reduce_add_epi32(t) == 42) std::fprintf(stderr, " ");
    const double macs = double(iters) * 12 * 64 / s;
    if (macs > best) best = macs;
  }
  return best;
}
#endif

struct shape {
  const char* name;
  int h, w, c, n, k,
      s;  // conv: h x w output, c in, n out, k x k kernel, stride; k = 0: GEMM M=h N=n K=c
  bool rows =
      false;  // conv taps merged per kernel row: k taps of k_seg = k*c (dx and c contiguous)
};

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  std::string filter;
  bool diag = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc)
      reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc)
      filter = argv[++i];
    else if (!std::strcmp(argv[i], "--pairs") && i + 1 < argc)
      diag = !std::strcmp(argv[++i], "diag");
  }
  const double ghz = measure_ghz();
  std::fprintf(stderr, "# clock estimate %.2f GHz (dependent-add chain)\n", ghz);
  double peak = 0;
#if defined(__x86_64__)
  if (mk::isa_supported(mk::isa::avx512)) {
    peak = vnni_peak_macs();
    std::fprintf(stderr,
                 "# vpdpbusd zmm peak %.1f GMAC/s = %.1f MAC/cycle at the estimated clock\n",
                 peak * 1e-9, peak / (ghz * 1e9));
  }
#endif
  const shape shapes[] = {
      {"gemm256", 256, 0, 256, 256, 0, 1},
      {"gemm512", 512, 0, 512, 512, 0, 1},
      {"r20_s1_3x3", 32, 32, 16, 16, 3, 1},
      {"r20_s2_3x3", 16, 16, 32, 32, 3, 1},
      {"r20_s3_3x3", 8, 8, 64, 64, 3, 1},
      {"r20_first", 32, 32, 3, 16, 3, 1},
      {"r20_first_rows", 32, 32, 3, 16, 3, 1, true},
  };
  std::printf("kernel,isa,a_bits,w_bits,shape,M,N,K,ns,gops,mac_per_cycle,pct_vnni_peak\n");
  std::size_t nk = 0;
  const mk::kernel_info* table = mk::kernel_table(&nk);
  for (std::size_t ki = 0; ki < nk; ++ki) {
    const mk::kernel_info& info = table[ki];
    if (!mk::isa_supported(info.level)) {
      std::fprintf(stderr, "# skipped %s: ISA %s not available\n", info.name,
                   mk::isa_name(info.level));
      continue;
    }
    if (info.id == mk::kernel_id::scalar_1x1c1 && filter.find("scalar") == std::string::npos)
      continue;
    for (int bw = 2; bw <= 8; ++bw)
      for (int ba = 2; ba <= 8; ++ba) {
        if (diag && bw != ba) continue;
        if (!mk::kernel_supports(info.id, bw, ba)) continue;
        for (const shape& sh : shapes) {
          char label[160];
          std::snprintf(label, sizeof label, "%s a%dw%d %s", info.name, ba, bw, sh.name);
          if (!filter.empty() && std::string(label).find(filter) == std::string::npos) continue;
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
          for (auto& v : a) v = static_cast<std::uint8_t>(rnd() & ((1u << ba) - 1));
          std::vector<std::int8_t> w(std::size_t(sh.n) * taps * kseg);
          for (auto& v : w) v = static_cast<std::int8_t>(int(rnd() % (1u << bw)) - (1 << (bw - 1)));
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
          ep.out = ref_out.data();
          mk::qgemm(p, pr, ep);
          ep.out = out.data();
          mk::qgemm(p, pw, ep);
          if (out != ref_out) {
            std::fprintf(stderr, "MISMATCH %s\n", label);
            return 1;
          }
          double best = 1e30;
          for (int r = 0; r < reps; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            mk::qgemm(p, pw, ep);
            const double s =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            if (s < best) best = s;
          }
          const double macs = double(m) * sh.n * taps * kseg;
          std::printf("%s,%s,%d,%d,%s,%lld,%d,%d,%.0f,%.2f,%.1f,%.1f\n", pw.name.data(),
                      mk::isa_name(info.level), ba, bw, sh.name, static_cast<long long>(m), sh.n,
                      taps * kseg, best * 1e9, 2 * macs / best * 1e-9, macs / best / (ghz * 1e9),
                      peak > 0 ? 100.0 * macs / best / peak : 0.0);
          std::fflush(stdout);
        }
      }
  }
  return 0;
}
