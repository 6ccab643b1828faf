#pragma once
// qat_train_step: the body of one quantization-aware training step (forward,
// softmax cross-entropy, backward), with AdaQAT's probes around it when a
// controller is given. The optimizer step is the caller's (it comes after:
// the probes use the weights the gradients were computed with).
//
//   ctl->before_forward(step, batch)       Taylor probes armed (layer granularity)
//   forward, loss L0, backward             gradients ready
//   ctl->after_backward(t, L0, probe)      finite-difference forwards on the same
//                                          batch (the tape is cleared and reused),
//                                          bit-width update
// The task loss the bits see is the training loss, label smoothing included.
// With soft targets (knowledge distillation: a teacher's probabilities on the
// batch, N x K) the loss is soft_target_cross_entropy with weight w:
// (1 - w) CE(label) + w KL(teacher || model), for training and probes alike.
#include <cstdint>

#include "mixq/autograd/autograd.hpp"
#include "mixq/quant/adaqat.hpp"
#include "mixq/quant/multiquant/soft_target.hpp"

namespace mixq {
namespace quant {

struct step_stats {
  double loss = 0;      // mean loss of the batch (before the bit update)
  int64_t correct = 0;  // samples classified correctly
  int64_t count = 0;
};

// requires: images [N, H, W, C], labels (N entries) and soft (N x classes,
//           or nullptr) stay valid during the call; t is cleared (the call
//           leaves it cleared when ctl probes).
template <class Model>
step_stats qat_train_step(Model& model, tape& t, const tensor_view& images, const int32_t* labels,
                          float label_smoothing, adaqat* ctl, int64_t global_step,
                          const float* soft = nullptr, float soft_weight = 0.0f) {
  const int64_t n = images.shape()[0];
  auto task_loss = [&](var logits) {
    return soft ? soft_target_cross_entropy(logits, labels, soft, soft_weight)
                : softmax_cross_entropy(logits, labels, label_smoothing);
  };
  if (ctl) ctl->before_forward(global_step, n);
  var logits = model.forward(t, t.input(images));
  var loss = task_loss(logits);
  step_stats st;
  st.loss = loss.value()[0];
  st.correct = count_correct(logits.value(), labels);
  st.count = n;
  backward(loss);
  if (ctl)
    ctl->after_backward(t, st.loss, [&](tape& tt) {
      tt.clear();
      var lg = model.forward(tt, tt.input(images));
      return static_cast<double>(task_loss(lg).value()[0]);
    });
  return st;
}

}  // namespace quant
}  // namespace mixq
