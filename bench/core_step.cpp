// core_step: FP32 training-step throughput of the mixq core (ResNet20, or
// --model small_cnn on 28x28x1 inputs).
//
// One step = zero_grad, forward, softmax cross-entropy, backward, and an
// in-bench SGD-momentum update with weight decay (the same work as the
// PyTorch peer script bench/train/pytorch_resnet20.py). Random CIFAR-shaped
// data, batch 128 by default. Prints one JSON line per thread count with
// images/s (median and best of --reps timed steps), the forward/backward
// split and the peak RSS. --convs also times every distinct conv shape alone
// (forward, and forward+backward) and reports GFLOP/s (nominal
// 2*N*OH*OW*Cout*Cin*KH*KW per pass; backward = 2 passes; best of --conv-reps).
//
//   mixq_bench_core_step [--batch 128] [--reps 10] [--warmup 2] [--threads 1,2]
//                        [--convs] [--conv-reps 5] [--no-step] [--cpu-time]
//                        [--model resnet20|small_cnn] [--format jsonl|csv|md]
// (harness.hpp options: --reps is the number of timed steps; the harness
// pins the threads). --cpu-time measures process CPU time instead of wall
// time (use it for 1-thread A/B comparisons on a busy machine; it hides
// waiting).
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mixq/autograd/autograd.hpp"
#include "mixq/core/parallel.hpp"
#include "mixq/nn/nn.hpp"

using namespace mixq;
namespace mb = mixq_bench;
namespace {
// Wall clock, or with --cpu-time the process CPU time (summed over threads):
// on a shared machine, 1-thread CPU time is much less noisy than wall time.
bool use_cpu_time = false;
double now() { return use_cpu_time ? mb::process_cpu_seconds() : mb::wall_seconds(); }
double seconds_since(double t0) { return now() - t0; }
double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

struct sgd_state {
  std::vector<tensor> momentum;
};
void sgd_step(std::vector<parameter*>& ps, sgd_state& st, float lr, float mom, float wd) {
  if (st.momentum.empty())
    for (parameter* p : ps) st.momentum.emplace_back(p->shape());
  for (size_t k = 0; k < ps.size(); ++k) {
    parameter& p = *ps[k];
    float* v = st.momentum[k].data();
    const float decay = p.weight_decay ? wd : 0.0f;
    for (int64_t i = 0; i < p.numel(); ++i) {
      float g = p.grad[i] + decay * p.value[i];
      v[i] = mom * v[i] + g;
      p.value[i] -= lr * v[i];
    }
  }
}

void bench_convs(mb::writer& out, int batch, int reps) {
  struct cs {
    int64_t h, c, co, s;
  };
  const cs shapes[] = {{32, 3, 16, 1},  {32, 16, 16, 1}, {32, 16, 32, 2},
                       {16, 32, 32, 1}, {16, 32, 64, 2}, {8, 64, 64, 1}};
  for (const cs& c : shapes) {
    tensor x({batch, c.h, c.h, c.c});
    rng r(1);
    fill_normal(x.view(), r, 0.0f, 1.0f);
    parameter w("w", {c.co, 3, 3, c.c});
    kaiming_normal(w.value.view(), r, 9 * c.c);
    const int64_t oh = (c.h + 2 - 3) / c.s + 1;
    const double flop = 2.0 * batch * oh * oh * c.co * c.c * 9;
    tensor seed({batch, oh, oh, c.co}, 1.0f);
    tape t;
    std::vector<double> tf, tb, tw;
    for (int i = 0; i < reps + 2 && c.c != 3; ++i) {  // weight gradient only
      t.clear();
      var y = conv2d(t.input(x.view()), t.param(w), var{}, c.s, 1);
      auto t0 = now();
      backward(y, seed.data());
      if (i >= 2) tw.push_back(seconds_since(t0));
    }
    for (int i = 0; i < reps + 2; ++i) {
      t.clear();
      auto t0 = now();
      var y = conv2d(t.input(x.view(), c.c != 3), t.param(w), var{}, c.s, 1);
      double f = seconds_since(t0);
      t0 = now();
      backward(y, seed.data());
      double b = seconds_since(t0);
      if (i >= 2) {
        tf.push_back(f);
        tb.push_back(b);
      }
    }
    const double bwd_flop = flop * (c.c != 3 ? 2.0 : 1.0);
    char conv[128];
    std::snprintf(conv, sizeof conv, "%lldx%lldx%lld->%lld s%lld", (long long)c.h, (long long)c.h,
                  (long long)c.c, (long long)c.co, (long long)c.s);
    mb::row row;
    row.set("conv", conv).set("threads", max_threads());
    row.setf("fwd_gflops", flop / mb::minimum(tf) * 1e-9, 1);
    row.setf("bwd_gflops", bwd_flop / mb::minimum(tb) * 1e-9, 1);
    row.setf("fwd_ms", mb::minimum(tf) * 1e3, 2).setf("bwd_ms", mb::minimum(tb) * 1e3, 2);
    row.setf("bwd_w_ms", mb::minimum(tw) * 1e3, 2);
    out.print(row);
  }
}
template <class Model>
void bench_step(mb::writer& out, Model& model, const char* name, int64_t hw, int64_t in_c,
                int batch, int steps, int warmup) {
  std::vector<parameter*> ps = model.parameters();
  sgd_state st;
  tensor x({batch, hw, hw, in_c});
  rng r(123);
  fill_normal(x.view(), r, 0.0f, 1.0f);
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  for (auto& l : labels) l = static_cast<int32_t>(r.below(10));
  tape t;
  std::vector<double> tstep, tfwd, tbwd;
  float loss_v = 0;
  for (int i = 0; i < warmup + steps; ++i) {
    auto t0 = now();
    t.clear();
    model.zero_grad();
    var loss = softmax_cross_entropy(model.forward(t, t.input(x.view())), labels.data());
    double f = seconds_since(t0);
    auto t1 = now();
    backward(loss);
    double b = seconds_since(t1);
    sgd_step(ps, st, 0.01f, 0.9f, 5e-4f);
    double s = seconds_since(t0);
    loss_v = loss.value()[0];
    if (i >= warmup) {
      tstep.push_back(s);
      tfwd.push_back(f);
      tbwd.push_back(b);
    }
  }
  const double mib = 1024.0 * 1024.0;
  mb::row row;
  row.set("impl", "mixq-core").set("model", name).set("mode", "train");
  row.set("threads", max_threads()).set("batch", batch);
  row.set("params", static_cast<long long>(model.num_parameters()));
  row.setf("images_per_s", batch / mb::median(tstep), 1);
  row.setf("images_per_s_best", batch / mb::minimum(tstep), 1);
  row.setf("fwd_ms", mb::median(tfwd) * 1e3, 1).setf("bwd_ms", mb::median(tbwd) * 1e3, 1);
  row.setf("step_ms", mb::median(tstep) * 1e3, 1).setf("loss", loss_v, 4);
  row.setf("tape_values_mib", static_cast<double>(t.memory().values_bytes) / mib, 1);
  row.setf("tape_grads_mib", static_cast<double>(t.memory().grads_bytes) / mib, 1);
  row.setf("tape_scratch_mib", static_cast<double>(t.memory().scratch_bytes) / mib, 1);
  row.setf("peak_rss_mib", peak_rss_mib(), 1);
  out.print(row);
}
}  // namespace

