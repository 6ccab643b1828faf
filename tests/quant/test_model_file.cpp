// quant/model_file.hpp: a quantized model file rebuilds the same model (its
// configuration, every layer's bits, every quantizer's state), from a model
// file or a training checkpoint's model part; bad metadata is refused by name.
// Also the examples' quantized --init (examples/common/init_model.hpp), which
// loads such a file into a model quantized at other bits.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include "../../examples/common/init_model.hpp"
#include "../common/files.hpp"
#include "mixq/autograd/autograd.hpp"
#include "mixq/io/archive.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/nn/nn.hpp"
#include "mixq/quant/model_file.hpp"
#include "mixq/quant/quant.hpp"

using namespace mixq;

namespace {

tensor random_images(std::int64_t n, std::uint64_t seed) {
  tensor x({n, 32, 32, 3});
  rng r(seed);
  for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(r.normal());
  return x;
}

tensor eval_logits(nn::resnet_cifar& m, const tensor& x) {
  m.eval();
  tape t;
  no_grad_guard ng(t);
  return tensor::from_view(m.forward(t, t.input(x.view())).value());
}

// The two models' logits on n random images agree bit for bit.
void require_same_logits(nn::resnet_cifar& want_m, nn::resnet_cifar& got_m, std::int64_t n,
                         std::uint64_t seed) {
  const tensor x = random_images(n, seed);
  const tensor want = eval_logits(want_m, x);
  const tensor got = eval_logits(got_m, x);
  for (std::int64_t i = 0; i < want.numel(); ++i) REQUIRE(got[i] == want[i]);
}

// A ResNet8 quantized with c whose quantizers have seen data, with the bits
// of two layers moved away from the config's.
quant::qnet trained_like(nn::resnet_cifar& m, const quant::qat_config& c) {
  quant::qnet net = quant::quantize(m, c);
  const tensor x = random_images(8, 11);
  for (int k = 0; k < 2; ++k) {
    tape t;
    m.forward(t, t.input(x.view()));
  }
  net.layers()[2].wq->set_bits(3);
  net.layers()[3].set_bits_a(5);
  return net;
}

nn::resnet_options resnet8() {
  nn::resnet_options o;
  o.n = 1;
  o.seed = 7;
  return o;
}

}  // namespace

TEST_CASE("quantized model file: save and load rebuild the same model") {
  mixq_test::temp_dir dir;
  quant::qat_config a;  // LSQ W4A4 per channel, symmetric range
  a.per_channel = true;
  a.range = quant::weight_range::symmetric;
  a.mean = {0.5f, 0.25f, 0.125f};
  a.stddev = {0.2f, 0.3f, 0.4f};
  a.step_band = 4.0;
  quant::qat_config b;  // DoReFa + PACT W2A3, last layer like the rest
  b.weights = quant::weight_family::dorefa;
  b.acts = quant::act_family::pact;
  b.bits_w = 2;
  b.bits_a = 3;
  b.last = quant::edge_policy::same;
  b.pact.scale_grad = true;
  b.pact.percentile = 0.99;
  b.residual_bits = 6;
  for (const quant::qat_config& c : {a, b}) {
    nn::resnet_cifar m(resnet8());
    const quant::qnet net = trained_like(m, c);
    const std::string path = dir.path() + "/q.mixq";
    quant::save_quantized(path, m, c, {{"dataset", "random"}});
    const quant::loaded_model r = quant::load_quantized(path);
    CHECK(r.depth == 8);
    CHECK(r.config.weights == c.weights);
    CHECK(r.config.acts == c.acts);
    CHECK(r.config.per_channel == c.per_channel);
    CHECK(r.config.range == c.range);
    CHECK(r.config.last == c.last);
    CHECK(r.config.bits_w == c.bits_w);
    CHECK(r.config.bits_a == c.bits_a);
    CHECK(r.config.pact.scale_grad == c.pact.scale_grad);
    CHECK(r.config.pact.percentile == c.pact.percentile);
    CHECK(r.config.step_band == c.step_band);
    CHECK(r.config.residual_bits == c.residual_bits);
    CHECK(r.config.mean == c.mean);
    CHECK(r.config.stddev == c.stddev);
    REQUIRE(r.net.layers().size() == net.layers().size());
    CHECK(r.net.layers()[2].bits_w() == 3);
    CHECK(r.net.layers()[3].bits_a() == 5);
    require_same_logits(m, *r.model, 4, 3);
  }
}

