#pragma once
// Files: whole-file reading (plain or gzip-compressed), and the small file
// helpers the training loop needs (file_exists, make_dirs, atomic text
// writes, truncate_csv).
//
// Why: every data set mixq reads (CIFAR-10 binary batches, Fashion-MNIST IDX
// files) ships either plain or gzip-compressed, and each file is small enough
// (tens of MB) to be read in one go. Reading a whole file into one buffer keeps
// the parsers trivial: they see bytes and check sizes, nothing else.
//
// How: the bytes of the file decide the format, not its name. A file that
// starts with the gzip magic (1f 8b) is inflated with zlib (inflate with the
// gzip wrapper, so the CRC-32 and length in each member's trailer are checked);
// any other file is returned as is. Concatenated gzip members (what
// `cat a.gz b.gz` gives) are read as one stream, as gzip(1) does.
//
// Errors (mixq::error, the message starts with the path):
//  - file missing / unreadable: "cannot open"
//  - corrupt gzip stream (bad header, bad deflate data, CRC or length
//    mismatch in the trailer): "corrupt gzip stream: <zlib's reason>"
//  - gzip stream that ends early: "truncated gzip stream"
// A plain file that is too short cannot be told from a complete one here; the
// format parsers check sizes and report "N bytes, expected M".
//
// Cost: one pass over the file in 256 KiB chunks; the result is grown with the
// size hint in the gzip trailer, so a 30 MB batch is not copied while growing.
//
// Writing: write_file_atomic writes "<path>.tmp", fsyncs it and renames it
// over <path>, so a reader (or a resumed run) sees the old or the new file,
// never a partial one. truncate_csv rewrites a CSV log that way.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "mixq/error.hpp"

