#pragma once
// Errors at the API boundary.
//
// mixq throws mixq::error (a std::runtime_error) for every bad input that
// reaches a public function: wrong shapes, unreadable files, corrupt data.
// The message names the thing that was wrong and what was expected.
// Kernels never throw; their preconditions are checked by the caller and
// re-checked in debug builds with MIXQ_DASSERT.
#include <cassert>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mixq {

class error : public std::runtime_error {
 public:
  explicit error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void append_all(std::ostringstream&) {}
template <class T, class... Rest>
void append_all(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append_all(os, rest...);
}
template <class... Args>
[[noreturn]] void throw_error(const char* file, int line, const Args&... args) {
  std::ostringstream os;
  append_all(os, args...);
  (void)file;
  (void)line;
  throw error(os.str());
}
}  // namespace detail

}  // namespace mixq

// Always-on check at the API boundary: MIXQ_CHECK(cond, "message parts", x, ...).
#define MIXQ_CHECK(cond, ...)                                          \
  do {                                                                 \
    if (!(cond)) ::mixq::detail::throw_error(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

// Debug-only precondition for noexcept code (kernels, inner loops).
#ifdef NDEBUG
#define MIXQ_DASSERT(cond) ((void)0)
#else
#define MIXQ_DASSERT(cond) assert(cond)
#endif
