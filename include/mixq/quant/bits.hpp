#pragma once
// Bit-widths, integer code ranges and the rounding rule shared by every
// quantizer of mixq/quant.
//
// Bit-widths are run-time integers in [2, 8] (min_bits, max_bits): the
// integer kernels run every pair (b_w, b_a) in that square. A learned
// bit-width (AdaQAT) is a real number N in [2, 8] that the quantizers use as
// ceil(N) (ceil_bits: exact at integers, so N = 4.0 runs 4 bits and
// N = 4.0001 runs 5).
//
// Code ranges (kernels/qgemm.hpp): activations are unsigned codes
// 0 .. 2^b - 1 with zero point 0 (the network input alone has a non-zero
// zero point, quant/input_quant.hpp); weights are signed two's-complement
// codes -2^(b-1) .. 2^(b-1) - 1, or the symmetric subset
// -(2^(b-1) - 1) .. 2^(b-1) - 1 (weight_range::symmetric), whose negation
// stays in range (docs/quantization.md: a batch norm with a negative scale).
//
// Rounding: round to nearest, ties to even (std::nearbyint in the default
// rounding mode), which compilers vectorise. Ties have measure zero for
// trained activations and weights; where an export must agree exactly (the
// network input's code table, weight codes) it calls these same functions.
//
// Reductions (sums of gradients over a tensor) run in fixed chunks whose
// partial sums are added in chunk order, so every result is bitwise the same
// for any number of threads (a checkpointed run resumes bit-identically).
#include <cmath>
#include <cstdint>

#include "mixq/error.hpp"

namespace mixq {
namespace quant {

constexpr int min_bits = 2;
constexpr int max_bits = 8;

// requires: b in [min_bits, max_bits]; otherwise throws naming `what`.
inline void check_bits(int b, const char* what) {
  MIXQ_CHECK(b >= min_bits && b <= max_bits, what, " = ", b,
             " bits: expected an integer bit-width in [", min_bits, ", ", max_bits, "]");
}

// The integer bit-width a real-valued N runs at: ceil(N), exact at integers.
inline int ceil_bits(double n) { return static_cast<int>(std::ceil(n)); }

enum class weight_range {
  full,       // -2^(b-1) .. 2^(b-1) - 1 (the kernels' full signed range)
  symmetric,  // -(2^(b-1) - 1) .. 2^(b-1) - 1 (closed under negation)
};

// Signed code range [-qn, qp] of b-bit weights.
struct signed_range {
  int qn, qp;
};
inline signed_range weight_codes(int b, weight_range r) {
  const int qp = (1 << (b - 1)) - 1;
  return {r == weight_range::full ? qp + 1 : qp, qp};
}
// Largest unsigned activation code, 2^b - 1.
inline int act_max_code(int b) { return (1 << b) - 1; }
// Number of steps of a b-bit grid, 2^b - 1 (DoReFa's and PACT's denominator).
inline int grid_steps(int b) { return (1 << b) - 1; }

inline float round_code(float v) { return std::nearbyint(v); }

namespace detail {
// Fixed chunking for ordered reductions: at most max_chunks chunks of at
// least min_chunk elements; depends only on n.
constexpr int64_t max_chunks = 512;
constexpr int64_t min_chunk = 8192;
inline int64_t chunk_size(int64_t n) {
  int64_t c = (n + max_chunks - 1) / max_chunks;
  return c < min_chunk ? min_chunk : c;
}

// Straight-through mask: dx = (lo <= x * inv <= hi ? dy : 0), written or
// added (acc). Scalars by value and restrict pointers, so it vectorises.
inline void ste_pass(const float* __restrict x, const float* __restrict dy, float* __restrict dx,
                     int64_t n, float inv, float lo, float hi, bool acc) {
  if (acc) {
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i] * inv;
      dx[i] += (v >= lo && v <= hi) ? dy[i] : 0.0f;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float v = x[i] * inv;
      dx[i] = (v >= lo && v <= hi) ? dy[i] : 0.0f;
    }
  }
}

// The LSQ step gradient sum over n elements (before the gradient scale):
//   sum dy * (v <= -qn ? -qn : v >= qp ? qp : round(v) - v),  v = x * inv
// in 16 float lanes (vectorisable without reassociation), added in double.
inline double lsq_step_sum(const float* __restrict x, const float* __restrict dy, int64_t n,
                           float inv, float qn, float qp) {
  constexpr int L = 16;
  float acc[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int j = 0; j < L; ++j) {
      const float v = x[i + j] * inv;
      const float d = v <= -qn ? -qn : (v >= qp ? qp : round_code(v) - v);
      acc[j] += dy[i + j] * d;
    }
  double s = 0.0;
  for (; i < n; ++i) {
    const float v = x[i] * inv;
    const float d = v <= -qn ? -qn : (v >= qp ? qp : round_code(v) - v);
    s += static_cast<double>(dy[i] * d);
  }
  for (int j = 0; j < L; ++j) s += static_cast<double>(acc[j]);
  return s;
}

// sum over [0, n) of the per-chunk results f(i0, i1) (each a double), the
// chunks run in parallel and are added in chunk order. NPART sums at once
// (f fills out[0..NPART)).
template <int NPART, class F>
inline void ordered_sums(int64_t n, double* result, F f) {
  const int64_t cs = chunk_size(n);
  const int64_t nchunks = n > 0 ? (n + cs - 1) / cs : 0;
  double parts[max_chunks][NPART];
#pragma omp parallel for schedule(static) if (nchunks > 1 && n > 65536)
  for (int64_t c = 0; c < nchunks; ++c) {
    const int64_t i0 = c * cs, i1 = i0 + cs < n ? i0 + cs : n;
    f(i0, i1, parts[c]);
  }
  for (int k = 0; k < NPART; ++k) result[k] = 0.0;
  for (int64_t c = 0; c < nchunks; ++c)
    for (int k = 0; k < NPART; ++k) result[k] += parts[c][k];
}
}  // namespace detail

}  // namespace quant
}  // namespace mixq
