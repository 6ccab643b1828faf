#pragma once
// Reading an image file (PNG, JPEG, BMP, GIF, TGA, PSD without alpha, PNM) into uint8
// RGB, and resizing it, e.g. to classify a photo with a CIFAR-10 model.
//
// Decoding is stb_image's (Debian libstb-dev), compiled privately into
// mixq::io::detail::stbi (see detail/stb_image_impl.hpp), so it coexists with
// a program's own stb_image. The file is read by mixq and decoded from memory,
// so every error names the file: "cannot open", or "not a decodable image"
// with stb_image's reason.
//
// Hostile files: a model user feeds arbitrary images to a classifier, so
// before stb_image decodes anything, the inputs that reach known defects of
// Debian's stb_image 2.27 are refused (detail/image_guard.hpp: JPEG Huffman
// tables, 16-bit and oversized PNM headers; Softimage PIC is compiled out),
// and the size the header claims is bounded (max_pixels), so a tiny file
// cannot make the decoder allocate gigabytes. fuzz/fuzz_image.cpp feeds the
// decoder under AddressSanitizer and UndefinedBehaviorSanitizer.
//
// Resizing is our own separable triangle ("bilinear") filter with pixel
// centres at (i + 0.5) / scale. When enlarging it is plain bilinear
// interpolation; when shrinking by a factor s > 1 the triangle is widened to
// s source pixels, so every source pixel contributes (area-weighted, like
// PIL's BILINEAR) instead of aliasing as point-sampled bilinear does when a
// 1000-pixel photo goes to 32x32. Edges are clamped. Results are rounded to
// the nearest uint8.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/io/detail/image_guard.hpp"
#include "mixq/io/detail/stb_image_impl.hpp"
#include "mixq/io/file.hpp"

