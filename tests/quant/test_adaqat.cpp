// AdaQAT's bit-width updates on a toy regression (two quantized linear layers
// fitting a float teacher): a cost-dominated objective drives the bits down,
// a loss-dominated one drives them up, for the network pair and per layer
// (finite differences); the Taylor probe against its definition; the
// oscillation rule; the learning window (start and freeze steps);
// checkpointed state; bad configurations.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/nn/nn.hpp"
#include "mixq/quant/quant.hpp"

using namespace mixq;
using namespace mixq::quant;

namespace {
// loss = mean((y - target)^2) as a tape extension.
struct mse_saved {
  const float* target;
};
void mse_backward(tape& t, const node& nd) {
  const mse_saved sv = nd.extension_saved<mse_saved>();
  const int32_t yi = nd.inputs[0];
  if (!t.needs_grad(yi)) return;
  const tensor_view y = t.at(yi).value;
  const float g = t.grad_of(nd.output)[0] * 2.0f / static_cast<float>(y.numel());
  bool acc = false;
  float* dy = t.grad_for_write(yi, &acc);
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float d = g * (y[i] - sv.target[i]);
    dy[i] = acc ? dy[i] + d : d;
  }
}
var mse(var y, const tensor& target) {
  tape& t = *y.t;
  var l = t.new_value(shape{}, y.requires_grad());
  double s = 0;
  for (int64_t i = 0; i < target.numel(); ++i) {
    const double d = static_cast<double>(y.value()[i]) - target[i];
    s += d * d;
  }
  l.value()[0] = static_cast<float>(s / static_cast<double>(target.numel()));
  if (y.requires_grad() && t.grad_enabled())
    t.record_extension(&mse_backward, {y}, l, mse_saved{target.data()});
  return l;
}

// Two linear layers with quantized inputs and weights, a float teacher.
struct toy : nn::module {
  rng r{5};
  nn::linear l1{16, 16, false, r}, l2{16, 8, false, r};
  tensor x{shape{64, 16}}, target{shape{64, 8}};
  qnet net;
  toy() {
    register_module("l1", l1);
    register_module("l2", l2);
    fill_uniform(x.view(), r, 0.0f, 1.0f);
    // Teacher: the float network itself, before quantizers exist.
    tape t;
    no_grad_guard ng(t);
    var y = l2.forward(t, relu(l1.forward(t, t.input(x.view()))));
    target.view().copy_from(y.value());
    std::vector<qlayer> ls;
    nn::linear* layers[2] = {&l1, &l2};
    for (int i = 0; i < 2; ++i) {
      qlayer q;
      q.name = i == 0 ? "l1" : "l2";
      q.weight = &layers[i]->weight;
      q.weights = layers[i]->weight.numel();
      q.out_channels = layers[i]->weight.shape()[0];
      q.macs = q.weights;
      q.aq = static_cast<act_quantizer*>(
          &layers[i]->set_input_transform("input_quant", std::make_unique<lsq_act>(5)));
      q.wq = static_cast<weight_quantizer*>(&layers[i]->set_weight_transform(
          "weight_quant", std::make_unique<lsq_weight>(5, q.out_channels, false)));
      q.learn_w = q.learn_a = true;
      ls.push_back(q);
    }
    net = qnet(*this, ls);
  }
  var forward(tape& t) { return l2.forward(t, relu(l1.forward(t, t.input(x.view())))); }
  double loss(tape& t) {
    t.clear();
    return mse(forward(t), target).value()[0];
  }
  // One AdaQAT step with fixed weights (the bit update alone); `probes`, when
  // given, counts the probe forwards.
  void step(adaqat& ctl, int64_t s, int* probes = nullptr) {
    tape t;
    ctl.before_forward(s, x.shape()[0]);
    zero_grad();
    var l = mse(forward(t), target);
    const double l0 = l.value()[0];
    backward(l);
    ctl.after_backward(t, l0, [&](tape& tt) {
      if (probes) ++*probes;
      return loss(tt);
    });
  }
};

double mean_bits(const adaqat& c, bool weights) {
  double s = 0;
  int n = 0;
  for (size_t g = 0; g < c.groups(); ++g)
    if (c.group(g).weights == weights) {
      s += c.real_bits(g);
      ++n;
    }
  return s / n;
}
}  // namespace

