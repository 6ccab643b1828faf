#pragma once
// Opt-in entry points of the 64-entry LUT family on bit-plane index
// activations (format.hpp). qgemm() and its dispatch are unchanged: a
// caller opts in by keeping its activations in the bit-plane format (the
// producer writes it through bitplane_output, or bitplane_from_codes()
// converts u8 codes once) and packing with pack_bitplane_weights().
//
//   qgemm_bitplane(p, pw, ep, bo)        rows [0, p.m), all channels
//   qgemm_bitplane_tile(p, pw, ep, bo, m0, m1[, n0, n1])   rows [m0, m1),
//       channels [n0, n1) (default all; bounds multiples of 12 or n, so that
//       every written index byte is complete); disjoint ranges may run
//       concurrently
// ep: raw int32 (out_i32) or u8 NHWC (out) output without residual (both
// taken by the scalar epilogue on this path); bo (optional): codes written as
// the next layer's bit-plane index bytes through per-channel thresholds
// (bitplane_thresholds(ep, n, thr[, res_bits]), computed once per layer),
// with an optional residual read from planes (bo->res, weights ep.res_qm).
// ep.qm/rshift must then be set; the fast path needs 2-bit residual codes
// (wider layers run in channel ranges of <= 504, 120 with a residual).
// The kernel is the one the pack bound (kernels.inc: the AVX-512 VBMI kernel
// when the CPU has it and MIXQ_ISA / set_isa() allowed avx512 at pack time,
// else the scalar twin); last_used_kernel() names what ran.
#include <cstdint>

#include "mixq/kernels/bitplane/format.hpp"
#include "mixq/kernels/bitplane/pack.hpp"
#include "mixq/kernels/bitplane/ref.hpp"
#include "mixq/kernels/dispatch.hpp"
#include "mixq/kernels/registry.hpp"
#if MIXQ_KERNELS_X86
#include "mixq/kernels/x86_avx512vbmi/qgemm_64x4__avx512vbmi_lut6.hpp"
#endif

namespace mixq {
namespace kernels {

/// Whether bit-plane work on this thread's ISA (active_isa(): CPUID clamped
/// by MIXQ_ISA / set_isa()) runs SIMD code: what a pack made now binds, and
/// what bitplane_from_codes() runs.
inline bool bitplane_simd_active() noexcept {
  return choose_bitplane_kernel(active_isa()) != bitplane_kernel_id::scalar_bitplane_1x1c1;
}

/// Channel ranges of qgemm_bitplane_tile start and end at multiples of this
/// (or at n): whole 4-channel table blocks and whole 3- or 2-code output bytes.
constexpr std::int32_t bitplane_channel_step = 12;

namespace detail {
#if MIXQ_KERNELS_X86
/// The AVX-512 LUT6 kernel; a bit-plane output its fused epilogue does not
/// take (residual codes of other than 2 bits) is written by the scalar twin,
/// the kernel writing the raw / u8 outputs.
inline void run_lut6(const bitplane_problem& p, const bitplane_weights& pw, const epilogue& ep,
                     const bitplane_output* bo, std::int64_t m0, std::int64_t m1, std::int32_t n0,
                     std::int32_t n1) noexcept {
  if (avx512vbmi::lut6_takes_output(ep, bo)) {
    avx512vbmi::qgemm_bitplane_lut6(p, pw, ep, bo, m0, m1, n0, n1);
    return;
  }
  if (ep.out_i32 || ep.out) avx512vbmi::qgemm_bitplane_lut6(p, pw, ep, nullptr, m0, m1, n0, n1);
  epilogue planes_only = ep;
  planes_only.out_i32 = nullptr;
  planes_only.out = nullptr;
  ref::qgemm_bitplane_range(p, pw, planes_only, bo, m0, m1, n0, n1);
}
#endif
}  // namespace detail

inline void qgemm_bitplane_tile(const bitplane_problem& p, const bitplane_weights& pw,
                                const epilogue& ep, const bitplane_output* bo, std::int64_t m0,
                                std::int64_t m1, std::int32_t n0 = 0,
                                std::int32_t n1 = -1) noexcept {
  if (n1 < 0) n1 = pw.n;
  MIXQ_DASSERT(n0 % bitplane_channel_step == 0 && n0 < n1 && n1 <= pw.n);
  MIXQ_DASSERT(n1 == pw.n || n1 % bitplane_channel_step == 0);
  MIXQ_DASSERT(!ep.res);
  MIXQ_DASSERT(!pw.packed_rem || 2 * pw.ksteps <= bitplane_index_capacity);
  MIXQ_DASSERT(!bo || (ep.qm && ep.rshift && bo->thresholds && ep.hi < (1 << bo->b_out)));
  MIXQ_DASSERT(!bo || !bo->res || (ep.res_qm && bo->res_pix_off));
  if (m0 >= m1) return;
  detail::record_kernel(pw.name.data());
  switch (pw.kernel) {
#define MIXQ_BITPLANE_KERNEL(id, isa_, arch, mr, nr, kr, vbmi, rank, ...) \
  case bitplane_kernel_id::id:                                            \
    __VA_ARGS__(p, pw, ep, bo, m0, m1, n0, n1);                           \
    break;
#include "mixq/kernels/kernels.inc"
    default:
      ref::qgemm_bitplane_range(p, pw, ep, bo, m0, m1, n0, n1);
      break;
  }
}

inline void qgemm_bitplane(const bitplane_problem& p, const bitplane_weights& pw,
                           const epilogue& ep, const bitplane_output* bo = nullptr) noexcept {
  qgemm_bitplane_tile(p, pw, ep, bo, 0, p.m);
}

/// u8 codes -> bit-plane index planes (see bitplane_from_codes_ref), AVX-512
/// when bitplane_simd_active() and C % 16 == 0.
inline void bitplane_from_codes(const std::uint8_t* codes, std::int64_t npix,
                                std::int64_t pix_stride, std::int32_t c, int b_a, std::uint8_t* dst,
                                std::int64_t group_stride) noexcept {
#if MIXQ_KERNELS_X86
  if (bitplane_simd_active()) {
    detail::avx512vbmi::bitplane_from_codes_avx512(codes, npix, pix_stride, c, b_a, dst,
                                                   group_stride);
    return;
  }
#endif
  bitplane_from_codes_ref(codes, npix, pix_stride, c, b_a, dst, group_stride);
}

}  // namespace kernels
}  // namespace mixq
