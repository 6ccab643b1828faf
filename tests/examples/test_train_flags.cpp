// mixq_train_cifar10's flags: every hostile value is refused with one line and
// exit code 2 before any data is read; good values come through typed. The
// fuzz target's committed inputs (fuzz/corpus/cli, fuzz/regressions/cli) are
// replayed too.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "../../examples/train_cifar10/flags.hpp"

namespace ex = mixq::examples;

namespace {
struct outcome {
  int rc;
  std::string err;
};

// Runs parse_train_flags on `args` (after the program name), capturing what
// it writes.
outcome run(std::vector<std::string> args, ex::train_flags* flags = nullptr) {
  args.insert(args.begin(), "mixq_train_cifar10");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::FILE* err = std::tmpfile();
  std::FILE* out = std::tmpfile();
  REQUIRE(err != nullptr);
  REQUIRE(out != nullptr);
  ex::streams().err = err;
  ex::streams().out = out;
  ex::train_flags local;
  const int rc =
      ex::parse_train_flags(static_cast<int>(argv.size()), argv.data(), flags ? *flags : local);
  ex::streams() = ex::cli_streams{};
  std::string text;
  std::rewind(err);
  for (int c; (c = std::fgetc(err)) != EOF;) text += static_cast<char>(c);
  std::fclose(err);
  std::fclose(out);
  return {rc, text};
}

// Refused: exit code 2, exactly one line, mentioning `part`.
void refused(const std::vector<std::string>& args, const std::string& part) {
  CAPTURE(args.size() > 1 ? args[0] + " " + args[1] : args[0]);
  const outcome o = run(args);
  CHECK(o.rc == 2);
  CHECK(std::count(o.err.begin(), o.err.end(), '\n') == 1);
  CHECK_MESSAGE(o.err.find(part) != std::string::npos, o.err);
}
}  // namespace

TEST_CASE("train flags: thread counts outside 0..4 per hardware thread are refused") {
  const std::string cap = std::to_string(ex::max_threads_allowed());
  for (const char* t : {"100000", "32768", "-1", "4294967298", "2.5", "0x10", "+3", ""})
    refused({"--threads", t}, "--threads");
  refused({"--threads", "100000"}, "'100000', expected an integer in 0.." + cap);
  ex::train_flags f;
  CHECK(run({"--threads", cap}, &f).rc == -1);
  CHECK(f.threads == ex::max_threads_allowed());
}

TEST_CASE("train flags: numbers must be finite and in range") {
  refused({"--warmup", "nan"}, "--warmup: 'nan', expected a finite number in [0, 100000]");
  refused({"--warmup", "1e30"}, "--warmup: '1e30'");
  refused({"--warmup", "inf"}, "--warmup");
  refused({"--lr", "1e400"}, "--lr: '1e400'");
  refused({"--lr", "-0.1"}, "--lr");
  refused({"--momentum", "1"}, "expected a finite number in [0, 1)");
  refused({"--label-smoothing", "1"}, "--label-smoothing");
  refused({"--batch", "9223372036854775807"},
          "--batch: '9223372036854775807', expected an "
          "integer in 1..65536");
  refused({"--epochs", "banana"}, "expected an integer");
  refused({"--epochs", "0"}, "--epochs");
  refused({"--seed", "-1"}, "--seed");
  refused({"--seed", "18446744073709551616"}, "--seed");
  refused({"--depth", "21"}, "--depth: 21, expected 6n+2");
  refused({"--train-subset", "50001"}, "--train-subset");
}

TEST_CASE("train flags: milestones are integers within the epochs, for the step schedule") {
  refused({"--schedule", "step", "--milestones", "abc"}, "--milestones: 'abc'");
  refused({"--schedule", "step", "--milestones", "5,x"}, "'x'");
  refused({"--schedule", "step", "--milestones", ""}, "--milestones");
  refused({"--schedule", "step", "--epochs", "50", "--milestones", "60"},
          "--milestones: epoch 60 is past the last epoch (50)");
  refused({"--milestones", "10"}, "only used by --schedule step");
  refused({"--schedule", "linear"}, "--schedule");
  ex::train_flags f;
  CHECK(run({"--schedule", "step", "--epochs", "30", "--milestones", "10,20"}, &f).rc == -1);
  CHECK(f.milestones == std::vector<long long>{10, 20});
}

TEST_CASE("train flags: the AdaQAT learning window lies within the epochs, start before freeze") {
  const std::pair<std::vector<std::string>, const char*> bad[] = {
      {{"--epochs", "10", "--bits-start-epoch", "10"},
       "--bits-start-epoch: epoch 10, expected before the last epoch (10)"},
      {{"--bits-start-epoch", "-1"}, "--bits-start-epoch"},
      {{"--epochs", "10", "--bits-start-epoch", "4", "--bits-freeze-epoch", "4"},
       "--bits-freeze-epoch: epoch 4, expected after --bits-start-epoch (4)"},
      {{"--epochs", "10", "--bits-freeze-epoch", "11"}, "--bits-freeze-epoch: epoch 11"}};
  for (const auto& [args, message] : bad) refused(args, message);
  ex::train_flags f;
  REQUIRE(run({"--epochs", "10", "--bits-start-epoch", "3", "--bits-freeze-epoch", "8"}, &f).rc ==
          -1);
  CHECK(f.bits_start_epoch == 3);
  CHECK(f.bits_freeze_epoch == 8);
  ex::train_flags d;
  REQUIRE(run({"--bits-freeze-epoch", "0"}, &d).rc == -1);  // fixed at the initial widths
  CHECK(d.bits_start_epoch == 0);
}

