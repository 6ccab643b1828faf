#pragma once
// Evolutionary search for a per-layer configuration under a budget
// (docs/multiquant.md section 4; EQ-Net's EvolutionFinder, whose defaults are
// P = 100, 500 generations, parent ratio 0.25, mutation ratio 0.5,
// mutation probability 0.1).
//
//   population: the seeds within the budget (evaluated first; the example seeds
//               the widest uniform configuration within the budget, so the
//               search never returns less than the uniform slice on its own
//               fitness; EQ-Net seeds nothing), then candidates from the
//               sampler (sampler.hpp), in the budget's band, up to P
//   each generation:
//     parents  = the best parent_ratio * P of the population (fitness order)
//     mutation = mutation_ratio * P children: a random parent, each free width
//                redrawn from the sampler with probability mutate_prob
//     crossover= the rest: two random parents, each width from either (p = 1/2)
//     a child outside the band is redrawn (max_tries), then repaired
//     population = parents + children
// Fitness is the caller's (the example: accuracy of the slice on a held-out
// split of the training set after batch-norm recalibration), evaluated once
// per distinct configuration (a cache; a repeated configuration costs
// nothing). The result keeps every evaluated configuration with its cost,
// the best fitness after each evaluation (search quality against evaluations
// spent), the number of configurations drawn and the wall time.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "mixq/quant/multiquant/sampler.hpp"

namespace mixq {
namespace quant {

struct evolution_options {
  int population = 100;
  int generations = 500;
  double parent_ratio = 0.25;
  double mutation_ratio = 0.5;
  double mutate_prob = 0.1;
  int64_t max_evaluations = 0;  // stop after this many distinct evaluations (0: no limit)
  uint64_t seed = 1;
  std::vector<bit_config> seeds;  // evaluated first where within the budget (see above)

