#pragma once
// The deploy runtime: loads a model (model.hpp), plans everything once and
// runs integer inference on uint8 HWC images.
//
// ## At load (the constructor)
// - analyze() validates the model; the kernel ISA is fixed (options.isa, or
//   the kernels' active ISA: CPUID clamped by MIXQ_ISA / kernels::set_isa()).
// - Each conv layer gets a path, by the kernels' own policy:
//     bitplane  the LUT6 convolution on bit-plane planes (unless
//               options.bitplane is false), where the kernels
//               say it is faster (kernels::bitplane_preferred: A2, W <= 4,
//               AVX-512 VBMI, enough pixels at the planned batch) and the
//               output and residual fit the planes format (2- or 3-bit
//               output, 2-bit residual, no input zero point);
//     u8        kernels::qconv2d with the micro-kernel kernels::choose_kernel
//               picks for (ISA, bits, channels);
//     raw       8-bit odd-grid weights (2c + 1 needs 9 bits): qconv2d on the
//               codes c plus one all-ones channel to int32, then
//               v = 2 * sum(c x) + sum(x) + bias and the same requantization.
//   Odd-grid weights of up to 7 bits run as (bits + 1)-bit codes 2c + 1, and
//   the input zero points fold into the bias (bias - sum W z; the halo holds z).
// - Weights are packed once; per-channel thresholds of the LUT6 epilogue are
//   computed once. The runtimes of a switchable_runtime (switchable.hpp) share
//   identical packings through a detail::pack_cache, and one arena and one
//   set of workers (adopt()).
// - Every tensor is given the layouts its consumers read (activations.hpp) and
//   every buffer (activations, scratch) an offset in a slot (memory_plan.hpp)
//   planned for B = ceil(max_batch / threads) images; the one arena holds one
//   slot per thread (a thread runs the whole network on its images in its own
//   slot, so threads never wait for each other between layers; one slot of
//   max_batch images when max_batch < threads) and the logits. The arena and the worker threads are
//   created here; run() allocates nothing.
//
// ## run(images, n)
// images: n x H x W x C uint8, dense HWC, n <= max_batch. Threads: with
// options.threads = T > 1 and n >= T, the images are split in T ranges that
// T threads (the caller and T - 1 workers started at load) run through the
// whole network independently, each in chunks of at most B images (the
// workers inherit the loading thread's CPU affinity unless
// options.worker_cpus pins them: a loading thread bound to one CPU, as
// OMP_PROC_BIND=true does, would otherwise put all T threads on it); with
// n < T (batch 1) and a build with OpenMP (MIXQ_RUNTIME_OPENMP), the kernels
// split each layer over T OpenMP threads; otherwise one thread runs
// everything, in chunks of B images. Results: logits() (int32, [n][classes]),
// logits_f32() (logit_scale * int32), top1() / top_k() (by the float logits,
// ties to the lower class).
//
// A runtime runs one batch at a time (its arena and workers are its own): use
// one runtime per calling thread to run batches concurrently.
//
// Outputs do not depend on the ISA, the path, the batch or the threads: every
// path computes the integers model.hpp defines (tests/deploy checks it
// against an independent reference on every ISA the machine has).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <mixq/kernels/conv/qconv.hpp>
#include <mixq/kernels/bitplane/qconv_bitplane.hpp>
#include <mixq/kernels/conv/qlinear.hpp>
#include <mixq/kernels/pool/global_avgpool.hpp>

