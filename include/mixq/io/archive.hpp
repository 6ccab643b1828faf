#pragma once
// The mixq archive: one file holding named arrays and string metadata, for
// checkpoints (model state + optimizer state + epoch + RNG states) and for
// exported models.
//
// Why a format of our own: the data are a handful of flat arrays with names
// and shapes; we need integrity checks (a checkpoint that silently loads
// flipped bits is worse than one that fails) and crash safety, and nothing
// else. The format is simple enough to read from Python with `struct` in 30
// lines (docs/data.md gives the byte layout).
//
// Layout (all integers little-endian; array data in little-endian element order):
//   header   "MIXQARCH" | u32 version (1) | u32 flags (0) | u32 meta_count
//            | u32 entry_count | u32 crc32(previous 24 bytes)
//   metadata meta_count x { u32 key_len | key | u32 value_len | value },
//            then u32 crc32(all metadata records)
//   entries  entry_count x { u32 name_len | name | u8 dtype | u8 rank
//            | u16 0 | i64 dims[rank] | u64 nbytes | u32 crc32(entry header
//            from name_len to nbytes) | u32 crc32(data) | data[nbytes] }
//   trailer  "MIXQEND!" | u64 total file size in bytes
// dtype: 1 = f32, 2 = i32, 3 = i64, 4 = u8. nbytes == product(dims) * size.
// Entries and metadata keep their insertion order; names and keys are unique.
//
// Crash safety: save_archive writes "<path>.tmp", fsyncs it, renames it over
// <path> (atomic on POSIX file systems) and fsyncs the directory. A writer
// killed at any point leaves <path> either old or new, never partial; a stale
// .tmp is overwritten by the next save. If writing fails, <path> is untouched
// and the .tmp is removed.
//
// Reading checks the magic, the version, every CRC, every size and the
// trailer (which catches truncation and trailing bytes), and throws
// mixq::error naming the file and the entry or metadata key concerned.
//
// What is stored: model files (nn/model_file.hpp) and training checkpoints
// (train/checkpoint.hpp) list their entries and metadata keys in their heads.
#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/io/file.hpp"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mixq archives are little-endian; big-endian hosts are not supported"
#endif

namespace mixq::io {

enum class dtype : std::uint8_t { f32 = 1, i32 = 2, i64 = 3, u8 = 4 };

inline std::size_t dtype_size(dtype t) {
  switch (t) {
    case dtype::f32:
      return 4;
    case dtype::i32:
      return 4;
    case dtype::i64:
      return 8;
    case dtype::u8:
      return 1;
  }
  return 0;
}
inline const char* dtype_name(dtype t) {
  switch (t) {
    case dtype::f32:
      return "f32";
    case dtype::i32:
      return "i32";
    case dtype::i64:
      return "i64";
    case dtype::u8:
      return "u8";
  }
  return "?";
}
template <class T>
constexpr dtype dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, std::int32_t> ||
                    std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint8_t>,
                "archive entries hold float, int32_t, int64_t or uint8_t");
  if constexpr (std::is_same_v<T, float>) return dtype::f32;
  if constexpr (std::is_same_v<T, std::int32_t>) return dtype::i32;
  if constexpr (std::is_same_v<T, std::int64_t>) return dtype::i64;
  return dtype::u8;
}

inline std::string shape_string(const std::vector<std::int64_t>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

struct archive_entry {
  std::string name;
  dtype type = dtype::f32;
  std::vector<std::int64_t> shape;  // empty = scalar (one element)
  std::vector<std::uint8_t> data;   // numel() * dtype_size(type) bytes

  // throws: mixq::error when a dimension is negative or the product of the
  //         dimensions overflows int64 (a crafted shape).
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape)
      MIXQ_CHECK(d >= 0 && !__builtin_mul_overflow(n, d, &n), "archive entry '", name, "': shape ",
                 shape_string(shape), " has no valid element count");
    return n;
  }
  // The data as a vector of T.
  // throws: mixq::error when T does not match the stored dtype.
  template <class T>
  std::vector<T> to_vector() const {
    MIXQ_CHECK(type == dtype_of<T>(), "archive entry '", name, "': dtype ", dtype_name(type),
               ", read as ", dtype_name(dtype_of<T>()));
    std::vector<T> v(static_cast<std::size_t>(numel()));
    if (!v.empty()) std::memcpy(v.data(), data.data(), data.size());
    return v;
  }
};

