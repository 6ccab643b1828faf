// int_conv_forward: the inner convolutions' forward product on the integer
// kernels against the FP32 product of the same fake-quantized operands, for
// every quantizer family and width; what it declines.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/nn/nn.hpp"
#include "mixq/quant/quant.hpp"
#include "multiquant_test_util.hpp"

using namespace mixq;
using namespace mixq::quant;

namespace {

std::vector<nn::conv2d*> inner_convs(nn::resnet_cifar& m) {
  std::vector<nn::conv2d*> v;
  for (int s = 0; s < 3; ++s)
    for (int b = 0; b < m.blocks_per_stage(); ++b) {
      v.push_back(&m.block(s, b).conv1);
      v.push_back(&m.block(s, b).conv2);
    }
  return v;
}

// One training step's loss (forward and backward).
float train_step(nn::resnet_cifar& m, const tensor& x, const std::vector<int32_t>& labels) {
  m.zero_grad();
  tape t;
  var loss = softmax_cross_entropy(m.forward(t, t.input(x.view())), labels.data());
  backward(loss);
  return loss.value()[0];
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double scale = 1e-12, d = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, static_cast<double>(std::fabs(a[i])));
    d = std::max(d, static_cast<double>(std::fabs(a[i] - b[i])));
  }
  return d / scale;
}

// One quantized conv (quantizers on both hooks) and an integer-product
// override for it.
struct qconv {
  nn::conv2d cv;
  act_quantizer* aq;
  weight_quantizer* wq;
  std::shared_ptr<int_conv_forward> f;
  qconv(const qat_config& c, int64_t in, int64_t out, int64_t k, int64_t stride, rng& r,
        bool bias = false)
      : cv(in, out, k, nn::conv2d_options{stride, k / 2, bias}, r) {
    aq = static_cast<act_quantizer*>(
        &cv.set_input_transform("input_quant", quant::detail::make_act_quant(c, c.bits_a)));
    wq = static_cast<weight_quantizer*>(&cv.set_weight_transform(
        "weight_quant", quant::detail::make_weight_quant(c, c.bits_w, out, true)));
    f = std::make_shared<int_conv_forward>(cv, *aq, *wq, nullptr);
  }
  // Forward and backward with a fixed output gradient; returns y, and every
  // gradient (x, then the module's parameters) in grads.
  tensor step(const tensor& x, std::vector<std::vector<float>>* grads) {
    cv.zero_grad();
    tape t;
    var xv = t.input(x.view(), true);
    var y = cv.forward(t, xv);
    std::vector<float> seed(static_cast<size_t>(y.value().numel()));
    for (size_t i = 0; i < seed.size(); ++i) seed[i] = std::sin(0.37f * static_cast<float>(i));
    backward(y, seed.data());
    grads->clear();
    grads->emplace_back(xv.grad().data(), xv.grad().data() + xv.grad().numel());
    for (parameter* p : cv.parameters())
      grads->emplace_back(p->grad.data(), p->grad.data() + p->grad.numel());
    return tensor::from_view(y.value());
  }
};
}  // namespace

TEST_CASE("int_conv: the integer product equals the FP32 one for every family, width and shape") {
  struct family {
    weight_family w;
    act_family a;
    bool per_channel;
  };
  struct geom {
    int64_t in, out, k, stride;
    bool bias;  // the override's product plus the bias, added by conv2d
  };
  for (family fam : {family{weight_family::lsq, act_family::lsq, false},
                     family{weight_family::lsq, act_family::lsq, true},
                     family{weight_family::dorefa, act_family::pact, false}})
    for (geom ge : {geom{16, 16, 3, 1, false}, geom{16, 32, 3, 2, true}, geom{24, 8, 1, 2, false}})
      for (int b = 2; b <= 8; ++b) {
        qat_config c;
        c.weights = fam.w;
        c.acts = fam.a;
        c.per_channel = fam.per_channel;
        c.bits_w = b;
        c.bits_a = b == 2 ? 3 : b;  // one unequal pair
        rng r(static_cast<uint64_t>(100 + b));
        qconv q(c, ge.in, ge.out, ge.k, ge.stride, r, ge.bias);
        if (ge.bias) fill_normal(q.cv.bias.value.view(), r, 0.0f, 1.0f);
        tensor x({3, 8, 7, ge.in});
        fill_normal(x.view(), r, 0.3f, 1.0f);
        std::vector<std::vector<float>> g_fp, g_int;
        const tensor y_fp = q.step(x, &g_fp);  // also sets the data-initialised ranges
        q.cv.set_forward_override(q.f);
        const tensor y_int = q.step(x, &g_int);
        CAPTURE(name_of(fam.w));
        CAPTURE(fam.per_channel);
        CAPTURE(ge.k);
        CAPTURE(ge.stride);
        CAPTURE(b);
        REQUIRE(y_fp.shape() == y_int.shape());
        // DoReFa at 8 bits needs 9-bit codes: declined, the FP32 product runs.
        const bool declines = fam.w == weight_family::dorefa && b == 8;
        CHECK(q.f->accepted() == (declines ? 0 : 1));
        CHECK(q.f->declined() == (declines ? 1 : 0));
        std::vector<float> a(y_fp.data(), y_fp.data() + y_fp.numel());
        std::vector<float> v(y_int.data(), y_int.data() + y_int.numel());
        CHECK(max_rel_diff(a, v) < 1e-5);
        // The backward is the FP32 one on the same operands: identical.
        REQUIRE(g_fp.size() == g_int.size());
        for (size_t i = 0; i < g_fp.size(); ++i) CHECK(g_fp[i] == g_int[i]);
      }
}

