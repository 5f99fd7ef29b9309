// SPDX-License-Identifier: MIT
#include "commands/serve.hpp"

#include "cloud/enrollment.hpp"
#include "commands/cloud_access.hpp"
#include "commands/common_options.hpp"
#include "commands/ledger_access.hpp"
#include "commands/serve_http.hpp"
#include "commands/serve_status.hpp"
#include "core/csv.hpp"
#include "core/file.hpp"
#include "core/host_port.hpp"
#include "core/interrupt.hpp"
#include "core/rate_limit.hpp"
#include "core/text.hpp"
#include "core/validate.hpp"

#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fnmatch.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace iot::commands {
namespace {

using Clock = std::chrono::steady_clock;
using cloud::EnrollRefusal;
using std::chrono::milliseconds;
namespace code = cloud::enroll_code;

constexpr std::string_view k_register_path = "/auth/register/device";
constexpr std::size_t k_min_enrollment_secret = 16;
constexpr milliseconds k_status_refresh_default = std::chrono::minutes(10);

// ---- the enrollment file: which products the server serves, and how they sign -------------

enum class Scheme { product, device_key };

struct Product {
  Scheme scheme = Scheme::product;
  std::string secret; // the enrollment secret, or the group secret of device-key. SECRET.
};

using Products = std::map<std::string, Product>;

// Lines "product_key,scheme,secret" (a header line of those names and # comments allowed).
Result<Products> read_enrollment(const std::string& path, Context& ctx) {
  const auto text = IOT_TRY(core::read_file(path, "enrollment file", {ErrorKind::usage, 1U << 20}));
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    ctx.output->warn(path +
                     " holds enrollment secrets and is readable by group or others: run "
                     "chmod 600 " +
                     path);
  }
  Products products;
  std::size_t line_number = 0;
  for (std::size_t start = 0; start < text.size();) {
    const auto end = std::min(text.find('\n', start), text.size());
    const std::string_view line(text.data() + start, end - start);
    start = end + 1;
    ++line_number;
    const auto trimmed = core::trim(line);
    if (trimmed.empty() || trimmed.starts_with('#')) {
      continue;
    }
    const std::string at = path + " line " + std::to_string(line_number);
    auto fields = IOT_TRY_CTX(core::csv_split_line(trimmed), at);
    if (fields.size() == 3 && fields[0] == "product_key" && fields[1] == "scheme") {
      continue; // the header
    }
    if (fields.size() != 3) {
      return fail(ErrorKind::usage,
                  at + ": want product_key,scheme,secret (3 fields), not " +
                      std::to_string(fields.size()));
    }
    IOT_TRY_CTX(core::validate_product_key(fields[0]), at);
    Product product;
    if (fields[1] == "product") {
      product.scheme = Scheme::product;
    } else if (fields[1] == "device-key") {
      product.scheme = Scheme::device_key;
    } else {
      return fail(ErrorKind::usage, at + ": the scheme is product or device-key");
    }
    if (fields[2].size() < k_min_enrollment_secret) {
      return fail(ErrorKind::usage,
                  at + ": the secret is shorter than " + std::to_string(k_min_enrollment_secret) +
                      " characters (make one with openssl rand -hex 32)");
    }
    product.secret = fields[2];
    if (!products.emplace(fields[0], std::move(product)).second) {
      return fail(ErrorKind::usage, at + ": product " + fields[0] + " is listed twice");
    }
  }
  if (products.empty()) {
    return fail(ErrorKind::usage,
                "the enrollment file " + path +
                    " lists no product: one line product_key,scheme,secret per product");
  }
  return products;
}

// ---- metrics ------------------------------------------------------------------------------

constexpr std::array<std::string_view, 14> k_outcomes = {"issued",
                                                         "again",
                                                         "bad-request",
                                                         "bad-sign",
                                                         "replay",
                                                         "no-product",
                                                         "unknown-device",
                                                         "disabled",
                                                         "clone",
                                                         "module-taken",
                                                         "throttled",
                                                         "ledger-error",
                                                         "cloud-error",
                                                         "too-large"};
constexpr std::array<double, 9> k_buckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};

class Metrics {
public:
  void record(std::string_view outcome, double seconds) {
    std::lock_guard lock(m_mutex);
    ++m_requests[std::string(outcome)];
    for (std::size_t i = 0; i < k_buckets.size(); ++i) {
      if (seconds <= k_buckets[i]) {
        ++m_buckets[i];
      }
    }
    ++m_count;
    m_sum += seconds;
  }

  std::atomic<std::uint64_t> pool_hits{0};     // names the pool had, however answered
  std::atomic<std::uint64_t> cloud_lookups{0}; // names not in the pool, asked of the cloud
  std::atomic<int> cloud_waiting{0};           // requests waiting for the cloud now

