#pragma once
// tape: reverse-mode autograd as a Wengert list.
//
// Design. Every op called on a `var` computes its result immediately (eager)
// and, when gradients are enabled and some input needs one, appends a `node`
// to the tape: the op kind (a closed enum), the ids of its inputs and output,
// and a small fixed-size block of saved state (a trivially copyable struct per
// op). Because nodes are appended in execution order, backward() is a plain
// reverse walk over the list: no graph, no topological sort, no closures.
//
// Memory. All forward values (and their saved state) are bump-allocated in the
// tape's value arena. Gradients of intermediate values are taken from a second
// arena with a free list keyed by size: a value's gradient is complete when the
// walk reaches the node that produced it, and it is returned to the free list
// right after that node's backward, so the backward pass reuses a handful of
// buffers. clear() keeps every buffer, so after the first (warm-up) step a
// training step performs no heap allocation. Parameters are not in the arena:
// they own value and grad, and backward accumulates straight into
// parameter::grad.
//
// No-grad mode (set_grad_enabled(false) or a no_grad_guard) records nothing:
// ops still allocate their outputs in the arena (call clear() between
// batches), but save no state and allocate no gradients.
//
// Lifetime: a var is an index into its tape; it and its value() view are valid
// until clear().
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>
#include <utility>
#include <vector>

#include "mixq/autograd/parameter.hpp"
#include "mixq/core/arena.hpp"
#include "mixq/error.hpp"
#include "mixq/core/tensor.hpp"

namespace mixq {

// The closed set of differentiable ops (one file each in autograd/ops/).
enum class op_kind : uint8_t {
  conv2d,
  linear,
  batch_norm2d,
  relu,
  add,
  global_avg_pool,
  flatten,
  softmax_cross_entropy,
  shortcut_a,
  // Escape hatch (like ggml's map_custom): an op defined outside autograd/
  // (e.g. the quantization layer's fake_quant) records a plain function
  // pointer as its backward; see tape::record_extension.
  extension,
};

inline const char* op_name(op_kind k) {
  switch (k) {
    case op_kind::conv2d:
      return "conv2d";
    case op_kind::linear:
      return "linear";
    case op_kind::batch_norm2d:
      return "batch_norm2d";
    case op_kind::relu:
      return "relu";
    case op_kind::add:
      return "add";
    case op_kind::global_avg_pool:
      return "global_avg_pool";
    case op_kind::flatten:
      return "flatten";
    case op_kind::softmax_cross_entropy:
      return "softmax_cross_entropy";
    case op_kind::shortcut_a:
      return "shortcut_a";
    case op_kind::extension:
      return "extension";
  }
  return "?";
}

class tape;

// Handle to a value recorded on a tape.
struct var {
  tape* t = nullptr;
  int32_t id = -1;
  uint32_t generation = 0;  // the tape's clear() count when the var was made

  bool valid() const { return t != nullptr && id >= 0; }
  inline tensor_view value() const;
  inline const mixq::shape& shape() const;
  inline bool requires_grad() const;
  // The gradient after backward() (empty view if none reached this value).
  inline tensor_view grad() const;
};

struct node {
  static constexpr int max_inputs = 4;
  static constexpr size_t saved_bytes = 192;

  op_kind kind;
  int8_t n_inputs = 0;
  int32_t inputs[max_inputs] = {-1, -1, -1, -1};
  int32_t output = -1;
  alignas(16) unsigned char saved[saved_bytes];

  template <class T>
  T saved_as() const {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= saved_bytes,
                  "saved state must be a small trivially copyable struct");
    T v;
    std::memcpy(&v, saved, sizeof(T));
    return v;
  }

  // op_kind::extension: the saved block starts with the backward function.
  using backward_fn = void (*)(tape&, const node&);
  static constexpr size_t extension_offset = 16;
  backward_fn extension_backward() const {
    backward_fn f;
    std::memcpy(&f, saved, sizeof(f));
    return f;
  }
  template <class T>
  T extension_saved() const {
    static_assert(
        std::is_trivially_copyable<T>::value && sizeof(T) <= saved_bytes - extension_offset,
        "extension saved state must be a small trivially copyable struct");
    T v;
    std::memcpy(&v, saved + extension_offset, sizeof(T));
    return v;
  }
};

class tape {
 public:
  struct slot {
    tensor_view value;
    float* grad = nullptr;
    parameter* param = nullptr;
    bool requires_grad = false;
    bool is_leaf = true;
  };

