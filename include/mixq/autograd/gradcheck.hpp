#pragma once
// gradcheck: compare an op's backward against central finite differences.
//
// Usage:
//   tensor x = ...;                       // inputs the check may perturb
//   auto rep = gradcheck([](tape& t, const std::vector<var>& in) {
//     return relu(in[0]);
//   }, {x.view()});
//   CHECK(rep.ok);
//
// The function f builds an output y from the input vars. The check draws a
// fixed random cotangent r of y's shape and compares, for every element x_j
// of every checked input,
//   analytic  d/dx_j sum(r * y)  (one backward(y, r))
//   numeric   (L(x_j + h) - L(x_j - h)) / (2h),  L = sum(r * y) in double
// with the tolerance |a - n| <= atol + rtol * max(|a|, |n|). Forward passes
// are FP32, so h must be large enough for FP32 rounding (default 1e-2;
// truncation error is O(h^2) for smooth ops and zero for linear ones).
// Inputs of piecewise ops (ReLU) must stay more than h away from the kinks.
// f may be called many times; it must be a pure function of the inputs
// (e.g. batch-norm in training mode: running stats change, outputs do not).
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "mixq/autograd/backward.hpp"
#include "mixq/core/init.hpp"

namespace mixq {

struct gradcheck_options {
  float step = 1e-2f;
  double atol = 1e-3;
  double rtol = 1e-2;
  uint64_t seed = 12345;
  std::vector<bool> wrt;  // which inputs to check (default: all)
};

struct gradcheck_report {
  bool ok = true;
  int64_t checked = 0;
  double max_abs_error = 0.0;
  // The worst element (largest error relative to its tolerance).
  int input = -1;
  int64_t index = -1;
  double analytic = 0.0;
  double numeric = 0.0;
  std::string message;
};

template <class F>
gradcheck_report gradcheck(F&& f, const std::vector<tensor_view>& inputs,
                           const gradcheck_options& o = {}) {
  MIXQ_CHECK(!inputs.empty(), "gradcheck: no inputs");
  MIXQ_CHECK(o.wrt.empty() || o.wrt.size() == inputs.size(), "gradcheck: wrt has ", o.wrt.size(),
             " entries for ", inputs.size(), " inputs");
  auto checked = [&](size_t i) { return o.wrt.empty() || o.wrt[i]; };
  gradcheck_report rep;
  tape t;
  // Analytic gradients.
  std::vector<var> in;
  for (size_t i = 0; i < inputs.size(); ++i) in.push_back(t.input(inputs[i], checked(i)));
  var y = f(t, in);
  MIXQ_CHECK(y.valid() && y.t == &t, "gradcheck: f must return a var of the given tape");
  tensor r(y.shape());
  rng gen(o.seed);
  fill_uniform(r.view(), gen, -1.0f, 1.0f);
  backward(y, r.data());
  std::vector<tensor> analytic;
  for (size_t i = 0; i < inputs.size(); ++i) {
    tensor g(inputs[i].shape());
    tensor_view gv = in[i].grad();
    if (checked(i) && !gv.empty()) g.view().copy_from(gv);
    analytic.push_back(std::move(g));
  }
  // Numeric gradients.
  tape tn;
  tn.set_grad_enabled(false);
  auto objective = [&]() {
    tn.clear();
    std::vector<var> v;
    for (const tensor_view& x : inputs) v.push_back(tn.input(x));
    var out = f(tn, v);
    MIXQ_CHECK(out.shape() == r.shape(), "gradcheck: f's output shape changed from ", r.shape(),
               " to ", out.shape());
    double s = 0.0;
    const float* p = out.value().data();
    for (int64_t j = 0; j < r.numel(); ++j) s += static_cast<double>(r[j]) * p[j];
    return s;
  };
  double worst = -1.0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!checked(i)) continue;
    const tensor_view& x = inputs[i];
    for (int64_t j = 0; j < x.numel(); ++j) {
      const float orig = x[j];
      x[j] = orig + o.step;
      const double lp = objective();
      x[j] = orig - o.step;
      const double lm = objective();
      x[j] = orig;
      const double h2 = static_cast<double>(orig + o.step) - static_cast<double>(orig - o.step);
      const double num = (lp - lm) / h2;
      const double ana = analytic[i][j];
      const double err = std::fabs(num - ana);
      const double tol = o.atol + o.rtol * std::fmax(std::fabs(num), std::fabs(ana));
      rep.checked++;
      if (err > rep.max_abs_error) rep.max_abs_error = err;
      if (err / tol > worst) {
        worst = err / tol;
        rep.input = static_cast<int>(i);
        rep.index = j;
        rep.analytic = ana;
        rep.numeric = num;
      }
      if (err > tol) rep.ok = false;
    }
  }
  std::ostringstream os;
  os << (rep.ok ? "gradcheck passed" : "gradcheck FAILED") << ": " << rep.checked
     << " elements, max abs error " << rep.max_abs_error << "; worst at input " << rep.input
     << " element " << rep.index << ": analytic " << rep.analytic << ", numeric " << rep.numeric;
  rep.message = os.str();
  return rep;
}

}  // namespace mixq
