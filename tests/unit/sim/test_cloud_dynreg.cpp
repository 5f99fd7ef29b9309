// SPDX-License-Identifier: MIT
// One-type-one-secret dynamic registration (docs/aliyun-iot-protocol.md §4) in the cloud
// emulator: POST /auth/register/device and the emulator's POST /_emulator/activate. Forms are
// signed here with OpenSSL from §4's formula, checked first against §4's three sign vectors.
#include "unit/sim/test_cloud_support.hpp"

#include <doctest/doctest.h>

#include <mutex>
#include <regex>
#include <set>
#include <thread>

using namespace iot::sim::testing;
using nlohmann::json;
namespace cloud = iot::sim::cloud;

namespace {

// §4's synthetic vector.
constexpr const char* k_pk = "a1b2c3d4e5f";
constexpr const char* k_dn = "dev01";
constexpr const char* k_ps = "0123456789ABCDEF";
constexpr const char* k_random = "8Ygb7ULYh53B6OA";
constexpr const char* k_vector_sha256 =
    "118EE025D842CEB096DE9BA9E853015DFF606A0D53D5A9773DF0DDE3A0101BD9";
constexpr const char* k_vector_sha1 = "02AD6DD6FBB1724076E1358FE175CDB6A2B857A7";
constexpr const char* k_vector_md5 = "D4461C5C5A1207A225C28A76A499EC0D";

const EVP_MD* digest_for(std::string_view method) {
  if (method == "hmacmd5") {
    return EVP_md5();
  }
  if (method == "hmacsha1") {
    return EVP_sha1();
  }
  return EVP_sha256();
}

// hex(HMAC(ProductSecret, "deviceName"+dn+"productKey"+pk+"random"+random)), uppercase (§4).
std::string doc_dynreg_sign(std::string_view method,
                            std::string_view product_secret,
                            std::string_view pk,
                            std::string_view dn,
                            std::string_view random) {
  const std::string msg = "deviceName" + std::string(dn) + "productKey" + std::string(pk) +
                          "random" + std::string(random);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(digest_for(method),
       product_secret.data(),
       static_cast<int>(product_secret.size()),
       reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(),
       digest,
       &length);
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(hex[digest[i] >> 4U]);
    out.push_back(hex[digest[i] & 15U]);
  }
  return out;
}

const std::string k_scenario = scenario_with(R"([
  {"product_key": "a1b2c3d4e5f", "product_secret": "0123456789ABCDEF",
   "devices": [{"name": "dev01"},
               {"name": "dev02"},
               {"name": "dev-online", "status": "ONLINE"},
               {"name": "dev-offline", "status": "OFFLINE"},
               {"name": "dev-disabled", "status": "DISABLE"},
               {"name": "dev-unactive", "status": "UNACTIVE"}]},
  {"product_key": "a1NoDynReg01", "product_secret": "NoDynRegSecret01", "dynamic_register": false,
   "devices": [{"name": "dev01"}]}
])");

// The form of §4, signed with `secret` for pk/dn/random.
Fields signed_form(std::string pk,
                   std::string dn,
                   std::string method = "hmacsha256",
                   std::string secret = k_ps,
                   std::string random = k_random) {
  Fields f;
  f["sign"] = doc_dynreg_sign(method, secret, pk, dn, random);
  f["productKey"] = std::move(pk);
  f["deviceName"] = std::move(dn);
  f["random"] = std::move(random);
  f["signMethod"] = std::move(method);
  return f;
}

cloud::CloudResponse send_register(CloudBench& b,
                                   const Fields& form,
                                   std::string content_type = "application/x-www-form-urlencoded",
                                   std::string method = "POST") {
  cloud::CloudRequest r;
  r.method = std::move(method);
  r.path = "/auth/register/device";
  r.body = doc_form(form);
  r.content_type = std::move(content_type);
  return b.service->handle(r);
}

json register_json(CloudBench& b, const Fields& form) {
  b.last = send_register(b, form);
  return json::parse(b.last.body);
}

