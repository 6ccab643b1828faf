// batch_norm2d against a float64 reference: the statistics and the backward
// sums must be accurate to float rounding of the results (their sums run in
// double), and the same bits at any thread count.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/tensors.hpp"
#include "mixq/autograd/autograd.hpp"
#include "mixq/core/parallel.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace mixq;
using mixq_test::random_tensor;

namespace {
struct bn_result {
  std::vector<float> y, dx, dgamma, dbeta, running_mean, running_var;
};

// One training-mode forward and backward of batch_norm2d with upstream gradient dy.
bn_result run_bn(const tensor& x, const tensor& gamma, const tensor& beta, const tensor& dy,
                 bool relu) {
  const int64_t c = x.dim(x.rank() - 1);
  parameter g("gamma", shape{c}, false), b("beta", shape{c}, false);
  g.value.view().copy_from(gamma.view());
  b.value.view().copy_from(beta.view());
  tensor rm(shape{c}), rv(shape{c}, 1.0f);
  tape t;
  var xv = t.input(x.view(), true);
  batch_norm2d_args a;
  a.relu = relu;
  var y = batch_norm2d(xv, t.param(g), t.param(b), rm.view(), rv.view(), a);
  backward(y, dy.data());
  bn_result r;
  r.y.assign(y.value().data(), y.value().data() + y.value().numel());
  r.dx.assign(xv.grad().data(), xv.grad().data() + x.numel());
  r.dgamma.assign(g.grad.data(), g.grad.data() + c);
  r.dbeta.assign(b.grad.data(), b.grad.data() + c);
  r.running_mean.assign(rm.data(), rm.data() + c);
  r.running_var.assign(rv.data(), rv.data() + c);
  return r;
}

// Largest |got - want| over the largest |want| of each quantity, with the
// reference in double.
struct bn_errors {
  double y = 0, dx = 0, dgamma = 0, dbeta = 0;
};

bn_errors reference_errors(const tensor& x, const tensor& gamma, const tensor& beta,
                           const tensor& dy, bool relu, const bn_result& got) {
  const int64_t c = x.dim(x.rank() - 1);
  const int64_t rows = x.numel() / c;
  const double eps = 1e-5;
  std::vector<double> mean(static_cast<size_t>(c), 0.0), var(static_cast<size_t>(c), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < c; ++j) mean[static_cast<size_t>(j)] += x[r * c + j];
  for (auto& m : mean) m /= static_cast<double>(rows);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < c; ++j) {
      const double d = x[r * c + j] - mean[static_cast<size_t>(j)];
      var[static_cast<size_t>(j)] += d * d;
    }
  for (auto& v : var) v /= static_cast<double>(rows);
  std::vector<double> y(static_cast<size_t>(x.numel())), g(y.size()), xh(y.size());
  std::vector<double> sg(static_cast<size_t>(c), 0.0), sgx(static_cast<size_t>(c), 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < c; ++j) {
      const size_t i = static_cast<size_t>(r * c + j), k = static_cast<size_t>(j);
      xh[i] = (x[r * c + j] - mean[k]) / std::sqrt(var[k] + eps);
      const double pre = gamma[j] * xh[i] + beta[j];
      y[i] = relu ? std::max(pre, 0.0) : pre;
      g[i] = (relu && pre <= 0.0) ? 0.0 : static_cast<double>(dy[r * c + j]);
      sg[k] += g[i];
      sgx[k] += g[i] * xh[i];
    }
  auto rel = [](const std::vector<float>& a, const std::vector<double>& b) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < b.size(); ++i) {
      worst = std::max(worst, std::fabs(a[i] - b[i]));
      scale = std::max(scale, std::fabs(b[i]));
    }
    return worst / scale;
  };
  std::vector<double> dx(y.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < c; ++j) {
      const size_t i = static_cast<size_t>(r * c + j), k = static_cast<size_t>(j);
      const double n = static_cast<double>(rows);
      dx[i] = gamma[j] / std::sqrt(var[k] + eps) * (g[i] - sg[k] / n - xh[i] * sgx[k] / n);
    }
  bn_errors e;
  e.y = rel(got.y, y);
  e.dx = rel(got.dx, dx);
  e.dgamma = rel(got.dgamma, sgx);
  e.dbeta = rel(got.dbeta, sg);
  return e;
}

struct bn_case {
  tensor x, gamma, beta, dy;
};

// Activations with a channel offset (as after a conv with bias, or a ReLU),
// 64 x 16 x 16 x 16: 16384 rows per channel.
bn_case make_case(uint64_t seed) {
  bn_case k{random_tensor({64, 16, 16, 16}, seed, -1.0f, 1.0f),
            random_tensor({16}, seed + 1, 0.5f, 1.5f), random_tensor({16}, seed + 2, -0.5f, 0.5f),
            random_tensor({64, 16, 16, 16}, seed + 3, -1.0f, 1.0f)};
  for (int64_t i = 0; i < k.x.numel(); ++i) k.x[i] += 0.75f + 0.125f * static_cast<float>(i % 16);
  return k;
}
}  // namespace

TEST_CASE("batch_norm2d: statistics and backward sums as accurate as float rounding allows") {
  for (bool relu : {false, true}) {
    CAPTURE(relu);
    const bn_case k = make_case(relu ? 40 : 20);
    const bn_result got = run_bn(k.x, k.gamma, k.beta, k.dy, relu);
    const bn_errors e = reference_errors(k.x, k.gamma, k.beta, k.dy, relu, got);
    MESSAGE("relative errors vs float64 (relu " << relu << "): y " << e.y << ", dx " << e.dx
                                                << ", dgamma " << e.dgamma << ", dbeta "
                                                << e.dbeta);
    // dgamma and dbeta are sums over 16384 rows: summed in double they are
    // exact to their float rounding (2-3e-8 here); float sums over blocks of
    // 256 rows gave 2.3-3.5e-7 on this case. y and dx carry the float
    // rounding of the elementwise ops (1-2e-7).
    CHECK(e.y < 1e-6);
    CHECK(e.dx < 1e-6);
    CHECK(e.dgamma < 1e-7);
    CHECK(e.dbeta < 1e-7);
  }
}

#ifdef _OPENMP
TEST_CASE("batch_norm2d: the same bits at 1 and 2 threads") {
  const bn_case k = make_case(60);
  const int before = omp_get_max_threads();
  omp_set_num_threads(1);
  const bn_result one = run_bn(k.x, k.gamma, k.beta, k.dy, true);
  omp_set_num_threads(2);
  const bn_result two = run_bn(k.x, k.gamma, k.beta, k.dy, true);
  omp_set_num_threads(before);
  auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  CHECK(same(one.y, two.y));
  CHECK(same(one.dx, two.dx));
  CHECK(same(one.dgamma, two.dgamma));
  CHECK(same(one.dbeta, two.dbeta));
  CHECK(same(one.running_mean, two.running_mean));
  CHECK(same(one.running_var, two.running_var));
}
#endif