  tape() = default;
  tape(const tape&) = delete;
  tape& operator=(const tape&) = delete;

  // Forget all values and nodes; keep the memory for the next step.
  void clear() {
    ++generation_;
    slots_.clear();
    nodes_.clear();
    free_grads_.clear();
    values_.reset();
    grads_.reset();
    backward_done_ = false;
  }

  void set_grad_enabled(bool on) { grad_enabled_ = on; }
  bool grad_enabled() const { return grad_enabled_; }

  // A leaf holding `v` (not copied: v must outlive the tape's use of it).
  // With requires_grad, backward() leaves its gradient in var::grad().
  var input(const tensor_view& v, bool requires_grad = false) {
    slot s;
    s.value = v;
    s.requires_grad = requires_grad && grad_enabled_;
    return push(s);
  }
  // A leaf for a parameter: backward() accumulates into p.grad.
  var param(parameter& p) {
    slot s;
    s.value = p.value.view();
    s.param = &p;
    s.requires_grad = grad_enabled_;
    return push(s);
  }

  // ---- used by ops ------------------------------------------------------
  // A new value of shape s in the arena (uninitialised).
  var new_value(const mixq::shape& s, bool requires_grad) {
    slot sl;
    sl.value = tensor_view(values_.alloc(s.numel()), s);
    sl.requires_grad = requires_grad && grad_enabled_;
    sl.is_leaf = false;
    return push(sl);
  }
  // A new value sharing memory with an existing view (reshape-like ops).
  var alias_value(const tensor_view& v, bool requires_grad) {
    slot sl;
    sl.value = v;
    sl.requires_grad = requires_grad && grad_enabled_;
    sl.is_leaf = false;
    return push(sl);
  }
  // Arena memory for saved state; valid until clear().
  float* alloc(int64_t n) { return values_.alloc(n); }
  // Scratch memory valid until the next scratch() call (one op at a time).
  float* scratch(int64_t n) { return scratch_.get(n); }

  template <class Saved>
  void record(op_kind k, std::initializer_list<var> inputs, var out, const Saved& saved) {
    static_assert(std::is_trivially_copyable<Saved>::value && sizeof(Saved) <= node::saved_bytes,
                  "saved state must be a small trivially copyable struct");
    MIXQ_CHECK(inputs.size() <= static_cast<size_t>(node::max_inputs), "tape: too many inputs");
    node n;
    n.kind = k;
    for (var v : inputs) n.inputs[n.n_inputs++] = v.id;
    n.output = out.id;
    std::memcpy(n.saved, &saved, sizeof(Saved));
    nodes_.push_back(n);
  }

  // Record an op defined outside autograd/: `fn` (a plain function, no
  // captures) is called by backward with this node; it reads its state with
  // node::extension_saved<Saved>() and writes input gradients through
  // grad_for_write() like the built-in ops.
  template <class Saved>
  void record_extension(node::backward_fn fn, std::initializer_list<var> inputs, var out,
                        const Saved& saved) {
    static_assert(std::is_trivially_copyable<Saved>::value &&
                      sizeof(Saved) <= node::saved_bytes - node::extension_offset,
                  "extension saved state must be a small trivially copyable struct");
    MIXQ_CHECK(fn != nullptr, "tape::record_extension: null backward function");
    MIXQ_CHECK(inputs.size() <= static_cast<size_t>(node::max_inputs), "tape: too many inputs");
    node n;
    n.kind = op_kind::extension;
    for (var v : inputs) n.inputs[n.n_inputs++] = v.id;
    n.output = out.id;
    std::memcpy(n.saved, &fn, sizeof(fn));
    std::memcpy(n.saved + node::extension_offset, &saved, sizeof(Saved));
    nodes_.push_back(n);
  }

  const slot& at(int32_t id) const { return slots_[static_cast<size_t>(id)]; }
  slot& at(int32_t id) { return slots_[static_cast<size_t>(id)]; }
  int64_t size() const { return static_cast<int64_t>(slots_.size()); }
  const std::vector<node>& nodes() const { return nodes_; }

