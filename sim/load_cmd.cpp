// SPDX-License-Identifier: MIT
#include "sim/load_cmd.hpp"

#include "core/host_port.hpp"

#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

// One event loop on one thread, one SSL_CTX for every connection (the CA read once), each
// request on a new connection with a full handshake and verification, as a device booting does.
// curl made its own SSL_CTX per connection and spent more CPU than the server it measured.

namespace iot::sim {
namespace {

using Clock = std::chrono::steady_clock;

struct LoadOptions {
  std::string url;        // the full URL requested
  std::string bodies;     // file: one form body per line, POSTed round-robin; empty: GET
  std::string ca;         // a CA to trust besides the system's
  int concurrency = 200;  // connections at once
  double duration_s = 10; // how long requests are started
  double rate = 0;        // 0: closed loop; else requests started per second (open loop)
  int threads = 1;        // event loops, each with its share of the connections and the rate
};

// What one event loop measured.
struct Stats {
  std::vector<double> latencies_ms;
  std::map<long, std::uint64_t> statuses;
  std::uint64_t failures = 0;
  std::string first_failure;
  double elapsed_s = 0;
  bool behind = false; // open loop: could not keep the rate
};

struct Target {
  bool tls = true;
  std::string host;
  std::string port;
  std::string path;
  std::string host_header;
};

std::optional<Target> parse_url(const std::string& url, std::string& why) {
  Target t;
  std::string rest;
  if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    t.tls = false;
    rest = url.substr(7);
  } else {
    why = "the URL must start with http:// or https://";
    return std::nullopt;
  }
  const auto slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  t.host_header = authority;
  auto where = core::parse_host_port(authority);
  if (!where) {
    why = where.error().message;
    return std::nullopt;
  }
  t.host = where->host;
  t.port = std::to_string(where->port.value_or(t.tls ? 443 : 80));
  if (t.host.empty()) {
    why = "the URL has no host";
    return std::nullopt;
  }
  return t;
}

enum class Phase { connecting, handshake, writing, reading };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  Phase phase = Phase::connecting;
  Clock::time_point scheduled; // when the request was due (open loop) or started (closed loop)
  Clock::time_point deadline;
  std::string out;
  std::size_t sent = 0;
  std::string in;
};