namespace mixq::io {

// An 8-bit image, HWC row-major, top row first.
struct image_u8 {
  std::int64_t h = 0, w = 0, c = 0;
  std::vector<std::uint8_t> data;  // h*w*c
  std::uint8_t at(std::int64_t y, std::int64_t x, std::int64_t ch) const {
    return data[static_cast<std::size_t>((y * w + x) * c + ch)];
  }
};

// GCC reports stb_image internals inlined here as "may be used uninitialized"
// (a false positive in the library's I/O callbacks, unused with memory input).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// Decodes an image held in memory to RGB (grey and alpha are converted:
// grey is replicated, alpha dropped). `name` is used in messages.
// requires: max_pixels bounds width x height (a 100-byte file may claim
//           16384 x 16384 and make the decoder allocate gigabytes); the
//           default, 2^26 (64 Mpixel, 192 MiB as RGB), is far above any photo
//           a CIFAR-10 model is shown.
// throws: mixq::error "<name>: not a decodable image (<reason>)", and
//         "<name>: image is W x H pixels, more than the N allowed".
inline image_u8 decode_image_rgb(const std::vector<std::uint8_t>& bytes, const std::string& name,
                                 std::int64_t max_pixels = std::int64_t(1) << 26) {
  namespace s = detail::stbi;
  MIXQ_CHECK(!bytes.empty(), name, ": not a decodable image (empty file)");
  MIXQ_CHECK(bytes.size() <= 0x7fffffffu, name, ": not a decodable image (file too large)");
  // Inputs that reach defects of stb_image 2.27 are refused first
  // (detail/image_guard.hpp).
  const std::string guard = detail::stb_input_problem(bytes.data(), bytes.size());
  MIXQ_CHECK(guard.empty(), name, ": not a decodable image (", guard, ")");
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  MIXQ_CHECK(s::stbi_info_from_memory(bytes.data(), len, &w, &h, &comp) != 0, name,
             ": not a decodable image (", s::stbi_failure_reason(), ")");
  MIXQ_CHECK(w > 0 && h > 0 && std::int64_t(w) * h <= max_pixels, name, ": image is ", w, " x ", h,
             " pixels, more than the ", max_pixels, " allowed");
  unsigned char* px = s::stbi_load_from_memory(bytes.data(), len, &w, &h, &comp, 3);
  MIXQ_CHECK(px != nullptr, name, ": not a decodable image (", s::stbi_failure_reason(), ")");
  image_u8 img;
  img.h = h;
  img.w = w;
  img.c = 3;
  img.data.assign(px, px + static_cast<std::size_t>(w) * static_cast<std::size_t>(h) * 3);
  s::stbi_image_free(px);
  MIXQ_CHECK(std::int64_t(w) * h <= max_pixels, name, ": image is ", w, " x ", h,
             " pixels, more than the ", max_pixels, " allowed");
  return img;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// Reads and decodes the image file at `path` to RGB. The file is read as it
// is (an image is never inflated as gzip) and at most 256 MiB of it.
// throws: mixq::error naming the file when it cannot be opened (missing,
//         unreadable, a directory or FIFO) or decoded.
inline image_u8 load_image_rgb(const std::string& path, std::int64_t max_pixels = std::int64_t(1)
                                                                                  << 26) {
  return decode_image_rgb(detail::read_regular_file(path, "", std::uint64_t(256) << 20), path,
                          max_pixels);
}

namespace detail {
// Filter taps for one axis: out[i] = sum_k weight[i][k] * in[first[i] + k].
struct resize_taps {
  std::vector<std::int64_t> first, count;
  std::vector<float> weight;  // per output i: `count[i]` weights at offset i * max_taps
  std::int64_t max_taps = 0;
};
inline resize_taps make_taps(std::int64_t in, std::int64_t out) {
  resize_taps t;
  const double scale = double(out) / double(in);           // < 1 when shrinking
  const double support = scale < 1.0 ? 1.0 / scale : 1.0;  // triangle half-width in input pixels
  t.max_taps = static_cast<std::int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(static_cast<std::size_t>(out));
  t.count.resize(static_cast<std::size_t>(out));
  t.weight.assign(static_cast<std::size_t>(out * t.max_taps), 0.0f);
  for (std::int64_t i = 0; i < out; ++i) {
    const double centre = (double(i) + 0.5) / scale - 0.5;  // in input pixel coordinates
    std::int64_t lo = static_cast<std::int64_t>(std::floor(centre - support)) + 1;
    std::int64_t hi = static_cast<std::int64_t>(std::ceil(centre + support)) - 1;
    std::vector<double> wts;
    double sum = 0.0;
    // Taps outside the image are clamped onto the edge pixels.
    std::vector<std::int64_t> idx;
    for (std::int64_t k = lo; k <= hi; ++k) {
      const double wgt = 1.0 - std::fabs(double(k) - centre) / support;
      if (wgt <= 0.0) continue;
      idx.push_back(std::clamp<std::int64_t>(k, 0, in - 1));
      wts.push_back(wgt);
      sum += wgt;
    }
    // Merge clamped taps into a contiguous run [first, first + count).
    const std::int64_t f = *std::min_element(idx.begin(), idx.end());
    const std::int64_t l = *std::max_element(idx.begin(), idx.end());
    MIXQ_CHECK(l - f + 1 <= t.max_taps, "resize: internal tap count error");
    t.first[static_cast<std::size_t>(i)] = f;
    t.count[static_cast<std::size_t>(i)] = l - f + 1;
    for (std::size_t k = 0; k < idx.size(); ++k)
      t.weight[static_cast<std::size_t>(i * t.max_taps + (idx[k] - f))] +=
          static_cast<float>(wts[k] / sum);
  }
  return t;
}
}  // namespace detail

// Resizes `src` to out_h x out_w with the triangle filter described above.
// requires: src non-empty; out_h, out_w > 0.
// ensures:  result.h == out_h, result.w == out_w, result.c == src.c; a
//           constant image stays constant; same size returns src unchanged.
inline image_u8 resize_bilinear(const image_u8& src, std::int64_t out_h, std::int64_t out_w) {
  MIXQ_CHECK(src.h > 0 && src.w > 0 && src.c > 0 &&
                 src.data.size() == static_cast<std::size_t>(src.h * src.w * src.c),
             "resize: bad source image ", src.h, "x", src.w, "x", src.c, " with ", src.data.size(),
             " bytes");
  MIXQ_CHECK(out_h > 0 && out_w > 0 && out_h <= 65536 && out_w <= 65536, "resize: output size ",
             out_h, "x", out_w, ", expected 1..65536 on each side");
  if (out_h == src.h && out_w == src.w) return src;
  const std::int64_t c = src.c;
  const detail::resize_taps tx = detail::make_taps(src.w, out_w);
  const detail::resize_taps ty = detail::make_taps(src.h, out_h);
  // Horizontal pass into float rows (src.h x out_w x c).
  std::vector<float> mid(static_cast<std::size_t>(src.h * out_w * c));
  for (std::int64_t y = 0; y < src.h; ++y)
    for (std::int64_t x = 0; x < out_w; ++x) {
      const auto xi = static_cast<std::size_t>(x);
      const float* wt = tx.weight.data() + x * tx.max_taps;
      for (std::int64_t ch = 0; ch < c; ++ch) {
        float acc = 0.0f;
        for (std::int64_t k = 0; k < tx.count[xi]; ++k)
          acc += wt[k] * float(src.at(y, tx.first[xi] + k, ch));
        mid[static_cast<std::size_t>((y * out_w + x) * c + ch)] = acc;
      }
    }
  // Vertical pass.
  image_u8 dst;
  dst.h = out_h;
  dst.w = out_w;
  dst.c = c;
  dst.data.resize(static_cast<std::size_t>(out_h * out_w * c));
  for (std::int64_t y = 0; y < out_h; ++y) {
    const auto yi = static_cast<std::size_t>(y);
    const float* wt = ty.weight.data() + y * ty.max_taps;
    for (std::int64_t x = 0; x < out_w; ++x)
      for (std::int64_t ch = 0; ch < c; ++ch) {
        float acc = 0.0f;
        for (std::int64_t k = 0; k < ty.count[yi]; ++k)
          acc += wt[k] * mid[static_cast<std::size_t>(((ty.first[yi] + k) * out_w + x) * c + ch)];
        const float v = std::clamp(std::nearbyint(acc), 0.0f, 255.0f);
        dst.data[static_cast<std::size_t>((y * out_w + x) * c + ch)] = static_cast<std::uint8_t>(v);
      }
  }
  return dst;
}

// Loads an image file as RGB and resizes it to size x size (default 32x32,
// the CIFAR-10 input). The aspect ratio is not kept (the whole image is used).
inline image_u8 load_image_rgb_resized(const std::string& path, std::int64_t size = 32) {
  return resize_bilinear(load_image_rgb(path), size, size);
}

}  // namespace mixq::io