TEST_CASE("AdaQAT toy: cost-dominated -> bits down, loss-dominated -> bits up") {
  struct setting {
    granularity g;
    estimator e;
  };
  const setting settings[] = {{granularity::network, estimator::finite_difference},
                              {granularity::layer, estimator::finite_difference}};
  for (const setting& st : settings) {
    for (bool cost_dominated : {true, false}) {
      toy m;
      {  // initialise the LSQ steps at 5 bits
        tape t;
        m.loss(t);
      }
      adaqat_options o;
      o.gran = st.g;
      o.est = st.e;
      o.init_w = o.init_a = 4.5;
      o.lambda = cost_dominated ? 50.0 : 0.0;
      o.lr = cost_dominated ? 0.05 : 20.0;
      o.osc_reversals = 0;
      adaqat& ctl = m.adopt("adaqat", std::make_unique<adaqat>(m.net, o));
      CHECK(ctl.bits(0) == 5);
      for (int64_t s = 0; s < 400; ++s) m.step(ctl, s);
      INFO("granularity=" << std::string(name_of(st.g)) << " estimator="
                          << std::string(name_of(st.e)) << " cost_dominated=" << cost_dominated
                          << " N_w=" << mean_bits(ctl, true) << " N_a=" << mean_bits(ctl, false));
      if (cost_dominated) {
        CHECK(mean_bits(ctl, true) < 3.0);
        CHECK(mean_bits(ctl, false) < 3.0);
      } else {
        CHECK(mean_bits(ctl, true) > 6.0);
        CHECK(mean_bits(ctl, false) > 6.0);
      }
      // The quantizers run ceil(N).
      for (const qlayer& l : m.net.layers()) {
        CHECK(l.wq->bits() >= 2);
        CHECK(l.wq->bits() <= 8);
      }
      CHECK(m.net.layers()[0].wq->bits() == ctl.bits(0));
    }
  }
}

TEST_CASE(
    "Taylor probe: first = sum g*(q_p - q_k) (exact for a linear loss), second by definition") {
  // Loss L = sum r * y over the quantizer's output y: L(p bits) - L(k bits)
  // is exactly sum r * (q_p(x) - q_k(x)), the probe's first-order term.
  for (bool weights : {false, true}) {
    for (int k : {3, 5, 8}) {
      const int p = k - 1;
      tensor x({4, 30});
      rng r(17);
      fill_uniform(x.view(), r, weights ? -0.5f : 0.0f, 1.0f);
      tensor rr(x.shape());
      fill_uniform(rr.view(), r, -1.0f, 1.0f);
      std::unique_ptr<quantizer> q;
      if (weights) {
        auto w = std::make_unique<lsq_weight>(k, 4, true);
        for (int c = 0; c < 4; ++c) w->set_step(c, 0.05f + 0.01f * c);
        q = std::move(w);
      } else {
        auto a = std::make_unique<pact>(k, pact_options{1.1f});
        q = std::move(a);
      }
      parameter xp("x", x.shape());
      xp.value = x;
      auto loss_at = [&](int b) {
        q->set_bits(b);
        tape t;
        no_grad_guard ng(t);
        var y = q->apply(t, t.input(x.view()));
        double s = 0;
        for (int64_t i = 0; i < x.numel(); ++i) s += static_cast<double>(rr[i]) * y.value()[i];
        q->set_bits(k);
        return std::make_pair(s, tensor::from_view(y.value()));
      };
      const auto lk = loss_at(k), lp = loss_at(p);
      q->set_probe(p, 4);
      tape t;
      var y = q->apply(t, weights ? t.param(xp) : t.input(x.view(), true));
      backward(y, rr.data());
      INFO("weights=" << weights << " k=" << k);
      CHECK(q->estimate_first() == doctest::Approx(lp.first - lk.first).epsilon(1e-5));
      // second: (B/2) * sum over samples (weights: elements) of (g * delta)^2.
      double second = 0;
      for (int64_t b = 0; b < 4; ++b) {
        double s = 0;
        for (int64_t i = b * 30; i < (b + 1) * 30; ++i) {
          const double gd = rr[i] * (static_cast<double>(lp.second[i]) - lk.second[i]);
          if (weights)
            second += gd * gd;
          else
            s += gd;
        }
        if (!weights) second += s * s;
      }
      CHECK(q->estimate_second() == doctest::Approx(2.0 * second).epsilon(1e-5));
      q->set_probe(0, 0);
    }
  }
}

TEST_CASE("AdaQAT: a group that oscillates between two widths is frozen at the higher one") {
  toy m;
  adaqat_options o;
  o.init_w = 4.6;
  o.init_a = 6.0;
  o.lambda = 0.0;
  o.lr = 0.1;
  o.osc_reversals = 3;
  o.osc_window = 1000;
  adaqat& ctl = m.adopt("adaqat", std::make_unique<adaqat>(m.net, o));
  // A loss whose minimum over integer widths is at 4 bits: from 5 the
  // difference L(5) - L(4) > 0 pulls N below 4, from 4 L(4) - L(3) < 0 pushes
  // it back above: ceil(N) flips between 4 and 5.
  auto loss_of = [&]() {
    const double b = m.net.layers()[0].wq->bits();
    return (b - 4.0) * (b - 4.0);
  };
  tape t;
  for (int64_t s = 0; s < 400 && !ctl.frozen(0); ++s) {
    ctl.before_forward(s, 1);
    ctl.after_backward(t, loss_of(), [&](tape&) { return loss_of(); });
  }
  CHECK(ctl.frozen(0));
  CHECK(ctl.real_bits(0) == 5.0);
  CHECK(ctl.bits(0) == 5);
  CHECK(m.net.layers()[0].wq->bits() == 5);
  CHECK(m.net.layers()[1].wq->bits() == 5);
  // A frozen group is no longer probed: its N stays.
  for (int64_t s = 400; s < 420; ++s) {
    ctl.before_forward(s, 1);
    ctl.after_backward(t, loss_of(), [&](tape&) { return loss_of(); });
  }
  CHECK(ctl.real_bits(0) == 5.0);
}

