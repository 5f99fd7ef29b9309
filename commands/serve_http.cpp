// SPDX-License-Identifier: MIT
#include "commands/serve_http.hpp"

#include "core/text.hpp"

#include <openssl/err.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

namespace iot::commands::http {

std::string_view reason(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 411:
    return "Length Required";
  case 413:
    return "Payload Too Large";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 503:
    return "Service Unavailable";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Status";
  }
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint64_t k_wake_id = ~std::uint64_t{0};
constexpr std::uint64_t k_listen_id = k_wake_id - 1;
constexpr std::size_t k_read_chunk = 16384;

std::string serialize(const Response& r, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + std::string(reason(r.status)) +
                    "\r\nContent-Type: " + r.content_type +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n";
  for (const auto& [name, value] : r.headers) {
    out += name + ": " + value + "\r\n";
  }
  if (close) {
    out += "Connection: close\r\n";
  }
  out += "\r\n";
  out += r.body;
  return out;
}

Response plain_error(int status, std::string_view message) {
  Response r;
  r.status = status;
  r.content_type = "text/plain";
  r.body = std::string(message) + "\n";
  return r;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
  });
}

// What the request head says; an error status (and why) when it cannot be served.
struct Head {
  std::string method;
  std::string path;
  std::size_t content_length = 0;
  bool close = false;
  bool expect_continue = false;
  int error = 0;
  std::string why;
};

Head parse_head(std::string_view head) {
  Head h;
  const auto bad = [&](int status, std::string why) {
    h.error = status;
    h.why = std::move(why);
    return h;
  };
  const auto line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return bad(400, "a malformed request line");
  }
  h.method = std::string(line.substr(0, sp1));
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(h.method) || !target.starts_with('/')) {
    return bad(400, "a malformed request line");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return bad(505, "only HTTP/1.1 and HTTP/1.0 are served");
  }
  h.path = std::string(target.substr(0, target.find('?')));
  bool keep_alive_asked = false;
  std::optional<std::size_t> length;
  std::size_t at = line_end == std::string_view::npos ? head.size() : line_end + 2;
  while (at < head.size()) {
    auto end = head.find("\r\n", at);
    if (end == std::string_view::npos) {
      end = head.size();
    }
    const std::string_view field = head.substr(at, end - at);
    at = end + 2;
    const auto colon = field.find(':');
    if (colon == std::string_view::npos || !is_token(field.substr(0, colon))) {
      return bad(400, "a malformed header line");
    }
    const std::string name = core::to_lower(field.substr(0, colon));
    const std::string value = core::to_lower(core::trim(field.substr(colon + 1)));
    if (name == "content-length") {
      if (value.empty() || value.size() > 9 ||
          !std::all_of(
              value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
        return bad(400, "a malformed Content-Length");
      }
      const auto n = static_cast<std::size_t>(std::stoul(value));
      if (length && *length != n) {
        return bad(400, "two different Content-Lengths");
      }
      length = n;
    } else if (name == "transfer-encoding") {
      return bad(411, "a body must come with a Content-Length (no Transfer-Encoding)");
    } else if (name == "connection") {
      h.close = h.close || value.find("close") != std::string::npos;
      keep_alive_asked = value.find("keep-alive") != std::string::npos;
    } else if (name == "expect") {
      h.expect_continue = value == "100-continue";
    }
  }
  if (version == "HTTP/1.0" && !keep_alive_asked) {
    h.close = true;
  }
  h.content_length = length.value_or(0);
  return h;
}

// lingering: the server refused a request it had not read to its end and closed its side; what
// the client still sends is read and dropped for a while, because closing a socket with unread
// input resets the connection, and the reset can destroy the answer on its way (a 413 as the
// client is still sending the body).
enum class Phase { handshake, reading, dispatched, writing, lingering };
constexpr std::chrono::seconds k_linger{2};
constexpr std::size_t k_linger_max = 1 << 20; // bytes dropped before closing anyway

