#pragma once
// nn::transform: a module that maps one value to another inside a layer's
// forward, the hook through which code above nn changes what a layer computes
// without a parallel module hierarchy.
//
// nn::conv2d and nn::linear each have two optional hooks, one for the input
// and one for the weight; nn::resnet_cifar has one for the features entering
// the global average pool. A hook is a transform the layer owns (it is
// adopted as a child module, so its parameters are trained with the model's
// and its parameters and buffers are in the state dict under the name the
// caller chose). nn knows nothing of what a transform does: the quantization
// layer (mixq/quant) installs fake quantizers here, but anything that maps a
// var to a var on the same tape fits.
//
// Contract: apply(t, x) returns a var on x's tape (x itself when it has
// nothing to do); it records its own backward if it is differentiable.
#include <memory>
#include <string>

#include "mixq/autograd/tape.hpp"
#include "mixq/nn/module.hpp"

namespace mixq {
namespace nn {

class transform : public module {
 public:
  virtual var apply(tape& t, var x) = 0;
};

// One hook slot: a non-owning pointer to a transform adopted by `owner`.
class transform_slot {
 public:
  transform* get() const { return t_; }
  explicit operator bool() const { return t_ != nullptr; }
  var apply(tape& t, var x) const { return t_ ? t_->apply(t, x) : x; }

  // requires: the slot is empty; tr non-null; `owner` has no child `name`.
  transform& install(module& owner, const std::string& name, std::unique_ptr<transform> tr,
                     const char* what) {
    MIXQ_CHECK(t_ == nullptr, owner.prefix(), what, ": a transform is already installed");
    MIXQ_CHECK(tr != nullptr, owner.prefix(), what, ": null transform");
    t_ = &owner.adopt(name, std::move(tr));
    return *t_;
  }

 private:
  transform* t_ = nullptr;
};

}  // namespace nn
}  // namespace mixq
