// MultiQuant supernet (quant/multiquant/): slicing changes only quantization,
// a slice computes what a fixed-bit QAT model with the same weights and
// quantizer parameters computes, per-bit batch norm, configuration files and
// their errors, export of a slice.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "../common/datasets.hpp"
#include "../common/errors.hpp"
#include "../common/files.hpp"
#include "mixq/deploy/export.hpp"
#include "mixq/nn/nn.hpp"
#include "multiquant_test_util.hpp"
#include "mixq/quant/multiquant/multiquant.hpp"
#include "mixq/quant/quant.hpp"

using namespace mixq;
using namespace mixq::quant;

namespace {
tensor logits_of(nn::resnet_cifar& m, const tensor& x) {
  tape t;
  no_grad_guard ng(t);
  return tensor::from_view(m.forward(t, t.input(x.view())).value());
}
bool same_bits(const tensor& a, const tensor& b) {
  return a.numel() == b.numel() &&
         std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * sizeof(float)) == 0;
}
// A per-layer configuration with every width used somewhere.
bit_config mixed(const supernet& s) {
  bit_config c = s.uniform(8);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s.free_w(i)) c.w[i] = 2 + static_cast<int>((3 * i) % 7);
    if (s.free_a(i)) c.a[i] = 2 + static_cast<int>((5 * i + 1) % 7);
  }
  return c;
}
// Copies the LSQ steps the slice `c` of `s` uses into the fixed quantizers
// of `net` (set at the same widths first), so both hold the same parameters.
void copy_steps(const supernet& s, const bit_config& c, qnet& net) {
  const qnet& sn = s.net();
  REQUIRE(sn.size() == net.size());
  size_t k = 0;
  for (size_t i = 0; i < sn.size(); ++i) {
    const qlayer& from = sn.layers()[i];
    qlayer& to = net.layers()[i];
    const bool searchable = k < s.size() && s.at(k).index == i;
    if (searchable) {
      to.wq->set_bits(c.w[k]);
      if (to.aq && s.free_a(k)) to.set_bits_a(c.a[k]);
    }
    auto* fw = dynamic_cast<lsq_weight*>(
        searchable && s.free_w(k) ? &static_cast<switchable_weight*>(from.wq)->active() : from.wq);
    auto* tw = dynamic_cast<lsq_weight*>(to.wq);
    REQUIRE(fw != nullptr);
    REQUIRE(tw != nullptr);
    for (int64_t ch = 0; ch < fw->step.numel(); ++ch) tw->set_step(ch, fw->step_at(ch, fw->bits()));
    std::vector<std::pair<act_quantizer*, act_quantizer*>> acts;
    if (from.aq && dynamic_cast<input_quant*>(from.aq) == nullptr)
      acts.emplace_back(from.aq, to.aq);
    for (size_t f = 0; f < from.a_follow.size(); ++f)
      acts.emplace_back(from.a_follow[f], to.a_follow[f]);
    for (auto& pr : acts) {
      act_quantizer* fa = pr.first;
      if (auto* sw = dynamic_cast<switchable_act*>(fa)) fa = &sw->active();
      auto* la = dynamic_cast<lsq_act*>(fa);
      auto* ta = dynamic_cast<lsq_act*>(pr.second);
      REQUIRE(la != nullptr);
      REQUIRE(ta != nullptr);
      ta->set_step(la->step_at(la->bits()));
    }
    if (searchable) ++k;
  }
}
}  // namespace

