#pragma once
// The model file: a module's state dict (parameters and buffers) in one mixq
// archive, and the two halves of that (add_state / read_state) that
// checkpoints reuse.
//
// Layering rule: nn may include io/archive.hpp (the file format, which knows
// only bytes, names and shapes) and nothing else from io. Data sets, loaders
// and the training loop's files stay above nn, in train/.
//
// Entries: "<prefix><state-dict name>" as f32 with the tensor's shape, in
// state-dict order; the default prefix is "model/". A model file carries
// metadata "kind" = "mixq-model" plus whatever the caller adds (e.g. "arch").
// Reading is strict: every state-dict tensor must be present with its shape,
// and an entry under the prefix that the module does not have is an error
// (loading ResNet20's file into ResNet8 must fail, not load a part of it),
// and the module is unchanged after a refusal. load_model checks the kind
// (a model file or a training checkpoint, whose model part it reads) and any
// metadata the caller expects (its architecture, say).
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/io/archive.hpp"
#include "mixq/nn/module.hpp"

namespace mixq::nn {

namespace detail {
inline std::vector<int64_t> dims_of(const tensor& t) {
  std::vector<int64_t> d;
  for (int i = 0; i < t.shape().rank(); ++i) d.push_back(t.shape()[i]);
  return d;
}
}  // namespace detail

// Adds every state-dict tensor of m as an f32 entry "<prefix><name>".
inline void add_state(io::archive& a, module& m, const std::string& prefix = "model/") {
  for (auto& e : m.state_dict())
    a.add(prefix + e.first, detail::dims_of(e.second), e.second.data());
}

// Loads m's state dict from the entries "<prefix><name>".
// throws: mixq::error naming the archive's file and the entry when an entry
//         is missing, has another shape or dtype, or matches no tensor of m.
inline void read_state(const io::archive& a, module& m, const std::string& prefix = "model/") {
  const std::string src = a.source().empty() ? std::string("(in memory)") : a.source();
  state_dict sd = m.state_dict();  // right names and shapes; values replaced below
  const std::string arch =
      a.has_meta("arch") ? std::string(" the file's arch is '") + a.meta("arch") + "'" : "";
  std::set<std::string> known;
  for (auto& e : sd) {
    const std::string key = prefix + e.first;
    known.insert(key);
    const io::archive_entry* ent = a.find(key);
    MIXQ_CHECK(ent != nullptr, src, ": entry '", key, "' is missing (expected shape ",
               e.second.shape(), "; another architecture?", arch, ")");
    MIXQ_CHECK(ent->type == io::dtype::f32 && ent->numel() == e.second.numel() &&
                   ent->shape == detail::dims_of(e.second),
               src, ": entry '", key, "' has shape ", io::shape_string(ent->shape), " (",
               io::dtype_name(ent->type), "), expected ", e.second.shape(), " (f32)");
    std::vector<float> v = ent->to_vector<float>();
    std::copy(v.begin(), v.end(), e.second.data());
  }
  for (const auto& ent : a.entries())
    MIXQ_CHECK(ent.name.rfind(prefix, 0) != 0 || known.count(ent.name) != 0, src, ": entry '",
               ent.name, "' matches no tensor of this model (another architecture?", arch, ")");
  m.load_state_dict(sd);
}

// Writes m's state dict to `path` (atomically, see io/archive.hpp).
inline void save_model(const std::string& path, module& m,
                       const std::map<std::string, std::string>& meta = {}) {
  io::archive a;
  a.set_meta("kind", "mixq-model");
  for (auto& kv : meta) a.set_meta(kv.first, kv.second);
  add_state(a, m);
  io::save_archive(a, path);
}

// Reads a model file (or the model part of a training checkpoint) into m.
// requires: every (key, value) of `expect` is in the file's metadata, e.g.
//           {{"arch", "resnet20"}} (what save_model's `meta` recorded).
// ensures:  on throw, m is unchanged.
// throws:   mixq::error naming the file: unreadable, corrupt, another kind of
//           archive, other metadata than `expect`, or tensors that do not
//           match m (see read_state).
inline void read_model(const io::archive& a, const std::string& path, module& m,
                       const std::map<std::string, std::string>& expect = {});

inline void load_model(const std::string& path, module& m,
                       const std::map<std::string, std::string>& expect = {}) {
  read_model(io::load_archive(path), path, m, expect);
}

// As load_model, from the archive `a` already read from `path` (named in the
// errors): for callers that also read the file's metadata.
inline void read_model(const io::archive& a, const std::string& path, module& m,
                       const std::map<std::string, std::string>& expect) {
  const std::string kind = a.has_meta("kind") ? a.meta("kind") : std::string("(none)");
  MIXQ_CHECK(kind == "mixq-model" || kind == "mixq-checkpoint", path, ": metadata 'kind' is '",
             kind, "', expected 'mixq-model' or 'mixq-checkpoint'");
  for (const auto& kv : expect) {
    const std::string have = a.has_meta(kv.first) ? a.meta(kv.first) : std::string("(none)");
    MIXQ_CHECK(have == kv.second, path, ": metadata '", kv.first, "' is '", have, "', expected '",
               kv.second, "'");
  }
  read_state(a, m);
}

}  // namespace mixq::nn
