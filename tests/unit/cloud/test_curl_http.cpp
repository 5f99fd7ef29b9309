// SPDX-License-Identifier: MIT
// The real libcurl client against a tiny HTTP/1.1 server on 127.0.0.1 (loopback only).
#include "cloud/http.hpp"
#include "cloud/openapi.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace iot;
using namespace iot::cloud;

namespace {

// Keep-alive HTTP/1.1 server: answers every request with JSON echoing method, path and body.
// Counts accepted connections so tests can see reuse.
class LoopbackServer {
public:
  LoopbackServer() {
    m_listen = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(m_listen >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(m_listen, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(m_listen, 64) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(m_listen, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { accept_loop(); });
  }
  ~LoopbackServer() {
    m_stop = true;
    m_thread.join();
    const std::lock_guard lock(m_mutex);
    for (auto& t : m_workers) {
      t.join();
    }
    ::close(m_listen);
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(m_port) + path;
  }
  [[nodiscard]] int connections() const { return m_connections; }
  [[nodiscard]] int requests() const { return m_requests; }

private:
  void accept_loop() {
    while (!m_stop) {
      pollfd p{m_listen, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) {
        continue;
      }
      const int fd = ::accept(m_listen, nullptr, nullptr);
      if (fd < 0) {
        continue;
      }
      ++m_connections;
      const std::lock_guard lock(m_mutex);
      m_workers.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::string buffer;
    while (!m_stop) {
      const auto head_end = buffer.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const std::string head = buffer.substr(0, head_end);
        std::size_t length = 0;
        if (const auto cl = head.find("Content-Length: "); cl != std::string::npos) {
          length = std::stoul(head.substr(cl + 16));
        }
        if (buffer.size() >= head_end + 4 + length) {
          const std::string body = buffer.substr(head_end + 4, length);
          buffer.erase(0, head_end + 4 + length);
          const std::string line = head.substr(0, head.find("\r\n"));
          const std::string method = line.substr(0, line.find(' '));
          const std::string path =
              line.substr(method.size() + 1, line.rfind(' ') - method.size() - 1);
          ++m_requests;
          std::string reply;
          int status = 200;
          if (path.starts_with("/fail")) {
            status = 503;
            reply = R"({"RequestId":"R503","Code":"ServiceUnavailable","Message":"busy"})";
          } else {
            reply = R"({"RequestId":"R)" + std::to_string(m_requests.load()) +
                    R"(","Success":true,"Method":")" + method + R"(","Path":")" + path +
                    R"(","BodyLength":)" + std::to_string(body.size()) + "}";
          }
          const std::string response =
              "HTTP/1.1 " + std::to_string(status) + (status == 200 ? " OK" : " Unavailable") +
              "\r\nContent-Type: application/json\r\nX-Test: yes\r\nContent-Length: " +
              std::to_string(reply.size()) + "\r\nConnection: keep-alive\r\n\r\n" + reply;
          if (::send(fd, response.data(), response.size(), MSG_NOSIGNAL) < 0) {
            break;
          }
          continue;
        }
      }
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) {
        continue;
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) {
        break;
      }
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(fd);
  }

  int m_listen = -1;
  int m_port = 0;
  std::atomic<bool> m_stop{false};
  std::atomic<int> m_connections{0};
  std::atomic<int> m_requests{0};
  std::thread m_thread;
  std::mutex m_mutex;
  std::vector<std::thread> m_workers;
};

// A loopback port with nothing listening (bound, then closed).
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

} // namespace

TEST_SUITE("cloud::curl") {
  TEST_CASE("requests over one kept-alive connection") {
    LoopbackServer server;
    auto client = make_curl_client(HttpOptions{});
    REQUIRE(client);
    for (int i = 0; i < 3; ++i) {
      HttpRequest req;
      req.method = "POST";
      req.url = server.url("/api?x=1");
      req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
      req.body = "a=1&b=2";
      auto r = (*client)->send(req);
      REQUIRE(r);
      CHECK(r->status == 200);
      CHECK(r->header("x-test") == "yes");
      CHECK(r->body.find(R"("Method":"POST","Path":"/api?x=1","BodyLength":7)") !=
            std::string::npos);
    }
    CHECK(server.requests() == 3);
    CHECK(server.connections() == 1);
  }

  TEST_CASE("send_all runs many requests and keeps their order") {
    LoopbackServer server;
    HttpOptions options;
    options.max_in_flight = 4;
    auto client = make_curl_client(options);
    REQUIRE(client);
    std::vector<HttpRequest> requests;
    for (int i = 0; i < 10; ++i) {
      HttpRequest req;
      req.url = server.url("/item/" + std::to_string(i));
      requests.push_back(req);
    }
    auto results = (*client)->send_all(requests);
    REQUIRE(results.size() == 10);
    for (int i = 0; i < 10; ++i) {
      REQUIRE(results[static_cast<std::size_t>(i)]);
      CHECK(results[static_cast<std::size_t>(i)]->body.find(
                "\"Path\":\"/item/" + std::to_string(i) + "\"") != std::string::npos);
    }
    CHECK(server.connections() <= 4);
    CHECK(server.requests() == 10);
  }

  TEST_CASE("OpenApiClient end to end over curl, with a retry on 503") {
    LoopbackServer server;
    auto http = make_curl_client(HttpOptions{});
    REQUIRE(http);
    OpenApiConfig config;
    config.access_key = AccessKey{"id", "secret", ""};
    config.region_id = "cn-shanghai";
    config.endpoint = server.url("");
    OpenApiClient client(**http, config);
    auto r = client.call("QueryProduct", {{"ProductKey", "pk"}});
    REQUIRE(r);
    CHECK(r->http_status == 200);
    CHECK(r->body.find(R"("Method":"POST","Path":"/")") != std::string::npos);

    config.endpoint = server.url("/fail");
    config.retry = RetryPolicy{2, std::chrono::milliseconds{1}, std::chrono::milliseconds{1}};
    OpenApiClient failing(**http, config);
    auto f = failing.call("QueryProduct", {{"ProductKey", "pk"}});
    REQUIRE_FALSE(f);
    CHECK(f.error().kind == ErrorKind::cloud);
    CHECK(f.error().message ==
          "QueryProduct: ServiceUnavailable: busy (HTTP 503, RequestId R503) (after 2 attempts)");
  }

  TEST_CASE("connection refused is a network error naming the URL") {
    auto client = make_curl_client(HttpOptions{});
    REQUIRE(client);
    HttpRequest req;
    req.method = "POST";
    req.url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/?AccessKeyId=secret-ish";
    auto r = (*client)->send(req);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::network);
    CHECK(r.error().message.starts_with("POST http://127.0.0.1:"));
    CHECK(r.error().message.find("AccessKeyId") == std::string::npos);
  }

  TEST_CASE("bad URLs and unreadable CA files are usage and config errors") {
    HttpOptions options;
    options.ca_file = "/nonexistent/ca.pem";
    auto bad_ca = make_curl_client(options);
    REQUIRE_FALSE(bad_ca);
    CHECK(bad_ca.error().kind == ErrorKind::config);

    auto client = make_curl_client(HttpOptions{});
    REQUIRE(client);
    HttpRequest req;
    req.url = "ftp://127.0.0.1/";
    auto r = (*client)->send(req);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::usage);
  }
}
