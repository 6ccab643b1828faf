#pragma once
// ResNet-N for CIFAR-10 (He et al. 2016, section 4.2), N = 6n + 2:
//   conv3x3(3 -> 16) - BN - ReLU
//   stage 1: n BasicBlocks, 16 channels, 32x32
//   stage 2: n BasicBlocks, 32 channels, 16x16 (first block stride 2)
//   stage 3: n BasicBlocks, 64 channels,  8x8  (first block stride 2)
//   global average pool - linear(64 -> classes)
// BasicBlock: conv3x3(s) - BN - ReLU - conv3x3 - BN, plus the shortcut, ReLU.
// Shortcut when shape changes: option A (default; stride-2 subsample +
// zero-padded channels, no parameters: ResNet20 has 269,722 parameters) or
// option B (1x1 conv stride 2 + BN: 272,474 parameters for ResNet20).
// Names follow the common PyTorch layout: conv1, bn1, layer1.0.conv1, ...,
// layer3.2.bn2, (layerK.0.shortcut.0 / .1 for option B), fc.
// Hooks (nn/transform.hpp): a block's shortcut carries conv1's input AFTER
// conv1's input transform (with no transform, the block input itself), so a
// transform installed there (a fake quantizer) defines both what conv1 reads
// and what the residual adds. A block also has its own input hook, applied
// first: with it installed, the shortcut carries its output and conv1 reads
// that output through conv1's transform (a residual stream quantized finer
// than conv1's input). resnet_cifar has one more hook on the features
// entering the global average pool.
#include <memory>
#include <string>
#include <vector>

#include "mixq/autograd/ops/add.hpp"
#include "mixq/autograd/ops/global_avg_pool.hpp"
#include "mixq/autograd/ops/shortcut_a.hpp"
#include "mixq/nn/batch_norm2d.hpp"
#include "mixq/nn/conv2d.hpp"
#include "mixq/nn/linear.hpp"
#include "mixq/nn/module.hpp"

namespace mixq {
namespace nn {

enum class shortcut_kind { a, b };

// Option-B projection: 1x1 conv (stride s) + BN.
class projection : public module {
 public:
  projection(int64_t in, int64_t out, int64_t stride, rng& r)
      : conv(in, out, 1, conv2d_options{stride, 0, false}, r), bn(out) {
    register_module("0", conv);
    register_module("1", bn);
  }
  var forward(tape& t, var x) { return bn.forward(t, conv.forward(t, x)); }
  nn::conv2d conv;
  nn::batch_norm2d bn;
};

class basic_block : public module {
 public:
  basic_block(int64_t in, int64_t out, int64_t stride, shortcut_kind sk, rng& r)
      : conv1(in, out, 3, conv2d_options{stride, 1, false}, r),
        bn1(out),
        conv2(out, out, 3, conv2d_options{1, 1, false}, r),
        bn2(out),
        out_(out),
        stride_(stride),
        needs_shortcut_(stride != 1 || in != out) {
    register_module("conv1", conv1);
    register_module("bn1", bn1);
    register_module("conv2", conv2);
    register_module("bn2", bn2);
    if (needs_shortcut_ && sk == shortcut_kind::b) {
      proj_ = std::make_unique<projection>(in, out, stride, r);
      register_module("shortcut", *proj_);
    }
  }

  var forward(tape& t, var x) {
    if (input_hook_) x = input_hook_.apply(t, x);
    var xin;  // x as conv1 read it (after conv1's input transform, if any)
    var h = bn1.forward(t, conv1.forward(t, x, &xin), /*relu=*/true);
    h = bn2.forward(t, conv2.forward(t, h));
    var s = input_hook_ ? x : xin;  // what the shortcut carries
    if (needs_shortcut_) s = proj_ ? proj_->forward(t, x) : shortcut_a(s, out_, stride_);
    return add_relu(h, s);
  }
  // Installs the block's input hook (the value the shortcut adds; conv1 reads
  // it through its own input transform).
  transform& set_input_transform(const std::string& name, std::unique_ptr<transform> tr) {
    return input_hook_.install(*this, name, std::move(tr), "block input transform");
  }
  transform* input_transform() const { return input_hook_.get(); }
  bool has_projection() const { return proj_ != nullptr; }
  bool has_shortcut() const { return needs_shortcut_; }
  int64_t stride() const { return stride_; }

