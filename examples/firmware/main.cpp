// A firmware-style program: the model is compiled in from a generated C
// header (mixq_export --header), the runtime is mixq::runtime alone (no
// Eigen, no zlib, no file I/O), and the image comes from memory. It reads
// no file: the build makes model_data.h from the export example and this
// program only includes it.
#include <cstdint>
#include <cstdio>
#include <vector>

#include <mixq/deploy/runtime.hpp>

#include "model_data.h"

int main() {
  namespace md = mixq::deploy;
  try {
    md::runtime rt = md::runtime::from_memory(mixq_model, mixq_model_size, {}, "mixq_model");
    const auto& in = rt.input();
    // a test pattern: a diagonal gradient per channel
    std::vector<std::uint8_t> img(static_cast<std::size_t>(in.h * in.w * in.c));
    for (std::int32_t y = 0; y < in.h; ++y)
      for (std::int32_t x = 0; x < in.w; ++x)
        for (std::int32_t c = 0; c < in.c; ++c)
          img[static_cast<std::size_t>((y * in.w + x) * in.c + c)] =
              static_cast<std::uint8_t>((8 * (x + y) + 85 * c) & 255);
    std::int32_t cls = -1;
    rt.classify(img.data(), 1, &cls);
    std::printf("model of %u bytes in flash, arena %zu bytes: class %d (logit %.4f)\n",
                unsigned(MIXQ_MODEL_SIZE), rt.arena_bytes(), cls, rt.logit(0, cls));
  } catch (const mixq::error& e) {
    std::fprintf(stderr, "firmware: %s\n", e.what());
    return 2;
  }
  return 0;
}
