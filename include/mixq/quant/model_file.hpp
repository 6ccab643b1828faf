#pragma once
// A quantized model file: nn's model file (model_file.hpp) of a ResNet after
// quantize(), with the qat_config in its metadata, so that a program that
// knows nothing of the training run (the exporter, an evaluation) can rebuild
// the same quantized model and load it.
//
// Metadata (strings): "arch" = "resnet<depth>", "quant/weights" (lsq |
// dorefa), "quant/acts" (lsq | pact), "quant/per_channel" (0 | 1),
// "quant/range" (full | symmetric), "quant/first" and "quant/last" (fp32 |
// 8bit | same), "quant/dorefa_scale" (auto | unit | max), "quant/pact_init",
// "quant/pact_percentile", "quant/pact_alpha_decay", "quant/pact_scale_grad",
// "quant/step_decay", "quant/lsq_init" (lsq | mse; optional, lsq when
// absent), "quant/step_band" (LSQ weights' step band, lsq.hpp; optional, 0 =
// off when absent), "quant/residual_bits" (qat_config::residual_bits;
// optional, 0 when absent), "quant/bits_w", "quant/bits_a" (the bits the
// quantizers were built with) and "quant/mean", "quant/stddev" (the input
// normalisation, comma-separated). Every layer's current bits are buffers of
// the state dict, so a model whose bits changed in training (AdaQAT, a
// supernet slice) loads with them.
//
// A training checkpoint of a quantized run holds the same keys under
// "method/" (the training method's checkpoint state, train/method.hpp;
// model_meta() gives them), and both are read. Training-only modules (a
// bit-width controller adopted as "adaqat") are training state, not model:
// save_quantized leaves them out, and load_quantized skips their entries in a
// training checkpoint.
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/io/archive.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/nn/resnet.hpp"
#include "mixq/quant/config.hpp"
#include "mixq/quant/resnet.hpp"

