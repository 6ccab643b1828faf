#pragma once
// Weight packing: int8 codes W[n][taps][k_seg] -> kernel-ready opaque form,
// done ONCE per layer (at load/export), never in the hot path.
//
// Codes: signed symmetric b_w-bit, w in [-(2^(b_w-1)), 2^(b_w-1) - 1]
// (the minimum code is allowed). Activations: unsigned b_a-bit codes.
//
// Packed layouts (kg = ceil(k_seg / 4) groups of 4 per tap; padding is zero):
//   scalar_ref        int8  [N][taps][k_seg]                (verbatim copy)
//   *_c4 (VNNI, AVX2 maddubs/acc16, NEON sdot/smlal)
//                     int8  [ceil(N/NR)][taps][kg][NR][4]
//   avx2_madd16       int16 [ceil(N/NR)][taps][kg][2][NR][2] (k pairs (0,2) | (1,3))
// The zero padding of K (k_seg -> 4*kg) is what makes the activation
// over-read harmless; the zero padding of N lets kernels run full NR tiles.
//
// Compact serialized form: the codes of W[n][taps][k_seg] in that order, each
// as a b_w-bit two's complement field, packed little-endian into bytes
// (element i occupies bits [i*b_w, (i+1)*b_w) of the byte stream).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"
#include "dispatch.hpp"

