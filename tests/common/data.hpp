#pragma once
// Test helper: the real data sets, found as the examples find them (a flag
// is never given; MIXQ_DATA, system places, then folders of this source
// tree; examples/common/data_dir.hpp). Absent data is a visible skip.
#include <doctest/doctest.h>

#include <string>

#include "mixq/error.hpp"
#include "../../examples/common/data_dir.hpp"

namespace mixq_test {

// The data directory, or "" after a visible MESSAGE when the data is absent.
inline std::string cifar10_dir_or_skip() {
  try {
    return mixq::examples::cifar10_data_dir();
  } catch (const mixq::error& e) {
    MESSAGE("SKIPPED: CIFAR-10 data not found: " << e.what());
    return "";
  }
}
inline std::string fashion_mnist_dir_or_skip() {
  try {
    return mixq::examples::fashion_mnist_data_dir();
  } catch (const mixq::error& e) {
    MESSAGE("SKIPPED: Fashion-MNIST not found (Debian: dataset-fashion-mnist): " << e.what());
    return "";
  }
}

}  // namespace mixq_test
