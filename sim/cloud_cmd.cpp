// SPDX-License-Identifier: MIT
#include "sim/cloud_cmd.hpp"

#include "core/host_port.hpp"
#include "sim/cloud_actions.hpp"
#include "sim/cloud_ota.hpp"
#include "sim/cloud_scenario.hpp"
#include "sim/cloud_service.hpp"
#include "sim/cloud_store.hpp"
#include "sim/cloud_tls.hpp"
#include "sim/identity.hpp"

#include <httplib.h>
#include <openssl/ssl.h>

#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <tuple>
#include <vector>

namespace iot::sim {

namespace {

namespace fs = std::filesystem;
using namespace iot::sim::cloud;

// Gives access to the listening socket (to raise httplib's small listen backlog).
template <class Base> class Exposed : public Base {
public:
  using Base::Base;
  [[nodiscard]] int socket() const { return this->svr_sock_; }
};

Result<fs::path> prepare_state_dir(const std::string& requested) {
  std::error_code ec;
  if (!requested.empty()) {
    fs::create_directories(requested, ec);
    if (ec) {
      return fail(ErrorKind::io, "create state dir " + requested + ": " + ec.message());
    }
    return fs::absolute(requested);
  }
  std::string templ = (fs::temp_directory_path(ec) / "iotfleet-sim-cloud-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    return fail(ErrorKind::io, "create temporary state dir: " + std::string(std::strerror(errno)));
  }
  return fs::absolute(templ);
}

std::uint16_t port_of(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
  }
  return 0;
}

// The socket of a plain-HTTP request: httplib does not expose it, so look for the socket whose
// local and peer ports are the request's.
int connection_fd(const httplib::Request& req) {
  if (req.ssl != nullptr) {
    return SSL_get_fd(req.ssl);
  }
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return -1;
  }
  int found = -1;
  while (const dirent* entry = ::readdir(dir)) {
    int fd = -1;
    const std::string_view name(entry->d_name);
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc{}) {
      continue;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
      continue;
    }
    sockaddr_storage local{};
    sockaddr_storage peer{};
    socklen_t local_len = sizeof local;
    socklen_t peer_len = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
      continue;
    }
    if (port_of(local) == req.local_port && port_of(peer) == req.remote_port) {
      found = fd;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

// Ends the connection without an answer: nothing more can be written, and the close that
// follows is a reset.
void reset_connection(const httplib::Request& req) {
  const int fd = connection_fd(req);
  if (fd < 0) {
    return;
  }
  const linger abort_close{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
  ::shutdown(fd, SHUT_RDWR);
}

void print_counters(const Counters& c) {
  std::ostringstream out;
  std::uint64_t total =
      c.other_requests + c.register_requests + c.activate_requests + c.upload_requests;
  std::uint64_t throttled = 0;
  for (const ActionCount& a : c.actions) {
    total += a.requests;
    throttled += a.throttled;
  }
  out << "requests: " << total << '\n';
  for (const ActionCount& a : c.actions) {
    if (a.requests > 0) {
      out << "  " << a.action << ": " << a.requests << " (throttled " << a.throttled << ")\n";
    }
  }
  if (c.register_requests > 0) {
    out << "  /auth/register/device: " << c.register_requests << " (secrets issued "
        << c.register_issued << ")\n";
  }
  if (c.activate_requests > 0) {
    out << "  /_emulator/activate: " << c.activate_requests << '\n';
  }
  if (c.upload_requests > 0) {
    out << "  " << k_oss_path << " (upload): " << c.upload_requests << '\n';
  }
  if (c.other_requests > 0) {
    out << "  (no or unknown Action): " << c.other_requests << '\n';
  }
  out << "throttled by QPS limits: " << throttled << '\n';
  out << "faults injected: 5xx " << c.fault_5xx << ", throttle-burst " << c.fault_throttle
      << ", truncate " << c.fault_truncate << ", reset " << c.fault_reset << '\n';
  out << "errors:";
  if (c.errors.empty()) {
    out << " none";
  }
  for (const auto& [code, n] : c.errors) {
    out << ' ' << code << '=' << n;
  }
  out << '\n';
  std::cerr << out.str() << std::flush;
}

std::string host_for_url(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

} // namespace

Result<std::pair<std::string, int>> parse_listen(std::string_view text) {
  auto parsed = IOT_TRY_CTX(core::parse_host_port(text), "--listen");
  if (!parsed.port) {
    return fail(ErrorKind::usage,
                "--listen " + std::string(text) + ": give a port (HOST:PORT, 0 = any free one)");
  }
  if (parsed.host.empty()) {
    parsed.host = "127.0.0.1";
  }
  return std::pair{parsed.host, *parsed.port};
}

Result<std::pair<std::int64_t, std::int64_t>> parse_latency_ms(std::string_view text) {
  auto number = [](std::string_view s) -> std::optional<std::int64_t> {
    std::int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || v < 0 || v > 600000) {
      return std::nullopt;
    }
    return v;
  };
  const std::size_t dash = text.find('-');
  const auto lo = number(text.substr(0, dash));
  const auto hi = dash == std::string_view::npos ? lo : number(text.substr(dash + 1));
  if (!lo || !hi || *hi < *lo) {
    return fail(ErrorKind::usage,
                "--latency-ms: expected MIN-MAX or N milliseconds (0-600000), got " +
                    std::string(text));
  }
  return std::pair{*lo, *hi};
}

namespace {

// --- check: the options, turned into what the service and the listener take -----------------

struct CloudPlan {
  std::string host;
  int port = 0;
  std::uint64_t seed = 0;
  ServiceOptions service;
};

Result<CloudPlan> check_options(const CloudOptions& options) {
  CloudPlan plan;
  std::tie(plan.host, plan.port) = IOT_TRY(parse_listen(options.listen));
  ServiceOptions& s = plan.service;
  s.qps_scale = options.qps_scale;
  s.no_limits = options.no_limits;
  s.batch_delay_ms = options.batch_delay_ms;
  s.time_scale = options.time_scale;
  s.faults.fail_5xx = options.fail_5xx;
  s.faults.throttle_burst = options.throttle_burst;
  s.faults.truncate = options.truncate;
  s.faults.reset = options.reset;
  if (!options.latency_ms.empty()) {
    std::tie(s.faults.latency_min_ms, s.faults.latency_max_ms) =
        IOT_TRY(parse_latency_ms(options.latency_ms));
  }
  plan.seed = options.seed ? *options.seed : std::random_device{}();
  s.seed = derive_seed(plan.seed, 1000);
  return plan;
}

// --- resolve: the state dir and the store, seeded from the scenario when new -----------------

struct CloudState {
  fs::path dir;
  std::unique_ptr<CloudStore> store;
};

Result<CloudState> open_state(const CloudOptions& options, std::uint64_t seed) {
  CloudState state;
  state.dir = IOT_TRY(prepare_state_dir(options.state_dir));
  if (options.state_dir.empty()) {
    std::cerr << "state dir: " << state.dir.string() << '\n';
  }
  const fs::path db = state.dir / "cloud.db";
  if (options.reseed) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      fs::remove(db.string() + suffix, ec);
    }
  }
  std::optional<Scenario> scenario;
  if (!options.scenario.empty()) {
    scenario = IOT_TRY(load_scenario(options.scenario));
  }
  state.store = IOT_TRY(CloudStore::open(db));
  if (!state.store->seeded()) {
    if (!scenario) {
      return fail(ErrorKind::usage,
                  "no cloud state in " + state.dir.string() + ": give --scenario FILE to seed it");
    }
    const auto stats = IOT_TRY(state.store->seed(*scenario, seed));
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.2f", stats.seconds);
    std::cerr << "seeded " << stats.products << " products, " << stats.devices << " devices in "
              << seconds << " s (seed " << seed << ")\n";
  } else if (scenario) {
    std::cerr << "state " << db.string()
              << " exists: scenario not re-applied (--reseed to start over)\n";
  }
  return state;
}