class archive {
 public:
  // Adds an entry (copies numel(shape) values from `values`).
  // throws: mixq::error on a duplicate name or a negative dimension.
  template <class T>
  archive_entry& add(const std::string& name, const std::vector<std::int64_t>& shape,
                     const T* values) {
    archive_entry e;
    e.name = name;
    e.type = dtype_of<T>();
    e.shape = shape;
    for (auto d : shape)
      MIXQ_CHECK(d >= 0, "archive: entry '", name, "': bad shape ", shape_string(shape));
    e.data.resize(static_cast<std::size_t>(e.numel()) * sizeof(T));
    if (!e.data.empty()) std::memcpy(e.data.data(), values, e.data.size());
    return add_entry(std::move(e));
  }
  template <class T>
  archive_entry& add(const std::string& name, const std::vector<std::int64_t>& shape,
                     const std::vector<T>& values) {
    archive_entry probe;
    probe.name = name;
    probe.shape = shape;
    const std::int64_t n = probe.numel();
    MIXQ_CHECK(static_cast<std::int64_t>(values.size()) == n, "archive: entry '", name, "': shape ",
               shape_string(shape), " needs ", n, " values, got ", values.size());
    return add(name, shape, values.data());
  }
  // 1-D shortcut: shape {values.size()}.
  template <class T>
  archive_entry& add(const std::string& name, const std::vector<T>& values) {
    return add(name, {static_cast<std::int64_t>(values.size())}, values.data());
  }
  // uint64 words (RNG states, counters), stored as an i64 entry with the
  // same bits; read back with get_u64_words.
  archive_entry& add_u64_words(const std::string& name, const std::vector<std::uint64_t>& words) {
    std::vector<std::int64_t> v(words.size());
    if (!v.empty()) std::memcpy(v.data(), words.data(), words.size() * sizeof(std::uint64_t));
    return add(name, v);
  }
  archive_entry& add_entry(archive_entry e) {
    MIXQ_CHECK(find(e.name) == nullptr, "archive: duplicate entry name '", e.name, "'");
    MIXQ_CHECK(e.name.size() < (1u << 16), "archive: entry name longer than 65535 bytes");
    MIXQ_CHECK(e.shape.size() <= 255, "archive: entry '", e.name, "': rank ", e.shape.size(),
               " > 255");
    MIXQ_CHECK(e.data.size() == static_cast<std::size_t>(e.numel()) * dtype_size(e.type),
               "archive: entry '", e.name, "': ", e.data.size(), " bytes, expected ", e.numel(),
               " x ", dtype_size(e.type));
    index_.emplace(e.name, entries_.size());
    entries_.push_back(std::move(e));
    return entries_.back();
  }

  const archive_entry* find(const std::string& name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
  }
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  // throws: mixq::error naming the archive's file and the missing entry.
  const archive_entry& at(const std::string& name) const {
    const archive_entry* e = find(name);
    MIXQ_CHECK(e != nullptr, "archive ", source_or_memory(), ": no entry '", name, "'");
    return *e;
  }
  // The entry's values, checking dtype and (when given) shape.
  template <class T>
  std::vector<T> get(const std::string& name,
                     const std::vector<std::int64_t>* shape = nullptr) const {
    const archive_entry& e = at(name);
    MIXQ_CHECK(e.type == dtype_of<T>(), "archive ", source_or_memory(), ": entry '", name,
               "' has dtype ", dtype_name(e.type), ", expected ", dtype_name(dtype_of<T>()));
    if (shape)
      MIXQ_CHECK(e.shape == *shape, "archive ", source_or_memory(), ": entry '", name,
                 "' has shape ", shape_string(e.shape), ", expected ", shape_string(*shape));
    return e.to_vector<T>();
  }
  std::vector<std::uint64_t> get_u64_words(const std::string& name) const {
    const auto v = get<std::int64_t>(name);
    std::vector<std::uint64_t> w(v.size());
    if (!w.empty()) std::memcpy(w.data(), v.data(), v.size() * sizeof(std::uint64_t));
    return w;
  }
  const std::vector<archive_entry>& entries() const { return entries_; }

