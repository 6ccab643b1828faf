#pragma once
// The training method "multiquant" as train::method_hooks: LRH co-training of
// a supernet (quant/multiquant/lrh.hpp) run by train::fit with its
// checkpoints and resume. The glue between the quantization layer and the
// training loop, which know nothing of each other.
//
//   param_groups   the model's weights as usual; quantizer parameters (every
//                  per-bit LSQ step or PACT clip) in their own groups at
//                  quant_lr_scale: LSQ steps without weight decay; the decayed
//                  ones (PACT clips, LSQ steps under --quant-decay) with the
//                  optimizer's decay where they do not switch, and, where they
//                  are a switchable quantizer's per-bit child, in a group
//                  without it: train_step adds their decay
//   train_step     lrh_trainer::step (every slice's forward and backward; the
//                  gradients accumulate, fit takes one optimizer step), then
//                  weight decay (wd * value into the gradient) for the decayed
//                  per-bit children whose width a slice of the step used, once
//                  per step, and for no other: an unused child would otherwise
//                  shrink every step while its loss gradient comes only in the
//                  steps that select it (about 1 in 7 for widths 3..7)
//   csv columns    per epoch: mean loss of the highest, random and lowest slice,
//                  accuracy of the highest and lowest slice on the training batches
//   on_epoch_end   sets the evaluation slice (uniform eval_bits) and, with
//                  calibration images, recalibrates its batch norm, so fit's
//                  test evaluation is of that slice
//   load_state     supernet::sync() after a resume (batch-norm routes)
// Everything that changes during training is in the model's state dict (the
// per-bit quantizers, per-bit batch norms, current widths), and the slices of
// a step depend only on the step: a resumed run is bit-identical.
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mixq/quant/multiquant/multiquant.hpp"
#include "mixq/train/method.hpp"

namespace mixq::examples {

struct lrh_method_options {
  double weight_decay = 5e-4;                   // the optimizer's, for decayed quantizer parameters
  double quant_lr_scale = 1.0;                  // learning-rate scale of quantizer parameters
  int eval_bits = 4;                            // the uniform slice fit evaluates after each epoch
  const quant::image_batches* calib = nullptr;  // recalibration before that evaluation
};

// Running sums of the step statistics over an epoch.
struct lrh_epoch_stats {
  double high = 0, random = 0, low = 0;
  int64_t correct_high = 0, correct_low = 0, count = 0, steps = 0;
};

namespace detail {
// f(q) for every switchable quantizer on the supernet's hooks (weights and
// activations), in qnet order.
template <class F>
void for_each_switchable(quant::supernet& s, F f) {
  for (quant::quantizer* q : s.net().quantizers()) {
    if (auto* w = dynamic_cast<quant::switchable_weight*>(q)) f(*w);
    if (auto* a = dynamic_cast<quant::switchable_act*>(q)) f(*a);
  }
}
// Forgets the widths recorded by forwards outside a step.
inline void clear_used_widths(quant::supernet& s) {
  for_each_switchable(s, [](auto& q) { q.clear_used(); });
}
// The decayed parameters of the per-bit children the step used get
// wd * value added to their gradient, once each; every used-width record is
// cleared.
inline void decay_used_children(quant::supernet& s, double wd) {
  for_each_switchable(s, [wd](auto& q) {
    const unsigned used = q.used_widths();
    q.clear_used();
    for (int b = quant::min_bits; b <= quant::max_bits; ++b) {
      if (!(used & (1u << (b - quant::min_bits)))) continue;
      for (parameter* p : q.at(b).parameters()) {
        if (!p->weight_decay) continue;
        float* g = p->grad.data();
        const float* v = p->value.data();
        for (int64_t i = 0; i < p->numel(); ++i) g[i] += static_cast<float>(wd) * v[i];
      }
    }
  });
}
}  // namespace detail

template <class Model>
train::method_hooks lrh_method(Model& model, quant::supernet& s, quant::lrh_trainer& lrh,
                               lrh_epoch_stats& stats, const lrh_method_options& o) {
  train::method_hooks h;
  h.name = "multiquant";
  h.param_groups = [&s, o](std::vector<parameter*> all) {
    std::set<parameter*> quant_params, per_bit;
    for (quant::quantizer* q : s.net().quantizers())
      for (parameter* p : q->parameters()) quant_params.insert(p);
    detail::for_each_switchable(s, [&per_bit](auto& q) {
      for (parameter* p : q.parameters()) per_bit.insert(p);
    });
    std::vector<parameter*> weights, decayed, undecayed;
    for (parameter* p : all) {
      if (!quant_params.count(p))
        weights.push_back(p);
      else
        (p->weight_decay && !per_bit.count(p) ? decayed : undecayed).push_back(p);
    }
    std::vector<optim::param_group> g;
    g.emplace_back(weights);
    if (!decayed.empty()) g.emplace_back(decayed, o.quant_lr_scale, o.weight_decay);
    if (!undecayed.empty()) g.emplace_back(undecayed, o.quant_lr_scale, 0.0);
    return g;
  };
  h.train_step = [&model, &s, &lrh, &stats, o](tape& t, const io::batch& b, int64_t step) {
    detail::clear_used_widths(s);
    const quant::lrh_stats st = lrh.step(
        model, t, tensor_view(const_cast<float*>(b.images.data()), shape{b.n, b.h, b.w, b.c}),
        b.labels.data(), step);
    detail::decay_used_children(s, o.weight_decay);
    stats.high += st.loss_high;
    stats.random += st.loss_random;
    stats.low += st.loss_low;
    stats.correct_high += st.correct_high;
    stats.correct_low += st.correct_low;
    stats.count += st.count;
    ++stats.steps;
    train::step_result r;
    r.loss_sum = st.loss * static_cast<double>(st.count);
    r.correct = st.correct_high;
    r.count = st.count;
    return r;
  };
  h.on_epoch_begin = [&stats](int64_t) { stats = lrh_epoch_stats{}; };
  h.on_epoch_end = [&s, o](int64_t) {
    s.set_uniform(o.eval_bits);
    if (o.calib && !o.calib->images.empty()) quant::recalibrate_batch_norm(s, *o.calib);
  };
  h.csv_columns = {"loss_high", "loss_random", "loss_low", "acc_high", "acc_low", "eval_bits"};
  h.csv_values = [&stats, o]() {
    auto f = [](double v) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6f", v);
      return std::string(buf);
    };
    const double steps = stats.steps ? static_cast<double>(stats.steps) : 1.0;
    const double n = stats.count ? static_cast<double>(stats.count) : 1.0;
    return std::vector<std::string>{f(stats.high / steps),
                                    f(stats.random / steps),
                                    f(stats.low / steps),
                                    f(static_cast<double>(stats.correct_high) / n),
                                    f(static_cast<double>(stats.correct_low) / n),
                                    std::to_string(o.eval_bits)};
  };
  h.load_state = [&s](const std::map<std::string, std::string>&) { s.sync(); };
  return h;
}

}  // namespace mixq::examples
