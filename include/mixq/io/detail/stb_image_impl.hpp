#pragma once
// mixq's private copy of stb_image (Debian libstb-dev), compiled into every
// translation unit that includes mixq/io/image.hpp.
//
// It cannot clash with a program's own stb_image:
//  - everything is declared inside namespace mixq::io::detail::stbi and
//    STB_IMAGE_STATIC gives every function internal linkage, so no symbol is
//    exported and a program that links its own stb_image implementation sees
//    no duplicate definitions;
//  - the include guard and the configuration macros are saved and restored
//    (push_macro/pop_macro, supported by GCC, Clang and MSVC), so a program may
//    include <stb_image.h> (with or without STB_IMAGE_IMPLEMENTATION) before or
//    after this header.
// Configuration: STBI_NO_STDIO (mixq reads the file itself and decodes from
// memory, so errors can name the file), STBI_NO_HDR/STBI_NO_LINEAR (8-bit
// only), STBI_NO_SIMD (decoding one image is not on a hot path, and the SIMD
// path would include intrinsics headers inside a namespace).
#pragma GCC system_header

// The C headers stb_image includes, included here at global scope first so
// their include guards keep them out of the namespace below.
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#pragma push_macro("STBI_INCLUDE_STB_IMAGE_H")
#pragma push_macro("STB_IMAGE_IMPLEMENTATION")
#pragma push_macro("STB_IMAGE_STATIC")
#pragma push_macro("STBIDEF")
#pragma push_macro("STBI_NO_STDIO")
#pragma push_macro("STBI_NO_HDR")
#pragma push_macro("STBI_NO_LINEAR")
#pragma push_macro("STBI_NO_SIMD")
#pragma push_macro("STBI_ASSERT")
#undef STBI_INCLUDE_STB_IMAGE_H
#undef STBIDEF
#undef STBI_ASSERT
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_NO_SIMD
#define STBI_ASSERT(x) assert(x)

namespace mixq::io::detail::stbi {
#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#elif __has_include(<stb_image.h>)
#include <stb_image.h>
#else
#error "mixq/io/image.hpp needs stb_image.h (Debian: libstb-dev)"
#endif
}  // namespace mixq::io::detail::stbi

#undef STB_IMAGE_IMPLEMENTATION
#undef STB_IMAGE_STATIC
#undef STBIDEF
#undef STBI_NO_STDIO
#undef STBI_NO_HDR
#undef STBI_NO_LINEAR
#undef STBI_NO_SIMD
#undef STBI_ASSERT
#pragma pop_macro("STBI_ASSERT")
#pragma pop_macro("STBI_NO_SIMD")
#pragma pop_macro("STBI_NO_LINEAR")
#pragma pop_macro("STBI_NO_HDR")
#pragma pop_macro("STBI_NO_STDIO")
#pragma pop_macro("STBIDEF")
#pragma pop_macro("STB_IMAGE_STATIC")
#pragma pop_macro("STB_IMAGE_IMPLEMENTATION")
#pragma pop_macro("STBI_INCLUDE_STB_IMAGE_H")
