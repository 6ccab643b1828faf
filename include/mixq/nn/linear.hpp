#pragma once
// nn::linear: y = x w^T + b. Parameters: "weight" [out, in] (kaiming-normal,
// fan_in = in, weight decay on), "bias" [out] (uniform +-1/sqrt(in) as in
// PyTorch, no weight decay).
#include <cmath>

#include "mixq/autograd/ops/linear.hpp"
#include "mixq/core/init.hpp"
#include "mixq/nn/module.hpp"
#include "mixq/nn/transform.hpp"

namespace mixq {
namespace nn {

class linear : public module {
 public:
  linear(int64_t in, int64_t out, bool with_bias, rng& r)
      : weight("weight", {out, in}),
        bias(with_bias ? parameter("bias", {out}, false) : parameter()),
        has_bias_(with_bias) {
    MIXQ_CHECK(in > 0 && out > 0, "nn::linear: bad configuration in=", in, " out=", out);
    kaiming_normal(weight.value.view(), r, in);
    register_parameter("weight", weight);
    if (has_bias_) {
      const float b = 1.0f / std::sqrt(static_cast<float>(in));
      fill_uniform(bias.value.view(), r, -b, b);
      register_parameter("bias", bias);
    }
  }

  var forward(tape& t, var x) {
    x = input_hook_.apply(t, x);
    var w = weight_hook_.apply(t, t.param(weight));
    return ::mixq::linear(x, w, has_bias_ ? t.param(bias) : var{});
  }
  bool has_bias() const { return has_bias_; }

  transform& set_input_transform(const std::string& name, std::unique_ptr<transform> tr) {
    return input_hook_.install(*this, name, std::move(tr), "input transform");
  }
  transform& set_weight_transform(const std::string& name, std::unique_ptr<transform> tr) {
    return weight_hook_.install(*this, name, std::move(tr), "weight transform");
  }
  transform* input_transform() const { return input_hook_.get(); }
  transform* weight_transform() const { return weight_hook_.get(); }

  parameter weight;
  parameter bias;

 private:
  bool has_bias_;
  transform_slot input_hook_, weight_hook_;
};

}  // namespace nn
}  // namespace mixq
