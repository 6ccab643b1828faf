// libFuzzer entry point for the deploy target (see fuzz_targets.hpp).
#include "fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return mixq_fuzz::deploy_model(data, size);
}
