#pragma once
// Switchable quantizers: one quantizer per bit-width 2..8 behind a single
// hook, the per-bit quantizer state of a multi-bit supernet (MultiQuant,
// docs/multiquant.md).
//
// A switchable quantizer is itself a weight_quantizer / act_quantizer, so it
// sits on a layer's hook like any other, qnet indexes it, and the deploy
// export reads its grid. It owns seven children, ordinary fixed-bit
// quantizers of one family (an LSQ step each, ...), adopted under the names
// "b2" .. "b8" (state keys "layer1.0.conv1.weight_quant.b4.step"). Its own
// "bits" buffer selects the child: apply() and export_grid() delegate to the
// child of the current width, so set_bits() is a store of one integer: no
// allocation, no copy, and the FP32 weights the layer hands in are the same
// tensor at every width. A slice's forward is, by construction, the forward
// of a fixed-bit model whose quantizers are these children.
//
// Children not selected in a forward get no gradient in that step; the
// optimizer's momentum (if any) still moves them, as it moves any parameter.
// used_widths() records the widths whose forward ran with gradients since the
// last clear_used(), so a training method can apply weight decay to the
// children a step used and to no other (examples/multiquant_cifar10/
// lrh_method.hpp): an optimizer's decay would shrink an unused child's PACT
// clip every step, while its loss gradient comes only in the steps that
// select its width.
#include <array>
#include <functional>
#include <memory>
#include <string>

#include "mixq/quant/quantizer.hpp"

namespace mixq {
namespace quant {

namespace detail {
// The children and the delegation, shared by the weight and activation forms.
template <class Base>
class switchable_base : public Base {
 public:
  using maker = std::function<std::unique_ptr<Base>(int bits)>;
  static constexpr int widths = max_bits - min_bits + 1;

  // requires: make(b) returns a quantizer at b bits for every b in [2, 8].
  switchable_base(int bits, const maker& make) : Base(bits) {
    for (int b = min_bits; b <= max_bits; ++b) {
      std::unique_ptr<Base> q = make(b);
      MIXQ_CHECK(q != nullptr && q->bits() == b, "switchable quantizer: the factory made ",
                 q ? q->bits() : 0, " bits for width ", b);
      slots_[static_cast<size_t>(b - min_bits)] =
          &this->adopt("b" + std::to_string(b), std::move(q));
    }
  }
  const char* family() const override { return active().family(); }
  // The quantizer of width b, and the one the current bits select.
  Base& at(int b) const {
    check_bits(b, "switchable quantizer width");
    return *slots_[static_cast<size_t>(b - min_bits)];
  }
  Base& active() const { return *slots_[static_cast<size_t>(this->bits() - min_bits)]; }
  var apply(tape& t, var x) override {
    if (t.grad_enabled()) used_ |= 1u << (this->bits() - min_bits);
    return active().apply(t, x);
  }
  // The widths whose forward ran with gradients since the last clear_used():
  // bit (b - min_bits) set for width b.
  unsigned used_widths() const { return used_; }
  void clear_used() { used_ = 0; }
  void reset_range() override {
    for (Base* q : slots_) q->reset_range();
  }

 private:
  std::array<Base*, widths> slots_{};
  unsigned used_ = 0;
};
}  // namespace detail

class switchable_weight : public detail::switchable_base<weight_quantizer> {
 public:
  using switchable_base::switchable_base;
  weight_grid export_grid(const tensor& w) override { return active().export_grid(w); }
};

class switchable_act : public detail::switchable_base<act_quantizer> {
 public:
  using switchable_base::switchable_base;
  act_grid export_grid() const override { return active().export_grid(); }
  bool ready() const override { return active().ready(); }
};

}  // namespace quant
}  // namespace mixq
