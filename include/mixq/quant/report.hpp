#pragma once
// Reporting for quantized runs: the per-layer cost table printed at the end
// of a run, the bit-width columns of metrics.csv, and an SVG of the learned
// bit-widths over training drawn from that CSV.
//
// Table: one row per layer (name, MACs, weights, b_w, b_a, BitOPs, packed
// bytes; qnet.hpp defines the cost) and the totals, with the FP32 model's
// BitOPs (32 x 32 bits) and bytes beside them for scale.
//
// CSV columns: mbitops (BitOPs per image / 1e6), model_kib (packed bytes /
// 1024), mean_bw and mean_ba (inner layers: weights-weighted and
// MACs-weighted), then per layer b_w:<layer> and b_a:<layer> (the integer
// bits in use); with AdaQAT, N:<group> for every learned bit-width (the real
// value; groups "w" and "a" or "w:<layer>" and "a:<layer>").
//
// SVG: write_bits_svg() reads a metrics.csv and draws every N: column (or, if
// there are none, every b_w / b_a column) against the epoch: weights in the
// left panel, activations in the right, one line per group. Hand-written
// SVG; the file is written to a temporary name and renamed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mixq/error.hpp"
#include "mixq/quant/adaqat.hpp"
#include "mixq/quant/qnet.hpp"

namespace mixq {
namespace quant {

inline std::string cost_table(const qnet& net) {
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line, "%-16s %10s %8s %4s %4s %12s %10s\n", "layer", "MACs", "weights",
                "b_w", "b_a", "BitOPs", "bytes");
  os << line;
  double fp_bitops = 0;
  int64_t fp_bytes = 0;
  for (const qlayer& l : net.layers()) {
    std::snprintf(line, sizeof line, "%-16s %10lld %8lld %4s %4s %12.4g %10lld\n", l.name.c_str(),
                  static_cast<long long>(l.macs), static_cast<long long>(l.weights),
                  l.wq ? std::to_string(l.bits_w()).c_str() : "fp32",
                  l.aq ? std::to_string(l.bits_a()).c_str() : "fp32", l.bitops(),
                  static_cast<long long>(l.bytes()));
    os << line;
    fp_bitops += 1024.0 * static_cast<double>(l.macs);
    fp_bytes += 4 * l.weights + 8 * l.out_channels;
  }
  std::snprintf(line, sizeof line, "%-16s %10lld %8s %4s %4s %12.4g %10lld\n", "total",
                static_cast<long long>(net.macs()), "", "", "", net.bitops(),
                static_cast<long long>(net.bytes()));
  os << line;
  std::snprintf(line, sizeof line,
                "(per image; FP32: %.4g BitOPs, %lld bytes; quantized/FP32: %.4f BitOPs, %.4f "
                "bytes; inner mean bits w %.3f, a %.3f)\n",
                fp_bitops, static_cast<long long>(fp_bytes), net.bitops() / fp_bitops,
                static_cast<double>(net.bytes()) / static_cast<double>(fp_bytes), net.mean_bits_w(),
                net.mean_bits_a());
  os << line;
  return os.str();
}

inline std::vector<std::string> bits_csv_columns(const qnet& net, const adaqat* ctl = nullptr) {
  std::vector<std::string> c = {"mbitops", "model_kib", "mean_bw", "mean_ba"};
  for (const qlayer& l : net.layers()) {
    c.push_back("b_w:" + l.name);
    c.push_back("b_a:" + l.name);
  }
  if (ctl)
    for (size_t g = 0; g < ctl->groups(); ++g) c.push_back("N:" + ctl->group(g).label);
  return c;
}

inline std::vector<std::string> bits_csv_values(const qnet& net, const adaqat* ctl = nullptr) {
  auto fmt = [](double v, const char* f) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return std::string(b);
  };
  std::vector<std::string> v = {fmt(net.bitops() * 1e-6, "%.4f"),
                                fmt(static_cast<double>(net.bytes()) / 1024.0, "%.3f"),
                                fmt(net.mean_bits_w(), "%.4f"), fmt(net.mean_bits_a(), "%.4f")};
  for (const qlayer& l : net.layers()) {
    v.push_back(std::to_string(l.bits_w()));
    v.push_back(std::to_string(l.bits_a()));
  }
  if (ctl)
    for (size_t g = 0; g < ctl->groups(); ++g) v.push_back(fmt(ctl->real_bits(g), "%.5f"));
  return v;
}

namespace detail {
inline void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    MIXQ_CHECK(f.good(), tmp, ": cannot open for writing");
    f << text;
    f.flush();
    MIXQ_CHECK(f.good(), tmp, ": write failed");
  }
  MIXQ_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot rename ", tmp);
}
inline std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  std::stringstream ss(line);
  while (std::getline(ss, cur, ',')) out.push_back(cur);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}
}  // namespace detail

