#pragma once
// bit_config: the weight and activation bits of every searchable layer of a
// multi-bit supernet (one slice), and its text file.
//
// A configuration lists, in the supernet's layer order, one (w, a) pair per
// searchable layer (supernet.hpp: the layers whose quantizers switch; the
// first and last layer only under the edge policy `same`). Uniform slices
// give every layer the same pair; the search produces per-layer ones.
//
// File (written to a temporary name and renamed), plain text:
//   # any comment lines
//   mixq-bits 1
//   layers <N>
//   <layer name> <w bits> <a bits>      N lines, in the supernet's order
// Reading checks the header, the layer count, each layer's name against the
// supernet's and each width against [2, 8], and throws one mixq::error naming
// the file, the line and the field.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/io/file.hpp"
#include "mixq/quant/bits.hpp"

namespace mixq {
namespace quant {

namespace detail {
// One width as text: a whole decimal integer in [min_bits, max_bits].
inline bool parse_width(const std::string& s, int& out) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || !end || *end != '\0' || v < min_bits || v > max_bits) return false;
  out = static_cast<int>(v);
  return true;
}
}  // namespace detail

struct bit_config {
  std::vector<int> w, a;  // one entry per searchable layer

  size_t size() const { return w.size(); }
  static bit_config uniform(size_t layers, int bw, int ba) {
    return bit_config{std::vector<int>(layers, bw), std::vector<int>(layers, ba)};
  }
  bool operator==(const bit_config& o) const { return w == o.w && a == o.a; }
  bool operator!=(const bit_config& o) const { return !(*this == o); }
  // "w:4,3,.. a:4,4,.." (also a key for caches).
  std::string str() const {
    std::string s = "w:";
    for (size_t i = 0; i < w.size(); ++i) s += (i ? "," : "") + std::to_string(w[i]);
    s += " a:";
    for (size_t i = 0; i < a.size(); ++i) s += (i ? "," : "") + std::to_string(a[i]);
    return s;
  }
  // requires: `layers` entries each in [2, 8]; `what` names the source in the error.
  void validate(size_t layers, const char* what) const {
    MIXQ_CHECK(w.size() == layers && a.size() == layers, what, ": ", w.size(), " weight and ",
               a.size(), " activation widths, expected one per searchable layer (", layers, ")");
    for (size_t i = 0; i < layers; ++i) {
      MIXQ_CHECK(w[i] >= min_bits && w[i] <= max_bits, what, ": layer ", i, " weight bits ", w[i],
                 ", expected an integer in [", min_bits, ", ", max_bits, "]");
      MIXQ_CHECK(a[i] >= min_bits && a[i] <= max_bits, what, ": layer ", i, " activation bits ",
                 a[i], ", expected an integer in [", min_bits, ", ", max_bits, "]");
    }
  }
};

// Writes `c` for the layers `names` (same order) to `path`, atomically.
inline void save_bit_config(const std::string& path, const std::vector<std::string>& names,
                            const bit_config& c, const std::string& comment = "") {
  c.validate(names.size(), path.c_str());
  std::ostringstream os;
  std::istringstream cm(comment);
  for (std::string line; std::getline(cm, line);) os << "# " << line << "\n";
  os << "mixq-bits 1\nlayers " << names.size() << "\n";
  for (size_t i = 0; i < names.size(); ++i)
    os << names[i] << " " << c.w[i] << " " << c.a[i] << "\n";
  io::write_file_atomic(path, os.str());
}

// Reads a configuration for the layers `names` (the supernet's searchable
// layers, in order).
// throws: mixq::error naming the file, the line and the field: unreadable
//         file, another header, another layer count or name, a width outside
//         [2, 8] or not an integer.
inline bit_config load_bit_config(const std::string& path, const std::vector<std::string>& names) {
  std::ifstream in(path);
  MIXQ_CHECK(in.good(), path, ": cannot open the bit configuration file");
  std::vector<std::pair<int, std::string>> lines;  // (line number, text) without comments
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    const size_t p = line.find_first_not_of(" \t\r");
    if (p == std::string::npos || line[p] == '#') continue;
    lines.emplace_back(number, line);
  }
  auto at = [&](size_t k) { return path + ":" + std::to_string(lines[k].first); };
  MIXQ_CHECK(!lines.empty() && lines[0].second.rfind("mixq-bits 1", 0) == 0, path,
             ": not a bit configuration (expected the header line 'mixq-bits 1')");
  MIXQ_CHECK(lines.size() >= 2, path, ": field 'layers' is missing");
  long long declared = -1;
  {
    std::istringstream ls(lines[1].second);
    std::string key, extra;
    ls >> key >> declared;
    MIXQ_CHECK(key == "layers" && !ls.fail() && !(ls >> extra), at(1),
               ": expected 'layers <count>', got '", lines[1].second, "'");
  }
  MIXQ_CHECK(declared == static_cast<long long>(names.size()), at(1), ": field 'layers' is ",
             declared, ", but the supernet has ", names.size(), " searchable layers");
  MIXQ_CHECK(lines.size() - 2 == names.size(), path, ": ", lines.size() - 2,
             " layer lines, expected ", names.size(), " (field 'layers')");
  bit_config c;
  for (size_t i = 0; i < names.size(); ++i) {
    const size_t k = i + 2;
    std::istringstream ls(lines[k].second);
    std::string name, ws, as, extra;
    ls >> name >> ws >> as;
    MIXQ_CHECK(!name.empty() && !ws.empty() && !as.empty() && !(ls >> extra), at(k),
               ": expected '<layer> <w bits> <a bits>', got '", lines[k].second, "'");
    MIXQ_CHECK(name == names[i], at(k), ": layer '", name, "', expected '", names[i], "' (layer ",
               i, " of the supernet)");
    auto parse_bits = [&](const std::string& s, const char* field) {
      int v = 0;
      MIXQ_CHECK(detail::parse_width(s, v), at(k), ": layer '", name, "' field '", field, "' is '",
                 s, "', expected an integer in [", min_bits, ", ", max_bits, "]");
      return v;
    };
    c.w.push_back(parse_bits(ws, "w bits"));
    c.a.push_back(parse_bits(as, "a bits"));
  }
  return c;
}

// Parses str()'s form "w:4,3,.. a:4,4,.." (as the search tables print it) for
// `layers` searchable layers; `what` names the source in the error.
// throws: mixq::error naming `what`, the field and the expected form.
inline bit_config parse_bit_config(const std::string& text, size_t layers,
                                   const std::string& what) {
  auto fail = [&](const std::string& why) {
    MIXQ_CHECK(false, what, ": configuration '", text, "': ", why,
               " (expected 'w:<b>,<b>,.. a:<b>,<b>,..')");
  };
  auto list = [&](const std::string& part, const char* key) {
    std::vector<int> v;
    if (part.rfind(key, 0) != 0) fail(std::string("no '") + key + "' part");
    std::string item;
    std::istringstream ls(part.substr(2));
    while (std::getline(ls, item, ',')) {
      int b = 0;
      if (!detail::parse_width(item, b))
        fail(std::string("'") + item + "' in '" + key + "' is not an integer in [" +
             std::to_string(min_bits) + ", " + std::to_string(max_bits) + "]");
      v.push_back(b);
    }
    return v;
  };
  std::istringstream ts(text);
  std::string wpart, apart, extra;
  ts >> wpart >> apart;
  if (wpart.empty() || apart.empty() || (ts >> extra)) fail("expected two parts");
  bit_config c{list(wpart, "w:"), list(apart, "a:")};
  c.validate(layers, what.c_str());
  return c;
}

}  // namespace quant
}  // namespace mixq
