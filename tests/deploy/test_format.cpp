// The model file: round trips, and one clear mixq::error for every kind of
// bad file (truncated at every offset, every byte flipped, wrong version,
// inconsistent fields with valid checksums).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <mixq/deploy/c_array.hpp>
#include <mixq/deploy/crc32.hpp>
#include <mixq/deploy/format.hpp>

#include "deploy_test_util.hpp"

using namespace dtest;

namespace {

md::model small_model(std::uint64_t seed) {
  rng r(seed);
  random_options o;
  o.h = o.w = 6;
  o.width = 4;
  o.classes = 3;
  md::model m = random_model(r, o);
  m.labels = {"cat", "dog", ""};
  m.meta = "source=test\nseed=" + std::to_string(seed) + "\n";
  return m;
}

/// Rewrites the header checksum after a deliberate header change.
void fix_header_crc(std::vector<std::uint8_t>& b) {
  const std::uint32_t c = md::crc32(b.data(), 28);
  for (int i = 0; i < 4; ++i) b[28 + i] = static_cast<std::uint8_t>(c >> (8 * i));
}

/// Byte offsets of the section headers of a file.
std::vector<std::size_t> section_offsets(const std::vector<std::uint8_t>& b) {
  std::vector<std::size_t> at;
  for (std::size_t p = md::format_header_bytes; p < b.size();
       p += md::format_section_header_bytes + md::detail::get_u64(&b[p + 8]))
    at.push_back(p);
  return at;
}

/// Sets the flags of the section at `at` and recomputes its checksum.
void set_section_flags(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t flags) {
  for (int i = 0; i < 4; ++i) b[at + 4 + i] = static_cast<std::uint8_t>(flags >> (8 * i));
  const std::uint64_t len = md::detail::get_u64(&b[at + 8]);
  std::uint32_t c = md::crc32(&b[at], 16);
  c = md::crc32_update(c, &b[at + 24], static_cast<std::size_t>(len));
  for (int i = 0; i < 4; ++i) b[at + 16 + i] = static_cast<std::uint8_t>(c >> (8 * i));
}

std::string parse_error(const std::vector<std::uint8_t>& b) {
  try {
    md::parse(b, "x.mqd");
  } catch (const mixq::error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("crc32 matches the IEEE check value") {
  const char* s = "123456789";
  CHECK(md::crc32(s, 9) == 0xCBF43926u);
  CHECK(md::crc32_update(md::crc32(s, 4), s + 4, 5) == 0xCBF43926u);
  CHECK(md::crc32(s, 0) == 0u);
}

TEST_CASE("model file round trip: parse(serialize(m)) serializes to the same bytes") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    rng r(seed);
    md::model m = random_model(r);
    if (seed % 2) m.labels = std::vector<std::string>(10, "label");
    if (seed % 3) m.meta = "k=v";
    if (seed % 4 == 0) m.input.code_table.assign(256 * 3, 7);
    const auto bytes = md::serialize(m);
    const md::model back = md::parse(bytes, "roundtrip");
    CHECK(md::serialize(back) == bytes);
    REQUIRE(back.layers.size() == m.layers.size());
    CHECK(back.labels == m.labels);
    CHECK(back.meta == m.meta);
    CHECK(back.input.code_table == m.input.code_table);
    const auto& c0 = std::get<md::conv_layer>(back.layers[1]);
    const auto& o0 = std::get<md::conv_layer>(m.layers[1]);
    CHECK(c0.codes == o0.codes);
    CHECK(c0.qm == o0.qm);
    CHECK(c0.w_bits == o0.w_bits);
    CHECK(c0.grid == o0.grid);
  }
}

TEST_CASE("CONV rounding offsets: flag bit 0 and one more array; files without them unchanged") {
  md::model m = small_model(10);
  auto& c0 = std::get<md::conv_layer>(m.layers[0]);
  auto& c1 = std::get<md::conv_layer>(m.layers[1]);
  REQUIRE(!c0.offset.empty());  // random_model: every other conv carries offsets
  REQUIRE(c1.offset.empty());
  c0.offset[0] = mixq::kernels::max_requant_offset;  // both ends of the range
  c0.offset[1] = -mixq::kernels::max_requant_offset;
  const auto bytes = md::serialize(m);
  const md::model back = md::parse(bytes, "offsets");
  CHECK(std::get<md::conv_layer>(back.layers[0]).offset == c0.offset);
  CHECK(std::get<md::conv_layer>(back.layers[1]).offset.empty());
  CHECK(md::serialize(back) == bytes);
  const auto at = section_offsets(bytes);
  CHECK(md::detail::get_u32(&bytes[at[1] + 4]) == md::conv_flag_offsets);  // layer 0
  CHECK(md::detail::get_u32(&bytes[at[2] + 4]) == 0u);                     // layer 1
  // the same model without offsets: every flag 0, 4 bytes per channel fewer
  md::model plain = m;
  for (auto& L : plain.layers)
    if (auto* c = std::get_if<md::conv_layer>(&L)) c->offset.clear();
  const auto pb = md::serialize(plain);
  for (std::size_t a : section_offsets(pb)) CHECK(md::detail::get_u32(&pb[a + 4]) == 0u);
  std::size_t with = 0;
  for (const auto& L : m.layers)
    if (const auto* c = std::get_if<md::conv_layer>(&L)) with += 4 * c->offset.size();
  CHECK(bytes.size() == pb.size() + with);
  const md::model pback = md::parse(pb, "plain");
  for (const auto& L : pback.layers)
    if (const auto* c = std::get_if<md::conv_layer>(&L)) CHECK(c->offset.empty());
}

TEST_CASE("a section flag bit the reader does not know is refused") {
  const auto bytes = md::serialize(small_model(11));
  const auto at = section_offsets(bytes);
  auto conv2 = bytes;  // CONV bit 1: unknown
  set_section_flags(conv2, at[2], 2);
  CHECK(parse_error(conv2).find("section 2 (CONV, layer 1): section flags 0x2 have unknown bits "
                                "0x2") != std::string::npos);
  auto high = bytes;  // CONV bits 0 and 31: bit 31 unknown
  set_section_flags(high, at[1], 0x80000001u);
  CHECK(parse_error(high).find("unknown bits 0x80000000") != std::string::npos);
  auto inpt = bytes;  // bit 0 means nothing outside CONV
  set_section_flags(inpt, at[0], 1);
  CHECK(parse_error(inpt).find("(INPT): section flags 0x1 have unknown bits 0x1") !=
        std::string::npos);
  // CONV bit 0 on a section written without offsets: the reader takes c_out
  // i32 more from the codes and then runs out (or finds bytes missing)
  auto missing = bytes;
  set_section_flags(missing, at[2], md::conv_flag_offsets);
  CHECK(parse_error(missing).find("section 2 (CONV, layer 1)") != std::string::npos);
}

TEST_CASE("analyze checks the offsets' count and range") {
  const md::model good = small_model(12);
  auto err = [&](auto&& mutate) {
    md::model m = good;
    mutate(std::get<md::conv_layer>(m.layers[1]));
    CHECK_THROWS_AS(md::serialize(m), mixq::error);
    return parse_error(md::detail::serialize_unchecked(m));
  };
  // a wrong count (a file always holds c_out offsets: the reader runs out instead)
  md::model wrong = good;
  std::get<md::conv_layer>(wrong.layers[1]).offset.assign(3, 0);
  CHECK_THROWS_WITH_AS(
      md::analyze(wrong),
      doctest::Contains("layer 1 (conv): offset has 3 values, expected 0 (none) or 4"),
      mixq::error);
  CHECK(parse_error(md::detail::serialize_unchecked(wrong)).find("truncated in field 'codes'") !=
        std::string::npos);
  CHECK(err([](md::conv_layer& c) {
          c.offset.assign(4, 0);
          c.offset[2] = mixq::kernels::max_requant_offset + 1;
        }).find("offset[2] = 1073741825, expected -1073741824..1073741824") != std::string::npos);
  CHECK(err([](md::conv_layer& c) {
          c.offset.assign(4, 0);
          c.offset[3] = -mixq::kernels::max_requant_offset - 1;
        }).find("offset[3] = -1073741825") != std::string::npos);
}

TEST_CASE("a file truncated at any byte offset is rejected as truncated") {
  const auto bytes = md::serialize(small_model(3));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + std::ptrdiff_t(n));
    const std::string e = parse_error(cut);
    INFO("length " << n << ": " << e);
    CHECK(e.find("truncated") != std::string::npos);
  }
  std::vector<std::uint8_t> longer = bytes;
  longer.push_back(0);
  CHECK(parse_error(longer).find("trailing bytes") != std::string::npos);
}

