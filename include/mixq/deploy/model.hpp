#pragma once
// The deploy model: the integer network the runtime runs, independent of how
// it was trained. An exporter lowers a trained model to it; the model file
// (format.hpp, docs/format.md) stores it; the runtime (runtime.hpp) plans and
// runs it. Everything here is plain data plus one function, analyze(), that
// checks every field and derives the tensor shapes.
//
// ## Tensors
// Tensor 0 is the network input: uint8 HWC images. Its codes are the pixels
// themselves, or, with a code table, code = code_table[c * 256 + pixel] (the
// quantization of the normalised pixel, computed by the training side, so the
// runtime needs no float). real = scale_c * (code - zero_point_c); the
// convolution halo holds the zero point, so the zero padding of a normalised
// image is reproduced exactly.
// Layer i (0-based) produces tensor i + 1. Every tensor other than the input
// holds unsigned codes with zero point 0 (activations after ReLU).
//
// ## Layers (what each computes, exactly; "x" is the input tensor's codes)
//   conv    acc[n] = sum_{dy,dx<K} sum_{c<C_in} W[n][dy][dx][c] * (x[y*S+dy-P][x*S+dx-P][c] - z_c)
//           with pixels outside the image equal to z_c (P = K/2, K in {1, 3},
//           S in {1, 2}, z = the input zero points or 0), then per channel n
//             v   = acc[n] + bias[n]                                   (int32)
//             t   = v * qm[n] + r * res_qm[n] + offset[n]              (int64)
//             out = clamp(rhaz(t, rshift[n]), lo, hi)                  (uint8)
//           rhaz = round half away from zero of t / 2^rshift (kernels/requant.hpp);
//           offset = the bias's fraction of an accumulator unit, in units of
//           2^-rshift output steps (0 when the layer has none);
//           r = the residual tensor's code at (y*RS, x*RS, n - ch_lo), 0 without
//           a residual or outside its channels (identity: RS = 1, ch_lo = 0;
//           ResNet option A: RS = 2, ch_lo = (C_out - C_res) / 2).
//   avgpool sum[c] = sum over all pixels of x[.][.][c];
//           out[c] = clamp(rhaz(sum * qm, rshift), lo, hi); output 1 x 1 x C.
//   remap   out = table[x] elementwise (same shape): one code grid onto
//           another, 2^in_bits entries in [lo, hi] (a residual stream's
//           R-bit codes onto a convolution's activation codes: the table is
//           the training side's own requantization, so it is exact). The
//           input is a layer's output (zero point 0, codes within its bits),
//           never tensor 0.
//   linear  acc[n] = sum_k W[n][k] * (x[k] - z_k) over the input flattened in
//           (h, w, c) order; logits[n] = acc[n] + bias[n] (int32), and the real
//           logit is logit_scale[n] * logits[n]. The last layer, and the only
//           linear one.
// Weights: `bits`-bit signed codes c in [-2^(bits-1), 2^(bits-1) - 1]; the
// value W is c (grid signed) or 2c + 1 (grid odd: DoReFa's 2^bits odd levels
// +-1, +-3, ..., +-(2^bits - 1), in units of half a step).
// The float scales (w_scale, out_scale, input scale) describe each grid for a
// reader (real value = scale * code); the integer result depends only on the
// integer fields, and logit_scale only on the float logits.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <variant>
#include <vector>

#include "mixq/error.hpp"
#include <mixq/kernels/requant.hpp>

