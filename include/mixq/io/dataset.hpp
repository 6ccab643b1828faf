#pragma once
// An in-memory labelled image data set, stored compactly as uint8 NHWC.
//
// Why uint8: CIFAR-10's 50,000 training images take 150 MiB as bytes and
// 600 MiB as float32. The batch loader converts (and augments, normalizes)
// one batch at a time, so floats exist only for the batch in flight.
// Why NHWC: it is the layout the batch loader hands to the network, so a
// batch is a gather of whole images plus a per-pixel conversion, and a crop or
// flip is a walk over contiguous C-sized pixels.
//
// Loaders (cifar10.hpp, fashion_mnist.hpp) return this struct; it has no
// dependency on mixq's tensor types.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mixq/error.hpp"

namespace mixq::io {

struct image_dataset {
  std::string name;                  // e.g. "cifar10/train", for messages
  std::int64_t n = 0;                // number of images
  std::int64_t h = 0, w = 0, c = 0;  // image height, width, channels
  std::vector<std::uint8_t> images;  // n*h*w*c bytes, NHWC, row-major, top row first
  std::vector<std::int32_t> labels;  // n labels in [0, num_classes)
  std::int32_t num_classes = 0;
  std::vector<std::string> class_names;  // num_classes names when known, else empty

  std::int64_t image_bytes() const { return h * w * c; }
  const std::uint8_t* image(std::int64_t i) const {
    return images.data() + static_cast<std::size_t>(i * image_bytes());
  }
  std::uint8_t* image(std::int64_t i) {
    return images.data() + static_cast<std::size_t>(i * image_bytes());
  }
  // Throws mixq::error when the sizes disagree or a label is out of range.
  void validate() const {
    MIXQ_CHECK(n >= 0 && h > 0 && w > 0 && c > 0, name, ": bad dimensions n=", n, " h=", h,
               " w=", w, " c=", c);
    MIXQ_CHECK(images.size() == static_cast<std::size_t>(n * h * w * c), name, ": ", images.size(),
               " image bytes, expected ", n * h * w * c, " (", n, "x", h, "x", w, "x", c, ")");
    MIXQ_CHECK(labels.size() == static_cast<std::size_t>(n), name, ": ", labels.size(),
               " labels, expected ", n);
    for (std::size_t i = 0; i < labels.size(); ++i)
      MIXQ_CHECK(labels[i] >= 0 && labels[i] < num_classes, name, ": label ", labels[i],
                 " at index ", i, " outside 0..", num_classes - 1);
  }
};

// Options shared by the data set loaders.
struct load_options {
  // Keep only the first max_images images (in file order); 0 = all. Asking
  // for more images than the split has is an error, never a silent shortfall.
  std::int64_t max_images = 0;
};

}  // namespace mixq::io
