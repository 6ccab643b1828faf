// Export of quantized ResNets (deploy/export.hpp) and agreement of the
// integer runtime with the fake-quant model it came from: the same images
// (uint8 pixels for the runtime, the loader's normalisation of the same
// pixels for the float model) give the same classes (all but at most one of
// 24 images) and real logits within 15 % of the largest, for LSQ and DoReFa +
// PACT models at several bit pairs (random weights, batch-norm statistics
// from four training forwards).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/deploy/export.hpp"
#include "mixq/deploy/format.hpp"
#include "mixq/deploy/runtime.hpp"
#include "mixq/io/cifar10.hpp"
#include "mixq/nn/nn.hpp"
#include "mixq/quant/quant.hpp"

using namespace mixq;

namespace {

struct agreement {
  std::int64_t images = 0, same_class = 0;
  double max_diff = 0, max_logit = 0;
};

agreement run_case(const quant::qat_config& c, std::uint64_t seed) {
  nn::resnet_options o;
  o.n = 1;  // ResNet8: the same graph as ResNet20, fewer blocks
  o.seed = seed;
  nn::resnet_cifar m(o);
  quant::quantize(m, c);
  const std::int64_t n = 24;
  std::vector<std::uint8_t> pix(static_cast<std::size_t>(n * 32 * 32 * 3));
  rng r(seed + 100);
  for (auto& p : pix) p = static_cast<std::uint8_t>(r.below(256));
  tensor x({n, 32, 32, 3});
  for (std::int64_t i = 0; i < x.numel(); ++i)
    x[i] =
        quant::input_quant::normalized(pix[static_cast<std::size_t>(i)],
                                       io::cifar10::mean_rgb[i % 3], io::cifar10::std_rgb[i % 3]);
  for (int k = 0; k < 4; ++k) {  // training forwards: quantizer ranges and batch-norm statistics
    tape t;
    m.forward(t, t.input(x.view()));
  }
  m.eval();
  tensor want;
  {
    tape t;
    no_grad_guard ng(t);
    want = tensor::from_view(m.forward(t, t.input(x.view())).value());
  }
  const deploy::model dm = deploy::export_resnet(m);
  const auto bytes = deploy::serialize(dm);  // through the file, as shipped
  deploy::runtime_options ro;
  ro.max_batch = n;
  deploy::runtime rt = deploy::runtime::from_memory(bytes.data(), bytes.size(), ro);
  rt.run(pix.data(), n);
  agreement a;
  a.images = n;
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t best = 0;
    for (std::int64_t k = 0; k < 10; ++k) {
      const double f = want[i * 10 + k], q = rt.logit(i, static_cast<std::int32_t>(k));
      a.max_diff = std::fmax(a.max_diff, std::fabs(f - q));
      a.max_logit = std::fmax(a.max_logit, std::fabs(f));
      if (want[i * 10 + k] > want[i * 10 + best]) best = k;
    }
    a.same_class += rt.top1(i) == best;
  }
  return a;
}

}  // namespace

TEST_CASE("export: the integer runtime agrees with the fake-quant model") {
  struct cfg {
    const char* name;
    int w, a;
    quant::weight_family wf;
    quant::act_family af;
    bool per_channel;
    int residual;  // qat_config::residual_bits
  };
  const cfg cases[] = {
      {"LSQ W8A8", 8, 8, quant::weight_family::lsq, quant::act_family::lsq, false, 0},
      {"LSQ W4A4 per-channel", 4, 4, quant::weight_family::lsq, quant::act_family::lsq, true, 0},
      {"LSQ W2A2", 2, 2, quant::weight_family::lsq, quant::act_family::lsq, false, 0},
      {"DoReFa+PACT W4A4", 4, 4, quant::weight_family::dorefa, quant::act_family::pact, false, 0},
      {"DoReFa+PACT W2A2", 2, 2, quant::weight_family::dorefa, quant::act_family::pact, false, 0},
      {"DoReFa+PACT W2A2, 8-bit residual stream", 2, 2, quant::weight_family::dorefa,
       quant::act_family::pact, false, 8},
      {"LSQ W3A3, 5-bit residual stream", 3, 3, quant::weight_family::lsq, quant::act_family::lsq,
       true, 5}};
  std::uint64_t seed = 1;
  for (const cfg& k : cases) {
    quant::qat_config c;
    c.bits_w = k.w;
    c.bits_a = k.a;
    c.weights = k.wf;
    c.acts = k.af;
    c.per_channel = k.per_channel;
    c.residual_bits = k.residual;
    const agreement a = run_case(c, seed++);
    INFO(std::string(k.name) << ": " << a.same_class << "/" << a.images
                             << " same class, max |logit diff| " << a.max_diff << " of max |logit| "
                             << a.max_logit);
    MESSAGE(std::string(k.name) << ": " << a.same_class << "/" << a.images
                                << " same class, max |logit diff| " << a.max_diff
                                << " of max |logit| " << a.max_logit);
    // Classes agree except where a requantization lands on the other side of a
    // rounding boundary (the multiplier's 31 bits, the float rounding of the
    // training forward; one code off in an early layer moves the logits a little).
    CHECK(a.same_class >= a.images - 1);
    CHECK(a.max_diff <= 0.15 * a.max_logit);
  }
}

