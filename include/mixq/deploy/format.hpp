#pragma once
// The deploy model file: a header and a list of checksummed sections, all
// little-endian, described byte by byte in docs/format.md.
//
//   header   "MIXQDPLY" | u32 version (1) | u32 flags (0) | u64 file size
//            | u32 section count | u32 crc32(the 28 bytes before it)
//   section  char[4] tag | u32 flags | u64 payload length
//            | u32 crc32(tag, flags, length and payload) | u32 reserved (0) | payload
//   sections INPT, then one CONV / POOL / RMAP / LINR per layer in execution order,
//            then optionally LABL (class names) and META (free text)
//   flags    0, except bit 0 of a CONV section: it carries the rounding
//            offsets (one more i32 array). Inside a bundle (bundle.hpp) only,
//            bit 1 of a CONV or LINR section: the codes are not in the
//            section but in the bundle's shared code arrays. Any other bit is
//            refused
//
// Why not io/archive: the archive is a general container of named arrays
// that uses zlib's CRC and the library's file helpers; the runtime must build
// without zlib or anything of the training side, and a model needs typed,
// ordered layer records more than named arrays. This format is small enough
// to read with Python's struct module (docs/format.md).
//
// parse() checks the magic, the version, both kinds of CRC, the file size,
// every length, and then every field through analyze() (model.hpp); any
// problem throws one mixq::error naming the source, the section (and layer)
// and the field. It never reads out of bounds: every read is checked against
// the section's length, and every array length is checked against the bytes
// left before anything is allocated. read_file_bytes() takes only a regular
// file of at most max_model_file_bytes, checked before it reads (a FIFO,
// directory or device in its place is refused, never waited on).
#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <mixq/kernels/bitpack.hpp>

#include "crc32.hpp"
#include "model.hpp"

namespace mixq {
namespace deploy {

constexpr char format_magic[8] = {'M', 'I', 'X', 'Q', 'D', 'P', 'L', 'Y'};
constexpr std::uint32_t format_version = 1;
constexpr std::size_t format_header_bytes = 32;
constexpr std::size_t format_section_header_bytes = 24;
/// CONV section flag: the payload holds the per-channel rounding offsets.
constexpr std::uint32_t conv_flag_offsets = 1u;
/// CONV / LINR section flag, inside a bundle only: no codes in the payload.
constexpr std::uint32_t layer_flag_external_codes = 2u;

namespace detail {

class byte_writer {
 public:
  void u8(unsigned v) { buf_.push_back(static_cast<std::uint8_t>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) u8((v >> (8 * i)) & 0xFFu);
  }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<unsigned>((v >> (8 * i)) & 0xFFu));
  }
  void f32(float v) {
    std::uint32_t b;
    std::memcpy(&b, &v, 4);
    u32(b);
  }
  void bytes(const void* p, std::size_t n) {
    const auto* c = static_cast<const std::uint8_t*>(p);
    buf_.insert(buf_.end(), c, c + n);
  }
  void i32s(const std::vector<std::int32_t>& v) {
    for (auto x : v) i32(x);
  }
  void f32s(const std::vector<float>& v) {
    for (auto x : v) f32(x);
  }
  void codes(const std::vector<std::int8_t>& c, int bits) {
    if (bits < 2 || bits > 8) return;  // an invalid model (tests): the reader rejects the bits
    const std::size_t at = buf_.size();
    buf_.resize(at + kernels::bitpacked_size(c.size(), bits));
    if (!c.empty()) kernels::bitpack_codes(c.data(), c.size(), bits, buf_.data() + at);
  }
  std::vector<std::uint8_t>& buffer() noexcept { return buf_; }