TEST_CASE("supernet: searchable layers, per-bit quantizer keys, uniform slices") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet s(m, supernet_options{});
  CHECK(s.size() == 6);  // ResNet8: 3 blocks x 2 convs; first/last fixed at 8 bits
  CHECK(s.names().front() == "layer1.0.conv1");
  bool has_b2 = false, has_b8 = false;
  for (auto& e : m.state_dict()) {
    has_b2 = has_b2 || e.first == "layer1.0.conv1.weight_quant.b2.step";
    has_b8 = has_b8 || e.first == "layer3.0.conv2.input_quant.b8.step";
  }
  CHECK(has_b2);
  CHECK(has_b8);
  supernet_options stream;  // a residual stream of its own width is a fixed-bit option
  stream.quant.residual_bits = 8;
  nn::resnet_cifar ms(mixq_test::resnet8());
  CHECK_THROWS_WITH_AS(supernet(ms, stream), doctest::Contains("residual bits 8"), mixq::error);
  s.set_uniform(3);
  for (size_t i = 0; i < s.net().size(); ++i) {
    const qlayer& l = s.net().layers()[i];
    const bool inner = l.role == layer_role::inner;
    CHECK(l.bits_w() == (inner ? 3 : 8));
    CHECK(l.bits_a() == (inner ? 3 : 8));
  }
  // Under `same` the classifier and the first conv's weights switch too; the
  // network input stays 8-bit and a configuration must say so.
  nn::resnet_cifar m2(mixq_test::resnet8());
  supernet_options o;
  o.quant.first = o.quant.last = edge_policy::same;
  supernet s2(m2, o);
  CHECK(s2.size() == 8);
  CHECK(s2.free_w(0));
  CHECK_FALSE(s2.free_a(0));
  const bit_config u = s2.uniform(4);
  CHECK(u.a[0] == 8);
  CHECK(u.w[0] == 4);
  s2.set_bits(u);
  CHECK(s2.net().layers().back().bits_a() == 4);
  CHECK(s2.net().layers().back().a_follow[0]->bits() == 4);  // the pool input follows
  bit_config bad = u;
  bad.a[0] = 4;
  const std::string e = mixq_test::error_of([&] { s2.set_bits(bad); });
  CHECK(mixq_test::contains(e, "conv1"));
  CHECK(mixq_test::contains(e, "fixed at 8"));
}

TEST_CASE("supernet: slicing changes only quantization (FP weights shared, bit for bit)") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet s(m, supernet_options{});
  const tensor x = mixq_test::random_images(4, 11, 16);
  init_quantizers(s, x.view());
  std::vector<const float*> ptrs;
  for (parameter* p : m.parameters()) ptrs.push_back(p->value.data());
  const nn::state_dict before = m.state_dict();
  const bit_config cs[] = {s.uniform(2), s.uniform(8), mixed(s), s.uniform(5)};
  std::vector<tensor> outs;
  m.eval();
  for (const bit_config& c : cs) {
    s.set_bits(c);
    CHECK(s.current() == c);
    outs.push_back(logits_of(m, x));
  }
  // Slices really differ (the checks below could fail), and a slice seen
  // before gives the same output, bit for bit.
  CHECK_FALSE(same_bits(outs[0], outs[1]));
  CHECK_FALSE(same_bits(outs[1], outs[2]));
  s.set_bits(cs[0]);
  CHECK(same_bits(logits_of(m, x), outs[0]));
  m.train();  // training mode: batch statistics, the running statistics move
  for (const bit_config& c : cs) {
    s.set_bits(c);
    logits_of(m, x);
  }
  const nn::state_dict after = m.state_dict();
  REQUIRE(before.size() == after.size());
  int compared = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    const std::string& k = before[i].first;
    const bool switch_state = k.size() >= 5 && k.compare(k.size() - 5, 5, ".bits") == 0;
    const bool bn_stats = k.find("running_") != std::string::npos ||
                          k.find("num_batches_tracked") != std::string::npos;
    if (switch_state || bn_stats) continue;  // the widths themselves; train-mode statistics
    CHECK_MESSAGE(same_bits(before[i].second, after[i].second), k);
    ++compared;
  }
  CHECK(compared > 40);
  // The parameters are the same tensors (nothing was reallocated or copied in).
  size_t j = 0;
  for (parameter* p : m.parameters()) CHECK(p->value.data() == ptrs[j++]);
}

