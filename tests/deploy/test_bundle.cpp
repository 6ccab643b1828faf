// Bundles (bundle.hpp) and the switchable runtime (switchable.hpp): the
// codes are stored and packed once per distinct array, and a selected
// configuration computes what the model alone computes, whatever ran before.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <stdlib.h>
#include <unistd.h>

#include <mixq/deploy/bundle.hpp>
#include <mixq/deploy/switchable.hpp>

#include "../common/temp_dir.hpp"
#include "deploy_test_util.hpp"

using namespace dtest;
namespace mk = mixq::kernels;

namespace {

/// Four configurations of one graph: "base"; "recal" (base's codes with new
/// requantization, as after a batch-norm recalibration); "lowered" (base with
/// one layer at another weight width); "a2" (other codes, 2-bit everything, so some
/// layers take the bit-plane path where the CPU has it).
std::vector<md::named_model> four_configs(std::uint64_t seed) {
  random_options o;
  o.input_zero_points = false;
  rng r(seed);
  md::model base = random_model(r, o);
  md::model recal = base;
  for (md::layer& L : recal.layers)
    if (auto* cv = std::get_if<md::conv_layer>(&L))
      for (std::size_t n = 0; n < cv->bias.size(); ++n) {
        cv->bias[n] += static_cast<std::int32_t>(r.uniform(-50, 50));
        cv->qm[n] = static_cast<std::int32_t>(cv->qm[n] / 8 * 7);
      }
  md::model lowered = base;
  auto& cv = std::get<md::conv_layer>(lowered.layers[1]);
  cv.w_bits = cv.w_bits == 2 ? 3 : 2;  // another width than base's
  cv.grid = md::weight_grid::signed_codes;
  for (auto& c : cv.codes)
    c = static_cast<std::int8_t>(r.uniform(-(1 << (cv.w_bits - 1)), (1 << (cv.w_bits - 1)) - 1));
  random_options o2 = o;
  o2.min_bits = o2.max_bits = 2;
  o2.odd_grids = false;
  md::model a2 = random_model(r, o2);
  return {{"base", base}, {"recal", recal}, {"lowered", lowered}, {"a2", a2}};
}

std::vector<std::int32_t> as_int32(const std::vector<std::int64_t>& v) {
  return std::vector<std::int32_t>(v.begin(), v.end());
}

/// Rewrites the CRC of every section (after a test edited a payload).
void fix_crcs(std::vector<std::uint8_t>& b) {
  std::size_t at = md::format_header_bytes;
  while (at + md::format_section_header_bytes <= b.size()) {
    const std::uint64_t len = md::detail::get_u64(&b[at + 8]);
    std::uint32_t crc = md::crc32(&b[at], 16);
    crc = md::crc32_update(crc, &b[at + md::format_section_header_bytes],
                           static_cast<std::size_t>(len));
    for (int i = 0; i < 4; ++i) b[at + 16 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
    at += md::format_section_header_bytes + static_cast<std::size_t>(len);
  }
}

/// Bytes of all sections with `tag`, headers included.
std::size_t section_bytes(const std::vector<std::uint8_t>& b, const char* tag) {
  std::size_t at = md::format_header_bytes, sum = 0;
  while (at + md::format_section_header_bytes <= b.size()) {
    const std::size_t len =
        md::format_section_header_bytes + static_cast<std::size_t>(md::detail::get_u64(&b[at + 8]));
    if (std::string(reinterpret_cast<const char*>(&b[at]), 4) == tag) sum += len;
    at += len;
  }
  return sum;
}

/// Offset of the payload of the k-th section with `tag`.
std::size_t payload_of(const std::vector<std::uint8_t>& b, const char* tag, int k) {
  std::size_t at = md::format_header_bytes;
  while (at + md::format_section_header_bytes <= b.size()) {
    if (std::string(reinterpret_cast<const char*>(&b[at]), 4) == tag && k-- == 0)
      return at + md::format_section_header_bytes;
    at +=
        md::format_section_header_bytes + static_cast<std::size_t>(md::detail::get_u64(&b[at + 8]));
  }
  FAIL("no section ", tag);
  return 0;
}

}  // namespace

TEST_CASE("a bundle stores each distinct code array once and reads back every configuration") {
  const auto cfg = four_configs(3);
  const auto bytes = md::serialize_bundle(cfg);
  CHECK(md::is_bundle(bytes));
  const auto back = md::parse_bundle(bytes, "four");
  REQUIRE(back.size() == cfg.size());
  for (std::size_t i = 0; i < cfg.size(); ++i) {
    CHECK(back[i].name == cfg[i].name);
    CHECK(md::serialize(back[i].m) == md::serialize(cfg[i].m));
  }
  const md::bundle_bytes b = md::measure_bundle(cfg);
  CHECK(b.bundle == bytes.size());
  CHECK(b.code_arrays == 4 * cfg[0].m.layers.size() - 4);  // every layer but the pooling
  // base's arrays, the lowered layer's, and a2's (7 weight layers each)
  CHECK(b.unique_code_arrays == 7 + 1 + 7);
  CHECK(b.bundle < b.separate);
  // recal shares every array: it adds its CNFG section only (the name is one byte longer)
  const auto one = md::serialize_bundle({cfg[0]});
  const auto two = md::serialize_bundle({cfg[0], cfg[1]});
  const std::size_t codes = section_bytes(one, "CODE");
  CHECK(codes > 0);
  CHECK(two.size() == one.size() + (one.size() - md::format_header_bytes - codes) + 1);
}

TEST_CASE(
    "the switchable runtime computes each configuration exactly, in any order, on every ISA") {
  const auto cfg = four_configs(5);
  rng r(9);
  const std::int64_t n = 5;
  const auto images = random_images(cfg[0].m, n, r);
  std::vector<std::vector<std::int32_t>> want;
  for (const auto& c : cfg) want.push_back(as_int32(reference_logits(c.m, images.data(), n)));
  for (mk::isa l :
       {mk::isa::scalar, mk::isa::avx2, mk::isa::avx512, mk::isa::neon, mk::isa::neon_dotprod}) {
    if (!mk::isa_supported(l)) continue;
    for (int threads : {1, 2}) {
      INFO("ISA " << std::string(mk::isa_name(l)) << ", threads " << threads);
      md::runtime_options o;
      o.max_batch = n;
      o.threads = threads;
      o.isa = l;
      md::switchable_runtime sw(cfg, o);
      CHECK(sw.configurations() == 4);
      for (std::size_t i : {0, 3, 1, 2, 0, 3, 2}) {
        sw.select(i);
        sw.run(images.data(), n);
        const std::vector<std::int32_t> got(sw.logits(), sw.logits() + n * sw.classes());
        CHECK_MESSAGE(got == want[i], "configuration ", cfg[i].name);
      }
      sw.select("recal");
      CHECK(sw.selected() == 1);
      // shared: fewer packings than layers, less memory than four runtimes
      CHECK(sw.packings() < 4 * 7);
      CHECK(sw.weight_bytes() < sw.separate_weight_bytes());
      CHECK(sw.arena_bytes() < sw.separate_arena_bytes());
      std::size_t biggest = 0;
      for (std::size_t i = 0; i < 4; ++i)
        biggest = std::max(biggest, sw.configuration(i).arena_bytes());
      CHECK(sw.arena_bytes() == biggest);
    }
  }
}

TEST_CASE("a bundle file round-trips through save and load") {
  const auto cfg = four_configs(11);
  const mixq_test::temp_dir dir;
  const std::string path = dir.file("supernet.mqb");
  md::save_bundle(cfg, path);
  md::switchable_runtime sw = md::switchable_runtime::from_file(path);
  CHECK(sw.names() == std::vector<std::string>{"base", "recal", "lowered", "a2"});
  CHECK(md::read_file_bytes(path) == md::serialize_bundle(cfg));
}

TEST_CASE("bundle errors name the configuration and the field") {
  const auto cfg = four_configs(13);
  SUBCASE("writer: duplicate and empty names, other input shapes") {
    auto dup = cfg;
    dup[2].name = "base";
    CHECK_THROWS_WITH(md::serialize_bundle(dup),
                      doctest::Contains("the name of configuration 0 again"));
    auto empty = cfg;
    empty[1].name = "";
    CHECK_THROWS_WITH(md::serialize_bundle(empty), doctest::Contains("expected 1..255"));
    random_options o;
    o.h = 6;
    rng r(1);
    auto shape = cfg;
    shape[3].m = random_model(r, o);
    CHECK_THROWS_WITH(md::serialize_bundle(shape),
                      doctest::Contains("input 6x8x3, expected 8x8x3"));
    CHECK_THROWS_WITH(md::serialize_bundle({}), doctest::Contains("0 configurations"));
  }
  const auto good = md::serialize_bundle(cfg);
  SUBCASE("a deploy model is not a bundle, and a bundle is not a deploy model") {
    const auto model_bytes = md::serialize(cfg[0].m);
    CHECK_THROWS_WITH(md::parse_bundle(model_bytes, "m.mqd"),
                      doctest::Contains("not a mixq bundle"));
    CHECK_THROWS_WITH(md::parse(good, "b.mqb"), doctest::Contains("not a mixq deploy model"));
  }
  SUBCASE("a configuration's model alone: its layers have no codes") {
    const std::size_t p = payload_of(good, "CNFG", 0);
    const std::uint32_t nlen = md::detail::get_u32(&good[p]);
    const std::uint32_t k = md::detail::get_u32(&good[p + 4 + nlen]);
    const std::size_t body = p + 8 + nlen + 4 * k;
    const std::vector<std::uint8_t> inner(
        good.begin() + static_cast<std::ptrdiff_t>(body),
        good.begin() + static_cast<std::ptrdiff_t>(body + md::detail::get_u64(&good[body + 16])));
    CHECK_THROWS_WITH(md::parse(inner, "inner"), doctest::Contains("only in a bundle"));
  }
  SUBCASE("corrupted, truncated, bad index, wrong bits") {
    auto bad = good;
    bad[payload_of(bad, "CODE", 0) + 20] ^= 0x10;
    CHECK_THROWS_WITH(md::parse_bundle(bad, "x"), doctest::Contains("section 0 (CODE): checksum"));
    auto cut = good;
    cut.resize(cut.size() - 3);
    CHECK_THROWS_WITH(md::parse_bundle(cut, "x"), doctest::Contains("truncated"));
    auto idx = good;
    const std::size_t p = payload_of(idx, "CNFG", 2);  // "lowered"
    const std::uint32_t nlen = md::detail::get_u32(&idx[p]);
    idx[p + 8 + nlen] = 200;  // its first code index
    fix_crcs(idx);
    CHECK_THROWS_WITH(md::parse_bundle(idx, "x"),
                      doctest::Contains("configuration 2 ('lowered'): code index 200"));
    auto swap = good;
    const std::size_t q = payload_of(swap, "CNFG", 2);
    // layer 1 of "lowered" (2-bit) pointed at base's layer-1 array instead
    const std::uint32_t base_l1 =
        md::detail::get_u32(&swap[payload_of(swap, "CNFG", 0) + 8 +
                                  md::detail::get_u32(&swap[payload_of(swap, "CNFG", 0)]) + 4]);
    for (int i = 0; i < 4; ++i)
      swap[q + 8 + nlen + 4 + i] = static_cast<std::uint8_t>(base_l1 >> (8 * i));
    fix_crcs(swap);
    CHECK_THROWS_WITH(md::parse_bundle(swap, "x"), doctest::Contains("layer 1 references CODE"));
  }
}

TEST_CASE("switchable runtime: unknown configurations are refused with the known names") {
  md::switchable_runtime sw(four_configs(17));
  CHECK_THROWS_WITH(sw.select(4), doctest::Contains("configuration 4, expected 0..3"));
  CHECK_THROWS_WITH(
      sw.select("w9"),
      doctest::Contains("no configuration 'w9' (the bundle has base, recal, lowered, a2)"));
  CHECK(sw.selected() == 0);
}
