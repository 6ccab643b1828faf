#pragma once
// global_avg_pool: [N, H, W, C] -> [N, C], the mean over H*W.
#include "mixq/autograd/tape.hpp"

namespace mixq {

struct global_avg_pool_saved {
  int32_t unused;
};

inline var global_avg_pool(var x) {
  MIXQ_CHECK(x.valid(), "global_avg_pool: invalid var");
  const shape& xs = x.shape();
  MIXQ_CHECK(xs.rank() == 4, "global_avg_pool: input must be NHWC [N,H,W,C], got ", xs);
  tape& t = *x.t;
  const int64_t n = xs[0], hw = xs[1] * xs[2], c = xs[3];
  var y = t.new_value({n, c}, x.requires_grad());
  const float* a = x.value().data();
  float* b = y.value().data();
  const float inv = hw ? 1.0f / static_cast<float>(hw) : 0.0f;
#pragma omp parallel for schedule(static) if (n * hw * c > 65536)
  for (int64_t i = 0; i < n; ++i) {
    float* o = b + i * c;
    for (int64_t j = 0; j < c; ++j) o[j] = 0.0f;
    for (int64_t p = 0; p < hw; ++p) {
      const float* r = a + (i * hw + p) * c;
      for (int64_t j = 0; j < c; ++j) o[j] += r[j];
    }
    for (int64_t j = 0; j < c; ++j) o[j] *= inv;
  }
  if (x.requires_grad() && t.grad_enabled())
    t.record(op_kind::global_avg_pool, {x}, y, global_avg_pool_saved{0});
  return y;
}

inline void global_avg_pool_backward(tape& t, const node& nd) {
  const int32_t xi = nd.inputs[0];
  if (!t.needs_grad(xi)) return;
  const shape& xs = t.at(xi).value.shape();
  const int64_t n = xs[0], hw = xs[1] * xs[2], c = xs[3];
  const float* dy = t.grad_of(nd.output);
  bool acc = false;
  float* dx = t.grad_for_write(xi, &acc);
  const float inv = hw ? 1.0f / static_cast<float>(hw) : 0.0f;
#pragma omp parallel for schedule(static) if (n * hw * c > 65536)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < hw; ++p) {
      float* d = dx + (i * hw + p) * c;
      const float* g = dy + i * c;
      for (int64_t j = 0; j < c; ++j) d[j] = acc ? d[j] + g[j] * inv : g[j] * inv;
    }
}

}  // namespace mixq