  void validate() const {
    MIXQ_CHECK(population >= 2, "evolution: population ", population, ", expected >= 2");
    MIXQ_CHECK(generations >= 0, "evolution: generations ", generations, ", expected >= 0");
    MIXQ_CHECK(parent_ratio > 0 && parent_ratio <= 1 && mutation_ratio >= 0 &&
                   parent_ratio + mutation_ratio <= 1,
               "evolution: parent ratio ", parent_ratio, " and mutation ratio ", mutation_ratio,
               ": expected parent in (0, 1], mutation >= 0, sum <= 1");
    MIXQ_CHECK(mutate_prob >= 0 && mutate_prob <= 1, "evolution: mutation probability ",
               mutate_prob, ", expected in [0, 1]");
    MIXQ_CHECK(max_evaluations >= 0, "evolution: max evaluations ", max_evaluations);
  }
};

struct evaluated_config {
  bit_config config;
  double fitness = 0;
  double bitops = 0, mean_w = 0, mean_a = 0;
  int64_t index = 0;  // evaluation number (0-based)
};

struct search_result {
  evaluated_config best;
  std::vector<evaluated_config> evaluated;  // in evaluation order
  std::vector<double> best_after;           // best fitness after each evaluation
  int64_t evaluations = 0;
  int64_t draws = 0;  // configurations the sampler drew
  int generations = 0;
  double seconds = 0;
};

using fitness_fn = std::function<double(const bit_config&)>;

// requires: the sampler's supernet; b.kind == sampler.kind() (the prior is
//           binned for that kind).
inline search_result evolve(const supernet& s, config_sampler& sampler, const search_budget& b,
                            const evolution_options& o, const fitness_fn& fitness) {
  o.validate();
  MIXQ_CHECK(b.kind == sampler.kind(), "evolve: the sampler was built for another budget kind");
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t draws0 = sampler.draws();
  rng r(derive_seed(o.seed, 0x6761ull));
  search_result res;
  std::map<std::string, double> cache;
  bool stop = false;
  auto eval = [&](const bit_config& c) {
    const std::string key = c.str();
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    if (o.max_evaluations > 0 && res.evaluations >= o.max_evaluations) {
      stop = true;
      return -1.0;
    }
    evaluated_config e;
    e.config = c;
    e.fitness = fitness(c);
    e.bitops = s.bitops(c);
    e.mean_w = s.mean_bits_w(c);
    e.mean_a = s.mean_bits_a(c);
    e.index = res.evaluations++;
    if (res.evaluated.empty() || e.fitness > res.best.fitness) res.best = e;
    res.evaluated.push_back(e);
    res.best_after.push_back(res.best.fitness);
    cache.emplace(key, e.fitness);
    return e.fitness;
  };
  const double hi = sampler.top(b);
  auto fix = [&](bit_config& c, const std::function<void(bit_config&)>& redo) {
    for (int tries = 0; tries < sampler.options().max_tries && !sampler.in_band(c, b); ++tries)
      redo(c);
    if (!sampler.within(c, b)) sampler.repair(c, b, r);
  };

  std::vector<std::pair<double, bit_config>> pop;
  for (const bit_config& c : o.seeds) {
    MIXQ_CHECK(c.w.size() == s.size() && c.a.size() == s.size(), "evolve: a seed has ", c.w.size(),
               " layers, the supernet ", s.size());
    if (stop || static_cast<int>(pop.size()) >= o.population || !sampler.within(c, b)) continue;
    const double f = eval(c);
    if (!stop) pop.emplace_back(f, c);
  }
  for (int i = static_cast<int>(pop.size()); i < o.population && !stop; ++i) {
    bit_config c = sampler.sample(b, r);
    const double f = eval(c);
    if (!stop) pop.emplace_back(f, c);
  }
  const int n_parents = std::max(1, static_cast<int>(o.parent_ratio * o.population));
  const int n_mutate = static_cast<int>(o.mutation_ratio * o.population);
  for (int g = 0; g < o.generations && !stop && !pop.empty(); ++g) {
    std::stable_sort(pop.begin(), pop.end(),
                     [](const auto& x, const auto& y) { return x.first > y.first; });
    if (static_cast<int>(pop.size()) > n_parents) pop.resize(static_cast<size_t>(n_parents));
    const size_t np = pop.size();
    std::vector<std::pair<double, bit_config>> next = pop;
    for (int k = 0; k < n_mutate && !stop; ++k) {
      const bit_config& parent = pop[r.below(static_cast<uint32_t>(np))].second;
      bit_config c = parent;
      auto mutate = [&](bit_config& x) {
        x = parent;
        const double t = hi - b.window * static_cast<double>(r.uniform());
        for (size_t i = 0; i < s.size(); ++i) {
          if (s.free_w(i) && r.uniform() < o.mutate_prob)
            x.w[i] = sampler.draw_width(i, true, t, r);
          if (s.free_a(i) && r.uniform() < o.mutate_prob)
            x.a[i] = sampler.draw_width(i, false, t, r);
        }
      };
      mutate(c);
      fix(c, mutate);
      const double f = eval(c);
      if (!stop) next.emplace_back(f, c);
    }
    for (int k = static_cast<int>(next.size()); k < o.population && !stop; ++k) {
      const bit_config& p1 = pop[r.below(static_cast<uint32_t>(np))].second;
      const bit_config& p2 = pop[r.below(static_cast<uint32_t>(np))].second;
      bit_config c = p1;
      auto cross = [&](bit_config& x) {
        for (size_t i = 0; i < s.size(); ++i) {
          x.w[i] = r.below(2) ? p1.w[i] : p2.w[i];
          x.a[i] = r.below(2) ? p1.a[i] : p2.a[i];
        }
      };
      cross(c);
      fix(c, cross);
      const double f = eval(c);
      if (!stop) next.emplace_back(f, c);
    }
    pop.swap(next);
    res.generations = g + 1;
  }
  res.draws = sampler.draws() - draws0;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace quant
}  // namespace mixq
