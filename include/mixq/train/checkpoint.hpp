#pragma once
// Training checkpoints: model state + optimizer state + position + RNG states
// + the training method's own state, in one mixq archive (io/archive.hpp),
// written atomically (temporary file, fsync, rename), so a run killed at any
// moment resumes from its last complete checkpoint.
//
// Entries:
//   "model/<name>"            every state-dict tensor: parameters and buffers
//                             (batch-norm running statistics, a quantizer's
//                             learned state), f32 (nn/model_file.hpp)
//   "optim/<param>/momentum"  one SGD momentum buffer per parameter, f32
//   "rng/<name>"              two i64 words (rng::state_type state, inc)
// Metadata (strings):
//   "kind"         "mixq-checkpoint"
//   "epoch"        epochs completed
//   "optim_steps"  optimizer steps so far
//   "method"       the training method ("fp32", "qat", ...); files written
//                  before methods existed have none and read as "fp32"
//   "method/<key>" the method's own state (train::method_hooks::save_state)
//   "extra/<key>"  the caller's entries (the trainer stores "config", its
//                  configuration tag, so a resume with other flags is refused)
//
// Bit-identical resume: the data loader's randomness is a pure function of
// (seed, epoch, index) (io/batch_loader.hpp), learning-rate schedules are pure
// functions of the step, and the model's RNG is used only at construction
// (any RNG a caller does draw from during training goes into `rngs`), so
// "N epochs straight" and "k epochs, resume, N-k epochs" run the same float
// operations in the same order.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/core/rng.hpp"
#include "mixq/io/archive.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/nn/module.hpp"
#include "mixq/optim/sgd.hpp"

namespace mixq::train {

struct checkpoint_state {
  int64_t epoch = 0;            // epochs completed
  std::string method = "fp32";  // the training method that wrote the checkpoint
  std::map<std::string, rng::state_type> rngs;
  std::map<std::string, std::string> method_state;  // "method/<key>"
  std::map<std::string, std::string> extra;         // "extra/<key>", free-form
};

inline void save_checkpoint(const std::string& path, nn::module& m, const optim::sgd& opt,
                            const checkpoint_state& st) {
  io::archive a;
  a.set_meta("kind", "mixq-checkpoint");
  a.set_meta_int("epoch", st.epoch);
  a.set_meta_int("optim_steps", opt.steps());
  a.set_meta("method", st.method);
  for (auto& kv : st.method_state) a.set_meta("method/" + kv.first, kv.second);
  for (auto& kv : st.extra) a.set_meta("extra/" + kv.first, kv.second);
  nn::add_state(a, m);
  for (auto& e : opt.state())
    a.add("optim/" + e.first + "/momentum", nn::detail::dims_of(*e.second), e.second->data());
  for (auto& kv : st.rngs) {
    std::vector<int64_t> words{static_cast<int64_t>(kv.second.state),
                               static_cast<int64_t>(kv.second.inc)};
    a.add("rng/" + kv.first, words);
  }
  io::save_archive(a, path);
}

// The metadata of a checkpoint (kind checked; epoch, method, method_state,
// extra), without touching a model: a caller can refuse a checkpoint of
// another method or configuration before restoring anything.
// throws: mixq::error for another kind, or an epoch that is not an integer >= 0.
inline checkpoint_state checkpoint_info(const io::archive& a) {
  const std::string& path = a.source();
  MIXQ_CHECK(a.has_meta("kind") && a.meta("kind") == "mixq-checkpoint", path,
             ": metadata 'kind' is '", a.has_meta("kind") ? a.meta("kind") : std::string("(none)"),
             "', expected 'mixq-checkpoint'");
  checkpoint_state st;
  st.epoch = a.meta_int("epoch");
  MIXQ_CHECK(st.epoch >= 0, path, ": metadata 'epoch' = ", st.epoch, ", expected >= 0");
  if (a.has_meta("method")) st.method = a.meta("method");
  for (const auto& kv : a.metadata()) {
    if (kv.first.rfind("extra/", 0) == 0) st.extra[kv.first.substr(6)] = kv.second;
    if (kv.first.rfind("method/", 0) == 0) st.method_state[kv.first.substr(7)] = kv.second;
  }
  return st;
}

// Restores model and optimizer from a loaded checkpoint; returns its
// position, method and RNG states. Every entry is checked before anything
// changes: the model tensors (nn::read_state: all of them, nothing else under
// "model/"), one f32 momentum buffer of the parameter's shape per optimizer
// parameter, "rng/<name>" as i64[2], and no other entry; "optim_steps" must
// be an integer >= 0.
// ensures: on throw, m and opt are unchanged.
// throws:  mixq::error naming the file and the entry or key that is missing,
//          unexpected, corrupt or of another shape.
inline checkpoint_state restore_checkpoint(const io::archive& a, nn::module& m, optim::sgd& opt) {
  const std::string& path = a.source();
  checkpoint_state st = checkpoint_info(a);
  const int64_t steps = a.meta_int("optim_steps");
  MIXQ_CHECK(steps >= 0, path, ": metadata 'optim_steps' = ", steps, ", expected >= 0");
  std::map<std::string, const tensor*> momentum;  // entry name -> buffer
  for (auto& e : opt.state()) momentum["optim/" + e.first + "/momentum"] = e.second;
  for (const auto& ent : a.entries()) {
    if (ent.name.rfind("model/", 0) == 0) continue;  // nn::read_state checks these
    if (ent.name.rfind("rng/", 0) == 0) {
      MIXQ_CHECK(ent.type == io::dtype::i64 && ent.shape == std::vector<int64_t>{2}, path,
                 ": entry '", ent.name, "' is ", io::dtype_name(ent.type),
                 io::shape_string(ent.shape), ", expected i64[2]");
      const std::vector<int64_t> w = ent.to_vector<int64_t>();
      st.rngs[ent.name.substr(4)] =
          rng::state_type{static_cast<uint64_t>(w[0]), static_cast<uint64_t>(w[1])};
      continue;
    }
    const auto it = momentum.find(ent.name);
    MIXQ_CHECK(it != momentum.end(), path, ": unexpected entry '", ent.name,
               "' (not a tensor of this model or optimizer)");
    MIXQ_CHECK(ent.type == io::dtype::f32 && ent.shape == nn::detail::dims_of(*it->second), path,
               ": entry '", ent.name, "' has shape ", io::shape_string(ent.shape), " (",
               io::dtype_name(ent.type), "), expected ", it->second->shape(), " (f32)");
  }
  std::vector<std::pair<std::string, std::vector<float>>> buffers;
  for (auto& e : opt.state()) {
    const std::string key = "optim/" + e.first + "/momentum";
    const io::archive_entry* ent = a.find(key);
    MIXQ_CHECK(ent != nullptr, path, ": entry '", key, "' is missing");
    buffers.emplace_back(e.first, ent->to_vector<float>());
  }
  nn::read_state(a, m);  // checks every model tensor, then changes m
  for (auto& b : buffers)
    opt.load_buffer(b.first, b.second.data(), static_cast<int64_t>(b.second.size()));
  opt.set_steps(steps);
  return st;
}

// load_archive(path), then restore_checkpoint.
inline checkpoint_state load_checkpoint(const std::string& path, nn::module& m, optim::sgd& opt) {
  return restore_checkpoint(io::load_archive(path), m, opt);
}

}  // namespace mixq::train
