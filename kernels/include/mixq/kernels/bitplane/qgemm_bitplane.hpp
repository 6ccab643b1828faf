#pragma once
// Opt-in entry points of the 64-entry LUT family on bit-plane index
// activations (bitplane.hpp). qgemm() and its dispatch are unchanged: a
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
// Runs the AVX-512 VBMI kernel when the CPU has it and MIXQ_ISA / set_isa()
// allow avx512, else the scalar twin. last_used_kernel() names what ran.
#include <cstdint>

#include "bitplane.hpp"
#include "dispatch.hpp"
#if MIXQ_KERNELS_X86
#include "x86_avx512vnni/qgemm_bitplane_lut6_vbmi.hpp"
#endif

namespace mixq {
namespace kernels {

/// Whether qgemm_bitplane runs the AVX-512 VBMI kernel (else the scalar twin).
inline bool bitplane_simd_active() noexcept {
#if MIXQ_KERNELS_X86
  return active_isa() == isa::avx512 && detail::state().caps.avx512lut;
#else
  return false;
#endif
}

/// Channel ranges of qgemm_bitplane_tile start and end at multiples of this
/// (or at n): whole 4-channel table blocks and whole 3- or 2-code output bytes.
constexpr std::int32_t bitplane_channel_step = 12;

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
#if MIXQ_KERNELS_X86
  if (bitplane_simd_active()) {
    detail::record_kernel(pw.name.data());
    detail::avx512vbmi::qgemm_bitplane_lut6(p, pw, ep, bo, m0, m1, n0, n1);
    return;
  }
#endif
  char name[64];
  std::snprintf(name, sizeof(name), "qgemm_a%dw%d_1x1c1__scalar_bitplane", pw.b_a, pw.b_w);
  detail::record_kernel(name);
  ref::qgemm_bitplane_range(p, pw, ep, bo, m0, m1, n0, n1);
}

inline void qgemm_bitplane(const bitplane_problem& p, const bitplane_weights& pw,
                           const epilogue& ep, const bitplane_output* bo = nullptr) noexcept {
  qgemm_bitplane_tile(p, pw, ep, bo, 0, p.m);
}

/// u8 codes -> bit-plane index planes (see bitplane_from_codes_ref), AVX-512
/// when available and C % 16 == 0.
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