TEST_CASE("a file with any byte changed is rejected") {
  const auto bytes = md::serialize(small_model(4));
  rng r(5);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::vector<std::uint8_t> bad = bytes;
    bad[i] ^= static_cast<std::uint8_t>(r.uniform(1, 255));
    const std::string e = parse_error(bad);
    INFO("byte " << i << ": " << e);
    CHECK(e.rfind("model file 'x.mqd': ", 0) == 0);
  }
}

TEST_CASE("wrong magic and wrong version get their own message") {
  auto bytes = md::serialize(small_model(6));
  auto v2 = bytes;
  v2[8] = 2;
  fix_header_crc(v2);
  CHECK(parse_error(v2) == "model file 'x.mqd': format version 2, this runtime reads version 1");
  auto png = bytes;
  png[0] = 0x89;
  CHECK(parse_error(png).find("not a mixq deploy model") != std::string::npos);
  auto flags = bytes;
  flags[12] = 1;
  fix_header_crc(flags);
  CHECK(parse_error(flags).find("header flags 1") != std::string::npos);
}

TEST_CASE("inconsistent files with valid checksums name the field") {
  const md::model good = small_model(7);
  auto check = [&](const char* what, auto&& mutate, const char* expected) {
    md::model m = good;
    mutate(m);
    const std::string e = parse_error(md::detail::serialize_unchecked(m));
    INFO(std::string(what) << ": " << e);
    CHECK(e.find(expected) != std::string::npos);
    CHECK_THROWS_AS(md::serialize(m), mixq::error);  // never written either
  };
  auto conv = [](md::model& m, std::size_t i) -> md::conv_layer& {
    return std::get<md::conv_layer>(m.layers[i]);
  };
  check(
      "c_in",
      [&](md::model& m) {
        conv(m, 1).c_in = 5;
        conv(m, 1).codes.resize(4 * 9 * 5);
      },
      "layer 1 (conv): c_in 5 but input tensor 1 has 4 channels");
  check(
      "weight bits", [&](md::model& m) { conv(m, 2).w_bits = 9; }, "weight bits 9");
  check(
      "clamp", [&](md::model& m) { conv(m, 0).out_bits = 3, conv(m, 0).hi = 200; },
      "clamp [0, 200]");
  check(
      "rshift", [&](md::model& m) { conv(m, 1).rshift[0] = 0; }, "rshift[0] = 0");
  check(
      "forward reference", [&](md::model& m) { conv(m, 1).input = 3; }, "input tensor 3");
  check(
      "option-A channels",
      [&](md::model& m) {
        auto& c = conv(m, 4);  // the option-A block: channels 2..5 of 8 carry the shortcut
        c.res_qm[0] = 7;
      },
      "res_qm[0] = 7");
  check(
      "residual shape", [&](md::model& m) { conv(m, 2).residual = 4; }, "residual tensor 4");
  check(
      "accumulator", [&](md::model& m) { conv(m, 1).bias[2] = 2147483640; },
      "exceeds the int32 range");
  check(
      "labels", [&](md::model& m) { m.labels.pop_back(); }, "2 labels for 3 classes");
  check(
      "linear c_in",
      [&](md::model& m) {
        auto& fc = std::get<md::linear_layer>(m.layers.back());
        fc.c_in = 9;
        fc.codes.resize(3 * 9);
      },
      "c_in 9 but input tensor 7 is 1x1x8");
  check(
      "unused tensor", [&](md::model& m) { conv(m, 5).input = conv(m, 5).residual = 4; },
      "tensor 5 is never used");
  check(
      "input zero point",
      [&](md::model& m) {
        m.input.bits = 4;
        m.input.zero_point[0] = 20;
      },
      "zero_point[0] = 20");
  check(
      "scale", [&](md::model& m) { conv(m, 0).w_scale[1] = -1.0f; }, "w_scale[1]");
  check(
      "code table",
      [&](md::model& m) {
        m.input.bits = 4;
        m.input.zero_point.assign(3, 0);
        m.input.code_table.assign(3 * 256, 1);
        m.input.code_table[5] = 200;
      },
      "code_table[0][5] = 200, expected <= 15");
  check(
      "code table size", [&](md::model& m) { m.input.code_table.assign(100, 0); },
      "truncated in field 'code_table'");
}