#include "activations.hpp"
#include "format.hpp"
#include "memory_plan.hpp"
#include "model.hpp"
#include "thread_pool.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mixq {
namespace deploy {

struct runtime_options {
  std::int64_t max_batch = 1;  ///< largest n of run(); the arena is sized for it
  int threads = 1;             ///< see the header comment
  kernels::isa isa = kernels::isa::automatic;
  /// CPU of each worker thread: worker w (part w + 1; part 0 is the calling
  /// thread) runs on worker_cpus[w % size]. Empty: the workers inherit the
  /// loading thread's affinity, which is one CPU when OMP_PROC_BIND or
  /// taskset bound it (then describe() says so). Linux only.
  std::vector<int> worker_cpus;
  /// false: no conv takes the LUT6 bit-plane path, every one runs on
  /// qconv2d (the plan a W8A8 model gets). The outputs are the same either
  /// way; deploy/tune.hpp times both plans and keeps the faster.
  bool bitplane = true;
};

namespace detail {

enum class layout : int { padded = 0, dense = 1, planes = 2 };

inline const char* layout_name(layout l) noexcept {
  return l == layout::padded ? "padded" : (l == layout::dense ? "dense" : "planes");
}

struct tensor_state {
  tensor_info info;
  bool want[3] = {false, false, false};  ///< layouts read by some consumer (or the native one)
  int buf[3] = {-1, -1, -1};             ///< planned buffer per layout
  layout native = layout::padded;        ///< the layout the producer writes
  int step = 0;                          ///< producing step (0 = input staging)
};

enum class conv_path { u8, bitplane, raw };

struct conv_exec {
  std::size_t layer = 0;
  conv_path path = conv_path::u8;
  kernels::conv_geometry g;  ///< batch = max_batch (set per call)
  /// packed weights, shared between the runtimes of a switchable_runtime
  std::shared_ptr<const kernels::qconv_weights> wq;
  std::shared_ptr<const kernels::qconv_bitplane_weights> wb;
  std::vector<std::int32_t> bias, qm, rshift, res_qm;
  std::vector<std::int32_t> offset;  ///< empty: none
  std::vector<std::int64_t> thr;
  int lo = 0, hi = 255, in_bits = 8, out_bits = 8, res_bits = 0;
  int in_t = 0, out_t = 0, res_t = -1;
  int res_stride = 1;
  std::int64_t res_ch_lo = 0;
  int scratch = -1;  ///< raw path: int32 [batch*OH*OW][C_out + 1]
};

struct pool_exec {
  int in_t = 0, out_t = 0;
  kernels::avgpool_params p;
};

struct remap_exec {
  int in_t = 0, out_t = 0;
  std::vector<std::uint8_t> table;  ///< [2^in_bits]
};

struct linear_exec {
  int in_t = 0;
  std::shared_ptr<const kernels::packed_weights> pw;
  bool ones = false;  ///< an all-ones output column (8-bit odd grid)
  std::int32_t n = 0, nk = 0;
  std::vector<std::int32_t> bias;
  std::vector<float> scale;
  int scratch = -1;  ///< int32 [batch][nk]
};

struct step_ref {
  int kind = 0;  ///< 0 conv, 1 pool, 2 linear, 3 remap
  std::size_t index = 0;
};

/// Kernel codes of a layer: W itself (signed grid, or odd grid up to 7 bits as
/// 2c + 1 on one more bit), or the codes c plus an all-ones row (odd, 8 bits).
inline std::vector<std::int8_t> kernel_codes(const std::vector<std::int8_t>& codes, weight_grid g,
                                             int bits, std::int64_t per_row, int* kbits,
                                             bool* ones) {
  *ones = false;
  *kbits = bits;
  if (g == weight_grid::signed_codes) return codes;
  if (bits <= 7) {
    std::vector<std::int8_t> k(codes.size());
    for (std::size_t i = 0; i < codes.size(); ++i)
      k[i] = static_cast<std::int8_t>(2 * codes[i] + 1);
    *kbits = bits + 1;
    return k;
  }
  std::vector<std::int8_t> k = codes;
  k.insert(k.end(), static_cast<std::size_t>(per_row), std::int8_t(1));
  *ones = true;
  return k;
}

/// bias - sum_k W[n][k] * z[k % zc] for every n (W the real grid values).
inline std::vector<std::int32_t> fold_zero_points(const std::vector<std::int32_t>& bias,
                                                  const std::vector<std::int8_t>& codes,
                                                  weight_grid g, std::int64_t per_row,
                                                  const std::vector<std::uint8_t>* z,
                                                  std::int64_t zc) {
  std::vector<std::int32_t> b = bias;
  if (!z) return b;
  for (std::size_t n = 0; n < bias.size(); ++n) {
    std::int64_t s = 0;
    for (std::int64_t k = 0; k < per_row; ++k)
      s += weight_value(codes[n * static_cast<std::size_t>(per_row) + static_cast<std::size_t>(k)],
                        g) *
           (*z)[static_cast<std::size_t>(k % zc)];
    b[n] = static_cast<std::int32_t>(bias[n] - s);  // in range: analyze() bounded |bias - s|
  }
  return b;
}

/// Packed weights by what they were packed from (path, geometry, bits,
/// codes): runtimes planned with one cache share every identical packing.
class pack_cache {
 public:
  struct key {
    int path = 0;  ///< conv_path, or -1 for the linear layer
    kernels::conv_geometry g;
    int kbits = 0, in_bits = 0;
    bool zero_point = false;
    bool same(const key& o) const noexcept {
      return path == o.path && g.batch == o.g.batch && g.h == o.g.h && g.w == o.g.w &&
             g.c_in == o.g.c_in && g.c_out == o.g.c_out && g.kernel == o.g.kernel &&
             g.stride == o.g.stride && kbits == o.kbits && in_bits == o.in_bits &&
             zero_point == o.zero_point;
    }
  };

  /// The packing of `codes` under `k`: a cached one, or make() (whose bytes
  /// are counted once).
  template <class T, class Make>
  std::shared_ptr<const T> get(const key& k, const std::vector<std::int8_t>& codes, Make make,
                               std::size_t (*bytes)(const T&)) {
    for (const entry& e : entries_)
      if (e.k.same(k) && e.codes == codes) return std::static_pointer_cast<const T>(e.packed);
    auto p = std::make_shared<const T>(make());
    unique_bytes_ += bytes(*p);
    entries_.push_back({k, codes, p});
    return p;
  }
  /// Bytes of the distinct packings made so far.
  std::size_t unique_bytes() const noexcept { return unique_bytes_; }
  std::size_t packings() const noexcept { return entries_.size(); }
  /// Forgets the keys (the packings stay alive in the runtimes that use them).
  void clear() noexcept {
    entries_.clear();
    entries_.shrink_to_fit();
  }

 private:
  struct entry {
    key k;
    std::vector<std::int8_t> codes;
    std::shared_ptr<const void> packed;
  };
  std::vector<entry> entries_;
  std::size_t unique_bytes_ = 0;
};

inline std::size_t packed_bytes(const kernels::qconv_weights& w) { return w.pw.data.size(); }
inline std::size_t packed_bytes(const kernels::qconv_bitplane_weights& w) {
  return w.pw.tables.size() + w.pw.codes.size();
}
inline std::size_t packed_bytes(const kernels::packed_weights& w) { return w.data.size(); }

}  // namespace detail

class switchable_runtime;

class runtime {
 public:
  explicit runtime(const model& m, const runtime_options& o = {}) : runtime(m, o, nullptr) {}

 private:
  friend class switchable_runtime;
  /// With a cache (switchable_runtime): packings are shared through it, and
  /// the arena and the worker threads are left to the caller (adopt()).
  runtime(const model& m, const runtime_options& o, detail::pack_cache* shared) : opt_(o) {
    MIXQ_CHECK(o.max_batch >= 1 && o.max_batch <= (std::int64_t(1) << 20),
               "deploy runtime: max_batch ", o.max_batch, ", expected 1..", std::int64_t(1) << 20);
    MIXQ_CHECK(o.threads >= 1 && o.threads <= 256, "deploy runtime: threads ", o.threads,
               ", expected 1..256");
    for (const int c : o.worker_cpus)
      MIXQ_CHECK(c >= 0, "deploy runtime: runtime_options::worker_cpus holds ", c,
                 ", expected CPU numbers >= 0");
    info_ = analyze(m);
    input_ = m.input;
    labels_ = m.labels;
    level_ = o.isa == kernels::isa::automatic ? kernels::active_isa()
                                              : kernels::clamp_isa(kernels::detect_cpu(), o.isa);
    detail::pack_cache own;
    plan(m, shared ? *shared : own);
    if (shared) return;
    allocate_arena();
    if (wants_pool()) {
      pool_ = std::make_shared<thread_pool>(o.threads - 1, o.worker_cpus);
      note_worker_cpus();
    }
  }