TEST_CASE("quantized model file: a checkpoint's model part, training-only modules skipped") {
  mixq_test::temp_dir dir;
  quant::qat_config c;
  nn::resnet_cifar m(resnet8());
  trained_like(m, c);
  io::archive a;  // what a checkpoint of a quantized run holds
  a.set_meta("kind", "mixq-checkpoint");
  for (const auto& kv : quant::model_meta(m, c)) a.set_meta("method/" + kv.first, kv.second);
  nn::add_state(a, m);
  a.add("model/adaqat.nw", std::vector<float>{3.5f});
  const std::string path = dir.path() + "/checkpoint.mixq";
  io::save_archive(a, path);
  const quant::loaded_model r = quant::load_quantized(path);
  require_same_logits(m, *r.model, 2, 5);
}

TEST_CASE("quantized model file: a file from before the LSQ step band loads with the band off") {
  mixq_test::temp_dir dir;
  quant::qat_config c;
  c.per_channel = true;
  nn::resnet_cifar m(resnet8());
  const quant::qnet net = trained_like(m, c);
  // a step far outside the band: the band would change this model's output
  auto* wq = dynamic_cast<quant::lsq_weight*>(net.layers()[2].wq);
  REQUIRE(wq != nullptr);
  wq->step.value[0] *= 1000.0f;
  io::archive a;
  a.set_meta("kind", "mixq-model");
  for (const auto& kv : quant::model_meta(m, c))
    if (kv.first != "quant/step_band") a.set_meta(kv.first, kv.second);
  nn::add_state(a, m);
  const std::string path = dir.path() + "/old.mixq";
  io::save_archive(a, path);
  const quant::loaded_model r = quant::load_quantized(path);
  CHECK(r.config.step_band == 0.0);
  wq->set_band(0.0);  // the model as it was trained
  require_same_logits(m, *r.model, 2, 9);
  wq->set_band(16.0);  // and the band does change it
  const tensor x = random_images(2, 9);
  const tensor want = eval_logits(*r.model, x);
  const tensor banded = eval_logits(m, x);
  bool differs = false;
  for (std::int64_t i = 0; i < want.numel(); ++i) differs = differs || banded[i] != want[i];
  CHECK(differs);
}

TEST_CASE("quantized model file: missing or bad metadata is named") {
  mixq_test::temp_dir dir;
  nn::resnet_cifar fp(resnet8());
  const std::string plain = dir.path() + "/fp32.mixq";
  nn::save_model(plain, fp, {{"arch", "resnet8"}});
  CHECK_THROWS_WITH_AS(quant::load_quantized(plain),
                       doctest::Contains("'quant/weights' is missing"), mixq::error);

  quant::qat_config c;
  nn::resnet_cifar m(resnet8());
  trained_like(m, c);
  auto rewrite = [&](const std::string& key, const std::string& value) {
    const std::string p = dir.path() + "/bad.mixq";
    quant::save_quantized(p, m, c, {{key, value}});
    return p;
  };
  CHECK_THROWS_WITH_AS(quant::load_quantized(rewrite("quant/acts", "relu")),
                       doctest::Contains("'quant/acts' is 'relu', expected one of lsq, pact"),
                       mixq::error);
  CHECK_THROWS_WITH_AS(quant::load_quantized(rewrite("quant/step_band", "0.5")),
                       doctest::Contains("'quant/step_band' is '0.5', expected 0 or one number"),
                       mixq::error);
  CHECK_THROWS_WITH_AS(quant::load_quantized(rewrite("quant/residual_bits", "1")),
                       doctest::Contains("'quant/residual_bits' is '1', expected 0 or 2..8"),
                       mixq::error);
  CHECK_THROWS_WITH_AS(quant::load_quantized(rewrite("quant/bits_w", "9")),
                       doctest::Contains("'quant/bits_w' is '9', expected 2..8"), mixq::error);
  CHECK_THROWS_WITH_AS(quant::load_quantized(rewrite("quant/mean", "0.5,x,0.1")),
                       doctest::Contains("expected comma-separated numbers"), mixq::error);
  CHECK_THROWS_WITH_AS(quant::load_quantized(rewrite("arch", "resnet21")),
                       doctest::Contains("'arch' is 'resnet21'"), mixq::error);
  // another architecture's tensors
  CHECK_THROWS_AS(quant::load_quantized(rewrite("arch", "resnet14")), mixq::error);
}

