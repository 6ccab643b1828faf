// Fashion-MNIST IDX loader: synthetic IDX files for each failure mode, plus a
// real-data smoke test on the Debian package's files when installed.
#include <doctest/doctest.h>

#include <array>
#include <cmath>

#include "../common/errors.hpp"
#include "../common/data.hpp"
#include "../common/files.hpp"
#include "mixq/io/fashion_mnist.hpp"

using namespace mixq_test;
namespace io = mixq::io;

namespace {
void put_be32(std::vector<std::uint8_t>& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}
std::vector<std::uint8_t> idx_images(std::uint32_t n, std::uint32_t rows = 28,
                                     std::uint32_t cols = 28, std::uint32_t magic = 0x803) {
  std::vector<std::uint8_t> b;
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  for (std::uint32_t i = 0; i < n * rows * cols; ++i)
    b.push_back(static_cast<std::uint8_t>(i * 31 + 7));
  return b;
}
std::vector<std::uint8_t> idx_labels(std::uint32_t n, std::uint32_t magic = 0x801) {
  std::vector<std::uint8_t> b;
  put_be32(b, magic);
  put_be32(b, n);
  for (std::uint32_t i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>((i * 7) % 10));
  return b;
}
void write_split(const temp_dir& d, const std::string& stem, const std::vector<std::uint8_t>& img,
                 const std::vector<std::uint8_t>& lab, bool gz) {
  const std::string suffix = gz ? ".gz" : "";
  auto w = gz ? write_gz : write_bytes;
  w(d.file(stem + "-images-idx3-ubyte" + suffix), img);
  w(d.file(stem + "-labels-idx1-ubyte" + suffix), lab);
}
}  // namespace

TEST_CASE("fashion-mnist: synthetic IDX files load, plain and gzip") {
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    temp_dir d;
    write_split(d, "t10k", idx_images(10000), idx_labels(10000), gz);
    const auto ds = io::load_fashion_mnist(d.path(), io::split::test);
    CHECK(ds.n == 10000);
    CHECK(ds.h == 28);
    CHECK(ds.w == 28);
    CHECK(ds.c == 1);
    REQUIRE(ds.images.size() == 10000u * 784u);
    for (std::uint32_t i : {0u, 1u, 783u, 784u * 10000 - 1})
      CHECK(int(ds.images[i]) == int(static_cast<std::uint8_t>(i * 31 + 7)));
    for (std::uint32_t i = 0; i < 5; ++i) CHECK(ds.labels[i] == int((i * 7) % 10));
    CHECK(ds.class_names.size() == 10);
    const std::string sfx = gz ? ".gz" : "";
    CHECK(ds.files == std::vector<std::string>{d.file("t10k-images-idx3-ubyte" + sfx),
                                               d.file("t10k-labels-idx1-ubyte" + sfx)});
    io::load_options opt;
    opt.max_images = 2;
    const auto sub = io::load_fashion_mnist(d.path(), io::split::test, opt);
    CHECK(sub.n == 2);
    CHECK(sub.images.size() == 2u * 784u);
    opt.max_images = 10001;
    CHECK(contains(error_of([&] { io::load_fashion_mnist(d.path(), io::split::test, opt); }),
                   "max_images = 10001"));
  }
}

TEST_CASE("fashion-mnist: a split must hold exactly its number of images") {
  temp_dir d;
  for (std::uint32_t n : {0u, 9999u}) {
    CAPTURE(n);
    write_split(d, "t10k", idx_images(n), idx_labels(n), true);
    CHECK(contains(error_of([&] { io::load_fashion_mnist(d.path(), io::split::test); }),
                   "holds " + std::to_string(n) + " images, expected 10000"));
  }
  // More than the split holds is refused as soon as the file passes its size.
  write_split(d, "t10k", idx_images(10001), idx_labels(10001), true);
  CHECK(contains(error_of([&] { io::load_fashion_mnist(d.path(), io::split::test); }),
                 "decompressed size exceeds the 7840016 bytes expected"));
  write_split(d, "t10k", idx_images(10001), idx_labels(10001), false);
  CHECK(contains(error_of([&] { io::load_fashion_mnist(d.path(), io::split::test); }),
                 "7840800 bytes, more than the 7840016 bytes expected"));
}

TEST_CASE("fashion-mnist: a gzip bomb in place of the images stops at the expected size") {
  temp_dir d;
  // 32 members of 16 MiB of zeros: 512 MiB inflated from about 0.5 MiB.
  const auto member = gzip_bytes(std::vector<std::uint8_t>(16u << 20, 0), 9);
  std::vector<std::uint8_t> bomb;
  for (int i = 0; i < 32; ++i) bomb.insert(bomb.end(), member.begin(), member.end());
  write_bytes(d.file("train-images-idx3-ubyte.gz"), bomb);
  write_gz(d.file("train-labels-idx1-ubyte.gz"), idx_labels(60000));
  const std::string msg = error_of([&] { io::load_fashion_mnist(d.path(), io::split::train); });
  CHECK(contains(msg, d.file("train-images-idx3-ubyte.gz")));
  CHECK(contains(msg, "decompressed size exceeds the 47040016 bytes expected"));
}

