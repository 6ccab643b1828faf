#pragma once
// Random fills of tensors and the standard weight initializations, drawn
// from mixq::rng (core/rng.hpp) so they are the same on every machine.
#include <cmath>
#include <cstdint>

#include "mixq/core/rng.hpp"
#include "mixq/core/tensor.hpp"
#include "mixq/error.hpp"

namespace mixq {

// Every element uniform in [lo, hi) / normal(mean, stddev), in element order.
inline void fill_uniform(const tensor_view& t, rng& r, float lo, float hi) {
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = r.uniform(lo, hi);
}
inline void fill_normal(const tensor_view& t, rng& r, float mean, float stddev) {
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = r.normal(mean, stddev);
}
// He et al. 2015 ("kaiming normal", fan_in mode, ReLU gain sqrt(2)):
// N(0, 2 / fan_in).
inline void kaiming_normal(const tensor_view& t, rng& r, int64_t fan_in) {
  MIXQ_CHECK(fan_in > 0, "kaiming_normal: fan_in must be positive, got ", fan_in);
  fill_normal(t, r, 0.0f, static_cast<float>(std::sqrt(2.0 / static_cast<double>(fan_in))));
}
// Uniform(-b, b) with b = gain * sqrt(3 / fan_in); gain 1/sqrt(3) gives the
// PyTorch default for linear/conv weights (b = 1/sqrt(fan_in)).
inline void kaiming_uniform(const tensor_view& t, rng& r, int64_t fan_in, float gain = 1.4142135f) {
  MIXQ_CHECK(fan_in > 0, "kaiming_uniform: fan_in must be positive, got ", fan_in);
  float b = gain * static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in)));
  fill_uniform(t, r, -b, b);
}

}  // namespace mixq