struct Conn {
  std::uint64_t id = 0;
  int fd = -1;
  SSL* ssl = nullptr;
  std::string remote;
  Phase phase = Phase::reading;
  bool tls_up = false;     // a TLS session to end with close_notify (handshake done, none sent yet)
  bool want_write = false; // the TLS layer waits to write (handshake, or a read needing it)
  std::uint32_t events = 0; // registered with epoll; 0: not registered
  Clock::time_point deadline;
  std::string in;
  std::string out;
  std::size_t sent = 0;
  int served = 0;
  bool close_after = false;
  bool continue_sent = false;
  bool linger = false; // close by lingering (a refused request: its rest may still come)
  std::size_t dropped = 0;
  bool eof = false;
};

} // namespace

struct Server::Impl {
  struct Job {
    std::size_t loop = 0;
    std::uint64_t id = 0;
    Request request;
    bool close = true;
    Clock::time_point started;
  };
  struct Done {
    std::uint64_t id = 0;
    std::string bytes;
  };
  struct Accepted {
    int fd = -1;
    std::string remote;
  };

  class Loop {
  public:
    Loop(Impl& server, std::size_t index) : m_server(server), m_index(index) {
      m_epoll = epoll_create1(EPOLL_CLOEXEC);
      m_wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = k_wake_id;
      epoll_ctl(m_epoll, EPOLL_CTL_ADD, m_wake, &ev);
    }
    ~Loop() {
      for (auto& [id, c] : m_conns) {
        release(*c);
      }
      for (const auto& a : m_accepted) {
        ::close(a.fd);
      }
      ::close(m_wake);
      ::close(m_epoll);
    }
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    [[nodiscard]] bool ready() const { return m_epoll >= 0 && m_wake >= 0; }

    void wake() {
      const std::uint64_t one = 1;
      (void)::write(m_wake, &one, sizeof one);
    }
    void post_accepted(int fd, std::string remote) {
      {
        std::lock_guard lock(m_inbox_mutex);
        m_accepted.push_back({fd, std::move(remote)});
      }
      wake();
    }
    void post_done(Done done) {
      {
        std::lock_guard lock(m_inbox_mutex);
        m_done.push_back(std::move(done));
      }
      wake();
    }

    void listen_on(int fd) {
      m_listen = fd;
      set_listening(true);
    }

    void run() {
      std::array<epoll_event, 256> events{};
      auto next_expiry = Clock::now();
      bool draining = false;
      while (true) {
        const int n = epoll_wait(m_epoll, events.data(), static_cast<int>(events.size()), 100);
        for (int i = 0; i < n; ++i) {
          const auto& ev = events[static_cast<std::size_t>(i)];
          if (ev.data.u64 == k_wake_id) {
            std::uint64_t count = 0;
            (void)::read(m_wake, &count, sizeof count);
          } else if (ev.data.u64 == k_listen_id) {
            accept_some();
          } else if (auto it = m_conns.find(ev.data.u64); it != m_conns.end()) {
            step(*it->second);
          }
        }
        take_inbox();
        if (m_listen >= 0 && !m_listening && !m_server.stopping.load() &&
            m_server.open.load() < m_server.limits.max_connections) {
          set_listening(true);
        }
        const auto now = Clock::now();
        if (now >= next_expiry) {
          expire(now);
          next_expiry = now + std::chrono::milliseconds(100);
        }
        if (m_server.stopping.load()) {
          if (!draining) {
            draining = true;
            set_listening(false);
            close_undecided();
          }
          if (m_conns.empty()) {
            return;
          }
        }
      }
    }

  private:
    void set_listening(bool on) {
      if (m_listen < 0 || on == m_listening) {
        return;
      }
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = k_listen_id;
      epoll_ctl(m_epoll, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, m_listen, &ev);
      m_listening = on;
      m_server.accept_paused.store(!on);
    }

    void accept_some() {
      for (int i = 0; i < 64 && !m_server.stopping.load(); ++i) {
        if (m_server.open.load() >= m_server.limits.max_connections) {
          // At the bound: new clients wait in the kernel's listen queue. A connection closing
          // on any loop wakes this one to listen again.
          set_listening(false);
          if (m_server.open.load() < m_server.limits.max_connections) {
            set_listening(true);
            continue;
          }
          return;
        }
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        const int fd = ::accept4(
            m_listen, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          return; // EAGAIN, or a client gone before it was accepted; EMFILE waits for a close
        }
        const int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ++m_server.open;
        std::string remote = address_of(addr);
        Loop& target = *m_server.loops[m_next_loop++ % m_server.loops.size()];
        if (&target == this) {
          add(fd, std::move(remote));
        } else {
          target.post_accepted(fd, std::move(remote));
        }
      }
    }

