#pragma once
// fit(): the supervised training loop shared by the examples, the tests and
// every training method (FP32 here; QAT, AdaQAT and supernet methods plug in
// through train::method_hooks, train/method.hpp).
//
// One epoch = one pass of an io::batch_loader (seeded shuffle, optional
// crop/flip augmentation, prefetch thread) over the training set; per step:
// the method's step body (default: forward, softmax cross-entropy, backward),
// a check that the loss and every gradient are finite, and an SGD step with
// the scheduled learning rate. After each epoch: optional evaluation on the
// test set, one CSV row of metrics, and a checkpoint (model with its buffers,
// momentum buffers, position, method state, configuration) written
// atomically to <out_dir>/checkpoint.mixq.
//
// Options: fit_options holds the recipe as the parts' own option structs
// (io::batch_loader_options for the data, optim::sgd_options for the
// optimizer, optim::schedule_options for the learning rate), so a field is
// stated once and handed on whole.
//
// Resume: with resume = true and a checkpoint present, training continues
// after the last completed epoch and reproduces a straight run bit for bit:
// batches depend only on (seed, epoch, index), the learning rate only on the
// global step, and everything else that changes during training is in the
// checkpoint. A checkpoint written by another method or under another
// configuration is refused before anything is restored.
//
// Divergence: a non-finite loss or gradient stops training, before the
// optimizer step, with a mixq::error naming the epoch, the step, where the
// first NaN or Inf appeared in the forward pass (the first op on the tape, in
// execution order, whose output or parameter holds one, with the layer's
// parameters) and in the backward pass (the first parameter, in the order
// backward() reaches them, whose gradient holds one: every layer before it
// inherits it); the last checkpoint (written at the end of the last complete
// epoch) is left as it was.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/error.hpp"
#include "mixq/io/batch_loader.hpp"
#include "mixq/io/dataset.hpp"
#include "mixq/io/file.hpp"
#include "mixq/nn/module.hpp"
#include "mixq/optim/schedule.hpp"
#include "mixq/optim/sgd.hpp"
#include "mixq/train/checkpoint.hpp"
#include "mixq/train/method.hpp"
#include "mixq/train/progress.hpp"

namespace mixq::train {

// The training loader's defaults: shuffle and CIFAR-style augmentation (4-pixel
// padded crop + flip); mean/stddev empty, i.e. the data set's own.
inline io::batch_loader_options default_train_data() {
  io::batch_loader_options d;
  d.batch_size = 128;
  d.shuffle = true;
  d.augment = true;
  d.seed = 1;
  return d;
}

struct fit_options {
  int64_t epochs = 1;
  io::batch_loader_options data = default_train_data();  // training batches (seed: data order)
  optim::sgd_options sgd;                                // sgd.lr is the peak learning rate
  optim::schedule_options schedule;
  float label_smoothing = 0.0f;  // the default step's loss
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
  std::vector<std::string> method_values;  // the method's csv_columns
};

struct fit_result {
  std::vector<epoch_metrics> history;  // epochs run in this call
  int64_t first_epoch = 0;             // epochs already done when this call began
  double wall_seconds = 0;
  double test_acc = -1, test_loss = -1;  // after the last epoch run
};

inline std::string metrics_csv_header(const std::vector<std::string>& method_columns = {}) {
  std::string h = "epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s";
  for (const auto& c : method_columns) h += "," + c;
  return h;
}
inline std::string metrics_csv_row(const epoch_metrics& m) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%lld,%.6g,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f",
                static_cast<long long>(m.epoch), m.lr, m.train_loss, m.train_acc, m.test_loss,
                m.test_acc, m.seconds, m.images_per_s);
  std::string r = buf;
  for (const auto& v : m.method_values) r += "," + v;
  return r;
}

