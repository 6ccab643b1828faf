#pragma once
// Weight packing: int8 codes W[n][taps][k_seg] -> kernel-ready opaque form,
// done ONCE per layer (at load/export), never in the hot path.
//
// Codes: signed symmetric b_w-bit, w in [-(2^(b_w-1)), 2^(b_w-1) - 1]
// (the minimum code is allowed). Activations: unsigned b_a-bit codes.
//
// A pack binds one kernel family (registry.hpp) and so its ISA; its layout is
// the family's LAYOUT column (weight_layout, kg = ceil(k_seg / 4) groups of 4
// per tap; padding is zero):
//   verbatim  int8  [N][taps][k_seg]                   (the scalar reference)
//   c4        int8  [ceil(N/NR)][taps][kg][NR][4]       (VNNI, AVX2, NEON)
//   c4_i16    int16 [ceil(N/NR)][taps][kg][2][NR][2]    (k pairs (0,2) | (1,3))
//   lut16     [ceil(N/16)][taps][ceil(k_seg/16)][16 ch][64 B] subset-sum
//             tables, then the c4 layout with NR = 16 (the LUT16 family)
// The zero padding of K (k_seg -> 4*kg) is what makes the activation
// over-read harmless; the zero padding of N lets kernels run full NR tiles.
// Bad arguments throw mixq::error (the message names the value and what was
// expected). The compact sub-byte serialized form is in bitpack.hpp.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "mixq/kernels/common.hpp"
#include "mixq/kernels/dispatch.hpp"
#include "mixq/kernels/registry.hpp"

namespace mixq {
namespace kernels {

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
  kernel_id kernel = kernel_id::scalar_1x1c1;
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

// ---- LUT16 tables (layout lut16, kernel avx512vbmi_lut_16x16c16) -----------

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
/// run on b_a-bit activations. Throws mixq::error on bad arguments (codes out
/// of range, bits outside 2..8, a kernel that is not exact for the pair,
/// taps * k_seg > max_k_total).
inline packed_weights pack_weights_for(kernel_id id, const std::int8_t* w, std::int32_t n,
                                       std::int32_t taps, std::int32_t k_seg, int b_w, int b_a) {
  MIXQ_CHECK(w != nullptr || std::int64_t(n) * taps * k_seg == 0,
             "mixq::kernels::pack_weights: null weights");
  MIXQ_CHECK(n >= 1 && taps >= 1 && k_seg >= 1, "mixq::kernels::pack_weights: n = ", n,
             ", taps = ", taps, ", k_seg = ", k_seg, ", expected all >= 1");
  MIXQ_CHECK(b_w >= 2 && b_w <= 8 && b_a >= 2 && b_a <= 8,
             "mixq::kernels::pack_weights: b_w = ", b_w, ", b_a = ", b_a,
             ", expected both in 2..8");
  MIXQ_CHECK(std::int64_t(taps) * k_seg <= max_k_total,
             "mixq::kernels::pack_weights: taps * k_seg = ", std::int64_t(taps) * k_seg,
             ", expected <= max_k_total (", max_k_total, ")");
  MIXQ_CHECK(static_cast<int>(id) >= 0 && id < kernel_id::count,
             "mixq::kernels::pack_weights: unknown kernel id ", static_cast<int>(id));
  MIXQ_CHECK(kernel_supports(id, b_w, b_a), "mixq::kernels::pack_weights: kernel ",
             get_kernel_info(id).name, " is not exact for (b_w, b_a) = (", b_w, ", ", b_a, ")");
  const std::int64_t total = std::int64_t(n) * taps * k_seg;
  const int wmin = -(1 << (b_w - 1)), wmax = (1 << (b_w - 1)) - 1;
  for (std::int64_t i = 0; i < total; ++i)
    MIXQ_CHECK(w[i] >= wmin && w[i] <= wmax, "mixq::kernels::pack_weights: weight code ", int(w[i]),
               " at index ", i, ", expected a signed ", b_w, "-bit code in [", wmin, ", ", wmax,
               "]");

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
                ki.kr, ki.arch);
  p.col_sum.assign(n, 0);
  for (std::int32_t j = 0; j < n; ++j) {
    std::int32_t s = 0;
    for (std::int64_t i = 0; i < std::int64_t(taps) * k_seg; ++i)
      s += w[std::int64_t(j) * taps * k_seg + i];
    p.col_sum[j] = s;
  }
  const std::int64_t padded = std::int64_t(p.n_blocks()) * p.nr * taps * p.kg * 4;
  switch (ki.layout) {
    case weight_layout::verbatim:
      p.data.reset(static_cast<std::size_t>(total));
      std::memcpy(p.data.data(), w, static_cast<std::size_t>(total));
      break;
    case weight_layout::lut16: {
      const std::int64_t tb = lut_table_bytes(n, taps, k_seg);
      const std::int64_t c4 = std::int64_t((n + 15) / 16) * 16 * taps * p.kg * 4;
      p.data.reset(static_cast<std::size_t>(tb + c4));
      std::int8_t* d = reinterpret_cast<std::int8_t*>(p.data.data());
      detail::pack_lut_tables(w, n, taps, k_seg, d);
      detail::pack_c4(w, n, taps, k_seg, 16, p.kg, d + tb);
      break;
    }
    case weight_layout::c4_i16:
      p.data.reset(static_cast<std::size_t>(padded) * 2);
      detail::pack_c4_i16(w, n, taps, k_seg, p.nr, p.kg,
                          reinterpret_cast<std::int16_t*>(p.data.data()));
      break;
    case weight_layout::c4:
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

}  // namespace kernels
}  // namespace mixq
