// Files: whole-file reading (plain, gzip, ".gz" probing, each failure's message)
// and the helpers the trainer uses (file_exists, make_dirs, atomic writes,
// truncate_csv).
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>

#include <filesystem>

#include "../common/errors.hpp"
#include "../common/files.hpp"
#include "mixq/io/file.hpp"

using namespace mixq_test;
namespace io = mixq::io;

namespace {
std::vector<std::uint8_t> pattern(std::size_t n) {
  std::vector<std::uint8_t> b(n);
  std::uint32_t s = 12345;
  for (auto& x : b) {
    s = s * 1103515245u + 12345u;
    x = static_cast<std::uint8_t>(s >> 16);
  }
  return b;
}
}  // namespace

TEST_CASE("read_file_bytes: plain and gzip give the same bytes") {
  temp_dir d;
  const auto data = pattern(700000);  // several 256 KiB chunks
  write_bytes(d.file("a.bin"), data);
  write_gz(d.file("b.bin.gz"), data);
  CHECK(io::read_file_bytes(d.file("a.bin")) == data);
  CHECK(io::read_file_bytes(d.file("b.bin.gz")) == data);
  // Empty plain file.
  write_bytes(d.file("empty"), {});
  CHECK(io::read_file_bytes(d.file("empty")).empty());
}

TEST_CASE("read_file_bytes: concatenated gzip members are one stream") {
  temp_dir d;
  const auto a = pattern(1000), b = pattern(3000);
  auto ga = gzip_bytes(a), gb = gzip_bytes(b);
  ga.insert(ga.end(), gb.begin(), gb.end());
  write_bytes(d.file("ab.gz"), ga);
  auto want = a;
  want.insert(want.end(), b.begin(), b.end());
  CHECK(io::read_file_bytes(d.file("ab.gz")) == want);
}

TEST_CASE("resolve_maybe_gz: the plain path first, then path.gz, missing names both") {
  temp_dir d;
  write_bytes(d.file("x.bin"), {1, 2, 3});
  write_gz(d.file("x.bin.gz"), {9});
  write_gz(d.file("y.bin.gz"), {4, 5});
  CHECK(io::resolve_maybe_gz(d.file("x.bin")) == d.file("x.bin"));
  CHECK(io::resolve_maybe_gz(d.file("y.bin")) == d.file("y.bin.gz"));
  std::string used;
  CHECK(io::read_maybe_gz(d.file("y.bin"), 0, &used) == std::vector<std::uint8_t>{4, 5});
  CHECK(used == d.file("y.bin.gz"));
  const std::string msg = error_of([&] { io::read_maybe_gz(d.file("z.bin")); });
  CHECK(contains(msg, "file not found"));
  CHECK(contains(msg, d.file("z.bin") + " and " + d.file("z.bin.gz")));
}

TEST_CASE("read_file_bytes: a missing file is 'file not found'") {
  temp_dir d;
  const std::string msg = error_of([&] { io::read_file_bytes(d.file("nope")); });
  CHECK(contains(msg, d.file("nope")));
  CHECK(contains(msg, "file not found"));
}

TEST_CASE("read_file_bytes: corrupt gzip streams are reported") {
  temp_dir d;
  const auto data = pattern(50000);
  const auto gz = gzip_bytes(data);
  SUBCASE("damaged deflate data") {
    auto bad = gz;
    for (std::size_t i = 20; i < 60; ++i) bad[i] ^= 0xff;
    write_bytes(d.file("bad.gz"), bad);
    const std::string msg = error_of([&] { io::read_file_bytes(d.file("bad.gz")); });
    CHECK(contains(msg, d.file("bad.gz")));
    CHECK(contains(msg, "corrupt gzip stream"));
  }
  SUBCASE("wrong CRC in the trailer") {
    auto bad = gz;
    bad[bad.size() - 8] ^= 0x01;  // first byte of the CRC-32
    write_bytes(d.file("crc.gz"), bad);
    const std::string msg = error_of([&] { io::read_file_bytes(d.file("crc.gz")); });
    CHECK(contains(msg, "corrupt gzip stream"));
    CHECK(contains(msg, "check"));  // zlib: "incorrect data check"
  }
  SUBCASE("bad header flags") {
    auto bad = gz;
    bad[2] = 7;  // compression method must be 8 (deflate)
    write_bytes(d.file("hdr.gz"), bad);
    CHECK(
        contains(error_of([&] { io::read_file_bytes(d.file("hdr.gz")); }), "corrupt gzip stream"));
  }
  SUBCASE("trailing garbage after the member") {
    auto bad = gz;
    bad.push_back(0);
    bad.push_back(0);
    write_bytes(d.file("trail.gz"), bad);
    CHECK(contains(error_of([&] { io::read_file_bytes(d.file("trail.gz")); }), "trailing garbage"));
  }
}

