// core_step: FP32 training-step throughput of the mixq core (ResNet20, or
// --model small_cnn on 28x28x1 inputs).
//
// One step = zero_grad, forward, softmax cross-entropy, backward, and an
// in-bench SGD-momentum update with weight decay (the same work as the
// PyTorch peer script bench/train/pytorch_resnet20.py). Random CIFAR-shaped
// data, batch 128 by default. Prints one JSON line per thread count with
// images/s (median and best of --steps timed steps), the forward/backward
// split and the peak RSS. --convs also times every distinct conv shape alone
// (forward, and forward+backward) and reports GFLOP/s (nominal
// 2*N*OH*OW*Cout*Cin*KH*KW per pass; backward = 2 passes; best of --conv-reps).
//
// Run pinned:  OMP_PROC_BIND=true ./mixq_bench_core_step --threads 1,2
// --cpu-time measures process CPU time instead of wall time (use it for
// 1-thread A/B comparisons on a busy machine; it hides waiting).
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/core/parallel.hpp"
#include "mixq/nn/nn.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace mixq;
namespace {
// Wall clock, or with --cpu-time the process CPU time (summed over threads):
// on a shared machine, 1-thread CPU time is much less noisy than wall time.
bool use_cpu_time = false;
struct clk {
  using time_point = double;
  static double now() {
    timespec ts{};
    clock_gettime(use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
};
double seconds_since(double t0) { return clk::now() - t0; }
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}
double best(const std::vector<double>& v) {
  return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
}
double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}
std::vector<int> parse_list(const char* s) {
  std::vector<int> out;
  std::string cur;
  for (const char* p = s;; ++p) {
    if (*p == ',' || *p == 0) {
      if (!cur.empty()) out.push_back(std::atoi(cur.c_str()));
      cur.clear();
      if (!*p) break;
    } else {
      cur += *p;
    }
  }
  return out;
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

void bench_convs(int batch, int reps) {
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
      auto t0 = clk::now();
      backward(y, seed.data());
      if (i >= 2) tw.push_back(seconds_since(t0));
    }
    for (int i = 0; i < reps + 2; ++i) {
      t.clear();
      auto t0 = clk::now();
      var y = conv2d(t.input(x.view(), c.c != 3), t.param(w), var{}, c.s, 1);
      double f = seconds_since(t0);
      t0 = clk::now();
      backward(y, seed.data());
      double b = seconds_since(t0);
      if (i >= 2) {
        tf.push_back(f);
        tb.push_back(b);
      }
    }
    const double bwd_flop = flop * (c.c != 3 ? 2.0 : 1.0);
    std::printf(
        "{\"conv\":\"%lldx%lldx%lld->%lld s%lld\",\"threads\":%d,\"fwd_gflops\":%.1f,"
        "\"bwd_gflops\":%.1f,\"fwd_ms\":%.2f,\"bwd_ms\":%.2f,\"bwd_w_ms\":%.2f}\n",
        (long long)c.h, (long long)c.h, (long long)c.c, (long long)c.co, (long long)c.s,
        max_threads(), flop / best(tf) * 1e-9, bwd_flop / best(tb) * 1e-9, best(tf) * 1e3,
        best(tb) * 1e3, best(tw) * 1e3);
    std::fflush(stdout);
  }
}
template <class Model>
void bench_step(Model& model, const char* name, int64_t hw, int64_t in_c, int batch, int steps,
                int warmup) {
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
    auto t0 = clk::now();
    t.clear();
    model.zero_grad();
    var loss = softmax_cross_entropy(model.forward(t, t.input(x.view())), labels.data());
    double f = seconds_since(t0);
    auto t1 = clk::now();
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
  const double best = *std::min_element(tstep.begin(), tstep.end());
  std::printf(
      "{\"impl\":\"mixq-core\",\"model\":\"%s\",\"mode\":\"train\",\"threads\":%d,\"batch\":%d,"
      "\"params\":%lld,"
      "\"images_per_s\":%.1f,\"images_per_s_best\":%.1f,\"fwd_ms\":%.1f,\"bwd_ms\":%.1f,"
      "\"step_ms\":%.1f,\"loss\":%.4f,\"tape_values_mib\":%.1f,\"tape_grads_mib\":%.1f,"
      "\"tape_scratch_mib\":%.1f,\"peak_rss_mib\":%.1f}\n",
      name, max_threads(), batch, (long long)model.num_parameters(), batch / median(tstep),
      batch / best, median(tfwd) * 1e3, median(tbwd) * 1e3, median(tstep) * 1e3, loss_v,
      static_cast<double>(t.memory().values_bytes) / (1024.0 * 1024.0),
      static_cast<double>(t.memory().grads_bytes) / (1024.0 * 1024.0),
      static_cast<double>(t.memory().scratch_bytes) / (1024.0 * 1024.0), peak_rss_mib());
  std::fflush(stdout);
}
}  // namespace

int main(int argc, char** argv) {
  int batch = 128, steps = 10, warmup = 2;
  bool convs = false, step = true;
  std::string model_name = "resnet20";
  int conv_reps = 5;
  std::vector<int> threads = {max_threads()};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? argv[++i] : (const char*)"0"; };
    if (a == "--batch")
      batch = std::atoi(next());
    else if (a == "--steps")
      steps = std::atoi(next());
    else if (a == "--warmup")
      warmup = std::atoi(next());
    else if (a == "--threads")
      threads = parse_list(next());
    else if (a == "--convs")
      convs = true;
    else if (a == "--conv-reps")
      conv_reps = std::atoi(next());
    else if (a == "--no-step")
      step = false;
    else if (a == "--cpu-time")
      use_cpu_time = true;
    else if (a == "--model")
      model_name = next();
    else {
      std::fprintf(stderr,
                   "usage: %s [--batch 128] [--steps 10] [--warmup 2] [--threads 1,2] [--convs]"
                   " [--conv-reps 5] [--no-step] [--cpu-time] [--model resnet20|small_cnn]\n",
                   argv[0]);
      return 2;
    }
  }
  const char* bind = std::getenv("OMP_PROC_BIND");
  if (!bind) std::fprintf(stderr, "note: OMP_PROC_BIND is not set; results are less stable\n");

  for (int nt : threads) {
#ifdef _OPENMP
    omp_set_num_threads(nt);
#endif
    if (convs) bench_convs(batch, conv_reps);
    if (!step) continue;
    if (model_name == "small_cnn") {
      nn::small_cnn model;
      bench_step(model, "small_cnn", 28, 1, batch, steps, warmup);
    } else {
      nn::resnet_cifar model;
      bench_step(model, "resnet20", 32, 3, batch, steps, warmup);
    }
  }
  return 0;
}
