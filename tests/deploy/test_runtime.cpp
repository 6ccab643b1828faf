// The runtime against the independent reference of deploy_test_util.hpp:
// random models (bits 2..8 per layer, both weight grids, input zero points,
// identity and option-A residuals) give the reference's int32 logits bit for
// bit on every ISA this machine has, at every batch size and thread count,
// through every conv path (u8, bit-plane LUT6, raw odd 8-bit). Also: no heap
// allocation during an inference, and clear errors at the API boundary.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include <mixq/deploy/runtime.hpp>
#include <mixq/deploy/synthetic.hpp>

#include "deploy_test_util.hpp"

using namespace dtest;
namespace mk = mixq::kernels;

// Counts heap allocations of this test program (to show run() makes none).
// The array forms call these; the aligned forms are replaced too.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
static std::atomic<long> g_allocs{0};
void* operator new(std::size_t n) {
  ++g_allocs;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a) {
  ++g_allocs;
  const std::size_t al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  ++g_allocs;
  return std::malloc(n ? n : 1);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

const mk::isa all_isas[] = {mk::isa::scalar, mk::isa::avx2, mk::isa::avx512, mk::isa::neon,
                            mk::isa::neon_dotprod};

bool isa_or_skip(mk::isa l) {
  if (mk::isa_supported(l)) return true;
  MESSAGE("SKIPPED deploy runtime on ISA " << std::string(mk::isa_name(l))
                                           << ": not available on this CPU/build");
  return false;
}

/// Runs m on `images` (n of them) and returns the int32 logits.
std::vector<std::int64_t> run_logits(const md::model& m, const std::vector<std::uint8_t>& images,
                                     std::int64_t n, mk::isa l, std::int64_t max_batch, int threads,
                                     std::string* paths = nullptr) {
  md::runtime_options o;
  o.isa = l;
  o.max_batch = max_batch;
  o.threads = threads;
  md::runtime rt(m, o);
  if (paths) {
    paths->clear();
    for (const auto& p : rt.conv_paths()) *paths += p + " ";
  }
  std::vector<std::int64_t> out;
  const std::int64_t per = m.input.h * m.input.w * m.input.c;
  for (std::int64_t i0 = 0; i0 < n; i0 += max_batch) {
    const std::int64_t k = n - i0 < max_batch ? n - i0 : max_batch;
    rt.run(images.data() + i0 * per, k);
    for (std::int64_t j = 0; j < k * rt.classes(); ++j) out.push_back(rt.logits()[j]);
  }
  return out;
}

struct isa_guard {
  ~isa_guard() { mk::set_isa(mk::isa::automatic); }
};

}  // namespace

TEST_CASE("random models: runtime logits == reference logits on every ISA") {
  isa_guard g;
  int checked = 0;
  for (mk::isa l : all_isas) {
    if (!isa_or_skip(l)) continue;
    mk::set_isa(l);
    for (std::uint64_t seed = 1; seed <= 12; ++seed) {
      rng r(1000 + seed);
      random_options o;
      o.h = o.w = seed % 3 == 0 ? 7 : 8;  // odd sizes: stride-2 maps of ceil(7/2)
      o.width = seed % 2 ? 8 : 12;
      o.remap = seed % 4 >= 2;  // half the models requantize the stem through a code table
      const md::model m = random_model(r, o);
      const std::int64_t n = 3;
      const auto images = random_images(m, n, r);
      const auto want = reference_logits(m, images.data(), n);
      std::string paths;
      const auto got = run_logits(m, images, n, l, n, 1, &paths);
      INFO("ISA " << std::string(mk::isa_name(l)) << " seed " << seed << " paths " << paths);
      CHECK(got == want);
      ++checked;
    }
  }
  CHECK(checked >= 12);
}

TEST_CASE("batch size and threads do not change the logits") {
  isa_guard g;
  rng r(77);
  const md::model m = random_model(r);
  const std::int64_t n = 7;
  const auto images = random_images(m, n, r);
  const auto want = reference_logits(m, images.data(), n);
  for (mk::isa l : all_isas) {
    if (!mk::isa_supported(l)) continue;
    mk::set_isa(l);
    for (std::int64_t mb : {1, 3, 7})
      for (int threads : {1, 2, 3}) {
        INFO("ISA " << std::string(mk::isa_name(l)) << " max_batch " << mb << " threads "
                    << threads);
        CHECK(run_logits(m, images, n, l, mb, threads) == want);
      }
  }
}

