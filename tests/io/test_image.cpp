// Image reading (stb_image, private copy) and the triangle-filter resize.
#include <doctest/doctest.h>

#include <string>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if __has_include(<stb/stb_image_write.h>)
#include <stb/stb_image_write.h>
#else
#include <stb_image_write.h>
#endif

#include "../common/errors.hpp"
#include "../common/files.hpp"
#include "mixq/io/image.hpp"

using namespace mixq_test;
namespace io = mixq::io;

namespace {
std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

// An RGB PNG (written with stb_image_write) whose pixel (y, x) is
// (x * 16, y * 16, 7).
std::vector<std::uint8_t> png_bytes(int h, int w) {
  std::vector<std::uint8_t> px;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      px.push_back(static_cast<std::uint8_t>(x * 16));
      px.push_back(static_cast<std::uint8_t>(y * 16));
      px.push_back(7);
    }
  std::vector<std::uint8_t> out;
  const int ok = stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        auto* o = static_cast<std::vector<std::uint8_t>*>(ctx);
        o->insert(o->end(), static_cast<std::uint8_t*>(data),
                  static_cast<std::uint8_t*>(data) + size);
      },
      &out, w, h, 3, px.data(), w * 3);
  REQUIRE(ok != 0);
  return out;
}

io::image_u8 make(std::int64_t h, std::int64_t w, std::int64_t c, std::vector<std::uint8_t> v) {
  io::image_u8 im;
  im.h = h;
  im.w = w;
  im.c = c;
  im.data = std::move(v);
  return im;
}
}  // namespace

TEST_CASE("image: binary PPM and PGM decode to RGB HWC") {
  temp_dir d;
  // 3 wide, 2 high, RGB.
  auto ppm = bytes_of("P6\n3 2\n255\n");
  const std::vector<std::uint8_t> rgb{255, 0,  0,  0,  255, 0,  0,  0,  255,
                                      10,  20, 30, 40, 50,  60, 70, 80, 90};
  ppm.insert(ppm.end(), rgb.begin(), rgb.end());
  write_bytes(d.file("a.ppm"), ppm);
  const auto im = io::load_image_rgb(d.file("a.ppm"));
  CHECK(im.h == 2);
  CHECK(im.w == 3);
  CHECK(im.c == 3);
  CHECK(im.data == rgb);
  CHECK(int(im.at(1, 2, 0)) == 70);
  // Grey is replicated into R, G, B.
  auto pgm = bytes_of("P5\n2 1\n255\n");
  pgm.push_back(7);
  pgm.push_back(200);
  write_bytes(d.file("g.pgm"), pgm);
  const auto g = io::load_image_rgb(d.file("g.pgm"));
  CHECK(g.data == std::vector<std::uint8_t>{7, 7, 7, 200, 200, 200});
}

TEST_CASE("image: a PNG decodes losslessly") {
  temp_dir d;
  write_bytes(d.file("a.png"), png_bytes(5, 9));
  const auto im = io::load_image_rgb(d.file("a.png"));
  REQUIRE(im.h == 5);
  REQUIRE(im.w == 9);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 9; ++x) {
      CHECK(int(im.at(y, x, 0)) == x * 16);
      CHECK(int(im.at(y, x, 1)) == y * 16);
      CHECK(int(im.at(y, x, 2)) == 7);
    }
}

TEST_CASE("image: unreadable files give a clear error naming the file") {
  temp_dir d;
  std::string msg = error_of([&] { io::load_image_rgb(d.file("missing.png")); });
  CHECK(contains(msg, d.file("missing.png") + ": file not found"));
  write_bytes(d.file("junk.png"), bytes_of("this is not an image at all"));
  msg = error_of([&] { io::load_image_rgb(d.file("junk.png")); });
  CHECK(contains(msg, d.file("junk.png")));
  CHECK(contains(msg, "not a decodable image ("));
  write_bytes(d.file("empty.jpg"), {});
  CHECK(contains(error_of([&] { io::load_image_rgb(d.file("empty.jpg")); }), "empty file"));
  // A PNG cut in half (stb_image checks PNG chunk lengths).
  const auto png = png_bytes(16, 16);
  write_bytes(d.file("cut.png"),
              std::vector<std::uint8_t>(png.begin(),
                                        png.begin() + static_cast<std::ptrdiff_t>(png.size() / 2)));
  CHECK(
      contains(error_of([&] { io::load_image_rgb(d.file("cut.png")); }), "not a decodable image"));
}

