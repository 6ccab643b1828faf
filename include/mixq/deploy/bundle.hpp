#pragma once
// A bundle: several deploy models of one network (the configurations of a
// multi-bit supernet: the same graph at different bit-widths) in one file,
// each weight code array stored once however many configurations use it.
// switchable_runtime (switchable.hpp) runs a bundle and switches between its
// configurations without reloading.
//
//   header   "MIXQBNDL" | u32 version (1) | u32 flags (0) | u64 file size
//            | u32 section count | u32 crc32(the 28 bytes before it)
//   sections the deploy format's section header (format.hpp), then
//     CODE   one per distinct code array: u8 bits (2..8) | 7 reserved bytes (0)
//            | u32 count low | u32 count high | the codes bit-packed as in a
//            CONV section
//     CNFG   one per configuration, after every CODE: u32 name length (1..255)
//            | name (printable ASCII) | u32 K | K x u32 CODE index, one per
//            CONV / LINR layer in order | a deploy model file (MIXQDPLY)
//            whose CONV and LINR sections carry flag bit 1 and no codes
//
// Why the codes and nothing else: in a supernet the codes of a layer depend
// only on its weight width (one quantizer per width), while the batch-norm
// fold, the requantization and the activation scales change with every
// configuration (batch norm is recalibrated per configuration). The
// per-channel parameters are a few hundred bytes per layer; the codes are the
// bulk of a model.
//
// parse_bundle() checks everything parse() checks for each configuration,
// plus the CODE indices, the bits and count of each referenced array, unique
// names, and one input shape and class count for all configurations.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "format.hpp"

