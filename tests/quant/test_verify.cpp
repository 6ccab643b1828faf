// deploy/verify.hpp: the integer runtime over a data set (accuracy, loss,
// predictions in order, whatever the batch) and its agreement with the
// fake-quant model it was exported from.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "mixq/deploy/verify.hpp"
#include "mixq/io/cifar10.hpp"
#include "mixq/nn/nn.hpp"
#include "mixq/quant/quant.hpp"

using namespace mixq;

namespace {

io::image_dataset random_set(std::int64_t n, std::uint64_t seed) {
  io::image_dataset ds;
  ds.name = "random";
  ds.n = n;
  ds.h = ds.w = 32;
  ds.c = 3;
  ds.num_classes = 10;
  ds.images.resize(static_cast<std::size_t>(n * 32 * 32 * 3));
  ds.labels.resize(static_cast<std::size_t>(n));
  rng r(seed);
  for (auto& p : ds.images) p = static_cast<std::uint8_t>(r.below(256));
  for (auto& l : ds.labels) l = static_cast<std::int32_t>(r.below(10));
  ds.mean.assign(io::cifar10::mean_rgb, io::cifar10::mean_rgb + 3);
  ds.stddev.assign(io::cifar10::std_rgb, io::cifar10::std_rgb + 3);
  return ds;
}

// A ResNet8 quantized as c, its quantizers and batch-norm statistics set by
// a few training forwards over ds.
void prepare(nn::resnet_cifar& m, const quant::qat_config& c, const io::image_dataset& ds) {
  quant::quantize(m, c);
  io::batch_loader_options lo;
  lo.batch_size = 16;
  lo.prefetch = 0;
  io::batch_loader ld(ds, lo);
  ld.start_epoch(0);
  io::batch b;
  while (ld.next(b)) {
    tape t;
    m.forward(t, t.input(tensor_view(b.images.data(), shape{b.n, b.h, b.w, b.c})));
  }
}

nn::resnet_options resnet8(std::uint64_t seed) {
  nn::resnet_options o;
  o.n = 1;
  o.seed = seed;
  return o;
}

}  // namespace

TEST_CASE("verify: the runtime over a data set, in any batch size") {
  const io::image_dataset ds = random_set(37, 5);
  nn::resnet_cifar m(resnet8(3));
  quant::qat_config c;
  c.bits_w = 4;
  c.bits_a = 4;
  prepare(m, c, ds);
  m.eval();
  const deploy::model dm = deploy::export_resnet(m);
  std::vector<deploy::integer_eval> runs;
  for (std::int64_t batch : {1, 8, 37, 64}) {
    deploy::runtime_options o;
    o.max_batch = batch;
    deploy::runtime rt(dm, o);
    runs.push_back(deploy::evaluate_integer(rt, ds));
  }
  // one image at a time, by hand
  deploy::runtime one(dm);
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < ds.n; ++i) {
    one.run(ds.image(i), 1);
    CHECK(runs[0].predictions[static_cast<std::size_t>(i)] == one.top1(0));
    correct += one.top1(0) == ds.labels[static_cast<std::size_t>(i)];
  }
  CHECK(runs[0].correct == correct);
  CHECK(runs[0].images == ds.n);
  CHECK(std::isfinite(runs[0].loss));
  CHECK(runs[0].loss > 0);
  for (const auto& r : runs) {
    CHECK(r.predictions == runs[0].predictions);
    CHECK(r.correct == runs[0].correct);
    CHECK(r.loss == doctest::Approx(runs[0].loss).epsilon(1e-12));
  }
}

TEST_CASE("verify: fake-quant and integer models agree on a data set") {
  const io::image_dataset ds = random_set(48, 9);
  nn::resnet_cifar m(resnet8(4));
  quant::qat_config c;
  c.bits_w = 4;
  c.bits_a = 4;
  prepare(m, c, ds);
  io::batch_loader_options lo;
  lo.batch_size = 10;  // not a divisor of 48: the last batch is short
  const std::vector<std::int32_t> f = deploy::float_predictions(m, ds, lo);
  REQUIRE(f.size() == 48u);
  CHECK(m.is_training());  // the model's mode is put back
  const deploy::agreement a = deploy::compare_with_runtime(m, ds, lo);
  CHECK(a.images == 48);
  std::int64_t fc = 0;
  for (std::size_t i = 0; i < f.size(); ++i) fc += f[i] == ds.labels[i];
  CHECK(a.float_correct == fc);
  MESSAGE("LSQ W4A4 ResNet8, random weights: " << a.same << "/48 same class");
  CHECK(a.same >= 46);  // rounding of the folded requantization only
}

TEST_CASE("verify: a data set of another image size is refused") {
  io::image_dataset ds = random_set(4, 1);
  nn::resnet_cifar m(resnet8(2));
  prepare(m, quant::qat_config{}, ds);
  deploy::runtime rt(deploy::export_resnet(m));
  ds.h = ds.w = 16;
  ds.images.resize(static_cast<std::size_t>(4 * 16 * 16 * 3));
  CHECK_THROWS_WITH_AS(deploy::evaluate_integer(rt, ds), doctest::Contains("holds 16x16x3"),
                       mixq::error);
}
