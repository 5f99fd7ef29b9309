// SPDX-License-Identifier: MIT
// The MQTT keepalive limits of Alibaba Cloud IoT (docs/aliyun-iot-protocol.md §5) and the seed
// FAQ's advice for cellular modules (§5), once: `creds mqtt` checks a keepalive against them,
// `diagnose` judges the keepalive a device's disconnects point at and names the fix.
#pragma once

#include <cstdint>
#include <string>

namespace iot::core::keepalive {

// The platform refuses a CONNECT whose keepalive is outside this range.
inline constexpr std::int64_t min_s = 30;
inline constexpr std::int64_t max_s = 1200;
// For cellular modules: 120 s, not below 60 s (a slow send exceeds 1.5 × keepalive), not above
// 240 s (the carrier's NAT / base station closes idle connections after about 4 minutes).
inline constexpr std::int64_t advised_s = 120;
inline constexpr std::int64_t advised_min_s = 60;
inline constexpr std::int64_t advised_max_s = 240;
// The server checks for silent connections every 30 s, so a drop comes up to this late after
// keepalive × 1.5.
inline constexpr std::int64_t server_check_s = 30;

// "60–240 s", for messages.
inline std::string advised_range() {
  return std::to_string(advised_min_s) + "–" + std::to_string(advised_max_s) + " s";
}

} // namespace iot::core::keepalive
