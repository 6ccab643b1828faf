#pragma once
// Files: whole-file reading (plain or gzip-compressed), safe against hostile
// paths and hostile bytes, and the small file helpers the training loop needs
// (path_exists, file_exists, make_dirs, read_lines, atomic writes,
// truncate_csv).
//
// Why: every data set mixq reads (CIFAR-10 binary batches, Fashion-MNIST IDX
// files) ships either plain or gzip-compressed, and each file is small enough
// (tens of MB) to be read in one go. Reading a whole file into one buffer keeps
// the parsers trivial: they see bytes and check sizes, nothing else.
//
// Opening: a path is opened with O_NONBLOCK and checked with fstat to be a
// regular file before a byte is read, so a directory, a FIFO (which would block
// forever waiting for a writer), a socket or a device in place of a data file
// is refused at once, with what it is. Whether a path exists is asked of
// stat(2), never of open(2): a file that exists but cannot be opened (no read
// permission) is reported with the system's reason, never as "not found".
//
// Decoding: the bytes of the file decide the format, not its name. A file that
// starts with the gzip magic (1f 8b) is inflated with zlib (inflate with the
// gzip wrapper, so the CRC-32 and length in each member's trailer are checked);
// any other file is returned as is. Concatenated gzip members (what
// `cat a.gz b.gz` gives) are read as one stream, as gzip(1) does. decode_gzip
// works on bytes in memory (the fuzz targets call it directly).
//
// Bounds: `max_bytes` bounds the plain size and the decompressed size; a
// gzip bomb stops inflating as soon as its output passes the bound, and the
// output buffer is never reserved beyond the bound (the size hint in a gzip
// trailer is untrusted: a truncated or crafted file may claim 4 GiB).
//
// ".gz" probing (resolve_maybe_gz): `path` is preferred; `path + ".gz"` is used
// only when `path` does not exist at all. A `path` that exists but is
// unreadable, a directory or a FIFO is an error, never a silent switch to the
// ".gz" (which might hold other data); the message names the ".gz" when it is
// there too.
//
// Writing: write_file_atomic writes "<path>.tmp", fsyncs it and renames it
// over <path>, so a reader (or a resumed run) sees the old or the new file,
// never a partial one; every failure is an error naming the file.
// truncate_csv rewrites a CSV log that way.
//
// Errors (mixq::error, the message starts with the path):
//  - missing: "file not found"; unreadable: "cannot open (<strerror>)";
//  - not a regular file: "is a directory / a FIFO (named pipe) / ..., expected
//    a regular file";
//  - corrupt gzip stream (bad header, bad deflate data, CRC or length
//    mismatch in the trailer): "corrupt gzip stream: <zlib's reason>";
//  - gzip stream that ends early: "truncated gzip stream";
//  - more than max_bytes: "... more than the N bytes expected".
// A plain file that is too short cannot be told from a complete one here; the
// format parsers check sizes and report "N bytes, expected M".
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "mixq/error.hpp"