namespace {

/// Round half away from zero of a real value.
double round_half_away(double v) { return v < 0 ? -std::floor(-v + 0.5) : std::floor(v + 0.5); }

struct fold_check {
  std::int64_t compared = 0, mismatches = 0;
};

/// Runs conv c (on tensor 0, h x w x c_in codes of in_bits bits) through the
/// runtime, its output read back through an identity linear layer, and
/// compares every output code with the exact fold: clamp(rhaz(y / s_out))
/// with y = a_n acc + B_n in double, skipping values within 1e-6 of a tie.
fold_check run_fold(const deploy::conv_layer& c, int h, int w, int in_bits, double s_in,
                    const std::vector<double>& a, const std::vector<double>& B, double s_out,
                    const std::vector<std::int8_t>& codes, const std::vector<std::uint8_t>& x,
                    std::int64_t n) {
  deploy::model dm;
  dm.input.h = h;
  dm.input.w = w;
  dm.input.c = c.c_in;
  dm.input.bits = in_bits;
  dm.input.zero_point.assign(static_cast<std::size_t>(c.c_in), 0);
  dm.input.scale.assign(static_cast<std::size_t>(c.c_in), static_cast<float>(s_in));
  dm.layers.emplace_back(c);
  deploy::linear_layer id;  // logit k = output code k (in h, w, c order)
  id.input = 1;
  id.c_in = id.c_out = h * w * c.c_out;
  id.w_bits = 2;
  id.codes.assign(static_cast<std::size_t>(id.c_in) * static_cast<std::size_t>(id.c_in), 0);
  for (std::int32_t k = 0; k < id.c_in; ++k)
    id.codes[static_cast<std::size_t>(k) * static_cast<std::size_t>(id.c_in + 1)] = 1;
  id.w_scale.assign(static_cast<std::size_t>(id.c_out), 1.0f);
  id.bias.assign(static_cast<std::size_t>(id.c_out), 0);
  id.logit_scale.assign(static_cast<std::size_t>(id.c_out), 1.0f);
  dm.layers.emplace_back(std::move(id));
  const auto bytes = deploy::serialize(dm);
  deploy::runtime_options ro;
  ro.max_batch = n;
  deploy::runtime rt = deploy::runtime::from_memory(bytes.data(), bytes.size(), ro);
  rt.run(x.data(), n);
  const std::int64_t ci = c.c_in, co = c.c_out, per = 9 * ci;
  fold_check r;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t xx = 0; xx < w; ++xx)
        for (std::int64_t ch = 0; ch < co; ++ch) {
          std::int64_t acc = 0;  // the trained (unnegated) weight codes, zero padding
          for (int dy = 0; dy < 3; ++dy)
            for (int dx = 0; dx < 3; ++dx) {
              const std::int64_t iy = y + dy - 1, ix = xx + dx - 1;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              for (std::int64_t k = 0; k < ci; ++k)
                acc += std::int64_t(
                           codes[static_cast<std::size_t>(ch * per + (dy * 3 + dx) * ci + k)]) *
                       x[static_cast<std::size_t>(((i * h + iy) * w + ix) * ci + k)];
            }
          const double v =
              (a[static_cast<std::size_t>(ch)] * double(acc) + B[static_cast<std::size_t>(ch)]) /
              s_out;
          if (std::fabs(std::fabs(v - std::trunc(v)) - 0.5) < 1e-6) continue;  // a tie
          const double want = std::fmin(std::fmax(round_half_away(v), 0.0), double(c.hi));
          const std::int32_t got = rt.logits()[i * h * w * co + (y * w + xx) * co + ch];
          ++r.compared;
          r.mismatches += double(got) != want;
        }
  return r;
}

}  // namespace

