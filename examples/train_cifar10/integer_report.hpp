#pragma once
// The end of a quantized run: the trained model exported to the integer
// runtime (deploy/export.hpp), written as <out>/model.mqd, run on the test
// set, compared with the fake-quant model image by image, and timed: batch-1
// latency on one thread (median over single images) and batch-128
// throughput on the run's threads.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mixq/deploy/format.hpp"
#include "mixq/deploy/verify.hpp"
#include "mixq/io/dataset.hpp"

namespace mixq::examples {

struct integer_report {
  std::string path;              // the deploy model file written
  std::int64_t model_bytes = 0;  // its size
  std::int64_t arena_bytes = 0;  // the runtime's arena at batch 1
  deploy::agreement agree;       // against the fake-quant model, whole test set
  double batch1_us = 0;          // median latency of one image, 1 thread
  double batch128_images_s = 0;  // throughput at batch 128 on `threads`
  std::string isa;
};

inline integer_report run_integer_report(nn::resnet_cifar& model, const io::image_dataset& test,
                                         const std::string& out_dir, int threads) {
  using clock = std::chrono::steady_clock;
  integer_report r;
  const deploy::model dm = deploy::export_resnet(model, static_cast<std::int32_t>(test.h),
                                                 static_cast<std::int32_t>(test.w));
  r.path = out_dir + "/model.mqd";
  const std::vector<std::uint8_t> bytes = deploy::serialize(dm);
  deploy::write_file_bytes(r.path, bytes.data(), bytes.size());
  r.model_bytes = static_cast<std::int64_t>(bytes.size());

  const std::vector<std::int32_t> f = deploy::float_predictions(model, test);
  deploy::runtime_options o;
  o.max_batch = 128;
  o.threads = threads;
  deploy::runtime rt(dm, o);
  const auto t0 = clock::now();
  r.agree.integer = deploy::evaluate_integer(rt, test);
  const double s = std::chrono::duration<double>(clock::now() - t0).count();
  r.batch128_images_s = s > 0 ? static_cast<double>(test.n) / s : 0;
  r.agree.images = test.n;
  for (std::size_t i = 0; i < f.size(); ++i) {
    r.agree.same += f[i] == r.agree.integer.predictions[i];
    r.agree.float_correct += f[i] == test.labels[i];
  }
  r.isa = kernels::isa_name(rt.isa());

  deploy::runtime one(dm);  // batch 1, one thread
  r.arena_bytes = static_cast<std::int64_t>(one.arena_bytes());
  const std::int64_t n = std::min<std::int64_t>(test.n, 500);
  std::vector<double> us;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto a = clock::now();
    one.run(test.image(i), 1);
    us.push_back(std::chrono::duration<double, std::micro>(clock::now() - a).count());
  }
  if (!us.empty()) {
    std::nth_element(us.begin(), us.begin() + static_cast<std::ptrdiff_t>(us.size() / 2), us.end());
    r.batch1_us = us[us.size() / 2];
  }
  return r;
}

}  // namespace mixq::examples
