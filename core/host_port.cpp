// SPDX-License-Identifier: MIT
#include "core/host_port.hpp"

#include <charconv>

namespace iot::core {

Result<HostPort> parse_host_port(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return fail(ErrorKind::usage,
                std::string(text) + ": " + std::string(why) +
                    " (give HOST:PORT, e.g. 127.0.0.1:8883, or [IPV6]:PORT)");
  };
  HostPort out;
  std::string_view rest;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return bad("no closing ']'");
    }
    out.host = std::string(text.substr(1, close - 1));
    rest = text.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      return bad("text after ']' is not :PORT");
    }
  } else {
    const std::size_t colon = text.rfind(':');
    out.host = std::string(text.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
    if (out.host.find(':') != std::string::npos) {
      return bad("an IPv6 address goes in brackets");
    }
  }
  if (!rest.empty()) {
    const std::string_view digits = rest.substr(1);
    int port = -1;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size() || port < 0 ||
        port > 65535) {
      return bad("the port must be a number 0-65535");
    }
    out.port = port;
  }
  return out;
}

} // namespace iot::core
