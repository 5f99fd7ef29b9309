// SPDX-License-Identifier: MIT
// One-type-one-secret dynamic registration over HTTPS (docs/aliyun-iot-protocol.md §4): sign with
// the ProductSecret, POST the form to <auth endpoint>/auth/register/device, read the DeviceSecret
// or the refusal, retry what is worth retrying.
//
// What the caller must know (docs/registration.md): every answered registration issues a new
// DeviceSecret that replaces the device's previous one, and registration is refused (6289) once
// the device has connected. An attempt whose answer was lost (reset, timeout, truncated body) may
// have issued a secret nobody will ever read: the result says so (answer_lost), and the only
// remedy is another registration before the device connects. Persist that a request is in
// flight before calling register_device, and the secret before doing anything else with it.
#pragma once

#include "cloud/device_sign.hpp"
#include "cloud/http.hpp"
#include "cloud/openapi.hpp"
#include "core/error.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace iot::cloud {

// The rate the client holds itself to: §4 documents no limit (UNVERIFIED), so this is a polite
// default, changed with --qps.
inline constexpr double k_dynreg_default_qps = 20.0;

struct DynregConfig {
  std::string auth_endpoint; // "https://iot-auth.cn-shanghai.aliyuncs.com" or an emulator's URL
  std::string product_key;
  std::string product_secret; // SECRET
  SignMethod sign_method = SignMethod::hmacsha256;
  RetryPolicy retry{6, std::chrono::milliseconds{250}, std::chrono::milliseconds{8'000}};
  double qps = k_dynreg_default_qps;         // requests per second over all threads; <= 0: unpaced
  std::chrono::milliseconds timeout{15'000}; // per attempt
};

// Test seams; null members use the real thing.
struct DynregHooks {
  Sleeper sleep;
  Jitter jitter;
  std::function<std::string()> random; // the request's random field (default 16 alphanumerics)
};

struct DynregResult {
  std::string device_secret;  // on success. SECRET.
  std::optional<Error> error; // on failure: the refusal with what to do about it
  int code = 0;               // the last answer's code (200 = success; 0 = no answer was read)
  bool answer_lost = false;   // an attempt's answer never arrived whole: a secret may be issued
  int attempts = 0;

  [[nodiscard]] bool ok() const { return !error.has_value(); }
};

class DynamicRegisterClient {
public:
  DynamicRegisterClient(HttpClient& http, DynregConfig config, DynregHooks hooks = {});

  // Registers one pre-registered device of the configured product. Thread-safe (the curl
  // client's send() is), paced at config.qps over all callers. Stops retrying on Ctrl-C.
  [[nodiscard]] DynregResult register_device(std::string_view device_name);

  [[nodiscard]] const std::string& url() const { return m_url; }
  [[nodiscard]] const DynregConfig& config() const { return m_config; }

private:
  HttpClient& m_http;
  DynregConfig m_config;
  DynregHooks m_hooks;
  std::string m_url;
  std::shared_ptr<RateLimiter> m_limiter;
  std::mutex m_hooks_mutex; // jitter and random are not thread-safe
};

// "<endpoint without trailing slash>/auth/register/device".
[[nodiscard]] std::string dynreg_url(std::string_view auth_endpoint);

// The error for a refusal `code` of device_name, with what to do about it (6289 already active:
// ResetThing; 6250 product not found; 401 wrong ProductSecret or sign method; 6100 not
// pre-registered; …). Unknown codes keep the platform's message.
[[nodiscard]] Error dynreg_refusal(int code,
                                   std::string_view message,
                                   std::string_view product_key,
                                   std::string_view device_name);

// Codes that refused the request before anything was issued and are worth another try (429 and
// the 5xx family of the auth service).
[[nodiscard]] bool dynreg_code_retryable(int code);

} // namespace iot::cloud
