#pragma once
// supernet: a CIFAR ResNet as a MultiQuant multi-bit supernet, one set of
// FP32 weights sliced to any uniform or per-layer bit-width
// (docs/multiquant.md).
//
// State. quantize() (quant/resnet.hpp) installs the quantizers with a factory
// that puts a switchable quantizer (switchable.hpp: one ordinary quantizer per
// width 2..8, each with its own LSQ step or PACT clip) on every hook whose
// width the slice chooses: the inner convolutions' weights and inputs, and the
// first conv's weight and the classifier (its input and the pool input that
// follows it) when their edge policy is `same`. Everything else is the fixed
// QAT layer of quant/: the 8-bit network input, 8-bit or FP32 edges. The FP32
// weights and batch norm are shared by every slice. With per_bit_bn, each
// batch norm after a switchable convolution gets seven more batch_norm2d
// modules ("bn1.bits2" .. "bn1.bits8", copies of the shared one when the
// supernet is built), selected through batch_norm2d::route_to by that
// convolution's weight bits (bn_by::weight) or its input's activation bits
// (bn_by::act: the width that costs a slice most, docs/multiquant.md 2).
//
// set_bits(config) stores one integer per switchable quantizer and one route
// per per-bit batch norm: no allocation, no copy of any weight. Every state
// the slices learn is in the model's state dict (checkpoints, model files);
// the current widths too (each switchable quantizer's "bits" buffer), and
// sync() re-applies them, batch-norm routes included, after a state load.
//
// Layers. The searchable layers are the qnet layers with a switchable
// quantizer, in forward order; a bit_config has one (w, a) pair per
// searchable layer. A part of a searchable layer that does not switch (the
// first conv's 8-bit input under `same`) must be given at its fixed width.
//
// Cost of a configuration, without touching the model (qnet.hpp's
// definitions): BitOPs = sum MACs * b_w * b_a over all layers; mean bits over
// the inner layers, weights weighted by parameter count, activations by MACs.
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/nn/resnet.hpp"
#include "mixq/quant/multiquant/bit_config.hpp"
#include "mixq/quant/multiquant/switchable.hpp"
#include "mixq/quant/resnet.hpp"

namespace mixq {
namespace quant {

struct supernet_options {
  // Quantizer families, per-channel steps, code range and the first / last
  // layer policy (bits_w / bits_a: the widths the supernet starts at).
  qat_config quant;
  bool per_bit_bn = false;  // one batch norm per width after switchable convs
  enum class bn_by { weight, act };
  bn_by per_bit_bn_by = bn_by::weight;  // which width of the conv selects its batch norm

  supernet_options() { quant.bits_w = quant.bits_a = max_bits; }
};

class supernet {
 public:
  struct layer {
    size_t index = 0;  // in net().layers()
    switchable_weight* w = nullptr;
    switchable_act* a = nullptr;     // its followers (pool input) are switchable too
    nn::batch_norm2d* bn = nullptr;  // the batch norm after the layer (none: the classifier)
    std::array<nn::batch_norm2d*, max_bits - min_bits + 1> bn_bits{};  // per_bit_bn
  };

