#pragma once
// parameter: a trainable tensor that owns its value and its gradient.
//
// Gradients accumulate: every backward() adds into `grad`, and zero_grad()
// clears it (the optimizer or the training loop calls it once per step).
// `weight_decay` says whether an optimizer should apply L2 decay; by
// convention it is off for biases and batch-norm affine parameters.
#include <string>

#include "mixq/core/tensor.hpp"

namespace mixq {

struct parameter {
  std::string name;
  tensor value;
  tensor grad;
  bool weight_decay = true;

  parameter() = default;
  parameter(std::string n, const shape& s, bool decay = true)
      : name(std::move(n)), value(s), grad(s), weight_decay(decay) {}

  void zero_grad() { grad.fill(0.0f); }
  const mixq::shape& shape() const { return value.shape(); }
  int64_t numel() const { return value.numel(); }
};

}  // namespace mixq