namespace mixq::io {

namespace detail {

// A file descriptor closed on scope exit.
class unique_fd {
 public:
  explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
  ~unique_fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

// What a stat mode is, for messages: "a directory", "a FIFO (named pipe)", ...
inline const char* file_kind_name(mode_t m) {
  if (S_ISREG(m)) return "a regular file";
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "not a regular file";
}

// Opens `path` for reading without blocking and checks it is a regular file.
// `what` prefixes messages (e.g. "archive "). Returns the descriptor (blocking
// mode restored) and its size.
// throws: mixq::error "<what><path>: file not found" / "cannot open (<reason>)"
//         / "is a directory, expected a regular file" / ...
inline int open_regular(const std::string& path, const std::string& what, std::uint64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    MIXQ_CHECK(err != ENOENT, what, path, ": file not found");
    MIXQ_CHECK(false, what, path, ": cannot open (", std::strerror(err), ")");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    MIXQ_CHECK(false, what, path, ": cannot stat (", std::strerror(err), ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    MIXQ_CHECK(false, what, path, ": is ", file_kind_name(st.st_mode), ", expected a regular file");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  *size = static_cast<std::uint64_t>(st.st_size);
  return fd;
}

// Reads every byte of the regular file `path`; more than max_bytes (0 = no
// bound) is an error before anything is allocated.
inline std::vector<std::uint8_t> read_regular_file(const std::string& path, const std::string& what,
                                                   std::uint64_t max_bytes) {
  std::uint64_t size = 0;
  unique_fd fd(open_regular(path, what, &size));
  MIXQ_CHECK(max_bytes == 0 || size <= max_bytes, what, path, ": ", size, " bytes, more than the ",
             max_bytes, " bytes expected");
  MIXQ_CHECK(size <= static_cast<std::uint64_t>(SIZE_MAX / 2), what, path, ": ", size,
             " bytes, too large to read");
  std::vector<std::uint8_t> out(static_cast<std::size_t>(size));
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t k = ::read(fd.get(), out.data() + got, out.size() - got);
    if (k < 0 && errno == EINTR) continue;
    MIXQ_CHECK(k >= 0, what, path, ": read error (", std::strerror(errno), ")");
    if (k == 0) break;
    got += static_cast<std::size_t>(k);
  }
  MIXQ_CHECK(got == out.size(), what, path, ": read ", got, " of ", out.size(),
             " bytes (the file shrank while being read)");
  std::uint8_t extra;
  ssize_t k;
  do {
    k = ::read(fd.get(), &extra, 1);
  } while (k < 0 && errno == EINTR);
  MIXQ_CHECK(k == 0, what, path, ": the file grew while being read");
  return out;
}

}  // namespace detail

// True when something is at `path` (stat succeeds, or fails for a reason
// other than "no such file"): existence, never readability. A directory or a
// FIFO exists; a reader then says what it is.
inline bool path_exists(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return true;
  return errno != ENOENT && errno != ENOTDIR;
}
namespace detail {
using io::path_exists;
}  // namespace detail

// True when `path` names a regular file (symbolic links followed).
inline bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Creates `dir` and its missing parents (like mkdir -p).
// throws: mixq::error naming the directory when it cannot be created.
inline void make_dirs(const std::string& dir) {
  std::error_code ec;
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  MIXQ_CHECK(!dir.empty() && std::filesystem::is_directory(dir), "cannot create directory '", dir,
             "'", ec ? " (" + ec.message() + ")" : std::string());
}

// True when `bytes` start with the gzip magic (1f 8b).
inline bool is_gzip(const std::vector<std::uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// Inflates the gzip stream `gz` (one or more members) held in memory; `name`
// names it in messages.
// requires: max_bytes bounds the decompressed size; 0 = no bound.
// throws:   mixq::error for a corrupt or truncated stream, trailing bytes that
//           are not another member, or output larger than max_bytes.
inline std::vector<std::uint8_t> decode_gzip(const std::vector<std::uint8_t>& gz,
                                             const std::string& name, std::uint64_t max_bytes = 0) {
  std::vector<std::uint8_t> out;
  // Size hint from the last member's ISIZE trailer (length mod 2^32): used
  // only up to the bound (or 64 MiB without one) and up to 1032 times the
  // compressed size (deflate's largest ratio), never trusted beyond.
  if (gz.size() >= 18) {
    const std::size_t t = gz.size() - 4;
    const std::uint64_t isize = std::uint64_t(gz[t]) | std::uint64_t(gz[t + 1]) << 8 |
                                std::uint64_t(gz[t + 2]) << 16 | std::uint64_t(gz[t + 3]) << 24;
    const std::uint64_t cap = std::min<std::uint64_t>(
        max_bytes ? max_bytes : (std::uint64_t(64) << 20), std::uint64_t(gz.size()) * 1032);
    out.reserve(static_cast<std::size_t>(std::min(isize, cap)));
  }

  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  // 15 + 16: gzip wrapper only (a zlib or raw stream after the magic is corrupt).
  MIXQ_CHECK(inflateInit2(&zs, 15 + 16) == Z_OK, name, ": zlib inflateInit2 failed");
  struct guard {
    z_stream* z;
    ~guard() { inflateEnd(z); }
  } g{&zs};

  constexpr std::size_t chunk = 256 * 1024;
  std::vector<std::uint8_t> tmp(chunk);
  std::size_t pos = 0;      // bytes of `gz` handed to zlib so far
  bool stream_end = false;  // the current member finished
  while (pos < gz.size()) {
    if (stream_end) {
      // Another member may follow; anything else after a member is an error
      // (gzip(1) warns about "trailing garbage"; we refuse it).
      MIXQ_CHECK(gz[pos] == 0x1f, name, ": corrupt gzip stream: trailing garbage after member");
      MIXQ_CHECK(inflateReset(&zs) == Z_OK, name, ": zlib inflateReset failed");
      stream_end = false;
    }
    const std::size_t avail = std::min<std::size_t>(gz.size() - pos, chunk);
    zs.next_in = const_cast<Bytef*>(gz.data() + pos);
    zs.avail_in = static_cast<uInt>(avail);
    bool stalled = false;
    while (zs.avail_in > 0 && !stream_end) {
      zs.next_out = tmp.data();
      zs.avail_out = static_cast<uInt>(tmp.size());
      const int rc = inflate(&zs, Z_NO_FLUSH);
      if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_STREAM_ERROR) {
        MIXQ_CHECK(false, name,
                   ": corrupt gzip stream: ", zs.msg ? zs.msg : "invalid deflate data");
      }
      MIXQ_CHECK(rc != Z_MEM_ERROR, name, ": out of memory while inflating");
      const std::size_t produced = tmp.size() - zs.avail_out;
      MIXQ_CHECK(max_bytes == 0 || out.size() + produced <= max_bytes, name,
                 ": decompressed size exceeds the ", max_bytes, " bytes expected");
      out.insert(out.end(), tmp.begin(), tmp.begin() + static_cast<std::ptrdiff_t>(produced));
      if (rc == Z_STREAM_END) stream_end = true;
      if (rc == Z_BUF_ERROR && produced == 0) {
        stalled = true;  // needs more input than this chunk holds
        break;
      }
    }
    pos += avail - zs.avail_in;
    if (stalled && zs.avail_in == avail) break;  // no progress: the stream is cut here
  }
  MIXQ_CHECK(stream_end, name, ": truncated gzip stream (ended after ", out.size(),
             " decompressed bytes)");
  return out;
}

// `bytes` inflated when they are gzip (see decode_gzip), else as they are
// (checked against max_bytes; 0 = no bound).
inline std::vector<std::uint8_t> decode_maybe_gzip(std::vector<std::uint8_t> bytes,
                                                   const std::string& name,
                                                   std::uint64_t max_bytes = 0) {
  if (is_gzip(bytes)) return decode_gzip(bytes, name, max_bytes);
  MIXQ_CHECK(max_bytes == 0 || bytes.size() <= max_bytes, name, ": ", bytes.size(),
             " bytes, more than the ", max_bytes, " bytes expected");
  return bytes;
}

// Picks the file to read for `path`: `path` itself when it exists, else
// `path + ".gz"` when that exists (see the file comment).
// ensures: the returned path is a regular file that could be opened for reading.
// throws:  mixq::error naming both paths tried when neither exists, and the
//          path and the reason when the one chosen cannot be read.
inline std::string resolve_maybe_gz(const std::string& path) {
  const std::string gz = path + ".gz";
  const bool plain = detail::path_exists(path);
  const std::string& pick = plain ? path : gz;
  MIXQ_CHECK(plain || detail::path_exists(gz), path, ": file not found (tried ", path, " and ", gz,
             ")");
  try {
    std::uint64_t size = 0;
    detail::unique_fd fd(detail::open_regular(pick, "", &size));
  } catch (const mixq::error& e) {
    if (plain && detail::path_exists(gz))
      MIXQ_CHECK(false, e.what(), " (", gz, " is there too but is not read while ", path,
                 " exists: remove or fix ", path, ")");
    throw;
  }
  return pick;
}

// Reads the whole file at `path` (exact path, no ".gz" probing), inflating it
// when it is gzip-compressed.
// requires: max_bytes bounds the file size and the decompressed size (guards
//           against a gzip bomb or a wrong file); 0 = no bound.
// throws:   mixq::error for a missing/unreadable/non-regular file, a corrupt or
//           truncated gzip stream, or more than max_bytes.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path,
                                                 std::uint64_t max_bytes = 0) {
  // A compressed file is at most a little larger than its contents (stored
  // deflate blocks: 5 bytes per 64 KiB, plus header and trailer).
  const std::uint64_t raw_cap =
      max_bytes && max_bytes < (std::uint64_t(1) << 62) ? max_bytes + max_bytes / 1024 + 4096 : 0;
  std::vector<std::uint8_t> raw = detail::read_regular_file(path, "", raw_cap);
  return decode_maybe_gzip(std::move(raw), path, max_bytes);
}

// Reads `path`, or `path + ".gz"` when `path` does not exist (see
// resolve_maybe_gz). `resolved`, when given, receives the path actually read.
inline std::vector<std::uint8_t> read_maybe_gz(const std::string& path, std::uint64_t max_bytes = 0,
                                               std::string* resolved = nullptr) {
  std::string p = resolve_maybe_gz(path);
  if (resolved) *resolved = p;
  return read_file_bytes(p, max_bytes);
}

// Writes `text` to `path` atomically: "<path>.tmp" is written, flushed to
// disk and renamed over `path`, so a reader (or a crash) sees the old file or
// the new one, never part of one.
// throws: mixq::error naming the file and the failing step (a full disk, a
//         missing or read-only directory, a directory in the way); `path` is
//         then unchanged and the temporary file removed.
inline void write_file_atomic(const std::string& path, const std::string& text) {
  MIXQ_CHECK(!path.empty(), "write_file_atomic: empty path");
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MIXQ_CHECK(fd >= 0, path, ": cannot create ", tmp, " (", std::strerror(errno), ")");
  auto fail = [&](const char* step) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    MIXQ_CHECK(false, path, ": ", step, " failed (", std::strerror(err), ")");
  };
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t k = ::write(fd, text.data() + done, text.size() - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) fail("writing");
    done += static_cast<std::size_t>(k);
  }
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    MIXQ_CHECK(false, path, ": closing ", tmp, " failed (", std::strerror(err), ")");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    MIXQ_CHECK(false, path, ": renaming ", tmp, " failed (", std::strerror(err), ")");
  }
}

// Lines of a text file (at most 64 MiB, read through the checks above),
// without their '\n'; an absent file gives no lines.
inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  if (!path_exists(path)) return lines;
  const std::vector<std::uint8_t> b = detail::read_regular_file(path, "", std::uint64_t(64) << 20);
  std::string line;
  for (std::uint8_t c : b) {
    if (c == '\n') {
      lines.push_back(line);
      line.clear();
    } else {
      line += static_cast<char>(c);
    }
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// Keeps the header line of the CSV file at `path` and the rows whose first
// field, read as an integer (an epoch number, say), is <= keep; rewrites the
// file atomically. An absent file stays absent.
inline void truncate_csv(const std::string& path, std::int64_t keep) {
  if (!path_exists(path)) return;
  const std::vector<std::string> lines = read_lines(path);
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (i == 0 || std::atoll(lines[i].c_str()) <= keep) out += lines[i] + "\n";
  write_file_atomic(path, out);
}

// Base name of a path ("a/b/c.bin.gz" -> "c.bin.gz"), for short messages.
inline std::string path_basename(const std::string& path) {
  const auto k = path.find_last_of('/');
  return k == std::string::npos ? path : path.substr(k + 1);
}

}  // namespace mixq::io
