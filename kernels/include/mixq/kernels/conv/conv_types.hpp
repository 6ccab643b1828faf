#pragma once
// Types shared by the convolution drivers (conv/qconv.hpp on u8 NHWC
// activations, bitplane/qconv_bitplane.hpp on bit-plane planes) and the
// reference convolution (conv/qconv_ref.hpp): the geometry of a conv layer,
// where its u8 output goes and where its residual comes from. The
// requantization parameters are requant_params (requant.hpp).
//
// Geometry: K x K kernel (K in {1, 3}), stride S in {1, 2}, pad P = K / 2,
// OH = (H + 2P - K) / S + 1, OW likewise.
#include <cstdint>

namespace mixq {
namespace kernels {

/// One convolution layer: batch x H x W x C_in -> batch x OH x OW x C_out.
struct conv_geometry {
  std::int64_t batch = 1, h = 1, w = 1, c_in = 1, c_out = 1;
  int kernel = 3;  ///< 1 or 3
  int stride = 1;  ///< 1 or 2
  int pad() const noexcept { return kernel / 2; }
  std::int64_t out_h() const noexcept { return (h + 2 * pad() - kernel) / stride + 1; }
  std::int64_t out_w() const noexcept { return (w + 2 * pad() - kernel) / stride + 1; }
  std::int64_t pixels_out() const noexcept { return batch * out_h() * out_w(); }
  std::int64_t macs() const noexcept { return pixels_out() * c_out * c_in * kernel * kernel; }
};

/// Where a u8 conv output goes: pixel (oy, ox) of image i at
/// data[i*img_stride + oy*row_stride + ox*C_out].
struct conv_output {
  std::uint8_t* data = nullptr;  ///< pixel (0, 0) of image 0
  std::int64_t img_stride = 0, row_stride = 0;
};

/// A residual added inside the rounding (conv/qconv.hpp, "Residual").
struct conv_residual {
  const std::uint8_t* data = nullptr;  ///< nullptr = no residual
  std::int64_t img_stride = 0, row_stride = 0, pix_stride = 0;
  int stride = 1;                        ///< RS
  std::int64_t ch_lo = 0;                ///< output channel of residual channel 0
  const std::int32_t* res_qm = nullptr;  ///< [C_out], 0 outside the residual's channels
};

/// Dense output strides for an unpadded [batch][OH][OW][C_out] tensor.
inline conv_output dense_output(const conv_geometry& g, std::uint8_t* data) noexcept {
  return {data, g.out_h() * g.out_w() * g.c_out, g.out_w() * g.c_out};
}

/// Output written into the interior of a padded [batch][OH+2][OW+2][C_out] buffer.
inline conv_output padded_output(const conv_geometry& g, std::uint8_t* padded_base) noexcept {
  const std::int64_t wp = g.out_w() + 2;
  return {padded_base + (wp + 1) * g.c_out, (g.out_h() + 2) * wp * g.c_out, wp * g.c_out};
}

}  // namespace kernels
}  // namespace mixq
