// qat_step: the cost of quantization-aware training on ResNet20, batch 128.
//
// Modes, one model each, timed interleaved (round-robin, `--steps` steps per
// mode per round, `--rounds` rounds) in the same process so that machine
// noise hits them alike:
//   fp32            the FP32 training step
//   qat-lsq         fixed-bit QAT, LSQ weights and activations (W4A4, first/last 8-bit)
//   qat-dorefa      fixed-bit QAT, DoReFa weights + PACT activations (W4A4)
//   adaqat-net      AdaQAT, one (N_w, N_a) pair, finite differences (DoReFa + PACT)
//   adaqat-layer-fd AdaQAT per layer, finite differences, one group per step
//   adaqat-layer-ty AdaQAT per layer, Taylor estimate (no extra forward)
// Quantized modes run the inner convs' forward product on the integer
// kernels (quant/int_conv.hpp, the default); a mode name with the suffix
// "-fp32fwd" (qat-lsq-fp32fwd, adaqat-net-fp32fwd, ...) runs it on the FP32
// kernels instead (qat_config::forward = fp32) and is compared with its own
// family's fixed-bit step of that product.
// One step = zero_grad, forward, loss, backward, (probe forwards), SGD
// update. Random CIFAR-shaped data. Prints one JSON line per mode and thread
// count: median and best ms per step, and the ratios to the FP32 step and to
// the fixed-bit step of the same quantizer family.
//
//   OMP_PROC_BIND=true ./mixq_bench_qat_step --threads 1,2 --rounds 5 --steps 3
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mixq/autograd/autograd.hpp"
#include "mixq/core/parallel.hpp"
#include "mixq/nn/nn.hpp"
#include "mixq/optim/sgd.hpp"
#include "mixq/quant/quant.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace mixq;
namespace {

struct mode {
  std::string name;
  std::unique_ptr<nn::resnet_cifar> model;
  quant::qnet net;
  quant::adaqat* ctl = nullptr;
  std::unique_ptr<optim::sgd> opt;
  tape t;
  std::vector<double> times;
  int64_t step = 0;
};

std::unique_ptr<mode> make_mode(const std::string& name) {
  auto m = std::make_unique<mode>();
  m->name = name;
  m->model = std::make_unique<nn::resnet_cifar>();
  const std::string suffix = "-fp32fwd";
  const bool fp32fwd = name.size() > suffix.size() &&
                       name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  const std::string base = fp32fwd ? name.substr(0, name.size() - suffix.size()) : name;
  if (name != "fp32") {
    quant::qat_config c;
    c.bits_w = c.bits_a = 4;
    if (fp32fwd) c.forward = quant::conv_forward::fp32;
    if (base != "qat-lsq") {
      c.weights = quant::weight_family::dorefa;
      c.acts = quant::act_family::pact;
    }
    m->net = quant::quantize(*m->model, c);
    if (base.rfind("adaqat", 0) == 0) {
      quant::adaqat_options o;
      o.gran = base == "adaqat-net" ? quant::granularity::network : quant::granularity::layer;
      o.est = base == "adaqat-layer-ty" ? quant::estimator::taylor
                                        : quant::estimator::finite_difference;
      o.init_w = o.init_a = 4.0;
      o.lr = 1e-6;  // the bits stay at 4: the cost of the step, not its effect
      m->ctl = &m->model->adopt("adaqat", std::make_unique<quant::adaqat>(m->net, o));
    }
  }
  optim::sgd_options so;
  so.lr = 0.01;
  so.weight_decay = 5e-4;
  m->opt = std::make_unique<optim::sgd>(m->model->parameters(), so);
  return m;
}

void run_steps(mode& m, const tensor& x, const std::vector<int32_t>& labels, int steps,
               bool record) {
  for (int i = 0; i < steps; ++i) {
    const double t0 = mixq_bench::wall_seconds();
    m.t.clear();
    m.opt->zero_grad();
    quant::qat_train_step(*m.model, m.t, x.view(), labels.data(), 0.0f, m.ctl, m.step++);
    m.opt->step();
    if (record) m.times.push_back(mixq_bench::wall_seconds() - t0);
  }
}
}  // namespace