TEST_CASE("fashion-mnist: wrong magic names the file and the expected magic") {
  SUBCASE("images file holding labels' magic") {
    const std::string msg = error_of([&] {
      io::fashion_mnist_from_idx(idx_images(3, 28, 28, 0x801), "img.gz", idx_labels(3), "lab", 3);
    });
    CHECK(contains(msg, "img.gz"));
    CHECK(contains(msg, "magic 0x00000801, expected 0x00000803"));
  }
  SUBCASE("labels file with a wrong magic") {
    const std::string msg = error_of([&] {
      io::fashion_mnist_from_idx(idx_images(3), "img", idx_labels(3, 0x08000801), "lab", 3);
    });
    CHECK(contains(msg, "idx: lab: magic 0x08000801, expected 0x00000801"));
  }
}

TEST_CASE("fashion-mnist: counts must match between images and labels") {
  const std::string msg =
      error_of([&] { io::fashion_mnist_from_idx(idx_images(4), "img", idx_labels(3), "lab", 4); });
  CHECK(contains(msg, "img holds 4 images"));
  CHECK(contains(msg, "lab holds 3 labels"));
  CHECK(contains(msg, "counts must match"));
}

TEST_CASE("fashion-mnist: wrong dims, wrong size and bad labels") {
  SUBCASE("27x28 images") {
    CHECK(contains(error_of([&] {
                     io::fashion_mnist_from_idx(idx_images(2, 27, 28), "img", idx_labels(2), "lab",
                                                2);
                   }),
                   "images are 27x28, expected 28x28"));
  }
  SUBCASE("truncated images file") {
    auto img = idx_images(3);
    img.resize(img.size() - 10);
    const std::string msg =
        error_of([&] { io::fashion_mnist_from_idx(img, "img.gz", idx_labels(3), "lab", 3); });
    CHECK(contains(msg, "img.gz"));
    CHECK(contains(msg, "2358 bytes, expected 2368 (16-byte header + 2352 data bytes)"));
  }
  SUBCASE("dims whose product overflows 64 bits") {
    std::vector<std::uint8_t> img;
    put_be32(img, 0x803);
    for (int k = 0; k < 3; ++k) put_be32(img, 0xffffffffu);
    CHECK(
        contains(error_of([&] { io::fashion_mnist_from_idx(img, "img", idx_labels(3), "lab", 3); }),
                 "the dims' product overflows 64 bits"));
  }
  SUBCASE("file shorter than the magic") {
    CHECK(contains(error_of([&] {
                     io::fashion_mnist_from_idx({0, 0}, "img", idx_labels(3), "lab", 3);
                   }),
                   "too short for the 4-byte magic (expected 0x00000803)"));
  }
  SUBCASE("label 10") {
    auto lab = idx_labels(3);
    lab[8 + 2] = 10;
    const std::string msg =
        error_of([&] { io::fashion_mnist_from_idx(idx_images(3), "img", lab, "lab", 3); });
    CHECK(contains(msg, "idx: lab: label 10 at index 2 outside 0..9"));
  }
  SUBCASE("missing labels file") {
    temp_dir d;
    write_gz(d.file("t10k-images-idx3-ubyte.gz"), idx_images(3));
    CHECK(contains(error_of([&] { io::load_fashion_mnist(d.path(), io::split::test); }),
                   "t10k-labels-idx1-ubyte.gz)"));
  }
}

TEST_CASE("fashion-mnist: real data (skipped when the package is not installed)") {
  const std::string dir = fashion_mnist_dir_or_skip();
  if (dir.empty()) return;
  MESSAGE("Fashion-MNIST data: " << dir);
  const auto test = io::load_fashion_mnist(dir, io::split::test);
  CHECK(test.n == 10000);
  // First labels read from the files with Python's gzip module.
  const std::array<int, 10> t10k_first{9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
  for (std::size_t i = 0; i < 10; ++i) CHECK(test.labels[i] == t10k_first[i]);
  const auto train = io::load_fashion_mnist(dir, io::split::train);
  CHECK(train.n == 60000);
  const std::array<int, 10> train_first{9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
  for (std::size_t i = 0; i < 10; ++i) CHECK(train.labels[i] == train_first[i]);
  std::array<int, 10> counts{};
  for (auto l : train.labels) ++counts[static_cast<std::size_t>(l)];
  for (int c : counts) CHECK(c == 6000);
  double s = 0, s2 = 0;
  for (auto v : train.images) {
    s += v / 255.0;
    s2 += (v / 255.0) * (v / 255.0);
  }
  const double n = double(train.images.size());
  const double mean = s / n;
  CHECK(io::fashion_mnist::mean_gray[0] == doctest::Approx(mean).epsilon(1e-6));
  CHECK(io::fashion_mnist::std_gray[0] ==
        doctest::Approx(std::sqrt(s2 / n - mean * mean)).epsilon(1e-5));
  // Both splits carry the training set's statistics.
  CHECK(train.mean == std::vector<float>{io::fashion_mnist::mean_gray[0]});
  CHECK(test.stddev == std::vector<float>{io::fashion_mnist::std_gray[0]});
}
