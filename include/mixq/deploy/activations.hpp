#pragma once
// The three layouts the runtime keeps activation codes in, and the moves
// between them. Each tensor is stored in the layouts its consumers read:
//
//   padded  [batch][H+2][W+2][C] uint8 with a one-pixel halo holding the zero
//           point (0, or the input's per-channel zero points): the input of
//           the u8 convolution (kernels/conv/qconv.hpp) and of residual reads
//   dense   [batch][H][W][C] uint8: pooling output, the linear layer's input
//   planes  bit-plane index planes (kernels' bitplane format) of 2- or 3-bit
//           codes: input, output and residual of the LUT6 convolution
//
// Producers write only interiors, and arena memory is shared between tensors
// that are never live together, so the halo of a padded buffer (and the halo
// rows of planes) is rewritten each time its tensor is produced: a few
// percent of the tensor's bytes. All functions work on an image range
// [i0, i1), the unit a thread of the runtime owns.
#include <cstdint>
#include <cstring>

#include <mixq/kernels/bitplane/qconv_bitplane.hpp>

namespace mixq {
namespace deploy {

/// Pixel (i, y, x) channel c of a u8 layout at base[i*img + y*row + x*pix + c].
struct u8_view {
  std::uint8_t* base = nullptr;
  std::int64_t img = 0, row = 0, pix = 0;
  std::uint8_t* at(std::int64_t i, std::int64_t y, std::int64_t x) const noexcept {
    return base + i * img + y * row + x * pix;
  }
};

/// Bytes of a padded / dense buffer of `batch` images (plus `tail` readable bytes).
inline std::int64_t padded_bytes(std::int64_t batch, std::int64_t h, std::int64_t w,
                                 std::int64_t c) noexcept {
  return batch * (h + 2) * (w + 2) * c;
}

/// The interior view of a padded buffer.
inline u8_view padded_view(std::uint8_t* buf, std::int64_t h, std::int64_t w,
                           std::int64_t c) noexcept {
  const std::int64_t wp = w + 2;
  return {buf + (wp + 1) * c, (h + 2) * wp * c, wp * c, c};
}

inline u8_view dense_view(std::uint8_t* buf, std::int64_t h, std::int64_t w,
                          std::int64_t c) noexcept {
  return {buf, h * w * c, w * c, c};
}

/// Writes the halo of images [i0, i1) of a padded buffer: each halo pixel
/// gets the C bytes of `pixel` (the zero points), or zeros when pixel is null.
inline void fill_halo(std::uint8_t* buf, std::int64_t h, std::int64_t w, std::int64_t c,
                      const std::uint8_t* pixel, std::int64_t i0, std::int64_t i1) noexcept {
  const std::int64_t wp = w + 2, row = wp * c, img = (h + 2) * row;
  auto put = [&](std::uint8_t* dst, std::int64_t npix) {
    if (!pixel) {
      std::memset(dst, 0, static_cast<std::size_t>(npix * c));
      return;
    }
    for (std::int64_t p = 0; p < npix; ++p)
      std::memcpy(dst + p * c, pixel, static_cast<std::size_t>(c));
  };
  // in memory order: the top row and row 1's left pixel, then each row's
  // right pixel with the next row's left pixel, then row h's right pixel
  // and the bottom row (h + 1 runs per image)
  for (std::int64_t i = i0; i < i1; ++i) {
    std::uint8_t* b = buf + i * img;
    put(b, wp + 1);
    for (std::int64_t y = 1; y < h; ++y) put(b + y * row + (w + 1) * c, 2);
    put(b + h * row + (w + 1) * c, wp + 1);
  }
}

/// Zeroes the halo rows (above and below each image, every group) of planes.
inline void clear_plane_halo(std::uint8_t* planes, std::int64_t h, std::int64_t w, std::int64_t c,
                             int bits, std::int64_t i0, std::int64_t i1) noexcept {
  const kernels::bitplane_image_layout l = kernels::bitplane_layout(h, w, c, bits);
  // row h + 1 of a group plane is followed by row 0 of the next one
  for (std::int64_t i = i0; i < i1; ++i) {
    std::uint8_t* p = planes + l.lead + i * l.img_stride;
    std::memset(p, 0, static_cast<std::size_t>(w));
    for (std::int32_t g = 0; g + 1 < l.groups; ++g)
      std::memset(p + g * l.group_stride + (h + 1) * w, 0, static_cast<std::size_t>(2 * w));
    std::memset(p + (l.groups - 1) * l.group_stride + (h + 1) * w, 0, static_cast<std::size_t>(w));
  }
}

/// Copies the codes of images [i0, i1) between two u8 layouts.
inline void copy_u8(const u8_view& src, const u8_view& dst, std::int64_t h, std::int64_t w,
                    std::int64_t c, std::int64_t i0, std::int64_t i1) noexcept {
  for (std::int64_t i = i0; i < i1; ++i)
    for (std::int64_t y = 0; y < h; ++y) {
      if (src.pix == c && dst.pix == c) {
        std::memcpy(dst.at(i, y, 0), src.at(i, y, 0), static_cast<std::size_t>(w * c));
        continue;
      }
      for (std::int64_t x = 0; x < w; ++x)
        std::memcpy(dst.at(i, y, x), src.at(i, y, x), static_cast<std::size_t>(c));
    }
}

/// u8 codes of images [i0, i1) -> the interior of planes of `bits`-bit codes.
inline void u8_to_planes(const u8_view& src, std::int64_t h, std::int64_t w, std::int64_t c,
                         int bits, std::uint8_t* planes, std::int64_t i0,
                         std::int64_t i1) noexcept {
  const kernels::bitplane_image_layout l = kernels::bitplane_layout(h, w, c, bits);
  for (std::int64_t i = i0; i < i1; ++i)
    for (std::int64_t y = 0; y < h; ++y)
      kernels::bitplane_from_codes(src.at(i, y, 0), w, src.pix, static_cast<std::int32_t>(c), bits,
                                   planes + kernels::bitplane_pixel(l, i, y, 0), l.group_stride);
}

/// Planes of `bits`-bit codes, images [i0, i1) -> u8 codes.
inline void planes_to_u8(const std::uint8_t* planes, std::int64_t h, std::int64_t w, std::int64_t c,
                         int bits, const u8_view& dst, std::int64_t i0, std::int64_t i1) noexcept {
  const kernels::bitplane_image_layout l = kernels::bitplane_layout(h, w, c, bits);
  const int cpb = kernels::bitplane_cpb(bits);
  const unsigned mask = (1u << bits) - 1u;
  for (std::int64_t i = i0; i < i1; ++i)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int32_t g = 0; g < l.groups; ++g) {
        const std::uint8_t* src = planes + kernels::bitplane_pixel(l, i, y, 0) + g * l.group_stride;
        const std::int64_t c0 = std::int64_t(g) * cpb;
        const int cnt = static_cast<int>(c - c0 < cpb ? c - c0 : cpb);
        for (std::int64_t x = 0; x < w; ++x) {
          std::uint8_t* d = dst.at(i, y, x) + c0;
          const unsigned v = src[x];
          for (int j = 0; j < cnt; ++j) d[j] = static_cast<std::uint8_t>((v >> (bits * j)) & mask);
        }
      }
}

}  // namespace deploy
}  // namespace mixq