 private:
  std::vector<std::uint8_t> buf_;
};

/// Bounds-checked little-endian reader over one section's payload.
class byte_reader {
 public:
  byte_reader(const std::uint8_t* p, std::size_t n, std::string where)
      : p_(p), n_(n), where_(std::move(where)) {}
  const std::string& where() const noexcept { return where_; }
  std::size_t left() const noexcept { return n_ - at_; }
  void need(std::size_t k, const char* field) const {
    MIXQ_CHECK(k <= left(), where_, "truncated in field '", field, "': needs ", k,
               " bytes, the section has ", left(), " left");
  }
  unsigned u8(const char* field) {
    need(1, field);
    return p_[at_++];
  }
  std::uint32_t u32(const char* field) {
    need(4, field);
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(p_[at_ + i]) << (8 * i);
    at_ += 4;
    return v;
  }
  std::int32_t i32(const char* field) { return static_cast<std::int32_t>(u32(field)); }
  float f32(const char* field) {
    const std::uint32_t b = u32(field);
    float v;
    std::memcpy(&v, &b, 4);
    return v;
  }
  /// A u32 count or dimension, checked against [lo, hi] before it sizes anything.
  std::int32_t dim(const char* field, std::int64_t lo, std::int64_t hi) {
    const std::uint32_t v = u32(field);
    MIXQ_CHECK(v >= lo && v <= hi, where_, "field '", field, "' = ", v, ", expected ", lo, "..",
               hi);
    return static_cast<std::int32_t>(v);
  }
  void zero(std::size_t k, const char* field) {
    need(k, field);
    for (std::size_t i = 0; i < k; ++i)
      MIXQ_CHECK(p_[at_ + i] == 0, where_, "field '", field, "' must be 0, byte ", i, " is ",
                 int(p_[at_ + i]));
    at_ += k;
  }
  std::vector<std::int32_t> i32s(std::size_t n, const char* field) {
    need(4 * n, field);
    std::vector<std::int32_t> v(n);
    for (auto& x : v) x = i32(field);
    return v;
  }
  std::vector<float> f32s(std::size_t n, const char* field) {
    need(4 * n, field);
    std::vector<float> v(n);
    for (auto& x : v) x = f32(field);
    return v;
  }
  std::vector<std::uint8_t> u8s(std::size_t n, const char* field) {
    need(n, field);
    std::vector<std::uint8_t> v(p_ + at_, p_ + at_ + n);
    at_ += n;
    return v;
  }
  std::vector<std::int8_t> codes(std::size_t count, int bits, const char* field) {
    MIXQ_CHECK(bits >= 2 && bits <= 8, where_, "weight bits ", bits, ", expected 2..8");
    const std::size_t nb = kernels::bitpacked_size(count, bits);
    need(nb, field);
    std::vector<std::int8_t> v(count);
    if (count) kernels::bitunpack_codes(p_ + at_, count, bits, v.data());
    // the bits past the last field of the last byte are zero in a valid file
    const std::size_t used = count * static_cast<std::size_t>(bits);
    if (used % 8)
      MIXQ_CHECK((p_[at_ + nb - 1] >> (used % 8)) == 0, where_, "field '", field,
                 "': nonzero padding bits after the last code");
    at_ += nb;
    return v;
  }
  void finish() const {
    MIXQ_CHECK(left() == 0, where_, left(), " bytes left after the last field");
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_, at_ = 0;
  std::string where_;
};

inline void put_section(byte_writer& file, const char tag[4], std::uint32_t flags,
                        const std::vector<std::uint8_t>& pl) {
  byte_writer h;
  h.bytes(tag, 4);
  h.u32(flags);
  h.u64(pl.size());
  std::uint32_t crc = crc32(h.buffer().data(), h.buffer().size());
  crc = crc32_update(crc, pl.data(), pl.size());
  h.u32(crc);
  h.u32(0);
  file.bytes(h.buffer().data(), h.buffer().size());
  file.bytes(pl.data(), pl.size());
}

inline std::uint32_t get_u32(const std::uint8_t* p) noexcept {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
         std::uint32_t(p[3]) << 24;
}
inline std::uint64_t get_u64(const std::uint8_t* p) noexcept {
  return std::uint64_t(get_u32(p)) | std::uint64_t(get_u32(p + 4)) << 32;
}

inline std::string hex32(std::uint32_t v) {
  char b[12];
  std::snprintf(b, sizeof(b), "%X", v);
  return b;
}

inline std::string tag_string(const std::uint8_t* t) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>(t[i]);
    if (c >= 0x20 && c < 0x7F) {
      s += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02X", unsigned(t[i]));
      s += hex;
    }
  }
  return s;
}

