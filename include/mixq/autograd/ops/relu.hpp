#pragma once
// relu: y = max(x, 0). Saved: nothing (the mask is read from y).
#include "mixq/autograd/tape.hpp"

namespace mixq {

struct relu_saved {
  int32_t unused;
};

inline var relu(var x) {
  MIXQ_CHECK(x.valid(), "relu: invalid var");
  tape& t = *x.t;
  var y = t.new_value(x.shape(), x.requires_grad());
  const float* a = x.value().data();
  float* b = y.value().data();
  const int64_t n = x.value().numel();
#pragma omp parallel for schedule(dynamic, 16384) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) b[i] = a[i] > 0.0f ? a[i] : 0.0f;
  if (x.requires_grad() && t.grad_enabled()) t.record(op_kind::relu, {x}, y, relu_saved{0});
  return y;
}

inline void relu_backward(tape& t, const node& nd) {
  const int32_t xi = nd.inputs[0];
  if (!t.needs_grad(xi)) return;
  const float* y = t.at(nd.output).value.data();
  const float* dy = t.grad_of(nd.output);
  const int64_t n = t.at(xi).value.numel();
  bool acc = false;
  float* dx = t.grad_for_write(xi, &acc);
#pragma omp parallel for schedule(dynamic, 16384) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    float g = y[i] > 0.0f ? dy[i] : 0.0f;
    dx[i] = acc ? dx[i] + g : g;
  }
}

}  // namespace mixq
