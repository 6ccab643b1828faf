#pragma once
// A one-line progress bar for training loops:
//   epoch 3/30 [########------------]  196/390  loss 0.8123  acc 71.4%  612 img/s  ETA 0:32
// On a terminal the line is redrawn in place (\r) at most every 0.2 s;
// otherwise (logs, CI) a plain line is printed every `log_every` steps and at
// the end of the epoch.
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace mixq::train {

inline std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>((s / 60) % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  return buf;
}

class progress_bar {
 public:
  progress_bar(std::FILE* out = stderr, int64_t log_every = 50)
      : out_(out), tty_(isatty(fileno(out)) != 0), log_every_(log_every) {}

  void start(int64_t epoch, int64_t epochs, int64_t total_steps) {
    epoch_ = epoch;
    epochs_ = epochs;
    total_ = total_steps;
    t0_ = clock::now();
    last_draw_ = t0_ - std::chrono::seconds(1);
  }

  // step: steps done in this epoch (1-based), images: images done in this epoch.
  void update(int64_t step, int64_t images, double loss, double acc) {
    const auto now = clock::now();
    const bool last = step >= total_;
    if (tty_) {
      if (!last && now - last_draw_ < std::chrono::milliseconds(200)) return;
    } else if (!last && step % log_every_ != 0) {
      return;
    }
    last_draw_ = now;
    const double el = std::chrono::duration<double>(now - t0_).count();
    const double ips = el > 0 ? static_cast<double>(images) / el : 0.0;
    const double eta =
        step > 0 ? el * static_cast<double>(total_ - step) / static_cast<double>(step) : 0.0;
    constexpr int width = 20;
    const int filled = total_ > 0 ? static_cast<int>(width * step / total_) : width;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(width - filled), '-');
    std::fprintf(out_,
                 "%sepoch %lld/%lld [%s] %5lld/%lld  loss %.4f  acc %5.1f%%  %6.0f img/s  ETA %s%s",
                 tty_ ? "\r" : "", static_cast<long long>(epoch_), static_cast<long long>(epochs_),
                 bar.c_str(), static_cast<long long>(step), static_cast<long long>(total_), loss,
                 100.0 * acc, ips, format_duration(eta).c_str(), tty_ ? (last ? "\n" : "") : "\n");
    std::fflush(out_);
  }

 private:
  using clock = std::chrono::steady_clock;
  std::FILE* out_;
  bool tty_;
  int64_t log_every_;
  int64_t epoch_ = 0, epochs_ = 0, total_ = 0;
  clock::time_point t0_, last_draw_;
};

}  // namespace mixq::train
