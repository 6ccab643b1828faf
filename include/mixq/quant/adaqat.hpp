#pragma once
// AdaQAT: learned bit-widths (Gernigon et al., arXiv 2404.16876), and a
// per-layer extension of ours.
//
// State. Real-valued bit-widths N in [min_bits, max_bits] (default [2, 8]);
// every quantizer of a group runs ceil(N) bits (bits.hpp: exact at integers).
// Groups: with granularity::network (the paper's), one N_w for the weights
// and one N_a for the activations of every learnable layer; with
// granularity::layer (our extension), one N_w and one N_a per learnable
// layer. Learnable layers are the inner ones, plus the first / last layer
// when its policy is `same` (qnet.hpp). The network input stays 8-bit.
//
// Update of a group at k = ceil(N), once per probe of that group:
//   (lo, hi) = (k - 1, k), or (k, k + 1) at the lowest width
//   g  = [L(hi) - L(lo)] + lambda * [C(hi) - C(lo)]
//   N <- clamp(N - eta * P * g, min_bits, max_bits)
// L is the task loss on the training batch of the step (the same batch, the
// same batch-norm mode, the same weights, before the optimizer step), C the
// BitOPs of the learnable layers over their BitOPs at 8/8 bits (cost_ref),
// eta the bit learning rate and P the number of steps between two probes of
// the group (so eta is a rate per step whatever the schedule); in layer
// granularity eta is further multiplied by the number of learnable layers
// (layer_lr_scale), so that a layer's N moves as fast as the network's when
// all layers agree (a layer's loss and cost differences are about 1/L of the
// network's).
//
// Estimators of L(hi) - L(lo):
//   finite_difference  one extra forward without gradients, at the other width
//                      of the pair, on the step's batch; the forward at the
//                      current width is the training forward itself. Groups are
//                      probed round-robin, groups_per_step per step (network: 1
//                      of {N_w, N_a} per step, so an AdaQAT step costs one
//                      forward more than a QAT step). Batch-norm running
//                      statistics are saved and restored around the probe.
//   taylor             no extra forward (layer granularity): every quantizer of
//                      every group estimates L(other) - L(k) in the training
//                      backward from the gradient g at its output and the change
//                      delta of its output between the two widths:
//                        first = sum g * delta,
//                        second = (B / 2) sum (g * delta)^2 per sample
//                      (the empirical Fisher; quantizer.hpp), second optional.
//
// Oscillation. Near its equilibrium a group's ceil(N) can flip between two
// widths, and every flip disturbs the weights' training. A group whose
// integer width reverses direction osc_reversals times within osc_window
// steps is frozen at the higher of the two widths (N set to that integer) and
// no longer probed. freeze_step (optional) freezes every group at that step,
// to finish training at fixed bits. start_step (optional) keeps every group at
// its initial width, unprobed, before that step: from scratch, the loss
// differences between two widths of an untrained network say little, and the
// cost term alone drives every width to the minimum within the first steps.
//
// Checkpoints. The state of every group, (N, frozen, reversals, window
// start, last direction), is in the buffers "weight_bits" and "act_bits"
// ([groups, 5]) of this module, which the model adopts as "adaqat": the
// model's state dict, so every checkpoint, holds it, and the schedule is a
// function of the global step, so a resumed run is bit-identical.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "mixq/autograd/tape.hpp"
#include "mixq/nn/module.hpp"
#include "mixq/quant/qnet.hpp"

namespace mixq {
namespace quant {

enum class granularity { network, layer };
enum class estimator { finite_difference, taylor };

inline granularity parse_granularity(const std::string& s) {
  if (s == "network" || s == "net") return granularity::network;
  if (s == "layer") return granularity::layer;
  MIXQ_CHECK(false, "granularity '", s, "': expected network or layer");
  return granularity::network;
}
inline estimator parse_estimator(const std::string& s) {
  if (s == "fd" || s == "finite_difference") return estimator::finite_difference;
  if (s == "taylor") return estimator::taylor;
  MIXQ_CHECK(false, "bit-width estimator '", s, "': expected fd or taylor");
  return estimator::finite_difference;
}
inline const char* name_of(granularity g) {
  return g == granularity::network ? "network" : "layer";
}
inline const char* name_of(estimator e) {
  return e == estimator::finite_difference ? "fd" : "taylor";
}

struct adaqat_options {
  granularity gran = granularity::network;
  estimator est = estimator::finite_difference;
  double lambda = 0.1;           // weight of the normalised BitOPs
  double lr = 0.05;              // bit learning rate (per step)
  double layer_lr_scale = -1.0;  // layer granularity: < 0 = number of learnable layers
  double init_w = 8.0, init_a = 8.0;
  double min_bits = 2.0, max_bits = 8.0;
  int groups_per_step = 1;    // finite_difference: groups probed per step
  bool second_order = true;   // taylor: add the empirical-Fisher term
  int osc_reversals = 3;      // 0 = never freeze on oscillation
  int64_t osc_window = 2000;  // steps
  int64_t freeze_step = -1;   // -1 = never
  int64_t start_step = 0;     // no probe and no update before this step

