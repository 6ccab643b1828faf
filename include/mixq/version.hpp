#pragma once
// The one place the version lives; CMakeLists.txt parses these lines.
#define MIXQ_VERSION_MAJOR 0
#define MIXQ_VERSION_MINOR 1
#define MIXQ_VERSION_PATCH 0

namespace mixq {
inline constexpr int version_major = MIXQ_VERSION_MAJOR;
inline constexpr int version_minor = MIXQ_VERSION_MINOR;
inline constexpr int version_patch = MIXQ_VERSION_PATCH;
}  // namespace mixq
