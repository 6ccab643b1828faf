// libFuzzer entry point for the cli target: the input, split at NUL bytes,
// is the argument list of mixq_train_cifar10 (examples/train_cifar10/flags.hpp).
#include <cstdio>
#include <string>
#include <vector>

#include "../examples/train_cifar10/flags.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static std::FILE* sink = std::fopen("/dev/null", "w");
  mixq::examples::streams().out = sink;
  mixq::examples::streams().err = sink;
  std::vector<std::string> args{"mixq_train_cifar10"};
  std::string cur;
  for (std::size_t i = 0; i < size && args.size() < 64; ++i) {
    if (data[i] == 0) {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += static_cast<char>(data[i]);
    }
  }
  if (!cur.empty() && args.size() < 64) args.push_back(cur);
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  mixq::examples::train_flags f;
  const int rc = mixq::examples::parse_train_flags(static_cast<int>(argv.size()), argv.data(), f);
  if (rc < 0) {
    // Accepted: every value must be inside the ranges the program relies on.
    if (f.threads < 0 || f.threads > mixq::examples::max_threads_allowed() || f.epochs < 1 ||
        f.batch < 1 || f.depth < 8 || (f.depth - 2) % 6 != 0 || !(f.warmup >= 0) ||
        f.warmup > static_cast<double>(f.epochs) || f.out.empty() || !(f.lr >= 0))
      __builtin_trap();
    for (long long m : f.milestones)
      if (m < 0 || m > f.epochs) __builtin_trap();
  } else if (rc != 0 && rc != 2) {
    __builtin_trap();
  }
  return 0;
}
