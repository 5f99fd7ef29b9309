// SPDX-License-Identifier: MIT
// The cloud emulator's request handling, independent of any HTTP server: one HTTP request in
// (method, path, raw query, body), one answer out (status, JSON body, how to deliver it). The
// clock and the RNG are injected, so tests drive it in-process and deterministically.
//
// An RPC request ("/", GET or POST form body) goes through the gateway checks in this order
// (docs/cloud-emulator.md): required common parameters, Format, Version, Action, signature
// method, AccessKeyId, Timestamp, Signature, SignatureNonce; then injected faults (503 /
// SystemException / Throttling, before anything runs), the per-account per-Action QPS limits,
// and the Action's handler from the action table (sim/cloud_actions.hpp). Faults that lose the
// answer (truncate, reset) are applied after the handler ran and committed. The device-side
// dynamic registration (POST /auth/register/device, §4) and the emulator's activation control
// are routed to sim/cloud_dynreg.hpp.
#pragma once

#include "sim/cloud_exchange.hpp"
#include "sim/cloud_store.hpp"
#include "sim/cloud_util.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

namespace iot::sim::cloud {

struct FaultOptions {
  double fail_5xx = 0;       // P(503 ServiceUnavailable or iot.system.SystemException)
  double throttle_burst = 0; // P(extra Throttling answer)
  double truncate = 0;       // P(body cut short after the request ran)
  double reset = 0;          // P(connection closed without an answer after the request ran)
  std::int64_t latency_min_ms = 0;
  std::int64_t latency_max_ms = 0;
};

struct ServiceOptions {
  double qps_scale = 1.0;
  bool no_limits = false;
  FaultOptions faults;
  std::int64_t batch_delay_ms = 1000; // each async batch-registration phase (CHECK, CREATE)
  std::uint64_t seed = 0;
  // OTA: simulated seconds per real second (MaximumPerMinute, task durations, RetryInterval,
  // TimeoutInMinutes, ScheduleTime; not the upload windows).
  double time_scale = 1.0;
  // The emulator's own base URL ("http://127.0.0.1:40123"): GenerateOTAUploadURL's Host.
  std::string public_url = "http://127.0.0.1";
  // Largest object the OSS-style upload accepts (§3: 1 000 MB).
  std::int64_t oss_max_bytes = 1000LL * 1024 * 1024;
};

struct CloudRequest {
  std::string method; // GET, POST
  std::string path;   // "/"
  std::string query;  // raw, without '?'
  std::string body;
  std::string content_type;
  std::string user_agent; // for the exchange log: iotfleet's client or another sender
};

enum class Delivery {
  normal,
  truncate, // send the headers and part of the body, then close
  reset,    // close the connection without sending anything
};

struct CloudResponse {
  int status = 200;
  std::string body; // JSON
  std::string request_id;
  std::string action; // "" when the request named none
  std::string code;   // error code, "" on success
  Delivery delivery = Delivery::normal;
  std::chrono::milliseconds delay{0}; // injected latency, to wait before answering
};

struct ActionCount {
  std::string action;
  std::uint64_t requests = 0;
  std::uint64_t throttled = 0; // answered Throttling.User by the QPS limits
};

struct Counters {
  std::vector<ActionCount> actions;    // every action of the table, in table order
  std::uint64_t register_requests = 0; // POST /auth/register/device (§4), any answer
  std::uint64_t register_issued = 0;   // ... that issued (and committed) a DeviceSecret
  std::uint64_t activate_requests = 0; // POST /_emulator/activate
  std::uint64_t upload_requests = 0;   // POST /_oss/iotx-ota (OSS-style PostObject)
  std::uint64_t other_requests = 0;    // no / unknown Action, other paths
  std::uint64_t fault_5xx = 0;
  std::uint64_t fault_throttle = 0;
  std::uint64_t fault_truncate = 0;
  std::uint64_t fault_reset = 0;
  std::map<std::string, std::uint64_t> errors; // by Code; §4 codes as "dynreg.<code>"
};

// Remembers SignatureNonces per AccessKeyId for the replay window: buckets per minute of
// arrival, kept 31 minutes (a Timestamp may be up to 15 min ahead or behind, so a replay is
// caught until its own Timestamp has expired). 8-16 bytes per remembered nonce.
class NonceCache {
public:
  // true if (access_key_id, nonce) was new and is now remembered.
  bool insert(std::string_view access_key_id, std::string_view nonce, std::int64_t now_ms);
  [[nodiscard]] std::size_t size() const;

private:
  struct Bucket {
    std::int64_t minute = 0;
    std::unordered_set<std::uint64_t> fresh; // the current minute
    std::vector<std::uint64_t> sorted;       // older minutes, sorted
  };
  mutable std::mutex m_mutex;
  std::deque<Bucket> m_buckets; // oldest first
};

// Token buckets per key: capacity max(1, rate) (one second of calls), refilled at `rate`/s.
class RateLimiter {
public:
  // Takes a token from every bucket in keys_rates, or from none if one is empty.
  bool try_acquire(const std::vector<std::pair<std::string, double>>& keys_rates,
                   std::int64_t now_ms);

private:
  struct Bucket {
    double tokens = 0;
    std::int64_t last_ms = 0;
  };
  std::mutex m_mutex;
  std::map<std::string, Bucket, std::less<>> m_buckets;
};

class CloudService {
public:
  using Clock = std::function<WallClock::time_point()>;

  // Null clock: the system clock.
  CloudService(CloudStore& store, ServiceOptions options, Clock clock = {});
  CloudService(const CloudService&) = delete;
  CloudService& operator=(const CloudService&) = delete;
  ~CloudService();

  // Thread-safe.
  [[nodiscard]] CloudResponse handle(const CloudRequest& request);
  // Advances asynchronous work (batch registration) to the clock's now. handle() calls it too;
  // the server also calls it periodically so work completes while nobody asks.
  void tick();

  [[nodiscard]] Counters counters() const;
  [[nodiscard]] const ServiceOptions& options() const { return m_options; }
  // Every OpenAPI exchange ("/" requests) from now on is also written to `log` (null: none).
  // Set before serving; the log must outlive the service's requests.
  void set_exchange_log(ExchangeLog* log) { m_exchange_log = log; }
  // Sets ServiceOptions::public_url once the port is known (before serving).
  void set_public_url(std::string url) { m_options.public_url = std::move(url); }
  // The RNG and fault decisions for the OSS-style upload endpoint (sim/cloud_oss.hpp).
  [[nodiscard]] std::string new_request_id();
  // Draws the injected faults of one upload: "" (none), "5xx" or "reset"; counts them.
  [[nodiscard]] std::string upload_fault();
  // Counts one upload request (and its error code, if any).
  void count_upload(const std::string& code);

private:
  struct State;
  CloudResponse rpc(const CloudRequest& request, std::int64_t now_ms, std::string request_id);
  // POST /auth/register/device (§4, sim/cloud_dynreg.hpp) with the same fault injection.
  CloudResponse
  dynamic_register(const CloudRequest& request, std::int64_t now_ms, std::string request_id);
  // POST /_emulator/activate: emulator-only, no faults.
  CloudResponse activate(const CloudRequest& request, std::int64_t now_ms, std::string request_id);
  void count_error(const std::string& code);

  CloudStore& m_store;
  ServiceOptions m_options;
  Clock m_clock;
  std::unique_ptr<State> m_state;
  ExchangeLog* m_exchange_log = nullptr;
};

} // namespace iot::sim::cloud
