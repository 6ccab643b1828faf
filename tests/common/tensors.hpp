#pragma once
// Test helper: tensors of seeded uniform random values (mixq::rng, so the
// same on every machine).
#include <cstdint>

#include "mixq/core/init.hpp"
#include "mixq/core/rng.hpp"
#include "mixq/core/tensor.hpp"

namespace mixq_test {

// A tensor of shape s with values uniform in [lo, hi) from rng(seed).
inline mixq::tensor random_tensor(const mixq::shape& s, std::uint64_t seed, float lo = -1.0f,
                                  float hi = 1.0f) {
  mixq::tensor t(s);
  mixq::rng r(seed);
  mixq::fill_uniform(t.view(), r, lo, hi);
  return t;
}

}  // namespace mixq_test
