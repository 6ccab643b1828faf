#pragma once
// Learning-rate schedules.
//
// A schedule maps a global step (0-based, counted in optimizer steps) to a
// learning rate. Both schedules are pure functions of the step, so a resumed
// run gets the same rate as a straight one without saving any state.
//
//   cosine_schedule: linear warm-up from warmup_start*base to base over
//     warmup_steps, then base_lr * (final + (1-final) * (1 + cos(pi * p)) / 2)
//     with p = (step - warmup) / (total - warmup) in [0, 1].
//   step_schedule: base_lr * gamma^(number of milestones <= step), with an
//     optional linear warm-up as above.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mixq/error.hpp"

namespace mixq::optim {

struct cosine_schedule {
  double base_lr = 0.1;
  int64_t total_steps = 1;
  int64_t warmup_steps = 0;
  double warmup_start = 0.0;    // fraction of base_lr at step 0 of the warm-up
  double final_fraction = 0.0;  // lr at the end, as a fraction of base_lr

  cosine_schedule() = default;
  cosine_schedule(double base, int64_t total, int64_t warmup = 0, double final_frac = 0.0)
      : base_lr(base), total_steps(total), warmup_steps(warmup), final_fraction(final_frac) {
    MIXQ_CHECK(total > 0, "cosine_schedule: total_steps = ", total, ", expected > 0");
    MIXQ_CHECK(warmup >= 0 && warmup < total, "cosine_schedule: warmup_steps = ", warmup,
               ", expected in [0, total_steps = ", total, ")");
  }

  double operator()(int64_t step) const {
    if (step < warmup_steps) {
      const double f = static_cast<double>(step) / static_cast<double>(warmup_steps);
      return base_lr * (warmup_start + (1.0 - warmup_start) * f);
    }
    const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
    const double p = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
    const double c = 0.5 * (1.0 + std::cos(M_PI * p));
    return base_lr * (final_fraction + (1.0 - final_fraction) * c);
  }
};

struct step_schedule {
  double base_lr = 0.1;
  std::vector<int64_t> milestones;  // steps at which the rate is multiplied by gamma
  double gamma = 0.1;
  int64_t warmup_steps = 0;

  double operator()(int64_t step) const {
    if (step < warmup_steps) {
      return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
    }
    int drops = 0;
    for (int64_t m : milestones) drops += (step >= m) ? 1 : 0;
    return base_lr * std::pow(gamma, drops);
  }
};

}  // namespace mixq::optim
