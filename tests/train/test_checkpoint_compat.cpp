// Checkpoints and model files written by an older mixq (commit fd58168,
// tests/train/data/README.md) load bit for bit, and the run resumes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "../common/datasets.hpp"
#include "../common/files.hpp"
#include "../common/modules.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/nn/small_cnn.hpp"
#include "mixq/train/trainer.hpp"

using namespace mixq;

namespace {
const std::string fixture_dir = std::string(MIXQ_SOURCE_DIR) + "/tests/train/data";

nn::small_cnn_options fixture_model() {
  nn::small_cnn_options mo;
  mo.height = 8;
  mo.width = 8;
  mo.c1 = 2;
  mo.c2 = 2;
  mo.classes = 3;
  mo.seed = 5;
  return mo;
}

bool same_floats(const float* a, const std::vector<float>& b, int64_t n) {
  return static_cast<int64_t>(b.size()) == n &&
         std::memcmp(a, b.data(), b.size() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("checkpoint of fd58168: every tensor, momentum and counter restored exactly") {
  const std::string path = fixture_dir + "/fd58168_checkpoint.mixq";
  const io::archive raw = io::load_archive(path);
  nn::small_cnn m(fixture_model());
  optim::sgd opt(m.parameters(), optim::sgd_options{});
  const train::checkpoint_state st = train::load_checkpoint(path, m, opt);
  CHECK(st.epoch == 1);
  CHECK(st.method == "fp32");  // written before methods existed
  CHECK(st.extra.at("config") == "old-fixture");
  CHECK(opt.steps() == 3);  // 40 images in batches of 16
  int buffers = 0;
  for (auto& e : m.state_dict()) {
    CAPTURE(e.first);
    CHECK(same_floats(e.second.data(), raw.get<float>("model/" + e.first), e.second.numel()));
    buffers += e.first.find("running_") != std::string::npos ? 1 : 0;
  }
  CHECK(buffers == 6);  // running mean and variance of three batch norms
  for (auto& e : opt.state()) {
    CAPTURE(e.first);
    CHECK(same_floats(e.second->data(), raw.get<float>("optim/" + e.first + "/momentum"),
                      e.second->numel()));
  }
}

TEST_CASE("model file of fd58168 loads, and equals the checkpoint's model") {
  nn::small_cnn from_model(fixture_model()), from_ckpt(fixture_model());
  nn::load_model(fixture_dir + "/fd58168_model.mixq", from_model);
  nn::load_model(fixture_dir + "/fd58168_checkpoint.mixq", from_ckpt);
  CHECK(mixq_test::state_difference(from_model, from_ckpt) == "");
}

TEST_CASE("a run checkpointed by fd58168 resumes with today's trainer") {
  mixq_test::temp_dir d;
  std::filesystem::copy_file(fixture_dir + "/fd58168_checkpoint.mixq", d.file("checkpoint.mixq"));
  const io::image_dataset ds = mixq_test::synthetic_images(40, 8, 8, 1, 3);
  nn::small_cnn m(fixture_model());
  train::fit_options o;
  o.epochs = 3;
  o.data.batch_size = 16;
  o.data.seed = 3;
  o.data.augment = false;
  o.sgd.lr = 0.05;
  o.out_dir = d.path();
  o.progress = false;
  o.resume = true;
  o.config_tag = "old-fixture";
  const train::fit_result r = train::fit(m, ds, nullptr, o);
  CHECK(r.first_epoch == 1);
  REQUIRE(r.history.size() == 2u);
  CHECK(std::isfinite(r.history[1].train_loss));
  // The new checkpoint carries the method; the old one's keys are all still there.
  const io::archive now = io::load_archive(d.file("checkpoint.mixq"));
  CHECK(now.meta("method") == "fp32");
  CHECK(now.meta_int("epoch") == 3);
  CHECK(now.meta_int("optim_steps") == 9);
  const io::archive old = io::load_archive(fixture_dir + "/fd58168_checkpoint.mixq");
  for (const auto& e : old.entries()) CHECK(now.contains(e.name));
  for (const auto& kv : old.metadata()) CHECK(now.has_meta(kv.first));
}