  bool wants_pool() const noexcept { return opt_.threads > 1 && opt_.max_batch >= opt_.threads; }

  void note_worker_cpus() {
    {
      const int cpus = thread_pool::caller_cpus();
      if (opt_.worker_cpus.empty() && cpus > 0 && cpus < opt_.threads)
        describe_ += "threads: " + std::to_string(opt_.threads) +
                     ", but the loading thread may run on " + std::to_string(cpus) +
                     " CPU(s) and the workers inherit that (OMP_PROC_BIND or taskset bound it): "
                     "set runtime_options::worker_cpus\n";
    }
  }

  void allocate_arena() { arena_ = make_arena(arena_total_, opt_.max_batch); }

  static std::shared_ptr<kernels::aligned_buffer> make_arena(std::int64_t bytes,
                                                             std::int64_t max_batch) {
    auto a = std::make_shared<kernels::aligned_buffer>();
    try {
      a->reset(static_cast<std::size_t>(bytes));
    } catch (const std::bad_alloc&) {
      MIXQ_CHECK(false, "deploy runtime: cannot allocate the ", bytes, "-byte arena for max_batch ",
                 max_batch);
    }
    return a;
  }

  /// Takes an arena of at least arena_total_ bytes and the worker threads
  /// (switchable_runtime: one of each for all its runtimes).
  void adopt(std::shared_ptr<kernels::aligned_buffer> arena, std::shared_ptr<thread_pool> pool) {
    arena_ = std::move(arena);
    if (wants_pool()) {
      pool_ = std::move(pool);
      note_worker_cpus();
    }
  }

 public:
  /// Parses a model file held in memory (a C array from emit_c_array, or
  /// read_file_bytes) and plans it.
  static runtime from_memory(const void* data, std::size_t size, const runtime_options& o = {},
                             const std::string& source = "memory") {
    return runtime(parse(static_cast<const std::uint8_t*>(data), size, source), o);
  }

  static runtime from_file(const std::string& path, const runtime_options& o = {}) {
    return runtime(load_model(path), o);
  }

  runtime(runtime&&) = default;
  runtime& operator=(runtime&&) = default;

  /// Runs n images (n x H x W x C uint8, HWC). throws: mixq::error on a bad n.
  void run(const std::uint8_t* images, std::int64_t n) {
    MIXQ_CHECK(n >= 1 && n <= opt_.max_batch, "deploy runtime: batch of ", n,
               " images, expected 1..", opt_.max_batch, " (runtime_options::max_batch)");
    MIXQ_CHECK(images != nullptr, "deploy runtime: null images");
    images_ = images;
    n_ = n;
    const int t = opt_.threads;
#ifdef _OPENMP
    const int omp_before = omp_get_max_threads();
#endif
    if (t > 1 && n >= t && pool_) {
#ifdef _OPENMP
      omp_set_num_threads(1);
#endif
      pool_->run(&runtime::run_part, this, t);
    } else {
#ifdef _OPENMP
      omp_set_num_threads(t);
#endif
      run_images(0, 0, n);
    }
#ifdef _OPENMP
    omp_set_num_threads(omp_before);
#endif
  }

  /// run() and the top-1 class of each image into classes[n].
  void classify(const std::uint8_t* images, std::int64_t n, std::int32_t* classes) {
    run(images, n);
    for (std::int64_t i = 0; i < n; ++i) classes[i] = top1(i);
  }

  /// int32 logits of the last run, [n][classes()].
  const std::int32_t* logits() const noexcept {
    return reinterpret_cast<const std::int32_t*>(arena_->data() + logits_off_);
  }
  /// The real logit: logit_scale[c] * the int32 logit.
  float logit(std::int64_t i, std::int32_t c) const noexcept {
    return static_cast<float>(double(scale_[static_cast<std::size_t>(c)]) *
                              logits()[i * info_.classes + c]);
  }
  /// All real logits of the last run into out[n][classes()].
  void logits_f32(float* out) const noexcept {
    for (std::int64_t i = 0; i < n_; ++i)
      for (std::int32_t c = 0; c < info_.classes; ++c) out[i * info_.classes + c] = logit(i, c);
  }
  /// The k best classes of image i, best first (ties: the lower class first).
  void top_k(std::int64_t i, int k, std::int32_t* cls) const noexcept {
    const std::int32_t nc = info_.classes;
    if (k > nc) k = nc;
    for (int j = 0; j < k; ++j) {
      std::int32_t best = -1;
      for (std::int32_t c = 0; c < nc; ++c) {
        bool taken = false;
        for (int q = 0; q < j; ++q) taken = taken || cls[q] == c;
        if (taken) continue;
        if (best < 0 || double(scale_[c]) * logits()[i * nc + c] >
                            double(scale_[best]) * logits()[i * nc + best])
          best = c;
      }
      cls[j] = best;
    }
  }
  std::int32_t top1(std::int64_t i) const noexcept {
    std::int32_t c = 0;
    top_k(i, 1, &c);
    return c;
  }

  std::int32_t classes() const noexcept { return info_.classes; }
  const input_spec& input() const noexcept { return input_; }
  const std::vector<std::string>& labels() const noexcept { return labels_; }
  const model_info& info() const noexcept { return info_; }
  std::int64_t max_batch() const noexcept { return opt_.max_batch; }
  int threads() const noexcept { return opt_.threads; }
  kernels::isa isa() const noexcept { return level_; }
  /// Bytes of the one arena (activations, scratch, logits) planned at load.
  std::size_t arena_bytes() const noexcept { return static_cast<std::size_t>(arena_total_); }
  /// Bytes of the packed weights and per-channel parameters.
  std::size_t weight_bytes() const noexcept { return packed_bytes_ + param_bytes_; }
  /// One line per layer: kind, shape, bits, path, kernel, layouts.
  const std::string& describe() const noexcept { return describe_; }
  /// The path chosen for each conv layer ("u8", "bitplane", "raw"; "" otherwise).
  std::vector<std::string> conv_paths() const {
    std::vector<std::string> r(steps_.size());
    for (std::size_t s = 0; s < steps_.size(); ++s)
      if (steps_[s].kind == 0) {
        const auto p = convs_[steps_[s].index].path;
        r[s] = p == detail::conv_path::u8 ? "u8"
                                          : (p == detail::conv_path::bitplane ? "bitplane" : "raw");
      }
    return r;
  }

