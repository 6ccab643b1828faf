#pragma once
// Integer helpers shared by every layer of mixq, the integer kernels included
// (so this header depends on nothing but <cstdint>).
#include <cstdint>

namespace mixq {

/// Smallest multiple of m that is >= x (x >= 0, m >= 1).
inline constexpr std::int64_t round_up(std::int64_t x, std::int64_t m) noexcept {
  return (x + m - 1) / m * m;
}

}  // namespace mixq