// --- the HTTP(S) server and its routes -----------------------------------------------------

struct Listener {
  std::unique_ptr<httplib::Server> server;
  int (*socket)(const httplib::Server&) = nullptr; // the listening socket
};

Result<Listener> make_listener(bool tls, const fs::path& dir, const std::string& host) {
  Listener l;
  if (tls) {
    const auto files = IOT_TRY(ensure_tls_files(dir, {host}));
    std::cerr << "ca: " << files.ca_cert.string() << '\n';
    l.server = std::make_unique<Exposed<httplib::SSLServer>>(files.server_cert.c_str(),
                                                             files.server_key.c_str());
    l.socket = [](const httplib::Server& s) {
      return static_cast<const Exposed<httplib::SSLServer>&>(s).socket();
    };
  } else {
    l.server = std::make_unique<Exposed<httplib::Server>>();
    l.socket = [](const httplib::Server& s) {
      return static_cast<const Exposed<httplib::Server>&>(s).socket();
    };
  }
  if (!l.server->is_valid()) {
    return fail(ErrorKind::failure, "cannot set up the HTTPS server (certificate or key unusable)");
  }
  return l;
}

void configure(httplib::Server& server, int threads) {
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<std::size_t>(threads));
  };
  server.set_keep_alive_max_count(100000);
  server.set_keep_alive_timeout(10);
  server.set_read_timeout(30);
  server.set_write_timeout(30);
  server.set_tcp_nodelay(true);
}