  [[nodiscard]] std::string text() const {
    std::lock_guard lock(m_mutex);
    std::string out;
    out += "# HELP iotfleet_serve_requests_total Registration requests by outcome.\n"
           "# TYPE iotfleet_serve_requests_total counter\n";
    for (const auto outcome : k_outcomes) {
      const auto it = m_requests.find(std::string(outcome));
      out += "iotfleet_serve_requests_total{outcome=\"" + std::string(outcome) + "\"} " +
             std::to_string(it == m_requests.end() ? 0 : it->second) + "\n";
    }
    const auto clones = m_requests.find("clone");
    out += "# HELP iotfleet_serve_clone_alerts_total Requests for a name bound to another "
           "module.\n# TYPE iotfleet_serve_clone_alerts_total counter\n"
           "iotfleet_serve_clone_alerts_total " +
           std::to_string(clones == m_requests.end() ? 0 : clones->second) + "\n";
    out += "# HELP iotfleet_serve_pool_hits_total Requests for a name the pool has (answered "
           "from the ledger, whatever the outcome).\n# TYPE iotfleet_serve_pool_hits_total "
           "counter\niotfleet_serve_pool_hits_total " +
           std::to_string(pool_hits.load()) + "\n";
    out += "# HELP iotfleet_serve_cloud_lookups_total Names not in the pool, looked up with "
           "QueryDeviceDetail.\n# TYPE iotfleet_serve_cloud_lookups_total counter\n"
           "iotfleet_serve_cloud_lookups_total " +
           std::to_string(cloud_lookups.load()) +
           "\n# HELP iotfleet_serve_cloud_queue_depth Requests waiting for the cloud.\n"
           "# TYPE iotfleet_serve_cloud_queue_depth gauge\niotfleet_serve_cloud_queue_depth " +
           std::to_string(cloud_waiting.load()) + "\n";
    out += "# HELP iotfleet_serve_request_seconds Time to answer a registration request.\n"
           "# TYPE iotfleet_serve_request_seconds histogram\n";
    for (std::size_t i = 0; i < k_buckets.size(); ++i) {
      out += "iotfleet_serve_request_seconds_bucket{le=\"" + number(k_buckets[i]) + "\"} " +
             std::to_string(m_buckets[i]) + "\n";
    }
    out += "iotfleet_serve_request_seconds_bucket{le=\"+Inf\"} " + std::to_string(m_count) +
           "\niotfleet_serve_request_seconds_sum " + number(m_sum) +
           "\niotfleet_serve_request_seconds_count " + std::to_string(m_count) + "\n";
    return out;
  }

private:
  static std::string number(double value) {
    std::ostringstream s;
    s << value;
    return s.str();
  }
  mutable std::mutex m_mutex;
  std::map<std::string, std::uint64_t> m_requests;
  std::array<std::uint64_t, k_buckets.size()> m_buckets{};
  std::uint64_t m_count = 0;
  double m_sum = 0;
};

// ---- one request ----------------------------------------------------------------------------

struct Decision {
  int status = 200;
  std::optional<int> retry_after_s; // 429: when to come back
  std::string body;
  std::string outcome;
  int code = code::ok;
  std::string product_key;
  std::string device_name;
  std::string imei;
};

Decision refused(std::string outcome, int refusal_code, std::string message) {
  Decision d;
  d.outcome = std::move(outcome);
  d.code = refusal_code;
  d.body = cloud::enroll_refusal_answer(EnrollRefusal{refusal_code, std::move(message)});
  return d;
}

// HTTP 503: `what` ("ledger", "cloud") failed the request, nothing was issued; retry.
Decision unavailable(const std::string& what) {
  Decision d =
      refused(what + "-error", code::unavailable, "the " + what + " is unavailable: retry");
  d.status = 503;
  return d;
}

class Service {
public:
  Service(const ServeOptions& options,
          Products products,
          LedgerHandle ledger,
          CloudSession* cloud,
          std::optional<std::set<std::string>> allowed,
          CloudStatus* status,
          Context& ctx)
      : m_options(options), m_products(std::move(products)), m_ledger(std::move(ledger)),
        m_cloud(cloud), m_allowed(std::move(allowed)), m_status(status), m_ctx(ctx),
        m_per_address(options.per_address), m_per_device(options.per_device),
        m_registrations(options.register_rate) {
    m_ledger.actor.port = "serve";
  }

  Decision decide(const std::string& body, const std::string& address) {
    if (const auto wait = m_per_address.refuse(address)) {
      return throttled(*wait, "too many requests from this address");
    }
    auto parsed = cloud::parse_enroll_request(body);
    if (!parsed) {
      return refused("bad-request", parsed.error().code, parsed.error().message);
    }
    auto& request = *parsed;
    Decision d = decide_parsed(request, address);
    d.product_key = request.product_key;
    d.device_name = request.device_name;
    d.imei = request.imei;
    return d;
  }

  bool ledger_healthy(std::string& problem) {
    auto probe = m_ledger.ledger->find("healthz-probe", std::nullopt);
    if (!probe) {
      problem = probe.error().message;
    }
    return probe.has_value();
  }

