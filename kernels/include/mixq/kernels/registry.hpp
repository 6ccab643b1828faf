#pragma once
// The kernel registry: which kernel families exist, what each one is exact
// for, and which one a pack gets. Everything here is generated from the one
// list in kernels.inc; this is the only place that chooses a kernel.
//
// - kernel_id, kernel_info, kernel_table(): one entry per qgemm family, in
//   kernels.inc order (ids, tiles, layout, tap subsets, speed rank).
// - kernel_supports(id, bw, ba): the family's overflow bound (BITS_OK).
// - choose_kernel(isa, bw, ba, n): among the families of that ISA which are
//   exact for the pair and preferred for it (PREFER), the highest RANK. The
//   ranks and preferences are measured (docs/kernels.md); lower bit-widths
//   never get a slower family than higher ones (tests/kernels/test_dispatch.cpp).
// - bitplane_kernel_id, choose_bitplane_kernel(isa): the same for the
//   bit-plane LUT families (bitplane/).
// The ISA itself comes from dispatch.hpp (CPUID, MIXQ_ISA, set_isa()); a pack
// binds the chosen family and its ISA once (pack.hpp, bitplane/pack.hpp).
#include <cstddef>
#include <cstdint>

#include "mixq/kernels/common.hpp"
#include "mixq/kernels/dispatch.hpp"

