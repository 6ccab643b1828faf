#pragma once
// softmax_cross_entropy: mean over the batch of the cross-entropy between
// softmax(logits) and label-smoothed one-hot targets
//   q_k = (1 - eps) * [k == label] + eps / K
//   loss = (1/N) sum_i sum_k -q_k * log softmax(z_i)_k
// logits [N, K], labels: N ints in [0, K). Returns a scalar (shape []).
// Also: argmax_rows() and count_correct() for accuracy.
#include <cmath>
#include <cstring>

#include "mixq/autograd/tape.hpp"

namespace mixq {

// Softmax of one row of k logits into p; returns log sum exp (in double).
// Shared by the losses built on softmax (this one, and losses above autograd
// such as the quantization layer's soft-target loss).
inline double softmax_row(const float* z, float* p, int64_t k) {
  float m = z[0];
  for (int64_t j = 1; j < k; ++j) m = z[j] > m ? z[j] : m;
  double s = 0.0;
  for (int64_t j = 0; j < k; ++j) {
    p[j] = std::exp(z[j] - m);
    s += p[j];
  }
  const float inv = static_cast<float>(1.0 / s);
  for (int64_t j = 0; j < k; ++j) p[j] *= inv;
  return std::log(s) + m;
}

struct softmax_cross_entropy_saved {
  const float* probs;
  const int32_t* labels;
  float smoothing;
};

inline var softmax_cross_entropy(var logits, const int32_t* labels, float label_smoothing = 0.0f) {
  MIXQ_CHECK(logits.valid(), "softmax_cross_entropy: invalid var");
  const shape& ls = logits.shape();
  MIXQ_CHECK(ls.rank() == 2 && ls[1] >= 1, "softmax_cross_entropy: logits must be [N, K], got ",
             ls);
  MIXQ_CHECK(label_smoothing >= 0.0f && label_smoothing <= 1.0f,
             "softmax_cross_entropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  tape& t = *logits.t;
  const int64_t n = ls[0], k = ls[1];
  for (int64_t i = 0; i < n; ++i)
    MIXQ_CHECK(labels[i] >= 0 && labels[i] < k, "softmax_cross_entropy: label ", labels[i],
               " at row ", i, " outside [0, ", k, ")");
  var loss = t.new_value(shape{}, logits.requires_grad());
  float* probs = t.alloc(n * k);
  int32_t* lab = reinterpret_cast<int32_t*>(t.alloc(n));
  std::memcpy(lab, labels, static_cast<size_t>(n) * sizeof(int32_t));
  const float* z = logits.value().data();
  const double eps = label_smoothing;
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float* zi = z + i * k;
    const double lse = softmax_row(zi, probs + i * k, k);
    double li = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      double q = eps / static_cast<double>(k) + (j == lab[i] ? 1.0 - eps : 0.0);
      li -= q * (static_cast<double>(zi[j]) - lse);
    }
    total += li;
  }
  loss.value()[0] = static_cast<float>(n ? total / static_cast<double>(n) : 0.0);
  if (logits.requires_grad() && t.grad_enabled())
    t.record(op_kind::softmax_cross_entropy, {logits}, loss,
             softmax_cross_entropy_saved{probs, lab, label_smoothing});
  return loss;
}

inline void softmax_cross_entropy_backward(tape& t, const node& nd) {
  const softmax_cross_entropy_saved sv = nd.saved_as<softmax_cross_entropy_saved>();
  const int32_t xi = nd.inputs[0];
  if (!t.needs_grad(xi)) return;
  const shape& ls = t.at(xi).value.shape();
  const int64_t n = ls[0], k = ls[1];
  const float g = t.grad_of(nd.output)[0] / static_cast<float>(n);
  const float off = sv.smoothing / static_cast<float>(k);
  bool acc = false;
  float* dz = t.grad_for_write(xi, &acc);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) {
      float q = off + (j == sv.labels[i] ? 1.0f - sv.smoothing : 0.0f);
      float v = g * (sv.probs[i * k + j] - q);
      dz[i * k + j] = acc ? dz[i * k + j] + v : v;
    }
}

// Index of the largest logit of each row (first one on ties) into out[N].
inline void argmax_rows(const tensor_view& logits, int32_t* out) {
  MIXQ_CHECK(logits.rank() == 2, "argmax_rows: logits must be [N, K], got ", logits.shape());
  const int64_t n = logits.dim(0), k = logits.dim(1);
  for (int64_t i = 0; i < n; ++i) {
    const float* r = logits.data() + i * k;
    int64_t best = 0;
    for (int64_t j = 1; j < k; ++j)
      if (r[j] > r[best]) best = j;
    out[i] = static_cast<int32_t>(best);
  }
}
// Number of rows whose argmax equals the label.
inline int64_t count_correct(const tensor_view& logits, const int32_t* labels) {
  MIXQ_CHECK(logits.rank() == 2, "count_correct: logits must be [N, K], got ", logits.shape());
  const int64_t n = logits.dim(0), k = logits.dim(1);
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* r = logits.data() + i * k;
    int64_t best = 0;
    for (int64_t j = 1; j < k; ++j)
      if (r[j] > r[best]) best = j;
    c += (best == labels[i]);
  }
  return c;
}
inline double accuracy(const tensor_view& logits, const int32_t* labels) {
  const int64_t n = logits.rank() == 2 ? logits.dim(0) : 0;
  return n ? static_cast<double>(count_correct(logits, labels)) / static_cast<double>(n) : 0.0;
}

}  // namespace mixq
