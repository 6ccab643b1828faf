#pragma once
// The accuracy / cost frontier of a supernet's slices: the Pareto front, its
// CSV and an SVG (docs/multiquant.md section 4).
//
// A point is a slice with its accuracy and cost (BitOPs per image, mean
// weight and activation bits of the inner layers, packed bytes). On a cost
// axis, a point is on the front when every cheaper-or-equal point is less
// accurate (ties in cost keep the most accurate). Two fronts: against BitOPs
// and against mean bits (the larger of the weight and activation means).
//
// CSV columns: group,label,accuracy,mbitops,mean_bw,mean_ba,mean_bits,kib,
// front_bitops,front_bits (1 on the front, else 0).
// SVG: two panels, accuracy against MBitOPs (left) and against mean bits
// (right); uniform slices as labelled squares, searched configurations as
// dots, the front as a line. Both files are written to a temporary name and
// renamed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "mixq/io/file.hpp"

namespace mixq {
namespace quant {

struct frontier_point {
  std::string group;  // "uniform", "search@3", ...
  std::string label;  // "W4A4", a configuration file name, ...
  double accuracy = 0;
  double bitops = 0;
  double mean_w = 0, mean_a = 0;
  double bytes = 0;
  double mean_bits() const { return std::max(mean_w, mean_a); }
};

// Indices of the points on the front of `cost` (ascending cost).
template <class Cost>
std::vector<size_t> pareto_front(const std::vector<frontier_point>& p, Cost cost) {
  std::vector<size_t> idx(p.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t x, size_t y) {
    const double cx = cost(p[x]), cy = cost(p[y]);
    return cx < cy || (cx == cy && p[x].accuracy > p[y].accuracy);
  });
  std::vector<size_t> front;
  double best = -1e300;
  for (size_t i : idx)
    if (p[i].accuracy > best) {
      front.push_back(i);
      best = p[i].accuracy;
    }
  return front;
}
inline std::vector<size_t> front_by_bitops(const std::vector<frontier_point>& p) {
  return pareto_front(p, [](const frontier_point& q) { return q.bitops; });
}
inline std::vector<size_t> front_by_bits(const std::vector<frontier_point>& p) {
  return pareto_front(p, [](const frontier_point& q) { return q.mean_bits(); });
}

inline void write_frontier_csv(const std::string& path, const std::vector<frontier_point>& p) {
  std::vector<char> on_ops(p.size(), 0), on_bits(p.size(), 0);
  for (size_t i : front_by_bitops(p)) on_ops[i] = 1;
  for (size_t i : front_by_bits(p)) on_bits[i] = 1;
  std::ostringstream os;
  os << "group,label,accuracy,mbitops,mean_bw,mean_ba,mean_bits,kib,front_bitops,front_bits\n";
  char buf[256];
  for (size_t i = 0; i < p.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%.6f,%.4f,%.4f,%.4f,%.4f,%.3f,%d,%d", p[i].accuracy,
                  p[i].bitops / 1e6, p[i].mean_w, p[i].mean_a, p[i].mean_bits(),
                  p[i].bytes / 1024.0, on_ops[i], on_bits[i]);
    os << p[i].group << "," << p[i].label << "," << buf << "\n";
  }
  io::write_file_atomic(path, os.str());
}

