// Quantizer values against hand-built grids at every bit-width, and the
// exported integer grids against the fake-quantized tensors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/quant/quant.hpp"

using namespace mixq;
using namespace mixq::quant;

namespace {
// The level of `levels` nearest to v (the grid built by enumeration, not by
// the quantizers' formula).
float nearest(const std::vector<float>& levels, float v) {
  float best = levels[0];
  for (float l : levels)
    if (std::fabs(l - v) < std::fabs(best - v)) best = l;
  return best;
}
// Values spread over [lo, hi] avoiding exact ties (irrational offsets).
std::vector<float> sweep(float lo, float hi, int n) {
  std::vector<float> v;
  for (int i = 0; i < n; ++i) v.push_back(lo + (hi - lo) * (i + 0.31830988f) / n);
  return v;
}
tensor from(const std::vector<float>& v, const shape& s) {
  tensor t(s);
  for (size_t i = 0; i < v.size(); ++i) t[static_cast<int64_t>(i)] = v[i];
  return t;
}
}  // namespace

TEST_CASE("LSQ activations: unsigned grid s * {0..2^b-1} at every bit-width") {
  for (int b = 2; b <= 8; ++b) {
    lsq_act q(b);
    const float s = 0.0371f;
    q.set_step(s);
    std::vector<float> levels;
    for (int k = 0; k <= (1 << b) - 1; ++k) levels.push_back(s * static_cast<float>(k));
    const std::vector<float> xs = sweep(-0.5f, s * ((1 << b) + 3), 997);
    tensor x = from(xs, {1, 1, 1, static_cast<int64_t>(xs.size())});
    tape t;
    var y = q.apply(t, t.input(x.view()));
    const act_grid g = q.export_grid();
    CHECK(g.bits == b);
    CHECK(g.zero_point == 0);
    CHECK(g.scale == s);
    for (size_t i = 0; i < xs.size(); ++i) {
      INFO("b=" << b << " x=" << xs[i]);
      REQUIRE(y.value()[static_cast<int64_t>(i)] ==
              doctest::Approx(nearest(levels, xs[i])).epsilon(1e-6));
      // Every output is scale * an integer code in range.
      const float code = y.value()[static_cast<int64_t>(i)] / g.scale;
      CHECK(std::fabs(code - std::nearbyint(code)) < 1e-4f);
      CHECK(code >= -1e-4f);
      CHECK(code <= g.max_code() + 1e-4f);
    }
  }
}

TEST_CASE("LSQ weights: signed grids, full and symmetric, per tensor and per channel") {
  for (weight_range range : {weight_range::full, weight_range::symmetric}) {
    for (bool per_channel : {false, true}) {
      for (int b = 2; b <= 8; ++b) {
        const int64_t co = 3, k = 401;
        lsq_weight q(b, co, per_channel, range);
        const float steps[3] = {0.011f, 0.023f, 0.0057f};
        for (int64_t c = 0; c < (per_channel ? co : 1); ++c) q.set_step(c, steps[c]);
        std::vector<float> wv;
        for (int64_t c = 0; c < co; ++c) {
          const float s = steps[per_channel ? c : 0];
          for (float v : sweep(-s * ((1 << (b - 1)) + 2), s * ((1 << (b - 1)) + 2), k))
            wv.push_back(v);
        }
        tensor w = from(wv, {co, k});
        parameter p("w", {co, k});
        p.value = w;
        tape t;
        var y = q.apply(t, t.param(p));
        const weight_grid g = q.export_grid(p.value);
        REQUIRE(g.bits == b);
        const int qn = range == weight_range::full ? (1 << (b - 1)) : (1 << (b - 1)) - 1;
        const int qp = (1 << (b - 1)) - 1;
        for (int64_t c = 0; c < co; ++c) {
          const float s = steps[per_channel ? c : 0];
          std::vector<float> levels;
          for (int j = -qn; j <= qp; ++j) levels.push_back(s * static_cast<float>(j));
          for (int64_t i = c * k; i < (c + 1) * k; ++i) {
            INFO("b=" << b << " range=" << (range == weight_range::full) << " ch=" << c);
            REQUIRE(y.value()[i] == doctest::Approx(nearest(levels, w[i])).epsilon(1e-6));
            // The exported grid reproduces the fake-quantized value bit for bit.
            REQUIRE(g.value(i) == y.value()[i]);
            REQUIRE(g.codes[static_cast<size_t>(i)] >= -qn);
            REQUIRE(g.codes[static_cast<size_t>(i)] <= qp);
          }
        }
      }
    }
  }
}

