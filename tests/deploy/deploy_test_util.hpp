#pragma once
// Helpers for the deploy tests: random deploy models (ResNet-shaped graphs
// with random bits per layer, random codes, both weight grids, identity and
// option-A residuals, random requantization) and an independent scalar
// reference of the model semantics of model.hpp, written straight from the
// definitions with int64 arithmetic on unpadded tensors (it shares no code
// with the runtime or the kernels).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <mixq/deploy/model.hpp>

namespace dtest {

namespace md = mixq::deploy;

struct rng {
  std::uint64_t s;
  explicit rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  /// uniform integer in [lo, hi]
  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  double real() { return double(next() >> 11) / 9007199254740992.0; }
  bool coin(double p = 0.5) { return real() < p; }
};

/// Round half away from zero of t / 2^s, written from the definition.
inline std::int64_t round_shift(std::int64_t t, int s) {
  const std::int64_t half = std::int64_t(1) << (s - 1);
  return t >= 0 ? (t + half) >> s : -((-t + half) >> s);
}

inline std::int64_t weight_of(std::int8_t c, md::weight_grid g) {
  return g == md::weight_grid::odd ? 2 * std::int64_t(c) + 1 : c;
}

/// A dense [n][h][w][c] uint8 tensor.
struct tensor {
  std::int64_t n = 0, h = 0, w = 0, c = 0;
  std::vector<std::uint8_t> v;
  std::uint8_t at(std::int64_t i, std::int64_t y, std::int64_t x, std::int64_t ch) const {
    return v[static_cast<std::size_t>(((i * h + y) * w + x) * c + ch)];
  }
};

/// Reference forward pass: logits [n][classes] (int32 values in int64).
inline std::vector<std::int64_t> reference_logits(const md::model& m, const std::uint8_t* images,
                                                  std::int64_t n) {
  std::vector<tensor> ts;
  tensor in;
  in.n = n;
  in.h = m.input.h;
  in.w = m.input.w;
  in.c = m.input.c;
  in.v.assign(images, images + n * in.h * in.w * in.c);
  if (!m.input.code_table.empty())
    for (std::size_t j = 0; j < in.v.size(); ++j)
      in.v[j] = m.input.code_table[(j % static_cast<std::size_t>(in.c)) * 256 + in.v[j]];
  ts.push_back(std::move(in));
  auto zp_of = [&](std::int32_t id, std::int64_t ch) -> std::int64_t {
    return id == 0 ? m.input.zero_point[static_cast<std::size_t>(ch)] : 0;
  };
  std::vector<std::int64_t> logits;
  for (const md::layer& L : m.layers) {
    tensor out;
    if (const auto* cv = std::get_if<md::conv_layer>(&L)) {
      const tensor& x = ts[static_cast<std::size_t>(cv->input)];
      const int K = cv->kernel, S = cv->stride, P = K / 2;
      out.n = n;
      out.h = (x.h + 2 * P - K) / S + 1;
      out.w = (x.w + 2 * P - K) / S + 1;
      out.c = cv->c_out;
      out.v.resize(static_cast<std::size_t>(n * out.h * out.w * out.c));
      const tensor* r = cv->residual >= 0 ? &ts[static_cast<std::size_t>(cv->residual)] : nullptr;
      const bool identity = r && r->h == out.h && r->w == out.w && r->c == out.c;
      const std::int64_t ch_lo = r && !identity ? (out.c - r->c) / 2 : 0;
      const std::int64_t rs = r && !identity ? 2 : 1;
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t oy = 0; oy < out.h; ++oy)
          for (std::int64_t ox = 0; ox < out.w; ++ox)
            for (std::int64_t o = 0; o < out.c; ++o) {
              std::int64_t acc = 0;
              for (int dy = 0; dy < K; ++dy)
                for (int dx = 0; dx < K; ++dx) {
                  const std::int64_t y = oy * S + dy - P, xx = ox * S + dx - P;
                  if (y < 0 || y >= x.h || xx < 0 || xx >= x.w) continue;  // x - z = 0 there
                  for (std::int64_t c = 0; c < x.c; ++c) {
                    const std::int8_t code =
                        cv->codes[static_cast<std::size_t>(((o * K + dy) * K + dx) * x.c + c)];
                    acc += weight_of(code, cv->grid) * (x.at(i, y, xx, c) - zp_of(cv->input, c));
                  }
                }
              const std::int64_t v = acc + cv->bias[static_cast<std::size_t>(o)];
              REQUIRE(v >= INT32_MIN);
              REQUIRE(v <= INT32_MAX);
              std::int64_t t = v * cv->qm[static_cast<std::size_t>(o)];
              if (!cv->offset.empty()) t += cv->offset[static_cast<std::size_t>(o)];
              if (r) {
                const std::int64_t rc = o - ch_lo;
                if (rc >= 0 && rc < r->c)
                  t += std::int64_t(r->at(i, oy * rs, ox * rs, rc)) *
                       cv->res_qm[static_cast<std::size_t>(o)];
              }
              std::int64_t y = round_shift(t, cv->rshift[static_cast<std::size_t>(o)]);
              y = y < cv->lo ? cv->lo : (y > cv->hi ? cv->hi : y);
              out.v[static_cast<std::size_t>(((i * out.h + oy) * out.w + ox) * out.c + o)] =
                  static_cast<std::uint8_t>(y);
            }
    } else if (const auto* pl = std::get_if<md::pool_layer>(&L)) {
      const tensor& x = ts[static_cast<std::size_t>(pl->input)];
      out.n = n;
      out.h = out.w = 1;
      out.c = x.c;
      out.v.resize(static_cast<std::size_t>(n * x.c));
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t c = 0; c < x.c; ++c) {
          std::int64_t s = 0;
          for (std::int64_t y = 0; y < x.h; ++y)
            for (std::int64_t xx = 0; xx < x.w; ++xx) s += x.at(i, y, xx, c);
          std::int64_t y = round_shift(s * pl->qm, pl->rshift);
          y = y < pl->lo ? pl->lo : (y > pl->hi ? pl->hi : y);
          out.v[static_cast<std::size_t>(i * x.c + c)] = static_cast<std::uint8_t>(y);
        }
    } else if (const auto* rm = std::get_if<md::remap_layer>(&L)) {
      const tensor& x = ts[static_cast<std::size_t>(rm->input)];
      out.n = n;
      out.h = x.h;
      out.w = x.w;
      out.c = x.c;
      out.v.resize(x.v.size());
      for (std::size_t j = 0; j < x.v.size(); ++j) out.v[j] = rm->table[x.v[j]];
    } else {
      const auto& fc = std::get<md::linear_layer>(L);
      const tensor& x = ts[static_cast<std::size_t>(fc.input)];
      const std::int64_t k = x.h * x.w * x.c;
      for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t o = 0; o < fc.c_out; ++o) {
          std::int64_t acc = fc.bias[static_cast<std::size_t>(o)];
          for (std::int64_t j = 0; j < k; ++j)
            acc += weight_of(fc.codes[static_cast<std::size_t>(o * k + j)], fc.grid) *
                   (x.v[static_cast<std::size_t>(i * k + j)] - zp_of(fc.input, j % x.c));
          REQUIRE(acc >= INT32_MIN);
          REQUIRE(acc <= INT32_MAX);
          logits.push_back(acc);
        }
    }
    ts.push_back(std::move(out));
  }
  return logits;
}

