#pragma once
// Integer NHWC convolution driver on top of the qgemm micro-kernels.
//
// ## Math
//   out[i][oy][ox][n] = requant_n( sum_{dy,dx<K} sum_{c<C_in}
//                         xpad[i][oy*S + dy + (1 - P)][ox*S + dx + (1 - P)][c] * w[n][dy][dx][c]
//                         + bias[n],  residual(i, oy, ox, n) )
// K in {1, 3}, S in {1, 2}, P = K/2 (pad 1 for 3x3, 0 for 1x1),
// OH = (H + 2P - K)/S + 1, OW likewise; requant_n is the one rule of
// kernels/requant.hpp (single rounding, half away from zero, clamp [lo, hi]).
//
// ## Layouts
// - Input: a PADDED NHWC uint8 buffer [batch][H+2][W+2][C_in] (contiguous,
//   pixel stride C_in): interior pixel (y, x) of image i lives at padded
//   (y+1, x+1); the one-pixel halo holds the activation zero point (0 after
//   ReLU) and is provided by the caller (usually written once, since the
//   producing conv only writes the interior). The same buffer layout serves
//   1x1 convs, which read the interior only. The buffer must stay readable
//   for qconv_input_bytes(g) bytes: the padded image plus a_overread_bytes
//   (kernels/common.hpp), because the micro-kernels read whole 4-byte groups
//   (and up to 64 bytes) past the last addressed byte; those bytes only ever
//   meet zero weights.
// - Weights: int8 [C_out][K][K][C_in] (tap-major, channel-minor), signed
//   symmetric b_w-bit codes, packed once by qconv_pack().
// - Output: uint8 NHWC with pixel stride C_out, pixel (oy, ox) of image i at
//   out.data[i*img_stride + oy*row_stride + ox*C_out]. Point out.data at the
//   interior origin of the next layer's padded buffer (img_stride =
//   (OH+2)(OW+2)C_out, row_stride = (OW+2)C_out) to produce its input
//   directly, or use the dense strides. Alternatively raw int32 acc + bias,
//   dense [batch*OH*OW][C_out] (tests, debugging).
// - Residual (optional), added inside the same rounding with res_qm[n]:
//   code(i, oy, ox, n) = res.data[i*img_stride + oy*RS*row_stride + ox*RS*pix_stride + n - ch_lo].
//   Identity shortcut: RS = 1, ch_lo = 0. ResNet option A (stride-2
//   subsample + zero channel padding): RS = 2, ch_lo = C_out/4, RC = C_res
//   channels, and res_qm[n] = 0 for n outside [ch_lo, ch_lo + RC): those
//   lanes read a neighbouring byte of the buffer (inside the padded residual
//   buffer, or within res_overread_bytes past its end) and multiply it by 0.
//   Point res.data at the interior origin of a padded buffer so that
//   n - ch_lo < 0 stays inside the halo.
//
// ## Implicit GEMM (no im2col buffer)
//   M = batch*OH*OW output pixels (flattened over images and rows, so 8x8
//   maps still fill an 8- or 16-row register tile), N = C_out,
//   taps = K*K, k_seg = C_in, tap_off[dy*K+dx] = (dy*Wp + dx)*C_in,
//   pix_off(i, oy, ox) = i*(H+2)*Wp*C_in + (oy*S*Wp + ox*S)*C_in
//   (+ (Wp + 1)*C_in for 1x1, which skips the halo), Wp = W + 2.
//   The 3-channel first layer runs the same 9 taps of k_seg = 3: a packed
//   copy of each pixel's 27-byte patch as one tap (7 k-groups instead of 9)
//   measured slower on Zen 5 (AVX-512 VNNI 90-94 vs 102-107 GOP/s, W8A8,
//   3->16 @ 32x32, 1 thread), the copy costing more than it saves.
//
// ## Border taps
//   Where it saves >= 6 % of the taps (16x16 and smaller maps), a 3x3 conv
//   splits each chunk's pixels into border classes (top row, bottom row,
//   left column, right column, interior) and runs each class with only the
//   taps that stay inside the image (qgemm_problem::tap_idx). Exact, because
//   the halo holds code 0; qconv_weights::skip_border_taps = false disables
//   it. Families without tap subsets (LUT, NEON) run all taps.
//
// ## Threading and memory
//   OpenMP over chunks of output pixels (64..512 pixels, whole images or
//   whole output rows, about 4 chunks per thread); each chunk builds its
//   offset arrays on the stack and calls qgemm_tile for all channels. With
//   fewer than 2 chunks per thread (small batch-1 maps) the channels are
//   split into NR blocks as well. The micro-kernels stay single-threaded.
//   Nothing is allocated.
//
// ## Overflow
//   |acc| <= 9*C_in*(2^b_a - 1)*2^(b_w-1) <= 9*C_in*32640 (< 2^31 for
//   C_in <= 7300); the caller keeps |acc + bias| < 2^31 (qgemm.hpp).
#include <cstdint>

