#pragma once
// mixq's one error type and its two checks. Depends on the standard library
// only, so the integer kernels (which know nothing of tensors) use it too.
//
// mixq::error (a std::runtime_error) is thrown for every bad input that
// reaches a public function: wrong shapes, unreadable files, corrupt data,
// bits the kernels cannot run. The message names the thing that was wrong and
// what was expected; it is meant for a person and carries no source location.
// The throwing site (file, line) is kept beside it, for debugging.
//
//   MIXQ_CHECK(cond, parts...)  always on; throws mixq::error(parts...)
//   MIXQ_DASSERT(cond)          debug builds only; for noexcept code (kernels,
//                               inner loops) whose preconditions the caller
//                               has already checked
#include <cassert>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mixq {

class error : public std::runtime_error {
 public:
  explicit error(const std::string& what, const char* file = "", int line = 0)
      : std::runtime_error(what), file_(file), line_(line) {}
  /// Source file and line of the check that threw ("" and 0 when thrown directly).
  const char* file() const noexcept { return file_; }
  int line() const noexcept { return line_; }

 private:
  const char* file_;
  int line_;
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
  throw error(os.str(), file, line);
}
}  // namespace detail

}  // namespace mixq

// Always-on check at the API boundary: MIXQ_CHECK(cond, "message parts", x, ...).
#define MIXQ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) ::mixq::detail::throw_error(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

// Debug-only precondition for noexcept code (kernels, inner loops).
#ifdef NDEBUG
#define MIXQ_DASSERT(cond) ((void)0)
#else
#define MIXQ_DASSERT(cond) assert(cond)
#endif