cloud::CloudResponse activate(CloudBench& b, const Fields& form, std::string method = "POST") {
  cloud::CloudRequest r;
  r.method = std::move(method);
  r.path = "/_emulator/activate";
  r.body = doc_form(form);
  r.content_type = "application/x-www-form-urlencoded";
  return b.service->handle(r);
}

// The device's secret in the state (read directly: the OpenAPI may be faulted).
std::string secret_of(CloudBench& b, const std::string& pk, const std::string& dn) {
  const auto row =
      b.store->read([&](cloud::Conn& c) { return cloud::CloudStore::device(c, pk, dn); });
  REQUIRE(row);
  REQUIRE(row->has_value());
  return (*row)->device_secret;
}

// The same through the OpenAPI (QueryDeviceDetail).
std::string api_secret_of(CloudBench& b, const std::string& pk, const std::string& dn) {
  const json j = b.json("QueryDeviceDetail", {{"ProductKey", pk}, {"DeviceName", dn}});
  REQUIRE(j["Success"] == true);
  return j["Data"]["DeviceSecret"];
}

std::string status_of(CloudBench& b, const std::string& pk, const std::string& dn) {
  return b.json("GetDeviceStatus", {{"ProductKey", pk}, {"DeviceName", dn}})["Data"]["Status"];
}

} // namespace

