#pragma once
// Lowest-Random-Highest (LRH) co-training of a multi-bit supernet with online
// adaptive labels: the body of one MultiQuant training step
// (docs/multiquant.md section 3).
//
// One step on one batch (the optimizer step is the caller's, after):
//   slices   sampling lrh:    H = uniform highest width (8) on the labels,
//                             R_1..R_k random per-layer slices (k = random_slices),
//                             L = uniform lowest width (2)
//            sampling random: k + 2 random per-layer slices (the same number of
//                             forwards), ordered by BitOPs, highest first
//   for each slice j in that order:
//            set_bits; clear the tape; forward (train mode, batch statistics);
//            loss_j (below); backward; gradients accumulate in the parameters
// Each random slice draws its free widths uniformly from `bits`, from a
// generator seeded by (seed, global step, slice), so the slices of a step
// depend only on the step: a resumed run draws the same ones. What one draw
// covers (random_draw, ours; docs/multiquant.md 3):
//   per_layer (default, EQ-Net's): every free weight and activation width
//             on its own, so a layer sees a given width in about 1 step in
//             |bits| and a uniform slice 3..7 is almost never drawn whole;
//   tied:     one width per layer for its weights and its input activations
//             (w = a, the pairs the uniform slices hold), widths mixed across
//             layers;
//   uniform:  one width for every free layer, so the random slice is a
//             uniform slice between the lowest and the highest (the sandwich
//             rule of slimmable networks) and every uniform slice that is
//             reported is one the step trains.
//
// Progressive shrinking (option, ours; shrink_steps S > 0): the widths a step
// may use start at the two highest of `bits` and reach down one more width
// every S / (m - 1) steps (m = bits.size()), all of them from step S on:
//   lowest index at step t = max(0, m - 2 - floor(t (m - 1) / S))
// The lowest slice is the uniform slice of that width, and the random slices
// draw from the widths at or above it. The lowest widths, which pull the
// shared weights hardest away from the FP32 model, join once the higher ones
// have adapted (docs/multiquant.md); once-for-all networks shrink their
// supernets in the same order.
//
// Losses (soft_target.hpp; slice 0 always uses the hard label):
//   gpg   (default, EQ-Net eq. 7): loss_j = lambda KL(p_{j-1} || p_j)
//                                        + (1 - lambda) CE(p_j, y), lambda = 0.5
//   pskd  (variant, PS-KD form):   loss_j = CE(q, p_j), q = (1 - a_t) onehot(y) + a_t p_0,
//                                  a_t = alpha_T * t / T (t = global step, T = total_steps)
//   hard  (ablation):              loss_j = CE(p_j, y)
// teachers are this step's own, detached probabilities. The step's objective
// is the plain sum of the slices' losses.
//
// The step allocates nothing after its first call (buffers are kept).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "mixq/autograd/autograd.hpp"
#include "mixq/core/rng.hpp"
#include "mixq/quant/multiquant/soft_target.hpp"
#include "mixq/quant/multiquant/supernet.hpp"

namespace mixq {
namespace quant {

enum class label_mode { gpg, pskd, hard };
enum class slice_sampling { lrh, random };
enum class random_draw { per_layer, tied, uniform };

inline label_mode parse_label_mode(const std::string& s) {
  if (s == "gpg") return label_mode::gpg;
  if (s == "pskd") return label_mode::pskd;
  if (s == "hard") return label_mode::hard;
  MIXQ_CHECK(false, "label mode '", s, "': expected gpg, pskd or hard");
  return label_mode::gpg;
}
inline slice_sampling parse_slice_sampling(const std::string& s) {
  if (s == "lrh") return slice_sampling::lrh;
  if (s == "random") return slice_sampling::random;
  MIXQ_CHECK(false, "slice sampling '", s, "': expected lrh or random");
  return slice_sampling::lrh;
}
inline random_draw parse_random_draw(const std::string& s) {
  if (s == "per-layer") return random_draw::per_layer;
  if (s == "tied") return random_draw::tied;
  if (s == "uniform") return random_draw::uniform;
  MIXQ_CHECK(false, "random draw '", s, "': expected per-layer, tied or uniform");
  return random_draw::per_layer;
}
inline const char* name_of(random_draw d) {
  return d == random_draw::per_layer ? "per-layer" : (d == random_draw::tied ? "tied" : "uniform");
}
inline const char* name_of(label_mode m) {
  return m == label_mode::gpg ? "gpg" : (m == label_mode::pskd ? "pskd" : "hard");
}
inline const char* name_of(slice_sampling s) { return s == slice_sampling::lrh ? "lrh" : "random"; }

struct lrh_options {
  std::vector<int> bits = {2, 3, 4, 5, 6, 7, 8};  // candidate widths, ascending
  int random_slices = 1;                          // k
  slice_sampling sampling = slice_sampling::lrh;
  random_draw draw = random_draw::per_layer;  // what one random slice's draw covers
  label_mode labels = label_mode::gpg;
  float lambda = 0.5f;       // gpg: weight of the KL term
  float pskd_alpha = 0.8f;   // pskd: alpha_T
  int64_t total_steps = 0;   // pskd: T (the ramp's length)
  int64_t shrink_steps = 0;  // progressive shrinking over this many steps (0: off)
  uint64_t seed = 1;

