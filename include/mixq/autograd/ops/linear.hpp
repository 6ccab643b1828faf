#pragma once
// linear: y = x w^T + b, x [N, in], w [out, in], b [out] (optional).
// FP32 GEMM through Eigen maps over the raw buffers (row-major views).
#include <Eigen/Core>

#include "mixq/autograd/tape.hpp"

namespace mixq {

struct linear_saved {
  int32_t unused;
};

namespace detail {
using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using map_rm = Eigen::Map<row_matrix>;
using cmap_rm = Eigen::Map<const row_matrix>;
}  // namespace detail

inline var linear(var x, var w, var b = var{}) {
  detail::check_same_tape(x, w, "linear");
  const shape& xs = x.shape();
  const shape& ws = w.shape();
  MIXQ_CHECK(xs.rank() == 2, "linear: input must be [N, in], got ", xs);
  MIXQ_CHECK(ws.rank() == 2 && ws[1] == xs[1], "linear: weight must be [out, ", xs[1], "], got ",
             ws);
  if (b.valid()) {
    detail::check_same_tape(x, b, "linear");
    MIXQ_CHECK(b.shape() == shape({ws[0]}), "linear: bias must be [", ws[0], "], got ", b.shape());
  }
  tape& t = *x.t;
  const int64_t n = xs[0], in = xs[1], out = ws[0];
  const bool rg = x.requires_grad() || w.requires_grad() || (b.valid() && b.requires_grad());
  var y = t.new_value({n, out}, rg);
  detail::cmap_rm X(x.value().data(), n, in);
  detail::cmap_rm W(w.value().data(), out, in);
  detail::map_rm Y(y.value().data(), n, out);
  Y.noalias() = X * W.transpose();
  if (b.valid()) {
    const float* bd = b.value().data();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < out; ++j) Y(i, j) += bd[j];
  }
  if (rg && t.grad_enabled()) t.record(op_kind::linear, {x, w, b}, y, linear_saved{0});
  return y;
}

inline void linear_backward(tape& t, const node& nd) {
  const int32_t xi = nd.inputs[0], wi = nd.inputs[1], bi = nd.inputs[2];
  const tensor_view x = t.at(xi).value, w = t.at(wi).value;
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  detail::cmap_rm dY(t.grad_of(nd.output), n, out);
  bool acc = false;
  if (t.needs_grad(xi)) {
    detail::map_rm dX(t.grad_for_write(xi, &acc), n, in);
    detail::cmap_rm W(w.data(), out, in);
    if (acc)
      dX.noalias() += dY * W;
    else
      dX.noalias() = dY * W;
  }
  if (t.needs_grad(wi)) {
    detail::map_rm dW(t.grad_for_write(wi, &acc), out, in);
    detail::cmap_rm X(x.data(), n, in);
    if (acc)
      dW.noalias() += dY.transpose() * X;
    else
      dW.noalias() = dY.transpose() * X;
  }
  if (bi >= 0 && t.needs_grad(bi)) {
    float* db = t.grad_for_write(bi, &acc);
    for (int64_t j = 0; j < out; ++j) {
      float s = 0.0f;
      for (int64_t i = 0; i < n; ++i) s += dY(i, j);
      db[j] = acc ? db[j] + s : s;
    }
  }
}

}  // namespace mixq