/// (qm, rshift) for a real multiplier, qm in [2^30, 2^31) where possible,
/// rshift capped at max_shift (then qm is smaller).
inline void make_multiplier(double m, int max_shift, std::int32_t& qm, std::int32_t& rshift) {
  int s = 1;
  while (s < max_shift && m * std::ldexp(1.0, s) < 1073741824.0) ++s;
  double q = std::nearbyint(m * std::ldexp(1.0, s));
  if (q >= 2147483648.0) q = 2147483647.0;
  qm = static_cast<std::int32_t>(q);
  rshift = s;
}

struct random_options {
  std::int32_t h = 8, w = 8, c = 3;
  int min_bits = 2, max_bits = 8;
  std::int32_t width = 8;  ///< channels of the first stage (doubled at the stride-2 stage)
  std::int32_t classes = 10;
  bool odd_grids = true;
  bool input_zero_points = true;
  bool one_by_one = true;  ///< include a 1x1 conv
  bool offsets = true;     ///< every other conv carries rounding offsets
  bool remap = false;      ///< the first block's conv1 reads the stem through a code table
};

/// Fills the requantization of channel arrays so outputs spread over [lo, hi].
/// res_mult > 0: the layer has a residual worth about res_mult output steps per
/// code; rshift is then capped so that res_qm = res_mult * 2^rshift fits int32.
inline void random_requant(md::conv_layer& cv, std::int64_t in_hi, double res_mult, rng& r) {
  const bool residual = res_mult > 0;
  int max_shift = 62;
  if (residual) {
    max_shift = 30;
    while (max_shift > 1 && res_mult * 1.5 * std::ldexp(1.0, max_shift) >= 2147483647.0)
      --max_shift;
  }
  const std::int64_t k = std::int64_t(cv.kernel) * cv.kernel * cv.c_in;
  const std::size_t n = static_cast<std::size_t>(cv.c_out);
  cv.bias.resize(n);
  cv.qm.resize(n);
  cv.rshift.resize(n);
  if (residual) cv.res_qm.assign(n, 0);
  const double wmag = std::ldexp(1.0, cv.w_bits - 2) * (cv.grid == md::weight_grid::odd ? 2 : 1);
  const double sigma = std::sqrt(double(k)) * wmag * double(in_hi) * 0.6 + 1.0;
  for (std::size_t o = 0; o < n; ++o) {
    const double target = double(cv.hi) + 1.0;
    const double m = target / (3.0 * sigma) * (0.5 + r.real());
    make_multiplier(m, max_shift, cv.qm[o], cv.rshift[o]);
    cv.bias[o] = static_cast<std::int32_t>(
        r.uniform(-static_cast<std::int64_t>(sigma), static_cast<std::int64_t>(2 * sigma)));
    if (r.coin(0.05)) cv.qm[o] = 0;  // a dead channel
  }
}

