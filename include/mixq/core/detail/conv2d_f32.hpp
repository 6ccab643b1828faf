#pragma once
// FP32 NHWC convolution as an implicit GEMM with register-tiled micro-kernels.
//
// Math (one image; P = OH*OW output pixels, K = KH*KW*C):
//   forward      y[p, co]  = b[co] + sum_k A[p, k] * w[co, k]
//   backward-in  dA[p, k]  = sum_co dy[p, co] * w[co, k]     (then col2im)
//   backward-w   dw[co, k] = sum_p dy[p, co] * A[p, k]
// with w in OHWI order ([Cout][KH][KW][C]), k = (kh*KW + kw)*C + c, and
// A[p, k] = xpad[oh*s + kh][ow*s + kw][c] over the zero-padded input.
//
// Why no im2col. In NHWC, for a fixed kernel row kh the KW*C values a pixel
// needs are one contiguous run of the padded input row (any stride). So the
// micro-kernels read A straight from a per-image padded copy of the input
// (Hp*Wp*C floats, ~74 KB for ResNet20 stage 1: it stays in L2) through a
// pointer per kernel row, and nothing of size 9*C*P is ever written.
//
// Tiles. Vectors of W = xsimd::batch<float>::size lanes (16 with AVX-512).
//   forward:     MR pixels x NV*W output channels; per k one load of the
//                packed weights per vector and one broadcast per pixel.
//   backward-in: MR pixels x NV*W columns of one kernel row segment (KW*C);
//                the tile is added into the padded input gradient.
//   backward-w:  MK columns of A x NV*W output channels, summed over all
//                pixels of the image into a per-thread [K][Cp] partial.
// Work is split over images (OpenMP in the op driver, autograd/ops/conv2d.hpp);
// these functions are single-threaded, noexcept and allocate nothing.
#include <cstdint>
#include <cstring>

#include <xsimd/xsimd.hpp>

#include "mixq/error.hpp"
#include "mixq/util/math.hpp"

// The kernels' code depends on the vector width the including TU is compiled
// for, so they live in an inline namespace named after it: two TUs built for
// different ISAs (say AVX2 and AVX-512) get distinct symbols instead of one
// ODR-merged definition that could execute AVX-512 code on the AVX2 path.
#if defined(__AVX512F__)
#define MIXQ_F32_ISA_NS isa_avx512f
#elif defined(__AVX2__) && defined(__FMA__)
#define MIXQ_F32_ISA_NS isa_avx2_fma
#elif defined(__AVX__)
#define MIXQ_F32_ISA_NS isa_avx
#elif defined(__ARM_NEON)
#define MIXQ_F32_ISA_NS isa_neon
#else
#define MIXQ_F32_ISA_NS isa_baseline
#endif