inline conv_layer read_conv(byte_reader& r, std::uint32_t flags) {
  conv_layer c;
  c.input = r.dim("input", 0, max_layers);
  c.residual = r.i32("residual");
  MIXQ_CHECK(c.residual >= -1 && c.residual <= std::int32_t(max_layers), r.where(),
             "field 'residual' = ", c.residual, ", expected -1..", max_layers);
  c.kernel = static_cast<int>(r.u8("kernel"));
  c.stride = static_cast<int>(r.u8("stride"));
  c.w_bits = static_cast<int>(r.u8("w_bits"));
  c.grid = static_cast<weight_grid>(r.u8("grid"));
  c.out_bits = static_cast<int>(r.u8("out_bits"));
  c.lo = static_cast<int>(r.u8("lo"));
  c.hi = static_cast<int>(r.u8("hi"));
  r.zero(1, "reserved");
  c.c_in = r.dim("c_in", 1, max_channels);
  c.c_out = r.dim("c_out", 1, max_channels);
  c.out_scale = r.f32("out_scale");
  MIXQ_CHECK(c.kernel == 1 || c.kernel == 3, r.where(), "field 'kernel' = ", c.kernel,
             ", expected 1 or 3");
  const std::size_t n = static_cast<std::size_t>(c.c_out);
  c.w_scale = r.f32s(n, "w_scale");
  c.bias = r.i32s(n, "bias");
  c.qm = r.i32s(n, "qm");
  const auto rs = r.u8s(n, "rshift");
  c.rshift.assign(rs.begin(), rs.end());
  if (c.residual >= 0) c.res_qm = r.i32s(n, "res_qm");
  if (flags & conv_flag_offsets) c.offset = r.i32s(n, "offset");
  if (!(flags & layer_flag_external_codes))
    c.codes = r.codes(
        n * static_cast<std::size_t>(c.kernel * c.kernel) * static_cast<std::size_t>(c.c_in),
        c.w_bits, "codes");
  return c;
}

inline pool_layer read_pool(byte_reader& r) {
  pool_layer p;
  p.input = r.dim("input", 0, max_layers);
  p.qm = r.i32("qm");
  p.rshift = static_cast<std::int32_t>(r.u8("rshift"));
  p.out_bits = static_cast<int>(r.u8("out_bits"));
  p.lo = static_cast<int>(r.u8("lo"));
  p.hi = static_cast<int>(r.u8("hi"));
  p.out_scale = r.f32("out_scale");
  return p;
}

inline remap_layer read_remap(byte_reader& r) {
  remap_layer m;
  m.input = r.dim("input", 0, max_layers);
  m.in_bits = static_cast<int>(r.u8("in_bits"));
  m.out_bits = static_cast<int>(r.u8("out_bits"));
  m.lo = static_cast<int>(r.u8("lo"));
  m.hi = static_cast<int>(r.u8("hi"));
  m.out_scale = r.f32("out_scale");
  MIXQ_CHECK(m.in_bits >= 2 && m.in_bits <= 8, r.where(), "field 'in_bits' = ", m.in_bits,
             ", expected 2..8");
  m.table = r.u8s(std::size_t(1) << m.in_bits, "table");
  return m;
}

inline linear_layer read_linear(byte_reader& r, std::uint32_t flags) {
  linear_layer l;
  l.input = r.dim("input", 0, max_layers);
  l.c_in = r.dim("c_in", 1, max_reduction);
  l.c_out = r.dim("c_out", 1, max_channels);
  l.w_bits = static_cast<int>(r.u8("w_bits"));
  l.grid = static_cast<weight_grid>(r.u8("grid"));
  r.zero(2, "reserved");
  const std::size_t n = static_cast<std::size_t>(l.c_out);
  l.w_scale = r.f32s(n, "w_scale");
  l.bias = r.i32s(n, "bias");
  l.logit_scale = r.f32s(n, "logit_scale");
  if (!(flags & layer_flag_external_codes))
    l.codes = r.codes(n * static_cast<std::size_t>(l.c_in), l.w_bits, "codes");
  return l;
}

}  // namespace detail

