// End-to-end training: a killed-and-resumed run equals a straight run to the
// bit, checkpoints refuse another configuration, and the small CNN really
// learns Fashion-MNIST.
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "mixq/io/fashion_mnist.hpp"
#include "mixq/nn/small_cnn.hpp"
#include "mixq/train/trainer.hpp"

using namespace mixq;

namespace {
bool have_fashion_mnist() {
  try {
    io::fashion_mnist_data_dir();
    return true;
  } catch (const mixq::error& e) {
    MESSAGE("Fashion-MNIST not found, skipping: " << e.what());
    return false;
  }
}

std::string temp_dir(const char* tag) {
  std::string d = std::string(MIXQ_BINARY_DIR) + "/test_tmp/" + tag;
  std::string cmd = "rm -rf '" + d + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return d;
}

train::fit_options small_run(const std::string& out) {
  train::fit_options o;
  o.epochs = 2;
  o.batch_size = 64;
  o.lr = 0.05;
  o.warmup_epochs = 0.5;
  o.seed = 7;
  o.augment = true;  // exercise crop/flip determinism across the resume
  o.mean = {0.286f};
  o.stddev = {0.353f};
  o.out_dir = out;
  o.progress = false;
  o.config_tag = "test-resume";
  return o;
}

bool same_bits(nn::module& a, nn::module& b) {
  auto sa = a.state_dict(), sb = b.state_dict();
  if (sa.size() != sb.size()) return false;
  for (size_t i = 0; i < sa.size(); ++i) {
    if (sa[i].first != sb[i].first || sa[i].second.numel() != sb[i].second.numel()) return false;
    if (std::memcmp(sa[i].second.data(), sb[i].second.data(),
                    static_cast<size_t>(sa[i].second.numel()) * sizeof(float)) != 0)
      return false;
  }
  return true;
}
}  // namespace

TEST_CASE("2 epochs straight == 1 epoch, kill, resume, 1 epoch (bit for bit)") {
  if (!have_fashion_mnist()) return;
  io::load_options lo;
  lo.max_images = 640;
  io::image_dataset train = io::load_fashion_mnist_auto(io::split::train, lo);

  nn::small_cnn_options mo;
  mo.c1 = 8;
  mo.c2 = 8;
  nn::small_cnn straight(mo);
  auto r1 = train::fit(straight, train, nullptr, small_run(temp_dir("straight")));
  CHECK(r1.history.size() == 2);

  const std::string dir = temp_dir("resumed");
  {
    nn::small_cnn first(mo);
    auto o = small_run(dir);
    o.stop_after_epoch = 1;  // "killed" after the first epoch's checkpoint
    auto r = train::fit(first, train, nullptr, o);
    CHECK(r.history.size() == 1);
    CHECK_FALSE(same_bits(first, straight));
  }
  nn::small_cnn resumed(mo);
  auto o = small_run(dir);
  o.resume = true;
  auto r2 = train::fit(resumed, train, nullptr, o);
  CHECK(r2.first_epoch == 1);
  CHECK(r2.history.size() == 1);
  CHECK(same_bits(resumed, straight));
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
  if (!have_fashion_mnist()) return;
  io::load_options lo;
  lo.max_images = 128;
  io::image_dataset train = io::load_fashion_mnist_auto(io::split::train, lo);
  nn::small_cnn_options mo;
  mo.c1 = 4;
  mo.c2 = 4;
  const std::string dir = temp_dir("corrupt");
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

TEST_CASE("small CNN learns Fashion-MNIST to >= 85% test accuracy") {
  if (!have_fashion_mnist()) return;
  io::image_dataset train = io::load_fashion_mnist_auto(io::split::train);
  io::image_dataset test = io::load_fashion_mnist_auto(io::split::test);
  nn::small_cnn model{nn::small_cnn_options{}};
  train::fit_options o;
  o.epochs = 1;
  o.batch_size = 128;
  o.lr = 0.05;
  o.weight_decay = 5e-4;
  o.warmup_epochs = 0.1;
  o.augment = false;
  o.mean = {0.286f};
  o.stddev = {0.353f};
  o.progress = false;
  auto r = train::fit(model, train, &test, o);
  MESSAGE("Fashion-MNIST small CNN: test accuracy " << 100.0 * r.test_acc << "% after 1 epoch in "
                                                    << r.wall_seconds << " s");
  CHECK(r.test_acc >= 0.85);
}
