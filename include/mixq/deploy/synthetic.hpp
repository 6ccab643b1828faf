#pragma once
// Random-weight CIFAR ResNets as deploy models: the exact layer shapes,
// bits and graph of a trained ResNet-(6n+2) (stem 3x3 conv 3 -> 16, three
// stages of n basic blocks at 16/32/64 channels, option-A shortcuts, global
// average pooling, linear 64 -> classes), with random codes and a
// requantization that keeps activations spread over their codes. For
// benchmarks, examples and smoke tests of the runtime, where what matters is
// the work per image, not the predictions.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "model.hpp"

namespace mixq {
namespace deploy {

struct synthetic_resnet_options {
  int n = 3;  ///< blocks per stage: ResNet-(6n+2), 3 = ResNet20
  int w_bits = 4, a_bits = 4;
  int first_last_bits = 8;  ///< stem weights, final linear weights and its input
  /// Per-conv (w, a) bits overriding w_bits / a_bits, in layer order
  /// (6n + 1 convs); a_bits is the conv's output bits.
  std::vector<std::pair<int, int>> per_layer;
  weight_grid grid = weight_grid::signed_codes;
  std::int32_t classes = 10;
  std::uint64_t seed = 1;
  /// 0, or a residual stream of this width (docs/quantization.md 2.1): the
  /// stem and every block's conv2 but the last write R-bit codes, and a
  /// remap before each block's conv1 gives it the bits it would have read.
  int residual_bits = 0;
};

namespace detail {
struct synthetic_rng {
  std::uint64_t s;
  std::uint64_t next() noexcept {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  double real() noexcept { return double(next() >> 11) / 9007199254740992.0; }
  int code(int bits) noexcept {
    return static_cast<int>(next() % (1u << bits)) - (1 << (bits - 1));
  }
};

/// (qm, rshift) ~ m with rshift <= max_shift.
inline void synthetic_multiplier(double m, int max_shift, std::int32_t& qm, std::int32_t& rshift) {
  int s = 1;
  while (s < max_shift && m * std::ldexp(1.0, s) < 1073741824.0) ++s;
  double q = std::nearbyint(m * std::ldexp(1.0, s));
  if (q > 2147483647.0) q = 2147483647.0;
  qm = static_cast<std::int32_t>(q);
  rshift = s;
}
}  // namespace detail

/// A ResNet-(6n+2) deploy model with random weights. throws: mixq::error on
/// bits outside 2..8 or a per_layer list of the wrong length.
inline model synthetic_resnet(const synthetic_resnet_options& o) {
  MIXQ_CHECK(o.n >= 1 && o.n <= 50, "synthetic_resnet: n ", o.n, ", expected 1..50");
  const int convs = 6 * o.n + 1;
  MIXQ_CHECK(o.per_layer.empty() || o.per_layer.size() == static_cast<std::size_t>(convs),
             "synthetic_resnet: ", o.per_layer.size(), " per-layer bit pairs, expected ", convs);
  for (int b : {o.w_bits, o.a_bits, o.first_last_bits})
    MIXQ_CHECK(b >= 2 && b <= 8, "synthetic_resnet: bits ", b, ", expected 2..8");
  MIXQ_CHECK(o.residual_bits == 0 || (o.residual_bits >= 2 && o.residual_bits <= 8),
             "synthetic_resnet: residual bits ", o.residual_bits, ", expected 0 or 2..8");
  for (const auto& p : o.per_layer)
    MIXQ_CHECK(p.first >= 2 && p.first <= 8 && p.second >= 2 && p.second <= 8,
               "synthetic_resnet: per-layer bits (", p.first, ", ", p.second, "), expected 2..8");
  detail::synthetic_rng r{o.seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull};
  model m;
  m.input.h = m.input.w = 32;
  m.input.c = 3;
  m.input.bits = 8;
  // CIFAR-10 normalisation: zero point 255 * mean, step 1 / (255 std)
  const double mean[3] = {0.4914, 0.4822, 0.4465}, sd[3] = {0.2470, 0.2435, 0.2616};
  for (int c = 0; c < 3; ++c) {
    m.input.zero_point.push_back(static_cast<std::uint8_t>(std::lround(255.0 * mean[c])));
    m.input.scale.push_back(static_cast<float>(1.0 / (255.0 * sd[c])));
  }
  struct tinfo {
    std::int64_t h, w, c;
    int hi;
  };
  std::vector<tinfo> ts{{32, 32, 3, 255}};
  int conv_index = 0;
  int nominal_bits = 0;  // the last conv's output bits without a residual stream
  // stream_bits > 0: the conv writes the residual stream at that width
  auto add_conv = [&](std::int32_t input, std::int32_t c_out, int stride, std::int32_t residual,
                      int stream_bits) {
    const tinfo x = ts[static_cast<std::size_t>(input)];
    int wb = conv_index == 0 ? o.first_last_bits : o.w_bits, ab = o.a_bits;
    if (!o.per_layer.empty()) {
      wb = o.per_layer[static_cast<std::size_t>(conv_index)].first;
      ab = o.per_layer[static_cast<std::size_t>(conv_index)].second;
    }
    nominal_bits = ab;
    if (stream_bits > 0) ab = stream_bits;
    ++conv_index;
    conv_layer cv;
    cv.input = input;
    cv.residual = residual;
    cv.kernel = 3;
    cv.stride = stride;
    cv.c_in = static_cast<std::int32_t>(x.c);
    cv.c_out = c_out;
    cv.w_bits = wb;
    cv.grid = o.grid;
    const std::int64_t per = 9 * x.c;
    for (std::int64_t i = 0; i < per * c_out; ++i)
      cv.codes.push_back(static_cast<std::int8_t>(r.code(wb)));
    cv.out_bits = ab;
    cv.lo = 0;
    cv.hi = (1 << ab) - 1;
    cv.out_scale = 0.1f;
    const tinfo y{(x.h - 1) / stride + 1, (x.w - 1) / stride + 1, c_out, cv.hi};
    const double wmag = std::ldexp(1.0, wb - 2) * (o.grid == weight_grid::odd ? 2.0 : 1.0);
    const double sigma = std::sqrt(double(per)) * wmag * x.hi * 0.5 + 1.0;
    double res_mult = 0.0;
    int max_shift = 62;
    if (residual >= 0) {
      res_mult = double(cv.hi + 1) / double(ts[static_cast<std::size_t>(residual)].hi + 1);
      max_shift = 30;
      while (max_shift > 1 && 1.5 * res_mult * std::ldexp(1.0, max_shift) >= 2147483647.0)
        --max_shift;
      cv.res_qm.assign(static_cast<std::size_t>(c_out), 0);
    }
    for (std::int32_t n = 0; n < c_out; ++n) {
      std::int32_t qm = 0, rs = 1;
      detail::synthetic_multiplier((cv.hi + 1) / (2.5 * sigma) * (0.7 + 0.6 * r.real()), max_shift,
                                   qm, rs);
      cv.qm.push_back(qm);
      cv.rshift.push_back(rs);
      cv.bias.push_back(static_cast<std::int32_t>(sigma * (r.real() - 0.3)));
      cv.w_scale.push_back(0.01f);
    }
    if (residual >= 0) {
      const tinfo rt = ts[static_cast<std::size_t>(residual)];
      const std::int64_t lo = rt.c == c_out && rt.h == y.h ? 0 : (c_out - rt.c) / 2;
      for (std::int64_t c = lo; c < lo + rt.c; ++c)
        cv.res_qm[static_cast<std::size_t>(c)] = static_cast<std::int32_t>(
            std::nearbyint(res_mult * (0.8 + 0.4 * r.real()) *
                           std::ldexp(1.0, cv.rshift[static_cast<std::size_t>(c)])));
    }
    m.layers.emplace_back(std::move(cv));
    ts.push_back(y);
    return static_cast<std::int32_t>(ts.size() - 1);
  };
  // the stream's codes onto `bits`: a monotone table, the top code onto the top code
  auto add_remap = [&](std::int32_t input, int bits) {
    const tinfo x = ts[static_cast<std::size_t>(input)];
    remap_layer rm;
    rm.input = input;
    rm.in_bits = o.residual_bits;
    rm.out_bits = bits;
    rm.hi = (1 << bits) - 1;
    const int top = (1 << o.residual_bits) - 1;
    for (int k = 0; k <= top; ++k)
      rm.table.push_back(static_cast<std::uint8_t>(std::lround(double(k) * rm.hi / top)));
    m.layers.emplace_back(std::move(rm));
    ts.push_back({x.h, x.w, x.c, (1 << bits) - 1});
    return static_cast<std::int32_t>(ts.size() - 1);
  };
  const int R = o.residual_bits;
  std::int32_t x = add_conv(0, 16, 1, -1, R);
  int x_bits = nominal_bits;  // what a block's conv1 reads
  const std::int32_t widths[3] = {16, 32, 64};
  for (int s = 0; s < 3; ++s)
    for (int b = 0; b < o.n; ++b) {
      const int stride = (s > 0 && b == 0) ? 2 : 1;
      const bool last = s == 2 && b == o.n - 1;
      const std::int32_t xin = R > 0 ? add_remap(x, x_bits) : x;
      const std::int32_t h = add_conv(xin, widths[s], stride, -1, 0);
      x = add_conv(h, widths[s], 1, x, last ? 0 : R);
      x_bits = nominal_bits;
    }
  pool_layer pl;
  pl.input = x;
  const tinfo last = ts[static_cast<std::size_t>(x)];
  pl.out_bits = o.first_last_bits;
  pl.hi = (1 << pl.out_bits) - 1;
  detail::synthetic_multiplier(2.0 * (pl.hi + 1) / double(last.h * last.w * (last.hi + 1)), 62,
                               pl.qm, pl.rshift);
  pl.out_scale = 0.05f;
  m.layers.emplace_back(pl);
  ts.push_back({1, 1, last.c, pl.hi});
  linear_layer fc;
  fc.input = static_cast<std::int32_t>(ts.size() - 1);
  fc.c_in = static_cast<std::int32_t>(last.c);
  fc.c_out = o.classes;
  fc.w_bits = o.first_last_bits;
  fc.grid = o.grid;
  for (std::int64_t i = 0; i < std::int64_t(fc.c_in) * fc.c_out; ++i)
    fc.codes.push_back(static_cast<std::int8_t>(r.code(fc.w_bits)));
  for (std::int32_t c = 0; c < fc.c_out; ++c) {
    fc.w_scale.push_back(0.01f);
    fc.bias.push_back(0);
    fc.logit_scale.push_back(0.001f);
  }
  m.layers.emplace_back(std::move(fc));
  m.meta = "source=synthetic_resnet\nn=" + std::to_string(o.n) +
           "\nseed=" + std::to_string(o.seed) + "\n";
  return m;
}

}  // namespace deploy
}  // namespace mixq