    static std::string address_of(const sockaddr_storage& addr) {
      std::array<char, INET6_ADDRSTRLEN> text{};
      if (addr.ss_family == AF_INET) {
        inet_ntop(AF_INET,
                  &reinterpret_cast<const sockaddr_in&>(addr).sin_addr,
                  text.data(),
                  text.size());
      } else if (addr.ss_family == AF_INET6) {
        inet_ntop(AF_INET6,
                  &reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr,
                  text.data(),
                  text.size());
      }
      return text.data();
    }

    void take_inbox() {
      std::vector<Accepted> accepted;
      std::vector<Done> done;
      {
        std::lock_guard lock(m_inbox_mutex);
        accepted.swap(m_accepted);
        done.swap(m_done);
      }
      for (auto& a : accepted) {
        add(a.fd, std::move(a.remote));
      }
      for (auto& d : done) {
        if (auto it = m_conns.find(d.id); it != m_conns.end()) {
          Conn& c = *it->second;
          c.out += d.bytes;
          c.phase = Phase::writing;
          c.deadline = Clock::now() + m_server.limits.read_timeout;
          if (flush(c)) {
            interest(c);
          }
        }
      }
    }

    void add(int fd, std::string remote) {
      if (m_server.stopping.load()) {
        ::close(fd); // accepted as the server stopped: nothing was read from it
        m_server.closed();
        return;
      }
      auto conn = std::make_unique<Conn>();
      Conn& c = *conn;
      c.id = m_next_id++;
      c.fd = fd;
      c.remote = std::move(remote);
      c.deadline = Clock::now() + m_server.limits.read_timeout;
      if (m_server.tls != nullptr) {
        c.ssl = SSL_new(m_server.tls);
        if (c.ssl == nullptr) {
          ::close(fd);
          m_server.closed();
          return;
        }
        SSL_set_fd(c.ssl, fd);
        SSL_set_accept_state(c.ssl);
        SSL_set_mode(c.ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        c.phase = Phase::handshake;
      }
      m_conns.emplace(c.id, std::move(conn));
      interest(c);
    }

    // Registers with epoll what the connection waits for.
    void interest(Conn& c) {
      constexpr std::uint32_t in = EPOLLIN;
      constexpr std::uint32_t out = EPOLLOUT;
      std::uint32_t want = 0;
      switch (c.phase) {
      case Phase::handshake:
        want = c.want_write ? out : in;
        break;
      case Phase::reading:
        want = (c.want_write ? out : in) | (c.sent < c.out.size() ? out : 0);
        break;
      case Phase::dispatched:
        want = 0;
        break; // nothing until its answer; a hang-up waits too
      case Phase::writing:
        want = c.want_write ? in : out;
        break;
      case Phase::lingering:
        want = in;
        break;
      }
      if (want == c.events) {
        return;
      }
      epoll_event ev{};
      ev.events = want;
      ev.data.u64 = c.id;
      const int op = c.events == 0 ? EPOLL_CTL_ADD : (want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD);
      epoll_ctl(m_epoll, op, c.fd, &ev);
      c.events = want;
    }

    void step(Conn& c) {
      if (c.phase == Phase::lingering) {
        drain(c);
        return;
      }
      if (c.phase == Phase::handshake) {
        const int r = SSL_accept(c.ssl);
        if (r != 1) {
          const int e = SSL_get_error(c.ssl, r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            c.want_write = e == SSL_ERROR_WANT_WRITE;
            interest(c);
          } else {
            ERR_clear_error();
            close(c); // a failed handshake: nothing to answer
          }
          return;
        }
        c.tls_up = true;
        c.want_write = false;
        c.phase = Phase::reading;
      }
      if (c.phase == Phase::reading) {
        read_more(c);
        if (!parse(c)) {
          return;
        }
      }
      if (c.sent < c.out.size() && !flush(c)) {
        return;
      }
      interest(c);
    }

    // Reads what the socket has (c.eof once the client has closed).
    void read_more(Conn& c) {
      std::array<char, k_read_chunk> buf{};
      const std::size_t cap = m_server.limits.max_header + m_server.limits.max_body + 4;
      c.want_write = false;
      while (c.in.size() <= cap && !c.eof) {
        if (c.ssl != nullptr) {
          const int r = SSL_read(c.ssl, buf.data(), static_cast<int>(buf.size()));
          if (r > 0) {
            c.in.append(buf.data(), static_cast<std::size_t>(r));
            continue;
          }
          const int e = SSL_get_error(c.ssl, r);
          if (e == SSL_ERROR_WANT_READ) {
            break;
          }
          if (e == SSL_ERROR_WANT_WRITE) {
            c.want_write = true;
            break;
          }
          ERR_clear_error();
          c.eof = true;
        } else {
          const ssize_t n = ::recv(c.fd, buf.data(), buf.size(), 0);
          if (n > 0) {
            c.in.append(buf.data(), static_cast<std::size_t>(n));
          } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
          } else if (n < 0 && errno == EINTR) {
            continue;
          } else {
            c.eof = true;
          }
        }
      }
    }

