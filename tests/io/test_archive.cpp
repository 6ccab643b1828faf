// The mixq archive: round trip, integrity checks, atomic replacement.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "../common/errors.hpp"
#include "../common/files.hpp"
#include "mixq/io/archive.hpp"
#include "mixq/io/batch_loader.hpp"

using namespace mixq_test;
namespace io = mixq::io;

namespace {
io::archive sample_archive() {
  io::archive a;
  a.set_meta("epoch", "7");
  a.set_meta("config", "{\"bits\": [2, 4, 8]}");
  a.set_meta("empty", "");
  a.add<float>("model/conv1/weight", {2, 3},
               std::vector<float>{1.5f, -2.0f, 0.0f, 3.25f, -0.0f, 1e-30f});
  a.add<std::int32_t>("model/bn/count", {1}, std::vector<std::int32_t>{-5});
  a.add<std::int64_t>("rng/loader", std::vector<std::int64_t>{INT64_MIN, 0, INT64_MAX});
  a.add<std::uint8_t>("blob", {2, 2}, std::vector<std::uint8_t>{0, 255, 17, 42});
  a.add<float>("scalar", {}, std::vector<float>{3.0f});
  a.add<float>("empty", {0, 4}, std::vector<float>{});
  return a;
}

// Rewrites the u32 CRC stored right after bytes [begin, end) to match them.
void fix_crc(std::vector<std::uint8_t>& b, std::size_t begin, std::size_t end) {
  const auto c =
      static_cast<std::uint32_t>(crc32(0, b.data() + begin, static_cast<uInt>(end - begin)));
  std::memcpy(b.data() + end, &c, 4);
}

// A file holding one f32 entry "w" of shape [1, 1] with no metadata, then its
// dims set to (d0, d1) and the entry header CRC fixed, as a crafted file would
// be. Offsets: header 0..27, metadata CRC 28..31, entry header 32..64 (name
// length, "w", dtype, rank, padding, two i64 dims at 41 and 49, u64 size at
// 57), its CRC at 65.
std::vector<std::uint8_t> crafted_shape(std::int64_t d0, std::int64_t d1) {
  io::archive a;
  a.add<float>("w", {1, 1}, std::vector<float>{1.0f});
  temp_dir d;
  io::save_archive(a, d.file("w.mixq"));
  auto b = read_bytes(d.file("w.mixq"));
  REQUIRE(b.size() == 93);
  std::memcpy(b.data() + 41, &d0, 8);
  std::memcpy(b.data() + 49, &d1, 8);
  fix_crc(b, 32, 65);
  return b;
}

void check_equal(const io::archive& a, const io::archive& b) {
  REQUIRE(a.entries().size() == b.entries().size());
  for (std::size_t i = 0; i < a.entries().size(); ++i) {
    const auto& x = a.entries()[i];
    const auto& y = b.entries()[i];
    CHECK(x.name == y.name);
    CHECK(x.type == y.type);
    CHECK(x.shape == y.shape);
    CHECK(x.data == y.data);
  }
  CHECK(a.metadata() == b.metadata());
}
}  // namespace

TEST_CASE("archive: round trip keeps names, order, dtypes, shapes, bytes and metadata") {
  temp_dir d;
  const auto a = sample_archive();
  io::save_archive(a, d.file("m.mixq"));
  const auto b = io::load_archive(d.file("m.mixq"));
  check_equal(a, b);
  CHECK(b.source() == d.file("m.mixq"));
  CHECK(b.entries()[0].name == "model/conv1/weight");
  CHECK(b.entries()[5].name == "empty");
  CHECK(b.get<float>("model/conv1/weight")[3] == 3.25f);
  CHECK(std::signbit(b.get<float>("model/conv1/weight")[4]));
  CHECK(b.get<std::int64_t>("rng/loader")[0] == INT64_MIN);
  CHECK(b.at("scalar").numel() == 1);
  CHECK(b.at("empty").numel() == 0);
  CHECK(b.meta_int("epoch") == 7);
  CHECK(b.meta("empty").empty());
  CHECK(b.metadata()[1].first == "config");
  const std::vector<std::int64_t> shape{2, 3};
  CHECK(b.get<float>("model/conv1/weight", &shape).size() == 6u);
}

