#pragma once
// Peak arithmetic throughput measured by the benchmark itself.
//
// Each probe runs independent dependency chains of one instruction from
// registers (no memory traffic), so the result is the issue-port limit of
// the core:
//   fp32_fma_zmm/ymm  vfmadd231ps           2*16 (or 2*8) FLOP per instruction
//   vnni_zmm/ymm      vpdpbusd              2*64 (or 2*32) OP per instruction
//   avx2_maddubs32    vpmaddubsw+vpmaddwd+vpaddd   (exact-ish int8 path with
//                     int32 accumulation; 2*32 OP per vpmaddubsw)
//   avx2_maddubs16    vpmaddubsw+vpaddw     (int16 accumulation, the low-bit
//                     AVX2 family; 2*32 OP per vpmaddubsw)
// plus the core clock (harness clock_ghz, a chain of dependent scalar adds).
//
// Reaching the real peak on a shared machine:
// - Code: vpdpbusd is written as inline asm with the accumulator as a
//   read-write operand (the intrinsic, under GCC 12, copies every
//   accumulator in and out of the loop and spills two of them to the stack,
//   a store-to-load chain that capped the probe at about 1.5 of the 2
//   vpdpbusd per cycle); the weight registers pass an empty asm, so no
//   chain folds to a constant (a zero weight once removed one of six).
// - Chains: 16 for zmm FMA and VNNI (two 512-bit pipes of latency <= 4 need
//   8 in flight; Zen 5 issues 2 vfmadd231ps / vpdpbusd zmm per cycle = 64
//   FLOP and 256 int8 OP per cycle), 12 for ymm FMA (16 ymm registers
//   without AVX-512VL), 6 for the AVX2 sequences, whose activation register
//   changes every iteration so nothing is hoisted.
// - Warm-up: every probe first runs untimed for a few ms (wide units that
//   were idle start at a lower throughput or clock).
// - Per-thread best of many short runs: every thread (pinned to its own core
//   by the harness) times `runs` runs of about 0.5 ms itself, between
//   barriers so that all threads run at once (the all-core clock); a run
//   counts the smaller of its wall and thread-CPU time (a thread preempted by
//   another process loses CPU time, not work) and each thread keeps its
//   fastest run. The machine's rate is the sum of the threads' rates.
// A probe whose ISA the CPU lacks (CPUID via __builtin_cpu_supports) is
// reported as 0 and never executed. The functions carry their ISA in
// __attribute__((target)) and have internal linkage (static), so no inline
// symbol compiled for a wider ISA can be shared with baseline code.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "harness.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

