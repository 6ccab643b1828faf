#pragma once
// soft_target_cross_entropy: the loss of a student slice against a mix of the
// hard label and a teacher's probabilities (MultiQuant's online adaptive
// label, docs/multiquant.md section 3):
//
//   q_i  = (1 - w) onehot(y_i) + w p_T,i            (p_T: teacher, detached)
//   loss = (1/N) sum_i [ (1 - w) CE(p_i, y_i) + w KL(p_T,i || p_i) ]
//        = (1/N) sum_i [ -sum_k q_ik log p_ik ] - w (1/N) sum_i H(p_T,i)
//   d loss / d z_i = (p_i - q_i) / N                p = softmax(z)
//
// With w = lambda and p_T the previous (higher) slice this is the GPG loss of
// EQ-Net (the verified successor form); with w = alpha_t and p_T the highest
// slice, the PS-KD-style target; w = 0 (or no teacher) is the cross-entropy
// with the hard label. The teacher is copied into the tape's arena, so the
// caller may overwrite its buffer after the forward. probs_out (optional,
// N x K) receives this slice's probabilities, the next slice's teacher.
// An op outside autograd/ (tape::record_extension), one forward and backward.
#include <cmath>
#include <cstring>

#include "mixq/autograd/ops/softmax_cross_entropy.hpp"
#include "mixq/autograd/tape.hpp"

namespace mixq {
namespace quant {

namespace detail {
struct soft_target_saved {
  const float* probs;
  const float* teacher;  // nullptr: hard labels only
  const int32_t* labels;
  float weight;
};

inline void soft_target_backward(tape& t, const node& nd) {
  const soft_target_saved sv = nd.extension_saved<soft_target_saved>();
  const int32_t xi = nd.inputs[0];
  if (!t.needs_grad(xi)) return;
  const shape& ls = t.at(xi).value.shape();
  const int64_t n = ls[0], k = ls[1];
  const float g = t.grad_of(nd.output)[0] / static_cast<float>(n);
  const float hard = 1.0f - (sv.teacher ? sv.weight : 0.0f);
  bool acc = false;
  float* dz = t.grad_for_write(xi, &acc);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      float q = j == sv.labels[i] ? hard : 0.0f;
      if (sv.teacher) q += sv.weight * sv.teacher[i * k + j];
      const float v = g * (sv.probs[i * k + j] - q);
      dz[i * k + j] = acc ? dz[i * k + j] + v : v;
    }
}
}  // namespace detail

// logits [N, K]; labels N ints in [0, K); teacher N x K probabilities or
// nullptr; weight in [0, 1]. Returns the scalar loss.
inline var soft_target_cross_entropy(var logits, const int32_t* labels, const float* teacher,
                                     float weight, float* probs_out = nullptr) {
  MIXQ_CHECK(logits.valid(), "soft_target_cross_entropy: invalid var");
  const shape ls = logits.shape();
  MIXQ_CHECK(ls.rank() == 2 && ls[1] >= 1, "soft_target_cross_entropy: logits must be [N, K], got ",
             ls);
  MIXQ_CHECK(weight >= 0.0f && weight <= 1.0f, "soft_target_cross_entropy: weight ", weight,
             ", expected in [0, 1]");
  tape& t = *logits.t;
  const int64_t n = ls[0], k = ls[1];
  for (int64_t i = 0; i < n; ++i)
    MIXQ_CHECK(labels[i] >= 0 && labels[i] < k, "soft_target_cross_entropy: label ", labels[i],
               " at row ", i, " outside [0, ", k, ")");
  if (weight == 0.0f) teacher = nullptr;
  var loss = t.new_value(shape{}, logits.requires_grad());
  float* probs = t.alloc(n * k);
  float* tcopy = teacher ? t.alloc(n * k) : nullptr;
  if (tcopy) std::memcpy(tcopy, teacher, static_cast<size_t>(n * k) * sizeof(float));
  int32_t* lab = reinterpret_cast<int32_t*>(t.alloc(n));
  std::memcpy(lab, labels, static_cast<size_t>(n) * sizeof(int32_t));
  const float* z = logits.value().data();
  const double w = tcopy ? weight : 0.0;
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float* zi = z + i * k;
    const double lse = softmax_row(zi, probs + i * k, k);
    double li = -(1.0 - w) * (static_cast<double>(zi[lab[i]]) - lse);
    for (int64_t j = 0; j < k; ++j) {
      if (tcopy && tcopy[i * k + j] > 0.0f) {
        const double pt = tcopy[i * k + j];
        li += w * pt * (std::log(pt) - (static_cast<double>(zi[j]) - lse));
      }
    }
    total += li;
  }
  loss.value()[0] = static_cast<float>(n ? total / static_cast<double>(n) : 0.0);
  if (probs_out) std::memcpy(probs_out, probs, static_cast<size_t>(n * k) * sizeof(float));
  if (logits.requires_grad() && t.grad_enabled())
    t.record_extension(&detail::soft_target_backward, {logits}, loss,
                       detail::soft_target_saved{probs, tcopy, lab, weight});
  return loss;
}

}  // namespace quant
}  // namespace mixq
