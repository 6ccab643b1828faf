// Trains a CIFAR ResNet (default ResNet20) as a MultiQuant multi-bit supernet
// from an FP32 model, evaluates every uniform slice 2..8 on the test set,
// searches per-layer configurations at several budgets on a held-out split of
// the training set, saves them and draws the accuracy / cost frontier.
//
//   mixq_multiquant_cifar10 --init models/fp32_resnet20.mixq [--out runs/multiquant]
//       [--stages train,uniform,search] [--epochs 60] [--batch 128] [--lr 0.01] ...
//       supernet: [--wq lsq|dorefa] [--aq lsq|pact] [--per-channel] [--weight-range full|symmetric]
//       [--step-init mse|lsq]
//       [--first 8bit|fp32|same] [--last 8bit|fp32|same] [--per-bit-bn]
//       [--per-bit-bn-by weight|act] [--bits 2-8]
//       LRH: [--random-slices 1] [--sampling lrh|random] [--labels gpg|pskd|hard]
//            [--random-draw per-layer|tied|uniform]
//       [--shrink-epochs 0]
//       [--lambda 0.5] [--pskd-alpha 0.8]
//       evaluation: [--val-images 5000] [--calib-images 2048] [--search-calib-images 256]
//       [--eval-bits 4]
//       search: [--budgets 2.5,3,3.5,4,5,6] [--budget-kind bits|bitops] [--window 0.5]
//       [--prior mc|uniform] [--mc-samples 200000] [--population 20] [--generations 10]
//       [--parent-ratio 0.25] [--mutation-ratio 0.5] [--mutate-prob 0.1] [--max-evals 0]
//       [--search-images 0 = all held-out] [--export]
//
// Stages (each resumable; later stages read <out>/model.mixq when training
// is not part of this call):
//   train    train::fit with the "multiquant" method (LRH co-training) on the
//            training split minus the held-out images; metrics.csv,
//            checkpoint.mixq (--resume continues it bit for bit), model.mixq
//   uniform  every uniform slice W b A b, b in the bit list: batch-norm
//            recalibration on --calib-images training images, then accuracy on
//            the held-out split and on the test set -> uniform.csv
//   search   per budget: Monte Carlo prior (or uniform, the ablation) +
//            evolutionary search, fitness = held-out accuracy after
//            recalibration on --search-calib-images (never the test set) -> search_<budget>.csv
//            (every evaluation, the best so far), configs/<budget>.bits (the best), its test
//            accuracy; with --export configs/<budget>.mqd (deploy model)
//   configs  (with --eval-configs FILE) every configuration in FILE, as the
//            uniform stage evaluates a slice -> configs_eval.csv
//   then     frontier.csv / frontier.svg (test accuracy of the uniform slices
//            and of the chosen configurations against BitOPs and mean bits),
//            report.json; with --export every uniform slice's deploy model
//            configs/W<b>A<b>.mqd too, and configs/supernet.mqb: the bundle of
//            all exported configurations (deploy/bundle.hpp), which
//            mixq_evaluate and deploy::switchable_runtime run, switching
// docs/multiquant.md explains every flag and default.
// Bad flags or data: one line on stderr and exit code 2.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mixq/deploy/bundle.hpp"
#include "mixq/deploy/export.hpp"
#include "mixq/deploy/format.hpp"
#include "mixq/io/cifar10.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/nn/resnet.hpp"
#include "mixq/quant/multiquant/multiquant.hpp"
#include "mixq/quant/quant.hpp"
#include "mixq/train/trainer.hpp"
#include "../common/cli.hpp"
#include "../common/data_dir.hpp"
#include "../common/held_out.hpp"
#include "../common/init_model.hpp"
#include "lrh_method.hpp"

namespace {

std::vector<double> parse_doubles(const std::string& s, const char* flag) {
  std::vector<double> out;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    char* end = nullptr;
    const double v = std::strtod(tok.c_str(), &end);
    MIXQ_CHECK(!tok.empty() && end && *end == '\0', flag, " '", s, "': '", tok,
               "' is not a number");
    out.push_back(v);
  }
  return out;
}

// "2-8" or "2,4,8".
// "6:8,8:6" -> {(6, 8), (8, 6)}; each width one of the candidates.
std::vector<std::pair<int, int>> parse_pairs(const std::string& s, const std::vector<int>& bits) {
  std::vector<std::pair<int, int>> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    const size_t colon = item.find(':');
    MIXQ_CHECK(colon != std::string::npos, "--pairs '", s, "': item '", item,
               "', expected W:A such as 6:8");
    const int w = std::atoi(item.substr(0, colon).c_str());
    const int a = std::atoi(item.substr(colon + 1).c_str());
    for (int v : {w, a})
      MIXQ_CHECK(std::find(bits.begin(), bits.end(), v) != bits.end(), "--pairs '", s, "': width ",
                 v, " is not a candidate (--bits)");
    out.emplace_back(w, a);
  }
  return out;
}

