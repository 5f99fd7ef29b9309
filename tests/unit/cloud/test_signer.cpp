// SPDX-License-Identifier: MIT
#include "cloud/signer.hpp"

#include <doctest/doctest.h>

using namespace iot;
using namespace iot::cloud;

namespace {

// Official doc example (ECS DescribeRegions), protocol doc §1.
Params describe_regions() {
  return {{"AccessKeyId", "testid"},
          {"Action", "DescribeRegions"},
          {"Format", "XML"},
          {"SignatureMethod", "HMAC-SHA1"},
          {"SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"},
          {"SignatureVersion", "1.0"},
          {"Timestamp", "2016-02-23T12:46:24Z"},
          {"Version", "2014-05-26"}};
}

// Go SDK rpc_signature_composer_test.go.
Params go_sdk_params() {
  return {{"AccessKeyId", "accessKeyId"},
          {"Action", ""},
          {"Format", "JSON"},
          {"RegionId", "regionId"},
          {"SignatureMethod", "HMAC-SHA1"},
          {"SignatureNonce", "MOCK_UUID"},
          {"SignatureType", ""},
          {"SignatureVersion", "1.0"},
          {"Timestamp", "mock date"},
          {"Version", ""}};
}

} // namespace

TEST_SUITE("cloud::signer") {
  TEST_CASE("percentEncode matches the Java SDK vector") {
    CHECK(percent_encode("123abc!@#$%^&*()-=_+ ~|\\/") ==
          "123abc%21%40%23%24%25%5E%26%2A%28%29-%3D_%2B%20~%7C%5C%2F");
  }

  TEST_CASE("percentEncode details") {
    CHECK(percent_encode("str'str") == "str%27str");
    CHECK(percent_encode("str*str") == "str%2Astr");
    CHECK(percent_encode("a b") == "a%20b");
    CHECK(percent_encode("~-_.") == "~-_.");
    CHECK(percent_encode("设备") == "%E8%AE%BE%E5%A4%87");
    CHECK(percent_encode("") == "");
  }

  TEST_CASE("DescribeRegions GET: StringToSign and signature (official example)") {
    const Params params = describe_regions();
    CHECK(string_to_sign("GET", params) ==
          "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26"
          "SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26"
          "SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26"
          "Version%3D2014-05-26");
    CHECK(rpc_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
  }

  TEST_CASE("DescribeRegions POST signature") {
    CHECK(rpc_signature("POST", describe_regions(), "testsecret") ==
          "MxbnVAM4w6sft9xjVpe/GCKueuk=");
  }

  TEST_CASE("Signature is never part of what is signed") {
    Params params = describe_regions();
    params["Signature"] = "anything";
    CHECK(rpc_signature("GET", params, "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
  }

  TEST_CASE("Go SDK vectors, empty values kept as k=") {
    Params params = go_sdk_params();
    CHECK(canonicalized_query(params).find("Action=&") != std::string::npos);
    CHECK(rpc_signature("GET", params, "accessKeySecret") == "7loPmFjvDnzOVnQeQNj85S6nFGY=");
    params["SecurityToken"] = "accessKeyStsToken";
    CHECK(rpc_signature("GET", params, "accessKeySecret") == "5Nxdcler+ihqWqv0Hr2On4PsBf4=");
  }

  TEST_CASE("form key=value only") {
    CHECK(string_to_sign("GET", {{"key", "value"}}) == "GET&%2F&key%3Dvalue");
  }

  TEST_CASE("byte-order sort: upper case before lower case") {
    CHECK(canonicalized_query({{"b", "1"}, {"B", "2"}, {"a", "3"}, {"A.1", "4"}}) ==
          "A.1=4&B=2&a=3&b=1");
  }

  TEST_CASE("timestamps are UTC without fraction") {
    using namespace std::chrono;
    const auto t =
        sys_days{year{2016} / 2 / 23} + hours{12} + minutes{46} + seconds{24} + milliseconds{999};
    CHECK(format_timestamp(t) == "2016-02-23T12:46:24Z");
    CHECK(format_timestamp(t).size() == 20);
  }

  TEST_CASE("RequestSigner adds every common parameter and a valid signature") {
    using namespace std::chrono;
    int nonce = 0;
    const auto now = sys_days{year{2024} / 1 / 2} + hours{3} + minutes{4} + seconds{5};
    SUBCASE("AccessKey") {
      RequestSigner signer(
          AccessKey{"id1", "sec1", ""},
          "cn-shanghai",
          "",
          [now] { return now; },
          [&nonce] { return "nonce-" + std::to_string(++nonce); });
      const Params p =
          signer.sign("QueryDevice", {{"ProductKey", "a1b2c3d4e5f"}, {"Format", "XML"}});
      CHECK(p.at("Action") == "QueryDevice");
      CHECK(p.at("Version") == "2018-01-20");
      CHECK(p.at("Format") == "JSON");
      CHECK(p.at("AccessKeyId") == "id1");
      CHECK(p.at("SignatureMethod") == "HMAC-SHA1");
      CHECK(p.at("SignatureVersion") == "1.0");
      CHECK(p.at("SignatureNonce") == "nonce-1");
      CHECK(p.at("Timestamp") == "2024-01-02T03:04:05Z");
      CHECK(p.at("RegionId") == "cn-shanghai");
      CHECK(p.at("ProductKey") == "a1b2c3d4e5f");
      CHECK(p.count("SecurityToken") == 0);
      CHECK(p.count("IotInstanceId") == 0);
      CHECK(p.at("Signature") == rpc_signature("POST", p, "sec1"));
      CHECK(verify_rpc_signature("POST", p, "sec1").valid);
      CHECK_FALSE(verify_rpc_signature("GET", p, "sec1").valid);
      CHECK_FALSE(verify_rpc_signature("POST", p, "other").valid);
      // A fresh nonce on every call.
      CHECK(signer.sign("QueryDevice", {}).at("SignatureNonce") == "nonce-2");
    }
    SUBCASE("STS and instance id") {
      RequestSigner signer(
          AccessKey{"STS.id", "sec", "tok"},
          "cn-shanghai",
          "iot-06z00ax1o4qq0py",
          [now] { return now; },
          [] { return std::string("n"); });
      const Params p = signer.sign("QueryProduct", {});
      CHECK(p.at("SecurityToken") == "tok");
      CHECK(p.at("IotInstanceId") == "iot-06z00ax1o4qq0py");
      CHECK(verify_rpc_signature("POST", p, "sec").valid);
    }
  }

  TEST_CASE("verifier: tampering and a missing Signature are invalid") {
    Params p = describe_regions();
    p["Signature"] = "OLeaidS1JvxuMvnyHOwuJ+uX5qY=";
    auto check = verify_rpc_signature("GET", p, "testsecret");
    CHECK(check.valid);
    CHECK(check.string_to_sign.starts_with("GET&%2F&AccessKeyId%3Dtestid"));
    p["Action"] = "DeleteEverything";
    check = verify_rpc_signature("GET", p, "testsecret");
    CHECK_FALSE(check.valid);
    CHECK(check.expected_signature != "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    p.erase("Signature");
    CHECK_FALSE(verify_rpc_signature("GET", p, "testsecret").valid);
  }

  TEST_CASE("form bodies round-trip through parse_form") {
    Params p = describe_regions();
    p["Signature"] = "a+b/c=";
    p["Nickname"] = "设备 1";
    const std::string body = form_encode(p);
    CHECK(body.find("Signature=a%2Bb%2Fc%3D") != std::string::npos);
    auto parsed = parse_form(body);
    REQUIRE(parsed);
    CHECK(*parsed == p);
    CHECK(verify_rpc_signature("GET", *parsed, "x").string_to_sign == string_to_sign("GET", p));
    auto plus = parse_form("a=1+2&b=&c");
    REQUIRE(plus);
    CHECK(plus->at("a") == "1 2");
    CHECK(plus->at("b") == "");
    CHECK(plus->at("c") == "");
    auto bad = parse_form("a=%G1");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind == ErrorKind::usage);
    CHECK_FALSE(parse_form("a=%4"));
  }
}