  CloudStatus* status() { return m_status; }

  Metrics metrics;

private:
  Decision decide_parsed(const cloud::EnrollRequest& request, const std::string& address) {
    const auto product = m_products.find(request.product_key);
    if (product == m_products.end()) {
      return refused("no-product", code::no_product, "product not found");
    }
    const std::string key =
        product->second.scheme == Scheme::product
            ? product->second.secret
            : cloud::enrollment_device_key(product->second.secret, request.device_name);
    if (!cloud::enroll_sign_valid(request, key)) {
      return refused("bad-sign", code::bad_sign, "request auth error");
    }
    // Counted once the sign is good: nobody else can use up a device's requests.
    if (const auto wait = m_per_device.refuse(request.product_key + "/" + request.device_name)) {
      return throttled(*wait, "too many requests for this device");
    }
    if (request.timestamp_ms) {
      const auto now = std::chrono::duration_cast<milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      const auto skew =
          now > *request.timestamp_ms ? now - *request.timestamp_ms : *request.timestamp_ms - now;
      if (skew > m_options.replay_window.count()) {
        return refused("replay",
                       code::bad_request,
                       "request parameter error: timestamp is outside the replay window");
      }
    }
    if (request.imei.empty()) {
      return refused("bad-request",
                     code::bad_request,
                     "request parameter error: imei is missing (the server binds each "
                     "DeviceName to the module that first fetches it)");
    }
    // Before the transaction: a device the cloud disabled gets nothing, and nothing is bound.
    if (m_status != nullptr && m_status->disabled(request.product_key, request.device_name)) {
      return refused("disabled", code::disabled, "device is disabled");
    }
    store::IssueRequest ask;
    ask.key = {request.product_key, request.device_name};
    ask.imei = request.imei;
    ask.iccid = request.iccid;
    ask.address = address;
    ask.actor = m_ledger.actor;
    auto issue = issue_with_retry(ask);
    if (issue && issue->outcome != store::IssueOutcome::unknown) {
      ++metrics.pool_hits;
    }
    if (issue && issue->outcome == store::IssueOutcome::unknown && m_cloud &&
        (!m_allowed || m_allowed->contains(request.device_name))) {
      if (auto refusal = from_cloud(request)) {
        return *refusal;
      }
      issue = issue_with_retry(ask); // the cloud's secret is in the pool now
    }
    if (!issue) {
      warn_ledger(issue.error().message);
      return unavailable("ledger");
    }
    switch (issue->outcome) {
    case store::IssueOutcome::issued:
    case store::IssueOutcome::again: {
      Decision d;
      d.outcome = std::string(store::to_string(issue->outcome));
      d.body = cloud::enroll_answer(request.product_key, request.device_name, issue->secret);
      return d;
    }
    case store::IssueOutcome::clone:
      m_ctx.output->warn("clone alert: " + request.product_key + "/" + request.device_name +
                         " asked for by IMEI " + request.imei + " from " + address +
                         ", bound to IMEI " + issue->other_imei + " (refused)");
      return refused("clone", code::bound_elsewhere, "device is bound to another module");
    case store::IssueOutcome::module_taken:
      return refused(
          "module-taken", code::bound_elsewhere, "this module is bound to another device");
    case store::IssueOutcome::unknown:
    case store::IssueOutcome::not_device:
      break;
    }
    return refused("unknown-device", code::no_device, "device not found");
  }

  // Servers and their group commits lock rows in any order: a deadlock or a lock timeout
  // (ErrorKind::io) rolled the transaction back, nothing was issued, so it is tried again.
  Result<store::Issue> issue_with_retry(const store::IssueRequest& ask) {
    auto issue = m_ledger.ledger->issue_secret(ask);
    for (int retry = 0; retry < 5 && !issue && issue.error().kind == ErrorKind::io; ++retry) {
      std::this_thread::sleep_for(milliseconds(10 + 10 * retry));
      issue = m_ledger.ledger->issue_secret(ask);
    }
    return issue;
  }

