// SPDX-License-Identifier: MIT
// Write Actions of the cloud emulator (§2): RegisterDevice, DeleteDevice, DisableThing /
// EnableThing, ResetThing, and the asynchronous custom-name batch registration.
#include "unit/sim/test_cloud_support.hpp"

#include <doctest/doctest.h>

using namespace iot::sim::testing;
using nlohmann::json;

namespace {

const std::string k_scenario = scenario_with(R"([
  {"product_key": "a1MutateProd",
   "devices": [{"name": "dev-online", "status": "ONLINE"},
               {"name": "dev-offline", "status": "OFFLINE"},
               {"name": "dev-unactive", "status": "UNACTIVE"}],
   "generate": {"count": 20}},
  {"product_key": "a1X509Prod01", "auth_type": "x509"}
])");

std::int64_t device_count(CloudBench& b, const std::string& pk) {
  return b.json("QueryProduct", {{"ProductKey", pk}})["Data"]["DeviceCount"].get<std::int64_t>();
}

std::string status(CloudBench& b, const std::string& dn) {
  return b.json("GetDeviceStatus",
                {{"ProductKey", "a1MutateProd"}, {"DeviceName", dn}})["Data"]["Status"];
}

json batch_status(CloudBench& b, std::int64_t apply_id) {
  return b.json("QueryBatchRegisterDeviceStatus",
                {{"ProductKey", "a1MutateProd"}, {"ApplyId", std::to_string(apply_id)}})["Data"];
}

std::vector<std::string> strings(const json& wrapped, const char* element) {
  std::vector<std::string> out;
  for (const json& s : wrapped[element]) {
    out.push_back(s.get<std::string>());
  }
  return out;
}

} // namespace

