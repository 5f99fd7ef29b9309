// SPDX-License-Identifier: MIT
#include "commands/context.hpp"

#include <chrono>

namespace iot::commands {

Seams Seams::real() {
  Seams s;
  s.open_port = [](const std::string& path, const serial::PortSettings& settings) {
    return serial::open_port(path, settings);
  };
  s.make_http = [](const cloud::HttpOptions& options) { return cloud::make_curl_client(options); };
  s.now_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  return s;
}

} // namespace iot::commands
