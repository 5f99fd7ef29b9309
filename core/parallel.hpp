// SPDX-License-Identifier: MIT
// The one worker pool of the tool: fn(i) for every index of [0, count) on at most `width`
// threads, each index once and handed out in order (so a slow index delays only itself). The
// calling thread alone when width or count is 1. Once core::interrupt_requested() no further
// index is handed out: the indices that ran are always a prefix [0, started), whatever the
// threads' timing, so a caller knows exactly what was done. fn must not throw; it may run on
// any thread, at the same time as itself, so it touches only what belongs to its index or is
// locked.
#pragma once

#include "core/interrupt.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace iot::core {

// Returns how many indices were started (count unless interrupted).
template <class F> std::size_t parallel_for(std::size_t count, std::size_t width, F&& fn) {
  std::atomic<std::size_t> next{0};
  const auto worker = [&] {
    while (!interrupt_requested()) {
      const std::size_t i = next.fetch_add(1);
      if (i >= count) {
        return;
      }
      fn(i);
    }
  };
  const std::size_t threads = std::clamp<std::size_t>(width, 1, std::max<std::size_t>(count, 1));
  if (threads == 1) {
    worker();
  } else {
    std::vector<std::jthread> pool;
    pool.reserve(threads);
    for (std::size_t t = 0; t < threads; ++t) {
      pool.emplace_back(worker);
    }
  } // the jthreads join here
  return std::min(next.load(), count);
}

} // namespace iot::core