  // requires: m not quantized, with option-A shortcuts; an FP32 model file,
  //           if any, already loaded into m; o.quant.validate() holds.
  supernet(nn::resnet_cifar& m, const supernet_options& o, int64_t image_h = 32,
           int64_t image_w = 32)
      : model_(&m), opt_(o) {
    const qat_config c = o.quant;
    MIXQ_CHECK(c.residual_bits == 0, "multiquant supernet: residual bits ", c.residual_bits,
               ", expected 0 (a residual stream of its own width is a fixed-bit option)");
    auto switches = [c](layer_role r) {
      return r == layer_role::inner || (r == layer_role::first && c.first == edge_policy::same) ||
             (r == layer_role::last && c.last == edge_policy::same);
    };
    quantizer_factory f;
    f.weight = [c, switches](int bits, int64_t out, bool has_bn,
                             layer_role r) -> std::unique_ptr<weight_quantizer> {
      if (!switches(r)) return detail::make_weight_quant(c, bits, out, has_bn);
      return std::make_unique<switchable_weight>(
          bits, [&](int b) { return detail::make_weight_quant(c, b, out, has_bn); });
    };
    f.act = [c, switches](int bits, layer_role r) -> std::unique_ptr<act_quantizer> {
      if (!switches(r)) return detail::make_act_quant(c, bits);
      return std::make_unique<switchable_act>(bits,
                                              [&](int b) { return detail::make_act_quant(c, b); });
    };
    net_ = quantize(m, c, f, image_h, image_w);

    const int nb = m.blocks_per_stage();
    for (size_t i = 0; i < net_.size(); ++i) {
      qlayer& q = net_.layers()[i];
      layer l;
      l.index = i;
      l.w = dynamic_cast<switchable_weight*>(q.wq);
      l.a = dynamic_cast<switchable_act*>(q.aq);
      if (!l.w && !l.a) continue;
      if (i == 0) {
        l.bn = &m.bn1;
      } else if (i + 1 < net_.size()) {
        const int k = static_cast<int>(i - 1);
        nn::basic_block& blk = m.block(k / 2 / nb, (k / 2) % nb);
        l.bn = k % 2 == 0 ? &blk.bn1 : &blk.bn2;
      }
      if (o.per_bit_bn && l.bn && (by_act() ? l.a != nullptr : l.w != nullptr)) {
        nn::batch_norm2d& shared = *l.bn;
        const int64_t ch = shared.weight.numel();
        for (int b = min_bits; b <= max_bits; ++b) {
          auto bn = std::make_unique<nn::batch_norm2d>(ch, shared.momentum(), shared.eps());
          copy_batch_norm(shared, *bn);
          l.bn_bits[static_cast<size_t>(b - min_bits)] =
              &shared.adopt("bits" + std::to_string(b), std::move(bn));
        }
      }
      names_.push_back(q.name);
      layers_.push_back(l);
    }
    MIXQ_CHECK(!layers_.empty(), "supernet: no searchable layer");
    sync();
  }
  supernet(const supernet&) = delete;
  supernet& operator=(const supernet&) = delete;