    // Takes a complete request off c.in and hands it to a worker, or answers what cannot be
    // served; false once the connection is closed.
    bool parse(Conn& c) {
      const auto& limits = m_server.limits;
      const auto head_end = c.in.find("\r\n\r\n");
      if (head_end == std::string::npos || head_end > limits.max_header) {
        if (c.in.size() > limits.max_header) {
          return refuse(c, Head{}, 431, "the request's headers are too large");
        }
        if (c.eof) {
          close(c);
          return false;
        }
        return true;
      }
      Head head = parse_head(std::string_view(c.in).substr(0, head_end));
      if (head.error != 0) {
        return refuse(c, head, head.error, head.why);
      }
      if (head.content_length > limits.max_body) {
        return refuse(c, head, 413, "the body is larger than the server takes");
      }
      const std::size_t total = head_end + 4 + head.content_length;
      if (c.in.size() < total) {
        if (c.eof) {
          close(c);
          return false;
        }
        if (head.expect_continue && !c.continue_sent) {
          c.out += "HTTP/1.1 100 Continue\r\n\r\n";
          c.continue_sent = true;
        }
        return true;
      }
      Job job{m_index,
              c.id,
              Request{std::move(head.method),
                      std::move(head.path),
                      c.in.substr(head_end + 4, head.content_length),
                      c.remote},
              head.close || c.eof || c.served + 1 >= limits.keep_alive,
              Clock::now()};
      c.in.erase(0, total);
      c.close_after = job.close;
      c.continue_sent = false;
      c.phase = Phase::dispatched;
      interest(c);
      m_server.dispatch(std::move(job));
      return true;
    }

    // The server's own answer to a request it cannot serve; the connection closes after it.
    bool refuse(Conn& c, const Head& head, int status, std::string_view why) {
      Request request{head.method, head.path, {}, c.remote};
      Response response = plain_error(status, why);
      if (m_server.logger) {
        m_server.logger(request, response, 0.0);
      }
      c.in.clear();
      c.out += serialize(response, true);
      c.close_after = true;
      c.linger = true;
      c.phase = Phase::writing;
      c.deadline = Clock::now() + m_server.limits.read_timeout;
      if (!flush(c)) {
        return false;
      }
      interest(c);
      return false; // nothing more to read on it
    }

