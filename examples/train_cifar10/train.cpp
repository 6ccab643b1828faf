// Trains a CIFAR ResNet (default ResNet20) in FP32 on CIFAR-10.
//
//   mixq_train_cifar10 [--data DIR] [--depth 20] [--epochs 100] [--batch 128]
//       [--lr 0.1] [--wd 5e-4] [--momentum 0.9] [--nesterov] [--schedule cosine|step]
//       [--milestones 50,75] [--warmup 1] [--label-smoothing 0] [--threads N]
//       [--seed 1] [--out runs/fp32] [--resume] [--train-subset N] [--test-subset N]
//       [--eval-every 1] [--no-augment]
//
// Writes <out>/metrics.csv (one row per epoch), <out>/checkpoint.mixq (each
// epoch, atomic), <out>/model.mixq (final weights) and <out>/report.json.
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
#include "mixq/train/trainer.hpp"
#include "../common/cli.hpp"
#include "../common/data_dir.hpp"

int main(int argc, char** argv) {
  using namespace mixq;
  examples::cli cli("mixq_train_cifar10", "Train a CIFAR ResNet on CIFAR-10 in FP32.");
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
  if (!cli.parse(argc, argv)) return cli.exit_code();

  try {
    MIXQ_CHECK(depth >= 8 && (depth - 2) % 6 == 0, "--depth ", depth,
               ": expected 6n+2 >= 8 (20, 32, 44, 56)");
    MIXQ_CHECK(epochs >= 1, "--epochs ", epochs, ": expected >= 1");
    MIXQ_CHECK(batch >= 1, "--batch ", batch, ": expected >= 1");
    const optim::schedule_kind kind = optim::parse_schedule_kind(schedule);
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
    o.config_tag = cli.config_string({"data", "out", "resume", "threads", "eval-every"});

    std::fprintf(stderr,
                 "mixq: ResNet%lld (%lld parameters), CIFAR-10 from %s: %lld train / %lld test "
                 "images, %lld epochs, batch %lld, %d threads\n",
                 static_cast<long long>(depth), static_cast<long long>(model.num_parameters()),
                 dir.c_str(), static_cast<long long>(train.n), static_cast<long long>(test.n),
                 static_cast<long long>(epochs), static_cast<long long>(batch),
                 omp_get_max_threads());
    auto r = train::fit(model, train, &test, o);
    nn::save_model(out + "/model.mixq", model,
                   {{"arch", "resnet" + std::to_string(depth)}, {"dataset", "cifar10"}});

    double ips = 0;
    for (auto& m : r.history) ips += m.images_per_s;
    if (!r.history.empty()) ips /= static_cast<double>(r.history.size());
    std::ofstream js(out + "/report.json");
    js << "{\"arch\": \"resnet" << depth << "\", \"parameters\": " << model.num_parameters()
       << ", \"epochs\": " << epochs << ", \"epochs_run_now\": " << r.history.size()
       << ", \"test_accuracy\": " << r.test_acc << ", \"test_loss\": " << r.test_loss
       << ", \"wall_seconds\": " << r.wall_seconds << ", \"train_images_per_s\": " << ips
       << ", \"threads\": " << omp_get_max_threads() << ", \"command\": \"" << cli.command_line()
       << "\"}\n";
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
    std::printf("files          %s/{metrics.csv, checkpoint.mixq, model.mixq, report.json}\n",
                out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::string msg = e.what();  // one line: multi-line messages are joined
    for (auto& ch : msg)
      if (ch == '\n') ch = ';';
    std::fprintf(stderr, "mixq_train_cifar10: error: %s\n", msg.c_str());
    return 2;
  }
}