TEST_CASE("init_quantizers: the 8-bit slice starts as a fixed-bit W8A8 model initialised alone") {
  // Every quantizer of the 8-bit slice, switching or fixed (the classifier's
  // input), initialises from the activations of the 8-bit slice itself, in
  // training mode (batch statistics), as a fixed-bit run's first training
  // step initialises them; the running statistics are left as they were.
  for (int per_channel = 0; per_channel < 2; ++per_channel) {
    CAPTURE(per_channel);
    nn::resnet_cifar a(mixq_test::resnet8()), b(mixq_test::resnet8());
    supernet_options o;
    o.quant.per_channel = per_channel == 1;
    supernet s(a, o);
    const tensor x = mixq_test::random_images(4, 5, 16);
    init_quantizers(s, x.view());
    CHECK(a.is_training());
    // The batch norms' running statistics are those of before (a new model's).
    for (nn::batch_norm2d* bn : active_batch_norms(a)) {
      CHECK(bn->num_batches_tracked[0] == 0.0f);
      for (int64_t c = 0; c < bn->running_mean.numel(); ++c) {
        CHECK(bn->running_mean[c] == 0.0f);
        CHECK(bn->running_var[c] == 1.0f);
      }
    }
    s.set_uniform(8);
    qat_config qc = o.quant;
    qc.bits_w = qc.bits_a = 8;
    qnet net = quantize(b, qc, 16, 16);
    b.train();
    const tensor want = logits_of(b, x);  // its first forward initialises its quantizers
    CHECK(same_bits(logits_of(a, x), want));
  }
}

TEST_CASE("supernet: a slice computes what the fixed-bit QAT model with its quantizers computes") {
  for (int per_channel = 0; per_channel < 2; ++per_channel) {
    CAPTURE(per_channel);
    nn::resnet_cifar a(mixq_test::resnet8()),
        b(mixq_test::resnet8());  // same seed: same FP32 weights
    supernet_options o;
    o.quant.per_channel = per_channel == 1;
    supernet s(a, o);
    const tensor x = mixq_test::random_images(4, 5, 16);
    init_quantizers(s, x.view());
    const bit_config c = mixed(s);
    s.set_bits(c);
    qat_config qc = o.quant;
    qnet net = quantize(b, qc, 16, 16);
    copy_steps(s, c, net);
    {  // the input grid is fixed: nothing to copy; both initialised identically
      a.eval();
      b.eval();
      CHECK(same_bits(logits_of(a, x), logits_of(b, x)));
      a.train();
      b.train();
      CHECK(same_bits(logits_of(a, x), logits_of(b, x)));
    }
    // Gradients of the FP32 weights agree too.
    tape ta, tb;
    a.zero_grad();
    b.zero_grad();
    std::vector<int32_t> labels = {1, 2, 3, 4};
    backward(softmax_cross_entropy(a.forward(ta, ta.input(x.view())), labels.data()));
    backward(softmax_cross_entropy(b.forward(tb, tb.input(x.view())), labels.data()));
    CHECK(same_bits(a.block(1, 0).conv1.weight.grad, b.block(1, 0).conv1.weight.grad));
    CHECK(same_bits(a.fc().weight.grad, b.fc().weight.grad));
  }
}

