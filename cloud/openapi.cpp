// SPDX-License-Identifier: MIT
#include "cloud/openapi.hpp"

#include "core/interrupt.hpp"
#include "core/parallel.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

namespace iot::cloud {

using json = nlohmann::json;

const QpsTable& documented_qps() {
  static const QpsTable table{
      {"QueryDevice", 50},
      {"QueryDeviceByStatus", 50}, // UNVERIFIED: not documented; QueryDevice's
      {"BatchQueryDeviceDetail", 5},
      {"BatchGetDeviceState", 50},
      {"RegisterDevice", 30},
      {"BatchCheckDeviceNames", 10},
      {"QueryBatchRegisterDeviceStatus", 30},
      {"BatchRegisterDeviceWithApplyId", 500},
      {"QueryPageByApplyId", 50},
      {"QueryDeviceDetail", 50},
      {"QueryProduct", 50},
      {"QueryProductList", 50},
      {"CreateOTAStaticUpgradeJob", 20}, // §3; the other OTA Actions are 10 (the default)
  };
  return table;
}

// ---- RateLimiter ----

RateLimiter::RateLimiter() : RateLimiter(Options{}) {}

RateLimiter::RateLimiter(Options options) : m_options(std::move(options)) {
  QpsTable merged = documented_qps();
  for (const auto& [action, qps] : m_options.qps) {
    merged[action] = qps;
  }
  m_options.qps = std::move(merged);
  m_options.burst = std::max(1.0, m_options.burst);
  if (!m_options.clock) {
    m_options.clock = [] { return std::chrono::steady_clock::now(); };
  }
  if (!m_options.sleep) {
    m_options.sleep = interruptible_sleep;
  }
}

void interruptible_sleep(std::chrono::nanoseconds d) {
  (void)core::sleep_unless_interrupted(std::chrono::ceil<std::chrono::milliseconds>(d));
}

double RateLimiter::qps(std::string_view action) const {
  const auto it = m_options.qps.find(action);
  const double q = it != m_options.qps.end() ? it->second : m_options.default_qps;
  return q > 0 ? q : k_default_qps;
}

std::chrono::nanoseconds RateLimiter::reserve(std::string_view action) {
  const double rate = qps(action);
  const auto now = m_options.clock();
  const std::lock_guard lock(m_mutex);
  auto it = m_buckets.find(action);
  if (it == m_buckets.end()) {
    it = m_buckets.emplace(std::string(action), Bucket{m_options.burst, now}).first;
  }
  Bucket& bucket = it->second;
  if (now > bucket.last) {
    const double elapsed = std::chrono::duration<double>(now - bucket.last).count();
    bucket.tokens = std::min(m_options.burst, bucket.tokens + elapsed * rate);
    bucket.last = now;
  }
  // Tokens may go negative: that is a reservation for a slot in the future.
  bucket.tokens -= 1.0;
  if (bucket.tokens >= 0) {
    return std::chrono::nanoseconds{0};
  }
  return std::chrono::nanoseconds{
      static_cast<std::int64_t>(std::ceil(-bucket.tokens / rate * 1e9))};
}

void RateLimiter::acquire(std::string_view action) {
  const auto wait = reserve(action);
  if (wait.count() > 0) {
    m_options.sleep(wait);
  }
}

// ---- classification ----

std::chrono::milliseconds backoff_ceiling(const RetryPolicy& policy, int retry) {
  const int shift = std::clamp(retry - 1, 0, 30);
  const double ceiling =
      static_cast<double>(policy.base_delay.count()) * std::pow(2.0, static_cast<double>(shift));
  return std::chrono::milliseconds{
      static_cast<std::int64_t>(std::min(ceiling, static_cast<double>(policy.max_delay.count())))};
}

bool is_auth_code(std::string_view code) {
  static constexpr std::string_view k_exact[] = {
      "SignatureDoesNotMatch",
      "IncompleteSignature",
      "InvalidTimeStamp.Expired",
      "InvalidTimeStamp.Format",
      "InvalidAccessKeySecret",
      "MissingSecurityToken",
      "NoPermission",
      "Forbidden",
      "iot.common.RamActionPermissionDeny",
      "iot.common.AuthActionPermissionDeny",
  };
  static constexpr std::string_view k_prefixes[] = {
      "InvalidAccessKeyId",   // .NotFound, .Inactive
      "InvalidSecurityToken", // .Expired, .Malformed, .MismatchWithAccessKey
      "Forbidden.",           // Forbidden.RAM, Forbidden.AccessKeyDisabled, …
      "Unauthorized",
  };
  if (std::find(std::begin(k_exact), std::end(k_exact), code) != std::end(k_exact)) {
    return true;
  }
  return std::any_of(std::begin(k_prefixes), std::end(k_prefixes), [code](std::string_view p) {
    return code.starts_with(p);
  });
}

bool is_retryable_code(std::string_view code) {
  return code.starts_with("Throttling") || code == "ServiceUnavailable" ||
         code.starts_with("ServiceUnavailable.") || code.starts_with("iot.system.") ||
         code == "InternalError" || code == "UnknownError" ||
         code == "iot.messagebroker.RateLimit" ||
         // libcurl re-sends a request, unchanged, when the kept-alive connection it reused died
         // before the answer; the gateway saw the first copy. A new attempt is signed afresh.
         code == "SignatureNonceUsed";
}

std::string default_endpoint(std::string_view region) {
  return "https://iot." + std::string(region) + ".aliyuncs.com/";
}

namespace {

std::string normalise_endpoint(std::string endpoint, std::string_view region) {
  if (endpoint.empty()) {
    return default_endpoint(region);
  }
  if (endpoint.find("://") == std::string::npos) {
    endpoint.insert(0, "https://");
  }
  if (endpoint.back() != '/') {
    endpoint.push_back('/');
  }
  return endpoint;
}

// Refused before it ran: safe to retry even a non-idempotent call.
bool refused_before_running(std::string_view code) {
  return code.starts_with("Throttling") || code == "ServiceUnavailable" ||
         code.starts_with("ServiceUnavailable.");
}

std::string string_field(const json& body, const char* name) {
  if (body.is_object()) {
    const auto it = body.find(name);
    if (it != body.end() && it->is_string()) {
      return it->get<std::string>();
    }
    if (it != body.end() && it->is_number()) {
      return it->dump();
    }
  }
  return {};
}

std::string excerpt(std::string_view body) {
  static constexpr std::size_t k_max = 200;
  std::string out(body.substr(0, k_max));
  for (char& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') {
      c = ' ';
    }
  }
  if (body.size() > k_max) {
    out += "…";
  }
  return out;
}

struct Attempt {
  Result<ApiResponse> result;
  bool retryable = false;
  bool refused = false; // safe to retry for non-idempotent calls
};

Attempt interpret(std::string_view action, const HttpResponse& response) {
  const bool ok_status = response.status >= 200 && response.status < 300;
  const json body = json::parse(response.body, nullptr, false);
  const bool is_object = !body.is_discarded() && body.is_object();

  std::string request_id = string_field(body, "RequestId");
  if (request_id.empty()) {
    request_id = response.header("x-acs-request-id").value_or("");
  }
  std::string suffix = " (HTTP " + std::to_string(response.status);
  if (!request_id.empty()) {
    suffix += ", RequestId " + request_id;
  }
  suffix += ")";

  if (ok_status && !is_object) {
    // Truncated or garbled: the server (or a proxy) failed mid-way; worth another try.
    return {fail(ErrorKind::cloud,
                 std::string(action) + ": unexpected response: body is not a JSON object (" +
                     std::to_string(response.body.size()) + " bytes: " + excerpt(response.body) +
                     ")" + suffix),
            true,
            false};
  }

  bool success = ok_status;
  if (ok_status) {
    const auto it = body.find("Success");
    if (it != body.end() &&
        ((it->is_boolean() && !it->get<bool>()) || (it->is_string() && *it == "false"))) {
      success = false;
    }
  }
  if (success) {
    return {ApiResponse{response.status, std::move(request_id), response.body, 1}, false, false};
  }

  std::string code = string_field(body, "Code");
  std::string message = string_field(body, "ErrorMessage");
  if (message.empty()) {
    message = string_field(body, "Message");
  }
  if (message.empty() && !is_object) {
    message = excerpt(response.body);
  }
  const std::string shown_code = code.empty() ? "HTTP " + std::to_string(response.status) : code;
  std::string text = std::string(action) + ": " + shown_code;
  if (!message.empty()) {
    text += ": " + message;
  }
  text += suffix;

  const bool auth = is_auth_code(code) || response.status == 401 || response.status == 403;
  if (auth) {
    if (code.starts_with("InvalidTimeStamp")) {
      text += "; check the computer's clock (must be within 15 minutes of UTC)";
    }
    return {fail(ErrorKind::auth, std::move(text)), false, false};
  }
  const bool retryable =
      is_retryable_code(code) || response.status >= 500 || response.status == 429;
  return {fail(ErrorKind::cloud, std::move(text)),
          retryable,
          refused_before_running(code) || response.status == 429};
}

} // namespace