  // ---- used by backward ---------------------------------------------------
  bool needs_grad(int32_t id) const { return id >= 0 && at(id).requires_grad; }
  // The gradient buffer of value id for writing. *accumulate says whether it
  // already holds a partial sum (add into it) or is fresh (overwrite it).
  float* grad_for_write(int32_t id, bool* accumulate) {
    slot& s = at(id);
    if (s.param) {
      *accumulate = true;
      return s.param->grad.data();
    }
    if (s.grad) {
      *accumulate = true;
      return s.grad;
    }
    s.grad = take_grad_buffer(s.value.numel());
    *accumulate = false;
    return s.grad;
  }
  // The finished gradient of value id (nullptr if none reached it).
  const float* grad_of(int32_t id) const {
    const slot& s = at(id);
    return s.param ? s.param->grad.data() : s.grad;
  }
  void seed_grad(int32_t id, const float* g) {
    bool acc = false;
    float* d = grad_for_write(id, &acc);
    int64_t n = at(id).value.numel();
    for (int64_t i = 0; i < n; ++i) d[i] = acc ? d[i] + g[i] : g[i];
  }
  // Return an intermediate value's gradient buffer to the free list.
  void release_grad(int32_t id) {
    slot& s = at(id);
    if (s.param || s.is_leaf || !s.grad) return;
    free_grads_.push_back({s.value.numel(), s.grad});
    s.grad = nullptr;
  }
  void mark_backward_done() { backward_done_ = true; }
  bool backward_done() const { return backward_done_; }

  // Memory the tape holds (for reporting / tests).
  struct memory_stats {
    int64_t values_bytes;   // forward values and saved state
    int64_t grads_bytes;    // intermediate gradients (recycled during backward)
    int64_t scratch_bytes;  // per-op scratch
  };
  memory_stats memory() const {
    return {values_.capacity_bytes(), grads_.capacity_bytes(), scratch_.capacity_bytes()};
  }
  int64_t reserved_bytes() const {
    return values_.capacity_bytes() + grads_.capacity_bytes() + scratch_.capacity_bytes();
  }

 private:
  var push(const slot& s) {
    slots_.push_back(s);
    return var{this, static_cast<int32_t>(slots_.size() - 1), generation_};
  }
  float* take_grad_buffer(int64_t n) {
    for (size_t i = 0; i < free_grads_.size(); ++i) {
      if (free_grads_[i].first == n) {
        float* p = free_grads_[i].second;
        free_grads_[i] = free_grads_.back();
        free_grads_.pop_back();
        return p;
      }
    }
    return grads_.alloc(n);
  }

  std::vector<slot> slots_;
  std::vector<node> nodes_;
  std::vector<std::pair<int64_t, float*>> free_grads_;
  arena values_;
  arena grads_;
  scratch_buffer scratch_;
  bool grad_enabled_ = true;
  bool backward_done_ = false;
  uint32_t generation_ = 0;

 public:
  // Throws if v is not a live var of this tape (made before the last clear()).
  void check_live(const var& v) const {
    MIXQ_CHECK(v.t == this && v.id >= 0 && v.generation == generation_ &&
                   v.id < static_cast<int32_t>(slots_.size()),
               "var: stale or foreign var (id ", v.id, "); vars are valid until tape::clear()");
  }
};

// RAII: disable gradient recording on a tape within a scope.
class no_grad_guard {
 public:
  explicit no_grad_guard(tape& t) : t_(t), prev_(t.grad_enabled()) { t.set_grad_enabled(false); }
  ~no_grad_guard() { t_.set_grad_enabled(prev_); }
  no_grad_guard(const no_grad_guard&) = delete;
  no_grad_guard& operator=(const no_grad_guard&) = delete;

 private:
  tape& t_;
  bool prev_;
};

inline tensor_view var::value() const {
  MIXQ_CHECK(t, "var: empty var");
  t->check_live(*this);
  return t->at(id).value;
}
inline const mixq::shape& var::shape() const {
  MIXQ_CHECK(t, "var: empty var");
  t->check_live(*this);
  return t->at(id).value.shape();
}
inline bool var::requires_grad() const {
  MIXQ_CHECK(t, "var: empty var");
  t->check_live(*this);
  return t->at(id).requires_grad;
}
inline tensor_view var::grad() const {
  MIXQ_CHECK(t, "var: empty var");
  t->check_live(*this);
  const float* g = t->grad_of(id);
  return g ? tensor_view(const_cast<float*>(g), shape()) : tensor_view();
}

namespace detail {
inline void check_same_tape(var a, var b, const char* op) {
  MIXQ_CHECK(a.valid() && b.valid(), op, ": invalid var");
  MIXQ_CHECK(a.t == b.t, op, ": inputs come from different tapes");
}
// Write or accumulate n values: dst = (acc ? dst : 0) + src.
inline void store_grad(float* dst, const float* src, int64_t n, bool acc) {
  if (acc)
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
  else
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}
}  // namespace detail

}  // namespace mixq
