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

#include "mixq/core/rng.hpp"
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
  std::vector<std::string> files;  // the files read, in order (for messages)

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

// A training split divided into the images that train and a validation
// split held out from them (never the test set): used to pick a model or a
// configuration (early stopping, a mixed-precision search) without looking
// at the test images. The held-out images are a seeded random choice of
// `held_out` images, class-balanced when the labels allow it (each class
// gives held_out / num_classes images, the remainder from the lowest
// classes), so the split is the same for a seed on every machine. Both parts
// keep the parent's image order, its mean/std and class names.
struct train_validation {
  image_dataset train, validation;
};

// requires: 0 < held_out < ds.n and every class has enough images for its share.
inline train_validation split_validation(const image_dataset& ds, std::int64_t held_out,
                                         std::uint64_t seed = 1) {
  ds.validate();
  MIXQ_CHECK(held_out > 0 && held_out < ds.n, ds.name, ": validation split of ", held_out,
             " images, expected 1..", ds.n - 1);
  const auto k = static_cast<std::size_t>(ds.num_classes);
  std::vector<std::vector<std::int64_t>> by_class(k);
  for (std::int64_t i = 0; i < ds.n; ++i)
    by_class[static_cast<std::size_t>(ds.labels[static_cast<std::size_t>(i)])].push_back(i);
  // Per-class shares, then a seeded partial Fisher-Yates shuffle within each
  // class, drawn from mixq's one generator.
  rng gen(derive_seed(seed, 0x76616c6964ull));
  std::vector<char> pick(static_cast<std::size_t>(ds.n), 0);
  for (std::size_t cl = 0; cl < k; ++cl) {
    const std::int64_t share =
        held_out / static_cast<std::int64_t>(k) +
        (static_cast<std::int64_t>(cl) < held_out % static_cast<std::int64_t>(k));
    auto& idx = by_class[cl];
    MIXQ_CHECK(share <= static_cast<std::int64_t>(idx.size()), ds.name, ": class ", cl, " has ",
               idx.size(), " images, fewer than its validation share ", share);
    for (std::int64_t j = 0; j < share; ++j) {
      const auto rest = static_cast<std::uint64_t>(idx.size()) - static_cast<std::uint64_t>(j);
      const auto r = static_cast<std::size_t>(j) +
                     static_cast<std::size_t>(gen.below(static_cast<std::uint32_t>(rest)));
      std::swap(idx[static_cast<std::size_t>(j)], idx[r]);
      pick[static_cast<std::size_t>(idx[static_cast<std::size_t>(j)])] = 1;
    }
  }
  train_validation out;
  image_dataset* parts[2] = {&out.train, &out.validation};
  for (int v = 0; v < 2; ++v) {
    image_dataset& d = *parts[v];
    d.name = ds.name + (v ? "/validation" : "/train-part");
    d.h = ds.h, d.w = ds.w, d.c = ds.c;
    d.num_classes = ds.num_classes;
    d.class_names = ds.class_names;
    d.mean = ds.mean, d.stddev = ds.stddev;
  }
  const std::int64_t bytes = ds.image_bytes();
  for (std::int64_t i = 0; i < ds.n; ++i) {
    image_dataset& d = pick[static_cast<std::size_t>(i)] ? out.validation : out.train;
    d.images.insert(d.images.end(), ds.image(i), ds.image(i) + bytes);
    d.labels.push_back(ds.labels[static_cast<std::size_t>(i)]);
    ++d.n;
  }
  return out;
}

// Options shared by the data set loaders.
struct load_options {
  // Keep only the first max_images images (in file order); 0 = all. Asking
  // for more images than the split has is an error, never a silent shortfall.
  std::int64_t max_images = 0;
};

}  // namespace mixq::io