    // Writes what is pending; false once the connection is closed (written and done, or failed).
    bool flush(Conn& c) {
      while (c.sent < c.out.size()) {
        const std::size_t rest = c.out.size() - c.sent;
        if (c.ssl != nullptr) {
          const int r = SSL_write(c.ssl, c.out.data() + c.sent, static_cast<int>(rest));
          if (r <= 0) {
            const int e = SSL_get_error(c.ssl, r);
            if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
              c.want_write = c.phase == Phase::writing && e == SSL_ERROR_WANT_READ;
              return true;
            }
            ERR_clear_error();
            close(c);
            return false;
          }
          c.sent += static_cast<std::size_t>(r);
        } else {
          const ssize_t n = ::send(c.fd, c.out.data() + c.sent, rest, MSG_NOSIGNAL);
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return true;
          }
          if (n < 0) {
            close(c);
            return false;
          }
          c.sent += static_cast<std::size_t>(n);
        }
      }
      c.out.clear();
      c.sent = 0;
      c.want_write = false;
      if (c.phase != Phase::writing) {
        return true; // an interim 100 Continue
      }
      ++c.served;
      if (c.linger) {
        start_lingering(c);
        return false;
      }
      if (c.close_after || m_server.stopping.load()) {
        close(c);
        return false;
      }
      c.phase = Phase::reading;
      c.deadline = Clock::now() + m_server.limits.read_timeout;
      return c.in.empty() || parse(c); // a request sent behind the first (pipelining)
    }

    // The answer is out: our side is closed (close_notify first), the client's rest is dropped.
    void start_lingering(Conn& c) {
      if (m_server.stopping.load()) {
        close(c);
        return;
      }
      if (c.ssl != nullptr && c.tls_up) {
        (void)SSL_shutdown(c.ssl);
        ERR_clear_error();
        c.tls_up = false;
      }
      ::shutdown(c.fd, SHUT_WR);
      c.phase = Phase::lingering;
      c.deadline = Clock::now() + k_linger;
      c.in.clear();
      interest(c);
    }

    void drain(Conn& c) {
      std::array<char, k_read_chunk> buf{};
      while (true) {
        const ssize_t n = ::recv(c.fd, buf.data(), buf.size(), 0);
        if (n > 0) {
          c.dropped += static_cast<std::size_t>(n);
          if (c.dropped <= k_linger_max) {
            continue;
          }
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          return;
        } else if (n < 0 && errno == EINTR) {
          continue;
        }
        close(c); // the client closed too, or sent too much
        return;
      }
    }

    void expire(Clock::time_point now) {
      std::vector<Conn*> late;
      for (auto& [id, c] : m_conns) {
        if (c->phase != Phase::dispatched && now > c->deadline) {
          late.push_back(c.get());
        }
      }
      for (Conn* c : late) {
        close(*c);
      }
    }

    // Stopping: connections without a request being answered are closed.
    void close_undecided() {
      std::vector<Conn*> idle;
      for (auto& [id, c] : m_conns) {
        if (c->phase == Phase::handshake || c->phase == Phase::reading ||
            c->phase == Phase::lingering) {
          idle.push_back(c.get());
        }
      }
      for (Conn* c : idle) {
        close(*c);
      }
    }

    void release(Conn& c) {
      if (c.ssl != nullptr) {
        if (c.tls_up) {
          (void)SSL_shutdown(c.ssl); // close_notify, not waiting for the client's
        }
        ERR_clear_error();
        SSL_free(c.ssl);
        c.ssl = nullptr;
      }
      if (c.events != 0) {
        epoll_ctl(m_epoll, EPOLL_CTL_DEL, c.fd, nullptr);
      }
      ::close(c.fd);
    }

    void close(Conn& c) {
      release(c);
      m_conns.erase(c.id); // c is gone
      m_server.closed();
    }

    Impl& m_server;
    const std::size_t m_index;
    int m_epoll = -1;
    int m_wake = -1;
    int m_listen = -1;
    bool m_listening = false;
    std::size_t m_next_loop = 0;
    std::uint64_t m_next_id = 1;
    std::unordered_map<std::uint64_t, std::unique_ptr<Conn>> m_conns;
    std::mutex m_inbox_mutex;
    std::vector<Accepted> m_accepted;
    std::vector<Done> m_done;
  };

  Impl(Limits l, SSL_CTX* t, Handler h, Logger g, int w, int n)
      : limits(l), tls(t), handler(std::move(h)), logger(std::move(g)), workers(w) {
    for (int i = 0; i < n; ++i) {
      loops.push_back(std::make_unique<Loop>(*this, static_cast<std::size_t>(i)));
    }
  }

  ~Impl() {
    if (listen_fd >= 0) {
      ::close(listen_fd);
    }
  }

  void dispatch(Job job) {
    {
      std::lock_guard lock(jobs_mutex);
      jobs.push_back(std::move(job));
    }
    jobs_ready.notify_one();
  }

  // A connection closed (on any loop): the first loop listens again if it stopped at the bound.
  // It sets accept_paused before it checks `open` once more, and this decrements `open` before
  // it reads accept_paused, so one of the two always sees the other.
  void closed() {
    if (--open < limits.max_connections && accept_paused.load()) {
      loops.front()->wake();
    }
  }

  void work() {
    while (true) {
      Job job;
      {
        std::unique_lock lock(jobs_mutex);
        jobs_ready.wait(lock, [&] { return !jobs.empty() || workers_stop; });
        if (jobs.empty()) {
          return;
        }
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      Response response;
      try {
        response = handler(job.request);
      } catch (...) {
        response = plain_error(500, "internal error");
      }
      const double seconds = std::chrono::duration<double>(Clock::now() - job.started).count();
      if (logger) {
        logger(job.request, response, seconds);
      }
      loops[job.loop]->post_done({job.id, serialize(response, job.close)});
    }
  }

  const Limits limits;
  SSL_CTX* const tls;
  const Handler handler;
  const Logger logger;
  const int workers;
  int listen_fd = -1;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> open{0};
  std::atomic<bool> accept_paused{false};
  std::vector<std::unique_ptr<Loop>> loops;
  std::mutex jobs_mutex;
  std::condition_variable jobs_ready;
  std::deque<Job> jobs;
  bool workers_stop = false;
};

