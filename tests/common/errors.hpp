#pragma once
// Test helpers for error messages: the message of the mixq::error a call
// throws, checked for the parts a user needs (file, key, value).
#include <doctest/doctest.h>

#include <exception>
#include <functional>
#include <string>

#include "mixq/error.hpp"

namespace mixq_test {

// The message of the mixq::error that f throws; "" (and a failed check) when
// it throws nothing or something else.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const mixq::error& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("expected mixq::error, got std::exception: " << e.what());
    return "";
  }
  FAIL_CHECK("expected mixq::error, nothing was thrown");
  return "";
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace mixq_test
