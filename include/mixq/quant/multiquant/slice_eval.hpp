#pragma once
// Evaluating one slice of a supernet: batch-norm recalibration on a few
// hundred training images, then accuracy on a held-out set
// (docs/multiquant.md section 4).
//
// Batch norm is shared by every slice (or routed per weight width), and its
// running statistics after training are a mix over the slices trained last,
// so before a slice is evaluated its statistics are measured again: every
// batch norm's running mean and variance are reset (0 and 1), then the
// calibration batches run forward in training mode without gradients with
// momentum 1/(k+1) at batch k, i.e. a cumulative average of the batch
// statistics (the digest's choice D "BN recalibration"; EQ-Net's
// Adaptive_BN keeps the old statistics and an EMA). The parameters, the
// momentum and num_batches_tracked are as before; only the running
// statistics of the active batch norms change.
//
// image_batches holds data sets converted once into normalised float batches
// (no augmentation), so the many evaluations of a search convert nothing.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/io/batch_loader.hpp"
#include "mixq/io/dataset.hpp"
#include "mixq/quant/multiquant/supernet.hpp"

namespace mixq {
namespace quant {

struct image_batches {
  std::vector<tensor> images;                // [n, h, w, c] each
  std::vector<std::vector<int32_t>> labels;  // n each
  int64_t count() const {
    int64_t s = 0;
    for (const auto& l : labels) s += static_cast<int64_t>(l.size());
    return s;
  }
};

// The first `max_images` images of ds (0 = all) in batches of `batch`,
// normalised with ds.mean / ds.stddev; with shuffle, a seeded random choice
// (the loader's order for `seed`, epoch 0) instead of the first ones.
inline image_batches make_batches(const io::image_dataset& ds, int64_t max_images, int64_t batch,
                                  bool shuffle = false, uint64_t seed = 1, bool augment = false) {
  MIXQ_CHECK(batch >= 1 && max_images >= 0, "make_batches: batch ", batch, ", images ", max_images);
  io::batch_loader_options o;
  o.batch_size = batch;
  o.shuffle = shuffle;
  o.augment = augment;
  o.seed = seed;
  o.prefetch = 0;
  io::batch_loader ld(ds, o);
  ld.start_epoch(0);
  image_batches out;
  const int64_t want = max_images > 0 && max_images < ds.n ? max_images : ds.n;
  int64_t have = 0;
  io::batch b;
  while (have < want && ld.next(b)) {
    const int64_t n = std::min(b.n, want - have);
    tensor x({n, b.h, b.w, b.c});
    std::copy(b.images.begin(), b.images.begin() + n * b.h * b.w * b.c, x.data());
    out.images.push_back(std::move(x));
    out.labels.emplace_back(b.labels.begin(), b.labels.begin() + n);
    have += n;
  }
  return out;
}

// Every batch norm of a CIFAR ResNet (the stem's, then each block's two),
// as the modules whose state a forward uses now (routes followed).
inline std::vector<nn::batch_norm2d*> active_batch_norms(nn::resnet_cifar& m) {
  std::vector<nn::batch_norm2d*> out{&m.bn1.active()};
  for (int s = 0; s < 3; ++s)
    for (int b = 0; b < m.blocks_per_stage(); ++b) {
      out.push_back(&m.block(s, b).bn1.active());
      out.push_back(&m.block(s, b).bn2.active());
    }
  return out;
}

// Recalibrates the running statistics of the slice the supernet is set to.
// requires: calib holds at least one batch.
inline void recalibrate_batch_norm(supernet& s, const image_batches& calib) {
  MIXQ_CHECK(!calib.images.empty(), "recalibrate_batch_norm: no calibration images");
  nn::resnet_cifar& m = s.model();
  const std::vector<nn::batch_norm2d*> bns = active_batch_norms(m);
  std::vector<float> momentum, tracked;
  for (nn::batch_norm2d* bn : bns) {
    momentum.push_back(bn->momentum());
    tracked.push_back(bn->num_batches_tracked[0]);
    bn->running_mean.fill(0.0f);
    bn->running_var.fill(1.0f);
  }
  const bool was_training = m.is_training();
  m.train();
  tape t;
  for (size_t k = 0; k < calib.images.size(); ++k) {
    for (nn::batch_norm2d* bn : bns) bn->set_momentum(1.0f / static_cast<float>(k + 1));
    t.clear();
    no_grad_guard ng(t);
    m.forward(t, t.input(calib.images[k].view()));
  }
  for (size_t i = 0; i < bns.size(); ++i) {
    bns[i]->set_momentum(momentum[i]);
    bns[i]->num_batches_tracked[0] = tracked[i];
  }
  m.train(was_training);
}

// Top-1 accuracy of the current slice on `eval` (eval mode, no gradients).
inline double slice_accuracy(supernet& s, const image_batches& eval) {
  nn::resnet_cifar& m = s.model();
  const bool was_training = m.is_training();
  m.eval();
  tape t;
  int64_t correct = 0, seen = 0;
  for (size_t k = 0; k < eval.images.size(); ++k) {
    t.clear();
    no_grad_guard ng(t);
    var logits = m.forward(t, t.input(eval.images[k].view()));
    correct += count_correct(logits.value(), eval.labels[k].data());
    seen += static_cast<int64_t>(eval.labels[k].size());
  }
  m.train(was_training);
  return seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0;
}

// set_bits(c), recalibrate on `calib` (skipped when empty), accuracy on `eval`.
inline double evaluate_slice(supernet& s, const bit_config& c, const image_batches& calib,
                             const image_batches& eval) {
  s.set_bits(c);
  if (!calib.images.empty()) recalibrate_batch_norm(s, calib);
  return slice_accuracy(s, eval);
}

// Runs one batch through every uniform slice in training mode without
// gradients, so each per-bit quantizer that initialises from data (LSQ steps,
// PACT clips) does so from the same (FP32) model before training, on the
// activations a fixed-bit QAT run initialises on: its first forward is a
// training step's, batch norm normalising with the batch's own statistics.
// (In eval mode the FP32 running statistics misnormalise a low-bit slice's
// deeper activations and its steps fit the wrong distribution: before any
// training, ResNet20's W2A2 slice 21.8 % against 35.9 %, W4A4 87.6 % against
// 89.1 %; docs/multiquant.md 9.) The batch norms' running statistics are
// restored afterwards; the supernet returns to its configuration.
// The widest slice runs first: the quantizers that do not switch (the 8-bit
// first and last layer's) initialise on the first forward, and must see the
// activations of the slice nearest the FP32 model, not a 2-bit slice's (whose
// features feed the classifier at another scale: initialised there, its
// input grid cost every slice several points).
inline void init_quantizers(supernet& s, const tensor_view& images) {
  nn::resnet_cifar& m = s.model();
  const bit_config keep = s.current();
  const bool was_training = m.is_training();
  std::vector<std::pair<tensor*, tensor>> stats;
  for (auto& e : m.named_buffers()) {
    const std::string leaf = e.first.substr(e.first.rfind('.') + 1);  // npos + 1 = 0
    if (leaf == "running_mean" || leaf == "running_var" || leaf == "num_batches_tracked")
      stats.emplace_back(e.second, *e.second);
  }
  m.train();
  tape t;
  for (int b = max_bits; b >= min_bits; --b) {
    s.set_uniform(b);
    t.clear();
    no_grad_guard ng(t);
    m.forward(t, t.input(images));
  }
  for (auto& st : stats) st.first->view().copy_from(st.second.view());
  m.train(was_training);
  s.set_bits(keep);
}

}  // namespace quant
}  // namespace mixq