TEST_CASE("supernet: per-bit batch norm routes by the layer's weight width") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet_options o;
  o.per_bit_bn = true;
  supernet s(m, o);
  bool has = false;
  for (auto& e : m.state_dict()) has = has || e.first == "layer2.0.bn1.bits4.running_var";
  CHECK(has);
  bit_config c = s.uniform(6);
  c.w[2] = 4;  // layer2.0.conv1
  s.set_bits(c);
  nn::batch_norm2d& bn = m.block(1, 0).bn1;
  CHECK(&bn.active() != &bn);
  CHECK(bn.active().prefix() == "layer2.0.bn1.bits4.");
  CHECK(m.block(1, 0).bn2.active().prefix() == "layer2.0.bn2.bits6.");
  CHECK(&m.bn1.active() == &m.bn1);  // the stem's conv is fixed: shared batch norm
  // A training forward moves the statistics of the routed module only.
  const tensor before4 = tensor::from_view(bn.active().running_mean.view());
  const tensor shared = tensor::from_view(bn.running_mean.view());
  m.train();
  logits_of(m, mixq_test::random_images(4, 9, 16));
  CHECK_FALSE(same_bits(before4, bn.active().running_mean));
  CHECK(same_bits(shared, bn.running_mean));
  // Recalibration: the cumulative average over the calibration batches, the
  // parameters and momentum unchanged.
  const io::image_dataset ds = mixq_test::synthetic_images(8, 16, 16, 3, 2);
  const image_batches calib = make_batches(ds, 8, 4);
  REQUIRE(calib.images.size() == 2);
  const float mom = bn.active().momentum();
  recalibrate_batch_norm(s, calib);
  const tensor once = tensor::from_view(bn.active().running_mean.view());
  recalibrate_batch_norm(s, calib);
  CHECK(same_bits(once, bn.active().running_mean));  // reset first: no memory of the past
  CHECK(bn.active().momentum() == mom);
}

TEST_CASE("supernet: per-bit batch norm by activation width routes by the conv's input width") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet_options o;
  o.per_bit_bn = true;
  o.per_bit_bn_by = supernet_options::bn_by::act;
  supernet s(m, o);
  bit_config c = s.uniform(6);
  c.w[2] = 4;  // layer2.0.conv1's weights: not what selects its batch norm
  c.a[2] = 3;  // its input: selects it
  s.set_bits(c);
  CHECK(m.block(1, 0).bn1.active().prefix() == "layer2.0.bn1.bits3.");
  CHECK(m.block(1, 0).bn2.active().prefix() == "layer2.0.bn2.bits6.");
  c.w[2] = 7;
  s.set_bits(c);
  CHECK(m.block(1, 0).bn1.active().prefix() == "layer2.0.bn1.bits3.");
  c.a[2] = 5;
  s.set_bits(c);
  CHECK(m.block(1, 0).bn1.active().prefix() == "layer2.0.bn1.bits5.");
  CHECK(&m.bn1.active() == &m.bn1);  // the stem's input is fixed at 8 bits: shared batch norm
}

TEST_CASE("bit configuration files: round trip and one clear error per bad field") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet s(m, supernet_options{});
  mixq_test::temp_dir dir;
  const std::string path = dir.path() + "/w3.bits";
  const bit_config c = mixed(s);
  save_bit_config(path, s.names(), c, "searched at 3 bits\nsecond line");
  CHECK(load_bit_config(path, s.names()) == c);

  auto write = [&](const std::string& text) {
    std::ofstream(path) << text;
    return mixq_test::error_of([&] { load_bit_config(path, s.names()); });
  };
  std::string lines;
  for (size_t i = 0; i < s.size(); ++i) lines += s.names()[i] + " 4 4\n";
  // wrong layer count
  std::string e = write("mixq-bits 1\nlayers 5\n" + lines);
  CHECK(mixq_test::contains(e, path));
  CHECK(mixq_test::contains(e, "'layers'"));
  CHECK(mixq_test::contains(e, "6 searchable layers"));
  // the right count declared, a line missing
  e = write("mixq-bits 1\nlayers 6\n" + lines.substr(0, lines.rfind("layer3")));
  CHECK(mixq_test::contains(e, "5 layer lines, expected 6"));
  // bits outside 2..8, and not a number
  std::string bad = lines;
  bad.replace(bad.find(" 4 4"), 4, " 9 4");
  e = write("mixq-bits 1\nlayers 6\n" + bad);
  CHECK(mixq_test::contains(e, path + ":3"));
  CHECK(mixq_test::contains(e, "'w bits' is '9'"));
  bad = lines;
  bad.replace(bad.rfind(" 4\n"), 3, " x\n");
  e = write("# comment\nmixq-bits 1\nlayers 6\n" + bad);
  CHECK(mixq_test::contains(e, path + ":9"));
  CHECK(mixq_test::contains(e, "'a bits' is 'x'"));
  // another layer order
  bad = lines;
  bad.replace(0, std::string("layer1.0.conv1").size(), "layer1.0.conv2");
  e = write("mixq-bits 1\nlayers 6\n" + bad);
  CHECK(mixq_test::contains(e, "expected 'layer1.0.conv1'"));
  // not a configuration
  e = write("hello\n");
  CHECK(mixq_test::contains(e, "mixq-bits 1"));
  // in memory: set_bits refuses a wrong length or width with the same words
  bit_config shortc = c;
  shortc.w.pop_back();
  shortc.a.pop_back();
  CHECK(mixq_test::contains(mixq_test::error_of([&] { s.set_bits(shortc); }),
                            "one per searchable layer (6)"));
  bit_config one = c;
  one.w[1] = 1;
  CHECK(
      mixq_test::contains(mixq_test::error_of([&] { s.set_bits(one); }), "layer 1 weight bits 1"));
}

