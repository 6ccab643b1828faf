// qat_train_step with soft targets (knowledge distillation, the example's
// --distill): the loss is (1 - w) CE(label) + w KL(teacher || model) on the
// step's own logits, its gradients are those of that loss, w = 0 is the plain
// cross-entropy step, and AdaQAT's finite-difference probes see the same loss.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "mixq/nn/resnet.hpp"
#include "mixq/quant/quant.hpp"
#include "mixq/quant/train_step.hpp"

using namespace mixq;

namespace {
struct fixture {
  nn::resnet_cifar model;
  quant::qnet net;
  tensor images{shape{6, 8, 8, 3}};
  std::vector<int32_t> labels{0, 3, 7, 1, 9, 3};
  std::vector<float> teacher;  // 6 x 10 probabilities
  explicit fixture(const quant::qat_config& qc = {}) : model(options()) {
    quant::qat_config c = qc;
    c.mean = {0.5f, 0.5f, 0.5f};
    c.stddev = {0.25f, 0.25f, 0.25f};
    net = quant::quantize(model, c, 8, 8);
    rng r(17);
    fill_uniform(images.view(), r, 0.0f, 1.0f);
    for (int i = 0; i < 6; ++i) {
      double s = 0;
      std::vector<double> e(10);
      for (int k = 0; k < 10; ++k) s += (e[k] = std::exp(2.0 * r.uniform()));
      for (int k = 0; k < 10; ++k) teacher.push_back(static_cast<float>(e[k] / s));
    }
  }
  static nn::resnet_options options() {
    nn::resnet_options o;
    o.n = 1;
    o.seed = 4;
    return o;
  }
  // The logits of a forward in training mode, without a step.
  std::vector<float> logits() {
    tape t;
    no_grad_guard ng(t);
    var lg = model.forward(t, t.input(images.view()));
    return std::vector<float>(lg.value().data(), lg.value().data() + lg.value().numel());
  }
  std::vector<float> grads() {
    std::vector<float> g;
    for (parameter* p : model.parameters())
      g.insert(g.end(), p->grad.data(), p->grad.data() + p->grad.numel());
    return g;
  }
};

// (1/N) sum_i [ (1 - w) CE(z_i, y_i) + w KL(p_T,i || softmax z_i) ].
double expected_loss(const std::vector<float>& z, const std::vector<int32_t>& y,
                     const std::vector<float>& pt, double w) {
  double total = 0;
  const size_t n = y.size(), k = 10;
  for (size_t i = 0; i < n; ++i) {
    double m = z[i * k];
    for (size_t j = 1; j < k; ++j) m = std::max(m, static_cast<double>(z[i * k + j]));
    double s = 0;
    for (size_t j = 0; j < k; ++j) s += std::exp(z[i * k + j] - m);
    const double lse = m + std::log(s);
    total += (1 - w) * (lse - z[i * k + static_cast<size_t>(y[i])]);
    for (size_t j = 0; j < k; ++j)
      total += w * pt[i * k + j] * (std::log(pt[i * k + j]) - (z[i * k + j] - lse));
  }
  return total / static_cast<double>(n);
}
}  // namespace

TEST_CASE("distillation step: the loss mixes label and teacher, w = 0 is plain cross-entropy") {
  for (const double w : {0.0, 0.5, 1.0}) {
    INFO("w = " << w);
    fixture f;
    const std::vector<float> z = f.logits();  // training-mode forward, as the step's
    f.model.zero_grad();
    tape t;
    const quant::step_stats st =
        quant::qat_train_step(f.model, t, f.images.view(), f.labels.data(), 0.0f, nullptr, 0,
                              f.teacher.data(), static_cast<float>(w));
    CHECK(st.loss == doctest::Approx(expected_loss(z, f.labels, f.teacher, w)).epsilon(1e-5));
    const std::vector<float> g = f.grads();
    fixture plain;
    plain.model.zero_grad();
    tape t2;
    const quant::step_stats sp = quant::qat_train_step(plain.model, t2, plain.images.view(),
                                                       plain.labels.data(), 0.0f, nullptr, 0);
    const std::vector<float> gp = plain.grads();
    REQUIRE(g.size() == gp.size());
    double diff = 0;
    for (size_t i = 0; i < g.size(); ++i) diff = std::max(diff, std::fabs(double(g[i]) - gp[i]));
    if (w == 0.0) {
      CHECK(st.loss == doctest::Approx(sp.loss).epsilon(1e-6));
      CHECK(diff < 1e-6);
    } else {
      CHECK(diff > 1e-4);  // the teacher moves the gradients
    }
  }
}

TEST_CASE("distillation step: AdaQAT's finite-difference probe sees the distillation loss") {
  // A cost-free controller (lambda 0): its update follows L(hi) - L(lo) of the
  // loss it is given, so a teacher moves N differently, and w = 0 exactly alike.
  auto run = [](bool use_teacher, float w) {
    quant::qat_config qc;
    qc.weights = quant::weight_family::dorefa;
    qc.acts = quant::act_family::pact;
    qc.bits_w = qc.bits_a = 4;
    fixture f(qc);
    quant::adaqat_options ao;
    ao.init_w = ao.init_a = 4.0;
    ao.lambda = 0.0;
    ao.lr = 0.5;
    auto* ctl = &f.model.adopt("adaqat", std::make_unique<quant::adaqat>(f.net, ao));
    tape t;
    quant::qat_train_step(f.model, t, f.images.view(), f.labels.data(), 0.0f, ctl, 0,
                          use_teacher ? f.teacher.data() : nullptr, w);
    return ctl->real_bits(0);
  };
  const double plain = run(false, 0.0f);
  CHECK(plain != 4.0);  // the probe moved N
  CHECK(run(true, 0.0f) == plain);
  CHECK(run(true, 1.0f) != plain);
}