TEST_CASE("the bit-plane (LUT6) path: 2-bit activations, exact on every ISA") {
  isa_guard g;
  rng r(5);
  random_options o;
  o.h = o.w = 16;
  o.min_bits = o.max_bits = 2;  // A2, W2 (the stem is 8-bit W on 8-bit input)
  o.width = 16;
  o.remap = true;  // a 2-bit code table whose output the planes path reads
  const md::model m = random_model(r, o);
  const std::int64_t n = 2;
  const auto images = random_images(m, n, r);
  const auto want = reference_logits(m, images.data(), n);
  bool saw_planes = false;
  for (mk::isa l : all_isas) {
    if (!mk::isa_supported(l)) continue;
    mk::set_isa(l);
    std::string paths;
    const auto got = run_logits(m, images, n, l, n, 1, &paths);
    INFO("ISA " << std::string(mk::isa_name(l)) << " paths " << paths);
    CHECK(got == want);
    if (paths.find("bitplane") != std::string::npos) saw_planes = true;
    CHECK(run_logits(m, images, n, l, n, 2) == want);
  }
  if (mk::detect_cpu().avx512lut)
    CHECK(saw_planes);
  else
    MESSAGE("SKIPPED the bit-plane path check: no AVX-512 VBMI/BITALG on this CPU");
}

TEST_CASE("a synthetic ResNet8 with an 8-bit residual stream: remaps, exact on every ISA") {
  isa_guard g;
  md::synthetic_resnet_options so;
  so.n = 1;
  so.w_bits = so.a_bits = 2;
  so.residual_bits = 8;
  const md::model m = md::synthetic_resnet(so);
  int remaps = 0;
  for (const auto& L : m.layers) remaps += std::holds_alternative<md::remap_layer>(L);
  CHECK(remaps == 3);  // one per block
  rng r(11);
  const std::int64_t n = 2;
  const auto images = random_images(m, n, r);
  const auto want = reference_logits(m, images.data(), n);
  for (mk::isa l : all_isas) {
    if (!mk::isa_supported(l)) continue;
    mk::set_isa(l);
    std::string paths;
    INFO("ISA " << std::string(mk::isa_name(l)));
    CHECK(run_logits(m, images, n, l, n, 1, &paths) == want);
    CHECK(run_logits(m, images, n, l, 1, 2) == want);
  }
  so.residual_bits = 1;
  CHECK_THROWS_WITH_AS(md::synthetic_resnet(so), doctest::Contains("residual bits 1"), mixq::error);
}

TEST_CASE("8-bit odd-grid weights run on the raw path, exactly") {
  isa_guard g;
  rng r(9);
  random_options o;
  o.min_bits = 8;
  o.max_bits = 8;
  md::model m = random_model(r, o);
  for (auto& L : m.layers) {
    if (auto* c = std::get_if<md::conv_layer>(&L)) c->grid = md::weight_grid::odd;
    if (auto* f = std::get_if<md::linear_layer>(&L)) f->grid = md::weight_grid::odd;
  }
  // keep the accumulators in range after doubling the weights
  for (auto& L : m.layers)
    if (auto* c = std::get_if<md::conv_layer>(&L))
      for (auto& b : c->bias) b /= 4;
  const std::int64_t n = 2;
  const auto images = random_images(m, n, r);
  const auto want = reference_logits(m, images.data(), n);
  for (mk::isa l : all_isas) {
    if (!mk::isa_supported(l)) continue;
    mk::set_isa(l);
    std::string paths;
    const auto got = run_logits(m, images, n, l, n, 1, &paths);
    INFO("ISA " << std::string(mk::isa_name(l)) << " paths " << paths);
    CHECK(paths.find("raw") != std::string::npos);
    CHECK(got == want);
  }
}

TEST_CASE("an inference allocates nothing, and classes and float logits follow the int32 logits") {
  rng r(11);
  const md::model m = random_model(r);
  md::runtime_options o;
  o.max_batch = 4;
  o.threads = 2;
  md::runtime rt(m, o);
  const auto images = random_images(m, 4, r);
  rt.run(images.data(), 4);  // warm-up (first-use statics of the kernels)
  const long before = g_allocs.load();
  rt.run(images.data(), 4);
  rt.run(images.data(), 1);
  CHECK(g_allocs.load() == before);
  CHECK(rt.arena_bytes() > 0);
  CHECK(rt.weight_bytes() > 0);
  const auto& fc = std::get<md::linear_layer>(m.layers.back());
  std::vector<std::int32_t> cls(4);
  rt.classify(images.data(), 4, cls.data());
  for (std::int64_t i = 0; i < 4; ++i) {
    std::int32_t best = 0;
    for (std::int32_t c = 1; c < rt.classes(); ++c)
      if (double(fc.logit_scale[c]) * rt.logits()[i * rt.classes() + c] >
          double(fc.logit_scale[best]) * rt.logits()[i * rt.classes() + best])
        best = c;
    CHECK(cls[static_cast<std::size_t>(i)] == best);
    std::int32_t top3[3];
    rt.top_k(i, 3, top3);
    CHECK(top3[0] == best);
    CHECK(top3[1] != top3[0]);
    CHECK(rt.logit(i, top3[1]) >= rt.logit(i, top3[2]));
    CHECK(rt.logit(i, 2) ==
          doctest::Approx(fc.logit_scale[2] * double(rt.logits()[i * rt.classes() + 2])));
  }
}