  void validate() const {
    MIXQ_CHECK(!bits.empty(), "lrh: empty bit list");
    for (size_t i = 0; i < bits.size(); ++i) {
      check_bits(bits[i], "lrh bit list entry");
      MIXQ_CHECK(i == 0 || bits[i] > bits[i - 1],
                 "lrh: bit list must be ascending without repeats");
    }
    MIXQ_CHECK(random_slices >= 0 && random_slices <= 16, "lrh: random slices ", random_slices,
               ", expected 0..16");
    MIXQ_CHECK(lambda >= 0.0f && lambda <= 1.0f, "lrh: lambda ", lambda, ", expected in [0, 1]");
    MIXQ_CHECK(pskd_alpha >= 0.0f && pskd_alpha <= 1.0f, "lrh: PS-KD alpha ", pskd_alpha,
               ", expected in [0, 1]");
    MIXQ_CHECK(labels != label_mode::pskd || total_steps > 0,
               "lrh: the PS-KD ramp needs total_steps > 0");
    MIXQ_CHECK(shrink_steps >= 0, "lrh: shrink steps ", shrink_steps, ", expected >= 0");
  }
  int slices() const { return random_slices + 2; }
  // Index in `bits` of the lowest width step t may use (above).
  int lowest_index(int64_t t) const {
    const int m = static_cast<int>(bits.size());
    if (shrink_steps <= 0 || m < 2 || t >= shrink_steps) return 0;
    const int64_t done = t * (m - 1) / shrink_steps;
    return std::max(0, m - 2 - static_cast<int>(done));
  }
};

// Per-step report: the objective and, per role, loss and correct count.
struct lrh_stats {
  double loss = 0;                                      // sum of the slices' losses
  double loss_high = 0, loss_random = 0, loss_low = 0;  // random: mean over the random slices
  int64_t correct_high = 0, correct_low = 0;            // first and last slice
  int64_t count = 0;
};

class lrh_trainer {
 public:
  lrh_trainer(supernet& s, const lrh_options& o) : s_(&s), o_(o) {
    o_.validate();
    high_ = s.uniform(o_.bits.back());
    for (int b : o_.bits) lows_.push_back(s.uniform(b));
    configs_.assign(static_cast<size_t>(o_.slices()), high_);
  }
  const lrh_options& options() const { return o_; }

  // The j-th random configuration of step `global_step` (free widths uniform
  // over the bit list, drawn per o_.draw; fixed parts at their widths),
  // written into c. (Under progressive shrinking, over the widths the step
  // may use.)
  void draw(int64_t global_step, int j, bit_config& c) const {
    rng r(derive_seed(o_.seed, static_cast<uint64_t>(global_step), static_cast<uint64_t>(j)));
    const int lo = o_.lowest_index(global_step);
    const uint32_t nb = static_cast<uint32_t>(o_.bits.size()) - static_cast<uint32_t>(lo);
    const int* from = o_.bits.data() + lo;
    const int one = o_.draw == random_draw::uniform ? from[r.below(nb)] : 0;
    for (size_t i = 0; i < s_->size(); ++i) {
      if (o_.draw == random_draw::per_layer) {
        c.w[i] = s_->free_w(i) ? from[r.below(nb)] : s_->fixed_w(i);
        c.a[i] = s_->free_a(i) ? from[r.below(nb)] : s_->fixed_a(i);
        continue;
      }
      const int b = o_.draw == random_draw::uniform ? one : from[r.below(nb)];
      c.w[i] = s_->free_w(i) ? b : s_->fixed_w(i);
      c.a[i] = s_->free_a(i) ? b : s_->fixed_a(i);
    }
  }

