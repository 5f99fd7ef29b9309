// SPDX-License-Identifier: MIT
// The HTTP/1.1 server under `iotfleet serve`, over real sockets on 127.0.0.1 (plain HTTP; TLS is
// tested end to end by tests/integration/test_serve.sh): what it answers itself (malformed
// requests, a body or headers too large, chunked bodies, other versions), keep-alive and
// pipelining, 100-continue, a slow client dropped by the read timeout whatever it trickles, the
// bound on connections, and a stop that answers the request being handled.
#include "commands/serve_http.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace http = iot::commands::http;
using namespace std::chrono_literals;

namespace {

// A server on a free port with a handler that echoes the request, on its own thread.
class TestServer {
public:
  explicit TestServer(http::Limits limits, std::chrono::milliseconds handler_delay = 0ms)
      : m_server(
            limits,
            nullptr,
            [this, handler_delay](const http::Request& req) {
              ++handled;
              std::this_thread::sleep_for(handler_delay);
              http::Response r;
              r.content_type = "text/plain";
              r.body = req.method + " " + req.path + " [" + req.body + "] from " + req.remote;
              if (req.path == "/retry") {
                r.status = 429;
                r.headers.emplace_back("Retry-After", "7");
              }
              return r;
            },
            [this](const http::Request&, const http::Response& res, double) {
              std::lock_guard lock(m_log_mutex);
              m_logged.push_back(res.status);
            },
            2,
            2) {
    auto bound = m_server.bind("127.0.0.1", 0);
    REQUIRE(bound.has_value());
    port = *bound;
    m_thread = std::thread([this] { m_server.run(); });
  }
  ~TestServer() { stop(); }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  void stop() {
    if (m_thread.joinable()) {
      m_server.stop();
      m_thread.join();
    }
  }

  std::vector<int> logged_statuses() {
    std::lock_guard lock(m_log_mutex);
    return m_logged;
  }

  int port = 0;
  std::atomic<int> handled{0};

private:
  std::mutex m_log_mutex;
  std::vector<int> m_logged;
  http::Server m_server;
  std::thread m_thread;
};

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

void send_all(int fd, const std::string& bytes) {
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(bytes.size()));
}

// What the server sends until `until` has arrived (when given), it closes the connection, or
// `timeout` passes (then "<still open>" is appended when nothing was awaited).
std::string read_from(int fd, std::chrono::milliseconds timeout, const std::string& until = {}) {
  std::string got;
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (!until.empty() && got.find(until) != std::string::npos) {
      return got;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) {
      continue;
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      return got;
    }
    got.append(buf, static_cast<std::size_t>(n));
  }
  return until.empty() ? got + "<still open>" : got;
}

std::string read_until_closed(int fd, std::chrono::milliseconds timeout = 3000ms) {
  return read_from(fd, timeout);
}

std::string round_trip(int port, const std::string& request) {
  const int fd = connect_to(port);
  send_all(fd, request);
  std::string answer = read_until_closed(fd);
  ::close(fd);
  return answer;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

} // namespace

