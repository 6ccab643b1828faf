#pragma once
// flatten: [N, d1, d2, ...] -> [N, d1*d2*...]; a view (no copy) in forward,
// a copy of the gradient in backward. For NHWC input the feature order is
// (h, w, c).
#include "mixq/autograd/tape.hpp"

namespace mixq {

struct flatten_saved {
  int32_t unused;
};

inline var flatten(var x) {
  MIXQ_CHECK(x.valid(), "flatten: invalid var");
  const shape& xs = x.shape();
  MIXQ_CHECK(xs.rank() >= 1, "flatten: input must have a batch dimension, got ", xs);
  tape& t = *x.t;
  const int64_t n = xs[0];
  const int64_t f = n ? xs.numel() / n : 0;
  var y = t.alias_value(x.value().reshape({n, f}), x.requires_grad());
  if (x.requires_grad() && t.grad_enabled()) t.record(op_kind::flatten, {x}, y, flatten_saved{0});
  return y;
}

inline void flatten_backward(tape& t, const node& nd) {
  const int32_t xi = nd.inputs[0];
  if (!t.needs_grad(xi)) return;
  bool acc = false;
  float* dx = t.grad_for_write(xi, &acc);
  detail::store_grad(dx, t.grad_of(nd.output), t.at(xi).value.numel(), acc);
}

}  // namespace mixq
