#pragma once
// mixq integer GEMM: the kernel contract (include this file).
//
// ## What it computes
//   C[m][n] = sum_{t<taps} sum_{c<k_seg} A[pix_off[m] + tap_off[t] + c] * W[n][t][c]
// for m < M, n < N, then the fused per-channel epilogue of requant.hpp:
//   raw  : out_i32[m*ld_i32 + n] = C + bias[n]
//   u8   : out[out_pix_off[m] + n] =
//          clamp(zp_out + rhaz((C + bias[n]) * qm[n] + res_code * res_qm[n], rshift[n]), lo, hi)
//          with res_code = res[res_pix_off[m] + n] (optional residual).
//
// ## Operands
// - A: unsigned b_a-bit codes in uint8 (0..2^b_a - 1), zero point 0; byte
//   offsets pix_off (int64 per output row) and tap_off (int64 per tap) give
//   implicit-GEMM addressing, so a convolution over a zero-padded NHWC input
//   needs no im2col: for a 3x3 conv with Wp = W + 2,
//   tap_off[dy*3+dx] = (dy*Wp + dx)*C, pix_off(y, x) = (y*s*Wp + x*s)*C.
//   Plain GEMM: taps = 1, tap_off = nullptr, pix_off[m] = m*lda.
// - Kernels read up to a_overread_bytes (common.hpp) past the last addressed
//   activation byte; callers allocate that padding (values are irrelevant).
// - W: signed symmetric b_w-bit codes, given as int8 [N][taps][k_seg] and
//   packed once by pack_weights() (pack.hpp) for one (b_w, b_a) pair and the
//   kernel family the registry picks (registry.hpp, from kernels.inc; or
//   pack_weights_for() a given one).
// - Bounds: 2 <= b_w, b_a <= 8; taps*k_seg <= max_k_total (65536); the caller
//   keeps |C + bias| < 2^31 (true for any bias with |bias| < 2^24).
//
// ## Entry points
// - qgemm(p, pw, ep): whole problem on the calling thread.
// - qgemm_tile(p, pw, ep, m0, m1, n0, n1): rows [m0, m1), channels [n0, n1);
//   n0 must be a multiple of pw.nr (single-threaded; this is the unit a
//   caller's own threading splits on: any disjoint tiles may run in parallel).
// - qgemm_parallel(p, pw, ep): OpenMP over (M tiles x N blocks) when built
//   with OpenMP, else the same as qgemm.
// - last_used_kernel(): name of the micro-kernel the last call on this
//   thread ran (qgemm, qgemm_parallel or qgemm_tile), e.g.
//   "qgemm_a8w8_16x16c4__avx512vnni".
// All entry points are noexcept and allocate nothing.
#include <cstdint>