  nn::conv2d conv1;
  nn::batch_norm2d bn1;
  nn::conv2d conv2;
  nn::batch_norm2d bn2;

 private:
  int64_t out_, stride_;
  bool needs_shortcut_;
  std::unique_ptr<projection> proj_;
  transform_slot input_hook_;
};

struct resnet_options {
  int n = 3;  // blocks per stage: 3 -> ResNet20, 5 -> ResNet32, 9 -> ResNet56
  int64_t classes = 10;
  int64_t in_channels = 3;
  shortcut_kind shortcut = shortcut_kind::a;
  uint64_t seed = 1;
};

class resnet_cifar : public module {
 public:
  explicit resnet_cifar(const resnet_options& o = {})
      : rng_(o.seed), conv1(o.in_channels, 16, 3, conv2d_options{1, 1, false}, rng_), bn1(16) {
    MIXQ_CHECK(o.n >= 1 && o.classes >= 1,
               "resnet_cifar: need n >= 1 and classes >= 1, got n=", o.n, " classes=", o.classes);
    register_module("conv1", conv1);
    register_module("bn1", bn1);
    const int64_t widths[3] = {16, 32, 64};
    int64_t in = 16;
    for (int s = 0; s < 3; ++s) {
      stages_.emplace_back(std::make_unique<stage>());
      stage& st = *stages_.back();
      for (int b = 0; b < o.n; ++b) {
        const int64_t stride = (s > 0 && b == 0) ? 2 : 1;
        st.blocks.emplace_back(
            std::make_unique<basic_block>(in, widths[s], stride, o.shortcut, rng_));
        st.register_block(std::to_string(b), *st.blocks.back());
        in = widths[s];
      }
      register_module("layer" + std::to_string(s + 1), st);
    }
    fc_ = std::make_unique<nn::linear>(64, o.classes, true, rng_);
    register_module("fc", *fc_);
  }

  // x: [N, 32, 32, in_channels] NHWC -> logits [N, classes].
  var forward(tape& t, var x) {
    var h = bn1.forward(t, conv1.forward(t, x), /*relu=*/true);
    for (auto& st : stages_)
      for (auto& b : st->blocks) h = b->forward(t, h);
    return fc_->forward(t, global_avg_pool(pool_hook_.apply(t, h)));
  }

  // Installs the hook on the features entering the global average pool.
  transform& set_pool_input_transform(const std::string& name, std::unique_ptr<transform> tr) {
    return pool_hook_.install(*this, name, std::move(tr), "pool input transform");
  }
  transform* pool_input_transform() const { return pool_hook_.get(); }

  int depth() const { return 6 * static_cast<int>(stages_[0]->blocks.size()) + 2; }
  int blocks_per_stage() const { return static_cast<int>(stages_[0]->blocks.size()); }
  int64_t in_channels() const { return conv1.weight.shape()[3]; }
  int64_t classes() const { return fc_->weight.shape()[0]; }
  basic_block& block(int stage_index, int b) {
    return *stages_.at(static_cast<size_t>(stage_index))->blocks.at(static_cast<size_t>(b));
  }
  nn::linear& fc() { return *fc_; }

 private:
  struct stage : module {
    std::vector<std::unique_ptr<basic_block>> blocks;
    void register_block(const std::string& name, basic_block& b) { register_module(name, b); }
  };
  rng rng_;

 public:
  nn::conv2d conv1;
  nn::batch_norm2d bn1;

 private:
  std::vector<std::unique_ptr<stage>> stages_;
  std::unique_ptr<nn::linear> fc_;
  transform_slot pool_hook_;
};

}  // namespace nn
}  // namespace mixq
