#pragma once
// Integer global average pooling (ResNet's last spatial reduction).
//
// Math:
//   x      uint8 NHWC codes, element (i, y, x, c) at
//          x[i*img_stride + y*row_stride + x*pix_stride + c]
//          (so the interior of a padded buffer can be pooled in place: point x
//          at pixel (1, 1) and pass the padded strides)
//   sum[i][c] = sum_{y<H, x<W} x(i, y, x, c)           (int32; H*W*255 < 2^31,
//                                                       i.e. H*W <= 8,421,504)
//   out[i*ld_out + c] = clamp(zp + rhaz(sum * qm, rshift), lo, hi)   (uint8)
// with the project's one requantization rule (kernels/requant.hpp); the mean's
// 1/(H*W) is folded into the multiplier: qm * 2^-rshift ~= s_in / (H*W*s_out).
// sum_i32 (optional) also returns the raw sums, for a caller that folds the
// mean into the next layer instead.
// The fast path sums 256 channels at a time in an int32 stack block (no heap
// allocation) with a unit-stride inner loop the compiler vectorizes; OpenMP
// splits images (a driver-level loop; nothing below it is threaded).
// ref::global_avgpool_u8 is the scalar int64 twin, sharing only requant_one.
#include <cstdint>

#include "mixq/kernels/requant.hpp"

namespace mixq {
namespace kernels {

struct avgpool_params {
  std::int64_t batch = 1, h = 1, w = 1, c = 1;
  std::int64_t img_stride = 0, row_stride = 0, pix_stride = 0;  // in bytes (= elements)
  std::int32_t qm = 1 << 30;                                    // in [2^30, 2^31) or 0
  std::int32_t rshift = 31;                                     // in [1, 62]
  std::int32_t zp = 0, lo = 0, hi = 255;
  std::int64_t ld_out = 0;  // row stride of out (>= c)
};

/// out may be nullptr (then only sum_i32 is written); sum_i32 may be nullptr.
inline void global_avgpool_u8(const std::uint8_t* x, const avgpool_params& p, std::uint8_t* out,
                              std::int32_t* sum_i32 = nullptr) noexcept {
  MIXQ_DASSERT(p.h * p.w <= 8421504);
  constexpr std::int64_t block = 256;
#if defined(_OPENMP)
#pragma omp parallel for schedule(static)
#endif
  for (std::int64_t i = 0; i < p.batch; ++i) {
    for (std::int64_t c0 = 0; c0 < p.c; c0 += block) {
      const std::int64_t nc = p.c - c0 < block ? p.c - c0 : block;
      std::int32_t acc[block];
      for (std::int64_t j = 0; j < nc; ++j) acc[j] = 0;
      for (std::int64_t y = 0; y < p.h; ++y)
        for (std::int64_t xx = 0; xx < p.w; ++xx) {
          const std::uint8_t* px = x + i * p.img_stride + y * p.row_stride + xx * p.pix_stride + c0;
          for (std::int64_t j = 0; j < nc; ++j) acc[j] += px[j];
        }
      for (std::int64_t j = 0; j < nc; ++j) {
        if (sum_i32) sum_i32[i * p.ld_out + c0 + j] = acc[j];
        if (out)
          out[i * p.ld_out + c0 + j] =
              requant_one(acc[j], p.qm, p.rshift, p.zp, p.lo, p.hi, 0, 0, 0);
      }
    }
  }
}

namespace ref {

/// Scalar int64 twin of kernels::global_avgpool_u8 (direct loops).
inline void global_avgpool_u8(const std::uint8_t* x, const avgpool_params& p, std::uint8_t* out,
                              std::int32_t* sum_i32 = nullptr) noexcept {
  for (std::int64_t i = 0; i < p.batch; ++i)
    for (std::int64_t c = 0; c < p.c; ++c) {
      std::int64_t s = 0;
      for (std::int64_t y = 0; y < p.h; ++y)
        for (std::int64_t xx = 0; xx < p.w; ++xx)
          s += x[i * p.img_stride + y * p.row_stride + xx * p.pix_stride + c];
      if (sum_i32) sum_i32[i * p.ld_out + c] = static_cast<std::int32_t>(s);
      if (out)
        out[i * p.ld_out + c] =
            requant_one(static_cast<std::int32_t>(s), p.qm, p.rshift, p.zp, p.lo, p.hi, 0, 0, 0);
    }
}

}  // namespace ref
}  // namespace kernels
}  // namespace mixq