// GCC 12's intrinsic headers self-initialize "undefined" vectors (__Y = __Y),
// which -Wuninitialized reports at every inlined use; the code is fine.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace mixq_bench {
namespace peak_detail {

#define MIXQ_BENCH_REP6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define MIXQ_BENCH_REP12(X) MIXQ_BENCH_REP6(X) X(6) X(7) X(8) X(9) X(10) X(11)
#define MIXQ_BENCH_REP16(X) MIXQ_BENCH_REP12(X) X(12) X(13) X(14) X(15)

// Instructions per iteration of each probe.
constexpr int zmm_chains = 16, ymm_chains = 12, avx2_chains = 6;

static __attribute__((target("avx512f"), noinline)) float fma_zmm(long iters) {
  __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  asm volatile("" : "+v"(x), "+v"(y));
#define D(i) __m512 a##i = _mm512_set1_ps(float(i));
  MIXQ_BENCH_REP16(D)
#undef D
  for (long it = 0; it < iters; ++it) {
#define F(i) a##i = _mm512_fmadd_ps(a##i, x, y);
    MIXQ_BENCH_REP16(F)
#undef F
  }
  __m512 s = _mm512_setzero_ps();
#define S(i) s = _mm512_add_ps(s, a##i);
  MIXQ_BENCH_REP16(S)
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
  MIXQ_BENCH_REP16(D)
#undef D
  for (long it = 0; it < iters; ++it) {
#define F(i) asm("vpdpbusd %2, %1, %0" : "+v"(c##i) : "v"(a), "v"(b));
    MIXQ_BENCH_REP16(F)
#undef F
  }
  __m512i s = _mm512_setzero_si512();
#define S(i) s = _mm512_add_epi32(s, c##i);
  MIXQ_BENCH_REP16(S)
#undef S
  return _mm512_reduce_add_epi32(s);
}

static __attribute__((target("avx2,avx512f,avx512vl,avx512vnni"), noinline)) int vnni_ymm(
    long iters) {
  __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
  asm volatile("" : "+v"(a), "+v"(b));
#define D(i) __m256i c##i = _mm256_set1_epi32(i);
  MIXQ_BENCH_REP16(D)
#undef D
  for (long it = 0; it < iters; ++it) {
#define F(i) asm("vpdpbusd %2, %1, %0" : "+v"(c##i) : "v"(a), "v"(b));
    MIXQ_BENCH_REP16(F)
#undef F
  }
  __m256i s = _mm256_setzero_si256();
#define S(i) s = _mm256_add_epi32(s, c##i);
  MIXQ_BENCH_REP16(S)
#undef S
  return _mm256_extract_epi32(s, 0) + _mm256_extract_epi32(s, 7);
}

// vpmaddubsw -> vpmaddwd(ones) -> vpaddd: the AVX2 int8 path with int32 sums.
// Six chains with distinct weight registers (opaque to the compiler) and an
// activation register that changes every iteration (one vpaddb), so nothing
// is loop-invariant; 16 ymm registers limit the chain count (6 acc + 6 w +
// a + ones + step).
static __attribute__((target("avx2"), noinline)) int maddubs32(long iters) {
  __m256i a = _mm256_set1_epi8(3), step = _mm256_set1_epi8(1), ones = _mm256_set1_epi16(1);
  asm volatile("" : "+v"(a), "+v"(step), "+v"(ones));
#define D(i)                                    \
  __m256i c##i = _mm256_set1_epi32(i);          \
  __m256i b##i = _mm256_set1_epi8(char(i - 3)); \
  asm volatile("" : "+v"(b##i));
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
#define D(i)                                    \
  __m256i c##i = _mm256_set1_epi16(i);          \
  __m256i b##i = _mm256_set1_epi8(char(i - 3)); \
  asm volatile("" : "+v"(b##i));
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

#undef MIXQ_BENCH_REP6
#undef MIXQ_BENCH_REP12
#undef MIXQ_BENCH_REP16

// Seconds of one probe(iters) call on each of `threads` threads running at
// once: a warm-up call of `warm` iterations, then `runs` timed calls, each
// thread keeping its fastest (min of wall and thread CPU time). Returns the
// per-thread bests.
template <class F>
std::vector<double> per_thread_best(int threads, long warm, long iters, int runs, F probe) {
  std::vector<double> best(size_t(threads), 1e30);
  volatile double sink = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
  {
    int id = 0;
#ifdef _OPENMP
    id = omp_get_thread_num();
#endif
    double v = double(probe(warm));
    for (int r = 0; r < runs; ++r) {
#ifdef _OPENMP
#pragma omp barrier
#endif
      const double c0 = thread_cpu_seconds();
      const auto t0 = std::chrono::steady_clock::now();
      v += double(probe(iters));
      const double wall =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cpu = thread_cpu_seconds() - c0;
      const double t = cpu > 0 ? std::min(wall, cpu) : wall;
      best[size_t(id)] = std::min(best[size_t(id)], t);
    }
    sink = sink + v * 0;
  }
  return best;
}

// Sum over threads of ops / best seconds, in G per second.
inline double rate_g(const std::vector<double>& best, double ops_per_call) {
  double g = 0;
  for (double t : best) g += ops_per_call / t * 1e-9;
  return g;
}

}  // namespace peak_detail
}  // namespace mixq_bench
#pragma GCC diagnostic pop

namespace mixq_bench {

struct peaks {
  int threads = 1;
  double ghz = 0;             // mean of the threads' clocks, all threads running
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

/// The peaks of `threads` threads (pinned, all running at once). `runs`
/// timed runs of about 0.5 ms per probe and thread.
inline peaks measure_peaks(int threads, int runs = 40) {
  using namespace peak_detail;
  set_threads(threads);
  peaks p;
  p.threads = threads;
  {
    std::vector<double> g(size_t(threads), 0);
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
      int id = 0;
#ifdef _OPENMP
      id = omp_get_thread_num();
#endif
      g[size_t(id)] = clock_ghz(runs);
    }
    for (double v : g) p.ghz += v / threads;
  }
  // iterations per timed run: about 0.5 ms at 4 GHz (2 instructions per cycle)
  const long n = 125000, warm = 1000000;
  if (__builtin_cpu_supports("avx512f"))
    p.fp32_zmm = rate_g(per_thread_best(threads, warm, n, runs, fma_zmm),
                        double(zmm_chains) * 16 * 2 * double(n));
  if (cpu_has_avx2()) {
    p.fp32_ymm = rate_g(per_thread_best(threads, warm, n, runs, fma_ymm),
                        double(ymm_chains) * 8 * 2 * double(n));
    p.avx2_maddubs32 = rate_g(per_thread_best(threads, warm, n, runs, maddubs32),
                              double(avx2_chains) * 32 * 2 * double(n));
    p.avx2_maddubs16 = rate_g(per_thread_best(threads, warm, n, runs, maddubs16),
                              double(avx2_chains) * 32 * 2 * double(n));
  }
  if (cpu_has_avx512vnni()) {
    p.vnni_zmm = rate_g(per_thread_best(threads, warm, n, runs, vnni_zmm),
                        double(zmm_chains) * 64 * 2 * double(n));
    p.vnni_ymm = rate_g(per_thread_best(threads, warm, n, runs, vnni_ymm),
                        double(zmm_chains) * 32 * 2 * double(n));
  }
  return p;
}

// One row per probe, in the harness' row format.
inline void print_peaks(writer& w, const peaks& p) {
  auto emit = [&](const char* name, double v, const char* unit) {
    row r;
    r.set("bench", "peak").set("impl", name).set("threads", p.threads);
    r.setf("gops", v, 1).set("unit", unit).setf("ghz", p.ghz, 3);
    // per-core operations per cycle (2 per MAC / FMA)
    if (p.ghz > 0 && v > 0) r.setf("ops_per_cycle_core", v / p.threads / p.ghz, 1);
    w.print(r);
  };
  emit("fp32_fma_zmm", p.fp32_zmm, "GFLOP/s");
  emit("fp32_fma_ymm", p.fp32_ymm, "GFLOP/s");
  emit("vnni_vpdpbusd_zmm", p.vnni_zmm, "GOP/s");
  emit("vnni_vpdpbusd_ymm", p.vnni_ymm, "GOP/s");
  emit("avx2_maddubs_maddwd_i32", p.avx2_maddubs32, "GOP/s");
  emit("avx2_maddubs_paddw_i16", p.avx2_maddubs16, "GOP/s");
}

}  // namespace mixq_bench