 private:
  using layout = detail::layout;

  // ---- planning ----------------------------------------------------------

  void plan(const model& m, detail::pack_cache& cache) {
    // one slot per thread when batches can be split (n >= threads), else one
    const std::int64_t slots = opt_.max_batch >= opt_.threads ? opt_.threads : 1;
    slot_batch_ = (opt_.max_batch + slots - 1) / slots;
    const std::size_t L = m.layers.size();
    tensors_.resize(L + 1);
    for (std::size_t t = 0; t <= L; ++t) {
      tensors_[t].info = info_.tensors[t];
      tensors_[t].step = static_cast<int>(t);  // tensor t is produced at step t
    }
    const bool lut = opt_.bitplane && kernels::choose_bitplane_kernel(level_) !=
                                          kernels::bitplane_kernel_id::scalar_bitplane_1x1c1;
    std::int64_t max_ch_lo = 0;
    // 1. paths, packed weights, per-channel parameters
    for (std::size_t li = 0; li < L; ++li) {
      const layer& Ly = m.layers[li];
      const int out_t = static_cast<int>(li + 1);
      const std::string where =
          "deploy runtime: layer " + std::to_string(li) + " (" + layer_kind_name(Ly) + "): ";
      if (const auto* cv = std::get_if<conv_layer>(&Ly)) {
        detail::conv_exec c;
        c.layer = li;
        c.in_t = cv->input;
        c.out_t = out_t;
        c.res_t = cv->residual;
        const tensor_info& x = info_.tensors[static_cast<std::size_t>(cv->input)];
        const tensor_info& y = info_.tensors[static_cast<std::size_t>(out_t)];
        c.g.batch = slot_batch_;
        c.g.h = x.h;
        c.g.w = x.w;
        c.g.c_in = x.c;
        c.g.c_out = cv->c_out;
        c.g.kernel = cv->kernel;
        c.g.stride = cv->stride;
        c.in_bits = x.bits;
        c.out_bits = cv->out_bits;
        c.lo = cv->lo;
        c.hi = cv->hi;
        const std::int64_t per = std::int64_t(cv->kernel) * cv->kernel * cv->c_in;
        int kbits = 0;
        bool ones = false;
        const auto kc = detail::kernel_codes(cv->codes, cv->grid, cv->w_bits, per, &kbits, &ones);
        c.bias = detail::fold_zero_points(cv->bias, cv->codes, cv->grid, per,
                                          x.zero_point ? &input_.zero_point : nullptr, x.c);
        c.qm = cv->qm;
        c.rshift = cv->rshift;
        c.res_qm = cv->res_qm;
        c.offset = cv->offset;
        if (c.res_t >= 0) {
          const tensor_info& r = info_.tensors[static_cast<std::size_t>(c.res_t)];
          const bool identity = r.h == y.h && r.w == y.w && r.c == y.c;
          c.res_stride = identity ? 1 : 2;
          c.res_ch_lo = identity ? 0 : (y.c - r.c) / 2;
          c.res_bits = r.bits;
          if (c.res_ch_lo > max_ch_lo) max_ch_lo = c.res_ch_lo;
        }
        const bool planes_ok =
            lut && !ones && !x.zero_point && (c.in_bits == 2 || c.in_bits == 3) &&
            (c.out_bits == 2 || c.out_bits == 3) && (c.res_t < 0 || c.res_bits == 2) &&
            kernels::bitplane_supports(kbits, c.in_bits) &&
            kernels::bitplane_preferred(kbits, c.in_bits, c.g.pixels_out(), per, cv->c_out);
        c.path = ones ? detail::conv_path::raw
                      : (planes_ok ? detail::conv_path::bitplane : detail::conv_path::u8);
        std::string kname;
        try {
          detail::pack_cache::key key;
          key.path = static_cast<int>(c.path);
          key.g = c.g;
          key.kbits = kbits;
          key.in_bits = c.in_bits;
          key.zero_point = x.zero_point;
          if (c.path == detail::conv_path::bitplane) {
            c.wb = cache.get<kernels::qconv_bitplane_weights>(
                key, kc,
                [&] {
                  return kernels::qconv_bitplane_pack(c.g, kc.data(), kbits, c.in_bits, level_);
                },
                detail::packed_bytes);
            kernels::requant_params rq = requant(c);
            kernels::bitplane_conv_residual br;
            if (c.res_t >= 0) {
              br.bits = c.res_bits;
              br.res_qm = c.res_qm.data();
            }
            c.thr = kernels::qconv_bitplane_thresholds(rq, c.g.c_out, c.res_t >= 0 ? &br : nullptr);
            packed_bytes_ += detail::packed_bytes(*c.wb);
            param_bytes_ += c.thr.size() * 8;
            kname = c.wb->pw.name.data();
          } else {
            kernels::conv_geometry gk = c.g;
            if (ones) gk.c_out += 1;
            c.wq = cache.get<kernels::qconv_weights>(
                key, kc,
                [&] {
                  kernels::qconv_weights w =
                      kernels::qconv_pack(gk, kc.data(), kbits, c.in_bits, level_);
                  // border-tap skipping assumes a zero halo
                  if (x.zero_point) w.skip_border_taps = false;
                  return w;
                },
                detail::packed_bytes);
            packed_bytes_ += detail::packed_bytes(*c.wq);
            kname = c.wq->pw.name.data();
          }
        } catch (const mixq::error& e) {
          MIXQ_CHECK(false, where, "the kernels refused the weights: ", e.what());
        }
        param_bytes_ += (c.offset.empty() ? 16 : 20) * static_cast<std::size_t>(cv->c_out);
        tensors_[static_cast<std::size_t>(c.in_t)]
            .want[int(c.path == detail::conv_path::bitplane ? layout::planes : layout::padded)] =
            true;
        if (c.res_t >= 0)
          tensors_[static_cast<std::size_t>(c.res_t)]
              .want[int(c.path == detail::conv_path::bitplane ? layout::planes : layout::padded)] =
              true;
        describe_ += "layer " + std::to_string(li) + ": conv " + std::to_string(cv->kernel) + "x" +
                     std::to_string(cv->kernel) + "/" + std::to_string(cv->stride) + " " +
                     std::to_string(x.h) + "x" + std::to_string(x.w) + "x" + std::to_string(x.c) +
                     " -> " + std::to_string(y.h) + "x" + std::to_string(y.w) + "x" +
                     std::to_string(y.c) + ", W" + std::to_string(cv->w_bits) +
                     (cv->grid == weight_grid::odd ? "(odd)" : "") + " A" + std::to_string(x.bits) +
                     " -> A" + std::to_string(cv->out_bits) +
                     (c.res_t >= 0 ? (c.res_stride == 1 ? ", + identity(t" : ", + option-A(t") +
                                         std::to_string(c.res_t) + ")"
                                   : std::string()) +
                     ", " +
                     (c.path == detail::conv_path::u8
                          ? "u8"
                          : (c.path == detail::conv_path::bitplane ? "bitplane" : "raw")) +
                     " " + kname + "\n";
        steps_.push_back({0, convs_.size()});
        convs_.push_back(std::move(c));
      } else if (const auto* pl = std::get_if<pool_layer>(&Ly)) {
        detail::pool_exec p;
        p.in_t = pl->input;
        p.out_t = out_t;
        const tensor_info& x = info_.tensors[static_cast<std::size_t>(pl->input)];
        p.p.h = x.h;
        p.p.w = x.w;
        p.p.c = x.c;
        p.p.qm = pl->qm;
        p.p.rshift = pl->rshift;
        p.p.zp = 0;
        p.p.lo = pl->lo;
        p.p.hi = pl->hi;
        p.p.ld_out = x.c;
        describe_ += "layer " + std::to_string(li) + ": avgpool " + std::to_string(x.h) + "x" +
                     std::to_string(x.w) + "x" + std::to_string(x.c) + " -> A" +
                     std::to_string(pl->out_bits) + "\n";
        steps_.push_back({1, pools_.size()});
        pools_.push_back(p);
      } else if (const auto* rm = std::get_if<remap_layer>(&Ly)) {
        detail::remap_exec r;
        r.in_t = rm->input;
        r.out_t = out_t;
        r.table = rm->table;
        param_bytes_ += rm->table.size();
        const tensor_info& x = info_.tensors[static_cast<std::size_t>(rm->input)];
        describe_ += "layer " + std::to_string(li) + ": remap " + std::to_string(x.h) + "x" +
                     std::to_string(x.w) + "x" + std::to_string(x.c) + " A" +
                     std::to_string(rm->in_bits) + " -> A" + std::to_string(rm->out_bits) +
                     " (code table)\n";
        steps_.push_back({3, remaps_.size()});
        remaps_.push_back(std::move(r));
      } else {
        const auto& fc = std::get<linear_layer>(Ly);
        detail::linear_exec f;
        f.in_t = fc.input;
        const tensor_info& x = info_.tensors[static_cast<std::size_t>(fc.input)];
        int kbits = 0;
        bool ones = false;
        const auto kc = detail::kernel_codes(fc.codes, fc.grid, fc.w_bits, fc.c_in, &kbits, &ones);
        f.ones = ones;
        f.n = fc.c_out;
        f.nk = fc.c_out + (ones ? 1 : 0);
        f.bias = detail::fold_zero_points(fc.bias, fc.codes, fc.grid, fc.c_in,
                                          x.zero_point ? &input_.zero_point : nullptr, x.c);
        f.scale = fc.logit_scale;
        try {
          detail::pack_cache::key key;
          key.path = -1;
          key.g.c_in = fc.c_in;
          key.g.c_out = f.nk;
          key.kbits = kbits;
          key.in_bits = x.bits;
          key.zero_point = x.zero_point;
          f.pw = cache.get<kernels::packed_weights>(
              key, kc,
              [&] {
                return kernels::pack_weights(kc.data(), f.nk, 1, fc.c_in, kbits, x.bits, level_);
              },
              detail::packed_bytes);
        } catch (const mixq::error& e) {
          MIXQ_CHECK(false, where, "the kernels refused the weights: ", e.what());
        }
        packed_bytes_ += detail::packed_bytes(*f.pw);
        param_bytes_ += 8 * static_cast<std::size_t>(fc.c_out);
        tensors_[static_cast<std::size_t>(f.in_t)].want[int(layout::dense)] = true;
        describe_ += "layer " + std::to_string(li) + ": linear " + std::to_string(fc.c_in) +
                     " -> " + std::to_string(fc.c_out) + ", W" + std::to_string(fc.w_bits) +
                     (fc.grid == weight_grid::odd ? "(odd)" : "") + " A" + std::to_string(x.bits) +
                     ", " + f.pw->name.data() + "\n";
        scale_ = fc.logit_scale;
        steps_.push_back({2, linears_.size()});
        linears_.push_back(std::move(f));
      }
    }
    // 2. native layouts; pooling and remaps read any u8 layout
    for (std::size_t t = 0; t + 1 < tensors_.size(); ++t) {
      detail::tensor_state& ts = tensors_[t];
      const bool from_planes_conv = t > 0 && steps_[t - 1].kind == 0 &&
                                    convs_[steps_[t - 1].index].path == detail::conv_path::bitplane;
      if (t > 0 && steps_[t - 1].kind == 1)
        ts.native = layout::dense;
      else if (from_planes_conv)
        ts.native = layout::planes;
      else
        ts.native = ts.want[int(layout::padded)] ? layout::padded : layout::dense;
      ts.want[int(ts.native)] = true;
    }
    // ... but not bit planes: a planes-native input is also kept dense for them
    std::vector<int> any_u8;
    for (const auto& p : pools_) any_u8.push_back(p.in_t);
    for (const auto& r : remaps_) any_u8.push_back(r.in_t);
    for (int t : any_u8) {
      detail::tensor_state& ts = tensors_[static_cast<std::size_t>(t)];
      if (ts.native == layout::planes) ts.want[int(layout::dense)] = true;
    }
    // 3. buffers and their lifetimes (step s reads its inputs and writes its output)
    std::vector<int> last_use(tensors_.size(), 0);
    for (std::size_t s = 0; s < steps_.size(); ++s) {
      const int step = static_cast<int>(s + 1);
      const detail::step_ref& r = steps_[s];
      if (r.kind == 0) {
        last_use[static_cast<std::size_t>(convs_[r.index].in_t)] = step;
        if (convs_[r.index].res_t >= 0)
          last_use[static_cast<std::size_t>(convs_[r.index].res_t)] = step;
      } else if (r.kind == 1) {
        last_use[static_cast<std::size_t>(pools_[r.index].in_t)] = step;
      } else if (r.kind == 3) {
        last_use[static_cast<std::size_t>(remaps_[r.index].in_t)] = step;
      } else {
        last_use[static_cast<std::size_t>(linears_[r.index].in_t)] = step;
      }
    }
    const std::int64_t B = slot_batch_;
    for (std::size_t t = 0; t + 1 < tensors_.size(); ++t) {
      detail::tensor_state& ts = tensors_[t];
      const tensor_info& ti = ts.info;
      for (int f = 0; f < 3; ++f) {
        if (!ts.want[f]) continue;
        planned_buffer b;
        b.first = ts.step;
        b.last = last_use[t];
        if (f == int(layout::padded))
          b.bytes = padded_bytes(B, ti.h, ti.w, ti.c);
        else if (f == int(layout::dense))
          b.bytes = B * ti.numel();
        else
          b.bytes = kernels::bitplane_image_bytes(B, ti.h, ti.w, ti.c, ti.bits);
        ts.buf[f] = static_cast<int>(bufs_.size());
        bufs_.push_back(b);
      }
    }
    for (std::size_t s = 0; s < steps_.size(); ++s) {
      const int step = static_cast<int>(s + 1);
      if (steps_[s].kind == 0) {
        detail::conv_exec& c = convs_[steps_[s].index];
        if (c.path != detail::conv_path::raw) continue;
        c.scratch = static_cast<int>(bufs_.size());
        bufs_.push_back({4 * c.g.pixels_out() * (c.g.c_out + 1), step, step, -1});
      } else if (steps_[s].kind == 2) {
        detail::linear_exec& f = linears_[steps_[s].index];
        f.scratch = static_cast<int>(bufs_.size());
        bufs_.push_back({4 * B * f.nk, step, step, -1});
      }
    }
    // 4. one arena: a lead (an option-A residual lane reads up to ch_lo bytes
    // before a pixel: inside a padded buffer's halo, and inside the arena for
    // the first buffer), one slot per thread, the logits of max_batch images,
    // and a tail for the kernels' over-reads
    lead_ = (max_ch_lo + 64 + 63) / 64 * 64;
    slot_bytes_ = place_buffers(bufs_);
    const std::int64_t logits_bytes = (4 * opt_.max_batch * info_.classes + 63) / 64 * 64;
    const std::int64_t tail =
        std::int64_t(std::max(kernels::a_overread_bytes, kernels::res_overread_bytes)) + 64;
    arena_total_ = lead_ + slots * slot_bytes_ + logits_bytes + tail;
    logits_off_ = lead_ + slots * slot_bytes_;
    for (std::size_t t = 0; t + 1 < tensors_.size(); ++t) {
      const detail::tensor_state& ts = tensors_[t];
      describe_ += "tensor " + std::to_string(t) + ": " + std::to_string(ts.info.h) + "x" +
                   std::to_string(ts.info.w) + "x" + std::to_string(ts.info.c) + " A" +
                   std::to_string(ts.info.bits) + ", written " + detail::layout_name(ts.native);
      for (int f = 0; f < 3; ++f)
        if (ts.want[f] && f != int(ts.native))
          describe_ += std::string(", converted to ") + detail::layout_name(layout(f));
      describe_ += "\n";
    }
    describe_ += "arena: " + std::to_string(arena_total_) + " bytes (" + std::to_string(slots) +
                 " slot(s) of " + std::to_string(slot_bytes_) + " bytes for " + std::to_string(B) +
                 " images); weights: " + std::to_string(weight_bytes()) + " bytes; ISA " +
                 kernels::isa_name(level_) + "\n";
  }

