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
//     optional linear warm-up from base/warmup_steps.
//
// schedule_options describes a schedule in epochs, the way a recipe states
// it; lr_schedule is the schedule it makes for a given number of steps per
// epoch, chosen once (not per step).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <variant>
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

enum class schedule_kind { cosine, step };

// "cosine" or "step".
// throws: mixq::error naming the string for anything else.
inline schedule_kind parse_schedule_kind(const std::string& s) {
  MIXQ_CHECK(s == "cosine" || s == "step", "schedule '", s, "', expected 'cosine' or 'step'");
  return s == "cosine" ? schedule_kind::cosine : schedule_kind::step;
}
inline const char* schedule_name(schedule_kind k) {
  return k == schedule_kind::cosine ? "cosine" : "step";
}

// A learning-rate schedule as a recipe states it (in epochs).
struct schedule_options {
  schedule_kind kind = schedule_kind::cosine;
  double warmup_epochs = 0.0;       // linear warm-up (both kinds)
  std::vector<int64_t> milestones;  // step: epochs at which lr *= gamma
  double gamma = 0.1;               // step
  double final_fraction = 0.0;      // cosine: lr at the end, as a fraction of base_lr
};

// The schedule of `o` for a run of `epochs` epochs of `steps_per_epoch`
// optimizer steps, peaking at base_lr. Warm-up steps: warmup_epochs *
// steps_per_epoch rounded down (cosine: at most total - 1).
class lr_schedule {
 public:
  lr_schedule(const schedule_options& o, double base_lr, int64_t steps_per_epoch, int64_t epochs) {
    MIXQ_CHECK(steps_per_epoch >= 1 && epochs >= 1,
               "lr_schedule: steps_per_epoch = ", steps_per_epoch, ", epochs = ", epochs,
               ", expected both >= 1");
    MIXQ_CHECK(std::isfinite(base_lr) && base_lr >= 0, "lr_schedule: base lr = ", base_lr,
               ", expected a finite rate >= 0");
    MIXQ_CHECK(std::isfinite(o.warmup_epochs) && o.warmup_epochs >= 0 &&
                   o.warmup_epochs <= static_cast<double>(epochs),
               "lr_schedule: warmup_epochs = ", o.warmup_epochs,
               ", expected in [0, epochs = ", epochs, "]");
    MIXQ_CHECK(std::isfinite(o.gamma) && o.gamma > 0, "lr_schedule: gamma = ", o.gamma,
               ", expected a finite factor > 0");
    MIXQ_CHECK(std::isfinite(o.final_fraction) && o.final_fraction >= 0 && o.final_fraction <= 1,
               "lr_schedule: final_fraction = ", o.final_fraction, ", expected in [0, 1]");
    for (int64_t e : o.milestones)
      MIXQ_CHECK(e >= 0 && e <= epochs, "lr_schedule: milestone ", e,
                 ", expected in [0, epochs = ", epochs, "]");
    int64_t total = 0;
    MIXQ_CHECK(!__builtin_mul_overflow(steps_per_epoch, epochs, &total), "lr_schedule: ", epochs,
               " epochs of ", steps_per_epoch, " steps overflow the step counter");
    const auto warmup =
        static_cast<int64_t>(o.warmup_epochs * static_cast<double>(steps_per_epoch));
    if (o.kind == schedule_kind::cosine) {
      s_ = cosine_schedule(base_lr, total, std::min(warmup, total - 1), o.final_fraction);
    } else {
      step_schedule st;
      st.base_lr = base_lr;
      st.gamma = o.gamma;
      st.warmup_steps = warmup;
      for (int64_t e : o.milestones) st.milestones.push_back(e * steps_per_epoch);
      s_ = st;
    }
  }
  double operator()(int64_t step) const {
    return std::visit([step](const auto& s) { return s(step); }, s_);
  }

 private:
  std::variant<cosine_schedule, step_schedule> s_;
};

}  // namespace mixq::optim
