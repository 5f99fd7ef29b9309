// SPDX-License-Identifier: MIT
// OpenAPI RPC client: sign → POST form → parse the JSON envelope, with retries and per-Action
// rate limiting. See docs/cloud-client.md for the rules.
//
// A call succeeds when the HTTP status is 2xx and the body is a JSON object whose "Success" is
// not false. Otherwise the error message names the Action, the Code, the message (ErrorMessage or
// Message) and the RequestId:
//   "QueryDevice: iot.prod.NotExistedProduct: product does not exist (HTTP 200, RequestId 5A…)"
// Kinds: ErrorKind::auth for signature/AccessKey/permission codes (and HTTP 401/403),
// ErrorKind::network for transport failures, ErrorKind::cloud for everything else.
#pragma once

#include "cloud/http.hpp"
#include "cloud/settings.hpp"
#include "cloud/signer.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace iot::cloud {

using SteadyClock = std::function<std::chrono::steady_clock::time_point()>;
using Sleeper = std::function<void(std::chrono::nanoseconds)>;
// The default Sleeper: waits in 50 ms slices and returns early on Ctrl-C / SIGTERM.
void interruptible_sleep(std::chrono::nanoseconds d);
// Uniform random number in [0, 1) for backoff jitter.
using Jitter = std::function<double()>;

using QpsTable = std::map<std::string, double, std::less<>>;

// Documented per-account QPS of the actions iotfleet calls (protocol doc §2).
[[nodiscard]] const QpsTable& documented_qps();
inline constexpr double k_default_qps = 10.0;

// Token buckets, one per Action, refilled at the Action's QPS and holding at most `burst`
// tokens. Thread-safe: reserve() hands out slots in order, so concurrent callers are spaced
// 1/QPS apart instead of racing.
class RateLimiter {
public:
  struct Options {
    QpsTable qps;                       // overrides, merged over documented_qps()
    double default_qps = k_default_qps; // actions in neither table
    double burst = 1.0;                 // tokens a bucket can save up; 1 = strict spacing
    SteadyClock clock;                  // null = std::chrono::steady_clock
    Sleeper sleep;                      // null = std::this_thread::sleep_for
  };

  RateLimiter();
  explicit RateLimiter(Options options);

  [[nodiscard]] double qps(std::string_view action) const;
  // Takes the next token of `action` and returns how long to wait before using it (zero when one
  // was available). The token is taken even when the caller has to wait.
  [[nodiscard]] std::chrono::nanoseconds reserve(std::string_view action);
  // reserve() then sleep for the wait.
  void acquire(std::string_view action);

private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point last;
  };
  Options m_options;
  std::mutex m_mutex;
  std::map<std::string, Bucket, std::less<>> m_buckets;
};

struct RetryPolicy {
  int max_attempts = 4; // total, first try included; 1 = no retries
  std::chrono::milliseconds base_delay{250};
  std::chrono::milliseconds max_delay{8'000};
};

// Upper bound of the wait before retry number `retry` (1-based): min(max, base * 2^(retry-1)).
// The actual wait is uniform in [0, bound) ("full jitter").
[[nodiscard]] std::chrono::milliseconds backoff_ceiling(const RetryPolicy& policy, int retry);

// Codes that mean "the credentials or permissions are wrong" (never retried).
[[nodiscard]] bool is_auth_code(std::string_view code);
// Codes worth retrying: Throttling*, ServiceUnavailable, iot.system.*, InternalError, …
[[nodiscard]] bool is_retryable_code(std::string_view code);
// Whether a failed call answered this platform error code (ErrorKind::cloud; the message names
// it, "QueryDeviceDetail: iot.device.NotExistedDevice: …"), e.g. "NotExistedDevice".
[[nodiscard]] bool has_error_code(const Error& error, std::string_view code);

// "https://iot.<region>.aliyuncs.com/".
[[nodiscard]] std::string default_endpoint(std::string_view region);

struct OpenApiConfig {
  AccessKey access_key;
  std::string region_id;
  std::string endpoint;        // URL or host; empty = default_endpoint(region_id)
  std::string iot_instance_id; // sent as IotInstanceId on every call when not empty
  // "AccessKey LTAI…wxyz from <source>" (access_key_origin), added to an auth refusal so the
  // user knows which credential the cloud refused; never the secret.
  std::string credential_origin;
  RetryPolicy retry;
  std::chrono::milliseconds timeout{30'000}; // per attempt
};

// Test seams; null members use the real thing.
struct OpenApiHooks {
  WallClock wall_clock; // Timestamp parameter
  NonceSource nonce;    // SignatureNonce
  Sleeper sleep;        // backoff waits
  Jitter jitter;
};

struct ApiCall {
  std::string action;
  Params params;
  // false for calls that must not run twice (RegisterDevice without a name): then only errors
  // that prove the request was refused before it ran (Throttling*, ServiceUnavailable) are
  // retried, never timeouts, 5xx or iot.system.*.
  bool idempotent = true;
};

struct ApiResponse {
  int http_status = 0;
  std::string request_id;
  std::string body; // the JSON text, already checked to be an object with Success != false
  int attempts = 1;
};

class OpenApiClient {
public:
  // `limiter` null = a private RateLimiter with the documented QPS. Share one limiter between
  // clients of the same account: the limits are per account.
  OpenApiClient(HttpClient& http,
                OpenApiConfig config,
                std::shared_ptr<RateLimiter> limiter = nullptr,
                OpenApiHooks hooks = {});

  [[nodiscard]] Result<ApiResponse> call(const ApiCall& call);
  [[nodiscard]] Result<ApiResponse> call(std::string_view action, const Params& params);

  // Runs the calls on up to `concurrency` threads (each paced by the rate limiter and retried on
  // its own); results in call order. Calls not yet started when SIGINT arrives fail with
  // ErrorKind::interrupted. With concurrency > 1 the HttpClient's send() must be thread-safe
  // (the curl client's is).
  [[nodiscard]] std::vector<Result<ApiResponse>> call_all(const std::vector<ApiCall>& calls,
                                                          std::size_t concurrency = 8);

  [[nodiscard]] const OpenApiConfig& config() const { return m_config; }
  [[nodiscard]] const std::string& endpoint() const { return m_endpoint; }

private:
  HttpClient& m_http;
  OpenApiConfig m_config;
  std::string m_endpoint;
  std::shared_ptr<RateLimiter> m_limiter;
  OpenApiHooks m_hooks;
  RequestSigner m_signer;
  std::mutex m_jitter_mutex;
};

} // namespace iot::cloud
