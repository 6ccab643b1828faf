// mixq_raw_hash: the runtime alone (mixq::runtime: no Eigen, zlib or OpenMP)
// over raw images, for the cross-ISA check (scripts/isa_agreement.sh): it
// builds for aarch64 as one static file and runs under qemu.
//
//   mixq_raw_hash MODEL.mqd IMAGES.u8 LABELS.u8 [BATCH]
// IMAGES.u8: n images of the model's h x w x c uint8 pixels (HWC, row-major);
// LABELS.u8: n bytes. Prints the image count, top-1 accuracy, the ISA that
// ran and the FNV-1a hash of every int32 logit in order (the same hash as
// mixq_evaluate's). Every error: one line on stderr, exit code 2.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <mixq/deploy/runtime.hpp>

int main(int argc, char** argv) {
  namespace md = mixq::deploy;
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr, "usage: mixq_raw_hash MODEL.mqd IMAGES.u8 LABELS.u8 [BATCH]\n");
    return 2;
  }
  try {
    const long long batch = argc == 5 ? std::strtoll(argv[4], nullptr, 10) : 100;
    MIXQ_CHECK(batch >= 1 && batch <= 4096, "BATCH '", argc == 5 ? argv[4] : "",
               "': expected 1..4096");
    md::runtime_options o;
    o.max_batch = batch;
    md::runtime rt = md::runtime::from_file(argv[1], o);
    const std::vector<std::uint8_t> images = md::read_file_bytes(argv[2]);
    const std::vector<std::uint8_t> labels = md::read_file_bytes(argv[3]);
    const std::size_t per = static_cast<std::size_t>(rt.input().h) * rt.input().w * rt.input().c;
    MIXQ_CHECK(!labels.empty() && images.size() == labels.size() * per, "'", argv[2], "' holds ",
               images.size(), " bytes, expected ", labels.size(), " images of ", per,
               " bytes (one per label in '", argv[3], "')");
    const std::int64_t n = static_cast<std::int64_t>(labels.size());
    std::uint64_t hash = 1469598103934665603ull;
    std::int64_t correct = 0;
    for (std::int64_t i0 = 0; i0 < n; i0 += batch) {
      const std::int64_t m = n - i0 < batch ? n - i0 : batch;
      rt.run(images.data() + static_cast<std::size_t>(i0) * per, m);
      for (std::int64_t j = 0; j < m * rt.classes(); ++j) {
        const auto v = static_cast<std::uint32_t>(rt.logits()[j]);
        for (int b = 0; b < 4; ++b) hash = (hash ^ ((v >> (8 * b)) & 0xFFu)) * 1099511628211ull;
      }
      for (std::int64_t i = 0; i < m; ++i)
        correct += rt.top1(i) == labels[static_cast<std::size_t>(i0 + i)];
    }
    std::printf("%lld images, top-1 %.2f %%, ISA %s, logits FNV-1a %016llx\n",
                static_cast<long long>(n), 100.0 * double(correct) / double(n),
                mixq::kernels::isa_name(rt.isa()), static_cast<unsigned long long>(hash));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mixq_raw_hash: %s\n", e.what());
    return 2;
  }
  return 0;
}