int main(int argc, char** argv) {
  int batch = 128, rounds = 5, steps = 3, warmup = 2;
  std::vector<int> threads = {1, 2};
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string("0"); };
    if (a == "--batch")
      batch = std::atoi(next().c_str());
    else if (a == "--rounds")
      rounds = std::atoi(next().c_str());
    else if (a == "--steps")
      steps = std::atoi(next().c_str());
    else if (a == "--warmup")
      warmup = std::atoi(next().c_str());
    else if (a == "--threads")
      threads = mixq_bench::parse_int_list(next());
    else if (a == "--modes")
      only = next();
    else {
      std::fprintf(stderr,
                   "usage: %s [--batch 128] [--rounds 5] [--steps 3] [--warmup 2] "
                   "[--threads 1,2] [--modes fp32,qat-lsq,...]\n",
                   argv[0]);
      return 2;
    }
  }
  std::vector<std::string> names = {"fp32",       "qat-lsq",         "qat-dorefa",
                                    "adaqat-net", "adaqat-layer-fd", "adaqat-layer-ty"};
  const size_t defaults = names.size();  // the default set: the integer product
  for (size_t k = 1; k < defaults; ++k) names.push_back(names[k] + "-fp32fwd");
  if (!only.empty()) {
    std::vector<std::string> keep;
    for (auto& n : names)
      if (("," + only + ",").find("," + n + ",") != std::string::npos) keep.push_back(n);
    names = keep;
  } else {
    names.resize(defaults);
  }
  tensor x({batch, 32, 32, 3});
  rng r(123);
  fill_normal(x.view(), r, 0.0f, 1.0f);
  std::vector<int32_t> labels(static_cast<size_t>(batch));
  for (auto& l : labels) l = static_cast<int32_t>(r.below(10));

  for (int nt : threads) {
#ifdef _OPENMP
    omp_set_num_threads(nt);
#endif
    std::vector<std::unique_ptr<mode>> modes;
    for (auto& n : names) modes.push_back(make_mode(n));
    for (auto& m : modes) run_steps(*m, x, labels, warmup, false);
    for (int rd = 0; rd < rounds; ++rd)
      for (auto& m : modes) run_steps(*m, x, labels, steps, true);
    // fixed-bit step per (family, product): [lsq / dorefa][integer / fp32]
    double fp32 = 0, fixed_of[2][2] = {{0, 0}, {0, 0}};
    auto is_fp32fwd = [](const std::string& n) { return n.find("-fp32fwd") != std::string::npos; };
    auto is_lsq = [](const std::string& n) { return n.rfind("qat-lsq", 0) == 0; };
    for (auto& m : modes) {
      const double med = mixq_bench::median(m->times);
      if (m->name == "fp32") fp32 = med;
      if (m->name.rfind("qat-", 0) == 0)
        fixed_of[is_lsq(m->name) ? 0 : 1][is_fp32fwd(m->name) ? 1 : 0] = med;
    }
    for (auto& m : modes) {
      const double med = mixq_bench::median(m->times);
      const double best = *std::min_element(m->times.begin(), m->times.end());
      const double fixed = fixed_of[is_lsq(m->name) ? 0 : 1][is_fp32fwd(m->name) ? 1 : 0];
      std::printf(
          "{\"mode\":\"%s\",\"threads\":%d,\"batch\":%d,\"steps\":%zu,\"ms_median\":%.1f,"
          "\"ms_best\":%.1f,\"vs_fp32\":%.3f,\"vs_fixed_qat\":%.3f}\n",
          m->name.c_str(), max_threads(), batch, m->times.size(), med * 1e3, best * 1e3,
          fp32 > 0 ? med / fp32 : 0.0, (fixed > 0 && m->name != "fp32") ? med / fixed : 0.0);
      std::fflush(stdout);
    }
  }
  return 0;
}
