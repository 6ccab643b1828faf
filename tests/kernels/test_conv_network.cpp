// A small ResNet-style integer network run end to end on the fast paths
// (stem conv -> basic block with identity shortcut -> stride-2 block with
// option-A shortcut -> global average pool -> linear), each conv writing
// straight into the interior of the next layer's padded buffer, compared
// with the same network composed from the scalar references on unpadded
// tensors. Checks the chaining contract: padded outputs keep the next
// layer's zero halo, residuals read the block input in place.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <mixq/kernels/conv/qlinear.hpp>
#include <mixq/kernels/pool/global_avgpool.hpp>

#include "kernels_test_util.hpp"

namespace {

using namespace ktest;

struct layer {
  mk::conv_geometry g;
  std::vector<std::int8_t> w;
  requant_set q;
  int b_out;
};

layer make_layer(std::int64_t batch, std::int64_t hw, std::int64_t c_in, std::int64_t c_out,
                 int stride, int bw, int ba_in, int b_out, rng& r) {
  layer L;
  L.g.batch = batch;
  L.g.h = L.g.w = hw;
  L.g.c_in = c_in;
  L.g.c_out = c_out;
  L.g.kernel = 3;
  L.g.stride = stride;
  L.w = random_weights(c_out * 9 * c_in, bw, r);
  L.q = make_requant(c_out, 9 * c_in, bw, ba_in, b_out, r);
  L.q.zp = 0;  // ReLU outputs: zero point 0, so the zero halo stays valid
  L.b_out = b_out;
  return L;
}

// Reference conv on an unpadded tensor; residual (optional) described semantically.
std::vector<std::uint8_t> ref_conv(const layer& L, const std::vector<std::uint8_t>& x,
                                   const mk::ref::conv_ref_residual& res) {
  const mk::ref::conv_ref_shape s(L.g);
  std::vector<std::int64_t> acc(static_cast<size_t>(L.g.pixels_out() * L.g.c_out));
  mk::ref::qconv_ref_acc(s, x.data(), L.w.data(), acc.data());
  std::vector<std::uint8_t> out(acc.size());
  mk::requant_params rq{L.q.bias.data(), L.q.qm.data(), L.q.rshift.data(), L.q.zp,
                        L.q.lo,          L.q.hi,        L.q.offset.data()};
  mk::ref::qconv_ref_requantize(s, acc.data(), rq, res, out.data());
  return out;
}

// A shortcut conv's bias: minus the mean accumulator of each channel on its
// input x, so its outputs straddle the clamp at 0 and the residual (a few
// output steps) visibly moves them, whatever the random draws.
void center_bias(layer& L, const std::vector<std::uint8_t>& x) {
  const mk::ref::conv_ref_shape s(L.g);
  const std::int64_t pixels = L.g.pixels_out();
  std::vector<std::int64_t> acc(static_cast<size_t>(pixels * L.g.c_out));
  mk::ref::qconv_ref_acc(s, x.data(), L.w.data(), acc.data());
  for (std::int64_t n = 0; n < L.g.c_out; ++n) {
    std::int64_t sum = 0;
    for (std::int64_t p = 0; p < pixels; ++p) sum += acc[size_t(p * L.g.c_out + n)];
    L.q.bias[size_t(n)] = static_cast<std::int32_t>(-sum / pixels);
  }
}

std::vector<std::uint8_t> padded_buffer(const mk::conv_geometry& g_in) {
  return std::vector<std::uint8_t>(static_cast<size_t>(mk::qconv_input_bytes(g_in)), 0);
}

}  // namespace

