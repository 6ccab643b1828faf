#pragma once
// quantize(resnet_cifar&, qat_config): installs fake quantizers on the hooks
// of an existing ResNet (nn/resnet.hpp), so that its forward computes what the
// integer runtime computes: "what trains is what deploys".
//
// Every tensor the integer runtime holds as integers is quantized here:
//   network input       8-bit affine grid (input_quant.hpp) on conv1's input
//                       hook (conv1's zero padding = the grid's zero point)
//   conv1 weight        8-bit, or the inner bits (first = same)
//   block input         activation quantizer on the block's conv1 input hook;
//                       the block's shortcut adds these same quantized values
//                       (nn::basic_block reads conv1's transformed input), as
//                       the runtime adds the residual codes in conv2's epilogue
//   residual stream     with c.residual_bits = R > 0: an R-bit quantizer of
//                       the activation family on the block's own input hook
//                       ("residual_quant"); the shortcut adds its output and
//                       conv1's input quantizer requantizes that at the
//                       activation bits (the runtime: a code table from R-bit
//                       to activation codes, deploy/export.hpp)
//   conv2 input         activation quantizer on conv2's input hook
//   conv weights        weight quantizer on each conv's weight hook
//   pool input          the last block's output, quantized at the classifier's
//                       activation bits (the runtime's last conv writes codes)
//   classifier          input (the pooled features) and weight quantizers, at
//                       8 bits or the inner bits (last = same)
// The inner convs' forward product runs on the integer kernels (int_conv.hpp,
// qat_config::forward); the stem (per-channel input steps with a zero point)
// and the classifier stay FP32 products of their quantized operands.
// Batch norm stays a float op between the convolution and the next quantizer;
// the runtime folds it into the per-channel requantization (exact on the int32
// accumulator, docs/quantization.md). ReLU needs no quantizer: the next
// activation grid clips at 0.
//
// Quantizers are adopted by the layers they serve under the names
// "input_quant", "weight_quant" (and "pool_quant" on the model), so their
// parameters train with the model's and their state is in its state dict.
// Load an FP32 model file into the model BEFORE calling quantize() (the
// quantizer keys do not exist in it); load a quantized checkpoint AFTER
// calling quantize() with the same configuration.
//
// Option-B (projection) shortcuts are refused: their output would need its
// own signed grid before the residual epilogue, which the kernels do not take.
//
// quantizer_factory: how each weight and activation quantizer is made (the
// network input's 8-bit grid excepted). Empty members make qat_config's
// families; a multi-bit supernet (quant/multiquant/) passes its own, so the
// traversal above (names, roles, MACs, the hooks) is written once.
#include <functional>
#include <memory>
#include <string>

#include "mixq/io/cifar10.hpp"
#include "mixq/nn/resnet.hpp"
#include "mixq/quant/config.hpp"
#include "mixq/quant/dorefa.hpp"
#include "mixq/quant/input_quant.hpp"
#include "mixq/quant/int_conv.hpp"
#include "mixq/quant/lsq.hpp"
#include "mixq/quant/pact.hpp"
#include "mixq/quant/qnet.hpp"

