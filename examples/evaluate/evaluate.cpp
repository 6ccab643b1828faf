// mixq_evaluate: runs a deploy model on the CIFAR-10 test set with the
// integer runtime: top-1 accuracy, images/s, and a hash of every int32 logit
// (FNV-1a over the logits of all images in order), so runs on different ISAs
// (--isa scalar|avx2|avx512, or MIXQ_ISA) can be compared bit for bit.
//
//   mixq_evaluate --model r20_w4a4.mqd [--data DIR] [--isa avx2] [--batch 128]
//                 [--threads 2] [--max-images N] [--predictions out.txt] [--plan]
//                 [--config NAME] [--tune]
// --tune plans each model (each configuration of a bundle) by measurement:
// deploy/tune.hpp times the kernels' bit-plane choice against every conv on
// qconv2d at --batch and --threads and keeps the faster; logits do not change.
// --plan prints the runtime's plan first: every layer with its shape, bits,
// path and the kernel it runs, every tensor's layout, and the arena.
// A bundle (.mqb, several configurations of one network) is loaded once into
// a switchable runtime and each configuration (or only --config) is evaluated
// in turn by switching; a first line gives the bundle's bytes and the
// runtime's memory against one model file and one runtime per configuration.
// Flags are checked before anything is read (examples/common/cli.hpp); the
// predictions file is written atomically. Every error: one line on stderr,
// exit code 2.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <mixq/deploy/switchable.hpp>
#include <mixq/io/cifar10.hpp>
#include <mixq/io/file.hpp>

#include "../common/cli.hpp"

