// Trains a CIFAR ResNet (default ResNet20) on CIFAR-10: in FP32, with
// fixed-bit quantization-aware training, or with AdaQAT's learned bit-widths.
//
//   mixq_train_cifar10 [--data DIR] [--depth 20] [--epochs 100] [--batch 128]
//       [--lr 0.1] [--wd 5e-4] [--momentum 0.9] [--nesterov] [--schedule cosine|step]
//       [--milestones 50,75] [--warmup 1] [--label-smoothing 0] [--threads N]
//       [--seed 1] [--out runs/fp32] [--resume] [--train-subset N] [--test-subset N]
//       [--hold-out N]
//       [--eval-every 1] [--no-augment] [--stop-after-epoch N]
//       [--method fp32|qat|adaqat] [--init model.mixq]
//       quantizers: [--bits-w 4] [--bits-a 4] [--wq auto|lsq|dorefa] [--aq auto|lsq|pact]
//       [--per-channel] [--weight-range full|symmetric] [--first 8bit|fp32|same]
//       [--last 8bit|fp32|same] [--dorefa-scale auto|unit|max] [--pact-init 0]
//       [--pact-scale-grad] [--pact-no-decay] [--quant-decay] [--quant-lr-scale 1]
//       [--step-init mse|lsq] [--init-steps keep|data] [--eval auto|integer|fake]
//       [--residual-bits 0] [--conv-forward integer|fp32]
//       AdaQAT: [--lambda 0.1] [--bits-lr 0.05] [--bits-init 8] [--bits-init-w N]
//       [--bits-init-a N] [--bits-min 2] [--bits-max 8] [--granularity network|layer]
//       [--bits-estimator fd|taylor] [--bits-groups-per-step 1] [--no-second-order]
//       [--osc-reversals 3] [--osc-window 2000] [--bits-freeze-epoch -1]
//       [--bits-start-epoch 0]
//
// Writes <out>/metrics.csv (one row per epoch; quantized runs add BitOPs,
// bytes and the bits of every layer, and AdaQAT every learned bit-width),
// <out>/checkpoint.mixq (each epoch, atomic), <out>/model.mixq (final
// weights; quantized models include their quantizers and their
// configuration, quant/model_file.hpp), <out>/report.json and, for quantized
// runs, <out>/bits.svg and the BitOPs / bytes table in the report. A
// quantized run with integer first and last layers also exports its model to
// <out>/model.mqd (the integer runtime's file) and reports its test accuracy,
// its agreement with the fake-quant model and its speed; with --eval integer
// (the default for such runs) every epoch's test accuracy is already the
// integer model's (integer_report.hpp, quant_method.hpp). --init loads an FP32 model file of the
// same architecture before the quantizers are installed (fine-tuning), or, for a
// quantized run, a quantized model file after them (progressive quantization:
// ../common/init_model.hpp). docs/quantization.md
// explains every quantization flag and its default. Every flag is checked before the data is read
// (flags.hpp). A resume is refused when the flags that shape training or the data (a CRC-32 of the
// images and labels used) differ from the checkpoint's. Every file is written
// atomically (temporary file, rename). Bad flags, bad data, a failed write:
// one line on stderr and exit code 2.
#include <zlib.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../common/data_dir.hpp"
#include "../common/held_out.hpp"
#include "../common/init_model.hpp"
#include "flags.hpp"
#include "integer_report.hpp"
#include "mixq/core/parallel.hpp"
#include "mixq/io/cifar10.hpp"
#include "mixq/io/file.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/nn/resnet.hpp"
#include "mixq/quant/quant.hpp"
#include "mixq/train/trainer.hpp"
#include "quant_method.hpp"

