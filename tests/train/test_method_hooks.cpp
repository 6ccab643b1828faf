// fit() with training-method hooks, on synthetic data: when each hook runs,
// what it stores (metrics columns, checkpoint state, model buffers and extra
// parameters) and that a resume restores it bit for bit; parameter groups;
// divergence stops with the step and the first layer where a NaN or Inf
// appeared (forward and backward) named, and the checkpoint kept.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../common/datasets.hpp"
#include "../common/errors.hpp"
#include "../common/files.hpp"
#include "../common/modules.hpp"
#include "mixq/io/file.hpp"
#include "mixq/nn/small_cnn.hpp"
#include "mixq/train/trainer.hpp"

using namespace mixq;
using mixq_test::contains;
using mixq_test::error_of;

namespace {
// A model the way a quantized one registers its extra state: a parameter
// the optimizer trains (like a step size) and a buffer it does not (like a
// bit-width controller's state).
class probe_model : public nn::module {
 public:
  explicit probe_model(uint64_t seed = 5)
      : net(options(seed)), alpha("alpha", shape{1}, false), counter(shape{1}) {
    alpha.value[0] = 1.0f;
    register_module("net", net);
    register_parameter("alpha", alpha);
    register_buffer("counter", counter);
  }
  var forward(tape& t, var x) { return net.forward(t, x); }

  nn::small_cnn net;
  parameter alpha;
  tensor counter;

 private:
  static nn::small_cnn_options options(uint64_t seed) {
    nn::small_cnn_options mo;
    mo.height = mo.width = 8;
    mo.c1 = mo.c2 = 2;
    mo.classes = 3;
    mo.seed = seed;
    return mo;
  }
};

const io::image_dataset& data() {
  static const io::image_dataset ds = mixq_test::synthetic_images(40, 8, 8, 1, 3);
  return ds;
}

train::fit_options run_options(const std::string& out, int64_t epochs = 3) {
  train::fit_options o;
  o.epochs = epochs;
  o.data.batch_size = 16;  // 3 steps per epoch
  o.data.seed = 11;
  o.sgd.lr = 0.05;
  o.out_dir = out;
  o.progress = false;
  o.config_tag = "hooks";
  return o;
}

// A method that changes the model's buffer and trains alpha through its own
// gradient, keeps a string state, and logs the order of the calls.
struct probe_method {
  explicit probe_method(probe_model& model) : m(model) {}
  probe_model& m;
  std::vector<std::string> log;
  int64_t steps_seen = 0;  // restored through save_state / load_state

