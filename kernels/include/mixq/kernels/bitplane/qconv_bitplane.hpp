#pragma once
// Convolutions on bit-plane index activations (format.hpp) with the LUT6
// family: 3x3 (pad 1, stride 1 or 2) and 1x1 (stride 1 or 2), b_a in {2, 3},
// b_w <= 4. The input AND the output are group-planar padded planes, so a
// chain of such layers never converts: each layer's epilogue writes the next
// layer's index bytes (per-channel thresholds = the requant.hpp rule).
//
// Plane layout of a [batch][h][w] map with c channels of b-bit codes
// (bitplane_layout): after a lead of 64 bytes, [batch][G][h+2][w] bytes:
// one zero halo ROW above and below each image, NO halo columns (so a run of
// whole output rows is one contiguous run of index bytes: a 64-pixel tile
// of a 32-, 16- or 8-wide map is one load), plus bitplane_overread_bytes
// after the last image. Pixel (i, y, x), group g lives at
// lead + i*img_stride + g*group_stride + (y+1)*w + x (bitplane_pixel).
// The missing halo columns are the kernel's row masks (bitplane_problem::
// row_len): a tap whose input column falls outside [0, w) reads a
// neighbouring byte (readable thanks to the lead and the halo rows) and the
// kernel zeroes that lane, exactly as if it had read the halo.
//
// Implicit GEMM as in conv/qconv.hpp: output pixel m = (i, oy, ox) reads tap
// (dy, dx) at plane offset i*img + (oy*s + dy)*w + ox*s + dx - 1 (3x3) or
// i*img + (oy*s + 1)*w + ox*s (1x1); lanes are output pixels. Work items
// are chunks of whole output rows (bitplane_conv_chunk), each one kernel call
// over all output channels, or, when there are fewer chunks than threads
// (batch 1, 8x8 maps), over a range of channels (multiples of 12, so every
// written index byte is complete); the offsets of a chunk live on the stack
// (L1), not in a per-layer array.
// No border-tap skipping: lanes are pixels, so every lane of a vector
// looks up every tap (halo taps read index 0). An optional residual
// (bitplane_conv_residual: identity or ResNet option A) is added inside the
// rounding by the threshold epilogue.
#include <cstdint>
#include <vector>