// The answer's status once the whole answer is in; 0 while more is needed, -1 when malformed.
long complete_status(const std::string& in, bool eof) {
  const auto end = in.find("\r\n\r\n");
  if (end == std::string::npos) {
    return eof ? -1 : 0;
  }
  if (!in.starts_with("HTTP/1.") || in.size() < 12) {
    return -1;
  }
  const long status = std::strtol(in.c_str() + 9, nullptr, 10);
  std::string headers = in.substr(0, end);
  std::transform(headers.begin(), headers.end(), headers.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  const auto cl = headers.find("\r\ncontent-length:");
  if (cl == std::string::npos) {
    return eof ? status : 0; // the body ends with the connection
  }
  const auto length = std::strtoull(headers.c_str() + cl + 17, nullptr, 10);
  return in.size() - (end + 4) >= length ? status : (eof ? -1 : 0);
}

class Load {
public:
  // `o`: this loop's share (its connections and rate); `first_body`: where it starts in `bodies`.
  Load(LoadOptions o, Target t, const std::vector<std::string>& bodies, std::size_t first_body)
      : m_o(std::move(o)), m_target(std::move(t)), m_bodies(bodies), m_next_body(first_body) {}

  ~Load() {
    for (auto& c : m_conns) {
      close_conn(c);
    }
    if (m_epoll >= 0) {
      ::close(m_epoll);
    }
    if (m_timer >= 0) {
      ::close(m_timer);
    }
    if (m_ctx != nullptr) {
      SSL_CTX_free(m_ctx);
    }
    if (m_addr != nullptr) {
      freeaddrinfo(m_addr);
    }
  }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  bool setup(std::string& why) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    if (const int rc = getaddrinfo(m_target.host.c_str(), m_target.port.c_str(), &hints, &m_addr);
        rc != 0) {
      why = "cannot resolve " + m_target.host + ": " + gai_strerror(rc);
      return false;
    }
    if (m_target.tls) {
      m_ctx = SSL_CTX_new(TLS_client_method());
      SSL_CTX_set_min_proto_version(m_ctx, TLS1_2_VERSION);
      SSL_CTX_set_session_cache_mode(m_ctx, SSL_SESS_CACHE_OFF); // every device a full handshake
      SSL_CTX_set_verify(m_ctx, SSL_VERIFY_PEER, nullptr);
      SSL_CTX_set_default_verify_paths(m_ctx);
      if (!m_o.ca.empty() && SSL_CTX_load_verify_locations(m_ctx, m_o.ca.c_str(), nullptr) != 1) {
        why = "cannot read the CA certificate " + m_o.ca;
        return false;
      }
    }
    m_epoll = epoll_create1(EPOLL_CLOEXEC);
    m_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (m_epoll < 0 || m_timer < 0) {
      why = std::string("epoll or timerfd: ") + std::strerror(errno);
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = k_timer;
    epoll_ctl(m_epoll, EPOLL_CTL_ADD, m_timer, &ev);
    m_conns.resize(static_cast<std::size_t>(m_o.concurrency));
    for (std::size_t i = 0; i < m_conns.size(); ++i) {
      m_free.push_back(i);
    }
    return true;
  }

  void run() {
    m_start = Clock::now();
    m_end = m_start + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(m_o.duration_s));
    const auto interval = m_o.rate > 0 ? std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(1.0 / m_o.rate))
                                       : Clock::duration::zero();
    Clock::time_point next_due = m_start;
    Clock::time_point armed{};       // when the timer is set to fire
    Clock::time_point next_expiry{}; // when the 30 s deadlines are checked next
    std::array<epoll_event, 256> events{};
    while (true) {
      // Start what is due: in a closed loop every free connection; in an open loop each request
      // at its time (a request that finds no free connection waits, and its wait counts).
      while (!m_free.empty()) {
        const auto at = Clock::now();
        if (at >= m_end || (m_o.rate > 0 && next_due > at)) {
          break;
        }
        const std::size_t i = m_free.back();
        m_free.pop_back();
        start(i, m_o.rate > 0 ? next_due : at);
        next_due += interval;
      }
      const auto now = Clock::now();
      if (m_free.size() == m_conns.size() && (now >= m_end)) {
        break;
      }
      if (m_o.rate > 0 && !m_free.empty() && now < m_end && next_due != armed) {
        arm_timer(next_due); // wakes the loop when the next request is due, to the microsecond
        armed = next_due;
      }
      const int n = epoll_wait(m_epoll, events.data(), static_cast<int>(events.size()), 50);
      for (int i = 0; i < n; ++i) {
        if (const auto id = events[static_cast<std::size_t>(i)].data.u64; id == k_timer) {
          std::uint64_t expirations = 0;
          (void)::read(m_timer, &expirations, sizeof expirations);
        } else {
          step(id);
        }
      }
      if (const auto at = Clock::now(); at >= next_expiry) {
        expire(at);
        next_expiry = at + std::chrono::milliseconds(100);
      }
    }
    m_stats.elapsed_s = std::chrono::duration<double>(Clock::now() - m_start).count();
    if (m_o.rate > 0) {
      m_stats.behind =
          std::chrono::duration<double>(Clock::now() - next_due).count() > 0.1 && next_due < m_end;
    }
  }

  [[nodiscard]] const Stats& stats() const { return m_stats; }

