#pragma once
// rng: a small seeded random number generator with serializable state.
//
// PCG32 (O'Neill's permuted congruential generator, XSH-RR output). The whole
// state is two 64-bit words (state(), set_state()), so a checkpoint can store
// it and a resumed run draws the same numbers. Distribution code is our own so
// results do not depend on the standard library's implementation.
#include <cmath>
#include <cstdint>

#include "mixq/core/tensor.hpp"

namespace mixq {

class rng {
 public:
  struct state_type {
    uint64_t state = 0;
    uint64_t inc = 1;
  };

  explicit rng(uint64_t seed = 0x853c49e6748fea9bULL, uint64_t stream = 0xda3e39cb94b95bdbULL) {
    seed_with(seed, stream);
  }
  void seed_with(uint64_t seed, uint64_t stream = 0xda3e39cb94b95bdbULL) {
    s_.state = 0;
    s_.inc = (stream << 1u) | 1u;
    next_u32();
    s_.state += seed;
    next_u32();
  }
  state_type state() const { return s_; }
  void set_state(const state_type& s) {
    MIXQ_CHECK((s.inc & 1u) == 1u, "rng::set_state: increment must be odd, got ", s.inc);
    s_ = s;
  }

  uint32_t next_u32() {
    uint64_t old = s_.state;
    s_.state = old * 6364136223846793005ULL + s_.inc;
    uint32_t xorshifted = static_cast<uint32_t>(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = static_cast<uint32_t>(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
  }
  // Uniform integer in [0, n), n > 0 (rejection sampling, no modulo bias).
  uint32_t below(uint32_t n) {
    MIXQ_CHECK(n > 0, "rng::below: n must be positive");
    uint32_t threshold = (0u - n) % n;
    for (;;) {
      uint32_t r = next_u32();
      if (r >= threshold) return r % n;
    }
  }
  // Uniform in [0, 1) with 24 random bits.
  float uniform() { return static_cast<float>(next_u32() >> 8) * (1.0f / 16777216.0f); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal via Box-Muller (one value per call; no cached second value,
  // so the state stays two words).
  float normal() {
    double u1 = (static_cast<double>(next_u32()) + 1.0) * (1.0 / 4294967296.0);  // (0, 1]
    double u2 = static_cast<double>(next_u32()) * (1.0 / 4294967296.0);
    return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
  }
  float normal(float mean, float stddev) { return mean + stddev * normal(); }

 private:
  state_type s_;
};

// Fill helpers.
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
