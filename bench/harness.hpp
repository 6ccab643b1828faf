#pragma once
// In-house benchmark harness for mixq (no Google Benchmark), shared by every
// benchmark in bench/: options, thread pinning, timing, the clock probe, the
// generator and the CSV / JSON lines / markdown output.
//
// What it does, and why:
//  * Command line: --filter SUBSTR (a row runs when its name contains every
//    comma-separated part of SUBSTR), --reps N (timed repetitions, or rounds
//    of an interleaved benchmark, default 15), --warmup N (untimed, default
//    3), --calls N (back-to-back calls per interleaved sample, default 1),
//    --threads 1,2 (list), --format csv|jsonl|md, --isa scalar,avx2,avx512
//    (list), --batch 1,128, --bits 2-8 or a list, --diag (only W = A pairs),
//    --no-peers, --no-validate, --quick, --all-kernels (time every kernel
//    family of kernels.inc that is exact for the pair, not only the
//    dispatcher's pick; those rows have impl = mixq_alt), --full-taps (3x3
//    convs also run with border-tap skipping off, as impl = mixq_fulltaps
//    rows right after the default ones). A benchmark may change the
//    defaults and add its own options (parse's `extra`).
//  * Timing: min and median of N repetitions after warm-up, on
//    std::chrono::steady_clock. The minimum is the best estimate of what the
//    code can do on a quiet machine; the median shows how noisy the run was.
//    Single-threaded rows use min(wall, thread CPU time), see time_it.
//    time_rounds interleaves several functions within every round, so a
//    noisy period hits all of them alike.
//  * Clock: clock_ghz() times a chain of dependent scalar adds (latency 1
//    cycle), best of many short runs.
//  * Threads are pinned: the harness sets OMP_PROC_BIND=close and
//    OMP_PLACES=cores before the OpenMP runtime starts (re-executing itself
//    once when they were missing), and additionally binds each OpenMP
//    worker with sched_setaffinity to cpu (thread id mod online cpus).
//  * Data: rng, mixq's one generator (core/rng.hpp) with integer draws.
//  * Rows are printed as they are measured (CSV with one header, JSON lines,
//    or a markdown table), so a partially finished run is still usable.
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mixq/core/rng.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mixq_bench {

enum class out_format { csv, jsonl, md };

struct options {
  std::string filter;
  int reps = 15;
  int warmup = 3;
  int calls = 1;
  std::vector<int> threads{1, 2};
  std::vector<int> batches{1, 128};
  std::vector<std::string> isas;  // empty: every ISA the CPU has except scalar
  std::vector<int> bits{2, 3, 4, 5, 6, 7, 8};
  bool diag = false;  // only the W = A pairs
  out_format format = out_format::csv;
  bool peers = true;
  bool validate = true;
  bool quick = false;        // fewer bit pairs: the W=A diagonal plus W8A*/W*A8
  bool all_kernels = false;  // every kernel family of kernels.inc, not only the dispatcher's pick
  bool full_taps = false;    // also time 3x3 convs without border-tap skipping
};

inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

inline std::vector<int> parse_int_list(const std::string& s) {
  std::vector<int> out;
  for (const auto& part : split(s, ',')) {
    auto dash = part.find('-');
    if (dash != std::string::npos && dash > 0) {
      int lo = std::atoi(part.substr(0, dash).c_str());
      int hi = std::atoi(part.substr(dash + 1).c_str());
      for (int v = lo; v <= hi; ++v) out.push_back(v);
    } else {
      out.push_back(std::atoi(part.c_str()));
    }
  }
  return out;
}

/// A benchmark's own option: `--name VALUE` (value set) or `--name` (flag set).
struct extra_option {
  std::string name;              ///< with the leading "--"
  std::string* value = nullptr;  ///< takes a value
  bool* flag = nullptr;          ///< a flag
  std::string help;              ///< e.g. "[--model resnet20|small_cnn]"
};

inline void usage(const char* prog, const std::vector<extra_option>& extra = {}) {
  std::fprintf(stderr,
               "usage: %s [--filter a,b] [--reps N] [--warmup N] [--calls N] [--threads 1,2]\n"
               "          [--format csv|jsonl|md] [--isa scalar,avx2,avx512] [--batch 1,128]\n"
               "          [--bits 2-8] [--diag] [--no-peers] [--no-validate] [--quick]\n"
               "          [--all-kernels] [--full-taps]",
               prog);
  for (const auto& e : extra) std::fprintf(stderr, " %s", e.help.c_str());
  std::fprintf(stderr, "\n");
}

// Sets the OpenMP pinning variables and re-executes the program once when
// they were not already set, because libgomp reads them only at start-up.
inline void ensure_pinning_env(int argc, char** argv) {
  if (std::getenv("MIXQ_BENCH_REEXEC")) return;
  bool need = !std::getenv("OMP_PROC_BIND") || !std::getenv("OMP_PLACES");
  if (!need) return;
  setenv("OMP_PROC_BIND", "close", 0);
  setenv("OMP_PLACES", "cores", 0);
  setenv("MIXQ_BENCH_REEXEC", "1", 1);
  std::vector<char*> args(argv, argv + argc);
  args.push_back(nullptr);
  execv("/proc/self/exe", args.data());
  // execv failed: continue unpinned by the runtime (sched_setaffinity below
  // still pins each worker).
}

/// Parses the command line over `defaults`; unknown arguments print the
/// usage and exit with code 2.
inline options parse(int argc, char** argv, options defaults = {},
                     const std::vector<extra_option>& extra = {}) {
  ensure_pinning_env(argc, argv);
  options o = std::move(defaults);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage(argv[0], extra);
        std::exit(2);
      }
      return argv[++i];
    };
    bool known = false;
    for (const auto& e : extra)
      if (a == e.name) {
        if (e.value) *e.value = next();
        if (e.flag) *e.flag = true;
        known = true;
      }
    if (known) continue;
    if (a == "--filter")
      o.filter = next();
    else if (a == "--reps")
      o.reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--warmup")
      o.warmup = std::max(0, std::atoi(next().c_str()));
    else if (a == "--calls")
      o.calls = std::max(1, std::atoi(next().c_str()));
    else if (a == "--threads")
      o.threads = parse_int_list(next());
    else if (a == "--batch")
      o.batches = parse_int_list(next());
    else if (a == "--bits")
      o.bits = parse_int_list(next());
    else if (a == "--isa")
      o.isas = split(next(), ',');
    else if (a == "--format") {
      std::string f = next();
      if (f == "csv")
        o.format = out_format::csv;
      else if (f == "jsonl")
        o.format = out_format::jsonl;
      else if (f == "md")
        o.format = out_format::md;
      else {
        usage(argv[0], extra);
        std::exit(2);
      }
    } else if (a == "--diag")
      o.diag = true;
    else if (a == "--no-peers")
      o.peers = false;
    else if (a == "--no-validate")
      o.validate = false;
    else if (a == "--quick")
      o.quick = true;
    else if (a == "--all-kernels")
      o.all_kernels = true;
    else if (a == "--full-taps")
      o.full_taps = true;
    else if (a == "--help" || a == "-h") {
      usage(argv[0], extra);
      std::exit(0);
    } else {
      std::fprintf(stderr, "%s: unknown argument %s\n", argv[0], a.c_str());
      usage(argv[0], extra);
      std::exit(2);
    }
  }
  return o;
}

