// mixq side of bench/train/compare.py: ResNet20 (CIFAR, option A) on random
// CIFAR-shaped data, NHWC.
//   train: images/s of full training steps (tape.clear, forward, softmax
//          cross-entropy, backward, SGD momentum + weight decay)
//   infer: images/s of eval-mode forward without a tape
// plus the process's peak RSS. Prints one JSON line, like the PyTorch peer.
//   mixq_bench_resnet20 --threads 2 --batch 128 --steps 20 --warmup 3 --mode train
#include <omp.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/core/init.hpp"
#include "mixq/optim/sgd.hpp"
#include "mixq/nn/resnet.hpp"

int main(int argc, char** argv) {
  using namespace mixq;
  int threads = 1;
  long long batch = 128, steps = 20, warmup = 3;
  std::string mode = "train";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (a == "--batch")
      batch = std::atoll(argv[i + 1]);
    else if (a == "--steps")
      steps = std::atoll(argv[i + 1]);
    else if (a == "--warmup")
      warmup = std::atoll(argv[i + 1]);
    else if (a == "--mode")
      mode = argv[i + 1];
    else {
      std::fprintf(stderr, "mixq_bench_resnet20: error: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  if (mode != "train" && mode != "infer") {
    std::fprintf(stderr, "mixq_bench_resnet20: error: --mode %s, expected train or infer\n",
                 mode.c_str());
    return 2;
  }
  omp_set_num_threads(threads);

  nn::resnet_cifar model{nn::resnet_options{}};
  optim::sgd_options so;
  so.lr = 0.1;
  so.momentum = 0.9;
  so.weight_decay = 5e-4;
  optim::sgd opt(model.parameters(), so);
  tensor x(shape{batch, 32, 32, 3});
  rng r(3);
  fill_normal(x.view(), r, 0.0f, 1.0f);
  std::vector<int32_t> y(static_cast<size_t>(batch));
  for (auto& v : y) v = static_cast<int32_t>(r.below(10));

  tape t;
  model.train(mode == "train");
  auto step = [&] {
    t.clear();
    if (mode == "train") {
      var logits = model.forward(t, t.input(x.view()));
      var loss = softmax_cross_entropy(logits, y.data());
      opt.zero_grad();
      backward(loss);
      opt.step();
    } else {
      no_grad_guard ng(t);
      model.forward(t, t.input(x.view()));
    }
  };
  for (long long i = 0; i < warmup; ++i) step();
  const auto t0 = std::chrono::steady_clock::now();
  for (long long i = 0; i < steps; ++i) step();
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::printf(
      "{\"impl\": \"mixq\", \"mode\": \"%s\", \"threads\": %d, \"batch\": %lld, \"params\": %lld, "
      "\"images_per_s\": %.2f, \"peak_rss_mib\": %.1f}\n",
      mode.c_str(), threads, batch, static_cast<long long>(model.num_parameters()),
      static_cast<double>(batch * steps) / dt, static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}
