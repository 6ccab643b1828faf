#pragma once
// Scalar reference convolution: the golden model for kernels/conv/qconv.hpp.
//
// Math (everything in int64, direct loops, no im2col, no padded buffer):
//   x    uint8 NHWC, UNPADDED: x[((i*H + y)*W + x)*C_in + c], codes in [0, 255]
//   w    int8 [C_out][KH][KW][C_in] (tap-major, channel-minor, the layout the
//        fast path packs from), kernel KH = KW in {1, 3}
//   pad  P (1 for 3x3, 0 for 1x1); input positions outside the image read the
//        value `pad_value` (the activation zero point, 0 after ReLU)
//   OH = (H + 2P - KH) / S + 1,  OW = (W + 2P - KW) / S + 1,  S in {1, 2}
//   acc[i][oy][ox][n] = sum_{dy,dx,c} xin(i, oy*S + dy - P, ox*S + dx - P, c)
//                                      * w[n][dy][dx][c]            (int64)
// Requantization (the project's one rule, kernels/requant.hpp, requant_one):
//   out = clamp(zp + rhaz((acc + bias[n]) * qm[n] + r * res_qm[n], rshift[n]), lo, hi)
// with the residual code r described *semantically* (not by byte offsets, so
// the fast path's offset arithmetic is checked against this definition):
//   r = res[((i*RH + oy*RS)*RW + ox*RS)*RC + (n - res_ch_lo)] when
//       0 <= n - res_ch_lo < RC, else 0.
// That is the ResNet "option A" shortcut: a stride-RS subsample of a
// RC-channel map whose channels land at [res_ch_lo, res_ch_lo + RC) of the
// C_out output channels, the others being zero. RS = 1, res_ch_lo = 0,
// RC = C_out is the plain identity shortcut.
// Overflow: the int64 sum cannot overflow (|acc| <= 9 * C_in * 255 * 128);
// qconv_ref_acc returns the exact value and the caller checks that it fits
// the fast path's int32 (|acc + bias| < 2^31), as requant_one assumes.
// This file shares nothing with the fast path except requant_one and the
// plain parameter structs (conv_geometry, requant_params); it computes the
// output size and every address itself.
#include <cstdint>

#include "mixq/kernels/conv/conv_types.hpp"
#include "mixq/kernels/requant.hpp"

namespace mixq {
namespace kernels {
namespace ref {

/// The reference's view of a conv layer: its geometry g, an explicit pad
/// (kernel / 2 for a conv_geometry) and the value read outside the image.
struct conv_ref_shape {
  conv_geometry g;
  int pad = 1;
  int pad_value = 0;
  conv_ref_shape() = default;
  explicit conv_ref_shape(const conv_geometry& geo, int pad_value_ = 0) noexcept
      : g(geo), pad(geo.kernel / 2), pad_value(pad_value_) {}
  std::int64_t out_h() const { return (g.h + 2 * pad - g.kernel) / g.stride + 1; }
  std::int64_t out_w() const { return (g.w + 2 * pad - g.kernel) / g.stride + 1; }
};

/// acc[((i*OH + oy)*OW + ox)*C_out + n], exact int64, bias not added.
inline void qconv_ref_acc(const conv_ref_shape& s, const std::uint8_t* x, const std::int8_t* w,
                          std::int64_t* acc) noexcept {
  const std::int64_t oh = s.out_h(), ow = s.out_w();
  for (std::int64_t i = 0; i < s.g.batch; ++i)
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox)
        for (std::int64_t n = 0; n < s.g.c_out; ++n) {
          std::int64_t sum = 0;
          for (int dy = 0; dy < s.g.kernel; ++dy)
            for (int dx = 0; dx < s.g.kernel; ++dx) {
              const std::int64_t iy = oy * s.g.stride + dy - s.pad;
              const std::int64_t ix = ox * s.g.stride + dx - s.pad;
              const bool inside = iy >= 0 && iy < s.g.h && ix >= 0 && ix < s.g.w;
              for (std::int64_t c = 0; c < s.g.c_in; ++c) {
                const std::int64_t a =
                    inside ? x[((i * s.g.h + iy) * s.g.w + ix) * s.g.c_in + c] : s.pad_value;
                const std::int64_t wv = w[((n * s.g.kernel + dy) * s.g.kernel + dx) * s.g.c_in + c];
                sum += a * wv;
              }
            }
          acc[((i * oh + oy) * ow + ox) * s.g.c_out + n] = sum;
        }
}

/// Semantic description of the residual input (see the file comment).
struct conv_ref_residual {
  const std::uint8_t* res = nullptr;  ///< unpadded NHWC [batch][rh][rw][rc]; nullptr = none
  std::int64_t rh = 0, rw = 0, rc = 0;
  int stride = 1;                        ///< subsample factor RS
  std::int64_t ch_lo = 0;                ///< output channel of residual channel 0
  const std::int32_t* res_qm = nullptr;  ///< [C_out]
};

/// out[((i*OH + oy)*OW + ox)*C_out + n] (unpadded NHWC uint8) from acc.
inline void qconv_ref_requantize(const conv_ref_shape& s, const std::int64_t* acc,
                                 const requant_params& q, const conv_ref_residual& r,
                                 std::uint8_t* out) noexcept {
  const std::int64_t oh = s.out_h(), ow = s.out_w();
  for (std::int64_t i = 0; i < s.g.batch; ++i)
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ++ox)
        for (std::int64_t n = 0; n < s.g.c_out; ++n) {
          const std::int64_t idx = ((i * oh + oy) * ow + ox) * s.g.c_out + n;
          const std::int64_t v = acc[idx] + (q.bias ? q.bias[n] : 0);
          std::int32_t code = 0, rqm = 0;
          if (r.res) {
            rqm = r.res_qm[n];
            const std::int64_t rc = n - r.ch_lo;
            if (rc >= 0 && rc < r.rc)
              code = r.res[((i * r.rh + oy * r.stride) * r.rw + ox * r.stride) * r.rc + rc];
          }
          out[idx] = requant_one(static_cast<std::int32_t>(v), q.qm[n], q.rshift[n], q.zp, q.lo,
                                 q.hi, code, rqm, q.offset ? q.offset[n] : 0);
        }
}

}  // namespace ref
}  // namespace kernels
}  // namespace mixq
