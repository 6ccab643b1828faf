// Files: whole-file reading (plain, gzip, ".gz" probing, each failure's message)
// and the helpers the trainer uses (file_exists, make_dirs, atomic writes,
// truncate_csv).
#include <doctest/doctest.h>

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

TEST_CASE("read_file_bytes: a missing file is 'cannot open'") {
  temp_dir d;
  const std::string msg = error_of([&] { io::read_file_bytes(d.file("nope")); });
  CHECK(contains(msg, d.file("nope")));
  CHECK(contains(msg, "cannot open"));
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
