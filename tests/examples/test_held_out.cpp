// examples/common/held_out.hpp: the held-out split a model file records, read
// back as written; a file without it reads as none; a bad value or a missing
// seed or pool is refused naming the file and the field.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "../../examples/common/held_out.hpp"
#include "mixq/io/archive.hpp"

namespace ex = mixq::examples;

namespace {
mixq::io::archive with_meta(const std::map<std::string, std::string>& meta) {
  mixq::io::archive a;
  for (const auto& kv : meta) a.set_meta(kv.first, kv.second);
  return a;
}
}  // namespace

TEST_CASE("held-out record: written, read back; none when absent or 0") {
  std::map<std::string, std::string> meta;
  ex::add_held_out_meta(meta, {5000, 7, 50000});
  CHECK(meta.at("held_out") == "5000");
  CHECK(meta.at("held_out_seed") == "7");
  CHECK(meta.at("held_out_of") == "50000");
  const ex::held_out_split h = ex::read_held_out(with_meta(meta), "m.mixq");
  CHECK(h == ex::held_out_split{5000, 7, 50000});
  CHECK_FALSE(h == ex::held_out_split{5000, 1, 50000});
  CHECK_FALSE(h == ex::held_out_split{4000, 7, 50000});
  // the same count and seed drawn from a --train-subset is another split
  CHECK_FALSE(h == ex::held_out_split{5000, 7, 20000});
  std::map<std::string, std::string> none;
  ex::add_held_out_meta(none, {0, 7, 50000});
  CHECK(none.empty());
  CHECK(ex::read_held_out(with_meta({{"arch", "resnet20"}}), "m.mixq") == ex::held_out_split{});
}

TEST_CASE("held-out record: a bad value or a missing seed is named") {
  CHECK_THROWS_WITH_AS(ex::read_held_out(with_meta({{"held_out", "5000"}}), "m.mixq"),
                       doctest::Contains("m.mixq: metadata 'held_out' without 'held_out_seed'"),
                       mixq::error);
  CHECK_THROWS_WITH_AS(
      ex::read_held_out(with_meta({{"held_out", "5000"}, {"held_out_seed", "1"}}), "m.mixq"),
      doctest::Contains("m.mixq: metadata 'held_out' without 'held_out_of'"), mixq::error);
  for (const char* bad : {"", "-5", "12x", "five"})
    CHECK_THROWS_WITH_AS(
        ex::read_held_out(
            with_meta({{"held_out", bad}, {"held_out_seed", "1"}, {"held_out_of", "50000"}}),
            "m.mixq"),
        doctest::Contains("m.mixq: metadata 'held_out' is '"), mixq::error);
  CHECK_THROWS_WITH_AS(
      ex::read_held_out(
          with_meta({{"held_out", "10"}, {"held_out_seed", "x"}, {"held_out_of", "50000"}}),
          "m.mixq"),
      doctest::Contains("metadata 'held_out_seed' is 'x', expected a non-negative integer"),
      mixq::error);
}