  // The slices of step `global_step`, in training order.
  const std::vector<bit_config>& slices(int64_t global_step) {
    const int n = o_.slices();
    if (o_.sampling == slice_sampling::lrh) {
      configs_[0] = high_;  // same sizes: copies without allocating
      for (int j = 0; j < o_.random_slices; ++j) draw(global_step, j, configs_[1 + j]);
      configs_[static_cast<size_t>(n - 1)] =
          lows_[static_cast<size_t>(o_.lowest_index(global_step))];
    } else {
      for (int j = 0; j < n; ++j) draw(global_step, j, configs_[j]);
      // insertion sort by BitOPs, highest first (stable; swaps do not allocate)
      for (int j = 1; j < n; ++j)
        for (int i = j; i > 0 && s_->bitops(configs_[i]) > s_->bitops(configs_[i - 1]); --i)
          std::swap(configs_[i], configs_[i - 1]);
    }
    return configs_;
  }

  // One step: forward and backward of every slice; gradients accumulated.
  // requires: images [N, H, W, C] and labels stay valid during the call; the
  //           parameters' gradients are zeroed by the caller. Leaves the
  //           supernet at the last slice.
  template <class Model>
  lrh_stats step(Model& model, tape& t, const tensor_view& images, const int32_t* labels,
                 int64_t global_step) {
    const std::vector<bit_config>& cs = slices(global_step);
    const int n = static_cast<int>(cs.size());
    lrh_stats st;
    st.count = images.shape()[0];
    float alpha = 0.0f;
    if (o_.labels == label_mode::pskd)
      alpha = static_cast<float>(
          o_.pskd_alpha *
          std::min(1.0, static_cast<double>(global_step) / static_cast<double>(o_.total_steps)));
    for (int j = 0; j < n; ++j) {
      s_->set_bits(cs[static_cast<size_t>(j)]);
      t.clear();
      var logits = model.forward(t, t.input(images));
      const int64_t nk = logits.value().numel();
      if (static_cast<int64_t>(cur_.size()) < nk) {
        cur_.resize(static_cast<size_t>(nk));
        prev_.resize(static_cast<size_t>(nk));
        first_.resize(static_cast<size_t>(nk));
      }
      const float* teacher = nullptr;
      float w = 0.0f;
      if (j > 0 && o_.labels == label_mode::gpg) {
        teacher = prev_.data();
        w = o_.lambda;
      } else if (j > 0 && o_.labels == label_mode::pskd) {
        teacher = first_.data();
        w = alpha;
      }
      var loss = soft_target_cross_entropy(logits, labels, teacher, w, cur_.data());
      const double lv = loss.value()[0];
      const int64_t correct = (j == 0 || j == n - 1) ? count_correct(logits.value(), labels) : 0;
      backward(loss);
      st.loss += lv;
      if (j == 0) {
        st.loss_high = lv;
        st.correct_high = correct;
        first_.swap(cur_);
        std::copy(first_.begin(), first_.begin() + nk, prev_.begin());
        continue;
      }
      if (j == n - 1) {
        st.loss_low = lv;
        st.correct_low = correct;
      } else {
        st.loss_random += lv / static_cast<double>(n - 2);
      }
      prev_.swap(cur_);
    }
    return st;
  }

 private:
  supernet* s_;
  lrh_options o_;
  bit_config high_;
  std::vector<bit_config> lows_;  // the uniform slice of each width in bits
  std::vector<bit_config> configs_;
  std::vector<float> cur_, prev_, first_;
};

}  // namespace quant
}  // namespace mixq
