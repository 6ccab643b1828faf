// MultiQuant training and search (quant/multiquant/): the soft-target loss
// and its gradient, the LRH step (slices, accumulated gradients, no
// allocation after the first step), a checkpointed supernet that resumes bit
// for bit under train::fit, and a search that stays within its budget.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "../../examples/multiquant_cifar10/lrh_method.hpp"
#include "../common/datasets.hpp"
#include "../common/files.hpp"
#include "../common/modules.hpp"
#include "mixq/autograd/gradcheck.hpp"
#include "mixq/nn/nn.hpp"
#include "multiquant_test_util.hpp"
#include "mixq/quant/multiquant/multiquant.hpp"
#include "mixq/train/trainer.hpp"

using namespace mixq;
using namespace mixq::quant;

namespace {
std::vector<float> grads_of(nn::module& m) {
  std::vector<float> g;
  for (parameter* p : m.parameters())
    g.insert(g.end(), p->grad.data(), p->grad.data() + p->grad.numel());
  return g;
}
// A sampler small enough for a test (4,000 Monte Carlo draws).
sampler_options test_sampler(prior_kind p) {
  sampler_options o;
  o.prior = p;
  o.mc_samples = 4000;
  o.max_tries = 200;
  return o;
}
// Mean 3 bits, or the BitOPs of the uniform 3-bit configuration times `slack`.
search_budget budget_3(const supernet& s, budget_kind k, double slack = 1.0) {
  search_budget b;
  b.kind = k;
  b.value = k == budget_kind::bits ? 3.0 : s.bitops(s.uniform(3)) * slack;
  return b;
}
}  // namespace

TEST_CASE("soft-target loss: value = (1-w) CE + w KL, gradient by finite differences") {
  const int64_t n = 3, k = 4;
  tensor z({n, k}), teacher_logits({n, k});
  rng r(5);
  fill_normal(z.view(), r, 0.0f, 1.0f);
  fill_normal(teacher_logits.view(), r, 0.0f, 1.0f);
  std::vector<float> pt(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < k; ++j) s += std::exp(teacher_logits[i * k + j]);
    for (int64_t j = 0; j < k; ++j)
      pt[static_cast<size_t>(i * k + j)] =
          static_cast<float>(std::exp(teacher_logits[i * k + j]) / s);
  }
  const std::vector<int32_t> y = {0, 3, 1};
  const float w = 0.3f;
  tape t;
  var loss = soft_target_cross_entropy(t.input(z.view()), y.data(), pt.data(), w);
  double expect = 0;
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < k; ++j) s += std::exp(z[i * k + j]);
    const double lse = std::log(s);
    double kl = 0;
    for (int64_t j = 0; j < k; ++j) {
      const double p = pt[static_cast<size_t>(i * k + j)];
      kl += p * (std::log(p) - (z[i * k + j] - lse));
    }
    expect += (1 - w) * (lse - z[i * k + y[static_cast<size_t>(i)]]) + w * kl;
  }
  CHECK(loss.value()[0] == doctest::Approx(expect / n).epsilon(1e-5));
  const gradcheck_report rep = gradcheck(
      [&](tape& tt, const std::vector<var>& in) {
        return soft_target_cross_entropy(in[0], y.data(), pt.data(), w);
      },
      {z.view()});
  CHECK_MESSAGE(rep.ok, rep.message);
  // w = 0 is the plain cross-entropy.
  tape t2;
  CHECK(soft_target_cross_entropy(t2.input(z.view()), y.data(), pt.data(), 0.0f).value()[0] ==
        doctest::Approx(softmax_cross_entropy(t2.input(z.view()), y.data()).value()[0]));
}