std::int64_t ms_since(std::chrono::steady_clock::time_point started) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               started)
      .count();
}

// The OpenAPI, dynamic registration and the emulator's own paths: one CloudService call.
void serve_api(CloudService& service,
               bool verbose,
               const httplib::Request& req,
               httplib::Response& res) {
  const auto started = std::chrono::steady_clock::now();
  CloudRequest request;
  request.method = req.method;
  request.path = req.path;
  if (const std::size_t q = req.target.find('?'); q != std::string::npos) {
    request.query = req.target.substr(q + 1);
  }
  request.body = req.body;
  request.content_type = req.get_header_value("Content-Type");
  request.user_agent = req.get_header_value("User-Agent");
  const CloudResponse response = service.handle(request);
  if (response.delay.count() > 0) {
    std::this_thread::sleep_for(response.delay);
  }
  res.status = response.status;
  res.set_header("x-acs-request-id", response.request_id);
  constexpr const char* k_type = "application/json;charset=utf-8";
  switch (response.delivery) {
  case Delivery::normal:
    res.set_content(response.body, k_type);
    break;
  case Delivery::truncate: {
    auto body = std::make_shared<std::string>(response.body);
    res.set_content_provider(
        body->size(), k_type, [body](std::size_t, std::size_t, httplib::DataSink& sink) {
          sink.write(body->data(), body->size() / 2);
          return false; // the rest never comes: the connection is closed
        });
    break;
  }
  case Delivery::reset:
    reset_connection(req);
    res.set_content(response.body, k_type);
    break;
  }
  if (verbose) {
    std::ostringstream line;
    line << req.method << ' ' << req.path << ' '
         << (response.action.empty() ? "-" : response.action) << ' ' << response.status << ' '
         << (response.code.empty() ? "OK" : response.code) << ' ' << ms_since(started) << "ms "
         << response.request_id
         << (response.delivery == Delivery::truncate ? " truncated"
             : response.delivery == Delivery::reset  ? " reset"
                                                     : "")
         << '\n';
    std::cerr << line.str() << std::flush;
  }
}

