// quant/model_file.hpp: a quantized model file rebuilds the same model (its
// configuration, every layer's bits, every quantizer's state), from a model
// file or a training checkpoint's model part; bad metadata is refused by name.
#include <doctest/doctest.h>

#include <cstdio>
#include <string>

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
  quant::qat_config b;  // DoReFa + PACT W2A3, last layer like the rest
  b.weights = quant::weight_family::dorefa;
  b.acts = quant::act_family::pact;
  b.bits_w = 2;
  b.bits_a = 3;
  b.last = quant::edge_policy::same;
  b.pact.scale_grad = true;
  b.pact.percentile = 0.99;
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
    CHECK(r.config.mean == c.mean);
    CHECK(r.config.stddev == c.stddev);
    REQUIRE(r.net.layers().size() == net.layers().size());
    CHECK(r.net.layers()[2].bits_w() == 3);
    CHECK(r.net.layers()[3].bits_a() == 5);
    const tensor x = random_images(4, 3);
    const tensor want = eval_logits(m, x);
    const tensor got = eval_logits(*r.model, x);
    for (std::int64_t i = 0; i < want.numel(); ++i) REQUIRE(got[i] == want[i]);
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
  const tensor x = random_images(2, 5);
  const tensor want = eval_logits(m, x);
  const tensor got = eval_logits(*r.model, x);
  for (std::int64_t i = 0; i < want.numel(); ++i) REQUIRE(got[i] == want[i]);
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
  CHECK_THROWS_WITH_AS(quant::load_quantized(rewrite("quant/bits_w", "9")),
                       doctest::Contains("'quant/bits_w' is '9', expected 2..8"), mixq::error);
  CHECK_THROWS_WITH_AS(quant::load_quantized(rewrite("quant/mean", "0.5,x,0.1")),
                       doctest::Contains("expected comma-separated numbers"), mixq::error);
  CHECK_THROWS_WITH_AS(quant::load_quantized(rewrite("arch", "resnet21")),
                       doctest::Contains("'arch' is 'resnet21'"), mixq::error);
  // another architecture's tensors
  CHECK_THROWS_AS(quant::load_quantized(rewrite("arch", "resnet14")), mixq::error);
}