namespace detail {
/// The bytes of m without validating it (tests use it to make invalid files).
/// external_codes: CONV and LINR sections without their codes (bundle.hpp).
inline std::vector<std::uint8_t> serialize_unchecked(const model& m, bool external_codes = false) {
  const std::uint32_t ext = external_codes ? layer_flag_external_codes : 0u;
  struct section {
    const char* tag;
    std::uint32_t flags;
    std::vector<std::uint8_t> payload;
  };
  std::vector<section> sections;
  {
    byte_writer w;
    w.u32(static_cast<std::uint32_t>(m.input.h));
    w.u32(static_cast<std::uint32_t>(m.input.w));
    w.u32(static_cast<std::uint32_t>(m.input.c));
    w.u8(static_cast<unsigned>(m.input.bits));
    w.u8(m.input.code_table.empty() ? 0 : 1);
    w.u8(0);
    w.u8(0);
    w.bytes(m.input.zero_point.data(), m.input.zero_point.size());
    w.f32s(m.input.scale);
    w.bytes(m.input.code_table.data(), m.input.code_table.size());
    sections.push_back({"INPT", 0, std::move(w.buffer())});
  }
  for (const layer& L : m.layers) {
    byte_writer w;
    if (const auto* c = std::get_if<conv_layer>(&L)) {
      w.u32(static_cast<std::uint32_t>(c->input));
      w.i32(c->residual);
      for (int v : {c->kernel, c->stride, c->w_bits, int(c->grid), c->out_bits, c->lo, c->hi, 0})
        w.u8(static_cast<unsigned>(v));
      w.u32(static_cast<std::uint32_t>(c->c_in));
      w.u32(static_cast<std::uint32_t>(c->c_out));
      w.f32(c->out_scale);
      w.f32s(c->w_scale);
      w.i32s(c->bias);
      w.i32s(c->qm);
      for (auto s : c->rshift) w.u8(static_cast<unsigned>(s));
      if (c->residual >= 0) w.i32s(c->res_qm);
      if (!c->offset.empty()) w.i32s(c->offset);
      if (!external_codes) w.codes(c->codes, c->w_bits);
      sections.push_back(
          {"CONV", (c->offset.empty() ? 0u : conv_flag_offsets) | ext, std::move(w.buffer())});
    } else if (const auto* p = std::get_if<pool_layer>(&L)) {
      w.u32(static_cast<std::uint32_t>(p->input));
      w.i32(p->qm);
      for (int v : {int(p->rshift), p->out_bits, p->lo, p->hi}) w.u8(static_cast<unsigned>(v));
      w.f32(p->out_scale);
      sections.push_back({"POOL", 0, std::move(w.buffer())});
    } else if (const auto* rm = std::get_if<remap_layer>(&L)) {
      w.u32(static_cast<std::uint32_t>(rm->input));
      for (int v : {rm->in_bits, rm->out_bits, rm->lo, rm->hi}) w.u8(static_cast<unsigned>(v));
      w.f32(rm->out_scale);
      w.bytes(rm->table.data(), rm->table.size());
      sections.push_back({"RMAP", 0, std::move(w.buffer())});
    } else {
      const auto& l = std::get<linear_layer>(L);
      w.u32(static_cast<std::uint32_t>(l.input));
      w.u32(static_cast<std::uint32_t>(l.c_in));
      w.u32(static_cast<std::uint32_t>(l.c_out));
      w.u8(static_cast<unsigned>(l.w_bits));
      w.u8(static_cast<unsigned>(l.grid));
      w.u8(0);
      w.u8(0);
      w.f32s(l.w_scale);
      w.i32s(l.bias);
      w.f32s(l.logit_scale);
      if (!external_codes) w.codes(l.codes, l.w_bits);
      sections.push_back({"LINR", ext, std::move(w.buffer())});
    }
  }
  if (!m.labels.empty()) {
    byte_writer w;
    w.u32(static_cast<std::uint32_t>(m.labels.size()));
    for (const auto& s : m.labels) {
      w.u32(static_cast<std::uint32_t>(s.size()));
      w.bytes(s.data(), s.size());
    }
    sections.push_back({"LABL", 0, std::move(w.buffer())});
  }
  if (!m.meta.empty()) {
    byte_writer w;
    w.bytes(m.meta.data(), m.meta.size());
    sections.push_back({"META", 0, std::move(w.buffer())});
  }
  std::uint64_t total = format_header_bytes;
  for (const auto& s : sections) total += format_section_header_bytes + s.payload.size();
  byte_writer f;
  f.bytes(format_magic, 8);
  f.u32(format_version);
  f.u32(0);
  f.u64(total);
  f.u32(static_cast<std::uint32_t>(sections.size()));
  f.u32(crc32(f.buffer().data(), f.buffer().size()));
  for (const auto& s : sections) put_section(f, s.tag, s.flags, s.payload);
  return std::move(f.buffer());
}
}  // namespace detail