TEST_CASE("image: a directory, a FIFO or a gzip file in place of an image") {
  temp_dir d;
  REQUIRE(::mkdir(d.file("dir.png").c_str(), 0755) == 0);
  CHECK(contains(error_of([&] { io::load_image_rgb(d.file("dir.png")); }),
                 "dir.png: is a directory, expected a regular file"));
  make_fifo(d.file("pipe.jpg"));
  CHECK(contains(error_of([&] { io::load_image_rgb(d.file("pipe.jpg")); }), "is a FIFO"));
  // A gzip file is not inflated (no gzip bomb through the image path).
  write_gz(d.file("img.png.gz"), png_bytes(4, 4));
  CHECK(contains(error_of([&] { io::load_image_rgb(d.file("img.png.gz")); }),
                 "not a decodable image"));
}

TEST_CASE("image: the size a header claims is bounded before decoding") {
  // 20 bytes that claim 20000 x 20000 pixels (1.2 GB as RGB).
  const std::string msg =
      error_of([&] { io::decode_image_rgb(bytes_of("P6\n20000 20000\n255\n"), "huge.ppm"); });
  CHECK(contains(msg, "huge.ppm: image is 20000 x 20000 pixels, more than the 67108864 allowed"));
  CHECK(contains(error_of([&] { io::decode_image_rgb(png_bytes(16, 16), "p.png", 255); }),
                 "image is 16 x 16 pixels, more than the 255 allowed"));
  CHECK(io::decode_image_rgb(png_bytes(16, 16), "p.png", 256).w == 16);
}

namespace {
// A baseline JPEG from stb_image_write (standard Huffman tables).
std::vector<std::uint8_t> jpeg_bytes(int h, int w) {
  std::vector<std::uint8_t> px;
  for (int i = 0; i < h * w * 3; ++i) px.push_back(static_cast<std::uint8_t>(i * 37));
  std::vector<std::uint8_t> out;
  REQUIRE(stbi_write_jpg_to_func(
              [](void* ctx, void* data, int size) {
                auto* o = static_cast<std::vector<std::uint8_t>*>(ctx);
                o->insert(o->end(), static_cast<std::uint8_t*>(data),
                          static_cast<std::uint8_t*>(data) + size);
              },
              &out, w, h, 3, px.data(), 90) != 0);
  return out;
}
// Offset of the first DHT segment (FF C4) in a JPEG.
std::size_t first_dht(const std::vector<std::uint8_t>& j) {
  for (std::size_t i = 2; i + 1 < j.size(); ++i)
    if (j[i] == 0xff && j[i + 1] == 0xc4) return i;
  FAIL("no DHT segment");
  return 0;
}
// A DHT segment whose one table has 16 x 255 = 4080 codes.
std::vector<std::uint8_t> bad_dht() {
  std::vector<std::uint8_t> seg{0xff, 0xc4, 0x00, 0x13, 0x00};
  for (int k = 0; k < 16; ++k) seg.push_back(0xff);
  return seg;
}
}  // namespace

TEST_CASE("image: a JPEG Huffman table with more than 256 codes is refused before decoding") {
  const auto good = jpeg_bytes(8, 16);
  CHECK(io::decode_image_rgb(good, "good.jpg").w == 16);
  SUBCASE("in the header") {
    // The first table's counts now sum to 16 x 255 (stb_image 2.27 would
    // write past its 257-entry size list; AddressSanitizer reports it).
    auto bad = good;
    const std::size_t at = first_dht(bad);
    for (std::size_t k = 0; k < 16; ++k) bad[at + 5 + k] = 0xff;
    CHECK(contains(error_of([&] { io::decode_image_rgb(bad, "bad.jpg"); }),
                   "bad.jpg: not a decodable image (corrupt JPEG: a Huffman table with 4080 "
                   "codes, at most 256 are allowed)"));
  }
  SUBCASE("after the first scan (where a progressive JPEG may define tables)") {
    auto bad = good;
    REQUIRE(bad[bad.size() - 2] == 0xff);
    REQUIRE(bad[bad.size() - 1] == 0xd9);
    const auto seg = bad_dht();
    bad.insert(bad.end() - 2, seg.begin(), seg.end());
    CHECK(contains(error_of([&] { io::decode_image_rgb(bad, "late.jpg"); }),
                   "a Huffman table with 4080 codes"));
  }
  SUBCASE("the same bytes inside a segment stb_image skips are harmless") {
    // An APP1 segment (e.g. EXIF) holding the bytes of a bad DHT segment.
    auto ok = good;
    std::vector<std::uint8_t> app1{0xff, 0xe1, 0x00, 0x17};
    const auto seg = bad_dht();
    app1.insert(app1.end(), seg.begin(), seg.end());
    ok.insert(ok.begin() + 2, app1.begin(), app1.end());
    CHECK(io::decode_image_rgb(ok, "exif.jpg").w == 16);
  }
}

