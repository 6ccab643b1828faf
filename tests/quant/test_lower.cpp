// Export lowering: DoReFa's odd levels on signed b-bit codes, and the
// batch-norm fold into the integer kernels' requantization reproducing the
// fake-quantized training forward (eval mode) from the same integer
// accumulators: first layer (input zero point, padding), inner layer
// (negative batch-norm scales), residual joining the rounding.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/kernels/requant.hpp"
#include "mixq/nn/nn.hpp"
#include "mixq/quant/quant.hpp"

using namespace mixq;
using namespace mixq::quant;

TEST_CASE("DoReFa lowering: odd level o = 2c + 1, sum(o*a) = 2*sum(c*a) + sum(a), exact") {
  for (int b = 2; b <= 8; ++b) {
    const int64_t co = 5, k = 75;
    tensor w({co, k});
    rng r(100 + b);
    fill_uniform(w.view(), r, -0.8f, 0.8f);
    dorefa_weight q(b, dorefa_scale::unit);
    const weight_grid g = q.export_grid(w);
    const lowered_weights sum = lower_weights(g, odd_lowering::act_sum);
    CHECK(sum.bits == b);
    CHECK(sum.code_mult == 2);
    CHECK(sum.act_sum_coeff == 1);
    std::vector<uint8_t> a(static_cast<size_t>(k));
    for (auto& v : a) v = static_cast<uint8_t>(r.below(256));
    if (b <= 7) {
      const lowered_weights wide = lower_weights(g, odd_lowering::wide);
      CHECK(wide.bits == b + 1);
      for (int8_t c : wide.codes) {
        CHECK(c % 2 != 0);  // odd
        CHECK(c >= -(1 << b) + 1);
        CHECK(c <= (1 << b) - 1);
      }
      for (int64_t n = 0; n < co; ++n) CHECK(wide.acc(n, a.data(), k) == sum.acc(n, a.data(), k));
      CHECK(wide.scale[0] == sum.scale[0]);
    } else {
      CHECK_THROWS_AS(lower_weights(g, odd_lowering::wide), mixq::error);
    }
    // The lowered accumulator times its scale is the float dot product of the
    // fake-quantized weights with the codes.
    tape t;
    parameter p("w", w.shape());
    p.value = w;
    var wq = q.apply(t, t.param(p));
    for (int64_t n = 0; n < co; ++n) {
      double f = 0;
      for (int64_t i = 0; i < k; ++i) f += static_cast<double>(wq.value()[n * k + i]) * a[i];
      CHECK(f == doctest::Approx(sum.scale[0] * static_cast<double>(sum.acc(n, a.data(), k)))
                     .epsilon(1e-5));
    }
  }
}

