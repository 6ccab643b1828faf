#pragma once
// Test helper: an environment variable set (or unset) for one scope.
#include <stdlib.h>

#include <cstdlib>
#include <string>

namespace mixq_test {

class env_guard {
 public:
  // value nullptr: unset the variable for the scope.
  env_guard(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value)
      ::setenv(name, value, 1);
    else
      ::unsetenv(name);
  }
  ~env_guard() {
    if (had_)
      ::setenv(name_.c_str(), old_.c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  env_guard(const env_guard&) = delete;
  env_guard& operator=(const env_guard&) = delete;

 private:
  std::string name_, old_;
  bool had_ = false;
};

}  // namespace mixq_test