  static kernels::requant_params requant(const detail::conv_exec& c) noexcept {
    kernels::requant_params rq;
    rq.bias = c.bias.data();
    rq.qm = c.qm.data();
    rq.rshift = c.rshift.data();
    rq.offset = c.offset.empty() ? nullptr : c.offset.data();
    rq.zp = 0;
    rq.lo = c.lo;
    rq.hi = c.hi;
    return rq;
  }

  // ---- running -----------------------------------------------------------
  // A chunk of at most slot_batch_ images runs in one slot: image indices in
  // the run_* functions are local to the chunk (0..cnt-1); c0 is the chunk's
  // first image in the caller's batch.

  std::uint8_t* slot(int p) noexcept { return arena_->data() + lead_ + p * slot_bytes_; }
  std::uint8_t* buffer(std::uint8_t* sb, int b) noexcept {
    return sb + bufs_[static_cast<std::size_t>(b)].offset;
  }
  std::uint8_t* tensor_buf(std::uint8_t* sb, int t, layout f) noexcept {
    return buffer(sb, tensors_[static_cast<std::size_t>(t)].buf[int(f)]);
  }
  u8_view u8_of(std::uint8_t* sb, int t, layout f) noexcept {
    const tensor_info& ti = tensors_[static_cast<std::size_t>(t)].info;
    return f == layout::padded ? padded_view(tensor_buf(sb, t, f), ti.h, ti.w, ti.c)
                               : dense_view(tensor_buf(sb, t, f), ti.h, ti.w, ti.c);
  }

