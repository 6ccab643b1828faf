#pragma once
// Export: a quantized CIFAR ResNet (nn::resnet_cifar after quant::quantize)
// to the deploy model (model.hpp). This is the one deploy header that knows
// the training side (nn, quant); the runtime never includes it.
//
// Every integer the runtime uses comes from the trained quantizers' grids:
//   input      input_quant's 256-entry code table per channel and its zero
//              point (the first conv's halo), one scale for all channels
//   weights    weight_quantizer::export_grid: LSQ codes (grid signed) or
//              DoReFa codes with zero point -1/2 (grid odd, W = 2c + 1, one
//              accumulator unit = scale / 2)
//   conv + BN  folded into the requantization of the next quantizer's grid
//              (s_out, top code), exactly on the int32 accumulator:
//                y / s_out = M_n (acc_n + b_n),  M_n = gamma_n s_in u_n / (sigma_n s_out),
//                b_n = (beta_n - gamma_n mu_n / sigma_n + gamma_n bias_conv_n / sigma_n) / A_n
//              with A_n = M_n s_out and u_n the weight scale of one accumulator
//              unit; M_n -> (qm, rshift) with 31 significant bits, b_n split
//              into the int32 bias round(b_n) and the rounding offset
//              round((b_n - bias) qm), so the fold is exact to 2^-rshift of an
//              output step (docs/deploy.md, "Export"). gamma_n < 0 negates the
//              channel (codes -c, or -c - 1 on the odd grid; a signed layer
//              holding the code -2^(b-1) in such a channel gets one more bit).
//   residual   conv2 of a block adds the block input codes r (scale s_r):
//              res_qm = round(s_r / s_out * 2^rshift), the channel's shift
//              taken from the larger multiplier
//   stream     a block with its own input quantizer (qat_config::residual_bits
//              R): the block input is written at R bits, the shortcut adds
//              those codes, and a remap layer (2^R-entry code table) gives
//              conv1 its activation codes. The table comes from running the
//              two quantizers' own forwards on the R-bit grid's values, so it
//              is what training computes, exactly
//   pool       pool_quant's codes -> the classifier's input grid:
//              qm / 2^rshift = s_pool / (H W s_fc)
//   classifier int32 logits = acc + round(bias / (s_fc u_n)), logit_scale = s_fc u_n
// The output grid of a conv is the quantizer that reads its output: a
// block's conv1 -> the block's conv2 input quantizer; a block's conv2 (and
// the stem) -> the next block's conv1 input quantizer, or pool_quant.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <mixq/kernels/requant.hpp>

#include "mixq/deploy/model.hpp"
#include "mixq/nn/resnet.hpp"
#include "mixq/quant/quant.hpp"