#include "mixq/kernels/conv/conv_types.hpp"
#include "mixq/kernels/qgemm.hpp"
#include "mixq/kernels/requant.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mixq {
namespace kernels {

/// Bytes the caller allocates for the padded input (image + halo + over-read).
inline std::int64_t qconv_input_bytes(const conv_geometry& g) noexcept {
  return g.batch * (g.h + 2) * (g.w + 2) * g.c_in + std::int64_t(a_overread_bytes);
}

/// Packed weights of one conv layer.
struct qconv_weights {
  packed_weights pw;
  /// Skip the taps of border pixels that fall on the zero halo (3x3, u8
  /// output, families with kernel_supports_tap_subset). Exact: the halo holds
  /// code 0. Off = every pixel sums all 9 taps (benchmarks).
  bool skip_border_taps = true;
  std::int64_t c_in = 0, c_out = 0;
  int kernel = 3;
};

/// Packs w[C_out][K][K][C_in] (int8 b_w-bit codes) for b_a-bit activations,
/// for one given kernel family (benchmarks, tests); see qconv_pack.
/// Throws mixq::error (from pack_weights_for) when the family is not exact
/// for (b_w, b_a) or the codes are out of range.
inline qconv_weights qconv_pack_for(kernel_id id, const conv_geometry& g, const std::int8_t* w,
                                    int b_w, int b_a) {
  qconv_weights q;
  q.c_in = g.c_in;
  q.c_out = g.c_out;
  q.kernel = g.kernel;
  q.pw = pack_weights_for(id, w, static_cast<std::int32_t>(g.c_out), g.kernel * g.kernel,
                          static_cast<std::int32_t>(g.c_in), b_w, b_a);
  return q;
}

/// Packs w[C_out][K][K][C_in] (int8 b_w-bit codes) for b_a-bit activations,
/// for the kernel the dispatcher picks on `level` (default: active_isa(),
/// i.e. CPUID clamped by MIXQ_ISA / set_isa()).
/// Throws mixq::error (from pack_weights) on bad codes/bits.
inline qconv_weights qconv_pack(const conv_geometry& g, const std::int8_t* w, int b_w, int b_a,
                                isa level = isa::automatic) {
  const isa l = level == isa::automatic ? active_isa()
                                        : clamp_isa(::mixq::kernels::detail::state().caps, level);
  return qconv_pack_for(choose_kernel(l, b_w, b_a, static_cast<std::int32_t>(g.c_out)), g, w, b_w,
                        b_a);
}

namespace detail {
constexpr std::int64_t conv_chunk_max = 512;
constexpr std::int64_t conv_chunk_min = 64;  // smaller chunks fragment into partial tiles
/// Output pixels per work item: about 4 items per thread, between
/// conv_chunk_min and conv_chunk_max, and made of whole images (small maps,
/// when that still gives 4 items per thread) or whole output rows, so that
/// the border classes of a chunk are whole rows and columns (fewer partial
/// register tiles). Too few items for the threads: qconv2d also splits the
/// output channels.
inline std::int64_t conv_chunk(std::int64_t pixels, std::int64_t per_img, std::int64_t ow,
                               int threads) noexcept {
  std::int64_t target = (pixels + 4 * threads - 1) / (4 * std::int64_t(threads));
  if (target < conv_chunk_min) target = conv_chunk_min;
  auto fit = [&](std::int64_t unit) {
    std::int64_t k = (target + unit - 1) / unit, kmax = conv_chunk_max / unit;
    return (k < kmax ? k : kmax) * unit;
  };
  if (per_img <= conv_chunk_max && target >= per_img) return fit(per_img);
  if (ow <= conv_chunk_max) return fit(ow);
  const std::int64_t c = round_up(target, 16);
  return c > conv_chunk_max ? conv_chunk_max : c;
}

/// Border classes of a 3x3 pad-1 conv. Tap (dy, dx) of output pixel (oy, ox)
/// reads input (oy*S + dy - 1, ox*S + dx - 1); kernel rows / columns that
/// fall outside the image meet the zero halo and can be skipped. Class 0:
/// all 9 taps; 1..3: the kernel rows dy in [1,2], [0,1], [1,1] (top row,
/// bottom row, both) with all columns; 4..6: the same for kernel columns
/// with all rows. A pixel clipped in both directions (a corner) goes to its
/// row class, so only 7 classes split a chunk.
constexpr int conv_border_classes = 7;
inline int border_side(std::int64_t o, std::int64_t s, std::int64_t size) noexcept {
  return (o * s - 1 < 0 ? 1 : 0) | (o * s + 1 > size - 1 ? 2 : 0);
}
/// Share of a 3x3 conv's taps that border-tap skipping removes.
inline double border_saving(const conv_geometry& g) noexcept {
  const std::int64_t oh = g.out_h(), ow = g.out_w();
  auto clipped = [](int k) { return k == 3 ? 2 : (k ? 1 : 0); };  // kernel rows/cols dropped
  const int xf = clipped(border_side(0, g.stride, g.w));
  const int xl = ow > 1 ? clipped(border_side(ow - 1, g.stride, g.w)) : 0;
  std::int64_t saved = 0;
  for (std::int64_t oy = 0; oy < oh; ++oy) {
    const int yk = clipped(border_side(oy, g.stride, g.h));
    saved += yk ? 3 * yk * ow : 3 * (xf + xl);
  }
  return double(saved) / double(9 * oh * ow);
}
/// Skipping splits each chunk into up to 7 kernel calls with shorter row
/// runs; measured on Zen 5 (AVX-512, W8A8, batch 128) it pays from about 8 %
/// saved taps (16x16 maps: +3 %, 8x8: +13 %) but not at 4 % (32x32: -3 %).
constexpr double conv_skip_min_saving = 0.06;

struct border_taps {
  std::int32_t n[conv_border_classes];
  std::int32_t idx[conv_border_classes][9];
  std::int64_t off[conv_border_classes][9];
  border_taps(const std::int64_t* tap_off) noexcept {
    for (int c = 0; c < conv_border_classes; ++c) {
      const int yk = c <= 3 ? c : 0, xk = c <= 3 ? 0 : c - 3;
      const int y0 = (yk & 1) ? 1 : 0, y1 = (yk & 2) ? 1 : 2;
      const int x0 = (xk & 1) ? 1 : 0, x1 = (xk & 2) ? 1 : 2;
      n[c] = 0;
      for (int dy = y0; dy <= y1; ++dy)
        for (int dx = x0; dx <= x1; ++dx) {
          idx[c][n[c]] = dy * 3 + dx;
          off[c][n[c]] = tap_off[dy * 3 + dx];
          ++n[c];
        }
    }
  }
};
}  // namespace detail

/// Runs the convolution. `raw` (optional, dense [batch*OH*OW][C_out] int32)
/// takes precedence over the uint8 output; `res` may be nullptr.
/// Preconditions (checked in debug builds): wts was packed by qconv_pack for
/// this geometry; in holds qconv_input_bytes(g) readable bytes.
inline void qconv2d(const conv_geometry& g, const qconv_weights& wts, const std::uint8_t* in,
                    const requant_params& rq, const conv_residual* res, const conv_output& out,
                    std::int32_t* raw = nullptr) noexcept {
  MIXQ_DASSERT(wts.c_in == g.c_in && wts.c_out == g.c_out && wts.kernel == g.kernel);
  MIXQ_DASSERT(g.kernel == 1 || g.kernel == 3);
  MIXQ_DASSERT(g.stride == 1 || g.stride == 2);
  const std::int64_t C = g.c_in, wp = g.w + 2, img = (g.h + 2) * wp * C;
  const std::int64_t oh = g.out_h(), ow = g.out_w(), per_img = oh * ow, P = g.batch * per_img;
  const std::int64_t s = g.stride;
  const std::int64_t base = g.kernel == 1 ? (wp + 1) * C : 0;
  std::int64_t tap_off[9] = {};
  for (int dy = 0; dy < g.kernel; ++dy)
    for (int dx = 0; dx < g.kernel; ++dx) tap_off[dy * g.kernel + dx] = (dy * wp + dx) * C;
  const conv_residual* r = (res && res->data) ? res : nullptr;
  const detail::border_taps bt(tap_off);

  int threads = 1;
#ifdef _OPENMP
  threads = omp_in_parallel() ? 1 : omp_get_max_threads();
#endif
  const std::int64_t chunk = detail::conv_chunk(P, per_img, ow, threads);
  // Border-tap skipping needs chunks of whole output rows (conv_chunk gives
  // them unless a row alone exceeds conv_chunk_max pixels).
  const bool skip = g.kernel == 3 && !raw && wts.skip_border_taps &&
                    kernel_supports_tap_subset(wts.pw.kernel) && chunk % ow == 0 &&
                    detail::border_saving(g) >= detail::conv_skip_min_saving;
  const std::int64_t nchunks = (P + chunk - 1) / chunk;
  // Too few pixel chunks to keep every thread busy (batch-1 8x8 maps): also
  // split the output channels into NR blocks (each work item = chunk x block).
  const std::int32_t nblocks = wts.pw.n_blocks();
  const std::int32_t nsplit = (threads > 1 && nchunks < 2 * threads && nblocks > 1) ? nblocks : 1;
  const std::int64_t items = nchunks * nsplit;
  ::mixq::kernels::detail::record_kernel(wts.pw.name.data());

#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) if (threads > 1 && items > 1)
#endif
  for (std::int64_t item = 0; item < items; ++item) {
    const std::int64_t ci = item / nsplit;
    const std::int32_t nb = static_cast<std::int32_t>(item % nsplit);
    const std::int32_t n0 = nsplit == 1 ? 0 : nb * wts.pw.nr;
    const std::int32_t n1 =
        nsplit == 1 ? wts.pw.n : (n0 + wts.pw.nr < wts.pw.n ? n0 + wts.pw.nr : wts.pw.n);
    std::int64_t pix[detail::conv_chunk_max], opix[detail::conv_chunk_max],
        rpix[detail::conv_chunk_max];
    const std::int64_t p0 = ci * chunk, cnt = (P - p0 < chunk) ? P - p0 : chunk;
    // Offsets run by run: inside an output row they advance by a constant
    // step, so the inner loops are plain strided fills. emit(j, i, oy, ox, len)
    // writes the run of `len` pixels starting at (i, oy, ox) at index j.
    auto emit = [&](std::int64_t j, std::int64_t i, std::int64_t oy, std::int64_t ox,
                    std::int64_t len) {
      const std::int64_t a0 = i * img + base + (oy * s * wp + ox * s) * C, astep = s * C;
      const std::int64_t o0 = i * out.img_stride + oy * out.row_stride + ox * g.c_out,
                         ostep = g.c_out;
      for (std::int64_t q = 0; q < len; ++q) pix[j + q] = a0 + q * astep;
      for (std::int64_t q = 0; q < len; ++q) opix[j + q] = o0 + q * ostep;
      if (r) {
        const std::int64_t r0 = i * r->img_stride + oy * r->stride * r->row_stride +
                                ox * r->stride * r->pix_stride - r->ch_lo;
        const std::int64_t rstep = r->stride * r->pix_stride;
        for (std::int64_t q = 0; q < len; ++q) rpix[j + q] = r0 + q * rstep;
      }
    };
    // Skipping: the chunk's whole rows are split into runs of one border
    // class each (a clipped row is one run; an unclipped row is its first
    // pixel, its middle and its last pixel), written class by class, so each
    // class is one contiguous segment [start[c], start[c+1]). Pass 0 counts.
    std::int64_t start[detail::conv_border_classes + 1] = {};
    if (skip) {
      const int xk_first = detail::border_side(0, s, g.w);
      const int xk_last = detail::border_side(ow - 1, s, g.w);
      const int c_first = xk_first ? 3 + xk_first : 0, c_last = xk_last ? 3 + xk_last : 0;
      std::int64_t pos[detail::conv_border_classes];
      for (int pass = 0; pass < 2; ++pass) {
        if (pass == 1) {
          for (int c = 0; c < detail::conv_border_classes; ++c) start[c + 1] += start[c];
          for (int c = 0; c < detail::conv_border_classes; ++c) pos[c] = start[c];
        }
        auto put = [&](int c, std::int64_t i, std::int64_t oy, std::int64_t ox, std::int64_t len) {
          if (pass == 0) {
            start[c + 1] += len;
          } else {
            emit(pos[c], i, oy, ox, len);
            pos[c] += len;
          }
        };
        for (std::int64_t row = p0 / ow; row < (p0 + cnt) / ow; ++row) {
          const std::int64_t i = row / oh, oy = row % oh;
          const int yk = detail::border_side(oy, s, g.h);
          if (yk) {
            put(yk, i, oy, 0, ow);
          } else if (ow == 1) {
            put(c_first, i, oy, 0, 1);
          } else {
            put(c_first, i, oy, 0, 1);
            if (ow > 2) put(0, i, oy, 1, ow - 2);
            put(c_last, i, oy, ow - 1, 1);
          }
        }
      }
    } else {
      std::int64_t i = p0 / per_img, rem = p0 % per_img, oy = rem / ow, ox = rem % ow;
      std::int64_t j = 0;
      while (j < cnt) {
        const std::int64_t len = (ow - ox < cnt - j) ? ow - ox : cnt - j;
        emit(j, i, oy, ox, len);
        j += len;
        ox = 0;
        if (++oy == oh) {
          oy = 0;
          ++i;
        }
      }
    }
    qgemm_problem prob;
    prob.m = cnt;
    prob.a = in;
    prob.tap_off = tap_off;
    prob.pix_off = pix;
    epilogue ep;
    ep.bias = rq.bias;
    if (raw) {
      ep.out_i32 = raw + p0 * g.c_out;
      ep.ld_i32 = g.c_out;
    } else {
      ep = requant_epilogue(rq);
      ep.out = out.data;
      ep.out_pix_off = opix;
      if (r) {
        ep.res = r->data;
        ep.res_pix_off = rpix;
        ep.res_qm = r->res_qm;
      }
    }
    if (!skip) {
      qgemm_tile(prob, wts.pw, ep, 0, cnt, n0, n1);
      continue;
    }
    // one tap-subset call per non-empty border class
    for (int c = 0; c < detail::conv_border_classes; ++c) {
      const std::int64_t b = start[c], e = start[c + 1];
      if (b == e) continue;
      qgemm_problem sub = prob;
      sub.m = e - b;
      sub.pix_off = pix + b;
      sub.tap_off = bt.off[c];
      if (c != 0) {
        sub.tap_idx = bt.idx[c];
        sub.taps = bt.n[c];
      }
      epilogue sep = ep;
      sep.out_pix_off = opix + b;
      if (r) sep.res_pix_off = rpix + b;
      qgemm_tile(sub, wts.pw, sep, 0, sub.m, n0, n1);
    }
  }
}

}  // namespace kernels
}  // namespace mixq