std::vector<int> parse_bits(const std::string& s) {
  std::vector<int> out;
  const size_t dash = s.find('-');
  if (dash != std::string::npos) {
    const int lo = std::atoi(s.substr(0, dash).c_str()), hi = std::atoi(s.substr(dash + 1).c_str());
    for (int b = lo; b <= hi; ++b) out.push_back(b);
  } else {
    for (double v : parse_doubles(s, "--bits")) out.push_back(static_cast<int>(v));
  }
  MIXQ_CHECK(!out.empty(), "--bits '", s, "': no widths");
  for (size_t i = 0; i < out.size(); ++i) {
    MIXQ_CHECK(out[i] >= mixq::quant::min_bits && out[i] <= mixq::quant::max_bits, "--bits '", s,
               "': width ", out[i], " outside [2, 8]");
    MIXQ_CHECK(i == 0 || out[i] > out[i - 1], "--bits '", s, "': expected ascending widths");
  }
  return out;
}

std::string fmt(double v, int prec = 4) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

// "name=value;" for every option except `skip` (the value given, else the
// default): a checkpoint resumes only under the same settings.
std::string config_string(const CLI::App& app, const std::set<std::string>& skip) {
  std::string s;
  for (const CLI::Option* o : app.get_options()) {
    const std::string name = o->get_single_name();
    if (name == "help" || skip.count(name)) continue;
    std::string v = o->get_default_str();
    if (o->count() > 0) {
      v.clear();
      for (const std::string& r : o->results()) v += r;
    }
    s += name + "=" + v + ";";
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mixq;
  CLI::App app(
      "MultiQuant on CIFAR-10: train a multi-bit supernet (LRH co-training), evaluate its uniform "
      "slices, search per-layer bit-widths.",
      "mixq_multiquant_cifar10");
  app.option_defaults()->always_capture_default();
  std::string data = "";
  app.add_option("--data", data,
                 "CIFAR-10 directory (default: $MIXQ_DATA, then ../shared/datasets/cifar10)");
  long long depth = 20;
  app.add_option("--depth", depth, "ResNet depth 6n+2 (20, 32, 44, 56)");
  std::string init = "";
  app.add_option("--init", init, "FP32 model file to start from (same architecture)");
  std::string out = "runs/multiquant";
  app.add_option("--out", out, "output directory");
  std::string stages = "train,uniform,search";
  app.add_option("--stages", stages, "stages to run, comma-separated");
  bool resume = false;
  app.add_flag("--resume", resume, "continue training from <out>/checkpoint.mixq");
  long long epochs = 60;
  app.add_option("--epochs", epochs, "epochs");
  long long batch = 128;
  app.add_option("--batch", batch, "batch size");
  double lr = 0.01;
  app.add_option("--lr", lr, "peak learning rate");
  double wd = 5e-4;
  app.add_option("--wd", wd, "weight decay (not on BN, biases and LSQ steps)");
  double momentum = 0.9;
  app.add_option("--momentum", momentum, "SGD momentum");
  std::string schedule = "cosine";
  app.add_option("--schedule", schedule, "cosine | step");
  double warmup = 0.0;
  app.add_option("--warmup", warmup, "linear warm-up epochs");
  long long threads = 0;
  app.add_option("--threads", threads, "OpenMP threads (0 = OMP_NUM_THREADS or all cores)");
  long long seed = 1;
  app.add_option("--seed", seed, "seed: data order, augmentation, slices, split, search");
  long long train_subset = 0;
  app.add_option("--train-subset", train_subset, "use the first N training images (0 = all)");
  long long test_subset = 0;
  app.add_option("--test-subset", test_subset, "use the first N test images (0 = all)");
  long long eval_every = 1;
  app.add_option("--eval-every", eval_every, "evaluate the --eval-bits slice every k epochs");
  bool no_augment = false;
  app.add_flag("--no-augment", no_augment, "disable random crop and flip");
  long long stop_after = -1;
  app.add_option("--stop-after-epoch", stop_after,
                 "stop once this many epochs are done, as if killed (-1: never)");
  // supernet
  std::string wq = "lsq";
  app.add_option("--wq", wq, "weight quantizer: lsq | dorefa");
  std::string aq = "lsq";
  app.add_option("--aq", aq, "activation quantizer: lsq | pact");
  bool per_channel = false;
  app.add_flag("--per-channel", per_channel, "LSQ weights: one step per output channel");
  std::string weight_range = "full";
  app.add_option("--weight-range", weight_range, "LSQ weight codes: full | symmetric");
  double step_band = 16;
  app.add_option(
      "--step-band", step_band,
      "LSQ weights: keep each step in [m / (B_b Qp), m / Qp], m = the channel's max |w|, B_b = B "
      "at 2 bits halved per bit down to 2 "
      "(0 = off; supernets trained before the band existed load with 0)");
  std::string conv_forward = "integer";
  app.add_option("--conv-forward", conv_forward,
                 "inner convs' forward product: integer (the integer kernels on the codes) | "
                 "fp32 (the FP32 kernels on the fake-quantized values); the same to float "
                 "rounding, not part of a checkpoint's flags")
      ->check(CLI::IsMember({"integer", "fp32"}));
  std::string step_init = "mse";
  app.add_option("--step-init", step_init,
                 "LSQ steps' initialisation from data: mse (least quantization error) | lsq (the "
                 "LSQ paper's 2 mean|x| / sqrt(Qp))")
      ->check(CLI::IsMember({"lsq", "mse"}));
  std::string first = "8bit";
  app.add_option("--first", first, "first conv: 8bit | fp32 | same (switches)");
  std::string last = "8bit";
  app.add_option("--last", last, "classifier: 8bit | fp32 | same (switches)");
  bool per_bit_bn = false;
  app.add_flag("--per-bit-bn", per_bit_bn, "one batch norm per width after switchable convs");
  std::string per_bit_bn_by = "weight";
  app.add_option("--per-bit-bn-by", per_bit_bn_by,
                 "--per-bit-bn: the conv's width that selects its batch norm: weight | act (its "
                 "input's activation width)")
      ->check(CLI::IsMember({"weight", "act"}));
  std::string bits = "2-8";
  app.add_option("--bits", bits, "candidate widths: lo-hi or a list");
  std::string pairs;
  app.add_option("--pairs", pairs,
                 "uniform stage: also these weight:activation pairs, e.g. 6:8,8:6 (every layer)");
  std::string eval_configs;
  app.add_option("--eval-configs", eval_configs,
                 "stage configs: every 'w:.. a:..' configuration in this file (a search_*.csv, "
                 "or one per line), evaluated on the held-out split and the test set");
  double quant_lr_scale = 1.0;
  app.add_option("--quant-lr-scale", quant_lr_scale, "learning-rate scale of quantizer parameters");
  // LRH
  long long random_slices = 1;
  app.add_option("--random-slices", random_slices, "random per-layer slices per step (k)");
  std::string sampling = "lrh";
  app.add_option("--sampling", sampling, "lrh | random (ablation: k + 2 random slices)");
  std::string random_draw = "per-layer";
  app.add_option("--random-draw", random_draw,
                 "a random slice's widths: per-layer (each weight and activation width on its "
                 "own) | tied (one per layer, w = a) | uniform (one for every layer)");
  double shrink_epochs = 0.0;
  app.add_option("--shrink-epochs", shrink_epochs,
                 "progressive shrinking: the lowest width reaches down from the second highest "
                 "to the lowest over these epochs (0: off)")
      ->check(CLI::Range(0.0, 100000.0));
  std::string labels = "gpg";
  app.add_option("--labels", labels, "gpg | pskd (variant) | hard (ablation)");
  double lambda = 0.5;
  app.add_option("--lambda", lambda, "gpg: weight of the KL term");
  double pskd_alpha = 0.8;
  app.add_option("--pskd-alpha", pskd_alpha, "pskd: final teacher weight alpha_T");
  // evaluation
  long long val_images = 5000;
  app.add_option("--val-images", val_images, "held-out training images (search fitness)");
  long long calib_images = 2048;
  app.add_option("--calib-images", calib_images,
                 "batch-norm recalibration images before every reported accuracy");
  long long search_calib_images = 256;
  app.add_option("--search-calib-images", search_calib_images,
                 "batch-norm recalibration images before each search fitness evaluation");
  long long eval_bits = 4;
  app.add_option("--eval-bits", eval_bits, "uniform slice evaluated during training");
  // search
  std::string budgets = "2.5,3,3.5,4,5,6";
  app.add_option("--budgets", budgets, "search budgets: mean bits, or MBitOPs per image (bitops)");
  std::string budget_kind = "bits";
  app.add_option("--budget-kind", budget_kind, "bits | bitops");
  double window = 0.5;
  app.add_option("--window", window, "candidates in (budget - window, budget], bits");
  std::string prior = "mc";
  app.add_option("--prior", prior, "mc (Monte Carlo prior) | uniform (ablation)");
  long long mc_samples = 200000;
  app.add_option("--mc-samples", mc_samples, "Monte Carlo prior: configurations drawn");
  long long population = 20;
  app.add_option("--population", population, "evolution: population");
  long long generations = 10;
  app.add_option("--generations", generations, "evolution: generations");
  double parent_ratio = 0.25;
  app.add_option("--parent-ratio", parent_ratio, "evolution: parents kept");
  double mutation_ratio = 0.5;
  app.add_option("--mutation-ratio", mutation_ratio, "evolution: mutated children");
  double mutate_prob = 0.1;
  app.add_option("--mutate-prob", mutate_prob, "evolution: per-width mutation prob.");
  long long max_evals = 0;
  app.add_option("--max-evals", max_evals, "evolution: evaluations per budget (0: no cap)");
  bool no_seed_uniform = false;
  app.add_flag("--no-seed-uniform", no_seed_uniform,
               "evolution: do not start from the widest uniform configuration within the budget");
  long long search_images = 0;
  app.add_option("--search-images", search_images,
                 "held-out images the fitness uses (0: all --val-images)");
  bool do_export = false;
  app.add_flag("--export", do_export, "also write each chosen configuration as a deploy model");
  if (const int rc = examples::parse(app, argc, argv); rc >= 0) return rc;

  try {
    const auto t_start = std::chrono::steady_clock::now();
    MIXQ_CHECK(depth >= 8 && (depth - 2) % 6 == 0, "--depth ", depth, ": expected 6n+2 >= 8");
    MIXQ_CHECK(epochs >= 1 && batch >= 1, "--epochs ", epochs, " / --batch ", batch,
               ": expected >= 1");
    bool st_train = false, st_uniform = false, st_search = false, st_configs = false;
    {
      std::stringstream ss(stages);
      std::string s;
      while (std::getline(ss, s, ',')) {
        MIXQ_CHECK(s == "train" || s == "uniform" || s == "search" || s == "configs", "--stages '",
                   stages, "': unknown stage '", s, "' (expected train, uniform, search, configs)");
        st_train = st_train || s == "train";
        st_uniform = st_uniform || s == "uniform";
        st_search = st_search || s == "search";
        st_configs = st_configs || s == "configs";
      }
    }
    MIXQ_CHECK(st_configs == !eval_configs.empty(),
               st_configs ? "--stages configs needs --eval-configs FILE"
                          : "--eval-configs is read by the configs stage (--stages ...,configs)");
    quant::supernet_options so;
    so.quant.weights = quant::parse_weight_family(wq);
    so.quant.acts = quant::parse_act_family(aq);
    so.quant.per_channel = per_channel;
    so.quant.lsq_init = quant::parse_step_init(step_init);
    so.quant.step_band = step_band;
    so.quant.forward = quant::parse_conv_forward(conv_forward);
    MIXQ_CHECK(weight_range == "full" || weight_range == "symmetric", "--weight-range '",
               weight_range, "': expected full or symmetric");
    so.quant.range =
        weight_range == "full" ? quant::weight_range::full : quant::weight_range::symmetric;
    so.quant.first = quant::parse_edge_policy(first);
    so.quant.last = quant::parse_edge_policy(last);
    MIXQ_CHECK(per_bit_bn || per_bit_bn_by == "weight", "--per-bit-bn-by ", per_bit_bn_by,
               ": selects the per-bit batch norms of --per-bit-bn, which is off");
    so.per_bit_bn = per_bit_bn;
    so.per_bit_bn_by = per_bit_bn_by == "act" ? quant::supernet_options::bn_by::act
                                              : quant::supernet_options::bn_by::weight;
    quant::lrh_options lo;
    lo.bits = parse_bits(bits);
    const std::vector<std::pair<int, int>> uniform_pairs = parse_pairs(pairs, lo.bits);
    MIXQ_CHECK(random_slices >= 0 && random_slices <= 16, "--random-slices ", random_slices,
               ": expected 0..16");
    lo.random_slices = static_cast<int>(random_slices);
    lo.sampling = quant::parse_slice_sampling(sampling);
    lo.draw = quant::parse_random_draw(random_draw);
    lo.labels = quant::parse_label_mode(labels);
    lo.lambda = static_cast<float>(lambda);
    lo.pskd_alpha = static_cast<float>(pskd_alpha);
    lo.seed = static_cast<uint64_t>(seed);
    MIXQ_CHECK(eval_bits >= 2 && eval_bits <= 8, "--eval-bits ", eval_bits, ": expected 2..8");
    MIXQ_CHECK(val_images >= 1 && calib_images >= 1 && search_calib_images >= 1, "--val-images ",
               val_images, " / --calib-images ", calib_images, " / --search-calib-images ",
               search_calib_images, ": expected >= 1");
    MIXQ_CHECK(search_images >= 0 && search_images <= val_images, "--search-images ", search_images,
               ": expected 0..--val-images (", val_images, ")");
    const quant::budget_kind bkind = quant::parse_budget_kind(budget_kind);
    const std::vector<double> budget_list = parse_doubles(budgets, "--budgets");
    quant::sampler_options sopt;
    sopt.bits = lo.bits;
    sopt.prior = quant::parse_prior_kind(prior);
    sopt.mc_samples = mc_samples;
    sopt.seed = static_cast<uint64_t>(seed);
    quant::evolution_options eo;
    eo.population = static_cast<int>(population);
    eo.generations = static_cast<int>(generations);
    eo.parent_ratio = parent_ratio;
    eo.mutation_ratio = mutation_ratio;
    eo.mutate_prob = mutate_prob;
    eo.max_evaluations = max_evals;
    eo.seed = static_cast<uint64_t>(seed);
    eo.validate();
    MIXQ_CHECK(window > 0, "--window ", window, ": expected > 0");
    if (threads > 0) omp_set_num_threads(static_cast<int>(threads));

    // Data: the training split minus the held-out images, the held-out split, the test set.
    const std::string dir = examples::cifar10_data_dir(data);
    io::load_options tr_opt, te_opt;
    tr_opt.max_images = train_subset;
    te_opt.max_images = test_subset;
    const io::image_dataset full = io::load_cifar10(dir, io::split::train, tr_opt);
    const io::image_dataset test = io::load_cifar10(dir, io::split::test, te_opt);
    const io::train_validation tv =
        io::split_validation(full, val_images, static_cast<uint64_t>(seed));
    // augmented like the training batches: batch norm's affine parameters were
    // learned under the statistics of augmented images (docs/multiquant.md 4)
    const quant::image_batches calib = quant::make_batches(tv.train, calib_images, batch, true,
                                                           static_cast<uint64_t>(seed) + 7, true);
    const quant::image_batches search_calib = quant::make_batches(
        tv.train, search_calib_images, batch, true, static_cast<uint64_t>(seed) + 7, true);

    nn::resnet_options mo;
    mo.n = static_cast<int>((depth - 2) / 6);
    mo.seed = static_cast<uint64_t>(seed);
    nn::resnet_cifar model(mo);
    const std::string arch = "resnet" + std::to_string(depth);
    // Whether the fitness images were unseen by the weights the supernet
    // started from (examples/common/held_out.hpp): from scratch, or an FP32
    // model trained with the same split held out (--hold-out N --seed S).
    const examples::held_out_split split{val_images, static_cast<unsigned long long>(seed),
                                         static_cast<long long>(full.n)};
    bool held_out_unseen = init.empty();
    if (st_train && !init.empty()) {
      held_out_unseen =
          examples::read_held_out(examples::load_fp32_init(init, model, depth), init) == split;
    }
    so.quant.mean = full.mean;
    so.quant.stddev = full.stddev;
    quant::supernet s(model, so, full.h, full.w);
    // step-band only when on: supernets trained before it existed resume and
    // load with --step-band 0 under their old tags
    char band_buf[48] = "";
    if (step_band != 0) std::snprintf(band_buf, sizeof band_buf, ";step-band=%g", step_band);
    const std::string band_tag = band_buf;
    // The supernet's own options (what a later stage must rebuild it with).
    const std::string sn =
        "depth=" + std::to_string(depth) + ";wq=" + wq + ";aq=" + aq +
        ";per-channel=" + std::to_string(per_channel) + ";weight-range=" + weight_range +
        ";first=" + first + ";last=" + last + ";per-bit-bn=" + std::to_string(per_bit_bn) +
        (per_bit_bn && per_bit_bn_by == "act" ? ";per-bit-bn-by=act" : "") + band_tag;
    if (!st_train) {
      const std::string path = out + "/model.mixq";
      const io::archive a = io::load_archive(path);
      const std::string had = a.has_meta("supernet") ? a.meta("supernet") : "(none)";
      MIXQ_CHECK(had == sn, path, ": a supernet built with '", had, "', but this run has '", sn,
                 "' (use the training run's supernet flags)");
      // A supernet is evaluated on the held-out split it never trained on:
      // another --val-images or --seed would score it on training images.
      const examples::held_out_split had_split = examples::read_held_out(a, path);
      if (had_split.images > 0) {
        MIXQ_CHECK(had_split == split, path, ": trained with ", had_split.images,
                   " held-out images (seed ", had_split.seed, ", of ", had_split.pool,
                   "), but this run holds out ", split.images, " (seed ", split.seed, ", of ",
                   split.pool, "); use the training run's --val-images, --seed and --train-subset");
      } else {
        std::fprintf(stderr,
                     "mixq: note: %s records no held-out split (trained before it was recorded); "
                     "use the training run's --val-images and --seed\n",
                     path.c_str());
      }
      nn::read_state(a, model);
      s.sync();
      held_out_unseen = a.has_meta("held_out_unseen") && a.meta("held_out_unseen") == "1";
    }
    // --eval-configs: every configuration of the file, read before anything
    // runs (a bad one is named before minutes are spent).
    std::vector<std::pair<int, quant::bit_config>> cfgs;
    if (st_configs) {
      std::ifstream in(eval_configs);
      MIXQ_CHECK(in.good(), eval_configs, ": cannot open the --eval-configs file");
      int number = 0;
      for (std::string line; std::getline(in, line);) {
        ++number;
        const size_t p = line.find("w:");
        if (p == std::string::npos) continue;
        const size_t q = line.find('"', p);
        const std::string key = line.substr(p, q == std::string::npos ? q : q - p);
        cfgs.emplace_back(number, quant::parse_bit_config(
                                      key, s.size(), eval_configs + ":" + std::to_string(number)));
      }
      MIXQ_CHECK(!cfgs.empty(), eval_configs, ": no configuration ('w:.. a:..') in the file");
    }
    io::make_dirs(out);
    std::fprintf(stderr,
                 "mixq: MultiQuant %s supernet, %zu searchable layers, widths %s, %s/%s, "
                 "first %s, last %s%s; %lld train / %lld held-out / %lld test images, %d threads\n",
                 arch.c_str(), s.size(), bits.c_str(), quant::name_of(so.quant.weights),
                 quant::name_of(so.quant.acts), quant::name_of(so.quant.first),
                 quant::name_of(so.quant.last), per_bit_bn ? ", per-bit batch norm" : "",
                 static_cast<long long>(tv.train.n), static_cast<long long>(tv.validation.n),
                 static_cast<long long>(test.n), omp_get_max_threads());

    double train_seconds = 0;
    if (st_train) {
      if (!(resume && io::file_exists(out + "/checkpoint.mixq")))
        quant::init_quantizers(s, calib.images.front().view());
      train::fit_options o;
      o.epochs = epochs;
      o.data.batch_size = batch;
      o.data.seed = static_cast<uint64_t>(seed);
      o.data.augment = !no_augment;
      o.sgd.lr = lr;
      o.sgd.momentum = momentum;
      o.sgd.weight_decay = wd;
      o.schedule.kind = optim::parse_schedule_kind(schedule);
      o.schedule.warmup_epochs = warmup;
      o.schedule.milestones = {epochs / 2, epochs * 3 / 4};
      o.eval_every = eval_every;
      o.out_dir = out;
      o.resume = resume;
      o.stop_after_epoch = stop_after;
      o.config_tag = config_string(app, {"data",
                                         "out",
                                         "resume",
                                         "threads",
                                         "eval-every",
                                         "stop-after-epoch",
                                         "stages",
                                         "export",
                                         "budgets",
                                         "budget-kind",
                                         "window",
                                         "prior",
                                         "mc-samples",
                                         "population",
                                         "generations",
                                         "parent-ratio",
                                         "mutation-ratio",
                                         "mutate-prob",
                                         "max-evals",
                                         "search-images",
                                         "pairs",
                                         "no-seed-uniform",
                                         "eval-configs",
                                         "step-band",
                                         "conv-forward",
                                         "calib-images",
                                         "search-calib-images"}) +
                     band_tag;
      lo.total_steps = epochs * ((tv.train.n + batch - 1) / batch);
      MIXQ_CHECK(shrink_epochs <= static_cast<double>(epochs), "--shrink-epochs ", shrink_epochs,
                 ": more than the ", epochs, " epochs (--epochs)");
      lo.shrink_steps = static_cast<int64_t>(
          std::llround(shrink_epochs * static_cast<double>((tv.train.n + batch - 1) / batch)));
      quant::lrh_trainer lrh(s, lo);
      examples::lrh_epoch_stats stats;
      examples::lrh_method_options mopt;
      mopt.weight_decay = wd;
      mopt.quant_lr_scale = quant_lr_scale;
      mopt.eval_bits = static_cast<int>(eval_bits);
      mopt.calib = &calib;
      std::fprintf(stderr,
                   "mixq: LRH %s, %d random slice(s) drawn %s, labels %s, %lld epochs from %s\n",
                   quant::name_of(lo.sampling), lo.random_slices, quant::name_of(lo.draw),
                   quant::name_of(lo.labels), static_cast<long long>(epochs),
                   init.empty() ? "scratch" : init.c_str());
      const train::fit_result r =
          train::fit(model, tv.train, &test, o, examples::lrh_method(model, s, lrh, stats, mopt));
      train_seconds = r.wall_seconds;
      if (stop_after >= 0 && r.first_epoch + static_cast<int64_t>(r.history.size()) < epochs) {
        std::fprintf(stderr, "mixq: stopped after epoch %lld (--stop-after-epoch)\n",
                     static_cast<long long>(r.first_epoch + r.history.size()));
        return 0;
      }
      std::map<std::string, std::string> meta{{"arch", arch},
                                              {"dataset", "cifar10"},
                                              {"method", "multiquant"},
                                              {"supernet", sn},
                                              {"held_out_unseen", held_out_unseen ? "1" : "0"}};
      examples::add_held_out_meta(meta, split);
      nn::save_model(out + "/model.mixq", model, meta);
    }

    const quant::image_batches val = quant::make_batches(tv.validation, 0, 500);
    const quant::image_batches fit_set = quant::make_batches(tv.validation, search_images, 500);
    const quant::image_batches test_set = quant::make_batches(test, 0, 500);
    std::vector<quant::frontier_point> points;
    auto point = [&](const std::string& group, const std::string& label, const quant::bit_config& c,
                     double acc) {
      quant::frontier_point p;
      p.group = group;
      p.label = label;
      p.accuracy = acc;
      p.bitops = s.bitops(c);
      p.mean_w = s.mean_bits_w(c);
      p.mean_a = s.mean_bits_a(c);
      p.bytes = static_cast<double>(s.bytes(c));
      return p;
    };
    std::ostringstream js_uniform, js_search;
    std::vector<deploy::named_model> exported;  // --export: the bundle's configurations
    auto export_slice = [&](const std::string& name) {
      // the slice is set and its batch norm recalibrated (evaluate_slice)
      deploy::model dm =
          deploy::export_resnet(model, static_cast<int32_t>(full.h), static_cast<int32_t>(full.w));
      deploy::save_model(dm, out + "/configs/" + name + ".mqd");
      exported.push_back({name, std::move(dm)});
    };
    if (do_export) io::make_dirs(out + "/configs");
    // One slice on the held-out split and the test set (one recalibration):
    // its test accuracy and the columns val_acc,test_acc,mbitops,kib,mean_bw,mean_ba.
    auto evaluate_row = [&](const quant::bit_config& c, const std::string& what) {
      const double va = quant::evaluate_slice(s, c, calib, val);
      const double ta = quant::slice_accuracy(s, test_set);  // same recalibration
      std::fprintf(stderr, "mixq: %s: held-out %.2f %%, test %.2f %%\n", what.c_str(), 100 * va,
                   100 * ta);
      return std::make_pair(ta, fmt(va, 6) + "," + fmt(ta, 6) + "," + fmt(s.bitops(c) / 1e6, 3) +
                                    "," + fmt(s.bytes(c) / 1024.0, 3) + "," +
                                    fmt(s.mean_bits_w(c)) + "," + fmt(s.mean_bits_a(c)));
    };
    if (st_uniform) {
      std::string csv = "slice,bits_w,bits_a,val_acc,test_acc,mbitops,kib,mean_bw,mean_ba\n";
      std::vector<std::pair<int, int>> slices;
      for (int b : lo.bits) slices.emplace_back(b, b);
      slices.insert(slices.end(), uniform_pairs.begin(), uniform_pairs.end());
      for (const auto& [bw, ba] : slices) {
        const quant::bit_config c = s.uniform(bw, ba);
        const std::string label = "W" + std::to_string(bw) + "A" + std::to_string(ba);
        const auto [ta, row] = evaluate_row(c, "uniform " + label);
        points.push_back(point("uniform", label, c, ta));
        csv += label + "," + std::to_string(bw) + "," + std::to_string(ba) + "," + row + "\n";
        js_uniform << (js_uniform.tellp() > 0 ? ", " : "") << "\"" << label << "\": " << ta;
        if (do_export) export_slice(label);
      }
      io::write_file_atomic(out + "/uniform.csv", csv);
    }
    if (st_configs) {
      std::string csv = "line,val_acc,test_acc,mbitops,kib,mean_bw,mean_ba,config\n";
      for (const auto& [line_no, c] : cfgs) {
        const std::string row =
            evaluate_row(c, "configuration of line " + std::to_string(line_no)).second;
        csv += std::to_string(line_no) + "," + row + ",\"" + c.str() + "\"\n";
      }
      io::write_file_atomic(out + "/configs_eval.csv", csv);
    }
    if (st_search && !held_out_unseen)
      std::fprintf(stderr,
                   "mixq: note: the supernet's start (%s) trained on the %lld held-out images "
                   "(or does not record it): the search's fitness partly measures what that "
                   "model memorised; start from an FP32 model trained with --hold-out %lld "
                   "--seed %lld (docs/multiquant.md 5)\n",
                   init.empty() ? "the supernet file" : init.c_str(), val_images, val_images, seed);
    if (st_search) {
      io::make_dirs(out + "/configs");
      quant::config_sampler sampler(s, bkind, sopt);
      for (double bv : budget_list) {
        quant::search_budget b;
        b.kind = bkind;
        b.value = bkind == quant::budget_kind::bits ? bv : bv * 1e6;
        b.window = window;
        const std::string name = (bkind == quant::budget_kind::bits ? "bits" : "mbitops") +
                                 std::string("_") +
                                 fmt(bv, bkind == quant::budget_kind::bits ? 2 : 1);
        int64_t n = 0;
        quant::evolution_options eob = eo;
        if (!no_seed_uniform) {
          const std::vector<quant::bit_config> u = sampler.uniform_within(b);
          if (!u.empty()) eob.seeds.push_back(u.front());
        }
        const quant::search_result r =
            quant::evolve(s, sampler, b, eob, [&](const quant::bit_config& c) {
              const double acc = quant::evaluate_slice(s, c, search_calib, fit_set);
              ++n;
              if (n % 10 == 0)
                std::fprintf(stderr, "mixq: search %s: %lld evaluations\n", name.c_str(),
                             static_cast<long long>(n));
              return acc;
            });
        std::string csv = "evaluation,val_acc,best_so_far,mbitops,mean_bw,mean_ba,config\n";
        for (size_t i = 0; i < r.evaluated.size(); ++i) {
          const quant::evaluated_config& e = r.evaluated[i];
          csv += std::to_string(e.index) + "," + fmt(e.fitness, 6) + "," + fmt(r.best_after[i], 6) +
                 "," + fmt(e.bitops / 1e6, 3) + "," + fmt(e.mean_w) + "," + fmt(e.mean_a) + ",\"" +
                 e.config.str() + "\"\n";
        }
        io::write_file_atomic(out + "/search_" + name + ".csv", csv);
        const std::string cfg_path = out + "/configs/" + name + ".bits";
        quant::save_bit_config(cfg_path, s.names(), r.best.config,
                               "MultiQuant search, budget " + name + ", prior " + prior +
                                   "\nheld-out accuracy " + fmt(r.best.fitness, 6));
        const double ta = quant::evaluate_slice(s, r.best.config, calib, test_set);
        points.push_back(point("search", name, r.best.config, ta));
        std::fprintf(stderr,
                     "mixq: search %s: best held-out %.2f %%, test %.2f %%, %.1f MBitOPs, mean "
                     "bits w %.2f a %.2f; %lld evaluations, %lld draws, %d generations, %.0f s\n",
                     name.c_str(), 100 * r.best.fitness, 100 * ta, r.best.bitops / 1e6,
                     r.best.mean_w, r.best.mean_a, static_cast<long long>(r.evaluations),
                     static_cast<long long>(r.draws), r.generations, r.seconds);
        if (do_export) export_slice(name);  // evaluate_slice set and recalibrated it
        js_search << (js_search.tellp() > 0 ? ", " : "") << "\"" << name
                  << "\": {\"val_acc\": " << r.best.fitness << ", \"test_acc\": " << ta
                  << ", \"mbitops\": " << r.best.bitops / 1e6 << ", \"mean_bw\": " << r.best.mean_w
                  << ", \"mean_ba\": " << r.best.mean_a << ", \"evaluations\": " << r.evaluations
                  << ", \"draws\": " << r.draws << ", \"seconds\": " << r.seconds
                  << ", \"config\": \"" << cfg_path << "\"}";
      }
    }
    if (!points.empty()) {
      quant::write_frontier_csv(out + "/frontier.csv", points);
      quant::write_frontier_svg(out + "/frontier.svg", points,
                                "MultiQuant " + arch +
                                    ": test accuracy of uniform slices "
                                    "(squares) and searched configurations (dots)");
    }
    std::ostringstream js_bundle;
    if (!exported.empty()) {
      deploy::save_bundle(exported, out + "/configs/supernet.mqb");
      const deploy::bundle_bytes bb = deploy::measure_bundle(exported);
      std::fprintf(stderr,
                   "mixq: configs/supernet.mqb: %zu configurations in %zu bytes; one model file "
                   "each: %zu bytes (%zu of %zu code arrays distinct)\n",
                   exported.size(), bb.bundle, bb.separate, bb.unique_code_arrays, bb.code_arrays);
      js_bundle << ", \"bundle\": {\"file\": \"configs/supernet.mqb\", \"configurations\": "
                << exported.size() << ", \"bytes\": " << bb.bundle
                << ", \"separate_bytes\": " << bb.separate
                << ", \"code_arrays\": " << bb.code_arrays
                << ", \"unique_code_arrays\": " << bb.unique_code_arrays << "}";
    }
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::ofstream js(out + "/report.json");
    js << "{\"arch\": \"" << arch << "\", \"method\": \"multiquant\", \"epochs\": " << epochs
       << ", \"train_seconds\": " << train_seconds << ", \"wall_seconds\": " << wall
       << ", \"threads\": " << omp_get_max_threads()
       << ", \"held_out_unseen\": " << (held_out_unseen ? "true" : "false")
       << ", \"uniform_test_acc\": {" << js_uniform.str() << "}, \"search\": {" << js_search.str()
       << "}" << js_bundle.str() << ", \"command\": \"" << examples::command_line(argc, argv)
       << "\"}\n";
    std::printf(
        "files  %s/{metrics.csv, checkpoint.mixq, model.mixq, uniform.csv, "
        "search_*.csv, configs/, frontier.csv, frontier.svg, report.json}\n",
        out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    for (auto& ch : msg)
      if (ch == '\n') ch = ';';
    std::fprintf(stderr, "mixq_multiquant_cifar10: error: %s\n", msg.c_str());
    return 2;
  }
}
