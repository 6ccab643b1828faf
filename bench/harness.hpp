#pragma once
// In-house benchmark harness for mixq (no Google Benchmark).
//
// What it does, and why:
//  * Command line: --filter SUBSTR (a row runs when its name contains every
//    comma-separated part of SUBSTR), --reps N (timed repetitions, default
//    15), --warmup N (untimed, default 3), --threads 1,2 (list),
//    --format csv|jsonl, --isa scalar,avx2,avx512 (list), --batch 1,128,
//    --bits 2-8 or a list, --no-peers, --no-validate, --quick, --all-kernels
//    (time every kernel family of kernels.inc that is exact for the pair,
//    not only the dispatcher's pick; those rows have impl = mixq_alt),
//    --full-taps (3x3 convs also run with border-tap skipping off, as
//    impl = mixq_fulltaps rows right after the default ones).
//  * Timing: min and median of N repetitions after warm-up, on
//    std::chrono::steady_clock. The minimum is the best estimate of what the
//    code can do on a quiet machine; the median shows how noisy the run was.
//    Single-threaded rows use min(wall, thread CPU time), see time_it.
//  * Threads are pinned: the harness sets OMP_PROC_BIND=close and
//    OMP_PLACES=cores before the OpenMP runtime starts (re-executing itself
//    once when they were missing), and additionally binds each OpenMP
//    worker with sched_setaffinity to cpu (thread id mod online cpus).
//  * Rows are printed as they are measured (CSV with one header, or JSON
//    lines), so a partially finished run is still usable.
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

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mixq_bench {

struct options {
  std::string filter;
  int reps = 15;
  int warmup = 3;
  std::vector<int> threads{1, 2};
  std::vector<int> batches{1, 128};
  std::vector<std::string> isas;  // empty: every ISA the CPU has except scalar
  std::vector<int> bits{2, 3, 4, 5, 6, 7, 8};
  bool csv = true;
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

inline void usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s [--filter a,b] [--reps N] [--warmup N] [--threads 1,2]\n"
               "          [--format csv|jsonl] [--isa scalar,avx2,avx512] [--batch 1,128]\n"
               "          [--bits 2-8] [--no-peers] [--no-validate] [--quick] [--all-kernels]\n"
               "          [--full-taps]\n",
               prog);
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

inline options parse(int argc, char** argv) {
  ensure_pinning_env(argc, argv);
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage(argv[0]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--filter")
      o.filter = next();
    else if (a == "--reps")
      o.reps = std::max(1, std::atoi(next().c_str()));
    else if (a == "--warmup")
      o.warmup = std::max(0, std::atoi(next().c_str()));
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
        o.csv = true;
      else if (f == "jsonl")
        o.csv = false;
      else {
        usage(argv[0]);
        std::exit(2);
      }
    } else if (a == "--no-peers")
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
      usage(argv[0]);
      std::exit(0);
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      usage(argv[0]);
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

// Prints rows with a fixed column set; the CSV header is printed once.
class writer {
 public:
  writer(bool csv, std::vector<std::string> columns) : csv_(csv), cols_(std::move(columns)) {}
  void print(const row& r) {
    std::map<std::string, std::string> m(r.items().begin(), r.items().end());
    if (csv_) {
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
    } else {
      std::printf("{");
      bool first = true;
      for (const auto& c : cols_) {
        const std::string& v = m[c];
        if (v.empty()) continue;
        bool numeric = !v.empty() && (std::isdigit((unsigned char)v[0]) || v[0] == '-') &&
                       v.find_first_not_of("0123456789.-e+") == std::string::npos;
        std::printf("%s\"%s\":", first ? "" : ",", c.c_str());
        if (numeric)
          std::printf("%s", v.c_str());
        else
          std::printf("\"%s\"", v.c_str());
        first = false;
      }
      std::printf("}\n");
    }
    std::fflush(stdout);
  }

 private:
  bool csv_;
  std::vector<std::string> cols_;
  bool header_done_ = false;
};

// Keeps the optimizer from deleting a benchmarked computation.
inline void do_not_optimize(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

// Small deterministic generator (splitmix64) so runs are reproducible.
struct rng {
  uint64_t s;
  explicit rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int uniform(int lo, int hi) { return lo + int(next() % uint64_t(hi - lo + 1)); }
};

}  // namespace mixq_bench
