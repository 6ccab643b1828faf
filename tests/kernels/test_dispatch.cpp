// Run-time dispatch: ISA parsing and clamping, MIXQ_ISA forcing, the kernel
// enumerator, dispatch choices and last_used_kernel().
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "kernels_test_util.hpp"

namespace mk = mixq::kernels;

TEST_CASE("parse_isa and clamp_isa") {
  CHECK(mk::parse_isa("scalar") == mk::isa::scalar);
  CHECK(mk::parse_isa("avx2") == mk::isa::avx2);
  CHECK(mk::parse_isa("avx512") == mk::isa::avx512);
  CHECK(mk::parse_isa("bogus") == mk::isa::automatic);
  CHECK(mk::parse_isa(nullptr) == mk::isa::automatic);
  CHECK(mk::parse_isa("") == mk::isa::automatic);
#if MIXQ_KERNELS_X86
  mk::cpu_caps avx2_only;
  avx2_only.avx2 = true;
  CHECK(mk::clamp_isa(avx2_only, mk::isa::avx512) == mk::isa::avx2);  // never SIGILL on AVX2-only
  CHECK(mk::clamp_isa(avx2_only, mk::isa::automatic) == mk::isa::avx2);
  CHECK(mk::clamp_isa(avx2_only, mk::isa::scalar) == mk::isa::scalar);
  mk::cpu_caps none;
  CHECK(mk::clamp_isa(none, mk::isa::avx512) == mk::isa::scalar);
  CHECK(mk::clamp_isa(none, mk::isa::avx2) == mk::isa::scalar);
  mk::cpu_caps full;
  full.avx2 = full.avx512vnni = true;
  CHECK(mk::clamp_isa(full, mk::isa::automatic) == mk::isa::avx512);
  CHECK(mk::clamp_isa(full, mk::isa::avx2) == mk::isa::avx2);
  const mk::cpu_caps here = mk::detect_cpu();
  MESSAGE("CPU: avx2=" << here.avx2 << " avx512vnni=" << here.avx512vnni
                       << " avx512vbmi=" << here.avx512vbmi);
#endif
}

TEST_CASE("MIXQ_ISA forces a path, clamped to the CPU") {
  const mk::isa best = mk::clamp_isa(mk::detect_cpu(), mk::isa::automatic);
  ::setenv("MIXQ_ISA", "scalar", 1);
  CHECK(mk::reload_isa_from_env() == mk::isa::scalar);
  CHECK(mk::active_isa() == mk::isa::scalar);
  std::vector<std::int8_t> w(16 * 8, 1);
  CHECK(mk::pack_weights(w.data(), 16, 1, 8, 4, 4).kernel == mk::kernel_id::scalar_1x1c1);
#if MIXQ_KERNELS_X86
  ::setenv("MIXQ_ISA", "avx2", 1);
  const mk::isa got2 = mk::reload_isa_from_env();
  CHECK(got2 == (mk::isa_supported(mk::isa::avx2) ? mk::isa::avx2 : mk::isa::scalar));
  ::setenv("MIXQ_ISA", "avx512", 1);
  const mk::isa got5 = mk::reload_isa_from_env();
  CHECK(got5 == best);  // avx512 is the top level: clamps to whatever the CPU has
  if (got5 != mk::isa::avx512)
    MESSAGE("MIXQ_ISA=avx512 clamped to " << std::string(mk::isa_name(got5)) << " on this CPU");
#endif
  ::unsetenv("MIXQ_ISA");
  CHECK(mk::reload_isa_from_env() == best);
}

TEST_CASE("kernel enumerator: unique names, every pair has a dispatch choice") {
  std::size_t cnt = 0;
  const mk::kernel_info* t = mk::kernel_table(&cnt);
  REQUIRE(cnt == static_cast<std::size_t>(mk::kernel_id::count));
  std::set<std::string> names;
  for (std::size_t i = 0; i < cnt; ++i) {
    CHECK(static_cast<std::size_t>(t[i].id) == i);
    for (int bw = 2; bw <= 8; ++bw)
      for (int ba = 2; ba <= 8; ++ba)
        if (mk::kernel_supports(t[i].id, bw, ba)) {
          char buf[96];
          std::snprintf(buf, sizeof buf, "qgemm_a%dw%d_%dx%dc%d__%s", ba, bw, t[i].mr, t[i].nr,
                        t[i].kr, t[i].arch);
          CHECK(names.insert(buf).second);  // no two kernels share a name
        }
  }
  for (mk::isa l :
       {mk::isa::scalar, mk::isa::avx2, mk::isa::avx512, mk::isa::neon, mk::isa::neon_dotprod})
    for (int bw = 2; bw <= 8; ++bw)
      for (int ba = 2; ba <= 8; ++ba)
        for (std::int32_t n : {1, 16, 17, 64}) {
          const mk::kernel_id id = mk::choose_kernel(l, bw, ba, n);
          CHECK(mk::kernel_supports(id, bw, ba));
          const mk::isa kl = mk::get_kernel_info(id).level;
          CHECK((kl == l || kl == mk::isa::scalar));
        }
  CHECK(!mk::kernel_supports(mk::kernel_id::scalar_1x1c1, 1, 4));
  CHECK(!mk::kernel_supports(mk::kernel_id::scalar_1x1c1, 4, 9));
}

