// CIFAR-10 loader: synthetic batch files written at test time for every
// failure mode, plus real-data smoke tests when the data set is present.
#include <doctest/doctest.h>

#include <array>
#include <cmath>

#include "../common/errors.hpp"
#include "../common/data.hpp"
#include "../common/files.hpp"
#include "mixq/io/cifar10.hpp"

using namespace mixq_test;
namespace io = mixq::io;

namespace {
constexpr std::size_t rec = 3073;

// Pixel value of record r, channel ch, row y, column x in the fixtures.
std::uint8_t px(std::size_t r, int ch, int y, int x) {
  return static_cast<std::uint8_t>(r * 7 + ch * 101 + y * 13 + x * 3);
}
std::uint8_t label_of(std::size_t r) { return static_cast<std::uint8_t>((r * 3 + 1) % 10); }

// A batch file in the official layout (label, then R, G, B planes).
std::vector<std::uint8_t> make_batch(std::size_t records = 10000) {
  std::vector<std::uint8_t> b(records * rec);
  for (std::size_t r = 0; r < records; ++r) {
    std::uint8_t* p = b.data() + r * rec;
    p[0] = label_of(r);
    for (int ch = 0; ch < 3; ++ch)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) p[1 + ch * 1024 + y * 32 + x] = px(r, ch, y, x);
  }
  return b;
}

void check_fixture_image(const io::image_dataset& ds, std::int64_t i, std::size_t rec_index) {
  const std::uint8_t* img = ds.image(i);
  for (int y : {0, 5, 31})
    for (int x : {0, 17, 31})
      for (int ch = 0; ch < 3; ++ch) {
        CAPTURE(i);
        CAPTURE(y);
        CAPTURE(x);
        CAPTURE(ch);
        CHECK(int(img[(y * 32 + x) * 3 + ch]) == int(px(rec_index, ch, y, x)));
      }
  CHECK(ds.labels[static_cast<std::size_t>(i)] == label_of(rec_index));
}
}  // namespace

TEST_CASE("cifar10: a synthetic test batch loads as NHWC uint8, plain and gzip") {
  const auto batch = make_batch();
  for (bool gz : {false, true}) {
    CAPTURE(gz);
    temp_dir d;
    if (gz)
      write_gz(d.file("test_batch.bin.gz"), batch);
    else
      write_bytes(d.file("test_batch.bin"), batch);
    const auto ds = io::load_cifar10(d.path(), io::split::test);
    CHECK(ds.n == 10000);
    CHECK(ds.h == 32);
    CHECK(ds.w == 32);
    CHECK(ds.c == 3);
    CHECK(ds.images.size() == 10000u * 3072u);
    CHECK(ds.labels.size() == 10000u);
    CHECK(ds.class_names.empty());  // no batches.meta.txt
    for (std::size_t r : {0u, 1u, 4999u, 9999u}) check_fixture_image(ds, std::int64_t(r), r);
    CHECK_NOTHROW(ds.validate());
  }
}

TEST_CASE("cifar10: max_images keeps the first N and reads only the files needed") {
  temp_dir d;
  write_gz(d.file("data_batch_1.bin.gz"), make_batch());
  io::load_options opt;
  opt.max_images = 123;
  const auto ds = io::load_cifar10(d.path(), io::split::train, opt);  // no data_batch_2..5
  CHECK(ds.n == 123);
  CHECK(ds.images.size() == 123u * 3072u);
  check_fixture_image(ds, 122, 122);
  // One more than data_batch_1 holds needs data_batch_2, which is missing.
  opt.max_images = 10001;
  const std::string msg = error_of([&] { io::load_cifar10(d.path(), io::split::train, opt); });
  CHECK(contains(msg, "data_batch_2.bin"));
  CHECK(contains(msg, "data_batch_2.bin.gz"));
  // More than the split holds is an error, never a silent shortfall.
  opt.max_images = 50001;
  CHECK(contains(error_of([&] { io::load_cifar10(d.path(), io::split::train, opt); }),
                 "max_images = 50001 but the train split has 50000 images"));
}

TEST_CASE("cifar10: a missing file names both names tried") {
  temp_dir d;
  const std::string msg = error_of([&] { io::load_cifar10(d.path(), io::split::test); });
  CHECK(contains(msg, d.file("test_batch.bin")));
  CHECK(contains(msg, d.file("test_batch.bin.gz")));
}

