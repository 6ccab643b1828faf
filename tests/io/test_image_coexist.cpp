// A program with its own stb_image (here: header + implementation, global
// namespace, external linkage) in the same translation unit as
// mixq/io/image.hpp, included before and used alongside it. This file
// compiling and linking with test_image.cpp (which uses only mixq's private
// copy) is the test that the two cannot clash.
#define STB_IMAGE_IMPLEMENTATION
#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#else
#include <stb_image.h>
#endif

#include <doctest/doctest.h>

#include "mixq/io/image.hpp"

TEST_CASE("image: coexists with a program's own stb_image") {
  const std::string ppm_head = "P6\n1 1\n255\n";
  std::vector<std::uint8_t> ppm(ppm_head.begin(), ppm_head.end());
  ppm.insert(ppm.end(), {1, 2, 3});
  int w = 0, h = 0, c = 0;
  unsigned char* p = stbi_load_from_memory(ppm.data(), static_cast<int>(ppm.size()), &w, &h, &c, 3);
  REQUIRE(p != nullptr);
  CHECK(int(p[2]) == 3);
  stbi_image_free(p);
  const auto im = mixq::io::decode_image_rgb(ppm, "mem.ppm");
  CHECK(im.data == std::vector<std::uint8_t>{1, 2, 3});
}