/// The model as file bytes. Validates first (analyze), so an invalid model is
/// never written. throws: mixq::error from analyze().
inline std::vector<std::uint8_t> serialize(const model& m) {
  analyze(m);
  return detail::serialize_unchecked(m);
}

namespace detail {
/// Checks the 32-byte header of a file of this format family (magic, version,
/// header CRC, flags 0, file size) and returns its section count. `what`
/// names the kind of file ("a mixq deploy model"), `word` its version.
inline std::uint32_t read_file_header(const std::uint8_t* data, std::size_t size,
                                      const std::string& src, const char (&magic)[8],
                                      const char* what, const char* word, std::uint32_t version) {
  MIXQ_CHECK(data != nullptr || size == 0, src, "no data");
  const std::size_t mlen = size < 8 ? size : 8;
  MIXQ_CHECK(mlen == 0 || std::memcmp(data, magic, mlen) == 0, src, "not ", what,
             " (the file does not start with \"", std::string(magic, 8), "\")");
  MIXQ_CHECK(size >= format_header_bytes, src, "truncated: ", size,
             " bytes, shorter than the 32-byte header");
  const std::uint32_t v = get_u32(data + 8);
  MIXQ_CHECK(v == version, src, word, " version ", v, ", this runtime reads version ", version);
  MIXQ_CHECK(crc32(data, 28) == get_u32(data + 28), src,
             "header checksum mismatch (the header is corrupted)");
  MIXQ_CHECK(get_u32(data + 12) == 0, src, "header flags ", get_u32(data + 12), ", expected 0");
  const std::uint64_t file_size = get_u64(data + 16);
  MIXQ_CHECK(file_size == size, src,
             size < file_size ? "truncated: the header says " : "trailing bytes: the header says ",
             file_size, " bytes, the data has ", size);
  return get_u32(data + 24);
}

/// The section header at byte `at`, checked to lie inside the data.
inline const std::uint8_t* section_at(const std::uint8_t* data, std::size_t size, std::size_t at,
                                      const std::string& where) {
  MIXQ_CHECK(size - at >= format_section_header_bytes, where, ": truncated section header at byte ",
             at);
  return data + at;
}

/// Checks the section at `at` (its payload inside the data, its CRC, the
/// reserved word 0) and returns its payload length; `where` names it.
inline std::uint64_t section_payload(const std::uint8_t* data, std::size_t size, std::size_t at,
                                     const std::string& where) {
  const std::uint8_t* h = data + at;
  const std::uint64_t len = get_u64(h + 8);
  MIXQ_CHECK(len <= size - at - format_section_header_bytes, where, "payload length ", len,
             " runs past the end of the data (", size - at - format_section_header_bytes,
             " bytes left)");
  std::uint32_t crc = crc32(h, 16);
  crc = crc32_update(crc, h + format_section_header_bytes, static_cast<std::size_t>(len));
  MIXQ_CHECK(crc == get_u32(h + 16), where, "checksum mismatch (corrupted data)");
  MIXQ_CHECK(get_u32(h + 20) == 0, where, "section reserved field not 0");
  return len;
}

/// parse() without analyze(); with external_codes (a bundle's configuration)
/// every CONV and LINR section must have flag bit 1 and the codes stay empty.
/// `src` starts every error message.
inline model parse_sections(const std::uint8_t* data, std::size_t size, const std::string& src,
                            bool external_codes) {
  const std::uint32_t count = read_file_header(data, size, src, format_magic, "a mixq deploy model",
                                               "format", format_version);
  MIXQ_CHECK(count >= 2 && count <= max_layers + 3, src, "section count ", count, ", expected 2..",
             max_layers + 3);

  model m;
  std::size_t at = format_header_bytes;
  bool seen_linear = false, seen_labels = false, seen_meta = false;
  for (std::uint32_t si = 0; si < count; ++si) {
    std::string where = src + "section " + std::to_string(si);
    const std::uint8_t* h = section_at(data, size, at, where);
    const std::string tag = detail::tag_string(h);
    const bool layer_tag = tag == "CONV" || tag == "POOL" || tag == "RMAP" || tag == "LINR";
    where += " (" + tag +
             (layer_tag && si > 0 ? ", layer " + std::to_string(si - 1) : std::string()) + "): ";
    const std::uint64_t len = section_payload(data, size, at, where);
    const std::uint8_t* pl = h + format_section_header_bytes;
    const std::uint32_t flags = detail::get_u32(h + 4);
    const std::uint32_t known =
        (tag == "CONV" ? conv_flag_offsets : 0u) |
        (external_codes && (tag == "CONV" || tag == "LINR") ? layer_flag_external_codes : 0u);
    MIXQ_CHECK(
        (flags & ~known) == 0, where, "section flags 0x", detail::hex32(flags),
        " have unknown bits 0x", detail::hex32(flags & ~known), " (",
        tag == "CONV" ? "a CONV section knows bit 0, the rounding offsets"
                      : "this section has no flags",
        tag == "CONV" || tag == "LINR" ? "; bit 1, codes kept elsewhere, only in a bundle" : "",
        "; a newer format?)");
    if (external_codes && (tag == "CONV" || tag == "LINR"))
      MIXQ_CHECK(flags & layer_flag_external_codes, where,
                 "a layer of a bundle's configuration must have flag bit 1 (codes in the bundle)");
    detail::byte_reader r(pl, static_cast<std::size_t>(len), where);
    if (si == 0) {
      MIXQ_CHECK(tag == "INPT", where, "the first section must be INPT");
      input_spec& in = m.input;
      in.h = r.dim("h", 1, max_spatial);
      in.w = r.dim("w", 1, max_spatial);
      in.c = r.dim("c", 1, max_channels);
      in.bits = static_cast<int>(r.u8("bits"));
      const unsigned table = r.u8("has_table");
      MIXQ_CHECK(table <= 1, where, "field 'has_table' = ", table, ", expected 0 or 1");
      r.zero(2, "reserved");
      in.zero_point = r.u8s(static_cast<std::size_t>(in.c), "zero_point");
      in.scale = r.f32s(static_cast<std::size_t>(in.c), "scale");
      if (table) in.code_table = r.u8s(256 * static_cast<std::size_t>(in.c), "code_table");
    } else if (layer_tag) {
      MIXQ_CHECK(!seen_linear, where, "a layer after the linear layer (which must be last)");
      MIXQ_CHECK(!seen_labels && !seen_meta, where, "a layer after LABL / META");
      if (tag == "CONV") {
        m.layers.emplace_back(detail::read_conv(r, flags));
      } else if (tag == "POOL") {
        m.layers.emplace_back(detail::read_pool(r));
      } else if (tag == "RMAP") {
        m.layers.emplace_back(detail::read_remap(r));
      } else {
        m.layers.emplace_back(detail::read_linear(r, flags));
        seen_linear = true;
      }
    } else if (tag == "LABL") {
      MIXQ_CHECK(!seen_labels && !seen_meta, where, "LABL repeated or after META");
      seen_labels = true;
      const std::int32_t n = r.dim("count", 1, max_channels);
      for (std::int32_t i = 0; i < n; ++i) {
        const std::int32_t k = r.dim("label length", 0, 4096);
        const auto b = r.u8s(static_cast<std::size_t>(k), "label");
        m.labels.emplace_back(b.begin(), b.end());
      }
    } else if (tag == "META") {
      MIXQ_CHECK(!seen_meta, where, "META repeated");
      seen_meta = true;
      const auto b = r.u8s(r.left(), "text");
      m.meta.assign(b.begin(), b.end());
    } else {
      MIXQ_CHECK(false, where,
                 "unknown section tag (expected INPT, CONV, POOL, RMAP, LINR, LABL, META)");
    }
    r.finish();
    at += format_section_header_bytes + static_cast<std::size_t>(len);
  }
  MIXQ_CHECK(at == size, src, size - at, " bytes after the last section");
  MIXQ_CHECK(seen_linear, src, "no LINR section (the model has no output layer)");
  return m;
}
}  // namespace detail

