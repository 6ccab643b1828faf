#pragma once
// Correction term of the NEON kernels' 8-bit activation flip.
//
// With b_a = 8 the NEON kernels multiply (a - 128) (signed) instead of a, so
//   sum_k a_k w_k = sum_k (a_k - 128) w_k + 128 * sum_k w_k,
// where the last sum runs over exactly the k the problem sums: all packed
// taps (packed_weights::col_sum), or only the taps of a tap subset
// (qgemm_problem::tap_idx), summed here from the block's c4-packed weights
// [taps][kg][nr][4]. |128 * sum| <= 128 * 65536 * 128 = 2^30.
#include <cstdint>

#include "mixq/kernels/pack.hpp"
#include "mixq/kernels/problem.hpp"

namespace mixq {
namespace kernels {
namespace detail {
namespace neon_epi {

/// corr[j] = 128 * (sum of the used weights of channel nb0 + j), j < cnt, for
/// the c4 block at `wb` (nr channels per block).
inline void flip_correction(const qgemm_problem& p, const packed_weights& pw, const std::int8_t* wb,
                            std::int32_t nb0, std::int32_t cnt, std::int32_t* corr) noexcept {
  if (!p.tap_idx) {
    for (std::int32_t j = 0; j < cnt; ++j) corr[j] = 128 * pw.col_sum[nb0 + j];
    return;
  }
  const std::int32_t nr = pw.nr, kg = pw.kg;
  for (std::int32_t j = 0; j < cnt; ++j) corr[j] = 0;
  for (std::int32_t t = 0; t < p.taps; ++t) {
    const std::int8_t* wt = wb + std::int64_t(packed_tap(p, t)) * kg * nr * 4;
    for (std::int32_t g = 0; g < kg; ++g)
      for (std::int32_t j = 0; j < cnt; ++j)
        for (int q = 0; q < 4; ++q) corr[j] += wt[(std::int64_t(g) * nr + j) * 4 + q];
  }
  for (std::int32_t j = 0; j < cnt; ++j) corr[j] *= 128;
}

}  // namespace neon_epi
}  // namespace detail
}  // namespace kernels
}  // namespace mixq
