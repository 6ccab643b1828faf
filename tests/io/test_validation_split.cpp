// io::split_validation: held-out images from a training split.
#include <doctest/doctest.h>

#include <set>

#include "mixq/io/dataset.hpp"

using namespace mixq;

namespace {
io::image_dataset toy(std::int64_t n, int classes) {
  io::image_dataset ds;
  ds.name = "toy";
  ds.n = n, ds.h = 2, ds.w = 1, ds.c = 1;
  ds.num_classes = classes;
  ds.mean = {0.5f}, ds.stddev = {0.25f};
  for (std::int64_t i = 0; i < n; ++i) {
    ds.labels.push_back(static_cast<std::int32_t>(i % classes));
    ds.images.push_back(static_cast<std::uint8_t>(i & 255));
    ds.images.push_back(static_cast<std::uint8_t>(i >> 8));
  }
  return ds;
}
std::int64_t id_of(const io::image_dataset& d, std::int64_t i) {
  return d.image(i)[0] | (static_cast<std::int64_t>(d.image(i)[1]) << 8);
}
}  // namespace

TEST_CASE("split_validation: disjoint, complete, class-balanced, seeded") {
  const io::image_dataset ds = toy(1000, 10);
  const auto a = io::split_validation(ds, 105, 7);
  CHECK(a.validation.n == 105);
  CHECK(a.train.n == 895);
  a.train.validate();
  a.validation.validate();
  std::set<std::int64_t> seen;
  std::vector<int> per_class(10, 0);
  for (std::int64_t i = 0; i < a.validation.n; ++i) {
    seen.insert(id_of(a.validation, i));
    const auto lab = a.validation.labels[static_cast<std::size_t>(i)];
    CHECK(lab == id_of(a.validation, i) % 10);  // image and label stay together
    ++per_class[static_cast<std::size_t>(lab)];
  }
  for (std::int64_t i = 0; i < a.train.n; ++i) seen.insert(id_of(a.train, i));
  CHECK(seen.size() == 1000);  // every image exactly once
  for (int c = 0; c < 10; ++c) CHECK(per_class[static_cast<std::size_t>(c)] == (c < 5 ? 11 : 10));
  CHECK(a.train.mean == ds.mean);
  // Same seed, same split; another seed, another split.
  const auto b = io::split_validation(ds, 105, 7), c = io::split_validation(ds, 105, 8);
  CHECK(b.validation.images == a.validation.images);
  CHECK(c.validation.images != a.validation.images);
}

TEST_CASE("split_validation: refuses sizes it cannot honour") {
  const io::image_dataset ds = toy(100, 10);
  CHECK_THROWS_AS(io::split_validation(ds, 0), mixq::error);
  CHECK_THROWS_AS(io::split_validation(ds, 100), mixq::error);
  io::image_dataset skew = toy(100, 10);
  for (auto& l : skew.labels) l = l == 9 ? 0 : l;  // class 9 empty
  CHECK_THROWS_AS(io::split_validation(skew, 50), mixq::error);
}