  static void run_part(void* self, int part) noexcept {
    auto* rt = static_cast<runtime*>(self);
    const std::int64_t n = rt->n_, T = rt->opt_.threads;
    rt->run_images(part, n * part / T, n * (part + 1) / T);
  }

  /// Images [i0, i1) of the caller's batch, in chunks, in slot p.
  void run_images(int p, std::int64_t i0, std::int64_t i1) noexcept {
    std::uint8_t* sb = slot(p);
    for (std::int64_t c0 = i0; c0 < i1; c0 += slot_batch_) {
      const std::int64_t cnt = i1 - c0 < slot_batch_ ? i1 - c0 : slot_batch_;
      stage_input(sb, c0, cnt);
      for (std::size_t s = 0; s < steps_.size(); ++s) {
        const detail::step_ref& r = steps_[s];
        if (r.kind == 0)
          run_conv(sb, convs_[r.index], cnt);
        else if (r.kind == 1)
          run_pool(sb, pools_[r.index], cnt);
        else if (r.kind == 3)
          run_remap(sb, remaps_[r.index], cnt);
        else
          run_linear(sb, linears_[r.index], c0, cnt);
        if (s + 1 < tensors_.size() - 1) convert(sb, static_cast<int>(s + 1), cnt);
      }
    }
  }

