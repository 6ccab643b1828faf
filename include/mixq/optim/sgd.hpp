#pragma once
// Stochastic gradient descent with momentum, Nesterov momentum and L2 weight
// decay, with PyTorch's update rule so recipes carry over unchanged:
//
//   g   = grad + wd * w                    (wd: see "weight decay" below)
//   buf = momentum * buf + (1 - dampening) * g     (buf starts at 0, so the first
//                                                   step gives buf = g when dampening = 0)
//   d   = nesterov ? g + momentum * buf : buf      (d = g when momentum = 0)
//   w  -= lr * lr_scale * d
//
// Parameter groups. The optimizer takes its parameters in groups (PyTorch's
// param_groups); a group may scale the learning rate and may fix its own
// weight decay. Quantizer parameters (clipping levels, LSQ step sizes) go in
// a group with weight_decay = 0 and, if wanted, their own lr_scale, while
// the weights keep the usual settings. A plain parameter list is one group.
//
// Weight decay of a parameter: its group's weight_decay when the group sets
// one; otherwise sgd_options::weight_decay where parameter::weight_decay is
// true (or on every parameter when decay_all), else 0.
//
// The optimizer keeps one momentum buffer per parameter, keyed by the
// parameter's name (names must be unique); state() / load_buffer() move them
// through checkpoints.
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
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

struct param_group {
  std::vector<parameter*> params;
  double lr_scale = 1.0;               // this group's lr = lr() * lr_scale
  std::optional<double> weight_decay;  // set: used for every parameter of the group

  param_group() = default;
  explicit param_group(std::vector<parameter*> ps, double scale = 1.0,
                       std::optional<double> decay = std::nullopt)
      : params(std::move(ps)), lr_scale(scale), weight_decay(decay) {}
};

class sgd {
 public:
  // One group holding `params`.
  sgd(std::vector<parameter*> params, sgd_options opt)
      : sgd(std::vector<param_group>{param_group(std::move(params))}, opt) {}

  // requires: no null parameter, every name unique; lr_scale >= 0,
  //           weight_decay >= 0 (options and groups); momentum in [0, 1).
  sgd(std::vector<param_group> groups, sgd_options opt) : groups_(std::move(groups)), opt_(opt) {
    MIXQ_CHECK(std::isfinite(opt_.lr) && opt_.lr >= 0, "sgd: lr = ", opt_.lr,
               ", expected a finite rate >= 0");
    MIXQ_CHECK(opt_.momentum >= 0 && opt_.momentum < 1, "sgd: momentum = ", opt_.momentum,
               ", expected in [0, 1)");
    MIXQ_CHECK(std::isfinite(opt_.weight_decay) && opt_.weight_decay >= 0,
               "sgd: weight_decay = ", opt_.weight_decay, ", expected a finite value >= 0");
    MIXQ_CHECK(!opt_.nesterov || (opt_.momentum > 0 && opt_.dampening == 0),
               "sgd: nesterov needs momentum > 0 and dampening = 0");
    std::set<std::string> names;
    for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
      const param_group& g = groups_[gi];
      MIXQ_CHECK(std::isfinite(g.lr_scale) && g.lr_scale >= 0, "sgd: group ", gi,
                 ": lr_scale = ", g.lr_scale, ", expected a finite value >= 0");
      MIXQ_CHECK(!g.weight_decay || (std::isfinite(*g.weight_decay) && *g.weight_decay >= 0),
                 "sgd: group ", gi, ": weight_decay = ", g.weight_decay.value_or(0),
                 ", expected a finite value >= 0");
      for (parameter* p : g.params) {
        MIXQ_CHECK(p != nullptr, "sgd: group ", gi, ": null parameter");
        MIXQ_CHECK(names.insert(p->name).second, "sgd: parameter '", p->name,
                   "' appears twice (names must be unique across groups)");
        params_.push_back(p);
        slots_.push_back({gi, tensor(p->value.shape())});
      }
    }
  }

  void set_lr(double lr) { opt_.lr = lr; }
  double lr() const { return opt_.lr; }
  const sgd_options& options() const { return opt_; }
  const std::vector<param_group>& groups() const { return groups_; }
  // All parameters, group by group.
  const std::vector<parameter*>& parameters() const { return params_; }

  void zero_grad() {
    for (parameter* p : params_) p->zero_grad();
  }

  // The weight decay applied to params_[k] (see the file comment).
  double weight_decay_of(std::size_t k) const {
    const param_group& g = groups_[slots_[k].group];
    if (g.weight_decay) return *g.weight_decay;
    return (opt_.decay_all || params_[k]->weight_decay) ? opt_.weight_decay : 0.0;
  }

  // One update of every parameter from its accumulated gradient.
  void step() {
    const float mom = static_cast<float>(opt_.momentum);
    const float damp = 1.0f - static_cast<float>(opt_.dampening);
    const bool nesterov = opt_.nesterov;
    for (std::size_t k = 0; k < params_.size(); ++k) {
      parameter& p = *params_[k];
      const float lr = static_cast<float>(opt_.lr * groups_[slots_[k].group].lr_scale);
      const float wd = static_cast<float>(weight_decay_of(k));
      float* w = p.value.data();
      const float* gr = p.grad.data();
      float* b = slots_[k].momentum.data();
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
    for (std::size_t k = 0; k < params_.size(); ++k)
      out.emplace_back(params_[k]->name, &slots_[k].momentum);
    return out;
  }
  // Restores one momentum buffer; the name and shape must match a parameter.
  void load_buffer(const std::string& name, const float* data, int64_t numel) {
    for (std::size_t k = 0; k < params_.size(); ++k) {
      if (params_[k]->name != name) continue;
      tensor& b = slots_[k].momentum;
      MIXQ_CHECK(numel == b.numel(), "sgd: momentum buffer '", name, "' has ", numel,
                 " values, expected ", b.numel());
      std::copy(data, data + numel, b.data());
      return;
    }
    MIXQ_CHECK(false, "sgd: momentum buffer '", name, "' matches no parameter");
  }
  void set_steps(int64_t s) { steps_ = s; }

 private:
  struct slot {
    std::size_t group;  // index into groups_
    tensor momentum;
  };
  std::vector<param_group> groups_;
  std::vector<parameter*> params_;  // flattened, group by group
  std::vector<slot> slots_;         // one per params_ entry
  sgd_options opt_;
  int64_t steps_ = 0;
};

}  // namespace mixq::optim
