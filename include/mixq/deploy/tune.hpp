#pragma once
// Plan by measurement: the runtime's paths come from the kernels' policy
// (kernels::bitplane_preferred), a rule fitted on one machine's timings. Where
// that rule gives a model LUT6 bit-plane layers, tune() also plans the model
// with every conv on qconv2d (runtime_options::bitplane = false, the plan a
// W8A8 model gets), times both on the planned batch and thread count, and
// returns the options of the faster. Both plans compute the same integers, so
// tuning changes the speed and never the outputs; a model with no bit-plane
// layer has one plan and is not timed.
//
// Timing: each plan first runs `warmup` batches, then `rounds` rounds, each
// timing the two plans in turn for seconds / (2 * rounds) each (interleaved,
// so a change of clock or load touches both); a plan's rate is its median over rounds,
// and the bit-plane plan is kept only when it is faster by more than
// `min_gain` (ties go to the plan without the conversions between layouts).
// The cost is paid once, at load: two plannings, the warm-up batches, and
// about `seconds` of timing (more where one batch takes longer than
// seconds / (2 * rounds): every plan runs at least one batch per round).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime.hpp"

namespace mixq {
namespace deploy {

struct tune_settings {
  double seconds = 0.3;   ///< total timed seconds over both plans
  int rounds = 3;         ///< interleaved rounds (each times both plans)
  int warmup = 1;         ///< untimed batches per plan first
  double min_gain = 0.0;  ///< keep the bit-plane plan only above 1 + min_gain times the other
};

struct tune_report {
  bool timed = false;                ///< false: the model had one plan
  bool bitplane = false;             ///< the chosen plan uses the bit-plane path
  int bitplane_layers = 0;           ///< conv layers on the bit-plane path in the bit-plane plan
  double images_per_s_bitplane = 0;  ///< median over rounds (0 when not timed)
  double images_per_s_u8 = 0;
  std::string describe() const {
    if (!timed) return "tune: one plan (no conv on the bit-plane path), not timed";
    char buf[200];
    std::snprintf(buf, sizeof(buf),
                  "tune: bit-plane plan (%d layers) %.1f images/s, qconv2d plan %.1f images/s: "
                  "kept the %s plan",
                  bitplane_layers, images_per_s_bitplane, images_per_s_u8,
                  bitplane ? "bit-plane" : "qconv2d");
    return buf;
  }
};

namespace detail {

inline int count_bitplane(const runtime& rt) {
  int k = 0;
  for (const std::string& p : rt.conv_paths()) k += p == "bitplane";
  return k;
}

/// Images per second of rt on `images` (n of them) over about `seconds`.
inline double time_plan(runtime& rt, const std::vector<std::uint8_t>& images, std::int64_t n,
                        double seconds) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  std::int64_t done = 0;
  double el = 0;
  do {
    rt.run(images.data(), n);
    done += n;
    el = std::chrono::duration<double>(clock::now() - t0).count();
  } while (el < seconds);
  return double(done) / el;
}

}  // namespace detail

/// The options (o with bitplane set) of the faster plan of m at o.max_batch
/// and o.threads. o.bitplane = false is kept as it is (nothing to choose).
/// Options, not the timed runtime: the caller plans them once more, which
/// lets switchable_runtime share packed weights between its configurations
/// (its pack cache), as the runtimes timed here do not.
/// throws: mixq::error as runtime's constructor, and on settings out of range.
inline runtime_options tune(const model& m, runtime_options o, const tune_settings& s = {},
                            tune_report* report = nullptr) {
  MIXQ_CHECK(s.seconds > 0 && s.rounds >= 1 && s.warmup >= 0 && s.min_gain >= 0,
             "tune: seconds > 0, rounds >= 1, warmup >= 0, min_gain >= 0 expected (got ", s.seconds,
             ", ", s.rounds, ", ", s.warmup, ", ", s.min_gain, ")");
  tune_report rep;
  if (!o.bitplane) {
    if (report) *report = rep;
    return o;
  }
  runtime with(m, o);
  rep.bitplane_layers = detail::count_bitplane(with);
  if (rep.bitplane_layers == 0) {
    if (report) *report = rep;
    return o;
  }
  runtime_options ou = o;
  ou.bitplane = false;
  runtime without(m, ou);
  const input_spec& in = with.input();
  const std::int64_t n = o.max_batch;
  std::vector<std::uint8_t> images(static_cast<std::size_t>(n * in.h * in.w * in.c));
  std::uint32_t x = 12345;  // a fixed pattern: the kernels' time does not depend on the values
  for (auto& b : images) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::uint8_t>(x >> 24);
  }
  for (int i = 0; i < s.warmup; ++i) {
    with.run(images.data(), n);
    without.run(images.data(), n);
  }
  std::vector<double> a, b;
  const double per = s.seconds / (2.0 * s.rounds);
  for (int r = 0; r < s.rounds; ++r) {
    a.push_back(detail::time_plan(with, images, n, per));
    b.push_back(detail::time_plan(without, images, n, per));
  }
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  rep.timed = true;
  rep.images_per_s_bitplane = a[a.size() / 2];
  rep.images_per_s_u8 = b[b.size() / 2];
  rep.bitplane = rep.images_per_s_bitplane > rep.images_per_s_u8 * (1.0 + s.min_gain);
  if (!rep.bitplane) o.bitplane = false;
  if (report) *report = rep;
  return o;
}

}  // namespace deploy
}  // namespace mixq
