// SPDX-License-Identifier: MIT
#include "cloud/mqtt_probe.hpp"

#include "core/interrupt.hpp"

#include <openssl/ssl.h>

#include <fcntl.h>
#include <mosquitto.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

namespace iot::cloud {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto k_slice = std::chrono::milliseconds(50);

std::int64_t ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// The steps so far plus the verdict: the last step is the one that failed.
struct Probe {
  MqttProbeResult result;
  Clock::time_point deadline;

  void passed(std::string name, Clock::time_point start) {
    result.steps.push_back({std::move(name), ms_since(start), true});
  }
  MqttProbeResult
  failed(std::string name, Clock::time_point start, ProbeVerdict verdict, std::string detail) {
    result.steps.push_back({std::move(name), ms_since(start), false});
    result.verdict = verdict;
    result.detail = std::move(detail);
    return std::move(result);
  }
  // Interrupted or out of time: the verdict for a wait that must end now, else nullopt.
  [[nodiscard]] std::optional<ProbeVerdict> must_stop() const {
    if (core::interrupt_requested()) {
      return ProbeVerdict::interrupted;
    }
    if (Clock::now() >= deadline) {
      return ProbeVerdict::timeout;
    }
    return std::nullopt;
  }
};

std::string stop_text(ProbeVerdict v, std::string_view step) {
  return v == ProbeVerdict::interrupted ? "interrupted during " + std::string(step)
                                        : "no answer in time during " + std::string(step);
}

// getaddrinfo cannot be interrupted: it runs on its own thread, which is left to finish alone
// when the probe stops first (the shared state frees the answer then).
struct Lookup {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  int rc = 0;
  addrinfo* answer = nullptr;
  ~Lookup() {
    if (answer != nullptr) {
      freeaddrinfo(answer);
    }
  }
};

using Addresses = std::unique_ptr<addrinfo, decltype(&freeaddrinfo)>;

struct Resolved {
  std::optional<Addresses> addresses;
  std::optional<ProbeVerdict> stopped;
  std::string error;
};

Resolved resolve(const std::string& host, std::uint16_t port, const Probe& probe) {
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, host, service = std::to_string(port)] {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    addrinfo* answer = nullptr;
    const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &answer);
    const std::lock_guard lock(lookup->mutex);
    lookup->rc = rc;
    lookup->answer = answer;
    lookup->done = true;
    lookup->done_cv.notify_all();
  }).detach();
  std::unique_lock lock(lookup->mutex);
  while (!lookup->done) {
    if (auto stop = probe.must_stop()) {
      return {std::nullopt, stop, {}};
    }
    lookup->done_cv.wait_for(lock, k_slice);
  }
  if (lookup->rc != 0) {
    return {std::nullopt, std::nullopt, gai_strerror(lookup->rc)};
  }
  Addresses out(lookup->answer, &freeaddrinfo);
  lookup->answer = nullptr;
  return {std::move(out), std::nullopt, {}};
}

// A plain TCP connect to each address in turn; the first that connects ends it (and is closed:
// the MQTT client opens its own). Empty error = connected.
struct TcpOutcome {
  std::optional<ProbeVerdict> stopped;
  std::string error;
};

TcpOutcome tcp_connect(const addrinfo* addresses, const Probe& probe) {
  std::string error = "no address";
  for (const addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      error = std::strerror(errno);
      continue;
    }
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      for (;;) {
        if (auto stop = probe.must_stop()) {
          close(fd);
          return {stop, {}};
        }
        rc = poll(&p, 1, static_cast<int>(k_slice.count()));
        if (rc > 0) {
          socklen_t len = sizeof err;
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          break;
        }
        if (rc < 0 && errno != EINTR) {
          err = errno;
          break;
        }
      }
    }
    close(fd);
    if (err == 0) {
      return {};
    }
    error = std::strerror(err);
  }
  return {std::nullopt, error};
}

// What the client library reports through its callbacks.
struct Session {
  std::optional<int> connack;
  bool closed = false;
  std::string last_error; // the library's last error-level log line (OpenSSL's reason)
};

void on_connect(mosquitto* /*m*/, void* obj, int rc) {
  static_cast<Session*>(obj)->connack = rc;
}
void on_disconnect(mosquitto* /*m*/, void* obj, int /*rc*/) {
  static_cast<Session*>(obj)->closed = true;
}
void on_log(mosquitto* /*m*/, void* obj, int level, const char* text) {
  if ((level & MOSQ_LOG_ERR) != 0 && text != nullptr) {
    static_cast<Session*>(obj)->last_error = text;
  }
}

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

using Client = std::unique_ptr<mosquitto, decltype(&mosquitto_destroy)>;

bool handshake_done(mosquitto* m) {
  const auto* ssl = static_cast<const SSL*>(mosquitto_ssl_get(m));
  return ssl != nullptr && SSL_is_init_finished(ssl) != 0;
}

std::string library_error(int rc, const Session& session) {
  std::string text = rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc);
  if (!session.last_error.empty()) {
    text += " (" + session.last_error + ")";
  }
  return text;
}

