#pragma once
// shortcut_a: the parameter-free ResNet "option A" shortcut (He et al. 2016,
// CIFAR ResNets): spatial subsampling by `stride` (keep pixels 0, s, 2s, ...)
// and zero padding of the channels from C to Cout, split evenly:
// (Cout - C) / 2 zero channels before the input's channels, the rest after
// (PyTorch's common F.pad(x[:, :, ::2, ::2], (0,0,0,0, planes//4, planes//4))).
//   x [N, H, W, C] -> y [N, ceil(H/s), ceil(W/s), Cout]
#include "mixq/autograd/tape.hpp"

namespace mixq {

struct shortcut_a_saved {
  int64_t stride;
  int64_t pad_lo;
};

inline var shortcut_a(var x, int64_t out_channels, int64_t stride = 2) {
  MIXQ_CHECK(x.valid(), "shortcut_a: invalid var");
  const shape& xs = x.shape();
  MIXQ_CHECK(xs.rank() == 4, "shortcut_a: input must be NHWC [N,H,W,C], got ", xs);
  MIXQ_CHECK(out_channels >= xs[3], "shortcut_a: out_channels ", out_channels,
             " smaller than input channels ", xs[3]);
  MIXQ_CHECK(stride >= 1, "shortcut_a: stride must be >= 1, got ", stride);
  tape& t = *x.t;
  const int64_t n = xs[0], h = xs[1], w = xs[2], c = xs[3];
  const int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
  const int64_t lo = (out_channels - c) / 2;
  var y = t.new_value({n, oh, ow, out_channels}, x.requires_grad());
  const float* a = x.value().data();
  float* b = y.value().data();
#pragma omp parallel for schedule(static) if (n * oh * ow * out_channels > 65536)
  for (int64_t i = 0; i < n * oh; ++i) {
    const int64_t img = i / oh, r = i % oh;
    for (int64_t q = 0; q < ow; ++q) {
      float* o = b + (i * ow + q) * out_channels;
      const float* s = a + ((img * h + r * stride) * w + q * stride) * c;
      for (int64_t j = 0; j < lo; ++j) o[j] = 0.0f;
      for (int64_t j = 0; j < c; ++j) o[lo + j] = s[j];
      for (int64_t j = lo + c; j < out_channels; ++j) o[j] = 0.0f;
    }
  }
  if (x.requires_grad() && t.grad_enabled())
    t.record(op_kind::shortcut_a, {x}, y, shortcut_a_saved{stride, lo});
  return y;
}

inline void shortcut_a_backward(tape& t, const node& nd) {
  const shortcut_a_saved sv = nd.saved_as<shortcut_a_saved>();
  const int32_t xi = nd.inputs[0];
  if (!t.needs_grad(xi)) return;
  const shape& xs = t.at(xi).value.shape();
  const shape& ys = t.at(nd.output).value.shape();
  const int64_t n = xs[0], h = xs[1], w = xs[2], c = xs[3];
  const int64_t oh = ys[1], ow = ys[2], co = ys[3], s = sv.stride;
  const float* dy = t.grad_of(nd.output);
  bool acc = false;
  float* dx = t.grad_for_write(xi, &acc);
  if (!acc)
    for (int64_t i = 0; i < n * h * w * c; ++i) dx[i] = 0.0f;
#pragma omp parallel for schedule(static) if (n * oh * ow * co > 65536)
  for (int64_t i = 0; i < n * oh; ++i) {
    const int64_t img = i / oh, r = i % oh;
    for (int64_t q = 0; q < ow; ++q) {
      const float* g = dy + (i * ow + q) * co + sv.pad_lo;
      float* d = dx + ((img * h + r * s) * w + q * s) * c;
      for (int64_t j = 0; j < c; ++j) d[j] += g[j];
    }
  }
}

}  // namespace mixq