Server::Server(Limits limits, SSL_CTX* tls, Handler handler, Logger logger, int workers, int loops)
    : m_impl(std::make_unique<Impl>(limits,
                                    tls,
                                    std::move(handler),
                                    std::move(logger),
                                    std::max(workers, 1),
                                    std::max(loops, 1))) {}

Server::~Server() = default;

Result<int> Server::bind(const std::string& host, int port) {
  for (const auto& loop : m_impl->loops) {
    if (!loop->ready()) {
      return fail(ErrorKind::io, std::string("epoll: ") + std::strerror(errno));
    }
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return fail(ErrorKind::io, "cannot resolve " + host + ": " + gai_strerror(rc));
  }
  // What went wrong, and what to do about it.
  const auto explain = [](int error) {
    std::string text = std::strerror(error);
    switch (error) {
    case EADDRINUSE:
      return text + " (another server listens there: stop it or pick another port)";
    case EACCES:
      return text + " (a port below 1024 needs CAP_NET_BIND_SERVICE)";
    case EADDRNOTAVAIL:
      return text + " (no interface of this machine has that address)";
    default:
      return text;
    }
  };
  std::string why = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      why = explain(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
      why = explain(errno);
      ::close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    freeaddrinfo(found);
    m_impl->listen_fd = fd;
    m_impl->loops.front()->listen_on(fd);
    return bound.ss_family == AF_INET6
               ? ntohs(reinterpret_cast<const sockaddr_in6&>(bound).sin6_port)
               : ntohs(reinterpret_cast<const sockaddr_in&>(bound).sin_port);
  }
  freeaddrinfo(found);
  return fail(ErrorKind::io, why);
}

void Server::run() {
  Impl& s = *m_impl;
  std::vector<std::thread> workers;
  for (int i = 0; i < s.workers; ++i) {
    workers.emplace_back([&s] { s.work(); });
  }
  std::vector<std::thread> loops;
  for (std::size_t i = 1; i < s.loops.size(); ++i) {
    loops.emplace_back([&s, i] { s.loops[i]->run(); });
  }
  s.loops.front()->run();
  for (auto& t : loops) {
    t.join();
  }
  {
    std::lock_guard lock(s.jobs_mutex);
    s.workers_stop = true;
  }
  s.jobs_ready.notify_all();
  for (auto& t : workers) {
    t.join();
  }
}

void Server::stop() {
  m_impl->stopping.store(true);
  for (const auto& loop : m_impl->loops) {
    loop->wake();
  }
}

} // namespace iot::commands::http
