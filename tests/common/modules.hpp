#pragma once
// Test helper: two modules' state dicts (parameters and buffers) compared bit
// for bit, reporting the first tensor that differs.
#include <doctest/doctest.h>

#include <cstring>
#include <string>

#include "mixq/nn/module.hpp"

namespace mixq_test {

// "" when a and b hold the same names, shapes and bits; else the first
// difference, for a CHECK message.
inline std::string state_difference(mixq::nn::module& a, mixq::nn::module& b) {
  auto sa = a.state_dict(), sb = b.state_dict();
  if (sa.size() != sb.size())
    return std::to_string(sa.size()) + " vs " + std::to_string(sb.size()) + " tensors";
  for (std::size_t i = 0; i < sa.size(); ++i) {
    if (sa[i].first != sb[i].first) return "name " + sa[i].first + " vs " + sb[i].first;
    if (sa[i].second.numel() != sb[i].second.numel()) return "size of " + sa[i].first;
    if (std::memcmp(sa[i].second.data(), sb[i].second.data(),
                    static_cast<std::size_t>(sa[i].second.numel()) * sizeof(float)) != 0)
      return "values of " + sa[i].first;
  }
  return "";
}

inline bool same_state(mixq::nn::module& a, mixq::nn::module& b) {
  return state_difference(a, b).empty();
}

}  // namespace mixq_test
