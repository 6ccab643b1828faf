// Reporting: metrics.csv columns and values, the bits SVG from a CSV, the
// cost table.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "mixq/nn/nn.hpp"
#include "mixq/quant/quant.hpp"

using namespace mixq;
using namespace mixq::quant;

namespace {
std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}
}  // namespace

TEST_CASE("report: csv columns match values; the SVG draws one line per learned bit-width") {
  nn::resnet_options o;
  o.n = 1;  // ResNet8
  nn::resnet_cifar m(o);
  qnet net = quantize(m, qat_config{});
  adaqat_options ao;
  adaqat ctl(net, ao);
  const auto cols = bits_csv_columns(net, &ctl);
  const auto vals = bits_csv_values(net, &ctl);
  REQUIRE(cols.size() == vals.size());
  CHECK(cols.size() == 4 + 2 * net.size() + 2);
  CHECK(cols.back() == "N:a");
  CHECK(vals.back() == "8.00000");
  const std::string table = cost_table(net);
  CHECK(table.find("total") != std::string::npos);
  CHECK(count(table, "\n") == net.size() + 3);

  const std::string dir = MIXQ_BINARY_DIR;
  const std::string csv = dir + "/test_report_metrics.csv", svg = dir + "/test_report_bits.svg";
  {
    std::ofstream f(csv);
    f << "epoch,lr,";
    for (size_t i = 0; i < cols.size(); ++i) f << cols[i] << (i + 1 < cols.size() ? "," : "\n");
    for (int e = 1; e <= 3; ++e) {
      f << e << ",0.1,";
      for (size_t i = 0; i < vals.size(); ++i) f << vals[i] << (i + 1 < vals.size() ? "," : "\n");
    }
  }
  write_bits_svg(csv, svg);
  const std::string s = slurp(svg);
  CHECK(s.rfind("<svg", 0) == 0);
  CHECK(count(s, "<polyline") == 2);  // N:w and N:a
  CHECK(s.find("N:w") != std::string::npos);
  CHECK_THROWS_AS(write_bits_svg(dir + "/no_such_metrics.csv", svg), mixq::error);
  std::remove(csv.c_str());
  std::remove(svg.c_str());
}