namespace mixq {
namespace deploy {

struct named_model {
  std::string name;
  model m;
};

constexpr char bundle_magic[8] = {'M', 'I', 'X', 'Q', 'B', 'N', 'D', 'L'};
constexpr std::uint32_t bundle_version = 1;
/// At most this many configurations in a bundle.
constexpr std::uint32_t max_bundle_configs = 4096;

/// What a bundle saves against one model file per configuration.
struct bundle_bytes {
  std::size_t bundle = 0;       ///< the bundle file
  std::size_t separate = 0;     ///< the sum of the configurations' own model files
  std::size_t code_arrays = 0;  ///< CONV / LINR layers over all configurations
  std::size_t unique_code_arrays = 0;
};

namespace detail {

inline const std::vector<std::int8_t>* layer_codes(const layer& L, int* bits) {
  if (const auto* c = std::get_if<conv_layer>(&L)) {
    *bits = c->w_bits;
    return &c->codes;
  }
  if (const auto* l = std::get_if<linear_layer>(&L)) {
    *bits = l->w_bits;
    return &l->codes;
  }
  return nullptr;
}

inline std::vector<std::int8_t>* layer_codes(layer& L, int* bits) {
  return const_cast<std::vector<std::int8_t>*>(layer_codes(static_cast<const layer&>(L), bits));
}

inline void check_bundle_name(const std::string& name, const std::string& where) {
  MIXQ_CHECK(!name.empty() && name.size() <= 255, where, "configuration name of ", name.size(),
             " bytes, expected 1..255");
  for (const char ch : name)
    MIXQ_CHECK(ch >= 0x20 && ch < 0x7F, where, "configuration name '", name,
               "' has a byte outside printable ASCII");
}

/// One input shape and class count for every configuration, unique names.
inline void check_bundle_configs(const std::vector<named_model>& cfg, const std::string& where) {
  MIXQ_CHECK(!cfg.empty() && cfg.size() <= max_bundle_configs, where, cfg.size(),
             " configurations, expected 1..", max_bundle_configs);
  const model_info first = analyze(cfg[0].m);
  for (std::size_t i = 0; i < cfg.size(); ++i) {
    const std::string at =
        where + "configuration " + std::to_string(i) + " ('" + cfg[i].name + "'): ";
    check_bundle_name(cfg[i].name, at);
    for (std::size_t j = 0; j < i; ++j)
      MIXQ_CHECK(cfg[j].name != cfg[i].name, at, "the name of configuration ", j, " again");
    const model_info mi = analyze(cfg[i].m);
    const input_spec& a = cfg[0].m.input;
    const input_spec& b = cfg[i].m.input;
    MIXQ_CHECK(a.h == b.h && a.w == b.w && a.c == b.c, at, "input ", b.h, "x", b.w, "x", b.c,
               ", expected ", a.h, "x", a.w, "x", a.c, " as configuration 0");
    MIXQ_CHECK(mi.classes == first.classes, at, mi.classes, " classes, expected ", first.classes,
               " as configuration 0");
  }
}

}  // namespace detail

/// The bundle file of the configurations, each distinct code array once.
/// throws: mixq::error on an invalid model (analyze), an empty, duplicate or
/// non-printable name, or configurations of different input shapes or
/// class counts.
inline std::vector<std::uint8_t> serialize_bundle(const std::vector<named_model>& cfg) {
  detail::check_bundle_configs(cfg, "bundle: ");
  struct code_ref {
    int bits;
    const std::vector<std::int8_t>* codes;
  };
  std::vector<code_ref> pool;
  std::vector<std::vector<std::uint32_t>> refs(cfg.size());
  for (std::size_t i = 0; i < cfg.size(); ++i)
    for (const layer& L : cfg[i].m.layers) {
      int bits = 0;
      const auto* codes = detail::layer_codes(L, &bits);
      if (!codes) continue;
      std::size_t k = 0;
      while (k < pool.size() && !(pool[k].bits == bits && *pool[k].codes == *codes)) ++k;
      if (k == pool.size()) pool.push_back({bits, codes});
      refs[i].push_back(static_cast<std::uint32_t>(k));
    }
  std::vector<std::vector<std::uint8_t>> payloads;
  std::vector<const char*> tags;
  for (const code_ref& c : pool) {
    detail::byte_writer w;
    w.u8(static_cast<unsigned>(c.bits));
    for (int z = 0; z < 7; ++z) w.u8(0);
    w.u64(c.codes->size());
    w.codes(*c.codes, c.bits);
    payloads.push_back(std::move(w.buffer()));
    tags.push_back("CODE");
  }
  for (std::size_t i = 0; i < cfg.size(); ++i) {
    detail::byte_writer w;
    w.u32(static_cast<std::uint32_t>(cfg[i].name.size()));
    w.bytes(cfg[i].name.data(), cfg[i].name.size());
    w.u32(static_cast<std::uint32_t>(refs[i].size()));
    for (const std::uint32_t r : refs[i]) w.u32(r);
    const std::vector<std::uint8_t> body = detail::serialize_unchecked(cfg[i].m, true);
    w.bytes(body.data(), body.size());
    payloads.push_back(std::move(w.buffer()));
    tags.push_back("CNFG");
  }
  std::uint64_t total = format_header_bytes;
  for (const auto& p : payloads) total += format_section_header_bytes + p.size();
  detail::byte_writer f;
  f.bytes(bundle_magic, 8);
  f.u32(bundle_version);
  f.u32(0);
  f.u64(total);
  f.u32(static_cast<std::uint32_t>(payloads.size()));
  f.u32(crc32(f.buffer().data(), f.buffer().size()));
  for (std::size_t s = 0; s < payloads.size(); ++s) detail::put_section(f, tags[s], 0, payloads[s]);
  return std::move(f.buffer());
}

/// Reads a bundle; `source` names it in error messages. Every configuration
/// gets its own copy of the codes it references.
/// throws: mixq::error naming the source, the section, the configuration and
/// the field.
inline std::vector<named_model> parse_bundle(const std::uint8_t* data, std::size_t size,
                                             const std::string& source = "bundle") {
  const std::string src = "bundle file '" + source + "': ";
  const std::uint32_t count = detail::read_file_header(data, size, src, bundle_magic,
                                                       "a mixq bundle", "bundle", bundle_version);
  MIXQ_CHECK(count >= 1 && count <= max_bundle_configs * (max_layers + 1), src, "section count ",
             count, ", expected 1..", max_bundle_configs * (max_layers + 1));

  struct code_array {
    int bits;
    std::vector<std::int8_t> codes;
  };
  std::vector<code_array> pool;
  std::vector<bool> used;
  std::vector<named_model> out;
  std::size_t at = format_header_bytes;
  for (std::uint32_t si = 0; si < count; ++si) {
    std::string where = src + "section " + std::to_string(si);
    const std::uint8_t* h = detail::section_at(data, size, at, where);
    const std::string tag = detail::tag_string(h);
    where += " (" + tag + "): ";
    const std::uint64_t len = detail::section_payload(data, size, at, where);
    const std::uint8_t* pl = h + format_section_header_bytes;
    MIXQ_CHECK(detail::get_u32(h + 4) == 0, where, "section flags 0x",
               detail::hex32(detail::get_u32(h + 4)), ", expected 0");
    detail::byte_reader r(pl, static_cast<std::size_t>(len), where);
    if (tag == "CODE") {
      MIXQ_CHECK(out.empty(), where, "a CODE section after a CNFG section");
      code_array c;
      c.bits = static_cast<int>(r.u8("bits"));
      MIXQ_CHECK(c.bits >= 2 && c.bits <= 8, where, "field 'bits' = ", c.bits, ", expected 2..8");
      r.zero(7, "reserved");
      const std::uint64_t lo = r.u32("count low"), hi = r.u32("count high");
      const std::uint64_t n = lo | hi << 32;
      MIXQ_CHECK(n <= std::uint64_t(r.left()) * 8 / static_cast<std::uint64_t>(c.bits), where,
                 "field 'count' = ", n, ": more codes than the ", r.left(), " bytes left hold");
      c.codes = r.codes(static_cast<std::size_t>(n), c.bits, "codes");
      r.finish();
      pool.push_back(std::move(c));
      used.push_back(false);
    } else if (tag == "CNFG") {
      named_model nm;
      const std::int32_t nlen = r.dim("name length", 1, 255);
      const auto nb = r.u8s(static_cast<std::size_t>(nlen), "name");
      nm.name.assign(nb.begin(), nb.end());
      where += "configuration " + std::to_string(out.size()) + " ('" + nm.name + "'): ";
      detail::check_bundle_name(nm.name, where);
      const std::int32_t k = r.dim("code index count", 1, max_layers);
      std::vector<std::uint32_t> refs(static_cast<std::size_t>(k));
      for (auto& x : refs) {
        x = r.u32("code index");
        MIXQ_CHECK(x < pool.size(), where, "code index ", x, ", expected 0..", pool.size() - 1,
                   " (", pool.size(), " CODE sections)");
      }
      const std::size_t body = r.left();
      nm.m = detail::parse_sections(pl + (len - body), body, where, true);
      std::size_t ri = 0;
      for (std::size_t li = 0; li < nm.m.layers.size(); ++li) {
        int bits = 0;
        std::vector<std::int8_t>* codes = detail::layer_codes(nm.m.layers[li], &bits);
        if (!codes) continue;
        MIXQ_CHECK(ri < refs.size(), where, "more weight layers than the ", refs.size(),
                   " code indices");
        const code_array& c = pool[refs[ri]];
        const auto* cv = std::get_if<conv_layer>(&nm.m.layers[li]);
        const std::size_t want =
            cv ? static_cast<std::size_t>(cv->c_out) * cv->kernel * cv->kernel * cv->c_in
               : static_cast<std::size_t>(std::get<linear_layer>(nm.m.layers[li]).c_out) *
                     std::get<linear_layer>(nm.m.layers[li]).c_in;
        MIXQ_CHECK(c.bits == bits && c.codes.size() == want, where, "layer ", li,
                   " references CODE ", refs[ri], " (", c.codes.size(), " codes of ", c.bits,
                   " bits), expected ", want, " codes of ", bits, " bits");
        *codes = c.codes;
        used[refs[ri]] = true;
        ++ri;
      }
      MIXQ_CHECK(ri == refs.size(), where, refs.size(), " code indices for ", ri, " weight layers");
      try {
        analyze(nm.m);
      } catch (const error& e) {
        throw error(where + e.what(), e.file(), e.line());
      }
      out.push_back(std::move(nm));
    } else {
      MIXQ_CHECK(false, where, "unknown section tag (expected CODE or CNFG)");
    }
    at += format_section_header_bytes + static_cast<std::size_t>(len);
  }
  MIXQ_CHECK(at == size, src, size - at, " bytes after the last section");
  MIXQ_CHECK(!out.empty(), src, "no CNFG section (the bundle has no configuration)");
  for (std::size_t k = 0; k < used.size(); ++k)
    MIXQ_CHECK(used[k], src, "CODE section ", k, " is used by no configuration");
  detail::check_bundle_configs(out, src);
  return out;
}

inline std::vector<named_model> parse_bundle(const std::vector<std::uint8_t>& bytes,
                                             const std::string& source = "bundle") {
  return parse_bundle(bytes.data(), bytes.size(), source);
}

inline std::vector<named_model> load_bundle(const std::string& path) {
  const auto b = read_file_bytes(path);
  return parse_bundle(b.data(), b.size(), path);
}

inline void save_bundle(const std::vector<named_model>& cfg, const std::string& path) {
  const auto b = serialize_bundle(cfg);
  write_file_bytes(path, b.data(), b.size());
}

/// True when the file starts with the bundle magic (a deploy model does not).
inline bool is_bundle(const std::vector<std::uint8_t>& bytes) noexcept {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), bundle_magic, 8) == 0;
}

/// The bundle's bytes against one model file per configuration.
inline bundle_bytes measure_bundle(const std::vector<named_model>& cfg) {
  bundle_bytes b;
  b.bundle = serialize_bundle(cfg).size();
  std::vector<std::pair<int, const std::vector<std::int8_t>*>> seen;
  for (const named_model& nm : cfg) {
    b.separate += serialize(nm.m).size();
    for (const layer& L : nm.m.layers) {
      int bits = 0;
      const auto* codes = detail::layer_codes(L, &bits);
      if (!codes) continue;
      ++b.code_arrays;
      bool dup = false;
      for (const auto& s : seen) dup = dup || (s.first == bits && *s.second == *codes);
      if (!dup) seen.push_back({bits, codes});
    }
  }
  b.unique_code_arrays = seen.size();
  return b;
}

}  // namespace deploy
}  // namespace mixq