TEST_CASE("RMAP: a code-table layer round-trips, and its bad fields are named") {
  rng r(31);
  random_options o;
  o.h = o.w = 6;
  o.width = 4;
  o.classes = 3;
  o.remap = true;
  const md::model good = random_model(r, o);
  const auto& rm = std::get<md::remap_layer>(good.layers[1]);  // after the stem
  const auto bytes = md::serialize(good);
  const md::model back = md::parse(bytes, "roundtrip");
  CHECK(md::serialize(back) == bytes);
  const auto& rb = std::get<md::remap_layer>(back.layers[1]);
  CHECK(rb.table == rm.table);
  CHECK(rb.in_bits == rm.in_bits);
  CHECK(rb.out_bits == rm.out_bits);
  CHECK(rb.hi == rm.hi);
  auto check = [&](const char* what, auto&& mutate, const char* expected) {
    md::model m = good;
    mutate(std::get<md::remap_layer>(m.layers[1]));
    const std::string e = parse_error(md::detail::serialize_unchecked(m));
    INFO(std::string(what) << ": " << e);
    CHECK(e.find(expected) != std::string::npos);
    CHECK_THROWS_AS(md::serialize(m), mixq::error);
  };
  const int in_bits = rm.in_bits;
  check(
      "in_bits",
      [&](md::remap_layer& x) {
        x.in_bits = in_bits == 8 ? 7 : 8;
        x.table.resize(std::size_t(1) << x.in_bits, 0);
      },
      "layer 1 (remap): in_bits");
  check(
      "in_bits range", [&](md::remap_layer& x) { x.in_bits = 9; }, "field 'in_bits' = 9");
  check(
      "table entry", [&](md::remap_layer& x) { x.hi = 0; }, "layer 1 (remap): table[");
  check(
      "clamp", [&](md::remap_layer& x) { x.hi = 1 << x.out_bits; }, "layer 1 (remap): clamp");
  check(
      "input", [&](md::remap_layer& x) { x.input = 0; }, "input tensor 0: a remap reads");
  check(
      "out_scale", [&](md::remap_layer& x) { x.out_scale = 0.0f; }, "out_scale 0");
}

