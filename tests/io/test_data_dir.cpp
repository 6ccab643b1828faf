// Data directory resolution: explicit path, then MIXQ_DATA, then defaults.
#include <doctest/doctest.h>

#include <filesystem>

#include "../common/env.hpp"
#include "../common/errors.hpp"
#include "../common/files.hpp"
#include "mixq/io/data_dir.hpp"
#include "../../examples/common/data_dir.hpp"

using namespace mixq_test;
namespace io = mixq::io;

namespace {
io::data_dir_spec spec_with_defaults(std::vector<std::string> defaults) {
  io::data_dir_spec s;
  s.dataset = "toy";
  s.subdir = "toy";
  s.marker_files = {"a.bin", "b.bin"};
  s.defaults = std::move(defaults);
  return s;
}
void make_data(const std::string& dir, bool gz_b = false) {
  std::filesystem::create_directories(dir);
  write_bytes(dir + "/a.bin", {1});
  if (gz_b)
    write_gz(dir + "/b.bin.gz", {2});
  else
    write_bytes(dir + "/b.bin", {2});
}
}  // namespace

TEST_CASE("data_dir: an explicit directory wins, and may be the parent of <subdir>") {
  temp_dir t;
  make_data(t.file("x"));
  make_data(t.file("parent/toy"), true);
  make_data(t.file("default"));
  env_guard env("MIXQ_DATA", t.file("parent").c_str());
  const auto spec = spec_with_defaults({t.file("default")});
  CHECK(io::resolve_data_dir(spec, t.file("x")) == t.file("x"));
  CHECK(io::resolve_data_dir(spec, t.file("parent")) == t.file("parent") + "/toy");
}

TEST_CASE("data_dir: MIXQ_DATA comes before the defaults") {
  temp_dir t;
  make_data(t.file("env"));
  make_data(t.file("default"));
  const auto spec = spec_with_defaults({t.file("default")});
  {
    env_guard env("MIXQ_DATA", t.file("env").c_str());
    CHECK(io::resolve_data_dir(spec) == t.file("env"));
  }
  {
    env_guard env("MIXQ_DATA", "");  // empty counts as unset
    CHECK(io::resolve_data_dir(spec) == t.file("default"));
  }
  {
    env_guard env("MIXQ_DATA", nullptr);
    CHECK(io::resolve_data_dir(spec) == t.file("default"));
  }
}

TEST_CASE("data_dir: the first default that holds the data is used") {
  temp_dir t;
  make_data(t.file("second"));
  std::filesystem::create_directories(t.file("first"));
  write_bytes(t.file("first/a.bin"), {1});  // b.bin missing
  env_guard env("MIXQ_DATA", nullptr);
  CHECK(io::resolve_data_dir(spec_with_defaults(
            {t.file("none"), t.file("first"), t.file("second")})) == t.file("second"));
}

TEST_CASE("data_dir: failures list every place tried and why") {
  temp_dir t;
  std::filesystem::create_directories(t.file("partial"));
  write_bytes(t.file("partial/a.bin"), {1});
  make_data(t.file("good"));
  SUBCASE("nothing found") {
    env_guard env("MIXQ_DATA", nullptr);
    const std::string msg = error_of([&] {
      io::resolve_data_dir(spec_with_defaults({t.file("none"), t.file("partial")}));
    });
    CHECK(contains(msg, "toy: data directory not found"));
    CHECK(contains(msg, t.file("none") + " (default): not a directory"));
    CHECK(contains(msg, t.file("partial") + " (default): missing b.bin"));
    CHECK(contains(msg, "MIXQ_DATA"));
  }
  SUBCASE("a wrong explicit path does not fall back to a default") {
    env_guard env("MIXQ_DATA", nullptr);
    const std::string msg = error_of(
        [&] { io::resolve_data_dir(spec_with_defaults({t.file("good")}), t.file("partial")); });
    CHECK(contains(msg, "data not found in the explicit directory"));
    CHECK(contains(msg, t.file("partial") + " (explicit path): missing b.bin"));
    CHECK(contains(msg, t.file("partial") + "/toy (explicit path): not a directory"));
  }
  SUBCASE("a MIXQ_DATA without this data set falls through to the defaults") {
    env_guard env("MIXQ_DATA", t.file("partial").c_str());
    CHECK(io::resolve_data_dir(spec_with_defaults({t.file("good")})) == t.file("good"));
    // ... and is listed when nothing is found.
    const std::string msg =
        error_of([&] { io::resolve_data_dir(spec_with_defaults({t.file("none")})); });
    CHECK(contains(msg, "toy: data directory not found"));
    CHECK(contains(msg, t.file("partial") + " (MIXQ_DATA): missing b.bin"));
    CHECK(contains(msg, t.file("none") + " (default): not a directory"));
  }
  SUBCASE("no defaults at all says so") {
    env_guard env("MIXQ_DATA", nullptr);
    CHECK(contains(error_of([&] { io::resolve_data_dir(spec_with_defaults({})); }),
                   "no default places"));
  }
}

TEST_CASE(
    "data_dir: the library's defaults are system places; the source tree's are the examples'") {
  env_guard env("MIXQ_DATA", nullptr);
  // The installed library knows no source tree.
  CHECK(io::cifar10_dir_spec().defaults.empty());
  const auto f = io::fashion_mnist_dir_spec();
  REQUIRE(f.defaults.size() == 1u);
  CHECK(f.defaults.front() == "/usr/share/datasets/fashion-mnist");
  CHECK(contains(error_of([&] { io::resolve_data_dir(io::cifar10_dir_spec()); }),
                 "no default places for this data set"));
  // The examples (and tests) add folders of this checkout after them.
  const std::string src = std::filesystem::path(MIXQ_SOURCE_DIR).lexically_normal().string();
  const auto c = mixq::examples::cifar10_dir_spec();
  REQUIRE(c.defaults.size() >= 2u);
  CHECK(c.defaults[0] ==
        std::filesystem::path(src + "/../shared/datasets/cifar10").lexically_normal().string());
  CHECK(c.defaults[1] ==
        std::filesystem::path(src + "/datasets/cifar10").lexically_normal().string());
  const auto fe = mixq::examples::fashion_mnist_dir_spec();
  REQUIRE(fe.defaults.size() >= 2u);
  CHECK(fe.defaults[0] == "/usr/share/datasets/fashion-mnist");
  CHECK(fe.defaults[1] ==
        std::filesystem::path(src + "/datasets/fashion-mnist").lexically_normal().string());
}
