// mixq_export: writes a deploy model file (.mqd, docs/format.md) and/or the
// same bytes as a C header (a firmware build compiles the model in and reads
// no file).
//
//   mixq_export --random resnet20 --bits w4a4 --out r20_w4a4.mqd --header r20_w4a4.h
//       a random-weight ResNet20 at the given bits (benchmarks, demos)
//   mixq_export --trained runs/w4a4/model.mixq --out r20_w4a4.mqd [--header r20_w4a4.h]
//       a quantized training run's model (model.mixq, or checkpoint.mixq of
//       a run still going) lowered to the integer model (deploy/export.hpp)
//   mixq_export --model r20_w4a4.mqd --header r20_w4a4.h --name r20_w4a4
//       the C header of an existing model file
// Flags are checked before anything is read or written
// (examples/common/cli.hpp). Every error: one line on stderr, exit code 2.
#include <cstdio>
#include <string>

#include <mixq/deploy/c_array.hpp>
#include <mixq/deploy/export.hpp>
#include <mixq/deploy/format.hpp>
#include <mixq/deploy/synthetic.hpp>
#include <mixq/quant/model_file.hpp>

#include "../common/cli.hpp"

namespace {

namespace md = mixq::deploy;

/// "w4a4" -> (4, 4)
bool parse_bits(const std::string& s, int* w, int* a) {
  return std::sscanf(s.c_str(), "w%da%d", w, a) == 2 && *w >= 2 && *w <= 8 && *a >= 2 && *a <= 8;
}

/// "resnet20" -> n = 3 (ResNet-(6n+2))
bool parse_depth(const std::string& s, int* n) {
  int d = 0;
  if (std::sscanf(s.c_str(), "resnet%d", &d) != 1 || d < 8 || (d - 2) % 6 != 0) return false;
  *n = (d - 2) / 6;
  return true;
}

std::string stem_of(const std::string& path) {
  std::string s =
      path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  s = s.substr(0, s.find('.'));
  for (char& c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) c = '_';
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) s = "model_" + s;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  namespace ex = mixq::examples;
  const std::string prog = "mixq_export";
  CLI::App app("write a deploy model file and/or its C header", prog);
  app.option_defaults()->always_capture_default();
  std::string random, bits = "w8a8", in, trained, out, header, name;
  long long first_last = 8, seed = 1;
  bool odd = false;
  app.add_option("--random", random, "make a random-weight model: resnet20, resnet32, ...")
      ->check(ex::non_empty("resnet<6n+2>"));
  app.add_option("--bits", bits, "with --random: weight and activation bits, e.g. w4a4")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            int w = 0, a = 0;
            return parse_bits(s, &w, &a) ? std::string()
                                         : "'" + s + "', expected w<2..8>a<2..8>, e.g. w4a4";
          },
          ""));
  app.add_option("--first-last-bits", first_last, "with --random: stem and classifier bits (2..8)")
      ->check(ex::integer_in(2, 8));
  app.add_flag("--odd", odd, "with --random: DoReFa odd-level weight grid");
  app.add_option("--seed", seed, "with --random: weight seed")
      ->check(ex::integer_in(0, 9223372036854775807LL));
  app.add_option("--model", in, "an existing model file to convert")
      ->check(ex::non_empty("a model file"));
  app.add_option("--trained", trained,
                 "a quantized training run's model.mixq or checkpoint.mixq to export")
      ->check(ex::non_empty("a model file"));
  app.add_option("--out", out, "model file to write")->check(ex::non_empty("a file"));
  app.add_option("--header", header, "C header to write")->check(ex::non_empty("a file"));
  app.add_option("--name", name, "C array name (default: from the file name)")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            return md::is_c_identifier(s) ? std::string() : "'" + s + "', expected a C identifier";
          },
          ""));
  if (const int rc = ex::parse(app, argc, argv); rc >= 0) return rc;
  try {
    MIXQ_CHECK(int(!random.empty()) + int(!in.empty()) + int(!trained.empty()) == 1,
               "give exactly one of --random, --trained and --model");
    MIXQ_CHECK(!out.empty() || !header.empty(), "nothing to write: give --out and/or --header");
    md::model m;
    if (!random.empty()) {
      md::synthetic_resnet_options o;
      MIXQ_CHECK(parse_depth(random, &o.n), "--random '", random,
                 "': expected resnet<6n+2>, e.g. resnet20");
      MIXQ_CHECK(parse_bits(bits, &o.w_bits, &o.a_bits), "--bits '", bits,
                 "': expected w<2..8>a<2..8>, e.g. w4a4");
      o.first_last_bits = static_cast<int>(first_last);
      o.grid = odd ? md::weight_grid::odd : md::weight_grid::signed_codes;
      o.seed = static_cast<std::uint64_t>(seed);
      m = md::synthetic_resnet(o);
      m.meta += "bits=" + bits + "\n";
    } else if (!trained.empty()) {
      mixq::quant::loaded_model q = mixq::quant::load_quantized(trained);
      m = md::export_resnet(*q.model);
      m.meta += "from=" + trained + "\n";
    } else {
      m = md::load_model(in);
    }
    const auto bytes = md::serialize(m);
    const md::model_info info = md::analyze(m);
    if (!out.empty()) md::write_file_bytes(out, bytes.data(), bytes.size());
    if (!header.empty()) {
      const std::string sym = name.empty() ? stem_of(out.empty() ? header : out) : name;
      const std::string src =
          md::emit_c_array(bytes, sym, "made by: " + ex::command_line(argc, argv));
      md::write_file_bytes(header, src.data(), src.size());
    }
    std::printf("%zu layers, %d classes, %.2f MMAC per image, %zu bytes%s%s%s%s\n", m.layers.size(),
                info.classes, double(info.macs) / 1e6, bytes.size(), out.empty() ? "" : " -> ",
                out.c_str(), header.empty() ? "" : " and ", header.c_str());
  } catch (const std::exception& e) {
    return ex::fail(prog, e.what());
  }
  if (std::fflush(stdout) != 0) return ex::fail(prog, "writing to stdout failed");
  return 0;
}