TEST_CASE("bit configuration keys: the search tables' form parses back, bad ones are named") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet s(m, supernet_options{});
  const bit_config c = mixed(s);
  CHECK(parse_bit_config(c.str(), s.size(), "t.csv:2") == c);
  CHECK(parse_bit_config("w:2,3,4,5,6,7 a:8,7,6,5,4,3", 6, "x").a[0] == 8);
  auto err = [&](const std::string& text) {
    return mixq_test::error_of([&] { parse_bit_config(text, s.size(), "t.csv:2"); });
  };
  std::string e = err("w:4,4,4,4,4,4");
  CHECK(mixq_test::contains(e, "t.csv:2: configuration 'w:4,4,4,4,4,4': expected two parts"));
  e = err("w:4,4,4,4,4,9 a:4,4,4,4,4,4");
  CHECK(mixq_test::contains(e, "'9' in 'w:' is not an integer in [2, 8]"));
  e = err("w:4,4,4,4,4,4 b:4,4,4,4,4,4");
  CHECK(mixq_test::contains(e, "no 'a:' part"));
  e = err("w:4,4,,4,4,4 a:4,4,4,4,4,4");
  CHECK(mixq_test::contains(e, "'' in 'w:'"));
  e = err("w:4,4,4,4,4 a:4,4,4,4,4");
  CHECK(mixq_test::contains(e, "one per searchable layer (6)"));
  e = err("w:4,4,4,4,4,4 a:4,4,4,4,4,4 w:2");
  CHECK(mixq_test::contains(e, "expected two parts"));
}

TEST_CASE("supernet: a slice exports to the integer runtime at its widths") {
  nn::resnet_cifar m(mixq_test::resnet8());
  supernet s(m, supernet_options{});
  init_quantizers(s, mixq_test::random_images(4, 2, 32).view());
  const bit_config c = mixed(s);
  s.set_bits(c);
  const deploy::model dm = deploy::export_resnet(m);
  // conv layers after the stem: the searchable layers in order
  size_t k = 0;
  for (const auto& layer : dm.layers) {
    const auto* cv = std::get_if<deploy::conv_layer>(&layer);
    if (!cv) continue;
    // one more bit only where a negated channel holds -2^(b-1)
    if (k > 0) CHECK((cv->w_bits == c.w[k - 1] || cv->w_bits == c.w[k - 1] + 1));
    if (k < s.size()) CHECK(cv->out_bits == c.a[k]);  // the grid of the layer reading it
    ++k;
  }
  CHECK(k == s.size() + 1);
}
