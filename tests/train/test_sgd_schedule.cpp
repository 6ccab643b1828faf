// SGD against the update rule written out in double precision, and the
// learning-rate schedules at their defining points.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

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
