#pragma once
// Configurations under a budget: the Monte Carlo prior of MultiQuant / EQ-Net
// and the uniform baseline (docs/multiquant.md section 4).
//
// Budget. Either average bits (mean weight bits AND mean activation bits of
// the inner layers, supernet.hpp's weighting, each <= value) or BitOPs per
// image (<= value). A search targets the band (value - window, value]:
// candidates are resampled until they fall in it, as EQ-Net does with a
// window of 0.5 bit. For a BitOPs budget the band is measured in effective
// bits e = sqrt(BitOPs / MACs), which is monotone in BitOPs.
//
// Monte Carlo prior (EQ-Net build_bw_dataset + transition matrix, cited there
// from MultiQuant): draw mc_samples configurations with every free width
// uniform over the bit list, bin them by their metric in steps of `bin`
// (0.2 bit), and count, per bin, how often layer l used width b, separately
// for weights (binned by mean weight bits) and activations (by mean
// activation bits; both by effective bits under a BitOPs budget). To sample
// under a target t, draw each layer's widths from the counts of t's bin (the
// nearest non-empty bin when it is empty): configurations whose mean lands
// near t, with the per-layer mix that uniform draws of that mean have.
//
// Uniform (the ablation baseline): every free width uniform over the bit
// list, resampled while outside the band. Far below the mean of uniform draws
// (5 bits for 2..8) that almost never succeeds, so after max_tries draws the
// last one is repaired: while over the budget, a random free width that can
// still go down moves one step down the bit list. Both samplers count every
// configuration drawn (draws()).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mixq/core/rng.hpp"
#include "mixq/quant/multiquant/supernet.hpp"

namespace mixq {
namespace quant {

enum class budget_kind { bits, bitops };
enum class prior_kind { monte_carlo, uniform };

inline budget_kind parse_budget_kind(const std::string& s) {
  if (s == "bits") return budget_kind::bits;
  if (s == "bitops") return budget_kind::bitops;
  MIXQ_CHECK(false, "budget kind '", s, "': expected bits or bitops");
  return budget_kind::bits;
}
inline prior_kind parse_prior_kind(const std::string& s) {
  if (s == "mc") return prior_kind::monte_carlo;
  if (s == "uniform") return prior_kind::uniform;
  MIXQ_CHECK(false, "sampling prior '", s, "': expected mc or uniform");
  return prior_kind::monte_carlo;
}

struct search_budget {
  budget_kind kind = budget_kind::bits;
  double value = 3.0;   // mean bits, or BitOPs per image
  double window = 0.5;  // the band (value - window, value], in bits
};

struct sampler_options {
  std::vector<int> bits = {2, 3, 4, 5, 6, 7, 8};  // ascending
  prior_kind prior = prior_kind::monte_carlo;
  int64_t mc_samples = 200000;
  double bin = 0.2;
  int max_tries = 2000;  // per candidate, before the uniform sampler repairs
  uint64_t seed = 1;
};

class config_sampler {
 public:
  config_sampler(const supernet& s, budget_kind kind, const sampler_options& o)
      : s_(&s), kind_(kind), o_(o) {
    MIXQ_CHECK(!o.bits.empty() && o.bin > 0 && o.max_tries >= 1 && o.mc_samples >= 1,
               "config_sampler: bad options");
    for (size_t i = 0; i < o.bits.size(); ++i) {
      check_bits(o.bits[i], "sampler bit list entry");
      MIXQ_CHECK(i == 0 || o.bits[i] > o.bits[i - 1], "sampler: bit list must be ascending");
    }
    macs_ = static_cast<double>(s.net().macs());
    nbins_ = static_cast<size_t>(std::ceil((max_bits + 1.0) / o.bin));
    if (o.prior == prior_kind::monte_carlo) build_prior();
  }

  budget_kind kind() const { return kind_; }
  const sampler_options& options() const { return o_; }
  int64_t draws() const { return draws_; }

  // The budget metric(s): bits: mean w / mean a; bitops: effective bits (both).
  double metric_w(const bit_config& c) const {
    return kind_ == budget_kind::bits ? s_->mean_bits_w(c) : effective_bits(c);
  }
  double metric_a(const bit_config& c) const {
    return kind_ == budget_kind::bits ? s_->mean_bits_a(c) : effective_bits(c);
  }
  double effective_bits(const bit_config& c) const { return std::sqrt(s_->bitops(c) / macs_); }
  // The budget's upper end in metric units.
  double top(const search_budget& b) const {
    return b.kind == budget_kind::bits ? b.value : std::sqrt(b.value / macs_);
  }
  bool within(const bit_config& c, const search_budget& b) const {
    if (b.kind == budget_kind::bitops) return s_->bitops(c) <= b.value;
    return s_->mean_bits_w(c) <= b.value + 1e-9 && s_->mean_bits_a(c) <= b.value + 1e-9;
  }
  // The uniform configurations (every free layer one width of the bit list)
  // within budget b, widest first.
  std::vector<bit_config> uniform_within(const search_budget& b) const {
    std::vector<bit_config> out;
    for (auto it = o_.bits.rbegin(); it != o_.bits.rend(); ++it)
      if (within(s_->uniform(*it), b)) out.push_back(s_->uniform(*it));
    return out;
  }
  bool in_band(const bit_config& c, const search_budget& b) const {
    const double lo = top(b) - b.window;
    return within(c, b) && metric_w(c) > lo && metric_a(c) > lo;
  }

