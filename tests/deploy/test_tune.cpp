// Plan by measurement (deploy/tune.hpp) and runtime_options::bitplane: turning
// the bit-plane path off moves every conv to qconv2d without changing one
// logit; tune() times the two plans only when there are two, and whichever it
// keeps computes the same logits.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <mixq/deploy/runtime.hpp>
#include <mixq/deploy/switchable.hpp>
#include <mixq/deploy/tune.hpp>

#include "deploy_test_util.hpp"

using namespace dtest;
namespace mk = mixq::kernels;

namespace {

md::model a2_model(std::uint64_t seed, int bits) {
  rng r(seed);
  random_options o;
  o.h = o.w = 16;
  o.min_bits = o.max_bits = bits;
  o.width = 16;
  return random_model(r, o);
}

int count(const md::runtime& rt, const std::string& path) {
  int k = 0;
  for (const auto& p : rt.conv_paths()) k += p == path;
  return k;
}

std::vector<std::int32_t> logits(md::runtime& rt, const std::vector<std::uint8_t>& images,
                                 std::int64_t n) {
  rt.run(images.data(), n);
  return std::vector<std::int32_t>(rt.logits(), rt.logits() + n * rt.classes());
}

/// An A2 model, 4 images and options planned for them.
struct a2_case {
  md::model m;
  std::vector<std::uint8_t> images;
  md::runtime_options o;
  static constexpr std::int64_t n = 4;
  explicit a2_case(std::uint64_t seed) : m(a2_model(seed, 2)) {
    rng r(seed + 1);
    images = random_images(m, n, r);
    o.max_batch = n;
  }
};

}  // namespace

TEST_CASE("runtime_options::bitplane = false: no bit-plane layer, the same logits") {
  a2_case c(5);
  const std::int64_t n = c.n;
  md::runtime_options o = c.o;
  md::runtime with(c.m, o);
  o.bitplane = false;
  md::runtime without(c.m, o);
  CHECK(count(without, "bitplane") == 0);
  CHECK(count(without, "u8") == count(with, "u8") + count(with, "bitplane"));
  CHECK(logits(with, c.images, n) == logits(without, c.images, n));
  if (mk::detect_cpu().avx512lut)
    CHECK(count(with, "bitplane") > 0);
  else
    MESSAGE("SKIPPED the bit-plane count check: no AVX-512 VBMI/BITALG on this CPU");
}

TEST_CASE("tune: a model with two plans is timed, and the kept plan computes the same logits") {
  const a2_case c(7);
  const md::model& m = c.m;
  const auto& images = c.images;
  const std::int64_t n = c.n;
  const md::runtime_options& o = c.o;
  md::runtime plain(m, o);
  const auto want = logits(plain, images, n);
  md::tune_settings s;
  s.seconds = 0.02;
  md::tune_report rep;
  const md::runtime_options t = md::tune(m, o, s, &rep);
  md::runtime tuned(m, t);
  CHECK(logits(tuned, images, n) == want);
  CHECK(t.max_batch == o.max_batch);
  CHECK(t.threads == o.threads);
  INFO(rep.describe());
  if (count(plain, "bitplane") > 0) {
    CHECK(rep.timed);
    CHECK(rep.images_per_s_bitplane > 0);
    CHECK(rep.images_per_s_u8 > 0);
    CHECK(t.bitplane == rep.bitplane);
    CHECK(rep.bitplane == (rep.images_per_s_bitplane > rep.images_per_s_u8));
    CHECK(rep.bitplane_layers == count(plain, "bitplane"));
    CHECK(count(tuned, "bitplane") == (rep.bitplane ? rep.bitplane_layers : 0));
    CHECK(rep.describe().find(rep.bitplane ? "kept the bit-plane" : "kept the qconv2d") !=
          std::string::npos);
  } else {
    CHECK_FALSE(rep.timed);
    MESSAGE("SKIPPED the timed tune check: no bit-plane layer on this CPU");
  }
  // min_gain: a plan must win by a margin no timing reaches, so the qconv2d plan is kept
  s.min_gain = 1e9;
  const md::runtime_options u = md::tune(m, o, s, &rep);
  md::runtime kept(m, u);
  CHECK(count(kept, "bitplane") == 0);
  CHECK(logits(kept, images, n) == want);
}

TEST_CASE("tune: one plan is not timed, and bad settings are refused") {
  const md::model m = a2_model(9, 8);  // 8-bit activations: qconv2d only
  md::runtime_options o;
  o.max_batch = 2;
  md::tune_report rep;
  rep.timed = true;
  const md::runtime_options t = md::tune(m, o, {}, &rep);
  CHECK_FALSE(rep.timed);
  CHECK(t.bitplane);
  CHECK(rep.describe().find("not timed") != std::string::npos);
  md::tune_settings bad;
  bad.rounds = 0;
  CHECK_THROWS_WITH_AS(md::tune(m, o, bad), doctest::Contains("rounds >= 1"), mixq::error);
}

TEST_CASE("a tuned switchable runtime: one report per configuration, each configuration exact") {
  const md::model a = a2_model(11, 2);
  const md::model b = a2_model(11, 4);  // the same network at 4 bits: one plan
  rng r(12);
  const std::int64_t n = 4;
  const auto images = random_images(a, n, r);
  md::runtime_options o;
  o.max_batch = n;
  md::tune_settings s;
  s.seconds = 0.02;
  md::switchable_runtime sw({{"a2", a}, {"a4", b}}, o, &s);
  REQUIRE(sw.tune_reports().size() == 2);
  CHECK_FALSE(sw.tune_reports()[1].timed);
  const md::model* ms[] = {&a, &b};
  for (std::size_t i = 0; i < 2; ++i) {
    sw.select(i);
    sw.run(images.data(), n);
    md::runtime alone(*ms[i], o);
    CHECK(std::vector<std::int32_t>(sw.logits(), sw.logits() + n * sw.classes()) ==
          logits(alone, images, n));
  }
  md::switchable_runtime plain({{"a2", a}, {"a4", b}}, o);
  CHECK(plain.tune_reports().empty());
}
