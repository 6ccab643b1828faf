// mixq_classify: classifies images with a deploy model on the integer
// runtime and prints the top-3 classes and the latency.
//
//   mixq_classify --model r20_w4a4.mqd cat.png dog.jpg ship.ppm
//
// Each image (PNG, JPEG, PPM, BMP, ...; read with mixq's stb_image-based
// reader) is resized to the model's input size (32x32 for CIFAR-10) and run
// alone (batch 1). The latency is the median of --repeat timed runs of that
// image after one warm-up run. Flags are checked before anything is read
// (examples/common/cli.hpp). Every error: one line on stderr, exit code 2.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <mixq/deploy/runtime.hpp>
#include <mixq/io/image.hpp>

#include "../common/cli.hpp"

namespace {
const char* cifar10_labels[10] = {"airplane", "automobile", "bird",  "cat",  "deer",
                                  "dog",      "frog",       "horse", "ship", "truck"};
}

int main(int argc, char** argv) {
  namespace md = mixq::deploy;
  namespace ex = mixq::examples;
  const std::string prog = "mixq_classify";
  CLI::App app("top-3 classes and latency of images on the integer runtime", prog);
  app.option_defaults()->always_capture_default();
  std::string model_path;
  long long repeat = 20, threads = 1;
  std::vector<std::string> images;
  app.add_option("--model", model_path, "deploy model file (.mqd)")
      ->required()
      ->check(ex::non_empty("a model file"));
  app.add_option("--repeat", repeat, "timed runs per image (1..100000)")
      ->check(ex::integer_in(1, 100000));
  app.add_option("--threads", threads, "threads")->check(ex::threads_in(1));
  app.add_option("images", images, "image files (PNG, JPEG, PPM, BMP, ...)")
      ->required()
      ->check(ex::non_empty("an image file"));
  if (const int rc = ex::parse(app, argc, argv); rc >= 0) return rc;
  try {
    md::runtime_options o;
    o.threads = static_cast<int>(threads);
    md::runtime rt = md::runtime::from_file(model_path, o);
    const auto& in = rt.input();
    MIXQ_CHECK(in.c == 3, "model '", model_path, "' takes ", in.c, "-channel images, not RGB");
    auto label = [&](std::int32_t c) -> std::string {
      if (!rt.labels().empty()) return rt.labels()[static_cast<std::size_t>(c)];
      if (rt.classes() == 10) return cifar10_labels[c];
      return "class " + std::to_string(c);
    };
    std::printf("model %s: %d classes, ISA %s, arena %zu bytes\n", model_path.c_str(), rt.classes(),
                mixq::kernels::isa_name(rt.isa()), rt.arena_bytes());
    for (const auto& path : images) {
      mixq::io::image_u8 img = mixq::io::load_image_rgb(path);
      if (img.h != in.h || img.w != in.w) img = mixq::io::resize_bilinear(img, in.h, in.w);
      rt.run(img.data.data(), 1);  // warm-up
      std::vector<double> us;
      for (long long r = 0; r < repeat; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        rt.run(img.data.data(), 1);
        us.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count());
      }
      std::sort(us.begin(), us.end());
      std::int32_t top[3] = {0, 0, 0};
      const int k = std::min(3, static_cast<int>(rt.classes()));
      rt.top_k(0, k, top);
      std::printf("%s:", path.c_str());
      for (int j = 0; j < k; ++j)
        std::printf(" %s (%.3f)", label(top[j]).c_str(), rt.logit(0, top[j]));
      std::printf("  [%.1f us]\n", us[us.size() / 2]);
    }
  } catch (const std::exception& e) {
    return ex::fail(prog, e.what());
  }
  if (std::fflush(stdout) != 0) return ex::fail(prog, "writing to stdout failed");
  return 0;
}
