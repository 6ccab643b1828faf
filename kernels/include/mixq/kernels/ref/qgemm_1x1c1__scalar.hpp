#pragma once
// Scalar reference qgemm: the test oracle and the fallback. Always built.
//
//   C[m][n] = sum_{t<taps} sum_{c<k_seg} A[pix_off[m] + tap_off[t] + c] * W[n][t][c]
//
// accumulated in int64 (then narrowed to int32, which the K bound guarantees
// is exact), followed by the scalar epilogue of requant.hpp. Weights are the
// verbatim int8 codes [N][taps][k_seg] (kernel scalar_1x1c1). Reads no byte
// outside the addressed activations (no over-read).
#include <cstdint>

#include "mixq/kernels/pack.hpp"
#include "mixq/kernels/requant.hpp"
#include "mixq/kernels/problem.hpp"

namespace mixq {
namespace kernels {
namespace ref {

inline void qgemm_range(const qgemm_problem& p, const packed_weights& pw, const epilogue& ep,
                        std::int64_t m0, std::int64_t m1, std::int32_t n0,
                        std::int32_t n1) noexcept {
  const std::int8_t* w = reinterpret_cast<const std::int8_t*>(pw.data.data());
  const std::int32_t taps = pw.taps, k_seg = pw.k_seg, nt = used_taps(p, taps);
  std::int32_t acc[64];
  for (std::int64_t m = m0; m < m1; ++m) {
    const std::uint8_t* row = p.a + p.pix_off[m];
    for (std::int32_t nc = n0; nc < n1; nc += 64) {
      const std::int32_t cnt = (n1 - nc) < 64 ? (n1 - nc) : 64;
      for (std::int32_t j = 0; j < cnt; ++j) {
        const std::int8_t* wn = w + std::int64_t(nc + j) * taps * k_seg;
        std::int64_t s = 0;
        for (std::int32_t t = 0; t < nt; ++t) {
          const std::uint8_t* at = row + (p.tap_off ? p.tap_off[t] : 0);
          const std::int8_t* wt = wn + std::int64_t(packed_tap(p, t)) * k_seg;
          for (std::int32_t c = 0; c < k_seg; ++c) s += std::int64_t(at[c]) * wt[c];
        }
        MIXQ_DASSERT(s >= INT32_MIN && s <= INT32_MAX);
        acc[j] = static_cast<std::int32_t>(s);
      }
      epilogue_row(ep, m, nc, cnt, acc);
    }
  }
}

}  // namespace ref
}  // namespace kernels
}  // namespace mixq
