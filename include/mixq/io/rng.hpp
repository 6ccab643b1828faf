#pragma once
// A small, fast, serializable random number generator, and seed derivation.
//
// Why our own: std::mt19937's output is specified, but the std
// distributions (uniform_int_distribution, ...) are not, so two standard
// libraries give different shuffles from the same seed. mixq needs runs that
// are bit-identical across machines and across a save/resume, so it uses a
// generator whose whole state is one uint64 and whose derived draws are
// written out here.
//
// The generator is SplitMix64 (Steele, Lea, Flood 2014: the state advances by
// a fixed odd constant and each output is a bijective 64-bit mix of the
// state). It passes BigCrush, has period 2^64, and saving it is saving one
// integer (splitmix64::state()).
//
// derive_seed(seed, a, b) hashes a seed and two counters into an independent
// stream seed. The batch loader draws a sample's augmentation from
// splitmix64(derive_seed(seed, epoch, index)), so a draw depends only on
// (seed, epoch, index): never on thread timing or on what was drawn before.
#include <cstdint>

namespace mixq::io {

// The SplitMix64 output function: a bijective mix of 64 bits.
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Seed of an independent stream for (seed, a, b).
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0) {
  std::uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
  h = mix64(h ^ (a * 0xd1b54a32d192ed03ULL + 0x8cb92ba72f3d8dd7ULL));
  h = mix64(h ^ (b * 0xaef17502108ef2d9ULL + 0x632be59bd9b4e019ULL));
  return h;
}

class splitmix64 {
 public:
  explicit splitmix64(std::uint64_t seed = 0) : state_(seed) {}

  // Next 64 random bits.
  std::uint64_t next_u64() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix64(state_);
  }
  // Uniform integer in [0, n), unbiased (rejection of the short last bucket).
  // requires: n > 0.
  std::uint64_t uniform_below(std::uint64_t n) {
    const std::uint64_t limit = ~std::uint64_t(0) - (~std::uint64_t(0) % n);
    std::uint64_t r;
    do r = next_u64();
    while (r >= limit);
    return r % n;
  }
  // Uniform float in [0, 1) with 24 random bits.
  float uniform_float() { return float(next_u64() >> 40) * (1.0f / 16777216.0f); }
  // Uniform double in [0, 1) with 53 random bits.
  double uniform_double() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  // Fair coin.
  bool coin() { return (next_u64() >> 63) != 0; }

  // The whole state; splitmix64(s.state()) continues exactly where s is.
  std::uint64_t state() const { return state_; }
  void set_state(std::uint64_t s) { state_ = s; }

 private:
  std::uint64_t state_;
};

}  // namespace mixq::io
