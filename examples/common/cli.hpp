#pragma once
// A small command-line parser for the examples: --name value / --name=value /
// --flag, typed, with --help. A bad flag or value prints one line and makes
// exit_code() return 2.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <set>
#include <string>
#include <vector>

namespace mixq::examples {

class cli {
 public:
  cli(std::string prog, std::string about) : prog_(std::move(prog)), about_(std::move(about)) {}

  std::string& opt_str(const std::string& name, const std::string& def, const std::string& help) {
    strs_.push_back(def);
    opts_.push_back({name, help, kind::str, def});
    idx_.push_back(strs_.size() - 1);
    return strs_.back();
  }
  long long& opt_int(const std::string& name, long long def, const std::string& help) {
    ints_.push_back(def);
    opts_.push_back({name, help, kind::integer, std::to_string(def)});
    idx_.push_back(ints_.size() - 1);
    return ints_.back();
  }
  double& opt_double(const std::string& name, double def, const std::string& help) {
    dbls_.push_back(def);
    char b[64];
    std::snprintf(b, sizeof b, "%g", def);
    opts_.push_back({name, help, kind::real, b});
    idx_.push_back(dbls_.size() - 1);
    return dbls_.back();
  }
  bool& opt_flag(const std::string& name, const std::string& help) {
    flags_.push_back(false);
    opts_.push_back({name, help, kind::flag, ""});
    idx_.push_back(flags_.size() - 1);
    return flags_.back();
  }

  // false: stop and return exit_code() (0 after --help, 2 after an error).
  bool parse(int argc, char** argv) {
    cmd_ = argv[0];
    for (int i = 1; i < argc; ++i) {
      cmd_ += std::string(" ") + argv[i];
    }
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        usage();
        code_ = 0;
        return false;
      }
      if (a.rfind("--", 0) != 0) return fail("unexpected argument '" + a + "'");
      std::string name = a.substr(2), value;
      bool has_value = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_value = true;
      }
      size_t k = find(name);
      if (k == npos) return fail("unknown flag --" + name + " (see --help)");
      const option& o = opts_[k];
      if (o.k == kind::flag) {
        if (has_value) return fail("flag --" + name + " takes no value");
        flags_[idx_[k]] = true;
        continue;
      }
      if (!has_value) {
        if (i + 1 >= argc) return fail("flag --" + name + " needs a value");
        value = argv[++i];
      }
      errno = 0;
      char* end = nullptr;
      if (o.k == kind::str) {
        strs_[idx_[k]] = value;
      } else if (o.k == kind::integer) {
        long long v = std::strtoll(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || errno != 0)
          return fail("--" + name + " '" + value + "': expected an integer");
        ints_[idx_[k]] = v;
      } else {
        double v = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || errno != 0)
          return fail("--" + name + " '" + value + "': expected a number");
        dbls_[idx_[k]] = v;
      }
    }
    return true;
  }
  int exit_code() const { return code_; }
  const std::string& command_line() const { return cmd_; }

  // All option values except `skip`, as "name=value;..." (for refusing to
  // resume a checkpoint under other settings).
  std::string config_string(const std::set<std::string>& skip) const {
    std::string s;
    for (size_t k = 0; k < opts_.size(); ++k) {
      const option& o = opts_[k];
      if (skip.count(o.name)) continue;
      s += o.name + "=";
      switch (o.k) {
        case kind::str:
          s += strs_[idx_[k]];
          break;
        case kind::integer:
          s += std::to_string(ints_[idx_[k]]);
          break;
        case kind::real: {
          char b[64];
          std::snprintf(b, sizeof b, "%.17g", dbls_[idx_[k]]);
          s += b;
          break;
        }
        case kind::flag:
          s += flags_[idx_[k]] ? "1" : "0";
          break;
      }
      s += ";";
    }
    return s;
  }

 private:
  enum class kind { str, integer, real, flag };
  struct option {
    std::string name, help;
    kind k;
    std::string def;
  };
  static constexpr size_t npos = static_cast<size_t>(-1);
  size_t find(const std::string& n) const {
    for (size_t k = 0; k < opts_.size(); ++k)
      if (opts_[k].name == n) return k;
    return npos;
  }
  bool fail(const std::string& msg) {
    std::fprintf(stderr, "%s: error: %s\n", prog_.c_str(), msg.c_str());
    code_ = 2;
    return false;
  }
  void usage() const {
    std::printf("%s: %s\n\nflags:\n", prog_.c_str(), about_.c_str());
    for (const auto& o : opts_) {
      std::string head = "  --" + o.name + (o.k == kind::flag ? "" : " V");
      std::printf("%-24s %s%s\n", head.c_str(), o.help.c_str(),
                  o.k == kind::flag || o.def.empty() ? "" : (" (default " + o.def + ")").c_str());
    }
  }

  std::string prog_, about_, cmd_;
  std::vector<option> opts_;
  std::vector<size_t> idx_;
  std::deque<std::string> strs_;
  std::deque<long long> ints_;
  std::deque<double> dbls_;
  std::deque<bool> flags_;
  int code_ = 2;
};

}  // namespace mixq::examples