namespace mixq {
namespace quant {

namespace detail {
inline std::unique_ptr<weight_quantizer> make_weight_quant(const qat_config& c, int bits,
                                                           int64_t out_channels, bool has_bn) {
  if (c.weights == weight_family::lsq) {
    auto q = std::make_unique<lsq_weight>(bits, out_channels, c.per_channel, c.range, c.step_decay,
                                          c.lsq_init);
    q->set_band(c.step_band);
    return q;
  }
  dorefa_scale s = dorefa_scale::unit;
  if (c.dorefa == dorefa_scale_policy::max ||
      (c.dorefa == dorefa_scale_policy::automatic && !has_bn))
    s = dorefa_scale::max;
  return std::make_unique<dorefa_weight>(bits, s);
}
inline std::unique_ptr<act_quantizer> make_act_quant(const qat_config& c, int bits) {
  if (c.acts == act_family::lsq) return std::make_unique<lsq_act>(bits, c.step_decay, c.lsq_init);
  return std::make_unique<pact>(bits, c.pact);
}
inline int64_t conv_out(int64_t size, const nn::conv2d& cv) {
  const int64_t k = cv.weight.shape()[1];
  return (size + 2 * cv.pad() - k) / cv.stride() + 1;
}
}  // namespace detail

struct quantizer_factory {
  // bits: the width quantize() chose (qat_config and the edge policy);
  // has_bn: a batch norm follows the layer (every conv, not the classifier).
  std::function<std::unique_ptr<weight_quantizer>(int bits, int64_t out_channels, bool has_bn,
                                                  layer_role role)>
      weight;
  std::function<std::unique_ptr<act_quantizer>(int bits, layer_role role)> act;
};

// requires: m has not been quantized; c.validate() holds; m uses option-A
//           shortcuts; (image_h, image_w) is the input size used for MACs.
inline qnet quantize(nn::resnet_cifar& m, const qat_config& c, const quantizer_factory& f,
                     int64_t image_h = 32, int64_t image_w = 32) {
  c.validate();
  auto make_w = [&](int bits, int64_t out_channels, bool has_bn, layer_role role) {
    return f.weight ? f.weight(bits, out_channels, has_bn, role)
                    : detail::make_weight_quant(c, bits, out_channels, has_bn);
  };
  auto make_a = [&](int bits, layer_role role) {
    return f.act ? f.act(bits, role) : detail::make_act_quant(c, bits);
  };
  MIXQ_CHECK(m.conv1.input_transform() == nullptr && m.conv1.weight_transform() == nullptr,
             "quant::quantize: the model is already quantized");
  std::vector<float> mean = c.mean, stddev = c.stddev;
  if (mean.empty()) {
    mean.assign(io::cifar10::mean_rgb, io::cifar10::mean_rgb + 3);
    stddev.assign(io::cifar10::std_rgb, io::cifar10::std_rgb + 3);
  }
  MIXQ_CHECK(static_cast<int64_t>(mean.size()) == m.in_channels(), "quant::quantize: ", mean.size(),
             " normalisation channels for a model with ", m.in_channels(), " input channels");
  std::vector<qlayer> layers;
  auto edge_bits = [](edge_policy p, int inner) { return p == edge_policy::same ? inner : 8; };

  // conv1: the network input and the stem weight.
  int64_t h = image_h, w = image_w;
  {
    qlayer l;
    l.name = "conv1";
    l.role = layer_role::first;
    l.weight = &m.conv1.weight;
    l.out_channels = m.conv1.weight.shape()[0];
    l.weights = m.conv1.weight.numel();
    const int64_t oh = detail::conv_out(h, m.conv1), ow = detail::conv_out(w, m.conv1);
    l.macs = oh * ow * l.weights;
    if (c.first != edge_policy::fp32) {
      l.aq = static_cast<act_quantizer*>(
          &m.conv1.set_input_transform("input_quant", std::make_unique<input_quant>(mean, stddev)));
      l.wq = static_cast<weight_quantizer*>(&m.conv1.set_weight_transform(
          "weight_quant",
          make_w(edge_bits(c.first, c.bits_w), l.out_channels, true, layer_role::first)));
      l.learn_w = c.first == edge_policy::same;
    }
    layers.push_back(l);
    h = oh;
    w = ow;
  }
  // Blocks (their convs' forward product on the integer kernels unless
  // c.forward says fp32; one workspace for all).
  auto ws = std::make_shared<int_conv_workspace>();
  const int nb = m.blocks_per_stage();
  std::vector<act_quantizer*> streams;
  for (int s = 0; s < 3; ++s)
    for (int b = 0; b < nb; ++b) {
      nn::basic_block& blk = m.block(s, b);
      MIXQ_CHECK(!blk.has_projection(), "quant::quantize: layer", s + 1, ".", b,
                 " has an option-B (projection) shortcut; only option-A shortcuts are supported");
      const std::string base = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      if (c.residual_bits != 0)
        streams.push_back(static_cast<act_quantizer*>(&blk.set_input_transform(
            "residual_quant", detail::make_act_quant(c, c.residual_bits))));
      nn::conv2d* convs[2] = {&blk.conv1, &blk.conv2};
      for (int k = 0; k < 2; ++k) {
        nn::conv2d& cv = *convs[k];
        qlayer l;
        l.name = base + (k == 0 ? "conv1" : "conv2");
        l.role = layer_role::inner;
        l.weight = &cv.weight;
        l.out_channels = cv.weight.shape()[0];
        l.weights = cv.weight.numel();
        const int64_t oh = detail::conv_out(h, cv), ow = detail::conv_out(w, cv);
        l.macs = oh * ow * l.weights;
        l.aq = static_cast<act_quantizer*>(
            &cv.set_input_transform("input_quant", make_a(c.bits_a, layer_role::inner)));
        l.wq = static_cast<weight_quantizer*>(&cv.set_weight_transform(
            "weight_quant", make_w(c.bits_w, l.out_channels, true, layer_role::inner)));
        l.learn_w = l.learn_a = true;
        if (c.forward == conv_forward::integer)
          cv.set_forward_override(std::make_shared<int_conv_forward>(cv, *l.aq, *l.wq, ws));
        layers.push_back(l);
        h = oh;
        w = ow;
      }
    }
  // Pool input and classifier.
  {
    nn::linear& fc = m.fc();
    qlayer l;
    l.name = "fc";
    l.role = layer_role::last;
    l.weight = &fc.weight;
    l.out_channels = fc.weight.shape()[0];
    l.weights = fc.weight.numel();
    l.macs = l.weights;
    if (c.last != edge_policy::fp32) {
      const int ba = edge_bits(c.last, c.bits_a);
      auto* pool = static_cast<act_quantizer*>(
          &m.set_pool_input_transform("pool_quant", make_a(ba, layer_role::last)));
      l.aq = static_cast<act_quantizer*>(
          &fc.set_input_transform("input_quant", make_a(ba, layer_role::last)));
      l.a_follow.push_back(pool);
      l.wq = static_cast<weight_quantizer*>(&fc.set_weight_transform(
          "weight_quant",
          make_w(edge_bits(c.last, c.bits_w), l.out_channels, false, layer_role::last)));
      l.learn_w = l.learn_a = c.last == edge_policy::same;
    }
    layers.push_back(l);
  }
  return qnet(m, std::move(layers), std::move(streams));
}

// quantize() with qat_config's quantizer families.
inline qnet quantize(nn::resnet_cifar& m, const qat_config& c, int64_t image_h = 32,
                     int64_t image_w = 32) {
  return quantize(m, c, quantizer_factory{}, image_h, image_w);
}

}  // namespace quant
}  // namespace mixq
