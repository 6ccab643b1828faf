#pragma once
// input_quant: the network input as 8-bit codes, and the first layer's
// padding.
//
// The training data are normalised images, x = (p / 255 - mean_c) / std_c for
// a pixel p in 0..255 of channel c (io/batch_loader.hpp; its random-crop
// padding is pixel 0). The integer runtime receives the pixels p. Three
// things must agree exactly between the two:
//   1. the codes the first convolution reads,
//   2. the value of the convolution's zero padding,
//   3. one scale for all input channels (a conv accumulator sums over the
//      channels, so the kernels take one activation scale per layer).
//
// Scheme. One affine 8-bit grid over the normalised range of all channels:
//   lo = min_c (0 - mean_c) / std_c,  hi = max_c (1 - mean_c) / std_c
//   scale = (hi - lo) / 255,  zero_point z = round(-lo / scale)  (an integer)
//   code(x) = clamp(round(x / scale) + z, 0, 255),  x_q = scale * (code - z)
// Normalised 0 maps to code z exactly, so the float convolution's zero
// padding is the code z: the runtime pads the first layer with z (and folds
// -z * sum(w) into its bias, kernels.md 4.3) and reproduces the padded
// border bit for bit. The runtime turns pixels into codes with a table of
// 256 codes per channel, code_table(), computed here by the same
// normalisation expression as the data loader and the same quantization
// function as the forward, so the codes are identical by construction. (The
// alternatives do not fit the kernels: folding 1/std_c into the weights
// gives each input channel its own scale, and padding with pixel 0 instead of
// normalised 0 changes what the FP32 model computes at the border.)
//
// The quantizer is fixed (no parameter, bits = 8); its gradient is the
// straight-through estimator inside the grid (the input usually needs none).
// Buffers: "bits", "scale", "zero_point", "mean", "stddev".
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "mixq/autograd/tape.hpp"
#include "mixq/quant/quantizer.hpp"

namespace mixq {
namespace quant {

namespace detail {
struct input_quant_saved {
  float inv, z;
};
inline void input_quant_backward(tape& t, const node& nd) {
  const input_quant_saved sv = nd.extension_saved<input_quant_saved>();
  const int32_t xi = nd.inputs[0];
  if (!t.needs_grad(xi)) return;
  const tensor_view xv = t.at(xi).value;
  const float* dy = t.grad_of(nd.output);
  bool acc = false;
  float* dx = t.grad_for_write(xi, &acc);
  for (int64_t i = 0; i < xv.numel(); ++i) {
    const float v = xv[i] * sv.inv + sv.z;
    const float g = (v >= 0.0f && v <= 255.0f) ? dy[i] : 0.0f;
    dx[i] = acc ? dx[i] + g : g;
  }
}
}  // namespace detail

class input_quant : public act_quantizer {
 public:
  // requires: mean and stddev have one entry per input channel, stddev > 0.
  input_quant(const std::vector<float>& mean, const std::vector<float>& stddev)
      : act_quantizer(8),
        scale_(shape{}),
        zero_point_(shape{}),
        mean_(shape{static_cast<int64_t>(mean.size())}),
        stddev_(shape{static_cast<int64_t>(stddev.size())}) {
    MIXQ_CHECK(!mean.empty() && mean.size() == stddev.size(), "input_quant: mean has ", mean.size(),
               " entries and stddev ", stddev.size(), ", expected one per channel");
    float lo = 0.0f, hi = 0.0f;
    for (size_t c = 0; c < mean.size(); ++c) {
      MIXQ_CHECK(stddev[c] > 0.0f && std::isfinite(stddev[c]) && std::isfinite(mean[c]),
                 "input_quant: stddev[", c, "] = ", stddev[c], ", expected > 0");
      const float a = normalized(0, mean[c], stddev[c]), b = normalized(255, mean[c], stddev[c]);
      lo = c == 0 ? a : std::min(lo, a);
      hi = c == 0 ? b : std::max(hi, b);
      mean_[static_cast<int64_t>(c)] = mean[c];
      stddev_[static_cast<int64_t>(c)] = stddev[c];
    }
    lo = std::min(lo, 0.0f);
    hi = std::max(hi, 0.0f);
    const float s = (hi - lo) / 255.0f;
    scale_[0] = s > 0.0f ? s : 1.0f;
    zero_point_[0] = round_code(-lo / scale_[0]);
    register_buffer("scale", scale_);
    register_buffer("zero_point", zero_point_);
    register_buffer("mean", mean_);
    register_buffer("stddev", stddev_);
  }
  const char* family() const override { return "input8"; }

  // The data loader's normalisation of pixel p (io/batch_loader.hpp).
  static float normalized(int p, float mean, float stddev) {
    return (static_cast<float>(p) / 255.0f - mean) / stddev;
  }
  // The code of a normalised value.
  int32_t code(float x) const {
    const float v = round_code(x * (1.0f / scale_[0])) + zero_point_[0];
    return static_cast<int32_t>(std::min(std::max(v, 0.0f), 255.0f));
  }
  // [channels][256]: the code of pixel p of channel c, code_table()[c*256 + p].
  std::vector<uint8_t> code_table() const {
    std::vector<uint8_t> t(static_cast<size_t>(256 * mean_.numel()));
    for (int64_t c = 0; c < mean_.numel(); ++c)
      for (int p = 0; p < 256; ++p)
        t[static_cast<size_t>(c * 256 + p)] =
            static_cast<uint8_t>(code(normalized(p, mean_[c], stddev_[c])));
    return t;
  }

  var apply(tape& t, var x) override {
    MIXQ_CHECK(x.shape().rank() == 4 && x.shape()[3] == mean_.numel(), prefix(), ": input ",
               x.shape(), " does not have ", mean_.numel(), " channels (NHWC)");
    const float s = scale_[0], inv = 1.0f / s, z = zero_point_[0];
    var y = t.new_value(x.shape(), x.requires_grad());
    const float* xd = x.value().data();
    float* yd = y.value().data();
    const int64_t n = x.value().numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i)
      yd[i] = s * (std::min(std::max(round_code(xd[i] * inv) + z, 0.0f), 255.0f) - z);
    if (x.requires_grad() && t.grad_enabled())
      t.record_extension(&detail::input_quant_backward, {x}, y, detail::input_quant_saved{inv, z});
    return y;
  }

  act_grid export_grid() const override {
    return act_grid{8, scale_[0], static_cast<int32_t>(zero_point_[0])};
  }

 private:
  tensor scale_, zero_point_, mean_, stddev_;
};

}  // namespace quant
}  // namespace mixq
