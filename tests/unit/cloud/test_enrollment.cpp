// SPDX-License-Identifier: MIT
// The enrollment request (cloud/enrollment.hpp): §4's vector read back as a request, the
// imei/iccid form, the device-key scheme's derived keys, every refusal. The expected values were
// computed independently (Python's hmac module).
#include "cloud/enrollment.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace iot;
using namespace iot::cloud;

namespace {

const std::string k_body_4 =
    "productKey=a1b2c3d4e5f&deviceName=dev01&random=8Ygb7ULYh53B6OA"
    "&sign=118EE025D842CEB096DE9BA9E853015DFF606A0D53D5A9773DF0DDE3A0101BD9"
    "&signMethod=hmacsha256";

EnrollRefusal refusal_of(std::string_view body) {
  auto r = parse_enroll_request(body);
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_SUITE("cloud::enrollment") {
  TEST_CASE("§4's vector: a firmware's dynamic registration request is read and its sign checked") {
    auto r = parse_enroll_request(k_body_4);
    REQUIRE(r.has_value());
    CHECK(r->product_key == "a1b2c3d4e5f");
    CHECK(r->device_name == "dev01");
    CHECK(r->sign_method == SignMethod::hmacsha256);
    CHECK(r->imei.empty());
    CHECK_FALSE(r->timestamp_ms.has_value());
    CHECK(enroll_sign_content(*r) == "deviceNamedev01productKeya1b2c3d4e5frandom8Ygb7ULYh53B6OA");
    CHECK(enroll_sign_valid(*r, "0123456789ABCDEF"));
    CHECK_FALSE(enroll_sign_valid(*r, "0123456789ABCDEf")); // another secret
    r->sign[0] = '0';
    CHECK_FALSE(enroll_sign_valid(*r, "0123456789ABCDEF"));
    // Lower-case hex is the same sign.
    auto lower = parse_enroll_request(
        "productKey=a1b2c3d4e5f&deviceName=dev01&random=8Ygb7ULYh53B6OA&signMethod=HmacSHA256"
        "&sign=118ee025d842ceb096de9ba9e853015dff606a0d53d5a9773df0dde3a0101bd9");
    REQUIRE(lower.has_value());
    CHECK(enroll_sign_valid(*lower, "0123456789ABCDEF"));
  }

  TEST_CASE("imei and iccid are signed like every other field") {
    const std::string body =
        "productKey=a1b2c3d4e5f&deviceName=dev01&random=8Ygb7ULYh53B6OA&imei=869939451296205"
        "&iccid=89860400000000000001&signMethod=hmacsha256"
        "&sign=73AAAA1D795036D22B20CA3C83F6E6DB4ACFD774C3EE983EE874013C1C6C7806";
    auto r = parse_enroll_request(body);
    REQUIRE(r.has_value());
    CHECK(r->imei == "869939451296205");
    CHECK(r->iccid == "89860400000000000001");
    CHECK(enroll_sign_content(*r) == "deviceNamedev01iccid89860400000000000001imei869939451296205"
                                     "productKeya1b2c3d4e5frandom8Ygb7ULYh53B6OA");
    CHECK(enroll_sign_valid(*r, "0123456789ABCDEF"));
    // The same sign over a request whose IMEI was swapped (a clone replaying it) fails.
    std::string swapped = body;
    swapped.replace(swapped.find("869939451296205"), 15, "490154203237518");
    auto clone = parse_enroll_request(swapped);
    REQUIRE(clone.has_value());
    CHECK_FALSE(enroll_sign_valid(*clone, "0123456789ABCDEF"));
  }

  TEST_CASE("device-key: each device's key from the group secret, and a request signed with it") {
    CHECK(enrollment_device_key("GroupSecret-line1-2026", "dev01") ==
          "ebaa97903aa77f4cbf8d98dec28d869a");
    CHECK(enrollment_device_key("GroupSecret-line1-2026", "869939451296205") ==
          "acc38069dcabf27b86f3d82ba3f868d5");
    const auto key = enrollment_device_key("GroupSecret-line1-2026", "dev01");
    const std::string body = enroll_request_body({{"productKey", "a1b2c3d4e5f"},
                                                  {"deviceName", "dev01"},
                                                  {"random", "r1"},
                                                  {"imei", "869939451296205"},
                                                  {"timestamp", "1700000000000"}},
                                                 SignMethod::hmacsha256,
                                                 key);
    CHECK(contains(body, "sign=BE994813CDCEC343E134CBB114820E1D09738A05B6F2B96EF451C160516AB30E"));
    auto r = parse_enroll_request(body);
    REQUIRE(r.has_value());
    CHECK(r->timestamp_ms == 1700000000000);
    CHECK(enroll_sign_valid(*r, key));
    // Another device's key (one device's leak) does not sign for this one.
    CHECK_FALSE(enroll_sign_valid(*r, enrollment_device_key("GroupSecret-line1-2026", "dev02")));
  }

  TEST_CASE("every malformed request is refused with its code, never quoting a value") {
    CHECK(refusal_of("").code == enroll_code::bad_request);
    CHECK(contains(refusal_of("productKey=a1b2c3d4e5f").message, "deviceName is missing"));
    CHECK(refusal_of(k_body_4 + "&sign=00").code == enroll_code::bad_request); // twice
    CHECK(refusal_of(k_body_4 + "&").code == enroll_code::bad_request);        // empty pair
    CHECK(refusal_of(k_body_4 + "&x=%G0").code == enroll_code::bad_request);   // bad escape
    CHECK(refusal_of(k_body_4 + "&x=a%0Ab").code == enroll_code::bad_request); // control byte
    std::string dn = k_body_4;
    dn.replace(dn.find("dev01"), 5, "d!");
    CHECK(refusal_of(dn).code == enroll_code::bad_name);
    std::string method = k_body_4;
    method.replace(method.find("hmacsha256"), 10, "sha512");
    CHECK(contains(refusal_of(method).message, "signMethod"));
    const auto placeholder = refusal_of(k_body_4 + "&imei=352099001761481");
    CHECK(placeholder.code == enroll_code::bad_request);
    CHECK(contains(placeholder.message, "imei"));
    CHECK(refusal_of(k_body_4 + "&iccid=8986").code == enroll_code::bad_request);
    CHECK(refusal_of(k_body_4 + "&timestamp=17e11").code == enroll_code::bad_request);
    CHECK(refusal_of(k_body_4 + "&random2=" + std::string(300, 'x')).code ==
          enroll_code::bad_request); // longer than a field may be
    std::string many = k_body_4;
    for (int i = 0; i < 12; ++i) {
      many += "&f" + std::to_string(i) + "=1";
    }
    CHECK(contains(refusal_of(many).message, "at most 16 fields"));
    const auto secretive = refusal_of("productKey=a1b2c3d4e5f&deviceName=dev01&random=r&sign="
                                      "S3cr3tS1gn0000&signMethod=md4");
    CHECK_FALSE(contains(secretive.message, "S3cr3tS1gn0000"));
  }

  TEST_CASE("answers: §4's success body, and a refusal's code and message") {
    CHECK(enroll_answer("a1b2c3d4e5f", "dev01", "S3cretS3cretS3cretS3cretS3cret12") ==
          R"({"code":200,"data":{"productKey":"a1b2c3d4e5f","deviceName":"dev01",)"
          R"("deviceSecret":"S3cretS3cretS3cretS3cretS3cret12"},"message":"success"})");
    CHECK(enroll_refusal_answer({enroll_code::bad_sign, "request auth error"}) ==
          R"({"code":401,"message":"request auth error"})");
    CHECK(enroll_refusal_answer({enroll_code::bad_name, "bad \xff name"}).find("bad ") !=
          std::string::npos); // invalid UTF-8 is replaced, never thrown
  }
}