TEST_CASE("export: the batch-norm fold is exact to the rounding (fractional biases, offsets)") {
  // A trained block conv with random batch-norm statistics (negative gammas
  // included), exported by export_conv and run on the runtime: every output
  // code equals round-half-away of the exact real value M_n (acc + b_n),
  // except within 1e-6 of a tie. Without the rounding offsets (the bias
  // rounded to a whole accumulator unit) some codes differ, so the offsets
  // are what makes the fold exact.
  for (int bits : {4, 2}) {
    CAPTURE(bits);
    nn::resnet_options o;
    o.n = 1;
    o.seed = 40 + static_cast<std::uint64_t>(bits);
    nn::resnet_cifar m(o);
    quant::qat_config qc;
    qc.bits_w = bits;
    qc.bits_a = bits;
    qc.per_channel = true;
    quant::quantize(m, qc);
    rng r(7 + static_cast<std::uint64_t>(bits));
    tensor xf({2, 32, 32, 3});
    for (std::int64_t i = 0; i < xf.numel(); ++i) xf[i] = float(r.below(2001)) / 1000.0f - 1.0f;
    {
      tape t;  // one training forward: the quantizers see data
      m.forward(t, t.input(xf.view()));
    }
    nn::basic_block& blk = m.block(0, 0);
    nn::conv2d& cv = blk.conv1;
    nn::batch_norm2d& bn = blk.bn1;
    const std::int64_t co = cv.weight.value.shape()[0];
    for (std::int64_t ch = 0; ch < co; ++ch) {
      const float sign = ch % 3 == 1 ? -1.0f : 1.0f;
      bn.weight.value[ch] = sign * (0.5f + float(r.below(1000)) / 1000.0f);
      bn.bias.value[ch] = float(r.below(2001)) / 1000.0f - 1.0f;
      bn.running_mean[ch] = float(r.below(2001)) / 2000.0f - 0.5f;
      bn.running_var[ch] = 0.5f + float(r.below(1000)) / 500.0f;
    }
    auto* wq = dynamic_cast<quant::weight_quantizer*>(cv.weight_transform());
    REQUIRE(wq != nullptr);
    const quant::weight_grid g = wq->export_grid(cv.weight.value);
    REQUIRE(g.zero_point == 0.0f);
    const int h = 6, w = 6, hi = (1 << bits) - 1;
    const std::int64_t n = 8, ci = cv.weight.value.shape()[3], per = 9 * ci;
    const double s_in = 0.05;
    // y = a_n acc + B_n, the real batch-norm output of the fake-quant conv
    std::vector<double> a(static_cast<std::size_t>(co)), B(static_cast<std::size_t>(co));
    for (std::int64_t ch = 0; ch < co; ++ch) {
      const double sigma = std::sqrt(double(bn.running_var[ch]) + double(bn.eps()));
      const double gam = bn.weight.value[ch];
      a[static_cast<std::size_t>(ch)] = gam * s_in * double(g.scale_of(ch * per)) / sigma;
      B[static_cast<std::size_t>(ch)] =
          double(bn.bias.value[ch]) - gam * double(bn.running_mean[ch]) / sigma;
    }
    std::vector<std::uint8_t> x(static_cast<std::size_t>(n * h * w * ci));
    for (auto& v : x) v = static_cast<std::uint8_t>(r.below(static_cast<std::uint32_t>(hi + 1)));
    // an output grid whose step makes the codes spread over the whole range
    double amax = 0;
    for (double v : a) amax = std::fmax(amax, std::fabs(v));
    const double s_out = amax * double(hi) * 1.5;
    quant::act_grid out;
    out.bits = bits;
    out.scale = static_cast<float>(s_out);
    const deploy::conv_layer c =
        deploy::detail::export_conv(cv, bn, s_in, hi, nullptr, out, 0, -1, 0.0, 0, "conv");
    REQUIRE(c.offset.size() == static_cast<std::size_t>(co));
    const fold_check exact = run_fold(c, h, w, bits, s_in, a, B, double(out.scale), g.codes, x, n);
    MESSAGE("W" << bits << "A" << bits << ": " << exact.compared << " codes, " << exact.mismatches
                << " differ from the exact fold");
    CHECK(exact.compared > n * h * w * co / 2);
    CHECK(exact.mismatches == 0);
    deploy::conv_layer no_offsets = c;
    no_offsets.offset.clear();
    const fold_check rounded =
        run_fold(no_offsets, h, w, bits, s_in, a, B, double(out.scale), g.codes, x, n);
    MESSAGE("without the offsets: " << rounded.mismatches << " of " << rounded.compared
                                    << " codes differ");
    CHECK(rounded.mismatches > 0);
  }
}

