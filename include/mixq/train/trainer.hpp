#pragma once
// fit(): the supervised training loop shared by the examples and the tests.
//
// One epoch = one pass of an io::batch_loader (seeded shuffle, optional
// crop/flip augmentation, prefetch thread) over the training set; per step:
// tape.clear(), forward, softmax cross-entropy, backward, SGD step with the
// scheduled learning rate. After each epoch: optional evaluation on the test
// set, one CSV row of metrics, and a checkpoint (model, momentum buffers,
// position, configuration) written atomically to <out_dir>/checkpoint.mixq.
//
// Resume: with resume = true and a checkpoint present, training continues
// after the last completed epoch and reproduces a straight run bit for bit:
// batches depend only on (seed, epoch, index), the learning rate only on the
// global step, and everything else that changes during training is in the
// checkpoint. A checkpoint written under another configuration is refused.
#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/error.hpp"
#include "mixq/core/parallel.hpp"
#include "mixq/io/batch_loader.hpp"
#include "mixq/io/dataset.hpp"
#include "mixq/nn/module.hpp"
#include "mixq/train/checkpoint.hpp"
#include "mixq/optim/schedule.hpp"
#include "mixq/optim/sgd.hpp"
#include "mixq/train/progress.hpp"

namespace mixq::train {

struct fit_options {
  int64_t epochs = 1;
  int64_t batch_size = 128;
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  bool nesterov = false;
  bool decay_all = false;           // also decay biases and batch-norm parameters
  std::string schedule = "cosine";  // cosine | step
  double warmup_epochs = 0.0;
  std::vector<int64_t> milestones;  // step schedule: epochs at which lr *= gamma
  double gamma = 0.1;
  float label_smoothing = 0.0f;
  uint64_t seed = 1;                // data order and augmentation
  bool augment = true;              // random crop (pad 4) + horizontal flip
  std::vector<float> mean, stddev;  // per channel; empty = the loader's defaults
  int prefetch = 2;
  int64_t eval_batch = 500;
  int64_t eval_every = 1;  // evaluate every k epochs (and after the last)
  std::string out_dir;     // "" = no files
  bool resume = false;
  bool progress = true;
  int64_t stop_after_epoch = -1;  // stop (as if killed) once this many epochs are done
  std::string config_tag;         // must match on resume (the caller's flags)
};

struct epoch_metrics {
  int64_t epoch = 0;  // 1-based
  double lr = 0, train_loss = 0, train_acc = 0;
  double test_loss = -1, test_acc = -1;  // -1 = not evaluated
  double seconds = 0, images_per_s = 0;
};

struct fit_result {
  std::vector<epoch_metrics> history;  // epochs run in this call
  int64_t first_epoch = 0;             // epochs already done when this call began
  double wall_seconds = 0;
  double test_acc = -1, test_loss = -1;  // after the last epoch run
};

inline std::string metrics_csv_header() {
  return "epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s";
}
inline std::string metrics_csv_row(const epoch_metrics& m) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%lld,%.6g,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f",
                static_cast<long long>(m.epoch), m.lr, m.train_loss, m.train_acc, m.test_loss,
                m.test_acc, m.seconds, m.images_per_s);
  return buf;
}

inline io::batch_loader_options loader_options(const io::image_dataset& ds, int64_t batch,
                                               bool shuffle, bool augment, uint64_t seed,
                                               const std::vector<float>& mean,
                                               const std::vector<float>& stddev, int prefetch) {
  io::batch_loader_options lo;
  lo.batch_size = batch;
  lo.shuffle = shuffle;
  lo.augment = augment;
  lo.seed = seed;
  lo.prefetch = prefetch;
  if (!mean.empty()) lo.mean = mean;
  if (!stddev.empty()) lo.stddev = stddev;
  if (lo.mean.size() != static_cast<size_t>(ds.c)) lo.mean.assign(static_cast<size_t>(ds.c), 0.5f);
  if (lo.stddev.size() != static_cast<size_t>(ds.c))
    lo.stddev.assign(static_cast<size_t>(ds.c), 0.5f);
  return lo;
}