TEST_CASE("read_file_bytes: a truncated gzip file is reported as truncated") {
  temp_dir d;
  const auto gz = gzip_bytes(pattern(50000));
  for (std::size_t keep : {std::size_t(12), gz.size() / 2, gz.size() - 4, gz.size() - 1}) {
    CAPTURE(keep);
    std::vector<std::uint8_t> cut(gz.begin(), gz.begin() + static_cast<std::ptrdiff_t>(keep));
    write_bytes(d.file("cut.gz"), cut);
    const std::string msg = error_of([&] { io::read_file_bytes(d.file("cut.gz")); });
    CHECK(contains(msg, d.file("cut.gz")));
    CHECK(contains(msg, "truncated gzip stream"));
  }
}

TEST_CASE("read_file_bytes: max_bytes bounds plain and decompressed sizes") {
  temp_dir d;
  const auto data = pattern(4096);
  write_bytes(d.file("p"), data);
  write_gz(d.file("g.gz"), data);
  CHECK(io::read_file_bytes(d.file("p"), 4096).size() == 4096);
  CHECK(io::read_file_bytes(d.file("g.gz"), 4096).size() == 4096);
  CHECK(contains(error_of([&] { io::read_file_bytes(d.file("p"), 4095); }), "4095"));
  CHECK(contains(error_of([&] { io::read_file_bytes(d.file("g.gz"), 4095); }),
                 "decompressed size exceeds the 4095 bytes"));
}

TEST_CASE("file_exists and make_dirs") {
  temp_dir d;
  CHECK_FALSE(io::file_exists(d.file("x")));
  write_bytes(d.file("x"), {1});
  CHECK(io::file_exists(d.file("x")));
  CHECK_FALSE(io::file_exists(d.path()));  // a directory is not a file
  io::make_dirs(d.file("a/b/c"));
  io::make_dirs(d.file("a/b/c"));  // already there: fine
  write_bytes(d.file("a/b/c/y"), {2});
  CHECK(io::file_exists(d.file("a/b/c/y")));
  CHECK(contains(error_of([&] { io::make_dirs(d.file("x/sub")); }),
                 "cannot create directory '" + d.file("x/sub") + "'"));
}

TEST_CASE("write_file_atomic replaces the whole file and leaves no temporary") {
  temp_dir d;
  io::write_file_atomic(d.file("t.txt"), "first\nsecond\n");
  io::write_file_atomic(d.file("t.txt"), "third\n");
  CHECK(io::read_lines(d.file("t.txt")) == std::vector<std::string>{"third"});
  CHECK_FALSE(io::file_exists(d.file("t.txt.tmp")));
  CHECK(io::read_lines(d.file("absent")).empty());
  CHECK(contains(error_of([&] { io::write_file_atomic(d.file("no/such/dir/f"), "x"); }),
                 "cannot create"));
}

TEST_CASE("truncate_csv keeps the header and the rows up to a key") {
  temp_dir d;
  io::write_file_atomic(d.file("m.csv"), "epoch,loss\n1,0.5\n2,0.4\n3,0.3\n");
  io::truncate_csv(d.file("m.csv"), 2);
  CHECK(io::read_lines(d.file("m.csv")) ==
        std::vector<std::string>{"epoch,loss", "1,0.5", "2,0.4"});
  io::truncate_csv(d.file("m.csv"), 0);
  CHECK(io::read_lines(d.file("m.csv")) == std::vector<std::string>{"epoch,loss"});
  io::truncate_csv(d.file("none.csv"), 1);  // absent: stays absent
  CHECK_FALSE(io::file_exists(d.file("none.csv")));
}

