#pragma once
// Scalar twin of the LUT6 family (kernel scalar_bitplane_1x1c1): the same
// operands (index planes, packed bit-plane weights), int64 sums straight from
// the codes, the requant.hpp rule. The fallback where the AVX-512 kernel
// cannot run, and the oracle its tests compare against.
#include <cstdint>

#include "mixq/kernels/bitplane/format.hpp"
#include "mixq/kernels/bitplane/pack.hpp"
#include "mixq/kernels/requant.hpp"

namespace mixq {
namespace kernels {

namespace ref {

/// Scalar twin of the LUT6 kernel: same operands (index planes), int64 sums,
/// the requant.hpp epilogue (raw, u8 NHWC without residual) and/or the
/// bit-plane output. Rows [m0, m1), channels [n0, n1) (n1 < 0: all; with a
/// bit-plane output n0 and n1 must be multiples of the output's codes per byte,
/// or n1 = n, so that every written index byte is complete).
inline void qgemm_bitplane_range(const bitplane_problem& p, const bitplane_weights& pw,
                                 const epilogue& ep, const bitplane_output* bo, std::int64_t m0,
                                 std::int64_t m1, std::int32_t n0 = 0,
                                 std::int32_t n1 = -1) noexcept {
  if (n1 < 0) n1 = pw.n;
  auto acc_of = [&](std::int64_t m, std::int32_t c) {
    std::int64_t s = 0;
    for (std::int32_t t = 0; t < pw.taps; ++t) {
      if (bitplane_masked(p, m, t)) continue;
      const std::int64_t o = p.pix_off[m] + (p.tap_off ? p.tap_off[t] : 0);
      for (std::int32_t k = 0; k < pw.k_seg; ++k)
        s += std::int64_t(bitplane_code_at(p.a, o, p.group_stride, k, pw.b_a)) *
             pw.codes[(std::int64_t(c) * pw.taps + t) * pw.k_seg + k];
    }
    return static_cast<std::int32_t>(s);
  };
  for (std::int64_t m = m0; m < m1; ++m) {
    if (ep.out_i32 || ep.out)
      for (std::int32_t c = n0; c < n1; ++c) {
        const std::int32_t a = acc_of(m, c);
        epilogue_row(ep, m, c, 1, &a);
      }
    if (!bo) continue;
    const int cpo = bitplane_cpb(bo->b_out);
    for (std::int32_t go = n0 / cpo; go < bitplane_groups(n1, bo->b_out); ++go) {
      std::uint8_t codes[3] = {0, 0, 0};
      const int cnt = (n1 - cpo * go) < cpo ? n1 - cpo * go : cpo;
      for (int j = 0; j < cnt; ++j) {
        const std::int32_t c = cpo * go + j;
        const std::int32_t r = bitplane_res_code(*bo, m, c);
        codes[j] = requant_one(acc_of(m, c) + (ep.bias ? ep.bias[c] : 0), ep.qm[c], ep.rshift[c],
                               ep.zp_out, ep.lo, ep.hi, r, bo->res && ep.res_qm ? ep.res_qm[c] : 0,
                               ep.offset ? ep.offset[c] : 0);
      }
      bo->base[bo->pix_off[m] + go * bo->group_stride] = bitplane_index_byte(codes, cnt, bo->b_out);
    }
  }
}

}  // namespace ref

}  // namespace kernels
}  // namespace mixq
