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
//
// CPU affinity: a new thread inherits the affinity mask of the thread that
// creates it. When that thread is bound to one CPU (OMP_PROC_BIND=true binds
// a program's initial thread to the first OpenMP place as soon as libgomp
// loads; so do taskset -c N and numactl), every worker shares that one CPU
// and T threads run no faster than one. `cpus` pins worker w to
// cpus[w % cpus.size()] (Linux); empty keeps the inherited mask. Under
// OMP_PROC_BIND libgomp also binds a worker to the first place when the
// worker first starts a parallel region (the kernels' OpenMP path), so a
// pinned worker pins itself again before each part: one system call per
// part, against a part of at least one image.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#include "mixq/error.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace mixq {
namespace deploy {

class thread_pool {
 public:
  using part_fn = void (*)(void* ctx, int part) noexcept;

  /// throws: mixq::error when a CPU of `cpus` cannot be set (out of range,
  /// not available to the process, or not Linux).
  explicit thread_pool(int workers, const std::vector<int>& cpus = {}) {
    why_.resize(static_cast<std::size_t>(workers));
    for (int w = 0; w < workers; ++w) {
      const int cpu = cpus.empty() ? -1 : cpus[static_cast<std::size_t>(w) % cpus.size()];
      threads_.emplace_back([this, w, cpu] { loop(w, cpu); });
    }
    std::unique_lock<std::mutex> lk(m_);
    done_.wait(lk, [&] { return started_ == workers; });
    for (int w = 0; w < workers; ++w)
      if (!why_[static_cast<std::size_t>(w)].empty()) {
        const std::string why = why_[static_cast<std::size_t>(w)];
        lk.unlock();
        shutdown();
        MIXQ_CHECK(false, "deploy runtime: runtime_options::worker_cpus: cannot pin worker ", w,
                   " to CPU ", cpus[static_cast<std::size_t>(w) % cpus.size()], ": ", why);
      }
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() { shutdown(); }

  /// The number of CPUs the calling thread may run on (0 where unknown).
  static int caller_cpus() noexcept {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
#endif
    return 0;
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
  void shutdown() noexcept {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    start_.notify_all();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

  // Pins the calling thread to one CPU; false where that cannot be done.
  static bool set_cpu(int cpu) noexcept {
#if defined(__linux__)
    if (cpu < 0 || cpu >= CPU_SETSIZE) return false;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
#else
    (void)cpu;
    return false;
#endif
  }

  // set_cpu, with the reason of a failure (empty on success).
  static std::string pin_self(int cpu) {
    if (set_cpu(cpu)) return std::string();
#if defined(__linux__)
    if (cpu >= CPU_SETSIZE) return "expected 0.." + std::to_string(CPU_SETSIZE - 1);
    return "not available to this process";
#else
    return "CPU pinning is implemented on Linux only";
#endif
  }

  // cpu < 0: keep the inherited mask. The first pin reports whether the CPU
  // can be used at all (the constructor waits for every worker's answer).
  void loop(int w, int cpu) {
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    {
      const std::string why = cpu >= 0 ? pin_self(cpu) : std::string();
      std::lock_guard<std::mutex> lk(m_);
      why_[static_cast<std::size_t>(w)] = why;
      ++started_;
    }
    done_.notify_all();
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
      if (cpu >= 0) set_cpu(cpu);
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
  std::vector<std::string> why_;  ///< per worker: why its pin failed (empty: fine)
  int started_ = 0;
  int count_ = 0, pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace deploy
}  // namespace mixq
