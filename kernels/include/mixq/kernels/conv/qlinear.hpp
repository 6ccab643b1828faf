#pragma once
// Integer fully connected layer (ResNet's final classifier) on qgemm.
//
// Math:
//   x    uint8 codes [batch][K], row stride ld_x bytes (>= K), zero point 0
//   w    int8 [N][K] signed b_w-bit codes, packed once with
//        pack_weights(w, N, /*taps=*/1, /*k_seg=*/K, b_w, b_a)
//   acc[i][n] = sum_k x[i][k] * w[n][k]                         (int32)
//   raw : logits[i*ld_out + n] = acc + bias[n]                   (int32)
//   u8  : out[i*ld_out + n] = clamp(zp + rhaz((acc + bias[n]) * qm[n], rshift[n]), lo, hi)
// A 1x1 convolution over `batch` one-pixel images, i.e. a plain GEMM with
// pix_off[i] = i*ld_x. The x buffer must stay readable a_overread_bytes past
// its last row (the micro-kernels read whole 4-byte groups and beyond).
// |acc| <= K*255*128 < 2^31 for K <= 65536 (max_k_total).
// Threading: OpenMP over chunks of rows (offsets on the stack, no allocation);
// each chunk calls the single-threaded qgemm_tile.
// ref::qlinear is the scalar int64 twin (direct loops, only requant_one shared).
#include <cstdint>

#include "mixq/kernels/qgemm.hpp"
#include "mixq/kernels/requant.hpp"

namespace mixq {
namespace kernels {

/// Exactly one of logits (int32) and out (uint8) is used; logits wins.
inline void qlinear(const std::uint8_t* x, std::int64_t batch, std::int64_t ld_x,
                    const packed_weights& pw, const requant_params& rq, std::int32_t* logits,
                    std::uint8_t* out, std::int64_t ld_out) noexcept {
  MIXQ_DASSERT(pw.taps == 1);
  constexpr std::int64_t chunk = 240;
  const std::int64_t nchunks = (batch + chunk - 1) / chunk;
  ::mixq::kernels::detail::record_kernel(pw.name.data());
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) if (nchunks > 1)
#endif
  for (std::int64_t ci = 0; ci < nchunks; ++ci) {
    std::int64_t pix[chunk], opix[chunk];
    const std::int64_t r0 = ci * chunk, cnt = (batch - r0 < chunk) ? batch - r0 : chunk;
    for (std::int64_t j = 0; j < cnt; ++j) {
      pix[j] = (r0 + j) * ld_x;
      opix[j] = (r0 + j) * ld_out;
    }
    qgemm_problem prob;
    prob.m = cnt;
    prob.a = x;
    prob.pix_off = pix;
    epilogue ep;
    ep.bias = rq.bias;
    if (logits) {
      ep.out_i32 = logits + r0 * ld_out;
      ep.ld_i32 = ld_out;
    } else {
      ep = requant_epilogue(rq);
      ep.out = out;
      ep.out_pix_off = opix;
    }
    qgemm_tile(prob, pw, ep, 0, cnt, 0, pw.n);
  }
}

namespace ref {

/// Scalar twin: w is the unpacked int8 [N][K] matrix.
inline void qlinear(const std::uint8_t* x, std::int64_t batch, std::int64_t ld_x,
                    const std::int8_t* w, std::int64_t n_out, std::int64_t k,
                    const requant_params& rq, std::int32_t* logits, std::uint8_t* out,
                    std::int64_t ld_out) noexcept {
  for (std::int64_t i = 0; i < batch; ++i)
    for (std::int64_t n = 0; n < n_out; ++n) {
      std::int64_t s = rq.bias ? rq.bias[n] : 0;
      for (std::int64_t c = 0; c < k; ++c) s += std::int64_t(x[i * ld_x + c]) * w[n * k + c];
      if (logits) {
        logits[i * ld_out + n] = static_cast<std::int32_t>(s);
      } else {
        out[i * ld_out + n] = requant_one(static_cast<std::int32_t>(s), rq.qm[n], rq.rshift[n],
                                          rq.zp, rq.lo, rq.hi, 0, 0, rq.offset ? rq.offset[n] : 0);
      }
    }
}

}  // namespace ref
}  // namespace kernels
}  // namespace mixq