// ---- hostile paths ----------------------------------------------------------

TEST_CASE("read_file_bytes: an unreadable file says so, it is not 'not found'") {
  temp_dir d;
  REQUIRE(::chmod(d.path().c_str(), 0755) == 0);
  write_bytes(d.file("secret.bin"), {1, 2, 3});
  make_unreadable(d.file("secret.bin"));
  bool skipped = false;
  const std::string msg =
      error_without_privileges([&] { io::read_file_bytes(d.file("secret.bin")); }, &skipped);
  if (skipped) return;
  CHECK(contains(msg, d.file("secret.bin") + ": cannot open (Permission denied)"));
  CHECK_FALSE(contains(msg, "not found"));
}

TEST_CASE("resolve_maybe_gz: an unreadable .bin is an error, never a switch to the .gz") {
  temp_dir d;
  REQUIRE(::chmod(d.path().c_str(), 0755) == 0);
  write_bytes(d.file("x.bin"), {1, 2, 3});
  write_gz(d.file("x.bin.gz"), {9});
  make_unreadable(d.file("x.bin"));
  bool skipped = false;
  const std::string msg =
      error_without_privileges([&] { io::read_maybe_gz(d.file("x.bin")); }, &skipped);
  if (skipped) return;
  CHECK(contains(msg, d.file("x.bin") + ": cannot open (Permission denied)"));
  CHECK(contains(msg, d.file("x.bin.gz") + " is there too but is not read while"));
}

TEST_CASE("read_file_bytes and resolve_maybe_gz: a directory in place of a file") {
  temp_dir d;
  REQUIRE(::mkdir(d.file("x.bin").c_str(), 0755) == 0);
  CHECK(contains(error_of([&] { io::read_file_bytes(d.file("x.bin")); }),
                 d.file("x.bin") + ": is a directory, expected a regular file"));
  // A valid .gz next to it is not silently used instead: the message says why.
  write_gz(d.file("x.bin.gz"), {9});
  const std::string msg = error_of([&] { io::read_maybe_gz(d.file("x.bin")); });
  CHECK(contains(msg, "is a directory"));
  CHECK(contains(msg, d.file("x.bin.gz") + " is there too"));
}

TEST_CASE("read_file_bytes: a FIFO in place of a file is refused at once, never read") {
  temp_dir d;
  make_fifo(d.file("pipe.bin"));
  // No writer ever opens the FIFO: a blocking open or read would hang here.
  CHECK(contains(error_of([&] { io::read_file_bytes(d.file("pipe.bin")); }),
                 "is a FIFO (named pipe), expected a regular file"));
  CHECK(contains(error_of([&] { io::read_maybe_gz(d.file("pipe.bin")); }), "is a FIFO"));
  // A character device (endless zeros) likewise.
  CHECK(contains(error_of([&] { io::read_file_bytes("/dev/zero"); }), "is a character device"));
}

TEST_CASE("resolve_maybe_gz: both .bin and .bin.gz present: the .bin is read") {
  temp_dir d;
  write_bytes(d.file("x.bin"), {1, 2, 3});
  write_gz(d.file("x.bin.gz"), {9});
  std::string used;
  CHECK(io::read_maybe_gz(d.file("x.bin"), 0, &used) == std::vector<std::uint8_t>{1, 2, 3});
  CHECK(used == d.file("x.bin"));
}

// ---- hostile gzip streams ---------------------------------------------------

TEST_CASE("decode_gzip: a gzip bomb stops at the bound") {
  // 64 members of 16 MiB of zeros each: 1 GiB inflated from about 1 MiB.
  const auto member = gzip_bytes(std::vector<std::uint8_t>(16u << 20, 0), 9);
  std::vector<std::uint8_t> bomb;
  for (int i = 0; i < 64; ++i) bomb.insert(bomb.end(), member.begin(), member.end());
  CHECK(bomb.size() < (2u << 20));
  const std::uint64_t bound = 47040016;  // Fashion-MNIST's training images file
  CHECK(contains(error_of([&] { io::decode_gzip(bomb, "bomb.gz", bound); }),
                 "bomb.gz: decompressed size exceeds the 47040016 bytes expected"));
  temp_dir d;
  write_bytes(d.file("bomb.gz"), bomb);
  CHECK(contains(error_of([&] { io::read_file_bytes(d.file("bomb.gz"), bound); }),
                 "decompressed size exceeds"));
}

