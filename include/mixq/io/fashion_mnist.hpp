#pragma once
// Fashion-MNIST (and MNIST, which uses the same files) in IDX format, plain
// or gzip-compressed.
//
// IDX: a big-endian uint32 magic 0x00000800 | (type << 8) | ndims, where type
// 0x08 = unsigned byte, then ndims big-endian uint32 sizes, then the data,
// row-major. Images: magic 0x00000803, dims (n, 28, 28). Labels: magic
// 0x00000801, dims (n). Files: {train,t10k}-{images-idx3,labels-idx1}-ubyte
// with or without ".gz".
//
// Checks (each error names the file): the magic, the number of dims, the
// image size (28x28), the file size (header + product of dims, computed
// without overflow), the image and label counts (both exactly the split's
// 60,000 or 10,000: a file with fewer images is an error, never a smaller
// data set), labels in 0..9. Images are stored as uint8 NHWC with C=1;
// both splits carry the training set's mean and stddev (image_dataset).
//
// Hostile files: each file is read with a bound of its exact expected size,
// so a gzip bomb stops inflating after that many bytes and a truncated or
// crafted .gz never makes the reader reserve more. fashion_mnist_from_idx
// parses bytes already in memory (the fuzz target calls it directly).
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/io/data_dir.hpp"
#include "mixq/io/dataset.hpp"
#include "mixq/io/file.hpp"

