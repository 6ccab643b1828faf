// SGD against the update rule written out in double precision, parameter
// groups, and the learning-rate schedules at their defining points.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "../common/errors.hpp"
#include "mixq/optim/schedule.hpp"
#include "mixq/optim/sgd.hpp"

using namespace mixq;

namespace {
// Reference: PyTorch's SGD rule, in double, for one parameter over `steps` steps.
std::vector<double> reference_sgd(std::vector<double> w,
                                  const std::vector<std::vector<double>>& grads, double lr,
                                  double mom, double wd, bool nesterov) {
  std::vector<double> buf(w.size(), 0.0);
  for (size_t s = 0; s < grads.size(); ++s) {
    for (size_t i = 0; i < w.size(); ++i) {
      double g = grads[s][i] + wd * w[i];
      if (mom != 0) {
        buf[i] = (s == 0) ? g : mom * buf[i] + g;
        g = nesterov ? g + mom * buf[i] : buf[i];
      }
      w[i] -= lr * g;
    }
  }
  return w;
}
}  // namespace

TEST_CASE("sgd follows the momentum / Nesterov / weight-decay rule") {
  for (bool nesterov : {false, true}) {
    for (double mom : {0.0, 0.9}) {
      if (nesterov && mom == 0.0) continue;
      CAPTURE(nesterov);
      CAPTURE(mom);
      parameter p;
      p.name = "w";
      p.value = tensor(shape{5});
      p.grad = tensor(shape{5});
      std::vector<double> w0{0.5, -1.25, 2.0, 0.0, 3.5};
      for (int i = 0; i < 5; ++i) p.value[i] = static_cast<float>(w0[static_cast<size_t>(i)]);
      optim::sgd_options so;
      so.lr = 0.05;
      so.momentum = mom;
      so.weight_decay = 0.01;
      so.nesterov = nesterov;
      optim::sgd opt({&p}, so);
      std::vector<std::vector<double>> grads;
      for (int s = 0; s < 4; ++s) {
        std::vector<double> g(5);
        for (int i = 0; i < 5; ++i) {
          g[static_cast<size_t>(i)] = std::sin(1.0 + s * 5 + i);
          p.grad[i] = static_cast<float>(g[static_cast<size_t>(i)]);
        }
        grads.push_back(g);
        opt.step();
      }
      auto ref = reference_sgd(w0, grads, 0.05, mom, 0.01, nesterov);
      for (int i = 0; i < 5; ++i)
        CHECK(p.value[i] == doctest::Approx(ref[static_cast<size_t>(i)]).epsilon(1e-5));
      CHECK(opt.steps() == 4);
    }
  }
}

TEST_CASE("sgd skips weight decay where the parameter opts out, unless decay_all") {
  for (bool decay_all : {false, true}) {
    parameter p;
    p.value = tensor(shape{1});
    p.grad = tensor(shape{1});
    p.value[0] = 2.0f;
    p.weight_decay = false;
    optim::sgd_options so;
    so.lr = 0.1;
    so.momentum = 0;
    so.weight_decay = 0.5;
    so.decay_all = decay_all;
    optim::sgd opt({&p}, so);
    opt.step();  // grad is zero: only decay can move the weight
    CHECK(p.value[0] == doctest::Approx(decay_all ? 2.0 - 0.1 * 0.5 * 2.0 : 2.0));
  }
}

TEST_CASE("sgd rejects bad options with a clear error") {
  parameter p;
  p.value = tensor(shape{1});
  p.grad = tensor(shape{1});
  optim::sgd_options so;
  so.momentum = 1.5;
  CHECK_THROWS_WITH_AS(optim::sgd({&p}, so), doctest::Contains("momentum = 1.5"), mixq::error);
}

TEST_CASE("cosine schedule: warm-up, half-way, end") {
  optim::cosine_schedule s(0.1, 1100, 100);
  CHECK(s(0) == doctest::Approx(0.0));
  CHECK(s(50) == doctest::Approx(0.05));
  CHECK(s(100) == doctest::Approx(0.1));
  CHECK(s(600) == doctest::Approx(0.05));
  CHECK(s(1100) == doctest::Approx(0.0).epsilon(1e-12));
  for (int64_t i = 101; i <= 1100; ++i) CHECK(s(i) <= s(i - 1));
  CHECK_THROWS_AS(optim::cosine_schedule(0.1, 10, 10), mixq::error);
}

TEST_CASE("step schedule multiplies by gamma at each milestone") {
  optim::step_schedule s;
  s.base_lr = 0.1;
  s.milestones = {10, 20};
  s.gamma = 0.1;
  CHECK(s(9) == doctest::Approx(0.1));
  CHECK(s(10) == doctest::Approx(0.01));
  CHECK(s(25) == doctest::Approx(0.001));
}

