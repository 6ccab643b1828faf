#pragma once
// Peak arithmetic throughput measured by the benchmark itself.
//
// Each probe runs independent dependency chains of one instruction from
// registers (no memory traffic), enough chains to hide the latency
// (12 for zmm/ymm FMA and VNNI, 6 for the AVX2 sequences, whose
// activation register changes every iteration so nothing is hoisted), so the
// result is the issue-port limit of the core:
//   fp32_fma_zmm/ymm  vfmadd231ps           2*16 (or 2*8) FLOP per instruction
//   vnni_zmm/ymm      vpdpbusd              2*64 (or 2*32) OP per instruction
//   avx2_maddubs32    vpmaddubsw+vpmaddwd+vpaddd   (exact-ish int8 path with
//                     int32 accumulation; 2*32 OP per vpmaddubsw)
//   avx2_maddubs16    vpmaddubsw+vpaddw     (int16 accumulation, the low-bit
//                     AVX2 family; 2*32 OP per vpmaddubsw)
// plus the core clock from a chain of dependent scalar adds (latency 1).
// A probe whose ISA the CPU lacks (CPUID via __builtin_cpu_supports) is
// reported as 0 and never executed. The functions carry their ISA in
// __attribute__((target)) and have internal linkage (static), so no inline
// symbol compiled for a wider ISA can be shared with baseline code.
// With T threads every thread runs the same probe inside one OpenMP
// parallel region; the rate is T * work / wall time of the region.
#include <immintrin.h>

#include <chrono>
#include <cstdint>

#include "harness.hpp"

// GCC 12's intrinsic headers self-initialize "undefined" vectors (__Y = __Y),
// which -Wuninitialized reports at every inlined use; the code is fine.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace mixq_bench {
namespace peak_detail {

using clk = std::chrono::steady_clock;

static __attribute__((noinline)) double add_chain(long iters) {
  uint64_t x = 0;
  for (long i = 0; i < iters; ++i) {
    asm volatile(
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
        "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
        : "+r"(x));
  }
  return double(x);  // 20 adds per iteration
}

#define MIXQ_BENCH_REP12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

static __attribute__((target("avx512f"), noinline)) float fma_zmm(long iters) {
  __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  asm volatile("" : "+v"(x), "+v"(y));
#define D(i) __m512 a##i = _mm512_set1_ps(float(i));
  MIXQ_BENCH_REP12(D)
#undef D
  for (long it = 0; it < iters; ++it) {
#define F(i) a##i = _mm512_fmadd_ps(a##i, x, y);
    MIXQ_BENCH_REP12(F)
#undef F
  }
  __m512 s = _mm512_setzero_ps();
#define S(i) s = _mm512_add_ps(s, a##i);
  MIXQ_BENCH_REP12(S)
#undef S
  return _mm512_reduce_add_ps(s);
}

static __attribute__((target("avx2,fma"), noinline)) float fma_ymm(long iters) {
  __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  asm volatile("" : "+v"(x), "+v"(y));
#define D(i) __m256 a##i = _mm256_set1_ps(float(i));
  MIXQ_BENCH_REP12(D)
#undef D
  for (long it = 0; it < iters; ++it) {
#define F(i) a##i = _mm256_fmadd_ps(a##i, x, y);
    MIXQ_BENCH_REP12(F)
#undef F
  }
  __m256 s = _mm256_setzero_ps();
#define S(i) s = _mm256_add_ps(s, a##i);
  MIXQ_BENCH_REP12(S)
#undef S
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[7];
}

static __attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) int vnni_zmm(long iters) {
  __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  asm volatile("" : "+v"(a), "+v"(b));
#define D(i) __m512i c##i = _mm512_set1_epi32(i);
  MIXQ_BENCH_REP12(D)
#undef D
  for (long it = 0; it < iters; ++it) {
#define F(i) c##i = _mm512_dpbusd_epi32(c##i, a, b);
    MIXQ_BENCH_REP12(F)
#undef F
  }
  __m512i s = _mm512_setzero_si512();
#define S(i) s = _mm512_add_epi32(s, c##i);
  MIXQ_BENCH_REP12(S)
#undef S
  return _mm512_reduce_add_epi32(s);
}

