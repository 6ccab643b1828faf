#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <string>

#include "mixq/autograd/autograd.hpp"
#include "mixq/nn/nn.hpp"

using namespace mixq;

namespace {
// Parameter count of a CIFAR ResNet derived from the architecture.
int64_t resnet_params(int n, bool option_b) {
  auto conv = [](int64_t in, int64_t out, int64_t k) { return in * out * k * k; };
  int64_t p = conv(3, 16, 3) + 2 * 16;
  const int64_t w[3] = {16, 32, 64};
  int64_t in = 16;
  for (int s = 0; s < 3; ++s)
    for (int b = 0; b < n; ++b) {
      p += conv(in, w[s], 3) + 2 * w[s] + conv(w[s], w[s], 3) + 2 * w[s];
      if (option_b && (in != w[s])) p += conv(in, w[s], 1) + 2 * w[s];
      in = w[s];
    }
  return p + 64 * 10 + 10;
}
}  // namespace

TEST_CASE("ResNet20 parameter count: 269,722 with option-A shortcuts, 272,474 with option B") {
  nn::resnet_cifar a;
  CHECK(a.depth() == 20);
  CHECK(a.num_parameters() == resnet_params(3, false));
  CHECK(a.num_parameters() == 269722);
  nn::resnet_options o;
  o.shortcut = nn::shortcut_kind::b;
  nn::resnet_cifar b(o);
  CHECK(b.num_parameters() == resnet_params(3, true));
  CHECK(b.num_parameters() == 272474);
  nn::resnet_options o56;
  o56.n = 9;
  CHECK(nn::resnet_cifar(o56).num_parameters() == resnet_params(9, false));
}

TEST_CASE("ResNet20 names, weight-decay flags and buffers follow the PyTorch layout") {
  nn::resnet_cifar m;
  std::set<std::string> names;
  int decayed = 0;
  for (parameter* p : m.parameters()) {
    CHECK(names.insert(p->name).second);
    const bool is_bn = p->name.find(".bn") != std::string::npos || p->name.rfind("bn1.", 0) == 0;
    const bool is_bias =
        p->name.size() >= 5 && p->name.compare(p->name.size() - 5, 5, ".bias") == 0;
    CHECK(p->weight_decay == !(is_bn || is_bias));
    decayed += p->weight_decay;
  }
  CHECK(decayed == 20);  // 19 conv weights + fc.weight
  CHECK(names.count("conv1.weight") == 1);
  CHECK(names.count("layer1.0.conv1.weight") == 1);
  CHECK(names.count("layer3.2.bn2.bias") == 1);
  CHECK(names.count("fc.weight") == 1);
  CHECK(names.count("fc.bias") == 1);
  auto bufs = m.named_buffers();
  CHECK(bufs.size() == 19 * 3);
  CHECK(bufs[0].first == "bn1.running_mean");
  CHECK(bufs[1].first == "bn1.running_var");
  CHECK(bufs[2].first == "bn1.num_batches_tracked");
  nn::state_dict sd = m.state_dict();
  CHECK(sd.size() == m.parameters().size() + bufs.size());
  CHECK(sd.front().first == "conv1.weight");
  CHECK(sd.front().second.shape() == shape({16, 3, 3, 3}));
  CHECK(sd.back().first == "fc.bias");
}

TEST_CASE("state dict round trip restores outputs; load checks names and shapes") {
  nn::small_cnn_options o;
  o.seed = 7;
  nn::small_cnn a(o);
  o.seed = 8;
  nn::small_cnn b(o);
  tensor x({2, 28, 28, 1});
  rng r(1);
  fill_uniform(x.view(), r, 0.0f, 1.0f);
  // A training forward changes the running stats of a; copy them over too.
  tape t;
  a.forward(t, t.input(x.view()));
  a.eval();
  b.eval();
  b.load_state_dict(a.state_dict());
  t.clear();
  var ya = a.forward(t, t.input(x.view()));
  var yb = b.forward(t, t.input(x.view()));
  for (int64_t i = 0; i < ya.value().numel(); ++i) CHECK(ya.value()[i] == yb.value()[i]);

  nn::state_dict sd = a.state_dict();
  nn::state_dict missing(sd.begin() + 1, sd.end());
  try {
    b.load_state_dict(missing);
    FAIL("expected mixq::error");
  } catch (const mixq::error& e) {
    std::string m = e.what();
    CHECK(m.find("conv1.weight") != std::string::npos);
    CHECK(m.find("[16, 3, 3, 1]") != std::string::npos);
  }
  nn::state_dict wrong = sd;
  wrong[2].second = tensor({3});
  try {
    b.load_state_dict(wrong);
    FAIL("expected mixq::error");
  } catch (const mixq::error& e) {
    std::string m = e.what();
    CHECK(m.find(wrong[2].first) != std::string::npos);
    CHECK(m.find("expected shape [16]") != std::string::npos);
  }
  nn::state_dict extra = sd;
  extra.emplace_back("nonsense", tensor({1}));
  CHECK_THROWS_AS(b.load_state_dict(extra), mixq::error);
}

