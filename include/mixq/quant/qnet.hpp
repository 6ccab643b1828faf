#pragma once
// qnet: the quantized layers of a model, in forward order, with their cost.
//
// A qnet is a non-owning index over quantizers that live in the model (each
// adopted by the layer it serves, nn/transform.hpp). One qlayer per conv or
// linear layer: its weight quantizer, the quantizer of its input, any other
// activation quantizers whose bits follow that input's (the features entering
// the pool follow the classifier's input), and its multiply-accumulates per
// image. Layers left in FP32 have no quantizers and count as 32 bits.
// Quantizers that belong to no layer's input (a block's residual stream at
// its own width, quant/resnet.hpp) are listed apart: they add no MACs, so no
// BitOPs, and AdaQAT leaves their bits alone.
//
// Cost (per image; docs/quantization.md):
//   BitOPs = sum over layers of MACs * b_w * b_a
//   bytes  = sum over layers of ceil(weights * b_w / 8) + 12 * out_channels
//            (per output channel: int32 bias, multiplier and shift of the
//            integer runtime's requantization); FP32 layers count 4 bytes
//            per weight and 8 per output channel (a folded scale and shift).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mixq/nn/module.hpp"
#include "mixq/quant/quantizer.hpp"

namespace mixq {
namespace quant {

enum class layer_role { first, inner, last };

struct qlayer {
  std::string name;  // the layer's module path ("layer1.0.conv1", "fc")
  layer_role role = layer_role::inner;
  parameter* weight = nullptr;
  weight_quantizer* wq = nullptr;         // nullptr: FP32 weights
  act_quantizer* aq = nullptr;            // nullptr: FP32 input
  std::vector<act_quantizer*> a_follow;   // quantizers whose bits follow aq
  bool learn_w = false, learn_a = false;  // AdaQAT may change these bits
  int64_t macs = 0;                       // per image
  int64_t weights = 0;
  int64_t out_channels = 0;

  int bits_w() const { return wq ? wq->bits() : 32; }
  int bits_a() const { return aq ? aq->bits() : 32; }
  double bitops() const {
    return static_cast<double>(macs) * bits_w() * static_cast<double>(bits_a());
  }
  int64_t bytes() const {
    if (!wq) return 4 * weights + 8 * out_channels;
    return (weights * bits_w() + 7) / 8 + 12 * out_channels;
  }
  void set_bits_a(int b) {
    aq->set_bits(b);
    for (act_quantizer* q : a_follow) q->set_bits(b);
  }
};

class qnet {
 public:
  qnet() = default;
  qnet(nn::module& root, std::vector<qlayer> layers, std::vector<act_quantizer*> streams = {})
      : root_(&root), layers_(std::move(layers)), streams_(std::move(streams)) {}

  nn::module& root() const {
    MIXQ_CHECK(root_, "qnet: empty");
    return *root_;
  }
  const std::vector<qlayer>& layers() const { return layers_; }
  std::vector<qlayer>& layers() { return layers_; }
  size_t size() const { return layers_.size(); }

  double bitops() const {
    double s = 0;
    for (const qlayer& l : layers_) s += l.bitops();
    return s;
  }
  int64_t bytes() const {
    int64_t s = 0;
    for (const qlayer& l : layers_) s += l.bytes();
    return s;
  }
  int64_t macs() const {
    int64_t s = 0;
    for (const qlayer& l : layers_) s += l.macs;
    return s;
  }
  // BitOPs of the learnable layers at 8/8 bits: AdaQAT's cost unit.
  double bitops_w8a8() const {
    double s = 0;
    for (const qlayer& l : layers_)
      if (l.learn_w || l.learn_a) s += 64.0 * static_cast<double>(l.macs);
    return s;
  }
  // Average bits of the quantized inner layers, weighted by weights (w) and
  // by MACs (a).
  double mean_bits_w() const {
    double s = 0, n = 0;
    for (const qlayer& l : layers_)
      if (l.wq && l.role == layer_role::inner) {
        s += static_cast<double>(l.weights) * l.bits_w();
        n += static_cast<double>(l.weights);
      }
    return n > 0 ? s / n : 0.0;
  }
  double mean_bits_a() const {
    double s = 0, n = 0;
    for (const qlayer& l : layers_)
      if (l.aq && l.role == layer_role::inner) {
        s += static_cast<double>(l.macs) * l.bits_a();
        n += static_cast<double>(l.macs);
      }
    return n > 0 ? s / n : 0.0;
  }
  // All quantizers (each once), for probes and resets.
  std::vector<quantizer*> quantizers() const {
    std::vector<quantizer*> out;
    for (const qlayer& l : layers_) {
      if (l.wq) out.push_back(l.wq);
      if (l.aq) out.push_back(l.aq);
      for (act_quantizer* q : l.a_follow) out.push_back(q);
    }
    for (act_quantizer* q : streams_) out.push_back(q);
    return out;
  }
  // The residual-stream quantizers (empty unless qat_config::residual_bits).
  const std::vector<act_quantizer*>& streams() const { return streams_; }

 private:
  nn::module* root_ = nullptr;
  std::vector<qlayer> layers_;
  std::vector<act_quantizer*> streams_;
};

}  // namespace quant
}  // namespace mixq