TEST_CASE("archive: lookups and adds report what is wrong") {
  temp_dir d;
  io::save_archive(sample_archive(), d.file("m.mixq"));
  const auto b = io::load_archive(d.file("m.mixq"));
  std::string msg = error_of([&] { b.at("model/missing"); });
  CHECK(contains(msg, d.file("m.mixq")));
  CHECK(contains(msg, "no entry 'model/missing'"));
  msg = error_of([&] { b.get<std::int32_t>("blob"); });
  CHECK(contains(msg, "entry 'blob' has dtype u8, expected i32"));
  const std::vector<std::int64_t> wrong{3, 2};
  msg = error_of([&] { b.get<float>("model/conv1/weight", &wrong); });
  CHECK(contains(msg, "has shape [2,3], expected [3,2]"));
  CHECK(contains(error_of([&] { b.meta("nokey"); }), "no metadata key 'nokey'"));
  CHECK(contains(error_of([&] { b.meta_int("config"); }), "expected an integer"));
  io::archive a;
  a.add<float>("x", std::vector<float>{1});
  CHECK(contains(error_of([&] { a.add<float>("x", std::vector<float>{2}); }),
                 "duplicate entry name 'x'"));
  CHECK(contains(error_of([&] {
                   a.add<float>("y", {2, 2}, std::vector<float>{1, 2, 3});
                 }),
                 "shape [2,2] needs 4 values, got 3"));
  a.set_meta_u64("seed", 18446744073709551615ULL);
  CHECK(a.meta_u64("seed") == 18446744073709551615ULL);
  a.set_meta("seed", "1");  // replaces in place
  CHECK(a.metadata().size() == 1u);
  CHECK(a.meta_u64("seed") == 1u);
}

TEST_CASE("archive: corruption anywhere is detected and located") {
  temp_dir d;
  io::save_archive(sample_archive(), d.file("m.mixq"));
  const auto good = read_bytes(d.file("m.mixq"));
  auto load_with = [&](const std::vector<std::uint8_t>& bytes) {
    write_bytes(d.file("bad.mixq"), bytes);
    return error_of([&] { io::load_archive(d.file("bad.mixq")); });
  };
  auto find = [&](const std::string& text) {
    const std::vector<std::uint8_t> s(text.begin(), text.end());
    const auto it = std::search(good.begin(), good.end(), s.begin(), s.end());
    REQUIRE(it != good.end());
    return static_cast<std::size_t>(it - good.begin());
  };
  SUBCASE("a flipped bit in an entry's data names the entry") {
    auto bad = good;
    // The u8 entry "blob": its 4 data bytes 0,255,17,42 are unique in the file.
    const std::string blob_data{char(0), char(-1), char(17), char(42)};
    bad[find(blob_data) + 2] ^= 0x10;
    const std::string msg = load_with(bad);
    CHECK(contains(msg, d.file("bad.mixq")));
    CHECK(contains(msg, "entry 'blob': data CRC mismatch"));
  }
  SUBCASE("a flipped bit in an entry header") {
    auto bad = good;
    bad[find("model/bn/count") + 13 + 2] ^= 0x01;  // rank byte after the name and dtype
    CHECK(contains(load_with(bad), "entry #1 ('model/bn/count'): header CRC mismatch"));
  }
  SUBCASE("a flipped bit in the metadata") {
    auto bad = good;
    bad[find("bits")] ^= 0x20;
    CHECK(contains(load_with(bad), "metadata CRC mismatch"));
  }
  SUBCASE("a flipped bit in the header") {
    auto bad = good;
    bad[13] ^= 0x01;  // flags
    CHECK(contains(load_with(bad), "header CRC mismatch"));
  }
  SUBCASE("bad magic and unknown version") {
    auto bad = good;
    bad[0] = 'X';
    CHECK(contains(load_with(bad), "bad magic (not a mixq archive"));
    bad = good;
    bad[8] ^= 0x01;  // a flipped bit in the version: corruption, not another version
    const std::string flipped = load_with(bad);
    CHECK(contains(flipped, "header CRC mismatch (corrupt header)"));
    CHECK_FALSE(contains(flipped, "version"));
    bad = good;
    bad[8] = 2;  // version 2 with a matching header CRC: a file from another version
    fix_crc(bad, 0, 24);
    CHECK(contains(load_with(bad), "format version 2, this build reads version 1"));
  }
  SUBCASE("trailing bytes") {
    auto bad = good;
    bad.push_back(0);
    CHECK(contains(load_with(bad), "bytes, the trailer says"));
    bad = good;
    bad[good.size() - 16] ^= 0x01;  // the end marker
    CHECK(contains(load_with(bad), "bad trailer"));
  }
}

