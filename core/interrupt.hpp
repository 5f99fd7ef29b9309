// SPDX-License-Identifier: MIT
// The process-wide "stop requested" flag. cli/ sets it from its SIGINT/SIGTERM handler; long
// work polls it between safe points, finishes what is in flight, and returns
// ErrorKind::interrupted, so no file is left half written. Async-signal-safe to set.
#pragma once

#include <chrono>

namespace iot::core {

[[nodiscard]] bool interrupt_requested() noexcept;
void request_interrupt() noexcept;
// For tests and for a long-running loop that handled one interruption and goes on.
void clear_interrupt() noexcept;

// Sleeps for d in slices of at most 50 ms; false as soon as an interruption is requested (at
// once when it already was), true when the whole time passed.
[[nodiscard]] bool sleep_unless_interrupted(std::chrono::milliseconds d);

} // namespace iot::core
