// SPDX-License-Identifier: MIT
// A refusing rate limit per key: at most `limit` events in any 60 s, never 2 × limit across a
// minute boundary the way a fixed window allows. Each key keeps one time, the generic cell rate
// algorithm (GCRA): events are spaced 60 s / limit apart, and a key that has been quiet may use up
// to `limit` of them at once. Memory: one entry per key heard from in the last minute.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace iot::core {

class RateLimit {
public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // limit <= 0: no limit. clock: null = std::chrono::steady_clock.
  explicit RateLimit(int limit, Clock clock = {});

  // Counts one event of `key` when it fits; otherwise counts nothing and returns the whole
  // seconds (at least 1) until one would fit, for a Retry-After.
  [[nodiscard]] std::optional<int> refuse(const std::string& key);

  // Keys held now (for tests and metrics).
  [[nodiscard]] std::size_t keys() const;

private:
  using Nanos = std::chrono::nanoseconds;
  [[nodiscard]] Nanos now() const;
  void forget_idle(Nanos now);

  const int m_limit;
  const Nanos m_spacing; // 60 s / limit
  const Nanos m_burst;   // how far ahead of now a key's time may run: 60 s - spacing
  Clock m_clock;
  mutable std::mutex m_mutex;
  // When each key's next event is due if it were evenly spaced; a time at or before now is the
  // same as no entry, so those are dropped once a minute.
  std::unordered_map<std::string, Nanos> m_due;
  Nanos m_next_sweep{0};
};

} // namespace iot::core
