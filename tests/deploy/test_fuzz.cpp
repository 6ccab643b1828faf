// Structured fuzzing of the model file: random byte changes inside a section's
// payload with every checksum recomputed, so that the damage reaches the field
// checks instead of stopping at a CRC. Each file must either be rejected with
// a mixq::error or load; a file that loads must also plan and run (its
// accumulator bounds were checked, so no kernel can overflow) and give the
// reference's logits. Bundles get the same treatment (their top-level
// checksums recomputed; a configuration's inner model keeps its own), and a
// bundle that loads runs every configuration exactly. Run under -fsanitize=address,undefined this
// shows that no file makes the reader or the runtime read out of bounds.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <mixq/deploy/bundle.hpp>
#include <mixq/deploy/crc32.hpp>
#include <mixq/deploy/format.hpp>
#include <mixq/deploy/runtime.hpp>
#include <mixq/deploy/switchable.hpp>

#include "deploy_test_util.hpp"

using namespace dtest;

namespace {

void put_u32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

/// Recomputes every section CRC and the header CRC.
void fix_checksums(std::vector<std::uint8_t>& b) {
  std::size_t at = md::format_header_bytes;
  while (at + md::format_section_header_bytes <= b.size()) {
    const std::uint64_t len = md::detail::get_u64(&b[at + 8]);
    if (len > b.size() - at - md::format_section_header_bytes) break;
    std::uint32_t c = md::crc32(&b[at], 16);
    c = md::crc32_update(c, &b[at + 24], static_cast<std::size_t>(len));
    put_u32(b, at + 16, c);
    at += md::format_section_header_bytes + static_cast<std::size_t>(len);
  }
  put_u32(b, 28, md::crc32(b.data(), 28));
}

/// Changes 1..max_changes random bytes after the file header: a random byte, a
/// small change of a field, or a large 32-bit value.
void mutate(std::vector<std::uint8_t>& b, rng& r, int max_changes) {
  const int changes = static_cast<int>(r.uniform(1, max_changes));
  for (int k = 0; k < changes; ++k) {
    const std::size_t at =
        static_cast<std::size_t>(r.uniform(md::format_header_bytes, b.size() - 1));
    switch (r.uniform(0, 2)) {
      case 0:
        b[at] = static_cast<std::uint8_t>(r.uniform(0, 255));
        break;
      case 1:
        b[at] = static_cast<std::uint8_t>(b[at] + r.uniform(-2, 2));
        break;
      default:
        if (at + 4 <= b.size()) put_u32(b, at, static_cast<std::uint32_t>(r.next()));
        break;
    }
  }
  fix_checksums(b);
}

}  // namespace

TEST_CASE("fuzzed model files: a clear error, or a model that runs exactly") {
  rng r(2024);
  random_options o;
  o.h = o.w = 5;
  o.width = 4;
  o.classes = 4;
  o.remap = true;  // an RMAP section among the fuzzed bytes
  const md::model base = random_model(r, o);
  const auto good = md::serialize(base);
  const auto images = random_images(base, 1, r);
  int rejected = 0, loaded = 0;
  for (int it = 0; it < 3000; ++it) {
    std::vector<std::uint8_t> b = good;
    mutate(b, r, 4);
    md::model m;
    try {
      m = md::parse(b, "fuzz");
    } catch (const mixq::error& e) {
      ++rejected;
      CHECK(std::string(e.what()).rfind("model file 'fuzz': ", 0) == 0);
      continue;
    }
    ++loaded;
    if (std::int64_t(m.input.h) * m.input.w > 64 * 64) continue;  // a huge input: valid, slow
    const auto img =
        m.input.h == base.input.h && m.input.w == base.input.w ? images : random_images(m, 1, r);
    md::runtime rt(m);
    rt.run(img.data(), 1);
    const auto want = reference_logits(m, img.data(), 1);
    for (std::int32_t c = 0; c < rt.classes(); ++c)
      CHECK(rt.logits()[c] == want[static_cast<std::size_t>(c)]);
  }
  MESSAGE("fuzzed files: " << rejected << " rejected, " << loaded << " loaded and run");
  CHECK(rejected > 0);
  CHECK(loaded > 0);
}

TEST_CASE("fuzzed bundles: a clear error, or configurations that run exactly") {
  rng r(2025);
  random_options o;
  o.h = o.w = 5;
  o.width = 4;
  o.classes = 4;
  o.input_zero_points = false;
  const md::model a = random_model(r, o);
  md::model b = a;  // the same codes, other requantization
  for (md::layer& L : b.layers)
    if (auto* cv = std::get_if<md::conv_layer>(&L))
      for (auto& x : cv->bias) x += static_cast<std::int32_t>(r.uniform(-9, 9));
  const md::model c = random_model(r, o);
  const auto good = md::serialize_bundle({{"a", a}, {"b", b}, {"c", c}});
  const auto images = random_images(a, 1, r);
  int rejected = 0, loaded = 0;
  for (int it = 0; it < 1500; ++it) {
    std::vector<std::uint8_t> bytes = good;
    mutate(bytes, r, 3);
    std::vector<md::named_model> cfg;
    try {
      cfg = md::parse_bundle(bytes, "fuzz");
    } catch (const mixq::error& e) {
      ++rejected;
      CHECK(std::string(e.what()).rfind("bundle file 'fuzz': ", 0) == 0);
      continue;
    }
    ++loaded;
    md::switchable_runtime sw(cfg);
    for (std::size_t i = 0; i < cfg.size(); ++i) {
      sw.select(i);
      sw.run(images.data(), 1);
      const auto want = reference_logits(cfg[i].m, images.data(), 1);
      for (std::int32_t k = 0; k < sw.classes(); ++k)
        CHECK(sw.logits()[k] == want[static_cast<std::size_t>(k)]);
    }
  }
  MESSAGE("fuzzed bundles: " << rejected << " rejected, " << loaded << " loaded and run");
  CHECK(rejected > 0);
  CHECK(loaded > 0);
}