namespace mixq {
namespace quant {

namespace detail {

inline std::string join_floats(const std::vector<float>& v) {
  std::string s;
  char buf[32];
  for (float x : v) {
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(x));
    s += (s.empty() ? "" : ",") + std::string(buf);
  }
  return s;
}

inline std::vector<float> split_floats(const std::string& s, const std::string& src,
                                       const char* key) {
  std::vector<float> v;
  std::size_t i = 0;
  while (i <= s.size() && !s.empty()) {
    const std::size_t j = s.find(',', i);
    const std::string part = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
    char* end = nullptr;
    const double x = std::strtod(part.c_str(), &end);
    MIXQ_CHECK(!part.empty() && end && *end == '\0' && x == x, src, ": metadata '", key, "' is '",
               s, "', expected comma-separated numbers");
    v.push_back(static_cast<float>(x));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return v;
}

inline const char* name_of(dorefa_scale_policy p) {
  return p == dorefa_scale_policy::automatic ? "auto"
                                             : (p == dorefa_scale_policy::unit ? "unit" : "max");
}

// A key, or the same key among a training method's checkpoint state.
inline const std::string* find_meta(const io::archive& a, const std::string& key) {
  if (a.has_meta(key)) return &a.meta(key);
  if (a.has_meta("method/" + key)) return &a.meta("method/" + key);
  return nullptr;
}

// Skipped when reading a checkpoint's model part: modules that only training uses.
inline bool training_only(const std::string& name) { return name.rfind("model/adaqat.", 0) == 0; }

}  // namespace detail

/// The metadata that describes c (see the file comment).
inline std::map<std::string, std::string> config_meta(const qat_config& c) {
  std::map<std::string, std::string> m;
  m["quant/weights"] = name_of(c.weights);
  m["quant/acts"] = name_of(c.acts);
  m["quant/per_channel"] = c.per_channel ? "1" : "0";
  m["quant/range"] = c.range == weight_range::full ? "full" : "symmetric";
  m["quant/first"] = name_of(c.first);
  m["quant/last"] = name_of(c.last);
  m["quant/dorefa_scale"] = detail::name_of(c.dorefa);
  m["quant/pact_init"] = detail::join_floats({c.pact.init});
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", c.pact.percentile);
  m["quant/pact_percentile"] = buf;
  m["quant/pact_alpha_decay"] = c.pact.alpha_decay ? "1" : "0";
  m["quant/pact_scale_grad"] = c.pact.scale_grad ? "1" : "0";
  m["quant/step_decay"] = c.step_decay ? "1" : "0";
  m["quant/lsq_init"] = name_of(c.lsq_init);
  std::snprintf(buf, sizeof buf, "%.17g", c.step_band);
  m["quant/step_band"] = buf;
  m["quant/residual_bits"] = std::to_string(c.residual_bits);
  m["quant/bits_w"] = std::to_string(c.bits_w);
  m["quant/bits_a"] = std::to_string(c.bits_a);
  m["quant/mean"] = detail::join_floats(c.mean);
  m["quant/stddev"] = detail::join_floats(c.stddev);
  return m;
}

/// The qat_config an archive's metadata describes.
/// throws: mixq::error naming the file and the key when a key is missing or
///         holds a value outside its list.
inline qat_config config_from_meta(const io::archive& a) {
  const std::string src = a.source().empty() ? std::string("(in memory)") : a.source();
  auto get = [&](const char* key) {
    const std::string* v = detail::find_meta(a, key);
    MIXQ_CHECK(v != nullptr, src, ": metadata '", key,
               "' is missing (not a quantized model file? FP32 models have no quantizers)");
    return *v;
  };
  auto flag = [&](const char* key) {
    const std::string v = get(key);
    MIXQ_CHECK(v == "0" || v == "1", src, ": metadata '", key, "' is '", v, "', expected 0 or 1");
    return v == "1";
  };
  auto one_of = [&](const char* key, std::initializer_list<const char*> names) {
    const std::string v = get(key);
    std::string list;
    for (const char* n : names) {
      if (v == n) return v;
      list += (list.empty() ? "" : ", ") + std::string(n);
    }
    MIXQ_CHECK(false, src, ": metadata '", key, "' is '", v, "', expected one of ", list);
    return v;
  };
  auto bits = [&](const char* key) {
    const std::string v = get(key);
    MIXQ_CHECK(v.size() == 1 && v[0] >= '2' && v[0] <= '8', src, ": metadata '", key, "' is '", v,
               "', expected 2..8");
    return v[0] - '0';
  };
  qat_config c;
  c.weights = parse_weight_family(one_of("quant/weights", {"lsq", "dorefa"}));
  c.acts = parse_act_family(one_of("quant/acts", {"lsq", "pact"}));
  c.per_channel = flag("quant/per_channel");
  c.range = one_of("quant/range", {"full", "symmetric"}) == "full" ? weight_range::full
                                                                   : weight_range::symmetric;
  c.first = parse_edge_policy(one_of("quant/first", {"fp32", "8bit", "same"}));
  c.last = parse_edge_policy(one_of("quant/last", {"fp32", "8bit", "same"}));
  const std::string ds = one_of("quant/dorefa_scale", {"auto", "unit", "max"});
  c.dorefa = ds == "auto" ? dorefa_scale_policy::automatic
                          : (ds == "unit" ? dorefa_scale_policy::unit : dorefa_scale_policy::max);
  const std::vector<float> pi =
      detail::split_floats(get("quant/pact_init"), src, "quant/pact_init");
  MIXQ_CHECK(pi.size() == 1, src, ": metadata 'quant/pact_init' holds ", pi.size(),
             " numbers, expected 1");
  c.pact.init = pi[0];
  const std::vector<float> pp =
      detail::split_floats(get("quant/pact_percentile"), src, "quant/pact_percentile");
  MIXQ_CHECK(pp.size() == 1 && pp[0] > 0.0f && pp[0] <= 1.0f, src,
             ": metadata 'quant/pact_percentile' is '", get("quant/pact_percentile"),
             "', expected one number in (0, 1]");
  c.pact.percentile = std::strtod(get("quant/pact_percentile").c_str(), nullptr);
  c.pact.alpha_decay = flag("quant/pact_alpha_decay");
  c.pact.scale_grad = flag("quant/pact_scale_grad");
  c.step_decay = flag("quant/step_decay");
  // Optional: files written before the choice existed used LSQ's rule.
  c.lsq_init = detail::find_meta(a, "quant/lsq_init")
                   ? parse_step_init(one_of("quant/lsq_init", {"lsq", "mse"}))
                   : step_init::lsq;
  // Optional: files written before the band existed trained without one.
  c.step_band = 0.0;
  if (detail::find_meta(a, "quant/step_band")) {
    const std::string& text = get("quant/step_band");
    char* end = nullptr;
    const double band = std::strtod(text.c_str(), &end);
    MIXQ_CHECK(!text.empty() && end && *end == '\0' && step_band_valid(band), src,
               ": metadata 'quant/step_band' is '", text, "', expected 0 or one number in [1, ",
               step_band_max, "]");
    c.step_band = band;
  }
  // Optional: files written before the choice existed had no residual stream.
  c.residual_bits = 0;
  if (detail::find_meta(a, "quant/residual_bits")) {
    const std::string v = get("quant/residual_bits");
    MIXQ_CHECK(v == "0" || (v.size() == 1 && v[0] >= '2' && v[0] <= '8'), src,
               ": metadata 'quant/residual_bits' is '", v, "', expected 0 or 2..8");
    c.residual_bits = v[0] - '0';
  }
  c.bits_w = bits("quant/bits_w");
  c.bits_a = bits("quant/bits_a");
  c.mean = detail::split_floats(get("quant/mean"), src, "quant/mean");
  c.stddev = detail::split_floats(get("quant/stddev"), src, "quant/stddev");
  MIXQ_CHECK(c.mean.size() == c.stddev.size(), src, ": metadata 'quant/mean' has ", c.mean.size(),
             " numbers and 'quant/stddev' ", c.stddev.size(), ", expected as many");
  for (float s : c.stddev)
    MIXQ_CHECK(s > 0.0f, src, ": metadata 'quant/stddev' holds ", s, ", expected > 0");
  c.validate();
  return c;
}

/// The metadata of a quantized ResNet m built with c: "arch" and config_meta(c).
/// A training method stores it in its checkpoint state (then under "method/").
inline std::map<std::string, std::string> model_meta(nn::resnet_cifar& m, const qat_config& c) {
  std::map<std::string, std::string> meta = config_meta(c);
  meta["arch"] = "resnet" + std::to_string(6 * m.blocks_per_stage() + 2);
  return meta;
}

/// Writes the quantized model m (quantized with c) to path: its state dict
/// without training-only modules, "arch" and the config's metadata, plus meta.
inline void save_quantized(const std::string& path, nn::resnet_cifar& m, const qat_config& c,
                           const std::map<std::string, std::string>& meta = {}) {
  io::archive a;
  a.set_meta("kind", "mixq-model");
  for (const auto& kv : model_meta(m, c)) a.set_meta(kv.first, kv.second);
  for (const auto& kv : meta) a.set_meta(kv.first, kv.second);
  for (auto& e : m.state_dict()) {
    const std::string key = "model/" + e.first;
    if (detail::training_only(key)) continue;
    a.add(key, nn::detail::dims_of(e.second), e.second.data());
  }
  io::save_archive(a, path);
}

/// A quantized ResNet rebuilt from a file save_quantized wrote, or from a
/// training checkpoint of a quantized run (its model part).
struct loaded_model {
  std::unique_ptr<nn::resnet_cifar> model;
  qnet net;
  qat_config config;
  int depth = 0;
};

/// Reads a quantized model file or checkpoint: the architecture from "arch",
/// the quantizers from the config metadata, then every tensor (strictly: see
/// nn::read_state), the bits of every layer included.
/// throws: mixq::error naming the file and what is wrong.
inline loaded_model load_quantized(const std::string& path, std::int64_t image_h = 32,
                                   std::int64_t image_w = 32) {
  io::archive a = io::load_archive(path);
  const std::string kind = a.has_meta("kind") ? a.meta("kind") : std::string("(none)");
  MIXQ_CHECK(kind == "mixq-model" || kind == "mixq-checkpoint", path, ": metadata 'kind' is '",
             kind, "', expected 'mixq-model' or 'mixq-checkpoint'");
  const std::string* arch_p = detail::find_meta(a, "arch");
  MIXQ_CHECK(arch_p != nullptr, path, ": metadata 'arch' is missing, expected resnet<6n+2>");
  const std::string arch = *arch_p;
  int depth = 0;
  char tail = 0;
  MIXQ_CHECK(std::sscanf(arch.c_str(), "resnet%d%c", &depth, &tail) == 1 && depth >= 8 &&
                 depth <= 1202 && (depth - 2) % 6 == 0,
             path, ": metadata 'arch' is '", arch, "', expected resnet<6n+2> (resnet20, ...)");
  loaded_model r;
  r.depth = depth;
  r.config = config_from_meta(a);
  nn::resnet_options o;
  o.n = (depth - 2) / 6;
  r.model = std::make_unique<nn::resnet_cifar>(o);
  r.net = quantize(*r.model, r.config, image_h, image_w);
  bool skip = false;
  for (const auto& e : a.entries()) skip = skip || detail::training_only(e.name);
  if (!skip) {
    nn::read_state(a, *r.model);
  } else {
    io::archive b;
    b.set_source(a.source());
    for (const auto& kv : a.metadata()) b.set_meta(kv.first, kv.second);
    for (const auto& e : a.entries())
      if (!detail::training_only(e.name)) b.add_entry(e);
    nn::read_state(b, *r.model);
  }
  return r;
}

}  // namespace quant
}  // namespace mixq