TEST_CASE("LRH step: highest, k random, lowest slices; gradients are the sum of the slices'") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet s(m, supernet_options{});
  const tensor x = mixq_test::random_images(4, 1, 8);
  init_quantizers(s, x.view());
  const std::vector<int32_t> y = {0, 1, 2, 3};
  lrh_options o;
  o.random_slices = 2;
  o.labels = label_mode::hard;
  lrh_trainer lrh(s, o);
  const std::vector<bit_config> cs = lrh.slices(7);
  REQUIRE(cs.size() == 4);
  CHECK(cs.front() == s.uniform(8));
  CHECK(cs.back() == s.uniform(2));
  CHECK(cs[1] != cs[2]);
  CHECK(lrh.slices(7)[1] == cs[1]);  // a function of the step
  CHECK(lrh.slices(8)[1] != cs[1]);
  // With hard labels the step's gradient is the sum of the slices' own.
  std::vector<float> sum;
  for (const bit_config& c : cs) {
    s.set_bits(c);
    m.zero_grad();
    tape t;
    backward(softmax_cross_entropy(m.forward(t, t.input(x.view())), y.data()));
    const std::vector<float> g = grads_of(m);
    if (sum.empty()) sum.assign(g.size(), 0.0f);
    for (size_t i = 0; i < g.size(); ++i) sum[i] += g[i];
  }
  m.zero_grad();
  tape t;
  const lrh_stats st = lrh.step(m, t, x.view(), y.data(), 7);
  const std::vector<float> g = grads_of(m);
  REQUIRE(g.size() == sum.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    worst = std::max(worst, static_cast<double>(std::fabs(g[i] - sum[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(sum[i])));
  }
  CHECK(worst <= 1e-5 * scale);
  CHECK(st.count == 4);
  CHECK(st.loss == doctest::Approx(st.loss_high + 2 * st.loss_random + st.loss_low));
  CHECK(s.current() == s.uniform(2));  // left at the last slice
  // After the first step nothing more is reserved (the tape and buffers are reused).
  const int64_t reserved = t.reserved_bytes();
  m.zero_grad();
  lrh.step(m, t, x.view(), y.data(), 8);
  CHECK(t.reserved_bytes() == reserved);
}

TEST_CASE("LRH method: weight decay reaches the per-bit children a step used, and no other") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet_options so;
  so.quant.acts = act_family::pact;  // PACT clips carry weight decay
  supernet s(m, so);
  const tensor x = mixq_test::random_images(4, 1, 8);
  init_quantizers(s, x.view());
  lrh_options lo;
  lo.labels = label_mode::hard;
  lrh_trainer lrh(s, lo);
  examples::lrh_epoch_stats stats;
  examples::lrh_method_options mo;
  mo.weight_decay = 0.25;
  train::method_hooks h = examples::lrh_method(m, s, lrh, stats, mo);
  // layer2.0.conv1's input quantizer: one PACT clip per width
  auto* sw = dynamic_cast<switchable_act*>(s.net().layers()[s.at(2).index].aq);
  REQUIRE(sw != nullptr);
  std::vector<parameter*> clips;
  for (int b = min_bits; b <= max_bits; ++b) {
    const std::vector<parameter*> ps = sw->at(b).parameters();
    REQUIRE(ps.size() == 1);
    REQUIRE(ps[0]->weight_decay);
    clips.push_back(ps[0]);
  }
  // The optimizer does not decay them: the method does, in the steps that use them.
  for (const optim::param_group& g : h.param_groups(m.parameters()))
    for (parameter* p : g.params)
      if (std::find(clips.begin(), clips.end(), p) != clips.end()) {
        REQUIRE(g.weight_decay.has_value());
        CHECK(*g.weight_decay == 0.0);
      }
  const std::vector<bit_config> cs = lrh.slices(0);
  std::vector<bool> used(clips.size(), false);
  for (const bit_config& c : cs) used[static_cast<size_t>(c.a[2] - min_bits)] = true;
  REQUIRE(std::count(used.begin(), used.end(), false) > 0);
  const std::vector<int32_t> y = {0, 1, 2, 3};
  // The loss gradients alone, then the method's step.
  m.zero_grad();
  {
    tape t;
    lrh.step(m, t, x.view(), y.data(), 0);
  }
  std::vector<float> loss_grad;
  for (parameter* p : clips) loss_grad.push_back(p->grad[0]);
  m.zero_grad();
  io::batch bt;
  bt.images.assign(x.data(), x.data() + x.numel());
  bt.labels = y;
  bt.n = 4;
  bt.h = bt.w = 8;
  bt.c = 3;
  tape t;
  h.train_step(t, bt, 0);
  for (size_t k = 0; k < clips.size(); ++k) {
    CAPTURE(k + min_bits);
    const float expected = used[k] ? loss_grad[k] + 0.25f * clips[k]->value[0] : 0.0f;
    CHECK(clips[k]->grad[0] == doctest::Approx(expected).epsilon(1e-6));
    if (!used[k]) CHECK(loss_grad[k] == 0.0f);
  }
}