TEST_CASE("train flags: the residual stream's width is 0 or 2..8, for quantized runs") {
  refused({"--method", "qat", "--residual-bits", "1"}, "--residual-bits");
  refused({"--method", "qat", "--residual-bits", "9"}, "--residual-bits");
  refused({"--residual-bits", "8"}, "--residual-bits: a quantized run's option");
  ex::train_flags f;
  REQUIRE(run({"--method", "qat", "--residual-bits", "8"}, &f).rc == -1);
  CHECK(f.residual_bits == 8);
  ex::train_flags d;
  REQUIRE(run({"--method", "qat"}, &d).rc == -1);
  CHECK(d.residual_bits == 0);
}

TEST_CASE("train flags: the convolutions' forward product is integer or fp32") {
  refused({"--method", "qat", "--conv-forward", "int4"}, "--conv-forward");
  ex::train_flags f;
  REQUIRE(run({"--method", "qat", "--conv-forward", "fp32"}, &f).rc == -1);
  CHECK(f.conv_forward == "fp32");
  ex::train_flags d;
  REQUIRE(run({"--method", "qat"}, &d).rc == -1);
  CHECK(d.conv_forward == "integer");
}

TEST_CASE("train flags: cross checks, paths, unknown and repeated flags") {
  refused({"--epochs", "5", "--warmup", "6"}, "--warmup: 6 warm-up epochs, more than the 5 epochs");
  refused({"--out", ""}, "--out: empty, expected a directory");
  refused({"--out="}, "--out");
  refused({"--data", ""}, "--data: empty");
  refused({"--no-such-flag"}, "no-such-flag");
  refused({"stray"}, "stray");
  refused({"--epochs"}, "--epochs");
  refused({"--epochs", "3", "--epochs", "4"}, "--epochs");
  CHECK(run({"--help"}).rc == 0);
}

TEST_CASE("train flags: LSQ step initialisation and a quantized --init's steps") {
  refused({"--step-init", "max"}, "--step-init");
  refused({"--init-steps", "reset"}, "--init-steps");
  ex::train_flags f;
  REQUIRE(run({"--step-init", "lsq", "--init-steps", "data"}, &f).rc == -1);
  CHECK(f.step_init == "lsq");
  CHECK(f.init_steps == "data");
  ex::train_flags d;
  REQUIRE(run({}, &d).rc == -1);
  CHECK(d.step_init == "mse");
  CHECK(d.init_steps == "keep");
}

TEST_CASE("train flags: good values come through typed") {
  ex::train_flags f;
  REQUIRE(run({"--data",
               "/d",
               "--depth",
               "32",
               "--epochs=7",
               "--batch",
               "64",
               "--lr",
               "0.05",
               "--wd",
               "1e-4",
               "--momentum",
               "0.8",
               "--nesterov",
               "--warmup",
               "0.5",
               "--seed",
               "9",
               "--out",
               "o",
               "--resume",
               "--train-subset",
               "100",
               "--eval-every",
               "0",
               "--no-augment",
               "--label-smoothing",
               "0.1",
               "--decay-all"},
              &f)
              .rc == -1);
  CHECK(f.data == "/d");
  CHECK(f.depth == 32);
  CHECK(f.epochs == 7);
  CHECK(f.batch == 64);
  CHECK(f.lr == 0.05);
  CHECK(f.wd == 1e-4);
  CHECK(f.momentum == 0.8);
  CHECK(f.nesterov);
  CHECK(f.warmup == 0.5);
  CHECK(f.seed == 9);
  CHECK(f.out == "o");
  CHECK(f.resume);
  CHECK(f.train_subset == 100);
  CHECK(f.eval_every == 0);
  CHECK(f.no_augment);
  CHECK(f.decay_all);
  CHECK(f.label_smoothing == 0.1);
  ex::train_flags d;
  REQUIRE(run({}, &d).rc == -1);  // the defaults pass their own checks
  CHECK(d.out == "runs/fp32");
  CHECK(d.threads == 0);
}

TEST_CASE("train flags: the cli fuzz target's committed inputs parse without a crash") {
  namespace fs = std::filesystem;
  int n = 0;
  for (const char* sub : {"/fuzz/corpus/cli", "/fuzz/regressions/cli"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(std::string(MIXQ_SOURCE_DIR) + sub, ec)) {
      std::ifstream in(e.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
      std::vector<std::string> args;
      std::string cur;
      for (char c : bytes) {
        if (c == '\0') {
          args.push_back(cur);
          cur.clear();
        } else {
          cur += c;
        }
      }
      if (!cur.empty()) args.push_back(cur);
      const int rc = run(args).rc;
      CHECK((rc == -1 || rc == 0 || rc == 2));
      ++n;
    }
  }
  CHECK(n >= 4);
}

TEST_CASE("train flags: a distillation teacher for quantized runs only, not with label smoothing") {
  refused({"--distill", "t.mixq"}, "--distill: a teacher for --method qat or adaqat, not fp32");
  refused({"--method", "qat", "--distill", "t.mixq", "--label-smoothing", "0.1"},
          "--distill with --label-smoothing");
  refused({"--method", "qat", "--distill", "t.mixq", "--distill-weight", "1.5"},
          "--distill-weight");
  refused({"--method", "qat", "--distill", ""}, "--distill");
  ex::train_flags f;
  REQUIRE(run({"--method", "adaqat", "--distill", "t.mixq", "--distill-weight", "0.7"}, &f).rc ==
          -1);
  CHECK(f.distill == "t.mixq");
  CHECK(f.distill_weight == doctest::Approx(0.7));
  ex::train_flags d;
  REQUIRE(run({"--method", "qat"}, &d).rc == -1);
  CHECK(d.distill.empty());
  CHECK(d.distill_weight == doctest::Approx(0.5));
}
