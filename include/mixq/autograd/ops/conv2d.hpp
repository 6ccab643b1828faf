#pragma once
// conv2d: 2-D convolution, NHWC input, OHWI weight, optional bias.
//
//   x [N, H, W, C], w [Cout, KH, KW, C], b [Cout] (optional) -> y [N, OH, OW, Cout]
//   OH = (H + 2*pad - KH) / stride + 1 (likewise OW).
// Forward and both backward products run the implicit-GEMM micro-kernels of
// core/detail/conv2d_f32.hpp, one image per OpenMP iteration. The input
// gradient is computed only when x needs one (the network's first conv skips
// it). Images are scheduled dynamically; the weight gradient is reduced from
// partials of fixed chunks of 8 images in chunk order, so results are
// bitwise identical for any thread count.
//
// A forward override (conv2d_forward_override) may compute the forward
// product instead, for example on integer kernels when x and w hold integer
// multiples of known steps; the node and its backward stay the FP32 ones.
#include <algorithm>
#include <cstring>

#include "mixq/autograd/tape.hpp"
#include "mixq/core/detail/conv2d_f32.hpp"
#include "mixq/core/parallel.hpp"

namespace mixq {

// Computes y = conv(x, w) (no bias) for conv2d in place of the FP32
// micro-kernels, or declines. run() receives the operands' values and the
// geometry (stride, pad) and writes y [N, OH, OW, Cout] (NHWC, dense);
// it returns false, without touching y, to leave the product to the FP32
// path. What the values mean (codes, steps) is the implementer's business;
// autograd only asks for the product.
class conv2d_forward_override {
 public:
  virtual ~conv2d_forward_override() = default;
  virtual bool run(const tensor_view& x, const tensor_view& w, int64_t stride, int64_t pad,
                   float* y) = 0;
};

struct conv2d_saved {
  int64_t stride;
  int64_t pad;
};

namespace detail {
inline conv::geom conv_geom_of(const shape& xs, const shape& ws, int64_t stride, int64_t pad) {
  return conv::make_geom(xs[0], xs[1], xs[2], xs[3], ws[0], ws[1], ws[2], stride, pad);
}
}  // namespace detail

// requires: x is [N,H,W,C]; w is [Cout,KH,KW,C]; b is invalid (var{}) or [Cout];
//           stride >= 1, pad >= 0, KH <= H + 2*pad, KW <= W + 2*pad.
// ensures:  returns y [N,OH,OW,Cout]; records a node when gradients are on.
//           With fwd (optional) the forward product is fwd->run's when it
//           accepts, the bias added after.
inline var conv2d(var x, var w, var b, int64_t stride = 1, int64_t pad = 0,
                  conv2d_forward_override* fwd = nullptr) {
  detail::check_same_tape(x, w, "conv2d");
  tape& t = *x.t;
  const shape& xs = x.shape();
  const shape& ws = w.shape();
  MIXQ_CHECK(xs.rank() == 4, "conv2d: input must be NHWC [N,H,W,C], got ", xs);
  MIXQ_CHECK(ws.rank() == 4, "conv2d: weight must be [Cout,KH,KW,Cin], got ", ws);
  MIXQ_CHECK(ws[3] == xs[3], "conv2d: weight ", ws, " expects ", ws[3], " input channels, input ",
             xs, " has ", xs[3]);
  MIXQ_CHECK(stride >= 1 && pad >= 0, "conv2d: need stride >= 1 and pad >= 0, got stride ", stride,
             " pad ", pad);
  MIXQ_CHECK(ws[1] <= xs[1] + 2 * pad && ws[2] <= xs[2] + 2 * pad, "conv2d: kernel ", ws,
             " larger than padded input ", xs, " with pad ", pad);
  if (b.valid()) {
    detail::check_same_tape(x, b, "conv2d");
    MIXQ_CHECK(b.shape().rank() == 1 && b.shape()[0] == ws[0], "conv2d: bias must be [", ws[0],
               "], got ", b.shape());
  }
  const detail::conv::geom g = detail::conv_geom_of(xs, ws, stride, pad);
  bool rg = x.requires_grad() || w.requires_grad() || (b.valid() && b.requires_grad());
  var y = t.new_value({g.n, g.oh, g.ow, g.cout}, rg);

  if (fwd && fwd->run(x.value(), w.value(), stride, pad, y.value().data())) {
    if (b.valid()) {
      const float* bd = b.value().data();
      float* yd = y.value().data();
      const int64_t pixels = g.n * g.oh * g.ow;
#pragma omp parallel for schedule(static) if (pixels * g.cout > (int64_t{1} << 18))
      for (int64_t p = 0; p < pixels; ++p)
        for (int64_t c = 0; c < g.cout; ++c) yd[p * g.cout + c] += bd[c];
    }
    if (rg && t.grad_enabled()) t.record(op_kind::conv2d, {x, w, b}, y, conv2d_saved{stride, pad});
    return y;
  }
  const int nt = max_threads();
  const int64_t wf_n = g.k * g.cp, bias_n = g.cp;
  const int64_t xp_n = round_up(g.img_pad(), 16);
  float* s = t.scratch(wf_n + bias_n + (g.pad ? xp_n * nt : 0));
  float* wf = s;
  float* bias = s + wf_n;
  detail::conv::pack_w_forward(g, w.value().data(), wf);
  if (b.valid()) {
    std::memset(bias, 0, static_cast<size_t>(g.cp) * sizeof(float));
    std::memcpy(bias, b.value().data(), static_cast<size_t>(g.cout) * sizeof(float));
  }
  const float* xd = x.value().data();
  float* yd = y.value().data();
  const float* bp = b.valid() ? bias : nullptr;
  // Tiny convolutions (gradchecks, batch-1 inference of small maps) run on
  // the calling thread: a parallel region costs more than they do.
  const bool par = g.n > 1 && g.n * g.oh * g.ow * g.cout * g.k > (int64_t{1} << 18);
#pragma omp parallel if (par)
  {
    float* xp = s + wf_n + bias_n + xp_n * thread_id();
#pragma omp for schedule(dynamic, 1)
    for (int64_t n = 0; n < g.n; ++n) {
      const float* xi = xd + n * g.img_in();
      if (g.pad) {
        detail::conv::pad_image(g, xi, xp);
        xi = xp;
      }
      detail::conv::forward_image(g, xi, wf, bp, yd + n * g.img_out());
    }
  }
  if (rg && t.grad_enabled()) t.record(op_kind::conv2d, {x, w, b}, y, conv2d_saved{stride, pad});
  return y;
}

inline void conv2d_backward(tape& t, const node& nd) {
  const conv2d_saved sv = nd.saved_as<conv2d_saved>();
  const int32_t xi = nd.inputs[0], wi = nd.inputs[1], bi = nd.inputs[2];
  const tensor_view x = t.at(xi).value, w = t.at(wi).value;
  const detail::conv::geom g = detail::conv_geom_of(x.shape(), w.shape(), sv.stride, sv.pad);
  const float* dy = t.grad_of(nd.output);
  const bool need_x = t.needs_grad(xi);
  const bool need_b = bi >= 0 && t.needs_grad(bi);
  const bool need_w = t.needs_grad(wi) || need_b;
  if (!need_x && !need_w) return;

  const int nt = max_threads();
  const int64_t r16 = 16;
  // Stride 1: the input gradient is a forward conv of the padded dy with the
  // flipped kernel (gt); otherwise scatter-add tiles into a padded dx (g).
  const bool as_fwd = detail::conv::backward_input_as_forward(g);
  const detail::conv::geom gt = detail::conv::transposed_geom(g);
  const int64_t wb_n =
      need_x ? round_up(as_fwd ? gt.k * gt.cp : g.kh * g.cout * g.seg_pad, r16) : 0;
  const int64_t xp_n = round_up(std::max(g.img_pad(), gt.img_pad()), r16);
  const bool pad_dy = (g.cout % detail::conv::lanes) != 0;
  const int64_t dyp_n = pad_dy ? round_up(g.oh * g.ow * g.cp, r16) : 0;
  const int64_t per_thread = (need_x ? xp_n : 0) + (need_w ? xp_n + dyp_n : 0);
  const int64_t off_n = need_w ? round_up(g.oh * g.ow, r16) : 0;
  // Weight-gradient partials per fixed chunk of images (not per thread): the
  // chunks are reduced in chunk order, so the result does not depend on the
  // thread count or on which thread ran which chunk (dynamic scheduling keeps
  // both cores busy when one of them is shared with another process).
  const int64_t chunk = 8;
  const int64_t nchunks = (g.n + chunk - 1) / chunk;
  const int64_t part_n = round_up(g.k * g.cp + g.cp, r16);
  const int64_t parts_n = need_w ? part_n * nchunks : 0;
  float* s = t.scratch(wb_n + per_thread * nt + off_n + parts_n);
  float* wb = s;
  int32_t* off = reinterpret_cast<int32_t*>(s + wb_n + per_thread * nt);
  float* parts = s + wb_n + per_thread * nt + off_n;
  if (need_w) detail::conv::pixel_offsets(g, off);
  if (need_x) {
    if (as_fwd)
      detail::conv::pack_w_transposed(g, w.data(), wb);
    else
      detail::conv::pack_w_backward(g, w.data(), wb);
  }

  bool acc_x = false;
  float* dx = need_x ? t.grad_for_write(xi, &acc_x) : nullptr;
  const float* xd = x.data();
  const bool par = g.n > 1 && g.n * g.oh * g.ow * g.cout * g.k > (int64_t{1} << 18);
#pragma omp parallel if (par)
  {
    float* mine = s + wb_n + per_thread * thread_id();
    float* dxp = mine;
    float* xp = mine + (need_x ? xp_n : 0);
    float* dyp = xp + xp_n;
#pragma omp for schedule(dynamic, 1)
    for (int64_t ci = 0; ci < nchunks; ++ci) {
      float* dwp = parts + ci * part_n;
      if (need_w) std::memset(dwp, 0, static_cast<size_t>(part_n) * sizeof(float));
      const int64_t n_end = std::min(g.n, (ci + 1) * chunk);
      for (int64_t n = ci * chunk; n < n_end; ++n) {
        const float* dyi = dy + n * g.img_out();
        if (need_w) {
          const float* xin = xd + n * g.img_in();
          if (g.pad) {
            detail::conv::pad_image(g, xin, xp);
            xin = xp;
          }
          const float* dsrc = dyi;
          int64_t ldd = g.cout;
          if (pad_dy) {
            for (int64_t p = 0; p < g.oh * g.ow; ++p) {
              float* d = dyp + p * g.cp;
              std::memcpy(d, dyi + p * g.cout, static_cast<size_t>(g.cout) * sizeof(float));
              for (int64_t c = g.cout; c < g.cp; ++c) d[c] = 0.0f;
            }
            dsrc = dyp;
            ldd = g.cp;
          }
          detail::conv::backward_weight_image(g, xin, dsrc, ldd, off, dwp);
          if (need_b) {
            float* dbp = dwp + g.k * g.cp;
            for (int64_t p = 0; p < g.oh * g.ow; ++p) {
              const float* row = dyi + p * g.cout;
#pragma omp simd
              for (int64_t c = 0; c < g.cout; ++c) dbp[c] += row[c];
            }
          }
        }
        if (need_x && as_fwd) {
          const float* src = dyi;
          if (gt.pad) {
            detail::conv::pad_image(gt, dyi, dxp);
            src = dxp;
          }
          detail::conv::forward_image(gt, src, wb, nullptr, dx + n * g.img_in(), acc_x);
        } else if (need_x) {
          std::memset(dxp, 0, static_cast<size_t>(g.img_pad()) * sizeof(float));
          detail::conv::backward_input_image(g, dyi, wb, dxp);
          float* dxi = dx + n * g.img_in();
          const int64_t row = g.w * g.c;
          for (int64_t i = 0; i < g.h; ++i) {
            const float* src = dxp + ((i + g.pad) * g.wp + g.pad) * g.c;
            detail::store_grad(dxi + i * row, src, row, acc_x);
          }
        }
      }
    }
  }
  if (need_w) {
    // Reduce the chunk partials ([k][cp] + bias[cp]) in chunk order.
    bool acc_w = false, acc_b = false;
    float* dw = t.needs_grad(wi) ? t.grad_for_write(wi, &acc_w) : nullptr;
    float* db = need_b ? t.grad_for_write(bi, &acc_b) : nullptr;
    for (int64_t ci = 1; ci < nchunks; ++ci) {
      const float* src = parts + ci * part_n;
#pragma omp simd
      for (int64_t i = 0; i < part_n; ++i) parts[i] += src[i];
    }
    for (int64_t co = 0; co < g.cout; ++co) {
      if (dw) {
        for (int64_t k = 0; k < g.k; ++k) {
          const float v = parts[k * g.cp + co];
          dw[co * g.k + k] = acc_w ? dw[co * g.k + k] + v : v;
        }
      }
      if (db) {
        const float v = parts[g.k * g.cp + co];
        db[co] = acc_b ? db[co] + v : v;
      }
    }
  }
}

}  // namespace mixq
