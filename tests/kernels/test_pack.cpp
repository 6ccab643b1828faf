// Weight packing: sub-byte serialization round trip, range checks, layouts.
#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include <mixq/kernels/bitpack.hpp>

#include "kernels_test_util.hpp"

namespace mk = mixq::kernels;

TEST_CASE("bitpack: round trip for every bit-width, including the minimum code") {
  ktest::rng r(3);
  for (int bits = 2; bits <= 8; ++bits) {
    CAPTURE(bits);
    const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    for (std::size_t count : {1u, 2u, 3u, 7u, 8u, 9u, 63u, 64u, 65u, 1000u}) {
      std::vector<std::int8_t> codes(count);
      for (std::size_t i = 0; i < count; ++i)
        codes[i] =
            static_cast<std::int8_t>(i % 3 == 0 ? lo : (i % 3 == 1 ? hi : r.uniform(lo, hi)));
      std::vector<std::uint8_t> packed(mk::bitpacked_size(count, bits) + 1, 0xEE);
      mk::bitpack_codes(codes.data(), count, bits, packed.data());
      CHECK(packed.back() == 0xEE);  // writes exactly bitpacked_size bytes
      CHECK(mk::bitpacked_size(count, bits) == (count * bits + 7) / 8);
      std::vector<std::int8_t> back(count, 99);
      mk::bitunpack_codes(packed.data(), count, bits, back.data());
      CHECK(back == codes);
    }
  }
  // layout: 2-bit codes {1, -1, -2, 0} -> fields 01 11 10 00 -> byte 0b00101101
  const std::int8_t c2[4] = {1, -1, -2, 0};
  std::uint8_t b[2] = {0, 0x77};
  mk::bitpack_codes(c2, 4, 2, b);
  CHECK(b[0] == 0x2D);
  CHECK(b[1] == 0x77);
}

TEST_CASE("pack_weights: rejects bad codes and bad arguments") {
  std::vector<std::int8_t> w(16 * 4, 0);
  w[5] = 8;  // out of 4-bit range [-8, 7]
  CHECK_THROWS_AS(mk::pack_weights_for(mk::kernel_id::scalar_1x1c1, w.data(), 16, 1, 4, 4, 4),
                  mixq::error);
  w[5] = -8;  // the minimum code is legal
  CHECK_NOTHROW(mk::pack_weights_for(mk::kernel_id::scalar_1x1c1, w.data(), 16, 1, 4, 4, 4));
  CHECK_THROWS_AS(mk::pack_weights_for(mk::kernel_id::scalar_1x1c1, w.data(), 16, 1, 4, 1, 4),
                  mixq::error);
  CHECK_THROWS_AS(mk::pack_weights_for(mk::kernel_id::scalar_1x1c1, w.data(), 16, 1, 4, 4, 9),
                  mixq::error);
  CHECK_THROWS_AS(mk::pack_weights_for(mk::kernel_id::scalar_1x1c1, w.data(), 0, 1, 4, 4, 4),
                  mixq::error);
  std::vector<std::int8_t> big(2 * 65537, 0);
  CHECK_THROWS_AS(mk::pack_weights_for(mk::kernel_id::scalar_1x1c1, big.data(), 1, 1, 65537, 8, 8),
                  mixq::error);
}

TEST_CASE("pack_weights: c4 layout, zero padding, column sums, names") {
  std::size_t cnt = 0;
  const mk::kernel_info* t = mk::kernel_table(&cnt);
  ktest::rng r(5);
  const std::int32_t n = 19, taps = 2, k_seg = 6;
  std::vector<std::int8_t> w(std::size_t(n) * taps * k_seg);
  for (auto& v : w) v = static_cast<std::int8_t>(r.uniform(-8, 7));
  for (std::size_t i = 0; i < cnt; ++i) {
    if (!mk::kernel_supports(t[i].id, 4, 4)) continue;
    CAPTURE(t[i].name);
    const mk::packed_weights pw = mk::pack_weights_for(t[i].id, w.data(), n, taps, k_seg, 4, 4);
    CHECK(pw.nr == t[i].nr);
    CHECK(pw.mr == t[i].mr);
    CHECK(pw.kg == 2);
    for (std::int32_t j = 0; j < n; ++j) {
      int s = 0;
      for (int q = 0; q < taps * k_seg; ++q) s += w[std::size_t(j) * taps * k_seg + q];
      CHECK(pw.col_sum[std::size_t(j)] == s);
    }
    const std::string name = pw.name.data();
    CHECK(name.rfind("qgemm_a4w4_", 0) == 0);
    CHECK(name.find(std::string("__") + t[i].arch) != std::string::npos);
    if (t[i].id == mk::kernel_id::scalar_1x1c1) {
      CHECK(std::memcmp(pw.data.data(), w.data(), w.size()) == 0);
      continue;
    }
    const std::int32_t nr = pw.nr, nb = (n + nr - 1) / nr;
    const bool i16 = name.find("avx2_i16") != std::string::npos;
    const std::size_t elems = std::size_t(nb) * nr * taps * 2 * 4;
    CHECK(pw.data.size() == elems * (i16 ? 2 : 1));
    // element (col, tap, c) must sit where the layout comment says
    for (std::int32_t col = 0; col < nb * nr; ++col)
      for (std::int32_t tp = 0; tp < taps; ++tp)
        for (std::int32_t c = 0; c < 8; ++c) {
          const int want =
              (col < n && c < k_seg) ? w[(std::size_t(col) * taps + tp) * k_seg + c] : 0;
          const std::int32_t b = col / nr, j = col % nr, g = c / 4, q = c % 4;
          int got;
          if (i16) {
            const std::size_t idx =
                ((((std::size_t(b) * taps + tp) * 2 + g) * 2 + q % 2) * nr + j) * 2 + q / 2;
            got = reinterpret_cast<const std::int16_t*>(pw.data.data())[idx];
          } else {
            const std::size_t idx = (((std::size_t(b) * taps + tp) * 2 + g) * nr + j) * 4 + q;
            got = reinterpret_cast<const std::int8_t*>(pw.data.data())[idx];
          }
          REQUIRE(got == want);
        }
  }
}
