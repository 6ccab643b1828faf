#pragma once
// Stochastic gradient descent with momentum, Nesterov momentum and L2 weight
// decay, with PyTorch's update rule so recipes carry over unchanged:
//
//   g   = grad + wd * w                    (wd only where parameter::weight_decay,
//                                           or on every parameter if decay_all)
//   buf = momentum * buf + (1 - dampening) * g     (buf starts at 0, so the first
//                                                   step gives buf = g when dampening = 0)
//   d   = nesterov ? g + momentum * buf : buf      (d = g when momentum = 0)
//   w  -= lr * d
//
// The optimizer keeps one momentum buffer per parameter, keyed by the
// parameter's name; state() / load_state() move it through checkpoints.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mixq/autograd/parameter.hpp"
#include "mixq/error.hpp"
#include "mixq/core/tensor.hpp"

namespace mixq::optim {

struct sgd_options {
  double lr = 0.1;
  double momentum = 0.9;
  double dampening = 0.0;
  double weight_decay = 5e-4;
  bool nesterov = false;
  bool decay_all = false;  // true: decay biases and batch-norm parameters too
};

class sgd {
 public:
  sgd(std::vector<parameter*> params, sgd_options opt) : params_(std::move(params)), opt_(opt) {
    MIXQ_CHECK(opt_.lr >= 0, "sgd: lr = ", opt_.lr, ", expected >= 0");
    MIXQ_CHECK(opt_.momentum >= 0 && opt_.momentum < 1, "sgd: momentum = ", opt_.momentum,
               ", expected in [0, 1)");
    MIXQ_CHECK(opt_.weight_decay >= 0, "sgd: weight_decay = ", opt_.weight_decay,
               ", expected >= 0");
    MIXQ_CHECK(!opt_.nesterov || (opt_.momentum > 0 && opt_.dampening == 0),
               "sgd: nesterov needs momentum > 0 and dampening = 0");
    for (parameter* p : params_) {
      MIXQ_CHECK(p != nullptr, "sgd: null parameter");
      buf_.emplace_back(p->value.shape());
    }
  }

  void set_lr(double lr) { opt_.lr = lr; }
  double lr() const { return opt_.lr; }
  const sgd_options& options() const { return opt_; }
  const std::vector<parameter*>& parameters() const { return params_; }

  void zero_grad() {
    for (parameter* p : params_) p->zero_grad();
  }

  // One update of every parameter from its accumulated gradient.
  void step() {
    const float lr = static_cast<float>(opt_.lr);
    const float mom = static_cast<float>(opt_.momentum);
    const float damp = 1.0f - static_cast<float>(opt_.dampening);
    const bool nesterov = opt_.nesterov;
    for (std::size_t k = 0; k < params_.size(); ++k) {
      parameter& p = *params_[k];
      const float wd =
          (opt_.decay_all || p.weight_decay) ? static_cast<float>(opt_.weight_decay) : 0.0f;
      float* w = p.value.data();
      const float* gr = p.grad.data();
      float* b = buf_[k].data();
      const int64_t n = p.value.numel();
      if (mom == 0.0f) {
        for (int64_t i = 0; i < n; ++i) w[i] -= lr * (gr[i] + wd * w[i]);
        continue;
      }
      for (int64_t i = 0; i < n; ++i) {
        const float g = gr[i] + wd * w[i];
        const float bi = mom * b[i] + damp * g;
        b[i] = bi;
        w[i] -= lr * (nesterov ? g + mom * bi : bi);
      }
    }
    ++steps_;
  }

  int64_t steps() const { return steps_; }

  // Momentum buffers as (parameter name, tensor), in parameter order.
  std::vector<std::pair<std::string, const tensor*>> state() const {
    std::vector<std::pair<std::string, const tensor*>> out;
    for (std::size_t k = 0; k < params_.size(); ++k) out.emplace_back(params_[k]->name, &buf_[k]);
    return out;
  }
  // Restores one momentum buffer; the name and shape must match a parameter.
  void load_buffer(const std::string& name, const float* data, int64_t numel) {
    for (std::size_t k = 0; k < params_.size(); ++k) {
      if (params_[k]->name != name) continue;
      MIXQ_CHECK(numel == buf_[k].numel(), "sgd: momentum buffer '", name, "' has ", numel,
                 " values, expected ", buf_[k].numel());
      std::copy(data, data + numel, buf_[k].data());
      return;
    }
    MIXQ_CHECK(false, "sgd: momentum buffer '", name, "' matches no parameter");
  }
  void set_steps(int64_t s) { steps_ = s; }

 private:
  std::vector<parameter*> params_;
  sgd_options opt_;
  std::vector<tensor> buf_;
  int64_t steps_ = 0;
};

}  // namespace mixq::optim