TEST_CASE("cifar10: truncated and wrong-sized files give the size and what was expected") {
  auto batch = make_batch();
  temp_dir d;
  SUBCASE("truncated mid-record (gzip)") {
    batch.resize(batch.size() - 1000);
    write_gz(d.file("test_batch.bin.gz"), batch);
    const std::string msg = error_of([&] { io::load_cifar10(d.path(), io::split::test); });
    CHECK(contains(msg, "cifar10: " + d.file("test_batch.bin.gz") +
                            ": 30729000 bytes, expected 30730000 (10000 records of 3073)"));
    CHECK(contains(msg, "not a whole number of records"));
  }
  SUBCASE("whole records, but 9999 of them (plain)") {
    batch.resize(batch.size() - rec);
    write_bytes(d.file("test_batch.bin"), batch);
    const std::string msg = error_of([&] { io::load_cifar10(d.path(), io::split::test); });
    CHECK(contains(msg, "30726927 bytes, expected 30730000 (10000 records of 3073)"));
    CHECK(contains(msg, "holds 9999 records"));
  }
  SUBCASE("too long") {
    batch.resize(batch.size() + 5);
    write_bytes(d.file("test_batch.bin"), batch);
    CHECK(contains(error_of([&] { io::load_cifar10(d.path(), io::split::test); }),
                   "30730005 bytes, expected 30730000"));
  }
  SUBCASE("empty file") {
    write_bytes(d.file("test_batch.bin"), {});
    CHECK(contains(error_of([&] { io::load_cifar10(d.path(), io::split::test); }),
                   ": 0 bytes, expected 30730000"));
  }
}

TEST_CASE("cifar10: a label outside 0..9 names the file, record and value") {
  auto batch = make_batch();
  batch[1234 * rec] = 10;
  temp_dir d;
  write_gz(d.file("test_batch.bin.gz"), batch);
  io::load_options opt;
  opt.max_images = 10;  // the bad record is beyond the subset: still reported
  const std::string msg = error_of([&] { io::load_cifar10(d.path(), io::split::test, opt); });
  CHECK(contains(msg, d.file("test_batch.bin.gz")));
  CHECK(contains(msg, "record 1234: label 10 outside 0..9"));
}

TEST_CASE("cifar10: a corrupt gzip stream is reported with the file") {
  auto gz = gzip_bytes(make_batch());
  for (std::size_t i = gz.size() / 2; i < gz.size() / 2 + 64; ++i) gz[i] ^= 0x5a;
  temp_dir d;
  write_bytes(d.file("test_batch.bin.gz"), gz);
  const std::string msg = error_of([&] { io::load_cifar10(d.path(), io::split::test); });
  CHECK(contains(msg, d.file("test_batch.bin.gz")));
  CHECK(contains(msg, "corrupt gzip stream"));
}

TEST_CASE("cifar10: batches.meta.txt gives class names, a wrong count is an error") {
  temp_dir d;
  write_bytes(d.file("test_batch.bin"), make_batch());
  const std::string names =
      "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
  write_bytes(d.file("batches.meta.txt"), std::vector<std::uint8_t>(names.begin(), names.end()));
  io::load_options opt;
  opt.max_images = 3;
  const auto ds = io::load_cifar10(d.path(), io::split::test, opt);
  REQUIRE(ds.class_names.size() == 10);
  CHECK(ds.class_names[0] == "airplane");
  CHECK(ds.class_names[9] == "truck");
  const std::string short_names = "a\nb\n";
  write_bytes(d.file("batches.meta.txt"),
              std::vector<std::uint8_t>(short_names.begin(), short_names.end()));
  CHECK(contains(error_of([&] { io::load_cifar10(d.path(), io::split::test, opt); }),
                 "batches.meta.txt: 2 class names, expected 10"));
}

TEST_CASE("cifar10: .bin and .bin.gz both present: the .bin is read, and the files are listed") {
  temp_dir d;
  auto batch = make_batch();
  write_bytes(d.file("test_batch.bin"), batch);
  batch[0] = 9;  // the .gz differs in its first label
  write_gz(d.file("test_batch.bin.gz"), batch);
  const auto ds = io::load_cifar10(d.path(), io::split::test);
  CHECK(ds.labels[0] == label_of(0));
  CHECK(ds.files == std::vector<std::string>{d.file("test_batch.bin")});
}