namespace {
// Squared quantization error of xs on the codes [-qn, qp] at step s.
double quant_error(const std::vector<float>& xs, double s, int qn, int qp) {
  double e = 0.0;
  for (float x : xs) {
    const double c = std::min(std::max(std::nearbyint(x / s), -static_cast<double>(qn)),
                              static_cast<double>(qp));
    e += (x - s * c) * (x - s * c);
  }
  return e;
}
std::vector<float> gaussian(int n, uint64_t seed, bool relu) {
  rng r(seed);
  std::vector<float> v;
  for (int i = 0; i < n; ++i) {
    const float x = static_cast<float>(r.normal());
    v.push_back(relu ? std::max(x, 0.0f) : x);
  }
  return v;
}
}  // namespace

TEST_CASE("LSQ step initialisation: mse finds an exact grid and beats LSQ's rule") {
  // Values on the 2-bit full grid 0.3 * {-2, -1, 0, 1}: the search finds 0.3.
  std::vector<float> on_grid;
  for (int i = 0; i < 40; ++i) on_grid.push_back(0.3f * static_cast<float>(i % 4 - 2));
  CHECK(quant::detail::mse_step(on_grid.data(), 40, 2, 1) == doctest::Approx(0.3).epsilon(1e-6));
  std::vector<float> zeros(16, 0.0f);
  CHECK(quant::detail::mse_step(zeros.data(), 16, 2, 1) == 0.0);
  // Bell-shaped weights (signed) and ReLU outputs (unsigned): at every width the
  // searched step quantizes with no more error than LSQ's 2 mean|x| / sqrt(Qp).
  const std::vector<float> w = gaussian(4000, 3, false), a = gaussian(4000, 4, true);
  for (int b = 2; b <= 8; ++b) {
    INFO("b=" << b);
    const signed_range r = weight_codes(b, weight_range::full);
    double mean_w = 0.0, mean_a = 0.0;
    for (float x : w) mean_w += std::fabs(x) / w.size();
    for (float x : a) mean_a += x / a.size();
    const double lsq_w = 2.0 * mean_w / std::sqrt(static_cast<double>(r.qp));
    const double mse_w = quant::detail::mse_step(w.data(), 4000, r.qn, r.qp);
    CHECK(quant_error(w, mse_w, r.qn, r.qp) <= quant_error(w, lsq_w, r.qn, r.qp));
    const int qa = act_max_code(b);
    const double lsq_a = 2.0 * mean_a / std::sqrt(static_cast<double>(qa));
    const double mse_a = quant::detail::mse_step(a.data(), 4000, 0, qa);
    CHECK(quant_error(a, mse_a, 0, qa) <= quant_error(a, lsq_a, 0, qa));
    if (b == 2) {  // where LSQ's rule clips hardest, a clear gain
      CHECK(quant_error(w, mse_w, r.qn, r.qp) < 0.9 * quant_error(w, lsq_w, r.qn, r.qp));
    }
  }
  // The quantizers use the search on their first data, per channel for weights.
  lsq_weight q(2, 2, true, weight_range::full, false, step_init::mse);
  std::vector<float> wv = w;
  wv.resize(2 * 500);
  for (int i = 500; i < 1000; ++i) wv[static_cast<size_t>(i)] *= 3.0f;  // a wider channel
  parameter p("w", {2, 500});
  p.value = from(wv, {2, 500});
  tape t;
  q.apply(t, t.param(p));
  REQUIRE(q.ready());
  for (int64_t c = 0; c < 2; ++c)
    CHECK(q.step_at(c, 2) ==
          doctest::Approx(quant::detail::mse_step(wv.data() + 500 * c, 500, 2, 1)).epsilon(1e-6));
  CHECK(q.step_at(1, 2) > 2.5f * q.step_at(0, 2));
  lsq_act qa(3, false, step_init::mse);
  tensor x = from(a, {1, 1, 1, 4000});
  tape t2;
  qa.apply(t2, t2.input(x.view()));
  CHECK(qa.step_at(3) ==
        doctest::Approx(quant::detail::mse_step(a.data(), 4000, 0, 7)).epsilon(1e-6));
}

