#pragma once
// mixq's one random number generator, and seed derivation. Standard library
// only (the fills of tensors are in core/init.hpp), so io uses it too.
//
// Why our own: std::mt19937's output is specified, but the std
// distributions (uniform_int_distribution, normal_distribution, ...) are not,
// so two standard libraries give different numbers from the same seed. mixq
// needs runs that are bit-identical across machines and across a
// save/resume, so the generator and every distribution are written out here.
//
// rng is PCG32 (O'Neill's permuted congruential generator, XSH-RR output).
// The whole state is two 64-bit words (state(), set_state()), so a checkpoint
// can store it and a resumed run draws the same numbers.
//
// derive_seed(seed, a, b) hashes a seed and two counters (SplitMix64's
// output mix) into the seed of an independent stream. The batch loader draws
// a sample's augmentation from rng(derive_seed(seed, epoch, index)), so a draw
// depends only on (seed, epoch, index): never on thread timing or on what was
// drawn before.
#include <cmath>
#include <cstdint>

#include "mixq/error.hpp"

namespace mixq {

// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective mix of
// 64 bits.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Seed of an independent stream for (seed, a, b).
inline uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b = 0) {
  uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
  h = mix64(h ^ (a * 0xd1b54a32d192ed03ULL + 0x8cb92ba72f3d8dd7ULL));
  h = mix64(h ^ (b * 0xaef17502108ef2d9ULL + 0x632be59bd9b4e019ULL));
  return h;
}

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
  // Fair coin.
  bool coin() { return (next_u32() >> 31) != 0; }
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

}  // namespace mixq