#include "mixq/kernels/bitplane/qgemm_bitplane.hpp"
#include "mixq/kernels/conv/conv_types.hpp"
#include "mixq/kernels/requant.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mixq {
namespace kernels {

/// Strides of a plane image (see the header comment).
struct bitplane_image_layout {
  std::int64_t lead = 64, hp = 0, w = 0, group_stride = 0, img_stride = 0;
  std::int32_t groups = 0;
};

inline bitplane_image_layout bitplane_layout(std::int64_t h, std::int64_t w, std::int64_t c,
                                             int b) noexcept {
  bitplane_image_layout l;
  l.hp = h + 2;
  l.w = w;
  l.groups = bitplane_groups(static_cast<std::int32_t>(c), b);
  l.group_stride = l.hp * l.w;
  l.img_stride = l.group_stride * l.groups;
  return l;
}

/// Byte offset of pixel (i, y, x), group 0 (add g * group_stride for group g).
inline std::int64_t bitplane_pixel(const bitplane_image_layout& l, std::int64_t i, std::int64_t y,
                                   std::int64_t x) noexcept {
  return l.lead + i * l.img_stride + (y + 1) * l.w + x;
}

/// Bytes to allocate (zero-filled, so the halo rows are index 0) for the
/// planes of a [batch][h][w][c] map of b-bit codes.
inline std::int64_t bitplane_image_bytes(std::int64_t batch, std::int64_t h, std::int64_t w,
                                         std::int64_t c, int b) noexcept {
  const bitplane_image_layout l = bitplane_layout(h, w, c, b);
  return l.lead + batch * l.img_stride + static_cast<std::int64_t>(bitplane_overread_bytes);
}

/// u8 NHWC codes [batch][h][w][c] (dense) -> the interior of zero-initialized
/// planes (network input or a layer that does not write planes itself).
inline void bitplane_planes_from_nhwc(const std::uint8_t* codes, std::int64_t batch, std::int64_t h,
                                      std::int64_t w, std::int32_t c, int b,
                                      std::uint8_t* planes) noexcept {
  const bitplane_image_layout l = bitplane_layout(h, w, c, b);
  for (std::int64_t i = 0; i < batch; ++i)  // the interior rows of an image are contiguous
    bitplane_from_codes(codes + i * h * w * c, h * w, c, c, b, planes + bitplane_pixel(l, i, 0, 0),
                        l.group_stride);
}

namespace detail {
/// Output pixels per work item of the LUT6 conv: larger than qconv2d's chunks,
/// because every chunk streams all 64-byte tables (64 B per 3 weights) and
/// the kernel reuses a table block from L1 across up to 8 row-tile steps of
/// one call. About 4 items per thread on large maps, one per thread on small
/// ones (one item on one thread), whole output rows, 128..2048 pixels.
constexpr std::int64_t bitplane_chunk_max = 2048;
inline std::int64_t bitplane_conv_chunk(std::int64_t pixels, std::int64_t ow,
                                        int threads) noexcept {
  // one thread: one chunk as large as allowed (no balancing to do, and every
  // chunk streams the tables once more); maps smaller than 4 full chunks per
  // thread: one chunk per thread (batch 1, 16-channel stage, 2 threads: 8
  // chunks of 128 pixels took 6.4 us, 2 of 512 take 5.1); else about 4 per
  // thread, for balance
  const std::int64_t t = threads;
  const std::int64_t parts = t <= 1 ? 1 : (pixels < 4 * t * bitplane_chunk_max ? t : 4 * t);
  std::int64_t target = (pixels + parts - 1) / parts;
  if (target < 128) target = 128;
  if (target > bitplane_chunk_max) target = bitplane_chunk_max;
  if (ow > bitplane_chunk_max) return target;
  const std::int64_t rows = target / ow;
  return (rows < 1 ? 1 : rows) * ow;
}
}  // namespace detail

/// Packed LUT6 weights of one conv layer.
struct qconv_bitplane_weights {
  bitplane_weights pw;
  std::int64_t c_in = 0, c_out = 0;
  int kernel = 3;
};

/// Packs w[C_out][K][K][C_in] (b_w-bit codes) for b_a-bit plane activations
/// and the bit-plane family of `level` (pack_bitplane_weights). Throws
/// mixq::error on an unsupported pair (bitplane_supports), bad codes or a bad
/// geometry.
inline qconv_bitplane_weights qconv_bitplane_pack(const conv_geometry& g, const std::int8_t* w,
                                                  int b_w, int b_a, isa level = isa::automatic) {
  MIXQ_CHECK(g.kernel == 1 || g.kernel == 3, "qconv_bitplane_pack: kernel must be 1 or 3, got ",
             g.kernel);
  MIXQ_CHECK(g.stride == 1 || g.stride == 2, "qconv_bitplane_pack: stride must be 1 or 2, got ",
             g.stride);
  qconv_bitplane_weights q;
  q.pw = pack_bitplane_weights(w, static_cast<std::int32_t>(g.c_out), g.kernel * g.kernel,
                               static_cast<std::int32_t>(g.c_in), b_w, b_a, level);
  q.c_in = g.c_in;
  q.c_out = g.c_out;
  q.kernel = g.kernel;
  return q;
}

/// A residual added inside the rounding, read from planes (the block input):
/// output pixel (i, oy, ox), channel c adds res_qm[c] times the code of
/// residual channel c - ch_lo (when in [0, c)) at residual pixel
/// (i, oy*stride, ox*stride). Identity shortcut: stride 1, ch_lo 0; ResNet
/// option A: stride 2, ch_lo = C_out / 4. The fast path takes 2-bit codes.
struct bitplane_conv_residual {
  const std::uint8_t* planes = nullptr;  ///< bitplane_layout(h, w, c, bits) planes
  std::int64_t h = 0, w = 0, c = 0;
  int bits = 2;
  int stride = 1;
  std::int64_t ch_lo = 0;
  const std::int32_t* res_qm = nullptr;  ///< [C_out]
};

/// Thresholds of the requant rule for the fused plane output (computed once
/// per layer; rq.qm must be >= 0): [c_out][hi - lo], or with a residual
/// [c_out][2^res->bits][hi - lo].
inline std::vector<std::int64_t> qconv_bitplane_thresholds(
    const requant_params& rq, std::int64_t c_out, const bitplane_conv_residual* res = nullptr) {
  epilogue ep = requant_epilogue(rq);
  const int rb = res ? res->bits : 0;
  if (res) ep.res_qm = res->res_qm;
  std::vector<std::int64_t> thr(static_cast<std::size_t>(c_out * (rq.hi - rq.lo) << rb));
  bitplane_thresholds(ep, static_cast<std::int32_t>(c_out), thr.data(), rb);
  return thr;
}

/// Runs the convolution: `in` = planes of the input map (bitplane_layout of
/// g.h x g.w x C_in at b_a bits), output codes (rq.lo..rq.hi, hi < 2^b_out)
/// written into the interior of `out` = planes of the OH x OW x C_out map at
/// b_out bits (halo and over-read untouched). `raw` (optional, dense
/// [batch*OH*OW][C_out] int32 = acc + bias) replaces the plane output.
/// Preconditions (debug-checked): wts packed for g; thr from
/// qconv_bitplane_thresholds(rq, C_out) unless raw.
inline void qconv2d_bitplane(const conv_geometry& g, const qconv_bitplane_weights& wts,
                             const std::uint8_t* in, const requant_params& rq,
                             const std::int64_t* thr, int b_out, std::uint8_t* out,
                             std::int32_t* raw = nullptr,
                             const bitplane_conv_residual* res = nullptr) noexcept {
  MIXQ_DASSERT(wts.c_in == g.c_in && wts.c_out == g.c_out && wts.kernel == g.kernel);
  MIXQ_DASSERT(raw || (thr && out && rq.hi < (1 << b_out)));
  const bitplane_image_layout li = bitplane_layout(g.h, g.w, g.c_in, wts.pw.b_a);
  const bitplane_image_layout lo = bitplane_layout(g.out_h(), g.out_w(), g.c_out, b_out);
  const bitplane_image_layout lr =
      res ? bitplane_layout(res->h, res->w, res->c, res->bits) : bitplane_image_layout{};
  const std::int64_t oh = g.out_h(), ow = g.out_w(), per_img = oh * ow, P = g.batch * per_img;
  const std::int64_t s = g.stride, base = li.lead + (g.kernel == 1 ? li.w : 0);
  std::int64_t tap_off[9] = {};
  std::int8_t tap_dx[9] = {};
  for (int dy = 0; dy < g.kernel; ++dy)
    for (int dx = 0; dx < g.kernel; ++dx) {
      const int t = dy * g.kernel + dx, d = g.kernel == 1 ? 0 : dx - 1;
      tap_off[t] = dy * li.w + d;
      tap_dx[t] = static_cast<std::int8_t>(d);
    }

  int threads = 1;
#ifdef _OPENMP
  threads = omp_in_parallel() ? 1 : omp_get_max_threads();
#endif
  const std::int64_t chunk = detail::bitplane_conv_chunk(P, ow, threads);
  const std::int64_t nchunks = (P + chunk - 1) / chunk;
  // Fewer pixel chunks than threads (batch 1, 8x8 maps): also split the
  // output channels, in multiples of bitplane_channel_step (each range
  // prepares the tile's index vectors again, so only where pixels run out)
  const std::int32_t cstep = bitplane_channel_step;
  std::int32_t nsplit = 1;
  if (threads > 1 && nchunks < threads) {
    const std::int64_t want = (threads + nchunks - 1) / nchunks;
    const std::int64_t most = (g.c_out + cstep - 1) / cstep;
    nsplit = static_cast<std::int32_t>(want < most ? want : most);
  }
  const std::int32_t cper =
      static_cast<std::int32_t>(((g.c_out + nsplit - 1) / nsplit + cstep - 1) / cstep * cstep);
  const std::int64_t items = nchunks * nsplit;
  detail::record_kernel(wts.pw.name.data());

#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) if (threads > 1 && items > 1)
#endif
  for (std::int64_t item = 0; item < items; ++item) {
    std::int64_t pix[detail::bitplane_chunk_max], opix[detail::bitplane_chunk_max],
        rpix[detail::bitplane_chunk_max];
    const std::int64_t ci = item / nsplit;
    const std::int32_t n0 = static_cast<std::int32_t>(item % nsplit) * cper;
    const std::int32_t n1 = n0 + cper < g.c_out ? n0 + cper : static_cast<std::int32_t>(g.c_out);
    if (n0 >= n1) continue;
    const std::int64_t p0 = ci * chunk, cnt = (P - p0 < chunk) ? P - p0 : chunk;
    std::int64_t i = p0 / per_img, rem = p0 % per_img, oy = rem / ow, ox = rem % ow;
    for (std::int64_t j = 0; j < cnt;) {  // row runs: constant steps inside a row
      const std::int64_t len = (ow - ox < cnt - j) ? ow - ox : cnt - j;
      const std::int64_t a0 = i * li.img_stride + base + oy * s * li.w + ox * s;
      const std::int64_t o0 = bitplane_pixel(lo, i, oy, ox);
      for (std::int64_t q = 0; q < len; ++q) pix[j + q] = a0 + q * s;
      for (std::int64_t q = 0; q < len; ++q) opix[j + q] = o0 + q;
      if (res) {
        const std::int64_t r0 = bitplane_pixel(lr, i, oy * res->stride, ox * res->stride);
        for (std::int64_t q = 0; q < len; ++q) rpix[j + q] = r0 + q * res->stride;
      }
      j += len;
      ox = 0;
      if (++oy == oh) {
        oy = 0;
        ++i;
      }
    }
    bitplane_problem p;
    p.m = cnt;
    p.a = in;
    p.group_stride = li.group_stride;
    p.pix_off = pix;
    p.tap_off = tap_off;
    p.row_len = ow;  // the missing halo columns
    p.x0 = p0 % ow;
    p.in_w = g.w;
    p.stride = g.stride;
    p.tap_dx = tap_dx;
    epilogue ep = requant_epilogue(rq);
    if (raw) {
      ep.out_i32 = raw + p0 * g.c_out;
      ep.ld_i32 = g.c_out;
      qgemm_bitplane_tile(p, wts.pw, ep, nullptr, 0, cnt, n0, n1);
      continue;
    }
    bitplane_output bo;
    bo.base = out;
    bo.group_stride = lo.group_stride;
    bo.pix_off = opix;
    bo.b_out = b_out;
    bo.thresholds = thr;
    if (res) {
      bo.res = res->planes;
      bo.res_group_stride = lr.group_stride;
      bo.res_pix_off = rpix;
      bo.res_bits = res->bits;
      bo.res_ch_lo = static_cast<std::int32_t>(res->ch_lo);
      bo.res_channels = static_cast<std::int32_t>(res->c);
      ep.res_qm = res->res_qm;
    }
    qgemm_bitplane_tile(p, wts.pw, ep, &bo, 0, cnt, n0, n1);
  }
}

}  // namespace kernels
}  // namespace mixq