TEST_CASE("PACT: grid alpha/(2^b-1) * {0..2^b-1}, clipped at alpha") {
  for (int b = 2; b <= 8; ++b) {
    pact_options o;
    o.init = 1.7f;
    pact q(b, o);
    const float a = 1.7f, n = static_cast<float>((1 << b) - 1);
    std::vector<float> levels;
    for (int k = 0; k <= (1 << b) - 1; ++k) levels.push_back(a * static_cast<float>(k) / n);
    const std::vector<float> xs = sweep(-1.0f, 3.0f, 1009);
    tensor x = from(xs, {1, static_cast<int64_t>(xs.size())});
    tape t;
    var y = q.apply(t, t.input(x.view()));
    const act_grid g = q.export_grid();
    CHECK(g.scale == doctest::Approx(a / n));
    for (size_t i = 0; i < xs.size(); ++i) {
      INFO("b=" << b << " x=" << xs[i]);
      REQUIRE(y.value()[static_cast<int64_t>(i)] ==
              doctest::Approx(nearest(levels, xs[i])).epsilon(1e-5));
    }
  }
}

TEST_CASE("reset_range: PACT recalibrates or returns to its fixed clip; LSQ forgets its step") {
  const std::vector<float> small = sweep(0.0f, 1.0f, 1001), large = sweep(0.0f, 4.0f, 1001);
  tensor xs = from(small, {1, 1001}), xl = from(large, {1, 1001});
  pact calibrated(4);  // init 0: the 99.9th percentile of the first forward
  {
    tape t;
    calibrated.apply(t, t.input(xs.view()));
  }
  CHECK(calibrated.clip() == doctest::Approx(0.999f).epsilon(1e-3));
  calibrated.alpha.value[0] = 0.3f;  // as if trained
  calibrated.reset_range();
  CHECK_FALSE(calibrated.ready());
  {
    tape t;
    calibrated.apply(t, t.input(xl.view()));
  }
  CHECK(calibrated.clip() == doctest::Approx(3.996f).epsilon(1e-3));

  pact_options o;
  o.init = 1.7f;
  pact fixed(4, o);
  fixed.alpha.value[0] = 0.3f;
  fixed.reset_range();
  CHECK(fixed.ready());
  CHECK(fixed.clip() == 1.7f);

  lsq_act a(4);
  {
    tape t;
    a.apply(t, t.input(xs.view()));
  }
  CHECK(a.ready());
  quantizer& base = a;  // through the base class, as the quantized --init calls it
  base.reset_range();
  CHECK_FALSE(a.ready());
}

