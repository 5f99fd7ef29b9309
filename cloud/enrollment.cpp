// SPDX-License-Identifier: MIT
#include "cloud/enrollment.hpp"

#include "cloud/crypto.hpp"
#include "core/validate.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <utility>

namespace iot::cloud {
namespace {

constexpr std::size_t k_max_random = 64;

std::unexpected<EnrollRefusal> refuse(int code, std::string message) {
  return std::unexpected(EnrollRefusal{code, std::move(message)});
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

bool iccid_ok(std::string_view iccid) {
  if (iccid.size() < 18 || iccid.size() > 22) {
    return false;
  }
  for (const char c : iccid) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

std::optional<std::int64_t> milliseconds(std::string_view text) {
  if (text.empty() || text.size() > 15) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    value = value * 10 + (c - '0');
  }
  return value;
}

} // namespace

std::expected<EnrollRequest, EnrollRefusal> parse_enroll_request(std::string_view body) {
  core::FormRules rules;
  rules.strict = true;
  rules.max_fields = 16;
  rules.max_name = 32;
  rules.max_value = 256;
  auto form = core::parse_form(body, rules);
  if (!form) {
    return refuse(enroll_code::bad_request, "request parameter error: " + form.error().message);
  }
  EnrollRequest r;
  for (const char* name : {"productKey", "deviceName", "random", "sign", "signMethod"}) {
    const auto it = form->find(name);
    if (it == form->end() || it->second.empty()) {
      return refuse(enroll_code::bad_request,
                    std::string("request parameter error: ") + name + " is missing");
    }
  }
  r.product_key = form->at("productKey");
  r.device_name = form->at("deviceName");
  r.random = form->at("random");
  r.sign = form->at("sign");
  if (!core::validate_product_key(r.product_key)) {
    return refuse(enroll_code::bad_request,
                  "request parameter error: productKey is not 1-20 "
                  "letters and digits");
  }
  if (auto ok = core::validate_device_name(r.device_name); !ok) {
    return refuse(enroll_code::bad_name, "devicename not meet specs: " + ok.error().message);
  }
  if (r.random.size() > k_max_random) {
    return refuse(enroll_code::bad_request,
                  "request parameter error: random is longer than " + std::to_string(k_max_random) +
                      " characters");
  }
  const auto method = parse_sign_method(form->at("signMethod"));
  if (!method) {
    return refuse(enroll_code::bad_request,
                  "request parameter error: signMethod is not hmacmd5, hmacsha1 or hmacsha256");
  }
  r.sign_method = *method;
  if (const auto it = form->find("imei"); it != form->end()) {
    if (auto ok = core::validate_imei(it->second, "imei"); !ok) {
      return refuse(enroll_code::bad_request, "request parameter error: " + ok.error().message);
    }
    r.imei = it->second;
  }
  if (const auto it = form->find("iccid"); it != form->end()) {
    if (!iccid_ok(it->second)) {
      return refuse(enroll_code::bad_request,
                    "request parameter error: iccid is not 18-22 hex digits");
    }
    r.iccid = it->second;
  }
  if (const auto it = form->find("timestamp"); it != form->end()) {
    r.timestamp_ms = milliseconds(it->second);
    if (!r.timestamp_ms) {
      return refuse(enroll_code::bad_request,
                    "request parameter error: timestamp is not milliseconds since the epoch");
    }
  }
  r.signed_fields = std::move(*form);
  r.signed_fields.erase("sign");
  r.signed_fields.erase("signMethod");
  return r;
}

std::string enroll_sign_content(const EnrollRequest& request) {
  return device_sign_content(request.signed_fields);
}

bool enroll_sign_valid(const EnrollRequest& request, std::string_view key) {
  const std::string expected = device_sign(request.sign_method, key, request.signed_fields);
  return constant_time_equal(upper(request.sign), expected);
}

std::string enrollment_device_key(std::string_view group_secret, std::string_view device_name) {
  return hex(hmac(HmacAlgorithm::sha256, group_secret, device_name)).substr(0, 32);
}

std::string
enroll_request_body(const core::FormFields& fields, SignMethod method, std::string_view key) {
  core::FormFields all = fields;
  all.erase("sign");
  all.erase("signMethod");
  const std::string sign = device_sign(method, key, all);
  all["sign"] = sign;
  all["signMethod"] = std::string(to_string(method));
  return core::form_encode(all);
}

std::string enroll_answer(std::string_view product_key,
                          std::string_view device_name,
                          std::string_view device_secret) {
  nlohmann::ordered_json answer;
  answer["code"] = enroll_code::ok;
  answer["data"] = {
      {"productKey", product_key}, {"deviceName", device_name}, {"deviceSecret", device_secret}};
  answer["message"] = "success";
  return answer.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string enroll_refusal_answer(const EnrollRefusal& refusal) {
  nlohmann::ordered_json answer;
  answer["code"] = refusal.code;
  answer["message"] = refusal.message;
  return answer.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

} // namespace iot::cloud
