// SPDX-License-Identifier: MIT
// The MQTT probe against a tiny broker on 127.0.0.1 that reads one CONNECT and answers as told
// (a CONNACK code, silence, or a close); the TLS path against a real mosquitto is in
// tests/integration/test_creds_probe.sh.
#include "cloud/mqtt_probe.hpp"
#include "core/interrupt.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace iot;
using namespace iot::cloud;
using namespace std::chrono_literals;

namespace {

// What the broker does after reading a CONNECT: answer CONNACK with this code, or not.
constexpr int k_silent = -1;
constexpr int k_close = -2;

struct Connect {
  int level = 0;
  int flags = 0;
  int keepalive = 0;
  std::string client_id, username, password;
};

class FakeBroker {
public:
  explicit FakeBroker(int answer) : m_answer(answer) {
    m_listen = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(m_listen >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(m_listen, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(m_listen, 8) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(m_listen, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { serve(); });
  }
  ~FakeBroker() {
    m_stop = true;
    m_thread.join();
    ::close(m_listen);
  }
  FakeBroker(const FakeBroker&) = delete;
  FakeBroker& operator=(const FakeBroker&) = delete;

  [[nodiscard]] std::uint16_t port() const { return m_port; }
  [[nodiscard]] std::vector<Connect> connects() {
    const std::lock_guard lock(m_mutex);
    return m_connects;
  }

private:
  void serve() {
    std::vector<int> open;
    while (!m_stop) {
      pollfd p{m_listen, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) {
        const int fd = ::accept(m_listen, nullptr, nullptr);
        if (fd >= 0) {
          handle(fd);
          open.push_back(fd);
        }
      }
    }
    for (const int fd : open) {
      ::close(fd);
    }
  }

  // Reads until a whole MQTT packet is in (or the peer closes) and answers as told.
  void handle(int fd) {
    std::string in;
    char buf[512];
    for (int i = 0; i < 100 && !complete(in); ++i) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) {
        continue;
      }
      const auto n = ::read(fd, buf, sizeof buf);
      if (n <= 0) {
        return; // the probe's own TCP check: connects and closes
      }
      in.append(buf, static_cast<std::size_t>(n));
    }
    if (!complete(in)) {
      return;
    }
    if (static_cast<unsigned char>(in[0]) == 0x10) {
      const std::lock_guard lock(m_mutex);
      m_connects.push_back(parse(in));
    }
    if (m_answer == k_close) {
      ::shutdown(fd, SHUT_RDWR);
    } else if (m_answer >= 0) {
      const unsigned char connack[] = {0x20, 0x02, 0x00, static_cast<unsigned char>(m_answer)};
      REQUIRE(::write(fd, connack, sizeof connack) == 4);
    }
  }

  static bool complete(const std::string& in) {
    if (in.size() < 2) {
      return false;
    }
    std::size_t length = 0, shift = 0, i = 1;
    for (; i < in.size() && i < 5; ++i) {
      const auto byte = static_cast<unsigned char>(in[i]);
      length |= static_cast<std::size_t>(byte & 0x7f) << shift;
      shift += 7;
      if ((byte & 0x80) == 0) {
        return in.size() >= i + 1 + length;
      }
    }
    return false;
  }

  static Connect parse(const std::string& in) {
    std::size_t pos = 1;
    while ((static_cast<unsigned char>(in[pos]) & 0x80) != 0) {
      ++pos;
    }
    ++pos;
    auto u16 = [&] {
      const int v =
          (static_cast<unsigned char>(in[pos]) << 8) | static_cast<unsigned char>(in[pos + 1]);
      pos += 2;
      return v;
    };
    auto text = [&] {
      const auto n = static_cast<std::size_t>(u16());
      std::string s = in.substr(pos, n);
      pos += n;
      return s;
    };
    Connect c;
    CHECK(text() == "MQTT");
    c.level = static_cast<unsigned char>(in[pos++]);
    c.flags = static_cast<unsigned char>(in[pos++]);
    c.keepalive = u16();
    c.client_id = text();
    if ((c.flags & 0x80) != 0) {
      c.username = text();
    }
    if ((c.flags & 0x40) != 0) {
      c.password = text();
    }
    return c;
  }

  int m_answer;
  int m_listen = -1;
  std::uint16_t m_port = 0;
  std::atomic<bool> m_stop{false};
  std::mutex m_mutex;
  std::vector<Connect> m_connects;
  std::thread m_thread;
};

MqttProbeTarget plain_target(std::uint16_t port) {
  MqttProbeTarget t;
  t.host = "127.0.0.1";
  t.port = port;
  t.tls = false;
  t.client_id = "pk1.dev-1|securemode=3,signmethod=hmacsha256|";
  t.username = "dev-1&pk1";
  t.password = "0123456789abcdef";
  t.keepalive_s = 90;
  t.timeout = 5s;
  return t;
}

std::vector<std::string> step_names(const MqttProbeResult& r) {
  std::vector<std::string> out;
  for (const auto& s : r.steps) {
    out.push_back(s.name + (s.ok ? "" : "!"));
  }
  return out;
}

} // namespace