TEST_CASE("LRH progressive shrinking: the lowest width steps down from 7 to 2 over its steps") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet s(m, supernet_options{});
  lrh_options o;
  o.random_slices = 3;
  o.shrink_steps = 60;  // 7 widths: 6 phases of 10 steps
  lrh_trainer lrh(s, o);
  std::map<int, int> seen_min;  // phase's lowest width -> lowest width drawn in it
  for (int64_t t = 0; t < 80; ++t) {
    const int lowest = t >= 60 ? 2 : 7 - static_cast<int>(t / 10);
    INFO("step " << t);
    REQUIRE(o.bits[static_cast<size_t>(o.lowest_index(t))] == lowest);
    const std::vector<bit_config> cs = lrh.slices(t);
    CHECK(cs.front() == s.uniform(8));
    CHECK(cs.back() == s.uniform(lowest));
    if (!seen_min.count(lowest)) seen_min[lowest] = 8;
    for (size_t j = 1; j + 1 < cs.size(); ++j)
      for (size_t i = 0; i < s.size(); ++i) {
        CHECK(cs[j].w[i] >= lowest);
        CHECK(cs[j].a[i] >= lowest);
        seen_min[lowest] = std::min({seen_min[lowest], cs[j].w[i], cs[j].a[i]});
      }
  }
  // The random slices of each phase do reach its lowest width.
  REQUIRE(seen_min.size() == 6);
  for (const auto& kv : seen_min) CHECK(kv.second == kv.first);
  lrh_options off;
  for (int64_t t : {0, 5, 1000}) CHECK(off.lowest_index(t) == 0);
  lrh_options bad;
  bad.shrink_steps = -1;
  CHECK_THROWS_AS(lrh_trainer(s, bad), mixq::error);
}

TEST_CASE("LRH random-only ablation: k + 2 random slices, highest BitOPs first") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet s(m, supernet_options{});
  lrh_options o;
  o.sampling = slice_sampling::random;
  lrh_trainer lrh(s, o);
  const std::vector<bit_config> cs = lrh.slices(3);
  REQUIRE(cs.size() == 3);
  CHECK(s.bitops(cs[0]) >= s.bitops(cs[1]));
  CHECK(s.bitops(cs[1]) >= s.bitops(cs[2]));
  CHECK(cs[0] != s.uniform(8));
}

TEST_CASE("LRH random draw: per layer, tied per layer (w = a), or one width for every layer") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet s(m, supernet_options{});
  REQUIRE(s.size() >= 4);
  std::map<random_draw, int> untied, mixed;  // draws with some w != a / two distinct widths
  for (random_draw d : {random_draw::per_layer, random_draw::tied, random_draw::uniform}) {
    lrh_options o;
    o.draw = d;
    o.random_slices = 2;
    lrh_trainer lrh(s, o);
    std::map<int, int> seen;  // widths drawn for free layers
    for (int64_t t = 0; t < 40; ++t) {
      const std::vector<bit_config> cs = lrh.slices(t);
      REQUIRE(cs.size() == 4);
      CHECK(cs.front() == s.uniform(8));
      CHECK(cs.back() == s.uniform(2));
      for (size_t j = 1; j + 1 < cs.size(); ++j) {
        s.check(cs[j], "drawn slice");  // fixed parts at their widths
        bool tied = true;
        int lo = 9, hi = 0;
        for (size_t i = 0; i < s.size(); ++i) {
          if (s.free_w(i) && s.free_a(i)) tied = tied && cs[j].w[i] == cs[j].a[i];
          if (s.free_w(i)) {
            lo = std::min(lo, cs[j].w[i]);
            hi = std::max(hi, cs[j].w[i]);
            ++seen[cs[j].w[i]];
          }
          if (s.free_a(i)) {
            lo = std::min(lo, cs[j].a[i]);
            hi = std::max(hi, cs[j].a[i]);
          }
        }
        untied[d] += tied ? 0 : 1;
        mixed[d] += lo == hi ? 0 : 1;
        if (d == random_draw::uniform) CHECK(cs[j] == s.uniform(lo));
      }
    }
    CHECK(seen.size() == 7);  // every width 2..8 reaches some layer in 80 draws
  }
  CHECK(untied[random_draw::per_layer] > 0);
  CHECK(untied[random_draw::tied] == 0);
  CHECK(untied[random_draw::uniform] == 0);
  CHECK(mixed[random_draw::tied] > 0);
  CHECK(mixed[random_draw::uniform] == 0);
  // The default is EQ-Net's independent draw.
  lrh_options def;
  CHECK(def.draw == random_draw::per_layer);
  CHECK(parse_random_draw("tied") == random_draw::tied);
  CHECK(std::string(name_of(random_draw::uniform)) == "uniform");
  CHECK_THROWS_WITH_AS(parse_random_draw("layer"), doctest::Contains("per-layer, tied or uniform"),
                       mixq::error);
}

