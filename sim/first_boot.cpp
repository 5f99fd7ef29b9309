// SPDX-License-Identifier: MIT
#include "sim/first_boot.hpp"

#include "cloud/crypto.hpp"
#include "cloud/enrollment.hpp"

#include <nlohmann/json.hpp>

namespace iot::sim {

Result<FirstBoot> FirstBoot::create(FirstBootConfig config) {
  if (config.product_key.empty() || config.secret.empty()) {
    return fail(ErrorKind::usage,
                "--first-boot needs --first-boot-product PK and --first-boot-secret-file FILE "
                "(the product's enrollment secret the firmware carries)");
  }
  cloud::HttpOptions options;
  options.ca_file = config.ca.value_or("");
  options.timeout = std::chrono::milliseconds(15'000);
  auto http = IOT_TRY(cloud::make_curl_client(options));
  return FirstBoot(std::move(config), std::move(http));
}

Result<std::string> FirstBoot::fetch(const std::string& imei, const std::string& iccid) {
  core::FormFields fields{{"productKey", m_config.product_key},
                          {"deviceName", imei},
                          {"random", cloud::hex(cloud::random_bytes(8))},
                          {"imei", imei}};
  if (iccid.size() >= 18 && iccid.size() <= 22) {
    fields["iccid"] = iccid;
  }
  cloud::HttpRequest request;
  request.method = "POST";
  request.url = m_config.url + "/auth/register/device";
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  request.body = cloud::enroll_request_body(fields, cloud::SignMethod::hmacsha256, m_config.secret);
  const auto response = IOT_TRY(m_http->send(request));
  const auto answer = nlohmann::json::parse(response.body, nullptr, false);
  if (answer.is_discarded() || !answer.is_object() || !answer.contains("code")) {
    return fail(ErrorKind::cloud,
                "HTTP " + std::to_string(response.status) + " without a JSON answer");
  }
  const int code = answer.value("code", 0);
  if (code != 200) {
    return fail(ErrorKind::cloud,
                "code " + std::to_string(code) + ": " + answer.value("message", std::string()));
  }
  const std::string secret =
      answer.contains("data") ? answer["data"].value("deviceSecret", std::string()) : "";
  if (secret.empty()) {
    return fail(ErrorKind::cloud, "code 200 without a deviceSecret");
  }
  return secret;
}

} // namespace iot::sim