  train::method_hooks hooks(float alpha_lr_scale = 1.0f) {
    train::method_hooks h;
    h.name = "probe";
    h.param_groups = [this, alpha_lr_scale](std::vector<parameter*> ps) {
      std::vector<parameter*> rest;
      for (parameter* p : ps)
        if (p != &m.alpha) rest.push_back(p);
      std::vector<optim::param_group> g;
      g.emplace_back(rest);
      g.emplace_back(std::vector<parameter*>{&m.alpha}, alpha_lr_scale, 0.0);
      return g;
    };
    h.train_step = [this](tape& t, const io::batch& b, int64_t step) {
      log.push_back("step " + std::to_string(step));
      train::step_result r = train::default_step(m, t, b, 0.0f);
      m.alpha.grad[0] = 1.0f;  // a quantizer's gradient, here a constant
      return r;
    };
    h.after_step = [this](int64_t step) {
      m.counter[0] += 0.5f;
      ++steps_seen;
      log.push_back("after " + std::to_string(step));
    };
    h.on_epoch_begin = [this](int64_t e) { log.push_back("begin " + std::to_string(e)); };
    h.on_epoch_end = [this](int64_t e) { log.push_back("end " + std::to_string(e)); };
    h.csv_columns = {"counter", "steps_seen"};
    h.csv_values = [this] {
      log.push_back("csv");
      return std::vector<std::string>{std::to_string(m.counter[0]), std::to_string(steps_seen)};
    };
    h.save_state = [this](std::map<std::string, std::string>& s) {
      s["steps_seen"] = std::to_string(steps_seen);
    };
    h.load_state = [this](const std::map<std::string, std::string>& s) {
      steps_seen = std::stoll(s.at("steps_seen"));
      log.push_back("load " + s.at("steps_seen"));
    };
    return h;
  }
};

// A metrics.csv line without its seconds and images_per_s fields.
std::string without_timings(const std::string& line) {
  std::string out;
  size_t field = 0, start = 0;
  for (size_t i = 0; i <= line.size(); ++i) {
    if (i < line.size() && line[i] != ',') continue;
    if (field != 6 && field != 7) out += line.substr(start, i - start) + ";";
    ++field;
    start = i + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("fit: hooks run in order, around every step and epoch") {
  mixq_test::temp_dir d;
  probe_model m;
  probe_method pm(m);
  train::fit(m, data(), nullptr, run_options(d.path(), 2), pm.hooks());
  const std::vector<std::string> want{
      "begin 0", "step 0", "after 0", "step 1", "after 1", "step 2", "after 2", "end 0", "csv",
      "begin 1", "step 3", "after 3", "step 4", "after 4", "step 5", "after 5", "end 1", "csv"};
  CHECK(pm.log == want);
  CHECK(m.counter[0] == 3.0f);
  // The method's columns follow the standard ones, one row per epoch.
  const auto lines = io::read_lines(d.file("metrics.csv"));
  REQUIRE(lines.size() == 3u);
  CHECK(lines[0] == train::metrics_csv_header() + ",counter,steps_seen");
  CHECK(contains(lines[2], ",3.000000,6"));
}

TEST_CASE("fit: method state, buffers and extra parameters resume bit for bit") {
  mixq_test::temp_dir straight_dir, resumed_dir;
  probe_model straight;
  probe_method ps(straight);
  train::fit(straight, data(), nullptr, run_options(straight_dir.path()), ps.hooks(0.5f));
  CHECK(straight.alpha.value[0] != 1.0f);  // trained through its own group

  {
    probe_model first;
    probe_method pf(first);
    auto o = run_options(resumed_dir.path());
    o.stop_after_epoch = 2;
    train::fit(first, data(), nullptr, o, pf.hooks(0.5f));
  }
  probe_model resumed;
  probe_method pr(resumed);
  auto o = run_options(resumed_dir.path());
  o.resume = true;
  const auto r = train::fit(resumed, data(), nullptr, o, pr.hooks(0.5f));
  CHECK(r.first_epoch == 2);
  CHECK(pr.log.front() == "load 6");  // before the first step
  CHECK(pr.steps_seen == 9);
  CHECK(resumed.counter[0] == 4.5f);  // the buffer came back with the model
  CHECK(mixq_test::state_difference(resumed, straight) == "");
  // Metrics rows agree except for the timings (seconds, images/s).
  const auto a = io::read_lines(resumed_dir.file("metrics.csv"));
  const auto b = io::read_lines(straight_dir.file("metrics.csv"));
  REQUIRE(a.size() == 4u);
  REQUIRE(b.size() == 4u);
  for (size_t i = 0; i < 4; ++i) CHECK(without_timings(a[i]) == without_timings(b[i]));
}

TEST_CASE("fit: a parameter group with lr_scale 0 stays put; the default group trains") {
  probe_model frozen, trained;
  probe_method pf(frozen), pt(trained);
  train::fit(frozen, data(), nullptr, run_options("", 1), pf.hooks(0.0f));
  train::fit(trained, data(), nullptr, run_options("", 1), pt.hooks(1.0f));
  CHECK(frozen.alpha.value[0] == 1.0f);
  CHECK(trained.alpha.value[0] < 1.0f);
  CHECK(frozen.net.fc.weight.value[0] == trained.net.fc.weight.value[0]);
}

TEST_CASE("fit: eval_forward replaces model.forward in evaluation") {
  probe_model m;
  train::method_hooks h;
  int calls = 0;
  h.eval_forward = [&](tape& t, var x) {
    ++calls;
    return m.forward(t, x);
  };
  auto o = run_options("", 1);
  o.eval_batch = 10;
  const auto r = train::fit(m, data(), &data(), o, h);
  CHECK(calls == 4);  // 40 test images in batches of 10
  CHECK(r.test_acc >= 0.0);
}

TEST_CASE("fit: an evaluate hook replaces the whole evaluation; csv_values sees it first") {
  probe_model m;
  train::method_hooks h;
  std::vector<std::int64_t> seen;  // images of the data set each call got
  double last = 0;
  h.evaluate = [&](const io::image_dataset& ds) {
    seen.push_back(ds.n);
    last = 0.25 * static_cast<double>(seen.size());
    return std::make_pair(1.5, last);
  };
  h.csv_columns = {"evaluated"};
  h.csv_values = [&] { return std::vector<std::string>{std::to_string(last)}; };
  auto o = run_options("", 3);
  o.eval_every = 2;  // epochs 2 and 3 (the last)
  const auto r = train::fit(m, data(), &data(), o, h);
  CHECK(seen == std::vector<std::int64_t>{data().n, data().n});
  CHECK(r.test_acc == 0.5);
  CHECK(r.test_loss == 1.5);
  REQUIRE(r.history.size() == 3u);
  CHECK(r.history[1].test_acc == 0.25);
  CHECK(r.history[2].method_values[0] == std::to_string(0.5));
}

TEST_CASE("fit: a checkpoint of another method is refused, naming both") {
  mixq_test::temp_dir d;
  probe_model m;
  train::fit(m, data(), nullptr, run_options(d.path(), 1));  // fp32
  probe_model again;
  probe_method pm(again);
  auto o = run_options(d.path(), 2);
  o.resume = true;
  const std::string msg = error_of([&] { train::fit(again, data(), nullptr, o, pm.hooks()); });
  CHECK(contains(msg, "written by training method 'fp32'"));
  CHECK(contains(msg, "this run uses method 'probe'"));
  CHECK(pm.log.empty());  // refused before anything ran
}

TEST_CASE("fit: a non-finite gradient stops before the step, naming it; the checkpoint stays") {
  for (float bad :
       {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    CAPTURE(bad);
    mixq_test::temp_dir d;
    probe_model m;
    train::method_hooks h;
    h.train_step = [&](tape& t, const io::batch& b, int64_t step) {
      train::step_result r = train::default_step(m, t, b, 0.0f);
      if (step == 4) m.net.conv2.weight.grad[7] = bad;  // epoch 2, step 2
      return r;
    };
    const std::string msg =
        error_of([&] { train::fit(m, data(), nullptr, run_options(d.path(), 3), h); });
    CHECK(contains(msg, "diverged at epoch 2 step 2 (global step 4"));
    CHECK(contains(msg, "first non-finite gradient: 'net.conv2.weight' (element 7 = " +
                            std::string(std::isnan(bad) ? "nan" : "inf") + ")"));
    CHECK(contains(msg, "checkpoint.mixq still holds epoch 1"));
    // The checkpoint is epoch 1's, and no optimizer step used the bad gradient.
    const io::archive a = io::load_archive(d.file("checkpoint.mixq"));
    CHECK(a.meta_int("epoch") == 1);
    CHECK(a.meta_int("optim_steps") == 3);
    CHECK(std::isfinite(m.net.conv2.weight.value[7]));
  }
}

TEST_CASE("fit: divergence names the first layer where a NaN or Inf appeared") {
  SUBCASE("forward: the first op whose output overflows, with its layer's parameters") {
    mixq_test::temp_dir d;
    probe_model m;
    train::method_hooks h;
    h.train_step = [&](tape& t, const io::batch& b, int64_t step) {
      if (step == 4)  // conv2's outputs overflow float; conv1's stay finite
        for (int64_t i = 0; i < m.net.conv2.weight.numel(); ++i)
          m.net.conv2.weight.value[i] = 3e38f;
      return train::default_step(m, t, b, 0.0f);
    };
    const std::string msg =
        error_of([&] { train::fit(m, data(), nullptr, run_options(d.path(), 3), h); });
    CHECK(contains(msg, "diverged at epoch 2 step 2 (global step 4"));
    CHECK(contains(msg, "first non-finite forward value: output of conv2d of 'net.conv2.weight'"));
    CHECK(contains(msg, "checkpoint.mixq still holds epoch 1"));
  }
  SUBCASE("forward: a parameter that holds a NaN is named before any op's output") {
    probe_model m;
    train::method_hooks h;
    h.train_step = [&](tape& t, const io::batch& b, int64_t) {
      m.net.conv3.weight.value[2] = std::numeric_limits<float>::quiet_NaN();
      return train::default_step(m, t, b, 0.0f);
    };
    const std::string msg = error_of([&] { train::fit(m, data(), nullptr, run_options(""), h); });
    CHECK(contains(msg, "first non-finite forward value: parameter 'net.conv3.weight' (element 2"));
  }
  SUBCASE("backward: the first parameter backward() reached with a bad gradient") {
    probe_model m;
    train::method_hooks h;
    h.train_step = [&](tape& t, const io::batch& b, int64_t) {
      train::step_result r = train::default_step(m, t, b, 0.0f);
      // conv1 comes first in the forward order, conv3 later: a bad gradient
      // in both appeared at conv3 (backward reaches it first).
      m.net.conv1.weight.grad[1] = std::numeric_limits<float>::quiet_NaN();
      m.net.conv3.weight.grad[4] = std::numeric_limits<float>::infinity();
      return r;
    };
    const std::string msg = error_of([&] { train::fit(m, data(), nullptr, run_options(""), h); });
    CHECK(
        contains(msg, "first non-finite forward value: none (every value on the tape is finite)"));
    CHECK(contains(msg, "first non-finite gradient: 'net.conv3.weight' (element 4 = inf)"));
  }
}

TEST_CASE("fit: a non-finite loss with finite gradients is stopped too") {
  probe_model m;
  train::method_hooks h;
  h.train_step = [&](tape& t, const io::batch& b, int64_t) {
    train::step_result r = train::default_step(m, t, b, 0.0f);
    r.loss_sum = std::numeric_limits<double>::infinity();
    return r;
  };
  const std::string msg = error_of([&] { train::fit(m, data(), nullptr, run_options(""), h); });
  CHECK(contains(msg, "diverged at epoch 1 step 1 (global step 0"));
  CHECK(contains(msg, "loss inf"));
  CHECK(contains(msg, "all gradients are finite"));
}

TEST_CASE("fit: csv_columns without csv_values is refused") {
  probe_model m;
  train::method_hooks h;
  h.csv_columns = {"x"};
  CHECK(contains(error_of([&] { train::fit(m, data(), nullptr, run_options(""), h); }),
                 "has csv_columns but no csv_values"));
}