TEST_CASE("DoReFa: 2^b odd levels of tanh(w)/max|tanh w|; grid codes c with value scale*(c+1/2)") {
  for (dorefa_scale sm : {dorefa_scale::unit, dorefa_scale::max}) {
    for (int b = 2; b <= 8; ++b) {
      const std::vector<float> wv = sweep(-0.9f, 0.9f, 1201);
      parameter p("w", {1, static_cast<int64_t>(wv.size())});
      p.value = from(wv, p.shape());
      dorefa_weight q(b, sm);
      tape t;
      var y = q.apply(t, t.param(p));
      float m = 0;
      for (float v : wv) m = std::max(m, std::fabs(std::tanh(v)));
      const float S = sm == dorefa_scale::max ? m : 1.0f;
      const int n = (1 << b) - 1;
      std::vector<float> levels;  // S * (2j/n - 1), j = 0..n: odd multiples of S/n
      for (int j = 0; j <= n; ++j) levels.push_back(S * (2.0f * j - n) / n);
      const weight_grid g = q.export_grid(p.value);
      CHECK(g.zero_point == -0.5f);
      CHECK(g.scale.size() == 1);
      for (size_t i = 0; i < wv.size(); ++i) {
        INFO("b=" << b << " w=" << wv[i]);
        const float target = S * std::tanh(wv[i]) / m;
        REQUIRE(y.value()[static_cast<int64_t>(i)] ==
                doctest::Approx(nearest(levels, target)).epsilon(1e-5));
        REQUIRE(g.value(static_cast<int64_t>(i)) == y.value()[static_cast<int64_t>(i)]);
        REQUIRE(g.codes[i] >= -(1 << (b - 1)));
        REQUIRE(g.codes[i] <= (1 << (b - 1)) - 1);
      }
      // Both extremes are reached: 2^b levels in use.
      CHECK(*std::min_element(g.codes.begin(), g.codes.end()) == -(1 << (b - 1)));
      CHECK(*std::max_element(g.codes.begin(), g.codes.end()) == (1 << (b - 1)) - 1);
    }
  }
}

TEST_CASE(
    "input_quant: 8-bit affine grid; normalised 0 is the zero point; the code table matches") {
  const std::vector<float> mean = {0.4914f, 0.4822f, 0.4465f}, sd = {0.2470f, 0.2435f, 0.2616f};
  input_quant q(mean, sd);
  const act_grid g = q.export_grid();
  CHECK(g.bits == 8);
  CHECK(g.zero_point > 0);
  CHECK(g.zero_point < 255);
  // Zero padding of the normalised input is exactly the code z.
  CHECK(q.code(0.0f) == g.zero_point);
  const std::vector<uint8_t> table = q.code_table();
  REQUIRE(table.size() == 3 * 256);
  // Every pixel of every channel: the forward of the normalised value is
  // scale * (table code - z), bit for bit.
  tensor x({1, 16, 16, 3});
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 256; ++p) x[p * 3 + c] = input_quant::normalized(p, mean[c], sd[c]);
  tape t;
  var y = q.apply(t, t.input(x.view()));
  int distinct_max = 0;
  for (int c = 0; c < 3; ++c) {
    int prev = -1, distinct = 0;
    for (int p = 0; p < 256; ++p) {
      const int code = table[c * 256 + p];
      REQUIRE(y.value()[p * 3 + c] == g.scale * static_cast<float>(code - g.zero_point));
      CHECK(code >= prev);  // monotone in the pixel
      distinct += code != prev;
      prev = code;
    }
    distinct_max = std::max(distinct_max, distinct);
  }
  CHECK(distinct_max >= 240);  // about one code per pixel value
}

TEST_CASE("bits: run-time widths in [2, 8]; ceil exact at integers; one clear error outside") {
  CHECK(ceil_bits(4.0) == 4);
  CHECK(ceil_bits(4.0001) == 5);
  CHECK(ceil_bits(3.9999) == 4);
  CHECK(ceil_bits(2.0) == 2);
  CHECK(ceil_bits(8.0) == 8);
  CHECK(ceil_bits(static_cast<double>(4.0f)) == 4);
  lsq_act q(4);
  for (int b = 2; b <= 8; ++b) {
    q.set_bits(b);
    CHECK(q.bits() == b);
  }
  CHECK_THROWS_AS(q.set_bits(1), mixq::error);
  CHECK_THROWS_AS(q.set_bits(9), mixq::error);
  CHECK_THROWS_AS(lsq_act(0), mixq::error);
  try {
    q.set_bits(9);
  } catch (const mixq::error& e) {
    CHECK(std::string(e.what()).find("[2, 8]") != std::string::npos);
  }
}

