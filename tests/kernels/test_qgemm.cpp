// Every qgemm kernel of kernels.inc against an independent int64 oracle,
// bit-exactly (raw int32 accumulators and requantized codes), for every
// (b_w, b_a) pair the kernel claims, over shape sweeps around the tile sizes,
// implicit-GEMM conv addressing and worst-case overflow inputs. Kernels the
// CPU cannot run are reported with a visible MESSAGE.
#include <doctest/doctest.h>

#include <vector>

#include "kernels_test_util.hpp"

namespace mk = mixq::kernels;
using ktest::data_mode;

namespace {
const int kSizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 31, 33, 63, 65};
constexpr int kNumSizes = sizeof(kSizes) / sizeof(kSizes[0]);
}  // namespace

TEST_CASE("qgemm: every kernel x every bit pair x random shapes") {
  ktest::rng r(2024);
  for (const mk::kernel_info& ki : ktest::runnable_kernels()) {
    int pairs = 0;
    for (int bw = 2; bw <= 8; ++bw)
      for (int ba = 2; ba <= 8; ++ba) {
        if (!mk::kernel_supports(ki.id, bw, ba)) continue;
        ++pairs;
        CAPTURE(ki.name);
        CAPTURE(bw);
        CAPTURE(ba);
        for (int it = 0; it < 6; ++it) {
          const int m = kSizes[r.uniform(0, kNumSizes - 1)];
          const int n = kSizes[r.uniform(0, kNumSizes - 1)];
          const int k = kSizes[r.uniform(0, kNumSizes - 1)];
          ktest::problem_data d =
              ktest::make_gemm(m, n, k, bw, ba, k + r.uniform(0, 5), data_mode::random, r);
          ktest::fill_epilogue(d, r, it % 2 == 0, it % 3 == 0);
          ktest::layout_outputs(d, n + r.uniform(0, 9), r);
          REQUIRE(ktest::check_kernel(ki.id, d, ktest::oracle_acc(d)) == 0);
        }
      }
    MESSAGE(std::string(ki.name) << ": " << pairs << " bit pairs checked");
    CHECK(pairs > 0);
  }
}

TEST_CASE("qgemm: dense M/N/K sweep around tile sizes (W8A8, W4A4, W2A3)") {
  ktest::rng r(99);
  const int pairs[3][2] = {{8, 8}, {4, 4}, {2, 3}};
  for (const mk::kernel_info& ki : ktest::runnable_kernels()) {
    for (const auto& pr : pairs) {
      const int bw = pr[0], ba = pr[1];
      if (!mk::kernel_supports(ki.id, bw, ba)) continue;
      CAPTURE(ki.name);
      CAPTURE(bw);
      CAPTURE(ba);
      for (int i = 0; i < kNumSizes; ++i) {
        // M sweep, N sweep, K sweep with the other two at awkward sizes
        const int s = kSizes[i];
        const int shapes[3][3] = {{s, 33, 17}, {13, s, 9}, {7, 31, s}};
        for (const auto& sh : shapes) {
          ktest::problem_data d =
              ktest::make_gemm(sh[0], sh[1], sh[2], bw, ba, sh[2], data_mode::random, r);
          ktest::fill_epilogue(d, r, true, i % 2 == 0);
          ktest::layout_outputs(d, sh[1], r);
          REQUIRE(ktest::check_kernel(ki.id, d, ktest::oracle_acc(d)) == 0);
        }
      }
    }
  }
}

TEST_CASE("qgemm: implicit-GEMM conv addressing (ResNet20-like shapes)") {
  ktest::rng r(7);
  struct conv_shape {
    int h, w, c, n, k, s;
  };
  // ResNet20 stages at reduced spatial size, plus the RGB first layer and a 1x1 shortcut
  const conv_shape shapes[] = {{6, 7, 16, 16, 3, 1}, {5, 5, 32, 32, 3, 1}, {4, 4, 64, 64, 3, 1},
                               {7, 6, 16, 32, 3, 2}, {6, 5, 3, 16, 3, 1},  {5, 4, 16, 32, 1, 2},
                               {3, 9, 5, 17, 3, 1}};
  const int pairs[4][2] = {{8, 8}, {4, 4}, {2, 2}, {3, 7}};
  for (const mk::kernel_info& ki : ktest::runnable_kernels()) {
    for (const auto& pr : pairs) {
      if (!mk::kernel_supports(ki.id, pr[0], pr[1])) continue;
      for (const conv_shape& cs : shapes) {
        CAPTURE(ki.name);
        CAPTURE(cs.c);
        CAPTURE(cs.n);
        CAPTURE(cs.s);
        ktest::problem_data d = ktest::make_conv(cs.h, cs.w, cs.c, cs.n, cs.k, cs.k, cs.s, pr[0],
                                                 pr[1], data_mode::random, r);
        ktest::fill_epilogue(d, r, true, cs.n == cs.c);
        ktest::layout_outputs(d, cs.n, r);
        REQUIRE(ktest::check_kernel(ki.id, d, ktest::oracle_acc(d)) == 0);
      }
    }
  }
}

