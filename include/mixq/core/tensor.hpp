#pragma once
// tensor and tensor_view: dense float32, contiguous, row-major.
//
// Why two types. A `tensor` owns a 64-byte aligned buffer and behaves like a
// value (copy = deep copy, move = pointer steal). A `tensor_view` is a
// non-owning (pointer, shape) pair: reshape and slices along dim 0 are views
// and cost nothing. The autograd tape hands out views into its arena, and a
// parameter owns two tensors (value, grad). Nothing is reference counted, so
// every lifetime is visible at the call site: a view is valid while its owner
// (a tensor, a tape arena before clear()) is alive and unchanged in size.
//
// Layout. Activations are NHWC (channels last), conv weights OHWI
// ([Cout, KH, KW, Cin]) and linear weights [out, in]; docs/core.md ("Why
// NHWC") explains why.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "mixq/error.hpp"
#include "mixq/core/shape.hpp"

namespace mixq {

namespace detail {
constexpr size_t tensor_alignment = 64;
inline float* aligned_alloc_floats(int64_t n) {
  if (n <= 0) return nullptr;
  size_t bytes = static_cast<size_t>(n) * sizeof(float);
  bytes = (bytes + tensor_alignment - 1) / tensor_alignment * tensor_alignment;
  void* p = std::aligned_alloc(tensor_alignment, bytes);
  if (!p) throw std::bad_alloc();
  return static_cast<float*>(p);
}
inline void aligned_free(float* p) { std::free(p); }
}  // namespace detail

// Non-owning view of contiguous float data.
class tensor_view {
 public:
  tensor_view() = default;
  tensor_view(float* data, const mixq::shape& s) : data_(data), shape_(s) {}

  float* data() const { return data_; }
  const mixq::shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int i) const { return shape_[i]; }
  // Element count; 0 for an empty (default-constructed) view.
  int64_t numel() const { return data_ ? shape_.numel() : 0; }
  int64_t stride(int i) const { return shape_.stride(i); }
  bool empty() const { return data_ == nullptr; }
  float& operator[](int64_t i) const { return data_[i]; }

  // Same data, new shape with the same element count.
  tensor_view reshape(const mixq::shape& s) const {
    MIXQ_CHECK(s.numel() == numel(), "reshape: cannot view ", shape_, " (", numel(),
               " elements) as ", s, " (", s.numel(), " elements)");
    return tensor_view(data_, s);
  }
  // Rows [begin, end) along dimension 0.
  tensor_view slice(int64_t begin, int64_t end) const {
    MIXQ_CHECK(rank() >= 1, "slice: tensor of rank 0 has no dimension 0");
    MIXQ_CHECK(0 <= begin && begin <= end && end <= dim(0), "slice: range [", begin, ", ", end,
               ") outside dimension 0 of size ", dim(0));
    mixq::shape s = shape_;
    s[0] = end - begin;
    return tensor_view(data_ + begin * shape_.stride(0), s);
  }

  void fill(float v) const { std::fill(data_, data_ + numel(), v); }
  void copy_from(const tensor_view& src) const {
    MIXQ_CHECK(src.numel() == numel(), "copy_from: source has ", src.numel(),
               " elements, destination ", numel());
    if (numel()) std::memcpy(data_, src.data_, static_cast<size_t>(numel()) * sizeof(float));
  }

 private:
  float* data_ = nullptr;
  mixq::shape shape_;
};

// Owning tensor (64-byte aligned storage).
class tensor {
 public:
  tensor() = default;
  explicit tensor(const mixq::shape& s)
      : shape_(s), data_(detail::aligned_alloc_floats(s.numel())) {
    fill(0.0f);
  }
  tensor(const mixq::shape& s, float value) : tensor(s) { fill(value); }
  static tensor from_view(const tensor_view& v) {
    tensor t(v.shape());
    t.view().copy_from(v);
    return t;
  }
  ~tensor() { detail::aligned_free(data_); }
  tensor(const tensor& o) : shape_(o.shape_), data_(detail::aligned_alloc_floats(o.numel())) {
    if (numel()) std::memcpy(data_, o.data_, static_cast<size_t>(numel()) * sizeof(float));
  }
  tensor(tensor&& o) noexcept : shape_(o.shape_), data_(o.data_) {
    o.data_ = nullptr;
    o.shape_ = mixq::shape();
  }
  tensor& operator=(const tensor& o) {
    if (this != &o) {
      tensor tmp(o);
      swap(tmp);
    }
    return *this;
  }
  tensor& operator=(tensor&& o) noexcept {
    swap(o);
    return *this;
  }
  void swap(tensor& o) noexcept {
    std::swap(shape_, o.shape_);
    std::swap(data_, o.data_);
  }

  float* data() { return data_; }
  const float* data() const { return data_; }
  const mixq::shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  int64_t dim(int i) const { return shape_[i]; }
  // Element count; 0 for a default-constructed or moved-from tensor (which
  // has no storage), 1 for a scalar (shape {}).
  int64_t numel() const { return data_ ? shape_.numel() : 0; }
  bool empty() const { return data_ == nullptr; }
  int64_t stride(int i) const { return shape_.stride(i); }
  float& operator[](int64_t i) { return data_[i]; }
  float operator[](int64_t i) const { return data_[i]; }

  tensor_view view() { return tensor_view(data_, shape_); }
  // A const tensor still yields a (mutable-pointer) view: views are a
  // low-level handle, and const-ness is enforced by the APIs that take them.
  tensor_view view() const { return tensor_view(const_cast<float*>(data_), shape_); }
  tensor_view reshape(const mixq::shape& s) const { return view().reshape(s); }
  tensor_view slice(int64_t begin, int64_t end) const { return view().slice(begin, end); }

  void fill(float v) {
    if (numel()) std::fill(data_, data_ + numel(), v);
  }

 private:
  mixq::shape shape_;
  float* data_ = nullptr;
};

}  // namespace mixq
