#pragma once
// A runtime for a bundle (bundle.hpp): every configuration is planned and its
// weights packed at load; select() switches between them at run time with no
// file access, no allocation and no packing.
//
// What is shared, and what it costs:
//   packed weights  one packing per distinct (layer geometry, path, weight
//                   codes and bits, input bits); two configurations that give
//                   a layer the same weight width and input width share it
//   arena           one, of the largest any configuration plans (a runtime
//                   runs one batch at a time, so configurations never use it
//                   at once)
//   worker threads  one set
//   per channel     each configuration keeps its own requantization (bias,
//                   multipliers, shifts, offsets, LUT thresholds)
// weight_bytes() counts the distinct packings plus every configuration's
// per-channel parameters; separate_weight_bytes() and separate_arena_bytes()
// are what one runtime per configuration would hold.
//
// Outputs: after select(i), run() computes exactly what runtime(config i)
// computes (tests/deploy/test_bundle.cpp), whatever ran before.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bundle.hpp"
#include "runtime.hpp"
#include "tune.hpp"

namespace mixq {
namespace deploy {

class switchable_runtime {
 public:
  /// Plans every configuration; with `tune`, each by measurement (tune.hpp:
  /// its own choice of the bit-plane path, reported by tune_reports()).
  /// throws: mixq::error as runtime's constructor, naming the configuration,
  /// and as check_bundle_configs.
  explicit switchable_runtime(const std::vector<named_model>& configs,
                              const runtime_options& o = {}, const tune_settings* tune = nullptr) {
    detail::check_bundle_configs(configs, "switchable runtime: ");
    detail::pack_cache cache;
    std::int64_t arena = 0;
    for (const named_model& nm : configs) {
      try {
        runtime_options oc = o;
        if (tune) {
          tune_reports_.emplace_back();
          oc = deploy::tune(nm.m, o, *tune, &tune_reports_.back());
        }
        members_.push_back(runtime(nm.m, oc, &cache));
      } catch (const error& e) {
        throw error("switchable runtime: configuration '" + nm.name + "': " + e.what(), e.file(),
                    e.line());
      }
      names_.push_back(nm.name);
      if (members_.back().arena_total_ > arena) arena = members_.back().arena_total_;
    }
    packed_bytes_ = cache.unique_bytes();
    packings_ = cache.packings();
    cache.clear();
    const auto a = runtime::make_arena(arena, o.max_batch);
    std::shared_ptr<thread_pool> pool;
    if (members_[0].wants_pool())
      pool = std::make_shared<thread_pool>(o.threads - 1, o.worker_cpus);
    for (runtime& r : members_) r.adopt(a, pool);
    arena_bytes_ = static_cast<std::size_t>(arena);
  }

  static switchable_runtime from_file(const std::string& path, const runtime_options& o = {},
                                      const tune_settings* tune = nullptr) {
    return switchable_runtime(load_bundle(path), o, tune);
  }
  static switchable_runtime from_memory(const void* data, std::size_t size,
                                        const runtime_options& o = {},
                                        const std::string& source = "memory") {
    return switchable_runtime(parse_bundle(static_cast<const std::uint8_t*>(data), size, source),
                              o);
  }

  /// Makes configuration i the one run() runs. Allocates nothing.
  /// throws: mixq::error on i out of range.
  void select(std::size_t i) {
    MIXQ_CHECK(i < members_.size(), "switchable runtime: configuration ", i, ", expected 0..",
               members_.size() - 1);
    active_ = i;
  }
  /// select() by name. throws: mixq::error naming the known configurations.
  void select(const std::string& name) {
    for (std::size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) {
        active_ = i;
        return;
      }
    std::string known;
    for (const auto& n : names_) known += (known.empty() ? "" : ", ") + n;
    MIXQ_CHECK(false, "switchable runtime: no configuration '", name, "' (the bundle has ", known,
               ")");
  }
  std::size_t selected() const noexcept { return active_; }
  std::size_t configurations() const noexcept { return members_.size(); }
  const std::vector<std::string>& names() const noexcept { return names_; }

  /// The selected configuration's runtime (logits, top1, describe, ...).
  runtime& active() noexcept { return members_[active_]; }
  const runtime& active() const noexcept { return members_[active_]; }
  /// Configuration i's runtime, without selecting it.
  const runtime& configuration(std::size_t i) const { return members_.at(i); }

  void run(const std::uint8_t* images, std::int64_t n) { active().run(images, n); }
  void classify(const std::uint8_t* images, std::int64_t n, std::int32_t* classes) {
    active().classify(images, n, classes);
  }
  const std::int32_t* logits() const noexcept { return active().logits(); }
  std::int32_t top1(std::int64_t i) const noexcept { return active().top1(i); }
  std::int32_t classes() const noexcept { return active().classes(); }
  const input_spec& input() const noexcept { return active().input(); }

  /// Bytes of the one arena.
  std::size_t arena_bytes() const noexcept { return arena_bytes_; }
  /// Distinct packed weights plus every configuration's per-channel parameters.
  std::size_t weight_bytes() const noexcept {
    std::size_t b = packed_bytes_;
    for (const runtime& r : members_) b += r.param_bytes_;
    return b;
  }
  /// What one runtime per configuration would hold.
  std::size_t separate_weight_bytes() const noexcept {
    std::size_t b = 0;
    for (const runtime& r : members_) b += r.weight_bytes();
    return b;
  }
  std::size_t separate_arena_bytes() const noexcept {
    std::size_t b = 0;
    for (const runtime& r : members_) b += r.arena_bytes();
    return b;
  }
  /// Distinct packings (layers x the distinct widths they run at).
  std::size_t packings() const noexcept { return packings_; }
  /// With a tuned constructor, what tune() measured per configuration; else empty.
  const std::vector<tune_report>& tune_reports() const noexcept { return tune_reports_; }

 private:
  std::vector<runtime> members_;
  std::vector<std::string> names_;
  std::vector<tune_report> tune_reports_;
  std::size_t active_ = 0;
  std::size_t packed_bytes_ = 0, packings_ = 0, arena_bytes_ = 0;
};

}  // namespace deploy
}  // namespace mixq