TEST_CASE("last_used_kernel names the kernel that ran") {
  ktest::rng r(1);
  const mk::isa saved = mk::active_isa();
  for (mk::isa l :
       {mk::isa::scalar, mk::isa::avx2, mk::isa::avx512, mk::isa::neon, mk::isa::neon_dotprod}) {
    if (!mk::isa_supported(l)) {
      MESSAGE("SKIPPED last_used_kernel check for ISA " << std::string(mk::isa_name(l))
                                                        << ": not available on this CPU/build");
      continue;
    }
    mk::set_isa(l);
    ktest::problem_data d = ktest::make_gemm(5, 16, 8, 4, 4, 8, ktest::data_mode::random, r);
    const mk::packed_weights pw = mk::pack_weights(d.w.data(), d.n, 1, d.k_seg, 4, 4);
    CHECK(pw.level == l);
    std::vector<std::int32_t> out(5 * 16);
    mk::qgemm_problem p;
    p.m = d.m;
    p.a = d.a.data();
    p.pix_off = d.pix_off.data();
    mk::epilogue ep;
    ep.out_i32 = out.data();
    ep.ld_i32 = 16;
    mk::qgemm(p, pw, ep);
    const std::string name = mk::last_used_kernel();
    CHECK(name == pw.name.data());
    CHECK(name.rfind("qgemm_a4w4_", 0) == 0);
    MESSAGE(std::string(mk::isa_name(l)) << " -> " << name);
  }
  mk::set_isa(saved);
}

TEST_CASE("dispatch never gives a lower bit-width a slower family") {
  // the measured speed rank of the families of one ISA (kernels.inc RANK)
  auto rank = [](mk::kernel_id id) { return mk::get_kernel_info(id).rank; };
  for (mk::isa l :
       {mk::isa::scalar, mk::isa::avx2, mk::isa::avx512, mk::isa::neon, mk::isa::neon_dotprod})
    for (std::int32_t n : {16, 64, 256})
      for (int bw = 2; bw <= 8; ++bw)
        for (int ba = 2; ba <= 8; ++ba) {
          const int r = rank(mk::choose_kernel(l, bw, ba, n));
          if (bw < 8) CHECK(r >= rank(mk::choose_kernel(l, bw + 1, ba, n)));
          if (ba < 8) CHECK(r >= rank(mk::choose_kernel(l, bw, ba + 1, n)));
        }
#if MIXQ_KERNELS_X86
  // the AVX2 thresholds follow the int16 accumulation depth T
  CHECK(mk::choose_kernel(mk::isa::avx2, 4, 4, 16) == mk::kernel_id::avx2_acc16_6x16c4);
  CHECK(mk::choose_kernel(mk::isa::avx2, 8, 5, 16) == mk::kernel_id::avx2_acc16_6x16c4);  // T = 4
  CHECK(mk::choose_kernel(mk::isa::avx2, 8, 6, 16) == mk::kernel_id::avx2_4x16c4);        // T = 2
  CHECK(mk::choose_kernel(mk::isa::avx2, 8, 8, 16) == mk::kernel_id::avx2_i16_4x16c4);
#endif
}

TEST_CASE("one name per kernel: enum id, printed name and header file agree") {
  std::size_t cnt = 0;
  const mk::kernel_info* t = mk::kernel_table(&cnt);
  for (std::size_t i = 0; i < cnt; ++i) {
    char tile[32];
    std::snprintf(tile, sizeof tile, "%dx%dc%d", t[i].mr, t[i].nr, t[i].kr);
    CAPTURE(t[i].name);
    CHECK(std::string(t[i].name) == std::string(t[i].arch) + "_" + tile);
#ifdef MIXQ_SOURCE_DIR
    const char* folder = t[i].level == mk::isa::scalar         ? "ref"
                         : t[i].level == mk::isa::avx2         ? "x86_avx2"
                         : t[i].needs_vbmi                     ? "x86_avx512vbmi"
                         : t[i].level == mk::isa::avx512       ? "x86_avx512vnni"
                         : t[i].level == mk::isa::neon_dotprod ? "arm_neon_dotprod"
                                                               : "arm_neon";
    // one file per tile, or one file for the tiles of one template (qgemm_c<KR>__<arch>)
    const std::string dir =
        std::string(MIXQ_SOURCE_DIR) + "/kernels/include/mixq/kernels/" + folder;
    const std::string one = dir + "/qgemm_" + tile + "__" + t[i].arch + ".hpp";
    const std::string shared =
        dir + "/qgemm_c" + std::to_string(t[i].kr) + "__" + t[i].arch + ".hpp";
    std::FILE* f = std::fopen(one.c_str(), "r");
    if (!f) f = std::fopen(shared.c_str(), "r");
    CHECK_MESSAGE(f != nullptr, "no header " << one << " (or " << shared << ")");
    if (f) std::fclose(f);
#endif
  }
  std::size_t bcnt = 0;
  const mk::bitplane_kernel_info* b = mk::bitplane_kernel_table(&bcnt);
  for (std::size_t i = 0; i < bcnt; ++i) {
    CAPTURE(b[i].name);
    CHECK(std::string(b[i].name).rfind(std::string(b[i].arch) + "_" + std::to_string(b[i].mr) +
                                           "x" + std::to_string(b[i].nr),
                                       0) == 0);
  }
}