namespace mixq {
namespace kernels {

/// maddubs int16 accumulation depth: how many vpmaddubsw results (each
/// a0*w0 + a1*w1) one int16 lane may sum before it must be widened.
/// T = floor(32767 / (2 * (2^ba - 1) * 2^(bw-1))); 0 means vpmaddubsw itself
/// can saturate (W8A8). Bounds in docs/kernels.md section 4.
inline constexpr int acc16_widen_every(int bw, int ba) noexcept {
  return 32767 / (2 * ((1 << ba) - 1) * (1 << (bw - 1)));
}
static_assert(acc16_widen_every(4, 4) == 136, "T(W4A4)");
static_assert(acc16_widen_every(2, 2) == 2730, "T(W2A2)");
static_assert(acc16_widen_every(8, 7) == 1, "T(W8A7)");
static_assert(acc16_widen_every(8, 8) == 0, "W8A8 saturates vpmaddubsw");

/// Packed weight layouts (pack.hpp), kg = ceil(k_seg / 4) groups per tap.
enum class weight_layout : int {
  verbatim,  ///< int8 [N][taps][k_seg], the codes as given
  c4,        ///< int8 [ceil(N/NR)][taps][kg][NR][4]
  c4_i16,    ///< int16 [ceil(N/NR)][taps][kg][2][NR][2], k pairs (0,2) | (1,3)
  lut16,     ///< 16-entry subset-sum tables, then the c4 layout (NR = 16)
};

/// One enumerator per qgemm kernel family, from kernels.inc.
enum class kernel_id : int {
#define MIXQ_QGEMM_KERNEL(id, ...) id,
#include "mixq/kernels/kernels.inc"
  count
};

struct kernel_info {
  kernel_id id;
  isa level;
  const char* name;  ///< enumerator name
  const char* arch;  ///< the part after "__" in the kernel's name
  int mr, nr, kr;
  bool needs_vbmi;  ///< also needs AVX-512 VBMI + BITALG
  weight_layout layout;
  bool tap_subset;  ///< sums a tap subset (qgemm_problem::tap_idx)
  int rank;         ///< speed rank among the families of its ISA
};

inline const kernel_info* kernel_table(std::size_t* count) noexcept {
  static const kernel_info table[] = {
#define MIXQ_QGEMM_KERNEL(id, isa_, arch, mr, nr, kr, vbmi, layout, tapsub, rank, ...) \
  {kernel_id::id, isa::isa_, #id, arch, mr, nr, kr, vbmi, weight_layout::layout, tapsub, rank},
#include "mixq/kernels/kernels.inc"
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
#define MIXQ_QGEMM_KERNEL(id_, isa_, arch, mr, nr, kr, vbmi, layout, tapsub, rank, ok, ...) \
  case kernel_id::id_:                                                                      \
    return (ok);
#include "mixq/kernels/kernels.inc"
    default:
      return false;
  }
}

/// Whether kernel `id` sums a tap subset (qgemm_problem::tap_idx). The c4
/// families (x86 and NEON; NEON's 8-bit activation flip then corrects with
/// the used taps' weight sums, arm_neon/flip_correction.hpp) and the scalar
/// reference do; the LUT families (tables per tap block) take all taps.
inline bool kernel_supports_tap_subset(kernel_id id) noexcept {
  return get_kernel_info(id).tap_subset;
}

/// Whether dispatch may pick kernel `id` for (bw, ba) and n output channels
/// (the PREFER column; exactness is kernel_supports).
inline bool kernel_preferred(kernel_id id, int bw, int ba, std::int32_t n) noexcept {
  (void)bw;
  (void)ba;
  (void)n;
  switch (id) {
#define MIXQ_QGEMM_KERNEL(id_, isa_, arch, mr, nr, kr, vbmi, layout, tapsub, rank, ok, prefer, \
                          ...)                                                                 \
  case kernel_id::id_:                                                                         \
    return (prefer);
#include "mixq/kernels/kernels.inc"
    default:
      return false;
  }
}

/// Kernel the dispatcher uses for (isa, bw, ba, n): the highest-ranked family
/// of `level` that is exact and preferred there (the scalar reference when
/// the level has none, e.g. NEON names in an x86 build). Families that need
/// VBMI count only on a CPU that has it.
inline kernel_id choose_kernel(isa level, int bw, int ba, std::int32_t n) noexcept {
  std::size_t count = 0;
  const kernel_info* t = kernel_table(&count);
  kernel_id best = kernel_id::scalar_1x1c1;
  int best_rank = -1;
  for (std::size_t i = 0; i < count; ++i) {
    const kernel_info& k = t[i];
    if (k.level != level || k.rank <= best_rank) continue;
    if (k.needs_vbmi && !detail::state().caps.avx512lut) continue;
    if (!kernel_supports(k.id, bw, ba) || !kernel_preferred(k.id, bw, ba, n)) continue;
    best = k.id;
    best_rank = k.rank;
  }
  return best;
}

// ---- bit-plane LUT families (bitplane/) -------------------------------------

/// One enumerator per bit-plane kernel family, from kernels.inc.
enum class bitplane_kernel_id : int {
#define MIXQ_BITPLANE_KERNEL(id, ...) id,
#include "mixq/kernels/kernels.inc"
  count
};

struct bitplane_kernel_info {
  bitplane_kernel_id id;
  isa level;
  const char* name;  ///< enumerator name
  const char* arch;  ///< the part after "__" in the kernel's name
  int mr, nr;
  int kr;  ///< codes per index byte in the name; 0: 6 / b_a
  bool needs_vbmi;
  int rank;
};

inline const bitplane_kernel_info* bitplane_kernel_table(std::size_t* count) noexcept {
  static const bitplane_kernel_info table[] = {
#define MIXQ_BITPLANE_KERNEL(id, isa_, arch, mr, nr, kr, vbmi, rank, ...) \
  {bitplane_kernel_id::id, isa::isa_, #id, arch, mr, nr, kr, vbmi, rank},
#include "mixq/kernels/kernels.inc"
  };
  *count = sizeof(table) / sizeof(table[0]);
  return table;
}

inline const bitplane_kernel_info& get_bitplane_kernel_info(bitplane_kernel_id id) noexcept {
  std::size_t n = 0;
  return bitplane_kernel_table(&n)[static_cast<int>(id)];
}

/// Bit-plane family for `level`: the highest-ranked one of that level the CPU
/// can run, else the scalar twin.
inline bitplane_kernel_id choose_bitplane_kernel(isa level) noexcept {
  std::size_t count = 0;
  const bitplane_kernel_info* t = bitplane_kernel_table(&count);
  bitplane_kernel_id best = bitplane_kernel_id::scalar_bitplane_1x1c1;
  int best_rank = -1;
  for (std::size_t i = 0; i < count; ++i) {
    const bitplane_kernel_info& k = t[i];
    if (k.level != level || k.rank <= best_rank) continue;
    if (k.needs_vbmi && !detail::state().caps.avx512lut) continue;
    best = k.id;
    best_rank = k.rank;
  }
  return best;
}

}  // namespace kernels
}  // namespace mixq
