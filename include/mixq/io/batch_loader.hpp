#pragma once
// Mini-batches for training and evaluation: shuffle, augment, normalize,
// convert to float32 NHWC, prefetch on a background thread.
//
// Determinism (the central design point). A batch is a pure function of
// (options, seed, epoch, step):
//   - the order of epoch e is a Fisher-Yates shuffle of 0..n-1 driven by
//     rng(derive_seed(seed, e, tag)) (core/rng.hpp), or 0..n-1 without
//     shuffling;
//   - batch s of epoch e holds positions [s*B, min((s+1)*B, n)) of that order;
//   - the augmentation of dataset image i in epoch e draws from
//     rng(derive_seed(seed, e, i)): crop offsets dy, dx in [0, 2*pad] and a
//     flip bit, in that order.
// Nothing depends on thread timing or on how many batches were made before,
// so a run resumed with start_epoch(e, s) yields exactly the batches a straight
// run yields from (e, s) on: to resume, save position() (and the options,
// including the seed) with the checkpoint. See docs/data.md.
//
// Pipeline. With options.prefetch = k > 0 a worker thread makes batches ahead
// into a queue of at most k batches (bounded, so memory is k+1 batches), and
// next() only waits when the worker is behind. Buffers cycle between the
// consumer and the worker, so steady state allocates nothing. prefetch = 0
// makes each batch in next() on the caller's thread (same batches).
//
// Augmentation (options.augment; CIFAR style): pad the image with `pad` zero
// pixels (black, i.e. value 0 before normalization, as torchvision's
// RandomCrop(padding=4) on a PIL image), crop a random h x w window, then flip
// horizontally with probability 1/2 (options.flip).
// Normalization: out = (pixel / 255 - mean[ch]) / stddev[ch] via a 256-entry
// table per channel. Default: the data set's own mean and stddev
// (image_dataset::mean/stddev); a data set without them needs them in the
// options, else the loader throws.
//
// Lifetime: the loader keeps a reference to the data set, which must outlive
// it (constructing from a temporary does not compile).
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/core/rng.hpp"
#include "mixq/io/dataset.hpp"

namespace mixq::io {

struct batch_loader_options {
  std::int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;     // drop a final batch smaller than batch_size
  bool augment = false;       // random crop with zero padding (+ flip when `flip`)
  std::int64_t pad = 4;       // crop padding in pixels (augment only)
  bool flip = true;           // random horizontal flip (augment only)
  std::vector<float> mean;    // one per channel; empty = the data set's
  std::vector<float> stddev;  // one per channel; empty = the data set's
  std::uint64_t seed = 0;
  int prefetch = 2;  // batches made ahead on a worker thread; 0 = no thread
};

// One mini-batch: float32 NHWC images and int32 labels.
struct batch {
  std::vector<float> images;          // n*h*w*c
  std::vector<std::int32_t> labels;   // n
  std::vector<std::int64_t> indices;  // n dataset indices (which images these are)
  std::int64_t n = 0, h = 0, w = 0, c = 0;
  std::int64_t epoch = 0, step = 0;
};

// Where a loader is: the next batch next() returns is (epoch, step).
struct loader_position {
  std::int64_t epoch = 0;
  std::int64_t step = 0;
};

class batch_loader {
 public:
  // requires: ds.validate() holds; ds outlives the loader; ds.n < 2^32;
  //           options valid (batch_size > 0, pad >= 0, stddev > 0, mean and
  //           stddev with ds.c entries, from the options or else the data set).
  // ensures:  options().mean/stddev are the values in use.
  batch_loader(const image_dataset& ds, batch_loader_options opt) : ds_(ds), opt_(std::move(opt)) {
    ds_.validate();
    MIXQ_CHECK(opt_.batch_size > 0, "batch_loader: batch_size = ", opt_.batch_size,
               ", expected > 0");
    MIXQ_CHECK(ds_.n <= static_cast<std::int64_t>(UINT32_MAX), "batch_loader: ", ds_.name, " has ",
               ds_.n, " images, at most 2^32 - 1 supported");
    if (opt_.mean.empty()) opt_.mean = ds_.mean;
    if (opt_.stddev.empty()) opt_.stddev = ds_.stddev;
    MIXQ_CHECK(!opt_.mean.empty() && !opt_.stddev.empty(), "batch_loader: ", ds_.name,
               " has no normalization statistics; set image_dataset::mean/stddev (e.g. from "
               "its training split with io::channel_stats) or batch_loader_options::mean/stddev");
    MIXQ_CHECK(opt_.mean.size() == static_cast<std::size_t>(ds_.c) &&
                   opt_.stddev.size() == static_cast<std::size_t>(ds_.c),
               "batch_loader: ", ds_.name, " has ", ds_.c, " channels but mean has ",
               opt_.mean.size(), " and stddev ", opt_.stddev.size(), " entries");
    MIXQ_CHECK(opt_.pad >= 0, "batch_loader: pad = ", opt_.pad, ", expected >= 0");
    MIXQ_CHECK(opt_.prefetch >= 0, "batch_loader: prefetch = ", opt_.prefetch, ", expected >= 0");
    lut_.resize(static_cast<std::size_t>(256 * ds_.c));
    for (std::int64_t ch = 0; ch < ds_.c; ++ch) {
      const float m = opt_.mean[static_cast<std::size_t>(ch)];
      const float s = opt_.stddev[static_cast<std::size_t>(ch)];
      MIXQ_CHECK(s > 0.0f, "batch_loader: stddev[", ch, "] = ", s, ", expected > 0");
      for (int v = 0; v < 256; ++v)
        lut_[static_cast<std::size_t>(ch * 256 + v)] = (static_cast<float>(v) / 255.0f - m) / s;
    }
  }
  batch_loader(const image_dataset&&, batch_loader_options) = delete;
  batch_loader(const batch_loader&) = delete;
  batch_loader& operator=(const batch_loader&) = delete;
  ~batch_loader() { stop_worker(); }