  // A name the pool does not have: QueryDeviceDetail (paced at the account's QPS by the client;
  // at most --cloud-queue requests wait for it, more are told to come back), and its secret put
  // in the pool. A refusal, or nullopt once the pool has the device.
  std::optional<Decision> from_cloud(const cloud::EnrollRequest& request) {
    struct Waiting {
      std::atomic<int>& n;
      ~Waiting() { --n; }
    };
    if (metrics.cloud_waiting.fetch_add(1) >= m_options.cloud_queue) {
      --metrics.cloud_waiting;
      return throttled(1, "too many devices waiting for the cloud: retry");
    }
    Waiting waiting{metrics.cloud_waiting};
    ++metrics.cloud_lookups;
    auto detail = m_cloud->api->query_device_detail({request.product_key, request.device_name, {}});
    if (!detail && cloud::has_error_code(detail.error(), "NotExistedDevice")) {
      if (!m_options.register_unknown ||
          ::fnmatch(m_options.register_unknown->c_str(), request.device_name.c_str(), 0) != 0) {
        return refused("unknown-device", code::no_device, "device not found");
      }
      if (const auto wait = m_registrations.refuse("register")) {
        return throttled(*wait, "too many devices registered this minute: retry");
      }
      auto registered = m_cloud->api->register_device(request.product_key, request.device_name);
      if (!registered) {
        warn_ledger("registering " + request.product_key + "/" + request.device_name +
                    " (--register-unknown) failed: " + registered.error().message);
        return unavailable("cloud");
      }
      m_ctx.output->info("registered " + request.product_key + "/" + request.device_name +
                         " in the cloud (--register-unknown), asked for by IMEI " + request.imei);
      detail = cloud::DeviceDetail{};
      detail->device_secret = registered->device_secret;
      detail->status = registered->status;
    }
    if (!detail) {
      warn_ledger("the cloud lookup of " + request.product_key + "/" + request.device_name +
                  " failed: " + detail.error().message);
      return unavailable("cloud");
    }
    if (detail->status == "DISABLE") {
      return refused("disabled", code::disabled, "device is disabled");
    }
    if (detail->device_secret.empty()) {
      return refused("unknown-device", code::no_device, "device not found");
    }
    const core::TripletRow row{
        request.product_key, request.device_name, detail->device_secret, core::Scheme::device, 1};
    auto imported = m_ledger.ledger->import(
        std::span(&row, 1), "serve: QueryDeviceDetail", m_ledger.actor, false);
    if (!imported || !imported->committed) {
      warn_ledger(
          "keeping the cloud's secret of " + request.product_key + "/" + request.device_name +
          " in the ledger failed" +
          (imported ? ": the ledger has it with another secret" : ": " + imported.error().message));
      return unavailable("ledger");
    }
    return std::nullopt;
  }

  static Decision throttled(int retry_after_s, std::string message) {
    Decision d = refused("throttled", code::throttled, std::move(message));
    d.status = 429;
    d.retry_after_s = retry_after_s;
    return d;
  }

  void warn_ledger(const std::string& message) {
    std::lock_guard lock(m_warn_mutex);
    const auto now = Clock::now();
    if (now - m_last_ledger_warning > std::chrono::seconds(10)) {
      m_last_ledger_warning = now;
      m_ctx.output->warn("the ledger failed a request (answered 503, nothing issued): " + message);
    }
  }

  const ServeOptions& m_options;
  const Products m_products;
  LedgerHandle m_ledger;
  CloudSession* m_cloud;                                // --cloud-lookup; nullptr without
  const std::optional<std::set<std::string>> m_allowed; // --allow: the cloud is asked about these
  CloudStatus* m_status;                                // --status-refresh; nullptr without
  Context& m_ctx;
  std::mutex m_warn_mutex;
  Clock::time_point m_last_ledger_warning{};
  core::RateLimit m_per_address;
  core::RateLimit m_per_device;
  core::RateLimit m_registrations; // --register-rate, over every name
};

// ---- TLS: the certificate, reloaded on SIGHUP ----------------------------------------------

std::atomic<bool> g_reload{false};
extern "C" void on_sighup(int) {
  g_reload.store(true);
}

// The certificate chain and key every new handshake uses (set per connection from OpenSSL's
// certificate callback, so a reload never changes what a handshake in progress sees).
class CertStore {
public:
  CertStore() = default;
  CertStore(const CertStore&) = delete;
  CertStore& operator=(const CertStore&) = delete;
  ~CertStore() { clear(m_current); }

  // Loads both files; the current pair stays when either is bad.
  Status load(const std::string& cert_path, const std::string& key_path) {
    Pair next;
    const auto bad = [&](const std::string& what) {
      clear(next);
      return fail(ErrorKind::usage,
                  "cannot use --tls-cert " + cert_path + " with --tls-key " + key_path + ": " +
                      what);
    };
    if (FILE* f = std::fopen(cert_path.c_str(), "r")) {
      next.cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
      next.chain = sk_X509_new_null();
      while (X509* extra = PEM_read_X509(f, nullptr, nullptr, nullptr)) {
        sk_X509_push(next.chain, extra);
      }
      ERR_clear_error(); // the end of the file ends the loop with an error
      std::fclose(f);
    }
    if (next.cert == nullptr) {
      return bad("no PEM certificate in " + cert_path);
    }
    if (FILE* f = std::fopen(key_path.c_str(), "r")) {
      next.key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
      std::fclose(f);
    }
    if (next.key == nullptr) {
      return bad("no PEM private key (without a passphrase) in " + key_path);
    }
    if (X509_check_private_key(next.cert, next.key) != 1) {
      return bad("the key does not match the certificate");
    }
    std::lock_guard lock(m_mutex);
    std::swap(m_current, next);
    clear(next);
    return {};
  }

