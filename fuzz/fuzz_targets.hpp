#pragma once
// The bodies of mixq's fuzz targets, one function per input surface. Each
// fuzz/fuzz_<name>.cpp hands libFuzzer's input to one of them; the test
// tests/io/test_fuzz_inputs.cpp replays every committed seed and every input
// that once crashed (fuzz/corpus/<name>/, fuzz/regressions/<name>/) through the
// same functions, so a crash found once stays a test.
//
// A target feeds the bytes to the parser the way a program does and lets a
// mixq::error (the parser's verdict on bad input) pass silently. Anything else
// is a defect: a crash or sanitizer report, a std::bad_alloc (an allocation
// the input should not have been able to ask for), another exception, or a
// hang (libFuzzer's -timeout).
//
//   cifar10   one CIFAR-10 batch file, plain or gzip (decode_maybe_gzip with
//             the loader's bound, cifar10_parse_batch), and the same bytes as
//             batches.meta.txt class names
//   idx       a pair of IDX files (images, labels), each plain or gzip: the
//             input is u32 LE length of the images file | images | labels;
//             the split is expected to hold 3 images
//   archive   a mixq archive (parse_archive), then as a model file and as a
//             checkpoint of a small network (nn::read_state,
//             train::restore_checkpoint)
//   image     an image file of any format stb_image reads (decode_image_rgb,
//             at most 2^20 pixels to keep executions fast), resized to 32x32
//   deploy    a deploy model file (deploy::parse); one that parses, and is
//             small (at most 2^24 multiply-accumulates an image), is also
//             planned and run on one grey image by the integer runtime. Each
//             input is tried twice: as it is, and with its file size and
//             every checksum made right (deploy_fix_checksums), so mutations
//             get past the CRCs to the field checks and the runtime.
//   cli       (fuzz_cli.cpp) the argument list of mixq_train_cifar10
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "mixq/deploy/format.hpp"
#include "mixq/deploy/runtime.hpp"
#include "mixq/error.hpp"
#include "mixq/io/archive.hpp"
#include "mixq/io/cifar10.hpp"
#include "mixq/io/fashion_mnist.hpp"
#include "mixq/io/file.hpp"
#include "mixq/io/image.hpp"
#include "mixq/nn/batch_norm2d.hpp"
#include "mixq/nn/linear.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/train/checkpoint.hpp"

