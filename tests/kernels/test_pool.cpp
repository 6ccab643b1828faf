// Integer global average pooling: fast path vs the scalar int64 twin, plus a
// hand-computed mean.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include <mixq/kernels/pool/global_avgpool.hpp>

#include "kernels_test_util.hpp"

namespace mk = mixq::kernels;

TEST_CASE("global_avgpool_u8: hand-computed mean with half-away rounding") {
  // 2x2 map, one channel with codes summing to 10: mean 2.5 -> 3 (ties away).
  const std::uint8_t x[4] = {1, 2, 3, 4};
  mk::avgpool_params p;
  p.batch = 1;
  p.h = 2;
  p.w = 2;
  p.c = 1;
  p.img_stride = 4;
  p.row_stride = 2;
  p.pix_stride = 1;
  // multiplier 1/4 = 2^30 * 2^-32 exactly
  auto m = mk::quantize_multiplier(0.25);
  REQUIRE(m.qm == (1 << 30));
  REQUIRE(m.rshift == 32);
  p.qm = m.qm;
  p.rshift = m.rshift;
  p.ld_out = 1;
  std::uint8_t out = 0;
  std::int32_t sum = 0;
  mk::global_avgpool_u8(x, p, &out, &sum);
  CHECK(sum == 10);
  CHECK(out == 3);
  std::uint8_t out_ref = 0;
  mk::ref::global_avgpool_u8(x, p, &out_ref);
  CHECK(out_ref == 3);
}

TEST_CASE("global_avgpool_u8 == reference: odd shapes, padded strides, > 256 channels") {
  ktest::rng r(42);
  struct shape {
    std::int64_t b, h, w, c;
  };
  for (shape s : {shape{3, 7, 9, 5}, shape{2, 8, 8, 64}, shape{1, 3, 4, 300}, shape{5, 1, 1, 17}}) {
    // interior of a padded [b][h+2][w+2][c] buffer whose halo holds garbage
    std::vector<std::uint8_t> dense = ktest::random_codes(s.b * s.h * s.w * s.c, 8, r);
    std::vector<std::uint8_t> padded = ktest::make_padded(dense, s.b, s.h, s.w, s.c, 0xEE, 0);
    mk::avgpool_params p;
    p.batch = s.b;
    p.h = s.h;
    p.w = s.w;
    p.c = s.c;
    p.pix_stride = s.c;
    p.row_stride = (s.w + 2) * s.c;
    p.img_stride = (s.h + 2) * (s.w + 2) * s.c;
    p.ld_out = s.c + 3;
    auto m = mk::quantize_multiplier(1.7 / double(s.h * s.w));
    p.qm = m.qm;
    p.rshift = m.rshift;
    p.zp = 2;
    p.hi = 200;
    const std::uint8_t* x = padded.data() + p.row_stride + p.pix_stride;
    const size_t n_out = size_t(s.b * p.ld_out);
    std::vector<std::uint8_t> out(n_out, 0), want(n_out, 0);
    std::vector<std::int32_t> sum(n_out, 0), want_sum(n_out, 0);
    mk::global_avgpool_u8(x, p, out.data(), sum.data());
    mk::ref::global_avgpool_u8(x, p, want.data(), want_sum.data());
    CHECK(out == want);
    CHECK(sum == want_sum);
    // the sums are exact: compare one against a direct count on the dense copy
    std::int64_t s0 = 0;
    for (std::int64_t i = 0; i < s.h * s.w; ++i) s0 += dense[size_t(i * s.c)];
    CHECK(sum[0] == s0);
  }
}