TEST_CASE("AdaQAT learning window: widths held before start_step, frozen from freeze_step") {
  for (granularity g : {granularity::network, granularity::layer}) {
    toy m;
    adaqat_options o;
    o.gran = g;
    o.init_w = o.init_a = 6.0;
    o.lambda = 50.0;  // cost-dominated: every width falls once learning runs
    o.lr = 0.05;
    o.osc_reversals = 0;
    o.start_step = 30;
    o.freeze_step = 60;
    adaqat& ctl = m.adopt("adaqat", std::make_unique<adaqat>(m.net, o));
    INFO("granularity=" << std::string(name_of(g)));
    int probes = 0;
    for (int64_t s = 0; s < 30; ++s) m.step(ctl, s, &probes);
    CHECK(probes == 0);  // no extra forward before the start
    for (size_t k = 0; k < ctl.groups(); ++k) {
      CHECK(ctl.real_bits(k) == 6.0);
      CHECK_FALSE(ctl.frozen(k));
    }
    for (int64_t s = 30; s < 60; ++s) m.step(ctl, s);
    CHECK(mean_bits(ctl, true) < 6.0);  // learning ran in [start, freeze)
    m.step(ctl, 60);
    std::vector<double> at_freeze;
    for (size_t k = 0; k < ctl.groups(); ++k) {
      CHECK(ctl.frozen(k));
      CHECK(ctl.real_bits(k) == std::ceil(ctl.real_bits(k)));
      at_freeze.push_back(ctl.real_bits(k));
    }
    for (int64_t s = 61; s < 90; ++s) m.step(ctl, s);
    for (size_t k = 0; k < ctl.groups(); ++k) CHECK(ctl.real_bits(k) == at_freeze[k]);
  }
}

TEST_CASE("AdaQAT state is in the model's state dict; a restored run continues identically") {
  auto run = [](int64_t from, int64_t to, nn::state_dict* in, nn::state_dict* out) {
    toy m;
    adaqat_options o;
    o.gran = granularity::layer;
    o.init_w = o.init_a = 6.0;
    o.lambda = 1.0;
    o.lr = 0.5;
    adaqat& ctl = m.adopt("adaqat", std::make_unique<adaqat>(m.net, o));
    if (in) {
      m.load_state_dict(*in);
      ctl.apply_bits();
    }
    for (int64_t s = from; s < to; ++s) m.step(ctl, s);
    if (out) *out = m.state_dict();
    std::vector<float> bits;
    for (size_t g = 0; g < ctl.groups(); ++g) bits.push_back(static_cast<float>(ctl.real_bits(g)));
    return bits;
  };
  nn::state_dict mid;
  const std::vector<float> straight = run(0, 60, nullptr, nullptr);
  run(0, 25, nullptr, &mid);
  bool has_state = false;
  for (auto& e : mid) has_state = has_state || e.first == "adaqat.weight_bits";
  CHECK(has_state);
  const std::vector<float> resumed = run(25, 60, &mid, nullptr);
  REQUIRE(straight.size() == resumed.size());
  for (size_t i = 0; i < straight.size(); ++i) CHECK(straight[i] == resumed[i]);
  CHECK(straight[0] != 6.0f);  // the bits did move
}

TEST_CASE("AdaQAT and QAT: bad configuration is one clear mixq::error") {
  toy m;
  auto expect = [&](adaqat_options o, const char* what) {
    try {
      adaqat a(m.net, o);
      FAIL("no error for " << what);
    } catch (const mixq::error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(what) != std::string::npos);
    }
  };
  adaqat_options o;
  o.lambda = -0.1;
  expect(o, "lambda");
  o = {};
  o.init_w = 9;
  expect(o, "initial weight bits");
  o = {};
  o.min_bits = 1;
  expect(o, "bit range");
  o = {};
  o.max_bits = 8.5;
  expect(o, "bit range");
  o = {};
  o.lr = 0;
  expect(o, "learning rate");
  o = {};
  o.est = estimator::taylor;
  expect(o, "taylor");
  o = {};
  o.start_step = -1;
  expect(o, "learning starts at step -1");
  o = {};
  o.start_step = 100;
  o.freeze_step = 100;
  expect(o, "before the freeze");
  qat_config c;
  c.bits_w = 1;
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("weight bits = 1"), mixq::error);
  c = {};
  c.bits_a = 9;
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("activation bits = 9"), mixq::error);
}