namespace mixq::io {

struct fashion_mnist {
  static constexpr std::int64_t height = 28, width = 28, channels = 1;
  static constexpr std::int32_t num_classes = 10;
  static constexpr std::uint32_t magic_images = 0x00000803;
  static constexpr std::uint32_t magic_labels = 0x00000801;
  static constexpr std::int64_t train_size = 60000, test_size = 10000;
  static constexpr std::int64_t image_header_bytes = 16, label_header_bytes = 8;
  // Mean and population std of pixel/255 over the 60,000 training images
  // (computed independently with Python from the Debian package's files;
  // re-checked by the real-data test in tests/io).
  static constexpr float mean_gray[1] = {0.28604060f};
  static constexpr float std_gray[1] = {0.35302424f};
};

// Header of an IDX file.
struct idx_header {
  std::uint32_t magic = 0;
  std::vector<std::int64_t> dims;
  std::size_t data_offset = 0;
};

// Parses and checks the header of an IDX file held in `bytes`.
// requires: expected_magic's low byte is the number of dims.
// ensures:  bytes.size() == data_offset + product(dims).
// throws:   mixq::error naming `file` and the expected magic/size.
inline idx_header parse_idx_header(const std::vector<std::uint8_t>& bytes, const std::string& file,
                                   std::uint32_t expected_magic) {
  auto be32 = [&](std::size_t off) {
    return std::uint32_t(bytes[off]) << 24 | std::uint32_t(bytes[off + 1]) << 16 |
           std::uint32_t(bytes[off + 2]) << 8 | std::uint32_t(bytes[off + 3]);
  };
  auto hex = [](std::uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return std::string(buf);
  };
  idx_header h;
  MIXQ_CHECK(bytes.size() >= 4, "idx: ", file, ": ", bytes.size(),
             " bytes, too short for the 4-byte magic (expected ", hex(expected_magic), ")");
  h.magic = be32(0);
  MIXQ_CHECK(h.magic == expected_magic, "idx: ", file, ": magic ", hex(h.magic), ", expected ",
             hex(expected_magic),
             expected_magic == fashion_mnist::magic_images ? " (unsigned-byte images, 3 dims)"
                                                           : " (unsigned-byte labels, 1 dim)");
  const std::size_t nd = expected_magic & 0xff;
  const std::size_t hdr = 4 + 4 * nd;
  MIXQ_CHECK(bytes.size() >= hdr, "idx: ", file, ": ", bytes.size(), " bytes, too short for the ",
             hdr, "-byte header");
  std::uint64_t count = 1;
  for (std::size_t d = 0; d < nd; ++d) {
    h.dims.push_back(be32(4 + 4 * d));
    MIXQ_CHECK(!__builtin_mul_overflow(count, static_cast<std::uint64_t>(h.dims.back()), &count),
               "idx: ", file, ": the dims' product overflows 64 bits");
  }
  h.data_offset = hdr;
  MIXQ_CHECK(count <= std::uint64_t(1) << 62 && bytes.size() == hdr + count, "idx: ", file, ": ",
             bytes.size(), " bytes, expected ", hdr + count, " (", hdr, "-byte header + ", count,
             " data bytes)");
  return h;
}

// Builds a Fashion-MNIST split from the (inflated) bytes of its images and
// labels files; `img_name` and `lab_name` name them in messages.
// requires: expected_n = the number of images the split must hold;
//           opt.max_images in [0, expected_n]; 0 = all.
// ensures:  n == (max_images ? max_images : expected_n), h=w=28, c=1, NHWC
//           uint8, labels in 0..9, result.validate() holds.
// throws:   mixq::error naming the file and what was expected.
inline image_dataset fashion_mnist_from_idx(const std::vector<std::uint8_t>& img,
                                            const std::string& img_name,
                                            const std::vector<std::uint8_t>& lab,
                                            const std::string& lab_name, std::int64_t expected_n,
                                            const load_options& opt = {}) {
  const idx_header hi = parse_idx_header(img, img_name, fashion_mnist::magic_images);
  const idx_header hl = parse_idx_header(lab, lab_name, fashion_mnist::magic_labels);
  MIXQ_CHECK(hi.dims[1] == fashion_mnist::height && hi.dims[2] == fashion_mnist::width,
             "idx: ", img_name, ": images are ", hi.dims[1], "x", hi.dims[2], ", expected 28x28");
  MIXQ_CHECK(hi.dims[0] == hl.dims[0], "fashion-mnist: ", img_name, " holds ", hi.dims[0],
             " images but ", lab_name, " holds ", hl.dims[0], " labels; counts must match");
  const std::int64_t total = hi.dims[0];
  MIXQ_CHECK(total == expected_n, "fashion-mnist: ", img_name, " holds ", total,
             " images, expected ", expected_n);
  MIXQ_CHECK(opt.max_images >= 0 && opt.max_images <= total,
             "fashion-mnist: max_images = ", opt.max_images, " but ", img_name, " holds ", total,
             " images");
  const std::int64_t n = opt.max_images ? opt.max_images : total;

  image_dataset ds;
  ds.n = n;
  ds.h = fashion_mnist::height;
  ds.w = fashion_mnist::width;
  ds.c = 1;
  ds.num_classes = fashion_mnist::num_classes;
  ds.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  for (std::int64_t i = 0; i < total; ++i) {
    const std::uint8_t v = lab[hl.data_offset + static_cast<std::size_t>(i)];
    MIXQ_CHECK(v < fashion_mnist::num_classes, "idx: ", lab_name, ": label ", int(v), " at index ",
               i, " outside 0..9");
  }
  ds.labels.assign(lab.begin() + static_cast<std::ptrdiff_t>(hl.data_offset),
                   lab.begin() + static_cast<std::ptrdiff_t>(hl.data_offset + n));
  const auto first = img.begin() + static_cast<std::ptrdiff_t>(hi.data_offset);
  ds.images.assign(first, first + static_cast<std::ptrdiff_t>(n * ds.image_bytes()));
  ds.mean.assign(fashion_mnist::mean_gray, fashion_mnist::mean_gray + 1);
  ds.stddev.assign(fashion_mnist::std_gray, fashion_mnist::std_gray + 1);
  return ds;
}

// Loads a Fashion-MNIST split from `dir` (60,000 train / 10,000 test images,
// each file plain or .gz, see resolve_maybe_gz).
// requires: opt.max_images in [0, images in the split]; 0 = all.
// ensures:  h=w=28, c=1, NHWC uint8, labels in 0..9, result.validate() holds.
// throws:   mixq::error naming the file and what was expected.
inline image_dataset load_fashion_mnist(const std::string& dir, split s,
                                        const load_options& opt = {}) {
  const std::string stem = s == split::train ? "train" : "t10k";
  const std::int64_t n = s == split::train ? fashion_mnist::train_size : fashion_mnist::test_size;
  const auto img_max = static_cast<std::uint64_t>(fashion_mnist::image_header_bytes +
                                                  n * fashion_mnist::height * fashion_mnist::width);
  const auto lab_max = static_cast<std::uint64_t>(fashion_mnist::label_header_bytes + n);
  std::string img_path, lab_path;
  const auto img = read_maybe_gz(dir + "/" + stem + "-images-idx3-ubyte", img_max, &img_path);
  const auto lab = read_maybe_gz(dir + "/" + stem + "-labels-idx1-ubyte", lab_max, &lab_path);
  image_dataset ds = fashion_mnist_from_idx(img, img_path, lab, lab_path, n, opt);
  ds.name = "fashion-mnist/" + stem;
  ds.files = {img_path, lab_path};
  return ds;
}

// Same, with the directory found by fashion_mnist_data_dir(explicit_dir) (a flag,
// MIXQ_DATA, system places; see data_dir.hpp).
inline image_dataset load_fashion_mnist_auto(split s, const load_options& opt = {},
                                             const std::string& explicit_dir = "") {
  return load_fashion_mnist(fashion_mnist_data_dir(explicit_dir), s, opt);
}

}  // namespace mixq::io