namespace mixq {
namespace deploy {

enum class weight_grid : std::uint8_t {
  signed_codes = 0,  ///< W = c
  odd = 1,           ///< W = 2c + 1
};

inline const char* grid_name(weight_grid g) noexcept {
  return g == weight_grid::odd ? "odd" : "signed";
}

struct input_spec {
  std::int32_t h = 0, w = 0, c = 0;
  int bits = 8;
  std::vector<std::uint8_t> zero_point;  ///< [c]
  std::vector<float> scale;              ///< [c] real = scale * (code - zero_point)
  std::vector<std::uint8_t> code_table;  ///< empty (code = pixel) or [c][256]: code of each pixel
};

struct conv_layer {
  std::int32_t input = 0;      ///< tensor id
  std::int32_t residual = -1;  ///< tensor id, or -1
  int kernel = 3, stride = 1;
  std::int32_t c_in = 0, c_out = 0;
  int w_bits = 8;
  weight_grid grid = weight_grid::signed_codes;
  std::vector<std::int8_t> codes;  ///< [c_out][kernel][kernel][c_in]
  std::vector<float> w_scale;      ///< [c_out]
  std::vector<std::int32_t> bias, qm, rshift;
  std::vector<std::int32_t> res_qm;  ///< [c_out] with a residual, else empty
  /// [c_out] rounding offsets in [-2^30, 2^30] (kernels/requant.hpp), or empty (= 0)
  std::vector<std::int32_t> offset;
  int out_bits = 8;
  int lo = 0, hi = 255;
  float out_scale = 1.0f;
};

struct pool_layer {
  std::int32_t input = 0;
  std::int32_t qm = 1 << 30, rshift = 31;
  int out_bits = 8;
  int lo = 0, hi = 255;
  float out_scale = 1.0f;
};

struct linear_layer {
  std::int32_t input = 0;
  std::int32_t c_in = 0, c_out = 0;
  int w_bits = 8;
  weight_grid grid = weight_grid::signed_codes;
  std::vector<std::int8_t> codes;  ///< [c_out][c_in]
  std::vector<float> w_scale;      ///< [c_out]
  std::vector<std::int32_t> bias;  ///< [c_out]
  std::vector<float> logit_scale;  ///< [c_out]
};

struct remap_layer {
  std::int32_t input = 0;
  int in_bits = 8;                  ///< the input tensor's bits
  std::vector<std::uint8_t> table;  ///< [2^in_bits]: out = table[x]
  int out_bits = 8;
  int lo = 0, hi = 255;
  float out_scale = 1.0f;
};

using layer = std::variant<conv_layer, pool_layer, linear_layer, remap_layer>;

inline const char* layer_kind_name(const layer& l) noexcept {
  switch (l.index()) {
    case 0:
      return "conv";
    case 1:
      return "avgpool";
    case 2:
      return "linear";
    default:
      return "remap";
  }
}

struct model {
  input_spec input;
  std::vector<layer> layers;
  std::vector<std::string> labels;  ///< class names (optional: empty, or one per class)
  std::string meta;                 ///< free text, "key=value" lines (provenance)
};

/// Shape and code range of one tensor.
struct tensor_info {
  std::int64_t h = 0, w = 0, c = 0;
  int bits = 8;
  int hi = 255;             ///< largest code a producer writes
  bool zero_point = false;  ///< some channel has a nonzero zero point (input only)
  std::int64_t numel() const noexcept { return h * w * c; }
};

/// What analyze() derives from a valid model.
struct model_info {
  std::vector<tensor_info> tensors;  ///< [layers + 1]
  std::int32_t classes = 0;
  std::int64_t macs = 0;  ///< multiply-accumulates per image (conv + linear)
};

// Limits a file must respect (they bound every allocation a model causes).
constexpr std::int32_t max_spatial = 4096;
constexpr std::int32_t max_channels = 8192;
constexpr std::int64_t max_tensor_codes = std::int64_t(1) << 26;  ///< h*w*c per image
constexpr std::int64_t max_reduction = 65536;  ///< kernel*kernel*c_in, linear c_in
constexpr std::size_t max_layers = 4096;

namespace detail {

inline std::int64_t weight_value(std::int8_t c, weight_grid g) noexcept {
  return g == weight_grid::odd ? 2 * std::int64_t(c) + 1 : std::int64_t(c);
}

/// Checks the per-channel arrays and integer ranges shared by conv and linear.
template <class L>
void check_weights(const L& l, std::int64_t taps, const std::string& where) {
  MIXQ_CHECK(l.w_bits >= 2 && l.w_bits <= 8, where, "weight bits ", l.w_bits, ", expected 2..8");
  MIXQ_CHECK(l.grid == weight_grid::signed_codes || l.grid == weight_grid::odd, where,
             "weight grid ", int(l.grid), ", expected 0 (signed) or 1 (odd)");
  MIXQ_CHECK(l.c_out >= 1 && l.c_out <= max_channels, where, "c_out ", l.c_out, ", expected 1..",
             max_channels);
  const std::int64_t per = taps * l.c_in;
  MIXQ_CHECK(per <= max_reduction, where, "reduction ", per,
             " (taps x c_in), expected <= ", max_reduction);
  const std::size_t n = static_cast<std::size_t>(l.c_out);
  MIXQ_CHECK(l.codes.size() == n * static_cast<std::size_t>(per), where, "weight codes ",
             l.codes.size(), ", expected c_out x ", taps, " x c_in = ", n * per);
  MIXQ_CHECK(l.w_scale.size() == n, where, "w_scale has ", l.w_scale.size(), " values, expected ",
             n);
  MIXQ_CHECK(l.bias.size() == n, where, "bias has ", l.bias.size(), " values, expected ", n);
  const int wmin = -(1 << (l.w_bits - 1)), wmax = (1 << (l.w_bits - 1)) - 1;
  for (std::size_t i = 0; i < l.codes.size(); ++i)
    MIXQ_CHECK(l.codes[i] >= wmin && l.codes[i] <= wmax, where, "weight code ", int(l.codes[i]),
               " at index ", i, ", expected a signed ", l.w_bits, "-bit code in [", wmin, ", ",
               wmax, "]");
  for (std::size_t i = 0; i < n; ++i)
    MIXQ_CHECK(std::isfinite(l.w_scale[i]) && l.w_scale[i] > 0.0f, where, "w_scale[", i,
               "] = ", l.w_scale[i], ", expected a finite positive number");
}

/// |acc + bias| < 2^31 for every input the layer can see: the kernels sum
/// W * code in int32 with the zero-point correction folded into the bias.
template <class L>
void check_accumulator(const L& l, std::int64_t taps, const tensor_info& in,
                       const std::vector<std::uint8_t>* zp, const std::string& where) {
  const std::int64_t per = taps * l.c_in, amax = in.hi;
  for (std::int32_t n = 0; n < l.c_out; ++n) {
    std::int64_t abs_sum = 0, zsum = 0;
    for (std::int64_t k = 0; k < per; ++k) {
      const std::int64_t w = weight_value(l.codes[static_cast<std::size_t>(n * per + k)], l.grid);
      abs_sum += w < 0 ? -w : w;
      if (zp) zsum += w * (*zp)[static_cast<std::size_t>(k % l.c_in)];
    }
    const std::int64_t b = std::int64_t(l.bias[static_cast<std::size_t>(n)]) - zsum;
    const std::int64_t bound = (b < 0 ? -b : b) + abs_sum * amax;
    MIXQ_CHECK(bound <= std::numeric_limits<std::int32_t>::max(), where, "channel ", n,
               ": accumulator bound ", bound, " (|bias - zero point term| + sum |W| x ", amax,
               ") exceeds the int32 range");
  }
}

inline void check_out_range(int bits, int lo, int hi, const std::string& where) {
  MIXQ_CHECK(bits >= 2 && bits <= 8, where, "output bits ", bits, ", expected 2..8");
  MIXQ_CHECK(lo >= 0 && lo <= hi && hi <= (1 << bits) - 1, where, "clamp [", lo, ", ", hi,
             "], expected 0 <= lo <= hi <= ", (1 << bits) - 1, " for ", bits, "-bit codes");
}

inline void check_multiplier(std::int32_t qm, std::int32_t rshift, const std::string& where,
                             std::int64_t channel) {
  MIXQ_CHECK(qm >= 0, where, "qm[", channel, "] = ", qm, ", expected >= 0");
  MIXQ_CHECK(rshift >= 1 && rshift <= 62, where, "rshift[", channel, "] = ", rshift,
             ", expected 1..62");
}

inline void check_tensor_ref(std::int32_t id, std::size_t layer, const char* what,
                             const std::string& where) {
  MIXQ_CHECK(id >= 0 && static_cast<std::size_t>(id) <= layer, where, what, " tensor ", id,
             ", expected a tensor made before this layer (0..", layer, ")");
}

}  // namespace detail

/// Validates every field of `m` and derives the tensor shapes.
/// throws: mixq::error naming the layer, the field, its value and what was expected.
inline model_info analyze(const model& m) {
  model_info info;
  const input_spec& in = m.input;
  const std::string iw = "deploy model: input: ";
  MIXQ_CHECK(in.h >= 1 && in.h <= max_spatial && in.w >= 1 && in.w <= max_spatial, iw, "size ",
             in.h, "x", in.w, ", expected 1..", max_spatial);
  MIXQ_CHECK(in.c >= 1 && in.c <= max_channels, iw, "channels ", in.c, ", expected 1..",
             max_channels);
  MIXQ_CHECK(std::int64_t(in.h) * in.w * in.c <= max_tensor_codes, iw,
             "h x w x c = ", std::int64_t(in.h) * in.w * in.c, ", expected <= ", max_tensor_codes);
  MIXQ_CHECK(in.bits >= 2 && in.bits <= 8, iw, "bits ", in.bits, ", expected 2..8");
  MIXQ_CHECK(in.zero_point.size() == static_cast<std::size_t>(in.c), iw, "zero_point has ",
             in.zero_point.size(), " values, expected ", in.c);
  MIXQ_CHECK(in.scale.size() == static_cast<std::size_t>(in.c), iw, "scale has ", in.scale.size(),
             " values, expected ", in.c);
  MIXQ_CHECK(in.code_table.empty() || in.code_table.size() == 256 * static_cast<std::size_t>(in.c),
             iw, "code_table has ", in.code_table.size(), " entries, expected 0 or 256 x ", in.c);
  for (std::size_t i = 0; i < in.code_table.size(); ++i)
    MIXQ_CHECK(in.code_table[i] <= (1 << in.bits) - 1, iw, "code_table[", i / 256, "][", i % 256,
               "] = ", int(in.code_table[i]), ", expected <= ", (1 << in.bits) - 1);
  tensor_info t0;
  t0.h = in.h;
  t0.w = in.w;
  t0.c = in.c;
  t0.bits = in.bits;
  t0.hi = (1 << in.bits) - 1;
  for (std::int32_t c = 0; c < in.c; ++c) {
    MIXQ_CHECK(in.zero_point[c] <= t0.hi, iw, "zero_point[", c, "] = ", int(in.zero_point[c]),
               ", expected <= ", t0.hi);
    MIXQ_CHECK(std::isfinite(in.scale[c]) && in.scale[c] > 0.0f, iw, "scale[", c,
               "] = ", in.scale[c], ", expected a finite positive number");
    if (in.zero_point[c]) t0.zero_point = true;
  }
  info.tensors.push_back(t0);

  MIXQ_CHECK(!m.layers.empty(), "deploy model: no layers");
  MIXQ_CHECK(m.layers.size() <= max_layers, "deploy model: ", m.layers.size(),
             " layers, expected <= ", max_layers);
  std::vector<int> uses(m.layers.size() + 1, 0);
  for (std::size_t li = 0; li < m.layers.size(); ++li) {
    const layer& L = m.layers[li];
    const std::string where =
        "deploy model: layer " + std::to_string(li) + " (" + layer_kind_name(L) + "): ";
    tensor_info out;
    if (const auto* cv = std::get_if<conv_layer>(&L)) {
      detail::check_tensor_ref(cv->input, li, "input", where);
      const tensor_info& x = info.tensors[static_cast<std::size_t>(cv->input)];
      ++uses[static_cast<std::size_t>(cv->input)];
      MIXQ_CHECK(cv->kernel == 1 || cv->kernel == 3, where, "kernel ", cv->kernel,
                 ", expected 1 or 3");
      MIXQ_CHECK(cv->stride == 1 || cv->stride == 2, where, "stride ", cv->stride,
                 ", expected 1 or 2");
      MIXQ_CHECK(cv->c_in == x.c, where, "c_in ", cv->c_in, " but input tensor ", cv->input,
                 " has ", x.c, " channels");
      const std::int64_t taps = std::int64_t(cv->kernel) * cv->kernel;
      detail::check_weights(*cv, taps, where);
      const std::size_t n = static_cast<std::size_t>(cv->c_out);
      MIXQ_CHECK(cv->qm.size() == n && cv->rshift.size() == n, where, "qm / rshift have ",
                 cv->qm.size(), " / ", cv->rshift.size(), " values, expected ", n);
      for (std::size_t c = 0; c < n; ++c)
        detail::check_multiplier(cv->qm[c], cv->rshift[c], where, static_cast<std::int64_t>(c));
      MIXQ_CHECK(cv->offset.empty() || cv->offset.size() == n, where, "offset has ",
                 cv->offset.size(), " values, expected 0 (none) or ", n);
      for (std::size_t c = 0; c < cv->offset.size(); ++c)
        MIXQ_CHECK(cv->offset[c] >= -kernels::max_requant_offset &&
                       cv->offset[c] <= kernels::max_requant_offset,
                   where, "offset[", c, "] = ", cv->offset[c], ", expected -",
                   kernels::max_requant_offset, "..", kernels::max_requant_offset);
      detail::check_out_range(cv->out_bits, cv->lo, cv->hi, where);
      MIXQ_CHECK(std::isfinite(cv->out_scale) && cv->out_scale > 0.0f, where, "out_scale ",
                 cv->out_scale, ", expected a finite positive number");
      const int p = cv->kernel / 2;
      out.h = (x.h + 2 * p - cv->kernel) / cv->stride + 1;
      out.w = (x.w + 2 * p - cv->kernel) / cv->stride + 1;
      out.c = cv->c_out;
      MIXQ_CHECK(out.numel() <= max_tensor_codes, where, "output h x w x c = ", out.numel(),
                 ", expected <= ", max_tensor_codes);
      detail::check_accumulator(*cv, taps, x, x.zero_point ? &m.input.zero_point : nullptr, where);
      if (cv->residual >= 0) {
        detail::check_tensor_ref(cv->residual, li, "residual", where);
        const tensor_info& r = info.tensors[static_cast<std::size_t>(cv->residual)];
        ++uses[static_cast<std::size_t>(cv->residual)];
        MIXQ_CHECK(!r.zero_point, where, "residual tensor ", cv->residual,
                   " has nonzero zero points; a residual must hold zero-point-0 codes");
        const bool identity = r.h == out.h && r.w == out.w && r.c == out.c;
        const bool option_a = (r.h + 1) / 2 == out.h && (r.w + 1) / 2 == out.w && r.c <= out.c &&
                              (out.c - r.c) % 2 == 0;
        MIXQ_CHECK(identity || option_a, where, "residual tensor ", cv->residual, " is ", r.h, "x",
                   r.w, "x", r.c, ", expected ", out.h, "x", out.w, "x", out.c,
                   " (identity) or a stride-2 option-A shortcut (", 2 * out.h, "x", 2 * out.w,
                   " or one less, as many or fewer channels by an even count)");
        MIXQ_CHECK(cv->res_qm.size() == n, where, "res_qm has ", cv->res_qm.size(),
                   " values, expected ", n);
        const std::int64_t lo = identity ? 0 : (out.c - r.c) / 2, hi_c = lo + r.c;
        for (std::int64_t c = 0; c < out.c; ++c)
          MIXQ_CHECK((c >= lo && c < hi_c) || cv->res_qm[static_cast<std::size_t>(c)] == 0, where,
                     "res_qm[", c, "] = ", cv->res_qm[static_cast<std::size_t>(c)], " but channel ",
                     c, " has no residual channel (option A covers ", lo, "..", hi_c - 1,
                     "); expected 0");
      } else {
        MIXQ_CHECK(cv->residual == -1, where, "residual ", cv->residual,
                   ", expected -1 (none) or a tensor id");
        MIXQ_CHECK(cv->res_qm.empty(), where, "res_qm has ", cv->res_qm.size(),
                   " values but the layer has no residual");
      }
      out.bits = cv->out_bits;
      out.hi = cv->hi;
      info.macs += out.h * out.w * out.c * taps * cv->c_in;
    } else if (const auto* pl = std::get_if<pool_layer>(&L)) {
      detail::check_tensor_ref(pl->input, li, "input", where);
      const tensor_info& x = info.tensors[static_cast<std::size_t>(pl->input)];
      ++uses[static_cast<std::size_t>(pl->input)];
      MIXQ_CHECK(!x.zero_point, where, "input tensor ", pl->input,
                 " has nonzero zero points; pooling takes zero-point-0 codes");
      MIXQ_CHECK(x.h * x.w * 255 <= std::numeric_limits<std::int32_t>::max(), where, "input ", x.h,
                 "x", x.w, " has too many pixels for an int32 sum");
      detail::check_multiplier(pl->qm, pl->rshift, where, 0);
      detail::check_out_range(pl->out_bits, pl->lo, pl->hi, where);
      MIXQ_CHECK(std::isfinite(pl->out_scale) && pl->out_scale > 0.0f, where, "out_scale ",
                 pl->out_scale, ", expected a finite positive number");
      out.h = out.w = 1;
      out.c = x.c;
      out.bits = pl->out_bits;
      out.hi = pl->hi;
    } else if (const auto* rm = std::get_if<remap_layer>(&L)) {
      detail::check_tensor_ref(rm->input, li, "input", where);
      const tensor_info& x = info.tensors[static_cast<std::size_t>(rm->input)];
      ++uses[static_cast<std::size_t>(rm->input)];
      MIXQ_CHECK(rm->input > 0, where,
                 "input tensor 0: a remap reads a layer's codes (the network input has its own "
                 "code table, and its pixels are not bounded by its bits)");
      MIXQ_CHECK(rm->in_bits == x.bits, where, "in_bits ", rm->in_bits, " but input tensor ",
                 rm->input, " holds ", x.bits, "-bit codes");
      detail::check_out_range(rm->out_bits, rm->lo, rm->hi, where);
      MIXQ_CHECK(rm->table.size() == std::size_t(1) << rm->in_bits, where, "table has ",
                 rm->table.size(), " entries, expected 2^", rm->in_bits, " = ", 1 << rm->in_bits);
      for (std::size_t i = 0; i < rm->table.size(); ++i)
        MIXQ_CHECK(rm->table[i] >= rm->lo && rm->table[i] <= rm->hi, where, "table[", i,
                   "] = ", int(rm->table[i]), ", expected ", rm->lo, "..", rm->hi);
      MIXQ_CHECK(std::isfinite(rm->out_scale) && rm->out_scale > 0.0f, where, "out_scale ",
                 rm->out_scale, ", expected a finite positive number");
      out.h = x.h;
      out.w = x.w;
      out.c = x.c;
      out.bits = rm->out_bits;
      out.hi = rm->hi;
    } else {
      const auto& fc = std::get<linear_layer>(L);
      MIXQ_CHECK(li + 1 == m.layers.size(), where,
                 "a linear layer must be the last layer (it produces the logits)");
      detail::check_tensor_ref(fc.input, li, "input", where);
      const tensor_info& x = info.tensors[static_cast<std::size_t>(fc.input)];
      ++uses[static_cast<std::size_t>(fc.input)];
      MIXQ_CHECK(fc.c_in == x.numel(), where, "c_in ", fc.c_in, " but input tensor ", fc.input,
                 " is ", x.h, "x", x.w, "x", x.c, " = ", x.numel(), " values");
      detail::check_weights(fc, 1, where);
      MIXQ_CHECK(fc.logit_scale.size() == static_cast<std::size_t>(fc.c_out), where,
                 "logit_scale has ", fc.logit_scale.size(), " values, expected ", fc.c_out);
      for (std::size_t c = 0; c < fc.logit_scale.size(); ++c)
        MIXQ_CHECK(std::isfinite(fc.logit_scale[c]) && fc.logit_scale[c] > 0.0f, where,
                   "logit_scale[", c, "] = ", fc.logit_scale[c],
                   ", expected a finite positive number");
      // the flattened zero points: channel k % c of the input
      std::vector<std::uint8_t> zflat;
      if (x.zero_point) {
        zflat.resize(static_cast<std::size_t>(fc.c_in));
        for (std::int64_t k = 0; k < fc.c_in; ++k)
          zflat[static_cast<std::size_t>(k)] =
              m.input.zero_point[static_cast<std::size_t>(k % x.c)];
      }
      detail::check_accumulator(fc, 1, x, x.zero_point ? &zflat : nullptr, where);
      out.h = out.w = 1;
      out.c = fc.c_out;
      out.bits = 32;
      out.hi = 0;
      info.classes = fc.c_out;
      info.macs += std::int64_t(fc.c_in) * fc.c_out;
    }
    info.tensors.push_back(out);
  }
  MIXQ_CHECK(std::holds_alternative<linear_layer>(m.layers.back()),
             "deploy model: the last layer is ", layer_kind_name(m.layers.back()),
             ", expected linear (the logits)");
  for (std::size_t t = 0; t + 1 < uses.size(); ++t)
    MIXQ_CHECK(uses[t] > 0, "deploy model: tensor ", t, t == 0 ? " (the input)" : "",
               " is never used by a later layer");
  MIXQ_CHECK(m.labels.empty() || m.labels.size() == static_cast<std::size_t>(info.classes),
             "deploy model: ", m.labels.size(), " labels for ", info.classes, " classes");
  return info;
}

}  // namespace deploy
}  // namespace mixq
