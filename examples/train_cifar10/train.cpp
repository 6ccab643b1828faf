// Trains a CIFAR ResNet (default ResNet20) on CIFAR-10: in FP32, with
// fixed-bit quantization-aware training, or with AdaQAT's learned bit-widths.
//
//   mixq_train_cifar10 [--data DIR] [--depth 20] [--epochs 100] [--batch 128]
//       [--lr 0.1] [--wd 5e-4] [--momentum 0.9] [--nesterov] [--schedule cosine|step]
//       [--milestones 50,75] [--warmup 1] [--label-smoothing 0] [--threads N]
//       [--seed 1] [--out runs/fp32] [--resume] [--train-subset N] [--test-subset N]
//       [--eval-every 1] [--no-augment] [--stop-after-epoch N]
//       [--method fp32|qat|adaqat] [--init model.mixq]
//       quantizers: [--bits-w 4] [--bits-a 4] [--wq auto|lsq|dorefa] [--aq auto|lsq|pact]
//       [--per-channel] [--weight-range full|symmetric] [--first 8bit|fp32|same]
//       [--last 8bit|fp32|same] [--dorefa-scale auto|unit|max] [--pact-init 0]
//       [--pact-scale-grad] [--pact-no-decay] [--quant-decay] [--quant-lr-scale 1]
//       AdaQAT: [--lambda 0.1] [--bits-lr 0.05] [--bits-init 8] [--bits-init-w N]
//       [--bits-init-a N] [--bits-min 2] [--bits-max 8] [--granularity network|layer]
//       [--bits-estimator fd|taylor] [--bits-groups-per-step 1] [--no-second-order]
//       [--osc-reversals 3] [--osc-window 2000] [--bits-freeze-epoch -1]
//
// Writes <out>/metrics.csv (one row per epoch; quantized runs add BitOPs,
// bytes and the bits of every layer, and AdaQAT every learned bit-width),
// <out>/checkpoint.mixq (each epoch, atomic), <out>/model.mixq (final
// weights; quantized models include their quantizers), <out>/report.json and,
// for quantized runs, <out>/bits.svg and the BitOPs / bytes table in the
// report. --init loads an FP32 model file of the same architecture before
// the quantizers are installed (fine-tuning). docs/quantization.md explains
// every quantization flag and its default.
// Bad flags or data: one line on stderr and exit code 2.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mixq/io/cifar10.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/nn/resnet.hpp"
#include "mixq/quant/quant.hpp"
#include "mixq/train/trainer.hpp"
#include "../common/cli.hpp"
#include "../common/data_dir.hpp"
#include "quant_method.hpp"