#include "mixq/kernels/common.hpp"
#include "mixq/kernels/dispatch.hpp"
#include "mixq/kernels/pack.hpp"
#include "mixq/kernels/problem.hpp"
#include "mixq/kernels/ref/qgemm_1x1c1__scalar.hpp"
#include "mixq/kernels/registry.hpp"
#include "mixq/kernels/requant.hpp"
#if MIXQ_KERNELS_X86
#include "mixq/kernels/x86_avx2/qgemm_4x16c4__avx2.hpp"
#include "mixq/kernels/x86_avx2/qgemm_4x16c4__avx2_i16.hpp"
#include "mixq/kernels/x86_avx2/qgemm_6x16c4__avx2_acc16.hpp"
#include "mixq/kernels/x86_avx512vbmi/qgemm_16x16c16__avx512vbmi_lut.hpp"
#include "mixq/kernels/x86_avx512vnni/qgemm_c4__avx512vnni.hpp"
#endif
#if MIXQ_KERNELS_ARM64
#include "mixq/kernels/arm_neon/qgemm_4x16c4__neon.hpp"
#endif
#if MIXQ_KERNELS_NEON_DOTPROD
#include "mixq/kernels/arm_neon_dotprod/qgemm_8x8c4__neondot.hpp"
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mixq {
namespace kernels {

namespace detail {

#if MIXQ_KERNELS_X86
/// The LUT16 family: its lookups when one tile's index vectors fit the stack
/// buffer, else the 16x16 VNNI kernel on the c4 copy the pack keeps after
/// the tables.
inline void run_lut16(const qgemm_problem& p, const packed_weights& pw, const epilogue& ep,
                      std::int64_t m0, std::int64_t m1, std::int32_t n0, std::int32_t n1) noexcept {
  if (pw.b_a == 2 && avx512vbmi::lut_index_fits<2>(pw)) {
    avx512vbmi::qgemm_range_lut<2>(p, pw, ep, m0, m1, n0, n1);
  } else if (pw.b_a == 3 && avx512vbmi::lut_index_fits<3>(pw)) {
    avx512vbmi::qgemm_range_lut<3>(p, pw, ep, m0, m1, n0, n1);
  } else {
    const std::int8_t* c4 = reinterpret_cast<const std::int8_t*>(pw.data.data()) +
                            lut_table_bytes(pw.n, pw.taps, pw.k_seg);
    avx512vnni::qgemm_range_w<16, 1>(p, pw.taps, pw.kg, c4, ep, m0, m1, n0, n1);
  }
}
#endif

/// One case per family of kernels.inc: its run function.
inline void run_kernel(const qgemm_problem& p, const packed_weights& pw, const epilogue& ep,
                       std::int64_t m0, std::int64_t m1, std::int32_t n0,
                       std::int32_t n1) noexcept {
  switch (pw.kernel) {
#define MIXQ_QGEMM_KERNEL(id, isa_, arch, mr, nr, kr, vbmi, layout, tapsub, rank, ok, prefer, ...) \
  case kernel_id::id:                                                                              \
    __VA_ARGS__(p, pw, ep, m0, m1, n0, n1);                                                        \
    break;
#include "mixq/kernels/kernels.inc"
    default:
      ref::qgemm_range(p, pw, ep, m0, m1, n0, n1);
      break;
  }
}

}  // namespace detail

/// Rows [m0, m1) x channels [n0, n1) (n0 a multiple of pw.nr). Single-threaded.
inline void qgemm_tile(const qgemm_problem& p, const packed_weights& pw, const epilogue& ep,
                       std::int64_t m0, std::int64_t m1, std::int32_t n0,
                       std::int32_t n1) noexcept {
  MIXQ_DASSERT(m0 >= 0 && m1 <= p.m && n0 >= 0 && n1 <= pw.n && n0 % pw.nr == 0);
  MIXQ_DASSERT(ep.out_i32 || (ep.out && ep.out_pix_off && ep.qm && ep.rshift));
  MIXQ_DASSERT(!p.tap_idx || (kernel_supports_tap_subset(pw.kernel) && p.taps <= pw.taps));
  if (m0 >= m1 || n0 >= n1) return;
  detail::record_kernel(pw.name.data());
  detail::run_kernel(p, pw, ep, m0, m1, n0, n1);
}

/// The whole problem on the calling thread.
inline void qgemm(const qgemm_problem& p, const packed_weights& pw, const epilogue& ep) noexcept {
  detail::record_kernel(pw.name.data());  // also for an empty problem
  qgemm_tile(p, pw, ep, 0, p.m, 0, pw.n);
}

/// The whole problem, split over OpenMP threads in (row chunk x NR block)
/// tiles when compiled with OpenMP; otherwise identical to qgemm().
inline void qgemm_parallel(const qgemm_problem& p, const packed_weights& pw,
                           const epilogue& ep) noexcept {
  detail::record_kernel(pw.name.data());
#ifdef _OPENMP
  const std::int64_t work = p.m * std::int64_t(pw.n) * pw.k_total();
  const int threads = omp_get_max_threads();
  if (threads > 1 && work >= (std::int64_t(1) << 18) && !omp_in_parallel()) {
    const std::int64_t nb = pw.n_blocks();
    // row chunks: a multiple of MR, about 4 tiles per thread overall
    std::int64_t chunk = (p.m * nb + 4 * threads - 1) / (4 * threads);
    chunk = round_up(chunk < pw.mr ? pw.mr : chunk, pw.mr);
    const std::int64_t mc = (p.m + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t i = 0; i < mc * nb; ++i) {
      const std::int64_t mi = i / nb;
      const std::int32_t b = static_cast<std::int32_t>(i % nb);
      const std::int64_t m0 = mi * chunk, m1 = (m0 + chunk < p.m) ? m0 + chunk : p.m;
      const std::int32_t n0 = b * pw.nr, n1 = (n0 + pw.nr < pw.n) ? n0 + pw.nr : pw.n;
      qgemm_tile(p, pw, ep, m0, m1, n0, n1);
    }
    return;
  }
#endif
  qgemm_tile(p, pw, ep, 0, p.m, 0, pw.n);
}

/// pix_off for a plain row-major GEMM: pix_off[m] = m * lda.
inline void fill_linear_offsets(std::int64_t* off, std::int64_t m, std::int64_t lda) noexcept {
  for (std::int64_t i = 0; i < m; ++i) off[i] = i * lda;
}

}  // namespace kernels
}  // namespace mixq