TEST_CASE("integer ResNet-style network: fast chain == reference chain, every ISA") {
  for (mk::isa l : all_isas) {
    if (!isa_or_skip(l, "integer network")) continue;
    for (auto [bw, ba] : {std::pair<int, int>{8, 8}, {4, 4}, {2, 3}, {3, 2}, {6, 5}}) {
      rng r(900u + 10u * bw + ba);
      INFO(std::string(mk::isa_name(l)) << " W" << bw << "A" << ba);
      const std::int64_t B = 2, HW = 8;
      // stem 3 -> 8 (8-bit input image codes), block 8 -> 8 (identity),
      // down block 8 -> 16 stride 2 (option A), pool, linear 16 -> 10
      layer stem = make_layer(B, HW, 3, 8, 1, 8, 8, ba, r);
      layer c1 = make_layer(B, HW, 8, 8, 1, bw, ba, ba, r);
      layer c2 = make_layer(B, HW, 8, 8, 1, bw, ba, ba, r);
      layer d1 = make_layer(B, HW, 8, 16, 2, bw, ba, ba, r);
      layer d2 = make_layer(B, HW / 2, 16, 16, 1, bw, ba, ba, r);
      // Shortcut convs: a residual weight of 0.5..1 output steps per code, as
      // in a real ResNet (block input and output on similar scales). With an
      // int32 res_qm that needs rshift <= 31, so the conv multiplier is kept
      // at rshift = 31 with a qm below 2^30 (fewer mantissa bits, same value).
      auto to_shift31 = [](requant_set& q) {
        for (size_t n = 0; n < q.qm.size(); ++n) {
          const int sh = q.rshift[n];
          q.qm[n] = sh > 31 ? static_cast<std::int32_t>(q.qm[n] >> (sh - 31)) : q.qm[n];
          q.rshift[n] = sh > 31 ? 31 : sh;
        }
      };
      to_shift31(c2.q);
      to_shift31(d2.q);
      std::vector<std::int32_t> res_qm_id(8), res_qm_a(16, 0);
      for (size_t n = 0; n < 8; ++n)
        res_qm_id[n] = static_cast<std::int32_t>((std::int64_t(1) << (c2.q.rshift[n] - 1)) +
                                                 r.uniform(0, 1 << 20));
      for (int n = 4; n < 12; ++n)  // option A: channels 4..11
        res_qm_a[size_t(n)] = static_cast<std::int32_t>(
            (std::int64_t(1) << (d2.q.rshift[size_t(n)] - 1)) + r.uniform(0, 1 << 20));
      c2.q.res_qm = res_qm_id;
      d2.q.res_qm = res_qm_a;
      const auto img = random_codes(B * HW * HW * 3, 8, r);

      // ---- reference chain (unpadded tensors) ----
      const mk::ref::conv_ref_residual none{};
      const auto r_stem = ref_conv(stem, img, none);
      const auto r_c1 = ref_conv(c1, r_stem, none);
      center_bias(c2, r_c1);
      mk::ref::conv_ref_residual rid{r_stem.data(), HW, HW, 8, 1, 0, res_qm_id.data()};
      const auto r_c2 = ref_conv(c2, r_c1, rid);
      const auto r_d1 = ref_conv(d1, r_c2, none);
      center_bias(d2, r_d1);
      mk::ref::conv_ref_residual ra{r_c2.data(), HW, HW, 8, 2, 4, res_qm_a.data()};
      const auto r_d2 = ref_conv(d2, r_d1, ra);
      // the shortcuts change the result (so the residual paths are really
      // tested); with 2-bit outputs most codes sit at a clamp, so only A >= 3
      if (ba >= 3) {
        CHECK(ref_conv(c2, r_c1, none) != r_c2);
        CHECK(ref_conv(d2, r_d1, none) != r_d2);
      }

      // ---- fast chain (padded buffers, outputs written into the next input) ----
      auto p_img = make_padded(img, B, HW, HW, 3, 0);
      auto p_stem = padded_buffer(c1.g);  // input of c1 (and the block's shortcut)
      auto p_c1 = padded_buffer(c2.g);
      auto p_c2 = padded_buffer(d1.g);  // input of d1 (and the option-A shortcut)
      auto p_d1 = padded_buffer(d2.g);
      std::vector<std::uint8_t> out_d2(
          static_cast<size_t>(B * (HW / 2) * (HW / 2) * 16 + mk::a_overread_bytes));
      auto run = [&](const layer& L, const std::vector<std::uint8_t>& in, std::uint8_t* out_base,
                     bool padded, const mk::conv_residual* res) {
        const bool stem_layer = L.g.c_in == 3;  // 8-bit weights on 8-bit image codes
        const auto wts =
            mk::qconv_pack(L.g, L.w.data(), stem_layer ? 8 : bw, stem_layer ? 8 : ba, l);
        mk::requant_params rq{L.q.bias.data(), L.q.qm.data(), L.q.rshift.data(), L.q.zp,
                              L.q.lo,          L.q.hi,        L.q.offset.data()};
        const mk::conv_output out =
            padded ? mk::padded_output(L.g, out_base) : mk::dense_output(L.g, out_base);
        mk::qconv2d(L.g, wts, in.data(), rq, res, out);
      };
      auto interior = [](const mk::conv_geometry& g_in, std::vector<std::uint8_t>& buf) {
        mk::conv_residual res;
        const std::int64_t wp = g_in.w + 2;
        res.data = buf.data() + (wp + 1) * g_in.c_in;
        res.img_stride = (g_in.h + 2) * wp * g_in.c_in;
        res.row_stride = wp * g_in.c_in;
        res.pix_stride = g_in.c_in;
        return res;
      };
      run(stem, p_img, p_stem.data(), true, nullptr);
      run(c1, p_stem, p_c1.data(), true, nullptr);
      mk::conv_residual sid = interior(c1.g, p_stem);
      sid.res_qm = res_qm_id.data();
      run(c2, p_c1, p_c2.data(), true, &sid);
      run(d1, p_c2, p_d1.data(), true, nullptr);
      mk::conv_residual sa = interior(d1.g, p_c2);
      sa.stride = 2;
      sa.ch_lo = 4;
      sa.res_qm = res_qm_a.data();
      run(d2, p_d1, out_d2.data(), false, &sa);

      // the last conv output matches the reference chain
      std::int64_t bad = 0;
      for (size_t i = 0; i < r_d2.size(); ++i) bad += out_d2[i] != r_d2[i];
      // every padded buffer kept its zero halo
      std::int64_t halo = 0;
      auto check_halo = [&](const mk::conv_geometry& g, const std::vector<std::uint8_t>& buf) {
        const std::int64_t hp = g.h + 2, wp = g.w + 2;
        for (std::int64_t i = 0; i < g.batch; ++i)
          for (std::int64_t y = 0; y < hp; ++y)
            for (std::int64_t x = 0; x < wp; ++x)
              if (y == 0 || x == 0 || y == hp - 1 || x == wp - 1)
                for (std::int64_t c = 0; c < g.c_in; ++c)
                  halo += buf[size_t(((i * hp + y) * wp + x) * g.c_in + c)] != 0;
      };
      check_halo(c1.g, p_stem);
      check_halo(c2.g, p_c1);
      check_halo(d1.g, p_c2);
      check_halo(d2.g, p_d1);

      // pool + linear on both chains
      mk::avgpool_params pp;
      pp.batch = B;
      pp.h = pp.w = HW / 2;
      pp.c = 16;
      pp.pix_stride = 16;
      pp.row_stride = (HW / 2) * 16;
      pp.img_stride = (HW / 2) * (HW / 2) * 16;
      pp.ld_out = 16;
      const auto pm = mk::quantize_multiplier(1.0 / double(pp.h * pp.w));
      pp.qm = pm.qm;
      pp.rshift = pm.rshift;
      std::vector<std::uint8_t> feat(size_t(B * 16 + mk::a_overread_bytes), 0),
          feat_ref(size_t(B * 16), 0);
      mk::global_avgpool_u8(out_d2.data(), pp, feat.data());
      mk::ref::global_avgpool_u8(r_d2.data(), pp, feat_ref.data());
      const auto wfc = random_weights(10 * 16, 8, r);
      std::vector<std::int32_t> bias(10);
      for (auto& v : bias) v = r.uniform(-500, 500);
      const auto pw = mk::pack_weights(wfc.data(), 10, 1, 16, 8, 8, l);
      std::vector<std::int32_t> logits(size_t(B * 10)), logits_ref(size_t(B * 10));
      mk::qlinear(feat.data(), B, 16, pw, mk::requant_params{bias.data()}, logits.data(), nullptr,
                  10);
      mk::ref::qlinear(feat_ref.data(), B, 16, wfc.data(), 10, 16, mk::requant_params{bias.data()},
                       logits_ref.data(), nullptr, 10);

      CHECK(bad == 0);
      CHECK(halo == 0);
      CHECK(std::vector<std::uint8_t>(feat.begin(), feat.begin() + B * 16) == feat_ref);
      CHECK(logits == logits_ref);
      // the network is not degenerate: the last feature map is not constant
      std::int64_t distinct = 0;
      for (size_t i = 1; i < r_d2.size(); ++i) distinct += r_d2[i] != r_d2[0];
      CHECK(distinct > 0);
    }
  }
}
