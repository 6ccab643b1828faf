// Writes the seed corpus of the fuzz targets: small valid inputs of every
// format each target reads, from which libFuzzer mutates. The corpus in
// fuzz/corpus/ was written by this program (and is committed; rerun it only
// when a format changes):
//
//   build-fuzz/fuzz/mixq_fuzz_make_seeds fuzz/corpus
//
// Images come from stb_image_write (PNG, BMP, TGA, baseline JPEG) or are
// spelled out byte by byte below (PPM, PGM, GIF, PSD).
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if __has_include(<stb/stb_image_write.h>)
#include <stb/stb_image_write.h>
#else
#include <stb_image_write.h>
#endif
#include <zlib.h>

#include "fuzz_targets.hpp"
#include "mixq/deploy/synthetic.hpp"

namespace {
using bytes = std::vector<std::uint8_t>;

void write(const std::string& path, const bytes& b) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (!b.empty() && std::fwrite(b.data(), 1, b.size(), f) != b.size()) ||
      std::fclose(f) != 0) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

bytes gzip(const bytes& b) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  bytes out(deflateBound(&zs, static_cast<uLong>(b.size())) + 64);
  zs.next_in = const_cast<Bytef*>(b.data());
  zs.avail_in = static_cast<uInt>(b.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

bytes cat(bytes a, const bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void put_be32(bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}
void put_le32(bytes& b, std::uint32_t v) {
  for (int s = 0; s <= 24; s += 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

// A w x h RGB gradient with a few colours.
bytes pixels(int w, int h, int c) {
  bytes px;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) px.push_back(static_cast<std::uint8_t>(x * 40 + y * 25 + k * 90));
  return px;
}

bytes encoded(int kind, int w, int h, int c) {
  bytes out;
  auto sink = [](void* ctx, void* data, int size) {
    auto* o = static_cast<bytes*>(ctx);
    o->insert(o->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
  };
  const bytes px = pixels(w, h, c);
  if (kind == 0) stbi_write_png_to_func(sink, &out, w, h, c, px.data(), w * c);
  if (kind == 1) stbi_write_bmp_to_func(sink, &out, w, h, c, px.data());
  if (kind == 2) stbi_write_tga_to_func(sink, &out, w, h, c, px.data());
  if (kind == 3) stbi_write_jpg_to_func(sink, &out, w, h, c, px.data(), 90);
  return out;
}

bytes text(const std::string& s) { return bytes(s.begin(), s.end()); }

void images(const std::string& dir) {
  write(dir + "/rgb.png", encoded(0, 5, 3, 3));
  write(dir + "/grey_alpha.png", encoded(0, 4, 4, 2));
  write(dir + "/rgba.bmp", encoded(1, 3, 2, 4));
  write(dir + "/rgb.tga", encoded(2, 3, 3, 3));
  write(dir + "/rgb.jpg", encoded(3, 16, 8, 3));
  write(dir + "/grey.jpg", encoded(3, 9, 9, 1));
  write(dir + "/rgb.ppm", cat(text("P6\n2 2\n255\n"), pixels(2, 2, 3)));
  write(dir + "/grey.pgm", cat(text("P5\n# comment\n3 1\n255\n"), pixels(3, 1, 1)));
  // GIF89a, 1 x 1, a 2-colour global palette, one LZW-coded pixel.
  write(dir + "/one.gif",
        {'G', 'I',  'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 255,  0,    0, 0,   0,
         255, 0x2c, 0,   0,   0,   0,   1, 0, 1, 0, 0,    2, 2, 0x44, 0x01, 0, 0x3b});
  // PSD: RGB, 8 bits, 2 x 1, raw planar channel data.
  bytes psd = text("8BPS");
  psd.insert(psd.end(), {0, 1, 0, 0, 0, 0, 0, 0, 0, 3});
  put_be32(psd, 1);                     // height
  put_be32(psd, 2);                     // width
  psd.insert(psd.end(), {0, 8, 0, 3});  // depth 8, mode RGB
  put_be32(psd, 0);                     // colour mode data
  put_be32(psd, 0);                     // image resources
  put_be32(psd, 0);                     // layers and masks
  psd.insert(psd.end(), {0, 0});        // raw
  psd.insert(psd.end(), {10, 20, 30, 40, 50, 60});
  write(dir + "/rgb.psd", psd);
}

void cifar(const std::string& dir) {
  bytes two;
  for (int r = 0; r < 2; ++r) {
    two.push_back(static_cast<std::uint8_t>(r * 7));
    const bytes px = pixels(32, 32, 3);
    two.insert(two.end(), px.begin(), px.end());
  }
  write(dir + "/two_records.bin", two);
  write(dir + "/two_records.bin.gz", gzip(two));
  write(dir + "/two_members.gz", cat(gzip(bytes(two.begin(), two.begin() + 100)),
                                     gzip(bytes(two.begin() + 100, two.end()))));
  write(dir + "/batches.meta.txt",
        text("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"));
}

void idx(const std::string& dir) {
  bytes img, lab;
  put_be32(img, 0x803);
  put_be32(img, 3);
  put_be32(img, 28);
  put_be32(img, 28);
  const bytes px = pixels(28, 28 * 3, 1);
  img.insert(img.end(), px.begin(), px.end());
  put_be32(lab, 0x801);
  put_be32(lab, 3);
  lab.insert(lab.end(), {1, 9, 0});
  auto pair = [](const bytes& a, const bytes& b) {
    bytes o;
    put_le32(o, static_cast<std::uint32_t>(a.size()));
    return cat(cat(o, a), b);
  };
  write(dir + "/plain.idx", pair(img, lab));
  write(dir + "/gzip.idx", pair(gzip(img), gzip(lab)));
}

void archives(const std::string& dir) {
  mixq_fuzz::tiny_net m;
  mixq::nn::save_model(dir + "/model.mixq", m, {{"arch", "tiny"}});
  mixq::optim::sgd opt(m.parameters(), mixq::optim::sgd_options{});
  mixq::train::checkpoint_state st;
  st.epoch = 3;
  st.rngs["loader"] = mixq::rng::state_type{42, 7};
  st.extra["config"] = "lr=0.1;";
  mixq::train::save_checkpoint(dir + "/checkpoint.mixq", m, opt, st);
  mixq::io::archive a;
  a.set_meta("kind", "other");
  a.set_meta_int("n", -5);
  a.add<float>("f", {2, 1}, std::vector<float>{1.5f, -2.0f});
  a.add<std::int32_t>("i", {}, std::vector<std::int32_t>{7});
  a.add<std::int64_t>("l", {0}, std::vector<std::int64_t>{});
  a.add<std::uint8_t>("u", std::vector<std::uint8_t>{1, 2, 3});
  mixq::io::save_archive(a, dir + "/dtypes.mixq");
}
// Deploy model files: random-weight ResNet8s (the smallest the format holds
// that the target also runs).
void deploy(const std::string& dir) {
  namespace md = mixq::deploy;
  md::synthetic_resnet_options o;
  o.n = 1;
  o.w_bits = 4;
  o.a_bits = 4;
  write(dir + "/resnet8_w4a4.mqd", md::serialize(md::synthetic_resnet(o)));
  o.w_bits = 2;
  o.a_bits = 8;
  o.grid = md::weight_grid::odd;
  write(dir + "/resnet8_w2a8_odd.mqd", md::serialize(md::synthetic_resnet(o)));
  o.a_bits = 2;
  o.grid = md::weight_grid::signed_codes;
  o.residual_bits = 6;  // RMAP sections
  write(dir + "/resnet8_w2a2_r6.mqd", md::serialize(md::synthetic_resnet(o)));
}

// Argument lists of mixq_train_cifar10, NUL-separated.
void cli(const std::string& dir) {
  auto args = [&](const std::string& name, std::initializer_list<const char*> list) {
    bytes b;
    for (const char* a : list) {
      b.insert(b.end(), a, a + std::strlen(a));
      b.push_back(0);
    }
    write(dir + "/" + name, b);
  };
  args("typical", {"--data", "/tmp/cifar10", "--depth", "20", "--epochs", "30", "--lr", "0.1",
                   "--out", "runs/x", "--threads", "2"});
  args("step", {"--schedule=step", "--milestones", "10,20", "--warmup", "0.5", "--epochs=30",
                "--nesterov", "--label-smoothing", "0.1"});
  args("subset", {"--train-subset", "128", "--test-subset", "64", "--batch", "32", "--resume",
                  "--seed", "7", "--no-augment", "--eval-every", "0", "--decay-all"});
  args("help", {"--help"});
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  for (const char* t : {"", "/cifar10", "/idx", "/archive", "/image", "/deploy", "/cli"})
    ::mkdir((root + t).c_str(), 0755);
  images(root + "/image");
  cifar(root + "/cifar10");
  idx(root + "/idx");
  archives(root + "/archive");
  deploy(root + "/deploy");
  cli(root + "/cli");
  std::printf("make_seeds: wrote %s/{image,cifar10,idx,archive,deploy,cli}\n", root.c_str());
  return 0;
}