  // SSL_CTX_set_cert_cb's callback: this connection gets the current pair.
  static int select(SSL* ssl, void* self) {
    auto& store = *static_cast<CertStore*>(self);
    std::lock_guard lock(store.m_mutex);
    const auto& c = store.m_current;
    return c.cert != nullptr && SSL_use_certificate(ssl, c.cert) == 1 &&
                   SSL_use_PrivateKey(ssl, c.key) == 1 && SSL_set1_chain(ssl, c.chain) == 1
               ? 1
               : 0;
  }

  // "subject …, valid until …" of the current certificate.
  std::string describe() {
    std::lock_guard lock(m_mutex);
    std::array<char, 256> subject{};
    X509_NAME_oneline(
        X509_get_subject_name(m_current.cert), subject.data(), static_cast<int>(subject.size()));
    std::string until;
    if (BIO* bio = BIO_new(BIO_s_mem())) {
      ASN1_TIME_print(bio, X509_get0_notAfter(m_current.cert));
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio, &data);
      until.assign(data, static_cast<std::size_t>(n));
      BIO_free(bio);
    }
    return std::string("subject ") + subject.data() + ", valid until " + until;
  }

private:
  struct Pair {
    X509* cert = nullptr;
    STACK_OF(X509) * chain = nullptr;
    EVP_PKEY* key = nullptr;
  };
  static void clear(Pair& p) {
    X509_free(p.cert);
    sk_X509_pop_free(p.chain, X509_free);
    EVP_PKEY_free(p.key);
    p = Pair{};
  }
  std::mutex m_mutex;
  Pair m_current;
};

// ---- the HTTP side ------------------------------------------------------------------------

struct AccessLog {
  std::ostream* out = &std::cout;
  std::ofstream file;
  std::mutex mutex;
  void write(const nlohmann::ordered_json& line) {
    std::lock_guard lock(mutex);
    *out << line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n'
         << std::flush;
  }
};

std::string iso_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count();
  return core::iso8601_utc(ms);
}

http::Response json_response(int status, const nlohmann::ordered_json& body) {
  http::Response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return r;
}

// The routes: the device protocol, /healthz, /metrics.
http::Response answer(Service& service, const http::Request& req) {
  if (req.path == k_register_path) {
    if (req.method != "POST") {
      return json_response(405, {{"code", 405}, {"message", "POST the registration form"}});
    }
    const Decision d = service.decide(req.body, req.remote);
    http::Response r;
    r.status = d.status;
    r.body = d.body;
    if (d.retry_after_s) {
      r.headers.emplace_back("Retry-After", std::to_string(*d.retry_after_s));
    }
    r.log["code"] = d.code;
    r.log["outcome"] = d.outcome.empty() ? "refused" : d.outcome;
    r.log["product_key"] = d.product_key;
    r.log["device_name"] = d.device_name;
    r.log["imei"] = d.imei;
    return r;
  }
  if (req.path == "/healthz" && req.method == "GET") {
    std::string problem;
    const bool ok = service.ledger_healthy(problem);
    nlohmann::ordered_json body{{"status", ok ? "ok" : "unavailable"},
                                {"ledger", ok ? "ok" : problem}};
    // The cloud is reported, not required: the pool's devices are served without it.
    if (CloudStatus* status = service.status()) {
      const StatusSnapshot s = status->snapshot();
      body["cloud"] = !s.problem.empty() ? s.problem
                      : s.checked_at     ? "ok"
                                         : "status check in progress";
      if (s.checked_at) {
        body["cloud_status_age_s"] = std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now() - *s.checked_at)
                                         .count();
      }
    }
    return json_response(ok ? 200 : 503, body);
  }
  if (req.path == "/metrics" && req.method == "GET") {
    http::Response r;
    r.content_type = "text/plain; version=0.0.4";
    r.body =
        service.metrics.text() + (service.status() != nullptr ? service.status()->metrics() : "");
    return r;
  }
  return json_response(404, {{"code", 404}, {"message", "not found"}});
}

// One NDJSON line per answer, and the registration metrics.
void log_answer(Service& service,
                AccessLog& log,
                const http::Request& req,
                const http::Response& res,
                double seconds) {
  // A registration the server refused before the handler saw it has no outcome of its own.
  std::string outcome;
  if (req.path == k_register_path) {
    const auto it = res.log.find("outcome");
    outcome = it != res.log.end() ? it->get<std::string>()
              : res.status == 413 ? "too-large"
                                  : "bad-request";
    service.metrics.record(outcome, seconds);
  }
  nlohmann::ordered_json line;
  line["time"] = iso_now();
  line["remote"] = req.remote;
  line["method"] = req.method;
  line["path"] = req.path;
  line["status"] = res.status;
  for (const auto& [key, value] : res.log.items()) {
    line[key] = value;
  }
  if (!outcome.empty()) {
    line["outcome"] = outcome;
  }
  line["ms"] = static_cast<std::int64_t>(seconds * 1000.0);
  log.write(line);
}

