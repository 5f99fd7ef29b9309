// SPDX-License-Identifier: MIT
// Device-side signatures: one-type-one-secret dynamic registration (docs/aliyun-iot-protocol.md
// §4) and MQTT connection credentials for one-device-one-secret (§5). Pure functions.
//
// Both use the same scheme: hex(HMAC(secret, content)) where content is every signed parameter,
// sorted by name, with names and values concatenated without separators, e.g.
//   "clientId12345deviceNamedeviceproductKeypktimestamp789".
// Hex is emitted uppercase like the C SDK; the platform compares case-insensitively.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace iot::cloud {

enum class SignMethod { hmacmd5, hmacsha1, hmacsha256 };

// "hmacmd5", "hmacsha1", "hmacsha256".
[[nodiscard]] std::string_view to_string(SignMethod method);
// Case-insensitive ("HmacMD5" from the doc samples is accepted); nullopt if unknown.
[[nodiscard]] std::optional<SignMethod> parse_sign_method(std::string_view text);

// name1 value1 name2 value2 … in name order (byte order), no separators.
[[nodiscard]] std::string device_sign_content(const std::map<std::string, std::string>& params);

// Uppercase hex HMAC of device_sign_content(params) under `secret`.
[[nodiscard]] std::string device_sign(SignMethod method,
                                      std::string_view secret,
                                      const std::map<std::string, std::string>& params);

// ---- Dynamic registration (HTTPS, pre-registration) ----

struct DynamicRegisterInput {
  std::string product_key;
  std::string device_name;
  std::string product_secret;
  std::string random; // any string; a fresh one per request
  SignMethod sign_method = SignMethod::hmacsha256;
};

// hex(HMAC(ProductSecret, "deviceName"+dn+"productKey"+pk+"random"+random)), uppercase.
[[nodiscard]] std::string dynamic_register_sign(const DynamicRegisterInput& input);

// Form body for POST https://iot-auth.<region>.aliyuncs.com/auth/register/device:
// productKey=..&deviceName=..&random=..&sign=..&signMethod=.. (values percent-encoded).
[[nodiscard]] std::string dynamic_register_body(const DynamicRegisterInput& input);

// "https://iot-auth.<region>.aliyuncs.com/auth/register/device".
[[nodiscard]] std::string dynamic_register_url(std::string_view region);

// ---- MQTT credentials (one-device-one-secret) ----

struct MqttCredentialInput {
  std::string product_key;
  std::string device_name;
  std::string device_secret;
  // The device's own id (≤64 chars). Empty = "${productKey}.${deviceName}" as the C SDK uses.
  std::string client_id;
  // Milliseconds since the epoch; nullopt = not signed and not sent.
  std::optional<std::uint64_t> timestamp_ms;
  SignMethod sign_method = SignMethod::hmacsha256;
  int secure_mode = 2; // 2 = TLS direct, 3 = TCP direct
};

struct MqttCredentials {
  std::string client_id; // "<clientId>|securemode=2,signmethod=hmacsha256,timestamp=…|"
  std::string username;  // "<deviceName>&<productKey>"
  std::string password;  // uppercase hex HMAC
};

[[nodiscard]] MqttCredentials mqtt_credentials(const MqttCredentialInput& input);

struct MqttEndpoint {
  std::string host;
  int port = 1883;
};

// Legacy public instance: "${pk}.iot-as-mqtt.${region}.aliyuncs.com":1883; with an instance id
// (new public and enterprise instances): "${IotInstanceId}.mqtt.iothub.aliyuncs.com":1883.
[[nodiscard]] MqttEndpoint mqtt_endpoint(std::string_view region,
                                         std::string_view product_key,
                                         std::string_view iot_instance_id = {});

} // namespace iot::cloud
