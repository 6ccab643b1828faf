#pragma once
// shape: the dimensions of a dense float tensor (rank 0..6).
//
// mixq tensors are always contiguous and row-major, so strides are derived
// from the shape (strides() below) rather than stored: a view is a pointer and
// a shape. Activations are NHWC (channels last); docs/core.md, "Why NHWC".
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "mixq/error.hpp"

namespace mixq {

class shape {
 public:
  static constexpr int max_rank = 6;

  shape() = default;
  shape(std::initializer_list<int64_t> dims) {
    MIXQ_CHECK(dims.size() <= static_cast<size_t>(max_rank), "shape: rank ", dims.size(),
               " exceeds the maximum rank ", max_rank);
    for (int64_t d : dims) {
      MIXQ_CHECK(d >= 0, "shape: negative dimension ", d);
      dims_[rank_++] = d;
    }
  }
  template <class It>
  static shape from_range(It first, It last) {
    shape s;
    for (; first != last; ++first) {
      MIXQ_CHECK(s.rank_ < max_rank, "shape: rank exceeds the maximum rank ", max_rank);
      MIXQ_CHECK(*first >= 0, "shape: negative dimension ", *first);
      s.dims_[s.rank_++] = static_cast<int64_t>(*first);
    }
    return s;
  }

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t& operator[](int i) { return dims_[static_cast<size_t>(i)]; }
  const int64_t* begin() const { return dims_.data(); }
  const int64_t* end() const { return dims_.data() + rank_; }

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<size_t>(i)];
    return n;
  }
  // Element stride of dimension i (contiguous row-major).
  int64_t stride(int i) const {
    int64_t s = 1;
    for (int j = rank_ - 1; j > i; --j) s *= dims_[static_cast<size_t>(j)];
    return s;
  }
  std::array<int64_t, max_rank> strides() const {
    std::array<int64_t, max_rank> s{};
    for (int i = 0; i < rank_; ++i) s[static_cast<size_t>(i)] = stride(i);
    return s;
  }

  friend bool operator==(const shape& a, const shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a.dims_[static_cast<size_t>(i)] != b.dims_[static_cast<size_t>(i)]) return false;
    return true;
  }
  friend bool operator!=(const shape& a, const shape& b) { return !(a == b); }

  std::string to_string() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) {
      if (i) s += ", ";
      s += std::to_string(dims_[static_cast<size_t>(i)]);
    }
    return s + "]";
  }

 private:
  std::array<int64_t, max_rank> dims_{};
  int rank_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const shape& s) { return os << s.to_string(); }

}  // namespace mixq