namespace {
std::size_t first_marker(const std::vector<std::uint8_t>& j, std::uint8_t m) {
  for (std::size_t i = 2; i + 1 < j.size(); ++i)
    if (j[i] == 0xff && j[i + 1] == m) return i;
  FAIL("marker not found");
  return 0;
}
}  // namespace

TEST_CASE("image: a JPEG scan that uses an undefined table is refused before decoding") {
  // stb_image 2.27 would decode with uninitialized tables (out-of-bounds
  // reads through a garbage code offset, garbage quantizers).
  const auto good = jpeg_bytes(8, 16);
  SUBCASE("Huffman table") {
    auto bad = good;
    bad[first_marker(bad, 0xda) + 6] = 0x30;  // first scan component: DC table 3, AC table 0
    CHECK(contains(error_of([&] { io::decode_image_rgb(bad, "h.jpg"); }),
                   "corrupt JPEG: Huffman table DC 3 is used but not defined"));
  }
  SUBCASE("quantization table") {
    auto bad = good;
    bad[first_marker(bad, 0xc0) + 12] = 3;  // first frame component: quantization table 3
    CHECK(contains(error_of([&] { io::decode_image_rgb(bad, "q.jpg"); }),
                   "corrupt JPEG: quantization table 3 is used but not defined"));
  }
}

TEST_CASE("image: PNM headers stb_image 2.27 mishandles are refused") {
  CHECK(contains(error_of([&] {
                   io::decode_image_rgb(bytes_of("P5\n2 1\n65535\n\x01\x02\x03\x04"), "w.pgm");
                 }),
                 "16-bit PNM (maximum value above 255) is not supported"));
  CHECK(contains(
      error_of([&] { io::decode_image_rgb(bytes_of("P6\n3333333333 1\n255\n"), "w.ppm"); }),
      "PNM width above 16777216"));
  CHECK(contains(error_of([&] {
                   io::decode_image_rgb(bytes_of("P6 # c\n1 99999999999999999999\n255\n"), "h.ppm");
                 }),
                 "PNM height above 16777216"));
}

TEST_CASE("image: a BMP whose pixel rows the file does not hold is refused") {
  // A 4 x 3 24-bit BMP (54-byte header, rows of 12 bytes: 90 bytes in all).
  std::vector<std::uint8_t> bmp(90, 0);
  auto put_in = [](std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i)
      b[at + static_cast<std::size_t>(i)] = std::uint8_t(v >> (8 * i));
  };
  auto put = [&](std::size_t at, std::uint32_t v, int bytes) { put_in(bmp, at, v, bytes); };
  bmp[0] = 'B';
  bmp[1] = 'M';
  put(2, 90, 4);   // file size
  put(10, 54, 4);  // pixel data offset
  put(14, 40, 4);  // BITMAPINFOHEADER
  put(18, 4, 4);   // width
  put(22, 3, 4);   // height
  put(26, 1, 2);   // planes
  put(28, 24, 2);  // bits a pixel
  for (std::size_t i = 54; i < 90; ++i) bmp[i] = static_cast<std::uint8_t>(i);
  const io::image_u8 img = io::decode_image_rgb(bmp, "ok.bmp");
  CHECK(img.w == 4);
  CHECK(img.h == 3);
  auto cut = bmp;
  cut.pop_back();
  CHECK(contains(error_of([&] { io::decode_image_rgb(cut, "cut.bmp"); }),
                 "cut.bmp: not a decodable image (truncated BMP: 4 x 3 pixels at 24 bits need the "
                 "pixel data at byte 54 and 12 bytes a row, the file has 89 bytes)"));
  auto tall = bmp;  // top-down, 262150 rows claimed
  put_in(tall, 22, static_cast<std::uint32_t>(-262150), 4);
  CHECK(contains(error_of([&] { io::decode_image_rgb(tall, "tall.bmp"); }), "truncated BMP"));
}

TEST_CASE("PSD: RGB decodes, a PSD with an alpha channel is refused before stb_image") {
  // 2 x 1 PSD, 8 bits, raw planar data: header, three empty sections, compression 0.
  auto psd = [](int channels) {
    std::vector<std::uint8_t> b = {'8', 'B', 'P', 'S', 0, 1, 0, 0, 0, 0, 0, 0};
    b.push_back(0);
    b.push_back(static_cast<std::uint8_t>(channels));
    for (std::uint8_t v : {0, 0, 0, 1, 0, 0, 0, 2, 0, 8, 0, 3}) b.push_back(v);  // h, w, depth, RGB
    for (int i = 0; i < 12; ++i) b.push_back(0);  // colour mode, resources, layers: empty
    b.push_back(0);
    b.push_back(0);  // raw
    for (int c = 0; c < channels; ++c) {
      b.push_back(static_cast<std::uint8_t>(10 + c));
      b.push_back(static_cast<std::uint8_t>(100 + c));
    }
    return b;
  };
  const io::image_u8 rgb = io::decode_image_rgb(psd(3), "rgb.psd");
  CHECK(rgb.w == 2);
  CHECK(rgb.h == 1);
  CHECK(rgb.data == std::vector<std::uint8_t>{10, 11, 12, 100, 101, 102});
  CHECK(contains(error_of([&] { io::decode_image_rgb(psd(4), "rgba.psd"); }),
                 "rgba.psd: not a decodable image (PSD with 4 channels (an alpha channel) is not "
                 "supported: 1 to 3 channels expected)"));
}