  // Width of free entry `layer` (weights or activations) for a target metric t.
  int draw_width(size_t layer, bool weights, double t, rng& r) const {
    const uint32_t nb = static_cast<uint32_t>(o_.bits.size());
    if (o_.prior == prior_kind::uniform) return o_.bits[r.below(nb)];
    const std::vector<double>& row = table(weights, t, layer);
    double total = 0;
    for (double v : row) total += v;
    double u = static_cast<double>(r.uniform()) * total;
    for (size_t k = 0; k < row.size(); ++k) {
      u -= row[k];
      if (u < 0) return o_.bits[k];
    }
    return o_.bits.back();
  }

  // A configuration in the budget's band (or, failing that after max_tries,
  // a repaired one within the budget).
  bit_config sample(const search_budget& b, rng& r) {
    bit_config c = s_->uniform(o_.bits.back());
    const double hi = top(b);
    for (int tries = 0; tries < o_.max_tries; ++tries) {
      const double t = hi - b.window * static_cast<double>(r.uniform());
      for (size_t i = 0; i < s_->size(); ++i) {
        if (s_->free_w(i)) c.w[i] = draw_width(i, true, t, r);
        if (s_->free_a(i)) c.a[i] = draw_width(i, false, t, r);
      }
      ++draws_;
      if (in_band(c, b)) return c;
    }
    repair(c, b, r);
    return c;
  }

  // Lowers random free widths one step down the bit list until c is within
  // the budget (or nothing can go lower).
  void repair(bit_config& c, const search_budget& b, rng& r) const {
    while (!within(c, b)) {
      std::vector<std::pair<size_t, bool>> down;  // (layer, weights?)
      const bool w_over = b.kind == budget_kind::bitops || s_->mean_bits_w(c) > b.value;
      const bool a_over = b.kind == budget_kind::bitops || s_->mean_bits_a(c) > b.value;
      for (size_t i = 0; i < s_->size(); ++i) {
        if (w_over && s_->free_w(i) && c.w[i] > o_.bits.front()) down.emplace_back(i, true);
        if (a_over && s_->free_a(i) && c.a[i] > o_.bits.front()) down.emplace_back(i, false);
      }
      if (down.empty()) return;
      const auto pick = down[r.below(static_cast<uint32_t>(down.size()))];
      int& v = pick.second ? c.w[pick.first] : c.a[pick.first];
      v = step_down(v);
    }
  }

 private:
  int step_down(int v) const {
    int best = o_.bits.front();
    for (int b : o_.bits)
      if (b < v) best = b;
    return best;
  }
  size_t bin_of(double m) const {
    const double k = std::floor(m / o_.bin);
    return k < 0 ? 0 : (k >= static_cast<double>(nbins_) ? nbins_ - 1 : static_cast<size_t>(k));
  }
  // counts_[kind][bin][layer][width index]
  void build_prior() {
    const size_t L = s_->size(), B = o_.bits.size();
    for (auto& t : counts_)
      t.assign(nbins_, std::vector<std::vector<double>>(L, std::vector<double>(B, 0.0)));
    rng r(derive_seed(o_.seed, 0x6d63ull));
    bit_config c = s_->uniform(o_.bits.back());
    std::vector<size_t> wi(L, 0), ai(L, 0);
    const uint32_t nb = static_cast<uint32_t>(B);
    for (int64_t n = 0; n < o_.mc_samples; ++n) {
      for (size_t i = 0; i < L; ++i) {
        if (s_->free_w(i)) c.w[i] = o_.bits[wi[i] = r.below(nb)];
        if (s_->free_a(i)) c.a[i] = o_.bits[ai[i] = r.below(nb)];
      }
      const size_t bw = bin_of(metric_w(c)), ba = bin_of(metric_a(c));
      for (size_t i = 0; i < L; ++i) {
        if (s_->free_w(i)) counts_[0][bw][i][wi[i]] += 1.0;
        if (s_->free_a(i)) counts_[1][ba][i][ai[i]] += 1.0;
      }
    }
  }
  const std::vector<double>& table(bool weights, double t, size_t layer) const {
    const auto& tab = counts_[weights ? 0 : 1];
    const size_t b0 = bin_of(t);
    for (size_t d = 0; d < nbins_; ++d) {  // nearest non-empty bin, lower first
      for (int sgn = -1; sgn <= 1; sgn += 2) {
        const long k = static_cast<long>(b0) + sgn * static_cast<long>(d);
        if (k < 0 || k >= static_cast<long>(nbins_)) continue;
        const auto& row = tab[static_cast<size_t>(k)][layer];
        double total = 0;
        for (double v : row) total += v;
        if (total > 0) return row;
      }
    }
    return tab[b0][layer];
  }

  const supernet* s_;
  budget_kind kind_;
  sampler_options o_;
  double macs_ = 1;
  size_t nbins_ = 1;
  std::vector<std::vector<std::vector<double>>> counts_[2];
  int64_t draws_ = 0;
};

}  // namespace quant
}  // namespace mixq
