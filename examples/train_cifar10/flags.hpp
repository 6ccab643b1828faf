#pragma once
// The flags of mixq_train_cifar10 (FP32, fixed-bit QAT and AdaQAT; the
// quantization flags are explained in docs/quantization.md), parsed and
// checked before any data is read: each value against its own range or set
// (examples/common/cli.hpp), then against the others (--warmup and --milestones within --epochs,
// --depth of the form 6n+2) and the machine (--threads, or OMP_NUM_THREADS when --threads is 0, at
// most 4 per hardware thread: the OpenMP runtime crashes or aborts on a count
// like 100000). fuzz/fuzz_cli.cpp and tests/examples/ call parse_train_flags
// directly.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "../common/cli.hpp"

namespace mixq::examples {

struct train_flags {
  std::string data;  // "" = MIXQ_DATA, then the default places
  long long depth = 20, epochs = 100, batch = 128;
  double lr = 0.1, wd = 5e-4, momentum = 0.9;
  bool decay_all = false, nesterov = false;
  std::string schedule = "cosine";
  std::vector<long long> milestones;  // empty = 50% and 75% of the epochs
  double warmup = 1.0, label_smoothing = 0.0;
  long long threads = 0, seed = 1;
  std::string out = "runs/fp32";
  bool resume = false;
  long long train_subset = 0, test_subset = 0, eval_every = 1;
  long long hold_out = 0;  // training images held out (io::split_validation, seeded by --seed)
  bool no_augment = false;
  long long stop_after_epoch = -1;  // -1 = never
  // Quantization (docs/quantization.md).
  std::string method = "fp32";  // fp32 | qat | adaqat
  std::string init;             // FP32 or quantized model file to start from
  std::string step_init = "mse", init_steps = "keep";
  double step_band = 16;        // LSQ weights' step band (quant/lsq.hpp); 0 = off
  long long residual_bits = 0;  // the residual stream's width (quant/config.hpp); 0 = bits-a
  std::string conv_forward = "integer";  // inner convs' forward product (quant/int_conv.hpp)
  std::string distill;                   // FP32 teacher model file (qat, adaqat)
  double distill_weight = 0.5;
  long long bits_w = 4, bits_a = 4;
  std::string wq = "auto", aq = "auto", weight_range = "full", first = "8bit", last = "8bit",
              dorefa_scale = "auto";
  bool per_channel = false, pact_scale_grad = false, pact_no_decay = false, quant_decay = false;
  double pact_init = 0.0, quant_lr_scale = 1.0;
  // Evaluation of a quantized run: the fake-quant model, or the integer model
  // it exports to (auto: integer when the first and last layers are integer).
  std::string eval = "auto";
  // AdaQAT.
  double lambda = 0.1, bits_lr = 0.05, bits_init = 8.0, bits_init_w = 0.0, bits_init_a = 0.0,
         bits_min = 2.0, bits_max = 8.0;
  std::string granularity = "network", bits_estimator = "fd";
  long long bits_groups_per_step = 1, osc_reversals = 3, osc_window = 2000, bits_freeze_epoch = -1;
  long long bits_start_epoch = 0;
  bool no_second_order = false;
};

// The threads the run will use when --threads is 0 (OMP_NUM_THREADS, else
// every core).
inline long long default_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Parses and checks the command line into `f`.
// ensures: -1 when training should go on (every value checked); otherwise
//          the exit code (0 after --help; 2 after an error, one line on stderr).
inline int parse_train_flags(int argc, const char* const* argv, train_flags& f) {
  const std::string prog = "mixq_train_cifar10";
  CLI::App app("Train a CIFAR ResNet on CIFAR-10 in FP32.", prog);
  app.option_defaults()->always_capture_default();
  const long long max_threads = max_threads_allowed();
  app.add_option("--data", f.data,
                 "CIFAR-10 directory (default: $MIXQ_DATA, then ../shared/datasets/cifar10)")
      ->check(non_empty("a directory"));
  app.add_option("--depth", f.depth, "ResNet depth 6n+2 (20, 32, 44, 56, 110; at most 1202)")
      ->check(integer_in(8, 1202));
  app.add_option("--epochs", f.epochs, "epochs (1..100000)")->check(integer_in(1, 100000));
  app.add_option("--batch", f.batch, "batch size (1..65536)")->check(integer_in(1, 65536));
  app.add_option("--lr", f.lr, "peak learning rate (0..100)")->check(number_in(0, 100));
  app.add_option("--wd", f.wd, "weight decay, 0..1 (not on BN and biases unless --decay-all)")
      ->check(number_in(0, 1));
  app.add_flag("--decay-all", f.decay_all, "apply weight decay to BN and bias parameters too");
  app.add_option("--momentum", f.momentum, "SGD momentum, in [0, 1)")->check(number_in(0, 1, true));
  app.add_flag("--nesterov", f.nesterov, "Nesterov momentum");
  app.add_option("--schedule", f.schedule, "learning-rate schedule")
      ->check(CLI::IsMember({"cosine", "step"}));
  app.add_option("--milestones", f.milestones,
                 "step schedule: comma-separated epochs (default 50%,75%)")
      ->delimiter(',')
      ->check(integer_in(0, 100000));
  app.add_option("--warmup", f.warmup, "linear warm-up epochs (at most --epochs)")
      ->check(number_in(0, 100000));
  app.add_option("--label-smoothing", f.label_smoothing, "label smoothing, in [0, 1)")
      ->check(number_in(0, 1, true));
  app.add_option("--threads", f.threads,
                 "OpenMP threads, at most 4 per hardware thread (0 = OMP_NUM_THREADS or all cores)")
      ->check(threads_in(0));
  app.add_option("--seed", f.seed, "seed for initialization, data order and augmentation")
      ->check(integer_in(0, 9223372036854775807LL));
  app.add_option("--out", f.out, "output directory")->check(non_empty("a directory"));
  app.add_flag("--resume", f.resume, "continue from <out>/checkpoint.mixq if present");
  app.add_option("--train-subset", f.train_subset, "use the first N training images (0 = all)")
      ->check(integer_in(0, 50000));
  app.add_option("--hold-out", f.hold_out,
                 "leave N training images out of training: the split of "
                 "mixq_multiquant_cifar10 --val-images N with the same --seed, recorded in the "
                 "model file (0 = train on all)")
      ->check(integer_in(0, 49999));
  app.add_option("--test-subset", f.test_subset, "use the first N test images (0 = all)")
      ->check(integer_in(0, 10000));
  app.add_option("--eval-every", f.eval_every,
                 "evaluate on the test set every k epochs (0 = after the last only)")
      ->check(integer_in(0, 100000));
  app.add_flag("--no-augment", f.no_augment, "disable random crop and flip");
  app.add_option("--stop-after-epoch", f.stop_after_epoch,
                 "stop once this many epochs are done, as if killed (-1: never)")
      ->check(integer_in(-1, 100000));
  // Quantization (docs/quantization.md).
  app.add_option("--method", f.method, "fp32 | qat (fixed bits) | adaqat (learned bits)")
      ->check(CLI::IsMember({"fp32", "qat", "adaqat"}));
  app.add_option("--init", f.init,
                 "model file to start from (same architecture): FP32, or for qat/adaqat a "
                 "quantized model with the same quantizer families (progressive: 4 -> 2 bits)")
      ->check(non_empty("a model file"));
  app.add_option("--distill", f.distill,
                 "qat/adaqat: FP32 teacher model file (same depth); the loss mixes the label and "
                 "the teacher's probabilities (--distill-weight)")
      ->check(non_empty("a model file"));
  app.add_option("--distill-weight", f.distill_weight,
                 "weight w of the teacher: (1 - w) CE(label) + w KL(teacher || student)")
      ->check(number_in(0, 1));
  app.add_option("--bits-w", f.bits_w, "qat: weight bits of the inner layers (2..8)")
      ->check(integer_in(2, 8));
  app.add_option("--bits-a", f.bits_a, "qat: activation bits of the inner layers (2..8)")
      ->check(integer_in(2, 8));
  app.add_option("--wq", f.wq, "weight quantizer: lsq | dorefa (auto: qat lsq, adaqat dorefa)")
      ->check(CLI::IsMember({"auto", "lsq", "dorefa"}));
  app.add_option("--aq", f.aq, "activation quantizer: lsq | pact (auto: qat lsq, adaqat pact)")
      ->check(CLI::IsMember({"auto", "lsq", "pact"}));
  app.add_flag("--per-channel", f.per_channel, "LSQ weights: one step per output channel");
  app.add_option("--weight-range", f.weight_range,
                 "LSQ weight codes: full [-2^(b-1), 2^(b-1)-1] | symmetric")
      ->check(CLI::IsMember({"full", "symmetric"}));
  app.add_option("--first", f.first, "first conv: 8bit | fp32 | same (as the inner layers)")
      ->check(CLI::IsMember({"8bit", "fp32", "same"}));
  app.add_option("--last", f.last, "classifier: 8bit | fp32 | same (as the inner layers)")
      ->check(CLI::IsMember({"8bit", "fp32", "same"}));
  app.add_option("--dorefa-scale", f.dorefa_scale,
                 "DoReFa level scale: auto (max on the classifier) | unit | max")
      ->check(CLI::IsMember({"auto", "unit", "max"}));
  app.add_option("--pact-init", f.pact_init,
                 "PACT initial clip (0: the 99.9th percentile of the first batch)")
      ->check(number_in(0, 1e6));
  app.add_flag("--pact-scale-grad", f.pact_scale_grad,
               "PACT: add the grid step's own derivative to d alpha");
  app.add_flag("--pact-no-decay", f.pact_no_decay, "PACT: no weight decay on the clip");
  app.add_flag("--quant-decay", f.quant_decay, "LSQ steps under weight decay too");
  app.add_option("--step-init", f.step_init,
                 "LSQ step initialisation from data: mse (least quantization error) | lsq (the "
                 "LSQ paper's 2 mean|x| / sqrt(Qp))")
      ->check(CLI::IsMember({"lsq", "mse"}));
  app.add_option("--step-band", f.step_band,
                 "LSQ weights: keep each step in [m / (B_b Qp), m / Qp], m = the channel's max "
                 "|w|, B_b = B "
                 "at 2 bits halved per bit down to 2 "
                 "(0 = off; runs started before the band existed resume with 0)")
      ->check(CLI::Number & (CLI::IsMember({0.0}) | CLI::Range(1.0, 1e6)));
  app.add_option("--residual-bits", f.residual_bits,
                 "width R of each block's input as the shortcut adds it; conv1 requantizes it "
                 "at --bits-a (0: the block input is quantized once, at --bits-a)")
      ->check(CLI::IsMember({0, 2, 3, 4, 5, 6, 7, 8}));
  app.add_option("--conv-forward", f.conv_forward,
                 "inner convs' forward product: integer (the integer kernels on the codes) | "
                 "fp32 (the FP32 kernels on the fake-quantized values); the same to float "
                 "rounding, not part of a checkpoint's flags")
      ->check(CLI::IsMember({"integer", "fp32"}));
  app.add_option("--init-steps", f.init_steps,
                 "quantized --init: keep its LSQ steps and PACT clips (LSQ: same clipping span at "
                 "the run's bits) | data (initialise them again as a fresh run does)")
      ->check(CLI::IsMember({"keep", "data"}));
  app.add_option("--quant-lr-scale", f.quant_lr_scale,
                 "learning-rate scale of quantizer parameters")
      ->check(number_in(0, 1000));
  app.add_option("--eval", f.eval,
                 "quantized runs: test accuracy of the exported integer model (what ships) or "
                 "of the fake-quant model (auto: integer unless --first/--last is fp32)")
      ->check(CLI::IsMember({"auto", "integer", "fake"}));
  app.add_option("--lambda", f.lambda, "adaqat: weight of the normalised BitOPs (>= 0)")
      ->check(number_in(0, 1e6));
  app.add_option("--bits-lr", f.bits_lr, "adaqat: bit-width learning rate (per step)")
      ->check(number_in(0, 100));
  app.add_option("--bits-init", f.bits_init, "adaqat: initial real-valued bits N")
      ->check(number_in(2, 8));
  app.add_option("--bits-init-w", f.bits_init_w, "adaqat: initial N_w (0: --bits-init)")
      ->check(number_in(0, 8));
  app.add_option("--bits-init-a", f.bits_init_a, "adaqat: initial N_a (0: --bits-init)")
      ->check(number_in(0, 8));
  app.add_option("--bits-min", f.bits_min, "adaqat: lowest N")->check(number_in(2, 8));
  app.add_option("--bits-max", f.bits_max, "adaqat: highest N")->check(number_in(2, 8));
  app.add_option("--granularity", f.granularity,
                 "adaqat: network (one N_w, N_a) | layer (per layer)")
      ->check(CLI::IsMember({"network", "layer"}));
  app.add_option("--bits-estimator", f.bits_estimator,
                 "adaqat: fd (finite differences) | taylor (layer granularity)")
      ->check(CLI::IsMember({"fd", "taylor"}));
  app.add_option("--bits-groups-per-step", f.bits_groups_per_step,
                 "adaqat fd: bit-widths probed per step")
      ->check(integer_in(1, 100000));
  app.add_flag("--no-second-order", f.no_second_order, "adaqat taylor: first-order term only");
  app.add_option("--osc-reversals", f.osc_reversals,
                 "adaqat: freeze a bit-width after this many reversals (0: never)")
      ->check(integer_in(0, 1000000));
  app.add_option("--osc-window", f.osc_window, "adaqat: ... within this many steps")
      ->check(integer_in(1, 1000000000));
  app.add_option("--bits-freeze-epoch", f.bits_freeze_epoch,
                 "adaqat: freeze every bit-width at this epoch (-1: never)")
      ->check(integer_in(-1, 100000));
  app.add_option("--bits-start-epoch", f.bits_start_epoch,
                 "adaqat: keep the initial bit-widths until this epoch, then learn them")
      ->check(integer_in(0, 100000));
  const int rc = parse(app, argc, argv);
  if (rc >= 0) return rc;

  // Flags against each other and against the machine.
  if ((f.depth - 2) % 6 != 0)
    return fail(
        prog, "--depth: " + std::to_string(f.depth) + ", expected 6n+2 (20, 32, 44, 56, 110, ...)");
  if (f.warmup > static_cast<double>(f.epochs)) {
    char w[32];
    std::snprintf(w, sizeof w, "%g", f.warmup);
    return fail(prog, std::string("--warmup: ") + w + " warm-up epochs, more than the " +
                          std::to_string(f.epochs) + " epochs (--epochs)");
  }
  for (long long m : f.milestones)
    if (m > f.epochs)
      return fail(prog, "--milestones: epoch " + std::to_string(m) + " is past the last epoch (" +
                            std::to_string(f.epochs) + ")");
  if (!f.milestones.empty() && f.schedule != "step")
    return fail(prog, "--milestones: only used by --schedule step");
  if (f.bits_freeze_epoch > f.epochs)
    return fail(prog, "--bits-freeze-epoch: epoch " + std::to_string(f.bits_freeze_epoch) +
                          " is past the last epoch (" + std::to_string(f.epochs) + ")");
  if (f.bits_start_epoch >= f.epochs)
    return fail(prog, "--bits-start-epoch: epoch " + std::to_string(f.bits_start_epoch) +
                          ", expected before the last epoch (" + std::to_string(f.epochs) + ")");
  if (f.bits_start_epoch > 0 && f.bits_freeze_epoch >= 0 &&
      f.bits_freeze_epoch <= f.bits_start_epoch)
    return fail(prog, "--bits-freeze-epoch: epoch " + std::to_string(f.bits_freeze_epoch) +
                          ", expected after --bits-start-epoch (" +
                          std::to_string(f.bits_start_epoch) + ")");
  if (f.eval == "integer" && (f.first == "fp32" || f.last == "fp32"))
    return fail(prog,
                "--eval integer: the integer runtime needs integer first and last layers "
                "(--first/--last 8bit or same, not fp32)");
  if (f.residual_bits != 0 && f.method == "fp32")
    return fail(prog, "--residual-bits: a quantized run's option (--method qat or adaqat)");
  if (!f.distill.empty() && f.method == "fp32")
    return fail(prog, "--distill: a teacher for --method qat or adaqat, not fp32");
  if (!f.distill.empty() && f.label_smoothing > 0.0)
    return fail(prog,
                "--distill with --label-smoothing: the teacher's probabilities are the soft "
                "target; use one or the other");
  if (f.method == "adaqat" && !(f.bits_min < f.bits_max))
    return fail(prog, "--bits-min / --bits-max: expected min < max");
  if (f.threads == 0 && default_threads() > max_threads) {
    const char* env = std::getenv("OMP_NUM_THREADS");
    return fail(prog, "OMP_NUM_THREADS=" + std::string(env ? env : "?") + " asks for " +
                          std::to_string(default_threads()) + " threads, more than the " +
                          std::to_string(max_threads) +
                          " allowed (4 per hardware thread); set --threads");
  }
  return -1;
}

}  // namespace mixq::examples
