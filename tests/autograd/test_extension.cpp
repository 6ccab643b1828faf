// An op defined outside autograd/ through op_kind::extension.
#include <doctest/doctest.h>

#include "mixq/autograd/autograd.hpp"

using namespace mixq;

namespace {
// y = a * x^2 elementwise, a saved as state.
struct scaled_square_saved {
  float a;
};
void scaled_square_backward(tape& t, const node& nd) {
  const scaled_square_saved sv = nd.extension_saved<scaled_square_saved>();
  const int32_t xi = nd.inputs[0];
  if (!t.needs_grad(xi)) return;
  const tensor_view x = t.at(xi).value;
  const float* dy = t.grad_of(nd.output);
  bool acc = false;
  float* dx = t.grad_for_write(xi, &acc);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float g = 2.0f * sv.a * x[i] * dy[i];
    dx[i] = acc ? dx[i] + g : g;
  }
}
var scaled_square(var x, float a) {
  tape& t = *x.t;
  var y = t.new_value(x.shape(), x.requires_grad());
  for (int64_t i = 0; i < x.value().numel(); ++i) y.value()[i] = a * x.value()[i] * x.value()[i];
  if (x.requires_grad() && t.grad_enabled())
    t.record_extension(&scaled_square_backward, {x}, y, scaled_square_saved{a});
  return y;
}
}  // namespace

TEST_CASE("extension ops: plain-function backward, gradchecked, mixed with built-in ops") {
  tensor x({3, 4, 5, 2});
  rng r(1);
  fill_uniform(x.view(), r, -1.0f, 1.0f);
  auto rep = gradcheck(
      [](tape&, const std::vector<var>& v) {
        return global_avg_pool(add(scaled_square(v[0], 1.5f), v[0]));
      },
      {x.view()});
  INFO(rep.message);
  CHECK(rep.ok);
  tape t;
  var y = scaled_square(t.input(x.view(), true), 2.0f);
  REQUIRE(t.nodes().size() == 1);
  CHECK(t.nodes()[0].kind == op_kind::extension);
  CHECK(std::string(op_name(t.nodes()[0].kind)) == "extension");
  CHECK(y.value()[0] == doctest::Approx(2.0f * x[0] * x[0]));
}
