// adaqat_estimate: per-layer AdaQAT loss differences, the exact finite
// difference against the Taylor estimate, on real CIFAR-10 batches.
//
// For every learnable layer l and each of its bit-widths (weights, input
// activations) at k bits, the AdaQAT update needs D = L(k-1) - L(k) on the
// training batch. Exact: one forward without gradients with that group at k-1
// bits (2 forwards per layer). Taylor (quantizer.hpp): first = sum g*delta and
// second = (B/2) sum (g*delta)^2 from the one training backward. This tool
// measures, over --batches batches: per group the mean of D and of both
// estimates, the correlation across groups of the batch-mean values, the
// per-(group, batch) sign agreement, and the time of each method.
//
//   mixq_bench_adaqat_estimate --init runs/fp32/model.mixq --warm-steps 200
//       --bits 4 --quant dorefa-pact --batches 8   (one command line)
// --warm-steps first fine-tunes at fixed bits (SGD, lr 0.01) so that the
// comparison is made at a QAT operating point, not on a freshly quantized
// FP32 model.
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"
#include "mixq/autograd/autograd.hpp"
#include "mixq/io/batch_loader.hpp"
#include "mixq/io/cifar10.hpp"
#include "mixq/io/data_dir.hpp"
#include "mixq/nn/nn.hpp"
#include "mixq/nn/model_file.hpp"
#include "mixq/optim/sgd.hpp"
#include "mixq/quant/quant.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace mixq;
namespace {
double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ma += a[i] / n;
    mb += b[i] / n;
  }
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}
std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  for (size_t i = 0; i < v.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < idx.size(); ++i) r[idx[i]] = static_cast<double>(i);
  return r;
}
double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  return pearson(ranks(a), ranks(b));
}
double sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  std::string init, data, qname = "dorefa-pact";
  int bits = 4, batches = 8, warm = 0, threads = 0;
  int64_t batch_size = 128;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--init")
      init = next();
    else if (a == "--data")
      data = next();
    else if (a == "--quant")
      qname = next();
    else if (a == "--bits")
      bits = std::atoi(next().c_str());
    else if (a == "--batches")
      batches = std::atoi(next().c_str());
    else if (a == "--warm-steps")
      warm = std::atoi(next().c_str());
    else if (a == "--threads")
      threads = std::atoi(next().c_str());
    else if (a == "--batch")
      batch_size = std::atoll(next().c_str());
    else {
      std::fprintf(stderr,
                   "usage: %s [--init model.mixq] [--data DIR] [--quant dorefa-pact|lsq] "
                   "[--bits 4] [--batches 8] [--warm-steps 0] [--threads N] [--batch 128]\n",
                   argv[0]);
      return 2;
    }
  }
  try {
#ifdef _OPENMP
    if (threads > 0) omp_set_num_threads(threads);
#endif
    nn::resnet_cifar model;
    if (!init.empty()) nn::load_model(init, model);
    quant::qat_config c;
    c.bits_w = c.bits_a = bits;
    if (qname == "dorefa-pact") {
      c.weights = quant::weight_family::dorefa;
      c.acts = quant::act_family::pact;
    }
    quant::qnet net = quant::quantize(model, c);
    io::image_dataset train = io::load_cifar10(io::cifar10_data_dir(data), io::split::train);
    io::batch_loader_options lo;
    lo.batch_size = batch_size;
    lo.shuffle = true;
    lo.augment = true;
    lo.seed = 3;
    io::batch_loader ld(train, lo);
    ld.start_epoch(0);
    optim::sgd_options so;
    so.lr = 0.01;
    so.weight_decay = 5e-4;
    optim::sgd opt(model.parameters(), so);
    tape t;
    io::batch b;
    for (int s = 0; s < warm && ld.next(b); ++s) {
      t.clear();
      opt.zero_grad();
      auto st = quant::qat_train_step(model, t, tensor_view(b.images.data(), {b.n, b.h, b.w, b.c}),
                                      b.labels.data(), 0.0f, nullptr, s);
      opt.step();
      if (s % 50 == 0) std::fprintf(stderr, "warm step %d loss %.4f\n", s, st.loss);
    }
    // One AdaQAT controller per layer group, used for its grouping and probes only.
    quant::adaqat_options ao;
    ao.gran = quant::granularity::layer;
    ao.est = quant::estimator::taylor;
    ao.init_w = ao.init_a = bits;
    ao.lr = 1e-30;  // bits do not move
    quant::adaqat ctl(net, ao);
    const size_t G = ctl.groups();
    std::vector<double> exact(G, 0), first(G, 0), both(G, 0);
    int64_t sign_first = 0, sign_both = 0, pairs = 0;
    double t_plain = 0, t_taylor = 0, t_exact = 0;
    auto group_qs = [&](size_t g) {
      std::vector<quant::quantizer*> qs;
      for (int li : ctl.group(g).layers) {
        const quant::qlayer& l = net.layers()[static_cast<size_t>(li)];
        if (ctl.group(g).weights) {
          qs.push_back(l.wq);
        } else {
          qs.push_back(l.aq);
          for (auto* q : l.a_follow) qs.push_back(q);
        }
      }
      return qs;
    };
    for (int bi = 0; bi < batches && ld.next(b); ++bi) {
      const tensor_view x(b.images.data(), {b.n, b.h, b.w, b.c});
      // Plain step (timing reference).
      double t0 = mixq_bench::wall_seconds();
      t.clear();
      model.zero_grad();
      const auto st = quant::qat_train_step(model, t, x, b.labels.data(), 0.0f, nullptr, 0);
      t_plain += mixq_bench::wall_seconds() - t0;
      // Taylor: probes on every group.
      t0 = mixq_bench::wall_seconds();
      t.clear();
      model.zero_grad();
      for (size_t g = 0; g < G; ++g)
        for (auto* q : group_qs(g)) q->set_probe(bits - 1, b.n);
      quant::qat_train_step(model, t, x, b.labels.data(), 0.0f, nullptr, 0);
      t_taylor += mixq_bench::wall_seconds() - t0;
      std::vector<double> f(G, 0), s2(G, 0);
      for (size_t g = 0; g < G; ++g)
        for (auto* q : group_qs(g)) {
          f[g] += q->estimate_first();
          s2[g] += q->estimate_second();
          q->set_probe(0, 0);
        }
      // Exact: one no-grad forward per group at bits - 1 (batch-norm buffers restored).
      t0 = mixq_bench::wall_seconds();
      std::vector<std::pair<std::string, tensor*>> bufs = model.named_buffers();
      std::vector<tensor> saved;
      for (auto& e : bufs) saved.push_back(*e.second);
      for (size_t g = 0; g < G; ++g) {
        for (auto* q : group_qs(g)) q->set_bits(bits - 1);
        t.clear();
        double lg = 0;
        {
          no_grad_guard ng(t);
          var logits = model.forward(t, t.input(x));
          lg = softmax_cross_entropy(logits, b.labels.data()).value()[0];
        }
        for (auto* q : group_qs(g)) q->set_bits(bits);
        for (size_t i = 0; i < bufs.size(); ++i) bufs[i].second->view().copy_from(saved[i].view());
        const double d = lg - st.loss;
        exact[g] += d / batches;
        first[g] += f[g] / batches;
        both[g] += (f[g] + s2[g]) / batches;
        sign_first += (d > 0) == (f[g] > 0);
        sign_both += (d > 0) == (f[g] + s2[g] > 0);
        ++pairs;
      }
      t_exact += mixq_bench::wall_seconds() - t0;
      std::fprintf(stderr, "batch %d: loss %.4f\n", bi, st.loss);
    }
    std::printf("%-22s %12s %12s %12s\n", "group", "exact D", "taylor 1st", "1st+2nd");
    for (size_t g = 0; g < G; ++g)
      std::printf("%-22s %12.5f %12.5f %12.5f\n", ctl.group(g).label.c_str(), exact[g], first[g],
                  both[g]);
    std::printf(
        "{\"bits\":%d,\"quant\":\"%s\",\"batches\":%d,\"warm_steps\":%d,\"groups\":%zu,"
        "\"pearson_first\":%.3f,\"pearson_both\":%.3f,\"spearman_first\":%.3f,"
        "\"spearman_both\":%.3f,\"sum_ratio_both\":%.3f,\"sign_agree_first\":%.3f,"
        "\"sign_agree_both\":%.3f,\"step_ms\":%.1f,\"taylor_step_ms\":%.1f,"
        "\"exact_all_groups_ms\":%.1f}\n",
        bits, qname.c_str(), batches, warm, G, pearson(exact, first), pearson(exact, both),
        spearman(exact, first), spearman(exact, both), sum(both) / sum(exact),
        static_cast<double>(sign_first) / pairs, static_cast<double>(sign_both) / pairs,
        1e3 * t_plain / batches, 1e3 * t_taylor / batches, 1e3 * t_exact / batches);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "adaqat_estimate: error: %s\n", e.what());
    return 2;
  }
}