// The TLS context of every connection: TLS 1.2+, the certificate from `certs` per handshake.
Result<std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>> server_tls(CertStore& certs) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> tls(SSL_CTX_new(TLS_server_method()),
                                                        &SSL_CTX_free);
  if (!tls) {
    return fail(ErrorKind::failure, "OpenSSL could not set up a TLS context");
  }
  SSL_CTX_set_min_proto_version(tls.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(tls.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_cert_cb(tls.get(), &CertStore::select, &certs);
  // No session resumption: a device asks once per boot, so tickets would only cost (10 % of the
  // server's CPU per handshake, measured) and would need their keys shared and rotated across
  // the instances behind a load balancer.
  SSL_CTX_set_num_tickets(tls.get(), 0);
  SSL_CTX_set_options(tls.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(tls.get(), SSL_SESS_CACHE_OFF);
  return tls;
}

// Serves until an interruption; the watcher stops the server, which finishes what is in flight.
Status serve_until_stopped(http::Server& server,
                           int port,
                           Context& ctx,
                           bool tls,
                           const std::string& host,
                           const std::function<void()>& reload) {
  const std::string shown_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  ctx.output->warn(std::string("listening on ") + (tls ? "https://" : "http://") + shown_host +
                   ":" + std::to_string(port));
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done.load() && !core::interrupt_requested()) {
      std::this_thread::sleep_for(milliseconds(100));
      if (g_reload.exchange(false) && reload) {
        reload();
      }
    }
    server.stop();
  });
  server.run();
  done.store(true);
  watcher.join();
  // A signal is how a service is stopped: exit 0, not 130.
  core::clear_interrupt();
  ctx.output->warn("stopped: every request in flight was answered");
  return {};
}

} // namespace

