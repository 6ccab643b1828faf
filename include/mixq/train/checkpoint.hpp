#pragma once
// Training checkpoints: model state + optimizer state + position + RNG state,
// in one mixq archive (io/archive.hpp), written atomically (temporary file,
// fsync, rename), so a run killed at any moment resumes from its last
// complete checkpoint.
//
// Entries: "model/<name>" for every state-dict tensor (parameters and
// buffers), "optim/<param>/momentum" per SGD buffer, "rng/<name>" (two u64
// words as i64). Metadata: "kind" = "mixq-checkpoint", "epoch" (epochs
// completed), "optim_steps" (optimizer steps so far), plus whatever
// the caller puts in `extra` (the trainer stores its configuration so a resume
// with different flags is refused, see examples/train_cifar10).
//
// Bit-identical resume: the data loader's randomness is a pure function of
// (seed, epoch, index) (io/rng.hpp), learning-rate schedules are pure
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
#include "mixq/nn/module.hpp"
#include "mixq/optim/sgd.hpp"

namespace mixq::optim {

struct checkpoint_state {
  int64_t epoch = 0;  // epochs completed
  std::map<std::string, rng::state_type> rngs;
  std::map<std::string, std::string> extra;  // free-form metadata
};

namespace detail {
inline std::vector<int64_t> dims_of(const tensor& t) {
  std::vector<int64_t> d;
  for (int i = 0; i < t.shape().rank(); ++i) d.push_back(t.shape()[i]);
  return d;
}
}  // namespace detail

// Model tensors only (parameters and buffers), e.g. a trained FP32 model.
inline void add_model(io::archive& a, nn::module& m) {
  for (auto& e : m.state_dict())
    a.add("model/" + e.first, detail::dims_of(e.second), e.second.data());
}

inline void read_model(const io::archive& a, nn::module& m) {
  const std::string src = a.source().empty() ? std::string("(in memory)") : a.source();
  nn::state_dict sd = m.state_dict();  // right names and shapes; values replaced below
  for (auto& e : sd) {
    const std::string key = "model/" + e.first;
    const io::archive_entry* ent = a.find(key);
    MIXQ_CHECK(ent != nullptr, src, ": entry '", key, "' is missing (expected shape ",
               e.second.shape(), ")");
    MIXQ_CHECK(ent->type == io::dtype::f32 && ent->numel() == e.second.numel() &&
                   ent->shape == detail::dims_of(e.second),
               src, ": entry '", key, "' has shape ", io::shape_string(ent->shape), " (",
               io::dtype_name(ent->type), "), expected ", e.second.shape(), " (f32)");
    std::vector<float> v = ent->to_vector<float>();
    std::copy(v.begin(), v.end(), e.second.data());
  }
  m.load_state_dict(sd);
}

inline void save_model(const std::string& path, nn::module& m,
                       const std::map<std::string, std::string>& meta = {}) {
  io::archive a;
  a.set_meta("kind", "mixq-model");
  for (auto& kv : meta) a.set_meta(kv.first, kv.second);
  add_model(a, m);
  io::save_archive(a, path);
}

inline void load_model(const std::string& path, nn::module& m) {
  io::archive a = io::load_archive(path);
  read_model(a, m);
}

inline void save_checkpoint(const std::string& path, nn::module& m, const sgd& opt,
                            const checkpoint_state& st) {
  io::archive a;
  a.set_meta("kind", "mixq-checkpoint");
  a.set_meta_int("epoch", st.epoch);
  a.set_meta_int("optim_steps", opt.steps());
  for (auto& kv : st.extra) a.set_meta("extra/" + kv.first, kv.second);
  add_model(a, m);
  for (auto& e : opt.state())
    a.add("optim/" + e.first + "/momentum", detail::dims_of(*e.second), e.second->data());
  for (auto& kv : st.rngs) {
    std::vector<int64_t> words{static_cast<int64_t>(kv.second.state),
                               static_cast<int64_t>(kv.second.inc)};
    a.add("rng/" + kv.first, words);
  }
  io::save_archive(a, path);
}

// Restores model and optimizer; returns the position and RNG states.
inline checkpoint_state load_checkpoint(const std::string& path, nn::module& m, sgd& opt) {
  io::archive a = io::load_archive(path);
  MIXQ_CHECK(a.has_meta("kind") && a.meta("kind") == "mixq-checkpoint", path,
             ": metadata 'kind' is '", a.has_meta("kind") ? a.meta("kind") : std::string("(none)"),
             "', expected 'mixq-checkpoint'");
  checkpoint_state st;
  st.epoch = a.meta_int("epoch");
  read_model(a, m);
  for (auto& e : opt.state()) {
    const std::string key = "optim/" + e.first + "/momentum";
    const io::archive_entry* ent = a.find(key);
    MIXQ_CHECK(ent != nullptr, path, ": entry '", key, "' is missing");
    std::vector<float> v = ent->to_vector<float>();
    opt.load_buffer(e.first, v.data(), static_cast<int64_t>(v.size()));
  }
  opt.set_steps(a.meta_int("optim_steps"));
  for (const auto& ent : a.entries()) {
    if (ent.name.rfind("rng/", 0) != 0) continue;
    std::vector<int64_t> w = ent.to_vector<int64_t>();
    MIXQ_CHECK(w.size() == 2, path, ": entry '", ent.name, "' has ", w.size(),
               " words, expected 2");
    st.rngs[ent.name.substr(4)] =
        rng::state_type{static_cast<uint64_t>(w[0]), static_cast<uint64_t>(w[1])};
  }
  for (const auto& kv : a.metadata())
    if (kv.first.rfind("extra/", 0) == 0) st.extra[kv.first.substr(6)] = kv.second;
  return st;
}

}  // namespace mixq::optim