static __attribute__((target("avx2,avx512f,avx512vl,avx512vnni"), noinline)) int vnni_ymm(
    long iters) {
  __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
  asm volatile("" : "+v"(a), "+v"(b));
#define D(i) __m256i c##i = _mm256_set1_epi32(i);
  MIXQ_BENCH_REP12(D)
#undef D
  for (long it = 0; it < iters; ++it) {
#define F(i) c##i = _mm256_dpbusd_epi32(c##i, a, b);
    MIXQ_BENCH_REP12(F)
#undef F
  }
  __m256i s = _mm256_setzero_si256();
#define S(i) s = _mm256_add_epi32(s, c##i);
  MIXQ_BENCH_REP12(S)
#undef S
  return _mm256_extract_epi32(s, 0) + _mm256_extract_epi32(s, 7);
}

#define MIXQ_BENCH_REP6(X) X(0) X(1) X(2) X(3) X(4) X(5)

// vpmaddubsw -> vpmaddwd(ones) -> vpaddd: the AVX2 int8 path with int32 sums.
// Six chains with distinct weight registers and an activation register that
// changes every iteration (one vpaddb), so nothing is loop-invariant; 16 ymm
// registers limit the chain count (6 acc + 6 w + a + ones + step).
static __attribute__((target("avx2"), noinline)) int maddubs32(long iters) {
  __m256i a = _mm256_set1_epi8(3), step = _mm256_set1_epi8(1), ones = _mm256_set1_epi16(1);
  asm volatile("" : "+v"(a), "+v"(step), "+v"(ones));
#define D(i)                           \
  __m256i c##i = _mm256_set1_epi32(i); \
  __m256i b##i = _mm256_set1_epi8(char(i - 3));
  MIXQ_BENCH_REP6(D)
#undef D
  for (long it = 0; it < iters; ++it) {
    a = _mm256_add_epi8(a, step);
#define F(i) c##i = _mm256_add_epi32(c##i, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b##i), ones));
    MIXQ_BENCH_REP6(F)
#undef F
  }
  __m256i s = _mm256_setzero_si256();
#define S(i) s = _mm256_add_epi32(s, c##i);
  MIXQ_BENCH_REP6(S)
#undef S
  return _mm256_extract_epi32(s, 0) + _mm256_extract_epi32(s, 7);
}

// vpmaddubsw -> vpaddw: int16 accumulation (low-bit AVX2 family).
static __attribute__((target("avx2"), noinline)) int maddubs16(long iters) {
  __m256i a = _mm256_set1_epi8(1), step = _mm256_set1_epi8(1);
  asm volatile("" : "+v"(a), "+v"(step));
#define D(i)                           \
  __m256i c##i = _mm256_set1_epi16(i); \
  __m256i b##i = _mm256_set1_epi8(char(i - 3));
  MIXQ_BENCH_REP6(D)
#undef D
  for (long it = 0; it < iters; ++it) {
    a = _mm256_add_epi8(a, step);
#define F(i) c##i = _mm256_add_epi16(c##i, _mm256_maddubs_epi16(a, b##i));
    MIXQ_BENCH_REP6(F)
#undef F
  }
  __m256i s = _mm256_setzero_si256();
#define S(i) s = _mm256_add_epi16(s, c##i);
  MIXQ_BENCH_REP6(S)
#undef S
  return _mm256_extract_epi16(s, 0) + _mm256_extract_epi16(s, 15);
}

// Runs probe(iters) on `threads` threads, best of `reps` regions; returns
// seconds per call.
template <class F>
double best_region_seconds(int threads, long iters, int reps, F probe) {
  double best = 1e30;
  volatile double sink = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = clk::now();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
      double v = double(probe(iters));
      sink = sink + v * 0;
    }
    auto t1 = clk::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  (void)threads;
  return best;
}

}  // namespace peak_detail
}  // namespace mixq_bench
#pragma GCC diagnostic pop