TEST_SUITE("sim::cloud dynamic registration") {
  TEST_CASE("this file's signer reproduces the three §4 sign vectors") {
    CHECK(doc_dynreg_sign("hmacsha256", k_ps, k_pk, k_dn, k_random) == k_vector_sha256);
    CHECK(doc_dynreg_sign("hmacsha1", k_ps, k_pk, k_dn, k_random) == k_vector_sha1);
    CHECK(doc_dynreg_sign("hmacmd5", k_ps, k_pk, k_dn, k_random) == k_vector_md5);
  }

  TEST_CASE("each §4 vector is accepted for its signMethod and refused for the others") {
    CloudBench b(k_scenario);
    const std::vector<std::pair<std::string, std::string>> vectors{
        {"hmacsha256", k_vector_sha256}, {"hmacsha1", k_vector_sha1}, {"hmacmd5", k_vector_md5}};
    for (const auto& [method, sign] : vectors) {
      for (const auto& [label, unused] : vectors) {
        CAPTURE(method);
        CAPTURE(label);
        const json j = register_json(b,
                                     {{"productKey", k_pk},
                                      {"deviceName", k_dn},
                                      {"random", k_random},
                                      {"sign", sign},
                                      {"signMethod", label}});
        CHECK(b.last.status == 200);
        CHECK(j["code"] == (label == method ? 200 : 401));
      }
    }
    // Hex case and the signMethod's case do not matter (§4: the doc samples show "HmacMD5").
    std::string lower = k_vector_md5;
    for (char& c : lower) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    json j = register_json(b,
                           {{"productKey", k_pk},
                            {"deviceName", k_dn},
                            {"random", k_random},
                            {"sign", lower},
                            {"signMethod", "HmacMD5"}});
    CHECK(j["code"] == 200);
    // One digit off, another random, another device, another secret: 401.
    std::string off = k_vector_sha256;
    off.back() = off.back() == '9' ? '8' : '9';
    j = register_json(b,
                      {{"productKey", k_pk},
                       {"deviceName", k_dn},
                       {"random", k_random},
                       {"sign", off},
                       {"signMethod", "hmacsha256"}});
    CHECK(j["code"] == 401);
    CHECK(j["message"] == "request auth error");
    j = register_json(b,
                      {{"productKey", k_pk},
                       {"deviceName", k_dn},
                       {"random", "8Ygb7ULYh53B6OB"},
                       {"sign", k_vector_sha256},
                       {"signMethod", "hmacsha256"}});
    CHECK(j["code"] == 401);
    j = register_json(b,
                      {{"productKey", k_pk},
                       {"deviceName", "dev02"},
                       {"random", k_random},
                       {"sign", k_vector_sha256},
                       {"signMethod", "hmacsha256"}});
    CHECK(j["code"] == 401);
    j = register_json(b, signed_form(k_pk, k_dn, "hmacsha256", "0123456789ABCDEf"));
    CHECK(j["code"] == 401);
    // A random with characters that need percent-encoding is signed as decoded.
    j = register_json(b, signed_form(k_pk, "dev02", "hmacsha1", k_ps, "a b&c=d+e%f/\xE4\xB8\xAD"));
    CHECK(j["code"] == 200);
  }

  TEST_CASE("success: §4's body exactly, HTTP 200 JSON, the secret is the device's secret") {
    CloudBench b(k_scenario);
    const std::string before = secret_of(b, k_pk, k_dn);
    const auto r = send_register(b, signed_form(k_pk, k_dn));
    CHECK(r.status == 200);
    CHECK(r.delivery == cloud::Delivery::normal);
    CHECK(r.code.empty());
    const std::regex shape(R"re(^\{"code":200,"data":\{"productKey":"a1b2c3d4e5f",)re"
                           R"re("deviceName":"dev01","deviceSecret":"([0-9a-f]{32})"\},)re"
                           R"re("message":"success"\}$)re");
    std::smatch m;
    REQUIRE(std::regex_match(r.body, m, shape));
    const std::string issued = m[1];
    CHECK(issued != before);
    CHECK(secret_of(b, k_pk, k_dn) == issued);
    CHECK(api_secret_of(b, k_pk, k_dn) == issued);
    // Still not activated: registering is not connecting.
    CHECK(status_of(b, k_pk, k_dn) == "UNACTIVE");
    const json detail =
        b.json("QueryDeviceDetail", {{"ProductKey", k_pk}, {"DeviceName", k_dn}})["Data"];
    CHECK_FALSE(detail.contains("UtcActive"));
    // Nothing else changed.
    CHECK(b.json("QueryProduct", {{"ProductKey", k_pk}})["Data"]["DeviceCount"] == 6);
  }

  TEST_CASE("repeat registration before activation: a new secret each time, the newest wins") {
    CloudBench b(k_scenario);
    std::set<std::string> secrets{secret_of(b, k_pk, k_dn)};
    std::string last;
    for (const char* method : {"hmacsha256", "hmacsha1", "hmacmd5", "hmacsha256"}) {
      CAPTURE(method);
      const json j = register_json(b, signed_form(k_pk, k_dn, method));
      REQUIRE(j["code"] == 200);
      last = j["data"]["deviceSecret"];
      CHECK(secrets.insert(last).second);
      CHECK(api_secret_of(b, k_pk, k_dn) == last);
    }
    CHECK(secrets.size() == 5);
    // The other device's secret is untouched.
    const std::string other = secret_of(b, k_pk, "dev02");
    CHECK(secrets.count(other) == 0);
    const auto c = b.service->counters();
    CHECK(c.register_requests == 4);
    CHECK(c.register_issued == 4);
  }

  TEST_CASE("error cases: codes, messages, HTTP status, and no change to the state") {
    CloudBench b(k_scenario);
    const std::string dev01 = secret_of(b, k_pk, k_dn);
    struct Case {
      std::string label;
      Fields form;
      int code;
      std::string message; // "" = not checked
    };
    std::vector<Case> cases;
    for (const char* field : {"productKey", "deviceName", "random", "sign", "signMethod"}) {
      Fields missing = signed_form(k_pk, k_dn);
      missing.erase(field);
      cases.push_back({std::string("missing ") + field, missing, 460, "request parameter error"});
      Fields empty = signed_form(k_pk, k_dn);
      empty[field] = "";
      cases.push_back({std::string("empty ") + field, empty, 460, "request parameter error"});
    }
    Fields unknown_method = signed_form(k_pk, k_dn);
    unknown_method["signMethod"] = "hmacsha512";
    cases.push_back({"unknown signMethod", unknown_method, 460, "request parameter error"});
    cases.push_back({"unknown product",
                     signed_form("a1NoSuchProd", k_dn, "hmacsha256", k_ps),
                     6250,
                     "product not found"});
    cases.push_back({"malformed ProductKey",
                     signed_form("a1-bad-key", k_dn, "hmacsha256", k_ps),
                     6250,
                     "product not found"});
    cases.push_back({"wrong ProductSecret",
                     signed_form(k_pk, k_dn, "hmacsha256", "NoDynRegSecret01"),
                     401,
                     "request auth error"});
    cases.push_back({"dynamic registration off for the product",
                     signed_form("a1NoDynReg01", k_dn, "hmacsha256", "NoDynRegSecret01"),
                     6288,
                     ""});
    cases.push_back(
        {"DeviceName too short", signed_form(k_pk, "ab"), 6280, "devicename not meet specs"});
    cases.push_back({"DeviceName with a space",
                     signed_form(k_pk, "dev 01"),
                     6280,
                     "devicename not meet specs"});
    cases.push_back({"device not pre-registered", signed_form(k_pk, "dev-nobody"), 6100, ""});
    cases.push_back({"disabled device", signed_form(k_pk, "dev-disabled"), 6204, ""});
    cases.push_back({"online (activated) device",
                     signed_form(k_pk, "dev-online"),
                     6289,
                     "device is already active"});
    cases.push_back({"offline (activated) device",
                     signed_form(k_pk, "dev-offline"),
                     6289,
                     "device is already active"});
    std::map<std::string, std::string> secrets;
    for (const char* dn : {"dev-online", "dev-offline", "dev-disabled"}) {
      secrets[dn] = secret_of(b, k_pk, dn);
    }
    std::uint64_t errors_6289 = 0;
    for (const Case& c : cases) {
      CAPTURE(c.label);
      const json j = register_json(b, c.form);
      CHECK(b.last.status == 200);
      CHECK(j["code"] == c.code);
      CHECK(b.last.code == std::to_string(c.code));
      CHECK(j.size() == 2); // {"code", "message"}: no data
      CHECK(j["message"].is_string());
      if (!c.message.empty()) {
        CHECK(j["message"] == c.message);
      }
      errors_6289 += c.code == 6289 ? 1 : 0;
    }
    // Not a form, or the fields in the query string: 460.
    const Fields good = signed_form(k_pk, k_dn);
    auto r = send_register(b, good, "application/json");
    CHECK(json::parse(r.body)["code"] == 460);
    cloud::CloudRequest query_only;
    query_only.method = "POST";
    query_only.path = "/auth/register/device";
    query_only.query = doc_form(good);
    query_only.content_type = "application/x-www-form-urlencoded";
    CHECK(json::parse(b.service->handle(query_only).body)["code"] == 460);
    cloud::CloudRequest malformed = query_only;
    malformed.query.clear();
    malformed.body = doc_form(good) + "&x=%zz";
    CHECK(json::parse(b.service->handle(malformed).body)["code"] == 460);
    // GET: 405.
    r = send_register(b, good, "application/x-www-form-urlencoded", "GET");
    CHECK(r.status == 405);
    CHECK(json::parse(r.body)["code"] == 405);

    CHECK(secret_of(b, k_pk, k_dn) == dev01);
    for (const auto& [dn, secret] : secrets) {
      CHECK(secret_of(b, k_pk, dn) == secret);
    }
    CHECK(secret_of(b, "a1NoDynReg01", k_dn).size() == 32);
    const auto counters = b.service->counters();
    CHECK(counters.register_issued == 0);
    CHECK(counters.errors.at("dynreg.6289") == errors_6289);
    CHECK(counters.errors.at("dynreg.460") == 14);
    // The same good form still registers (none of the above used anything up).
    CHECK(register_json(b, good)["code"] == 200);
  }

  TEST_CASE("6289 after /_emulator/activate, ResetThing makes the device registrable again") {
    CloudBench b(k_scenario);
    json j = register_json(b, signed_form(k_pk, k_dn));
    REQUIRE(j["code"] == 200);
    const std::string issued = j["data"]["deviceSecret"];

    auto r = activate(b, {{"productKey", k_pk}, {"deviceName", k_dn}});
    REQUIRE(r.status == 200);
    const json a = json::parse(r.body);
    CHECK(a["status"] == "ONLINE");
    CHECK(a["utcActive"].get<std::string>().starts_with("2024-06-01T12:00:00"));
    CHECK(status_of(b, k_pk, k_dn) == "ONLINE");
    const json detail =
        b.json("QueryDeviceDetail", {{"ProductKey", k_pk}, {"DeviceName", k_dn}})["Data"];
    CHECK(detail["UtcActive"] == "2024-06-01T12:00:00.000Z");

    b.now_ms += 1000;
    j = register_json(b, signed_form(k_pk, k_dn, "hmacsha1"));
    CHECK(j["code"] == 6289);
    CHECK(j["message"] == "device is already active");
    CHECK(secret_of(b, k_pk, k_dn) == issued); // the activated secret stays

    // Offline after activation is still activated.
    r = activate(b, {{"productKey", k_pk}, {"deviceName", "dev02"}, {"status", "OFFLINE"}});
    REQUIRE(r.status == 200);
    CHECK(status_of(b, k_pk, "dev02") == "OFFLINE");
    CHECK(register_json(b, signed_form(k_pk, "dev02"))["code"] == 6289);

    // ResetThing (OpenAPI) forgets the activation.
    REQUIRE(b.json("ResetThing", {{"ProductKey", k_pk}, {"DeviceName", k_dn}})["Success"] == true);
    CHECK(status_of(b, k_pk, k_dn) == "UNACTIVE");
    j = register_json(b, signed_form(k_pk, k_dn));
    REQUIRE(j["code"] == 200);
    CHECK(j["data"]["deviceSecret"] != issued);
    CHECK(secret_of(b, k_pk, k_dn) == j["data"]["deviceSecret"]);
    // ... and a seeded ONLINE device too.
    CHECK(register_json(b, signed_form(k_pk, "dev-online"))["code"] == 6289);
    REQUIRE(b.json("ResetThing", {{"ProductKey", k_pk}, {"DeviceName", "dev-online"}})["Success"] ==
            true);
    CHECK(register_json(b, signed_form(k_pk, "dev-online"))["code"] == 200);
    // A disabled device that is reset stays disabled: 6204 until EnableThing.
    REQUIRE(b.json("ResetThing",
                   {{"ProductKey", k_pk}, {"DeviceName", "dev-disabled"}})["Success"] == true);
    CHECK(register_json(b, signed_form(k_pk, "dev-disabled"))["code"] == 6204);
    REQUIRE(b.json("EnableThing",
                   {{"ProductKey", k_pk}, {"DeviceName", "dev-disabled"}})["Success"] == true);
    CHECK(register_json(b, signed_form(k_pk, "dev-disabled"))["code"] == 200);
    CHECK(b.service->counters().activate_requests == 2);
  }

  TEST_CASE("/_emulator/activate: its errors change nothing") {
    CloudBench b(k_scenario);
    auto expect = [&](const Fields& form, int status, const char* method = "POST") {
      const auto r = activate(b, form, method);
      CHECK(r.status == status);
      CHECK(json::parse(r.body)["error"].is_string());
    };
    expect({{"productKey", k_pk}}, 400);
    expect({{"deviceName", k_dn}}, 400);
    expect({{"productKey", k_pk}, {"deviceName", k_dn}, {"status", "DISABLE"}}, 400);
    expect({{"productKey", "a1NoSuchProd"}, {"deviceName", k_dn}}, 404);
    expect({{"productKey", k_pk}, {"deviceName", "dev-nobody"}}, 404);
    expect({{"productKey", k_pk}, {"deviceName", "dev-disabled"}}, 409);
    expect({{"productKey", k_pk}, {"deviceName", k_dn}}, 405, "GET");
    CHECK(status_of(b, k_pk, k_dn) == "UNACTIVE");
    CHECK(status_of(b, k_pk, "dev-disabled") == "DISABLE");
    CHECK(register_json(b, signed_form(k_pk, k_dn))["code"] == 200);
    // The query string works too (curl -X POST 'URL?productKey=…&deviceName=…').
    cloud::CloudRequest r;
    r.method = "POST";
    r.path = "/_emulator/activate";
    r.query = "productKey=a1b2c3d4e5f&deviceName=dev01";
    CHECK(b.service->handle(r).status == 200);
    CHECK(status_of(b, k_pk, k_dn) == "ONLINE");
  }

  TEST_CASE("faults: refusals change nothing, a lost answer did issue the secret") {
    SUBCASE("--fail-5xx 1: 503 (HTTP 503) or 500, never registered") {
      cloud::ServiceOptions o = CloudBench::no_limits();
      o.faults.fail_5xx = 1;
      CloudBench b(k_scenario, o);
      const std::string before = secret_of(b, k_pk, k_dn);
      std::set<std::string> seen;
      for (int i = 0; i < 12; ++i) {
        const auto r = send_register(b, signed_form(k_pk, k_dn));
        const json j = json::parse(r.body);
        if (r.status == 503) {
          CHECK(j["code"] == 503);
          seen.insert("503");
        } else {
          CHECK(r.status == 200);
          CHECK(j["code"] == 500);
          seen.insert("500");
        }
        CHECK_FALSE(j.contains("data"));
      }
      CHECK(seen.size() == 2);
      CHECK(secret_of(b, k_pk, k_dn) == before);
      // A bad sign is refused before any fault (as the OpenAPI's authentication is).
      const json j = register_json(b, signed_form(k_pk, k_dn, "hmacsha256", "0000000000000000"));
      CHECK(j["code"] == 401);
      const auto c = b.service->counters();
      CHECK(c.fault_5xx == 12);
      CHECK(c.register_issued == 0);
      // The emulator's own control is never faulted.
      CHECK(activate(b, {{"productKey", k_pk}, {"deviceName", k_dn}}).status == 200);
    }
    SUBCASE("--throttle-burst 1: 429, never registered") {
      cloud::ServiceOptions o = CloudBench::no_limits();
      o.faults.throttle_burst = 1;
      CloudBench b(k_scenario, o);
      const std::string before = secret_of(b, k_pk, k_dn);
      const json j = register_json(b, signed_form(k_pk, k_dn));
      CHECK(b.last.status == 200);
      CHECK(j["code"] == 429);
      CHECK(secret_of(b, k_pk, k_dn) == before);
      CHECK(b.service->counters().fault_throttle == 1);
    }
    SUBCASE("--reset 1: no answer, but the new secret is the device's") {
      cloud::ServiceOptions o = CloudBench::no_limits();
      o.faults.reset = 1;
      CloudBench b(k_scenario, o);
      const std::string before = secret_of(b, k_pk, k_dn);
      const auto r = send_register(b, signed_form(k_pk, k_dn));
      CHECK(r.delivery == cloud::Delivery::reset);
      const std::string issued = json::parse(r.body)["data"]["deviceSecret"];
      const std::string now = secret_of(b, k_pk, k_dn);
      CHECK(now == issued);
      CHECK(now != before);
      // The device retries (it never saw the answer): another secret, which now wins.
      const auto again = send_register(b, signed_form(k_pk, k_dn, "hmacmd5"));
      CHECK(again.delivery == cloud::Delivery::reset);
      CHECK(secret_of(b, k_pk, k_dn) == json::parse(again.body)["data"]["deviceSecret"]);
      CHECK(secret_of(b, k_pk, k_dn) != issued);
      // An activated device's registration runs too, and changes nothing.
      const std::string online = secret_of(b, k_pk, "dev-online");
      const auto refused = send_register(b, signed_form(k_pk, "dev-online"));
      CHECK(refused.delivery == cloud::Delivery::reset);
      CHECK(json::parse(refused.body)["code"] == 6289);
      CHECK(secret_of(b, k_pk, "dev-online") == online);
      const auto c = b.service->counters();
      CHECK(c.fault_reset == 3);
      CHECK(c.register_issued == 2);
      CHECK(activate(b, {{"productKey", k_pk}, {"deviceName", k_dn}}).delivery ==
            cloud::Delivery::normal);
    }
    SUBCASE("--truncate 1: half an answer, the registration happened") {
      cloud::ServiceOptions o = CloudBench::no_limits();
      o.faults.truncate = 1;
      CloudBench b(k_scenario, o);
      const auto r = send_register(b, signed_form(k_pk, k_dn));
      CHECK(r.delivery == cloud::Delivery::truncate);
      CHECK(secret_of(b, k_pk, k_dn) == json::parse(r.body)["data"]["deviceSecret"]);
      CHECK(b.service->counters().fault_truncate == 1);
    }
    SUBCASE("--latency-ms 40-60") {
      cloud::ServiceOptions o = CloudBench::no_limits();
      o.faults.latency_min_ms = 40;
      o.faults.latency_max_ms = 60;
      CloudBench b(k_scenario, o);
      for (int i = 0; i < 5; ++i) {
        const auto r = send_register(b, signed_form(k_pk, k_dn));
        CHECK(r.delay.count() >= 40);
        CHECK(r.delay.count() <= 60);
        CHECK(json::parse(r.body)["code"] == 200);
      }
    }
  }

  TEST_CASE("no QPS limit applies to registration (§4 gives none)") {
    cloud::ServiceOptions o; // limits on, every OpenAPI limit scaled to almost nothing
    o.qps_scale = 0.001;
    CloudBench b(k_scenario, o);
    for (int i = 0; i < 30; ++i) {
      CAPTURE(i);
      CHECK(register_json(b, signed_form(k_pk, k_dn))["code"] == 200);
    }
    // The OpenAPI is throttled meanwhile.
    b.json("QueryProduct", {{"ProductKey", k_pk}});
    b.json("QueryProduct", {{"ProductKey", k_pk}});
    CHECK(b.last.code == "Throttling.User");
  }

  TEST_CASE("concurrent registrations of one device: the state holds one issued secret") {
    CloudBench b(k_scenario);
    std::mutex m;
    std::set<std::string> issued;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 10; ++i) {
          const auto r = send_register(
              b, signed_form(k_pk, k_dn, "hmacsha256", k_ps, "r" + std::to_string(t * 100 + i)));
          const json j = json::parse(r.body);
          const std::lock_guard lock(m);
          if (j["code"] == 200) {
            issued.insert(j["data"]["deviceSecret"].get<std::string>());
          }
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    CHECK(issued.size() == 40);
    CHECK(issued.count(secret_of(b, k_pk, k_dn)) == 1);
    CHECK(b.service->counters().register_issued == 40);
  }

  TEST_CASE("scenario: dynamic_register is a boolean, default true, also for older states") {
    const auto bad = cloud::parse_scenario(
        scenario_with(R"([{"product_key": "a1Prod", "dynamic_register": "yes"}])"));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().message.find("dynamic_register") != std::string::npos);
    const auto parsed =
        cloud::parse_scenario(scenario_with(R"([{"product_key": "a1Prod"}, {"product_key": "a1Off",
                           "dynamic_register": false}])"));
    REQUIRE(parsed);
    CHECK(parsed->products[0].dynamic_register);
    CHECK_FALSE(parsed->products[1].dynamic_register);

    CloudBench b(k_scenario);
    CHECK(b.store->product(k_pk)->dynamic_register);
    CHECK_FALSE(b.store->product("a1NoDynReg01")->dynamic_register);
    // A state made before the switch existed has no product_options rows: switched on.
    REQUIRE(b.store->write([](cloud::Conn& c) { c.exec("DELETE FROM product_options"); }));
    const auto reopened = cloud::CloudStore::open(b.dir / "cloud.db");
    REQUIRE(reopened);
    CHECK((*reopened)->product("a1NoDynReg01")->dynamic_register);
  }
}