TEST_CASE("structural damage with valid checksums is caught") {
  const auto bytes = md::serialize(small_model(8));
  // an unknown section: rename META (the last section) and recompute its CRC
  auto unknown = bytes;
  std::size_t at = md::format_header_bytes, last = 0;
  while (at < unknown.size()) {
    last = at;
    at += md::format_section_header_bytes + md::detail::get_u64(&unknown[at + 8]);
  }
  std::memcpy(&unknown[last], "XTRA", 4);
  const std::uint64_t len = md::detail::get_u64(&unknown[last + 8]);
  std::uint32_t c = md::crc32(&unknown[last], 16);
  c = md::crc32_update(c, &unknown[last + 24], static_cast<std::size_t>(len));
  for (int i = 0; i < 4; ++i) unknown[last + 16 + i] = static_cast<std::uint8_t>(c >> (8 * i));
  CHECK(parse_error(unknown).find("(XTRA): unknown section tag") != std::string::npos);
  // a header announcing one section fewer: the file then has bytes after the last one
  auto fewer = bytes;
  fewer[24] = static_cast<std::uint8_t>(fewer[24] - 1);
  fix_header_crc(fewer);
  CHECK(parse_error(fewer).find("bytes after the last section") != std::string::npos);
}

TEST_CASE("the C array holds the file bytes") {
  const auto bytes = md::serialize(small_model(9));
  const std::string src = md::emit_c_array(bytes, "net_w4a4", "test");
  CHECK(src.find("static const unsigned char net_w4a4[" + std::to_string(bytes.size()) + "]") !=
        std::string::npos);
  CHECK(src.find("_Alignas(64)") != std::string::npos);
  CHECK(src.find("#define NET_W4A4_SIZE " + std::to_string(bytes.size()) + "u") !=
        std::string::npos);
  // read the hex back
  std::vector<std::uint8_t> back;
  for (std::size_t p = src.find("0x"); p != std::string::npos; p = src.find("0x", p + 4))
    back.push_back(static_cast<std::uint8_t>(std::stoul(src.substr(p, 4), nullptr, 16)));
  CHECK(back == bytes);
  CHECK_THROWS_AS(md::emit_c_array(bytes, "9lives"), mixq::error);
  CHECK_THROWS_AS(md::emit_c_array(bytes, "a-b"), mixq::error);
}