  /// Copies images [c0, c0 + cnt) into the input tensor's native layout.
  void stage_input(std::uint8_t* sb, std::int64_t c0, std::int64_t cnt) noexcept {
    const detail::tensor_state& ts = tensors_[0];
    const tensor_info& ti = ts.info;
    const std::int64_t img = ti.h * ti.w * ti.c;
    u8_view src{const_cast<std::uint8_t*>(images_) + c0 * img, img, ti.w * ti.c, ti.c};
    if (ts.native == layout::padded)
      fill_halo(tensor_buf(sb, 0, layout::padded), ti.h, ti.w, ti.c,
                ti.zero_point ? input_.zero_point.data() : nullptr, 0, cnt);
    const u8_view dst = u8_of(sb, 0, ts.native);
    if (input_.code_table.empty()) {
      copy_u8(src, dst, ti.h, ti.w, ti.c, 0, cnt);
    } else {
      const std::uint8_t* table = input_.code_table.data();
      for (std::int64_t i = 0; i < cnt; ++i)
        for (std::int64_t y = 0; y < ti.h; ++y) {
          const std::uint8_t* p = src.at(i, y, 0);
          std::uint8_t* d = dst.at(i, y, 0);
          for (std::int64_t x = 0; x < ti.w * ti.c; x += ti.c)
            for (std::int64_t c = 0; c < ti.c; ++c) d[x + c] = table[c * 256 + p[x + c]];
        }
    }
    convert(sb, 0, cnt);
  }

  /// Writes tensor t's other layouts from its native one.
  void convert(std::uint8_t* sb, int t, std::int64_t cnt) noexcept {
    const detail::tensor_state& ts = tensors_[static_cast<std::size_t>(t)];
    const tensor_info& ti = ts.info;
    for (int f = 0; f < 3; ++f) {
      if (!ts.want[f] || f == int(ts.native)) continue;
      const layout to = layout(f);
      if (to == layout::planes) {
        std::uint8_t* p = tensor_buf(sb, t, layout::planes);
        clear_plane_halo(p, ti.h, ti.w, ti.c, ti.bits, 0, cnt);
        u8_to_planes(u8_of(sb, t, ts.native), ti.h, ti.w, ti.c, ti.bits, p, 0, cnt);
      } else {
        if (to == layout::padded)
          fill_halo(tensor_buf(sb, t, layout::padded), ti.h, ti.w, ti.c, nullptr, 0, cnt);
        if (ts.native == layout::planes)
          planes_to_u8(tensor_buf(sb, t, layout::planes), ti.h, ti.w, ti.c, ti.bits,
                       u8_of(sb, t, to), 0, cnt);
        else
          copy_u8(u8_of(sb, t, ts.native), u8_of(sb, t, to), ti.h, ti.w, ti.c, 0, cnt);
      }
    }
  }

  void run_conv(std::uint8_t* sb, const detail::conv_exec& c, std::int64_t cnt) noexcept {
    const detail::tensor_state& out = tensors_[static_cast<std::size_t>(c.out_t)];
    const tensor_info& yi = out.info;
    kernels::conv_geometry g = c.g;
    g.batch = cnt;
    const kernels::requant_params rq = requant(c);
    if (c.path == detail::conv_path::bitplane) {
      std::uint8_t* op = tensor_buf(sb, c.out_t, layout::planes);
      clear_plane_halo(op, yi.h, yi.w, yi.c, yi.bits, 0, cnt);
      kernels::bitplane_conv_residual br;
      if (c.res_t >= 0) {
        const tensor_info& ri = tensors_[static_cast<std::size_t>(c.res_t)].info;
        br.planes = tensor_buf(sb, c.res_t, layout::planes);
        br.h = ri.h;
        br.w = ri.w;
        br.c = ri.c;
        br.bits = ri.bits;
        br.stride = c.res_stride;
        br.ch_lo = c.res_ch_lo;
        br.res_qm = c.res_qm.data();
      }
      kernels::qconv2d_bitplane(g, *c.wb, tensor_buf(sb, c.in_t, layout::planes), rq, c.thr.data(),
                                c.out_bits, op, nullptr, c.res_t >= 0 ? &br : nullptr);
      return;
    }
    const std::uint8_t* in = tensor_buf(sb, c.in_t, layout::padded);
    if (out.native == layout::padded)
      fill_halo(tensor_buf(sb, c.out_t, layout::padded), yi.h, yi.w, yi.c, nullptr, 0, cnt);
    const u8_view ov = u8_of(sb, c.out_t, out.native);
    kernels::conv_residual res;
    u8_view rv;
    if (c.res_t >= 0) {
      rv = u8_of(sb, c.res_t, layout::padded);
      res.data = rv.base;
      res.img_stride = rv.img;
      res.row_stride = rv.row;
      res.pix_stride = rv.pix;
      res.stride = c.res_stride;
      res.ch_lo = c.res_ch_lo;
      res.res_qm = c.res_qm.data();
    }
    if (c.path == detail::conv_path::u8) {
      const kernels::conv_output o{ov.base, ov.img, ov.row};
      kernels::qconv2d(g, *c.wq, in, rq, c.res_t >= 0 ? &res : nullptr, o);
      return;
    }
    // raw: sums of c x (channels 0..N-1) and of x (channel N), then 2 S + S1 + bias
    const std::int64_t N = c.g.c_out;
    std::int32_t* raw = reinterpret_cast<std::int32_t*>(buffer(sb, c.scratch));
    kernels::conv_geometry gk = g;
    gk.c_out = N + 1;
    kernels::requant_params none;
    kernels::qconv2d(gk, *c.wq, in, none, nullptr, kernels::conv_output{}, raw);
    for (std::int64_t i = 0; i < cnt; ++i)
      for (std::int64_t y = 0; y < yi.h; ++y)
        for (std::int64_t x = 0; x < yi.w; ++x) {
          const std::int32_t* a = raw + ((i * yi.h + y) * yi.w + x) * (N + 1);
          std::uint8_t* d = ov.at(i, y, x);
          const std::uint8_t* r =
              c.res_t >= 0 ? rv.at(i, y * c.res_stride, x * c.res_stride) - c.res_ch_lo : nullptr;
          for (std::int64_t n = 0; n < N; ++n) {
            const std::size_t un = static_cast<std::size_t>(n);
            const std::int64_t v = 2 * std::int64_t(a[n]) + a[N] + c.bias[un];
            const std::int32_t rq_n = r ? c.res_qm[un] : 0;
            d[n] = kernels::requant_one(static_cast<std::int32_t>(v), c.qm[un], c.rshift[un], 0,
                                        c.lo, c.hi, rq_n ? r[n] : 0, rq_n,
                                        c.offset.empty() ? 0 : c.offset[un]);
          }
        }
  }

