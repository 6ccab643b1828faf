#pragma once
// CRC-32 (the IEEE 802.3 / zlib / PNG checksum: reflected polynomial
// 0xEDB88320, initial value and final xor 0xFFFFFFFF), computed with a
// 256-entry table built at compile time. The deploy runtime carries its own
// so that it needs no zlib; crc32("123456789") = 0xCBF43926.
#include <array>
#include <cstddef>
#include <cstdint>

namespace mixq {
namespace deploy {

namespace detail {
constexpr std::array<std::uint32_t, 256> make_crc32_table() noexcept {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
inline constexpr std::array<std::uint32_t, 256> crc32_table = make_crc32_table();
}  // namespace detail

/// Continues a CRC-32: crc32_update(crc32_update(0, a), b) == crc32(a ++ b).
inline std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t c = ~crc;
  for (std::size_t i = 0; i < n; ++i) c = detail::crc32_table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
  return ~c;
}

inline std::uint32_t crc32(const void* data, std::size_t n) noexcept {
  return crc32_update(0, data, n);
}

}  // namespace deploy
}  // namespace mixq