TEST_CASE("runtime errors: batch too large, bad options, bad bytes") {
  rng r(12);
  const md::model m = random_model(r);
  md::runtime rt(m);
  const auto images = random_images(m, 2, r);
  CHECK_THROWS_WITH_AS(rt.run(images.data(), 2), doctest::Contains("batch of 2 images"),
                       mixq::error);
  CHECK_THROWS_WITH_AS(rt.run(images.data(), 0), doctest::Contains("batch of 0 images"),
                       mixq::error);
  md::runtime_options bad;
  bad.threads = 0;
  CHECK_THROWS_WITH_AS(md::runtime(m, bad), doctest::Contains("threads 0"), mixq::error);
  const std::uint8_t junk[40] = {'M', 'I', 'X', 'Q'};
  CHECK_THROWS_WITH_AS(md::runtime::from_memory(junk, sizeof(junk)),
                       doctest::Contains("model file 'memory'"), mixq::error);
  auto bytes = md::serialize(m);
  md::runtime back = md::runtime::from_memory(bytes.data(), bytes.size());
  back.run(images.data(), 1);
  rt.run(images.data(), 1);
  for (std::int32_t c = 0; c < rt.classes(); ++c) CHECK(back.logits()[c] == rt.logits()[c]);
}

#if defined(__linux__)
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <fstream>

// Threads of this process whose affinity is exactly {cpu}.
static int tasks_pinned_to(int cpu) {
  int found = 0;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("Cpus_allowed_list:", 0) == 0) {
        const std::string v = line.substr(line.find_first_not_of(" \t", 18));
        if (v == std::to_string(cpu)) ++found;
      }
  }
  closedir(d);
  return found;
}

TEST_CASE(
    "worker_cpus pins the workers; a bound loading thread is reported; bad CPUs are one error") {
  rng r(13);
  const md::model m = random_model(r);
  const auto images = random_images(m, 4, r);
  cpu_set_t mine;
  CPU_ZERO(&mine);
  REQUIRE(pthread_getaffinity_np(pthread_self(), sizeof(mine), &mine) == 0);
  int last = -1;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &mine)) last = c;
  REQUIRE(last >= 0);

  md::runtime_options one;
  one.max_batch = 4;
  md::runtime ref(m, one);
  ref.run(images.data(), 4);

  md::runtime_options o = one;
  o.threads = 2;
  o.worker_cpus = {last};
  md::runtime pinned(m, o);
  pinned.run(images.data(), 4);
  for (int j = 0; j < 4 * ref.classes(); ++j) CHECK(pinned.logits()[j] == ref.logits()[j]);
  CHECK(tasks_pinned_to(last) >= 1);

  // The loading thread bound to one CPU: the workers would share it.
  if (CPU_COUNT(&mine) >= 2) {
    cpu_set_t only;
    CPU_ZERO(&only);
    CPU_SET(last, &only);
    REQUIRE(pthread_setaffinity_np(pthread_self(), sizeof(only), &only) == 0);
    md::runtime_options inherit = one;
    inherit.threads = 2;
    std::string text;
    {
      md::runtime bound(m, inherit);
      text = bound.describe();
    }
    md::runtime_options told = inherit;
    told.worker_cpus = {last};
    std::string quiet;
    {
      md::runtime bound(m, told);
      quiet = bound.describe();
    }
    REQUIRE(pthread_setaffinity_np(pthread_self(), sizeof(mine), &mine) == 0);
    CHECK(text.find("set runtime_options::worker_cpus") != std::string::npos);
    CHECK(quiet.find("set runtime_options::worker_cpus") == std::string::npos);
  }

  md::runtime_options bad = o;
  bad.worker_cpus = {-1};
  CHECK_THROWS_WITH_AS(md::runtime(m, bad), doctest::Contains("worker_cpus holds -1"), mixq::error);
  bad.worker_cpus = {1 << 20};
  CHECK_THROWS_WITH_AS(md::runtime(m, bad), doctest::Contains("cannot pin worker 0 to CPU 1048576"),
                       mixq::error);
  const long conf = sysconf(_SC_NPROCESSORS_CONF);
  if (conf > 0 && conf < CPU_SETSIZE) {
    bad.worker_cpus = {static_cast<int>(conf)};
    CHECK_THROWS_WITH_AS(md::runtime(m, bad), doctest::Contains("not available to this process"),
                         mixq::error);
  }
}
#endif