  void validate() const {
    MIXQ_CHECK(lambda >= 0.0 && std::isfinite(lambda), "AdaQAT lambda = ", lambda,
               ": expected a finite value >= 0");
    MIXQ_CHECK(lr > 0.0 && std::isfinite(lr), "AdaQAT bit learning rate = ", lr,
               ": expected a finite value > 0");
    MIXQ_CHECK(
        min_bits >= min_bits_allowed() && max_bits <= max_bits_allowed() && min_bits < max_bits,
        "AdaQAT bit range [", min_bits, ", ", max_bits, "]: expected ", min_bits_allowed(),
        " <= min < max <= ", max_bits_allowed());
    MIXQ_CHECK(init_w >= min_bits && init_w <= max_bits, "AdaQAT initial weight bits ", init_w,
               ": expected in [", min_bits, ", ", max_bits, "]");
    MIXQ_CHECK(init_a >= min_bits && init_a <= max_bits, "AdaQAT initial activation bits ", init_a,
               ": expected in [", min_bits, ", ", max_bits, "]");
    MIXQ_CHECK(groups_per_step >= 1, "AdaQAT groups per step = ", groups_per_step,
               ": expected >= 1");
    MIXQ_CHECK(osc_reversals >= 0 && osc_window >= 1, "AdaQAT oscillation rule: reversals ",
               osc_reversals, " (>= 0), window ", osc_window, " (>= 1)");
    MIXQ_CHECK(start_step >= 0 && (start_step == 0 || freeze_step < 0 || freeze_step > start_step),
               "AdaQAT: learning starts at step ", start_step, " and freezes at step ", freeze_step,
               ": expected a start >= 0 before the freeze (-1: never)");
    MIXQ_CHECK(gran == granularity::layer || est == estimator::finite_difference,
               "AdaQAT: the taylor estimator is for layer granularity (the network pair uses "
               "finite differences)");
  }
  static double min_bits_allowed() { return quant::min_bits; }
  static double max_bits_allowed() { return quant::max_bits; }
};

// One learned bit-width: the quantizers it drives and the layers it costs.
struct bit_group {
  bool weights = true;
  std::vector<int> layers;  // indices into qnet::layers()
  std::string label;        // "w", "a", "w:layer1.0.conv1", ...
};

class adaqat : public nn::module {
 public:
  // Columns of a group's state row.
  enum col : int { n_col = 0, frozen_col, reversals_col, window_col, dir_col, cols };

  adaqat(qnet& net, const adaqat_options& o) : net_(net), opt_(o) {
    o.validate();
    const auto& L = net.layers();
    int learnable = 0;
    if (o.gran == granularity::network) {
      bit_group w, a;
      w.weights = true;
      w.label = "w";
      a.weights = false;
      a.label = "a";
      for (size_t i = 0; i < L.size(); ++i) {
        if (L[i].learn_w) w.layers.push_back(static_cast<int>(i));
        if (L[i].learn_a) a.layers.push_back(static_cast<int>(i));
      }
      MIXQ_CHECK(!w.layers.empty() && !a.layers.empty(), "AdaQAT: no learnable layer");
      wgroups_.push_back(w);
      agroups_.push_back(a);
    } else {
      for (size_t i = 0; i < L.size(); ++i) {
        if (L[i].learn_w) {
          bit_group g;
          g.weights = true;
          g.layers = {static_cast<int>(i)};
          g.label = "w:" + L[i].name;
          wgroups_.push_back(g);
        }
        if (L[i].learn_a) {
          bit_group g;
          g.weights = false;
          g.layers = {static_cast<int>(i)};
          g.label = "a:" + L[i].name;
          agroups_.push_back(g);
        }
        learnable += (L[i].learn_w || L[i].learn_a) ? 1 : 0;
      }
      MIXQ_CHECK(!wgroups_.empty() || !agroups_.empty(), "AdaQAT: no learnable layer");
    }
    layer_scale_ = o.gran == granularity::layer
                       ? (o.layer_lr_scale > 0 ? o.layer_lr_scale : static_cast<double>(learnable))
                       : 1.0;
    wstate_ = tensor(shape{static_cast<int64_t>(wgroups_.size()), cols});
    astate_ = tensor(shape{static_cast<int64_t>(agroups_.size()), cols});
    for (int64_t g = 0; g < wstate_.dim(0); ++g)
      wstate_[g * cols + n_col] = static_cast<float>(o.init_w);
    for (int64_t g = 0; g < astate_.dim(0); ++g)
      astate_[g * cols + n_col] = static_cast<float>(o.init_a);
    register_buffer("weight_bits", wstate_);
    register_buffer("act_bits", astate_);
    for (const bit_group& g : wgroups_) all_.push_back(&g);
    for (const bit_group& g : agroups_) all_.push_back(&g);
    cost_ref_ = net.bitops_w8a8();
    apply_bits();
  }

