#pragma once
// Test helpers for the MultiQuant tests: a small ResNet8 and random images.
#include <cstdint>

#include "../common/tensors.hpp"
#include "mixq/nn/resnet.hpp"

namespace mixq_test {

// ResNet8 (one block per stage), a fixed seed: two models built from it hold
// the same FP32 weights.
inline mixq::nn::resnet_options resnet8() {
  mixq::nn::resnet_options o;
  o.n = 1;
  o.seed = 3;
  return o;
}

// n random NHWC images hw x hw x 3, values in [-2, 2).
inline mixq::tensor random_images(std::int64_t n, std::uint64_t seed, std::int64_t hw) {
  return random_tensor(mixq::shape{n, hw, hw, 3}, seed, -2.0f, 2.0f);
}

}  // namespace mixq_test
