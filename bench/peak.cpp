// mixq_bench_peak: the machine's arithmetic peaks (see peak.hpp) at each
// --threads count, as CSV or JSON lines.
#include "peak.hpp"

int main(int argc, char** argv) {
  auto o = mixq_bench::parse(argc, argv);
  mixq_bench::writer w(o.csv,
                       {"bench", "impl", "threads", "gops", "unit", "ghz", "ops_per_cycle_core"});
  for (int t : o.threads) {
    auto p = mixq_bench::measure_peaks(t);
    if (mixq_bench::matches(o, "peak")) mixq_bench::print_peaks(w, p);
  }
  return 0;
}