TEST_CASE(
    "LSQ step band: steps clamped to [m / (B_b Qp), m / Qp] per channel, written back only in "
    "training") {
  // three channels: one step far above its weights, one below zero, one inside the band
  const int64_t co = 3, per = 64;
  std::vector<float> wv = sweep(-0.4f, 0.5f, static_cast<int>(co * per));
  for (int64_t i = per; i < 2 * per; ++i) wv[static_cast<size_t>(i)] *= 2.0f;
  parameter p("w", {co, per});
  p.value = from(wv, {co, per});
  auto max_abs = [&](int64_t c) {
    float m = 0.0f;
    for (int64_t i = c * per; i < (c + 1) * per; ++i)
      m = std::max(m, std::fabs(wv[static_cast<size_t>(i)]));
    return m;
  };
  for (int b : {2, 5, 8}) {
    INFO("bits " << b);
    const signed_range r = weight_codes(b, weight_range::full);
    const float qp = static_cast<float>(std::max(r.qp, 1));
    const float band = b == 2 ? 16.0f : 2.0f;  // B_b for B = 16 (2 from 5 bits on)
    lsq_weight q(b, co, true);
    q.set_band(16.0);
    const float inside = 0.7f * max_abs(2) / qp;
    q.set_step(0, 100.0f);
    q.set_step(1, 1e-3f);
    q.set_step(2, inside);
    q.step.value[1] = -0.05f;  // driven below zero by an optimizer step
    // without gradients: the clamped steps are used, the parameter stays
    {
      tape t;
      no_grad_guard ng(t);
      q.apply(t, t.param(p));
      CHECK(q.step.value[0] == 100.0f);
      CHECK(q.step.value[1] == -0.05f);
    }
    const weight_grid g = q.export_grid(p.value);
    CHECK(g.scale[0] == doctest::Approx(max_abs(0) / qp));
    CHECK(g.scale[1] == doctest::Approx(max_abs(1) / (band * qp)));
    CHECK(g.scale[2] == doctest::Approx(inside));
    // the largest weight of the clamped-from-above channel (all negative) keeps the end code
    int top = 0;
    for (int64_t i = 0; i < per; ++i)
      top = std::max(top, std::abs(static_cast<int>(g.codes[static_cast<size_t>(i)])));
    CHECK(top == r.qp);
    // with gradients: the same forward, and the parameter is projected into the band
    tape t;
    var y = q.apply(t, t.param(p));
    CHECK(q.step.value[0] == doctest::Approx(max_abs(0) / qp));
    CHECK(q.step.value[1] == doctest::Approx(max_abs(1) / (band * qp)));
    CHECK(q.step.value[2] == doctest::Approx(inside));
    for (int64_t i = 0; i < co * per; ++i) {
      const int64_t c = i / per;
      REQUIRE(y.value()[i] == doctest::Approx(g.scale[static_cast<size_t>(c)] *
                                              static_cast<float>(g.codes[static_cast<size_t>(i)])));
    }
  }
  CHECK(lsq_weight::band_at(16.0, 3) == 8.0);
  CHECK(lsq_weight::band_at(16.0, 4) == 4.0);
  CHECK(lsq_weight::band_at(16.0, 8) == 2.0);
  CHECK(lsq_weight::band_at(1.0, 8) == 1.0);
  CHECK(lsq_weight::band_at(64.0, 6) == 4.0);
  // off (0): the step is used as it is
  lsq_weight off(4, co, true);
  off.set_step(0, 100.0f);
  off.set_step(1, 0.01f);
  off.set_step(2, 0.01f);
  CHECK(off.export_grid(p.value).scale[0] == 100.0f);
  for (double bad : {0.5, -1.0, 2e6, std::nan("")})
    CHECK_THROWS_WITH_AS(off.set_band(bad), doctest::Contains("expected 0 (off) or in [1, "),
                         error);
}