namespace {

// CRC-32 of the images and labels of the data sets, in order.
std::uint32_t data_crc32(const std::vector<const mixq::io::image_dataset*>& sets) {
  uLong c = crc32(0, nullptr, 0);
  for (const auto* ds : sets) {
    c = crc32_z(c, ds->images.data(), ds->images.size());
    c = crc32_z(c, reinterpret_cast<const Bytef*>(ds->labels.data()),
                ds->labels.size() * sizeof(ds->labels[0]));
  }
  return static_cast<std::uint32_t>(c);
}

// "name=value;" for each setting that shapes the run (not where the data or
// the output are, the thread count, the evaluation cadence or where to stop),
// then the data's CRC-32: a checkpoint resumes only under the same tag.
std::string config_tag(const mixq::examples::train_flags& f, std::uint32_t crc) {
  std::string tag;
  auto add = [&](const char* name, const std::string& v) {
    tag += std::string(name) + "=" + v + ";";
  };
  auto num = [](double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", v);
    return std::string(b);
  };
  auto flag = [](bool b) { return std::string(b ? "1" : "0"); };
  std::string ms;
  for (std::size_t k = 0; k < f.milestones.size(); ++k)
    ms += (k ? "," : "") + std::to_string(f.milestones[k]);
  add("depth", std::to_string(f.depth));
  add("epochs", std::to_string(f.epochs));
  add("batch", std::to_string(f.batch));
  add("lr", num(f.lr));
  add("wd", num(f.wd));
  add("decay-all", flag(f.decay_all));
  add("momentum", num(f.momentum));
  add("nesterov", flag(f.nesterov));
  add("schedule", f.schedule);
  add("milestones", ms);
  add("warmup", num(f.warmup));
  add("label-smoothing", num(f.label_smoothing));
  add("seed", std::to_string(f.seed));
  add("train-subset", std::to_string(f.train_subset));
  // hold-out: only when on (runs before it resume under their old tags)
  if (f.hold_out != 0) add("hold-out", std::to_string(f.hold_out));
  add("test-subset", std::to_string(f.test_subset));
  add("no-augment", flag(f.no_augment));
  add("method", f.method);
  add("init", f.init);
  if (f.method != "fp32") {
    add("eval", f.eval);
    add("bits-w", std::to_string(f.bits_w));
    add("bits-a", std::to_string(f.bits_a));
    add("wq", f.wq);
    add("aq", f.aq);
    add("per-channel", flag(f.per_channel));
    add("weight-range", f.weight_range);
    add("first", f.first);
    add("last", f.last);
    add("dorefa-scale", f.dorefa_scale);
    add("pact-init", num(f.pact_init));
    add("pact-scale-grad", flag(f.pact_scale_grad));
    add("pact-no-decay", flag(f.pact_no_decay));
    add("quant-decay", flag(f.quant_decay));
    add("quant-lr-scale", num(f.quant_lr_scale));
    // step-init: only when not LSQ's rule, which runs started before the flag
    // used, so that they resume with --step-init lsq.
    if (f.step_init != "lsq") add("step-init", f.step_init);
    // step-band: likewise only when on (runs before the band resume with 0)
    if (f.step_band != 0) add("step-band", num(f.step_band));
    if (f.init_steps != "keep") add("init-steps", f.init_steps);
    if (f.residual_bits != 0) add("residual-bits", std::to_string(f.residual_bits));
    if (!f.distill.empty()) {
      add("distill", f.distill);
      add("distill-weight", num(f.distill_weight));
    }
  }
  if (f.method == "adaqat") {
    add("lambda", num(f.lambda));
    add("bits-lr", num(f.bits_lr));
    add("bits-init", num(f.bits_init));
    add("bits-init-w", num(f.bits_init_w));
    add("bits-init-a", num(f.bits_init_a));
    add("bits-min", num(f.bits_min));
    add("bits-max", num(f.bits_max));
    add("granularity", f.granularity);
    add("bits-estimator", f.bits_estimator);
    add("bits-groups-per-step", std::to_string(f.bits_groups_per_step));
    add("no-second-order", flag(f.no_second_order));
    add("osc-reversals", std::to_string(f.osc_reversals));
    add("osc-window", std::to_string(f.osc_window));
    add("bits-freeze-epoch", std::to_string(f.bits_freeze_epoch));
    // only when on: AdaQAT runs before it resume under their old tags
    if (f.bits_start_epoch != 0) add("bits-start-epoch", std::to_string(f.bits_start_epoch));
  }
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x", crc);
  add("data-crc32", hex);
  return tag;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mixq;
  const std::string prog = "mixq_train_cifar10";
  examples::train_flags f;
  if (const int rc = examples::parse_train_flags(argc, argv, f); rc >= 0) return rc;
  if (f.eval == "auto") f.eval = f.first == "fp32" || f.last == "fp32" ? "fake" : "integer";
  const std::string& method = f.method;
  const long long depth = f.depth, epochs = f.epochs, batch = f.batch;
  const double wd = f.wd, smoothing = f.label_smoothing;
  const std::string& out = f.out;
  const std::string& init = f.init;

  try {
    const optim::schedule_kind kind = optim::parse_schedule_kind(f.schedule);
    const bool quantized = method != "fp32";
    const bool integer_eval = quantized && f.eval == "integer";
    // Quantization flags, checked before any data is read.
    quant::qat_config qc;
    quant::adaqat_options ao;
    if (quantized) {
      const bool ada = method == "adaqat";
      qc.weights = quant::parse_weight_family(f.wq == "auto" ? (ada ? "dorefa" : "lsq") : f.wq);
      qc.acts = quant::parse_act_family(f.aq == "auto" ? (ada ? "pact" : "lsq") : f.aq);
      qc.per_channel = f.per_channel;
      qc.range =
          f.weight_range == "full" ? quant::weight_range::full : quant::weight_range::symmetric;
      qc.first = quant::parse_edge_policy(f.first);
      qc.last = quant::parse_edge_policy(f.last);
      qc.dorefa = f.dorefa_scale == "auto"   ? quant::dorefa_scale_policy::automatic
                  : f.dorefa_scale == "unit" ? quant::dorefa_scale_policy::unit
                                             : quant::dorefa_scale_policy::max;
      qc.pact.init = static_cast<float>(f.pact_init);
      qc.pact.scale_grad = f.pact_scale_grad;
      qc.pact.alpha_decay = !f.pact_no_decay;
      qc.step_decay = f.quant_decay;
      qc.lsq_init = quant::parse_step_init(f.step_init);
      qc.step_band = f.step_band;
      qc.residual_bits = static_cast<int>(f.residual_bits);
      qc.forward = quant::parse_conv_forward(f.conv_forward);
      if (ada) {
        ao.gran = quant::parse_granularity(f.granularity);
        ao.est = quant::parse_estimator(f.bits_estimator);
        ao.lambda = f.lambda;
        ao.lr = f.bits_lr;
        ao.init_w = f.bits_init_w > 0.0 ? f.bits_init_w : f.bits_init;
        ao.init_a = f.bits_init_a > 0.0 ? f.bits_init_a : f.bits_init;
        ao.min_bits = f.bits_min;
        ao.max_bits = f.bits_max;
        ao.groups_per_step = static_cast<int>(f.bits_groups_per_step);
        ao.second_order = !f.no_second_order;
        ao.osc_reversals = static_cast<int>(f.osc_reversals);
        ao.osc_window = f.osc_window;
        ao.validate();
        qc.bits_w = quant::ceil_bits(ao.init_w);
        qc.bits_a = quant::ceil_bits(ao.init_a);
      } else {
        qc.bits_w = static_cast<int>(f.bits_w);
        qc.bits_a = static_cast<int>(f.bits_a);
      }
      qc.validate();
    }
    if (f.resume && io::path_exists(out + "/checkpoint.mixq")) {
      // fit() refuses it too, but only after the banner: say it in one line.
      const std::string ck = out + "/checkpoint.mixq";
      const train::checkpoint_state info = train::checkpoint_info(io::load_archive(ck));
      MIXQ_CHECK(info.method == method, ck, ": written by training method '", info.method,
                 "', but this run uses --method ", method, " (use another output directory)");
    }
#ifdef _OPENMP
    if (f.threads > 0) omp_set_num_threads(static_cast<int>(f.threads));
#endif

    const std::string dir = examples::cifar10_data_dir(f.data);
    io::load_options tr_opt, te_opt;
    tr_opt.max_images = f.train_subset;
    te_opt.max_images = f.test_subset;
    io::image_dataset train = io::load_cifar10(dir, io::split::train, tr_opt);
    io::image_dataset test = io::load_cifar10(dir, io::split::test, te_opt);
    const examples::held_out_split held{f.hold_out, static_cast<unsigned long long>(f.seed),
                                        static_cast<long long>(train.n)};
    if (held.images > 0) train = io::split_validation(train, held.images, held.seed).train;
    const std::uint32_t crc = data_crc32({&train, &test});

    nn::resnet_options mo;
    mo.n = static_cast<int>((depth - 2) / 6);
    mo.seed = static_cast<uint64_t>(f.seed);
    nn::resnet_cifar model(mo);
    const std::string arch = "resnet" + std::to_string(depth);
    const bool quantized_init =
        quantized && !init.empty() && examples::is_quantized_model_file(init);
    if (!init.empty() && !quantized_init) examples::load_fp32_init(init, model, depth);
    quant::qnet net;
    quant::adaqat* ctl = nullptr;
    if (quantized) {
      qc.mean = train.mean;
      qc.stddev = train.stddev;
      net = quant::quantize(model, qc, train.h, train.w);
      if (quantized_init)
        examples::load_quantized_init(init, model, net, qc, depth, f.init_steps == "keep");
      if (method == "adaqat") {
        const int64_t steps_per_epoch = (train.n + batch - 1) / batch;
        if (f.bits_freeze_epoch >= 0) ao.freeze_step = f.bits_freeze_epoch * steps_per_epoch;
        ao.start_step = f.bits_start_epoch * steps_per_epoch;
        ctl = &model.adopt("adaqat", std::make_unique<quant::adaqat>(net, ao));
      }
    }

    // Knowledge distillation: the FP32 teacher, in eval mode, never trained.
    std::unique_ptr<nn::resnet_cifar> teacher;
    if (quantized && !f.distill.empty()) {
      teacher = std::make_unique<nn::resnet_cifar>(mo);
      examples::load_fp32_init(f.distill, *teacher, depth, "--distill");
      teacher->eval();
    }

    train::fit_options o;
    o.epochs = epochs;
    o.data.batch_size = batch;
    o.data.seed = static_cast<uint64_t>(f.seed);
    o.data.augment = !f.no_augment;
    o.sgd.lr = f.lr;
    o.sgd.momentum = f.momentum;
    o.sgd.weight_decay = wd;
    o.sgd.decay_all = f.decay_all;
    o.sgd.nesterov = f.nesterov;
    o.schedule.kind = kind;
    o.schedule.warmup_epochs = f.warmup;
    o.schedule.milestones.assign(f.milestones.begin(), f.milestones.end());
    if (o.schedule.milestones.empty()) o.schedule.milestones = {epochs / 2, epochs * 3 / 4};
    o.label_smoothing = static_cast<float>(smoothing);
    o.eval_every = f.eval_every;
    o.out_dir = out;
    o.resume = f.resume;
    o.stop_after_epoch = f.stop_after_epoch;
    o.config_tag = config_tag(f, crc);
    train::method_hooks hooks;
    if (quantized) {
      examples::quant_method_options mo;
      mo.label_smoothing = static_cast<float>(smoothing);
      mo.weight_decay = wd;
      mo.quant_lr_scale = f.quant_lr_scale;
      mo.integer_eval = integer_eval;
      mo.eval_threads = max_threads();
      mo.teacher = teacher.get();
      mo.distill_weight = static_cast<float>(f.distill_weight);
      hooks = examples::quant_method(model, net, qc, ctl, mo);
    }

    std::string files;
    for (const auto* ds : {&train, &test})
      for (const auto& p : ds->files) files += (files.empty() ? "" : ", ") + io::path_basename(p);
    std::fprintf(stderr,
                 "mixq: ResNet%lld (%lld parameters), CIFAR-10 from %s (%s; CRC-32 %08x): %lld "
                 "train / %lld test images, %lld epochs, batch %lld, %d threads\n",
                 depth, static_cast<long long>(model.num_parameters()), dir.c_str(), files.c_str(),
                 crc, static_cast<long long>(train.n), static_cast<long long>(test.n), epochs,
                 batch, max_threads());
    if (quantized)
      std::fprintf(stderr, "mixq: %s, %s weights / %s activations, first %s, last %s%s\n",
                   method.c_str(), quant::name_of(qc.weights), quant::name_of(qc.acts),
                   quant::name_of(qc.first), quant::name_of(qc.last),
                   init.empty() ? ", from scratch" : (", from " + init).c_str());
    if (quantized && f.step_init == "lsq" && (qc.bits_w == 2 || qc.bits_a == 2) &&
        (qc.weights == quant::weight_family::lsq || qc.acts == quant::act_family::lsq))
      std::fprintf(stderr,
                   "mixq: note: LSQ's step rule clips hard at 2 bits (a fine-tune from FP32 starts "
                   "near chance); the default --step-init mse starts far better "
                   "(docs/quantization.md 3.1)\n");
    auto r = train::fit(model, train, &test, o, hooks);
    std::map<std::string, std::string> file_meta = {{"dataset", "cifar10"}, {"method", method}};
    examples::add_held_out_meta(file_meta, held);
    if (quantized) {
      quant::save_quantized(out + "/model.mixq", model, qc, file_meta);
    } else {
      file_meta["arch"] = arch;
      nn::save_model(out + "/model.mixq", model, file_meta);
    }
    // What ships: the integer model, its agreement with the fake-quant one, its speed.
    const bool exportable =
        quantized && qc.first != quant::edge_policy::fp32 && qc.last != quant::edge_policy::fp32;
    examples::integer_report ir;
    if (exportable) ir = examples::run_integer_report(model, test, out, max_threads());
    if (quantized && !r.history.empty())
      quant::write_bits_svg(out + "/metrics.csv", out + "/bits.svg");

    double ips = 0;
    for (auto& m : r.history) ips += m.images_per_s;
    if (!r.history.empty()) ips /= static_cast<double>(r.history.size());
    nlohmann::json report = {{"arch", "resnet" + std::to_string(depth)},
                             {"parameters", model.num_parameters()},
                             {"epochs", epochs},
                             {"epochs_run_now", r.history.size()},
                             {"test_accuracy", r.test_acc},
                             {"test_loss", r.test_loss},
                             {"wall_seconds", r.wall_seconds},
                             {"train_images_per_s", ips},
                             {"threads", max_threads()},
                             {"method", method},
                             {"data_dir", dir},
                             {"data_crc32", crc},
                             {"held_out_images", held.images}};
    if (quantized) {
      report["bitops_per_image"] = net.bitops();
      report["model_bytes"] = net.bytes();
      report["mean_bits_w"] = net.mean_bits_w();
      report["mean_bits_a"] = net.mean_bits_a();
      report["evaluation"] = integer_eval ? "integer" : "fake-quant";
    }
    if (exportable) {
      const deploy::agreement& a = ir.agree;
      report["integer"] = {{"model_file", ir.path},
                           {"model_bytes", ir.model_bytes},
                           {"arena_bytes", ir.arena_bytes},
                           {"test_accuracy", a.integer.accuracy()},
                           {"test_loss", a.integer.loss},
                           {"fake_quant_test_accuracy", a.float_accuracy()},
                           {"agreement", a.rate()},
                           {"images", a.images},
                           {"batch1_latency_us", ir.batch1_us},
                           {"batch128_images_per_s", ir.batch128_images_s},
                           {"isa", ir.isa}};
    }
    report["command"] = examples::command_line(argc, argv);
    io::write_file_atomic(out + "/report.json", report.dump(2) + "\n");
    std::printf("\n== report ==\n");
    std::printf("model          ResNet%lld, %lld parameters\n", depth,
                static_cast<long long>(model.num_parameters()));
    std::printf("epochs         %lld (%zu run now, from epoch %lld)\n", epochs, r.history.size(),
                static_cast<long long>(r.first_epoch));
    std::printf("test accuracy  %.2f %% (%lld images%s)\n", 100.0 * r.test_acc,
                static_cast<long long>(test.n),
                !quantized ? "" : (integer_eval ? ", integer model" : ", fake-quant model"));
    std::printf("test loss      %.4f\n", r.test_loss);
    std::printf("train speed    %.0f images/s (mean over epochs, incl. data pipeline)\n", ips);
    std::printf("wall time      %s\n", train::format_duration(r.wall_seconds).c_str());
    std::printf("files          %s/{metrics.csv, checkpoint.mixq, model.mixq, report.json%s%s}\n",
                out.c_str(), quantized ? ", bits.svg" : "", exportable ? ", model.mqd" : "");
    if (exportable) {
      const deploy::agreement& a = ir.agree;
      std::printf("integer model  %s (%lld bytes, arena %lld bytes, kernels %s)\n", ir.path.c_str(),
                  static_cast<long long>(ir.model_bytes), static_cast<long long>(ir.arena_bytes),
                  ir.isa.c_str());
      std::printf(
          "  test top-1   %.2f %% integer, %.2f %% fake-quant; same class on %.2f %% of "
          "%lld images\n",
          100.0 * a.integer.accuracy(), 100.0 * a.float_accuracy(), 100.0 * a.rate(),
          static_cast<long long>(a.images));
      std::printf(
          "  speed        batch 1: %.0f us per image (1 thread); batch 128: %.0f images/s "
          "(%d thread%s)\n",
          ir.batch1_us, ir.batch128_images_s, max_threads(), max_threads() == 1 ? "" : "s");
    }
    if (quantized) std::printf("\n%s", quant::cost_table(net).c_str());
    if (std::fflush(stdout) != 0)
      return examples::fail(prog, "writing the report to stdout failed");
    return 0;
  } catch (const std::exception& e) {
    return examples::fail(prog, e.what());
  }
}
