#pragma once
// The activation side of a qgemm call (implicit GEMM addressing).
#include <cstdint>

namespace mixq {
namespace kernels {

/// Activations for  C[m][n] = sum_t sum_c A[pix_off[m] + tap_off[t] + c] * W[n][t][c].
/// A holds unsigned b_a-bit codes, one per byte, zero point 0. Offsets are in
/// bytes. The buffer must stay readable a_overread_bytes past the last
/// addressed byte. Plain GEMM: taps = 1, tap_off = nullptr (or {0}),
/// pix_off[m] = m * lda.
///
/// Tap subsets: with tap_idx set, only `taps` of the packed taps are summed,
/// the t-th being packed tap tap_idx[t] at activation offset tap_off[t]
/// (tap_idx strictly increasing, each < the packed tap count). A conv driver
/// uses this to skip the taps that fall on the zero halo of border pixels
/// (exact because the halo holds code 0). Only families for which
/// kernel_supports_tap_subset() is true accept it (the LUT families do not).
struct qgemm_problem {
  std::int64_t m = 0;                     ///< output rows
  const std::uint8_t* a = nullptr;        ///< activation base
  const std::int64_t* pix_off = nullptr;  ///< [m] row offsets
  const std::int64_t* tap_off = nullptr;  ///< [taps used] tap offsets; nullptr = all zero
  const std::int32_t* tap_idx = nullptr;  ///< [taps] packed tap of each used tap; nullptr = all
  std::int32_t taps = 0;                  ///< taps used when tap_idx is set
};

/// Number of taps a kernel sums for `p` with weights packed with `packed_taps`.
inline std::int32_t used_taps(const qgemm_problem& p, std::int32_t packed_taps) noexcept {
  return p.tap_idx ? p.taps : packed_taps;
}

/// Packed tap index of the t-th used tap.
inline std::int32_t packed_tap(const qgemm_problem& p, std::int32_t t) noexcept {
  return p.tap_idx ? p.tap_idx[t] : t;
}

}  // namespace kernels
}  // namespace mixq
