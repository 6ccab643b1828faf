#pragma once
// Command-line flags for the examples, on CLI11 (Debian libcli11-dev; the
// examples only, never the library headers).
//
// CLI11 parses the command line (--name value, --name=value, flags, --help,
// unknown flags, missing values, repeated flags); the validators below check
// each value's text before CLI11 converts it, because its own conversions are
// lenient where a hostile or mistyped value must be refused: "-1" into an
// unsigned seed wraps, an integer past the type saturates, "0x10" is read as
// 16, and "nan", "inf" and "1e400" are numbers. A value is accepted only when
// the whole text is a decimal integer (or a finite number) inside the flag's
// range (no hexadecimal), and the message says which flag, which text and
// what was expected.
//
// parse() turns every failure into one line on stderr and exit code 2, and
// --help into the usage on stdout and exit code 0. The examples' own checks
// after parsing (a flag against another, the data, the output directory) use
// fail() for the same one-line form.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace mixq::examples {

namespace detail {
inline std::string quoted(const std::string& s) { return "'" + s + "'"; }
}  // namespace detail

// A decimal integer in [lo, hi] (no sign tricks, no hex, no exponent).
inline CLI::Validator integer_in(long long lo, long long hi, const std::string& note = "") {
  const std::string want = "an integer in " + std::to_string(lo) + ".." + std::to_string(hi) + note;
  return CLI::Validator(
      [lo, hi, want](std::string& s) -> std::string {
        const char* p = s.c_str();
        char* end = nullptr;
        errno = 0;
        const bool digits = !s.empty() && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9'));
        const long long v = digits ? std::strtoll(p, &end, 10) : 0;
        if (!digits || *end != '\0' || errno != 0 || v < lo || v > hi)
          return detail::quoted(s) + ", expected " + want;
        return {};
      },
      "");
}

// A finite decimal number in [lo, hi], or [lo, hi) when `hi_open`.
inline CLI::Validator number_in(double lo, double hi, bool hi_open = false) {
  char range[96];
  std::snprintf(range, sizeof range, "[%g, %g%s", lo, hi, hi_open ? ")" : "]");
  const std::string want = std::string("a finite number in ") + range;
  return CLI::Validator(
      [lo, hi, hi_open, want](std::string& s) -> std::string {
        const char* p = s.c_str();
        char* end = nullptr;
        errno = 0;
        const bool starts = !s.empty() && s.find_first_of("xX") == std::string::npos &&
                            (s[0] == '-' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9'));
        const double v = starts ? std::strtod(p, &end) : 0.0;
        if (!starts || *end != '\0' || errno == ERANGE || !std::isfinite(v) || v < lo || v > hi ||
            (hi_open && v == hi))
          return detail::quoted(s) + ", expected " + want;
        return {};
      },
      "");
}

// A non-empty text (a path).
inline CLI::Validator non_empty(const std::string& what) {
  return CLI::Validator(
      [what](std::string& s) -> std::string {
        return s.empty() ? "empty, expected " + what : std::string();
      },
      "");
}

// Where parse() and fail() write: stdout and stderr, unless a test or the
// fuzz target points them elsewhere.
struct cli_streams {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
};
inline cli_streams& streams() {
  static cli_streams s;
  return s;
}

// The largest thread count a flag accepts: 4 per hardware thread (an OpenMP
// runtime crashes or aborts on counts like 100000).
inline long long max_threads_allowed() {
  return 4 * static_cast<long long>(std::max(1u, std::thread::hardware_concurrency()));
}

// A thread count in lo..max_threads_allowed() (lo = 0 when 0 means "the
// default").
inline CLI::Validator threads_in(long long lo) {
  return integer_in(lo, max_threads_allowed(),
                    lo == 0 ? " (at most 4 per hardware thread; 0 = default)"
                            : " (at most 4 per hardware thread)");
}

// One line on stderr ("<prog>: error: <msg>", line breaks joined with ";")
// and exit code 2.
inline int fail(const std::string& prog, std::string msg) {
  for (auto& c : msg)
    if (c == '\n' || c == '\r') c = ';';
  std::fprintf(streams().err, "%s: error: %s\n", prog.c_str(), msg.c_str());
  return 2;
}

// Parses the command line into `app`'s options.
// ensures: -1 when the program should go on; otherwise the exit code (0
//          after --help, which printed the usage; 2 after an error, which
//          printed one line).
inline int parse(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), streams().out);
    return 0;
  } catch (const CLI::ParseError& e) {
    return fail(app.get_name(), e.what());
  }
  return -1;
}

// The command line as one string (for reports).
inline std::string command_line(int argc, const char* const* argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

}  // namespace mixq::examples