// Mean loss and accuracy of `model` (switched to eval mode and back) on ds.
template <class Model>
std::pair<double, double> evaluate(Model& model, const io::image_dataset& ds, int64_t batch,
                                   const std::vector<float>& mean = {},
                                   const std::vector<float>& stddev = {}) {
  const bool was_training = model.is_training();
  model.eval();
  io::batch_loader ld(ds, loader_options(ds, batch, false, false, 0, mean, stddev, 1));
  ld.start_epoch(0);
  tape t;
  io::batch b;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  while (ld.next(b)) {
    t.clear();
    no_grad_guard ng(t);
    var x = t.input(tensor_view(b.images.data(), shape{b.n, b.h, b.w, b.c}));
    var logits = model.forward(t, x);
    var loss = softmax_cross_entropy(logits, b.labels.data(), 0.0f);
    loss_sum += static_cast<double>(loss.value()[0]) * static_cast<double>(b.n);
    correct += count_correct(logits.value(), b.labels.data());
    seen += b.n;
  }
  model.train(was_training);
  return {seen ? loss_sum / static_cast<double>(seen) : 0.0,
          seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0};
}

namespace detail {
inline bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}
inline void make_dirs(const std::string& dir) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    ::mkdir(cur.c_str(), 0755);
  }
  struct stat st;
  MIXQ_CHECK(::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode), "cannot create directory '", dir,
             "'");
}
// Keeps the header and the rows of epochs <= keep_epochs (a resumed run
// rewrites the rows of the epochs it repeats).
inline void truncate_csv(const std::string& path, int64_t keep_epochs) {
  std::ifstream in(path);
  std::vector<std::string> keep;
  std::string line;
  while (std::getline(in, line)) {
    if (keep.empty()) {
      keep.push_back(line);
      continue;
    }
    if (std::atoll(line.c_str()) <= keep_epochs) keep.push_back(line);
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  for (auto& l : keep) out << l << "\n";
}
}  // namespace detail