private:
  void start(std::size_t i, Clock::time_point scheduled) {
    Conn& c = m_conns[i];
    c = Conn{};
    c.scheduled = scheduled;
    c.deadline = Clock::now() + std::chrono::seconds(30);
    std::string body;
    if (!m_bodies.empty()) {
      body = m_bodies[m_next_body++ % m_bodies.size()];
    }
    c.out = (body.empty() && m_bodies.empty() ? "GET " : "POST ") + m_target.path +
            " HTTP/1.1\r\nHost: " + m_target.host_header +
            "\r\nUser-Agent: iotfleet-sim-load\r\nConnection: close\r\n";
    if (!m_bodies.empty()) {
      c.out += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n";
    }
    c.out += "\r\n" + body;
    c.fd = ::socket(m_addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      finish(i, -1, std::string("socket: ") + std::strerror(errno));
      return;
    }
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(c.fd, m_addr->ai_addr, m_addr->ai_addrlen) != 0 && errno != EINPROGRESS) {
      finish(i, -1, std::string("connect: ") + std::strerror(errno));
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = i;
    epoll_ctl(m_epoll, EPOLL_CTL_ADD, c.fd, &ev);
  }

  // steady_clock is CLOCK_MONOTONIC on Linux, so its time points are the timer's.
  void arm_timer(Clock::time_point at) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch());
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(ns.count() / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(ns.count() % 1'000'000'000);
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) {
      spec.it_value.tv_nsec = 1; // zero would disarm it
    }
    timerfd_settime(m_timer, TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  void want(std::size_t i, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = i;
    epoll_ctl(m_epoll, EPOLL_CTL_MOD, m_conns[i].fd, &ev);
  }

  // An OpenSSL call returned r <= 0: wait for what it wants, or fail the request.
  bool tls_wait(std::size_t i, int r, const char* what) {
    const int e = SSL_get_error(m_conns[i].ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
      want(i, EPOLLIN);
      return true;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
      want(i, EPOLLOUT);
      return true;
    }
    std::string why = std::string(what) + ": ";
    if (const unsigned long err = ERR_get_error(); err != 0) {
      std::array<char, 256> text{};
      ERR_error_string_n(err, text.data(), text.size());
      why += text.data();
    } else {
      why += e == SSL_ERROR_ZERO_RETURN ? "closed by the server" : std::strerror(errno);
    }
    if (const long v = SSL_get_verify_result(m_conns[i].ssl); v != X509_V_OK) {
      why += std::string(" (certificate: ") + X509_verify_cert_error_string(v) + ")";
    }
    ERR_clear_error();
    finish(i, -1, why);
    return false;
  }

  void step(std::size_t i) {
    Conn& c = m_conns[i];
    if (c.fd < 0) {
      return;
    }
    if (c.phase == Phase::connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        finish(i, -1, std::string("connect: ") + std::strerror(err));
        return;
      }
      if (!m_target.tls) {
        c.phase = Phase::writing;
      } else {
        c.ssl = SSL_new(m_ctx);
        SSL_set_fd(c.ssl, c.fd);
        SSL_set_tlsext_host_name(c.ssl, m_target.host.c_str());
        X509_VERIFY_PARAM* param = SSL_get0_param(c.ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, m_target.host.c_str()) != 1) {
          SSL_set1_host(c.ssl, m_target.host.c_str());
        }
        c.phase = Phase::handshake;
      }
    }
    if (c.phase == Phase::handshake) {
      if (const int r = SSL_connect(c.ssl); r != 1) {
        tls_wait(i, r, "TLS handshake");
        return;
      }
      c.phase = Phase::writing;
    }
    if (c.phase == Phase::writing) {
      while (c.sent < c.out.size()) {
        const auto rest = c.out.size() - c.sent;
        ssize_t n = 0;
        if (c.ssl != nullptr) {
          const int r = SSL_write(c.ssl, c.out.data() + c.sent, static_cast<int>(rest));
          if (r <= 0) {
            tls_wait(i, r, "write");
            return;
          }
          n = r;
        } else {
          n = ::send(c.fd, c.out.data() + c.sent, rest, MSG_NOSIGNAL);
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            want(i, EPOLLOUT);
            return;
          }
          if (n < 0) {
            finish(i, -1, std::string("write: ") + std::strerror(errno));
            return;
          }
        }
        c.sent += static_cast<std::size_t>(n);
      }
      c.phase = Phase::reading;
      want(i, EPOLLIN);
    }
    if (c.phase == Phase::reading) {
      std::array<char, 4096> buf{};
      while (true) {
        bool eof = false;
        if (c.ssl != nullptr) {
          const int r = SSL_read(c.ssl, buf.data(), static_cast<int>(buf.size()));
          if (r > 0) {
            c.in.append(buf.data(), static_cast<std::size_t>(r));
          } else if (const int e = SSL_get_error(c.ssl, r);
                     e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL) {
            ERR_clear_error();
            eof = true; // a server closing without close_notify still ended its answer
          } else {
            tls_wait(i, r, "read");
            return;
          }
        } else {
          const ssize_t n = ::recv(c.fd, buf.data(), buf.size(), 0);
          if (n > 0) {
            c.in.append(buf.data(), static_cast<std::size_t>(n));
          } else if (n == 0) {
            eof = true;
          } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
          } else {
            finish(i, -1, std::string("read: ") + std::strerror(errno));
            return;
          }
        }
        if (const long s = complete_status(c.in, eof); s != 0 || eof) {
          finish(i,
                 s == 0 ? -1 : s,
                 eof && c.in.empty() ? "closed without an answer" : "a malformed answer");
          return;
        }
      }
    }
  }

  // The request ends: status > 0 answered, else failed with why.
  void finish(std::size_t i, long status, const std::string& why) {
    Conn& c = m_conns[i];
    if (status > 0) {
      ++m_stats.statuses[status];
      m_stats.latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - c.scheduled).count());
    } else if (m_stats.failures++ == 0) {
      m_stats.first_failure = why;
    }
    close_conn(c);
    m_free.push_back(i);
  }

  void close_conn(Conn& c) {
    if (c.ssl != nullptr) {
      SSL_free(c.ssl);
      c.ssl = nullptr;
    }
    if (c.fd >= 0) {
      epoll_ctl(m_epoll, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
      c.fd = -1;
    }
  }

  void expire(Clock::time_point now) {
    for (std::size_t i = 0; i < m_conns.size(); ++i) {
      if (m_conns[i].fd >= 0 && now > m_conns[i].deadline) {
        finish(i, -1, "no answer in 30 s");
      }
    }
  }

  const LoadOptions m_o;
  Target m_target;
  const std::vector<std::string>& m_bodies;
  std::size_t m_next_body = 0;
  addrinfo* m_addr = nullptr;
  SSL_CTX* m_ctx = nullptr;
  static constexpr std::uint64_t k_timer = ~std::uint64_t{0}; // the timer's epoll id
  int m_epoll = -1;
  int m_timer = -1;
  std::vector<Conn> m_conns;
  std::vector<std::size_t> m_free;
  Clock::time_point m_start;
  Clock::time_point m_end;
  Stats m_stats;
};