TEST_CASE("decode_gzip: the trailer's size hint is not trusted") {
  // A truncated stream whose last 4 bytes claim 2 GiB - 1 of output. In a
  // child limited to 1 GiB of address space, reserving that would throw
  // std::bad_alloc; the reader must report the truncation instead.
#if defined(__SANITIZE_ADDRESS__)
  MESSAGE("SKIPPED under AddressSanitizer (its shadow memory needs the address space)");
#else
  auto gz = gzip_bytes(pattern(100000));
  gz.resize(gz.size() / 2);
  for (int k = 2; k <= 4; ++k) gz[gz.size() - static_cast<std::size_t>(k)] = 0xff;
  gz[gz.size() - 1] = 0x7f;
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    struct rlimit lim {
      std::uint64_t(1) << 30, std::uint64_t(1) << 30
    };
    ::setrlimit(RLIMIT_AS, &lim);
    std::string out;
    try {
      io::decode_gzip(gz, "cut.gz");
      out = "no error";
    } catch (const mixq::error& e) {
      out = e.what();
    } catch (const std::exception& e) {
      out = std::string("other exception: ") + e.what();
    }
    (void)!::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[1024];
  ssize_t k;
  while ((k = ::read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<std::size_t>(k));
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  CHECK(contains(msg, "cut.gz: truncated gzip stream"));
#endif
}

TEST_CASE("decode_maybe_gzip: plain bytes pass through, within the bound") {
  CHECK(io::decode_maybe_gzip({1, 2, 3}, "p", 3) == std::vector<std::uint8_t>{1, 2, 3});
  CHECK(contains(error_of([&] {
                   io::decode_maybe_gzip({1, 2, 3}, "p", 2);
                 }),
                 "p: 3 bytes, more than the 2 bytes expected"));
}

// ---- writing ----------------------------------------------------------------

TEST_CASE("write_file_atomic: replaces the file, and every failure is an error") {
  temp_dir d;
  io::write_file_atomic(d.file("a.txt"), "one\n");
  io::write_file_atomic(d.file("a.txt"), "two\n");
  CHECK(read_bytes(d.file("a.txt")) == std::vector<std::uint8_t>{'t', 'w', 'o', '\n'});
  CHECK_FALSE(std::filesystem::exists(d.file("a.txt.tmp")));
  CHECK(contains(error_of([&] { io::write_file_atomic(d.file("no/such/dir/a.txt"), "x"); }),
                 "cannot create"));
  REQUIRE(::mkdir(d.file("isdir").c_str(), 0755) == 0);
  CHECK(contains(error_of([&] { io::write_file_atomic(d.file("isdir"), "x"); }),
                 "renaming " + d.file("isdir.tmp") + " failed (Is a directory)"));
  CHECK_FALSE(std::filesystem::exists(d.file("isdir.tmp")));
}

TEST_CASE("write_file_atomic: a full disk is an error and leaves the old file") {
  temp_dir d;
  io::write_file_atomic(d.file("m.csv"), "old\n");
  // A child whose file size limit is 8 bytes sees what a full disk gives: a
  // write that fails (EFBIG instead of ENOSPC).
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim {
      8, 8
    };
    ::setrlimit(RLIMIT_FSIZE, &lim);
    try {
      io::write_file_atomic(d.file("m.csv"), std::string(100, 'x'));
    } catch (const mixq::error& e) {
      ::_exit(contains(e.what(), "writing failed") ? 0 : 2);
    }
    ::_exit(1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(read_bytes(d.file("m.csv")) == std::vector<std::uint8_t>{'o', 'l', 'd', '\n'});
  CHECK_FALSE(std::filesystem::exists(d.file("m.csv.tmp")));
}