namespace {
parameter scalar_param(const char* name, float v, bool decay) {
  parameter p(name, shape{1}, decay);
  p.value[0] = v;
  return p;
}
}  // namespace

TEST_CASE("sgd parameter groups: lr_scale and a group's own weight decay") {
  // No momentum: one step is w -= lr * lr_scale * (g + wd * w).
  parameter w = scalar_param("w", 2.0f, true);   // default group: decays
  parameter b = scalar_param("b", 2.0f, false);  // default group: no decay flag
  parameter q = scalar_param("q", 2.0f, true);   // quantizer group: wd 0, lr x 0.5
  parameter r = scalar_param("r", 2.0f, false);  // group wd 0.25 overrides the flag
  for (parameter* p : {&w, &b, &q, &r}) p->grad[0] = 1.0f;
  optim::sgd_options so;
  so.lr = 0.1;
  so.momentum = 0;
  so.weight_decay = 0.5;
  std::vector<optim::param_group> groups;
  groups.emplace_back(std::vector<parameter*>{&w, &b});
  groups.emplace_back(std::vector<parameter*>{&q}, 0.5, 0.0);
  groups.emplace_back(std::vector<parameter*>{&r}, 1.0, 0.25);
  optim::sgd opt(groups, so);
  REQUIRE(opt.parameters().size() == 4u);
  CHECK(opt.weight_decay_of(0) == 0.5);
  CHECK(opt.weight_decay_of(1) == 0.0);
  CHECK(opt.weight_decay_of(2) == 0.0);
  CHECK(opt.weight_decay_of(3) == 0.25);
  opt.step();
  CHECK(w.value[0] == doctest::Approx(2.0 - 0.1 * (1.0 + 0.5 * 2.0)));
  CHECK(b.value[0] == doctest::Approx(2.0 - 0.1 * 1.0));
  CHECK(q.value[0] == doctest::Approx(2.0 - 0.05 * 1.0));
  CHECK(r.value[0] == doctest::Approx(2.0 - 0.1 * (1.0 + 0.25 * 2.0)));
  // decay_all reaches parameters without the flag, but not a group's own value.
  so.decay_all = true;
  optim::sgd all(groups, so);
  CHECK(all.weight_decay_of(1) == 0.5);
  CHECK(all.weight_decay_of(2) == 0.0);
  // Momentum buffers are keyed by name, across groups.
  CHECK(all.state()[2].first == "q");
}

TEST_CASE("sgd refuses a parameter twice and bad group settings") {
  parameter w = scalar_param("w", 1.0f, true);
  parameter w2 = scalar_param("w", 1.0f, true);
  optim::sgd_options so;
  CHECK(mixq_test::contains(mixq_test::error_of([&] {
                              optim::sgd({optim::param_group({&w}), optim::param_group({&w2})}, so);
                            }),
                            "parameter 'w' appears twice"));
  CHECK(mixq_test::contains(
      mixq_test::error_of([&] { optim::sgd({optim::param_group({&w}, -1.0)}, so); }),
      "lr_scale = -1"));
  CHECK(mixq_test::contains(
      mixq_test::error_of([&] { optim::sgd({optim::param_group({&w}, 1.0, -0.5)}, so); }),
      "weight_decay = -0.5"));
}

TEST_CASE("lr_schedule: a recipe in epochs becomes the step-indexed schedule") {
  optim::schedule_options c;
  c.warmup_epochs = 1.5;
  const optim::lr_schedule cos(c, 0.2, 10, 5);  // 50 steps, 15 of warm-up
  const optim::cosine_schedule want(0.2, 50, 15);
  for (int64_t s = 0; s <= 50; ++s) CHECK(cos(s) == want(s));

  optim::schedule_options st;
  st.kind = optim::schedule_kind::step;
  st.milestones = {2, 4};
  st.gamma = 0.5;
  const optim::lr_schedule stepped(st, 0.2, 10, 5);
  CHECK(stepped(19) == doctest::Approx(0.2));
  CHECK(stepped(20) == doctest::Approx(0.1));
  CHECK(stepped(40) == doctest::Approx(0.05));

  CHECK(optim::parse_schedule_kind("step") == optim::schedule_kind::step);
  CHECK(std::string(optim::schedule_name(optim::schedule_kind::cosine)) == "cosine");
  CHECK(mixq_test::contains(mixq_test::error_of([] { optim::parse_schedule_kind("linear"); }),
                            "schedule 'linear', expected 'cosine' or 'step'"));
}