// Draws the learned (or used) bit-widths of a metrics.csv over the epochs.
inline void write_bits_svg(const std::string& csv_path, const std::string& svg_path) {
  std::ifstream in(csv_path);
  MIXQ_CHECK(in.good(), csv_path, ": cannot open");
  std::string line;
  MIXQ_CHECK(static_cast<bool>(std::getline(in, line)), csv_path, ": empty file");
  const std::vector<std::string> head = detail::split_csv(line);
  int ep = -1;
  std::vector<int> cols;
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == "epoch") ep = static_cast<int>(i);
    if (head[i].rfind("N:", 0) == 0) cols.push_back(static_cast<int>(i));
  }
  if (cols.empty())
    for (size_t i = 0; i < head.size(); ++i)
      if (head[i].rfind("b_w:", 0) == 0 || head[i].rfind("b_a:", 0) == 0)
        cols.push_back(static_cast<int>(i));
  MIXQ_CHECK(ep >= 0 && !cols.empty(), csv_path, ": no epoch or bit-width columns");
  std::vector<double> epochs;
  std::vector<std::vector<double>> val(cols.size());
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const std::vector<std::string> f = detail::split_csv(line);
    if (f.size() < head.size()) continue;
    epochs.push_back(std::atof(f[static_cast<size_t>(ep)].c_str()));
    for (size_t k = 0; k < cols.size(); ++k)
      val[k].push_back(std::atof(f[static_cast<size_t>(cols[k])].c_str()));
  }
  const double xmax = epochs.empty() ? 1.0 : std::max(1.0, epochs.back());
  const int W = 460, H = 300, X0 = 60, Y0 = 40, GAP = 90;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << 2 * W + GAP + 2 * X0
    << "\" height=\"" << H + 2 * Y0 + 40 << "\" font-family=\"sans-serif\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (int panel = 0; panel < 2; ++panel) {
    const int x0 = X0 + panel * (W + GAP);
    s << "<rect x=\"" << x0 << "\" y=\"" << Y0 << "\" width=\"" << W << "\" height=\"" << H
      << "\" fill=\"none\" stroke=\"#888\"/>\n";
    s << "<text x=\"" << x0 + W / 2 << "\" y=\"" << Y0 - 12 << "\" text-anchor=\"middle\" "
      << "font-size=\"14\">" << (panel == 0 ? "weight bits" : "activation bits") << "</text>\n";
    for (int b = 2; b <= 8; ++b) {
      const double y = Y0 + H - H * (b - 1.5) / 7.0;
      s << "<line x1=\"" << x0 << "\" y1=\"" << y << "\" x2=\"" << x0 + W << "\" y2=\"" << y
        << "\" stroke=\"#eee\"/><text x=\"" << x0 - 6 << "\" y=\"" << y + 4
        << "\" text-anchor=\"end\" font-size=\"11\">" << b << "</text>\n";
    }
    for (int k = 0; k <= 5; ++k) {
      const double e = xmax * k / 5.0;
      s << "<text x=\"" << x0 + W * k / 5.0 << "\" y=\"" << Y0 + H + 16
        << "\" text-anchor=\"middle\" font-size=\"11\">" << std::round(e * 10) / 10 << "</text>\n";
    }
    s << "<text x=\"" << x0 + W / 2 << "\" y=\"" << Y0 + H + 34
      << "\" text-anchor=\"middle\" font-size=\"12\">epoch</text>\n";
    std::vector<size_t> mine;
    for (size_t k = 0; k < cols.size(); ++k) {
      const std::string& n = head[static_cast<size_t>(cols[k])];
      const bool is_w = n.rfind("N:w", 0) == 0 || n.rfind("b_w:", 0) == 0;
      if (is_w == (panel == 0)) mine.push_back(k);
    }
    for (size_t j = 0; j < mine.size(); ++j) {
      const size_t k = mine[j];
      const double hue = mine.size() > 1 ? 240.0 * static_cast<double>(j) / (mine.size() - 1) : 0;
      s << "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"hsl(" << hue
        << ",70%,45%)\" points=\"";
      for (size_t i = 0; i < epochs.size(); ++i) {
        const double x = x0 + W * epochs[i] / xmax;
        const double y = Y0 + H - H * (val[k][i] - 1.5) / 7.0;
        s << x << "," << y << " ";
      }
      s << "\"><title>" << head[static_cast<size_t>(cols[k])] << "</title></polyline>\n";
      if (mine.size() <= 8 || j == 0 || j + 1 == mine.size()) {  // legend, top right
        const size_t row = mine.size() <= 8 ? j : (j ? 1 : 0);
        s << "<text x=\"" << x0 + W - 6 << "\" y=\"" << Y0 + 14 + 13 * row
          << "\" text-anchor=\"end\" font-size=\"10\" fill=\"hsl(" << hue << ",70%,45%)\">"
          << head[static_cast<size_t>(cols[k])] << "</text>\n";
      }
    }
  }
  s << "</svg>\n";
  detail::write_file_atomic(svg_path, s.str());
}

}  // namespace quant
}  // namespace mixq