TEST_SUITE("sim::cloud mutations") {
  TEST_CASE("RegisterDevice: a new device with a 32-character secret, newest in QueryDevice") {
    CloudBench b(k_scenario);
    json j = b.json(
        "RegisterDevice",
        {{"ProductKey", "a1MutateProd"}, {"DeviceName", "new-dev-01"}, {"Nickname", "bench_01"}});
    REQUIRE(j["Success"] == true);
    const json d = j["Data"];
    CHECK(d["DeviceName"] == "new-dev-01");
    CHECK(d["ProductKey"] == "a1MutateProd");
    CHECK(d["DeviceSecret"].get<std::string>().size() == 32);
    CHECK_FALSE(d["IotId"].get<std::string>().empty());
    CHECK(device_count(b, "a1MutateProd") == 24);
    j = b.json("QueryDevice", {{"ProductKey", "a1MutateProd"}, {"PageSize", "1"}});
    CHECK(j["Data"]["DeviceInfo"][0]["DeviceName"] == "new-dev-01");
    CHECK(j["Data"]["DeviceInfo"][0]["DeviceSecret"] == d["DeviceSecret"]);
    CHECK(j["Data"]["DeviceInfo"][0]["DeviceStatus"] == "UNACTIVE");
    // Same name again: business error, nothing created.
    j = b.json("RegisterDevice", {{"ProductKey", "a1MutateProd"}, {"DeviceName", "new-dev-01"}});
    CHECK(b.last.status == 200);
    CHECK(j["Code"] == "iot.device.AlreadyExistedDeviceName");
    CHECK(device_count(b, "a1MutateProd") == 24);
    // Invalid names (§7: 4-32 of [A-Za-z0-9_-@.:]).
    for (const char* bad :
         {"abc", "has space", "semi;colon", "012345678901234567890123456789012"}) {
      CAPTURE(bad);
      j = b.json("RegisterDevice", {{"ProductKey", "a1MutateProd"}, {"DeviceName", bad}});
      CHECK(j["Code"] == "iot.device.InvalidFormattedDeviceName");
    }
    CHECK(device_count(b, "a1MutateProd") == 24);
  }

  TEST_CASE("RegisterDevice without DeviceName: the platform picks one") {
    CloudBench b(k_scenario);
    const json j = b.json("RegisterDevice", {{"ProductKey", "a1MutateProd"}});
    REQUIRE(j["Success"] == true);
    CHECK(j["Data"]["DeviceName"].get<std::string>().size() == 20);
    CHECK(device_count(b, "a1MutateProd") == 24);
  }

  TEST_CASE("DeleteDevice") {
    CloudBench b(k_scenario);
    json j =
        b.json("DeleteDevice", {{"ProductKey", "a1MutateProd"}, {"DeviceName", "dev-offline"}});
    CHECK(j["Success"] == true);
    CHECK(device_count(b, "a1MutateProd") == 22);
    j = b.json("DeleteDevice", {{"ProductKey", "a1MutateProd"}, {"DeviceName", "dev-offline"}});
    CHECK(j["Code"] == "iot.device.NotExistedDevice");
    j = b.json("QueryDeviceByStatus", {{"ProductKey", "a1MutateProd"}, {"Status", "3"}});
    CHECK(j["Total"] == 0);
  }

  TEST_CASE("DisableThing / EnableThing / ResetThing status transitions") {
    CloudBench b(k_scenario);
    auto call = [&](const char* action, const char* dn) {
      return b.json(action, {{"ProductKey", "a1MutateProd"}, {"DeviceName", dn}});
    };
    CHECK(call("DisableThing", "dev-online")["Success"] == true);
    CHECK(status(b, "dev-online") == "DISABLE");
    CHECK(b.json("QueryDeviceByStatus",
                 {{"ProductKey", "a1MutateProd"}, {"Status", "8"}})["Total"] == 1);
    CHECK(call("DisableThing", "dev-online")["Success"] == true); // idempotent
    CHECK(call("EnableThing", "dev-online")["Success"] == true);
    CHECK(status(b, "dev-online") == "OFFLINE"); // disabling disconnected it
    CHECK(call("EnableThing", "dev-unactive")["Success"] == true);
    CHECK(status(b, "dev-unactive") == "UNACTIVE");
    const json r = call("ResetThing", "dev-offline");
    CHECK(r["Success"] == true);
    CHECK_FALSE(r["JobId"].get<std::string>().empty());
    CHECK(status(b, "dev-offline") == "UNACTIVE");
    const json d = b.json("QueryDeviceDetail",
                          {{"ProductKey", "a1MutateProd"}, {"DeviceName", "dev-offline"}});
    CHECK_FALSE(d["Data"].contains("UtcActive"));
    CHECK(call("EnableThing", "no-such-device")["Code"] == "iot.device.NotExistedDevice");
  }

  TEST_CASE("batch registration: CHECK → CHECK_SUCCESS → CREATE → CREATE_SUCCESS → secrets") {
    iot::sim::cloud::ServiceOptions options = CloudBench::no_limits();
    options.batch_delay_ms = 2000;
    CloudBench b(k_scenario, options);
    json j = b.json("BatchCheckDeviceNames",
                    {{"ProductKey", "a1MutateProd"},
                     {"DeviceName.1", "batch-001"},
                     {"DeviceName.2", "batch-002"},
                     {"DeviceName.3", "batch-003"}});
    REQUIRE(j["Success"] == true);
    const std::int64_t apply_id = j["Data"]["ApplyId"];
    CHECK(j["Data"]["InvalidDeviceNameList"]["InvalidDeviceName"].empty());
    CHECK(batch_status(b, apply_id)["Status"] == "CHECK");
    // Not creatable while checking.
    j = b.json("BatchRegisterDeviceWithApplyId",
               {{"ProductKey", "a1MutateProd"}, {"ApplyId", std::to_string(apply_id)}});
    CHECK(j["Code"] == "iot.device.CreateDeviceTaskIsRunning");
    b.now_ms += 1999;
    CHECK(batch_status(b, apply_id)["Status"] == "CHECK");
    b.now_ms += 1;
    json s = batch_status(b, apply_id);
    CHECK(s["Status"] == "CHECK_SUCCESS");
    CHECK(strings(s["ValidList"], "Name") ==
          std::vector<std::string>{"batch-001", "batch-002", "batch-003"});
    CHECK(s["InvalidList"]["Name"].empty());
    j = b.json("BatchRegisterDeviceWithApplyId",
               {{"ProductKey", "a1MutateProd"}, {"ApplyId", std::to_string(apply_id)}});
    REQUIRE(j["Success"] == true);
    CHECK(j["Data"]["ApplyId"] == apply_id);
    CHECK(batch_status(b, apply_id)["Status"] == "CREATE");
    CHECK(device_count(b, "a1MutateProd") == 23); // nothing yet
    j = b.json("QueryPageByApplyId", {{"ApplyId", std::to_string(apply_id)}});
    CHECK(j["Total"] == 0);
    b.now_ms += 2000;
    CHECK(batch_status(b, apply_id)["Status"] == "CREATE_SUCCESS");
    CHECK(device_count(b, "a1MutateProd") == 26);
    j = b.json("QueryPageByApplyId",
               {{"ApplyId", std::to_string(apply_id)}, {"PageSize", "2"}, {"CurrentPage", "1"}});
    REQUIRE(j["Success"] == true);
    CHECK(j["Total"] == 3);
    CHECK(j["PageCount"] == 2);
    const json& list = j["ApplyDeviceList"]["ApplyDeviceInfo"];
    REQUIRE(list.size() == 2);
    CHECK(list[0]["DeviceName"] == "batch-001");
    CHECK(list[0]["DeviceSecret"].get<std::string>().size() == 32);
    const json detail =
        b.json("QueryDeviceDetail", {{"ProductKey", "a1MutateProd"}, {"DeviceName", "batch-001"}});
    CHECK(detail["Data"]["DeviceSecret"] == list[0]["DeviceSecret"]);
    CHECK(detail["Data"]["IotId"] == list[0]["IotId"]);
    // Asking again creates nothing more.
    j = b.json("BatchRegisterDeviceWithApplyId",
               {{"ProductKey", "a1MutateProd"}, {"ApplyId", std::to_string(apply_id)}});
    CHECK(j["Success"] == true);
    b.now_ms += 5000;
    CHECK(device_count(b, "a1MutateProd") == 26);
  }

  TEST_CASE("batch registration completes without being polled (tick)") {
    CloudBench b(k_scenario);
    json j = b.json("BatchCheckDeviceNames",
                    {{"ProductKey", "a1MutateProd"}, {"DeviceName.1", "quiet-001"}});
    const std::int64_t apply_id = j["Data"]["ApplyId"];
    b.now_ms += 1000;
    b.service->tick();
    b.json("BatchRegisterDeviceWithApplyId",
           {{"ProductKey", "a1MutateProd"}, {"ApplyId", std::to_string(apply_id)}});
    CHECK(b.last.code.empty());
    b.now_ms += 1000;
    b.service->tick();
    // The device exists (read straight from the state, no batch call in between).
    const auto found = b.store->read([](iot::sim::cloud::Conn& c) {
      return iot::sim::cloud::CloudStore::device(c, "a1MutateProd", "quiet-001").has_value();
    });
    REQUIRE(found);
    CHECK(*found);
  }

  TEST_CASE("batch registration: invalid, repeated and existing names fail the check") {
    CloudBench b(k_scenario);
    json j = b.json("BatchCheckDeviceNames",
                    {{"ProductKey", "a1MutateProd"},
                     {"DeviceNameList.1.DeviceName", "good-0001"},
                     {"DeviceNameList.1.DeviceNickname", "nick_ok"},
                     {"DeviceNameList.2.DeviceName", "b@d name"},
                     {"DeviceNameList.3.DeviceName", "dev-online"},
                     {"DeviceNameList.4.DeviceName", "good-0001"},
                     {"DeviceNameList.5.DeviceName", "good-0005"},
                     {"DeviceNameList.5.DeviceNickname", "x!"},
                     {"DeviceName.1", "ignored-when-the-list-form-is-present"}});
    REQUIRE(j["Success"] == true);
    const std::int64_t apply_id = j["Data"]["ApplyId"];
    CHECK(strings(j["Data"]["InvalidDeviceNameList"], "InvalidDeviceName") ==
          std::vector<std::string>{"b@d name"});
    CHECK(strings(j["Data"]["InvalidDeviceNicknameList"], "InvalidDeviceNickname") ==
          std::vector<std::string>{"x!"});
    CHECK_FALSE(j["Data"].contains("InvalidDetailList")); // not in the SDK's model
    b.now_ms += 1000;
    const json s = batch_status(b, apply_id);
    CHECK(s["Status"] == "CHECK_FAILED");
    CHECK(strings(s["InvalidList"], "Name") ==
          std::vector<std::string>{"b@d name", "dev-online", "good-0001", "good-0005"});
    CHECK(strings(s["ValidList"], "Name") == std::vector<std::string>{"good-0001"});
    CHECK_FALSE(s.contains("InvalidDetailList"));
    j = b.json("BatchRegisterDeviceWithApplyId",
               {{"ProductKey", "a1MutateProd"}, {"ApplyId", std::to_string(apply_id)}});
    CHECK(j["Success"] == false);
    CHECK(device_count(b, "a1MutateProd") == 23);
  }

  TEST_CASE("batch registration: a name registered between CHECK and CREATE fails it all") {
    CloudBench b(k_scenario);
    json j = b.json("BatchCheckDeviceNames",
                    {{"ProductKey", "a1MutateProd"},
                     {"DeviceName.1", "race-0001"},
                     {"DeviceName.2", "race-0002"}});
    const std::int64_t apply_id = j["Data"]["ApplyId"];
    b.now_ms += 1000;
    CHECK(batch_status(b, apply_id)["Status"] == "CHECK_SUCCESS");
    b.json("BatchRegisterDeviceWithApplyId",
           {{"ProductKey", "a1MutateProd"}, {"ApplyId", std::to_string(apply_id)}});
    b.json("RegisterDevice", {{"ProductKey", "a1MutateProd"}, {"DeviceName", "race-0002"}});
    b.now_ms += 1000;
    const json s = batch_status(b, apply_id);
    CHECK(s["Status"] == "CREATE_FAILED");
    CHECK(strings(s["InvalidList"], "Name") == std::vector<std::string>{"race-0002"});
    CHECK(device_count(b, "a1MutateProd") == 24); // only the RegisterDevice one
  }

  TEST_CASE("batch registration: unknown ApplyId, excess names dropped") {
    CloudBench b(k_scenario);
    json j = b.json("QueryBatchRegisterDeviceStatus",
                    {{"ProductKey", "a1MutateProd"}, {"ApplyId", "42"}});
    CHECK(j["Code"] == "iot.device.DeviceApplyIsNotFound");
    j = b.json("QueryPageByApplyId", {{"ApplyId", "42"}});
    CHECK(j["Code"] == "iot.device.DeviceApplyIsNotFound");
    // X.509 products take 1 000 names per check; the rest is silently dropped.
    Fields many{{"ProductKey", "a1X509Prod01"}};
    for (int i = 1; i <= 1001; ++i) {
      many["DeviceName." + std::to_string(i)] = "x509-" + std::to_string(100000 + i);
    }
    j = b.json("BatchCheckDeviceNames", many);
    REQUIRE(j["Success"] == true);
    const std::int64_t apply_id = j["Data"]["ApplyId"];
    b.now_ms += 1000;
    j = b.json("QueryBatchRegisterDeviceStatus",
               {{"ProductKey", "a1X509Prod01"}, {"ApplyId", std::to_string(apply_id)}});
    CHECK(j["Data"]["Status"] == "CHECK_SUCCESS");
    CHECK(j["Data"]["ValidList"]["Name"].size() == 1000);
    // The apply belongs to its product.
    j = b.json("QueryBatchRegisterDeviceStatus",
               {{"ProductKey", "a1MutateProd"}, {"ApplyId", std::to_string(apply_id)}});
    CHECK(j["Code"] == "iot.device.DeviceApplyIsNotFound");
  }

  TEST_CASE("state is shared: a second store on the same file sees the changes") {
    CloudBench b(k_scenario);
    b.json("RegisterDevice", {{"ProductKey", "a1MutateProd"}, {"DeviceName", "persisted-1"}});
    auto again = iot::sim::cloud::CloudStore::open(b.dir / "cloud.db");
    REQUIRE(again);
    CHECK((*again)->seeded());
    const auto found = (*again)->read([](iot::sim::cloud::Conn& c) {
      return iot::sim::cloud::CloudStore::device(c, "a1MutateProd", "persisted-1").has_value();
    });
    REQUIRE(found);
    CHECK(*found);
    // Seeding an already seeded state is refused.
    auto scenario = iot::sim::cloud::parse_scenario(k_scenario);
    REQUIRE(scenario);
    CHECK_FALSE((*again)->seed(*scenario, 1));
  }
}