/// Reads a model from file bytes; `source` names it in error messages.
/// throws: mixq::error naming the source, the section and the field.
inline model parse(const std::uint8_t* data, std::size_t size,
                   const std::string& source = "model") {
  const std::string src = "model file '" + source + "': ";
  model m = detail::parse_sections(data, size, src, false);
  try {
    analyze(m);
  } catch (const error& e) {
    throw error(src + e.what(), e.file(), e.line());
  }
  return m;
}

inline model parse(const std::vector<std::uint8_t>& bytes, const std::string& source = "model") {
  return parse(bytes.data(), bytes.size(), source);
}

/// The largest model file read_file_bytes accepts (a ResNet20 at W8A8 is
/// under 1 MiB).
constexpr std::uint64_t max_model_file_bytes = std::uint64_t(1) << 30;

/// The bytes of the model file at `path`. On POSIX systems the path is opened
/// without blocking and must be a regular file of at most
/// max_model_file_bytes, so a FIFO, a directory or a device (/dev/zero) in
/// its place is refused at once instead of hanging or filling memory.
/// throws: mixq::error naming the file and the reason.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
#if defined(__unix__) || defined(__APPLE__)
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  MIXQ_CHECK(fd >= 0, "cannot open '", path, "' for reading (", std::strerror(errno), ")");
  struct stat st;
  const bool stat_ok = ::fstat(fd, &st) == 0;
  if (!stat_ok || !S_ISREG(st.st_mode) ||
      static_cast<std::uint64_t>(st.st_size) > max_model_file_bytes) {
    ::close(fd);
    MIXQ_CHECK(stat_ok, "cannot stat '", path, "'");
    MIXQ_CHECK(S_ISREG(st.st_mode), "'", path, "' is not a regular file (a directory, FIFO or ",
               "device?)");
    MIXQ_CHECK(false, "'", path, "': ", static_cast<std::uint64_t>(st.st_size),
               " bytes, more than the ", max_model_file_bytes, " a model file may have");
  }
  std::vector<std::uint8_t> b(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < b.size()) {
    const ssize_t k = ::read(fd, b.data() + got, b.size() - got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    got += static_cast<std::size_t>(k);
  }
  const int err = errno;
  ::close(fd);
  MIXQ_CHECK(got == b.size(), "error reading '", path, "' (", got, " of ", b.size(), " bytes",
             got < b.size() && err ? std::string(", ") + std::strerror(err) : std::string(), ")");
  return b;
#else
  std::FILE* f = std::fopen(path.c_str(), "rb");
  MIXQ_CHECK(f != nullptr, "cannot open '", path, "' for reading");
  std::vector<std::uint8_t> b;
  unsigned char chunk[1 << 16];
  std::size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), f)) > 0 && b.size() <= max_model_file_bytes)
    b.insert(b.end(), chunk, chunk + got);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  MIXQ_CHECK(!bad, "error reading '", path, "'");
  MIXQ_CHECK(b.size() <= max_model_file_bytes, "'", path, "': more than the ", max_model_file_bytes,
             " bytes a model file may have");
  return b;
#endif
}

/// Writes bytes to "<path>.tmp" and renames it over path (never a partial file).
inline void write_file_bytes(const std::string& path, const void* data, std::size_t n) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  MIXQ_CHECK(f != nullptr, "cannot open '", tmp, "' for writing");
  const bool ok = std::fwrite(data, 1, n, f) == n && std::fflush(f) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    MIXQ_CHECK(false, "cannot write '", path, "'");
  }
}

inline model load_model(const std::string& path) {
  const auto b = read_file_bytes(path);
  return parse(b.data(), b.size(), path);
}

inline void save_model(const model& m, const std::string& path) {
  const auto b = serialize(m);
  write_file_bytes(path, b.data(), b.size());
}

}  // namespace deploy
}  // namespace mixq
