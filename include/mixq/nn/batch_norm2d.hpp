#pragma once
// nn::batch_norm2d: per-channel batch normalisation (NHWC, channel last).
// Parameters "weight" (gamma, ones) and "bias" (beta, zeros), both without
// weight decay. Buffers "running_mean" (zeros), "running_var" (ones) and
// "num_batches_tracked" (a scalar, counts training forwards), PyTorch names.
// forward(t, x, relu) fuses an optional ReLU.
#include "mixq/autograd/ops/batch_norm2d.hpp"
#include "mixq/nn/module.hpp"

namespace mixq {
namespace nn {

class batch_norm2d : public module {
 public:
  explicit batch_norm2d(int64_t channels, float momentum = 0.1f, float eps = 1e-5f)
      : weight("weight", {channels}, false),
        bias("bias", {channels}, false),
        running_mean({channels}),
        running_var({channels}, 1.0f),
        num_batches_tracked(shape{}),
        momentum_(momentum),
        eps_(eps) {
    MIXQ_CHECK(channels > 0, "nn::batch_norm2d: channels must be positive, got ", channels);
    weight.value.fill(1.0f);
    register_parameter("weight", weight);
    register_parameter("bias", bias);
    register_buffer("running_mean", running_mean);
    register_buffer("running_var", running_var);
    register_buffer("num_batches_tracked", num_batches_tracked);
  }

  var forward(tape& t, var x, bool relu = false) {
    batch_norm2d_args a;
    a.training = is_training();
    a.momentum = momentum_;
    a.eps = eps_;
    a.relu = relu;
    if (a.training) num_batches_tracked[0] += 1.0f;
    return ::mixq::batch_norm2d(x, t.param(weight), t.param(bias), running_mean.view(),
                                running_var.view(), a);
  }

  /// The variance epsilon (batch-norm folding at export needs it).
  float eps() const noexcept { return eps_; }

  parameter weight;
  parameter bias;
  tensor running_mean;
  tensor running_var;
  tensor num_batches_tracked;

 private:
  float momentum_, eps_;
};

}  // namespace nn
}  // namespace mixq
