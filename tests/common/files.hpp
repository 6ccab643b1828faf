#pragma once
// Test helpers for files: a temporary directory removed with its contents,
// byte files written and read back, gzip in memory (fixtures are written at
// test time, never checked in, except the small tests/train/data files), and
// hostile files: unreadable ones (checked from a child that drops root) and
// FIFOs.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "temp_dir.hpp"

namespace mixq_test {

inline void write_bytes(const std::string& path, const std::vector<std::uint8_t>& b) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!b.empty()) REQUIRE(std::fwrite(b.data(), 1, b.size(), f) == b.size());
  REQUIRE(std::fclose(f) == 0);
}

inline std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  std::vector<std::uint8_t> b;
  std::uint8_t buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) b.insert(b.end(), buf, buf + n);
  std::fclose(f);
  return b;
}

// gzip-compresses `b` in memory (one member, level 1: fixtures are large and
// highly regular, so this is fast).
inline std::vector<std::uint8_t> gzip_bytes(const std::vector<std::uint8_t>& b, int level = 1) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<std::uint8_t> out(deflateBound(&zs, static_cast<uLong>(b.size())) + 64);
  zs.next_in = const_cast<Bytef*>(b.data());
  zs.avail_in = static_cast<uInt>(b.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

inline void write_gz(const std::string& path, const std::vector<std::uint8_t>& b) {
  write_bytes(path, gzip_bytes(b));
}

// Runs `f` in a child process without root's right to read any file (as user
// and group "nobody" when the tests run as root), and returns the message of
// the mixq::error it throws, "no error" when it throws nothing, or "other
// exception: ..." . `skipped` is set (and "" returned) when the child cannot
// drop root. The paths `f` uses must be reachable by that user (chmod 0755 on
// the temp_dir).
inline std::string error_without_privileges(const std::function<void()>& f, bool* skipped) {
  *skipped = false;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) {
      ::_exit(77);
    }
    try {
      f();
      out = "no error";
    } catch (const mixq::error& e) {
      out = e.what();
    } catch (const std::exception& e) {
      out = std::string("other exception: ") + e.what();
    }
    const ssize_t k = ::write(fds[1], out.data(), out.size());
    ::_exit(k == static_cast<ssize_t>(out.size()) ? 0 : 1);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[4096];
  ssize_t k;
  while ((k = ::read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<std::size_t>(k));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
    *skipped = true;
    MESSAGE("SKIPPED: cannot drop root privileges to test an unreadable file");
    return "";
  }
  CHECK(WIFEXITED(status));
  return msg;
}

// Makes `path` a file that exists but cannot be read by the user of
// error_without_privileges.
inline void make_unreadable(const std::string& path) { REQUIRE(::chmod(path.c_str(), 0) == 0); }

// Creates a FIFO (named pipe) at `path`.
inline void make_fifo(const std::string& path) { REQUIRE(::mkfifo(path.c_str(), 0644) == 0); }

}  // namespace mixq_test