  // Metadata: ordered string key/values; set_meta replaces an existing key in place.
  void set_meta(const std::string& key, const std::string& value) {
    const auto it = meta_index_.find(key);
    if (it != meta_index_.end()) {
      meta_[it->second].second = value;
      return;
    }
    meta_index_.emplace(key, meta_.size());
    meta_.emplace_back(key, value);
  }
  void set_meta_int(const std::string& key, std::int64_t v) { set_meta(key, std::to_string(v)); }
  void set_meta_u64(const std::string& key, std::uint64_t v) { set_meta(key, std::to_string(v)); }
  bool has_meta(const std::string& key) const { return meta_index_.count(key) != 0; }
  // throws: mixq::error naming the file and the missing key.
  const std::string& meta(const std::string& key) const {
    const auto it = meta_index_.find(key);
    if (it != meta_index_.end()) return meta_[it->second].second;
    MIXQ_CHECK(false, "archive ", source_or_memory(), ": no metadata key '", key, "'");
    return meta_.front().second;  // unreachable
  }
  std::int64_t meta_int(const std::string& key) const {
    const std::string& s = meta(key);
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    MIXQ_CHECK(!s.empty() && *end == '\0' && errno == 0, "archive ", source_or_memory(),
               ": metadata '", key, "' = '", s, "', expected an integer");
    return v;
  }
  std::uint64_t meta_u64(const std::string& key) const {
    const std::string& s = meta(key);
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    MIXQ_CHECK(!s.empty() && s[0] != '-' && *end == '\0' && errno == 0, "archive ",
               source_or_memory(), ": metadata '", key, "' = '", s,
               "', expected an unsigned integer");
    return v;
  }
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return meta_; }

  // The file this archive was read from ("" when built in memory).
  const std::string& source() const { return source_; }
  void set_source(std::string s) { source_ = std::move(s); }

 private:
  std::string source_or_memory() const { return source_.empty() ? "(in memory)" : source_; }
  std::vector<archive_entry> entries_;
  std::vector<std::pair<std::string, std::string>> meta_;
  // Name -> position, so lookups (and the duplicate checks of a hostile file
  // with many entries) are not quadratic.
  std::unordered_map<std::string, std::size_t> index_, meta_index_;
  std::string source_;
};