  nn::resnet_cifar& model() const { return *model_; }
  const qnet& net() const { return net_; }
  const supernet_options& options() const { return opt_; }
  size_t size() const { return layers_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  const layer& at(size_t i) const { return layers_.at(i); }

  // Whether entry i's weight / activation width is free (else fixed_*).
  bool free_w(size_t i) const { return layers_[i].w != nullptr; }
  bool free_a(size_t i) const { return layers_[i].a != nullptr; }
  int fixed_w(size_t i) const { return net_.layers()[layers_[i].index].bits_w(); }
  int fixed_a(size_t i) const { return net_.layers()[layers_[i].index].bits_a(); }

  // The uniform slice W bw / A ba (fixed parts at their widths).
  bit_config uniform(int bw, int ba) const {
    check_bits(bw, "uniform slice weight bits");
    check_bits(ba, "uniform slice activation bits");
    bit_config c = bit_config::uniform(size(), bw, ba);
    for (size_t i = 0; i < size(); ++i) {
      if (!free_w(i)) c.w[i] = fixed_w(i);
      if (!free_a(i)) c.a[i] = fixed_a(i);
    }
    return c;
  }
  bit_config uniform(int b) const { return uniform(b, b); }

  // requires: c has one in-range pair per searchable layer, fixed parts at
  //           their widths. Allocates nothing (the checks format a message
  //           only when they fail).
  void set_bits(const bit_config& c) {
    check(c, "supernet::set_bits");
    for (size_t i = 0; i < layers_.size(); ++i) {
      const layer& l = layers_[i];
      if (l.w) l.w->set_bits(c.w[i]);
      if (l.a) net_.layers()[l.index].set_bits_a(c.a[i]);
      if (l.bn && l.bn_bits[0])
        l.bn->route_to(l.bn_bits[static_cast<size_t>((by_act() ? c.a[i] : c.w[i]) - min_bits)]);
    }
  }
  void set_uniform(int b) { set_bits(uniform(b)); }
  // Re-applies the widths held in the quantizers' buffers (after a state load).
  void sync() { set_bits(current()); }

  // The configuration the quantizers hold now.
  bit_config current() const {
    bit_config c;
    for (size_t i = 0; i < layers_.size(); ++i) {
      c.w.push_back(fixed_w(i));
      c.a.push_back(fixed_a(i));
    }
    return c;
  }

  // requires: c fits this supernet (see set_bits); `what` names the source.
  void check(const bit_config& c, const char* what) const {
    c.validate(size(), what);
    for (size_t i = 0; i < size(); ++i) {
      MIXQ_CHECK(free_w(i) || c.w[i] == fixed_w(i), what, ": layer '", names_[i], "' weight bits ",
                 c.w[i], ", but its weights are fixed at ", fixed_w(i), " bits");
      MIXQ_CHECK(free_a(i) || c.a[i] == fixed_a(i), what, ": layer '", names_[i],
                 "' activation bits ", c.a[i], ", but its input is fixed at ", fixed_a(i), " bits");
    }
  }

  // ---- cost of a configuration (the model is not touched) ----
  double bitops(const bit_config& c) const {
    return sum_layers(
        c,
        [](const qlayer& l, int bw, int ba) {
          return static_cast<double>(l.macs) * bw * static_cast<double>(ba);
        },
        [](const qlayer& l) { return l.bitops(); });
  }
  // Packed model bytes (qnet.hpp's rule).
  int64_t bytes(const bit_config& c) const {
    return static_cast<int64_t>(sum_layers(
        c,
        [](const qlayer& l, int bw, int) {
          return static_cast<double>((l.weights * bw + 7) / 8 + 12 * l.out_channels);
        },
        [](const qlayer& l) { return static_cast<double>(l.bytes()); }));
  }
  double mean_bits_w(const bit_config& c) const { return mean_bits(c, true); }
  double mean_bits_a(const bit_config& c) const { return mean_bits(c, false); }

 private:
  // sum over all layers: searchable(layer, b_w, b_a) at the configuration's
  // widths, fixed(layer) for the others (their own widths, FP32 included).
  template <class F, class G>
  double sum_layers(const bit_config& c, F searchable, G fixed) const {
    check(c, "supernet cost");
    double s = 0;
    size_t k = 0;
    for (size_t i = 0; i < net_.size(); ++i) {
      const qlayer& l = net_.layers()[i];
      if (k < layers_.size() && layers_[k].index == i) {
        s += searchable(l, c.w[k], c.a[k]);
        ++k;
      } else {
        s += fixed(l);
      }
    }
    return s;
  }
  static void copy_batch_norm(nn::batch_norm2d& from, nn::batch_norm2d& to) {
    to.weight.value.view().copy_from(from.weight.value.view());
    to.bias.value.view().copy_from(from.bias.value.view());
    to.running_mean.view().copy_from(from.running_mean.view());
    to.running_var.view().copy_from(from.running_var.view());
    to.num_batches_tracked.view().copy_from(from.num_batches_tracked.view());
  }
  bool by_act() const { return opt_.per_bit_bn_by == supernet_options::bn_by::act; }
  double mean_bits(const bit_config& c, bool weights) const {
    check(c, "supernet mean bits");
    double s = 0, n = 0;
    for (size_t k = 0; k < layers_.size(); ++k) {
      const qlayer& l = net_.layers()[layers_[k].index];
      if (l.role != layer_role::inner) continue;
      const double m = static_cast<double>(weights ? l.weights : l.macs);
      s += m * (weights ? c.w[k] : c.a[k]);
      n += m;
    }
    return n > 0 ? s / n : 0.0;
  }

  nn::resnet_cifar* model_;
  supernet_options opt_;
  qnet net_;
  std::vector<layer> layers_;
  std::vector<std::string> names_;
};

}  // namespace quant
}  // namespace mixq