TEST_CASE("a checkpointed supernet resumes bit-identically under train::fit") {
  const io::image_dataset data = mixq_test::synthetic_images(24, 8, 8, 3, 4);
  const image_batches calib = make_batches(data, 8, 8);
  auto run = [&](const std::string& out, int64_t stop_after, bool resume, nn::resnet_cifar& m) {
    supernet_options so;
    so.per_bit_bn = true;
    supernet s(m, so, 8, 8);
    lrh_options lo;
    lo.labels = label_mode::pskd;  // the ramp depends on the global step
    lo.total_steps = 6;
    lrh_trainer lrh(s, lo);
    examples::lrh_epoch_stats stats;
    examples::lrh_method_options mo;
    mo.eval_bits = 3;
    mo.calib = &calib;
    train::fit_options fo;
    fo.epochs = 2;
    fo.data.batch_size = 8;
    fo.data.seed = 5;
    fo.sgd.lr = 0.05;
    fo.schedule.warmup_epochs = 0;
    fo.out_dir = out;
    fo.progress = false;
    fo.resume = resume;
    fo.stop_after_epoch = stop_after;
    fo.config_tag = "test-multiquant";
    return train::fit(m, data, &data, fo, examples::lrh_method(m, s, lrh, stats, mo));
  };
  mixq_test::temp_dir d1, d2;
  nn::resnet_cifar straight(mixq_test::resnet8());
  const train::fit_result r1 = run(d1.path(), -1, false, straight);
  REQUIRE(r1.history.size() == 2);
  {
    nn::resnet_cifar first(mixq_test::resnet8());
    run(d2.path(), 1, false, first);
    CHECK_FALSE(mixq_test::same_state(first, straight));
  }
  nn::resnet_cifar resumed(mixq_test::resnet8());
  const train::fit_result r2 = run(d2.path(), -1, true, resumed);
  CHECK(r2.first_epoch == 1);
  CHECK(mixq_test::state_difference(resumed, straight) == "");
  REQUIRE(r2.history.size() == 1);
  CHECK(r2.history[0].train_loss == r1.history[1].train_loss);
  CHECK(r2.history[0].method_values == r1.history[1].method_values);
}

TEST_CASE("search: every evaluated configuration is within its budget") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet_options so;
  so.quant.last = edge_policy::same;
  supernet s(m, so);
  // Fitness that wants as many bits as possible: unconstrained, it would
  // leave the budget at once.
  auto fitness = [&](const bit_config& c) { return s.mean_bits_w(c) + s.mean_bits_a(c); };
  for (int kind = 0; kind < 2; ++kind)
    for (int prior = 0; prior < 2; ++prior) {
      CAPTURE(kind);
      CAPTURE(prior);
      const budget_kind bk = kind == 0 ? budget_kind::bits : budget_kind::bitops;
      config_sampler sampler(
          s, bk, test_sampler(prior == 0 ? prior_kind::monte_carlo : prior_kind::uniform));
      const search_budget b = budget_3(s, bk);
      evolution_options eo;
      eo.population = 12;
      eo.generations = 4;
      eo.mutate_prob = 0.3;
      const search_result r = evolve(s, sampler, b, eo, fitness);
      CHECK(r.evaluations == static_cast<int64_t>(r.evaluated.size()));
      CHECK(r.evaluations > eo.population);
      CHECK(r.best_after.size() == r.evaluated.size());
      for (size_t i = 1; i < r.best_after.size(); ++i)
        CHECK(r.best_after[i] >= r.best_after[i - 1]);
      for (const evaluated_config& e : r.evaluated) {
        CHECK(sampler.within(e.config, b));
        if (bk == budget_kind::bits) {
          CHECK(e.mean_w <= 3.0 + 1e-9);
          CHECK(e.mean_a <= 3.0 + 1e-9);
        } else {
          CHECK(e.bitops <= b.value);
        }
      }
      CHECK(r.best.fitness == doctest::Approx(fitness(r.best.config)));
      CHECK(r.draws > 0);
      // The best is at least as good as the uniform slice of the same budget.
      if (bk == budget_kind::bits) CHECK(r.best.fitness >= fitness(s.uniform(3)) - 1e-9);
      // max_evaluations is a hard stop.
      evolution_options capped = eo;
      capped.max_evaluations = 5;
      CHECK(evolve(s, sampler, b, capped, fitness).evaluations == 5);
    }
}

