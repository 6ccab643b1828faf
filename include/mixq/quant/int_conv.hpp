#pragma once
// int_conv: the forward product of a quantized convolution on the integer
// kernels, installed on nn::conv2d as its forward override
// (autograd/ops/conv2d.hpp). The backward stays the FP32 one.
//
// Math. After its hooks, a quantized conv multiplies integer multiples of
// known steps:
//   x = s_a * a        a in [0, 2^b_a - 1]  (the input quantizer's act_grid,
//                                            zero point 0)
//   w = s_w,n * c      c the weight grid's codes lowered for the kernels
//                      (lower.hpp, odd_lowering::wide: LSQ codes as they are,
//                      DoReFa's odd levels as b+1-bit codes, step / 2)
// so conv(x, w)[p][n] = s_a * s_w,n * acc[p][n], acc = sum a * c over the
// receptive field: the exact int32 accumulator kernels::qconv2d returns as
// its raw output (|acc| <= 9 * C_in * 255 * 128, < 2^31 for C_in <= 7300).
// The FP32 kernels form the same sum in float, rounding at every addition;
// this product rounds once, in the final multiply, so the two agree to float
// rounding (tests/quant/test_int_conv.cpp), and the integer one is what the
// runtime computes before its requantization.
//
// Layout. x [N, H, W, C] float -> a padded u8 buffer [N][H+2][W+2][C] with
// a zero halo (code 0 = value 0: the FP32 conv's zero padding), the layout
// kernels::qconv2d reads for 3x3 and 1x1 convs alike; w [Cout, K, K, Cin]
// (OHWI) is the kernels' weight layout; the raw accumulator
// [N * OH * OW][Cout] is y's NHWC layout.
//
// It declines (returns false: the FP32 product runs, counted in declined())
// when the conv is not one the driver takes (kernel 1 or 3, stride 1 or 2,
// pad = kernel / 2), a grid is not ready or has an activation zero point, a
// DoReFa grid is at 8 bits (its wide lowering needs 9; the act_sum lowering
// would need a per-pixel activation sum), or a value of x or w is not on its
// grid (|v / step - round(v / step)| > 1/64, or a code out of range), as with
// a quantizer bypassed.
//
// Cost per forward: one pass over x (codes into the padded buffer), the
// weight grid exported, checked and packed (the weights change every step),
// the integer convolution on the kernel the dispatcher picks for (b_w, b_a),
// and one pass over y. The buffers live in an int_conv_workspace that every
// conv of a model shares (one conv runs at a time).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "mixq/kernels/conv/qconv.hpp"
#include "mixq/nn/conv2d.hpp"
#include "mixq/quant/lower.hpp"
#include "mixq/quant/quantizer.hpp"

namespace mixq {
namespace quant {

struct int_conv_workspace {
  std::vector<uint8_t> in;       // padded activation codes
  std::vector<int32_t> acc;      // raw accumulator
  std::vector<float> out_scale;  // s_a * s_w,n per output channel
};

class int_conv_forward : public conv2d_forward_override {
 public:
  // requires: conv's input and weight hooks hold aq and wq (quantize() sets
  //           them); the three outlive this object.
  int_conv_forward(const nn::conv2d& conv, act_quantizer& aq, weight_quantizer& wq,
                   std::shared_ptr<int_conv_workspace> ws)
      : conv_(&conv), aq_(&aq), wq_(&wq), ws_(std::move(ws)) {
    if (!ws_) ws_ = std::make_shared<int_conv_workspace>();
  }

  bool run(const tensor_view& x, const tensor_view& w, int64_t stride, int64_t pad,
           float* y) override {
    if (!compute(x, w, stride, pad, y)) {
      ++declined_;
      return false;
    }
    ++accepted_;
    return true;
  }

  int64_t accepted() const { return accepted_; }
  int64_t declined() const { return declined_; }