  std::int64_t size() const { return ds_.n; }
  std::int64_t steps_per_epoch() const {
    // n / b rounded up without forming n + b - 1 (b may be as large as int64 allows).
    return opt_.drop_last ? ds_.n / opt_.batch_size
                          : ds_.n / opt_.batch_size + (ds_.n % opt_.batch_size != 0);
  }
  const batch_loader_options& options() const { return opt_; }

  // Begins epoch `epoch` at batch `first_step` (0 <= first_step <= steps).
  // Any batches prefetched for an earlier position are discarded.
  void start_epoch(std::int64_t epoch, std::int64_t first_step = 0) {
    MIXQ_CHECK(epoch >= 0, "batch_loader: epoch = ", epoch, ", expected >= 0");
    MIXQ_CHECK(first_step >= 0 && first_step <= steps_per_epoch(), "batch_loader: step ",
               first_step, " outside 0..", steps_per_epoch(), " for epoch ", epoch);
    stop_worker();
    order_ = epoch_order(epoch);
    epoch_ = epoch;
    next_step_ = first_step;
    started_ = true;
    if (opt_.prefetch > 0 && first_step < steps_per_epoch()) {
      stop_ = false;
      worker_done_ = false;
      error_ = nullptr;
      worker_ = std::thread([this, first_step] { worker_loop(first_step); });
    }
  }
  // Continues from a saved position (start_epoch(p.epoch, p.step)).
  void resume(const loader_position& p) { start_epoch(p.epoch, p.step); }