TEST_CASE("qgemm: full-size ResNet20 stage-1 conv through the OpenMP driver") {
  ktest::rng r(8);
  for (const mk::kernel_info& ki : ktest::runnable_kernels()) {
    if (ki.id == mk::kernel_id::scalar_1x1c1) continue;  // the oracle is the same computation
    for (int bits : {8, 4, 2}) {
      if (!mk::kernel_supports(ki.id, bits, bits)) continue;
      CAPTURE(ki.name);
      ktest::problem_data d =
          ktest::make_conv(32, 32, 16, 16, 3, 3, 1, bits, bits, data_mode::random, r);
      ktest::fill_epilogue(d, r, true, true);
      ktest::layout_outputs(d, 16, r);
      REQUIRE(ktest::check_kernel(ki.id, d, ktest::oracle_acc(d), /*parallel=*/true) == 0);
    }
  }
}

TEST_CASE("qgemm: qgemm_parallel inside an enclosing parallel region") {
  ktest::rng r(9);
  const mk::kernel_id id = mk::choose_kernel(mk::active_isa(), 4, 4, 32);
  ktest::problem_data d = ktest::make_conv(9, 8, 32, 32, 3, 3, 1, 4, 4, data_mode::random, r);
  ktest::fill_epilogue(d, r, true, true);
  ktest::layout_outputs(d, 32, r);
  const std::vector<std::int64_t> want = ktest::oracle_acc(d);
  int bad = 0;
#ifdef _OPENMP
#pragma omp parallel num_threads(2) reduction(+ : bad)
#endif
  {
    // each thread runs the whole problem; the nested call must run serially and correctly
    bad += ktest::check_kernel(id, d, want, /*parallel=*/true);
  }
  CHECK(bad == 0);
}

TEST_CASE(
    "qgemm: requant ties (both signs), extreme shifts, residual ties in every SIMD epilogue") {
  ktest::rng r(10);
  for (const mk::kernel_info& ki : ktest::runnable_kernels()) {
    int bits = 2;
    while (!mk::kernel_supports(ki.id, bits, bits)) ++bits;
    CAPTURE(ki.name);
    // |acc| <= 8 * 3 * 2 = 48 for W2A2: no clamping around zp = 128
    ktest::problem_data d = ktest::make_gemm(21, 37, 8, bits, bits, 8, data_mode::random, r);
    ktest::fill_epilogue(d, r, true, true);
    ktest::layout_outputs(d, 40, r);
    for (std::int32_t j = 0; j < d.n; ++j) {
      d.bias[j] = r.uniform(-20, 20);
      switch (j % 4) {
        case 0:
          d.qm[j] = 1 << 30;
          d.rshift[j] = 31;
          d.res_qm[j] = 1 << 30;
          break;  // x.5 ties everywhere
        case 1:
          d.qm[j] = 1 << 30;
          d.rshift[j] = 32;
          d.res_qm[j] = -(1 << 30);
          break;  // quarter steps, negative res
        case 2:
          d.qm[j] = 2147483647;
          d.rshift[j] = 62;
          d.res_qm[j] = 2147483647;
          break;  // largest shift
        default:
          d.qm[j] = 1 << 30;
          d.rshift[j] = 1;
          d.res_qm[j] = 0;
          break;  // tiny shift: saturates
      }
    }
    d.zp_out = 128;
    d.lo = 0;
    d.hi = 255;
    REQUIRE(ktest::check_kernel(ki.id, d, ktest::oracle_acc(d)) == 0);
  }
}

