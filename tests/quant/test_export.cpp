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
  };
  const cfg cases[] = {
      {"LSQ W8A8", 8, 8, quant::weight_family::lsq, quant::act_family::lsq, false},
      {"LSQ W4A4 per-channel", 4, 4, quant::weight_family::lsq, quant::act_family::lsq, true},
      {"LSQ W2A2", 2, 2, quant::weight_family::lsq, quant::act_family::lsq, false},
      {"DoReFa+PACT W4A4", 4, 4, quant::weight_family::dorefa, quant::act_family::pact, false},
      {"DoReFa+PACT W2A2", 2, 2, quant::weight_family::dorefa, quant::act_family::pact, false}};
  std::uint64_t seed = 1;
  for (const cfg& k : cases) {
    quant::qat_config c;
    c.bits_w = k.w;
    c.bits_a = k.a;
    c.weights = k.wf;
    c.acts = k.af;
    c.per_channel = k.per_channel;
    const agreement a = run_case(c, seed++);
    INFO(std::string(k.name) << ": " << a.same_class << "/" << a.images
                             << " same class, max |logit diff| " << a.max_diff << " of max |logit| "
                             << a.max_logit);
    MESSAGE(std::string(k.name) << ": " << a.same_class << "/" << a.images
                                << " same class, max |logit diff| " << a.max_diff
                                << " of max |logit| " << a.max_logit);
    // Classes agree except where a requantization lands on the other side of a
    // rounding boundary (the batch-norm bias and multiplier are rounded to
    // integers; one code off in an early layer moves the logits a little).
    CHECK(a.same_class >= a.images - 1);
    CHECK(a.max_diff <= 0.15 * a.max_logit);
  }
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