// TLS (when asked) and CONNECT -> CONNACK through libmosquitto, then DISCONNECT.
MqttProbeResult mqtt_exchange(const MqttProbeTarget& target, Probe& probe) {
  init_library();
  Session session;
  Client client(mosquitto_new(target.client_id.c_str(), true, &session), &mosquitto_destroy);
  auto start = Clock::now();
  if (!client) {
    return probe.failed("connack", start, ProbeVerdict::protocol, std::strerror(errno));
  }
  mosquitto* m = client.get();
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_connect_callback_set(m, on_connect);
  mosquitto_disconnect_callback_set(m, on_disconnect);
  mosquitto_log_callback_set(m, on_log);
  mosquitto_username_pw_set(m, target.username.c_str(), target.password.c_str());
  if (target.tls) {
    mosquitto_int_option(m, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
    if (target.ca_file) {
      const int rc =
          mosquitto_tls_set(m, target.ca_file->c_str(), nullptr, nullptr, nullptr, nullptr);
      if (rc != MOSQ_ERR_SUCCESS) {
        return probe.failed("tls",
                            start,
                            ProbeVerdict::tls,
                            "CA file " + *target.ca_file + ": " + library_error(rc, session));
      }
    }
  }
  const char* step = target.tls ? "tls" : "connack";
  int rc = mosquitto_connect_async(m, target.host.c_str(), target.port, target.keepalive_s);
  if (rc != MOSQ_ERR_SUCCESS) {
    return probe.failed(step,
                        start,
                        rc == MOSQ_ERR_TLS ? ProbeVerdict::tls : ProbeVerdict::tcp,
                        library_error(rc, session));
  }
  bool tls_done = !target.tls;
  while (!session.connack) {
    if (auto stop = probe.must_stop()) {
      return probe.failed(step, start, *stop, stop_text(*stop, step));
    }
    rc = mosquitto_loop(m, static_cast<int>(k_slice.count()), 1);
    if (!tls_done && handshake_done(m)) {
      tls_done = true;
      probe.passed("tls", start);
      start = Clock::now();
      step = "connack";
    }
    if (session.connack) {
      break;
    }
    if (rc != MOSQ_ERR_SUCCESS || session.closed) {
      if (!tls_done) {
        return probe.failed("tls",
                            start,
                            ProbeVerdict::tls,
                            session.last_error.empty()
                                ? "the connection closed during the TLS handshake (" +
                                      library_error(rc, session) + ")"
                                : library_error(rc, session));
      }
      return probe.failed("connack",
                          start,
                          ProbeVerdict::protocol,
                          "the server closed the connection without a CONNACK (" +
                              library_error(rc, session) + ")");
    }
  }
  const int code = *session.connack;
  probe.result.connack = code;
  if (code != 0) {
    const auto verdict =
        code == 4 || code == 5 ? ProbeVerdict::bad_credentials : ProbeVerdict::refused;
    return probe.failed(
        "connack", start, verdict, "CONNACK " + std::to_string(code) + ": " + connack_text(code));
  }
  probe.passed("connack", start);
  mosquitto_disconnect(m);
  for (int i = 0; i < 4 && !session.closed; ++i) {
    (void)mosquitto_loop(m, 10, 1); // flushes the DISCONNECT
  }
  probe.result.verdict = ProbeVerdict::accepted;
  return std::move(probe.result);
}

} // namespace

std::string_view to_string(ProbeVerdict v) {
  switch (v) {
  case ProbeVerdict::accepted:
    return "accepted";
  case ProbeVerdict::bad_credentials:
    return "bad-credentials";
  case ProbeVerdict::refused:
    return "refused";
  case ProbeVerdict::dns:
    return "dns";
  case ProbeVerdict::tcp:
    return "tcp";
  case ProbeVerdict::tls:
    return "tls";
  case ProbeVerdict::protocol:
    return "protocol";
  case ProbeVerdict::timeout:
    return "timeout";
  case ProbeVerdict::interrupted:
    return "interrupted";
  }
  return "protocol";
}

const ProbeStep* MqttProbeResult::step(std::string_view name) const {
  for (const auto& s : steps) {
    if (s.name == name) {
      return &s;
    }
  }
  return nullptr;
}

std::string connack_text(int code) {
  switch (code) {
  case 0:
    return "accepted";
  case 1:
    return "unacceptable protocol version";
  case 2:
    return "identifier rejected";
  case 3:
    return "server unavailable";
  case 4:
    return "bad user name or password";
  case 5:
    return "not authorized";
  default:
    return "code " + std::to_string(code);
  }
}

MqttProbeResult probe_mqtt(const MqttProbeTarget& target) {
  Probe probe;
  probe.deadline = Clock::now() + target.timeout;
  auto start = Clock::now();
  auto resolved = resolve(target.host, target.port, probe);
  if (resolved.stopped) {
    return probe.failed("dns", start, *resolved.stopped, stop_text(*resolved.stopped, "dns"));
  }
  if (!resolved.addresses) {
    return probe.failed("dns", start, ProbeVerdict::dns, target.host + ": " + resolved.error);
  }
  probe.passed("dns", start);
  start = Clock::now();
  const auto tcp = tcp_connect(resolved.addresses->get(), probe);
  if (tcp.stopped) {
    return probe.failed("tcp", start, *tcp.stopped, stop_text(*tcp.stopped, "tcp"));
  }
  if (!tcp.error.empty()) {
    return probe.failed("tcp",
                        start,
                        ProbeVerdict::tcp,
                        target.host + ":" + std::to_string(target.port) + ": " + tcp.error);
  }
  probe.passed("tcp", start);
  return mqtt_exchange(target, probe);
}

} // namespace iot::cloud