namespace mixq_bench {

struct peaks {
  int threads = 1;
  double ghz = 0;             // from the dependent-add chain, thread 0 alone
  double fp32_zmm = 0;        // GFLOP/s
  double fp32_ymm = 0;        // GFLOP/s
  double vnni_zmm = 0;        // GOP/s
  double vnni_ymm = 0;        // GOP/s
  double avx2_maddubs32 = 0;  // GOP/s
  double avx2_maddubs16 = 0;  // GOP/s
  double fp32() const { return std::max(fp32_zmm, fp32_ymm); }
  double vnni() const { return std::max(vnni_zmm, vnni_ymm); }
  // The int8 peak used as "100 %" for an ISA's kernels.
  double int8_for_isa(const std::string& isa) const {
    if (isa == "avx512") return vnni();
    if (isa == "avx2") return avx2_maddubs32;
    return 0;
  }
};

inline bool cpu_has_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
inline bool cpu_has_avx512vnni() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

inline peaks measure_peaks(int threads, int reps = 15) {
  using namespace peak_detail;
  set_threads(threads);
  peaks p;
  p.threads = threads;
  const long n = 1000000;  // about 5-12 ms per probe; best of `reps` (the machine is shared)
  {
    double t = 1e30;
    for (int r = 0; r < reps; ++r) {
      auto t0 = clk::now();
      volatile double s = add_chain(n);
      (void)s;
      t = std::min(t, std::chrono::duration<double>(clk::now() - t0).count());
    }
    p.ghz = 20.0 * double(n) / t * 1e-9;
  }
  const double T = threads;
  if (__builtin_cpu_supports("avx512f")) {
    double t = best_region_seconds(threads, n, reps, fma_zmm);
    p.fp32_zmm = T * 12.0 * 16 * 2 * double(n) / t * 1e-9;
  }
  if (cpu_has_avx2()) {
    double t = best_region_seconds(threads, n, reps, fma_ymm);
    p.fp32_ymm = T * 12.0 * 8 * 2 * double(n) / t * 1e-9;
    t = best_region_seconds(threads, n, reps, maddubs32);
    p.avx2_maddubs32 = T * 6.0 * 32 * 2 * double(n) / t * 1e-9;
    t = best_region_seconds(threads, n, reps, maddubs16);
    p.avx2_maddubs16 = T * 6.0 * 32 * 2 * double(n) / t * 1e-9;
  }
  if (cpu_has_avx512vnni()) {
    double t = best_region_seconds(threads, n, reps, vnni_zmm);
    p.vnni_zmm = T * 12.0 * 64 * 2 * double(n) / t * 1e-9;
    t = best_region_seconds(threads, n, reps, vnni_ymm);
    p.vnni_ymm = T * 12.0 * 32 * 2 * double(n) / t * 1e-9;
  }
  return p;
}

// One row per probe, in the harness' row format.
inline void print_peaks(writer& w, const peaks& p) {
  auto emit = [&](const char* name, double v, const char* unit, double per_cycle_div) {
    row r;
    r.set("bench", "peak").set("impl", name).set("threads", p.threads);
    r.setf("gops", v, 1).set("unit", unit).setf("ghz", p.ghz, 3);
    // per-core operations per cycle (2 per MAC / FMA)
    if (p.ghz > 0 && v > 0) r.setf("ops_per_cycle_core", v / p.threads / p.ghz / per_cycle_div, 1);
    w.print(r);
  };
  emit("fp32_fma_zmm", p.fp32_zmm, "GFLOP/s", 1);
  emit("fp32_fma_ymm", p.fp32_ymm, "GFLOP/s", 1);
  emit("vnni_vpdpbusd_zmm", p.vnni_zmm, "GOP/s", 1);
  emit("vnni_vpdpbusd_ymm", p.vnni_ymm, "GOP/s", 1);
  emit("avx2_maddubs_maddwd_i32", p.avx2_maddubs32, "GOP/s", 1);
  emit("avx2_maddubs_paddw_i16", p.avx2_maddubs16, "GOP/s", 1);
}

}  // namespace mixq_bench
