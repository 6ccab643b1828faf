// mixq_bench_peak: the machine's arithmetic peaks (see peak.hpp) at each
// --threads count, as CSV, JSON lines or a markdown table. --reps sets the
// timed runs per probe and thread (default 40).
#include "peak.hpp"

int main(int argc, char** argv) {
  mixq_bench::options defaults;
  defaults.reps = 40;
  auto o = mixq_bench::parse(argc, argv, defaults);
  mixq_bench::writer w(o.format,
                       {"bench", "impl", "threads", "gops", "unit", "ghz", "ops_per_cycle_core"});
  for (int t : o.threads) {
    auto p = mixq_bench::measure_peaks(t, o.reps);
    if (mixq_bench::matches(o, "peak")) mixq_bench::print_peaks(w, p);
  }
  return 0;
}