namespace detail {

inline constexpr char archive_magic[8] = {'M', 'I', 'X', 'Q', 'A', 'R', 'C', 'H'};
inline constexpr char archive_end[8] = {'M', 'I', 'X', 'Q', 'E', 'N', 'D', '!'};
inline constexpr std::uint32_t archive_version = 1;

inline std::uint32_t crc32_of(const std::uint8_t* p, std::size_t n, std::uint32_t crc = 0) {
  uLong c = crc;
  while (n > 0) {
    const std::size_t k = n < (std::size_t(1) << 30) ? n : (std::size_t(1) << 30);
    c = ::crc32(c, p, static_cast<uInt>(k));
    p += k;
    n -= k;
  }
  return static_cast<std::uint32_t>(c);
}

struct byte_writer {
  std::vector<std::uint8_t> buf;
  void put(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    buf.insert(buf.end(), b, b + n);
  }
  template <class T>
  void put_le(T v) {  // host is little-endian (checked above)
    put(&v, sizeof v);
  }
  void put_str32(const std::string& s) {
    put_le(static_cast<std::uint32_t>(s.size()));
    put(s.data(), s.size());
  }
};

// Writes all bytes to fd; false on error (errno set).
inline bool write_all(int fd, const void* p, std::size_t n) {
  const auto* b = static_cast<const std::uint8_t*>(p);
  while (n > 0) {
    const ssize_t k = ::write(fd, b, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    b += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

// Bounds-checked little-endian reader over a file image.
struct byte_reader {
  const std::vector<std::uint8_t>& b;
  const std::string& file;
  std::size_t pos = 0;
  void need(std::size_t n, const std::string& what) const {
    MIXQ_CHECK(n <= b.size() - pos, "archive ", file, ": truncated in ", what, " at offset ", pos,
               ": needs ", n, " bytes, ", b.size() - pos, " left");
  }
  template <class T>
  T get_le(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b.data() + pos, sizeof v);
    pos += sizeof v;
    return v;
  }
  std::string get_str32(const std::string& what) {
    const auto n = get_le<std::uint32_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(b.data() + pos), n);
    pos += n;
    return s;
  }
};

}  // namespace detail

// Writes `a` to `path` atomically (see the file comment).
// ensures: on return <path> holds `a`; on throw <path> is unchanged and
//          "<path>.tmp" does not exist.
// throws:  mixq::error naming the file and the failing step.
inline void save_archive(const archive& a, const std::string& path) {
  using detail::byte_writer;
  byte_writer head;
  head.put(detail::archive_magic, 8);
  head.put_le(detail::archive_version);
  head.put_le(std::uint32_t(0));
  head.put_le(static_cast<std::uint32_t>(a.metadata().size()));
  head.put_le(static_cast<std::uint32_t>(a.entries().size()));
  head.put_le(detail::crc32_of(head.buf.data(), head.buf.size()));
  byte_writer meta;
  for (const auto& kv : a.metadata()) {
    meta.put_str32(kv.first);
    meta.put_str32(kv.second);
  }
  const std::uint32_t meta_crc = detail::crc32_of(meta.buf.data(), meta.buf.size());
  meta.put_le(meta_crc);

  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MIXQ_CHECK(fd >= 0, "archive ", path, ": cannot create ", tmp, " (", std::strerror(errno), ")");
  std::uint64_t total = 0;
  auto fail = [&](const std::string& step) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    MIXQ_CHECK(false, "archive ", path, ": ", step, " failed (", std::strerror(err),
               "); the previous file, if any, is unchanged");
  };
  auto emit = [&](const void* p, std::size_t n, const std::string& what) {
    if (!detail::write_all(fd, p, n)) fail("writing " + what);
    total += n;
  };
  emit(head.buf.data(), head.buf.size(), "the header");
  emit(meta.buf.data(), meta.buf.size(), "the metadata");
  for (const auto& e : a.entries()) {
    byte_writer eh;
    eh.put_str32(e.name);
    eh.put_le(static_cast<std::uint8_t>(e.type));
    eh.put_le(static_cast<std::uint8_t>(e.shape.size()));
    eh.put_le(std::uint16_t(0));
    for (auto d : e.shape) eh.put_le(static_cast<std::int64_t>(d));
    eh.put_le(static_cast<std::uint64_t>(e.data.size()));
    eh.put_le(detail::crc32_of(eh.buf.data(), eh.buf.size()));
    eh.put_le(detail::crc32_of(e.data.data(), e.data.size()));
    emit(eh.buf.data(), eh.buf.size(), "entry '" + e.name + "'");
    emit(e.data.data(), e.data.size(), "entry '" + e.name + "'");
  }
  detail::byte_writer tail;
  tail.put(detail::archive_end, 8);
  tail.put_le(static_cast<std::uint64_t>(total + 16));
  emit(tail.buf.data(), tail.buf.size(), "the trailer");
  if (::fsync(fd) != 0) fail("fsync of " + tmp);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    MIXQ_CHECK(false, "archive ", path, ": closing ", tmp, " failed (", std::strerror(err), ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    MIXQ_CHECK(false, "archive ", path, ": renaming ", tmp, " failed (", std::strerror(err), ")");
  }
  // Make the rename itself durable.
  const auto slash = path.find_last_of('/');
  const std::string dir =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// Parses an archive from its bytes; `file` names it in messages.
// throws: mixq::error naming the file and the entry/key on any inconsistency.
inline archive parse_archive(const std::vector<std::uint8_t>& bytes, const std::string& file) {
  detail::byte_reader r{bytes, file};
  r.need(28, "the header");
  MIXQ_CHECK(std::memcmp(bytes.data(), detail::archive_magic, 8) == 0, "archive ", file,
             ": bad magic (not a mixq archive; expected \"MIXQARCH\")");
  r.pos = 8;
  const auto version = r.get_le<std::uint32_t>("the header");
  r.get_le<std::uint32_t>("the header");  // flags
  const auto n_meta = r.get_le<std::uint32_t>("the header");
  const auto n_entries = r.get_le<std::uint32_t>("the header");
  const auto head_crc = r.get_le<std::uint32_t>("the header");
  // The CRC first: a flipped bit in the version field is corruption, not a
  // file from another version of mixq.
  MIXQ_CHECK(head_crc == detail::crc32_of(bytes.data(), 24), "archive ", file,
             ": header CRC mismatch (corrupt header)");
  MIXQ_CHECK(version == detail::archive_version, "archive ", file, ": format version ", version,
             ", this build reads version ", detail::archive_version);

  archive a;
  a.set_source(file);
  const std::size_t meta_begin = r.pos;
  for (std::uint32_t i = 0; i < n_meta; ++i) {
    const std::string what = "metadata record " + std::to_string(i);
    std::string k = r.get_str32(what);
    std::string v = r.get_str32(what + " ('" + k + "')");
    MIXQ_CHECK(!a.has_meta(k), "archive ", file, ": duplicate metadata key '", k, "'");
    a.set_meta(k, v);
  }
  const std::uint32_t meta_crc = detail::crc32_of(bytes.data() + meta_begin, r.pos - meta_begin);
  MIXQ_CHECK(r.get_le<std::uint32_t>("the metadata CRC") == meta_crc, "archive ", file,
             ": metadata CRC mismatch (corrupt metadata)");

  for (std::uint32_t i = 0; i < n_entries; ++i) {
    const std::size_t eh_begin = r.pos;
    const std::string what = "entry #" + std::to_string(i);
    archive_entry e;
    e.name = r.get_str32(what + " name");
    const std::string ewhat = what + " ('" + e.name + "')";
    const auto t = r.get_le<std::uint8_t>(ewhat);
    const auto rank = r.get_le<std::uint8_t>(ewhat);
    r.get_le<std::uint16_t>(ewhat);
    for (int d = 0; d < rank; ++d) e.shape.push_back(r.get_le<std::int64_t>(ewhat + " shape"));
    const auto nbytes = r.get_le<std::uint64_t>(ewhat);
    const std::uint32_t hcrc = detail::crc32_of(bytes.data() + eh_begin, r.pos - eh_begin);
    MIXQ_CHECK(r.get_le<std::uint32_t>(ewhat) == hcrc, "archive ", file, ": ", ewhat,
               ": header CRC mismatch (corrupt entry header)");
    const auto dcrc = r.get_le<std::uint32_t>(ewhat);
    MIXQ_CHECK(t >= 1 && t <= 4, "archive ", file, ": entry '", e.name, "': unknown dtype ",
               int(t));
    e.type = static_cast<dtype>(t);
    std::int64_t numel = 1;
    for (auto d : e.shape)
      MIXQ_CHECK(d >= 0 && !__builtin_mul_overflow(numel, d, &numel), "archive ", file, ": entry '",
                 e.name, "': bad shape ", shape_string(e.shape),
                 d < 0 ? " (negative dimension)" : " (element count overflows int64)");
    std::uint64_t want = 0;
    const bool fits = !__builtin_mul_overflow(
        static_cast<std::uint64_t>(numel), static_cast<std::uint64_t>(dtype_size(e.type)), &want);
    MIXQ_CHECK(fits && nbytes == want, "archive ", file, ": entry '", e.name, "': ", nbytes,
               " data bytes, expected ", numel, " x ", dtype_size(e.type), " for ",
               dtype_name(e.type), shape_string(e.shape));
    r.need(nbytes, "entry '" + e.name + "' data");
    const std::uint8_t* p = bytes.data() + r.pos;
    MIXQ_CHECK(detail::crc32_of(p, nbytes) == dcrc, "archive ", file, ": entry '", e.name,
               "': data CRC mismatch (corrupt data)");
    e.data.assign(p, p + nbytes);
    r.pos += nbytes;
    MIXQ_CHECK(!a.contains(e.name), "archive ", file, ": duplicate entry name '", e.name, "'");
    a.add_entry(std::move(e));
  }
  r.need(16, "the trailer");
  MIXQ_CHECK(std::memcmp(bytes.data() + r.pos, detail::archive_end, 8) == 0, "archive ", file,
             ": bad trailer after the last entry (corrupt or not written completely)");
  r.pos += 8;
  const auto total = r.get_le<std::uint64_t>("the trailer");
  MIXQ_CHECK(total == bytes.size() && r.pos == bytes.size(), "archive ", file, ": file is ",
             bytes.size(), " bytes, the trailer says ", total);
  return a;
}

// Reads and validates the archive at `path` (a regular file: a directory or
// FIFO there is refused before anything is read).
inline archive load_archive(const std::string& path) {
  return parse_archive(detail::read_regular_file(path, "archive ", 0), path);
}

}  // namespace mixq::io
