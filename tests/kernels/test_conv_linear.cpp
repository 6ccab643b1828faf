// Integer final linear layer (qlinear on qgemm) against the scalar twin, for
// every ISA the CPU has and every (b_w, b_a); int32 logits and uint8 outputs.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include <mixq/kernels/conv/qlinear.hpp>

#include "kernels_test_util.hpp"

TEST_CASE("qlinear == reference: every ISA, every (b_w, b_a), logits and codes") {
  using namespace ktest;
  for (mk::isa l : all_isas) {
    if (!isa_or_skip(l, "qlinear vs reference")) continue;
    std::int64_t bad = 0, runs = 0;
    for (int bw = 2; bw <= 8; ++bw)
      for (int ba = 2; ba <= 8; ++ba) {
        rng r(77u * bw + ba);
        // batch 3 (and 251 > one 240-row chunk), K = 64 (ResNet20) and 37, N = 10 classes
        for (auto [batch, k, n] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{3, 64, 10},
                                   {251, 37, 10},
                                   {5, 5, 3}}) {
          const std::int64_t ld_x = k + 3;
          auto x = random_codes(batch * ld_x + std::int64_t(mk::a_overread_bytes), ba, r);
          auto w = random_weights(n * k, bw, r);
          auto pw = mk::pack_weights(w.data(), std::int32_t(n), 1, std::int32_t(k), bw, ba, l);
          if (!kernel_is_dispatch_choice(pw, l)) ++bad;
          const requant_set q = make_requant(n, k, bw, ba, 8, r);
          mk::requant_params rq{q.bias.data(), q.qm.data(), q.rshift.data(), q.zp,
                                q.lo,          q.hi,        q.offset.data()};
          const std::int64_t ld_out = n + 1;
          std::vector<std::int32_t> logits(size_t(batch * ld_out), 0),
              want_l(size_t(batch * ld_out), 0);
          std::vector<std::uint8_t> codes(size_t(batch * ld_out), 0),
              want_c(size_t(batch * ld_out), 0);
          mk::qlinear(x.data(), batch, ld_x, pw, rq, logits.data(), nullptr, ld_out);
          mk::ref::qlinear(x.data(), batch, ld_x, w.data(), n, k, rq, want_l.data(), nullptr,
                           ld_out);
          mk::qlinear(x.data(), batch, ld_x, pw, rq, nullptr, codes.data(), ld_out);
          mk::ref::qlinear(x.data(), batch, ld_x, w.data(), n, k, rq, nullptr, want_c.data(),
                           ld_out);
          if (logits != want_l || codes != want_c) {
            ++bad;
            FAIL_CHECK(std::string(mk::isa_name(l))
                       << " W" << bw << "A" << ba << " batch " << batch << " k " << k);
          }
          ++runs;
        }
      }
    CHECK(bad == 0);
    MESSAGE("qlinear " << std::string(mk::isa_name(l)) << ": " << runs << " cases compared");
  }
  // a logit computed by hand: x = [1, 2, 3], w = [[1, -1, 2]], bias 4 -> 1 - 2 + 6 + 4 = 9
  const std::uint8_t x[3 + 64] = {1, 2, 3};
  const std::int8_t w[3] = {1, -1, 2};
  const std::int32_t bias[1] = {4};
  auto pw = mk::pack_weights(w, 1, 1, 3, 3, 2);
  std::int32_t logit = 0;
  mk::qlinear(x, 1, 3, pw, mk::requant_params{bias}, &logit, nullptr, 1);
  CHECK(logit == 9);
}
