#pragma once
// Test helper: a small synthetic image data set (pixels from a 32-bit LCG,
// labels i % classes), so trainer tests run without real data.
#include <cstdint>

#include "mixq/io/dataset.hpp"

namespace mixq_test {

// n images h x w x c; mean 0.5 and stddev 0.25 per channel.
inline mixq::io::image_dataset synthetic_images(std::int64_t n, std::int64_t h, std::int64_t w,
                                                std::int64_t c, std::int32_t classes,
                                                std::uint32_t seed = 12345) {
  mixq::io::image_dataset ds;
  ds.name = "synthetic";
  ds.n = n;
  ds.h = h;
  ds.w = w;
  ds.c = c;
  ds.num_classes = classes;
  ds.images.resize(static_cast<std::size_t>(n * h * w * c));
  std::uint32_t s = seed;
  for (auto& v : ds.images) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<std::uint8_t>(s >> 24);
  }
  for (std::int64_t i = 0; i < n; ++i) ds.labels.push_back(static_cast<std::int32_t>(i % classes));
  ds.mean.assign(static_cast<std::size_t>(c), 0.5f);
  ds.stddev.assign(static_cast<std::size_t>(c), 0.25f);
  return ds;
}

}  // namespace mixq_test