TEST_CASE("train/eval: batch norm uses batch or running statistics") {
  nn::batch_norm2d bn(3);
  tensor x({4, 2, 2, 3});
  rng r(2);
  fill_uniform(x.view(), r, 5.0f, 6.0f);
  tape t;
  var y = bn.forward(t, t.input(x.view()));
  CHECK(bn.num_batches_tracked[0] == 1.0f);
  double m = 0;
  for (int64_t i = 0; i < y.value().numel(); ++i) m += y.value()[i];
  CHECK(std::fabs(m / static_cast<double>(y.value().numel())) < 1e-4);  // normalised
  bn.eval();
  CHECK_FALSE(bn.is_training());
  t.clear();
  var z = bn.forward(t, t.input(x.view()));
  CHECK(bn.num_batches_tracked[0] == 1.0f);
  // running mean ~ 0.1 * 5.5, running var ~ 0.9 + 0.1 * small: outputs far from 0
  CHECK(z.value()[0] > 3.0f);
}

TEST_CASE(
    "ResNet20 forward/backward at batch 4: shapes, finite loss, every parameter gets a gradient") {
  nn::resnet_cifar m;
  tensor x({4, 32, 32, 3});
  rng r(3);
  fill_normal(x.view(), r, 0.0f, 1.0f);
  const int32_t labels[4] = {0, 3, 9, 5};
  tape t;
  var logits = m.forward(t, t.input(x.view()));
  CHECK(logits.shape() == shape({4, 10}));
  var loss = softmax_cross_entropy(logits, labels, 0.1f);
  CHECK(std::isfinite(loss.value()[0]));
  CHECK(loss.value()[0] > 1.0f);
  m.zero_grad();
  backward(loss);
  for (parameter* p : m.parameters()) {
    double s = 0;
    for (int64_t i = 0; i < p->numel(); ++i) s += std::fabs(p->grad[i]);
    CAPTURE(p->name);
    CHECK(s > 0.0);
    CHECK(std::isfinite(s));
  }
}

TEST_CASE("small_cnn learns a synthetic task (loss falls, accuracy rises)") {
  // Class k: a bright 7x7 square in one of 4 positions, plus noise.
  const int n = 64;
  tensor x({n, 28, 28, 1});
  std::vector<int32_t> labels(n);
  rng r(4);
  for (int i = 0; i < n; ++i) {
    labels[static_cast<size_t>(i)] = static_cast<int32_t>(r.below(4));
    int oy = (labels[static_cast<size_t>(i)] / 2) * 14 + 3,
        ox = (labels[static_cast<size_t>(i)] % 2) * 14 + 3;
    for (int yy = 0; yy < 28; ++yy)
      for (int xx = 0; xx < 28; ++xx) {
        float v = r.normal(0.0f, 0.3f);
        if (yy >= oy && yy < oy + 7 && xx >= ox && xx < ox + 7) v += 1.0f;
        x[(i * 28 + yy) * 28 + xx] = v;
      }
  }
  nn::small_cnn_options o;
  o.classes = 4;
  nn::small_cnn m(o);
  tape t;
  float first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    t.clear();
    var loss = softmax_cross_entropy(m.forward(t, t.input(x.view())), labels.data());
    if (step == 0) first = loss.value()[0];
    last = loss.value()[0];
    m.zero_grad();
    backward(loss);
    for (parameter* p : m.parameters())
      for (int64_t i = 0; i < p->numel(); ++i) p->value[i] -= 0.05f * p->grad[i];
  }
  CHECK(last < 0.5f * first);
  m.eval();
  t.clear();
  no_grad_guard ng(t);
  var logits = m.forward(t, t.input(x.view()));
  CHECK(accuracy(logits.value(), labels.data()) > 0.9);
}

TEST_CASE("conv2d / linear modules: shapes, names, decay flags, init scale, forward shapes") {
  rng r(11);
  nn::conv2d c(5, 7, 3, nn::conv2d_options{2, 1, true}, r);
  auto ps = c.parameters();
  REQUIRE(ps.size() == 2);
  CHECK(ps[0]->name == "weight");
  CHECK(ps[0]->shape() == shape({7, 3, 3, 5}));
  CHECK(ps[0]->weight_decay);
  CHECK(ps[1]->name == "bias");
  CHECK_FALSE(ps[1]->weight_decay);
  double s2 = 0;
  for (int64_t i = 0; i < c.weight.numel(); ++i)
    s2 += static_cast<double>(c.weight.value[i]) * c.weight.value[i];
  CHECK(s2 / static_cast<double>(c.weight.numel()) == doctest::Approx(2.0 / 45.0).epsilon(0.35));
  nn::conv2d nb(5, 7, 1, nn::conv2d_options{}, r);
  CHECK(nb.parameters().size() == 1);
  nn::linear l(6, 4, true, r), l2(6, 4, false, r);
  CHECK(l.parameters().size() == 2);
  CHECK(l2.parameters().size() == 1);
  CHECK(l.bias.value.shape() == shape({4}));
  tensor x({3, 7, 9, 5});
  fill_uniform(x.view(), r, -1.0f, 1.0f);
  tape t;
  var y = c.forward(t, t.input(x.view()));
  CHECK(y.shape() == shape({3, 4, 5, 7}));
  tensor z({3, 6});
  CHECK(l.forward(t, t.input(z.view())).shape() == shape({3, 4}));
  CHECK_THROWS_AS(nn::conv2d(0, 7, 3, nn::conv2d_options{}, r), mixq::error);
}