inline void write_frontier_svg(const std::string& path, const std::vector<frontier_point>& p,
                               const std::string& title = "") {
  const int W = 420, H = 300, X0 = 60, Y0 = 50, GAP = 80;
  double amin = 1, amax = 0;
  for (const auto& q : p) {
    amin = std::min(amin, q.accuracy);
    amax = std::max(amax, q.accuracy);
  }
  if (p.empty() || amax <= amin) {
    amin = std::max(0.0, amin - 0.05);
    amax = std::min(1.0, amax + 0.05);
  }
  const double pad = 0.05 * (amax - amin + 1e-9);
  amin -= pad;
  amax += pad;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << 2 * W + GAP + 2 * X0
    << "\" height=\"" << H + 2 * Y0 + 30 << "\" font-family=\"sans-serif\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!title.empty())
    s << "<text x=\"" << X0 << "\" y=\"20\" font-size=\"14\">" << title << "</text>\n";
  for (int panel = 0; panel < 2; ++panel) {
    auto cost = [panel](const frontier_point& q) {
      return panel == 0 ? q.bitops / 1e6 : q.mean_bits();
    };
    double cmin = 1e300, cmax = -1e300;
    for (const auto& q : p) {
      cmin = std::min(cmin, cost(q));
      cmax = std::max(cmax, cost(q));
    }
    if (p.empty() || cmax <= cmin) {
      cmin = p.empty() ? 0 : cmin - 1;
      cmax = p.empty() ? 1 : cmax + 1;
    }
    const double cpad = 0.05 * (cmax - cmin);
    cmin -= cpad;
    cmax += cpad;
    const int x0 = X0 + panel * (W + GAP);
    auto X = [&](double c) { return x0 + W * (c - cmin) / (cmax - cmin); };
    auto Y = [&](double a) { return Y0 + H - H * (a - amin) / (amax - amin); };
    s << "<rect x=\"" << x0 << "\" y=\"" << Y0 << "\" width=\"" << W << "\" height=\"" << H
      << "\" fill=\"none\" stroke=\"#888\"/>\n";
    s << "<text x=\"" << x0 + W / 2 << "\" y=\"" << Y0 + H + 36
      << "\" text-anchor=\"middle\" font-size=\"12\">"
      << (panel == 0 ? "MBitOPs per image" : "mean bits (max of weights, activations)")
      << "</text>\n";
    for (int k = 0; k <= 5; ++k) {
      const double c = cmin + (cmax - cmin) * k / 5.0, a = amin + (amax - amin) * k / 5.0;
      char cb[32], ab[32];
      std::snprintf(cb, sizeof cb, panel == 0 ? "%.0f" : "%.2f", c);
      std::snprintf(ab, sizeof ab, "%.1f", 100.0 * a);
      s << "<text x=\"" << X(c) << "\" y=\"" << Y0 + H + 16
        << "\" text-anchor=\"middle\" font-size=\"11\">" << cb << "</text>\n";
      s << "<line x1=\"" << x0 << "\" y1=\"" << Y(a) << "\" x2=\"" << x0 + W << "\" y2=\"" << Y(a)
        << "\" stroke=\"#eee\"/><text x=\"" << x0 - 6 << "\" y=\"" << Y(a) + 4
        << "\" text-anchor=\"end\" font-size=\"11\">" << ab << "</text>\n";
    }
    if (panel == 0)
      s << "<text x=\"" << 16 << "\" y=\"" << Y0 + H / 2 << "\" font-size=\"12\" "
        << "transform=\"rotate(-90 16 " << Y0 + H / 2 << ")\" text-anchor=\"middle\">"
        << "accuracy (%)</text>\n";
    for (const auto& q : p) {
      if (q.group == "uniform") {
        s << "<rect x=\"" << X(cost(q)) - 4 << "\" y=\"" << Y(q.accuracy) - 4
          << "\" width=\"8\" height=\"8\" fill=\"#c33\"><title>" << q.label
          << "</title></rect><text x=\"" << X(cost(q)) + 6 << "\" y=\"" << Y(q.accuracy) + 12
          << "\" font-size=\"10\" fill=\"#c33\">" << q.label << "</text>\n";
      } else {
        s << "<circle cx=\"" << X(cost(q)) << "\" cy=\"" << Y(q.accuracy)
          << "\" r=\"2.5\" fill=\"#36c\" fill-opacity=\"0.6\"><title>" << q.group << " " << q.label
          << "</title></circle>\n";
      }
    }
    const std::vector<size_t> f = panel == 0 ? front_by_bitops(p) : front_by_bits(p);
    s << "<polyline fill=\"none\" stroke=\"#333\" stroke-width=\"1.2\" points=\"";
    for (size_t i : f) s << X(cost(p[i])) << "," << Y(p[i].accuracy) << " ";
    s << "\"/>\n";
  }
  s << "</svg>\n";
  io::write_file_atomic(path, s.str());
}

}  // namespace quant
}  // namespace mixq
