#pragma once
// Running what ships on a data set: the integer runtime's accuracy and loss
// over an io::image_dataset, and its agreement with the fake-quant model it
// was exported from. Like export.hpp this header knows the training side
// (io, nn); the runtime itself never includes it.
//
// The two models see the same images: the runtime reads the uint8 pixels,
// the fake-quant model the loader's normalisation of the same pixels, which
// its input quantizer puts back on the 8-bit grid (quant/input_quant.hpp), so
// any difference comes from the requantization's fixed-point rounding (the
// folded batch-norm multiplier and bias, docs/deploy.md "Export").
#include <cmath>
#include <cstdint>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/deploy/export.hpp"
#include "mixq/deploy/runtime.hpp"
#include "mixq/io/batch_loader.hpp"
#include "mixq/io/dataset.hpp"

namespace mixq {
namespace deploy {

/// What the integer runtime does on a data set.
struct integer_eval {
  std::int64_t images = 0;
  std::int64_t correct = 0;
  double loss = 0;                        ///< mean softmax cross-entropy of the real-valued logits
  std::vector<std::int32_t> predictions;  ///< top-1 class of each image, in order

  double accuracy() const { return images ? double(correct) / double(images) : 0.0; }
};

/// Runs `rt` over every image of ds in batches of rt.max_batch().
/// throws: mixq::error when the data set's image size is not the model's.
inline integer_eval evaluate_integer(runtime& rt, const io::image_dataset& ds) {
  MIXQ_CHECK(rt.input().h == ds.h && rt.input().w == ds.w && rt.input().c == ds.c,
             "evaluate_integer: the model takes ", rt.input().h, "x", rt.input().w, "x",
             rt.input().c, " images, ", ds.name, " holds ", ds.h, "x", ds.w, "x", ds.c);
  integer_eval r;
  r.images = ds.n;
  r.predictions.resize(static_cast<std::size_t>(ds.n));
  const std::int32_t k = rt.classes();
  std::vector<float> logits;
  for (std::int64_t i0 = 0; i0 < ds.n; i0 += rt.max_batch()) {
    const std::int64_t n = ds.n - i0 < rt.max_batch() ? ds.n - i0 : rt.max_batch();
    rt.run(ds.image(i0), n);
    logits.resize(static_cast<std::size_t>(n * k));
    rt.logits_f32(logits.data());
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int32_t label = ds.labels[static_cast<std::size_t>(i0 + i)];
      const std::int32_t p = rt.top1(i);
      r.predictions[static_cast<std::size_t>(i0 + i)] = p;
      r.correct += p == label;
      // log-sum-exp of the row minus the label's logit
      const float* z = logits.data() + i * k;
      double mx = z[0];
      for (std::int32_t c = 1; c < k; ++c) mx = std::fmax(mx, double(z[c]));
      double s = 0;
      for (std::int32_t c = 0; c < k; ++c) s += std::exp(double(z[c]) - mx);
      r.loss += mx + std::log(s) - double(z[label]);
    }
  }
  if (ds.n) r.loss /= double(ds.n);
  return r;
}

/// The same, exporting `m` first (a quantized ResNet, see export_resnet).
inline integer_eval evaluate_integer(nn::resnet_cifar& m, const io::image_dataset& ds,
                                     runtime_options o = {}) {
  runtime rt(export_resnet(m, static_cast<std::int32_t>(ds.h), static_cast<std::int32_t>(ds.w)), o);
  return evaluate_integer(rt, ds);
}

/// Top-1 class of each image under the fake-quant (or any) model in eval mode,
/// normalised as `data` says (empty mean/stddev: the data set's).
template <class Model>
std::vector<std::int32_t> float_predictions(Model& m, const io::image_dataset& ds,
                                            io::batch_loader_options data = {}) {
  data.shuffle = false;
  data.augment = false;
  data.drop_last = false;
  data.prefetch = 0;
  const bool was_training = m.is_training();
  m.eval();
  io::batch_loader ld(ds, data);
  ld.start_epoch(0);
  std::vector<std::int32_t> out(static_cast<std::size_t>(ds.n));
  tape t;
  io::batch b;
  while (ld.next(b)) {
    t.clear();
    no_grad_guard ng(t);
    var logits = m.forward(t, t.input(tensor_view(b.images.data(), shape{b.n, b.h, b.w, b.c})));
    std::vector<std::int32_t> p(static_cast<std::size_t>(b.n));
    argmax_rows(logits.value(), p.data());
    for (std::int64_t i = 0; i < b.n; ++i)
      out[static_cast<std::size_t>(b.indices[static_cast<std::size_t>(i)])] =
          p[static_cast<std::size_t>(i)];
  }
  m.train(was_training);
  return out;
}

/// The integer model against the fake-quant model it came from.
struct agreement {
  std::int64_t images = 0;
  std::int64_t same = 0;           ///< images both models give the same class
  std::int64_t float_correct = 0;  ///< top-1 hits of the fake-quant model
  integer_eval integer;            ///< the runtime's result

  double rate() const { return images ? double(same) / double(images) : 0.0; }
  double float_accuracy() const { return images ? double(float_correct) / double(images) : 0.0; }
};

/// Exports `m`, runs both models over ds and compares their classes.
inline agreement compare_with_runtime(nn::resnet_cifar& m, const io::image_dataset& ds,
                                      const io::batch_loader_options& data = {},
                                      runtime_options o = {}) {
  agreement a;
  const std::vector<std::int32_t> f = float_predictions(m, ds, data);
  a.integer = evaluate_integer(m, ds, o);
  a.images = ds.n;
  for (std::size_t i = 0; i < f.size(); ++i) {
    a.same += f[i] == a.integer.predictions[i];
    a.float_correct += f[i] == ds.labels[i];
  }
  return a;
}

}  // namespace deploy
}  // namespace mixq
