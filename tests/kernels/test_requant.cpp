// Requantization rule: rhaz, quantize_multiplier, requant_one, epilogue.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels_test_util.hpp"

namespace mk = mixq::kernels;

TEST_CASE("rhaz: ties go away from zero, matches exact division") {
  // hand-checked values: 5/2 = 2.5 -> 3, -5/2 -> -3, 3/2 -> 2, -3/2 -> -2, 7/4 -> 2, -6/4 = -1.5 ->
  // -2
  CHECK(mk::rhaz(5, 1) == 3);
  CHECK(mk::rhaz(-5, 1) == -3);
  CHECK(mk::rhaz(3, 1) == 2);
  CHECK(mk::rhaz(-3, 1) == -2);
  CHECK(mk::rhaz(7, 2) == 2);
  CHECK(mk::rhaz(-6, 2) == -2);
  CHECK(mk::rhaz(-5, 2) == -1);
  CHECK(mk::rhaz(4, 3) == 1);    // 0.5 -> 1
  CHECK(mk::rhaz(-4, 3) == -1);  // -0.5 -> -1
  CHECK(mk::rhaz(3, 3) == 0);
  CHECK(mk::rhaz(-3, 3) == 0);
  ktest::rng r(7);
  for (int it = 0; it < 200000; ++it) {
    const int s = r.uniform(1, 62);
    const int st = s < 50 ? s : 50;  // tie construction below must not overflow
    std::int64_t t;
    switch (it % 4) {
      case 0:
        t = static_cast<std::int64_t>(r.next() >> 2) * (r.next() & 1 ? 1 : -1);
        break;
      case 1:
        t = r.uniform(-1000, 1000) * (std::int64_t(1) << st) + (std::int64_t(1) << (st - 1));
        break;  // +tie
      case 2:
        t = r.uniform(-1000, 1000) * (std::int64_t(1) << st) - (std::int64_t(1) << (st - 1));
        break;  // -tie
      default:
        t = r.uniform(-100000, 100000);
        break;
    }
    // limit to the documented range |t| < 2^62 + 2^39
    if (t > (std::int64_t(1) << 62)) t >>= 2;
    if (t < -(std::int64_t(1) << 62)) t /= 4;
    const int sh = (it % 4 == 1 || it % 4 == 2) ? st : s;
    REQUIRE(mk::rhaz(t, sh) == ktest::oracle_round_shift(t, sh));
  }
  // extremes of the documented range
  const std::int64_t big = (std::int64_t(1) << 62) - 1 + (std::int64_t(1) << 39);
  for (int s = 1; s <= 62; ++s) {
    CHECK(mk::rhaz(big, s) == ktest::oracle_round_shift(big, s));
    CHECK(mk::rhaz(-big, s) == ktest::oracle_round_shift(-big, s));
  }
}

TEST_CASE("quantize_multiplier: range and accuracy") {
  ktest::rng r(11);
  for (int it = 0; it < 20000; ++it) {
    const double e = r.uniform(-31, 29) + r.uniform(0, 999) / 1000.0;
    const double m = std::ldexp(1.0, 0) * std::pow(2.0, e);
    const mk::quant_multiplier q = mk::quantize_multiplier(m);
    if (m < std::ldexp(1.0, -32)) continue;
    REQUIRE(q.qm >= (1 << 30));
    REQUIRE(q.rshift >= 1);
    REQUIRE(q.rshift <= 62);
    const double back = std::ldexp(double(q.qm), -q.rshift);
    CHECK(std::fabs(back - m) <= m * std::ldexp(1.0, -30));
  }
  CHECK(mk::quantize_multiplier(0.0).qm == 0);
  CHECK(mk::quantize_multiplier(-1.0).qm == 0);
  CHECK(mk::quantize_multiplier(std::nan("")).qm == 0);
  CHECK(mk::quantize_multiplier(std::ldexp(1.0, -40)).qm == 0);
  const mk::quant_multiplier half = mk::quantize_multiplier(0.5);
  CHECK(half.qm == (1 << 30));
  CHECK(half.rshift == 31);
  // a value that rounds up to 2^31 must renormalize
  const mk::quant_multiplier nearly_one = mk::quantize_multiplier(1.0 - 1e-12);
  CHECK(nearly_one.qm == (1 << 30));
  CHECK(nearly_one.rshift == 30);
}

