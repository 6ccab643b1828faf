#pragma once
// add: y = a + b (same shape), optionally followed by a fused ReLU
// (the residual join of a ResNet block: relu(branch + shortcut)).
#include "mixq/autograd/tape.hpp"

namespace mixq {

struct add_saved {
  bool relu;
};

inline var add(var a, var b, bool fuse_relu = false) {
  detail::check_same_tape(a, b, "add");
  MIXQ_CHECK(a.shape() == b.shape(), "add: shapes differ: ", a.shape(), " and ", b.shape());
  tape& t = *a.t;
  const bool rg = a.requires_grad() || b.requires_grad();
  var y = t.new_value(a.shape(), rg);
  const float* p = a.value().data();
  const float* q = b.value().data();
  float* r = y.value().data();
  const int64_t n = a.value().numel();
  if (fuse_relu) {
#pragma omp parallel for schedule(dynamic, 16384) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      float v = p[i] + q[i];
      r[i] = v > 0.0f ? v : 0.0f;
    }
  } else {
#pragma omp parallel for schedule(dynamic, 16384) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) r[i] = p[i] + q[i];
  }
  if (rg && t.grad_enabled()) t.record(op_kind::add, {a, b}, y, add_saved{fuse_relu});
  return y;
}

inline var add_relu(var a, var b) { return add(a, b, true); }

inline void add_backward(tape& t, const node& nd) {
  const add_saved sv = nd.saved_as<add_saved>();
  const float* y = t.at(nd.output).value.data();
  const float* dy = t.grad_of(nd.output);
  const int64_t n = t.at(nd.output).value.numel();
  for (int k = 0; k < 2; ++k) {
    const int32_t id = nd.inputs[k];
    if (!t.needs_grad(id)) continue;
    bool acc = false;
    float* dx = t.grad_for_write(id, &acc);
    const bool relu = sv.relu;
#pragma omp parallel for schedule(dynamic, 16384) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      float g = (!relu || y[i] > 0.0f) ? dy[i] : 0.0f;
      dx[i] = acc ? dx[i] + g : g;
    }
  }
}

}  // namespace mixq