// Trains `model` (any nn::module with `var forward(tape&, var)`) on `train`.
// `test` may be null. Returns per-epoch metrics.
template <class Model>
fit_result fit(Model& model, const io::image_dataset& train, const io::image_dataset* test,
               const fit_options& o) {
  MIXQ_CHECK(o.epochs >= 1, "fit: epochs = ", o.epochs, ", expected >= 1");
  MIXQ_CHECK(o.batch_size >= 1, "fit: batch_size = ", o.batch_size, ", expected >= 1");
  MIXQ_CHECK(o.schedule == "cosine" || o.schedule == "step", "fit: schedule '", o.schedule,
             "', expected 'cosine' or 'step'");
  const auto t_start = std::chrono::steady_clock::now();

  io::batch_loader loader(train, loader_options(train, o.batch_size, true, o.augment, o.seed,
                                                o.mean, o.stddev, o.prefetch));
  const int64_t steps_per_epoch = loader.steps_per_epoch();
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const int64_t warmup =
      static_cast<int64_t>(o.warmup_epochs * static_cast<double>(steps_per_epoch));
  optim::cosine_schedule cosine(o.lr, total_steps, std::min(warmup, total_steps - 1));
  optim::step_schedule stepped;
  stepped.base_lr = o.lr;
  stepped.gamma = o.gamma;
  stepped.warmup_steps = warmup;
  for (int64_t e : o.milestones) stepped.milestones.push_back(e * steps_per_epoch);
  auto lr_at = [&](int64_t step) { return o.schedule == "cosine" ? cosine(step) : stepped(step); };

  optim::sgd_options so;
  so.lr = o.lr;
  so.momentum = o.momentum;
  so.weight_decay = o.weight_decay;
  so.nesterov = o.nesterov;
  so.decay_all = o.decay_all;
  optim::sgd opt(model.parameters(), so);

  const std::string ckpt = o.out_dir.empty() ? "" : o.out_dir + "/checkpoint.mixq";
  const std::string csv = o.out_dir.empty() ? "" : o.out_dir + "/metrics.csv";
  if (!o.out_dir.empty()) detail::make_dirs(o.out_dir);

  fit_result res;
  int64_t start_epoch = 0;
  if (o.resume && !ckpt.empty() && detail::file_exists(ckpt)) {
    optim::checkpoint_state st = optim::load_checkpoint(ckpt, model, opt);
    const std::string tag = st.extra.count("config") ? st.extra.at("config") : "";
    MIXQ_CHECK(tag == o.config_tag, ckpt, ": written with configuration '", tag,
               "', but this run has '", o.config_tag,
               "' (use the same flags, or another output directory)");
    start_epoch = st.epoch;
    if (!csv.empty() && detail::file_exists(csv)) detail::truncate_csv(csv, start_epoch);
  } else if (!csv.empty()) {
    std::ofstream(csv, std::ios::trunc) << metrics_csv_header() << "\n";
  }
  res.first_epoch = start_epoch;

  progress_bar bar;
  tape t;
  io::batch b;
  model.train();
  for (int64_t epoch = start_epoch; epoch < o.epochs; ++epoch) {
    if (o.stop_after_epoch >= 0 && epoch >= o.stop_after_epoch) break;
    const auto e0 = std::chrono::steady_clock::now();
    loader.start_epoch(epoch);
    if (o.progress) bar.start(epoch + 1, o.epochs, steps_per_epoch);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, step = 0;
    double lr = o.lr;
    while (loader.next(b)) {
      lr = lr_at(epoch * steps_per_epoch + step);
      opt.set_lr(lr);
      t.clear();
      var x = t.input(tensor_view(b.images.data(), shape{b.n, b.h, b.w, b.c}));
      var logits = model.forward(t, x);
      var loss = softmax_cross_entropy(logits, b.labels.data(), o.label_smoothing);
      opt.zero_grad();
      backward(loss);
      opt.step();
      const double l = loss.value()[0];
      MIXQ_CHECK(std::isfinite(l), "fit: loss became ", l, " at epoch ", epoch + 1, " step ",
                 step + 1, " (lr ", lr, "); lower the learning rate");
      loss_sum += l * static_cast<double>(b.n);
      correct += count_correct(logits.value(), b.labels.data());
      seen += b.n;
      ++step;
      if (o.progress)
        bar.update(step, seen, loss_sum / static_cast<double>(seen),
                   static_cast<double>(correct) / static_cast<double>(seen));
    }
    epoch_metrics m;
    m.epoch = epoch + 1;
    m.lr = lr;
    m.train_loss = seen ? loss_sum / static_cast<double>(seen) : 0;
    m.train_acc = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0;
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
    m.images_per_s = m.seconds > 0 ? static_cast<double>(seen) / m.seconds : 0;
    const bool last = epoch + 1 == o.epochs;
    if (test && (last || (o.eval_every > 0 && (epoch + 1) % o.eval_every == 0))) {
      auto [tl, ta] = evaluate(model, *test, o.eval_batch, o.mean, o.stddev);
      m.test_loss = tl;
      m.test_acc = ta;
      res.test_loss = tl;
      res.test_acc = ta;
      if (o.progress)
        std::fprintf(stderr, "epoch %lld: test loss %.4f, test accuracy %.2f%%\n",
                     static_cast<long long>(epoch + 1), tl, 100.0 * ta);
    }
    res.history.push_back(m);
    if (!csv.empty()) std::ofstream(csv, std::ios::app) << metrics_csv_row(m) << "\n";
    if (!ckpt.empty()) {
      optim::checkpoint_state st;
      st.epoch = epoch + 1;
      st.extra["config"] = o.config_tag;
      optim::save_checkpoint(ckpt, model, opt, st);
    }
  }
  if (test && res.test_acc < 0) {  // nothing left to train (resumed a finished run)
    auto [tl, ta] = evaluate(model, *test, o.eval_batch, o.mean, o.stddev);
    res.test_loss = tl;
    res.test_acc = ta;
  }
  res.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return res;
}

}  // namespace mixq::train
