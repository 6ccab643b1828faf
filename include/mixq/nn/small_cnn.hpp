#pragma once
// small_cnn: a fast net for 28x28x1 images (Fashion-MNIST, MNIST).
//   conv3x3(1 -> c1, pad 1)            - BN - ReLU   28x28
//   conv3x3(c1 -> c2, stride 2, pad 1) - BN - ReLU   14x14
//   conv3x3(c2 -> c2, stride 2, pad 1) - BN - ReLU    7x7  (the "pool": strided conv)
//   flatten (h, w, c) - linear(7*7*c2 -> classes)
// Defaults c1 = 16, c2 = 32: 29,818 parameters and ~1.5 MMAC per image, so
// an epoch of Fashion-MNIST takes seconds on two cores.
#include "mixq/autograd/ops/flatten.hpp"
#include "mixq/nn/batch_norm2d.hpp"
#include "mixq/nn/conv2d.hpp"
#include "mixq/nn/linear.hpp"
#include "mixq/nn/module.hpp"

namespace mixq {
namespace nn {

struct small_cnn_options {
  int64_t in_channels = 1;
  int64_t height = 28, width = 28;
  int64_t c1 = 16, c2 = 32;
  int64_t classes = 10;
  uint64_t seed = 1;
};

class small_cnn : public module {
 public:
  explicit small_cnn(const small_cnn_options& o = {})
      : rng_(o.seed),
        conv1(o.in_channels, o.c1, 3, conv2d_options{1, 1, false}, rng_),
        bn1(o.c1),
        conv2(o.c1, o.c2, 3, conv2d_options{2, 1, false}, rng_),
        bn2(o.c2),
        conv3(o.c2, o.c2, 3, conv2d_options{2, 1, false}, rng_),
        bn3(o.c2),
        fc(out_hw(out_hw(o.height)) * out_hw(out_hw(o.width)) * o.c2, o.classes, true, rng_) {
    register_module("conv1", conv1);
    register_module("bn1", bn1);
    register_module("conv2", conv2);
    register_module("bn2", bn2);
    register_module("conv3", conv3);
    register_module("bn3", bn3);
    register_module("fc", fc);
  }

  // x: [N, height, width, in_channels] -> logits [N, classes].
  var forward(tape& t, var x) {
    var h = bn1.forward(t, conv1.forward(t, x), true);
    h = bn2.forward(t, conv2.forward(t, h), true);
    h = bn3.forward(t, conv3.forward(t, h), true);
    return fc.forward(t, flatten(h));
  }

 private:
  static int64_t out_hw(int64_t v) { return (v + 2 - 3) / 2 + 1; }
  rng rng_;

 public:
  nn::conv2d conv1;
  nn::batch_norm2d bn1;
  nn::conv2d conv2;
  nn::batch_norm2d bn2;
  nn::conv2d conv3;
  nn::batch_norm2d bn3;
  nn::linear fc;
};

}  // namespace nn
}  // namespace mixq