TEST_CASE("requant_one: clamp, zero point, residual, extreme accumulators") {
  // 100 * 0.5 = 50 ; +zp 3 -> 53
  CHECK(mk::requant_one(100, 1 << 30, 31, 3, 0, 255, 0, 0, 0) == 53);
  // 101 * 0.5 = 50.5 -> 51 (tie away from zero)
  CHECK(mk::requant_one(101, 1 << 30, 31, 0, 0, 255, 0, 0, 0) == 51);
  // negative goes to lo
  CHECK(mk::requant_one(-101, 1 << 30, 31, 0, 0, 255, 0, 0, 0) == 0);
  CHECK(mk::requant_one(-101, 1 << 30, 31, 100, 0, 255, 0, 0, 0) == 49);  // -50.5 -> -51, +100
  // clamp to 4-bit
  CHECK(mk::requant_one(1000, 1 << 30, 31, 0, 0, 15, 0, 0, 0) == 15);
  // residual 7 * 2^30 / 2^31 = 3.5 plus 10 * 0.5 = 5 -> 8.5 -> 9 (single rounding)
  CHECK(mk::requant_one(10, 1 << 30, 31, 0, 0, 255, 7, 1 << 30, 0) == 9);
  // extreme accumulators, largest qm, smallest shift that keeps the range
  const std::int32_t qmax = std::numeric_limits<std::int32_t>::max();
  CHECK(mk::requant_one(std::numeric_limits<std::int32_t>::min(), qmax, 62, 0, 0, 255, 255, qmax,
                        0) == 0);
  CHECK(mk::requant_one(std::numeric_limits<std::int32_t>::max(), qmax, 1, 0, 0, 255, 255, qmax,
                        0) == 255);
  CHECK(mk::requant_one(std::numeric_limits<std::int32_t>::max(), qmax, 62, 5, 0, 255, 0, 0, 0) ==
        5 + 1);  // (2^31-1)^2 / 2^62 = 0.99.. -> 1
  const std::int64_t t = std::int64_t(std::numeric_limits<std::int32_t>::max()) * qmax;
  CHECK(int(mk::requant_one(std::numeric_limits<std::int32_t>::max(), qmax, 62, 5, 0, 255, 0, 0,
                            0)) == 5 + ktest::oracle_round_shift(t, 62));
}

TEST_CASE("requant_one: the rounding offset joins the single rounding") {
  // 10 * 0.5 = 5, offset 2^30 / 2^31 = 0.5 -> 5.5 -> 6; -2^30 -> 4.5 -> 5 (ties away from zero)
  CHECK(mk::requant_one(10, 1 << 30, 31, 0, 0, 255, 0, 0, 1 << 30) == 6);
  CHECK(mk::requant_one(10, 1 << 30, 31, 0, 0, 255, 0, 0, -(1 << 30)) == 5);
  // negative side: -10 * 0.5 - 0.5 = -5.5 -> -6, +100
  CHECK(mk::requant_one(-10, 1 << 30, 31, 100, 0, 255, 0, 0, -(1 << 30)) == 94);
  // a fraction below half a step moves a value across the boundary only near it:
  // 3 * 2^30 / 2^32 = 0.75, + 2^29 / 2^32 = 0.875 -> 1; 2 * 2^30 / 2^32 = 0.5 -> 1, - 1/8 -> 0
  CHECK(mk::requant_one(3, 1 << 30, 32, 0, 0, 255, 0, 0, 1 << 29) == 1);
  CHECK(mk::requant_one(2, 1 << 30, 32, 0, 0, 255, 0, 0, -(1 << 29)) == 0);
  // with a residual: 10 * 0.5 + 7 * 0.5 + 0.5 = 9 exactly
  CHECK(mk::requant_one(10, 1 << 30, 31, 0, 0, 255, 7, 1 << 30, 1 << 30) == 9);
  // extremes of every term together stay exact (the documented bound)
  const std::int32_t qmax = std::numeric_limits<std::int32_t>::max();
  ktest::rng r(21);
  for (int it = 0; it < 20000; ++it) {
    const std::int32_t v = it % 4 == 0 ? std::numeric_limits<std::int32_t>::min()
                                       : (it % 4 == 1 ? qmax : r.uniform(-1000000, 1000000));
    const std::int32_t qm = it % 3 == 0 ? qmax : r.uniform(0, qmax);
    const int s = r.uniform(1, 62);
    const std::int32_t rq = r.uniform(-qmax, qmax);
    const std::int32_t res = r.uniform(0, 255);
    const std::int32_t off = r.uniform(-mk::max_requant_offset, mk::max_requant_offset);
    const std::int64_t t = std::int64_t(v) * qm + std::int64_t(res) * rq + off;
    std::int64_t y = 7 + ktest::oracle_round_shift(t, s);
    y = y < 0 ? 0 : (y > 255 ? 255 : y);
    REQUIRE(int(mk::requant_one(v, qm, s, 7, 0, 255, res, rq, off)) == y);
  }
}

TEST_CASE("multiplier_at_shift: residual multipliers on the channel's shift") {
  CHECK(mk::multiplier_at_shift(0.5, 31) == (1 << 30));
  CHECK(mk::multiplier_at_shift(-0.25, 32) == -(1 << 30));
  CHECK(mk::multiplier_at_shift(1.0, 40) == 2147483647);  // saturates
  CHECK(mk::multiplier_at_shift(-1.0, 40) == -2147483647 - 1);
  CHECK(mk::multiplier_at_shift(std::nan(""), 31) == 0);
  CHECK(mk::multiplier_at_shift(0.3, 0) == 0);  // shift out of range
  ktest::rng r(12);
  for (int it = 0; it < 1000; ++it) {
    const int s = r.uniform(20, 40);
    const double m = (r.uniform(-100000, 100000) / 100000.0) * std::ldexp(1.0, 30 - s);
    const std::int32_t q = mk::multiplier_at_shift(m, s);
    CHECK(std::fabs(std::ldexp(double(q), -s) - m) <= std::ldexp(1.0, -s - 1));
  }
}
