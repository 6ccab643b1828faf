// Border-tap skipping in qconv2d (qconv_weights::skip_border_taps): border
// pixels of a 3x3 pad-1 conv sum only the taps inside the image. The tests
// show (1) the result equals the zero-padded reference, (2) the skipped halo
// bytes are really not read (garbage there changes nothing with skipping on,
// and changes the result with it off), for every kernel family that claims
// tap subsets, stride 1 and 2, maps down to 1 pixel wide or high.
#include <doctest/doctest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "kernels_test_util.hpp"

namespace {

using namespace ktest;

struct border_case {
  std::int64_t batch, h, w, c_in, c_out;
  int stride;
};

/// Writes `v` into the halo bytes that only skipped taps read: the top and
/// bottom halo rows (all columns) and the left/right halo columns at padded
/// rows 3 .. h-2 (the corner pixels, which keep their kernel columns, read
/// the left/right halo only at padded rows 1, 2, h-1 and h).
void poison_halo(std::vector<std::uint8_t>& xp, const border_case& bc, std::uint8_t v) {
  const std::int64_t hp = bc.h + 2, wp = bc.w + 2, c = bc.c_in;
  for (std::int64_t i = 0; i < bc.batch; ++i)
    for (std::int64_t y = 0; y < hp; ++y)
      for (std::int64_t x = 0; x < wp; ++x) {
        const bool row = y == 0 || y == hp - 1;
        const bool col = (x == 0 || x == wp - 1) && y >= 3 && y <= bc.h - 2;
        if (row || col)
          for (std::int64_t ch = 0; ch < c; ++ch)
            xp[static_cast<size_t>(((i * hp + y) * wp + x) * c + ch)] = v;
      }
}

struct outcome {
  std::int64_t mismatches_skip = 0;   // skipping on, poisoned halo, vs reference
  std::int64_t mismatches_full = 0;   // skipping off, poisoned halo, vs reference
  std::int64_t mismatches_clean = 0;  // skipping off, zero halo, vs reference
};

outcome run_border(const border_case& bc, mk::kernel_id id, int bw, int ba, std::uint64_t seed) {
  rng r(seed);
  const mk::conv_geometry g = make_geometry(bc.batch, bc.h, bc.w, bc.c_in, bc.c_out, 3, bc.stride);
  const std::int64_t P = g.pixels_out();
  const auto x = random_codes(g.batch * g.h * g.w * g.c_in, ba, r);
  auto xp = make_padded(x, g.batch, g.h, g.w, g.c_in, 0);
  const auto w = random_weights(g.c_out * 9 * g.c_in, bw, r);
  mk::qconv_weights wts = mk::qconv_pack_for(id, g, w.data(), bw, ba);
  const requant_set q = make_requant(g.c_out, 9 * g.c_in, bw, ba, ba, r);

  const mk::ref::conv_ref_shape rs(g);
  std::vector<std::int64_t> acc(static_cast<size_t>(P * g.c_out));
  mk::ref::qconv_ref_acc(rs, x.data(), w.data(), acc.data());
  std::vector<std::uint8_t> want(static_cast<size_t>(P * g.c_out));
  mk::requant_params rrq{q.bias.data(), q.qm.data(), q.rshift.data(), q.zp,
                         q.lo,          q.hi,        q.offset.data()};
  mk::ref::qconv_ref_requantize(rs, acc.data(), rrq, mk::ref::conv_ref_residual{}, want.data());

  mk::requant_params rq{q.bias.data(), q.qm.data(), q.rshift.data(), q.zp,
                        q.lo,          q.hi,        q.offset.data()};
  auto count = [&](bool skip) {
    wts.skip_border_taps = skip;
    std::vector<std::uint8_t> out(want.size(), 0xCD);
    mk::qconv2d(g, wts, xp.data(), rq, nullptr, mk::dense_output(g, out.data()));
    std::int64_t bad = 0;
    for (size_t i = 0; i < out.size(); ++i) bad += out[i] != want[i];
    return bad;
  };
  outcome o;
  o.mismatches_clean = count(false);
  poison_halo(xp, bc, static_cast<std::uint8_t>((1 << ba) - 1));
  o.mismatches_skip = count(true);
  o.mismatches_full = count(false);
  return o;
}

}  // namespace

TEST_CASE("qconv2d border-tap skipping: exact, and the skipped halo is never read") {
  const border_case cases[] = {
      {2, 7, 9, 5, 7, 1}, {2, 7, 9, 5, 12, 2},    {1, 8, 8, 16, 32, 2},
      {3, 1, 5, 3, 6, 1}, {3, 5, 1, 4, 6, 1},     {2, 2, 2, 6, 5, 1},
      {2, 1, 1, 7, 9, 2}, {1, 16, 16, 16, 16, 1}, {9, 8, 8, 32, 64, 1},
  };
  const std::pair<int, int> pairs[] = {{8, 8}, {4, 4}, {2, 2}, {3, 6}};
  std::size_t count = 0;
  const mk::kernel_info* table = mk::kernel_table(&count);
  int families = 0;
  for (std::size_t k = 0; k < count; ++k) {
    const mk::kernel_info& ki = table[k];
    if (!mk::kernel_runnable(ki.id)) {
      MESSAGE("SKIPPED kernel " << std::string(ki.name) << ": not available on this CPU/build");
      continue;
    }
    if (!mk::kernel_supports_tap_subset(ki.id)) {
      MESSAGE(std::string(ki.name) << ": no tap subsets, conv runs all taps");
      continue;
    }
    ++families;
    std::int64_t full_differs = 0;
    std::uint64_t seed = 17;
    for (const auto& bc : cases)
      for (auto [bw, ba] : pairs) {
        if (!mk::kernel_supports(ki.id, bw, ba)) continue;
        const outcome o = run_border(bc, ki.id, bw, ba, seed++);
        std::ostringstream os;
        os << ki.name << " W" << bw << "A" << ba << " b" << bc.batch << " " << bc.h << "x" << bc.w
           << " " << bc.c_in << "->" << bc.c_out << " s" << bc.stride;
        CAPTURE(os.str());
        CHECK(o.mismatches_clean == 0);
        CHECK(o.mismatches_skip == 0);
        full_differs += o.mismatches_full;
      }
    // Without skipping the poisoned halo reaches the outputs: proof that the
    // equality above comes from not reading it.
    CHECK_MESSAGE(full_differs > 0, std::string(ki.name) << ": poisoned halo never mattered");
  }
  CHECK(families > 0);
}
