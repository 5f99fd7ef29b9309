// SPDX-License-Identifier: MIT
#include "core/rate_limit.hpp"

#include <algorithm>

namespace iot::core {

namespace {
constexpr std::chrono::nanoseconds k_window = std::chrono::minutes(1);
}

RateLimit::RateLimit(int limit, Clock clock)
    : m_limit(limit), m_spacing(limit > 0 ? k_window / limit : k_window),
      m_burst(k_window - m_spacing), m_clock(std::move(clock)) {}

RateLimit::Nanos RateLimit::now() const {
  const auto t = m_clock ? m_clock() : std::chrono::steady_clock::now();
  return t.time_since_epoch();
}

std::optional<int> RateLimit::refuse(const std::string& key) {
  if (m_limit <= 0) {
    return std::nullopt;
  }
  const Nanos t = now();
  const std::lock_guard lock(m_mutex);
  forget_idle(t);
  const auto it = m_due.try_emplace(key, t).first;
  const Nanos due = std::max(it->second, t);
  if (due - t > m_burst) {
    // It would fit once `due - burst` has come: round up to whole seconds, at least one.
    const auto wait = due - m_burst - t;
    const auto seconds = std::chrono::ceil<std::chrono::seconds>(wait).count();
    return static_cast<int>(std::max<std::int64_t>(seconds, 1));
  }
  it->second = due + m_spacing;
  return std::nullopt;
}

void RateLimit::forget_idle(Nanos now) {
  if (now < m_next_sweep) {
    return;
  }
  m_next_sweep = now + k_window;
  std::erase_if(m_due, [now](const auto& entry) { return entry.second <= now; });
}

std::size_t RateLimit::keys() const {
  const std::lock_guard lock(m_mutex);
  return m_due.size();
}

} // namespace iot::core