TEST_CASE("archive: crafted shapes are refused without overflow") {
  // 2^62 x 4 elements: the product overflows int64.
  CHECK(contains(error_of([&] { io::parse_archive(crafted_shape(std::int64_t(1) << 62, 4), "a"); }),
                 "entry 'w': bad shape [4611686018427387904,4] (element count overflows int64)"));
  // 2^61 x 2 elements fit int64, their 2^64 bytes do not fit uint64.
  CHECK(contains(error_of([&] { io::parse_archive(crafted_shape(std::int64_t(1) << 61, 2), "a"); }),
                 "entry 'w': 4 data bytes, expected 4611686018427387904 x 4"));
  CHECK(contains(error_of([&] { io::parse_archive(crafted_shape(-1, -4), "a"); }),
                 "(negative dimension)"));
  // A shape that fits but does not match the data.
  CHECK(contains(error_of([&] { io::parse_archive(crafted_shape(3, 5), "a"); }),
                 "4 data bytes, expected 15 x 4 for f32[3,5]"));
  // The same checks guard entries built in memory.
  io::archive_entry e;
  e.name = "big";
  e.shape = {std::int64_t(1) << 40, std::int64_t(1) << 40};
  CHECK(contains(error_of([&] { (void)e.numel(); }), "has no valid element count"));
  io::archive a;
  CHECK(contains(
      error_of([&] {
        a.add<float>("big", {std::int64_t(1) << 40, std::int64_t(1) << 40}, std::vector<float>{});
      }),
      "has no valid element count"));
}

TEST_CASE("archive: a directory or a FIFO as the archive path") {
  temp_dir d;
  REQUIRE(::mkdir(d.file("ckpt.mixq").c_str(), 0755) == 0);
  CHECK(contains(error_of([&] { io::load_archive(d.file("ckpt.mixq")); }),
                 "archive " + d.file("ckpt.mixq") + ": is a directory, expected a regular file"));
  make_fifo(d.file("pipe.mixq"));
  CHECK(contains(error_of([&] { io::load_archive(d.file("pipe.mixq")); }), "is a FIFO"));
  CHECK(contains(error_of([&] { io::load_archive(d.file("none.mixq")); }),
                 "archive " + d.file("none.mixq") + ": file not found"));
}

TEST_CASE("archive: many entries and keys load, duplicates are found") {
  io::archive a;
  for (int i = 0; i < 20000; ++i) {
    a.add<std::uint8_t>("e" + std::to_string(i), std::vector<std::uint8_t>{1});
    a.set_meta("k" + std::to_string(i), "v");
  }
  temp_dir d;
  io::save_archive(a, d.file("many.mixq"));
  const io::archive b = io::load_archive(d.file("many.mixq"));
  CHECK(b.entries().size() == 20000);
  CHECK(b.find("e19999") != nullptr);
  CHECK(b.meta("k123") == "v");
  CHECK(contains(error_of([&] { a.add<std::uint8_t>("e5", std::vector<std::uint8_t>{1}); }),
                 "duplicate entry name 'e5'"));
}

TEST_CASE("archive: every truncation is detected") {
  temp_dir d;
  io::save_archive(sample_archive(), d.file("m.mixq"));
  const auto good = read_bytes(d.file("m.mixq"));
  // Every proper prefix must fail to load (the file is a few hundred bytes).
  int failures = 0;
  for (std::size_t len = 0; len < good.size(); ++len) {
    const std::vector<std::uint8_t> cut(good.begin(),
                                        good.begin() + static_cast<std::ptrdiff_t>(len));
    try {
      io::parse_archive(cut, "cut.mixq");
    } catch (const mixq::error& e) {
      ++failures;
      if (len == good.size() / 2) CHECK(contains(e.what(), "archive cut.mixq: truncated in"));
      continue;
    }
    FAIL_CHECK("prefix of " << len << " bytes loaded without error");
  }
  CHECK(failures == static_cast<int>(good.size()));
  write_bytes(d.file("half.mixq"), std::vector<std::uint8_t>(good.begin(), good.begin() + 100));
  const std::string msg = error_of([&] { io::load_archive(d.file("half.mixq")); });
  CHECK(contains(msg, d.file("half.mixq")));
  CHECK(contains(msg, "truncated"));
}