TEST_CASE("int_conv: quantize() installs it on the inner convs; a ResNet step matches") {
  for (int variant = 0; variant < 3; ++variant) {
    qat_config c;
    if (variant > 0) {
      c.weights = weight_family::dorefa;
      c.acts = act_family::pact;
      c.bits_w = c.bits_a = 2;
    }
    if (variant == 2) c.residual_bits = 8;
    nn::resnet_cifar m(mixq_test::resnet8());
    quantize(m, c);
    CHECK(m.conv1.forward_override() == nullptr);  // the stem's input has a zero point
    const tensor x = mixq_test::random_images(4, 11, 32);
    const std::vector<int32_t> labels = {1, 7, 3, 0};
    {  // the data-initialised ranges (LSQ steps, PACT clips)
      tape t;
      no_grad_guard ng(t);
      m.forward(t, t.input(x.view()));
    }
    const float a = train_step(m, x, labels);
    for (nn::conv2d* cv : inner_convs(m)) {
      auto* f = dynamic_cast<int_conv_forward*>(cv->forward_override());
      REQUIRE(f != nullptr);
      CHECK(f->accepted() == 2);
      CHECK(f->declined() == 0);
      cv->set_forward_override(nullptr);
    }
    const float b = train_step(m, x, labels);
    // The products differ by float rounding, which can move a code of a later
    // quantizer across a rounding boundary: the loss stays close, not equal.
    CAPTURE(variant);
    CHECK(std::fabs(static_cast<double>(a) - b) < 1e-3 * std::fabs(b));
  }
}

TEST_CASE("int_conv: values off their grid and geometries the driver does not take") {
  qat_config c;
  c.per_channel = true;
  c.bits_w = 3;
  rng r(5);
  qconv q(c, 8, 12, 1, 2, r);
  tensor x({3, 6, 5, 8});
  fill_normal(x.view(), r, 0.5f, 1.0f);
  tensor xq, wq;
  {
    tape t;
    no_grad_guard ng(t);
    xq = tensor::from_view(q.aq->apply(t, t.input(x.view())).value());
    wq = tensor::from_view(q.wq->apply(t, t.input(q.cv.weight.value.view())).value());
  }
  tensor y({3, 3, 3, 12});
  CHECK(q.f->run(xq.view(), wq.view(), 2, 0, y.data()));
  // The raw input, a weight that is not the quantizer's output.
  CHECK_FALSE(q.f->run(x.view(), wq.view(), 2, 0, y.data()));
  CHECK_FALSE(q.f->run(xq.view(), q.cv.weight.value.view(), 2, 0, y.data()));
  // A 1x1 conv with padding, a stride of 3.
  CHECK_FALSE(q.f->run(xq.view(), wq.view(), 1, 1, y.data()));
  CHECK_FALSE(q.f->run(xq.view(), wq.view(), 3, 0, y.data()));
  CHECK(q.f->accepted() == 1);
  CHECK(q.f->declined() == 4);
}

TEST_CASE("int_conv: qat_config::forward = fp32 installs no override") {
  nn::resnet_cifar m(mixq_test::resnet8());
  qat_config c;
  c.forward = conv_forward::fp32;
  quantize(m, c);
  for (nn::conv2d* cv : inner_convs(m)) CHECK(cv->forward_override() == nullptr);
  CHECK(m.conv1.forward_override() == nullptr);
  CHECK(parse_conv_forward("fp32") == conv_forward::fp32);
  CHECK(parse_conv_forward("integer") == conv_forward::integer);
  CHECK_THROWS_WITH_AS(parse_conv_forward("int4"), doctest::Contains("expected fp32 or integer"),
                       mixq::error);
}
