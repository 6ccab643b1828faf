#pragma once
// --init for the CIFAR-10 examples: an FP32 model file of the run's
// architecture, loaded before any quantizer exists. A file of another depth or
// one trained with a quantized method is refused naming the file and what the
// run expects.
#include <string>

#include "mixq/error.hpp"
#include "mixq/io/archive.hpp"
#include "mixq/nn/model_file.hpp"

namespace mixq {
namespace examples {

/// Loads the FP32 model file `path` into `model`, a ResNet of `depth` ("resnet<depth>").
/// throws: mixq::error when the file's arch or method is not the run's.
template <class Model>
void load_fp32_init(const std::string& path, Model& model, long long depth) {
  const std::string arch = "resnet" + std::to_string(depth);
  const io::archive a = io::load_archive(path);
  MIXQ_CHECK(!a.has_meta("arch") || a.meta("arch") == arch, path, ": a model of '", a.meta("arch"),
             "', but this run trains '", arch, "' (--depth ", depth, ")");
  MIXQ_CHECK(!a.has_meta("method") || a.meta("method") == "fp32", path,
             ": a model trained with method '", a.meta("method"),
             "'; --init takes an FP32 model file");
  nn::load_model(path, model);
}

}  // namespace examples
}  // namespace mixq