namespace {
// Integer 3x3 pad-1 stride-1 NHWC convolution of codes with a halo code.
std::vector<int64_t> int_conv(const std::vector<int32_t>& a, int64_t n, int64_t h, int64_t w,
                              int64_t ci, const std::vector<int8_t>& wc, int64_t co, int32_t halo) {
  std::vector<int64_t> out(static_cast<size_t>(n * h * w * co), 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        for (int64_t o = 0; o < co; ++o) {
          int64_t s = 0;
          for (int64_t dy = 0; dy < 3; ++dy)
            for (int64_t dx = 0; dx < 3; ++dx)
              for (int64_t c = 0; c < ci; ++c) {
                const int64_t yy = y + dy - 1, xx = x + dx - 1;
                const int32_t code = (yy < 0 || yy >= h || xx < 0 || xx >= w)
                                         ? halo
                                         : a[static_cast<size_t>(((i * h + yy) * w + xx) * ci + c)];
                s += static_cast<int64_t>(code) *
                     wc[static_cast<size_t>(((o * 3 + dy) * 3 + dx) * ci + c)];
              }
          out[static_cast<size_t>(((i * h + y) * w + x) * co + o)] = s;
        }
  return out;
}

struct fold_case {
  bool first_layer;  // input_quant (zero point, padding with z) instead of an LSQ input
  bool residual;     // add a quantized residual before the output quantizer
  weight_family wf;
};
}  // namespace

TEST_CASE("batch-norm fold: the integer requantization reproduces the fake-quantized forward") {
  const fold_case cases[] = {{false, false, weight_family::lsq},
                             {true, false, weight_family::lsq},
                             {false, true, weight_family::lsq},
                             {false, false, weight_family::dorefa},
                             {false, true, weight_family::dorefa}};
  for (const fold_case& fc : cases) {
    const int64_t n = 4, h = 8, w = 8, ci = fc.first_layer ? 3 : 8, co = 6;
    const int ba = 4, bw = 3, bo = 4;
    rng r(7);
    nn::conv2d conv(ci, co, 3, nn::conv2d_options{1, 1, false}, r);
    nn::batch_norm2d bn(co);
    for (int64_t c = 0; c < co; ++c) {
      bn.weight.value[c] = (c == 2 ? -1.0f : 1.0f) * (0.5f + 0.2f * static_cast<float>(c));
      bn.bias.value[c] = 0.1f * static_cast<float>(c) - 0.2f;
      bn.running_mean[c] = 0.05f * static_cast<float>(c) - 0.1f;
      bn.running_var[c] = 0.3f + 0.1f * static_cast<float>(c);
    }
    bn.eval();
    conv.eval();
    // Input quantizer and codes.
    std::vector<int32_t> codes(static_cast<size_t>(n * h * w * ci));
    tensor x({n, h, w, ci});
    act_quantizer* aq = nullptr;
    int32_t z = 0;
    float s_a = 0;
    if (fc.first_layer) {
      auto iq = std::make_unique<input_quant>(std::vector<float>{0.49f, 0.48f, 0.45f},
                                              std::vector<float>{0.25f, 0.24f, 0.26f});
      for (int64_t i = 0; i < x.numel(); ++i)
        x[i] = input_quant::normalized(static_cast<int>(r.below(256)), 0.49f, 0.25f);
      aq = static_cast<act_quantizer*>(&conv.set_input_transform("input_quant", std::move(iq)));
      for (int64_t i = 0; i < x.numel(); ++i)
        codes[static_cast<size_t>(i)] = static_cast<input_quant*>(aq)->code(x[i]);
      z = aq->export_grid().zero_point;
    } else {
      auto lq = std::make_unique<lsq_act>(ba);
      lq->set_step(0.07f);
      aq = static_cast<act_quantizer*>(&conv.set_input_transform("input_quant", std::move(lq)));
      for (int64_t i = 0; i < x.numel(); ++i)
        x[i] = 0.07f * static_cast<float>(r.below(17)) - 0.02f;
      for (int64_t i = 0; i < x.numel(); ++i)
        codes[static_cast<size_t>(i)] =
            std::min(15, std::max(0, static_cast<int>(std::nearbyint(x[i] / 0.07f))));
    }
    s_a = aq->export_grid().scale;
    weight_quantizer* wq = nullptr;
    if (fc.wf == weight_family::lsq) {
      auto q = std::make_unique<lsq_weight>(bw, co, true, weight_range::symmetric);
      for (int64_t c = 0; c < co; ++c) q->set_step(c, 0.02f + 0.01f * static_cast<float>(c));
      wq = static_cast<weight_quantizer*>(&conv.set_weight_transform("weight_quant", std::move(q)));
    } else {
      wq = static_cast<weight_quantizer*>(&conv.set_weight_transform(
          "weight_quant", std::make_unique<dorefa_weight>(bw, dorefa_scale::unit)));
    }
    lsq_act out_q(bo);
    const float s_out = 0.09f;
    out_q.set_step(s_out);
    // Residual: codes of scale s_r.
    const float s_r = 0.05f;
    std::vector<int32_t> res(static_cast<size_t>(n * h * w * co));
    tensor xr({n, h, w, co});
    for (size_t i = 0; i < res.size(); ++i) {
      res[i] = static_cast<int32_t>(r.below(16));
      xr[static_cast<int64_t>(i)] = s_r * static_cast<float>(res[i]);
    }

    // Training forward (eval mode): quantize(bn(conv(q(x), q(w))) [+ residual]).
    tape t;
    no_grad_guard ng(t);
    var y = bn.forward(t, conv.forward(t, t.input(x.view())));
    if (fc.residual) y = add(y, t.input(xr.view()));
    var yq = out_q.apply(t, y);

    // Integer pipeline.
    const weight_grid g = wq->export_grid(conv.weight.value);
    const lowered_weights lw = lower_weights(g, odd_lowering::act_sum);
    const int64_t k = 9 * ci;
    std::vector<int8_t> wc = lw.codes;
    bn_fold f = fold_bn(s_a, lw.scale, bn.weight.value, bn.bias.value, bn.running_mean,
                        bn.running_var, 1e-5, s_out);
    std::vector<int64_t> acc = int_conv(codes, n, h, w, ci, wc, co, z);
    std::vector<int64_t> asum;
    if (lw.act_sum_coeff) {
      std::vector<int8_t> ones(static_cast<size_t>(co * k), 1);
      asum = int_conv(codes, n, h, w, ci, ones, co, z);
    }
    int64_t equal = 0, total = 0, worst = 0;
    for (int64_t p = 0; p < n * h * w; ++p)
      for (int64_t c = 0; c < co; ++c) {
        const size_t i = static_cast<size_t>(p * co + c);
        int64_t a = lw.code_mult * acc[i] + (lw.act_sum_coeff ? lw.act_sum_coeff * asum[i] : 0);
        int64_t wsum = 0;  // the input zero point: acc of (code - z) = acc - z * sum(w)
        for (int64_t j = 0; j < k; ++j)
          wsum += lw.code_mult * wc[static_cast<size_t>(c * k + j)] + lw.act_sum_coeff;
        a -= static_cast<int64_t>(z) * wsum;
        double m = f.multiplier[static_cast<size_t>(c)], bias = f.bias[static_cast<size_t>(c)];
        if (m < 0) {  // negative gamma: negate the channel (codes and bias)
          m = -m;
          a = -a;
          bias = -bias;
        }
        // With a residual, both multipliers share the shift of the larger one
        // (kernels/requant.hpp: res_qm is an int32 on the channel's shift).
        kernels::quant_multiplier qm = kernels::quantize_multiplier(m);
        int32_t res_qm = 0;
        if (fc.residual) {
          const kernels::quant_multiplier rq = kernels::quantize_multiplier(s_r / s_out);
          if (rq.rshift < qm.rshift) {
            qm.rshift = rq.rshift;
            qm.qm = kernels::multiplier_at_shift(m, qm.rshift);
          }
          res_qm = kernels::multiplier_at_shift(s_r / s_out, qm.rshift);
        }
        const int32_t bias_i = static_cast<int32_t>(std::llround(bias));
        const int code =
            kernels::requant_one(static_cast<int32_t>(a) + bias_i, qm.qm, qm.rshift, 0, 0,
                                 (1 << bo) - 1, fc.residual ? res[i] : 0, res_qm, 0);
        const int trained =
            static_cast<int>(std::nearbyint(yq.value()[static_cast<int64_t>(i)] / s_out));
        equal += code == trained;
        worst = std::max<int64_t>(worst, std::abs(code - trained));
        ++total;
      }
    INFO("first=" << fc.first_layer << " residual=" << fc.residual << " dorefa="
                  << (fc.wf == weight_family::dorefa) << ": " << equal << "/" << total);
    CHECK(worst <= 1);
    CHECK(static_cast<double>(equal) >= 0.995 * static_cast<double>(total));
  }
}