// Reads a PostObject multipart body into `up`: the form fields, and the file streamed to disk
// as it arrives (never held in memory). False when the body did not arrive whole.
bool read_post_object(OssUpload& up, const httplib::ContentReader& reader) {
  constexpr std::size_t k_max_field = 64 * 1024;
  std::string name;
  std::string value;
  bool in_file = false;
  const auto flush = [&] {
    if (!name.empty() && !in_file) {
      up.field(name, value);
    }
    name.clear();
    value.clear();
  };
  const bool complete = reader(
      [&](const httplib::MultipartFormData& part) {
        flush();
        name = part.name;
        in_file = part.name == "file";
        if (in_file) {
          (void)up.begin_file(); // a refusal is answered once the body is read
        }
        return true;
      },
      [&](const char* data, std::size_t size) {
        if (in_file) {
          return up.write(data, size);
        }
        if (value.size() < k_max_field) {
          value.append(data, std::min<std::size_t>(size, k_max_field - value.size()));
        }
        return true;
      });
  flush();
  return complete;
}

// The OSS-style object store (sim/cloud_oss.cpp): PostObject uploads.
void serve_upload(CloudService& service,
                  CloudStore& store,
                  bool verbose,
                  const httplib::Request& req,
                  httplib::Response& res,
                  const httplib::ContentReader& reader) {
  const auto started = std::chrono::steady_clock::now();
  const std::string request_id = service.new_request_id();
  OssUpload up(store, service.options(), to_ms(WallClock::now()), request_id);
  OssAnswer answer;
  const std::string fault = service.upload_fault();
  const std::int64_t length =
      static_cast<std::int64_t>(req.get_header_value<std::uint64_t>("Content-Length"));
  bool drained = false;
  if (fault == "5xx") {
    answer = up.refuse(503, "ServiceUnavailable", "Please reduce your request rate.");
  } else if (!req.is_multipart_form_data()) {
    answer = up.refuse(400, "InvalidArgument", "PostObject needs multipart/form-data.");
  } else if (length > service.options().oss_max_bytes + 1024 * 1024) {
    answer =
        up.refuse(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.");
  } else {
    drained = read_post_object(up, reader);
    answer = up.finish(drained);
  }
  service.count_upload(answer.code);
  if (fault == "reset" && drained) {
    reset_connection(req);
  }
  if (!drained) {
    res.set_header("Connection", "close"); // the rest of the body was not read
  }
  res.status = answer.status;
  res.set_header("x-oss-request-id", request_id);
  if (!answer.body.empty()) {
    res.set_content(answer.body, answer.content_type);
  }
  if (verbose) {
    std::ostringstream line;
    line << "POST " << req.path << " PostObject " << answer.status << ' '
         << (answer.code.empty() ? "OK" : answer.code) << ' ' << ms_since(started) << "ms "
         << request_id << (fault.empty() ? "" : " " + fault) << '\n';
    std::cerr << line.str() << std::flush;
  }
}

// Object downloads, streamed from the file.
void serve_download(CloudStore& store, const httplib::Request& req, httplib::Response& res) {
  const std::string prefix = std::string(k_oss_path) + "/";
  const OssDownload d = oss_download(store, std::string_view(req.path).substr(prefix.size()));
  if (d.error.status != 200) {
    res.status = d.error.status;
    res.set_content(d.error.body, d.error.content_type);
    return;
  }
  auto file = std::make_shared<std::ifstream>(d.path, std::ios::binary);
  res.set_content_provider(static_cast<std::size_t>(d.size),
                           "application/octet-stream",
                           [file](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                             std::vector<char> buffer(std::min<std::size_t>(length, 1 << 16));
                             file->seekg(static_cast<std::streamoff>(offset));
                             file->read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
                             const auto got = file->gcount();
                             if (got <= 0) {
                               return false;
                             }
                             sink.write(buffer.data(), static_cast<std::size_t>(got));
                             return true;
                           });
}

void add_routes(httplib::Server& server, CloudService& service, CloudStore& store, bool verbose) {
  server.Post(std::string(k_oss_path),
              [&service, &store, verbose](const httplib::Request& req,
                                          httplib::Response& res,
                                          const httplib::ContentReader& reader) {
                serve_upload(service, store, verbose, req, res, reader);
              });
  server.Get(std::string(k_oss_path) + "/.+",
             [&store](const httplib::Request& req, httplib::Response& res) {
               serve_download(store, req, res);
             });
  const auto api = [&service, verbose](const httplib::Request& req, httplib::Response& res) {
    serve_api(service, verbose, req, res);
  };
  server.Get(".*", api);
  server.Post(".*", api);
}

// Binds host:port (port 0: any free one) with a real backlog; the port bound.
Result<int> bind_listener(Listener& l, const CloudPlan& plan, const std::string& listen_text) {
  int port = plan.port;
  if (plan.port == 0) {
    port = l.server->bind_to_any_port(plan.host);
    if (port < 0) {
      return fail(ErrorKind::io, "cannot listen on " + plan.host + ": " + std::strerror(errno));
    }
  } else if (!l.server->bind_to_port(plan.host, plan.port)) {
    return fail(ErrorKind::io, "cannot listen on " + listen_text + ": " + std::strerror(errno));
  }
  ::listen(l.socket(*l.server), 1024); // httplib listens with a backlog of 5
  return port;
}

// --- serve: until a signal; the counters on the way out ------------------------------------

// Signals are taken by one thread with sigtimedwait: blocked before any thread starts.
Result<sigset_t> block_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  if (::pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
    return fail(ErrorKind::failure, "pthread_sigmask failed");
  }
  std::signal(SIGPIPE, SIG_IGN);
  return signals;
}

