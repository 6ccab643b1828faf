#pragma once
// arena: a bump allocator of 64-byte aligned float memory that is reused.
//
// alloc() hands out uninitialised memory; reset() makes all of it free again
// without returning it to the system. If one pass needed more than the first
// chunk, reset() replaces the chunks by one chunk of the peak size, so from
// the second identical pass on (a training step after warm-up) alloc() never
// calls the system allocator.
#include <cstdint>
#include <vector>

#include "mixq/core/tensor.hpp"
#include "mixq/util/math.hpp"

namespace mixq {

class arena {
 public:
  arena() = default;
  arena(const arena&) = delete;
  arena& operator=(const arena&) = delete;
  ~arena() { release(); }

  // n floats, 64-byte aligned, uninitialised.
  float* alloc(int64_t n) {
    int64_t need = round_up(n < 1 ? 1 : n, 16);
    if (chunks_.empty() || chunks_.back().used + need > chunks_.back().size) {
      int64_t want = need;
      if (!chunks_.empty() && chunks_.back().size > want) want = chunks_.back().size;
      chunks_.push_back(chunk{detail::aligned_alloc_floats(want), want, 0});
    }
    chunk& c = chunks_.back();
    float* p = c.data + c.used;
    c.used += need;
    in_use_ += need;
    if (in_use_ > peak_) peak_ = in_use_;
    return p;
  }

  void reset() {
    if (chunks_.size() > 1) {
      // One chunk that holds the largest pass seen so far.
      const int64_t total = peak_;
      const int64_t keep_peak = peak_;
      release();
      peak_ = keep_peak;
      chunks_.push_back(chunk{detail::aligned_alloc_floats(total), total, 0});
    } else if (!chunks_.empty()) {
      chunks_.back().used = 0;
    }
    in_use_ = 0;
  }
  void release() {
    for (chunk& c : chunks_) detail::aligned_free(c.data);
    chunks_.clear();
    in_use_ = 0;
  }
  int64_t capacity_bytes() const {
    int64_t s = 0;
    for (const chunk& c : chunks_) s += c.size;
    return s * static_cast<int64_t>(sizeof(float));
  }
  int64_t peak_bytes() const { return peak_ * static_cast<int64_t>(sizeof(float)); }

 private:
  struct chunk {
    float* data;
    int64_t size;
    int64_t used;
  };
  std::vector<chunk> chunks_;
  int64_t in_use_ = 0;
  int64_t peak_ = 0;
};

// A growable scratch buffer for one op at a time (contents are not kept).
class scratch_buffer {
 public:
  scratch_buffer() = default;
  scratch_buffer(const scratch_buffer&) = delete;
  scratch_buffer& operator=(const scratch_buffer&) = delete;
  ~scratch_buffer() { detail::aligned_free(data_); }
  float* get(int64_t n) {
    if (n > size_) {
      detail::aligned_free(data_);
      data_ = nullptr;
      data_ = detail::aligned_alloc_floats(n);
      size_ = n;
    }
    return data_;
  }
  int64_t capacity_bytes() const { return size_ * static_cast<int64_t>(sizeof(float)); }

 private:
  float* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace mixq