TEST_CASE("qgemm: requant ties with every rshift >= 32 (int32 epilogue paths), ReLU and zp > lo") {
  // Whole 16-channel blocks whose shifts are all >= 32 take the AVX-512
  // epilogue's int32 path; with lo >= zp it also drops the sign term. Ties of
  // both signs (acc = 2 mod 4 at rshift 32, 4 mod 8 at rshift 33), residual
  // ties, and a zero point above lo (the sign term matters) and at lo (ReLU).
  ktest::rng r(13);
  for (const mk::kernel_info& ki : ktest::runnable_kernels()) {
    int bits = 2;
    while (!mk::kernel_supports(ki.id, bits, bits)) ++bits;
    CAPTURE(ki.name);
    for (int zp : {128, 0, 3}) {
      CAPTURE(zp);
      ktest::problem_data d = ktest::make_gemm(19, 48, 8, bits, bits, 8, data_mode::random, r);
      ktest::fill_epilogue(d, r, true, true);
      ktest::layout_outputs(d, 50, r);
      for (std::int32_t j = 0; j < d.n; ++j) {
        d.bias[j] = r.uniform(-20, 20);
        const int block = j / 16;
        d.qm[j] = 1 << 30;
        d.rshift[j] = block == 0 ? 32 : (block == 1 ? 33 : 32 + r.uniform(0, 30));
        d.res_qm[j] = (j % 2 ? 1 : -1) * (1 << 30);
        // offsets of a whole or half bias unit (ties at other accumulators), or none
        d.offset[j] = j % 3 == 0 ? 0 : (j % 3 == 1 ? 1 : -1) * (1 << (30 - r.uniform(0, 1)));
      }
      d.zp_out = zp;
      d.lo = zp == 3 ? 5 : 0;  // zp = 3: lo above zp as well
      d.hi = 255;
      REQUIRE(ktest::check_kernel(ki.id, d, ktest::oracle_acc(d)) == 0);
      d.use_res = false;
      REQUIRE(ktest::check_kernel(ki.id, d, ktest::oracle_acc(d)) == 0);
    }
  }
}

TEST_CASE("qgemm: rounding offsets with exact ties of both signs, every kernel") {
  // Each kernel's epilogue against the oracle on data where the offsets decide
  // codes: ties built by the offsets alone (make_offset_ties), offsets at
  // +-2^30 and random ones, with and without a residual, channel tails. The
  // same data without the offsets gives other codes, so a path that ignored
  // them would fail.
  ktest::rng r(31);
  for (const mk::kernel_info& ki : ktest::runnable_kernels()) {
    CAPTURE(ki.name);
    int bits = 2;
    while (!mk::kernel_supports(ki.id, bits, bits)) ++bits;
    for (int it = 0; it < 6; ++it) {
      const int m = kSizes[r.uniform(0, kNumSizes - 1)];
      const int n = 33 + r.uniform(0, 31);  // full SIMD blocks and a tail
      const int k = kSizes[r.uniform(0, kNumSizes - 1)];
      ktest::problem_data d =
          ktest::make_gemm(m, n, k, bits, bits, k + r.uniform(0, 3), data_mode::random, r);
      ktest::fill_epilogue(d, r, true, it % 2 == 0);
      ktest::layout_outputs(d, n + r.uniform(0, 5), r);
      d.zp_out = 8;  // negative ties are not all clamped away
      d.lo = it % 3 == 0 ? 8 : 0;
      d.hi = 255;
      const std::vector<std::int64_t> want = ktest::oracle_acc(d);
      ktest::make_offset_ties(d, want, r);
      REQUIRE(ktest::offset_sensitive_outputs(d, want) > 0);
      REQUIRE(ktest::check_kernel(ki.id, d, want) == 0);
    }
  }
}

TEST_CASE("qgemm: worst-case codes at large K prove the overflow bounds") {
  ktest::rng r(5);
  for (const mk::kernel_info& ki : ktest::runnable_kernels()) {
    for (int bw = 2; bw <= 8; ++bw)
      for (int ba = 2; ba <= 8; ++ba) {
        if (!mk::kernel_supports(ki.id, bw, ba)) continue;
        const int taps = 9;
        // W8A8 runs at the documented maximum depth; others at 9 * 512 and at
        // 9 * 64 (the ResNet20 maximum, within the LUT family's index buffer)
        for (int k_seg : {(bw == 8 && ba == 8) ? static_cast<int>(mk::max_k_total / 9) : 512, 64})
          for (data_mode mode : {data_mode::max_neg, data_mode::max_pos}) {
            CAPTURE(ki.name);
            CAPTURE(bw);
            CAPTURE(ba);
            CAPTURE(k_seg);
            ktest::problem_data d = ktest::make_conv(2, 2, k_seg, 3, 3, 3, 1, bw, ba, mode, r);
            REQUIRE(d.taps == taps);
            ktest::fill_epilogue(d, r, false, false);
            ktest::layout_outputs(d, 3, r);
            const std::vector<std::int64_t> want = ktest::oracle_acc(d);
            // all A = 2^ba - 1, all W = extreme: the exact value is known
            const std::int64_t wv =
                mode == data_mode::max_neg ? -(1 << (bw - 1)) : (1 << (bw - 1)) - 1;
            CHECK(want[0] == std::int64_t(taps) * k_seg * ((1 << ba) - 1) * wv);
            REQUIRE(ktest::check_kernel(ki.id, d, want) == 0);
          }
      }
  }
}