Status serve(httplib::Server& server, CloudService& service, const sigset_t& signals) {
  std::atomic<bool> stopping{false};
  std::mutex done_mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::atomic<bool> printed{false};
  const auto print_once = [&] {
    if (!printed.exchange(true)) {
      print_counters(service.counters());
    }
  };
  std::thread signal_thread([&] {
    const timespec wait{0, 200'000'000};
    while (!stopping.load()) {
      siginfo_t info{};
      if (::sigtimedwait(&signals, &info, &wait) <= 0) {
        continue;
      }
      std::cerr << "iotfleet-sim cloud: " << ::strsignal(info.si_signo) << ", shutting down\n";
      stopping.store(true);
      server.stop();
      // httplib lets an idle keep-alive connection hold its worker until the keep-alive
      // timeout; do not wait that long. Every committed change is already in the database.
      std::unique_lock lock(done_mutex);
      if (!done_cv.wait_for(lock, std::chrono::seconds(2), [&] { return done; })) {
        print_once();
        std::cerr << std::flush;
        std::_Exit(0);
      }
    }
  });
  std::thread ticker([&] {
    while (!stopping.load()) {
      service.tick();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::cerr << "ready" << std::endl;
  const bool served = server.listen_after_bind();
  const bool by_signal = stopping.exchange(true);
  {
    const std::lock_guard lock(done_mutex);
    done = true;
  }
  done_cv.notify_all();
  signal_thread.join();
  ticker.join();
  print_once();
  if (!served && !by_signal) {
    return fail(ErrorKind::io, "the server stopped unexpectedly");
  }
  return {};
}

} // namespace

// check -> resolve the state -> set up the listener -> block signals -> route -> bind -> serve.
Status run_cloud(const CloudOptions& options) {
  const CloudPlan plan = IOT_TRY(check_options(options));
  CloudState state = IOT_TRY(open_state(options, plan.seed));
  Listener listener = IOT_TRY(make_listener(options.tls, state.dir, plan.host));
  const sigset_t signals = IOT_TRY(block_signals());
  std::unique_ptr<ExchangeLog> exchange_log;
  if (!options.exchange_log.empty()) {
    exchange_log = IOT_TRY(ExchangeLog::open(options.exchange_log));
  }
  CloudService service(*state.store, plan.service);
  service.set_exchange_log(exchange_log.get());
  configure(*listener.server, options.threads);
  add_routes(*listener.server, service, *state.store, options.verbose);
  const int port = IOT_TRY(bind_listener(listener, plan, options.listen));
  const std::string url = std::string(options.tls ? "https://" : "http://") +
                          host_for_url(plan.host) + ':' + std::to_string(port);
  service.set_public_url(url);
  std::cout << url << std::endl;
  return serve(*listener.server, service, signals);
}

std::string action_list() {
  std::string out;
  for (const ActionSpec& spec : action_table()) {
    out += spec.name;
    out += '\n';
  }
  return out;
}

void register_cloud(CLI::App& app) {
  auto options = std::make_shared<CloudOptions>();
  auto seed = std::make_shared<std::uint64_t>(0);
  auto list_actions = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "cloud",
      "Emulate the Alibaba Cloud IoT Platform OpenAPI (Iot 2018-01-20) and HTTPS dynamic "
      "registration over HTTP(S)");
  cmd->add_option("--listen", options->listen, "HOST:PORT to serve on (PORT 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--state-dir",
                  options->state_dir,
                  "Directory of the state (cloud.db) and certificates (default: a new temporary "
                  "dir, printed)");
  cmd->add_option("--scenario",
                  options->scenario,
                  "Scenario JSON: access keys, products, devices (applied when the state is new)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--reseed", options->reseed, "Delete the state and seed it again from --scenario");
  CLI::Option* seed_opt =
      cmd->add_option("--seed", *seed, "RNG seed: same seed, same fleet, secrets and faults");
  cmd->add_flag("--tls", options->tls, "Serve HTTPS with a private CA (ca.pem in the state dir)");
  cmd->add_option("--qps-scale", options->qps_scale, "Multiply every QPS limit by F")
      ->check(CLI::Range(0.001, 1.0e6))
      ->capture_default_str();
  cmd->add_flag("--no-limits", options->no_limits, "No QPS limits");
  cmd->add_option("--latency-ms", options->latency_ms, "Latency per request: MIN-MAX or N ms");
  const auto probability = CLI::Range(0.0, 1.0);
  cmd->add_option(
         "--fail-5xx", options->fail_5xx, "P(503 ServiceUnavailable or iot.system.SystemException)")
      ->check(probability);
  cmd->add_option("--throttle-burst", options->throttle_burst, "P(extra Throttling answer)")
      ->check(probability);
  cmd->add_option("--truncate", options->truncate, "P(body cut short; the request ran)")
      ->check(probability);
  cmd->add_option("--reset", options->reset, "P(connection closed unanswered; the request ran)")
      ->check(probability);
  cmd->add_option("--threads", options->threads, "Worker threads (one per open connection)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--batch-delay-ms",
                  options->batch_delay_ms,
                  "Duration of each batch-registration phase (CHECK, CREATE)")
      ->check(CLI::Range(0L, 3'600'000L))
      ->capture_default_str();
  cmd->add_option("--time-scale",
                  options->time_scale,
                  "OTA: simulated seconds per real second (MaximumPerMinute, task durations, "
                  "retries, timeouts, schedules)")
      ->check(CLI::Range(0.001, 1.0e6))
      ->capture_default_str();
  cmd->add_flag("-v,--verbose", options->verbose, "One line per request on stderr (no parameters)");
  cmd->add_option("--exchange-log",
                  options->exchange_log,
                  "Append one JSON line per OpenAPI exchange to FILE: Action, parameters, sender, "
                  "status, answer; secrets masked (for the SDK contract test)")
      ->option_text("FILE");
  cmd->add_flag(
      "--list-actions", *list_actions, "Print the OpenAPI Actions served, one per line, and exit");
  cmd->callback([options, seed, seed_opt, list_actions]() {
    if (*list_actions) {
      std::cout << action_list() << std::flush;
      return;
    }
    if (seed_opt->count() > 0) {
      options->seed = *seed;
    }
    if (options->reseed && options->scenario.empty()) {
      std::cerr << "iotfleet-sim: error: --reseed needs --scenario\n";
      throw CLI::RuntimeError(2);
    }
    if (auto done = run_cloud(*options); !done) {
      std::cerr << "iotfleet-sim: error: " << done.error().message << '\n';
      throw CLI::RuntimeError(done.error().kind == ErrorKind::usage ? 2 : 1);
    }
  });
}

} // namespace iot::sim
