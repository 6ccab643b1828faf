#pragma once
// nn::conv2d: a 2-D convolution module (NHWC activations, OHWI weight).
// Parameters: "weight" [out, k, k, in] (kaiming-normal, fan_in = in*k*k,
// weight decay on) and optionally "bias" [out] (zero, no weight decay).
// Optional hooks (nn/transform.hpp): an input transform applied to x and a
// weight transform applied to the weight before the convolution; and a
// forward override (autograd/ops/conv2d.hpp) that may compute the product of
// the transformed input and weight in place of the FP32 kernels.
#include <memory>

#include "mixq/autograd/ops/conv2d.hpp"
#include "mixq/core/init.hpp"
#include "mixq/nn/module.hpp"
#include "mixq/nn/transform.hpp"

namespace mixq {
namespace nn {

struct conv2d_options {
  int64_t stride = 1;
  int64_t pad = 0;
  bool bias = false;
};

class conv2d : public module {
 public:
  conv2d(int64_t in, int64_t out, int64_t kernel, const conv2d_options& o, rng& r)
      : weight("weight", {out, kernel, kernel, in}),
        bias(o.bias ? parameter("bias", {out}, false) : parameter()),
        stride_(o.stride),
        pad_(o.pad),
        has_bias_(o.bias) {
    MIXQ_CHECK(in > 0 && out > 0 && kernel > 0 && o.stride > 0 && o.pad >= 0,
               "nn::conv2d: bad configuration in=", in, " out=", out, " kernel=", kernel,
               " stride=", o.stride, " pad=", o.pad);
    kaiming_normal(weight.value.view(), r, in * kernel * kernel);
    register_parameter("weight", weight);
    if (has_bias_) register_parameter("bias", bias);
  }

  // used_input (optional) receives the input after the input transform,
  // the value the convolution actually read (a residual shortcut reuses it).
  var forward(tape& t, var x, var* used_input = nullptr) {
    x = input_hook_.apply(t, x);
    if (used_input) *used_input = x;
    var w = weight_hook_.apply(t, t.param(weight));
    return ::mixq::conv2d(x, w, has_bias_ ? t.param(bias) : var{}, stride_, pad_, fwd_.get());
  }

  // Sets (or, with nullptr, removes) the forward override. The module holds
  // it; it is not a parameter, buffer or child, so state dicts ignore it.
  void set_forward_override(std::shared_ptr<conv2d_forward_override> f) { fwd_ = std::move(f); }
  conv2d_forward_override* forward_override() const { return fwd_.get(); }

  // Installs the input / weight hook as the child module `name`.
  transform& set_input_transform(const std::string& name, std::unique_ptr<transform> tr) {
    return input_hook_.install(*this, name, std::move(tr), "input transform");
  }
  transform& set_weight_transform(const std::string& name, std::unique_ptr<transform> tr) {
    return weight_hook_.install(*this, name, std::move(tr), "weight transform");
  }
  transform* input_transform() const { return input_hook_.get(); }
  transform* weight_transform() const { return weight_hook_.get(); }

  int64_t stride() const { return stride_; }
  int64_t pad() const { return pad_; }
  bool has_bias() const { return has_bias_; }

  parameter weight;
  parameter bias;

 private:
  int64_t stride_, pad_;
  bool has_bias_;
  transform_slot input_hook_, weight_hook_;
  std::shared_ptr<conv2d_forward_override> fwd_;
};

}  // namespace nn
}  // namespace mixq
