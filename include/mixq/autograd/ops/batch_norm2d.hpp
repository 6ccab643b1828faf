#pragma once
// batch_norm2d: per-channel normalisation of an NHWC tensor, optional fused ReLU.
//
//   training: mean/var over N*H*W rows (biased var for normalising; the
//             running variance gets the unbiased one, as in PyTorch):
//             running = (1 - momentum) * running + momentum * batch_stat
//   eval:     normalise with the running statistics.
//   y = gamma * (x - mean) / sqrt(var + eps) + beta, then max(y, 0) if relu.
// Saved: the input x (x-hat and the ReLU mask are recomputed from x in
// backward, so backward never reads y), per-channel mean, 1/sqrt(var+eps) and
// the affine scale/shift in the arena.
// Accuracy: the per-channel sums (mean and variance forward; sum g and
// sum g * x-hat backward) accumulate in double in fixed blocks of rows added
// in block order (detail::channel_sums), so they are accurate to float
// rounding of the results and bitwise the same at any thread count.
#include <cmath>

#include "mixq/autograd/tape.hpp"
#include "mixq/core/parallel.hpp"

namespace mixq {

struct batch_norm2d_saved {
  const float* mean;
  const float* invstd;
  const double* mean64;    // mean and invstd before rounding to float, for the
  const double* invstd64;  // backward sums
  const float* scale;      // gamma * invstd
  const float* shift;      // beta - mean * scale
  bool training;
  bool relu;
};

struct batch_norm2d_args {
  bool training = true;
  float momentum = 0.1f;
  float eps = 1e-5f;
  bool relu = false;  // fuse a ReLU after the affine transform
};

namespace detail {
constexpr int64_t bn_block_rows = 256;
inline int64_t bn_blocks(int64_t rows) { return (rows + bn_block_rows - 1) / bn_block_rows; }

// Per-channel sums over rows of a [rows, c] matrix into s0, s1.
// f(r0, r1, acc0, acc1) adds rows [r0, r1) into double accumulators (one per
// channel, vectorised across channels). Each block of 256 rows has its own
// slot in `parts` (2*c doubles per block), and the block sums are added in
// block order: the result does not depend on the thread count or schedule,
// and every term is summed in double, so the sums are exact to double
// rounding (float partial sums left errors of 1e-6 relative and more, the
// largest part of a ResNet step's gradient error against float64).
template <class F>
inline void channel_sums(int64_t rows, int64_t c, double* parts, double* s0, double* s1, F f) {
  const int64_t nblocks = bn_blocks(rows);
#pragma omp parallel for schedule(dynamic, 4) if (rows * c > 65536)
  for (int64_t bi = 0; bi < nblocks; ++bi) {
    double* a0 = parts + 2 * c * bi;
    double* a1 = a0 + c;
    for (int64_t j = 0; j < c; ++j) a0[j] = a1[j] = 0.0;
    const int64_t r0 = bi * bn_block_rows;
    const int64_t r1 = r0 + bn_block_rows < rows ? r0 + bn_block_rows : rows;
    f(r0, r1, a0, a1);
  }
  for (int64_t j = 0; j < c; ++j) s0[j] = s1[j] = 0.0;
  for (int64_t bi = 0; bi < nblocks; ++bi) {
    const double* a0 = parts + 2 * c * bi;
    for (int64_t j = 0; j < c; ++j) {
      s0[j] += a0[j];
      s1[j] += a0[c + j];
    }
  }
}
// Tape scratch (floats, 64-byte aligned by the tape): s0, s1 (2*c doubles),
// 3*c floats (K0..K2), then the block partials (2*c doubles per block).
struct bn_scratch_layout {
  double* s0;
  double* s1;
  float* k;
  double* parts;
};
inline bn_scratch_layout bn_scratch(tape& t, int64_t c, int64_t rows) {
  const int64_t head = (4 * c + 3 * c + 15) / 16 * 16;  // floats, rounded to 64 bytes
  float* base = t.scratch(head + 4 * c * bn_blocks(rows));
  bn_scratch_layout l;
  l.s0 = reinterpret_cast<double*>(base);
  l.s1 = l.s0 + c;
  l.k = reinterpret_cast<float*>(l.s1 + c);
  l.parts = reinterpret_cast<double*>(base + head);
  return l;
}
}  // namespace detail

// requires: x [N,H,W,C] (or [N,C]); gamma, beta [C]; running_mean/var views of [C].
// ensures:  y has x's shape; in training mode running stats are updated.
inline var batch_norm2d(var x, var gamma, var beta, const tensor_view& running_mean,
                        const tensor_view& running_var, const batch_norm2d_args& a = {}) {
  detail::check_same_tape(x, gamma, "batch_norm2d");
  detail::check_same_tape(x, beta, "batch_norm2d");
  tape& t = *x.t;
  const shape& xs = x.shape();
  MIXQ_CHECK(xs.rank() >= 2, "batch_norm2d: input must be [N,...,C], got ", xs);
  const int64_t c = xs[xs.rank() - 1];
  const int64_t rows = xs.numel() / (c ? c : 1);
  MIXQ_CHECK(gamma.shape() == shape({c}) && beta.shape() == shape({c}),
             "batch_norm2d: gamma/beta must be [", c, "], got ", gamma.shape(), " and ",
             beta.shape());
  MIXQ_CHECK(running_mean.numel() == c && running_var.numel() == c,
             "batch_norm2d: running stats must have ", c, " elements, got ", running_mean.numel(),
             " and ", running_var.numel());
  MIXQ_CHECK(!a.training || rows > 1,
             "batch_norm2d: training needs more than one value per channel, input ", xs);
  const bool rg = x.requires_grad() || gamma.requires_grad() || beta.requires_grad();
  var y = t.new_value(xs, rg);
  float* mean = t.alloc(c);
  float* invstd = t.alloc(c);
  double* mean64 = reinterpret_cast<double*>(t.alloc(4 * c));  // arena memory is 64-byte aligned
  double* invstd64 = mean64 + c;
  const float* xd = x.value().data();
  if (a.training) {
    const detail::bn_scratch_layout sl = detail::bn_scratch(t, c, rows);
    double* s0 = sl.s0;
    double* s1 = sl.s1;
    // Sums of (x - k) and (x - k)^2 with k = the first row: shifting by a
    // sample keeps E[d^2] - E[d]^2 accurate when |mean| >> std.
    const float* k = xd;
    detail::channel_sums(
        rows, c, sl.parts, s0, s1, [&](int64_t r0, int64_t r1, double* a0, double* a1) {
          for (int64_t r = r0; r < r1; ++r) {
            const float* p = xd + r * c;
#pragma omp simd
            for (int64_t j = 0; j < c; ++j) {
              const double d = static_cast<double>(p[j]) - static_cast<double>(k[j]);
              a0[j] += d;
              a1[j] += d * d;
            }
          }
        });
    for (int64_t j = 0; j < c; ++j) {
      double dm = s0[j] / static_cast<double>(rows);
      double var = s1[j] / static_cast<double>(rows) - dm * dm;
      if (var < 0) var = 0;
      double m = static_cast<double>(k[j]) + dm;
      mean64[j] = m;
      invstd64[j] = 1.0 / std::sqrt(var + static_cast<double>(a.eps));
      mean[j] = static_cast<float>(m);
      invstd[j] = static_cast<float>(invstd64[j]);
      double unbiased = var * static_cast<double>(rows) / static_cast<double>(rows - 1);
      running_mean[j] = (1.0f - a.momentum) * running_mean[j] + a.momentum * static_cast<float>(m);
      running_var[j] =
          (1.0f - a.momentum) * running_var[j] + a.momentum * static_cast<float>(unbiased);
    }
  } else {
    for (int64_t j = 0; j < c; ++j) {
      mean[j] = running_mean[j];
      invstd[j] = 1.0f / std::sqrt(running_var[j] + a.eps);
      mean64[j] = mean[j];
      invstd64[j] = invstd[j];
    }
  }
  // y = x * scale + shift
  float* scale = t.alloc(c);
  float* shift = t.alloc(c);
  const float* gd = gamma.value().data();
  const float* bd = beta.value().data();
  for (int64_t j = 0; j < c; ++j) {
    scale[j] = gd[j] * invstd[j];
    shift[j] = bd[j] - mean[j] * scale[j];
  }
  float* yd = y.value().data();
  const bool relu = a.relu;
#pragma omp parallel for schedule(dynamic, 256) if (rows * c > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = xd + r * c;
    float* q = yd + r * c;
    if (relu) {
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) {
        const float v = p[j] * scale[j] + shift[j];
        q[j] = v > 0.0f ? v : 0.0f;
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) q[j] = p[j] * scale[j] + shift[j];
    }
  }
  if (rg && t.grad_enabled())
    t.record(op_kind::batch_norm2d, {x, gamma, beta}, y,
             batch_norm2d_saved{mean, invstd, mean64, invstd64, scale, shift, a.training, a.relu});
  return y;
}