TEST_CASE("serve_http: a request is answered with its length, headers and the client's address") {
  TestServer s({});
  const std::string answer = round_trip(
      s.port,
      "POST /auth/register/device?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  CHECK(answer.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(answer.find("Content-Length: 49\r\n") != std::string::npos);
  CHECK(answer.find("Connection: close\r\n") != std::string::npos); // keep_alive 1
  CHECK(answer.ends_with("\r\n\r\nPOST /auth/register/device [hello] from 127.0.0.1"));
  const std::string retry = round_trip(s.port, "GET /retry HTTP/1.1\r\n\r\n");
  CHECK(retry.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
  CHECK(retry.find("\r\nRetry-After: 7\r\n") != std::string::npos);
}

TEST_CASE("serve_http: requests it cannot serve get the server's own answer and are not handled") {
  http::Limits limits;
  limits.max_body = 16;
  limits.max_header = 256;
  TestServer s(limits);
  CHECK(round_trip(s.port, "GARBAGE\r\n\r\n").starts_with("HTTP/1.1 400 Bad Request"));
  CHECK(round_trip(s.port, "GET nopath HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400"));
  CHECK(round_trip(s.port, "GET / HTTP/1.1\r\nno colon here\r\n\r\n").starts_with("HTTP/1.1 400"));
  CHECK(round_trip(s.port, "GET / HTTP/2.0\r\n\r\n").starts_with("HTTP/1.1 505"));
  CHECK(round_trip(s.port, "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n")
            .starts_with("HTTP/1.1 400"));
  CHECK(round_trip(s.port, "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab")
            .starts_with("HTTP/1.1 400"));
  CHECK(
      round_trip(s.port, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n")
          .starts_with("HTTP/1.1 411 Length Required"));
  // 413 as soon as the headers say so: the body is never waited for.
  CHECK(round_trip(s.port, "POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n")
            .starts_with("HTTP/1.1 413 Payload Too Large"));
  CHECK(round_trip(s.port, "GET / HTTP/1.1\r\nX-Long: " + std::string(300, 'a') + "\r\n\r\n")
            .starts_with("HTTP/1.1 431"));
  CHECK(round_trip(s.port, "GET / HTTP/1.1\r\nX-Long: " + std::string(300, 'a'))
            .starts_with("HTTP/1.1 431")); // no end of headers in sight
  CHECK(s.handled.load() == 0);
  CHECK(s.logged_statuses() == std::vector<int>{400, 400, 400, 505, 400, 400, 411, 413, 431, 431});
}

TEST_CASE("serve_http: a client still sending a body too large can finish, then reads its 413") {
  // As curl does: the whole body is sent before the answer is read. A server that closed with
  // the body unread would reset the connection, and the sends after it (or the answer) fail.
  http::Limits limits;
  limits.max_body = 16;
  TestServer s(limits);
  const int fd = connect_to(s.port);
  const std::string chunk(10000, 'x');
  send_all(fd, "POST /big HTTP/1.1\r\nContent-Length: 110000\r\n\r\n" + chunk);
  std::this_thread::sleep_for(200ms); // the server has answered 413 by now
  int sends_ok = 0;
  for (int i = 0; i < 10; ++i) {
    sends_ok += ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL) == 10000 ? 1 : 0;
    std::this_thread::sleep_for(20ms);
  }
  CHECK(sends_ok == 10);
  CHECK(read_until_closed(fd).starts_with("HTTP/1.1 413 Payload Too Large"));
  ::close(fd);
  CHECK(s.handled.load() == 0);
}

TEST_CASE("serve_http: keep-alive carries up to its count of requests, pipelined ones in order") {
  http::Limits limits;
  limits.keep_alive = 3;
  TestServer s(limits);
  const std::string one = "GET /a HTTP/1.1\r\n\r\n";
  const int fd = connect_to(s.port);
  send_all(fd, one + one + one + one); // four at once: three answered, then closed
  const std::string answers = read_until_closed(fd);
  ::close(fd);
  CHECK(count(answers, "HTTP/1.1 200 OK") == 3);
  CHECK(count(answers, "Connection: close") == 1);
  CHECK(answers.ends_with("GET /a [] from 127.0.0.1"));
  // HTTP/1.0 closes unless it asks to keep the connection; "Connection: close" is obeyed.
  CHECK(count(round_trip(s.port, "GET /b HTTP/1.0\r\n\r\n" + one), "200 OK") == 1);
  CHECK(count(round_trip(s.port, "GET /b HTTP/1.1\r\nConnection: close\r\n\r\n" + one), "200 OK") ==
        1);
}

TEST_CASE("serve_http: Expect 100-continue gets an interim answer before the body is sent") {
  TestServer s({});
  const int fd = connect_to(s.port);
  send_all(fd, "POST /c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  CHECK(read_from(fd, 3s, "\r\n\r\n") == "HTTP/1.1 100 Continue\r\n\r\n");
  send_all(fd, "body");
  const std::string answer = read_until_closed(fd);
  ::close(fd);
  CHECK(answer.starts_with("HTTP/1.1 200 OK"));
  CHECK(answer.ends_with("POST /c [body] from 127.0.0.1"));
}

TEST_CASE("serve_http: a client trickling its request is dropped at the read timeout") {
  http::Limits limits;
  limits.read_timeout = 600ms;
  TestServer s(limits);
  const int fd = connect_to(s.port);
  const auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (int i = 0; i < 30 && !closed; ++i) { // a byte every 100 ms: each read is "recent"
    closed = ::send(fd, "G", 1, MSG_NOSIGNAL) != 1;
    std::this_thread::sleep_for(100ms);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) {
      char c = 0;
      closed = closed || ::recv(fd, &c, 1, 0) <= 0;
    }
  }
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  CHECK(closed);
  CHECK(took < 1500ms);
  CHECK(s.handled.load() == 0);
}

TEST_CASE("serve_http: at max_connections more clients wait in the listen queue, then are served") {
  http::Limits limits;
  limits.max_connections = 2;
  limits.read_timeout = 500ms;
  TestServer s(limits);
  std::vector<int> silent = {connect_to(s.port), connect_to(s.port), connect_to(s.port)};
  std::this_thread::sleep_for(100ms);
  const int fd = connect_to(s.port); // the kernel completes the connection; the server waits
  send_all(fd, "GET /late HTTP/1.1\r\n\r\n");
  const auto start = std::chrono::steady_clock::now();
  const std::string answer = read_until_closed(fd, 5000ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(fd);
  for (const int q : silent) {
    ::close(q);
  }
  CHECK(answer.starts_with("HTTP/1.1 200 OK"));
  CHECK(took >= 300ms); // it had to wait for silent ones to time out
}

TEST_CASE("serve_http: stop answers the request being handled, then returns") {
  TestServer s({}, 400ms);
  const int fd = connect_to(s.port);
  send_all(fd, "GET /slow HTTP/1.1\r\n\r\n");
  for (int i = 0; i < 100 && s.handled.load() == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(s.handled.load() == 1);
  const int idle = connect_to(s.port); // connected, nothing sent: closed by the stop
  std::this_thread::sleep_for(50ms);
  std::thread stopper([&s] { s.stop(); });
  const std::string answer = read_until_closed(fd);
  CHECK(answer.starts_with("HTTP/1.1 200 OK"));
  CHECK(read_until_closed(idle, 2000ms).empty());
  stopper.join();
  ::close(fd);
  ::close(idle);
}
