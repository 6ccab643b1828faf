// End-to-end training: a killed-and-resumed run equals a straight run to the
// bit, checkpoints refuse another configuration, and the small CNN really
// learns Fashion-MNIST.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <string>

#include "../common/data.hpp"
#include "../common/files.hpp"
#include "../common/modules.hpp"
#include "mixq/io/fashion_mnist.hpp"
#include "mixq/nn/small_cnn.hpp"
#include "mixq/train/trainer.hpp"

using namespace mixq;

namespace {
io::image_dataset fashion_mnist(io::split s, int64_t max_images = 0) {
  io::load_options lo;
  lo.max_images = max_images;
  return io::load_fashion_mnist(mixq_test::fashion_mnist_dir_or_skip(), s, lo);
}

train::fit_options small_run(const std::string& out) {
  train::fit_options o;
  o.epochs = 2;
  o.data.batch_size = 64;
  o.data.seed = 7;
  o.data.augment = true;  // exercise crop/flip determinism across the resume
  o.sgd.lr = 0.05;
  o.schedule.warmup_epochs = 0.5;
  o.out_dir = out;
  o.progress = false;
  o.config_tag = "test-resume";
  return o;
}

}  // namespace

TEST_CASE("2 epochs straight == 1 epoch, kill, resume, 1 epoch (bit for bit)") {
  if (mixq_test::fashion_mnist_dir_or_skip().empty()) return;
  const io::image_dataset train = fashion_mnist(io::split::train, 640);

  nn::small_cnn_options mo;
  mo.c1 = 8;
  mo.c2 = 8;
  nn::small_cnn straight(mo);
  mixq_test::temp_dir straight_dir, resumed_dir;
  auto r1 = train::fit(straight, train, nullptr, small_run(straight_dir.path()));
  CHECK(r1.history.size() == 2);

  const std::string dir = resumed_dir.path();
  {
    nn::small_cnn first(mo);
    auto o = small_run(dir);
    o.stop_after_epoch = 1;  // "killed" after the first epoch's checkpoint
    auto r = train::fit(first, train, nullptr, o);
    CHECK(r.history.size() == 1);
    CHECK_FALSE(mixq_test::same_state(first, straight));
  }
  nn::small_cnn resumed(mo);
  auto o = small_run(dir);
  o.resume = true;
  auto r2 = train::fit(resumed, train, nullptr, o);
  CHECK(r2.first_epoch == 1);
  CHECK(r2.history.size() == 1);
  CHECK(mixq_test::same_state(resumed, straight));
  CHECK(r2.history[0].train_loss == r1.history[1].train_loss);

  // The metrics CSV has a header and exactly one row per epoch after the resume.
  std::ifstream csv(dir + "/metrics.csv");
  std::string line;
  int rows = -1;
  while (std::getline(csv, line)) ++rows;
  CHECK(rows == 2);

  // Another configuration must not silently continue this checkpoint.
  nn::small_cnn other(mo);
  auto bad = small_run(dir);
  bad.resume = true;
  bad.epochs = 3;
  bad.config_tag = "something-else";
  CHECK_THROWS_WITH_AS(train::fit(other, train, nullptr, bad), doctest::Contains("configuration"),
                       mixq::error);
}

TEST_CASE("a corrupted checkpoint is refused with the file named") {
  if (mixq_test::fashion_mnist_dir_or_skip().empty()) return;
  const io::image_dataset train = fashion_mnist(io::split::train, 128);
  nn::small_cnn_options mo;
  mo.c1 = 4;
  mo.c2 = 4;
  mixq_test::temp_dir tmp;
  const std::string dir = tmp.path();
  nn::small_cnn m(mo);
  auto o = small_run(dir);
  o.epochs = 1;
  train::fit(m, train, nullptr, o);
  const std::string ck = dir + "/checkpoint.mixq";
  {
    std::fstream f(ck, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-40, std::ios::end);
    char c = 0x5a;
    f.write(&c, 1);
  }
  nn::small_cnn again(mo);
  o.resume = true;
  o.epochs = 2;
  CHECK_THROWS_WITH_AS(train::fit(again, train, nullptr, o), doctest::Contains("checkpoint.mixq"),
                       mixq::error);
}

// Slow (a full epoch of Fashion-MNIST, about 45 s on two cores): in the
// doctest suite "slow", labelled "slow" in ctest (ctest -LE slow skips it).
TEST_CASE("small CNN learns Fashion-MNIST to >= 85% test accuracy" * doctest::test_suite("slow")) {
  if (mixq_test::fashion_mnist_dir_or_skip().empty()) return;
  const io::image_dataset train = fashion_mnist(io::split::train);
  const io::image_dataset test = fashion_mnist(io::split::test);
  nn::small_cnn model{nn::small_cnn_options{}};
  train::fit_options o;
  o.epochs = 1;
  o.data.batch_size = 128;
  o.data.augment = false;
  o.sgd.lr = 0.05;
  o.sgd.weight_decay = 5e-4;
  o.schedule.warmup_epochs = 0.1;
  o.progress = false;
  auto r = train::fit(model, train, &test, o);
  MESSAGE("Fashion-MNIST small CNN: test accuracy " << 100.0 * r.test_acc << "% after 1 epoch in "
                                                    << r.wall_seconds << " s");
  CHECK(r.test_acc >= 0.85);
}
