// Model files and checkpoints that do not fit the model are refused whole,
// never loaded in part; fit() refuses options that would be undefined
// behaviour, and a metrics file it cannot write stops training.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <string>

#include "mixq/nn/model_file.hpp"
#include "mixq/nn/resnet.hpp"
#include "mixq/nn/small_cnn.hpp"
#include "mixq/train/checkpoint.hpp"
#include "mixq/train/trainer.hpp"

using namespace mixq;

namespace {
std::string fresh_dir(const char* tag) {
  std::string d = std::string(MIXQ_BINARY_DIR) + "/test_tmp/hostile_" + tag;
  REQUIRE(std::system(("rm -rf '" + d + "' && mkdir -p '" + d + "'").c_str()) == 0);
  return d;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const mixq::error& e) {
    return e.what();
  }
  FAIL_CHECK("expected mixq::error");
  return "";
}
bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

nn::resnet_cifar resnet(int n) {
  nn::resnet_options o;
  o.n = n;
  return nn::resnet_cifar(o);
}

// All parameters and buffers of m, concatenated.
std::vector<float> values(nn::module& m) {
  std::vector<float> v;
  for (auto& e : m.state_dict())
    v.insert(v.end(), e.second.data(), e.second.data() + e.second.numel());
  return v;
}

// 16 grey 8x8 images with labels 0..9.
io::image_dataset tiny_data() {
  io::image_dataset ds;
  ds.name = "tiny";
  ds.n = 16;
  ds.h = ds.w = 8;
  ds.c = 1;
  ds.num_classes = 10;
  for (int i = 0; i < 16 * 64; ++i) ds.images.push_back(static_cast<std::uint8_t>(i * 37));
  for (int i = 0; i < 16; ++i) ds.labels.push_back(i % 10);
  ds.mean = {0.5f};
  ds.stddev = {0.25f};
  return ds;
}
nn::small_cnn_options tiny_cnn() {
  nn::small_cnn_options o;
  o.height = o.width = 8;
  o.c1 = o.c2 = 2;
  return o;
}
train::fit_options tiny_fit(const std::string& out) {
  train::fit_options o;
  o.epochs = 1;
  o.data.batch_size = 8;
  o.out_dir = out;
  o.progress = false;
  return o;
}
}  // namespace

TEST_CASE("load_model: ResNet20 weights are refused by a ResNet8, and the other way round") {
  const std::string dir = fresh_dir("arch");
  auto r20 = resnet(3);
  nn::save_model(dir + "/r20.mixq", r20, {{"arch", "resnet20"}});
  auto r8 = resnet(1);
  const auto before = values(r8);
  const std::string msg = error_of([&] { nn::load_model(dir + "/r20.mixq", r8); });
  CHECK(contains(msg,
                 "matches no tensor of this model (another architecture? the file's arch "
                 "is 'resnet20')"));
  CHECK(values(r8) == before);  // nothing loaded in part

  nn::save_model(dir + "/r8.mixq", r8, {{"arch", "resnet8"}});
  auto r20b = resnet(3);
  CHECK(contains(error_of([&] { nn::load_model(dir + "/r8.mixq", r20b); }), "is missing"));
  // The caller may also name what it expects.
  auto r8b = resnet(1);
  CHECK(contains(error_of([&] {
                   nn::load_model(dir + "/r8.mixq", r8b, {{"arch", "resnet20"}});
                 }),
                 "metadata 'arch' is 'resnet8', expected 'resnet20'"));
  CHECK_NOTHROW(nn::load_model(dir + "/r8.mixq", r8b, {{"arch", "resnet8"}}));
  CHECK(values(r8b) == values(r8));
}

