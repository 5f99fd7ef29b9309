// SPDX-License-Identifier: MIT
#include "core/interrupt.hpp"

#include <atomic>

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

} // namespace iot::core
