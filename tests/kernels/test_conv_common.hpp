#pragma once
// Helpers for the convolution/pooling/linear tests: random operands, padded
// buffers with a garbage over-read tail, requant parameters that spread the
// outputs over the whole code range (so the comparison is not all clamps).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <mixq/kernels/conv/qconv.hpp>
#include <mixq/kernels/conv/qconv_ref.hpp>

namespace ctest {

namespace mk = mixq::kernels;

struct rng {
  std::uint64_t s;
  explicit rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 7) {}
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  int uniform(int lo, int hi) {
    return lo + static_cast<int>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
};

inline const mk::isa all_isas[] = {mk::isa::scalar, mk::isa::avx2, mk::isa::avx512, mk::isa::neon,
                                   mk::isa::neon_dotprod};

/// True when `l` runs here; prints a visible skip message otherwise.
inline bool isa_or_skip(mk::isa l, const char* what) {
  if (mk::isa_supported(l)) return true;
  MESSAGE("SKIPPED " << std::string(what) << " for ISA " << std::string(mk::isa_name(l))
                     << ": not available on this CPU/build");
  return false;
}

/// Whether packed weights use the kernel the dispatcher picks for ISA `l`
/// (i.e. forcing the ISA through the pack level worked).
inline bool kernel_is_dispatch_choice(const mk::packed_weights& pw, mk::isa l) {
  return pw.kernel == mk::choose_kernel(l, pw.b_w, pw.b_a, pw.n);
}

/// Prints once per ISA when the dispatcher has no SIMD kernel for it yet,
/// so a run that only exercised the scalar fallback says so.
inline void note_fallback(mk::isa l) {
  if (l != mk::isa::scalar && mk::choose_kernel(l, 4, 4, 32) == mk::kernel_id::scalar_1x1c1)
    MESSAGE("NOTE: no SIMD kernel is registered for ISA "
            << std::string(mk::isa_name(l)) << "; its runs exercise the scalar fallback");
}

inline mk::conv_geometry make_geometry(std::int64_t batch, std::int64_t h, std::int64_t w,
                                       std::int64_t c_in, std::int64_t c_out, int kernel,
                                       int stride) {
  mk::conv_geometry g;
  g.batch = batch;
  g.h = h;
  g.w = w;
  g.c_in = c_in;
  g.c_out = c_out;
  g.kernel = kernel;
  g.stride = stride;
  return g;
}

/// Unpadded NHWC codes -> padded buffer [b][h+2][w+2][c] with halo `halo`
/// and an over-read tail of garbage (0xFF) that must never change a result.
inline std::vector<std::uint8_t> make_padded(
    const std::vector<std::uint8_t>& x, std::int64_t b, std::int64_t h, std::int64_t w,
    std::int64_t c, std::uint8_t halo, std::int64_t extra = std::int64_t(mk::a_overread_bytes)) {
  const std::int64_t wp = w + 2, hp = h + 2;
  std::vector<std::uint8_t> p(static_cast<size_t>(b * hp * wp * c + extra), 0xFF);
  for (std::int64_t i = 0; i < b; ++i)
    for (std::int64_t y = 0; y < hp; ++y)
      for (std::int64_t xx = 0; xx < wp; ++xx)
        for (std::int64_t ch = 0; ch < c; ++ch) {
          const bool inside = y >= 1 && y <= h && xx >= 1 && xx <= w;
          p[static_cast<size_t>(((i * hp + y) * wp + xx) * c + ch)] =
              inside ? x[static_cast<size_t>(((i * h + y - 1) * w + xx - 1) * c + ch)] : halo;
        }
  return p;
}

/// Per-channel requant parameters scaled to the accumulator range of a
/// reduction of depth k with (bw, ba) codes, outputs of b_out bits.
struct requant_set {
  std::vector<std::int32_t> bias, qm, rshift, res_qm;
  std::int32_t zp = 0, lo = 0, hi = 255;
};

inline int floor_log2(std::int64_t v) {
  int l = 0;
  while (v > 1) {
    v >>= 1;
    ++l;
  }
  return l;
}

inline requant_set make_requant(std::int64_t n, std::int64_t k, int bw, int ba, int b_out, rng& r) {
  requant_set q;
  const std::int64_t acc_max = k * ((1 << ba) - 1) * (1 << (bw - 1));
  const int L = floor_log2(acc_max);
  q.zp = r.uniform(0, 3);
  q.lo = 0;
  q.hi = (1 << b_out) - 1;
  for (std::int64_t j = 0; j < n; ++j) {
    q.bias.push_back(r.uniform(-1000, 1000));
    q.qm.push_back(static_cast<std::int32_t>((1u << 30) + (r.next() % (1u << 30))));
    int sh = L + 28 - b_out + r.uniform(-2, 1);
    if (sh < 1) sh = 1;
    if (sh > 62) sh = 62;
    q.rshift.push_back(sh);
    // residual weight: a code step of the residual moves the output by ~0.25..2 steps
    std::int64_t rq = (std::int64_t(1) << sh) / (1 << r.uniform(0, 3));
    rq = rq * (r.uniform(0, 1) ? 1 : -1) / 2 + r.uniform(-5, 5);
    if (rq > INT32_MAX) rq = INT32_MAX;
    if (rq < INT32_MIN) rq = INT32_MIN;
    q.res_qm.push_back(static_cast<std::int32_t>(rq));
  }
  return q;
}

inline std::vector<std::uint8_t> random_codes(std::int64_t count, int bits, rng& r) {
  std::vector<std::uint8_t> v(static_cast<size_t>(count));
  for (auto& e : v) e = static_cast<std::uint8_t>(r.uniform(0, (1 << bits) - 1));
  return v;
}

inline std::vector<std::int8_t> random_weights(std::int64_t count, int bits, rng& r) {
  std::vector<std::int8_t> v(static_cast<size_t>(count));
  for (auto& e : v)
    e = static_cast<std::int8_t>(r.uniform(-(1 << (bits - 1)), (1 << (bits - 1)) - 1));
  return v;
}

}  // namespace ctest
