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
// Normalization: a data set carries the per-channel mean and standard
// deviation of pixel/255 that its batches are normalized with, and these are
// the statistics of the training split (a test split carries the training
// split's values too, so both are normalized alike). The loaders
// (cifar10.hpp, fashion_mnist.hpp) fill them in with the published
// constants. A data set built some other way has none until the caller sets
// them, e.g. from its training split with channel_stats(); the batch loader
// refuses a data set without them rather than guessing (a silent 0.5 would
// train, worse, without a word).
//
// Loaders return this struct; it has no dependency on mixq's tensor types.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mixq/error.hpp"

namespace mixq::io {

// Which part of a data set: the training split or the held-out test split.
enum class split { train, test };

struct image_dataset {
  std::string name;                  // e.g. "cifar10/train", for messages
  std::int64_t n = 0;                // number of images
  std::int64_t h = 0, w = 0, c = 0;  // image height, width, channels
  std::vector<std::uint8_t> images;  // n*h*w*c bytes, NHWC, row-major, top row first
  std::vector<std::int32_t> labels;  // n labels in [0, num_classes)
  std::int32_t num_classes = 0;
  std::vector<std::string> class_names;  // num_classes names when known, else empty
  // Per-channel mean and standard deviation of pixel/255 over the training
  // split (c entries each), or empty when unknown (see the file comment).
  std::vector<float> mean, stddev;

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
    MIXQ_CHECK((mean.empty() && stddev.empty()) || (mean.size() == static_cast<std::size_t>(c) &&
                                                    stddev.size() == static_cast<std::size_t>(c)),
               name, ": ", mean.size(), " means and ", stddev.size(), " standard deviations for ",
               c, " channels, expected ", c, " of each (or none)");
    for (std::size_t ch = 0; ch < stddev.size(); ++ch)
      MIXQ_CHECK(stddev[ch] > 0.0f, name, ": stddev[", ch, "] = ", stddev[ch], ", expected > 0");
  }
};

// Per-channel mean and population standard deviation of pixel/255 over all
// images of `ds` (accumulated in double), for data sets whose loader knows no
// published values: ds.mean / ds.stddev of a training split, and the same
// values copied to its test split.
// requires: ds.n > 0.
inline std::pair<std::vector<float>, std::vector<float>> channel_stats(const image_dataset& ds) {
  MIXQ_CHECK(
      ds.n > 0 && ds.c > 0 && ds.images.size() == static_cast<std::size_t>(ds.n * ds.image_bytes()),
      "channel_stats: ", ds.name, " holds no images (n = ", ds.n, ")");
  const auto c = static_cast<std::size_t>(ds.c);
  std::vector<double> s(c, 0.0), s2(c, 0.0);
  for (std::size_t i = 0; i < ds.images.size(); ++i) {
    const double v = ds.images[i] / 255.0;
    s[i % c] += v;
    s2[i % c] += v * v;
  }
  const double count = static_cast<double>(ds.images.size() / c);
  std::vector<float> mean(c), stddev(c);
  for (std::size_t ch = 0; ch < c; ++ch) {
    const double m = s[ch] / count;
    mean[ch] = static_cast<float>(m);
    stddev[ch] = static_cast<float>(std::sqrt(std::max(0.0, s2[ch] / count - m * m)));
  }
  return {mean, stddev};
}

// Options shared by the data set loaders.
struct load_options {
  // Keep only the first max_images images (in file order); 0 = all. Asking
  // for more images than the split has is an error, never a silent shortfall.
  std::int64_t max_images = 0;
};

}  // namespace mixq::io
