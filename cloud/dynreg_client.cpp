// SPDX-License-Identifier: MIT
#include "cloud/dynreg_client.hpp"

#include "core/interrupt.hpp"
#include "core/text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

namespace iot::cloud {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr std::string_view k_path = "/auth/register/device";
constexpr std::size_t k_random_length = 16;

std::string random_alnum() {
  static constexpr std::string_view k_chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 engine{std::random_device{}()};
  std::uniform_int_distribution<std::size_t> pick(0, k_chars.size() - 1);
  std::string out(k_random_length, ' ');
  for (auto& c : out) {
    c = k_chars[pick(engine)];
  }
  return out;
}

std::string excerpt(std::string_view body) {
  constexpr std::size_t k_max = 120;
  std::string out(body.substr(0, k_max));
  std::replace_if(
      out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return body.size() > k_max ? out + "…" : out;
}

// What one attempt came to.
struct Attempt {
  DynregResult result;
  bool retry = false; // worth another attempt
};

Attempt interpret(const HttpResponse& response,
                  std::string_view product_key,
                  std::string_view device_name,
                  const std::string& url) {
  Attempt a;
  const json body = json::parse(response.body, nullptr, false);
  const bool is_object = !body.is_discarded() && body.is_object();
  const auto code_it = is_object ? body.find("code") : body.end();
  const bool has_code = is_object && code_it != body.end() && code_it->is_number_integer();
  if (!has_code) {
    a.result.code = 0;
    if (response.status == 200) {
      // A 200 whose body did not arrive whole: the request ran and may have issued a secret.
      a.result.answer_lost = true;
      a.retry = true;
      a.result.error = Error{ErrorKind::network,
                             "answer not readable (" + std::to_string(response.body.size()) +
                                 " bytes: " + excerpt(response.body) + ")"};
    } else if (response.status == 429 || response.status >= 500) {
      a.retry = true;
      a.result.error =
          Error{ErrorKind::cloud, "HTTP " + std::to_string(response.status) + " from " + url};
    } else {
      a.result.error = Error{ErrorKind::usage,
                             "HTTP " + std::to_string(response.status) + " from " + url + " (" +
                                 excerpt(response.body) +
                                 "): not a dynamic-registration service — check "
                                 "--auth-endpoint / --region"};
    }
    return a;
  }
  a.result.code = code_it->get<int>();
  const std::string message = body.contains("message") && body["message"].is_string()
                                  ? body["message"].get<std::string>()
                                  : std::string();
  if (a.result.code != 200) {
    a.retry = dynreg_code_retryable(a.result.code);
    a.result.error = dynreg_refusal(a.result.code, message, product_key, device_name);
    return a;
  }
  const auto data = body.find("data");
  const auto field = [&](std::string_view name) -> std::string {
    if (data == body.end() || !data->is_object()) {
      return {};
    }
    const auto it = data->find(std::string(name));
    return it != data->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string secret = field("deviceSecret");
  if (secret.empty()) {
    // Code 200 without a secret: something issued one, and it is not here.
    a.result.answer_lost = true;
    a.retry = true;
    a.result.error =
        Error{ErrorKind::cloud, "code 200 without data.deviceSecret: " + excerpt(response.body)};
    return a;
  }
  if (field("productKey") != product_key || field("deviceName") != device_name) {
    a.result.error = Error{ErrorKind::cloud,
                           "the answer names " + field("productKey") + "/" + field("deviceName") +
                               ", not the device asked for; its secret is not used"};
    a.result.answer_lost = true;
    return a;
  }
  a.result.device_secret = secret;
  return a;
}

} // namespace

std::string dynreg_url(std::string_view auth_endpoint) {
  std::string base(auth_endpoint);
  while (base.ends_with('/')) {
    base.pop_back();
  }
  return base + std::string(k_path);
}

bool dynreg_code_retryable(int code) {
  return code == 429 || code == 500 || code == 502 || code == 503 || code == 504;
}

Error dynreg_refusal(int code,
                     std::string_view message,
                     std::string_view product_key,
                     std::string_view device_name) {
  const std::string pk(product_key);
  const std::string dn(device_name);
  const std::string said =
      "code " + std::to_string(code) + (message.empty() ? "" : " \"" + std::string(message) + "\"");
  switch (code) {
  case 6289:
    return {ErrorKind::cloud,
            said + ": " + dn +
                " has already connected once, and Aliyun registers a device dynamically only "
                "until its first connect. If its module holds the secret it was issued, use "
                "that one (`iotfleet creds mqtt`, the ledger); if that secret is lost, "
                "`iotfleet devices reset " +
                dn + "` (ResetThing) and register again — the module's old secret stops working"};
  case 6250:
    return {ErrorKind::usage,
            said + ": no product " + pk +
                " in this region — check --product-key (letter case matters) and --region"};
  case 401:
    return {ErrorKind::auth,
            said + ": the sign was refused — the ProductSecret is not " + pk +
                "'s (check the file, --product-key and the console's product page) or "
                "--sign-method is wrong"};
  case 460:
    return {ErrorKind::usage,
            said + ": a form field is missing or malformed (DeviceName " + dn + ", ProductKey " +
                pk + ")"};
  case 6280:
    return {ErrorKind::usage,
            said + ": DeviceName " + dn +
                " does not meet the rules (4–32 characters of A–Z a–z 0–9 _ - @ . :)"};
  case 6100:
    return {ErrorKind::cloud,
            said + ": " + dn + " is not registered in " + pk +
                " — HTTPS dynamic registration needs the device created first (`iotfleet devices "
                "register " +
                dn + "` or `devices batch-register`)"};
  case 6204:
    return {ErrorKind::cloud,
            said + ": " + dn + " is disabled — enable it in the console (EnableThing) first"};
  case 6288: // UNVERIFIED: the code for "dynamic registration is off" is the emulator's choice.
    return {ErrorKind::cloud,
            said + ": dynamic registration is off for " + pk +
                " — switch it on in the console (product page, 动态注册)"};
  default:
    break;
  }
  if (dynreg_code_retryable(code)) {
    return {ErrorKind::cloud, said + ": the service is busy or failing; try again later"};
  }
  return {ErrorKind::cloud, said + " for " + pk + "/" + dn};
}

DynamicRegisterClient::DynamicRegisterClient(HttpClient& http,
                                             DynregConfig config,
                                             DynregHooks hooks)
    : m_http(http), m_config(std::move(config)), m_hooks(std::move(hooks)),
      m_url(dynreg_url(m_config.auth_endpoint)) {
  m_config.retry.max_attempts = std::max(1, m_config.retry.max_attempts);
  RateLimiter::Options limits;
  limits.default_qps = m_config.qps > 0 ? m_config.qps : 1e9;
  limits.sleep = m_hooks.sleep;
  m_limiter = std::make_shared<RateLimiter>(std::move(limits));
  if (!m_hooks.sleep) {
    m_hooks.sleep = interruptible_sleep;
  }
  if (!m_hooks.jitter) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    m_hooks.jitter = [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
  }
  if (!m_hooks.random) {
    m_hooks.random = random_alnum;
  }
}

DynregResult DynamicRegisterClient::register_device(std::string_view device_name) {
  DynregResult final;
  bool lost = false;
  for (int attempt = 1;; ++attempt) {
    m_limiter->acquire(k_path);
    DynamicRegisterInput input;
    input.product_key = m_config.product_key;
    input.device_name = std::string(device_name);
    input.product_secret = m_config.product_secret;
    input.sign_method = m_config.sign_method;
    {
      const std::lock_guard lock(m_hooks_mutex);
      input.random = m_hooks.random();
    }
    HttpRequest request;
    request.method = "POST";
    request.url = m_url;
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"Accept", "application/json"}};
    request.body = dynamic_register_body(input);
    request.timeout = m_config.timeout;

    Attempt outcome;
    auto response = m_http.send(request);
    if (response) {
      outcome = interpret(*response, m_config.product_key, device_name, m_url);
    } else if (response.error().kind == ErrorKind::network && not_sent(response.error())) {
      // No connection was made: nothing was sent, nothing can have been issued.
      outcome.result.error = response.error();
      outcome.retry = true;
    } else if (response.error().kind == ErrorKind::network) {
      // Sent or not, answered or not: nobody can tell, so a secret may have been issued.
      outcome.result.answer_lost = true;
      outcome.result.error = response.error();
      outcome.retry = true;
    } else {
      outcome.result.error = response.error();
    }
    lost = lost || outcome.result.answer_lost;
    outcome.result.attempts = attempt;
    if (outcome.result.ok() || !outcome.retry || attempt >= m_config.retry.max_attempts ||
        core::interrupt_requested()) {
      final = std::move(outcome.result);
      break;
    }
    double unit = 0;
    {
      const std::lock_guard lock(m_hooks_mutex);
      unit = m_hooks.jitter();
    }
    const auto ceiling = backoff_ceiling(m_config.retry, attempt);
    m_hooks.sleep(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double, std::milli>(unit * static_cast<double>(ceiling.count()))));
  }
  // A lost answer of an earlier attempt still matters when the last attempt failed too (busy,
  // lost): the secret it may have issued replaced the device's previous one. A later success
  // overtakes it, and a definite refusal (unknown device, bad sign, already active …) says the
  // lost attempt was refused for the same reason.
  const bool definite = final.code != 0 && final.code != 200 && !dynreg_code_retryable(final.code);
  final.answer_lost = !final.ok() && !definite && lost;
  if (final.error) {
    if (final.attempts > 1) {
      final.error->message += " (after " + std::to_string(final.attempts) + " attempts)";
    }
    final.error =
        final.error->context("register " + m_config.product_key + "/" + std::string(device_name));
  }
  return final;
}

} // namespace iot::cloud
