// quantize(resnet_cifar): which tensors get quantizers, the cost accounting
// against papers.md C.4, FP32 model files loading before quantize(), state
// round trips, refusals.
#include <doctest/doctest.h>

#include <algorithm>

#include <cmath>
#include <memory>
#include <string>

#include "mixq/autograd/autograd.hpp"
#include "mixq/nn/nn.hpp"
#include "mixq/quant/quant.hpp"

using namespace mixq;
using namespace mixq::quant;

namespace {
tensor images(int64_t n, uint64_t seed) {
  tensor x({n, 32, 32, 3});
  rng r(seed);
  fill_normal(x.view(), r, 0.0f, 1.0f);
  return x;
}
tensor logits_of(nn::resnet_cifar& m, const tensor& x) {
  tape t;
  no_grad_guard ng(t);
  return tensor::from_view(m.forward(t, t.input(x.view())).value());
}
bool has_key(nn::module& m, const std::string& k) {
  for (auto& e : m.state_dict())
    if (e.first == k) return true;
  return false;
}
}  // namespace

TEST_CASE("quantize(ResNet20): layers, quantizers, MACs and BitOPs as in papers.md C.4") {
  nn::resnet_cifar m;
  qat_config c;  // W4A4, first/last 8-bit
  qnet net = quantize(m, c);
  REQUIRE(net.size() == 20);
  CHECK(net.layers().front().name == "conv1");
  CHECK(net.layers()[1].name == "layer1.0.conv1");
  CHECK(net.layers().back().name == "fc");
  CHECK(net.macs() == 40550400 + 640);
  CHECK(net.layers().front().macs == 442368);
  // First layer: 8-bit input grid and 8-bit weights; inner W4A4; classifier W8A8.
  CHECK(std::string(net.layers().front().aq->family()) == "input8");
  CHECK(net.layers().front().bits_w() == 8);
  for (size_t i = 1; i + 1 < net.size(); ++i) {
    CHECK(net.layers()[i].bits_w() == 4);
    CHECK(net.layers()[i].bits_a() == 4);
  }
  CHECK(net.layers().back().bits_w() == 8);
  CHECK(net.layers().back().bits_a() == 8);
  CHECK(net.layers().back().a_follow.size() == 1);  // the pool input follows the fc input
  // papers.md C.4: inner W4A4 + first/FC at W8A8 -> 0.670 G BitOPs.
  CHECK(net.bitops() == doctest::Approx(0.670e9).epsilon(0.002));
  for (size_t i = 1; i + 1 < net.size(); ++i) {
    net.layers()[i].wq->set_bits(2);
    net.layers()[i].set_bits_a(2);
  }
  CHECK(net.bitops() == doctest::Approx(0.189e9).epsilon(0.005));
  // State-dict names of the hooks.
  CHECK(has_key(m, "conv1.input_quant.scale"));
  CHECK(has_key(m, "layer1.0.conv1.input_quant.step"));
  CHECK(has_key(m, "layer3.2.conv2.weight_quant.step"));
  CHECK(has_key(m, "pool_quant.step"));
  CHECK(has_key(m, "fc.weight_quant.bits"));
  CHECK(!cost_table(net).empty());
}

TEST_CASE("quantize: an FP32 model loads first; fp32 edges; the forward follows the quantizers") {
  nn::resnet_cifar fp;
  const nn::state_dict sd = fp.state_dict();
  const tensor x = images(2, 3);
  const tensor ref = logits_of(fp, x);
  for (edge_policy e : {edge_policy::fp32, edge_policy::int8, edge_policy::same}) {
    nn::resnet_cifar m;
    m.load_state_dict(sd);  // the FP32 model file, before quantize()
    qat_config c;
    c.bits_w = c.bits_a = 8;
    c.first = c.last = e;
    c.weights = weight_family::dorefa;
    c.acts = act_family::pact;
    c.pact.init = 30.0f;  // wide clip: 8-bit PACT stays close to FP32 here
    qnet net = quantize(m, c);
    CHECK((net.layers().front().wq == nullptr) == (e == edge_policy::fp32));
    CHECK((net.layers().back().aq == nullptr) == (e == edge_policy::fp32));
    m.eval();
    const tensor q = logits_of(m, x);
    bool differs = false;
    for (int64_t i = 0; i < q.numel(); ++i) {
      CHECK(std::isfinite(q[i]));
      differs = differs || q[i] != ref[i];
    }
    CHECK(differs);  // quantizers are active
  }
}

TEST_CASE("quantize: a quantized model's state round-trips and reproduces its forward") {
  nn::resnet_cifar a;
  qat_config c;
  c.per_channel = true;
  quantize(a, c);
  const tensor x = images(3, 9);
  {  // one training forward initialises the LSQ steps
    tape t;
    a.forward(t, t.input(x.view()));
  }
  a.eval();
  const tensor la = logits_of(a, x);
  nn::resnet_cifar b;
  quantize(b, c);
  b.load_state_dict(a.state_dict());
  b.eval();
  const tensor lb = logits_of(b, x);
  for (int64_t i = 0; i < la.numel(); ++i) CHECK(la[i] == lb[i]);
  // The unquantized model does not accept the quantized state.
  nn::resnet_cifar plain;
  CHECK_THROWS_WITH_AS(plain.load_state_dict(a.state_dict()), doctest::Contains("unexpected key"),
                       mixq::error);
}

