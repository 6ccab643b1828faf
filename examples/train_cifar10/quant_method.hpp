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
//   evaluate      with integer_eval: the model is exported and the test set
//                 run on the integer runtime (deploy/verify.hpp), so the test
//                 accuracy and loss in metrics.csv and the report are those
//                 of what ships; the fake-quant model's accuracy and the
//                 share of images both classify alike are extra columns
//   csv columns   cost and bits per layer, and every learned bit-width
//   save_state    the quantized model's description (quant/model_file.hpp:
//                 arch and qat_config), so a checkpoint can be exported
//   load_state    re-applies ceil(N) to the quantizers after a resume
// Everything that changes during training (quantizer parameters, bits, the
// controller's state) is in the model's state dict.
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mixq/deploy/verify.hpp"
#include "mixq/quant/model_file.hpp"
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

struct quant_method_options {
  float label_smoothing = 0.0f;
  double weight_decay = 0.0;
  double quant_lr_scale = 1.0;
  bool integer_eval = false;  // evaluate the exported integer model
  int eval_threads = 1;       // runtime threads for integer_eval
  // Knowledge distillation: an FP32 teacher (eval mode, not trained) whose
  // softmax on each batch is the soft target, with weight distill_weight.
  nn::resnet_cifar* teacher = nullptr;
  float distill_weight = 0.5f;
};

// The teacher's class probabilities on each batch, computed without gradients
// on a tape of its own, kept across steps so that its arena is allocated once.
struct teacher_targets {
  explicit teacher_targets(nn::resnet_cifar& m) : teacher(m) {}
  nn::resnet_cifar& teacher;
  tape t;
  std::vector<float> probs;  // [N][K] of the last batch
  const float* on(const tensor_view& images) {
    t.clear();
    no_grad_guard ng(t);
    var lg = teacher.forward(t, t.input(images));
    const int64_t n = lg.shape()[0], k = lg.shape()[1];
    probs.resize(static_cast<size_t>(n * k));
    for (int64_t i = 0; i < n; ++i) softmax_row(lg.value().data() + i * k, probs.data() + i * k, k);
    return probs.data();
  }
};

inline train::method_hooks quant_method(nn::resnet_cifar& model, quant::qnet& net,
                                        const quant::qat_config& qc, quant::adaqat* ctl,
                                        const quant_method_options& mo) {
  const float label_smoothing = mo.label_smoothing;
  const double weight_decay = mo.weight_decay, quant_lr_scale = mo.quant_lr_scale;
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
  std::shared_ptr<teacher_targets> soft;
  if (mo.teacher) soft = std::make_shared<teacher_targets>(*mo.teacher);
  h.train_step = [&model, ctl, label_smoothing, soft, w = mo.distill_weight](
                     tape& t, const io::batch& b, int64_t step) {
    const tensor_view images(const_cast<float*>(b.images.data()), shape{b.n, b.h, b.w, b.c});
    const quant::step_stats s =
        quant::qat_train_step(model, t, images, b.labels.data(), label_smoothing, ctl, step,
                              soft ? soft->on(images) : nullptr, w);
    train::step_result r;
    r.loss_sum = s.loss * static_cast<double>(s.count);
    r.correct = s.correct;
    r.count = s.count;
    return r;
  };
  h.csv_columns = quant::bits_csv_columns(net, ctl);
  auto last = std::make_shared<deploy::agreement>();
  if (mo.integer_eval) {
    h.csv_columns.insert(h.csv_columns.begin(), {"float_test_acc", "agreement"});
    h.evaluate = [&model, last, threads = mo.eval_threads](const io::image_dataset& ds) {
      deploy::runtime_options o;
      o.max_batch = 128;
      o.threads = threads;
      *last = deploy::compare_with_runtime(model, ds, {}, o);
      return std::make_pair(last->integer.loss, last->integer.accuracy());
    };
  }
  h.csv_values = [&net, ctl, last, integer = mo.integer_eval]() {
    std::vector<std::string> v;
    if (integer) {
      char buf[2][32];
      std::snprintf(buf[0], sizeof buf[0], "%.6f", last->float_accuracy());
      std::snprintf(buf[1], sizeof buf[1], "%.6f", last->rate());
      v = {buf[0], buf[1]};
    }
    const std::vector<std::string> b = quant::bits_csv_values(net, ctl);
    v.insert(v.end(), b.begin(), b.end());
    return v;
  };
  const std::map<std::string, std::string> meta = quant::model_meta(model, qc);
  h.save_state = [meta](std::map<std::string, std::string>& st) {
    for (const auto& kv : meta) st[kv.first] = kv.second;
  };
  h.load_state = [ctl](const std::map<std::string, std::string>&) {
    if (ctl) ctl->apply_bits();
  };
  return h;
}

}  // namespace mixq::examples
