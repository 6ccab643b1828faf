// Deploy runtime throughput: random-weight ResNet20 deploy models
// (deploy/synthetic.hpp) per bit configuration, images/s at each batch and
// thread count, with the model file's bytes and the runtime's arena bytes.
// Before timing, each configuration's logits on the active ISA are checked
// against the scalar kernels (the runtime is exact on every ISA).
//
//   mixq_bench_deploy_infer [--bits w8a8,w4a4,w2a2,mixed] [--batch 1,128]
//                           [--threads 1,2] [--seconds 2] [--samples 5] [--json]
//                           [--worker-cpus auto|none|LIST] [--tune]
//
// A sample runs the same batch for seconds / samples; the figure is the
// median images/s over the samples. --json prints one JSON line per row (the
// form bench/deploy/compare.py reads); otherwise a table.
// --tune plans each model by measurement (deploy/tune.hpp: the kernels'
// policy against every conv on qconv2d, the faster kept) and names the rows
// mixq-deploy-<bits>-tuned.
// w<b>a<b>r<R>: the same with a residual stream of R bits (a remap layer per
// block, docs/quantization.md 2.1).
// "mixed" is an illustrative per-layer mix (stem W8A4, stage 1 W4A4, stage 2
// W3A3, stage 3 W2A2: 3.0 bits on average over the 18 block convs), the
// shape of what a learned per-layer configuration looks like.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#include <unistd.h>
#endif

#include <mixq/deploy/runtime.hpp>
#include <mixq/deploy/synthetic.hpp>
#include <mixq/deploy/tune.hpp>

namespace {

namespace md = mixq::deploy;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> r;
  std::size_t a = 0;
  while (a <= s.size()) {
    const std::size_t b = s.find(',', a);
    r.push_back(s.substr(a, b == std::string::npos ? std::string::npos : b - a));
    if (b == std::string::npos) break;
    a = b + 1;
  }
  return r;
}

md::model make_model(const std::string& bits) {
  md::synthetic_resnet_options o;
  o.n = 3;
  if (bits == "mixed") {
    o.per_layer.push_back({8, 4});
    for (int i = 0; i < 6; ++i) o.per_layer.push_back({4, 4});
    for (int i = 0; i < 6; ++i) o.per_layer.push_back({3, 3});
    for (int i = 0; i < 6; ++i) o.per_layer.push_back({2, 2});
  } else {
    int n1 = 0, n2 = 0;
    const bool ok = std::sscanf(bits.c_str(), "w%da%d%n", &o.w_bits, &o.a_bits, &n1) == 2 &&
                    (bits.size() == static_cast<std::size_t>(n1) ||
                     (std::sscanf(bits.c_str() + n1, "r%d%n", &o.residual_bits, &n2) == 1 &&
                      bits.size() == static_cast<std::size_t>(n1 + n2)));
    MIXQ_CHECK(ok, "--bits '", bits, "': expected w<b>a<b>, w<b>a<b>r<b> or mixed");
  }
  return md::synthetic_resnet(o);
}

}  // namespace

// --worker-cpus: "auto" pins worker w to the (w + 1)-th online CPU after the
// calling thread's first allowed CPU when the calling thread may run on fewer
// CPUs than there are threads (OMP_PROC_BIND=true, which compare.py sets,
// binds it to one), else leaves the inherited mask; "none" never pins; a
// list "1,2,..." pins worker w to its w-th entry.
std::vector<int> pick_worker_cpus(const std::string& spec, int threads) {
  std::vector<int> cpus;
  if (spec == "none" || threads <= 1) return cpus;
  if (spec != "auto") {
    for (const std::string& c : split(spec)) cpus.push_back(std::atoi(c.c_str()));
    return cpus;
  }
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0 || CPU_COUNT(&set) >= threads) return cpus;
  int first = 0;
  while (first < CPU_SETSIZE && !CPU_ISSET(first, &set)) ++first;
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  for (int w = 1; w < threads; ++w) cpus.push_back(static_cast<int>((first + w) % online));
#endif
  return cpus;
}