TEST_CASE("quantize refuses option-B shortcuts and a second quantize()") {
  nn::resnet_options o;
  o.shortcut = nn::shortcut_kind::b;
  nn::resnet_cifar b(o);
  CHECK_THROWS_WITH_AS(quantize(b, qat_config{}), doctest::Contains("option-B"), mixq::error);
  nn::resnet_cifar m;
  quantize(m, qat_config{});
  CHECK_THROWS_WITH_AS(quantize(m, qat_config{}), doctest::Contains("already quantized"),
                       mixq::error);
}

TEST_CASE("the block shortcut adds the quantized block input") {
  // With a 2-bit activation grid on every block input, the residual of block
  // layer1.0 must be the quantized input: check through the hook that the
  // values conv1 reads are exactly what reaches the shortcut, by comparing
  // the block output with a manual recomputation.
  rng r(4);
  nn::basic_block blk(16, 16, 1, nn::shortcut_kind::a, r);
  auto q = std::make_unique<lsq_act>(2);
  q->set_step(0.5f);
  blk.conv1.set_input_transform("input_quant", std::move(q));
  tensor x({1, 4, 4, 16});
  fill_uniform(x.view(), r, 0.0f, 2.0f);
  tape t;
  no_grad_guard ng(t);
  var y = blk.forward(t, t.input(x.view()));
  tensor xq(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i)
    xq[i] = 0.5f * std::min(3.0f, std::nearbyint(x[i] / 0.5f));
  var h = blk.bn1.forward(t, blk.conv1.forward(t, t.input(xq.view())), true);
  // conv1's hook is idempotent on values already on its grid.
  h = blk.bn2.forward(t, blk.conv2.forward(t, h));
  var ref = add_relu(h, t.input(xq.view()));
  for (int64_t i = 0; i < y.value().numel(); ++i) CHECK(y.value()[i] == ref.value()[i]);
}

TEST_CASE("a block input hook: the shortcut adds its output, conv1 reads that requantized") {
  // The residual stream at 8 bits (step 0.1), conv1's input at 2 bits (step
  // 0.5): the block output must equal the manual recomputation, for an
  // identity block and a stride-2 block with an option-A shortcut.
  for (int64_t stride : {1, 2}) {
    CAPTURE(stride);
    const int64_t out = stride == 1 ? 16 : 32;
    rng r(5);
    nn::basic_block blk(16, out, stride, nn::shortcut_kind::a, r);
    auto q2 = std::make_unique<lsq_act>(2);
    q2->set_step(0.5f);
    blk.conv1.set_input_transform("input_quant", std::move(q2));
    auto q8 = std::make_unique<lsq_act>(8);
    q8->set_step(0.1f);
    blk.set_input_transform("residual_quant", std::move(q8));
    tensor x({1, 4, 4, 16});
    fill_uniform(x.view(), r, 0.0f, 2.0f);
    tape t;
    no_grad_guard ng(t);
    var y = blk.forward(t, t.input(x.view()));
    tensor x8(x.shape()), x2(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
      x8[i] = 0.1f * std::min(255.0f, std::nearbyint(x[i] * (1.0f / 0.1f)));
      x2[i] = 0.5f * std::min(3.0f, std::nearbyint(x8[i] * (1.0f / 0.5f)));
    }
    var h = blk.bn1.forward(t, blk.conv1.forward(t, t.input(x2.view())), true);
    h = blk.bn2.forward(t, blk.conv2.forward(t, h));
    var res = t.input(x8.view());
    if (stride != 1) res = shortcut_a(res, out, stride);
    var ref = add_relu(h, res);
    int64_t coarse = 0;  // the 2-bit and 8-bit values differ: the test sees which one is added
    for (int64_t i = 0; i < x.numel(); ++i) coarse += x2[i] != x8[i];
    CHECK(coarse > x.numel() / 2);
    REQUIRE(y.value().numel() == ref.value().numel());
    for (int64_t i = 0; i < y.value().numel(); ++i) CHECK(y.value()[i] == ref.value()[i]);
  }
}

TEST_CASE("quantize with residual bits: one stream quantizer per block, in the state, no BitOPs") {
  qat_config c;
  c.bits_w = c.bits_a = 2;
  c.residual_bits = 8;
  nn::resnet_cifar a;
  const qnet net = quantize(a, c);
  REQUIRE(net.streams().size() == 9);
  for (act_quantizer* q : net.streams()) CHECK(q->bits() == 8);
  CHECK(net.quantizers().size() == 2 * net.size() + 1 + 9);  // + pool_quant + streams
  const auto sd = a.state_dict();
  CHECK(std::count_if(sd.begin(), sd.end(), [](const auto& kv) {
          return kv.first == "layer2.0.residual_quant.step";
        }) == 1);
  nn::resnet_cifar plain_m;
  qat_config d = c;
  d.residual_bits = 0;
  CHECK(net.bitops() == quantize(plain_m, d).bitops());
  const tensor x = images(2, 3);
  {
    tape t;
    a.forward(t, t.input(x.view()));
  }
  a.eval();
  nn::resnet_cifar b;
  quantize(b, c);
  b.load_state_dict(a.state_dict());
  b.eval();
  const tensor la = logits_of(a, x), lb = logits_of(b, x);
  for (int64_t i = 0; i < la.numel(); ++i) CHECK(la[i] == lb[i]);
  // A model quantized without the stream does not take this state.
  CHECK_THROWS_AS(plain_m.load_state_dict(a.state_dict()), mixq::error);
  c.residual_bits = 1;
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("residual bits = 1"), mixq::error);
  c.residual_bits = 9;
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("residual bits = 9"), mixq::error);
}
