// SPDX-License-Identifier: MIT
#include "core/interrupt.hpp"

#include <atomic>
#include <thread>

namespace iot::core {
namespace {
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");
} // namespace

bool interrupt_requested() noexcept {
  return g_interrupted.load(std::memory_order_relaxed);
}
void request_interrupt() noexcept {
  g_interrupted.store(true, std::memory_order_relaxed);
}
void clear_interrupt() noexcept {
  g_interrupted.store(false, std::memory_order_relaxed);
}

bool sleep_unless_interrupted(std::chrono::milliseconds d) {
  using Clock = std::chrono::steady_clock;
  const auto until = Clock::now() + d;
  for (;;) {
    if (interrupt_requested()) {
      return false;
    }
    const auto now = Clock::now();
    if (now >= until) {
      return true;
    }
    std::this_thread::sleep_for(
        std::min<Clock::duration>(until - now, std::chrono::milliseconds(50)));
  }
}

} // namespace iot::core
