// SPDX-License-Identifier: MIT
// HOST:PORT as every option that takes an address spells it (`iotfleet-sim cloud --listen`,
// `creds probe --mqtt-endpoint`): HOST, HOST:PORT, [IPV6]:PORT or [IPV6]; the caller's policy
// (an empty host, port 0, a default port) is applied by the caller.
#pragma once

#include "core/error.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace iot::core {

struct HostPort {
  std::string host;        // "" when the text starts with ':'; IPv6 without brackets
  std::optional<int> port; // 0-65535; nullopt when the text has no port
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// ErrorKind::usage naming the text and the expected form for a bad port or an unclosed bracket.
[[nodiscard]] Result<HostPort> parse_host_port(std::string_view text);

} // namespace iot::core
