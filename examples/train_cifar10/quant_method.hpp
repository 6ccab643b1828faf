#pragma once
// The training methods "qat" and "adaqat" as train::method_hooks: the glue
// between the quantization layer (mixq/quant) and the training loop
// (mixq/train), which know nothing of each other.
//
//   param_groups  the model's weights as usual; quantizer parameters (LSQ
//                 steps, PACT clips) in their own groups with their own
//                 weight decay (their parameter::weight_decay: steps none,
//                 PACT clips the optimizer's, unless the flags say otherwise)
//                 and learning-rate scale, so --decay-all does not reach them
//   train_step    quant::qat_train_step (AdaQAT's probes around forward and
//                 backward, the bit update before the optimizer step)
//   csv columns   cost and bits per layer, and every learned bit-width
//   load_state    re-applies ceil(N) to the quantizers after a resume
// Everything that changes during training (quantizer parameters, bits, the
// controller's state) is in the model's state dict, so checkpoints need no
// method state of their own.
#include <set>
#include <string>
#include <vector>

#include "mixq/quant/quant.hpp"
#include "mixq/train/method.hpp"

namespace mixq::examples {

// Every parameter owned by a quantizer of `net`.
inline std::vector<parameter*> quantizer_parameters(const quant::qnet& net) {
  std::vector<parameter*> out;
  for (quant::quantizer* q : net.quantizers())
    for (parameter* p : q->parameters()) out.push_back(p);
  return out;
}

template <class Model>
train::method_hooks quant_method(Model& model, quant::qnet& net, quant::adaqat* ctl,
                                 float label_smoothing, double weight_decay,
                                 double quant_lr_scale) {
  train::method_hooks h;
  h.name = ctl ? "adaqat" : "qat";
  h.param_groups = [&net, weight_decay, quant_lr_scale](std::vector<parameter*> all) {
    const std::vector<parameter*> qp = quantizer_parameters(net);
    const std::set<parameter*> qset(qp.begin(), qp.end());
    std::vector<parameter*> weights, decayed, undecayed;
    for (parameter* p : all) {
      if (!qset.count(p))
        weights.push_back(p);
      else
        (p->weight_decay ? decayed : undecayed).push_back(p);
    }
    std::vector<optim::param_group> g;
    g.emplace_back(weights);
    if (!decayed.empty()) g.emplace_back(decayed, quant_lr_scale, weight_decay);
    if (!undecayed.empty()) g.emplace_back(undecayed, quant_lr_scale, 0.0);
    return g;
  };
  h.train_step = [&model, ctl, label_smoothing](tape& t, const io::batch& b, int64_t step) {
    const quant::step_stats s = quant::qat_train_step(
        model, t, tensor_view(const_cast<float*>(b.images.data()), shape{b.n, b.h, b.w, b.c}),
        b.labels.data(), label_smoothing, ctl, step);
    train::step_result r;
    r.loss_sum = s.loss * static_cast<double>(s.count);
    r.correct = s.correct;
    r.count = s.count;
    return r;
  };
  h.csv_columns = quant::bits_csv_columns(net, ctl);
  h.csv_values = [&net, ctl]() { return quant::bits_csv_values(net, ctl); };
  h.load_state = [ctl](const std::map<std::string, std::string>&) {
    if (ctl) ctl->apply_bits();
  };
  return h;
}

}  // namespace mixq::examples
