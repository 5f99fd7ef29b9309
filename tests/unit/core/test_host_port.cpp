// SPDX-License-Identifier: MIT
#include "core/host_port.hpp"

#include <doctest/doctest.h>

using iot::core::HostPort;
using iot::core::parse_host_port;

TEST_CASE("host_port: HOST, HOST:PORT, [IPV6]:PORT, :PORT") {
  CHECK(parse_host_port("127.0.0.1:8883").value() == HostPort{"127.0.0.1", 8883});
  CHECK(parse_host_port("broker.lan").value() == HostPort{"broker.lan", std::nullopt});
  CHECK(parse_host_port("[::1]:9000").value() == HostPort{"::1", 9000});
  CHECK(parse_host_port("[fe80::1]").value() == HostPort{"fe80::1", std::nullopt});
  CHECK(parse_host_port(":7000").value() == HostPort{"", 7000});
  CHECK(parse_host_port("h:0").value() == HostPort{"h", 0});
  CHECK(parse_host_port("h:65535").value() == HostPort{"h", 65535});
}

TEST_CASE("host_port: a bad port or bracket is a usage error naming the text and the form") {
  for (const char* bad : {"h:", "h:65536", "h:-1", "h:1x", "[::1]9000", "[::1", "::1", "a:b:1"}) {
    CAPTURE(bad);
    const auto r = parse_host_port(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == iot::ErrorKind::usage);
    CHECK(r.error().message.find(bad) != std::string::npos);
    CHECK(r.error().message.find("HOST:PORT") != std::string::npos);
  }
}
