// SPDX-License-Identifier: MIT
#include "cloud/device_sign.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>

using namespace iot::cloud;

namespace {
std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
    return static_cast<char>(std::toupper(c));
  });
  return s;
}
} // namespace

TEST_SUITE("cloud::device_sign") {
  TEST_CASE("dynamic registration synthetic vectors (§4)") {
    DynamicRegisterInput in{"a1b2c3d4e5f", "dev01", "0123456789ABCDEF", "8Ygb7ULYh53B6OA"};
    CHECK(device_sign_content({{"productKey", in.product_key},
                               {"random", in.random},
                               {"deviceName", in.device_name}}) ==
          "deviceNamedev01productKeya1b2c3d4e5frandom8Ygb7ULYh53B6OA");
    in.sign_method = SignMethod::hmacsha256;
    CHECK(dynamic_register_sign(in) ==
          "118EE025D842CEB096DE9BA9E853015DFF606A0D53D5A9773DF0DDE3A0101BD9");
    in.sign_method = SignMethod::hmacsha1;
    CHECK(dynamic_register_sign(in) == "02AD6DD6FBB1724076E1358FE175CDB6A2B857A7");
    in.sign_method = SignMethod::hmacmd5;
    CHECK(dynamic_register_sign(in) == "D4461C5C5A1207A225C28A76A499EC0D");
    CHECK(dynamic_register_body(in) ==
          "productKey=a1b2c3d4e5f&deviceName=dev01&random=8Ygb7ULYh53B6OA"
          "&sign=D4461C5C5A1207A225C28A76A499EC0D&signMethod=hmacmd5");
    CHECK(dynamic_register_url("cn-shanghai") ==
          "https://iot-auth.cn-shanghai.aliyuncs.com/auth/register/device");
  }

  TEST_CASE("MQTT official vector (§5)") {
    MqttCredentialInput in;
    in.client_id = "12345";
    in.device_name = "device";
    in.product_key = "pk";
    in.device_secret = "secret";
    in.timestamp_ms = 789;
    in.sign_method = SignMethod::hmacsha1;
    in.secure_mode = 3;
    const MqttCredentials c = mqtt_credentials(in);
    CHECK(c.client_id == "12345|securemode=3,signmethod=hmacsha1,timestamp=789|");
    CHECK(c.username == "device&pk");
    CHECK(c.password == "FAFD82A3D602B37FB0FA8B7892F24A477F851A14");
    CHECK(c.sign_content == "clientId12345deviceNamedeviceproductKeypktimestamp789");
  }

  TEST_CASE("MQTT synthetic SHA-256 vector with the SDK's default client id") {
    MqttCredentialInput in;
    in.product_key = "a1b2c3d4e5f";
    in.device_name = "dev01";
    in.device_secret = "0123456789abcdef0123456789abcdef";
    in.timestamp_ms = 1700000000000ULL;
    const MqttCredentials c = mqtt_credentials(in);
    CHECK(c.client_id ==
          "a1b2c3d4e5f.dev01|securemode=2,signmethod=hmacsha256,timestamp=1700000000000|");
    CHECK(c.username == "dev01&a1b2c3d4e5f");
    CHECK(c.password == upper("913c60fe9c89a6fdceb34a5c8813f3c9feba0d061aba9b5be16098f9e03cfdc7"));
  }

  TEST_CASE("MQTT without timestamp signs only clientId, deviceName, productKey") {
    MqttCredentialInput in{"pk", "dn", "s", "cid", std::nullopt, SignMethod::hmacsha256, 2};
    const MqttCredentials c = mqtt_credentials(in);
    CHECK(c.client_id == "cid|securemode=2,signmethod=hmacsha256|");
    CHECK(c.password ==
          device_sign(SignMethod::hmacsha256,
                      "s",
                      {{"clientId", "cid"}, {"deviceName", "dn"}, {"productKey", "pk"}}));
  }

  TEST_CASE("MQTT hosts") {
    const auto legacy = mqtt_endpoint("cn-shanghai", "a1b2c3d4e5f");
    CHECK(legacy.host == "a1b2c3d4e5f.iot-as-mqtt.cn-shanghai.aliyuncs.com");
    CHECK(legacy.port == 1883);
    const auto instance = mqtt_endpoint("cn-shanghai", "a1b2c3d4e5f", "iot-06z00ax1o4qq0py");
    CHECK(instance.host == "iot-06z00ax1o4qq0py.mqtt.iothub.aliyuncs.com");
  }

  TEST_CASE("MQTT dynamic registration: the §4 synthetic vectors as the password") {
    MqttDynamicRegisterInput in;
    in.product_key = "a1b2c3d4e5f";
    in.device_name = "dev01";
    in.product_secret = "0123456789ABCDEF";
    in.random = "8Ygb7ULYh53B6OA";
    in.iot_instance_id = "iot-06z00ax1o4qq0py";
    MqttCredentials c = mqtt_dynamic_register_credentials(in);
    CHECK(c.client_id == "a1b2c3d4e5f.dev01|securemode=-2,authType=register,random=8Ygb7ULYh53B6OA,"
                         "signmethod=hmacsha256,instanceId=iot-06z00ax1o4qq0py|");
    CHECK(c.username == "dev01&a1b2c3d4e5f");
    CHECK(c.password == "118EE025D842CEB096DE9BA9E853015DFF606A0D53D5A9773DF0DDE3A0101BD9");
    CHECK(c.sign_content == "deviceNamedev01productKeya1b2c3d4e5frandom8Ygb7ULYh53B6OA");

    in.sign_method = SignMethod::hmacsha1;
    in.mode = DynamicRegisterMode::no_preregistration;
    in.client_id = "dev01.a1b2c3d4e5f";
    c = mqtt_dynamic_register_credentials(in);
    CHECK(c.client_id == "dev01.a1b2c3d4e5f|securemode=-2,authType=regnwl,random=8Ygb7ULYh53B6OA,"
                         "signmethod=hmacsha1,instanceId=iot-06z00ax1o4qq0py|");
    CHECK(c.password == "02AD6DD6FBB1724076E1358FE175CDB6A2B857A7");

    // Legacy public instance: securemode=2 and no instanceId.
    in.sign_method = SignMethod::hmacmd5;
    in.iot_instance_id.clear();
    c = mqtt_dynamic_register_credentials(in);
    CHECK(c.client_id == "dev01.a1b2c3d4e5f|securemode=2,authType=regnwl,random=8Ygb7ULYh53B6OA,"
                         "signmethod=hmacmd5|");
    CHECK(c.password == "D4461C5C5A1207A225C28A76A499EC0D");
  }

  TEST_CASE("dynamic registration mode names") {
    CHECK(to_string(DynamicRegisterMode::preregistered) == "register");
    CHECK(to_string(DynamicRegisterMode::no_preregistration) == "regnwl");
    CHECK(parse_dynamic_register_mode("register") == DynamicRegisterMode::preregistered);
    CHECK(parse_dynamic_register_mode("regnwl") == DynamicRegisterMode::no_preregistration);
    CHECK_FALSE(parse_dynamic_register_mode("connwl").has_value());
    CHECK_FALSE(parse_dynamic_register_mode("Register").has_value());
  }

  TEST_CASE("sign method names") {
    CHECK(to_string(SignMethod::hmacmd5) == "hmacmd5");
    CHECK(parse_sign_method("HmacMD5") == SignMethod::hmacmd5);
    CHECK(parse_sign_method("hmacsha1") == SignMethod::hmacsha1);
    CHECK(parse_sign_method("HMACSHA256") == SignMethod::hmacsha256);
    CHECK_FALSE(parse_sign_method("sha256").has_value());
  }
}
