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
  // What was signed, e.g. "clientId12345deviceNamedeviceproductKeypktimestamp789" (no secret in
  // it: for comparing with a device's log when the platform refuses the password).
  std::string sign_content;
};

[[nodiscard]] MqttCredentials mqtt_credentials(const MqttCredentialInput& input);

// ---- Dynamic registration over MQTT (one-type-one-secret, TLS only; §4) ----

// authType of the registration connection: `register` = pre-registration (the DeviceName exists
// in the cloud; the platform answers on /ext/register with the DeviceSecret), `regnwl` = without
// pre-registration (免预注册; answered on /ext/regnwl with a deviceToken).
enum class DynamicRegisterMode { preregistered, no_preregistration };

// "register", "regnwl".
[[nodiscard]] std::string_view to_string(DynamicRegisterMode mode);
// Exactly "register" or "regnwl"; nullopt otherwise.
[[nodiscard]] std::optional<DynamicRegisterMode> parse_dynamic_register_mode(std::string_view text);

struct MqttDynamicRegisterInput {
  std::string product_key;
  std::string device_name;
  std::string product_secret;
  std::string random; // any string without ',' '|' '='; a fresh one per connection
  // The device's own id. Empty = "${productKey}.${deviceName}" as mqtt_credentials uses.
  std::string client_id;
  SignMethod sign_method = SignMethod::hmacsha256;
  DynamicRegisterMode mode = DynamicRegisterMode::preregistered;
  // New public / enterprise instance: securemode=-2 and instanceId=<id> in the clientId. Empty =
  // legacy public instance: securemode=2, no instanceId.
  std::string iot_instance_id;
};

// clientId "<clientId>|securemode=-2,authType=register,random=<r>,signmethod=<m>,instanceId=<id>|"
// (legacy: "…|securemode=2,authType=…,random=…,signmethod=…|"), username "<dn>&<pk>", password
// = dynamic_register_sign (hex HMAC(ProductSecret, "deviceName"+dn+"productKey"+pk+"random"+r)).
[[nodiscard]] MqttCredentials
mqtt_dynamic_register_credentials(const MqttDynamicRegisterInput& input);

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