namespace mixq {
namespace deploy {

namespace detail {

inline quant::act_grid export_act(nn::transform* t, const std::string& what) {
  auto* q = dynamic_cast<quant::act_quantizer*>(t);
  MIXQ_CHECK(q != nullptr, "deploy export: ", what,
             " has no activation quantizer (an FP32 layer cannot run on the integer runtime; "
             "quantize with integer first and last layers)");
  MIXQ_CHECK(q->ready(), "deploy export: ", what,
             "'s quantizer has not seen data yet (run a training forward first)");
  return q->export_grid();
}

inline quant::weight_grid export_weights(nn::transform* t, const tensor& w,
                                         const std::string& what) {
  auto* q = dynamic_cast<quant::weight_quantizer*>(t);
  MIXQ_CHECK(q != nullptr, "deploy export: ", what, " has no weight quantizer");
  quant::weight_grid g = q->export_grid(w);
  MIXQ_CHECK(g.zero_point == 0.0f || g.zero_point == -0.5f, "deploy export: ", what,
             ": weight zero point ", g.zero_point, ", expected 0 (LSQ) or -1/2 (DoReFa)");
  return g;
}

/// The code table of a residual stream: each R-bit code of `stream`, as the
/// value training computes for it, requantized by `reader` (conv1's input
/// quantizer) through both quantizers' forwards.
inline std::vector<std::uint8_t> stream_table(nn::transform* stream, nn::transform* reader,
                                              const quant::act_grid& gs, const quant::act_grid& ga,
                                              const std::string& what) {
  MIXQ_CHECK(gs.zero_point == 0 && ga.zero_point == 0, "deploy export: ", what,
             ": a residual stream needs zero-point-0 grids");
  const int n = 1 << gs.bits;
  tensor x(shape{1, 1, 1, n});
  for (int c = 0; c < n; ++c) x[c] = gs.scale * static_cast<float>(c);
  tape t;
  t.set_grad_enabled(false);
  const var v = stream->apply(t, t.input(x.view()));
  const var y = reader->apply(t, v);
  std::vector<std::uint8_t> table(static_cast<std::size_t>(n));
  for (int c = 0; c < n; ++c) {
    const float vc = v.value().data()[c], yc = y.value().data()[c];
    MIXQ_CHECK(vc == gs.scale * static_cast<float>(c), "deploy export: ", what,
               ": the residual stream's quantizer maps code ", c, " to ", vc, ", not ",
               gs.scale * static_cast<float>(c));
    const double k = std::nearbyint(double(yc) / double(ga.scale));
    MIXQ_CHECK(k >= 0.0 && k <= ga.max_code() && yc == ga.scale * static_cast<float>(k),
               "deploy export: ", what, ": conv1's quantizer maps stream code ", c, " to ", yc,
               ", which is not on its grid (scale ", ga.scale, ")");
    table[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(k);
  }
  return table;
}

/// Sets (qm, rshift, res_qm) of channel n for multipliers m >= 0 and m_res.
inline void set_multipliers(conv_layer& c, std::size_t n, double m, double m_res) {
  const double big = std::fabs(m_res) > m ? std::fabs(m_res) : m;
  const kernels::quant_multiplier q = kernels::quantize_multiplier(big);
  if (q.qm == 0) {  // both multipliers below 2^-31: the channel is constant
    c.qm[n] = 0;
    c.rshift[n] = 31;
    if (!c.res_qm.empty()) c.res_qm[n] = 0;
    return;
  }
  c.rshift[n] = q.rshift;
  c.qm[n] = kernels::multiplier_at_shift(m, q.rshift);
  if (!c.res_qm.empty()) c.res_qm[n] = kernels::multiplier_at_shift(m_res, q.rshift);
}

/// One conv + its batch norm, requantized onto `out`.
inline conv_layer export_conv(nn::conv2d& cv, nn::batch_norm2d& bn_layer, double s_in, int in_hi,
                              const std::vector<std::uint8_t>* zp, const quant::act_grid& out,
                              std::int32_t input, std::int32_t residual, double s_res,
                              std::int32_t res_channels, const std::string& what) {
  const quant::weight_grid g = export_weights(cv.weight_transform(), cv.weight.value, what);
  nn::batch_norm2d& bn = bn_layer.active();  // a routed (per-bit) batch norm's own state
  conv_layer c;
  c.input = input;
  c.residual = residual;
  const shape& ws = cv.weight.value.shape();  // OHWI
  c.c_out = static_cast<std::int32_t>(ws[0]);
  c.kernel = static_cast<int>(ws[1]);
  c.c_in = static_cast<std::int32_t>(ws[3]);
  c.stride = static_cast<int>(cv.stride());
  c.w_bits = g.bits;
  c.grid = g.zero_point == 0.0f ? weight_grid::signed_codes : weight_grid::odd;
  c.codes = g.codes;
  c.out_bits = out.bits;
  c.lo = 0;
  c.hi = out.max_code();
  c.out_scale = out.scale;
  const std::size_t N = static_cast<std::size_t>(c.c_out);
  const std::int64_t per = static_cast<std::int64_t>(c.codes.size() / N);
  c.w_scale.resize(N);
  c.bias.resize(N);
  c.qm.resize(N);
  c.rshift.resize(N);
  c.offset.resize(N);
  if (residual >= 0) c.res_qm.assign(N, 0);
  const std::int64_t res_lo = (c.c_out - res_channels) / 2;
  bool widen = false;
  std::vector<double> mult(N), bias(N);
  for (std::size_t n = 0; n < N; ++n) {
    const double unit =
        g.scale_of(static_cast<std::int64_t>(n) * per) * (c.grid == weight_grid::odd ? 0.5 : 1.0);
    c.w_scale[n] = static_cast<float>(unit);
    const std::int64_t ni = static_cast<std::int64_t>(n);
    const double sigma = std::sqrt(double(bn.running_var[ni]) + double(bn.eps()));
    const double gam = bn.weight.value[ni];
    const double a = gam * s_in * unit / sigma;  // y = a * acc + b
    double b = double(bn.bias.value[ni]) - gam * double(bn.running_mean[ni]) / sigma;
    if (cv.bias.value.numel() > 0) b += gam * double(cv.bias.value[ni]) / sigma;
    mult[n] = a / out.scale;
    bias[n] = a != 0.0 ? b / a : 0.0;
    if (mult[n] < 0.0) {  // negate the channel: M (acc + b) = (-M) (-acc - b)
      for (std::int64_t k = 0; k < per; ++k) {
        std::int8_t& code = c.codes[static_cast<std::size_t>(ni * per + k)];
        if (c.grid == weight_grid::odd) {
          code = static_cast<std::int8_t>(-code - 1);
        } else {
          if (code == -(1 << (c.w_bits - 1))) widen = true;
          code =
              static_cast<std::int8_t>(-int(code));  // -(-128) wraps only at 8 bits, refused below
        }
      }
      mult[n] = -mult[n];
      bias[n] = -bias[n];
    }
    const std::int64_t rc = ni - res_lo;
    const double m_res = residual >= 0 && rc >= 0 && rc < res_channels ? s_res / out.scale : 0.0;
    set_multipliers(c, n, mult[n], m_res);
  }
  if (widen) {
    MIXQ_CHECK(c.w_bits < 8, "deploy export: ", what,
               ": a channel with a negative batch-norm scale holds the code -128, whose negation "
               "needs 9 bits");
    ++c.w_bits;  // -2^(b-1) negated is 2^(b-1): one more bit holds it
  }
  // bias in int32, kept inside the accumulator bound analyze() checks; the
  // offset carries what the integer bias leaves out, in units of 2^-rshift
  // output steps (within the kernels' offset range when the bias was clamped)
  for (std::size_t n = 0; n < N; ++n) {
    std::int64_t abs_sum = 0, zsum = 0;
    for (std::int64_t k = 0; k < per; ++k) {
      const std::int64_t w = weight_value(
          c.codes[n * static_cast<std::size_t>(per) + static_cast<std::size_t>(k)], c.grid);
      abs_sum += w < 0 ? -w : w;
      if (zp) zsum += w * (*zp)[static_cast<std::size_t>(k % c.c_in)];
    }
    const std::int64_t room = std::numeric_limits<std::int32_t>::max() - abs_sum * in_hi;
    double b = std::nearbyint(bias[n]);
    if (b > double(zsum + room)) b = double(zsum + room);
    if (b < double(zsum - room)) b = double(zsum - room);
    c.bias[n] = static_cast<std::int32_t>(b);
    const double lim = kernels::max_requant_offset;
    const double off = std::nearbyint((bias[n] - b) * double(c.qm[n]));
    c.offset[n] = static_cast<std::int32_t>(std::fmax(-lim, std::fmin(lim, off)));
  }
  return c;
}

}  // namespace detail

/// The deploy model of a quantized ResNet (option-A shortcuts, integer first
/// and last layers, quantizers that have seen data). Runs analyze() on it.
/// throws: mixq::error naming the layer when something cannot be exported.
inline model export_resnet(nn::resnet_cifar& m, std::int32_t image_h = 32,
                           std::int32_t image_w = 32) {
  model out;
  auto* iq = dynamic_cast<quant::input_quant*>(m.conv1.input_transform());
  MIXQ_CHECK(iq != nullptr,
             "deploy export: conv1 has no 8-bit input quantizer (quantize the model with an "
             "integer first layer)");
  const quant::act_grid gin = iq->export_grid();
  const std::int32_t C = static_cast<std::int32_t>(m.in_channels());
  out.input.h = image_h;
  out.input.w = image_w;
  out.input.c = C;
  out.input.bits = gin.bits;
  out.input.zero_point.assign(static_cast<std::size_t>(C),
                              static_cast<std::uint8_t>(gin.zero_point));
  out.input.scale.assign(static_cast<std::size_t>(C), gin.scale);
  out.input.code_table = iq->code_table();

  // the grid each conv writes: the quantizer that reads its output
  const int nb = m.blocks_per_stage();
  auto block_in = [&](int s, int b) {  // the block's own input grid, or conv1's
    const std::string name = "layer" + std::to_string(s + 1) + "." + std::to_string(b);
    nn::basic_block& blk = m.block(s, b);
    if (blk.input_transform())
      return detail::export_act(blk.input_transform(), name + " (residual stream)");
    return detail::export_act(blk.conv1.input_transform(), name + ".conv1");
  };
  const quant::act_grid pool_in = detail::export_act(m.pool_input_transform(), "the pool input");
  std::int32_t x = 0;  // current tensor
  double s_x = gin.scale;
  int hi_x = 255;
  quant::act_grid first_in = block_in(0, 0);
  out.layers.emplace_back(detail::export_conv(m.conv1, m.bn1, s_x, hi_x, &out.input.zero_point,
                                              first_in, 0, -1, 0.0, 0, "conv1"));
  x = 1;
  s_x = first_in.scale;
  hi_x = first_in.max_code();
  quant::act_grid g_x = first_in;
  for (int s = 0; s < 3; ++s)
    for (int b = 0; b < nb; ++b) {
      nn::basic_block& blk = m.block(s, b);
      const std::string base = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      const quant::act_grid mid = detail::export_act(blk.conv2.input_transform(), base + "conv2");
      std::int32_t x1 = x;  // what conv1 reads: the block input, or its remap
      double s_x1 = s_x;
      int hi_x1 = hi_x;
      if (blk.input_transform()) {
        const quant::act_grid a = detail::export_act(blk.conv1.input_transform(), base + "conv1");
        remap_layer rm;
        rm.input = x;
        rm.in_bits = g_x.bits;
        rm.table = detail::stream_table(blk.input_transform(), blk.conv1.input_transform(), g_x, a,
                                        base + "conv1");
        rm.out_bits = a.bits;
        rm.lo = 0;
        rm.hi = a.max_code();
        rm.out_scale = a.scale;
        out.layers.emplace_back(std::move(rm));
        x1 = static_cast<std::int32_t>(out.layers.size());
        s_x1 = a.scale;
        hi_x1 = a.max_code();
      }
      out.layers.emplace_back(detail::export_conv(blk.conv1, blk.bn1, s_x1, hi_x1, nullptr, mid, x1,
                                                  -1, 0.0, 0, base + "conv1"));
      const std::int32_t h = static_cast<std::int32_t>(out.layers.size());
      const bool last = s == 2 && b == nb - 1;
      const quant::act_grid next =
          last ? pool_in : block_in(b + 1 < nb ? s : s + 1, b + 1 < nb ? b + 1 : 0);
      const std::int32_t res_c = static_cast<std::int32_t>(blk.conv1.weight.value.shape()[3]);
      out.layers.emplace_back(detail::export_conv(blk.conv2, blk.bn2, mid.scale, mid.max_code(),
                                                  nullptr, next, h, x, s_x, res_c, base + "conv2"));
      x = static_cast<std::int32_t>(out.layers.size());
      s_x = next.scale;
      hi_x = next.max_code();
      g_x = next;
    }
  // pool: the last block's codes (pool_quant) -> the classifier's input grid
  nn::linear& fc = m.fc();
  const quant::act_grid fin = detail::export_act(fc.input_transform(), "fc");
  {
    pool_layer p;
    p.input = x;
    const std::int64_t hw = [&] {
      std::int64_t h = image_h, w = image_w;
      for (int s = 1; s < 3; ++s) {
        h = (h + 1) / 2;
        w = (w + 1) / 2;
      }
      return h * w;
    }();
    const kernels::quant_multiplier q =
        kernels::quantize_multiplier(double(pool_in.scale) / (double(hw) * fin.scale));
    p.qm = q.qm;
    p.rshift = q.rshift;
    p.out_bits = fin.bits;
    p.lo = 0;
    p.hi = fin.max_code();
    p.out_scale = fin.scale;
    out.layers.emplace_back(p);
  }
  {
    const quant::weight_grid g =
        detail::export_weights(fc.weight_transform(), fc.weight.value, "fc");
    linear_layer l;
    l.input = static_cast<std::int32_t>(out.layers.size());
    l.c_out = static_cast<std::int32_t>(fc.weight.value.shape()[0]);
    l.c_in = static_cast<std::int32_t>(fc.weight.value.shape()[1]);
    l.w_bits = g.bits;
    l.grid = g.zero_point == 0.0f ? weight_grid::signed_codes : weight_grid::odd;
    l.codes = g.codes;
    for (std::int32_t n = 0; n < l.c_out; ++n) {
      const double unit =
          g.scale_of(std::int64_t(n) * l.c_in) * (l.grid == weight_grid::odd ? 0.5 : 1.0);
      const double step = double(fin.scale) * unit;  // one int32 logit unit
      l.w_scale.push_back(static_cast<float>(unit));
      l.logit_scale.push_back(static_cast<float>(step));
      const double b = fc.bias.value.numel() > 0 ? double(fc.bias.value[n]) / step : 0.0;
      l.bias.push_back(static_cast<std::int32_t>(
          std::nearbyint(std::fmax(-1073741824.0, std::fmin(1073741824.0, b)))));
    }
    out.layers.emplace_back(std::move(l));
  }
  out.meta = "source=mixq quantized resnet_cifar\n";
  analyze(out);
  return out;
}

}  // namespace deploy
}  // namespace mixq