  const adaqat_options& options() const { return opt_; }
  size_t groups() const { return all_.size(); }
  const bit_group& group(size_t g) const { return *all_[g]; }
  double real_bits(size_t g) const { return row(g)[n_col]; }
  int bits(size_t g) const { return ceil_bits(real_bits(g)); }
  bool frozen(size_t g) const { return row(g)[frozen_col] > 0.0f; }
  double cost() const { return net_.bitops() / cost_ref_; }
  // The last step's loss difference estimates, per group (0 where not probed).
  const std::vector<double>& last_slopes() const { return slopes_; }

  // Sets every quantizer to ceil(N) of its group (after construction, after
  // loading a checkpoint).
  void apply_bits() {
    for (size_t g = 0; g < all_.size(); ++g) set_group_bits(g, bits(g));
  }

  // Call before the training forward of `step` (batch size `batch`): with the
  // taylor estimator, arms the quantizers' probes.
  void before_forward(int64_t step, int64_t batch) {
    step_ = step;
    if (opt_.est != estimator::taylor || learning_off(step)) return;
    for (size_t g = 0; g < all_.size(); ++g) {
      if (frozen(g)) continue;
      const int k = bits(g);
      const int other = k > lowest() ? k - 1 : k + 1;
      for (quantizer* q : quantizers_of(g)) q->set_probe(other, batch);
    }
  }

  // Call after the training backward of the step (gradients ready, optimizer
  // step not taken yet). loss0: the task loss of the training forward;
  // probe_loss(t): runs the model's forward on the same batch without
  // gradients and returns the task loss (finite differences only; it may clear
  // and reuse the tape).
  void after_backward(tape& t, double loss0, const std::function<double(tape&)>& probe_loss) {
    slopes_.assign(all_.size(), 0.0);
    if (learning_off(step_)) {
      if (opt_.freeze_step >= 0 && step_ >= opt_.freeze_step) freeze_all();
      return;
    }
    const size_t G = all_.size();
    if (opt_.est == estimator::taylor) {
      for (size_t g = 0; g < G; ++g) {
        if (frozen(g)) continue;
        double est = 0.0;
        for (quantizer* q : quantizers_of(g)) {
          est += q->estimate_first() + (opt_.second_order ? q->estimate_second() : 0.0);
          q->set_probe(0, 0);
        }
        const int k = bits(g);
        // est ~ L(other) - L(k); slope = L(hi) - L(lo).
        const double slope = k > lowest() ? -est : est;
        update(g, slope, 1.0);
      }
      return;
    }
    const int64_t per = std::min<int64_t>(opt_.groups_per_step, static_cast<int64_t>(G));
    const double period = static_cast<double>(G) / static_cast<double>(per);
    for (int64_t j = 0; j < per; ++j) {
      const size_t g = static_cast<size_t>((step_ * per + j) % static_cast<int64_t>(G));
      if (frozen(g)) continue;
      const int k = bits(g);
      const int other = k > lowest() ? k - 1 : k + 1;
      save_buffers();
      set_group_bits(g, other);
      double lother = 0.0;
      {
        no_grad_guard ng(t);
        lother = probe_loss(t);
      }
      set_group_bits(g, k);
      restore_buffers();
      const double slope = k > lowest() ? loss0 - lother : lother - loss0;
      update(g, slope, period);
    }
  }

  // Freezes every group at its current integer width.
  void freeze_all() {
    for (size_t g = 0; g < all_.size(); ++g)
      if (!frozen(g)) {
        float* r = row(g);
        r[n_col] = static_cast<float>(bits(g));
        r[frozen_col] = 1.0f;
      }
  }