TEST_CASE("qgemm: all-zero weights and tiles split by qgemm_tile") {
  ktest::rng r(6);
  for (const mk::kernel_info& ki : ktest::runnable_kernels()) {
    CAPTURE(ki.name);
    int bits = 8;
    while (!mk::kernel_supports(ki.id, bits, bits)) --bits;  // 8, else the widest the kernel takes
    ktest::problem_data d = ktest::make_gemm(29, 40, 21, bits, bits, 21, data_mode::zero, r);
    ktest::fill_epilogue(d, r, true, true);
    ktest::layout_outputs(d, 40, r);
    REQUIRE(ktest::check_kernel(ki.id, d, ktest::oracle_acc(d)) == 0);
    // disjoint tiles through qgemm_tile cover the output exactly once
    ktest::fill_codes(d, data_mode::random, r);
    const std::vector<std::int64_t> want = ktest::oracle_acc(d);
    const mk::packed_weights pw =
        mk::pack_weights_for(ki.id, d.w.data(), d.n, 1, d.k_seg, d.bw, d.ba);
    mk::qgemm_problem p;
    p.m = d.m;
    p.a = d.a.data();
    p.pix_off = d.pix_off.data();
    std::vector<std::int32_t> out(std::size_t(d.m) * d.n, -1);
    mk::epilogue ep;
    ep.out_i32 = out.data();
    ep.ld_i32 = d.n;
    for (std::int64_t m0 = 0; m0 < d.m; m0 += 10)
      for (std::int32_t n0 = 0; n0 < d.n; n0 += pw.nr)
        mk::qgemm_tile(p, pw, ep, m0, std::min<std::int64_t>(m0 + 10, d.m), n0,
                       std::min(n0 + pw.nr, d.n));
    for (std::size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == want[i]);
  }
}

TEST_CASE("qgemm: tap subsets (tap_idx) == oracle over the selected taps") {
  // Every kernel that claims tap subsets, random non-empty subsets of a 3x3
  // conv's taps (not only the border patterns the conv driver uses), rows
  // around the tile heights (4- and 8-row tail tiles), odd channel counts.
  ktest::rng r(4242);
  const int pairs[4][2] = {{8, 8}, {4, 4}, {2, 3}, {5, 7}};
  int kernels = 0;
  for (const mk::kernel_info& ki : ktest::runnable_kernels()) {
    if (!mk::kernel_supports_tap_subset(ki.id)) {
      MESSAGE(std::string(ki.name) << ": takes all packed taps (no tap subsets)");
      continue;
    }
    ++kernels;
    for (const auto& pr : pairs) {
      const int bw = pr[0], ba = pr[1];
      if (!mk::kernel_supports(ki.id, bw, ba)) continue;
      CAPTURE(ki.name);
      CAPTURE(bw);
      CAPTURE(ba);
      for (int it = 0; it < 8; ++it) {
        const int c = kSizes[r.uniform(0, kNumSizes - 1)];
        const int n = kSizes[r.uniform(0, kNumSizes - 1)];
        const int h = r.uniform(1, 9), wd = r.uniform(1, 11), s = r.uniform(1, 2);
        ktest::problem_data d =
            ktest::make_conv(h, wd, c, n, 3, 3, s, bw, ba, data_mode::random, r);
        const unsigned mask = 1u + static_cast<unsigned>(r.uniform(0, 510));  // 1..511
        for (int t = 0; t < 9; ++t)
          if (mask & (1u << t)) d.tap_idx.push_back(t);
        CAPTURE(mask);
        ktest::fill_epilogue(d, r, it % 2 == 0, it % 3 == 0);
        ktest::layout_outputs(d, n + r.uniform(0, 9), r);
        REQUIRE(ktest::check_kernel(ki.id, d, ktest::oracle_acc(d)) == 0);
      }
    }
  }
  CHECK(kernels > 0);  // the scalar reference always claims them
}