int main(int argc, char** argv) {
  std::string bits = "w8a8,w4a4,w2a2,mixed", batches = "1,128", threads = "1,2";
  double seconds = 2.0;
  int samples = 5;
  bool json = false, tune = false;
  std::string worker_cpus = "auto";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "mixq_bench_deploy_infer: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--bits")
      bits = val();
    else if (a == "--batch")
      batches = val();
    else if (a == "--threads")
      threads = val();
    else if (a == "--seconds")
      seconds = std::atof(val().c_str());
    else if (a == "--samples")
      samples = std::atoi(val().c_str());
    else if (a == "--json")
      json = true;
    else if (a == "--worker-cpus")
      worker_cpus = val();
    else if (a == "--tune")
      tune = true;
    else {
      std::fprintf(stderr, "mixq_bench_deploy_infer: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  try {
    if (!json)
      std::printf("%-6s %6s %7s %12s %11s %11s  %s\n", "bits", "batch", "threads", "images/s",
                  "model B", "arena B", "isa");
    for (const std::string& b : split(bits)) {
      const md::model m = make_model(b);
      const std::size_t model_bytes = md::serialize(m).size();
      // exactness check: the active ISA against the scalar kernels, 2 images
      std::vector<std::uint8_t> img(static_cast<std::size_t>(128 * 32 * 32 * 3));
      std::uint32_t s = 12345;
      for (auto& v : img) v = static_cast<std::uint8_t>((s = s * 1664525u + 1013904223u) >> 24);
      {
        md::runtime_options so;
        so.isa = mixq::kernels::isa::scalar;
        so.max_batch = 2;
        md::runtime_options fo;
        fo.max_batch = 2;
        md::runtime ref(m, so), fast(m, fo);
        ref.run(img.data(), 2);
        fast.run(img.data(), 2);
        for (int j = 0; j < 2 * ref.classes(); ++j)
          MIXQ_CHECK(ref.logits()[j] == fast.logits()[j], "bits ", b,
                     ": logits differ from the scalar kernels at ", j);
      }
      for (const std::string& bs : split(batches))
        for (const std::string& ts : split(threads)) {
          md::runtime_options o;
          o.max_batch = std::atoll(bs.c_str());
          o.threads = std::atoi(ts.c_str());
          o.worker_cpus = pick_worker_cpus(worker_cpus, o.threads);
          MIXQ_CHECK(o.max_batch >= 1 && o.max_batch <= 128, "--batch ", bs, ": expected 1..128");
          std::string tuned;
          if (tune) {
            md::tune_report rep;
            o = md::tune(m, o, {}, &rep);
            tuned = rep.describe();
            if (!json)
              std::printf("# %s, batch %s, threads %s: %s\n", b.c_str(), bs.c_str(), ts.c_str(),
                          tuned.c_str());
          }
          md::runtime rt(m, o);
          for (int w = 0; w < 3; ++w) rt.run(img.data(), o.max_batch);
          std::vector<double> rate;
          for (int k = 0; k < samples; ++k) {
            long runs = 0;
            const auto t0 = std::chrono::steady_clock::now();
            double dt = 0;
            do {
              rt.run(img.data(), o.max_batch);
              ++runs;
              dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            } while (dt < seconds / samples);
            rate.push_back(double(runs) * double(o.max_batch) / dt);
          }
          std::sort(rate.begin(), rate.end());
          const double med = rate[rate.size() / 2];
          if (json)
            std::printf(
                "{\"impl\": \"mixq-deploy-%s%s\", \"threads\": %d, \"batch\": %lld, "
                "\"images_per_s\": %.2f, \"min_images_per_s\": %.2f, \"max_images_per_s\": %.2f, "
                "\"model_bytes\": %zu, \"arena_bytes\": %zu, \"isa\": \"%s\", "
                "\"pinned_workers\": %zu, \"bitplane\": %s}\n",
                b.c_str(), tune ? "-tuned" : "", o.threads, static_cast<long long>(o.max_batch),
                med, rate.front(), rate.back(), model_bytes, rt.arena_bytes(),
                mixq::kernels::isa_name(rt.isa()), o.worker_cpus.size(),
                o.bitplane ? "true" : "false");
          else
            std::printf("%-6s %6lld %7d %12.1f %11zu %11zu  %s\n", b.c_str(),
                        static_cast<long long>(o.max_batch), o.threads, med, model_bytes,
                        rt.arena_bytes(), mixq::kernels::isa_name(rt.isa()));
          std::fflush(stdout);
        }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mixq_bench_deploy_infer: %s\n", e.what());
    return 2;
  }
  return 0;
}
