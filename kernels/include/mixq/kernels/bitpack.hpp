#pragma once
// Compact serialized form of sub-byte weight codes (model files, export):
// the codes of W[n][taps][k_seg] in that order, each as a b_w-bit two's
// complement field, packed little-endian into bytes (element i occupies bits
// [i*b_w, (i+1)*b_w) of the byte stream). Kernels never read this form; it is
// unpacked to int8 codes and then packed for a kernel (pack.hpp).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mixq/kernels/common.hpp"

namespace mixq {
namespace kernels {

/// Bytes needed for `count` codes of `bits` bits.
inline constexpr std::size_t bitpacked_size(std::size_t count, int bits) noexcept {
  return (count * static_cast<std::size_t>(bits) + 7) / 8;
}

/// Serialize signed `bits`-bit codes (two's complement fields, little-endian
/// bit order). dst must hold bitpacked_size(count, bits) bytes.
inline void bitpack_codes(const std::int8_t* codes, std::size_t count, int bits,
                          std::uint8_t* dst) noexcept {
  MIXQ_DASSERT(bits >= 1 && bits <= 8);
  std::memset(dst, 0, bitpacked_size(count, bits));
  const unsigned mask = (1u << bits) - 1u;
  std::size_t bit = 0;
  for (std::size_t i = 0; i < count; ++i, bit += static_cast<std::size_t>(bits)) {
    const unsigned v = static_cast<unsigned>(static_cast<std::uint8_t>(codes[i])) & mask;
    const std::size_t byte = bit >> 3;
    const unsigned sh = static_cast<unsigned>(bit & 7);
    const unsigned wide = v << sh;  // at most 15 bits
    dst[byte] = static_cast<std::uint8_t>(dst[byte] | (wide & 0xFFu));
    if (sh + static_cast<unsigned>(bits) > 8)
      dst[byte + 1] = static_cast<std::uint8_t>(dst[byte + 1] | (wide >> 8));
  }
}

/// Inverse of bitpack_codes: sign-extends every field back to int8.
inline void bitunpack_codes(const std::uint8_t* src, std::size_t count, int bits,
                            std::int8_t* codes) noexcept {
  MIXQ_DASSERT(bits >= 1 && bits <= 8);
  const unsigned mask = (1u << bits) - 1u;
  const unsigned sign = 1u << (bits - 1);
  std::size_t bit = 0;
  for (std::size_t i = 0; i < count; ++i, bit += static_cast<std::size_t>(bits)) {
    const std::size_t byte = bit >> 3;
    const unsigned sh = static_cast<unsigned>(bit & 7);
    unsigned wide = src[byte];
    if (sh + static_cast<unsigned>(bits) > 8) wide |= static_cast<unsigned>(src[byte + 1]) << 8;
    const unsigned v = (wide >> sh) & mask;
    codes[i] = static_cast<std::int8_t>(static_cast<int>(v ^ sign) - static_cast<int>(sign));
  }
}

}  // namespace kernels
}  // namespace mixq