TEST_CASE("export: a residual stream becomes a remap layer that requantizes every stream code") {
  nn::resnet_options o;
  o.n = 1;
  nn::resnet_cifar m(o);
  quant::qat_config c;
  c.weights = quant::weight_family::dorefa;
  c.acts = quant::act_family::pact;
  c.bits_w = c.bits_a = 2;
  c.residual_bits = 6;
  const quant::qnet net = quant::quantize(m, c);
  REQUIRE(net.streams().size() == 3);  // one per block
  nn::resnet_cifar plain(o);
  quant::qat_config d = c;
  d.residual_bits = 0;
  CHECK(net.bitops() == quant::quantize(plain, d).bitops());  // conv1 still reads 2 bits
  rng r(3);
  tensor x({8, 32, 32, 3});
  for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(r.normal());
  {
    tape t;
    m.forward(t, t.input(x.view()));
  }
  m.eval();
  const deploy::model dm = deploy::export_resnet(m);
  int remaps = 0;
  for (std::size_t li = 0; li < dm.layers.size(); ++li) {
    const auto* rm = std::get_if<deploy::remap_layer>(&dm.layers[li]);
    if (!rm) continue;
    const nn::basic_block& blk = m.block(remaps, 0);
    const auto* stream = dynamic_cast<const quant::pact*>(blk.input_transform());
    const auto* conv1 = dynamic_cast<const quant::pact*>(blk.conv1.input_transform());
    REQUIRE(stream != nullptr);
    REQUIRE(conv1 != nullptr);
    ++remaps;
    CHECK(rm->in_bits == 6);
    CHECK(rm->out_bits == 2);
    REQUIRE(rm->table.size() == 64);
    // PACT's code of a value v >= 0: round(min(v, alpha) * 3 / alpha), ties to even
    const float s_r = stream->clip() / 63.0f, a = conv1->clip();
    for (int k = 0; k < 64; ++k) {
      const float v = std::fmin(s_r * static_cast<float>(k), a);
      CHECK(int(rm->table[static_cast<std::size_t>(k)]) == int(std::nearbyint(v * (3.0f / a))));
    }
    // conv1 reads the remap; the block's conv2 adds the stream itself (the remap's input)
    const auto& c1 = std::get<deploy::conv_layer>(dm.layers[li + 1]);
    const auto& c2 = std::get<deploy::conv_layer>(dm.layers[li + 2]);
    CHECK(c1.input == static_cast<std::int32_t>(li + 1));
    CHECK(c2.residual == rm->input);
  }
  CHECK(remaps == 3);
}

TEST_CASE("export refuses models the runtime cannot run") {
  nn::resnet_cifar plain;  // not quantized
  CHECK_THROWS_WITH_AS(deploy::export_resnet(plain), doctest::Contains("no 8-bit input quantizer"),
                       mixq::error);
  nn::resnet_cifar fresh;
  quant::qat_config c;
  quant::quantize(fresh, c);  // LSQ steps not initialised by data yet
  CHECK_THROWS_WITH_AS(deploy::export_resnet(fresh), doctest::Contains("has not seen data"),
                       mixq::error);
}
