// Batch loader: order, determinism, resume, normalization, augmentation.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "../common/errors.hpp"
#include "mixq/io/batch_loader.hpp"

namespace io = mixq::io;

namespace {
io::image_dataset toy_dataset(std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c) {
  io::image_dataset ds;
  ds.name = "toy";
  ds.n = n;
  ds.h = h;
  ds.w = w;
  ds.c = c;
  ds.num_classes = 10;
  ds.images.resize(static_cast<std::size_t>(n * h * w * c));
  std::uint32_t s = 99;
  for (auto& v : ds.images) {
    s = s * 1664525u + 1013904223u;
    v = static_cast<std::uint8_t>(s >> 24);
  }
  for (std::int64_t i = 0; i < n; ++i) ds.labels.push_back(static_cast<std::int32_t>(i % 10));
  const auto stats = io::channel_stats(ds);
  ds.mean = stats.first;
  ds.stddev = stats.second;
  return ds;
}

io::batch_loader_options opts(std::int64_t bs, bool augment, std::uint64_t seed, int prefetch) {
  io::batch_loader_options o;
  o.batch_size = bs;
  o.augment = augment;
  o.seed = seed;
  o.prefetch = prefetch;
  return o;
}

std::vector<io::batch> run_epochs(io::batch_loader& L, std::int64_t first_epoch,
                                  std::int64_t first_step, std::int64_t last_epoch) {
  std::vector<io::batch> out;
  for (std::int64_t e = first_epoch; e <= last_epoch; ++e) {
    L.start_epoch(e, e == first_epoch ? first_step : 0);
    io::batch b;
    while (L.next(b)) out.push_back(b);
  }
  return out;
}

bool same(const io::batch& a, const io::batch& b) {
  // Bitwise equality of the floats (no tolerance: resume must be bit-identical).
  return a.n == b.n && a.epoch == b.epoch && a.step == b.step && a.labels == b.labels &&
         a.indices == b.indices && a.images.size() == b.images.size() &&
         std::memcmp(a.images.data(), b.images.data(), a.images.size() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("batch_loader: each epoch visits every image once, with sizes and drop_last") {
  const auto ds = toy_dataset(37, 4, 5, 3);
  for (bool drop : {false, true}) {
    CAPTURE(drop);
    auto o = opts(8, false, 1, 2);
    o.drop_last = drop;
    io::batch_loader L(ds, o);
    CHECK(L.steps_per_epoch() == (drop ? 4 : 5));
    L.start_epoch(0);
    std::multiset<std::int64_t> seen;
    io::batch b;
    std::int64_t steps = 0;
    while (L.next(b)) {
      CHECK(b.step == steps);
      CHECK(b.n == ((!drop && steps == 4) ? 5 : 8));
      CHECK(b.images.size() == static_cast<std::size_t>(b.n * 4 * 5 * 3));
      for (std::int64_t i = 0; i < b.n; ++i) {
        const auto idx = b.indices[static_cast<std::size_t>(i)];
        seen.insert(idx);
        CHECK(b.labels[static_cast<std::size_t>(i)] == ds.labels[static_cast<std::size_t>(idx)]);
      }
      ++steps;
    }
    CHECK(steps == L.steps_per_epoch());
    CHECK(seen.size() == (drop ? 32u : 37u));
    CHECK(std::set<std::int64_t>(seen.begin(), seen.end()).size() == seen.size());
    CHECK_FALSE(L.next(b));  // stays exhausted
  }
}

TEST_CASE("batch_loader: shuffling depends on the seed and the epoch only") {
  const auto ds = toy_dataset(100, 2, 2, 3);
  io::batch_loader a(ds, opts(10, false, 7, 2)), b(ds, opts(10, false, 7, 0)),
      c(ds, opts(10, false, 8, 2));
  CHECK(a.epoch_order(0) == b.epoch_order(0));
  CHECK(a.epoch_order(3) == b.epoch_order(3));
  CHECK(a.epoch_order(0) != a.epoch_order(1));
  CHECK(a.epoch_order(0) != c.epoch_order(0));
  auto o = opts(10, false, 7, 0);
  o.shuffle = false;
  io::batch_loader plain(ds, o);
  const auto ord = plain.epoch_order(5);
  for (std::size_t i = 0; i < ord.size(); ++i) CHECK(ord[i] == std::int64_t(i));
}

TEST_CASE("batch_loader: prefetch thread and synchronous path give identical batches") {
  const auto ds = toy_dataset(53, 6, 6, 3);
  for (int prefetch : {1, 2, 3}) {
    CAPTURE(prefetch);
    io::batch_loader sync(ds, opts(8, true, 42, 0)), async(ds, opts(8, true, 42, prefetch));
    const auto x = run_epochs(sync, 0, 0, 2), y = run_epochs(async, 0, 0, 2);
    REQUIRE(x.size() == y.size());
    REQUIRE(x.size() == 21u);
    for (std::size_t i = 0; i < x.size(); ++i) CHECK(same(x[i], y[i]));
  }
}

TEST_CASE("batch_loader: a resumed run at (epoch, step) equals the straight run") {
  const auto ds = toy_dataset(45, 5, 5, 3);
  io::batch_loader straight(ds, opts(7, true, 2024, 2));
  const auto all = run_epochs(straight, 0, 0, 3);  // 4 epochs x 7 steps
  REQUIRE(all.size() == 28u);
  // Stop after epoch 1, step 3 in one loader; resume in a fresh one.
  io::loader_position saved;
  {
    io::batch_loader first(ds, opts(7, true, 2024, 2));
    first.start_epoch(0);
    io::batch b;
    while (first.next(b)) {
    }
    first.start_epoch(1);
    for (int k = 0; k < 3; ++k) REQUIRE(first.next(b));
    saved = first.position();
    // `first` is destroyed with batches still prefetched: must not hang.
  }
  CHECK(saved.epoch == 1);
  CHECK(saved.step == 3);
  io::batch_loader resumed(ds, opts(7, true, 2024, 3));
  std::vector<io::batch> rest;
  resumed.resume(saved);
  io::batch b;
  while (resumed.next(b)) rest.push_back(b);
  for (std::int64_t e = 2; e <= 3; ++e) {
    resumed.start_epoch(e);
    while (resumed.next(b)) rest.push_back(b);
  }
  REQUIRE(rest.size() == 28u - 7u - 3u);
  for (std::size_t i = 0; i < rest.size(); ++i) CHECK(same(rest[i], all[7 + 3 + i]));
  // make_batch (stateless) agrees as well.
  resumed.make_batch(1, 3, b);
  CHECK(same(b, all[10]));
  // Restarting mid-epoch discards what was prefetched.
  resumed.start_epoch(0, 5);
  REQUIRE(resumed.next(b));
  CHECK(same(b, all[5]));
  resumed.start_epoch(2);
  REQUIRE(resumed.next(b));
  CHECK(same(b, all[14]));
}

TEST_CASE("batch_loader: normalization is (pixel/255 - mean) / stddev per channel, NHWC") {
  const auto ds = toy_dataset(3, 2, 3, 3);
  auto o = opts(3, false, 0, 0);
  o.shuffle = false;
  o.mean = {0.5f, 0.25f, 0.0f};
  o.stddev = {0.5f, 2.0f, 1.0f};
  io::batch_loader L(ds, o);
  io::batch b;
  L.start_epoch(0);
  REQUIRE(L.next(b));
  REQUIRE(b.n == 3);
  for (std::size_t i = 0; i < ds.images.size(); ++i) {
    const std::size_t ch = i % 3;
    const double want = (ds.images[i] / 255.0 - o.mean[ch]) / o.stddev[ch];
    CHECK(b.images[i] == doctest::Approx(want).epsilon(1e-6));
  }
}

TEST_CASE("batch_loader: the data set's mean and stddev are the default, and required") {
  auto ds = toy_dataset(4, 2, 3, 3);
  ds.mean = {0.5f, 0.25f, 0.0f};
  ds.stddev = {0.5f, 2.0f, 1.0f};
  auto o = opts(4, false, 0, 0);
  o.shuffle = false;
  io::batch_loader L(ds, o);
  CHECK(L.options().mean == ds.mean);
  CHECK(L.options().stddev == ds.stddev);
  io::batch b;
  L.start_epoch(0);
  REQUIRE(L.next(b));
  for (std::size_t i = 0; i < ds.images.size(); ++i) {
    const std::size_t ch = i % 3;
    const double want = (ds.images[i] / 255.0 - ds.mean[ch]) / ds.stddev[ch];
    CHECK(b.images[i] == doctest::Approx(want).epsilon(1e-6));
  }
  // Options given explicitly win over the data set's.
  o.mean = {0.0f, 0.0f, 0.0f};
  io::batch_loader M(ds, o);
  CHECK(M.options().mean == o.mean);
  CHECK(M.options().stddev == ds.stddev);
  // No statistics anywhere: refused, with the way out named.
  ds.mean.clear();
  ds.stddev.clear();
  const std::string msg =
      mixq_test::error_of([&] { io::batch_loader N(ds, opts(4, false, 0, 0)); });
  CHECK(mixq_test::contains(msg, "toy has no normalization statistics"));
  CHECK(mixq_test::contains(msg, "channel_stats"));
}

TEST_CASE("channel_stats: per-channel mean and population stddev of pixel/255") {
  io::image_dataset ds;
  ds.name = "two";
  ds.n = 2;
  ds.h = 1;
  ds.w = 2;
  ds.c = 2;
  ds.num_classes = 1;
  ds.labels = {0, 0};
  // channel 0: 0, 255, 0, 255 -> mean 0.5, std 0.5; channel 1: all 51 -> 0.2, 0.
  ds.images = {0, 51, 255, 51, 0, 51, 255, 51};
  const auto st = io::channel_stats(ds);
  REQUIRE(st.first.size() == 2u);
  CHECK(st.first[0] == doctest::Approx(0.5));
  CHECK(st.second[0] == doctest::Approx(0.5));
  CHECK(st.first[1] == doctest::Approx(0.2));
  CHECK(st.second[1] == doctest::Approx(0.0));
  ds.images.clear();
  ds.labels.clear();
  ds.n = 0;
  CHECK(mixq_test::contains(mixq_test::error_of([&] { io::channel_stats(ds); }), "no images"));
}

TEST_CASE("batch_loader: augmentation is a zero-padded crop plus an optional flip") {
  // One 6x6 single-channel image with distinct pixel values 1..36.
  io::image_dataset ds;
  ds.name = "tiny";
  ds.n = 1;
  ds.h = ds.w = 6;
  ds.c = 1;
  ds.num_classes = 1;
  ds.labels = {0};
  for (int i = 0; i < 36; ++i) ds.images.push_back(static_cast<std::uint8_t>(i + 1));
  const int pad = 2;
  auto o = opts(1, true, 5, 0);
  o.pad = pad;
  o.mean = {0.0f};
  o.stddev = {1.0f / 255.0f};  // output == pixel value, up to rounding
  io::batch_loader L(ds, o);

  // All (dy, dx, flip) candidates, built here from the definition.
  std::map<std::vector<int>, int> candidates;  // image -> code dy*100 + dx*10 + flip
  for (int dy = 0; dy <= 2 * pad; ++dy)
    for (int dx = 0; dx <= 2 * pad; ++dx)
      for (int flip = 0; flip < 2; ++flip) {
        std::vector<int> img(36);
        for (int y = 0; y < 6; ++y)
          for (int x = 0; x < 6; ++x) {
            const int xx = flip ? 5 - x : x;
            const int sy = y + dy - pad, sx = xx + dx - pad;
            img[y * 6 + x] = (sy < 0 || sy >= 6 || sx < 0 || sx >= 6) ? 0 : sy * 6 + sx + 1;
          }
        candidates[img] = dy * 100 + dx * 10 + flip;
      }
  REQUIRE(candidates.size() == 50u);  // all distinct

  std::set<int> dys, dxs, codes;
  int flips = 0;
  const int epochs = 400;
  std::vector<float> out(36);
  for (int e = 0; e < epochs; ++e) {
    L.make_sample(e, 0, out.data());
    std::vector<int> img(36);
    for (int i = 0; i < 36; ++i)
      img[static_cast<std::size_t>(i)] =
          static_cast<int>(std::lround(out[static_cast<std::size_t>(i)]));
    const auto it = candidates.find(img);
    REQUIRE_MESSAGE(it != candidates.end(), "epoch " << e << ": output is no padded crop/flip");
    codes.insert(it->second);
    dys.insert(it->second / 100);
    dxs.insert(it->second / 10 % 10);
    flips += it->second % 2;
  }
  CHECK(dys.size() == 5u);
  CHECK(dxs.size() == 5u);
  CHECK(codes.size() == 50u);  // 400 draws from 50 equally likely outcomes
  CHECK(flips > epochs / 2 - 60);
  CHECK(flips < epochs / 2 + 60);

  // Without augmentation the image is unchanged; with flip disabled, never mirrored.
  o.augment = false;
  io::batch_loader none(ds, o);
  none.make_sample(0, 0, out.data());
  for (int i = 0; i < 36; ++i) CHECK(std::lround(out[static_cast<std::size_t>(i)]) == i + 1);
  o.augment = true;
  o.flip = false;
  io::batch_loader noflip(ds, o);
  for (int e = 0; e < 50; ++e) {
    noflip.make_sample(e, 0, out.data());
    std::vector<int> img(36);
    for (int i = 0; i < 36; ++i)
      img[static_cast<std::size_t>(i)] =
          static_cast<int>(std::lround(out[static_cast<std::size_t>(i)]));
    const auto it = candidates.find(img);
    REQUIRE(it != candidates.end());
    CHECK(it->second % 2 == 0);
  }
}

TEST_CASE("batch_loader: the zero padding is black before normalization") {
  io::image_dataset ds;
  ds.name = "white";
  ds.n = 1;
  ds.h = ds.w = 4;
  ds.c = 3;
  ds.num_classes = 1;
  ds.labels = {0};
  ds.images.assign(48, 255);
  ds.mean = {0.4f, 0.5f, 0.6f};
  ds.stddev = {0.2f, 0.25f, 0.3f};
  auto o = opts(1, true, 0, 0);
  o.pad = 4;  // as large as the image: some draws are all padding
  io::batch_loader L(ds, o);
  o = L.options();  // the data set's mean and stddev
  std::vector<float> out(48);
  bool saw_pad = false;
  for (int e = 0; e < 20; ++e) {
    L.make_sample(e, 0, out.data());
    for (int i = 0; i < 48; ++i) {
      const int ch = i % 3;
      const float black =
          (0.0f - o.mean[static_cast<std::size_t>(ch)]) / o.stddev[static_cast<std::size_t>(ch)];
      const float white =
          (1.0f - o.mean[static_cast<std::size_t>(ch)]) / o.stddev[static_cast<std::size_t>(ch)];
      const float v = out[static_cast<std::size_t>(i)];
      CHECK((v == doctest::Approx(black) || v == doctest::Approx(white)));
      saw_pad = saw_pad || v == doctest::Approx(black);
    }
  }
  CHECK(saw_pad);
}

TEST_CASE("batch_loader: bad options and misuse are errors") {
  const auto ds = toy_dataset(10, 2, 2, 3);
  auto o = opts(0, false, 0, 0);
  CHECK_THROWS_AS(io::batch_loader(ds, o), mixq::error);
  o = opts(4, false, 0, 0);
  o.mean = {0.5f};
  CHECK_THROWS_AS(io::batch_loader(ds, o), mixq::error);
  o = opts(4, false, 0, 0);
  o.stddev = {1.0f, 0.0f, 1.0f};
  CHECK_THROWS_AS(io::batch_loader(ds, o), mixq::error);
  io::batch_loader L(ds, opts(4, false, 0, 2));
  io::batch b;
  CHECK_THROWS_AS(L.next(b), mixq::error);            // no epoch started
  CHECK_THROWS_AS(L.start_epoch(0, 4), mixq::error);  // 3 steps per epoch
  CHECK_NOTHROW(L.start_epoch(0, 3));                 // == steps: an empty remainder
  CHECK_FALSE(L.next(b));
}

TEST_CASE("batch_loader: a channel count that differs from the statistics is refused") {
  const auto gray = toy_dataset(5, 28, 28, 1);
  auto o = opts(4, false, 0, 0);
  o.mean = {0.5f, 0.5f, 0.5f};
  o.stddev = {0.25f, 0.25f, 0.25f};
  CHECK(mixq_test::contains(mixq_test::error_of([&] { io::batch_loader L(gray, o); }),
                            "toy has 1 channels but mean has 3"));
  CHECK_NOTHROW(io::batch_loader(gray, opts(4, false, 0, 0)));
}

TEST_CASE("batch_loader: an error on the worker thread is rethrown by next()") {
  auto ds = toy_dataset(40, 2, 2, 3);
  for (int prefetch : {0, 2}) {
    CAPTURE(prefetch);
    io::batch_loader L(ds, opts(8, false, 0, prefetch));
    ds.labels.pop_back();  // breaks the data set under the loader (no worker runs yet)
    L.start_epoch(0);      // the worker fails on its first batch
    io::batch b;
    bool threw = false;
    try {
      while (L.next(b)) {
      }
    } catch (const mixq::error& e) {
      threw = std::string(e.what()).find("changed after the loader was made") != std::string::npos;
    }
    CHECK(threw);
    ds.labels.push_back(0);
  }
}