TEST_CASE("resize: hand-computed enlarge and shrink along one axis") {
  // Enlarge 2 -> 4: output centres at -0.25, 0.25, 0.75, 1.25 input pixels,
  // edges clamped: [p0, .75 p0 + .25 p1, .25 p0 + .75 p1, p1].
  const auto up = io::resize_bilinear(make(1, 2, 1, {0, 100}), 1, 4);
  CHECK(up.data == std::vector<std::uint8_t>{0, 25, 75, 100});
  // Shrink 4 -> 2: triangle of half-width 2 around centres 0.5 and 2.5,
  // normalized weights (.125, .375, .375, .125) with the outer tap clamped:
  // [.5 p0 + .375 p1 + .125 p2, .125 p1 + .375 p2 + .5 p3].
  const auto down = io::resize_bilinear(make(1, 4, 1, {0, 40, 80, 120}), 1, 2);
  CHECK(down.data == std::vector<std::uint8_t>{25, 95});
  // Same along the vertical axis, with 3 channels kept apart.
  const auto col = io::resize_bilinear(make(2, 1, 3, {0, 10, 200, 100, 50, 200}), 4, 1);
  CHECK(col.data == std::vector<std::uint8_t>{0, 10, 200, 25, 20, 200, 75, 40, 200, 100, 50, 200});
}

TEST_CASE("resize: constants stay constant, same size is identity, checks") {
  std::vector<std::uint8_t> v(97 * 61 * 3);
  for (std::size_t i = 0; i < v.size(); i += 3) {
    v[i] = 12;
    v[i + 1] = 200;
    v[i + 2] = 255;
  }
  const auto im = make(97, 61, 3, v);
  for (auto [h, w] : {std::pair<int, int>{32, 32}, {200, 7}, {1, 1}}) {
    const auto r = io::resize_bilinear(im, h, w);
    REQUIRE(r.data.size() == static_cast<std::size_t>(h * w * 3));
    for (std::size_t i = 0; i < r.data.size(); i += 3) {
      REQUIRE(int(r.data[i]) == 12);
      REQUIRE(int(r.data[i + 1]) == 200);
      REQUIRE(int(r.data[i + 2]) == 255);
    }
  }
  auto ramp = make(3, 5, 1, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
  CHECK(io::resize_bilinear(ramp, 3, 5).data == ramp.data);
  CHECK_THROWS_AS(io::resize_bilinear(ramp, 0, 5), mixq::error);
  ramp.data.pop_back();
  CHECK_THROWS_AS(io::resize_bilinear(ramp, 2, 2), mixq::error);
}

TEST_CASE("resize: shrinking averages instead of point-sampling (no aliasing)") {
  // A 1-pixel checkerboard shrunk 8x must come out mid-grey everywhere;
  // point-sampled bilinear would give pure black or white.
  std::vector<std::uint8_t> v(256 * 256);
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x)
      v[static_cast<std::size_t>(y * 256 + x)] = ((x + y) % 2) ? 255 : 0;
  const auto r = io::resize_bilinear(make(256, 256, 1, v), 32, 32);
  for (auto p : r.data) REQUIRE((p >= 120 && p <= 135));
}

TEST_CASE("image: load_image_rgb_resized gives 32x32 RGB") {
  temp_dir d;
  auto ppm = bytes_of("P6\n64 48\n255\n");
  for (int i = 0; i < 64 * 48; ++i) {
    ppm.push_back(static_cast<std::uint8_t>(i % 64 * 4));
    ppm.push_back(0);
    ppm.push_back(99);
  }
  write_bytes(d.file("photo.ppm"), ppm);
  const auto im = io::load_image_rgb_resized(d.file("photo.ppm"));
  CHECK(im.h == 32);
  CHECK(im.w == 32);
  CHECK(im.c == 3);
  CHECK(int(im.at(5, 0, 1)) == 0);
  CHECK(int(im.at(5, 0, 2)) == 99);
  CHECK(im.at(5, 31, 0) > im.at(5, 0, 0));  // the ramp survives
}