Status run_serve(const ServeOptions& opts, Context& ctx) {
  const auto where = IOT_TRY_CTX(core::parse_host_port(opts.listen), "--listen");
  if (!where.port) {
    return fail(ErrorKind::usage,
                "--listen " + opts.listen + ": give a port (HOST:PORT, 0 = any free one)");
  }
  const std::string host = where.host.empty() ? "0.0.0.0" : where.host;
  const bool tls = !opts.insecure_http;
  if (tls && (!opts.tls_cert || !opts.tls_key)) {
    return fail(ErrorKind::usage,
                "give --tls-cert FILE and --tls-key FILE (devices send their IMEI and get their "
                "secret over this connection), or --insecure-http for a lab");
  }
  if (!tls && (opts.tls_cert || opts.tls_key)) {
    return fail(ErrorKind::usage, "--insecure-http and --tls-cert/--tls-key exclude each other");
  }
  if (opts.threads < 1 || opts.threads > 1024) {
    return fail(ErrorKind::usage, "--threads is 1 to 1024");
  }
  if (opts.max_connections < opts.threads || opts.max_connections > 100000) {
    return fail(ErrorKind::usage, "--max-connections is --threads to 100000");
  }
  if (opts.per_address < 0 || opts.per_device < 0) {
    return fail(ErrorKind::usage, "--per-address and --per-device are 0 (no limit) or more");
  }
  if (opts.max_body < 256 || opts.max_body > 1 << 20) {
    return fail(ErrorKind::usage, "--max-body is 256 bytes to 1 MiB");
  }
  auto products = IOT_TRY(read_enrollment(opts.enrollment_file, ctx));
  if (opts.cloud_lookup && (opts.cloud_queue < 1 || opts.cloud_queue >= opts.threads)) {
    return fail(ErrorKind::usage,
                "--cloud-queue is 1 to --threads - 1 (requests waiting for the cloud hold a "
                "thread; the rest must stay free for the pool's devices)");
  }
  auto ledger = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::existing));
  std::optional<std::set<std::string>> allowed;
  if (opts.allow_file) {
    if (!opts.cloud_lookup) {
      return fail(ErrorKind::usage,
                  "--allow names the devices the cloud may be asked about: give --cloud-lookup "
                  "too (without it only the pool's devices are served)");
    }
    const auto names = IOT_TRY_CTX(read_device_list(*opts.allow_file, ctx), "--allow");
    allowed.emplace(names.begin(), names.end());
  }
  if (opts.register_unknown && !opts.cloud_lookup) {
    return fail(ErrorKind::usage,
                "--register-unknown registers in the cloud: give --cloud-lookup too");
  }
  if (opts.register_rate < 1) {
    return fail(ErrorKind::usage, "--register-rate is 1 or more a minute");
  }
  // --status-refresh: given, or 10 minutes with --cloud-lookup; 0 turns it off.
  const milliseconds status_period =
      opts.status_refresh.value_or(opts.cloud_lookup ? k_status_refresh_default : milliseconds(0));
  if (status_period.count() != 0 && status_period < std::chrono::seconds(1)) {
    return fail(ErrorKind::usage, "--status-refresh is 0 (off) or 1s or more");
  }
  std::optional<CloudSession> cloud_session;
  if (opts.cloud_lookup || status_period.count() > 0) {
    cloud_session =
        IOT_TRY_CTX(open_cloud(ctx, {.concurrency = static_cast<std::size_t>(opts.cloud_queue)}),
                    opts.cloud_lookup ? "--cloud-lookup" : "--status-refresh");
  }
  std::unique_ptr<CloudStatus> status;
  if (status_period.count() > 0) {
    std::vector<std::string> product_keys;
    for (const auto& [product_key, product] : products) {
      product_keys.push_back(product_key);
    }
    auto own = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::existing));
    status = std::make_unique<CloudStatus>(*cloud_session->api,
                                           std::move(own.ledger),
                                           std::move(product_keys),
                                           status_period,
                                           own.actor.station + "/" + std::to_string(own.actor.pid),
                                           *ctx.output);
  }
  Service service(opts,
                  std::move(products),
                  std::move(ledger),
                  opts.cloud_lookup ? &*cloud_session : nullptr,
                  std::move(allowed),
                  status.get(),
                  ctx);
  if (status) {
    status->start(); // the first check at once, while the server starts listening
  }
  AccessLog log;
  if (opts.access_log != "-") {
    log.file.open(opts.access_log, std::ios::app);
    if (!log.file) {
      return fail(ErrorKind::io, "cannot open the access log " + opts.access_log);
    }
    log.out = &log.file;
  }
  // A client gone mid-answer must not end the process (OpenSSL writes with write(2)).
  std::signal(SIGPIPE, SIG_IGN);
  CertStore certs;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> tls_ctx(nullptr, &SSL_CTX_free);
  if (tls) {
    IOT_TRY(certs.load(*opts.tls_cert, *opts.tls_key));
    ctx.output->info("TLS certificate: " + certs.describe());
    tls_ctx = IOT_TRY(server_tls(certs));
  } else {
    ctx.output->warn("--insecure-http: secrets go over plain HTTP; for a lab only");
  }
  const http::Limits limits{.max_connections = static_cast<std::size_t>(opts.max_connections),
                            .keep_alive = opts.keep_alive,
                            .max_body = static_cast<std::size_t>(opts.max_body),
                            .max_header = 8192,
                            .read_timeout = opts.read_timeout};
  const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
  http::Server server(
      limits,
      tls_ctx.get(),
      [&service](const http::Request& req) { return answer(service, req); },
      [&service, &log](const http::Request& req, const http::Response& res, double seconds) {
        log_answer(service, log, req, res, seconds);
      },
      opts.threads,
      static_cast<int>(std::min(cores, 16U)));
  auto port = server.bind(host, *where.port);
  if (!port) {
    return fail(ErrorKind::io, "cannot listen on " + opts.listen + ": " + port.error().message);
  }
  if (!tls) {
    return serve_until_stopped(server, *port, ctx, tls, host, {});
  }
  // SIGHUP: the certificate and key are read again; a bad pair keeps the current one.
  struct sigaction action {};
  action.sa_handler = on_sighup;
  sigemptyset(&action.sa_mask);
  sigaction(SIGHUP, &action, nullptr);
  return serve_until_stopped(server, *port, ctx, tls, host, [&] {
    if (auto ok = certs.load(*opts.tls_cert, *opts.tls_key); !ok) {
      ctx.output->warn("SIGHUP: " + ok.error().message + "; still serving the previous one");
    } else {
      ctx.output->warn("SIGHUP: reloaded the TLS certificate: " + certs.describe());
    }
  });
}

