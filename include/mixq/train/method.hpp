#pragma once
// A training method: what fit() (train/trainer.hpp) does differently for
// FP32, QAT, AdaQAT or a supernet, as a set of optional hooks.
//
// fit() owns the loop: data, learning-rate schedule, optimizer, metrics,
// evaluation, checkpoints and resume. A method fills in only what it changes;
// every hook left empty keeps the FP32 behaviour, so `method_hooks{}` is
// plain FP32 training. Hooks are std::function, so a method works with any
// model type and may capture whatever state it keeps (a bit-width
// controller, a list of sub-network configurations).
//
// One optimizer step, as fit() runs it:
//   tape.clear(); opt.zero_grad();
//   r = train_step ? train_step(tape, batch, global_step)     // must leave the
//                  : default_step(model, tape, batch, ...);   // gradients ready
//   check loss and gradients are finite (else mixq::error, no step taken)
//   opt.step(); after_step(global_step)
// and around the steps of an epoch (epochs 0-based):
//   on_epoch_begin(epoch); steps; on_epoch_end(epoch); evaluation with
//   eval_forward (default model.forward); one metrics.csv row, with the
//   method's csv_columns filled by csv_values(); checkpoint with save_state.
//
// State. Anything a method changes during training must survive a resume:
// tensors belong in the model as parameters (trained by the optimizer:
// quantizer step sizes, clipping levels) or buffers (not trained: running
// statistics, a learned bit-width's integer state), since the model's state
// dict, buffers included, is in every checkpoint; anything else goes through
// save_state / load_state as strings. The method's name is stored in the
// checkpoint, and fit() refuses to resume a checkpoint of another method.
//
// Optimizer parameter groups: by default fit() optimizes model.parameters()
// as one group (weight decay only where parameter::weight_decay is set);
// param_groups lets a method split them, e.g. quantizer parameters without
// weight decay and with their own lr_scale (optim/sgd.hpp).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/io/batch_loader.hpp"
#include "mixq/optim/sgd.hpp"

namespace mixq::train {

// What one optimizer step reports for the progress line and the metrics.
struct step_result {
  double loss_sum = 0;  // sum over the batch's samples of their loss (mean loss * count)
  int64_t correct = 0;  // samples classified correctly
  int64_t count = 0;    // samples seen
};

struct method_hooks {
  // Saved in the checkpoint ("method"); resuming a checkpoint written by
  // another method is an error naming both.
  std::string name = "fp32";

  // Builds the optimizer's parameter groups from model.parameters().
  // Default: one group holding them all.
  std::function<std::vector<optim::param_group>(std::vector<parameter*>)> param_groups;

  // Replaces the default step body (forward, loss, backward). Called with a
  // cleared tape after opt.zero_grad(); must leave gradients ready for
  // opt.step(). global_step counts optimizer steps from 0 over the whole run.
  std::function<step_result(tape&, const io::batch&, int64_t global_step)> train_step;
  // After opt.step().
  std::function<void(int64_t global_step)> after_step;
  std::function<void(int64_t epoch)> on_epoch_begin;  // epoch: 0-based
  std::function<void(int64_t epoch)> on_epoch_end;    // before evaluation

  // Extra metrics.csv columns, and their values (one call per epoch, as many
  // values as columns).
  std::vector<std::string> csv_columns;
  std::function<std::vector<std::string>()> csv_values;

  // Extra checkpoint entries (stored as metadata "method/<key>"), written at
  // every checkpoint and handed back on resume after the model is restored.
  std::function<void(std::map<std::string, std::string>&)> save_state;
  std::function<void(const std::map<std::string, std::string>&)> load_state;

  // Evaluation forward, [N,H,W,C] images -> [N, classes] logits. Default:
  // model.forward (in eval mode).
  std::function<var(tape&, var x)> eval_forward;
  // Replaces the whole evaluation on a data set, returning (mean loss,
  // accuracy): for example running the integer model a quantized network
  // exports to (deploy/verify.hpp), so that the accuracy reported is the
  // accuracy of what ships. Called where fit() evaluates, before
  // csv_values(). Default: evaluate() with eval_forward.
  std::function<std::pair<double, double>(const io::image_dataset&)> evaluate;
};

// The batch's images as a tape input [n, h, w, c] (no gradient).
inline var batch_input(tape& t, const io::batch& b) {
  return t.input(tensor_view(const_cast<float*>(b.images.data()), shape{b.n, b.h, b.w, b.c}));
}

// The FP32 step body: forward, softmax cross-entropy (with label smoothing),
// backward. A method's train_step may call it (e.g. around a quantizer update).
template <class Model>
step_result default_step(Model& model, tape& t, const io::batch& b, float label_smoothing) {
  var logits = model.forward(t, batch_input(t, b));
  var loss = softmax_cross_entropy(logits, b.labels.data(), label_smoothing);
  backward(loss);
  step_result r;
  r.loss_sum = static_cast<double>(loss.value()[0]) * static_cast<double>(b.n);
  r.correct = count_correct(logits.value(), b.labels.data());
  r.count = b.n;
  return r;
}

}  // namespace mixq::train
