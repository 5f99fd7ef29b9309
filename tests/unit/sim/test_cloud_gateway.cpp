// SPDX-License-Identifier: MIT
// The cloud emulator's gateway (§1): signature, AccessKeyId, Timestamp, nonce, required common
// parameters, the gateway and business error envelopes. Requests are signed by the test's own
// signer, which is first checked against the doc's vectors.
#include "unit/sim/test_cloud_support.hpp"

#include <doctest/doctest.h>

using namespace iot::sim::testing;
using nlohmann::json;

namespace {

const std::string k_one_product = scenario_with(R"([{"product_key": "a1TestProd1",
  "devices": [{"name": "dev-0001", "secret": "s3cr3t0001", "status": "ONLINE"}]}])");

// Every field the §1 vectors sign, minus Signature.
Fields ecs_vector() {
  return Fields{{"AccessKeyId", "testid"},
                {"Action", "DescribeRegions"},
                {"Format", "XML"},
                {"SignatureMethod", "HMAC-SHA1"},
                {"SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"},
                {"SignatureVersion", "1.0"},
                {"Timestamp", "2016-02-23T12:46:24Z"},
                {"Version", "2014-05-26"}};
}

} // namespace

TEST_SUITE("sim::cloud gateway") {
  TEST_CASE("the test's signer reproduces the §1 vectors") {
    CHECK(doc_encode("123abc!@#$%^&*()-=_+ ~|\\/") ==
          "123abc%21%40%23%24%25%5E%26%2A%28%29-%3D_%2B%20~%7C%5C%2F");
    CHECK(doc_encode("str'str") == "str%27str");
    CHECK(doc_encode("str*str") == "str%2Astr");
    CHECK(hmac_sha1_base64("secret", "source") == "Jv4yi8SobFhg5t1C7nWLbhBSFZQ=");
    CHECK(
        doc_string_to_sign("GET", ecs_vector()) ==
        "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26"
        "SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26"
        "SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26");
    CHECK(doc_signature("GET", ecs_vector(), "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    CHECK(doc_signature("POST", ecs_vector(), "testsecret") == "MxbnVAM4w6sft9xjVpe/GCKueuk=");
    Fields go{{"AccessKeyId", "accessKeyId"},
              {"Action", ""},
              {"Format", "JSON"},
              {"RegionId", "regionId"},
              {"SignatureMethod", "HMAC-SHA1"},
              {"SignatureNonce", "MOCK_UUID"},
              {"SignatureType", ""},
              {"SignatureVersion", "1.0"},
              {"Timestamp", "mock date"},
              {"Version", ""}};
    CHECK(doc_signature("GET", go, "accessKeySecret") == "7loPmFjvDnzOVnQeQNj85S6nFGY=");
    go["SecurityToken"] = "accessKeyStsToken";
    CHECK(doc_signature("GET", go, "accessKeySecret") == "5Nxdcler+ihqWqv0Hr2On4PsBf4=");
    CHECK(doc_string_to_sign("GET", Fields{{"key", "value"}}) == "GET&%2F&key%3Dvalue");
  }

  TEST_CASE("a correctly signed POST and GET are accepted, with the JSON envelope") {
    CloudBench b(k_one_product);
    for (const char* method : {"POST", "GET"}) {
      CAPTURE(method);
      Call how;
      how.method = method;
      const json j = b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}}, how);
      CHECK(b.last.status == 200);
      CHECK(j["Success"] == true);
      CHECK(j["RequestId"].get<std::string>().size() == 36);
      CHECK(j["RequestId"] == b.last.request_id);
      CHECK_FALSE(j.contains("Code"));
      CHECK(j["Data"]["ProductKey"] == "a1TestProd1");
    }
  }

  TEST_CASE("values that need percent-encoding (UTF-8, @, :, space, *) verify") {
    CloudBench b(k_one_product);
    const json j = b.json("RegisterDevice",
                          {{"ProductKey", "a1TestProd1"},
                           {"DeviceName", "dev-with.colon:x@y"},
                           {"Nickname", "温度传感器_1"}});
    CHECK(b.last.status == 200);
    CHECK(j["Success"] == true);
    CHECK(j["Data"]["Nickname"] == "温度传感器_1");
    // A "*", a space and a "~" in an extra parameter are signed as %2A, %20 and ~.
    const json k = b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}, {"Extra", "a b*c~d"}});
    CHECK(k["Success"] == true);
  }

  TEST_CASE("SignatureDoesNotMatch: HTTP 400 with the server's StringToSign") {
    CloudBench b(k_one_product);
    SUBCASE("wrong secret") {
      Call how;
      how.secret = "not-the-secret";
      const json j = b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}}, how);
      CHECK(b.last.status == 400);
      CHECK(j["Code"] == "SignatureDoesNotMatch");
      const std::string expected = doc_string_to_sign("POST", b.last_params);
      CHECK(j["Message"].get<std::string>().ends_with("server string to sign is:" + expected));
      CHECK(j["HostId"] == "iot.cn-shanghai.aliyuncs.com");
      CHECK(j["Recommend"].get<std::string>().find("SignatureDoesNotMatch") != std::string::npos);
      CHECK_FALSE(j.contains("Success"));
    }
    SUBCASE("signed as GET, sent as POST") {
      Fields p{{"Action", "QueryProduct"},
               {"ProductKey", "a1TestProd1"},
               {"Version", "2018-01-20"},
               {"Format", "JSON"},
               {"AccessKeyId", std::string(k_ak)},
               {"SignatureMethod", "HMAC-SHA1"},
               {"SignatureVersion", "1.0"},
               {"SignatureNonce", "n-get-post"},
               {"Timestamp", doc_timestamp(b.now_ms)}};
      p["Signature"] = doc_signature("GET", p, k_secret);
      const auto r = b.send("POST", p);
      CHECK(r.status == 400);
      CHECK(r.code == "SignatureDoesNotMatch");
    }
    SUBCASE("a parameter changed after signing") {
      Fields p{{"Action", "QueryProduct"},
               {"ProductKey", "a1TestProd1"},
               {"Version", "2018-01-20"},
               {"Format", "JSON"},
               {"AccessKeyId", std::string(k_ak)},
               {"SignatureMethod", "HMAC-SHA1"},
               {"SignatureVersion", "1.0"},
               {"SignatureNonce", "n-tamper"},
               {"Timestamp", doc_timestamp(b.now_ms)}};
      p["Signature"] = doc_signature("POST", p, k_secret);
      p["ProductKey"] = "a1OtherProd";
      const auto r = b.send("POST", p);
      CHECK(r.status == 400);
      CHECK(r.code == "SignatureDoesNotMatch");
    }
    SUBCASE("a signature over query + body together, the body holding part of the params") {
      Fields p{{"Action", "QueryProduct"},
               {"ProductKey", "a1TestProd1"},
               {"Version", "2018-01-20"},
               {"Format", "JSON"},
               {"AccessKeyId", std::string(k_ak)},
               {"SignatureMethod", "HMAC-SHA1"},
               {"SignatureVersion", "1.0"},
               {"SignatureNonce", "n-split"},
               {"Timestamp", doc_timestamp(b.now_ms)}};
      p["Signature"] = doc_signature("POST", p, k_secret);
      Fields in_body{{"ProductKey", p["ProductKey"]}};
      Fields in_query = p;
      in_query.erase("ProductKey");
      iot::sim::cloud::CloudRequest r;
      r.method = "POST";
      r.path = "/";
      r.query = doc_form(in_query);
      r.body = doc_form(in_body);
      r.content_type = "application/x-www-form-urlencoded; charset=utf-8";
      const auto out = b.service->handle(r);
      CHECK(out.status == 200);
      CHECK(out.code.empty());
    }
  }

  TEST_CASE("unknown AccessKeyId: InvalidAccessKeyId.NotFound, HTTP 404") {
    CloudBench b(k_one_product);
    Call how;
    how.ak = "LTAI5tNobodyKnowsMe";
    const json j = b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}}, how);
    CHECK(b.last.status == 404);
    CHECK(j["Code"] == "InvalidAccessKeyId.NotFound");
  }

  TEST_CASE("Timestamp: 15 minutes of skew either way, then InvalidTimeStamp.Expired") {
    CloudBench b(k_one_product);
    const std::int64_t window = 15 * 60 * 1000;
    for (const std::int64_t skew : {-window, window}) {
      Call how;
      how.timestamp_ms = b.now_ms + skew;
      b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}}, how);
      CHECK(b.last.status == 200);
    }
    for (const std::int64_t skew : {-window - 1000, window + 1000}) {
      Call how;
      how.timestamp_ms = b.now_ms + skew;
      const json j = b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}}, how);
      CHECK(b.last.status == 400);
      CHECK(j["Code"] == "InvalidTimeStamp.Expired");
    }
  }

  TEST_CASE("Timestamp must be YYYY-MM-DDThh:mm:ssZ") {
    CloudBench b(k_one_product);
    for (const char* bad : {"2024-06-01T12:00:00.000Z", "2024-06-01 12:00:00", "1717243200"}) {
      CAPTURE(bad);
      const json j = b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}, {"Timestamp", bad}});
      CHECK(b.last.status == 400);
      CHECK(j["Code"] == "InvalidTimeStamp.Format");
    }
  }

  TEST_CASE("a nonce is single-use per AccessKeyId within the window") {
    CloudBench b(k_one_product);
    Call how;
    how.nonce = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf";
    b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}}, how);
    CHECK(b.last.status == 200);
    b.now_ms += 60'000; // a new signature (new Timestamp), same nonce
    const json j = b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}}, how);
    CHECK(b.last.status == 400);
    CHECK(j["Code"] == "SignatureNonceUsed");
    // Another AccessKeyId may use the same nonce.
    how.ak = "LTAI5tTestKeyB";
    how.secret = "testSecretB";
    b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}}, how);
    CHECK(b.last.status == 200);
    // A request rejected for its signature does not use up its nonce.
    Call bad;
    bad.nonce = "fresh-nonce";
    bad.secret = "wrong";
    b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}}, bad);
    CHECK(b.last.code == "SignatureDoesNotMatch");
    bad.secret = std::string(k_secret);
    b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}}, bad);
    CHECK(b.last.status == 200);
  }

  TEST_CASE("a replay after the window fails on its Timestamp") {
    CloudBench b(k_one_product);
    Call how;
    how.nonce = "replayed";
    b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}}, how);
    const Fields first = b.last_params;
    b.now_ms += 16 * 60 * 1000;
    const auto r = b.send("POST", first);
    CHECK(r.status == 400);
    CHECK(r.code == "InvalidTimeStamp.Expired");
  }

  TEST_CASE("NonceCache forgets after 31 minutes and is bounded by the window") {
    iot::sim::cloud::NonceCache cache;
    const std::int64_t t0 = k_start_ms;
    CHECK(cache.insert("ak", "n1", t0));
    CHECK_FALSE(cache.insert("ak", "n1", t0 + 1000));
    CHECK(cache.insert("ak2", "n1", t0));
    CHECK_FALSE(cache.insert("ak", "n1", t0 + 30 * 60'000)); // from an older (sorted) bucket
    for (int i = 0; i < 1000; ++i) {
      CHECK(cache.insert("ak", "bulk" + std::to_string(i), t0 + 60'000));
    }
    CHECK(cache.size() == 1002);
    CHECK(cache.insert("ak", "n1", t0 + 33 * 60'000));
    CHECK(cache.size() == 1);
  }

  TEST_CASE("missing common parameters: MissingParameter, HTTP 400") {
    CloudBench b(k_one_product);
    for (const char* name : {"Action",
                             "Version",
                             "AccessKeyId",
                             "Signature",
                             "SignatureMethod",
                             "SignatureVersion",
                             "SignatureNonce",
                             "Timestamp"}) {
      CAPTURE(name);
      Fields p{{"Action", "QueryProduct"},
               {"ProductKey", "a1TestProd1"},
               {"Version", "2018-01-20"},
               {"Format", "JSON"},
               {"AccessKeyId", std::string(k_ak)},
               {"SignatureMethod", "HMAC-SHA1"},
               {"SignatureVersion", "1.0"},
               {"SignatureNonce", std::string("n-missing-") + name},
               {"Timestamp", doc_timestamp(b.now_ms)}};
      p.erase(name);
      if (std::string_view(name) != "Signature") {
        p["Signature"] = doc_signature("POST", p, k_secret);
      }
      const auto r = b.send("POST", p);
      CHECK(r.status == 400);
      CHECK(r.code == "MissingParameter");
      const json j = json::parse(r.body);
      CHECK(j["Message"].get<std::string>().find(std::string("\"") + name + "\"") !=
            std::string::npos);
    }
  }

  TEST_CASE("missing action parameters: MissingParameter") {
    CloudBench b(k_one_product);
    const json j = b.json("QueryDevice", {});
    CHECK(b.last.status == 400);
    CHECK(j["Code"] == "MissingParameter");
    CHECK(j["Message"].get<std::string>().find("\"ProductKey\"") != std::string::npos);
  }

  TEST_CASE("Format other than JSON, wrong Version, unknown Action, wrong SignatureMethod") {
    CloudBench b(k_one_product);
    b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}, {"Format", "XML"}});
    CHECK(b.last.status == 400);
    CHECK(b.last.code == "InvalidParameter.Format");
    b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}, {"Version", "2017-04-20"}});
    CHECK(b.last.status == 400);
    CHECK(b.last.code == "InvalidVersion");
    b.json("DescribeRegions", {});
    CHECK(b.last.status == 404);
    CHECK(b.last.code == "InvalidAction.NotFound");
    b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}, {"SignatureMethod", "HMAC-SHA256"}});
    CHECK(b.last.status == 400);
    CHECK(b.last.code == "IncompleteSignature");
    iot::sim::cloud::CloudRequest other;
    other.method = "GET";
    other.path = "/v1/things";
    const auto r = b.service->handle(other);
    CHECK(r.status == 404);
  }

  TEST_CASE("business errors are HTTP 200 with Success=false, Code and ErrorMessage") {
    CloudBench b(k_one_product);
    const json j = b.json("QueryProduct", {{"ProductKey", "a1NoSuchPrd"}});
    CHECK(b.last.status == 200);
    CHECK(j["Success"] == false);
    CHECK(j["Code"] == "iot.prod.NotExistedProduct");
    CHECK_FALSE(j["ErrorMessage"].get<std::string>().empty());
    CHECK(j.contains("RequestId"));
    const json k = b.json("QueryProduct", {{"ProductKey", "bad-key!"}});
    CHECK(k["Code"] == "iot.prod.InvalidFormattedProductkey");
  }

  TEST_CASE("IotInstanceId is accepted, and with an instance in the scenario it is required") {
    {
      CloudBench b(k_one_product);
      const json j =
          b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}, {"IotInstanceId", "iot-any"}});
      CHECK(j["Success"] == true);
    }
    CloudBench b(scenario_with(R"([{"product_key": "a1TestProd1"}])",
                               R"("iot_instance_id": "iot-06z00abcdefgh",)"));
    json j = b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}});
    CHECK(j["Code"] == "iot.prod.NotExistedProduct");
    j = b.json("QueryProduct",
               {{"ProductKey", "a1TestProd1"}, {"IotInstanceId", "iot-06z00abcdefgh"}});
    CHECK(j["Success"] == true);
  }

  TEST_CASE("counters: requests per Action and errors by code") {
    CloudBench b(k_one_product);
    b.json("QueryProduct", {{"ProductKey", "a1TestProd1"}});
    b.json("QueryProduct", {{"ProductKey", "a1NoSuchPrd"}});
    b.json("NoSuchAction", {});
    const auto c = b.service->counters();
    std::uint64_t query_product = 0;
    for (const auto& a : c.actions) {
      if (a.action == "QueryProduct") {
        query_product = a.requests;
      }
    }
    CHECK(query_product == 2);
    CHECK(c.other_requests == 1);
    CHECK(c.errors.at("iot.prod.NotExistedProduct") == 1);
    CHECK(c.errors.at("InvalidAction.NotFound") == 1);
  }
}
