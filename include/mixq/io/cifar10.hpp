#pragma once
// CIFAR-10, official binary version (plain .bin or gzip-compressed .bin.gz).
//
// Format (per file, no header): 10,000 records of 3,073 bytes; byte 0 is the
// label (0..9), then 1,024 bytes of red, 1,024 green, 1,024 blue, each a 32x32
// row-major plane. train = data_batch_1..5 (50,000 images, in file order),
// test = test_batch (10,000). batches.meta.txt, when present, names the
// classes, one per line.
//
// The loader checks everything it can before trusting a file:
//  - size: a multiple of 3,073 bytes and exactly 10,000 records, else
//    "cifar10: <file>: 30729000 bytes, expected 30730000 (10000 records of 3073)";
//  - labels: each in 0..9, else the error names the file, the record index and
//    the value;
//  - gzip integrity (CRC and length, via read_file_bytes).
// Images are stored as uint8 NHWC (planar CHW per record is transposed once at
// load), 3,072 bytes per image; the full training set is 150 MiB.
// With load_options::max_images = N only the first N images are kept (and only
// the files that hold them are read); N larger than the split is an error.
// Both splits carry the training set's mean and stddev (image_dataset).
// Each file is `<name>.bin` or, when that does not exist, `<name>.bin.gz`
// (resolve_maybe_gz: an unreadable `.bin` is an error, never a switch to the
// `.gz`); image_dataset::files lists the files read.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/io/data_dir.hpp"
#include "mixq/io/dataset.hpp"
#include "mixq/io/file.hpp"

namespace mixq::io {

struct cifar10 {
  static constexpr std::int64_t height = 32, width = 32, channels = 3;
  static constexpr std::int64_t image_bytes = height * width * channels;  // 3072
  static constexpr std::int64_t record_bytes = 1 + image_bytes;           // 3073
  static constexpr std::int64_t records_per_file = 10000;
  static constexpr std::int64_t file_bytes = record_bytes * records_per_file;
  static constexpr std::int32_t num_classes = 10;
  static constexpr std::int64_t train_size = 50000, test_size = 10000;
  // Per-channel (R, G, B) mean and population std of pixel/255 over the
  // training set (docs/data.md; checked against the data in tests/io).
  static constexpr float mean_rgb[3] = {0.49139968f, 0.48215841f, 0.44653091f};
  static constexpr float std_rgb[3] = {0.24703223f, 0.24348513f, 0.26158784f};
};

// File names (without .gz) that make up a CIFAR-10 split, in order.
inline std::vector<std::string> cifar10_files(split s) {
  if (s == split::test) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
          "data_batch_5.bin"};
}

// Parses one CIFAR-10 batch file already in memory and appends its first
// `keep` records (NHWC) to `out`. `file` is used in messages only.
// throws: mixq::error on a wrong size or a label outside 0..9 (file, record, value).
inline void cifar10_parse_batch(const std::vector<std::uint8_t>& bytes, const std::string& file,
                                std::int64_t keep, image_dataset& out) {
  const auto size = static_cast<std::int64_t>(bytes.size());
  MIXQ_CHECK(size == cifar10::file_bytes, "cifar10: ", file, ": ", size, " bytes, expected ",
             cifar10::file_bytes, " (", cifar10::records_per_file, " records of ",
             cifar10::record_bytes, "); ",
             size % cifar10::record_bytes == 0 ? "holds " : "not a whole number of records, ",
             size / cifar10::record_bytes,
             size % cifar10::record_bytes == 0 ? " records" : " whole records");
  // Validate all labels, also of records that are not kept: a corrupt file is
  // reported whatever subset is asked for.
  for (std::int64_t r = 0; r < cifar10::records_per_file; ++r) {
    const std::uint8_t lab = bytes[static_cast<std::size_t>(r * cifar10::record_bytes)];
    MIXQ_CHECK(lab < cifar10::num_classes, "cifar10: ", file, ": record ", r, ": label ", int(lab),
               " outside 0..9");
  }
  const std::int64_t base = out.n;
  out.images.resize(static_cast<std::size_t>((base + keep) * cifar10::image_bytes));
  out.labels.resize(static_cast<std::size_t>(base + keep));
  constexpr std::int64_t plane = cifar10::height * cifar10::width;
  for (std::int64_t r = 0; r < keep; ++r) {
    const std::uint8_t* rec = bytes.data() + r * cifar10::record_bytes;
    out.labels[static_cast<std::size_t>(base + r)] = rec[0];
    std::uint8_t* dst = out.image(base + r);
    const std::uint8_t* red = rec + 1;
    for (std::int64_t p = 0; p < plane; ++p) {
      dst[3 * p + 0] = red[p];
      dst[3 * p + 1] = red[plane + p];
      dst[3 * p + 2] = red[2 * plane + p];
    }
  }
  out.n = base + keep;
}

