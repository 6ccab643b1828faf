#pragma once
// A fixed set of worker threads for the deploy runtime, started once (at
// load) so that an inference starts no thread and allocates nothing. One
// job at a time: run(fn, ctx, count) calls fn(ctx, i) for i in [0, count),
// part 0 on the calling thread and part i on worker i - 1, and returns when
// all parts are done. Parts must not throw (the runtime's are noexcept).
//
// Workers built with OpenMP set their own OpenMP thread count to 1: a part
// already is one thread's share, so the kernels inside it must not start
// OpenMP teams of their own.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mixq {
namespace deploy {

class thread_pool {
 public:
  using part_fn = void (*)(void* ctx, int part) noexcept;

  explicit thread_pool(int workers) {
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this, w] { loop(w); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    start_.notify_all();
    for (auto& t : threads_) t.join();
  }

  int workers() const noexcept { return static_cast<int>(threads_.size()); }

  /// Runs fn(ctx, i) for i in [0, count), count <= workers() + 1.
  void run(part_fn fn, void* ctx, int count) noexcept {
    if (count <= 1 || threads_.empty()) {
      for (int i = 0; i < count; ++i) fn(ctx, i);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = fn;
      ctx_ = ctx;
      count_ = count;
      pending_ = count - 1;
      ++generation_;
    }
    start_.notify_all();
    fn(ctx, 0);
    std::unique_lock<std::mutex> lk(m_);
    done_.wait(lk, [this] { return pending_ == 0; });
  }

 private:
  void loop(int w) {
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    std::uint64_t seen = 0;
    for (;;) {
      part_fn fn;
      void* ctx;
      {
        std::unique_lock<std::mutex> lk(m_);
        start_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (w + 1 >= count_) continue;
        fn = fn_;
        ctx = ctx_;
      }
      fn(ctx, w + 1);
      {
        std::lock_guard<std::mutex> lk(m_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable start_, done_;
  part_fn fn_ = nullptr;
  void* ctx_ = nullptr;
  int count_ = 0, pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace deploy
}  // namespace mixq