int main(int argc, char** argv) {
  using namespace mixq;
  examples::cli cli("mixq_train_cifar10",
                    "Train a CIFAR ResNet on CIFAR-10: FP32, fixed-bit QAT or AdaQAT.");
  auto& data = cli.opt_str(
      "data", "", "CIFAR-10 directory (default: $MIXQ_DATA, then ../shared/datasets/cifar10)");
  auto& depth = cli.opt_int("depth", 20, "ResNet depth 6n+2 (20, 32, 44, 56)");
  auto& epochs = cli.opt_int("epochs", 100, "epochs");
  auto& batch = cli.opt_int("batch", 128, "batch size");
  auto& lr = cli.opt_double("lr", 0.1, "peak learning rate");
  auto& wd = cli.opt_double("wd", 5e-4, "weight decay (not on BN and biases unless --decay-all)");
  auto& decay_all = cli.opt_flag("decay-all", "apply weight decay to BN and bias parameters too");
  auto& momentum = cli.opt_double("momentum", 0.9, "SGD momentum");
  auto& nesterov = cli.opt_flag("nesterov", "Nesterov momentum");
  auto& schedule = cli.opt_str("schedule", "cosine", "cosine | step");
  auto& milestones =
      cli.opt_str("milestones", "", "step schedule: comma-separated epochs (default 50%,75%)");
  auto& warmup = cli.opt_double("warmup", 1.0, "linear warm-up epochs");
  auto& smoothing = cli.opt_double("label-smoothing", 0.0, "label smoothing");
  auto& threads = cli.opt_int("threads", 0, "OpenMP threads (0 = OMP_NUM_THREADS or all cores)");
  auto& seed = cli.opt_int("seed", 1, "seed for initialization, data order and augmentation");
  auto& out = cli.opt_str("out", "runs/fp32", "output directory");
  auto& resume = cli.opt_flag("resume", "continue from <out>/checkpoint.mixq if present");
  auto& train_subset = cli.opt_int("train-subset", 0, "use the first N training images (0 = all)");
  auto& test_subset = cli.opt_int("test-subset", 0, "use the first N test images (0 = all)");
  auto& eval_every = cli.opt_int("eval-every", 1, "evaluate on the test set every k epochs");
  auto& no_augment = cli.opt_flag("no-augment", "disable random crop and flip");
  auto& stop_after = cli.opt_int("stop-after-epoch", -1,
                                 "stop once this many epochs are done, as if killed (-1: never)");
  // Quantization (docs/quantization.md).
  auto& method = cli.opt_str("method", "fp32", "fp32 | qat (fixed bits) | adaqat (learned bits)");
  auto& init = cli.opt_str("init", "", "FP32 model file to start from (same architecture)");
  auto& bits_w = cli.opt_int("bits-w", 4, "qat: weight bits of the inner layers (2..8)");
  auto& bits_a = cli.opt_int("bits-a", 4, "qat: activation bits of the inner layers (2..8)");
  auto& wq =
      cli.opt_str("wq", "auto", "weight quantizer: lsq | dorefa (auto: qat lsq, adaqat dorefa)");
  auto& aq =
      cli.opt_str("aq", "auto", "activation quantizer: lsq | pact (auto: qat lsq, adaqat pact)");
  auto& per_channel = cli.opt_flag("per-channel", "LSQ weights: one step per output channel");
  auto& weight_range = cli.opt_str("weight-range", "full",
                                   "LSQ weight codes: full [-2^(b-1), 2^(b-1)-1] | symmetric");
  auto& first =
      cli.opt_str("first", "8bit", "first conv: 8bit | fp32 | same (as the inner layers)");
  auto& last = cli.opt_str("last", "8bit", "classifier: 8bit | fp32 | same (as the inner layers)");
  auto& dorefa_scale = cli.opt_str("dorefa-scale", "auto",
                                   "DoReFa level scale: auto (max on the classifier) | unit | max");
  auto& pact_init = cli.opt_double(
      "pact-init", 0.0, "PACT initial clip (0: the 99.9th percentile of the first batch)");
  auto& pact_scale_grad =
      cli.opt_flag("pact-scale-grad", "PACT: add the grid step's own derivative to d alpha");
  auto& pact_no_decay = cli.opt_flag("pact-no-decay", "PACT: no weight decay on the clip");
  auto& quant_decay = cli.opt_flag("quant-decay", "LSQ steps under weight decay too");
  auto& quant_lr_scale =
      cli.opt_double("quant-lr-scale", 1.0, "learning-rate scale of quantizer parameters");
  auto& lambda = cli.opt_double("lambda", 0.1, "adaqat: weight of the normalised BitOPs (>= 0)");
  auto& bits_lr = cli.opt_double("bits-lr", 0.05, "adaqat: bit-width learning rate (per step)");
  auto& bits_init = cli.opt_double("bits-init", 8.0, "adaqat: initial real-valued bits N");
  auto& bits_init_w = cli.opt_double("bits-init-w", 0.0, "adaqat: initial N_w (0: --bits-init)");
  auto& bits_init_a = cli.opt_double("bits-init-a", 0.0, "adaqat: initial N_a (0: --bits-init)");
  auto& bits_min = cli.opt_double("bits-min", 2.0, "adaqat: lowest N");
  auto& bits_max = cli.opt_double("bits-max", 8.0, "adaqat: highest N");
  auto& granularity =
      cli.opt_str("granularity", "network", "adaqat: network (one N_w, N_a) | layer (per layer)");
  auto& estimator = cli.opt_str("bits-estimator", "fd",
                                "adaqat: fd (finite differences) | taylor (layer granularity)");
  auto& groups_per_step =
      cli.opt_int("bits-groups-per-step", 1, "adaqat fd: bit-widths probed per step");
  auto& no_second = cli.opt_flag("no-second-order", "adaqat taylor: first-order term only");
  auto& osc_reversals = cli.opt_int(
      "osc-reversals", 3, "adaqat: freeze a bit-width after this many reversals (0: never)");
  auto& osc_window = cli.opt_int("osc-window", 2000, "adaqat: ... within this many steps");
  auto& freeze_epoch = cli.opt_int("bits-freeze-epoch", -1,
                                   "adaqat: freeze every bit-width at this epoch (-1: never)");
  if (!cli.parse(argc, argv)) return cli.exit_code();

  try {
    MIXQ_CHECK(depth >= 8 && (depth - 2) % 6 == 0, "--depth ", depth,
               ": expected 6n+2 >= 8 (20, 32, 44, 56)");
    MIXQ_CHECK(epochs >= 1, "--epochs ", epochs, ": expected >= 1");
    MIXQ_CHECK(batch >= 1, "--batch ", batch, ": expected >= 1");
    const optim::schedule_kind kind = optim::parse_schedule_kind(schedule);
    MIXQ_CHECK(method == "fp32" || method == "qat" || method == "adaqat", "--method '", method,
               "': expected fp32, qat or adaqat");
    const bool quantized = method != "fp32";
    // Quantization flags, checked before any data is read.
    quant::qat_config qc;
    quant::adaqat_options ao;
    if (quantized) {
      const bool ada = method == "adaqat";
      qc.weights = quant::parse_weight_family(wq == "auto" ? (ada ? "dorefa" : "lsq") : wq);
      qc.acts = quant::parse_act_family(aq == "auto" ? (ada ? "pact" : "lsq") : aq);
      qc.per_channel = per_channel;
      MIXQ_CHECK(weight_range == "full" || weight_range == "symmetric", "--weight-range '",
                 weight_range, "': expected full or symmetric");
      qc.range =
          weight_range == "full" ? quant::weight_range::full : quant::weight_range::symmetric;
      qc.first = quant::parse_edge_policy(first);
      qc.last = quant::parse_edge_policy(last);
      MIXQ_CHECK(dorefa_scale == "auto" || dorefa_scale == "unit" || dorefa_scale == "max",
                 "--dorefa-scale '", dorefa_scale, "': expected auto, unit or max");
      qc.dorefa = dorefa_scale == "auto"   ? quant::dorefa_scale_policy::automatic
                  : dorefa_scale == "unit" ? quant::dorefa_scale_policy::unit
                                           : quant::dorefa_scale_policy::max;
      MIXQ_CHECK(pact_init >= 0.0, "--pact-init ", pact_init, ": expected >= 0");
      qc.pact.init = static_cast<float>(pact_init);
      qc.pact.scale_grad = pact_scale_grad;
      qc.pact.alpha_decay = !pact_no_decay;
      qc.step_decay = quant_decay;
      MIXQ_CHECK(quant_lr_scale >= 0.0, "--quant-lr-scale ", quant_lr_scale, ": expected >= 0");
      if (ada) {
        ao.gran = quant::parse_granularity(granularity);
        ao.est = quant::parse_estimator(estimator);
        ao.lambda = lambda;
        ao.lr = bits_lr;
        ao.init_w = bits_init_w > 0.0 ? bits_init_w : bits_init;
        ao.init_a = bits_init_a > 0.0 ? bits_init_a : bits_init;
        ao.min_bits = bits_min;
        ao.max_bits = bits_max;
        MIXQ_CHECK(groups_per_step >= 1, "--bits-groups-per-step ", groups_per_step,
                   ": expected >= 1");
        ao.groups_per_step = static_cast<int>(groups_per_step);
        ao.second_order = !no_second;
        MIXQ_CHECK(osc_reversals >= 0 && osc_window >= 1, "--osc-reversals ", osc_reversals,
                   " / --osc-window ", osc_window, ": expected >= 0 / >= 1");
        ao.osc_reversals = static_cast<int>(osc_reversals);
        ao.osc_window = osc_window;
        ao.validate();
        qc.bits_w = quant::ceil_bits(ao.init_w);
        qc.bits_a = quant::ceil_bits(ao.init_a);
      } else {
        MIXQ_CHECK(bits_w >= quant::min_bits && bits_w <= quant::max_bits, "--bits-w ", bits_w,
                   ": expected an integer in [2, 8]");
        MIXQ_CHECK(bits_a >= quant::min_bits && bits_a <= quant::max_bits, "--bits-a ", bits_a,
                   ": expected an integer in [2, 8]");
        qc.bits_w = static_cast<int>(bits_w);
        qc.bits_a = static_cast<int>(bits_a);
      }
      qc.validate();
    }
    if (resume && io::file_exists(out + "/checkpoint.mixq")) {
      // fit() refuses it too, but only after the banner: say it in one line.
      const std::string ck = out + "/checkpoint.mixq";
      const train::checkpoint_state info = train::checkpoint_info(io::load_archive(ck));
      MIXQ_CHECK(info.method == method, ck, ": written by training method '", info.method,
                 "', but this run uses --method ", method, " (use another output directory)");
    }
    if (threads > 0) omp_set_num_threads(static_cast<int>(threads));

    const std::string dir = examples::cifar10_data_dir(data);
    io::load_options tr_opt, te_opt;
    tr_opt.max_images = train_subset;
    te_opt.max_images = test_subset;
    io::image_dataset train = io::load_cifar10(dir, io::split::train, tr_opt);
    io::image_dataset test = io::load_cifar10(dir, io::split::test, te_opt);

    nn::resnet_options mo;
    mo.n = static_cast<int>((depth - 2) / 6);
    mo.seed = static_cast<uint64_t>(seed);
    nn::resnet_cifar model(mo);
    const std::string arch = "resnet" + std::to_string(depth);
    if (!init.empty()) {
      // An FP32 model file of this architecture (before any quantizer exists).
      const io::archive a = io::load_archive(init);
      MIXQ_CHECK(!a.has_meta("arch") || a.meta("arch") == arch, init, ": a model of '",
                 a.meta("arch"), "', but this run trains '", arch, "' (--depth ", depth, ")");
      MIXQ_CHECK(!a.has_meta("method") || a.meta("method") == "fp32", init,
                 ": a model trained with method '", a.meta("method"),
                 "'; --init takes an FP32 model file");
      nn::load_model(init, model);
    }
    quant::qnet net;
    quant::adaqat* ctl = nullptr;
    if (quantized) {
      qc.mean = train.mean;
      qc.stddev = train.stddev;
      net = quant::quantize(model, qc, train.h, train.w);
      if (method == "adaqat") {
        if (freeze_epoch >= 0) ao.freeze_step = freeze_epoch * ((train.n + batch - 1) / batch);
        ctl = &model.adopt("adaqat", std::make_unique<quant::adaqat>(net, ao));
      }
    }

    train::fit_options o;
    o.epochs = epochs;
    o.data.batch_size = batch;
    o.data.seed = static_cast<uint64_t>(seed);
    o.data.augment = !no_augment;
    o.sgd.lr = lr;
    o.sgd.momentum = momentum;
    o.sgd.weight_decay = wd;
    o.sgd.decay_all = decay_all;
    o.sgd.nesterov = nesterov;
    o.schedule.kind = kind;
    o.schedule.warmup_epochs = warmup;
    if (!milestones.empty()) {
      std::stringstream ss(milestones);
      std::string tok;
      while (std::getline(ss, tok, ',')) o.schedule.milestones.push_back(std::atoll(tok.c_str()));
    } else {
      o.schedule.milestones = {epochs / 2, epochs * 3 / 4};
    }
    o.label_smoothing = static_cast<float>(smoothing);
    o.eval_every = eval_every;
    o.out_dir = out;
    o.resume = resume;
    o.stop_after_epoch = stop_after;
    o.config_tag =
        cli.config_string({"data", "out", "resume", "threads", "eval-every", "stop-after-epoch"});
    train::method_hooks hooks;
    if (quantized)
      hooks = examples::quant_method(model, net, ctl, static_cast<float>(smoothing), wd,
                                     quant_lr_scale);

    std::fprintf(stderr,
                 "mixq: ResNet%lld (%lld parameters), CIFAR-10 from %s: %lld train / %lld test "
                 "images, %lld epochs, batch %lld, %d threads\n",
                 static_cast<long long>(depth), static_cast<long long>(model.num_parameters()),
                 dir.c_str(), static_cast<long long>(train.n), static_cast<long long>(test.n),
                 static_cast<long long>(epochs), static_cast<long long>(batch),
                 omp_get_max_threads());
    if (quantized)
      std::fprintf(stderr, "mixq: %s, %s weights / %s activations, first %s, last %s%s\n",
                   method.c_str(), quant::name_of(qc.weights), quant::name_of(qc.acts),
                   quant::name_of(qc.first), quant::name_of(qc.last),
                   init.empty() ? ", from scratch" : (", from " + init).c_str());
    auto r = train::fit(model, train, &test, o, hooks);
    nn::save_model(out + "/model.mixq", model,
                   {{"arch", arch}, {"dataset", "cifar10"}, {"method", method}});
    if (quantized && !r.history.empty())
      quant::write_bits_svg(out + "/metrics.csv", out + "/bits.svg");

    double ips = 0;
    for (auto& m : r.history) ips += m.images_per_s;
    if (!r.history.empty()) ips /= static_cast<double>(r.history.size());
    std::ofstream js(out + "/report.json");
    js << "{\"arch\": \"resnet" << depth << "\", \"parameters\": " << model.num_parameters()
       << ", \"epochs\": " << epochs << ", \"epochs_run_now\": " << r.history.size()
       << ", \"test_accuracy\": " << r.test_acc << ", \"test_loss\": " << r.test_loss
       << ", \"wall_seconds\": " << r.wall_seconds << ", \"train_images_per_s\": " << ips
       << ", \"threads\": " << omp_get_max_threads() << ", \"method\": \"" << method << "\"";
    if (quantized)
      js << ", \"bitops_per_image\": " << net.bitops() << ", \"model_bytes\": " << net.bytes()
         << ", \"mean_bits_w\": " << net.mean_bits_w()
         << ", \"mean_bits_a\": " << net.mean_bits_a();
    js << ", \"command\": \"" << cli.command_line() << "\"}\n";
    std::printf("\n== report ==\n");
    std::printf("model          ResNet%lld, %lld parameters\n", static_cast<long long>(depth),
                static_cast<long long>(model.num_parameters()));
    std::printf("epochs         %lld (%zu run now, from epoch %lld)\n",
                static_cast<long long>(epochs), r.history.size(),
                static_cast<long long>(r.first_epoch));
    std::printf("test accuracy  %.2f %% (%lld images)\n", 100.0 * r.test_acc,
                static_cast<long long>(test.n));
    std::printf("test loss      %.4f\n", r.test_loss);
    std::printf("train speed    %.0f images/s (mean over epochs, incl. data pipeline)\n", ips);
    std::printf("wall time      %s\n", train::format_duration(r.wall_seconds).c_str());
    std::printf("files          %s/{metrics.csv, checkpoint.mixq, model.mixq, report.json%s}\n",
                out.c_str(), quantized ? ", bits.svg" : "");
    if (quantized) std::printf("\n%s", quant::cost_table(net).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::string msg = e.what();  // one line: multi-line messages are joined
    for (auto& ch : msg)
      if (ch == '\n') ch = ';';
    std::fprintf(stderr, "mixq_train_cifar10: error: %s\n", msg.c_str());
    return 2;
  }
}