/// A random ResNet-shaped model: stem conv, a block with an identity
/// residual, a stride-2 block with an option-A residual, optionally a 1x1
/// conv, global average pooling and the final linear layer.
inline md::model random_model(rng& r, const random_options& o = {}) {
  md::model m;
  m.input.h = o.h;
  m.input.w = o.w;
  m.input.c = o.c;
  m.input.bits = 8;
  for (std::int32_t c = 0; c < o.c; ++c) {
    m.input.zero_point.push_back(
        static_cast<std::uint8_t>(o.input_zero_points ? r.uniform(0, 255) : 0));
    m.input.scale.push_back(static_cast<float>(0.01 + 0.02 * r.real()));
  }
  if (o.input_zero_points && r.coin(0.5))  // a code table: a random monotone map per channel
    for (std::int32_t c = 0; c < o.c; ++c) {
      const double a = 0.5 + r.real(), b = 40.0 * r.real() - 20.0;
      for (int p = 0; p < 256; ++p) {
        const double v = a * p + b;
        m.input.code_table.push_back(
            static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : std::lround(v))));
      }
    }
  auto bits = [&] { return static_cast<int>(r.uniform(o.min_bits, o.max_bits)); };
  struct tinfo {
    std::int64_t h, w, c, hi;
  };
  std::vector<tinfo> ts{{o.h, o.w, o.c, 255}};
  auto add_conv = [&](std::int32_t input, std::int32_t c_out, int kernel, int stride,
                      std::int32_t residual, int wb, int ob) {
    md::conv_layer cv;
    const tinfo x = ts[static_cast<std::size_t>(input)];
    cv.input = input;
    cv.residual = residual;
    cv.kernel = kernel;
    cv.stride = stride;
    cv.c_in = static_cast<std::int32_t>(x.c);
    cv.c_out = c_out;
    cv.w_bits = wb;
    cv.grid = (o.odd_grids && r.coin(0.4)) ? md::weight_grid::odd : md::weight_grid::signed_codes;
    const std::int64_t cnt = std::int64_t(c_out) * kernel * kernel * x.c;
    const int wmin = -(1 << (wb - 1)), wmax = (1 << (wb - 1)) - 1;
    for (std::int64_t i = 0; i < cnt; ++i)
      cv.codes.push_back(static_cast<std::int8_t>(r.uniform(wmin, wmax)));
    for (std::int32_t c = 0; c < c_out; ++c)
      cv.w_scale.push_back(static_cast<float>(0.001 + 0.01 * r.real()));
    cv.out_bits = ob;
    cv.lo = 0;
    cv.hi = (1 << ob) - 1;
    if (r.coin(0.2)) cv.hi = static_cast<int>(r.uniform(1, cv.hi));  // a clip below the top code
    cv.out_scale = static_cast<float>(0.01 + r.real());
    const int p = kernel / 2;
    tinfo t{(x.h + 2 * p - kernel) / stride + 1, (x.w + 2 * p - kernel) / stride + 1, c_out, cv.hi};
    // a residual code is worth about (hi + 1) / (res.hi + 1) output steps
    const double res_mult =
        residual >= 0 ? double(cv.hi + 1) / double(ts[static_cast<std::size_t>(residual)].hi + 1)
                      : 0.0;
    random_requant(cv, x.hi, res_mult, r);
    if (o.offsets && ts.size() % 2 == 1)  // offsets in [-qm/2, qm/2], drawn without r
      for (std::int32_t c = 0; c < c_out; ++c)
        cv.offset.push_back(static_cast<std::int32_t>(
            std::int64_t(cv.qm[static_cast<std::size_t>(c)]) * ((c * 37 + 11) % 101 - 50) / 100));
    if (residual >= 0) {
      const tinfo res = ts[static_cast<std::size_t>(residual)];
      const bool identity = res.h == t.h && res.w == t.w && res.c == t.c;
      const std::int64_t lo = identity ? 0 : (t.c - res.c) / 2;
      for (std::int64_t c = lo; c < lo + res.c; ++c)
        cv.res_qm[static_cast<std::size_t>(c)] = static_cast<std::int32_t>(std::nearbyint(
            std::ldexp(res_mult * (0.4 + 1.1 * r.real()), cv.rshift[static_cast<std::size_t>(c)]) *
            (r.coin(0.1) ? -1.0 : 1.0)));
    }
    m.layers.emplace_back(std::move(cv));
    ts.push_back(t);
    return static_cast<std::int32_t>(ts.size() - 1);
  };
  const std::int32_t w1 = o.width, w2 = 2 * o.width;
  int b = bits();
  const std::int32_t stem = add_conv(0, w1, 3, 1, -1, 8, b);
  std::int32_t stem_in = stem;  // what the block's conv1 reads
  if (o.remap) {  // a residual stream at b bits, requantized for conv1: a monotone table
    md::remap_layer rm;
    rm.input = stem;
    rm.in_bits = b;
    rm.out_bits = bits();
    rm.lo = 0;
    rm.hi = (1 << rm.out_bits) - 1;
    rm.out_scale = 0.1f;
    const double k = (0.3 + 1.2 * r.real()) * double(rm.hi) / double((1 << b) - 1);
    for (int v = 0; v < (1 << b); ++v)
      rm.table.push_back(static_cast<std::uint8_t>(std::min<long>(rm.hi, std::lround(k * v))));
    const tinfo x = ts[static_cast<std::size_t>(stem)];
    ts.push_back({x.h, x.w, x.c, rm.hi});
    m.layers.emplace_back(std::move(rm));
    stem_in = static_cast<std::int32_t>(ts.size() - 1);
  }
  int b1 = bits();
  const std::int32_t a1 = add_conv(stem_in, w1, 3, 1, -1, bits(), b1);
  const std::int32_t blk1 = add_conv(a1, w1, 3, 1, stem, bits(), bits());
  const std::int32_t a2 = add_conv(blk1, w2, 3, 2, -1, bits(), bits());
  std::int32_t last = add_conv(a2, w2, 3, 1, blk1, bits(), bits());
  if (o.one_by_one) last = add_conv(last, w2, 1, 1, last, bits(), bits());
  md::pool_layer pl;
  pl.input = last;
  const tinfo x = ts[static_cast<std::size_t>(last)];
  pl.out_bits = bits();
  pl.lo = 0;
  pl.hi = (1 << pl.out_bits) - 1;
  make_multiplier(double(pl.hi + 1) / double(x.h * x.w * (x.hi + 1)) * (0.8 + 0.8 * r.real()), 62,
                  pl.qm, pl.rshift);
  pl.out_scale = 0.05f;
  m.layers.emplace_back(pl);
  ts.push_back({1, 1, x.c, pl.hi});
  md::linear_layer fc;
  fc.input = static_cast<std::int32_t>(ts.size() - 1);
  fc.c_in = static_cast<std::int32_t>(x.c);
  fc.c_out = o.classes;
  fc.w_bits = bits();
  fc.grid = (o.odd_grids && r.coin(0.4)) ? md::weight_grid::odd : md::weight_grid::signed_codes;
  const int wmin = -(1 << (fc.w_bits - 1)), wmax = (1 << (fc.w_bits - 1)) - 1;
  for (std::int64_t i = 0; i < std::int64_t(fc.c_in) * fc.c_out; ++i)
    fc.codes.push_back(static_cast<std::int8_t>(r.uniform(wmin, wmax)));
  for (std::int32_t c = 0; c < fc.c_out; ++c) {
    fc.w_scale.push_back(0.01f);
    fc.bias.push_back(static_cast<std::int32_t>(r.uniform(-1000, 1000)));
    fc.logit_scale.push_back(static_cast<float>(0.001 + 0.01 * r.real()));
  }
  m.layers.emplace_back(std::move(fc));
  (void)b1;
  return m;
}

/// Random uint8 HWC images for model m.
inline std::vector<std::uint8_t> random_images(const md::model& m, std::int64_t n, rng& r) {
  std::vector<std::uint8_t> v(static_cast<std::size_t>(n * m.input.h * m.input.w * m.input.c));
  for (auto& x : v) x = static_cast<std::uint8_t>(r.uniform(0, (1 << m.input.bits) - 1));
  return v;
}

}  // namespace dtest
