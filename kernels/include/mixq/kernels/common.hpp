#pragma once
// Shared plumbing for the integer kernels: platform macros and bounds.
// Kernels include nothing from include/mixq/core (they know nothing of
// tensors); from the rest of mixq they use only two dependency-free headers:
// mixq/error.hpp (packing throws mixq::error, noexcept kernel code re-checks
// its preconditions with MIXQ_DASSERT in debug builds) and mixq/util/math.hpp
// (round_up).
#include <cstddef>
#include <cstdint>

#include "mixq/error.hpp"
#include "mixq/util/math.hpp"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define MIXQ_KERNELS_X86 1
#else
#define MIXQ_KERNELS_X86 0
#endif

#if defined(__aarch64__)
#define MIXQ_KERNELS_ARM64 1
#else
#define MIXQ_KERNELS_ARM64 0
#endif

#if MIXQ_KERNELS_ARM64 && defined(__ARM_FEATURE_DOTPROD)
#define MIXQ_KERNELS_NEON_DOTPROD 1
#else
#define MIXQ_KERNELS_NEON_DOTPROD 0
#endif

namespace mixq {
namespace kernels {

/// Bytes the kernels may read past the last activation byte that a problem
/// addresses (A[pix_off[m] + tap_off[t] + k_seg - 1] for the largest offset).
/// Callers allocate this much readable padding after the activation buffer.
/// The bytes are read, never written, and their values never change a result
/// (they only meet zero weights). Today's kernels read at most 15 bytes past;
/// 64 leaves room for wider future kernels without an API change.
constexpr std::size_t a_overread_bytes = 64;

/// Bytes the kernels may read past the last residual byte (res + res_pix_off[m]
/// + n for the largest m, n). Read, never written, never used.
constexpr std::size_t res_overread_bytes = 64;

/// Largest supported reduction depth taps * k_seg: with 8-bit codes the
/// worst |acc| = 65536 * 255 * 128 = 2^31 - 2^24 still fits int32.
constexpr std::int64_t max_k_total = 65536;

}  // namespace kernels
}  // namespace mixq
