#pragma once
// nn::conv2d: a 2-D convolution module (NHWC activations, OHWI weight).
// Parameters: "weight" [out, k, k, in] (kaiming-normal, fan_in = in*k*k,
// weight decay on) and optionally "bias" [out] (zero, no weight decay).
#include "mixq/autograd/ops/conv2d.hpp"
#include "mixq/core/init.hpp"
#include "mixq/nn/module.hpp"

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

  var forward(tape& t, var x) {
    return ::mixq::conv2d(x, t.param(weight), has_bias_ ? t.param(bias) : var{}, stride_, pad_);
  }

  int64_t stride() const { return stride_; }
  int64_t pad() const { return pad_; }
  bool has_bias() const { return has_bias_; }

  parameter weight;
  parameter bias;

 private:
  int64_t stride_, pad_;
  bool has_bias_;
};

}  // namespace nn
}  // namespace mixq