namespace mixq {
namespace detail {
namespace conv {
inline namespace MIXQ_F32_ISA_NS {

using vf = xsimd::batch<float>;
constexpr int lanes = static_cast<int>(vf::size);
// Pixel rows per tile: 8 with 32 vector registers (AVX-512), else 4.
constexpr int tile_rows = lanes >= 16 ? 8 : 4;
constexpr int max_nv = 2;

// Broadcast a scalar (GCC folds it into the FMA as an embedded-broadcast
// memory operand, {1to16}, which measured as fast as a separate broadcast).
inline vf splat(const float* p) noexcept { return vf(*p); }

struct geom {
  int64_t n, h, w, c;    // input NHWC
  int64_t cout, kh, kw;  // weight OHWI
  int64_t stride, pad;
  int64_t oh, ow;   // output spatial size
  int64_t hp, wp;   // padded input size
  int64_t k;        // kh*kw*c
  int64_t seg;      // kw*c (one kernel row)
  int64_t seg_pad;  // seg rounded up to lanes
  int64_t cp;       // cout rounded up to lanes
  int64_t img_in() const { return h * w * c; }
  int64_t img_out() const { return oh * ow * cout; }
  int64_t img_pad() const { return hp * wp * c; }
};

inline geom make_geom(int64_t n, int64_t h, int64_t w, int64_t c, int64_t cout, int64_t kh,
                      int64_t kw, int64_t stride, int64_t pad) {
  geom g{};
  g.n = n;
  g.h = h;
  g.w = w;
  g.c = c;
  g.cout = cout;
  g.kh = kh;
  g.kw = kw;
  g.stride = stride;
  g.pad = pad;
  g.hp = h + 2 * pad;
  g.wp = w + 2 * pad;
  g.oh = (g.hp - kh) / stride + 1;
  g.ow = (g.wp - kw) / stride + 1;
  g.k = kh * kw * c;
  g.seg = kw * c;
  g.seg_pad = round_up(g.seg, lanes);
  g.cp = round_up(cout, lanes);
  return g;
}

// Copy image x (h*w*c) into xp (hp*wp*c) with zero borders.
inline void pad_image(const geom& g, const float* x, float* xp) noexcept {
  const int64_t rowp = g.wp * g.c, row = g.w * g.c;
  if (g.pad == 0) {
    std::memcpy(xp, x, static_cast<size_t>(g.img_in()) * sizeof(float));
    return;
  }
  std::memset(xp, 0, static_cast<size_t>(g.pad * rowp) * sizeof(float));
  for (int64_t i = 0; i < g.h; ++i) {
    float* d = xp + (i + g.pad) * rowp;
    std::memset(d, 0, static_cast<size_t>(g.pad * g.c) * sizeof(float));
    std::memcpy(d + g.pad * g.c, x + i * row, static_cast<size_t>(row) * sizeof(float));
    std::memset(d + g.pad * g.c + row, 0, static_cast<size_t>(g.pad * g.c) * sizeof(float));
  }
  std::memset(xp + (g.h + g.pad) * rowp, 0, static_cast<size_t>(g.pad * rowp) * sizeof(float));
}

// Pack w [cout][k] into wf [k][cp] (forward layout, zero padded columns).
inline void pack_w_forward(const geom& g, const float* w, float* wf) noexcept {
  for (int64_t k = 0; k < g.k; ++k) {
    float* d = wf + k * g.cp;
    for (int64_t co = 0; co < g.cout; ++co) d[co] = w[co * g.k + k];
    for (int64_t co = g.cout; co < g.cp; ++co) d[co] = 0.0f;
  }
}
// Pack w [cout][kh][seg] into wb [kh][cout][seg_pad] (backward-input layout).
inline void pack_w_backward(const geom& g, const float* w, float* wb) noexcept {
  for (int64_t r = 0; r < g.kh; ++r)
    for (int64_t co = 0; co < g.cout; ++co) {
      float* d = wb + (r * g.cout + co) * g.seg_pad;
      std::memcpy(d, w + co * g.k + r * g.seg, static_cast<size_t>(g.seg) * sizeof(float));
      for (int64_t j = g.seg; j < g.seg_pad; ++j) d[j] = 0.0f;
    }
}

// Store or add n (<= lanes) floats of v at p.
template <bool Add>
inline void put(float* p, const vf& v, int64_t n) noexcept {
  if (n >= lanes) {
    if (Add)
      (vf::load_unaligned(p) + v).store_unaligned(p);
    else
      v.store_unaligned(p);
  } else if (n > 0) {
    alignas(64) float tmp[lanes];
    v.store_aligned(tmp);
    for (int64_t i = 0; i < n; ++i) p[i] = Add ? p[i] + tmp[i] : tmp[i];
  }
}

// ---- forward tile --------------------------------------------------------
// a: padded input at (row oh*s, col ow0*s); pixel r reads a + r*rstep + kh*khstep.
// wf: packed weights at column co0; bias: padded bias at co0 (or nullptr).
// y: output at pixel ow0, column co0 (row stride ldy); ncols valid columns.
template <int MR, int NV, bool Add>
inline void fwd_tile(const geom& g, const float* a, const float* wf, const float* bias, float* y,
                     int64_t ldy, int64_t ncols) noexcept {
  const int64_t rstep = g.stride * g.c, khstep = g.wp * g.c, seg = g.seg, ldb = g.cp;
  vf acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = bias ? vf::load_aligned(bias + v * lanes) : vf(0.0f);
  for (int64_t kh = 0; kh < g.kh; ++kh) {
    const float* ak = a + kh * khstep;
    const float* bk = wf + kh * seg * ldb;
    for (int64_t k = 0; k < seg; ++k) {
      vf b[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) b[v] = vf::load_aligned(bk + k * ldb + v * lanes);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        vf av = splat(ak + r * rstep + k);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = xsimd::fma(av, b[v], acc[r][v]);
      }
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) put<Add>(y + r * ldy + v * lanes, acc[r][v], ncols - v * lanes);
}

template <int NV, bool Add>
inline void fwd_tile_rows(int mr, const geom& g, const float* a, const float* wf, const float* bias,
                          float* y, int64_t ldy, int64_t ncols) noexcept {
  switch (mr) {
    case 8:
      fwd_tile<8, NV, Add>(g, a, wf, bias, y, ldy, ncols);
      break;
    case 7:
      fwd_tile<7, NV, Add>(g, a, wf, bias, y, ldy, ncols);
      break;
    case 6:
      fwd_tile<6, NV, Add>(g, a, wf, bias, y, ldy, ncols);
      break;
    case 5:
      fwd_tile<5, NV, Add>(g, a, wf, bias, y, ldy, ncols);
      break;
    case 4:
      fwd_tile<4, NV, Add>(g, a, wf, bias, y, ldy, ncols);
      break;
    case 3:
      fwd_tile<3, NV, Add>(g, a, wf, bias, y, ldy, ncols);
      break;
    case 2:
      fwd_tile<2, NV, Add>(g, a, wf, bias, y, ldy, ncols);
      break;
    default:
      fwd_tile<1, NV, Add>(g, a, wf, bias, y, ldy, ncols);
      break;
  }
}

// One image: xp padded input, y output (oh*ow*cout).
// accumulate: add into y instead of overwriting it.
template <bool Add>
inline void forward_image_impl(const geom& g, const float* xp, const float* wf, const float* bias,
                               float* y) noexcept {
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    for (int64_t ow0 = 0; ow0 < g.ow; ow0 += tile_rows) {
      int mr = static_cast<int>(g.ow - ow0 < tile_rows ? g.ow - ow0 : tile_rows);
      const float* a = xp + (oh * g.stride * g.wp + ow0 * g.stride) * g.c;
      float* yt = y + (oh * g.ow + ow0) * g.cout;
      for (int64_t co0 = 0; co0 < g.cp; co0 += max_nv * lanes) {
        const float* bb = bias ? bias + co0 : nullptr;
        int64_t ncols = g.cout - co0;
        if (g.cp - co0 >= 2 * lanes)
          fwd_tile_rows<2, Add>(mr, g, a, wf + co0, bb, yt + co0, g.cout, ncols);
        else
          fwd_tile_rows<1, Add>(mr, g, a, wf + co0, bb, yt + co0, g.cout, ncols);
      }
    }
  }
}

inline void forward_image(const geom& g, const float* xp, const float* wf, const float* bias,
                          float* y, bool accumulate = false) noexcept {
  if (accumulate)
    forward_image_impl<true>(g, xp, wf, bias, y);
  else
    forward_image_impl<false>(g, xp, wf, bias, y);
}

// ---- backward-input as a forward convolution (stride 1) ------------------
// For stride 1, dx = conv(dy zero-padded by KH-1-pad, w') with the flipped,
// transposed kernel w'[c][kh][kw][co] = w[co][KH-1-kh][KW-1-kw][c]. This
// runs the forward micro-kernel (the whole reduction in registers, no
// read-modify-write of a padded input gradient).
inline bool backward_input_as_forward(const geom& g) {
  return g.stride == 1 && g.kh == g.kw && g.pad <= g.kh - 1;
}
inline geom transposed_geom(const geom& g) {
  return make_geom(g.n, g.oh, g.ow, g.cout, g.c, g.kh, g.kw, 1, g.kh - 1 - g.pad);
}
// Pack w' into the forward layout of transposed_geom(g): [kh][kw][co] x cp'.
inline void pack_w_transposed(const geom& g, const float* w, float* wt) noexcept {
  const geom gt = transposed_geom(g);
  for (int64_t kh = 0; kh < g.kh; ++kh)
    for (int64_t kw = 0; kw < g.kw; ++kw)
      for (int64_t co = 0; co < g.cout; ++co) {
        float* d = wt + ((kh * g.kw + kw) * g.cout + co) * gt.cp;
        const float* src = w + ((co * g.kh + (g.kh - 1 - kh)) * g.kw + (g.kw - 1 - kw)) * g.c;
        for (int64_t c = 0; c < g.c; ++c) d[c] = src[c];
        for (int64_t c = g.c; c < gt.cp; ++c) d[c] = 0.0f;
      }
}

// ---- backward-input tile ---------------------------------------------------
// dy: output gradient at pixel ow0 (row stride ldy = cout).
// wb: packed weights of kernel row kh at column j0 (row stride seg_pad).
// d: padded input gradient at (oh*s+kh, ow0*s) + j0; pixel r adds at d + r*rstep.
template <int MR, int NV>
inline void bwd_in_tile(const geom& g, const float* dy, const float* wb, float* d,
                        int64_t ncols) noexcept {
  const int64_t rstep = g.stride * g.c, ldy = g.cout, ldb = g.seg_pad;
  vf acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = vf(0.0f);
  for (int64_t co = 0; co < g.cout; ++co) {
    vf b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = vf::load_aligned(wb + co * ldb + v * lanes);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      vf av = splat(dy + r * ldy + co);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = xsimd::fma(av, b[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) put<true>(d + r * rstep + v * lanes, acc[r][v], ncols - v * lanes);
}

template <int NV>
inline void bwd_in_tile_rows(int mr, const geom& g, const float* dy, const float* wb, float* d,
                             int64_t ncols) noexcept {
  switch (mr) {
    case 8:
      bwd_in_tile<8, NV>(g, dy, wb, d, ncols);
      break;
    case 7:
      bwd_in_tile<7, NV>(g, dy, wb, d, ncols);
      break;
    case 6:
      bwd_in_tile<6, NV>(g, dy, wb, d, ncols);
      break;
    case 5:
      bwd_in_tile<5, NV>(g, dy, wb, d, ncols);
      break;
    case 4:
      bwd_in_tile<4, NV>(g, dy, wb, d, ncols);
      break;
    case 3:
      bwd_in_tile<3, NV>(g, dy, wb, d, ncols);
      break;
    case 2:
      bwd_in_tile<2, NV>(g, dy, wb, d, ncols);
      break;
    default:
      bwd_in_tile<1, NV>(g, dy, wb, d, ncols);
      break;
  }
}

// One image: dy (oh*ow*cout) -> dxp (hp*wp*c, must be zeroed by the caller).
inline void backward_input_image(const geom& g, const float* dy, const float* wb,
                                 float* dxp) noexcept {
  for (int64_t oh = 0; oh < g.oh; ++oh) {
    for (int64_t ow0 = 0; ow0 < g.ow; ow0 += tile_rows) {
      int mr = static_cast<int>(g.ow - ow0 < tile_rows ? g.ow - ow0 : tile_rows);
      const float* dyt = dy + (oh * g.ow + ow0) * g.cout;
      for (int64_t kh = 0; kh < g.kh; ++kh) {
        float* d = dxp + ((oh * g.stride + kh) * g.wp + ow0 * g.stride) * g.c;
        const float* wk = wb + kh * g.cout * g.seg_pad;
        for (int64_t j0 = 0; j0 < g.seg_pad; j0 += max_nv * lanes) {
          int64_t ncols = g.seg - j0;
          if (g.seg_pad - j0 >= 2 * lanes)
            bwd_in_tile_rows<2>(mr, g, dyt, wk + j0, d + j0, ncols);
          else
            bwd_in_tile_rows<1>(mr, g, dyt, wk + j0, d + j0, ncols);
        }
      }
    }
  }
}

// ---- backward-weight tile --------------------------------------------------
// Sums over all pixels p of one image:
//   dwp[kh*seg + j0 + j][co0 + lane] += sum_p xp[off[p] + kh*wp*c + j0 + j] * dy[p][co0 + lane]
// off[p] = (oh*s*wp + ow*s)*c is the pixel's offset in the padded image (one
// flat loop over all pixels: no short inner loops for small maps). dy has row
// stride ldd (>= co0 + NV*lanes readable floats per row).
template <int MK, int NV>
inline void bwd_w_tile(const geom& g, const float* xp, const float* dy, int64_t ldd,
                       const int32_t* off, int64_t kh, int64_t j0, int64_t co0,
                       float* dwp) noexcept {
  vf acc[MK][NV];
#pragma GCC unroll 16
  for (int j = 0; j < MK; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[j][v] = vf(0.0f);
  const float* base = xp + kh * g.wp * g.c + j0;
  const float* drow = dy + co0;
  const int64_t np = g.oh * g.ow;
  for (int64_t p = 0; p < np; ++p) {
    const float* a = base + off[p];
    const float* dd = drow + p * ldd;
    vf b[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) b[v] = vf::load_unaligned(dd + v * lanes);
#pragma GCC unroll 16
    for (int j = 0; j < MK; ++j) {
      vf av = splat(a + j);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[j][v] = xsimd::fma(av, b[v], acc[j][v]);
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < MK; ++j) {
    float* d = dwp + (kh * g.seg + j0 + j) * g.cp + co0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      (vf::load_aligned(d + v * lanes) + acc[j][v]).store_aligned(d + v * lanes);
  }
}

// Columns per weight-gradient tile: 16 accumulators (32 vector registers) or
// 8 (16 registers), i.e. 16 columns for one output-channel vector, 8 for two.
constexpr int wtile_acc = lanes >= 16 ? 16 : 8;

template <int NV>
inline void bwd_w_tile_cols(int mk, const geom& g, const float* xp, const float* dy, int64_t ldd,
                            const int32_t* off, int64_t kh, int64_t j0, int64_t co0,
                            float* dwp) noexcept {
#define MIXQ_BWDW_CASE(M)                                     \
  case M:                                                     \
    bwd_w_tile<M, NV>(g, xp, dy, ldd, off, kh, j0, co0, dwp); \
    break
  switch (mk) {
    MIXQ_BWDW_CASE(16);
    MIXQ_BWDW_CASE(15);
    MIXQ_BWDW_CASE(14);
    MIXQ_BWDW_CASE(13);
    MIXQ_BWDW_CASE(12);
    MIXQ_BWDW_CASE(11);
    MIXQ_BWDW_CASE(10);
    MIXQ_BWDW_CASE(9);
    MIXQ_BWDW_CASE(8);
    MIXQ_BWDW_CASE(7);
    MIXQ_BWDW_CASE(6);
    MIXQ_BWDW_CASE(5);
    MIXQ_BWDW_CASE(4);
    MIXQ_BWDW_CASE(3);
    MIXQ_BWDW_CASE(2);
    default:
      bwd_w_tile<1, NV>(g, xp, dy, ldd, off, kh, j0, co0, dwp);
      break;
  }
#undef MIXQ_BWDW_CASE
}

// Pixel offsets for bwd_w_tile: off[oh*ow_n + ow] = (oh*s*wp + ow*s)*c.
inline void pixel_offsets(const geom& g, int32_t* off) noexcept {
  for (int64_t oh = 0; oh < g.oh; ++oh)
    for (int64_t ow = 0; ow < g.ow; ++ow)
      off[oh * g.ow + ow] = static_cast<int32_t>((oh * g.stride * g.wp + ow * g.stride) * g.c);
}

// One image: accumulate into dwp [k][cp]. dy rows have stride ldd and at
// least cp readable floats (the caller pads dy when cout % lanes != 0).
inline void backward_weight_image(const geom& g, const float* xp, const float* dy, int64_t ldd,
                                  const int32_t* off, float* dwp) noexcept {
  for (int64_t co0 = 0; co0 < g.cp; co0 += max_nv * lanes) {
    const bool two = g.cp - co0 >= 2 * lanes;
    const int64_t cols = two ? wtile_acc / 2 : wtile_acc;
    for (int64_t kh = 0; kh < g.kh; ++kh) {
      // Split the kernel row into tiles of at most `cols` columns, as even as possible.
      const int64_t ntiles = (g.seg + cols - 1) / cols;
      for (int64_t ti = 0; ti < ntiles; ++ti) {
        const int64_t j0 = g.seg * ti / ntiles, j1 = g.seg * (ti + 1) / ntiles;
        const int mk = static_cast<int>(j1 - j0);
        if (two)
          bwd_w_tile_cols<2>(mk, g, xp, dy, ldd, off, kh, j0, co0, dwp);
        else
          bwd_w_tile_cols<1>(mk, g, xp, dy, ldd, off, kh, j0, co0, dwp);
      }
    }
  }
}

}  // namespace MIXQ_F32_ISA_NS
}  // namespace conv
}  // namespace detail
}  // namespace mixq