TEST_CASE("load_model and load_checkpoint check the kind of file") {
  const std::string dir = fresh_dir("kind");
  auto m = resnet(1);
  optim::sgd opt(m.parameters(), optim::sgd_options{});
  train::save_checkpoint(dir + "/ck.mixq", m, opt, train::checkpoint_state{});
  nn::save_model(dir + "/model.mixq", m);
  CHECK_NOTHROW(nn::load_model(dir + "/ck.mixq", m));  // the model part of a checkpoint
  CHECK(contains(error_of([&] { train::load_checkpoint(dir + "/model.mixq", m, opt); }),
                 "metadata 'kind' is 'mixq-model', expected 'mixq-checkpoint'"));
  io::archive other;
  other.set_meta("kind", "something");
  io::save_archive(other, dir + "/other.mixq");
  CHECK(contains(error_of([&] { nn::load_model(dir + "/other.mixq", m); }),
                 "metadata 'kind' is 'something', expected 'mixq-model' or 'mixq-checkpoint'"));
  // A directory where the checkpoint should be: named, not std::bad_alloc.
  REQUIRE(::mkdir((dir + "/d.mixq").c_str(), 0755) == 0);
  CHECK(contains(error_of([&] { train::load_checkpoint(dir + "/d.mixq", m, opt); }),
                 "d.mixq: is a directory"));
  // And a resume does not take it for "no checkpoint yet".
  const auto data = tiny_data();
  nn::small_cnn cnn(tiny_cnn());
  const std::string out = fresh_dir("kind_resume");
  REQUIRE(::mkdir((out + "/checkpoint.mixq").c_str(), 0755) == 0);
  auto o = tiny_fit(out);
  o.resume = true;
  CHECK(contains(error_of([&] { train::fit(cnn, data, nullptr, o); }),
                 "checkpoint.mixq: is a directory"));
}

TEST_CASE(
    "restore_checkpoint: extra, missing or mistyped entries leave model and optimizer unchanged") {
  auto m = resnet(1);
  optim::sgd opt(m.parameters(), optim::sgd_options{});
  train::checkpoint_state st;
  st.epoch = 2;
  st.rngs["loader"] = rng::state_type{1, 3};
  io::archive good;
  {
    const std::string dir = fresh_dir("restore");
    train::save_checkpoint(dir + "/ck.mixq", m, opt, st);
    good = io::load_archive(dir + "/ck.mixq");
  }
  auto target = resnet(1);
  nn::resnet_options other_seed;
  other_seed.n = 1;
  other_seed.seed = 99;
  nn::resnet_cifar fresh(other_seed);
  optim::sgd fresh_opt(fresh.parameters(), optim::sgd_options{});
  const auto before = values(fresh);
  auto refused = [&](io::archive a, const std::string& why) {
    CAPTURE(why);
    CHECK(contains(error_of([&] { train::restore_checkpoint(a, fresh, fresh_opt); }), why));
    CHECK(values(fresh) == before);
    CHECK(fresh_opt.steps() == 0);
  };
  {
    io::archive a = good;
    a.add<float>("optim/stray/momentum", std::vector<float>{1.0f});
    refused(a, "unexpected entry 'optim/stray/momentum'");
  }
  {
    io::archive a = good;
    a.add<float>("model/extra.weight", std::vector<float>{1.0f});
    refused(a, "entry 'model/extra.weight' matches no tensor of this model");
  }
  {
    io::archive a = good;
    a.add<float>("rng/bad", std::vector<float>{1.0f, 2.0f});
    refused(a, "entry 'rng/bad' is f32[2], expected i64[2]");
  }
  {
    io::archive a = good;
    a.set_meta("epoch", "-3");
    refused(a, "metadata 'epoch' = -3, expected >= 0");
  }
  {
    io::archive a = good;
    a.set_meta("optim_steps", "many");
    refused(a, "metadata 'optim_steps' = 'many', expected an integer");
  }
  {  // a momentum buffer of the wrong shape
    io::archive a;
    for (const auto& kv : good.metadata()) a.set_meta(kv.first, kv.second);
    bool replaced = false;
    for (const auto& e : good.entries()) {
      if (!replaced && e.name.rfind("optim/", 0) == 0) {
        a.add<float>(e.name, std::vector<float>{1.0f, 2.0f});
        replaced = true;
        continue;
      }
      a.add_entry(e);
    }
    refused(a, "has shape [2] (f32), expected");
  }
  const train::checkpoint_state back = train::restore_checkpoint(good, target, opt);
  CHECK(back.epoch == 2);
  CHECK(back.rngs.at("loader").inc == 3);
}

