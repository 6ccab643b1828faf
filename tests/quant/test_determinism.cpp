// The determinism guarantee of docs/robustness.md for quantization-aware
// training: fit() of a quantized ResNet8 (LSQ W4A4 per channel; DoReFa
// weights with PACT activations at W2A3; AdaQAT, layer granularity with
// Taylor probes and per network with finite-difference probes) gives
// bit-identical weights, quantizer steps, bit-widths and losses with 1, 2 and
// 3 OpenMP threads, and run to run. The FP32 side is pinned the same way in
// tests/train/test_fit_determinism.cpp.
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "mixq/nn/resnet.hpp"
#include "mixq/quant/quant.hpp"
#include "mixq/quant/train_step.hpp"
#include "mixq/train/trainer.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace mixq;

namespace {
// 60 RGB 12x12 images whose label is a function of the pixels.
io::image_dataset synthetic() {
  io::image_dataset ds;
  ds.name = "synthetic";
  ds.n = 60;
  ds.h = ds.w = 12;
  ds.c = 3;
  ds.num_classes = 10;
  std::uint32_t s = 23;
  for (std::int64_t i = 0; i < ds.n; ++i) {
    int sum = 0;
    for (int p = 0; p < 12 * 12 * 3; ++p) {
      s = s * 1664525u + 1013904223u;
      const auto v = static_cast<std::uint8_t>(s >> 24);
      ds.images.push_back(v);
      sum += v;
    }
    ds.labels.push_back(sum % 10);
  }
  ds.mean = {0.5f, 0.5f, 0.5f};
  ds.stddev = {0.25f, 0.25f, 0.25f};
  return ds;
}

enum class recipe { lsq, dorefa_pact, adaqat_layer, adaqat_network };

struct run_result {
  std::vector<float> state;  // every tensor of the state dict, in order
  std::vector<double> losses;
};

run_result train_with(recipe rc, int threads, std::uint64_t seed = 9) {
#ifdef _OPENMP
  const int prev = omp_get_max_threads();
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
  const io::image_dataset data = synthetic();
  nn::resnet_options ro;
  ro.n = 1;  // ResNet8
  ro.seed = 3;
  nn::resnet_cifar model(ro);
  quant::qat_config qc;
  qc.mean = data.mean;
  qc.stddev = data.stddev;
  if (rc == recipe::lsq) {
    qc.per_channel = true;
  } else {
    qc.weights = quant::weight_family::dorefa;
    qc.acts = quant::act_family::pact;
    qc.bits_w = 2;
    qc.bits_a = 3;
  }
  const bool ada = rc == recipe::adaqat_layer || rc == recipe::adaqat_network;
  quant::adaqat_options ao;
  ao.init_w = ao.init_a = 6.0;
  ao.lr = 0.5;
  if (rc == recipe::adaqat_layer) {
    ao.gran = quant::granularity::layer;
    ao.est = quant::estimator::taylor;
  }
  if (ada) qc.bits_w = qc.bits_a = quant::ceil_bits(ao.init_w);
  quant::qnet net = quant::quantize(model, qc, data.h, data.w);
  quant::adaqat* ctl =
      ada ? &model.adopt("adaqat", std::make_unique<quant::adaqat>(net, ao)) : nullptr;
  train::method_hooks h;
  h.name = ctl ? "adaqat" : "qat";
  h.train_step = [&](tape& t, const io::batch& b, int64_t step) {
    const quant::step_stats s = quant::qat_train_step(
        model, t, tensor_view(const_cast<float*>(b.images.data()), shape{b.n, b.h, b.w, b.c}),
        b.labels.data(), 0.0f, ctl, step);
    train::step_result r;
    r.loss_sum = s.loss * static_cast<double>(s.count);
    r.correct = s.correct;
    r.count = s.count;
    return r;
  };
  train::fit_options o;
  o.epochs = 2;
  o.data.batch_size = 16;  // 4 batches an epoch, the last one partial
  o.data.seed = seed;
  o.data.augment = true;
  o.sgd.lr = 0.02;
  o.progress = false;
  const train::fit_result r = train::fit(model, data, &data, o, h);
  run_result out;
  for (auto& e : model.state_dict())
    out.state.insert(out.state.end(), e.second.data(), e.second.data() + e.second.numel());
  for (const auto& m : r.history) {
    out.losses.push_back(m.train_loss);
    out.losses.push_back(m.test_loss);
  }
#ifdef _OPENMP
  omp_set_num_threads(prev);
#endif
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("quantized fit: same seed, any thread count: bit-identical state and metrics") {
  for (recipe rc :
       {recipe::lsq, recipe::dorefa_pact, recipe::adaqat_layer, recipe::adaqat_network}) {
    CAPTURE(static_cast<int>(rc));
    const run_result one = train_with(rc, 1);
    REQUIRE(!one.state.empty());
    for (int threads : {2, 3}) {
      CAPTURE(threads);
      const run_result r = train_with(rc, threads);
      CHECK(same_bits(r.state, one.state));
      CHECK(r.losses == one.losses);
    }
    CHECK(same_bits(train_with(rc, 1).state, one.state));  // and run to run
  }
  // Another data order gives other weights (the comparison above can fail).
  CHECK_FALSE(same_bits(train_with(recipe::lsq, 1, 10).state, train_with(recipe::lsq, 1).state));
}
