// The model file: a module's state dict (parameters and buffers) round-trips
// exactly, and a file that does not match the model is refused by name.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "../common/errors.hpp"
#include "../common/files.hpp"
#include "../common/modules.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/nn/resnet.hpp"
#include "mixq/nn/small_cnn.hpp"

using namespace mixq;
using mixq_test::contains;
using mixq_test::error_of;

namespace {
nn::small_cnn_options tiny(uint64_t seed) {
  nn::small_cnn_options o;
  o.c1 = 2;
  o.c2 = 3;
  o.seed = seed;
  return o;
}
}  // namespace

TEST_CASE("model file: parameters and buffers round-trip bit for bit") {
  mixq_test::temp_dir d;
  nn::small_cnn a(tiny(1)), b(tiny(2));
  a.bn2.running_var[1] = 3.25f;  // a buffer with a value no constructor makes
  a.bn2.num_batches_tracked[0] = 17.0f;
  nn::save_model(d.file("m.mixq"), a, {{"arch", "small_cnn"}});
  nn::load_model(d.file("m.mixq"), b);
  CHECK(mixq_test::state_difference(a, b) == "");
  const io::archive f = io::load_archive(d.file("m.mixq"));
  CHECK(f.meta("kind") == "mixq-model");
  CHECK(f.meta("arch") == "small_cnn");
  CHECK(f.contains("model/bn2.running_var"));
}

TEST_CASE("model file: another architecture, a missing entry or another kind is refused") {
  mixq_test::temp_dir d;
  nn::resnet_options r20, r8;
  r8.n = 1;
  nn::resnet_cifar big(r20), small(r8);
  nn::save_model(d.file("r20.mixq"), big);
  // ResNet8's tensors are a subset of ResNet20's: still refused.
  CHECK(contains(error_of([&] { nn::load_model(d.file("r20.mixq"), small); }),
                 "matches no tensor of this model"));
  nn::save_model(d.file("r8.mixq"), small);
  const std::string msg = error_of([&] { nn::load_model(d.file("r8.mixq"), big); });
  CHECK(contains(msg, d.file("r8.mixq")));
  CHECK(contains(msg, "is missing"));
  io::archive other;
  other.set_meta("kind", "something-else");
  io::save_archive(other, d.file("other.mixq"));
  CHECK(contains(error_of([&] { nn::load_model(d.file("other.mixq"), small); }),
                 "expected 'mixq-model' or 'mixq-checkpoint'"));
}
