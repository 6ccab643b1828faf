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
struct qgemm_problem {
  std::int64_t m = 0;                     ///< output rows
  const std::uint8_t* a = nullptr;        ///< activation base
  const std::int64_t* pix_off = nullptr;  ///< [m] row offsets
  const std::int64_t* tap_off = nullptr;  ///< [taps] tap offsets; nullptr = all zero
};

}  // namespace kernels
}  // namespace mixq