TEST_CASE("fit: options that would be undefined behaviour are refused before training") {
  const auto data = tiny_data();
  nn::small_cnn m(tiny_cnn());
  auto o = tiny_fit("");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto refused = [&](train::fit_options bad, const std::string& why) {
    CAPTURE(why);
    CHECK(contains(error_of([&] { train::fit(m, data, nullptr, bad); }), why));
  };
  auto b = o;
  b.schedule.warmup_epochs = nan;
  refused(b, "warmup_epochs = nan");
  b = o;
  b.schedule.warmup_epochs = 1e30;
  refused(b, "warmup_epochs = 1e+30, expected in [0, epochs = 1]");
  b = o;
  b.sgd.lr = std::numeric_limits<double>::infinity();
  refused(b, "lr = inf");
  b = o;
  b.schedule.milestones = {-1};
  refused(b, "milestone -1");
  b = o;
  b.schedule.gamma = nan;
  refused(b, "gamma = nan");
  b = o;
  b.label_smoothing = 1.0f;
  refused(b, "fit: label_smoothing = 1");
  b = o;
  b.epochs = std::numeric_limits<std::int64_t>::max();
  refused(b, "steps overflow the step counter");
  // The largest batch is one batch holding the whole data set.
  b = o;
  b.data.batch_size = std::numeric_limits<std::int64_t>::max();
  CHECK(train::fit(m, data, nullptr, b).history.size() == 1);
}

TEST_CASE("fit: a metrics file that cannot be written stops training with an error") {
  const auto data = tiny_data();
  nn::small_cnn m(tiny_cnn());
  const std::string dir = fresh_dir("metrics");
  REQUIRE(::mkdir((dir + "/metrics.csv").c_str(), 0755) == 0);  // in the way of the file
  CHECK(contains(error_of([&] { train::fit(m, data, nullptr, tiny_fit(dir)); }),
                 "metrics.csv: renaming"));
  // A writable one gets a header and one row per epoch, written atomically.
  const std::string ok = fresh_dir("metrics_ok");
  train::fit(m, data, nullptr, tiny_fit(ok));
  const auto csv = io::read_file_bytes(ok + "/metrics.csv");
  const std::string text(csv.begin(), csv.end());
  CHECK(text.rfind(train::metrics_csv_header() + "\n1,", 0) == 0);
  struct stat st;
  CHECK(::stat((ok + "/metrics.csv.tmp").c_str(), &st) != 0);
}

TEST_CASE("fit: a resume refused for another configuration names what differs") {
  CHECK(train::detail::config_difference("a=1;b=2;", "a=1;b=3;c=4;") ==
        "b: 2 in the checkpoint, 3 now; c: (none) in the checkpoint, 4 now");
  CHECK(train::detail::config_difference("x", "y") == "'x' in the checkpoint, 'y' now");
  const auto data = tiny_data();
  const std::string dir = fresh_dir("config");
  nn::small_cnn m(tiny_cnn());
  auto o = tiny_fit(dir);
  o.config_tag = "lr=0.1;seed=1;";
  train::fit(m, data, nullptr, o);
  o.resume = true;
  o.config_tag = "lr=0.2;seed=1;";
  CHECK(contains(error_of([&] { train::fit(m, data, nullptr, o); }),
                 "checkpoint.mixq: written with another configuration: lr: 0.1 in the checkpoint, "
                 "0.2 now (use the same flags and data, or another output directory)"));
}
