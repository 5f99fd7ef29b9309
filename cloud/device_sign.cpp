// SPDX-License-Identifier: MIT
#include "cloud/device_sign.hpp"

#include "cloud/crypto.hpp"
#include "cloud/signer.hpp"

#include <cctype>

namespace iot::cloud {

namespace {

HmacAlgorithm algorithm_for(SignMethod method) {
  switch (method) {
  case SignMethod::hmacmd5:
    return HmacAlgorithm::md5;
  case SignMethod::hmacsha1:
    return HmacAlgorithm::sha1;
  case SignMethod::hmacsha256:
    return HmacAlgorithm::sha256;
  }
  return HmacAlgorithm::sha256;
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

} // namespace

std::string_view to_string(SignMethod method) {
  switch (method) {
  case SignMethod::hmacmd5:
    return "hmacmd5";
  case SignMethod::hmacsha1:
    return "hmacsha1";
  case SignMethod::hmacsha256:
    return "hmacsha256";
  }
  return "hmacsha256";
}

std::optional<SignMethod> parse_sign_method(std::string_view text) {
  const std::string lower = lowercase(text);
  for (const SignMethod m : {SignMethod::hmacmd5, SignMethod::hmacsha1, SignMethod::hmacsha256}) {
    if (lower == to_string(m)) {
      return m;
    }
  }
  return std::nullopt;
}

std::string device_sign_content(const std::map<std::string, std::string>& params) {
  std::string content;
  for (const auto& [name, value] : params) {
    content += name;
    content += value;
  }
  return content;
}

std::string device_sign(SignMethod method,
                        std::string_view secret,
                        const std::map<std::string, std::string>& params) {
  return hex(hmac(algorithm_for(method), secret, device_sign_content(params)), HexCase::upper);
}

std::string dynamic_register_sign(const DynamicRegisterInput& input) {
  return device_sign(input.sign_method,
                     input.product_secret,
                     {{"deviceName", input.device_name},
                      {"productKey", input.product_key},
                      {"random", input.random}});
}

std::string dynamic_register_body(const DynamicRegisterInput& input) {
  // Field order as the C SDK sends it; the server does not care.
  return "productKey=" + percent_encode(input.product_key) +
         "&deviceName=" + percent_encode(input.device_name) +
         "&random=" + percent_encode(input.random) + "&sign=" + dynamic_register_sign(input) +
         "&signMethod=" + std::string(to_string(input.sign_method));
}

std::string dynamic_register_url(std::string_view region) {
  return "https://iot-auth." + std::string(region) + ".aliyuncs.com/auth/register/device";
}

MqttCredentials mqtt_credentials(const MqttCredentialInput& input) {
  const std::string client_id =
      input.client_id.empty() ? input.product_key + "." + input.device_name : input.client_id;
  std::map<std::string, std::string> signed_params{
      {"clientId", client_id},
      {"deviceName", input.device_name},
      {"productKey", input.product_key},
  };
  MqttCredentials out;
  out.client_id = client_id + "|securemode=" + std::to_string(input.secure_mode) +
                  ",signmethod=" + std::string(to_string(input.sign_method));
  if (input.timestamp_ms) {
    const std::string ts = std::to_string(*input.timestamp_ms);
    signed_params["timestamp"] = ts;
    out.client_id += ",timestamp=" + ts;
  }
  out.client_id += "|";
  out.username = input.device_name + "&" + input.product_key;
  out.password = device_sign(input.sign_method, input.device_secret, signed_params);
  out.sign_content = device_sign_content(signed_params);
  return out;
}

std::string_view to_string(DynamicRegisterMode mode) {
  return mode == DynamicRegisterMode::preregistered ? "register" : "regnwl";
}

std::optional<DynamicRegisterMode> parse_dynamic_register_mode(std::string_view text) {
  for (const DynamicRegisterMode m :
       {DynamicRegisterMode::preregistered, DynamicRegisterMode::no_preregistration}) {
    if (text == to_string(m)) {
      return m;
    }
  }
  return std::nullopt;
}

MqttCredentials mqtt_dynamic_register_credentials(const MqttDynamicRegisterInput& input) {
  const std::string client_id =
      input.client_id.empty() ? input.product_key + "." + input.device_name : input.client_id;
  MqttCredentials out;
  out.client_id = client_id + "|securemode=" + (input.iot_instance_id.empty() ? "2" : "-2") +
                  ",authType=" + std::string(to_string(input.mode)) + ",random=" + input.random +
                  ",signmethod=" + std::string(to_string(input.sign_method));
  if (!input.iot_instance_id.empty()) {
    out.client_id += ",instanceId=" + input.iot_instance_id;
  }
  out.client_id += "|";
  out.username = input.device_name + "&" + input.product_key;
  const std::map<std::string, std::string> signed_params{{"deviceName", input.device_name},
                                                         {"productKey", input.product_key},
                                                         {"random", input.random}};
  // The same content as the HTTPS registration's sign (dynamic_register_sign).
  out.password = device_sign(input.sign_method, input.product_secret, signed_params);
  out.sign_content = device_sign_content(signed_params);
  return out;
}

MqttEndpoint mqtt_endpoint(std::string_view region,
                           std::string_view product_key,
                           std::string_view iot_instance_id) {
  MqttEndpoint endpoint;
  if (!iot_instance_id.empty()) {
    endpoint.host = std::string(iot_instance_id) + ".mqtt.iothub.aliyuncs.com";
  } else {
    endpoint.host =
        std::string(product_key) + ".iot-as-mqtt." + std::string(region) + ".aliyuncs.com";
  }
  endpoint.port = 1883;
  return endpoint;
}

} // namespace iot::cloud