int main(int argc, char** argv) {
  namespace md = mixq::deploy;
  namespace ex = mixq::examples;
  const std::string prog = "mixq_evaluate";
  CLI::App app("CIFAR-10 test accuracy, speed and logit hash of a deploy model", prog);
  app.option_defaults()->always_capture_default();
  std::string model_path, data, isa, pred;
  long long batch = 128, threads = 1, max_images = 0;
  std::string config;
  app.add_option("--model", model_path, "deploy model (.mqd) or bundle (.mqb) file")
      ->required()
      ->check(ex::non_empty("a model file"));
  app.add_option("--data", data, "CIFAR-10 directory (default: MIXQ_DATA or the usual places)")
      ->check(ex::non_empty("a directory"));
  app.add_option("--isa", isa, "force the kernels' ISA: scalar, avx2, avx512, neon, ...")
      ->check(ex::non_empty("an ISA name"));
  app.add_option("--batch", batch, "images per run (1..4096)")->check(ex::integer_in(1, 4096));
  app.add_option("--threads", threads, "threads")->check(ex::threads_in(1));
  app.add_option("--max-images", max_images, "use only the first N test images (0 = all)")
      ->check(ex::integer_in(0, 10000));
  app.add_option("--predictions", pred, "write the predicted class of each image here")
      ->check(ex::non_empty("a file"));
  app.add_option("--config", config, "of a bundle, evaluate only this configuration")
      ->check(ex::non_empty("a configuration name"));
  bool plan = false, tune = false;
  app.add_flag("--plan", plan, "print every layer's kernel, the layouts and the arena first");
  app.add_flag("--tune", tune,
               "plan by measurement: time the bit-plane plan against the qconv2d plan at "
               "--batch and --threads, keep the faster (the outputs do not change)");
  if (const int rc = ex::parse(app, argc, argv); rc >= 0) return rc;
  try {
    md::runtime_options o;
    o.max_batch = batch;
    o.threads = static_cast<int>(threads);
    if (!isa.empty()) {
      const mixq::kernels::isa want = mixq::kernels::parse_isa(isa.c_str());
      MIXQ_CHECK(want != mixq::kernels::isa::automatic, "--isa '", isa, "': unknown ISA");
      MIXQ_CHECK(mixq::kernels::isa_supported(want), "--isa ", isa, ": not available on this CPU");
      mixq::kernels::set_isa(want);
      o.isa = want;
    }
    const std::vector<std::uint8_t> bytes = md::read_file_bytes(model_path);
    const bool bundle = md::is_bundle(bytes);
    std::vector<md::named_model> configs;
    if (bundle)
      configs = md::parse_bundle(bytes, model_path);
    else
      configs.push_back({"model", md::parse(bytes, model_path)});
    MIXQ_CHECK(bundle || config.empty(), "--config ", config, ": '", model_path,
               "' is one model, not a bundle");
    const md::tune_settings ts;
    md::switchable_runtime sw(configs, o, tune ? &ts : nullptr);
    for (std::size_t i = 0; i < sw.tune_reports().size(); ++i)
      std::printf("%s%s%s: %s\n", model_path.c_str(), bundle ? " " : "",
                  bundle ? ("[" + sw.names()[i] + "]").c_str() : "",
                  sw.tune_reports()[i].describe().c_str());
    std::vector<std::size_t> which;
    if (!config.empty()) {
      sw.select(config);
      which.push_back(sw.selected());
    } else {
      for (std::size_t i = 0; i < sw.configurations(); ++i) which.push_back(i);
    }
    MIXQ_CHECK(pred.empty() || which.size() == 1, "--predictions: the bundle has ", which.size(),
               " configurations; choose one with --config");
    if (bundle) {
      const md::bundle_bytes bb = md::measure_bundle(configs);
      std::printf(
          "%s: bundle of %zu configurations, %zu bytes (one model file each: %zu bytes; %zu of "
          "%zu code arrays distinct); runtime weights %zu bytes, arena %zu bytes (one runtime "
          "each: %zu and %zu bytes)\n",
          model_path.c_str(), sw.configurations(), bb.bundle, bb.separate, bb.unique_code_arrays,
          bb.code_arrays, sw.weight_bytes(), sw.arena_bytes(), sw.separate_weight_bytes(),
          sw.separate_arena_bytes());
    }
    mixq::io::load_options lo;
    lo.max_images = max_images;
    const auto test = mixq::io::load_cifar10_auto(mixq::io::split::test, lo, data);
    MIXQ_CHECK(sw.input().h == test.h && sw.input().w == test.w && sw.input().c == test.c,
               "model '", model_path, "' takes ", sw.input().h, "x", sw.input().w, "x",
               sw.input().c, " images, the data set has ", test.h, "x", test.w, "x", test.c);
    for (const std::size_t ci : which) {
      sw.select(ci);
      md::runtime& rt = sw.active();
      if (plan) std::fputs(rt.describe().c_str(), stdout);
      const std::string label = bundle ? model_path + " [" + sw.names()[ci] + "]" : model_path;
      std::string predictions;  // written at the end, atomically
      std::uint64_t hash = 1469598103934665603ull;
      std::int64_t correct = 0;
      double seconds = 0;
      for (std::int64_t i0 = 0; i0 < test.n; i0 += batch) {
        const std::int64_t n = test.n - i0 < batch ? test.n - i0 : batch;
        const auto t0 = std::chrono::steady_clock::now();
        rt.run(test.image(i0), n);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        for (std::int64_t j = 0; j < n * rt.classes(); ++j) {
          const auto v = static_cast<std::uint32_t>(rt.logits()[j]);
          for (int b = 0; b < 4; ++b) hash = (hash ^ ((v >> (8 * b)) & 0xFFu)) * 1099511628211ull;
        }
        for (std::int64_t i = 0; i < n; ++i) {
          const std::int32_t c = rt.top1(i);
          correct += c == test.labels[static_cast<std::size_t>(i0 + i)];
          if (!pred.empty()) predictions += std::to_string(c) + "\n";
        }
      }
      if (!pred.empty()) mixq::io::write_file_atomic(pred, predictions);
      std::printf(
          "%s on %lld CIFAR-10 test images: top-1 %.2f %%, %.1f images/s (batch %lld, "
          "%lld thread(s), ISA %s), logits FNV-1a %016llx\n",
          label.c_str(), static_cast<long long>(test.n), 100.0 * correct / test.n, test.n / seconds,
          static_cast<long long>(batch), static_cast<long long>(threads),
          mixq::kernels::isa_name(rt.isa()), static_cast<unsigned long long>(hash));
    }
  } catch (const std::exception& e) {
    return ex::fail(prog, e.what());
  }
  if (std::fflush(stdout) != 0) return ex::fail(prog, "writing to stdout failed");
  return 0;
}
