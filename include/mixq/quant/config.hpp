#pragma once
// qat_config: what to quantize and how (quantizer families, bits, the first
// and last layer), validated in one place. Every field is a choice the papers
// leave open or a convention; docs/quantization.md gives each default and why.
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/quant/bits.hpp"
#include "mixq/quant/dorefa.hpp"
#include "mixq/quant/lsq.hpp"
#include "mixq/quant/pact.hpp"

namespace mixq {
namespace quant {

enum class weight_family { lsq, dorefa };
enum class act_family { lsq, pact };

// First / last layer: kept in FP32 (no quantizer: the DoReFa / PACT papers'
// convention; such a model has no integer-only deployment), 8-bit weights and
// activations (LSQ's convention and the default), or like the rest of the
// network (its bits, learned with them under AdaQAT).
enum class edge_policy { fp32, int8, same };

// DoReFa's level scale: unit on every layer (the paper), max on every layer,
// or auto (unit where a batch norm follows, max on the classifier).
enum class dorefa_scale_policy { automatic, unit, max };

// The forward product of the inner convolutions: FP32 kernels on the
// fake-quantized values, or the integer kernels on their codes (int_conv.hpp;
// the same product to float rounding, what the runtime computes). The
// backward is FP32 either way.
enum class conv_forward { fp32, integer };

struct qat_config {
  int bits_w = 4, bits_a = 4;  // inner layers, each in [2, 8]
  weight_family weights = weight_family::lsq;
  act_family acts = act_family::lsq;
  bool per_channel = false;                 // LSQ weights: one step per output channel
  weight_range range = weight_range::full;  // LSQ weights: code range
  edge_policy first = edge_policy::int8, last = edge_policy::int8;
  dorefa_scale_policy dorefa = dorefa_scale_policy::automatic;
  pact_options pact;
  bool step_decay = false;              // LSQ steps under the optimizer's weight decay
  step_init lsq_init = step_init::mse;  // LSQ steps' data initialisation (lsq.hpp)
  double step_band = 16.0;              // LSQ weights: step band B (lsq.hpp); 0 = off
  // The residual stream's width R: 0 (default) quantizes a block's input
  // once, at the activation bits, for both conv1 and the shortcut; R in
  // [2, 8] quantizes it at R bits for the shortcut (its own quantizer of the
  // activation family) and conv1 requantizes that at the activation bits.
  // BitOPs do not change (conv1 still reads bits_a); docs/quantization.md.
  int residual_bits = 0;
  conv_forward forward = conv_forward::integer;
  // The data loader's normalisation (the 8-bit input grid, input_quant.hpp);
  // empty = CIFAR-10's.
  std::vector<float> mean, stddev;

  void validate() const {
    check_bits(bits_w, "weight bits");
    check_bits(bits_a, "activation bits");
    MIXQ_CHECK(residual_bits == 0 || (residual_bits >= min_bits && residual_bits <= max_bits),
               "qat_config: residual bits = ", residual_bits,
               ", expected 0 (the activation bits) or an integer in [", min_bits, ", ", max_bits,
               "]");
    MIXQ_CHECK(mean.size() == stddev.size(), "qat_config: mean has ", mean.size(),
               " entries and stddev ", stddev.size());
    MIXQ_CHECK(step_band_valid(step_band), "qat_config: LSQ step band ", step_band,
               ", expected 0 (off) or in [1, ", step_band_max, "]");
    MIXQ_CHECK(pact.percentile > 0.0 && pact.percentile <= 1.0, "qat_config: PACT percentile ",
               pact.percentile, ", expected in (0, 1]");
  }
};

inline weight_family parse_weight_family(const std::string& s) {
  if (s == "lsq") return weight_family::lsq;
  if (s == "dorefa") return weight_family::dorefa;
  MIXQ_CHECK(false, "weight quantizer '", s, "': expected lsq or dorefa");
  return weight_family::lsq;
}
inline act_family parse_act_family(const std::string& s) {
  if (s == "lsq") return act_family::lsq;
  if (s == "pact") return act_family::pact;
  MIXQ_CHECK(false, "activation quantizer '", s, "': expected lsq or pact");
  return act_family::lsq;
}
inline edge_policy parse_edge_policy(const std::string& s) {
  if (s == "fp32") return edge_policy::fp32;
  if (s == "8" || s == "8bit" || s == "int8") return edge_policy::int8;
  if (s == "same") return edge_policy::same;
  MIXQ_CHECK(false, "first/last layer policy '", s, "': expected fp32, 8bit or same");
  return edge_policy::int8;
}
inline step_init parse_step_init(const std::string& s) {
  if (s == "lsq") return step_init::lsq;
  if (s == "mse") return step_init::mse;
  MIXQ_CHECK(false, "LSQ step initialisation '", s, "': expected lsq or mse");
  return step_init::lsq;
}
inline conv_forward parse_conv_forward(const std::string& s) {
  if (s == "fp32") return conv_forward::fp32;
  if (s == "integer") return conv_forward::integer;
  MIXQ_CHECK(false, "convolution forward '", s, "': expected fp32 or integer");
  return conv_forward::integer;
}
inline const char* name_of(step_init r) { return r == step_init::lsq ? "lsq" : "mse"; }
inline const char* name_of(weight_family f) { return f == weight_family::lsq ? "lsq" : "dorefa"; }
inline const char* name_of(act_family f) { return f == act_family::lsq ? "lsq" : "pact"; }
inline const char* name_of(edge_policy p) {
  return p == edge_policy::fp32 ? "fp32" : (p == edge_policy::int8 ? "8bit" : "same");
}

}  // namespace quant
}  // namespace mixq
