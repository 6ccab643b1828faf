#pragma once
// The held-out split a model file records, for the CIFAR-10 examples.
//
// mixq_multiquant_cifar10 scores its search on a held-out split of the
// training set (io::split_validation(train, N, seed)), which the supernet
// never trains on. Its weights, though, start from an FP32 model: when that
// model trained on the same images, the "held-out" accuracy measures what it
// memorised as much as how a configuration generalises. mixq_train_cifar10
// --hold-out N leaves the same split out of its training and writes it into
// the model file as
//   held_out       N, the number of held-out images (absent or 0: none)
//   held_out_seed  the seed of the split (the run's --seed)
//   held_out_of    the number of training images it was drawn from (50,000,
//                  or the run's --train-subset): another pool, another split
// and a supernet records whether its fitness images were unseen by its
// start ("held_out_unseen" = 1 or 0; absent: not known, files before it).
#include <cstdlib>
#include <map>
#include <string>

#include "mixq/error.hpp"
#include "mixq/io/archive.hpp"

namespace mixq {
namespace examples {

struct held_out_split {
  long long images = 0;         // 0: the model trained on every training image
  unsigned long long seed = 0;  // io::split_validation's seed
  long long pool = 0;           // the training images it was drawn from
  bool operator==(const held_out_split& o) const {
    return images == o.images && seed == o.seed && pool == o.pool;
  }
};

/// Adds the metadata recording split `h` to meta (nothing for images == 0).
inline void add_held_out_meta(std::map<std::string, std::string>& meta, const held_out_split& h) {
  if (h.images <= 0) return;
  meta["held_out"] = std::to_string(h.images);
  meta["held_out_seed"] = std::to_string(h.seed);
  meta["held_out_of"] = std::to_string(h.pool);
}

/// The split a model file's metadata records ({0, 0, 0} when it has none).
/// throws: mixq::error naming `source` and the field when a value is not a
/// non-negative integer, or the seed or the pool is missing.
inline held_out_split read_held_out(const io::archive& a, const std::string& source) {
  held_out_split h;
  if (!a.has_meta("held_out")) return h;
  auto number = [&](const char* key) {
    MIXQ_CHECK(a.has_meta(key), source, ": metadata 'held_out' without '", key, "'");
    const std::string& s = a.meta(key);
    char* end = nullptr;
    const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    MIXQ_CHECK(!s.empty() && s[0] != '-' && end && *end == '\0', source, ": metadata '", key,
               "' is '", s, "', expected a non-negative integer");
    return v;
  };
  h.images = static_cast<long long>(number("held_out"));
  h.seed = number("held_out_seed");
  h.pool = static_cast<long long>(number("held_out_of"));
  return h;
}

}  // namespace examples
}  // namespace mixq
