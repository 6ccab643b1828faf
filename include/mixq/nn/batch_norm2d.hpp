#pragma once
// nn::batch_norm2d: per-channel batch normalisation (NHWC, channel last).
// Parameters "weight" (gamma, ones) and "bias" (beta, zeros), both without
// weight decay. Buffers "running_mean" (zeros), "running_var" (ones) and
// "num_batches_tracked" (a scalar, counts training forwards), PyTorch names.
// forward(t, x, relu) fuses an optional ReLU.
//
// Routing: route_to(other) makes forward() use another batch_norm2d's
// parameters and statistics (route_to(nullptr) returns to this module's own),
// and active() names the module whose state a forward uses. A layer above nn
// switches between several sets this way without copying them (the per-bit
// batch norm of a multi-bit supernet, quant/multiquant/); whoever reads the
// folded statistics (the deploy export) reads active().
// set_momentum() changes the running-statistics momentum, e.g. to 1/(k+1) at
// the k-th batch for a cumulative average (batch-norm recalibration).
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
    if (route_ != nullptr) return route_->forward(t, x, relu);
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
  float momentum() const noexcept { return momentum_; }
  /// requires: m in (0, 1].
  void set_momentum(float m) {
    MIXQ_CHECK(m > 0.0f && m <= 1.0f, prefix(), "batch norm momentum ", m, ", expected in (0, 1]");
    momentum_ = m;
  }

  /// Routes forward() to `other` (nullptr or this: this module's own state).
  /// requires: other has this module's channel count and is not itself routed.
  void route_to(batch_norm2d* other) {
    if (other == this) other = nullptr;
    MIXQ_CHECK(other == nullptr || (other->weight.numel() == weight.numel() && !other->route_),
               prefix(), "batch norm: route to a module of ", other ? other->weight.numel() : 0,
               " channels (expected ", weight.numel(), ") or one that is itself routed");
    route_ = other;
  }
  /// The module whose parameters and statistics forward() uses.
  batch_norm2d& active() noexcept { return route_ ? *route_ : *this; }

  parameter weight;
  parameter bias;
  tensor running_mean;
  tensor running_var;
  tensor num_batches_tracked;

 private:
  float momentum_, eps_;
  batch_norm2d* route_ = nullptr;
};

}  // namespace nn
}  // namespace mixq
