#pragma once
// Data directories for programs run from a mixq source tree (the examples and
// the tests): the library's resolution order (a --data flag, MIXQ_DATA,
// system places; mixq/io/data_dir.hpp), then folders of the source tree.
//
// Added places, after the library's:
//   CIFAR-10:      <repo>/../shared/datasets/cifar10, <repo>/datasets/cifar10
//   Fashion-MNIST: <repo>/datasets/fashion-mnist
// where <repo> is the mixq source tree: MIXQ_SOURCE_DIR when the including
// program defines it (the tests do), and every ancestor of the current
// directory that contains include/mixq/mixq.hpp. This knowledge of a
// developer's checkout stays out of the installed library.
#include <filesystem>
#include <string>
#include <vector>

#include "mixq/io/data_dir.hpp"

namespace mixq::examples {

// Candidate mixq source trees: MIXQ_SOURCE_DIR, then ancestors of the
// current directory that look like one.
inline std::vector<std::string> repo_roots() {
  std::vector<std::string> roots;
#ifdef MIXQ_SOURCE_DIR
  roots.emplace_back(MIXQ_SOURCE_DIR);
#endif
  std::error_code ec;
  auto d = std::filesystem::current_path(ec);
  if (ec) return roots;
  for (int up = 0; up < 8; ++up) {
    std::error_code e1;
    if (std::filesystem::exists(d / "include/mixq/mixq.hpp", e1)) {
      const std::string s = d.string();
      bool seen = false;
      for (const auto& r : roots) {
        std::error_code e2;
        seen = seen || std::filesystem::equivalent(r, s, e2);
      }
      if (!seen) roots.push_back(s);
    }
    if (!d.has_parent_path() || d.parent_path() == d) break;
    d = d.parent_path();
  }
  return roots;
}

namespace detail {
inline std::string normal_path(const std::string& p) {
  return std::filesystem::path(p).lexically_normal().string();
}
}  // namespace detail

inline io::data_dir_spec cifar10_dir_spec() {
  io::data_dir_spec s = io::cifar10_dir_spec();
  for (const auto& r : repo_roots()) {
    s.defaults.push_back(detail::normal_path(r + "/../shared/datasets/cifar10"));
    s.defaults.push_back(detail::normal_path(r + "/datasets/cifar10"));
  }
  return s;
}

inline io::data_dir_spec fashion_mnist_dir_spec() {
  io::data_dir_spec s = io::fashion_mnist_dir_spec();
  for (const auto& r : repo_roots())
    s.defaults.push_back(detail::normal_path(r + "/datasets/fashion-mnist"));
  return s;
}

inline std::string cifar10_data_dir(const std::string& explicit_dir = "") {
  return io::resolve_data_dir(cifar10_dir_spec(), explicit_dir);
}
inline std::string fashion_mnist_data_dir(const std::string& explicit_dir = "") {
  return io::resolve_data_dir(fashion_mnist_dir_spec(), explicit_dir);
}

}  // namespace mixq::examples
