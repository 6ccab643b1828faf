#pragma once
// Where is the data? One resolution order for every data set.
//
//   1. an explicit directory (a --data flag), when non-empty;
//   2. else the environment variable MIXQ_DATA, when set and non-empty;
//   3. else a fixed list of default places, first match wins.
//
// For 1 and 2 the directory may be the data set's own folder or a parent that
// holds it under its usual sub-folder name ("cifar10", "fashion-mnist"), so
// MIXQ_DATA can point at one folder holding several data sets. An explicit
// directory that does not hold the data set is an error (no silent
// fall-through: a typo in a flag must not train on data from elsewhere). A
// MIXQ_DATA that does not hold this data set falls through to the defaults
// (MIXQ_DATA is shared by all data sets and may hold only some of them). When
// nothing is found, the error lists every place tried and why each was
// rejected.
//
// A directory "holds" a data set when each of its marker files exists, plain
// or with ".gz" appended (exists: stat finds it; whether it can be read is the
// loader's to report, with the reason, so an unreadable file is never taken
// for a missing one).
//
// Default places are system places only:
//   CIFAR-10:      none (no distribution packages it)
//   Fashion-MNIST: /usr/share/datasets/fashion-mnist (Debian package
//                  dataset-fashion-mnist)
// A program may add its own (the examples add folders of the mixq source
// tree, examples/common/data_dir.hpp) by appending to a spec's defaults.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/io/file.hpp"

namespace mixq::io {

struct data_dir_spec {
  std::string dataset;                    // for messages, e.g. "cifar10"
  std::string subdir;                     // usual folder name under a parent, e.g. "cifar10"
  std::vector<std::string> marker_files;  // must exist (plain or .gz)
  std::vector<std::string> defaults;      // default places, in order
};

namespace detail {

inline std::string missing_markers(const std::string& dir,
                                   const std::vector<std::string>& markers) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return "not a directory";
  std::string miss;
  for (const auto& m : markers) {
    const std::string p = dir + "/" + m;
    if (!path_exists(p) && !path_exists(p + ".gz")) miss += (miss.empty() ? "" : ", ") + m;
  }
  return miss.empty() ? std::string() : "missing " + miss;
}

}  // namespace detail

// Resolves the data directory for `spec` (see the file comment for the order).
// ensures: the returned directory holds every marker file (plain or .gz).
// throws:  mixq::error listing each place tried and why it was rejected.
inline std::string resolve_data_dir(const data_dir_spec& spec,
                                    const std::string& explicit_dir = "") {
  std::string tried;
  auto try_dir = [&](const std::string& dir, const std::string& origin) -> bool {
    const std::string why = detail::missing_markers(dir, spec.marker_files);
    if (why.empty()) return true;
    tried += "\n  " + dir + " (" + origin + "): " + why;
    return false;
  };
  auto try_with_sub = [&](const std::string& dir, const std::string& origin) -> std::string {
    if (try_dir(dir, origin)) return dir;
    if (!spec.subdir.empty() && try_dir(dir + "/" + spec.subdir, origin))
      return dir + "/" + spec.subdir;
    return {};
  };
  auto fail = [&](const std::string& head) {
    MIXQ_CHECK(false, spec.dataset, ": ", head, "; tried:", tried,
               "\n  (set the data directory with a --data flag or MIXQ_DATA)");
  };

  if (!explicit_dir.empty()) {
    std::string r = try_with_sub(explicit_dir, "explicit path");
    if (r.empty()) fail("data not found in the explicit directory");
    return r;
  }
  const char* env = std::getenv("MIXQ_DATA");
  if (env && *env) {
    std::string r = try_with_sub(env, "MIXQ_DATA");
    if (!r.empty()) return r;
  }
  for (const auto& d : spec.defaults)
    if (try_dir(d, "default")) return d;
  if (spec.defaults.empty()) tried += "\n  (no default places for this data set)";
  fail("data directory not found");
  return {};
}

// Default places for CIFAR-10 (see the file comment).
inline data_dir_spec cifar10_dir_spec() {
  data_dir_spec s;
  s.dataset = "cifar10";
  s.subdir = "cifar10";
  s.marker_files = {"data_batch_1.bin", "test_batch.bin"};
  return s;
}

// Default places for Fashion-MNIST (see the file comment).
inline data_dir_spec fashion_mnist_dir_spec() {
  data_dir_spec s;
  s.dataset = "fashion-mnist";
  s.subdir = "fashion-mnist";
  s.marker_files = {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  s.defaults.push_back("/usr/share/datasets/fashion-mnist");
  return s;
}

inline std::string cifar10_data_dir(const std::string& explicit_dir = "") {
  return resolve_data_dir(cifar10_dir_spec(), explicit_dir);
}
inline std::string fashion_mnist_data_dir(const std::string& explicit_dir = "") {
  return resolve_data_dir(fashion_mnist_dir_spec(), explicit_dir);
}

}  // namespace mixq::io
