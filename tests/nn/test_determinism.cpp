// Results do not depend on the number of threads: conv weight gradients are
// reduced over fixed chunks of images and batch-norm sums over fixed row
// blocks, both in a fixed order, so a training step is bitwise reproducible.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/nn/nn.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

using namespace mixq;

namespace {
std::vector<float> step_gradients(int threads, std::vector<float>* logits_out) {
#ifdef _OPENMP
  const int prev = omp_get_max_threads();
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
  nn::resnet_cifar m;
  tensor x({20, 32, 32, 3});  // 20 images: 3 chunks of 8, the last one partial
  rng r(9);
  fill_normal(x.view(), r, 0.0f, 1.0f);
  std::vector<int32_t> labels(20);
  for (auto& l : labels) l = static_cast<int32_t>(r.below(10));
  tape t;
  var logits = m.forward(t, t.input(x.view()));
  logits_out->assign(logits.value().data(), logits.value().data() + logits.value().numel());
  backward(softmax_cross_entropy(logits, labels.data(), 0.1f));
  std::vector<float> g;
  for (parameter* p : m.parameters())
    g.insert(g.end(), p->grad.data(), p->grad.data() + p->numel());
  for (auto& b : m.named_buffers())
    g.insert(g.end(), b.second->data(), b.second->data() + b.second->numel());
#ifdef _OPENMP
  omp_set_num_threads(prev);
#endif
  return g;
}
}  // namespace

TEST_CASE("a ResNet20 training step is bitwise identical with 1, 2 and 3 threads") {
  std::vector<float> l1, l2, l3;
  std::vector<float> g1 = step_gradients(1, &l1);
  std::vector<float> g2 = step_gradients(2, &l2);
  std::vector<float> g3 = step_gradients(3, &l3);
  REQUIRE(g1.size() == g2.size());
  REQUIRE(g1.size() == g3.size());
  CHECK(std::memcmp(l1.data(), l2.data(), l1.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(g1.data(), g2.data(), g1.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(g1.data(), g3.data(), g1.size() * sizeof(float)) == 0);
}
