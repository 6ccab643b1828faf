#pragma once
// Static memory planning: every buffer an inference needs (activations in
// each format, scratch, logits) is known at load time with its size and the
// steps during which it is live; place_buffers() gives each an offset in one
// arena so that buffers live at the same step never overlap. Greedy, largest
// first, lowest fitting offset: for a chain network such as ResNet20 it
// reaches the peak of live bytes (block input + two conv outputs).
#include <algorithm>
#include <cstdint>
#include <vector>

namespace mixq {
namespace deploy {

struct planned_buffer {
  std::int64_t bytes = 0;
  int first = 0, last = 0;   ///< live during steps [first, last]
  std::int64_t offset = -1;  ///< set by place_buffers, a multiple of `align`
};

/// Assigns offsets; returns the arena size (0 for no buffers).
inline std::int64_t place_buffers(std::vector<planned_buffer>& bufs, std::int64_t align = 64) {
  std::vector<std::size_t> order(bufs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return bufs[a].bytes > bufs[b].bytes; });
  std::vector<std::size_t> placed;
  std::int64_t total = 0;
  for (std::size_t i : order) {
    planned_buffer& b = bufs[i];
    const std::int64_t size = (b.bytes + align - 1) / align * align;
    // conflicting placed buffers, by offset
    std::vector<std::pair<std::int64_t, std::int64_t>> busy;
    for (std::size_t j : placed) {
      const planned_buffer& o = bufs[j];
      if (o.first <= b.last && b.first <= o.last)
        busy.emplace_back(o.offset, o.offset + (o.bytes + align - 1) / align * align);
    }
    std::sort(busy.begin(), busy.end());
    std::int64_t at = 0;
    for (const auto& r : busy) {
      if (at + size <= r.first) break;
      if (r.second > at) at = r.second;
    }
    b.offset = at;
    placed.push_back(i);
    if (at + size > total) total = at + size;
  }
  return total;
}

}  // namespace deploy
}  // namespace mixq