TEST_CASE("mqtt probe: CONNACK 0 is accepted, and the CONNECT carries the credentials") {
  FakeBroker broker(0);
  const auto r = probe_mqtt(plain_target(broker.port()));
  CHECK(r.verdict == ProbeVerdict::accepted);
  CHECK(r.connack == 0);
  CHECK(step_names(r) == std::vector<std::string>{"dns", "tcp", "connack"});
  const auto connects = broker.connects();
  REQUIRE(connects.size() == 1);
  CHECK(connects[0].level == 4);          // MQTT 3.1.1
  CHECK((connects[0].flags & 0x02) != 0); // clean session
  CHECK(connects[0].keepalive == 90);
  CHECK(connects[0].client_id == "pk1.dev-1|securemode=3,signmethod=hmacsha256|");
  CHECK(connects[0].username == "dev-1&pk1");
  CHECK(connects[0].password == "0123456789abcdef");
}

TEST_CASE("mqtt probe: CONNACK 4 and 5 are bad credentials, 2 and 3 a refusal of another kind") {
  for (const int code : {4, 5}) {
    FakeBroker broker(code);
    const auto r = probe_mqtt(plain_target(broker.port()));
    CHECK(r.verdict == ProbeVerdict::bad_credentials);
    CHECK(r.connack == code);
    CHECK(step_names(r) == std::vector<std::string>{"dns", "tcp", "connack!"});
    CHECK(r.detail.find(connack_text(code)) != std::string::npos);
  }
  for (const int code : {2, 3}) {
    FakeBroker broker(code);
    const auto r = probe_mqtt(plain_target(broker.port()));
    CHECK(r.verdict == ProbeVerdict::refused);
    CHECK(r.connack == code);
  }
  CHECK(connack_text(4) == "bad user name or password");
  CHECK(connack_text(5) == "not authorized");
}

TEST_CASE("mqtt probe: a server that closes after CONNECT is a protocol failure") {
  FakeBroker broker(k_close);
  const auto r = probe_mqtt(plain_target(broker.port()));
  CHECK(r.verdict == ProbeVerdict::protocol);
  CHECK(r.connack == -1);
  CHECK(step_names(r) == std::vector<std::string>{"dns", "tcp", "connack!"});
}

TEST_CASE("mqtt probe: a silent server times out at the CONNACK step, on time") {
  FakeBroker broker(k_silent);
  auto t = plain_target(broker.port());
  t.timeout = 400ms;
  const auto start = std::chrono::steady_clock::now();
  const auto r = probe_mqtt(t);
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(r.verdict == ProbeVerdict::timeout);
  CHECK(step_names(r) == std::vector<std::string>{"dns", "tcp", "connack!"});
  CHECK(took >= 400ms);
  CHECK(took < 3s);
}

TEST_CASE("mqtt probe: an interruption ends the wait for the CONNACK") {
  FakeBroker broker(k_silent);
  auto t = plain_target(broker.port());
  t.timeout = 30s;
  std::thread stopper([] {
    std::this_thread::sleep_for(200ms);
    core::request_interrupt();
  });
  const auto start = std::chrono::steady_clock::now();
  const auto r = probe_mqtt(t);
  const auto took = std::chrono::steady_clock::now() - start;
  stopper.join();
  core::clear_interrupt();
  CHECK(r.verdict == ProbeVerdict::interrupted);
  CHECK(took < 5s);
}

TEST_CASE("mqtt probe: a closed port fails at the TCP step, and no MQTT client is started") {
  std::uint16_t port = 0;
  {
    FakeBroker gone(0);
    port = gone.port();
  }
  const auto r = probe_mqtt(plain_target(port));
  CHECK(r.verdict == ProbeVerdict::tcp);
  CHECK(step_names(r) == std::vector<std::string>{"dns", "tcp!"});
  CHECK(r.detail.find("refused") != std::string::npos);
}

TEST_CASE("mqtt probe: TLS to a server that does not speak it fails at the TLS step") {
  FakeBroker broker(k_close);
  auto t = plain_target(broker.port());
  t.tls = true;
  const auto r = probe_mqtt(t);
  CHECK(r.verdict == ProbeVerdict::tls);
  CHECK(step_names(r) == std::vector<std::string>{"dns", "tcp", "tls!"});
}

TEST_CASE("mqtt probe: a name that does not resolve fails at the DNS step") {
  auto t = plain_target(1883);
  t.host = "no-such-host.invalid";
  t.timeout = 30s;
  const auto r = probe_mqtt(t);
  CHECK(r.verdict == ProbeVerdict::dns);
  CHECK(step_names(r) == std::vector<std::string>{"dns!"});
  CHECK(r.detail.find("no-such-host.invalid") != std::string::npos);
}