  // The u8 layout a pooling or remap step reads tensor ts in (plan() keeps a
  // dense copy of a planes-native one).
  static layout u8_layout(const detail::tensor_state& ts) noexcept {
    return ts.native == layout::planes ? layout::dense : ts.native;
  }

  void run_pool(std::uint8_t* sb, const detail::pool_exec& p, std::int64_t cnt) noexcept {
    const detail::tensor_state& ts = tensors_[static_cast<std::size_t>(p.in_t)];
    const u8_view v = u8_of(sb, p.in_t, u8_layout(ts));
    kernels::avgpool_params pp = p.p;
    pp.batch = cnt;
    pp.img_stride = v.img;
    pp.row_stride = v.row;
    pp.pix_stride = v.pix;
    kernels::global_avgpool_u8(v.base, pp, tensor_buf(sb, p.out_t, layout::dense));
  }

  void run_remap(std::uint8_t* sb, const detail::remap_exec& r, std::int64_t cnt) noexcept {
    const detail::tensor_state& xs = tensors_[static_cast<std::size_t>(r.in_t)];
    const detail::tensor_state& ys = tensors_[static_cast<std::size_t>(r.out_t)];
    const tensor_info& ti = ys.info;
    const u8_view x = u8_of(sb, r.in_t, u8_layout(xs));
    if (ys.native == layout::padded)
      fill_halo(tensor_buf(sb, r.out_t, layout::padded), ti.h, ti.w, ti.c, nullptr, 0, cnt);
    const u8_view y = u8_of(sb, r.out_t, ys.native);
    const std::uint8_t* table = r.table.data();
    const std::int64_t row = ti.w * ti.c;
    for (std::int64_t i = 0; i < cnt; ++i)
      for (std::int64_t h = 0; h < ti.h; ++h) {
        const std::uint8_t* p = x.at(i, h, 0);
        std::uint8_t* d = y.at(i, h, 0);
        for (std::int64_t k = 0; k < row; ++k) d[k] = table[p[k]];
      }
  }

  void run_linear(std::uint8_t* sb, const detail::linear_exec& f, std::int64_t c0,
                  std::int64_t cnt) noexcept {
    const tensor_info& xi = tensors_[static_cast<std::size_t>(f.in_t)].info;
    const std::int64_t k = xi.numel();
    std::int32_t* s = reinterpret_cast<std::int32_t*>(buffer(sb, f.scratch));
    kernels::requant_params none;
    kernels::qlinear(tensor_buf(sb, f.in_t, layout::dense), cnt, k, *f.pw, none, s, nullptr, f.nk);
    std::int32_t* out = reinterpret_cast<std::int32_t*>(arena_->data() + logits_off_) + c0 * f.n;
    for (std::int64_t i = 0; i < cnt; ++i)
      for (std::int32_t n = 0; n < f.n; ++n) {
        const std::int32_t* a = s + i * f.nk;
        const std::int64_t v = f.ones ? 2 * std::int64_t(a[n]) + a[f.n] : std::int64_t(a[n]);
        out[i * f.n + n] = static_cast<std::int32_t>(v + f.bias[static_cast<std::size_t>(n)]);
      }
  }

  runtime_options opt_;
  model_info info_;
  input_spec input_;
  std::vector<std::string> labels_;
  std::vector<float> scale_;
  kernels::isa level_ = kernels::isa::scalar;
  std::vector<detail::tensor_state> tensors_;
  std::vector<detail::step_ref> steps_;
  std::vector<detail::conv_exec> convs_;
  std::vector<detail::pool_exec> pools_;
  std::vector<detail::linear_exec> linears_;
  std::vector<detail::remap_exec> remaps_;
  std::vector<planned_buffer> bufs_;
  std::int64_t slot_batch_ = 1, slot_bytes_ = 0;
  std::int64_t lead_ = 0, logits_off_ = 0;
  std::int64_t arena_total_ = 0;
  std::shared_ptr<kernels::aligned_buffer> arena_;  ///< shared by a switchable_runtime's runtimes
  std::size_t packed_bytes_ = 0, param_bytes_ = 0;  ///< packed weights; per-channel parameters
  std::string describe_;
  std::shared_ptr<thread_pool> pool_;
  const std::uint8_t* images_ = nullptr;
  std::int64_t n_ = 0;
};

}  // namespace deploy
}  // namespace mixq
