// SPDX-License-Identifier: MIT
// One MQTT connection attempt, made only to learn whether the endpoint accepts a credential:
// resolve the host, open TCP, the TLS handshake (verified: the system CAs plus an optional CA
// file, the host name checked), CONNECT (MQTT 3.1.1), read the CONNACK, DISCONNECT at once.
// Each step is timed; the first that fails is named, with what it means for a support engineer.
// Every wait is sliced so an interruption (core::interrupt_requested) ends it within ~100 ms.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::cloud {

struct MqttProbeTarget {
  std::string host;
  std::uint16_t port = 1883;
  bool tls = true;
  std::optional<std::string> ca_file; // trusted besides the system CAs
  std::string client_id;
  std::string username;
  std::string password;
  int keepalive_s = 120;
  std::chrono::milliseconds timeout{10000}; // for the whole attempt
};

enum class ProbeVerdict {
  accepted,        // CONNACK 0
  bad_credentials, // CONNACK 4 (bad user name or password) or 5 (not authorized)
  refused,         // CONNACK 1, 2, 3 or another code
  dns,             // the host did not resolve
  tcp,             // no TCP connection
  tls,             // the handshake failed (certificate, protocol, closed during it)
  protocol,        // the server closed the connection or sent something other than a CONNACK
  timeout,         // a step took longer than the time left
  interrupted,     // Ctrl-C / SIGTERM
};

[[nodiscard]] std::string_view to_string(ProbeVerdict v);

struct ProbeStep {
  std::string name; // dns, tcp, tls, connack
  std::int64_t ms = 0;
  bool ok = false;
};

struct MqttProbeResult {
  ProbeVerdict verdict = ProbeVerdict::protocol;
  int connack = -1;             // the CONNACK return code, -1 without one
  std::string detail;           // what failed, in the words of the failing layer
  std::vector<ProbeStep> steps; // in order; the last one failed unless accepted
  [[nodiscard]] const ProbeStep* step(std::string_view name) const;
};

// The 3.1.1 CONNACK return code's name ("bad user name or password"), "code N" when unknown.
[[nodiscard]] std::string connack_text(int code);

[[nodiscard]] MqttProbeResult probe_mqtt(const MqttProbeTarget& target);

} // namespace iot::cloud