namespace detail {
// dx rows for batch-norm backward; Relu: mask by x*scale + shift > 0 (the
// forward's pre-activation, recomputed), Acc: add into dx.
template <bool Relu, bool Acc>
inline void bn_backward_rows(int64_t rows, int64_t c, const float* xd, const float* dy,
                             const float* mean, const float* invstd, const float* scale,
                             const float* shift, const float* K0, const float* K1, const float* K2,
                             float* dx) {
#pragma omp parallel for schedule(dynamic, 256) if (rows * c > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const float* p = xd + r * c;
    const float* gy = dy + r * c;
    float* d = dx + r * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      float g = gy[j];
      if (Relu) g = (p[j] * scale[j] + shift[j] > 0.0f) ? g : 0.0f;
      const float xh = (p[j] - mean[j]) * invstd[j];
      const float v = K0[j] * (g - K1[j] - xh * K2[j]);
      d[j] = Acc ? d[j] + v : v;
    }
  }
}
}  // namespace detail

inline void batch_norm2d_backward(tape& t, const node& nd) {
  const batch_norm2d_saved sv = nd.saved_as<batch_norm2d_saved>();
  const int32_t xi = nd.inputs[0], gi = nd.inputs[1], bi = nd.inputs[2];
  const tensor_view x = t.at(xi).value;
  const int64_t c = x.dim(x.rank() - 1);
  const int64_t rows = x.numel() / c;
  const float* xd = x.data();
  const float* dy = t.grad_of(nd.output);
  const float* mean = sv.mean;
  const float* invstd = sv.invstd;
  const double* mean64 = sv.mean64;
  const float* scale = sv.scale;
  const float* shift = sv.shift;
  const float* gamma = t.at(gi).value.data();
  const bool relu = sv.relu;
  // sums: s0 = sum g, s1 = sum g * xhat, with g = dy masked by the ReLU.
  const detail::bn_scratch_layout sl = detail::bn_scratch(t, c, rows);
  double* s0 = sl.s0;
  double* s1 = sl.s1;
  detail::channel_sums(
      rows, c, sl.parts, s0, s1, [&](int64_t r0, int64_t r1, double* a0, double* a1) {
        for (int64_t r = r0; r < r1; ++r) {
          const float* p = xd + r * c;
          const float* gy = dy + r * c;
          if (relu) {
            // The ReLU mask in float first (a vector blend, as in the
            // forward), then the double sums: mixing the two in one loop
            // leaves GCC with a branch per element.
            for (int64_t j0 = 0; j0 < c; j0 += 64) {
              const int64_t n = c - j0 < 64 ? c - j0 : 64;
              float gm[64];
#pragma omp simd
              for (int64_t j = 0; j < n; ++j)
                gm[j] = (p[j0 + j] * scale[j0 + j] + shift[j0 + j] > 0.0f) ? gy[j0 + j] : 0.0f;
#pragma omp simd
              for (int64_t j = 0; j < n; ++j) {
                const double g = gm[j];
                a0[j0 + j] += g;
                // times invstd after the sum
                a1[j0 + j] += g * (static_cast<double>(p[j0 + j]) - mean64[j0 + j]);
              }
            }
          } else {
#pragma omp simd
            for (int64_t j = 0; j < c; ++j) {
              const double g = gy[j];
              a0[j] += g;
              a1[j] += g * (static_cast<double>(p[j]) - mean64[j]);
            }
          }
        }
      });
  for (int64_t j = 0; j < c; ++j) s1[j] *= sv.invstd64[j];
  bool acc = false;
  if (t.needs_grad(gi)) {
    float* dg = t.grad_for_write(gi, &acc);
    for (int64_t j = 0; j < c; ++j) {
      float v = static_cast<float>(s1[j]);
      dg[j] = acc ? dg[j] + v : v;
    }
  }
  if (t.needs_grad(bi)) {
    float* db = t.grad_for_write(bi, &acc);
    for (int64_t j = 0; j < c; ++j) {
      float v = static_cast<float>(s0[j]);
      db[j] = acc ? db[j] + v : v;
    }
  }
  if (!t.needs_grad(xi)) return;
  float* dx = t.grad_for_write(xi, &acc);
  // training: dx = gamma*invstd * (g - mean(g) - xhat * mean(g*xhat))
  // eval:     dx = gamma*invstd * g
  float* K0 = sl.k;
  float* K1 = K0 + c;
  float* K2 = K1 + c;
  for (int64_t j = 0; j < c; ++j) {
    K0[j] = gamma[j] * invstd[j];
    K1[j] = sv.training ? static_cast<float>(s0[j] / static_cast<double>(rows)) : 0.0f;
    K2[j] = sv.training ? static_cast<float>(s1[j] / static_cast<double>(rows)) : 0.0f;
  }
  if (relu && acc)
    detail::bn_backward_rows<true, true>(rows, c, xd, dy, mean, invstd, scale, shift, K0, K1, K2,
                                         dx);
  else if (relu)
    detail::bn_backward_rows<true, false>(rows, c, xd, dy, mean, invstd, scale, shift, K0, K1, K2,
                                          dx);
  else if (acc)
    detail::bn_backward_rows<false, true>(rows, c, xd, dy, mean, invstd, scale, shift, K0, K1, K2,
                                          dx);
  else
    detail::bn_backward_rows<false, false>(rows, c, xd, dy, mean, invstd, scale, shift, K0, K1, K2,
                                           dx);
}

}  // namespace mixq
