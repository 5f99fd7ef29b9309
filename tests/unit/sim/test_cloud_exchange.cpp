// SPDX-License-Identifier: MIT
// The exchange log (--exchange-log, docs/cloud-emulator.md): one NDJSON line per OpenAPI
// exchange, common parameters left out, every secret masked with a value of its JSON type.
#include "sim/cloud_exchange.hpp"
#include "unit/sim/test_cloud_support.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <vector>

using namespace iot::sim::testing;
using iot::sim::cloud::Exchange;
using iot::sim::cloud::ExchangeLog;
using nlohmann::json;

namespace {

const std::string k_scenario = scenario_with(R"([
  {"product_key": "a1ExchProd", "product_secret": "PsExch0000000001",
   "devices": [{"name": "dev-one", "secret": "ds0000000000000000000000000000e1",
                "status": "ONLINE"}]}
])");

std::vector<json> lines_of(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<json> out;
  for (std::string line; std::getline(in, line);) {
    out.push_back(json::parse(line));
  }
  return out;
}

} // namespace

TEST_SUITE("sim::cloud exchange log") {
  TEST_CASE("secret members are masked at any depth, keeping their JSON type") {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(R"({
      "Data": {"DeviceSecret": "abc", "List": [{"ProductSecret": "x", "Name": "n"}],
               "Signature": "sig", "Policy": "p", "NextToken": "t"},
      "SomeSecretNumber": 7, "AccessKeySecret": {"a": "b", "c": [1, true]}, "Password": false})");
    iot::sim::cloud::mask_secrets(j);
    CHECK(j["Data"]["DeviceSecret"] == "***");
    CHECK(j["Data"]["List"][0]["ProductSecret"] == "***");
    CHECK(j["Data"]["List"][0]["Name"] == "n");
    CHECK(j["Data"]["Signature"] == "***");
    CHECK(j["Data"]["Policy"] == "p");
    CHECK(j["Data"]["NextToken"] == "t");
    CHECK(j["SomeSecretNumber"] == 0);
    CHECK(j["AccessKeySecret"]["a"] == "***");
    CHECK(j["AccessKeySecret"]["c"][0] == 0);
    CHECK(j["AccessKeySecret"]["c"][1] == false);
    CHECK(j["Password"] == false);
  }

  TEST_CASE("a line: the Action's own parameters, the sender, the status and the answer") {
    const std::map<std::string, std::string> params{{"Action", "QueryDevice"},
                                                    {"AccessKeyId", "LTAI"},
                                                    {"Signature", "s"},
                                                    {"SignatureNonce", "n"},
                                                    {"SignatureMethod", "HMAC-SHA1"},
                                                    {"SignatureVersion", "1.0"},
                                                    {"Timestamp", "t"},
                                                    {"Format", "JSON"},
                                                    {"Version", "2018-01-20"},
                                                    {"RegionId", "cn-shanghai"},
                                                    {"SecurityToken", "sts"},
                                                    {"IotInstanceId", "iot-1"},
                                                    {"ProductKey", "pk"},
                                                    {"DeviceSecret", "shh"}};
    const std::string body = R"({"RequestId":"R","Success":true,"Data":{"DeviceSecret":"d"}})";
    const json line = json::parse(iot::sim::cloud::exchange_line(Exchange{
        .action = "QueryDevice",
        .method = "POST",
        .user_agent = "iotfleet/1.2.3",
        .params = &params,
        .status = 200,
        .code = "",
        .delivery = "normal",
        .body = body,
    }));
    CHECK(line["action"] == "QueryDevice");
    CHECK(line["client"] == "iotfleet");
    CHECK(line["params"] ==
          json{{"IotInstanceId", "iot-1"}, {"ProductKey", "pk"}, {"DeviceSecret", "***"}});
    CHECK(line["status"] == 200);
    CHECK(line["response"]["Data"]["DeviceSecret"] == "***");
    CHECK(line.dump().find("shh") == std::string::npos);
    CHECK(iot::sim::cloud::exchange_client("curl/7.88.1") == "other");
    CHECK(iot::sim::cloud::exchange_client("") == "other");
  }

  TEST_CASE("the service logs every OpenAPI exchange, refusals too, never a secret") {
    CloudBench b(k_scenario);
    const auto path = b.dir / "exchanges.ndjson";
    auto log = ExchangeLog::open(path.string());
    REQUIRE(log);
    b.service->set_exchange_log(log->get());
    json j = b.json("QueryDeviceDetail", {{"ProductKey", "a1ExchProd"}, {"DeviceName", "dev-one"}});
    REQUIRE(j["Success"] == true);
    j = b.json("QueryProduct", {{"ProductKey", "a1ExchProd"}});
    REQUIRE(j["Success"] == true);
    Call wrong_secret;
    wrong_secret.secret = "wrong";
    (void)b.call("QueryProduct", {{"ProductKey", "a1ExchProd"}}, wrong_secret);
    (void)b.json("NoSuchAction", {});
    const auto lines = lines_of(path);
    REQUIRE(lines.size() == 4);
    CHECK(lines[0]["action"] == "QueryDeviceDetail");
    CHECK(lines[0]["client"] == "other"); // the bench sends no User-Agent
    CHECK(lines[0]["params"] == json{{"DeviceName", "dev-one"}, {"ProductKey", "a1ExchProd"}});
    CHECK(lines[0]["response"]["Data"]["DeviceSecret"] == "***");
    CHECK(lines[0]["response"]["Data"]["DeviceName"] == "dev-one");
    CHECK(lines[1]["response"]["Data"]["ProductSecret"] == "***");
    CHECK(lines[2]["status"] == 400);
    CHECK(lines[2]["code"] == "SignatureDoesNotMatch");
    CHECK(lines[3]["action"] == "NoSuchAction");
    CHECK(lines[3]["status"] == 404);
    std::ifstream in(path);
    std::stringstream all;
    all << in.rdbuf();
    CHECK(all.str().find("ds0000000000000000000000000000e1") == std::string::npos);
    CHECK(all.str().find("PsExch0000000001") == std::string::npos);
    CHECK(all.str().find(std::string(k_secret)) == std::string::npos);
  }

  TEST_CASE("an unwritable exchange log is refused at start") {
    CHECK_FALSE(ExchangeLog::open("/nonexistent-dir/x.ndjson"));
  }
}