TEST_CASE("cifar10: a directory, a FIFO or an unreadable file in place of a batch") {
  temp_dir d;
  write_gz(d.file("test_batch.bin.gz"), make_batch());
  SUBCASE("directory: an error naming it, the .gz is not used silently") {
    REQUIRE(::mkdir(d.file("test_batch.bin").c_str(), 0755) == 0);
    const std::string msg = error_of([&] { io::load_cifar10(d.path(), io::split::test); });
    CHECK(contains(msg, d.file("test_batch.bin") + ": is a directory, expected a regular file"));
    CHECK(contains(msg, "test_batch.bin.gz is there too"));
  }
  SUBCASE("FIFO: refused at once (a blocking read would hang)") {
    make_fifo(d.file("test_batch.bin"));
    CHECK(contains(error_of([&] { io::load_cifar10(d.path(), io::split::test); }),
                   "is a FIFO (named pipe)"));
  }
  SUBCASE("unreadable: the reason, not 'not found'") {
    REQUIRE(::chmod(d.path().c_str(), 0755) == 0);
    write_bytes(d.file("test_batch.bin"), make_batch(1));
    make_unreadable(d.file("test_batch.bin"));
    bool skipped = false;
    const std::string msg =
        error_without_privileges([&] { io::load_cifar10(d.path(), io::split::test); }, &skipped);
    if (!skipped) {
      CHECK(contains(msg, d.file("test_batch.bin") + ": cannot open (Permission denied)"));
      CHECK(contains(msg, "test_batch.bin.gz is there too"));
    }
  }
  SUBCASE("batches.meta.txt as a FIFO") {
    make_fifo(d.file("batches.meta.txt"));
    CHECK(contains(error_of([&] { io::load_cifar10(d.path(), io::split::test); }),
                   "batches.meta.txt: is a FIFO"));
  }
}

// ---- real data ------------------------------------------------------------

namespace {
// Expected values from shared/datasets/cifar10/README.md (computed there
// independently of this code).
struct split_facts {
  std::array<int, 10> first_labels;
  std::array<double, 3> mean, stddev;
  int per_class;
};

void check_real_split(const io::image_dataset& ds, const split_facts& f) {
  for (int i = 0; i < 10; ++i)
    CHECK(ds.labels[static_cast<std::size_t>(i)] == f.first_labels[static_cast<std::size_t>(i)]);
  std::array<int, 10> counts{};
  for (auto l : ds.labels) ++counts[static_cast<std::size_t>(l)];
  for (int c = 0; c < 10; ++c) CHECK(counts[static_cast<std::size_t>(c)] == f.per_class);
  std::array<double, 3> s{}, s2{};
  for (std::size_t i = 0; i < ds.images.size(); i += 3)
    for (int ch = 0; ch < 3; ++ch) {
      const double v = ds.images[i + static_cast<std::size_t>(ch)] / 255.0;
      s[static_cast<std::size_t>(ch)] += v;
      s2[static_cast<std::size_t>(ch)] += v * v;
    }
  const double n = double(ds.images.size() / 3);
  for (std::size_t ch = 0; ch < 3; ++ch) {
    const double m = s[ch] / n;
    CHECK(m == doctest::Approx(f.mean[ch]).epsilon(1e-6));
    CHECK(std::sqrt(s2[ch] / n - m * m) == doctest::Approx(f.stddev[ch]).epsilon(1e-5));
  }
}
}  // namespace

TEST_CASE("cifar10: real test and train splits (skipped when the data is absent)") {
  const std::string dir = cifar10_dir_or_skip();
  if (dir.empty()) return;
  MESSAGE("CIFAR-10 data: " << dir);
  const auto test = io::load_cifar10(dir, io::split::test);
  CHECK(test.n == 10000);
  REQUIRE(test.class_names.size() == 10);
  CHECK(test.class_names[3] == "cat");
  check_real_split(test, {{3, 8, 8, 0, 6, 6, 1, 6, 3, 1},
                          {0.49421428, 0.48513139, 0.45040909},
                          {0.24665252, 0.24289226, 0.26159238},
                          1000});
  const auto train = io::load_cifar10(dir, io::split::train);
  CHECK(train.n == 50000);
  CHECK(train.images.size() == 50000u * 3072u);
  check_real_split(train, {{6, 9, 9, 4, 1, 1, 2, 7, 8, 3},
                           {0.49139968, 0.48215841, 0.44653091},
                           {0.24703223, 0.24348513, 0.26158784},
                           5000});
  // The library's normalization constants are the training-set statistics,
  // and both splits carry them.
  const auto stats = io::channel_stats(train);
  for (std::size_t ch = 0; ch < 3; ++ch) {
    CHECK(io::cifar10::mean_rgb[ch] == doctest::Approx(stats.first[ch]).epsilon(1e-6));
    CHECK(io::cifar10::std_rgb[ch] == doctest::Approx(stats.second[ch]).epsilon(1e-5));
    CHECK(train.mean[ch] == io::cifar10::mean_rgb[ch]);
    CHECK(test.stddev[ch] == io::cifar10::std_rgb[ch]);
  }
}