// ---- OpenApiClient ----

OpenApiClient::OpenApiClient(HttpClient& http,
                             OpenApiConfig config,
                             std::shared_ptr<RateLimiter> limiter,
                             OpenApiHooks hooks)
    : m_http(http), m_config(std::move(config)),
      m_endpoint(normalise_endpoint(m_config.endpoint, m_config.region_id)),
      m_limiter(limiter ? std::move(limiter) : std::make_shared<RateLimiter>()),
      m_hooks(std::move(hooks)), m_signer(m_config.access_key,
                                          m_config.region_id,
                                          m_config.iot_instance_id,
                                          m_hooks.wall_clock,
                                          m_hooks.nonce) {
  m_config.retry.max_attempts = std::max(1, m_config.retry.max_attempts);
  if (!m_hooks.sleep) {
    m_hooks.sleep = interruptible_sleep;
  }
  if (!m_hooks.jitter) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    m_hooks.jitter = [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
  }
}

Result<ApiResponse> OpenApiClient::call(std::string_view action, const Params& params) {
  return call(ApiCall{std::string(action), params, true});
}

Result<ApiResponse> OpenApiClient::call(const ApiCall& api_call) {
  const int max_attempts = m_config.retry.max_attempts;
  for (int attempt = 1;; ++attempt) {
    m_limiter->acquire(api_call.action);
    // Signed afresh on every attempt: a new SignatureNonce and Timestamp.
    const Params params = m_signer.sign(api_call.action, api_call.params, "POST");
    HttpRequest request;
    request.method = "POST";
    request.url = m_endpoint;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"Accept", "application/json"}};
    request.body = form_encode(params);
    request.timeout = m_config.timeout;

    Attempt outcome;
    auto response = m_http.send(request);
    if (response) {
      outcome = interpret(api_call.action, *response);
    } else {
      const bool transient = response.error().kind == ErrorKind::network;
      outcome = {fail(response.error().context(api_call.action)), transient, false};
    }

    if (outcome.result) {
      outcome.result->attempts = attempt;
      return std::move(outcome.result);
    }
    const bool may_retry = outcome.retryable && (api_call.idempotent || outcome.refused);
    if (!may_retry || attempt >= max_attempts || core::interrupt_requested()) {
      Error error = std::move(outcome.result).error();
      if (core::interrupt_requested() && error.kind != ErrorKind::auth) {
        error = Error{ErrorKind::interrupted, "interrupted: " + error.message};
      }
      if (error.kind == ErrorKind::auth && !m_config.credential_origin.empty()) {
        error.message += "; the " + m_config.credential_origin +
                         " was used: check it with `iotfleet config show`";
      }
      if (attempt > 1) {
        error.message += " (after " + std::to_string(attempt) + " attempts)";
      }
      return fail(std::move(error));
    }
    double unit = 0;
    {
      const std::lock_guard lock(m_jitter_mutex);
      unit = std::clamp(m_hooks.jitter(), 0.0, 1.0);
    }
    const auto ceiling = backoff_ceiling(m_config.retry, attempt);
    m_hooks.sleep(std::chrono::nanoseconds{static_cast<std::int64_t>(
        unit * static_cast<double>(std::chrono::nanoseconds(ceiling).count()))});
  }
}

std::vector<Result<ApiResponse>> OpenApiClient::call_all(const std::vector<ApiCall>& calls,
                                                         std::size_t concurrency) {
  std::vector<Result<ApiResponse>> results(
      calls.size(), fail(ErrorKind::interrupted, "interrupted before the call was sent"));
  core::parallel_for(
      calls.size(), concurrency, [&](std::size_t i) { results[i] = call(calls[i]); });
  return results;
}

bool has_error_code(const Error& error, std::string_view code) {
  return error.kind == ErrorKind::cloud && error.message.find(code) != std::string::npos;
}

} // namespace iot::cloud