 private:
  bool compute(const tensor_view& x, const tensor_view& w, int64_t stride, int64_t pad, float* y) {
    const shape& xs = x.shape();
    const shape& wsh = w.shape();
    const int64_t k = wsh[1];
    if ((k != 1 && k != 3) || wsh[2] != k || (stride != 1 && stride != 2) || pad != k / 2)
      return false;
    if (!aq_->ready()) return false;
    const act_grid ag = aq_->export_grid();
    if (ag.zero_point != 0 || !(ag.scale > 0.0f)) return false;
    const weight_grid wg = wq_->export_grid(conv_->weight.value);
    if (wg.zero_point != 0.0f && wg.bits + 1 > max_bits) return false;
    const lowered_weights lw = lower_weights(wg, odd_lowering::wide);

    kernels::conv_geometry g;
    g.batch = xs[0];
    g.h = xs[1];
    g.w = xs[2];
    g.c_in = xs[3];
    g.c_out = wsh[0];
    g.kernel = static_cast<int>(k);
    g.stride = static_cast<int>(stride);
    if (!weights_on_grid(w, lw)) return false;
    if (!codes_of(x, ag, g)) return false;
    kernels::qconv_weights pw;
    try {
      pw = kernels::qconv_pack(g, lw.codes.data(), lw.bits, ag.bits);
    } catch (const mixq::error&) {
      return false;
    }
    const int64_t pixels = g.pixels_out(), cout = g.c_out;
    ws_->acc.resize(static_cast<size_t>(pixels * cout));
    int32_t* acc = ws_->acc.data();
    kernels::qconv2d(g, pw, ws_->in.data(), kernels::requant_params{}, nullptr,
                     kernels::conv_output{}, acc);
    std::vector<float>& m = ws_->out_scale;
    m.resize(static_cast<size_t>(cout));
    for (int64_t n = 0; n < cout; ++n)
      m[static_cast<size_t>(n)] =
          ag.scale * lw.scale[lw.scale.size() == 1 ? 0 : static_cast<size_t>(n)];
    const float* mp = m.data();
#pragma omp parallel for schedule(static) if (pixels * cout > (int64_t{1} << 16))
    for (int64_t p = 0; p < pixels; ++p)
      for (int64_t n = 0; n < cout; ++n)
        y[p * cout + n] = static_cast<float>(acc[p * cout + n]) * mp[n];
    return true;
  }

  // Whether every w[i] equals scale * code (to 1/64 of a step): the lowered
  // grid is the forward's weight, not a stale or bypassed one.
  static bool weights_on_grid(const tensor_view& w, const lowered_weights& lw) {
    const int64_t n = w.numel();
    if (static_cast<int64_t>(lw.codes.size()) != n) return false;
    const int64_t per = n / static_cast<int64_t>(lw.scale.size());
    const float* wd = w.data();
    for (int64_t i = 0; i < n; ++i) {
      const float s = lw.scale[static_cast<size_t>(i / per)];
      if (std::fabs(wd[i] / s - static_cast<float>(lw.codes[static_cast<size_t>(i)])) > 1.0f / 64)
        return false;
    }
    return true;
  }

  // x's codes into the padded buffer (zero halo); false when a value is off
  // the grid.
  bool codes_of(const tensor_view& x, const act_grid& ag, const kernels::conv_geometry& g) {
    const int64_t hp = g.h + 2, wp = g.w + 2, c = g.c_in, row = g.w * c;
    const size_t bytes = static_cast<size_t>(kernels::qconv_input_bytes(g));
    if (ws_->in.size() < bytes) ws_->in.assign(bytes, 0);
    uint8_t* buf = ws_->in.data();
    const float* xd = x.data();
    const float inv = 1.0f / ag.scale, q = static_cast<float>(ag.max_code());
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (g.batch > 1)
    for (int64_t i = 0; i < g.batch; ++i) {
      uint8_t* img = buf + i * hp * wp * c;
      std::memset(img, 0, static_cast<size_t>(wp * c));
      std::memset(img + (hp - 1) * wp * c, 0, static_cast<size_t>(wp * c));
      for (int64_t r = 0; r < g.h; ++r) {
        uint8_t* dst = img + (r + 1) * wp * c;
        std::memset(dst, 0, static_cast<size_t>(c));
        std::memset(dst + (g.w + 1) * c, 0, static_cast<size_t>(c));
        const float* src = xd + (i * g.h + r) * row;
        dst += c;
        int b = 0;
        for (int64_t j = 0; j < row; ++j) {
          const float v = src[j] * inv;
          const float code = std::nearbyint(v);
          b |= static_cast<int>(std::fabs(v - code) > 1.0f / 64) | static_cast<int>(code < 0.0f) |
               static_cast<int>(code > q);
          dst[j] = static_cast<uint8_t>(static_cast<int>(code) & 0xff);
        }
        bad |= b;
      }
    }
    return bad == 0;
  }

  const nn::conv2d* conv_;
  act_quantizer* aq_;
  weight_quantizer* wq_;
  std::shared_ptr<int_conv_workspace> ws_;
  int64_t accepted_ = 0, declined_ = 0;
};

}  // namespace quant
}  // namespace mixq