int main(int argc, char** argv) {
  mb::options defaults;
  defaults.reps = 10;
  defaults.warmup = 2;
  defaults.batches = {128};
  defaults.threads = {max_threads()};
  defaults.format = mb::out_format::jsonl;
  std::string model_name = "resnet20", conv_reps_s = "5";
  bool convs = false, no_step = false;
  const mb::options o =
      mb::parse(argc, argv, defaults,
                {{"--model", &model_name, nullptr, "[--model resnet20|small_cnn]"},
                 {"--convs", nullptr, &convs, "[--convs]"},
                 {"--conv-reps", &conv_reps_s, nullptr, "[--conv-reps 5]"},
                 {"--no-step", nullptr, &no_step, "[--no-step]"},
                 {"--cpu-time", nullptr, &use_cpu_time, "[--cpu-time]"}});
  const int conv_reps = std::max(1, std::atoi(conv_reps_s.c_str()));
  mb::writer w(o.format, {"conv",
                          "impl",
                          "model",
                          "mode",
                          "threads",
                          "batch",
                          "params",
                          "images_per_s",
                          "images_per_s_best",
                          "fwd_gflops",
                          "bwd_gflops",
                          "fwd_ms",
                          "bwd_ms",
                          "bwd_w_ms",
                          "step_ms",
                          "loss",
                          "tape_values_mib",
                          "tape_grads_mib",
                          "tape_scratch_mib",
                          "peak_rss_mib"});
  for (int nt : o.threads)
    for (int batch : o.batches) {
      mb::set_threads(nt);
      if (convs) bench_convs(w, batch, conv_reps);
      if (no_step) continue;
      if (model_name == "small_cnn") {
        nn::small_cnn model;
        bench_step(w, model, "small_cnn", 28, 1, batch, o.reps, o.warmup);
      } else {
        nn::resnet_cifar model;
        bench_step(w, model, "resnet20", 32, 3, batch, o.reps, o.warmup);
      }
    }
  return 0;
}
