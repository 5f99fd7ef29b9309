// SPDX-License-Identifier: MIT
#include "cloud/signer.hpp"

#include "cloud/crypto.hpp"

#include <ctime>
#include <utility>

namespace iot::cloud {

std::string canonicalized_query(const Params& params) {
  Params signed_params = params;
  signed_params.erase("Signature");
  return core::form_encode(signed_params);
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

} // namespace iot::cloud