namespace mixq_fuzz {

// Runs `f`, letting the parsers' own verdict (mixq::error) through quietly.
template <class F>
int run(F&& f) {
  try {
    f();
  } catch (const mixq::error&) {
  }
  return 0;
}

inline int cifar10(const std::uint8_t* data, std::size_t size) {
  using namespace mixq::io;
  const std::vector<std::uint8_t> in(data, data + size);
  run([&] {
    const auto bytes = decode_maybe_gzip(in, "fuzz", 2 * mixq::io::cifar10::file_bytes);
    image_dataset ds;
    cifar10_parse_batch(bytes, "fuzz", 10, ds);
    ds.validate();
  });
  run([&] { cifar10_parse_class_names(in, "fuzz"); });
  return 0;
}

inline int idx(const std::uint8_t* data, std::size_t size) {
  using namespace mixq::io;
  if (size < 4) return 0;
  std::uint32_t split = 0;
  std::memcpy(&split, data, 4);
  data += 4;
  size -= 4;
  const std::size_t k = split <= size ? split : size;
  run([&] {
    constexpr std::int64_t n = 3;
    const auto img =
        decode_maybe_gzip(std::vector<std::uint8_t>(data, data + k), "images", 16 + n * 28 * 28);
    const auto lab =
        decode_maybe_gzip(std::vector<std::uint8_t>(data + k, data + size), "labels", 8 + n);
    load_options opt;
    opt.max_images = 2;
    fashion_mnist_from_idx(img, "images", lab, "labels", n, opt).validate();
  });
  return 0;
}

// The network the archive target loads into: a linear layer and a batch norm
// (parameters with and without weight decay, and buffers).
struct tiny_net : mixq::nn::module {
  mixq::rng r{1};
  mixq::nn::linear fc{3, 2, true, r};
  mixq::nn::batch_norm2d bn{2};
  tiny_net() {
    register_module("fc", fc);
    register_module("bn", bn);
  }
};

inline int archive(const std::uint8_t* data, std::size_t size) {
  using namespace mixq;
  const std::vector<std::uint8_t> in(data, data + size);
  run([&] {
    const io::archive a = io::parse_archive(in, "fuzz");
    for (const auto& e : a.entries()) {
      // Every accessor a reader may call on a parsed entry.
      (void)e.numel();
      if (e.type == io::dtype::f32) (void)e.to_vector<float>();
      if (e.type == io::dtype::i64) (void)e.to_vector<std::int64_t>();
    }
    for (const auto& kv : a.metadata()) {
      run([&] { (void)a.meta_int(kv.first); });
      run([&] { (void)a.meta_u64(kv.first); });
    }
    tiny_net m;
    run([&] { nn::read_state(a, m); });
    tiny_net m2;
    optim::sgd opt(m2.parameters(), optim::sgd_options{});
    run([&] { train::restore_checkpoint(a, m2, opt); });
  });
  return 0;
}

inline int image(const std::uint8_t* data, std::size_t size) {
  using namespace mixq::io;
  const std::vector<std::uint8_t> in(data, data + size);
  run([&] {
    const image_u8 img = decode_image_rgb(in, "fuzz", std::int64_t(1) << 20);
    (void)resize_bilinear(img, 32, 32);
  });
  return 0;
}

// The bytes of a deploy model file with the header's file size, the header
// CRC and each section's CRC recomputed, as far as the section lengths allow
// (docs/format.md); anything that is not a model file comes back unchanged.
inline std::vector<std::uint8_t> deploy_fix_checksums(const std::uint8_t* data, std::size_t size) {
  namespace md = mixq::deploy;
  std::vector<std::uint8_t> b(data, data + size);
  auto get = [&](std::size_t at, int bytes) {
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | b[at + static_cast<std::size_t>(i)];
    return v;
  };
  auto put = [&](std::size_t at, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i)
      b[at + static_cast<std::size_t>(i)] = std::uint8_t(v >> (8 * i));
  };
  if (size < md::format_header_bytes || std::memcmp(data, md::format_magic, 8) != 0) return b;
  put(16, size, 8);
  put(28, md::crc32(b.data(), 28), 4);
  const std::uint64_t count = get(24, 4);
  std::size_t at = md::format_header_bytes;
  for (std::uint64_t s = 0; s < count && size - at >= md::format_section_header_bytes; ++s) {
    const std::uint64_t len = get(at + 8, 8);
    if (len > size - at - md::format_section_header_bytes) break;
    std::uint32_t crc = md::crc32(b.data() + at, 16);
    crc = md::crc32_update(crc, b.data() + at + md::format_section_header_bytes,
                           static_cast<std::size_t>(len));
    put(at + 16, crc, 4);
    at += md::format_section_header_bytes + static_cast<std::size_t>(len);
  }
  return b;
}

inline void deploy_model_once(const std::uint8_t* data, std::size_t size) {
  namespace md = mixq::deploy;
  run([&] {
    const md::model m = md::parse(data, size, "fuzz");
    const md::model_info info = md::analyze(m);
    if (info.macs > (std::int64_t(1) << 24)) return;
    md::runtime_options o;
    o.max_batch = 1;
    o.threads = 1;
    md::runtime rt = md::runtime::from_memory(data, size, o);
    const auto& in = rt.input();
    std::vector<std::uint8_t> image(static_cast<std::size_t>(in.h * in.w * in.c), 128);
    rt.run(image.data(), 1);
    (void)rt.top1(0);
  });
}

inline int deploy_model(const std::uint8_t* data, std::size_t size) {
  deploy_model_once(data, size);
  const std::vector<std::uint8_t> fixed = deploy_fix_checksums(data, size);
  deploy_model_once(fixed.data(), fixed.size());
  return 0;
}

}  // namespace mixq_fuzz
