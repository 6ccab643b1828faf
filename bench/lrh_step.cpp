// lrh_step: the cost of one MultiQuant LRH co-training step against one
// fixed-bit QAT step on the same ResNet (docs/multiquant.md; the issue's
// goal: LRH <= (slices + 0.3) x QAT).
//
// Modes, timed interleaved by the harness (time_rounds: every round times
// each mode in turn, so machine noise hits both alike):
//   qat   quant::quantize (LSQ W4A4, first/last 8-bit) + qat_train_step + SGD step
//   lrh   supernet (LSQ, per-bit steps) + lrh_trainer::step with k random
//         slices (slices = k + 2) + SGD step
// Random CIFAR-shaped data. One CSV / JSON line per (threads, batch): median
// and best ms per step, slices, the ratio of the medians and the goal.
//
//   build/bench/mixq_bench_lrh_step --threads 1 --batch 128 --reps 5 --k 1
//   build/bench/mixq_bench_lrh_step --threads 1 --batch 8 --reps 2 --warmup 1 --depth 8   (smoke)
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mixq/autograd/autograd.hpp"
#include "mixq/nn/nn.hpp"
#include "mixq/optim/sgd.hpp"
#include "mixq/quant/multiquant/multiquant.hpp"
#include "mixq/quant/quant.hpp"

using namespace mixq;

int main(int argc, char** argv) {
  std::string k_s = "1", depth_s = "20";
  mixq_bench::options def;
  def.reps = 5;
  def.warmup = 1;
  def.threads = {1};
  def.batches = {128};
  const mixq_bench::options o =
      mixq_bench::parse(argc, argv, def,
                        {{"--k", &k_s, nullptr, "[--k 1] (random slices)"},
                         {"--depth", &depth_s, nullptr, "[--depth 20]"}});
  const int k = std::atoi(k_s.c_str()), depth = std::atoi(depth_s.c_str());
  if (k < 0 || depth < 8 || (depth - 2) % 6 != 0) {
    std::fprintf(stderr, "lrh_step: --k >= 0 and --depth 6n+2 >= 8\n");
    return 2;
  }
  mixq_bench::writer w(o.format, {"mode", "threads", "batch", "depth", "slices", "ms_median",
                                  "ms_best", "ratio_median", "goal"});
  for (int nt : o.threads) {
    mixq_bench::set_threads(nt);
    for (int batch : o.batches) {
      nn::resnet_options ro;
      ro.n = (depth - 2) / 6;
      nn::resnet_cifar qm(ro), sm(ro);
      quant::qat_config qc;
      quant::quantize(qm, qc);
      quant::supernet s(sm, quant::supernet_options{});
      quant::lrh_options lo;
      lo.random_slices = k;
      quant::lrh_trainer lrh(s, lo);
      optim::sgd_options so;
      so.lr = 0.01;
      so.weight_decay = 5e-4;
      optim::sgd qopt(qm.parameters(), so), sopt(sm.parameters(), so);
      tensor x({batch, 32, 32, 3});
      mixq::rng r(123);
      fill_normal(x.view(), r, 0.0f, 1.0f);
      std::vector<int32_t> labels(static_cast<size_t>(batch));
      for (auto& l : labels) l = static_cast<int32_t>(r.below(10));
      quant::init_quantizers(s, x.view());
      tape tq, ts;
      int64_t qstep = 0, sstep = 0;
      auto qat = [&] {
        tq.clear();
        qopt.zero_grad();
        quant::qat_train_step(qm, tq, x.view(), labels.data(), 0.0f, nullptr, qstep++);
        qopt.step();
      };
      auto lrh_fn = [&] {
        ts.clear();
        sopt.zero_grad();
        lrh.step(sm, ts, x.view(), labels.data(), sstep++);
        sopt.step();
      };
      const auto samples = mixq_bench::time_rounds(o, {qat, lrh_fn});
      const double q = mixq_bench::median(samples[0]), l = mixq_bench::median(samples[1]);
      const int slices = lo.slices();
      for (int m = 0; m < 2; ++m) {
        mixq_bench::row row;
        row.set("mode", m == 0 ? "qat" : "lrh")
            .set("threads", nt)
            .set("batch", batch)
            .set("depth", depth)
            .set("slices", m == 0 ? 1 : slices)
            .setf("ms_median", 1e3 * mixq_bench::median(samples[size_t(m)]), 1)
            .setf("ms_best", 1e3 * mixq_bench::minimum(samples[size_t(m)]), 1)
            .setf("ratio_median", m == 0 ? 1.0 : l / q, 3)
            .setf("goal", m == 0 ? 1.0 : slices + 0.3, 1);
        w.print(row);
      }
    }
  }
  return 0;
}