TEST_CASE("search seeds: the widest uniform configuration within the budget is evaluated first") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet_options so;
  so.quant.last = edge_policy::same;
  supernet s(m, so);
  // Fitness that peaks at the uniform 3-bit configuration, which the prior
  // rarely draws: minus the number of widths that differ from 3.
  auto fitness = [&](const bit_config& c) {
    double d = 0;
    for (size_t i = 0; i < s.size(); ++i)
      d += (s.free_w(i) && c.w[i] != 3) + (s.free_a(i) && c.a[i] != 3);
    return -d;
  };
  for (int kind = 0; kind < 2; ++kind) {
    CAPTURE(kind);
    const budget_kind bk = kind == 0 ? budget_kind::bits : budget_kind::bitops;
    config_sampler sampler(s, bk, test_sampler(prior_kind::monte_carlo));
    const search_budget b = budget_3(s, bk, 1.01);
    const std::vector<bit_config> u = sampler.uniform_within(b);
    REQUIRE(u.size() == 2);  // 3 and 2 bits, widest first
    CHECK(u[0].str() == s.uniform(3).str());
    CHECK(u[1].str() == s.uniform(2).str());
    evolution_options eo;
    eo.population = 8;
    eo.generations = 2;
    eo.seeds = {s.uniform(8), u[0]};  // the 8-bit one is outside the budget: skipped
    const search_result r = evolve(s, sampler, b, eo, fitness);
    REQUIRE(!r.evaluated.empty());
    CHECK(r.evaluated[0].config.str() == s.uniform(3).str());
    CHECK(r.best.fitness == 0.0);
    for (const evaluated_config& e : r.evaluated) CHECK(sampler.within(e.config, b));
    evolution_options bad = eo;
    bad.seeds = {bit_config::uniform(s.size() + 1, 3, 3)};
    CHECK_THROWS_WITH_AS(evolve(s, sampler, b, bad, fitness), doctest::Contains("a seed has"),
                         mixq::error);
  }
}

TEST_CASE("Monte Carlo prior: samples near a low target where uniform draws never land") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet s(m, supernet_options{});
  sampler_options mc;
  mc.mc_samples = 20000;
  mc.max_tries = 50;
  config_sampler prior(s, budget_kind::bits, mc);
  search_budget b;
  b.value = 3.5;
  rng r(1);
  int in_band = 0;
  for (int i = 0; i < 20; ++i) in_band += prior.in_band(prior.sample(b, r), b);
  CHECK(in_band >= 15);
  CHECK(prior.draws() < 20 * 50);
  // Pareto front: cheaper-and-better points only.
  std::vector<frontier_point> p(4);
  p[0].accuracy = 0.5, p[0].bitops = 1;
  p[1].accuracy = 0.4, p[1].bitops = 2;  // dominated
  p[2].accuracy = 0.7, p[2].bitops = 3;
  p[3].accuracy = 0.7, p[3].bitops = 4;  // as good, more expensive
  const std::vector<size_t> f = front_by_bitops(p);
  REQUIRE(f.size() == 2);
  CHECK(f[0] == 0);
  CHECK(f[1] == 2);
}
