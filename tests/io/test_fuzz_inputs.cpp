// Replays the fuzz targets' committed inputs: every seed (fuzz/corpus/<t>/)
// and every input that once crashed a target (fuzz/regressions/<t>/), through
// the same functions libFuzzer calls (fuzz/fuzz_targets.hpp). In the sanitizer
// build (scripts/test.sh) a regression that comes back is reported by
// AddressSanitizer / UBSan here, without a fuzzer.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "../../fuzz/fuzz_targets.hpp"
#include "../common/errors.hpp"
#include "../common/files.hpp"

using namespace mixq_test;
namespace fs = std::filesystem;

namespace {
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file()) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

const std::map<std::string, std::function<int(const std::uint8_t*, std::size_t)>>& targets() {
  static const std::map<std::string, std::function<int(const std::uint8_t*, std::size_t)>> t{
      {"cifar10", mixq_fuzz::cifar10},
      {"idx", mixq_fuzz::idx},
      {"archive", mixq_fuzz::archive},
      {"image", mixq_fuzz::image},
      {"deploy", mixq_fuzz::deploy_model}};
  return t;
}
}  // namespace

TEST_CASE("fuzz inputs: every seed and every former crash runs cleanly") {
  const std::string root = std::string(MIXQ_SOURCE_DIR) + "/fuzz";
  for (const auto& [name, run] : targets()) {
    const auto seeds = files_in(root + "/corpus/" + name);
    CAPTURE(name);
    CHECK(!seeds.empty());  // each target has a seed corpus
    std::vector<std::string> all = seeds;
    for (const auto& f : files_in(root + "/regressions/" + name)) all.push_back(f);
    for (const auto& f : all) {
      CAPTURE(f);
      const auto bytes = read_bytes(f);
      CHECK_NOTHROW(run(bytes.data(), bytes.size()));
    }
    MESSAGE(name << ": " << all.size() << " inputs replayed");
  }
}

TEST_CASE("fuzz inputs: the seeds are valid inputs of their format") {
  const std::string root = std::string(MIXQ_SOURCE_DIR) + "/fuzz/corpus";
  for (const auto& f : files_in(root + "/image")) {
    CAPTURE(f);
    CHECK_NOTHROW(mixq::io::decode_image_rgb(read_bytes(f), f));
  }
  for (const auto& f : files_in(root + "/archive")) {
    CAPTURE(f);
    CHECK_NOTHROW(mixq::io::parse_archive(read_bytes(f), f));
  }
}

TEST_CASE("fuzz inputs: each image that crashed stb_image is refused with mixq::error") {
  const auto crashes = files_in(std::string(MIXQ_SOURCE_DIR) + "/fuzz/regressions/image");
  CHECK(crashes.size() >= 3);
  for (const auto& f : crashes) {
    CAPTURE(f);
    const std::string msg = error_of([&] { mixq::io::decode_image_rgb(read_bytes(f), f); });
    CHECK(contains(msg, "not a decodable image"));
  }
}

TEST_CASE("fuzz inputs: the deploy target's checksum repair reaches the field checks") {
  const auto seeds = files_in(std::string(MIXQ_SOURCE_DIR) + "/fuzz/corpus/deploy");
  REQUIRE(!seeds.empty());
  for (const auto& f : seeds) {
    CAPTURE(f);
    std::vector<std::uint8_t> bytes = read_bytes(f);
    CHECK(mixq_fuzz::deploy_fix_checksums(bytes.data(), bytes.size()) == bytes);
    // The INPT section's first field (the input height, at byte 32 + 24) set
    // to 0: the section checksum refuses it; repaired, the field check does.
    bytes[56] = bytes[57] = bytes[58] = bytes[59] = 0;
    CHECK(contains(error_of([&] { mixq::deploy::parse(bytes.data(), bytes.size(), f); }),
                   "checksum mismatch"));
    const auto fixed = mixq_fuzz::deploy_fix_checksums(bytes.data(), bytes.size());
    const std::string msg = error_of([&] { mixq::deploy::parse(fixed.data(), fixed.size(), f); });
    CHECK(contains(msg, "section 0 (INPT)"));
    CHECK_FALSE(contains(msg, "checksum"));
  }
}