void register_serve(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand(
      "serve",
      "The customer's own credential server: devices fetch their DeviceSecret at first boot with "
      "an Aliyun-style dynamic registration request, answered from the ledger");
  cmd->add_option("--listen", opts->listen, "HOST:PORT to serve on (PORT 0: any free one)")
      ->required()
      ->option_text("HOST:PORT REQUIRED");
  cmd->add_option("--tls-cert", opts->tls_cert, "PEM certificate (chain) of the server")
      ->option_text(std::string(value_name::file));
  cmd->add_option("--tls-key", opts->tls_key, "PEM private key of the certificate")
      ->option_text(std::string(value_name::file));
  cmd->add_flag("--insecure-http",
                opts->insecure_http,
                "Plain HTTP instead of TLS: for a lab only (secrets cross the network in clear)");
  cmd->add_option("--enrollment",
                  opts->enrollment_file,
                  "File of the products served, one line product_key,scheme,secret: scheme "
                  "product (the sign's key is the secret) or device-key (the key is each device's "
                  "enrollment key, the secret the group secret); keep it 0600")
      ->required()
      ->option_text(std::string(value_name::file) + " REQUIRED");
  cmd->add_option("--access-log",
                  opts->access_log,
                  "NDJSON access log, one line per request, never a secret or a sign (default "
                  "-: stdout)")
      ->option_text(std::string(value_name::file_or_stdin));
  cmd->add_option("--threads",
                  opts->threads,
                  "Threads answering complete requests: the ledger's transaction, a cloud lookup "
                  "(default 16; the connections and TLS are event loops of their own, one per "
                  "core)")
      ->option_text(std::string(value_name::count));
  cmd->add_option("--max-connections",
                  opts->max_connections,
                  "Connections open at once, in any state (default 1024); more clients wait in "
                  "the kernel's listen queue")
      ->option_text(std::string(value_name::count));
  cmd->add_option("--keep-alive",
                  opts->keep_alive,
                  "Requests one connection may carry (default 1: a device asks once; more for a "
                  "load balancer that reuses its connections)")
      ->check(CLI::Range(1, 1000))
      ->option_text(std::string(value_name::count));
  cmd->add_option("--max-body", opts->max_body, "Largest request body in bytes (default 4096)")
      ->option_text("BYTES");
  add_duration(
      cmd,
      "--read-timeout",
      opts->read_timeout,
      "A connection whose request is not complete this long after it opened (or after its "
      "previous answer), TLS handshake included, is closed, however it trickles its bytes "
      "(slow clients); writing an answer gets as long",
      {.bare_unit = milliseconds(1000), .min = milliseconds(100), .max = std::chrono::minutes(5)},
      ctx);
  cmd->add_flag("--cloud-lookup",
                opts->cloud_lookup,
                "A DeviceName not in the pool is looked up with QueryDeviceDetail (the cloud "
                "options: --access-key-id, --endpoint, …) and its secret kept in the ledger; a "
                "device the cloud has disabled is refused (6204)");
  cmd->add_option("--allow",
                  opts->allow_file,
                  "With --cloud-lookup: only the DeviceNames in this list file (one per line, # "
                  "comments) are looked up; others not in the pool are 6100")
      ->option_text(std::string(value_name::file_or_stdin));
  cmd->add_option("--register-unknown",
                  opts->register_unknown,
                  "With --cloud-lookup: a DeviceName the cloud does not know that matches this "
                  "glob (e.g. '8699394*') is registered (RegisterDevice) and served")
      ->option_text("GLOB");
  cmd->add_option("--register-rate",
                  opts->register_rate,
                  "With --register-unknown: at most this many registrations a minute, then 429 "
                  "(default 60)")
      ->option_text(std::string(value_name::count));
  cmd->add_option("--cloud-queue",
                  opts->cloud_queue,
                  "With --cloud-lookup: at most this many requests wait for the cloud (paced at "
                  "the account's QPS); more are answered 429 with Retry-After (default 8)")
      ->option_text(std::string(value_name::count));
  add_duration(
      cmd,
      "--status-refresh",
      opts->status_refresh,
      "Every DURATION the cloud's status of every pool device of the served products is "
      "asked (BatchGetDeviceState, the cloud options); a device disabled there is "
      "refused (6204) until a later check finds it enabled (default 10m with "
      "--cloud-lookup, otherwise off; 0: off). Servers on one ledger share the check: one "
      "makes it, the others read it from the ledger",
      {.bare_unit = milliseconds(1000), .min = milliseconds(0), .max = std::chrono::hours(24)},
      ctx);
  cmd->add_option("--per-address",
                  opts->per_address,
                  "Requests in any 60 s from one source address, then 429 with Retry-After "
                  "(default 6000; 0: no limit; a factory behind one NAT needs room)")
      ->option_text(std::string(value_name::count));
  cmd->add_option("--per-device",
                  opts->per_device,
                  "Correctly signed requests in any 60 s for one DeviceName, then 429 (default "
                  "10; 0: no limit)")
      ->option_text(std::string(value_name::count));
  add_duration(
      cmd,
      "--replay-window",
      opts->replay_window,
      "A request whose signed timestamp is further from now is refused as a replay",
      {.bare_unit = milliseconds(1000), .min = milliseconds(1000), .max = std::chrono::hours(24)},
      ctx);
  cmd->footer(
      "POST /auth/register/device: productKey, deviceName, random, sign, signMethod (Aliyun's "
      "§4 form) plus imei (required: each DeviceName is bound to the module that first fetches "
      "it), iccid and timestamp, all signed. The first module to ask gets the pool's secret "
      "and the triplet becomes burned to its IMEI; the same module asking again gets it again; "
      "another module is refused (6289) and a clone alert is logged. GET /healthz, GET "
      "/metrics (Prometheus). SIGHUP: reads the certificate and key again. SIGINT/SIGTERM: stops "
      "accepting, answers what is in flight, exits 0. docs/serve.md.");
  add_exit_codes(cmd,
                 {{0, "stopped by SIGINT or SIGTERM"},
                  {2, "bad options, enrollment file, certificate or key; no ledger"},
                  {1, "the address cannot be listened on"},
                  {4,
                   "the ledger server is unreachable or refused the role; no AccessKey for "
                   "--cloud-lookup or --status-refresh"}});
  cmd->callback([&ctx, opts] { value_or_throw(run_serve(*opts, ctx)); });
}

} // namespace iot::commands