// Every comma-separated part of the filter must occur in the name.
inline bool matches(const options& o, const std::string& name) {
  for (const auto& part : split(o.filter, ','))
    if (name.find(part) == std::string::npos) return false;
  return true;
}

inline int online_cpus() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

// Pins the calling thread and, with OpenMP, each of `threads` workers.
inline void set_threads(int threads) {
  const int ncpu = online_cpus();
#ifdef _OPENMP
  omp_set_num_threads(threads);
#pragma omp parallel num_threads(threads)
  {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(omp_get_thread_num() % ncpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
  }
#else
  (void)threads;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  sched_setaffinity(0, sizeof(set), &set);
  (void)ncpu;
#endif
}

struct timing {
  double min_s = 0;       // the reported time (see time_it)
  double median_s = 0;    // median wall time
  double wall_min_s = 0;  // minimum wall time
  double cpu_min_s = 0;   // minimum CPU time of the calling thread
};

inline double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Min and median of o.reps timed calls after o.warmup untimed ones.
// Single-threaded runs (omp_get_max_threads() == 1) report
// min(wall, calling-thread CPU time): on a shared machine a pinned thread
// that shares its core with another process gets half the wall clock for a
// whole repetition once a repetition is longer than a scheduler slice (a few
// ms), while its CPU time only counts the time it actually ran. Multi-threaded
// runs report the minimum wall time (CPU time would hide load imbalance).
template <class F>
timing time_it(const options& o, F&& f) {
  for (int i = 0; i < o.warmup; ++i) f();
  std::vector<double> t(size_t(o.reps)), c(size_t(o.reps));
  for (int i = 0; i < o.reps; ++i) {
    const double c0 = thread_cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    f();
    auto t1 = std::chrono::steady_clock::now();
    const double c1 = thread_cpu_seconds();
    t[size_t(i)] = std::chrono::duration<double>(t1 - t0).count();
    c[size_t(i)] = c1 - c0;
  }
  std::sort(t.begin(), t.end());
  std::sort(c.begin(), c.end());
  timing r;
  r.wall_min_s = t.front();
  r.cpu_min_s = c.front();
  r.median_s = t[t.size() / 2];
  int threads = 1;
#ifdef _OPENMP
  threads = omp_get_max_threads();
#endif
  r.min_s = (threads == 1 && r.cpu_min_s > 0) ? std::min(r.wall_min_s, r.cpu_min_s) : r.wall_min_s;
  return r;
}

inline double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

inline double minimum(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}

// Interleaved timing: o.warmup untimed calls of each function, then o.reps
// rounds; every round times each function in turn (the minimum over o.calls
// back-to-back calls), so a noisy period hits all of them alike and ratios
// can be taken round by round. samples[i][r]: seconds of fns[i] in round r.
inline std::vector<std::vector<double>> time_rounds(const options& o,
                                                    const std::vector<std::function<void()>>& fns) {
  for (const auto& f : fns)
    for (int i = 0; i < o.warmup; ++i) f();
  std::vector<std::vector<double>> samples(fns.size());
  for (int r = 0; r < o.reps; ++r)
    for (size_t i = 0; i < fns.size(); ++i) {
      double best = 1e30;
      for (int c = 0; c < o.calls; ++c) {
        const auto t0 = std::chrono::steady_clock::now();
        fns[i]();
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      samples[i].push_back(best);
    }
  return samples;
}

// Core clock of the calling thread in GHz: a chain of dependent scalar adds
// (latency 1 cycle on x86-64 and aarch64), the best of `runs` short runs of
// about 0.3 ms, each counting the smaller of its wall and thread-CPU time (a
// run that is preempted or meets a lower clock only loses the minimum).
inline double clock_ghz(int runs = 40, long iters = 50000) {
  double best = 1e30;
  for (int r = 0; r < runs; ++r) {
    std::uint64_t x = 0;
    const double c0 = thread_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < iters; ++i) {
#if defined(__x86_64__)
      asm volatile(
          "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
          "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
          "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
          "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
          "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
          : "+r"(x));
#elif defined(__aarch64__)
      asm volatile(
          "add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\t"
          "add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\t"
          "add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\t"
          "add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\t"
          "add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\t"
          : "+r"(x));
#else
      x += 20;
#endif
    }
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = thread_cpu_seconds() - c0;
    if (x != std::uint64_t(20) * std::uint64_t(iters)) return 0;  // never taken
    best = std::min(best, cpu > 0 ? std::min(wall, cpu) : wall);
  }
  return 20.0 * double(iters) / best * 1e-9;
}

// One output row: ordered (key, value) pairs; values are kept as text.
class row {
 public:
  row& set(const std::string& k, const std::string& v) {
    for (auto& kv : kv_)
      if (kv.first == k) {
        kv.second = v;
        return *this;
      }
    kv_.emplace_back(k, v);
    return *this;
  }
  row& set(const std::string& k, long long v) { return set(k, std::to_string(v)); }
  row& set(const std::string& k, int v) { return set(k, std::to_string(v)); }
  row& setf(const std::string& k, double v, int prec = 3) {
    if (!(v == v)) return set(k, std::string());  // NaN -> empty cell
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", prec, v);
    return set(k, std::string(buf));
  }
  const std::vector<std::pair<std::string, std::string>>& items() const { return kv_; }

 private:
  std::vector<std::pair<std::string, std::string>> kv_;
};

// Prints rows with a fixed column set: CSV (one header), JSON lines (empty
// cells left out) or a markdown table (one header).
class writer {
 public:
  writer(out_format f, std::vector<std::string> columns) : f_(f), cols_(std::move(columns)) {}
  void print(const row& r) {
    std::map<std::string, std::string> m(r.items().begin(), r.items().end());
    if (f_ == out_format::jsonl) {
      std::printf("{");
      bool first = true;
      for (const auto& c : cols_) {
        const std::string& v = m[c];
        if (v.empty()) continue;
        bool numeric = (std::isdigit((unsigned char)v[0]) || v[0] == '-') &&
                       v.find_first_not_of("0123456789.-e+") == std::string::npos;
        std::printf("%s\"%s\":", first ? "" : ",", c.c_str());
        if (numeric)
          std::printf("%s", v.c_str());
        else
          std::printf("\"%s\"", v.c_str());
        first = false;
      }
      std::printf("}\n");
    } else if (f_ == out_format::md) {
      if (!header_done_) {
        for (const auto& c : cols_) std::printf("| %s ", c.c_str());
        std::printf("|\n");
        for (size_t i = 0; i < cols_.size(); ++i) std::printf("|---");
        std::printf("|\n");
        header_done_ = true;
      }
      for (const auto& c : cols_) std::printf("| %s ", m[c].c_str());
      std::printf("|\n");
    } else {
      if (!header_done_) {
        for (size_t i = 0; i < cols_.size(); ++i)
          std::printf("%s%s", i ? "," : "", cols_[i].c_str());
        std::printf("\n");
        header_done_ = true;
      }
      for (size_t i = 0; i < cols_.size(); ++i) {
        const std::string& v = m[cols_[i]];
        if (v.find_first_of(",\"\n") == std::string::npos) {
          std::printf("%s%s", i ? "," : "", v.c_str());
          continue;
        }
        std::string q = "\"";  // RFC 4180: quote, double the quotes inside
        for (char ch : v) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
        std::printf("%s%s\"", i ? "," : "", q.c_str());
      }
      std::printf("\n");
    }
    std::fflush(stdout);
  }

 private:
  out_format f_;
  std::vector<std::string> cols_;
  bool header_done_ = false;
};

// Keeps the optimizer from deleting a benchmarked computation.
inline void do_not_optimize(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

// mixq's generator (core/rng.hpp, PCG32) with the integer draws the
// benchmarks use; seeded, so runs are reproducible.
struct rng {
  mixq::rng gen;
  explicit rng(uint64_t seed) : gen(seed) {}
  uint64_t next() {
    const uint64_t hi = gen.next_u32();
    return hi << 32 | gen.next_u32();
  }
  // Uniform integer in [lo, hi].
  int uniform(int lo, int hi) { return lo + int(gen.below(uint32_t(hi - lo + 1))); }
};

}  // namespace mixq_bench