  // The next batch of the current epoch into `out` (its buffers are reused).
  // Returns false, leaving `out` unchanged, when the epoch is exhausted.
  // throws: mixq::error when no epoch was started, or what the worker threw.
  bool next(batch& out) {
    MIXQ_CHECK(started_, "batch_loader: next() before start_epoch()");
    if (next_step_ >= steps_per_epoch()) return false;
    if (opt_.prefetch == 0) {
      make_batch(order_, epoch_, next_step_, out);
      ++next_step_;
      return true;
    }
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return !queue_.empty() || worker_done_; });
    if (queue_.empty()) {
      // The worker stopped early: only an exception does that.
      std::exception_ptr e = error_;
      lk.unlock();
      if (e) std::rethrow_exception(e);
      MIXQ_CHECK(false, "batch_loader: worker ended before step ", next_step_);
    }
    std::swap(out, queue_.front());
    free_.push_back(std::move(queue_.front()));  // old buffers of `out`, for reuse
    queue_.pop_front();
    lk.unlock();
    cv_.notify_all();
    ++next_step_;
    return true;
  }

  // Position of the batch the next call to next() returns.
  loader_position position() const { return {epoch_, next_step_}; }

  // The order of the data set in epoch `epoch` (a permutation of 0..n-1).
  std::vector<std::int64_t> epoch_order(std::int64_t epoch) const {
    std::vector<std::int64_t> order(static_cast<std::size_t>(ds_.n));
    std::iota(order.begin(), order.end(), std::int64_t(0));
    if (opt_.shuffle) {
      rng r(derive_seed(opt_.seed, static_cast<std::uint64_t>(epoch), shuffle_tag));
      for (std::size_t i = order.size(); i > 1; --i)
        std::swap(order[i - 1], order[r.below(static_cast<std::uint32_t>(i))]);
    }
    return order;
  }

  // Makes batch `step` of epoch `epoch` directly (no thread, no state change).
  void make_batch(std::int64_t epoch, std::int64_t step, batch& out) const {
    MIXQ_CHECK(step >= 0 && step < steps_per_epoch(), "batch_loader: step ", step, " outside 0..",
               steps_per_epoch() - 1);
    make_batch(epoch_order(epoch), epoch, step, out);
  }

  // Writes image `index` of epoch `epoch`, augmented and normalized, to `dst`
  // (h*w*c floats, HWC). Exposed for tests and for visualizing augmentation.
  void make_sample(std::int64_t epoch, std::int64_t index, float* dst) const {
    const std::int64_t h = ds_.h, w = ds_.w, c = ds_.c;
    const std::uint8_t* src = ds_.image(index);
    std::int64_t dy = opt_.pad, dx = opt_.pad;  // no shift
    bool flip = false;
    if (opt_.augment) {
      rng r(derive_seed(opt_.seed, static_cast<std::uint64_t>(epoch),
                        static_cast<std::uint64_t>(index)));
      const auto span = static_cast<std::uint32_t>(2 * opt_.pad + 1);
      dy = static_cast<std::int64_t>(r.below(span));
      dx = static_cast<std::int64_t>(r.below(span));
      flip = opt_.flip && r.coin();
    }
    const float* lut = lut_.data();
    for (std::int64_t y = 0; y < h; ++y) {
      const std::int64_t sy = y + dy - opt_.pad;
      float* row = dst + y * w * c;
      for (std::int64_t x = 0; x < w; ++x) {
        const std::int64_t sx = (flip ? w - 1 - x : x) + dx - opt_.pad;
        float* px = row + x * c;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
          for (std::int64_t ch = 0; ch < c; ++ch) px[ch] = lut[ch * 256];  // zero pixel
        } else {
          const std::uint8_t* s = src + (sy * w + sx) * c;
          for (std::int64_t ch = 0; ch < c; ++ch) px[ch] = lut[ch * 256 + s[ch]];
        }
      }
    }
  }

 private:
  static constexpr std::uint64_t shuffle_tag = 0x53485546464c45ULL;  // "SHUFFLE"

  void make_batch(const std::vector<std::int64_t>& order, std::int64_t epoch, std::int64_t step,
                  batch& out) const {
    const std::int64_t first = step * opt_.batch_size;
    const std::int64_t n = std::min(opt_.batch_size, ds_.n - first);
    const std::int64_t per = ds_.image_bytes();
    // The data set must not change size under a live loader (cheap check).
    MIXQ_CHECK(ds_.images.size() == static_cast<std::size_t>(ds_.n * per) &&
                   ds_.labels.size() == static_cast<std::size_t>(ds_.n) &&
                   static_cast<std::int64_t>(order.size()) == ds_.n,
               "batch_loader: ", ds_.name, " changed after the loader was made (", ds_.n,
               " images expected, ", ds_.images.size(), " bytes and ", ds_.labels.size(),
               " labels present)");
    out.n = n;
    out.h = ds_.h;
    out.w = ds_.w;
    out.c = ds_.c;
    out.epoch = epoch;
    out.step = step;
    out.images.resize(static_cast<std::size_t>(n * per));
    out.labels.resize(static_cast<std::size_t>(n));
    out.indices.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t idx = order[static_cast<std::size_t>(first + i)];
      out.indices[static_cast<std::size_t>(i)] = idx;
      out.labels[static_cast<std::size_t>(i)] = ds_.labels[static_cast<std::size_t>(idx)];
      make_sample(epoch, idx, out.images.data() + i * per);
    }
  }

  void worker_loop(std::int64_t first_step) {
    try {
      for (std::int64_t s = first_step; s < steps_per_epoch(); ++s) {
        batch b;
        {
          std::unique_lock<std::mutex> lk(mu_);
          cv_.wait(
              lk, [&] { return stop_ || queue_.size() < static_cast<std::size_t>(opt_.prefetch); });
          if (stop_) break;
          if (!free_.empty()) {
            b = std::move(free_.back());
            free_.pop_back();
          }
        }
        make_batch(order_, epoch_, s, b);
        {
          std::lock_guard<std::mutex> lk(mu_);
          if (stop_) break;
          queue_.push_back(std::move(b));
        }
        cv_.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      error_ = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      worker_done_ = true;
    }
    cv_.notify_all();
  }

  void stop_worker() {
    if (!worker_.joinable()) return;
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
    for (auto& b : queue_) free_.push_back(std::move(b));
    queue_.clear();
  }

  const image_dataset& ds_;
  batch_loader_options opt_;
  std::vector<float> lut_;  // 256 per channel
  std::vector<std::int64_t> order_;
  std::int64_t epoch_ = 0, next_step_ = 0;
  bool started_ = false;

  std::thread worker_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<batch> queue_;
  std::vector<batch> free_;
  bool stop_ = false, worker_done_ = false;
  std::exception_ptr error_;
};

}  // namespace mixq::io
