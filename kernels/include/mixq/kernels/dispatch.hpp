#pragma once
// Run-time ISA selection (x86) and compile-time selection (ARM).
//
// x86: one binary carries the scalar, AVX2 and AVX-512 VNNI kernels. The
// wider ones are compiled through __attribute__((target(...))) inside
// ISA-keyed namespaces (detail::avx2, detail::avx512vnni) and are only ever
// called after the CPUID check below said the CPU (and the OS, through
// XCR0, which libgcc's __builtin_cpu_supports checks) supports them. An
// AVX2-only CPU therefore never executes an AVX-512 instruction.
//
// The choice is made once (first use) from CPUID, then clamped by the
// environment variable MIXQ_ISA=scalar|avx2|avx512 (ARM: scalar|neon|
// neon_dotprod). A request above what the CPU has is clamped down to the
// best available ISA; an unknown value is ignored. set_isa() does the same
// from code (tests use it to run every path in one process).
//
// ARM: NEON is baseline on aarch64; the sdot kernels exist only when the
// compiler targets dotprod (__ARM_FEATURE_DOTPROD).
#include <cstdlib>
#include <cstring>
#include <string>

#include "mixq/kernels/common.hpp"

namespace mixq {
namespace kernels {

/// Instruction-set levels, ordered: a higher value implies the lower ones
/// on its architecture.
enum class isa : int {
  scalar = 0,
  avx2 = 1,          ///< x86 AVX2 (+FMA not needed)
  avx512 = 2,        ///< x86 AVX-512 F/BW/VL + VNNI
  neon = 3,          ///< aarch64 baseline NEON
  neon_dotprod = 4,  ///< aarch64 with sdot (compile-time)
  automatic = 99,    ///< "best available" (pack_weights argument)
};

inline const char* isa_name(isa i) noexcept {
  switch (i) {
    case isa::scalar:
      return "scalar";
    case isa::avx2:
      return "avx2";
    case isa::avx512:
      return "avx512";
    case isa::neon:
      return "neon";
    case isa::neon_dotprod:
      return "neon_dotprod";
    default:
      return "automatic";
  }
}

/// Parse a MIXQ_ISA value; returns isa::automatic for null/empty/unknown.
inline isa parse_isa(const char* s) noexcept {
  if (!s || !*s) return isa::automatic;
  if (!std::strcmp(s, "scalar")) return isa::scalar;
  if (!std::strcmp(s, "avx2")) return isa::avx2;
  if (!std::strcmp(s, "avx512") || !std::strcmp(s, "avx512vnni")) return isa::avx512;
  if (!std::strcmp(s, "neon")) return isa::neon;
  if (!std::strcmp(s, "neon_dotprod") || !std::strcmp(s, "neondot")) return isa::neon_dotprod;
  return isa::automatic;
}

/// What the CPU (and the build) can run.
struct cpu_caps {
  bool avx2 = false;
  bool avx512vnni = false;  ///< F + BW + VL + VNNI
  bool avx512vbmi = false;
  bool avx512lut = false;  ///< VNNI + VBMI + BITALG (the LUT family)
  bool neon = false;
  bool neon_dotprod = false;
};

inline cpu_caps detect_cpu() noexcept {
  cpu_caps c;
#if MIXQ_KERNELS_X86 && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  c.avx2 = __builtin_cpu_supports("avx2");
  c.avx512vnni = c.avx2 && __builtin_cpu_supports("avx512f") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                 __builtin_cpu_supports("avx512vnni");
  c.avx512vbmi = c.avx512vnni && __builtin_cpu_supports("avx512vbmi");
  c.avx512lut = c.avx512vbmi && __builtin_cpu_supports("avx512bitalg");
#endif
#if MIXQ_KERNELS_ARM64
  c.neon = true;
  c.neon_dotprod = MIXQ_KERNELS_NEON_DOTPROD != 0;
#endif
  return c;
}

/// Best ISA of `caps` that is <= `requested` (automatic = best of all).
inline isa clamp_isa(const cpu_caps& caps, isa requested) noexcept {
  const int r = static_cast<int>(requested);
#if MIXQ_KERNELS_ARM64
  // neon < neon_dotprod; x86 names map to the best ARM level.
  if (requested == isa::scalar) return isa::scalar;
  if (caps.neon_dotprod && (r >= static_cast<int>(isa::neon_dotprod) || requested == isa::avx512 ||
                            requested == isa::avx2))
    return isa::neon_dotprod;
  return caps.neon ? isa::neon : isa::scalar;
#else
  if (requested == isa::automatic) {
    if (caps.avx512vnni) return isa::avx512;
    if (caps.avx2) return isa::avx2;
    return isa::scalar;
  }
  if (r >= static_cast<int>(isa::avx512) && caps.avx512vnni) return isa::avx512;
  if (r >= static_cast<int>(isa::avx2) && caps.avx2) return isa::avx2;
  return isa::scalar;
#endif
}

/// True if kernels of ISA `i` may run on this CPU.
inline bool isa_supported(isa i) noexcept {
  if (i == isa::scalar) return true;
  return clamp_isa(detect_cpu(), i) == i;
}

namespace detail {
struct isa_state {
  cpu_caps caps;
  isa active;
};
inline isa_state& state() noexcept {
  static isa_state s = [] {
    isa_state st;
    st.caps = detect_cpu();
    st.active = clamp_isa(st.caps, parse_isa(std::getenv("MIXQ_ISA")));
    return st;
  }();
  return s;
}
inline char* last_kernel_buffer() noexcept {
  static thread_local char buf[64] = "none";
  return buf;
}
}  // namespace detail

/// The ISA new packs default to (CPUID, clamped by MIXQ_ISA or set_isa()).
inline isa active_isa() noexcept { return detail::state().active; }

/// Force an ISA (clamped to what the CPU has); isa::automatic = best.
/// Returns the ISA actually selected. Not thread-safe against concurrent packs.
inline isa set_isa(isa requested) noexcept {
  detail::state().active = clamp_isa(detail::state().caps, requested);
  return detail::state().active;
}

/// Re-read MIXQ_ISA from the environment (tests call this after setenv).
inline isa reload_isa_from_env() noexcept { return set_isa(parse_isa(std::getenv("MIXQ_ISA"))); }

/// Name of the micro-kernel that last ran on this thread's qgemm calls,
/// e.g. "qgemm_a4w4_6x16c4__avx2_acc16"; "none" before the first call.
inline std::string last_used_kernel() { return std::string(detail::last_kernel_buffer()); }

namespace detail {
inline void record_kernel(const char* name) noexcept {
  char* b = last_kernel_buffer();
  std::size_t i = 0;
  for (; name[i] && i < 63; ++i) b[i] = name[i];
  b[i] = 0;
}
}  // namespace detail

}  // namespace kernels
}  // namespace mixq
