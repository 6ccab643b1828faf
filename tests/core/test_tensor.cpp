#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <vector>

#include "mixq/core/arena.hpp"
#include "mixq/core/init.hpp"
#include "mixq/core/tensor.hpp"

using namespace mixq;

TEST_CASE("shape: numel, strides, equality, printing") {
  shape s{2, 3, 4, 5};
  CHECK(s.rank() == 4);
  CHECK(s.numel() == 120);
  CHECK(s.stride(0) == 60);
  CHECK(s.stride(1) == 20);
  CHECK(s.stride(3) == 1);
  CHECK(s == shape({2, 3, 4, 5}));
  CHECK(s != shape({2, 3, 20}));
  CHECK(s.to_string() == "[2, 3, 4, 5]");
  CHECK(shape{}.numel() == 1);
  CHECK_THROWS_AS(shape({1, 2, 3, 4, 5, 6, 7}), mixq::error);
  CHECK_THROWS_AS(shape({2, -1}), mixq::error);
}

TEST_CASE("tensor: zero-initialised, aligned, deep copy, cheap move") {
  tensor t({3, 5});
  CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
  for (int64_t i = 0; i < t.numel(); ++i) CHECK(t[i] == 0.0f);
  t[7] = 2.5f;
  tensor c = t;
  c[7] = 1.0f;
  CHECK(t[7] == 2.5f);
  const float* p = t.data();
  tensor m = std::move(t);
  CHECK(m.data() == p);
  CHECK(m[7] == 2.5f);
  CHECK(t.numel() == 0);  // moved-from: no storage
  CHECK(t.empty());
  CHECK(t.data() == nullptr);
  tensor d;  // default: empty; copying and filling it are no-ops
  tensor d2 = d;
  d2.fill(1.0f);
  CHECK(d2.numel() == 0);
  tensor scalar(shape{});
  CHECK(scalar.numel() == 1);
  CHECK(scalar[0] == 0.0f);
}

TEST_CASE("views: reshape and slice along dim 0 share memory") {
  tensor t({4, 2, 3});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(i);
  tensor_view r = t.reshape({8, 3});
  CHECK(r.data() == t.data());
  CHECK(r.dim(0) == 8);
  tensor_view s = t.slice(1, 3);
  CHECK(s.shape() == shape({2, 2, 3}));
  CHECK(s[0] == 6.0f);
  s[0] = -1.0f;
  CHECK(t[6] == -1.0f);
  CHECK_THROWS_AS(t.reshape({5, 5}), mixq::error);
  CHECK_THROWS_AS(t.slice(2, 5), mixq::error);
  CHECK_THROWS_AS(t.slice(3, 2), mixq::error);
}

TEST_CASE("rng: seeded, reproducible, state round-trips") {
  rng a(42), b(42), c(43);
  CHECK(a.next_u32() == b.next_u32());
  CHECK(a.next_u32() != c.next_u32());
  rng d(7);
  for (int i = 0; i < 10; ++i) d.next_u32();
  rng::state_type st = d.state();
  uint32_t x1 = d.next_u32();
  float x2 = d.normal();
  rng e(999);
  e.set_state(st);
  CHECK(e.next_u32() == x1);
  CHECK(e.normal() == x2);
  rng::state_type bad{1, 2};
  CHECK_THROWS_AS(e.set_state(bad), mixq::error);
}

TEST_CASE("rng: distributions have the right moments") {
  rng r(1);
  const int n = 200000;
  double su = 0, sn = 0, sn2 = 0;
  float umin = 1, umax = 0;
  for (int i = 0; i < n; ++i) {
    float u = r.uniform();
    su += u;
    umin = std::fmin(umin, u);
    umax = std::fmax(umax, u);
    double z = r.normal();
    sn += z;
    sn2 += z * z;
  }
  CHECK(umin >= 0.0f);
  CHECK(umax < 1.0f);
  CHECK(su / n == doctest::Approx(0.5).epsilon(0.01));
  CHECK(std::fabs(sn / n) < 0.01);
  CHECK(sn2 / n == doctest::Approx(1.0).epsilon(0.02));
  std::vector<int> hist(7, 0);
  for (int i = 0; i < 7000; ++i) {
    const uint32_t v = r.below(7);
    REQUIRE(v < 7u);
    ++hist[v];
  }
  for (int h : hist) CHECK((h > 800 && h < 1200));
  int heads = 0;
  for (int i = 0; i < 10000; ++i) heads += r.coin() ? 1 : 0;
  CHECK((heads > 4800 && heads < 5200));
}

TEST_CASE("derive_seed: a pure function of (seed, a, b) that separates its arguments") {
  CHECK(derive_seed(1, 2, 3) == derive_seed(1, 2, 3));
  CHECK(derive_seed(1, 2, 3) != derive_seed(1, 3, 2));
  CHECK(derive_seed(1, 2, 3) != derive_seed(2, 2, 3));
  CHECK(derive_seed(1, 2) == derive_seed(1, 2, 0));
  // Neighbouring counters give unrelated streams: first draws all distinct.
  std::set<uint32_t> first;
  for (uint64_t i = 0; i < 1000; ++i) first.insert(rng(derive_seed(7, 0, i)).next_u32());
  CHECK(first.size() == 1000u);
}

TEST_CASE("kaiming_normal: variance 2 / fan_in") {
  tensor w({64, 3, 3, 16});
  rng r(3);
  kaiming_normal(w.view(), r, 3 * 3 * 16);
  double s2 = 0;
  for (int64_t i = 0; i < w.numel(); ++i) s2 += static_cast<double>(w[i]) * w[i];
  CHECK(s2 / static_cast<double>(w.numel()) == doctest::Approx(2.0 / 144.0).epsilon(0.05));
}

TEST_CASE("arena: reuses memory after reset, consolidates chunks") {
  arena a;
  float* p1 = a.alloc(100);
  a.alloc(1 << 20);  // forces a second chunk
  a.reset();
  int64_t cap = a.capacity_bytes();
  float* q1 = a.alloc(100);
  a.alloc(1 << 20);
  CHECK(a.capacity_bytes() == cap);  // one chunk now holds the whole pass
  CHECK(reinterpret_cast<uintptr_t>(q1) % 64 == 0);
  (void)p1;
}