TEST_CASE("quantized --init: a W4A4 model loads into a W2A2 run, bits and clipping span kept") {
  mixq_test::temp_dir dir;
  quant::qat_config c4;
  c4.per_channel = true;
  nn::resnet_cifar m4(resnet8());
  const quant::qnet net4 = trained_like(m4, c4);
  const std::string path = dir.path() + "/w4a4.mixq";
  quant::save_quantized(path, m4, c4);
  CHECK(examples::is_quantized_model_file(path));

  quant::qat_config c2 = c4;
  c2.bits_w = c2.bits_a = 2;
  for (const bool keep : {true, false}) {
    nn::resnet_cifar m2(resnet8());
    const quant::qnet net2 = quant::quantize(m2, c2);
    examples::load_quantized_init(path, m2, net2, c2, 8, keep);
    // The weights and batch norm are the file's.
    const auto sd2 = m2.state_dict(), sd4 = m4.state_dict();
    REQUIRE(sd2.size() == sd4.size());
    for (size_t e = 0; e < sd2.size(); ++e) {
      REQUIRE(sd2[e].first == sd4[e].first);
      if (sd2[e].first.find("quant") != std::string::npos) continue;
      for (std::int64_t i = 0; i < sd4[e].second.numel(); ++i)
        REQUIRE(sd2[e].second[i] == sd4[e].second[i]);
    }
    REQUIRE(net2.layers().size() == net4.layers().size());
    int act_steps = 0;
    for (size_t l = 0; l < net2.layers().size(); ++l) {
      const quant::qlayer& a = net2.layers()[l];
      const quant::qlayer& b = net4.layers()[l];
      INFO("layer " << a.name << " keep " << keep);
      // The run's bits, not the file's (the file's layer 2 is at 3 bits).
      CHECK(a.bits_w() == (a.role == quant::layer_role::inner ? 2 : 8));
      CHECK(a.bits_a() == (a.role == quant::layer_role::inner ? 2 : 8));
      auto* wa = dynamic_cast<quant::lsq_weight*>(a.wq);
      auto* wb = dynamic_cast<quant::lsq_weight*>(b.wq);
      REQUIRE(wa != nullptr);
      REQUIRE(wb != nullptr);
      CHECK(wa->ready() == keep);
      if (!keep) continue;
      // Same clipping span: s_2 (2^2 - 1) == s_bw (2^bw - 1), bw the file's width.
      const int bw = b.bits_w(), ba = b.bits_a();
      for (std::int64_t ch = 0; ch < wa->step.numel(); ++ch)
        CHECK(wa->step_at(ch, a.bits_w()) * quant::grid_steps(a.bits_w()) ==
              doctest::Approx(wb->step_at(ch, bw) * quant::grid_steps(bw)).epsilon(1e-6));
      // LSQ activation steps (the first layer's input is the fixed 8-bit image grid).
      auto* xa = dynamic_cast<quant::lsq_act*>(a.aq);
      auto* xb = dynamic_cast<quant::lsq_act*>(b.aq);
      REQUIRE((xa == nullptr) == (xb == nullptr));
      if (!xa) continue;
      ++act_steps;
      CHECK(xa->step_at(a.bits_a()) * quant::grid_steps(a.bits_a()) ==
            doctest::Approx(xb->step_at(ba) * quant::grid_steps(ba)).epsilon(1e-6));
    }
    if (keep) CHECK(act_steps + 1 == static_cast<int>(net2.layers().size()));
  }
}

TEST_CASE("quantized --init: other quantizers, another depth or an FP32 file are refused") {
  mixq_test::temp_dir dir;
  quant::qat_config c;  // LSQ per tensor
  nn::resnet_cifar m(resnet8());
  trained_like(m, c);
  const std::string path = dir.path() + "/w4a4.mixq";
  quant::save_quantized(path, m, c);
  auto load_into = [&](const quant::qat_config& run, long long depth) {
    nn::resnet_cifar r(resnet8());
    const quant::qnet net = quant::quantize(r, run);
    examples::load_quantized_init(path, r, net, run, depth, true);
  };
  quant::qat_config pc = c;
  pc.per_channel = true;
  CHECK_THROWS_WITH_AS(load_into(pc, 8), doctest::Contains("weight steps per tensor"), mixq::error);
  quant::qat_config pact = c;
  pact.acts = quant::act_family::pact;
  CHECK_THROWS_WITH_AS(load_into(pact, 8), doctest::Contains("activations quantized with lsq"),
                       mixq::error);
  quant::qat_config same = c;
  same.last = quant::edge_policy::same;
  CHECK_THROWS_WITH_AS(load_into(same, 8), doctest::Contains("first/last layers"), mixq::error);
  quant::qat_config stream = c;
  stream.residual_bits = 8;
  CHECK_THROWS_WITH_AS(load_into(stream, 8),
                       doctest::Contains("residual stream at the activation bits, but this run"),
                       mixq::error);
  CHECK_THROWS_WITH_AS(load_into(c, 20), doctest::Contains("but this run trains 'resnet20'"),
                       mixq::error);
  nn::resnet_cifar fp(resnet8());
  const std::string plain = dir.path() + "/fp32.mixq";
  nn::save_model(plain, fp, {{"arch", "resnet8"}, {"method", "fp32"}});
  CHECK_FALSE(examples::is_quantized_model_file(plain));
  // An FP32 run refuses the quantized file.
  nn::resnet_cifar r(resnet8());
  CHECK_THROWS_WITH_AS(examples::load_fp32_init(path, r, 8),
                       doctest::Contains("a quantized model; --init takes an FP32"), mixq::error);
}