// Mean loss and accuracy of `model` (switched to eval mode and back) on ds,
// in batches of data.batch_size normalized with data.mean/stddev (empty: the
// data set's); never shuffled or augmented. `forward` replaces model.forward.
template <class Model>
std::pair<double, double> evaluate(Model& model, const io::image_dataset& ds,
                                   io::batch_loader_options data,
                                   const std::function<var(tape&, var)>& forward = {}) {
  data.shuffle = false;
  data.augment = false;
  data.drop_last = false;
  data.prefetch = data.prefetch > 0 ? 1 : 0;
  const bool was_training = model.is_training();
  model.eval();
  io::batch_loader ld(ds, data);
  ld.start_epoch(0);
  tape t;
  io::batch b;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0;
  while (ld.next(b)) {
    t.clear();
    no_grad_guard ng(t);
    var x = batch_input(t, b);
    var logits = forward ? forward(t, x) : model.forward(t, x);
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
// The index of the first NaN or Inf among x[0..n); -1 when all are finite.
inline int64_t first_nonfinite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return -1;
}
inline bool any_nonfinite_grad(const std::vector<parameter*>& ps) {
  for (const parameter* p : ps)
    if (first_nonfinite(p->grad.data(), p->grad.numel()) >= 0) return true;
  return false;
}
inline std::string element_text(const float* x, int64_t i) {
  return "element " + std::to_string(i) + " = " + std::to_string(x[i]);
}
// The parameters an op reads, quoted and comma-separated ("" when none).
inline std::string params_of(const tape& t, const node& n) {
  std::string s;
  for (int j = 0; j < n.n_inputs; ++j)
    if (n.inputs[j] >= 0)  // an absent optional input (a conv without bias) is -1
      if (const parameter* p = t.at(n.inputs[j]).param)
        s += (s.empty() ? "'" : ", '") + p->name + "'";
  return s;
}
// Where the first NaN or Inf of the forward pass recorded on `t` is: the ops
// in execution order, for each its leaf inputs (parameters, the batch) and
// then its output. "" when every value on the tape is finite.
inline std::string first_nonfinite_forward(const tape& t) {
  const std::vector<node>& nodes = t.nodes();
  if (nodes.empty()) return "not known (the training step left no forward pass on the tape)";
  std::string layer;  // the parameters of the last op that read some
  for (std::size_t k = 0; k < nodes.size(); ++k) {
    const node& n = nodes[k];
    for (int j = 0; j < n.n_inputs; ++j) {
      if (n.inputs[j] < 0) continue;  // an absent optional input
      const tape::slot& in = t.at(n.inputs[j]);
      if (!in.is_leaf) continue;
      const int64_t i = first_nonfinite(in.value.data(), in.value.numel());
      if (i >= 0)
        return (in.param ? "parameter '" + in.param->name + "'" : std::string("the input batch")) +
               " (" + element_text(in.value.data(), i) + ")";
    }
    if (n.output < 0) continue;
    const tensor_view out = t.at(n.output).value;
    const int64_t i = first_nonfinite(out.data(), out.numel());
    const std::string ps = params_of(t, n);
    if (i >= 0)
      return std::string("output of ") + op_name(n.kind) +
             (!ps.empty()     ? " of " + ps
              : layer.empty() ? std::string()
                              : " after " + layer) +
             " (op " + std::to_string(k + 1) + " of " + std::to_string(nodes.size()) + ", " +
             element_text(out.data(), i) + ")";
    if (!ps.empty()) layer = ps;
  }
  return "";
}
// The first parameter of `ps`, in the order backward() reaches them (the
// tape's ops in reverse; parameters the tape did not use after them, in
// their own order), whose gradient holds a NaN or Inf, with the element.
// "" when every gradient is finite.
inline std::string first_nonfinite_grad(const tape& t, const std::vector<parameter*>& ps) {
  std::vector<const parameter*> order;
  auto add = [&](const parameter* p) {
    if (std::find(ps.begin(), ps.end(), p) != ps.end() &&
        std::find(order.begin(), order.end(), p) == order.end())
      order.push_back(p);
  };
  const std::vector<node>& nodes = t.nodes();
  for (auto it = nodes.rbegin(); it != nodes.rend(); ++it)
    for (int j = 0; j < it->n_inputs; ++j)
      if (it->inputs[j] >= 0)
        if (const parameter* p = t.at(it->inputs[j]).param) add(p);
  for (const parameter* p : ps) add(p);
  for (const parameter* p : order) {
    const int64_t i = first_nonfinite(p->grad.data(), p->grad.numel());
    if (i >= 0) return "'" + p->name + "' (" + element_text(p->grad.data(), i) + ")";
  }
  return "";
}
// What differs between two configuration tags. Tags of the form
// "name=value;name=value;..." are compared by name ("lr: 0.1 in the
// checkpoint, 0.2 now; ..."); other tags are shown whole.
inline std::string config_difference(const std::string& was, const std::string& now) {
  auto fields = [](const std::string& tag, std::vector<std::pair<std::string, std::string>>* out) {
    std::size_t pos = 0;
    while (pos < tag.size()) {
      std::size_t end = tag.find(';', pos);
      if (end == std::string::npos) end = tag.size();
      const std::string item = tag.substr(pos, end - pos);
      const std::size_t eq = item.find('=');
      if (eq == std::string::npos) return false;
      out->emplace_back(item.substr(0, eq), item.substr(eq + 1));
      pos = end + 1;
    }
    return true;
  };
  std::vector<std::pair<std::string, std::string>> a, b;
  if (!fields(was, &a) || !fields(now, &b) || a.empty() || b.empty())
    return "'" + was + "' in the checkpoint, '" + now + "' now";
  auto find = [](const std::vector<std::pair<std::string, std::string>>& v, const std::string& k) {
    for (const auto& kv : v)
      if (kv.first == k) return kv.second;
    return std::string("(none)");
  };
  std::string diff;
  auto add = [&](const std::string& k) {
    const std::string x = find(a, k), y = find(b, k);
    if (x == y || diff.find(k + ": ") == 0 || diff.find("; " + k + ": ") != std::string::npos)
      return;
    diff += (diff.empty() ? "" : "; ") + k + ": " + x + " in the checkpoint, " + y + " now";
  };
  for (const auto& kv : a) add(kv.first);
  for (const auto& kv : b) add(kv.first);
  return diff.empty() ? "'" + was + "' in the checkpoint, '" + now + "' now" : diff;
}

}  // namespace detail