int report(const LoadOptions& o, const std::vector<std::unique_ptr<Load>>& loads) {
  Stats all;
  for (const auto& load : loads) {
    const Stats& s = load->stats();
    all.latencies_ms.insert(all.latencies_ms.end(), s.latencies_ms.begin(), s.latencies_ms.end());
    for (const auto& [status, n] : s.statuses) {
      all.statuses[status] += n;
    }
    if (all.failures == 0 && s.failures > 0) {
      all.first_failure = s.first_failure;
    }
    all.failures += s.failures;
    all.elapsed_s = std::max(all.elapsed_s, s.elapsed_s);
    all.behind = all.behind || s.behind;
  }
  auto& lat = all.latencies_ms;
  std::sort(lat.begin(), lat.end());
  const auto pct = [&](double p) {
    return lat.empty() ? 0.0
                       : lat[static_cast<std::size_t>(p * static_cast<double>(lat.size() - 1))];
  };
  nlohmann::ordered_json out;
  out["requests"] = lat.size();
  out["failures"] = all.failures;
  out["seconds"] = all.elapsed_s;
  out["per_second"] = static_cast<double>(lat.size()) / all.elapsed_s;
  if (o.rate > 0) {
    out["rate"] = o.rate;
  }
  out["p50_ms"] = pct(0.50);
  out["p99_ms"] = pct(0.99);
  out["max_ms"] = lat.empty() ? 0.0 : lat.back();
  nlohmann::ordered_json by_status = nlohmann::ordered_json::object();
  for (const auto& [status, n] : all.statuses) {
    by_status[std::to_string(status)] = n;
  }
  out["statuses"] = by_status;
  rusage self{};
  getrusage(RUSAGE_SELF, &self); // the load generator's own CPU, user and system
  out["cpu_seconds"] = static_cast<double>(self.ru_utime.tv_sec + self.ru_stime.tv_sec) +
                       static_cast<double>(self.ru_utime.tv_usec + self.ru_stime.tv_usec) / 1e6;
  std::cout << out.dump() << '\n';
  if (all.failures > 0) {
    std::cerr << "iotfleet-sim load: " << all.failures
              << " requests failed (the first: " << all.first_failure
              << "): check the URL, the server and --ca\n";
  }
  if (o.rate > 0 && all.behind) {
    std::cerr << "iotfleet-sim load: could not start requests at " << o.rate << "/s with "
              << o.concurrency << " connections: the latencies include the wait for a connection\n";
  }
  return all.failures == 0 ? 0 : 1;
}