namespace mixq {
namespace kernels {

/// maddubs int16 accumulation depth: how many vpmaddubsw results (each
/// a0*w0 + a1*w1) one int16 lane may sum before it must be widened.
/// T = floor(32767 / (2 * (2^ba - 1) * 2^(bw-1))); 0 means vpmaddubsw itself
/// can saturate (W8A8). Table in the shared kernels.md section 4.3.
inline constexpr int acc16_widen_every(int bw, int ba) noexcept {
  return 32767 / (2 * ((1 << ba) - 1) * (1 << (bw - 1)));
}
static_assert(acc16_widen_every(4, 4) == 136, "T(W4A4)");
static_assert(acc16_widen_every(2, 2) == 2730, "T(W2A2)");
static_assert(acc16_widen_every(8, 7) == 1, "T(W8A7)");
static_assert(acc16_widen_every(8, 8) == 0, "W8A8 saturates vpmaddubsw");

/// One enumerator per kernel family, from kernels.inc.
enum class kernel_id : int {
#define MIXQ_QGEMM_KERNEL(id, isa_, sfx, mr, nr, kr, ok, vbmi) id,
#include "kernels.inc"
#undef MIXQ_QGEMM_KERNEL
  count
};

struct kernel_info {
  kernel_id id;
  isa level;
  const char* name;    ///< enumerator name
  const char* suffix;  ///< arch suffix after "__"
  int mr, nr, kr;
  bool needs_vbmi;  ///< also needs AVX-512 VBMI + BITALG
};

inline const kernel_info* kernel_table(std::size_t* count) noexcept {
  static const kernel_info table[] = {
#define MIXQ_QGEMM_KERNEL(id, isa_, sfx, mr, nr, kr, ok, vbmi) \
  {kernel_id::id, isa::isa_, #id, sfx, mr, nr, kr, vbmi},
#include "kernels.inc"
#undef MIXQ_QGEMM_KERNEL
  };
  *count = sizeof(table) / sizeof(table[0]);
  return table;
}

inline const kernel_info& get_kernel_info(kernel_id id) noexcept {
  std::size_t n = 0;
  return kernel_table(&n)[static_cast<int>(id)];
}

/// Whether this CPU (and build) can run kernel `id`.
inline bool kernel_runnable(kernel_id id) noexcept {
  const kernel_info& k = get_kernel_info(id);
  return isa_supported(k.level) && (!k.needs_vbmi || detect_cpu().avx512lut);
}

/// Whether kernel `id` is exact for the pair (bw, ba) (its overflow bound).
inline bool kernel_supports(kernel_id id, int bw, int ba) noexcept {
  if (bw < 2 || bw > 8 || ba < 2 || ba > 8) return false;
  switch (id) {
#define MIXQ_QGEMM_KERNEL(id_, isa_, sfx, mr, nr, kr, ok, vbmi) \
  case kernel_id::id_:                                          \
    return (ok);
#include "kernels.inc"
#undef MIXQ_QGEMM_KERNEL
    default:
      return false;
  }
}

/// Whether kernel `id` sums a tap subset (qgemm_problem::tap_idx). The c4
/// families (x86 and NEON; NEON's 8-bit activation flip then corrects with
/// the used taps' weight sums, arm_neon/flip_correction.hpp) and the scalar
/// reference do; the LUT families (tables per tap block) take all taps.
inline bool kernel_supports_tap_subset(kernel_id id) noexcept {
  switch (id) {
    case kernel_id::scalar_ref:
#if MIXQ_KERNELS_X86
    case kernel_id::avx512vnni_12x32c4:
    case kernel_id::avx512vnni_16x16c4:
    case kernel_id::avx512vnni_8x32c4:
    case kernel_id::avx2_acc16_6x16c4:
    case kernel_id::avx2_maddubs_4x16c4:
    case kernel_id::avx2_madd16_4x16c4:
#endif
#if MIXQ_KERNELS_ARM64
    case kernel_id::neon_smlal_4x16c4:
#endif
#if MIXQ_KERNELS_NEON_DOTPROD
    case kernel_id::neondot_8x8c4:
#endif
      return true;
    default:
      return false;
  }
}

/// Kernel the dispatcher uses for (isa, bw, ba, n). Lower bit-widths never get
/// a slower family than higher ones (measured, see docs/kernels.md).
inline kernel_id choose_kernel(isa level, int bw, int ba, std::int32_t n) noexcept {
  (void)bw;
  (void)ba;
  (void)n;
  switch (level) {
#if MIXQ_KERNELS_X86
    case isa::avx512:
      // LUT only where it measured faster than VNNI: A2 with wide N (its
      // in-kernel index preparation is amortized over N / 16 channel blocks)
      if (ba == 2 && bw <= 6 && n >= 128 && detail::state().caps.avx512lut)
        return kernel_id::avx512vbmi_lut_16x16c16;
      // 8x32 (8 row pointers, 2 weight vectors per broadcast) measured
      // 1.02-1.03x 16x16 on 32- and 64-channel convs and square GEMMs; 16x16
      // for N = 16 (8x32 would leave half of each tile empty) and other N.
      // 12x32 is slower than both (docs/kernels.md, section 8).
      return n % 32 == 0 ? kernel_id::avx512vnni_8x32c4 : kernel_id::avx512vnni_16x16c4;
    case isa::avx2: {
      const int t = acc16_widen_every(bw, ba);
      // measured: acc16 beats the int32 maddubs kernel from T = 4 on (W5A8,
      // W8A5, W6A7: +18%), ties at T = 2 (W7A7) and loses at T = 2 (W8A6)
      if (t >= 4) return kernel_id::avx2_acc16_6x16c4;
      if (t >= 1) return kernel_id::avx2_maddubs_4x16c4;
      return kernel_id::avx2_madd16_4x16c4;
    }
#endif
#if MIXQ_KERNELS_ARM64
    case isa::neon:
      return kernel_id::neon_smlal_4x16c4;
#endif
#if MIXQ_KERNELS_NEON_DOTPROD
    case isa::neon_dotprod:
      return kernel_id::neondot_8x8c4;
#endif
    default:
      return kernel_id::scalar_ref;
  }
}

/// 64-byte aligned byte buffer with value semantics.
class aligned_buffer {
 public:
  aligned_buffer() = default;
  explicit aligned_buffer(std::size_t bytes) { reset(bytes); }
  aligned_buffer(const aligned_buffer& o) { *this = o; }
  aligned_buffer(aligned_buffer&&) noexcept = default;
  aligned_buffer& operator=(aligned_buffer&&) noexcept = default;
  aligned_buffer& operator=(const aligned_buffer& o) {
    if (this != &o) {
      reset(o.size_);
      if (size_) std::memcpy(ptr_.get(), o.ptr_.get(), size_);
    }
    return *this;
  }
  void reset(std::size_t bytes) {
    ptr_.reset(bytes ? static_cast<unsigned char*>(::operator new[](bytes, std::align_val_t(64)))
                     : nullptr);
    size_ = bytes;
    if (bytes) std::memset(ptr_.get(), 0, bytes);
  }
  unsigned char* data() noexcept { return ptr_.get(); }
  const unsigned char* data() const noexcept { return ptr_.get(); }
  std::size_t size() const noexcept { return size_; }

 private:
  struct deleter {
    void operator()(unsigned char* p) const noexcept {
      ::operator delete[](p, std::align_val_t(64));
    }
  };
  std::unique_ptr<unsigned char[], deleter> ptr_;
  std::size_t size_ = 0;
};

/// Weights packed for one kernel family and one (b_w, b_a) pair. Opaque to
/// callers: pass it to qgemm(). Copyable, movable.
struct packed_weights {
  kernel_id kernel = kernel_id::scalar_ref;
  isa level = isa::scalar;
  std::int32_t n = 0, taps = 0, k_seg = 0;
  std::int32_t b_w = 0, b_a = 0;
  std::int32_t kg = 0;  ///< groups of 4 per tap = ceil(k_seg / 4)
  std::int32_t mr = 1, nr = 1;
  std::int32_t widen_every = 0;       ///< acc16 families: k-groups between widenings
  std::vector<std::int32_t> col_sum;  ///< sum over taps, k of W[n] (used with b_a = 8 on NEON)
  aligned_buffer data;
  std::array<char, 64> name{};  ///< full kernel name

  std::int32_t n_blocks() const noexcept { return (n + nr - 1) / nr; }
  std::int64_t k_total() const noexcept { return std::int64_t(taps) * k_seg; }
};

namespace detail {

inline void pack_check(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("mixq::kernels::pack_weights: ") + what);
}

inline void pack_c4(const std::int8_t* w, std::int32_t n, std::int32_t taps, std::int32_t k_seg,
                    std::int32_t nr, std::int32_t kg, std::int8_t* out) {
  const std::int32_t nb = (n + nr - 1) / nr;
  for (std::int32_t b = 0; b < nb; ++b)
    for (std::int32_t t = 0; t < taps; ++t)
      for (std::int32_t g = 0; g < kg; ++g)
        for (std::int32_t j = 0; j < nr; ++j)
          for (std::int32_t q = 0; q < 4; ++q) {
            const std::int32_t col = b * nr + j, c = 4 * g + q;
            const std::int8_t v =
                (col < n && c < k_seg) ? w[(std::int64_t(col) * taps + t) * k_seg + c] : 0;
            out[((((std::int64_t(b) * taps + t) * kg + g) * nr + j) * 4) + q] = v;
          }
}

inline void pack_c4_i16(const std::int8_t* w, std::int32_t n, std::int32_t taps, std::int32_t k_seg,
                        std::int32_t nr, std::int32_t kg, std::int16_t* out) {
  const std::int32_t nb = (n + nr - 1) / nr;
  for (std::int32_t b = 0; b < nb; ++b)
    for (std::int32_t t = 0; t < taps; ++t)
      for (std::int32_t g = 0; g < kg; ++g)
        for (std::int32_t h = 0; h < 2; ++h)
          for (std::int32_t j = 0; j < nr; ++j)
            for (std::int32_t q = 0; q < 2; ++q) {
              const std::int32_t col = b * nr + j,
                                 c = 4 * g + h + 2 * q;  // pairs (k0,k2) | (k1,k3)
              const std::int16_t v =
                  (col < n && c < k_seg) ? w[(std::int64_t(col) * taps + t) * k_seg + c] : 0;
              out[(((((std::int64_t(b) * taps + t) * kg + g) * 2 + h) * nr + j) * 2) + q] = v;
            }
}

}  // namespace detail

// ---- LUT family tables (kernel avx512vbmi_lut_16x16c16) ----------------------

/// zmm index vectors the LUT kernel can prepare per tile (16 KB of stack).
constexpr std::int32_t lut_index_capacity = 256;

/// Table bytes of a LUT pack (the c4 copy follows them).
inline std::int64_t lut_table_bytes(std::int32_t n, std::int32_t taps,
                                    std::int32_t k_seg) noexcept {
  return std::int64_t((n + 15) / 16) * taps * ((k_seg + 15) / 16) * 16 * 64;
}

namespace detail {

inline void pack_lut_tables(const std::int8_t* w, std::int32_t n, std::int32_t taps,
                            std::int32_t k_seg, std::int8_t* out) {
  const std::int32_t nb = (n + 15) / 16, kb = (k_seg + 15) / 16;
  for (std::int32_t b = 0; b < nb; ++b)
    for (std::int32_t t = 0; t < taps; ++t)
      for (std::int32_t blk = 0; blk < kb; ++blk)
        for (std::int32_t j = 0; j < 16; ++j)
          for (std::int32_t g = 0; g < 4; ++g)
            for (std::int32_t i = 0; i < 16; ++i) {
              const std::int32_t col = b * 16 + j;
              int s = 0;
              for (std::int32_t q = 0; q < 4; ++q) {
                const std::int32_t c = 16 * blk + 4 * g + q;
                if ((i >> q & 1) && col < n && c < k_seg)
                  s += w[(std::int64_t(col) * taps + t) * k_seg + c];
              }
              out[((((std::int64_t(b) * taps + t) * kb + blk) * 16 + j) * 64) + 16 * g + i] =
                  static_cast<std::int8_t>(s);
            }
}

}  // namespace detail

/// Pack W[n][taps][k_seg] (int8 codes of b_w bits) for kernel `id`, to be
/// run on b_a-bit activations. Throws std::invalid_argument on bad arguments
/// (codes out of range, bits outside 2..8, a kernel that is not exact for
/// the pair, taps * k_seg > max_k_total).
inline packed_weights pack_weights_for(kernel_id id, const std::int8_t* w, std::int32_t n,
                                       std::int32_t taps, std::int32_t k_seg, int b_w, int b_a) {
  detail::pack_check(w != nullptr || std::int64_t(n) * taps * k_seg == 0, "null weights");
  detail::pack_check(n >= 1 && taps >= 1 && k_seg >= 1, "n, taps, k_seg must be >= 1");
  detail::pack_check(b_w >= 2 && b_w <= 8 && b_a >= 2 && b_a <= 8, "b_w and b_a must be in 2..8");
  detail::pack_check(std::int64_t(taps) * k_seg <= max_k_total,
                     "taps * k_seg exceeds max_k_total (65536)");
  detail::pack_check(static_cast<int>(id) >= 0 && id < kernel_id::count, "unknown kernel id");
  detail::pack_check(kernel_supports(id, b_w, b_a), "kernel is not exact for this (b_w, b_a) pair");
  const std::int64_t total = std::int64_t(n) * taps * k_seg;
  const int wmin = -(1 << (b_w - 1)), wmax = (1 << (b_w - 1)) - 1;
  for (std::int64_t i = 0; i < total; ++i)
    detail::pack_check(w[i] >= wmin && w[i] <= wmax,
                       "weight code outside the signed b_w-bit range");

  const kernel_info& ki = get_kernel_info(id);
  packed_weights p;
  p.kernel = id;
  p.level = ki.level;
  p.n = n;
  p.taps = taps;
  p.k_seg = k_seg;
  p.b_w = b_w;
  p.b_a = b_a;
  p.kg = (k_seg + 3) / 4;
  p.mr = ki.mr;
  p.nr = ki.nr;
  p.widen_every = acc16_widen_every(b_w, b_a);
  std::snprintf(p.name.data(), p.name.size(), "qgemm_a%dw%d_%dx%dc%d__%s", b_a, b_w, ki.mr, ki.nr,
                ki.kr, ki.suffix);
  p.col_sum.assign(n, 0);
  for (std::int32_t j = 0; j < n; ++j) {
    std::int32_t s = 0;
    for (std::int64_t i = 0; i < std::int64_t(taps) * k_seg; ++i)
      s += w[std::int64_t(j) * taps * k_seg + i];
    p.col_sum[j] = s;
  }
  const std::int64_t padded = std::int64_t(p.n_blocks()) * p.nr * taps * p.kg * 4;
  switch (id) {
    case kernel_id::scalar_ref:
      p.data.reset(static_cast<std::size_t>(total));
      std::memcpy(p.data.data(), w, static_cast<std::size_t>(total));
      break;
#if MIXQ_KERNELS_X86
    case kernel_id::avx512vbmi_lut_16x16c16: {
      const std::int64_t tb = lut_table_bytes(n, taps, k_seg);
      const std::int64_t c4 = std::int64_t((n + 15) / 16) * 16 * taps * p.kg * 4;
      p.data.reset(static_cast<std::size_t>(tb + c4));
      std::int8_t* d = reinterpret_cast<std::int8_t*>(p.data.data());
      detail::pack_lut_tables(w, n, taps, k_seg, d);
      detail::pack_c4(w, n, taps, k_seg, 16, p.kg, d + tb);
      break;
    }
    case kernel_id::avx2_madd16_4x16c4:
      p.data.reset(static_cast<std::size_t>(padded) * 2);
      detail::pack_c4_i16(w, n, taps, k_seg, p.nr, p.kg,
                          reinterpret_cast<std::int16_t*>(p.data.data()));
      break;
#endif
    default:
      p.data.reset(static_cast<std::size_t>(padded));
      detail::pack_c4(w, n, taps, k_seg, p.nr, p.kg, reinterpret_cast<std::int8_t*>(p.data.data()));
      break;
  }
  return p;
}

/// Pack for the dispatcher's choice on `level` (default: active_isa(), i.e.
/// CPUID clamped by MIXQ_ISA / set_isa()).
inline packed_weights pack_weights(const std::int8_t* w, std::int32_t n, std::int32_t taps,
                                   std::int32_t k_seg, int b_w, int b_a,
                                   isa level = isa::automatic) {
  const isa l = level == isa::automatic ? active_isa() : clamp_isa(detail::state().caps, level);
  return pack_weights_for(choose_kernel(l, b_w, b_a, n), w, n, taps, k_seg, b_w, b_a);
}

// ---- compact sub-byte serialized form -------------------------------------

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
