#pragma once
// --init for the CIFAR-10 examples. Two kinds of file:
//  - an FP32 model file of the run's architecture, loaded before any
//    quantizer exists (load_fp32_init);
//  - for a quantized run, a quantized model file (a fixed-bit or AdaQAT run's
//    model.mixq) of the same architecture and quantizer families, loaded after
//    quantize() (load_quantized_init): weights, batch norm and quantizer
//    parameters come from the file, every layer keeps the run's bits, and the
//    LSQ steps are either kept (a step learned at b_s bits acts at b bits as
//    s (2^b_s - 1) / (2^b - 1), the same clipping span: lsq.hpp) or
//    initialised again from the data. This is progressive quantization: a
//    2-bit run that starts from the 4-bit model instead of the FP32 one.
// A file of another depth, or of the wrong kind for the run, is refused
// naming the file and what the run expects.
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/io/archive.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/quant/lsq.hpp"
#include "mixq/quant/model_file.hpp"
#include "mixq/quant/qnet.hpp"

namespace mixq {
namespace examples {

namespace detail {
inline void check_init_arch(const io::archive& a, const std::string& path, long long depth) {
  const std::string arch = "resnet" + std::to_string(depth);
  MIXQ_CHECK(!a.has_meta("arch") || a.meta("arch") == arch, path, ": a model of '", a.meta("arch"),
             "', but this run trains '", arch, "' (--depth ", depth, ")");
}
}  // namespace detail

/// True when the model file at `path` holds a quantized model (its metadata
/// carries a quantizer configuration).
inline bool is_quantized_model_file(const std::string& path) {
  return io::load_archive(path).has_meta("quant/weights");
}

/// Loads the FP32 model file `path` into `model`, a ResNet of `depth` ("resnet<depth>");
/// `flag` names the option that gave the file in the errors (--init, --distill).
/// Returns the file's archive, for callers that read more of its metadata.
/// throws: mixq::error when the file's arch or method is not the run's.
template <class Model>
io::archive load_fp32_init(const std::string& path, Model& model, long long depth,
                           const char* flag = "--init") {
  io::archive a = io::load_archive(path);
  detail::check_init_arch(a, path, depth);
  MIXQ_CHECK(!a.has_meta("method") || a.meta("method") == "fp32", path,
             ": a model trained with method '", a.meta("method"), "'; ", flag,
             " takes an FP32 model file");
  MIXQ_CHECK(!a.has_meta("quant/weights"), path, ": a quantized model; ", flag,
             " takes an FP32 model file here");
  nn::read_model(a, path, model);
  return a;
}

/// Loads the quantized model file `path` into `model`, already quantized with
/// `run` (its quantizers indexed by `net`): same depth, weight and activation
/// families and per-channel choice as the file. Every quantizer keeps the bits
/// it had before; with keep_steps false every quantizer forgets its range
/// (quantizer::reset_range: LSQ steps, PACT clips), which the next forward
/// sets again as a fresh run would (LSQ by run.lsq_init).
/// throws: mixq::error naming the file and the field that differs.
template <class Model>
void load_quantized_init(const std::string& path, Model& model, const quant::qnet& net,
                         const quant::qat_config& run, long long depth, bool keep_steps) {
  const io::archive a = io::load_archive(path);
  detail::check_init_arch(a, path, depth);
  const quant::qat_config fc = quant::config_from_meta(a);
  MIXQ_CHECK(fc.weights == run.weights, path, ": weights quantized with ",
             quant::name_of(fc.weights), ", but this run uses ", quant::name_of(run.weights),
             " (--wq)");
  MIXQ_CHECK(fc.acts == run.acts, path, ": activations quantized with ", quant::name_of(fc.acts),
             ", but this run uses ", quant::name_of(run.acts), " (--aq)");
  MIXQ_CHECK(fc.per_channel == run.per_channel, path, ": weight steps ",
             fc.per_channel ? "per channel" : "per tensor", ", but this run uses ",
             run.per_channel ? "per channel (--per-channel)" : "per tensor (no --per-channel)");
  MIXQ_CHECK(fc.first == run.first && fc.last == run.last, path, ": first/last layers ",
             quant::name_of(fc.first), "/", quant::name_of(fc.last), ", but this run uses ",
             quant::name_of(run.first), "/", quant::name_of(run.last), " (--first/--last)");
  auto stream = [](int r) {
    return r == 0 ? std::string("the activation bits") : std::to_string(r) + " bits";
  };
  MIXQ_CHECK(fc.residual_bits == run.residual_bits, path, ": residual stream at ",
             stream(fc.residual_bits), ", but this run uses ", stream(run.residual_bits),
             " (--residual-bits)");
  const std::vector<quant::quantizer*> qs = net.quantizers();
  std::vector<int> bits;
  for (const quant::quantizer* q : qs) bits.push_back(q->bits());
  nn::load_model(path, model);
  for (size_t i = 0; i < qs.size(); ++i) {
    qs[i]->set_bits(bits[i]);
    if (!keep_steps) qs[i]->reset_range();
  }
}

}  // namespace examples
}  // namespace mixq
