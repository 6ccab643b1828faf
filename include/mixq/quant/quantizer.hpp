#pragma once
// quantizer: the common base of mixq's fake quantizers, and the integer grids
// they export.
//
// A quantizer is an nn::transform (nn/transform.hpp) installed on a layer's
// input or weight hook: apply(t, x) returns the fake-quantized x (a float
// tensor whose every element is scale * (code - zero_point) for an integer
// code in the grid's range) and records a tape extension op whose backward is
// the quantizer's straight-through / learned-scale gradient.
//
// Bits. bits() is a run-time integer in [2, 8] held in the buffer "bits" (so
// it is in every checkpoint and model file); set_bits() changes it between any
// two forwards without allocating. Parameters that depend on the bit-width
// (an LSQ step) are stored for a reference width and converted on the fly,
// so switching bits back and forth changes nothing in the model's state.
//
// Export. Every quantizer describes its integer grid: weight quantizers
// return the codes of a given weight tensor with their scale(s) and zero
// point (weight_grid), activation quantizers their scale and zero point
// (act_grid). The codes are computed by the same functions as the forward,
// so the grid reproduces the fake-quantized tensor exactly.
//
// Probe (AdaQAT per-layer estimate, quant/adaqat.hpp). With set_probe(p, B),
// the next backward also accumulates, for delta = q_p(x) - q_bits(x) (the
// tensor at p bits minus the tensor at the current bits) and g = dL/d(output):
//   first  = sum g * delta
//   second = (B / 2) * sum_over_samples (sum_in_sample g * delta)^2
// (weights: (B / 2) * sum_j (g_j delta_j)^2, the diagonal of the batch
// gradient's empirical Fisher), the first- and second-order terms of
// L(p bits) - L(bits). Off (probe 0) by default; it costs one more
// elementwise pass in backward.
#include <cstdint>
#include <string>
#include <vector>

#include "mixq/autograd/tape.hpp"
#include "mixq/core/tensor.hpp"
#include "mixq/nn/transform.hpp"
#include "mixq/quant/bits.hpp"

namespace mixq {
namespace quant {

// Integer form of a quantized weight tensor:
//   value[i] = scale[c] * (codes[i] - zero_point),  c = i / (numel / scale.size())
// (one scale per tensor, or one per output channel = dimension 0).
// zero_point is 0 for LSQ and -1/2 for DoReFa, whose 2^b levels are the odd
// multiples of scale / 2 (dorefa.hpp; lower.hpp maps them onto the kernels).
struct weight_grid {
  int bits = 0;               // codes in [-2^(bits-1), 2^(bits-1) - 1]
  std::vector<int8_t> codes;  // the weight tensor's layout (OHWI / [out, in])
  std::vector<float> scale;   // 1 or out_channels entries
  float zero_point = 0.0f;    // in code units
  int64_t out_channels = 0;

  int64_t per_channel() const { return static_cast<int64_t>(codes.size()) / out_channels; }
  float scale_of(int64_t i) const {
    return scale.size() == 1 ? scale[0] : scale[static_cast<size_t>(i / per_channel())];
  }
  // The fake-quantized value of element i.
  float value(int64_t i) const {
    return scale_of(i) * (static_cast<float>(codes[static_cast<size_t>(i)]) - zero_point);
  }
};

// Integer form of a quantized activation: value = scale * (code - zero_point),
// code in [0, 2^bits - 1].
struct act_grid {
  int bits = 0;
  float scale = 0.0f;
  int32_t zero_point = 0;
  int32_t max_code() const { return (1 << bits) - 1; }
};

namespace detail {
// The probe terms of an activation quantizer's backward: per sample
// s_b = sum over the sample's elements of dy * delta(i), then
// est[0] += sum_b s_b and est[1] += (B/2) sum_b s_b^2.
// delta(i) = q_probe(x_i) - q(x_i). Samples in parallel, summed in order.
template <class Delta>
inline void add_sample_probe(tape& t, const float* dy, int64_t n, int64_t batch, double* est,
                             Delta delta) {
  const int64_t per = n / batch;
  double* sums = reinterpret_cast<double*>(t.alloc(2 * batch));
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t b = 0; b < batch; ++b) {
    double s = 0.0;
    for (int64_t i = b * per; i < (b + 1) * per; ++i)
      s += static_cast<double>(dy[i]) * static_cast<double>(delta(i));
    sums[b] = s;
  }
  double f = 0.0, q = 0.0;
  for (int64_t b = 0; b < batch; ++b) {
    f += sums[b];
    q += sums[b] * sums[b];
  }
  est[0] += f;
  est[1] += 0.5 * static_cast<double>(batch) * q;
}
// The probe terms of a weight quantizer's backward: est[0] += sum dy * delta,
// est[1] += (B/2) sum (dy * delta)^2.
template <class Delta>
inline void add_element_probe(const float* dy, int64_t n, int64_t batch, double* est, Delta delta) {
  double f = 0.0, q = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double gd = static_cast<double>(dy[i]) * static_cast<double>(delta(i));
    f += gd;
    q += gd * gd;
  }
  est[0] += f;
  est[1] += 0.5 * static_cast<double>(batch) * q;
}
}  // namespace detail

class quantizer : public nn::transform {
 public:
  explicit quantizer(int bits) : bits_(shape{}) {
    check_bits(bits, "quantizer bits");
    bits_[0] = static_cast<float>(bits);
    register_buffer("bits", bits_);
  }

  int bits() const { return static_cast<int>(bits_[0]); }
  void set_bits(int b) {
    check_bits(b, "quantizer bits");
    bits_[0] = static_cast<float>(b);
  }
  virtual bool is_weight() const = 0;
  virtual const char* family() const = 0;
  // Forgets the range the quantizer set from data or from its options (an
  // LSQ step, a PACT clip), so that the next forward sets it again as in a
  // fresh run. Quantizers whose range is a function of the tensor (DoReFa)
  // have none to forget.
  virtual void reset_range() {}

  // ---- probe (AdaQAT per-layer estimate) ----
  void set_probe(int probe_bits, int64_t batch) {
    if (probe_bits != 0) check_bits(probe_bits, "probe bits");
    probe_ = probe_bits;
    probe_batch_ = batch;
    est_[0] = est_[1] = 0.0;
  }
  int probe_bits() const { return probe_; }
  double estimate_first() const { return est_[0]; }
  double estimate_second() const { return est_[1]; }

 protected:
  // Called by backward: adds to the estimate.
  double* estimate_sink() { return probe_ ? est_ : nullptr; }

  tensor bits_;
  int probe_ = 0;
  int64_t probe_batch_ = 0;
  double est_[2] = {0.0, 0.0};
};

class weight_quantizer : public quantizer {
 public:
  using quantizer::quantizer;
  bool is_weight() const override { return true; }
  // The integer grid of weight tensor w at the current bits.
  virtual weight_grid export_grid(const tensor& w) = 0;
};

class act_quantizer : public quantizer {
 public:
  using quantizer::quantizer;
  bool is_weight() const override { return false; }
  virtual act_grid export_grid() const = 0;
  // False until the quantizer has set its range from data (LSQ, calibrated
  // PACT): export_grid() is meaningful only after.
  virtual bool ready() const { return true; }
};

}  // namespace quant
}  // namespace mixq