  // Cost of the learnable layers with group g at `b` bits, the others as they are.
  double cost_with(size_t g, int b) const {
    const auto& L = net_.layers();
    double s = 0.0;
    for (size_t i = 0; i < L.size(); ++i) {
      if (!(L[i].learn_w || L[i].learn_a)) continue;
      double bw = L[i].bits_w(), ba = L[i].bits_a();
      for (int li : group(g).layers)
        if (li == static_cast<int>(i)) (group(g).weights ? bw : ba) = b;
      s += static_cast<double>(L[i].macs) * bw * ba;
    }
    return s / cost_ref_;
  }

 private:
  float* row(size_t g) {
    return g < wgroups_.size() ? wstate_.data() + g * cols
                               : astate_.data() + (g - wgroups_.size()) * cols;
  }
  const float* row(size_t g) const {
    return g < wgroups_.size() ? wstate_.data() + g * cols
                               : astate_.data() + (g - wgroups_.size()) * cols;
  }
  int lowest() const { return ceil_bits(opt_.min_bits); }
  // No probe and no update at `step`: before start_step or from freeze_step on.
  bool learning_off(int64_t step) const {
    return step < opt_.start_step || (opt_.freeze_step >= 0 && step >= opt_.freeze_step);
  }
  std::vector<quantizer*> quantizers_of(size_t g) const {
    std::vector<quantizer*> out;
    auto& L = net_.layers();
    for (int li : group(g).layers) {
      const qlayer& l = L[static_cast<size_t>(li)];
      if (group(g).weights) {
        out.push_back(l.wq);
      } else {
        out.push_back(l.aq);
        for (act_quantizer* q : l.a_follow) out.push_back(q);
      }
    }
    return out;
  }
  void set_group_bits(size_t g, int b) {
    auto& L = net_.layers();
    for (int li : group(g).layers) {
      qlayer& l = L[static_cast<size_t>(li)];
      if (group(g).weights)
        l.wq->set_bits(b);
      else
        l.set_bits_a(b);
    }
  }
  void update(size_t g, double slope, double period) {
    const int k = bits(g);
    const int lo = k > lowest() ? k - 1 : k, hi = lo + 1;
    const double grad = slope + opt_.lambda * (cost_with(g, hi) - cost_with(g, lo));
    slopes_[g] = slope;
    float* r = row(g);
    const double eta = opt_.lr * period * layer_scale_;
    double n = static_cast<double>(r[n_col]) - eta * grad;
    n = std::min(std::max(n, opt_.min_bits), opt_.max_bits);
    r[n_col] = static_cast<float>(n);
    const int k2 = bits(g);
    if (k2 != k) {
      const float dir = k2 > k ? 1.0f : -1.0f;
      if (static_cast<double>(step_) - static_cast<double>(r[window_col]) >
          static_cast<double>(opt_.osc_window)) {
        r[window_col] = static_cast<float>(step_);
        r[reversals_col] = 0.0f;
      }
      if (r[dir_col] != 0.0f && dir != r[dir_col]) r[reversals_col] += 1.0f;
      r[dir_col] = dir;
      if (opt_.osc_reversals > 0 && r[reversals_col] >= static_cast<float>(opt_.osc_reversals)) {
        r[n_col] = static_cast<float>(std::max(k, k2));
        r[frozen_col] = 1.0f;
      }
      set_group_bits(g, bits(g));
    }
  }
  // The model's buffers (batch-norm running statistics and counters) are
  // saved before a probe forward and restored after it; the list and the
  // snapshot space are made on the first probe and reused.
  void save_buffers() {
    if (buffers_.empty()) {
      for (auto& b : net_.root().named_buffers()) {
        buffers_.push_back(b.second);
        snapshot_.emplace_back(b.second->shape());
      }
    }
    for (size_t i = 0; i < buffers_.size(); ++i) snapshot_[i].view().copy_from(buffers_[i]->view());
  }
  void restore_buffers() {
    for (size_t i = 0; i < buffers_.size(); ++i) buffers_[i]->view().copy_from(snapshot_[i].view());
  }

  qnet& net_;
  adaqat_options opt_;
  std::vector<bit_group> wgroups_, agroups_;
  std::vector<const bit_group*> all_;
  tensor wstate_, astate_;
  std::vector<tensor*> buffers_;
  std::vector<tensor> snapshot_;
  std::vector<double> slopes_;
  double cost_ref_ = 1.0;
  double layer_scale_ = 1.0;
  int64_t step_ = 0;
};

}  // namespace quant
}  // namespace mixq