TEST_CASE("archive: saving is atomic") {
  temp_dir d;
  const std::string path = d.file("ckpt.mixq");
  io::archive old_a;
  old_a.set_meta("epoch", "1");
  old_a.add<float>("w", std::vector<float>(1000, 1.0f));
  io::save_archive(old_a, path);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  SUBCASE("a stale .tmp from a killed writer is ignored and replaced") {
    write_bytes(path + ".tmp", {1, 2, 3});
    check_equal(io::load_archive(path), old_a);
    io::archive new_a = sample_archive();
    io::save_archive(new_a, path);
    check_equal(io::load_archive(path), new_a);
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  }
  SUBCASE("failing to create the .tmp leaves the old file intact") {
    std::filesystem::create_directory(path + ".tmp");  // open() fails: EISDIR
    const std::string msg = error_of([&] { io::save_archive(sample_archive(), path); });
    CHECK(contains(msg, "cannot create " + path + ".tmp"));
    check_equal(io::load_archive(path), old_a);
    std::filesystem::remove(path + ".tmp");
  }
#ifdef __linux__
  SUBCASE("a write failing midway leaves the old file intact and no .tmp") {
    // Limit the file size so the write fails with EFBIG after 64 KiB.
    io::archive big;
    big.add<float>("w", std::vector<float>(200000, 2.0f));
    struct sigaction ign {
    }, old_sig{};
    ign.sa_handler = SIG_IGN;
    REQUIRE(sigaction(SIGXFSZ, &ign, &old_sig) == 0);
    rlimit old_lim{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old_lim) == 0);
    rlimit lim = old_lim;
    lim.rlim_cur = 64 * 1024;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    const std::string msg = error_of([&] { io::save_archive(big, path); });
    setrlimit(RLIMIT_FSIZE, &old_lim);
    sigaction(SIGXFSZ, &old_sig, nullptr);
    CHECK(contains(msg, "writing entry 'w' failed"));
    CHECK(contains(msg, "previous file, if any, is unchanged"));
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
    check_equal(io::load_archive(path), old_a);
  }
#endif
}

#ifdef __linux__
TEST_CASE("archive: a writer killed mid-save leaves the old or the new file, never a broken one") {
  temp_dir d;
  const std::string path = d.file("ckpt.mixq");
  io::archive old_a;
  old_a.add<float>("w", std::vector<float>(1000, 1.0f));
  io::save_archive(old_a, path);
  io::archive new_a;
  new_a.add<float>("w", std::vector<float>(4000000, 2.0f));  // 16 MB: saving takes a while
  for (int delay_ms : {0, 5, 20, 60}) {
    CAPTURE(delay_ms);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      for (;;) {
        try {
          io::save_archive(new_a, path);
        } catch (...) {
          _exit(1);
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    const auto got = io::load_archive(path);  // must not throw
    const auto n = got.at("w").numel();
    CHECK((n == 1000 || n == 4000000));
  }
}
#endif

TEST_CASE("archive: a checkpoint with loader position resumes the same batches") {
  // A caller's own resume record: loader position and seed as metadata, an RNG
  // state as u64 words (with a third word, to check the count is kept).
  io::image_dataset ds;
  ds.name = "toy";
  ds.n = 20;
  ds.h = ds.w = 3;
  ds.c = 3;
  ds.num_classes = 10;
  for (int i = 0; i < 20 * 27; ++i) ds.images.push_back(static_cast<std::uint8_t>(i * 37));
  for (int i = 0; i < 20; ++i) ds.labels.push_back(i % 10);
  ds.mean = {0.5f, 0.5f, 0.5f};
  ds.stddev = {0.25f, 0.25f, 0.25f};
  io::batch_loader_options o;
  o.batch_size = 6;
  o.augment = true;
  o.seed = 0xfeedface12345678ULL;
  io::batch_loader L(ds, o);
  L.start_epoch(2);
  io::batch b;
  REQUIRE(L.next(b));
  mixq::rng other(77);
  other.next_u32();

  temp_dir d;
  io::archive ck;
  ck.set_meta_int("epoch", L.position().epoch);
  ck.set_meta_int("step", L.position().step);
  ck.set_meta_u64("loader_seed", o.seed);
  ck.add_u64_words("rng/other", {other.state().state, other.state().inc, 0xffffffffffffffffULL});
  io::save_archive(ck, d.file("ck.mixq"));

  REQUIRE(L.next(b));  // the batch a straight run sees next
  const std::uint32_t want_draw = other.next_u32();

  const auto r = io::load_archive(d.file("ck.mixq"));
  auto o2 = o;
  o2.seed = r.meta_u64("loader_seed");
  io::batch_loader L2(ds, o2);
  L2.resume({r.meta_int("epoch"), r.meta_int("step")});
  io::batch b2;
  REQUIRE(L2.next(b2));
  CHECK(b2.indices == b.indices);
  CHECK(std::memcmp(b2.images.data(), b.images.data(), b.images.size() * sizeof(float)) == 0);
  const auto words = r.get_u64_words("rng/other");
  REQUIRE(words.size() == 3u);
  CHECK(words[2] == 0xffffffffffffffffULL);
  mixq::rng other2;
  other2.set_state({words[0], words[1]});
  CHECK(other2.next_u32() == want_draw);
}