// Trains `model` (any nn::module with `var forward(tape&, var)`) on `train`
// with the training method `method` (default: FP32). `test` may be null.
// Returns per-epoch metrics.
// throws: mixq::error for bad options, a checkpoint of another method or
//         configuration, unreadable files, or a non-finite loss or gradient.
template <class Model>
fit_result fit(Model& model, const io::image_dataset& train, const io::image_dataset* test,
               const fit_options& o, const method_hooks& method = {}) {
  MIXQ_CHECK(o.epochs >= 1, "fit: epochs = ", o.epochs, ", expected >= 1");
  MIXQ_CHECK(o.data.batch_size >= 1, "fit: data.batch_size = ", o.data.batch_size,
             ", expected >= 1");
  MIXQ_CHECK(method.csv_columns.empty() || method.csv_values, "fit: method '", method.name,
             "' has csv_columns but no csv_values");
  MIXQ_CHECK(o.label_smoothing >= 0.0f && o.label_smoothing < 1.0f,
             "fit: label_smoothing = ", o.label_smoothing, ", expected in [0, 1)");
  MIXQ_CHECK(o.eval_every >= 0, "fit: eval_every = ", o.eval_every, ", expected >= 0");
  MIXQ_CHECK(o.eval_batch >= 1, "fit: eval_batch = ", o.eval_batch, ", expected >= 1");
  const auto t_start = std::chrono::steady_clock::now();

  io::batch_loader loader(train, o.data);
  const int64_t steps_per_epoch = loader.steps_per_epoch();
  const optim::lr_schedule lr_at(o.schedule, o.sgd.lr, steps_per_epoch, o.epochs);
  std::vector<optim::param_group> groups;
  if (method.param_groups)
    groups = method.param_groups(model.parameters());
  else
    groups.emplace_back(model.parameters());
  optim::sgd opt(std::move(groups), o.sgd);
  io::batch_loader_options eval_data = o.data;
  eval_data.batch_size = o.eval_batch;

  const std::string ckpt = o.out_dir.empty() ? "" : o.out_dir + "/checkpoint.mixq";
  const std::string csv = o.out_dir.empty() ? "" : o.out_dir + "/metrics.csv";
  if (!o.out_dir.empty()) io::make_dirs(o.out_dir);

  fit_result res;
  int64_t start_epoch = 0;
  std::vector<std::string> csv_lines;
  // path_exists, not file_exists: a directory or FIFO named checkpoint.mixq is
  // reported by load_archive, never taken for "no checkpoint yet".
  if (o.resume && !ckpt.empty() && io::path_exists(ckpt)) {
    const io::archive a = io::load_archive(ckpt);
    const checkpoint_state info = checkpoint_info(a);
    MIXQ_CHECK(info.method == method.name, ckpt, ": written by training method '", info.method,
               "', but this run uses method '", method.name, "' (use another output directory)");
    const std::string tag = info.extra.count("config") ? info.extra.at("config") : "";
    MIXQ_CHECK(tag == o.config_tag, ckpt, ": written with another configuration: ",
               detail::config_difference(tag, o.config_tag),
               " (use the same flags and data, or another output directory)");
    const checkpoint_state st = restore_checkpoint(a, model, opt);
    if (method.load_state) method.load_state(st.method_state);
    start_epoch = st.epoch;
    io::truncate_csv(csv, start_epoch);
    csv_lines = io::read_lines(csv);
  }
  if (!csv.empty() && csv_lines.empty()) {
    csv_lines.push_back(metrics_csv_header(method.csv_columns));
    io::write_file_atomic(csv, csv_lines.front() + "\n");
  }
  res.first_epoch = start_epoch;
  int64_t last_checkpoint = start_epoch;  // epoch of the checkpoint on disk

  progress_bar bar;
  tape t;
  io::batch b;
  model.train();
  for (int64_t epoch = start_epoch; epoch < o.epochs; ++epoch) {
    if (o.stop_after_epoch >= 0 && epoch >= o.stop_after_epoch) break;
    const auto e0 = std::chrono::steady_clock::now();
    loader.start_epoch(epoch);
    if (method.on_epoch_begin) method.on_epoch_begin(epoch);
    if (o.progress) bar.start(epoch + 1, o.epochs, steps_per_epoch);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, step = 0;
    double lr = o.sgd.lr;
    while (loader.next(b)) {
      const int64_t global_step = epoch * steps_per_epoch + step;
      lr = lr_at(global_step);
      opt.set_lr(lr);
      t.clear();
      opt.zero_grad();
      const step_result r = method.train_step ? method.train_step(t, b, global_step)
                                              : default_step(model, t, b, o.label_smoothing);
      if (!std::isfinite(r.loss_sum) || detail::any_nonfinite_grad(opt.parameters())) {
        const std::string fwd = detail::first_nonfinite_forward(t);
        const std::string grad = detail::first_nonfinite_grad(t, opt.parameters());
        MIXQ_CHECK(false, "fit: training diverged at epoch ", epoch + 1, " step ", step + 1,
                   " (global step ", global_step, ", lr ", lr, "): loss ",
                   r.count ? r.loss_sum / static_cast<double>(r.count) : r.loss_sum,
                   ", first non-finite forward value: ",
                   fwd.empty() ? "none (every value on the tape is finite)" : fwd,
                   ", first non-finite gradient: ",
                   grad.empty() ? "none (all gradients are finite)" : grad,
                   "; no optimizer step was taken",
                   ckpt.empty() ? std::string()
                   : last_checkpoint > 0
                       ? "; " + ckpt + " still holds epoch " + std::to_string(last_checkpoint)
                       : "; no checkpoint was written",
                   "; lower the learning rate");
      }
      opt.step();
      if (method.after_step) method.after_step(global_step);
      loss_sum += r.loss_sum;
      correct += r.correct;
      seen += r.count;
      ++step;
      if (o.progress)
        bar.update(step, seen, seen ? loss_sum / static_cast<double>(seen) : 0.0,
                   seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0);
    }
    if (method.on_epoch_end) method.on_epoch_end(epoch);
    epoch_metrics m;
    m.epoch = epoch + 1;
    m.lr = lr;
    m.train_loss = seen ? loss_sum / static_cast<double>(seen) : 0;
    m.train_acc = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0;
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
    m.images_per_s = m.seconds > 0 ? static_cast<double>(seen) / m.seconds : 0;
    const bool last = epoch + 1 == o.epochs;
    if (test && (last || (o.eval_every > 0 && (epoch + 1) % o.eval_every == 0))) {
      auto [tl, ta] = method.evaluate ? method.evaluate(*test)
                                      : evaluate(model, *test, eval_data, method.eval_forward);
      m.test_loss = tl;
      m.test_acc = ta;
      res.test_loss = tl;
      res.test_acc = ta;
      if (o.progress)
        std::fprintf(stderr, "epoch %lld: test loss %.4f, test accuracy %.2f%%\n",
                     static_cast<long long>(epoch + 1), tl, 100.0 * ta);
    }
    if (method.csv_values) {
      m.method_values = method.csv_values();
      MIXQ_CHECK(m.method_values.size() == method.csv_columns.size(), "fit: method '", method.name,
                 "' gave ", m.method_values.size(), " csv values for ", method.csv_columns.size(),
                 " columns");
    }
    res.history.push_back(m);
    if (!csv.empty()) {
      csv_lines.push_back(metrics_csv_row(m));
      std::string text;
      for (const auto& l : csv_lines) text += l + "\n";
      io::write_file_atomic(csv, text);
    }
    if (!ckpt.empty()) {
      checkpoint_state st;
      st.epoch = epoch + 1;
      st.method = method.name;
      if (method.save_state) method.save_state(st.method_state);
      st.extra["config"] = o.config_tag;
      save_checkpoint(ckpt, model, opt, st);
      last_checkpoint = epoch + 1;
    }
  }
  if (test && res.test_acc < 0) {  // nothing left to train (resumed a finished run)
    auto [tl, ta] = method.evaluate ? method.evaluate(*test)
                                    : evaluate(model, *test, eval_data, method.eval_forward);
    res.test_loss = tl;
    res.test_acc = ta;
  }
  res.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return res;
}

}  // namespace mixq::train
