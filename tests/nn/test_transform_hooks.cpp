// nn's generic hooks: transforms adopted by conv2d / linear / resnet_cifar,
// with their state under full names, and module::adopt.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "mixq/autograd/autograd.hpp"
#include "mixq/nn/nn.hpp"

using namespace mixq;

namespace {
// y = a * x with a learned scalar a (a parameter) and a call counter.
struct scale_by : nn::transform {
  parameter a{"a", shape{}, false};
  int calls = 0;
  explicit scale_by(float v) {
    a.value[0] = v;
    register_parameter("a", a);
  }
  var apply(tape& t, var x) override {
    ++calls;
    var y = t.new_value(x.shape(), false);
    for (int64_t i = 0; i < x.value().numel(); ++i) y.value()[i] = a.value[0] * x.value()[i];
    return y;
  }
};
bool has_key(nn::module& m, const std::string& k) {
  for (auto& e : m.state_dict())
    if (e.first == k) return true;
  return false;
}
}  // namespace

TEST_CASE("conv2d and linear hooks transform input and weight; state under the chosen name") {
  rng r(1);
  nn::conv2d c(3, 4, 3, nn::conv2d_options{1, 1, false}, r);
  tensor x({1, 5, 5, 3});
  fill_uniform(x.view(), r, -1.0f, 1.0f);
  tape t;
  no_grad_guard ng(t);
  tensor plain = tensor::from_view(c.forward(t, t.input(x.view())).value());
  auto& in =
      static_cast<scale_by&>(c.set_input_transform("in_t", std::make_unique<scale_by>(2.0f)));
  c.set_weight_transform("w_t", std::make_unique<scale_by>(3.0f));
  var used;
  var y = c.forward(t, t.input(x.view()), &used);
  CHECK(in.calls == 1);
  CHECK(used.value()[0] == 2.0f * x[0]);
  for (int64_t i = 0; i < plain.numel(); ++i)
    CHECK(y.value()[i] == doctest::Approx(6.0f * plain[i]).epsilon(1e-5));
  CHECK(has_key(c, "in_t.a"));
  CHECK(has_key(c, "w_t.a"));
  CHECK_THROWS_WITH_AS(c.set_input_transform("x", std::make_unique<scale_by>(1.0f)),
                       doctest::Contains("already installed"), mixq::error);
  nn::linear l(4, 2, true, r);
  l.set_weight_transform("w_t", std::make_unique<scale_by>(0.0f));
  tensor v({3, 4}, 1.0f);
  var o = l.forward(t, t.input(v.view()));
  for (int64_t i = 0; i < o.value().numel(); ++i) CHECK(o.value()[i] == l.bias.value[i % 2]);
}

TEST_CASE("module::adopt: a child added to a registered module gets the full dotted names") {
  nn::resnet_cifar m;
  nn::conv2d& c = m.block(1, 0).conv2;
  CHECK(c.prefix() == "layer2.0.conv2.");
  c.set_weight_transform("wq", std::make_unique<scale_by>(1.0f));
  CHECK(has_key(m, "layer2.0.conv2.wq.a"));
  bool found = false;
  for (parameter* p : m.parameters()) found = found || p->name == "layer2.0.conv2.wq.a";
  CHECK(found);
  m.set_pool_input_transform("pool_t", std::make_unique<scale_by>(1.0f));
  CHECK(has_key(m, "pool_t.a"));
  CHECK_THROWS_WITH_AS(m.adopt("pool_t", std::make_unique<scale_by>(1.0f)),
                       doctest::Contains("already exists"), mixq::error);
}