namespace mixq::io {

namespace detail {
struct file_closer {
  void operator()(std::FILE* f) const noexcept {
    if (f) std::fclose(f);
  }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;
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

// Picks the file to read for `path`: `path` itself when it exists, else
// `path + ".gz"` when that exists.
// ensures: the returned path exists (is openable for reading).
// throws:  mixq::error naming both paths tried when neither exists.
inline std::string resolve_maybe_gz(const std::string& path) {
  if (file_exists(path)) return path;
  const std::string gz = path + ".gz";
  if (file_exists(gz)) return gz;
  MIXQ_CHECK(false, path, ": file not found (tried ", path, " and ", gz, ")");
  return {};
}

// Reads the whole file at `path` (exact path, no ".gz" probing), inflating it
// when it is gzip-compressed.
// requires: max_bytes bounds the decompressed size (guards against a gzip bomb
//           or a wrong file); 0 = no bound.
// throws:   mixq::error for a missing/unreadable file, a corrupt or truncated
//           gzip stream, or output larger than max_bytes.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path,
                                                 std::uint64_t max_bytes = 0) {
  detail::file_ptr f(std::fopen(path.c_str(), "rb"));
  MIXQ_CHECK(f != nullptr, path, ": cannot open (", std::strerror(errno), ")");

  constexpr std::size_t chunk = 256 * 1024;
  std::vector<std::uint8_t> in(chunk);
  std::size_t got = std::fread(in.data(), 1, chunk, f.get());
  MIXQ_CHECK(!std::ferror(f.get()), path, ": read error");
  const bool gz = got >= 2 && in[0] == 0x1f && in[1] == 0x8b;

  std::vector<std::uint8_t> out;
  if (!gz) {
    // Plain file: size it, then read the rest in one call.
    std::fseek(f.get(), 0, SEEK_END);
    const long size = std::ftell(f.get());
    MIXQ_CHECK(size >= 0, path, ": cannot determine file size");
    MIXQ_CHECK(max_bytes == 0 || static_cast<std::uint64_t>(size) <= max_bytes, path, ": ", size,
               " bytes, more than the ", max_bytes, " expected");
    out.resize(static_cast<std::size_t>(size));
    std::fseek(f.get(), 0, SEEK_SET);
    const std::size_t n = size ? std::fread(out.data(), 1, out.size(), f.get()) : 0;
    MIXQ_CHECK(n == out.size(), path, ": read ", n, " of ", out.size(), " bytes");
    return out;
  }

  // Size hint from the last member's ISIZE trailer (length mod 2^32).
  {
    const long here = std::ftell(f.get());
    if (std::fseek(f.get(), -4, SEEK_END) == 0) {
      unsigned char t[4];
      if (std::fread(t, 1, 4, f.get()) == 4) {
        const std::uint64_t isize = std::uint64_t(t[0]) | std::uint64_t(t[1]) << 8 |
                                    std::uint64_t(t[2]) << 16 | std::uint64_t(t[3]) << 24;
        if (isize <= (std::uint64_t(1) << 31) && (max_bytes == 0 || isize <= max_bytes))
          out.reserve(static_cast<std::size_t>(isize));
      }
    }
    std::fseek(f.get(), here, SEEK_SET);
  }

  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  // 15 + 16: gzip wrapper only (a zlib or raw stream after the magic is corrupt).
  MIXQ_CHECK(inflateInit2(&zs, 15 + 16) == Z_OK, path, ": zlib inflateInit2 failed");
  struct guard {
    z_stream* z;
    ~guard() { inflateEnd(z); }
  } g{&zs};

  std::size_t avail = got;  // bytes of `in` not yet handed to zlib
  std::size_t pos = 0;
  bool stream_end = false;  // the current member finished
  std::vector<std::uint8_t> tmp(chunk);
  for (;;) {
    if (avail == 0) {
      got = std::fread(in.data(), 1, chunk, f.get());
      MIXQ_CHECK(!std::ferror(f.get()), path, ": read error");
      if (got == 0) break;  // end of file
      avail = got;
      pos = 0;
    }
    if (stream_end) {
      // Another member may follow; anything else after a member is an error
      // (gzip(1) warns about "trailing garbage"; we refuse it).
      const std::uint8_t b0 = in[pos];
      MIXQ_CHECK(b0 == 0x1f, path, ": corrupt gzip stream: trailing garbage after member");
      MIXQ_CHECK(inflateReset(&zs) == Z_OK, path, ": zlib inflateReset failed");
      stream_end = false;
    }
    zs.next_in = in.data() + pos;
    zs.avail_in = static_cast<uInt>(avail);
    while (zs.avail_in > 0 && !stream_end) {
      zs.next_out = tmp.data();
      zs.avail_out = static_cast<uInt>(tmp.size());
      const int rc = inflate(&zs, Z_NO_FLUSH);
      if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_STREAM_ERROR) {
        MIXQ_CHECK(false, path,
                   ": corrupt gzip stream: ", zs.msg ? zs.msg : "invalid deflate data");
      }
      MIXQ_CHECK(rc != Z_MEM_ERROR, path, ": out of memory while inflating");
      const std::size_t produced = tmp.size() - zs.avail_out;
      MIXQ_CHECK(max_bytes == 0 || out.size() + produced <= max_bytes, path,
                 ": decompressed size exceeds the ", max_bytes, " bytes expected");
      out.insert(out.end(), tmp.begin(), tmp.begin() + produced);
      if (rc == Z_STREAM_END) stream_end = true;
      if (rc == Z_BUF_ERROR && produced == 0) break;  // needs more input
    }
    const std::size_t used = avail - zs.avail_in;
    pos += used;
    avail -= used;
  }
  MIXQ_CHECK(stream_end, path, ": truncated gzip stream (ended after ", out.size(),
             " decompressed bytes)");
  return out;
}

// Reads `path`, or `path + ".gz"` when `path` does not exist (see
// resolve_maybe_gz). `resolved`, when given, receives the path actually read.
inline std::vector<std::uint8_t> read_maybe_gz(const std::string& path, std::uint64_t max_bytes = 0,
                                               std::string* resolved = nullptr) {
  std::string p = resolve_maybe_gz(path);
  if (resolved) *resolved = p;
  return read_file_bytes(p, max_bytes);
}

// Lines of a text file, without their '\n'; an absent file gives no lines.
inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

// Replaces the file at `path` with `content` atomically (see the file comment).
// throws: mixq::error naming the file and the failing step; <path> is then
//         unchanged and "<path>.tmp" removed.
inline void write_file_atomic(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MIXQ_CHECK(fd >= 0, path, ": cannot create ", tmp, " (", std::strerror(errno), ")");
  auto fail = [&](const char* step, int err, bool close_fd) {
    if (close_fd) ::close(fd);
    ::unlink(tmp.c_str());
    MIXQ_CHECK(false, path, ": ", step, " ", tmp, " failed (", std::strerror(err),
               "); the previous file, if any, is unchanged");
  };
  const char* p = content.data();
  std::size_t left = content.size();
  while (left > 0) {
    const ssize_t k = ::write(fd, p, left);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) fail("writing", k < 0 ? errno : EIO, true);
    p += k;
    left -= static_cast<std::size_t>(k);
  }
  if (::fsync(fd) != 0) fail("syncing", errno, true);
  if (::close(fd) != 0) fail("closing", errno, false);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("renaming", errno, false);
}

// Keeps the header line of the CSV file at `path` and the rows whose first
// field, read as an integer (an epoch number, say), is <= keep; rewrites the
// file atomically. An absent file stays absent.
inline void truncate_csv(const std::string& path, std::int64_t keep) {
  if (!file_exists(path)) return;
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
