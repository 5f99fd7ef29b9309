// SPDX-License-Identifier: MIT
#include "cloud/signer.hpp"

#include "cloud/crypto.hpp"

#include <ctime>
#include <utility>

namespace iot::cloud {

namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

std::string join_encoded(const Params& params, bool skip_signature) {
  std::string out;
  for (const auto& [name, value] : params) {
    if (skip_signature && name == "Signature") {
      continue;
    }
    if (!out.empty()) {
      out.push_back('&');
    }
    out += percent_encode(name);
    out.push_back('=');
    out += percent_encode(value);
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

Result<std::string> form_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      const int hi = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
      const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return fail(ErrorKind::usage,
                    "malformed %-escape in form data at offset " + std::to_string(i));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

} // namespace

std::string percent_encode(std::string_view text) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() * 3);
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(k_hex[c >> 4U]);
      out.push_back(k_hex[c & 0x0FU]);
    }
  }
  return out;
}

std::string canonicalized_query(const Params& params) {
  return join_encoded(params, true);
}

std::string string_to_sign(std::string_view method, const Params& params) {
  std::string out(method);
  out += "&%2F&";
  out += percent_encode(canonicalized_query(params));
  return out;
}

std::string
rpc_signature(std::string_view method, const Params& params, std::string_view access_key_secret) {
  std::string key(access_key_secret);
  key.push_back('&');
  return base64(hmac(HmacAlgorithm::sha1, key, string_to_sign(method, params)));
}

std::string form_encode(const Params& params) {
  return join_encoded(params, false);
}

std::string format_timestamp(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(
      std::chrono::time_point_cast<std::chrono::seconds>(time));
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  const std::size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return std::string(buffer, n);
}

RequestSigner::RequestSigner(AccessKey key,
                             std::string region_id,
                             std::string iot_instance_id,
                             WallClock clock,
                             NonceSource nonce)
    : m_key(std::move(key)), m_region_id(std::move(region_id)),
      m_iot_instance_id(std::move(iot_instance_id)), m_clock(std::move(clock)),
      m_nonce(std::move(nonce)) {
  if (!m_clock) {
    m_clock = [] { return std::chrono::system_clock::now(); };
  }
  if (!m_nonce) {
    m_nonce = [] { return uuid_v4(); };
  }
}

Params RequestSigner::sign(std::string_view action,
                           const Params& action_params,
                           std::string_view method) const {
  Params params = action_params;
  params.erase("Signature");
  params["Action"] = std::string(action);
  params["Version"] = std::string(k_api_version);
  params["Format"] = "JSON";
  params["AccessKeyId"] = m_key.id;
  params["SignatureMethod"] = "HMAC-SHA1";
  params["SignatureVersion"] = "1.0";
  params["SignatureNonce"] = m_nonce();
  params["Timestamp"] = format_timestamp(m_clock());
  if (!m_region_id.empty()) {
    params["RegionId"] = m_region_id;
  }
  if (!m_key.security_token.empty()) {
    params["SecurityToken"] = m_key.security_token;
  }
  if (!m_iot_instance_id.empty()) {
    params["IotInstanceId"] = m_iot_instance_id;
  }
  params["Signature"] = rpc_signature(method, params, m_key.secret);
  return params;
}

SignatureCheck verify_rpc_signature(std::string_view method,
                                    const Params& received,
                                    std::string_view access_key_secret) {
  SignatureCheck check;
  check.string_to_sign = string_to_sign(method, received);
  check.expected_signature = rpc_signature(method, received, access_key_secret);
  const auto it = received.find("Signature");
  check.valid = it != received.end() && constant_time_equal(it->second, check.expected_signature);
  return check;
}

Result<Params> parse_form(std::string_view text) {
  Params params;
  while (!text.empty()) {
    const std::size_t amp = text.find('&');
    const std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const std::size_t eq = pair.find('=');
    auto name = IOT_TRY(form_decode(pair.substr(0, eq)));
    auto value = IOT_TRY(
        form_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1)));
    params[std::move(name)] = std::move(value);
  }
  return params;
}

} // namespace iot::cloud