int run_load(const LoadOptions& o) {
  std::string why;
  auto target = parse_url(o.url, why);
  if (!target) {
    std::cerr << "iotfleet-sim load: " << o.url << ": " << why << '\n';
    return 2;
  }
  std::vector<std::string> bodies;
  if (!o.bodies.empty()) {
    std::ifstream in(o.bodies);
    if (!in) {
      std::cerr << "iotfleet-sim load: cannot read --bodies " << o.bodies << '\n';
      return 2;
    }
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) {
        bodies.push_back(line);
      }
    }
    if (bodies.empty()) {
      std::cerr << "iotfleet-sim load: no body in " << o.bodies << '\n';
      return 2;
    }
  }
  // Each loop gets its share of the connections and of the rate.
  const int threads = std::min(o.threads, o.concurrency);
  std::vector<std::unique_ptr<Load>> loads;
  for (int i = 0; i < threads; ++i) {
    LoadOptions share = o;
    share.concurrency = o.concurrency / threads + (i < o.concurrency % threads ? 1 : 0);
    share.rate = o.rate * share.concurrency / o.concurrency;
    loads.push_back(std::make_unique<Load>(
        share,
        *target,
        bodies,
        bodies.empty() ? 0 : bodies.size() * static_cast<std::size_t>(i) / threads));
    if (!loads.back()->setup(why)) {
      std::cerr << "iotfleet-sim load: " << why << '\n';
      return 2;
    }
  }
  std::vector<std::thread> running;
  for (std::size_t i = 1; i < loads.size(); ++i) {
    running.emplace_back([&load = *loads[i]] { load.run(); });
  }
  loads.front()->run();
  for (auto& t : running) {
    t.join();
  }
  return report(o, loads);
}

} // namespace

void register_load(CLI::App& app) {
  auto o = std::make_shared<LoadOptions>();
  auto* cmd = app.add_subcommand(
      "load",
      "Load generator for iotfleet serve: each request a new connection and a full verified TLS "
      "handshake, as devices booting; one JSON line of results");
  cmd->add_option("url", o->url, "URL to request (http:// or https://)")->required();
  cmd->add_option("--bodies", o->bodies, "File of form bodies, one per line, POSTed in turn");
  cmd->add_option("--ca", o->ca, "CA certificate to trust");
  cmd->add_option("--concurrency", o->concurrency, "Connections at once")
      ->check(CLI::Range(1, 4000))
      ->capture_default_str();
  cmd->add_option("--duration", o->duration_s, "Seconds during which requests are started")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  cmd->add_option("--rate",
                  o->rate,
                  "Open loop: start this many requests a second whatever the answers' pace "
                  "(latency counted from when each was due); default 0: closed loop, each "
                  "connection's next request starts when its answer is in")
      ->check(CLI::Range(0.0, 100000.0));
  cmd->add_option("--threads",
                  o->threads,
                  "Event loops, on threads of their own, sharing the connections and the rate "
                  "(each uses at most one core)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->callback([o] {
    if (const int rc = run_load(*o); rc != 0) {
      throw CLI::RuntimeError(rc);
    }
  });
}

} // namespace iot::sim