// Parses the text of batches.meta.txt: one class name per non-empty line
// (trailing spaces and CRs dropped), exactly 10 of them. `file` names it in
// messages.
inline std::vector<std::string> cifar10_parse_class_names(const std::vector<std::uint8_t>& bytes,
                                                          const std::string& file) {
  std::vector<std::string> names;
  std::string line;
  for (std::size_t i = 0; i <= bytes.size(); ++i) {
    if (i < bytes.size() && bytes[i] != '\n') {
      line += static_cast<char>(bytes[i]);
      continue;
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
    line.clear();
  }
  MIXQ_CHECK(names.size() == static_cast<std::size_t>(cifar10::num_classes), "cifar10: ", file,
             ": ", names.size(), " class names, expected ", cifar10::num_classes);
  return names;
}

// Reads batches.meta.txt from `dir` when present (at most 64 KiB; a
// directory, FIFO or unreadable file there is an error). Returns an empty
// vector when the file is absent.
inline std::vector<std::string> cifar10_class_names(const std::string& dir) {
  const std::string path = dir + "/batches.meta.txt";
  if (!detail::path_exists(path)) return {};
  return cifar10_parse_class_names(read_file_bytes(path, 64 * 1024), path);
}

// Loads a CIFAR-10 split from `dir` (files `<name>.bin` or `<name>.bin.gz`).
// requires: opt.max_images in [0, split size]; 0 = the whole split.
// ensures:  result.n == (max_images ? max_images : 50000 / 10000), h=w=32, c=3,
//           NHWC uint8 images, labels in 0..9, result.validate() holds.
// throws:   mixq::error naming the file and what was expected.
inline image_dataset load_cifar10(const std::string& dir, split s, const load_options& opt = {}) {
  const std::int64_t total = s == split::train ? cifar10::train_size : cifar10::test_size;
  MIXQ_CHECK(opt.max_images >= 0 && opt.max_images <= total,
             "cifar10: max_images = ", opt.max_images, " but the ",
             s == split::train ? "train" : "test", " split has ", total, " images");
  const std::int64_t want = opt.max_images ? opt.max_images : total;
  image_dataset ds;
  ds.name = s == split::train ? "cifar10/train" : "cifar10/test";
  ds.h = cifar10::height;
  ds.w = cifar10::width;
  ds.c = cifar10::channels;
  ds.num_classes = cifar10::num_classes;
  ds.images.reserve(static_cast<std::size_t>(want * cifar10::image_bytes));
  ds.labels.reserve(static_cast<std::size_t>(want));
  for (const auto& name : cifar10_files(s)) {
    if (ds.n >= want) break;
    std::string path;
    // Allow a little more than the exact size so a too-long file is reported
    // with its size rather than as "exceeds".
    const auto bytes = read_maybe_gz(dir + "/" + name, 2 * cifar10::file_bytes, &path);
    const std::int64_t keep = std::min<std::int64_t>(cifar10::records_per_file, want - ds.n);
    cifar10_parse_batch(bytes, path, keep, ds);
    ds.files.push_back(path);
  }
  MIXQ_CHECK(ds.n == want, "cifar10: loaded ", ds.n, " images from ", dir, ", expected ", want);
  ds.class_names = cifar10_class_names(dir);
  ds.mean.assign(cifar10::mean_rgb, cifar10::mean_rgb + 3);
  ds.stddev.assign(cifar10::std_rgb, cifar10::std_rgb + 3);
  return ds;
}

// Same, with the directory found by cifar10_data_dir(explicit_dir) (a flag,
// MIXQ_DATA, system places; see data_dir.hpp).
inline image_dataset load_cifar10_auto(split s, const load_options& opt = {},
                                       const std::string& explicit_dir = "") {
  return load_cifar10(cifar10_data_dir(explicit_dir), s, opt);
}

}  // namespace mixq::io
