// SPDX-License-Identifier: MIT
// Read Actions of the cloud emulator against §2: QueryDevice paging and NextToken,
// QueryDeviceDetail, BatchQueryDeviceDetail, BatchGetDeviceState, QueryDeviceByStatus,
// GetDeviceStatus, QueryProduct, QueryProductList.
#include "unit/sim/test_cloud_support.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace iot::sim::testing;
using nlohmann::json;

namespace {

const std::string k_small = scenario_with(R"([
  {"product_key": "a1SmallProd", "name": "Small", "product_secret": "PsSmall000000001",
   "node_type": 1, "net_type": 3, "aliyun_commodity_code": "iothub",
   "devices": [
     {"name": "dev-known-1", "secret": "ds0000000000000000000000000000a1", "status": "ONLINE",
      "nickname": "known_one", "firmware": "1.2.3"},
     {"name": "dev-known-2", "status": "UNACTIVE"},
     {"name": "dev-known-3", "status": "DISABLE"}
   ],
   "generate": {"count": 97, "names": "sequence", "prefix": "small-", "digits": 4,
                "status": {"ONLINE": 50, "OFFLINE": 30, "UNACTIVE": 15, "DISABLE": 5}}},
  {"product_key": "a1OtherProd", "name": "Other", "generate": {"count": 5}}
])");

const std::string k_big = scenario_with(R"([
  {"product_key": "a1BigProduct", "generate": {"count": 10060, "names": "imei"}},
  {"product_key": "a1OtherProd", "generate": {"count": 3}}
])");

std::vector<std::string> names_of(const json& list) {
  std::vector<std::string> out;
  for (const json& d : list) {
    out.push_back(d["DeviceName"].get<std::string>());
  }
  return out;
}

} // namespace

TEST_SUITE("sim::cloud queries") {
  TEST_CASE("QueryDevice: defaults, page fields, newest first") {
    CloudBench b(k_small);
    json j = b.json("QueryDevice", {{"ProductKey", "a1SmallProd"}});
    CHECK(j["Success"] == true);
    CHECK(j["Total"] == 100);
    CHECK(j["PageSize"] == 10);
    CHECK(j["Page"] == 1);
    CHECK(j["PageCount"] == 10);
    const json& list = j["Data"]["DeviceInfo"];
    REQUIRE(list.size() == 10);
    CHECK(list[0]["DeviceName"] == "small-0097"); // the last one created
    for (std::size_t i = 1; i < list.size(); ++i) {
      CHECK(list[i - 1]["UtcCreate"].get<std::string>() > list[i]["UtcCreate"].get<std::string>());
    }
    for (const char* field : {"DeviceName",
                              "DeviceSecret",
                              "DeviceStatus",
                              "IotId",
                              "ProductKey",
                              "Nickname",
                              "GmtCreate",
                              "GmtModified",
                              "UtcCreate",
                              "UtcModified",
                              "DeviceId",
                              "DeviceType"}) {
      CAPTURE(field);
      CHECK(list[0].contains(field));
    }
    // Gmt* in QueryDevice: "Wed, 20-Feb-2019 02:16:09 GMT".
    const std::string gmt = list[0]["GmtCreate"];
    CHECK(gmt.size() == 29);
    CHECK(gmt.ends_with(" GMT"));
    // The last page is short; past the end is empty.
    j = b.json("QueryDevice",
               {{"ProductKey", "a1SmallProd"}, {"PageSize", "30"}, {"CurrentPage", "4"}});
    CHECK(j["Data"]["DeviceInfo"].size() == 10);
    CHECK(j["NextToken"] == "");
    CHECK(names_of(j["Data"]["DeviceInfo"]).back() == "dev-known-1"); // the oldest
    j = b.json("QueryDevice",
               {{"ProductKey", "a1SmallProd"}, {"PageSize", "30"}, {"CurrentPage", "5"}});
    CHECK(j["Success"] == true);
    CHECK(j["Data"]["DeviceInfo"].empty());
  }

  TEST_CASE("QueryDevice: PageSize 1..50, CurrentPage >= 1, else iot.common.InvalidPageParams") {
    CloudBench b(k_small);
    for (const auto& [size, page] : std::vector<std::pair<std::string, std::string>>{
             {"51", "1"}, {"0", "1"}, {"abc", "1"}, {"10", "0"}, {"10", "-1"}}) {
      CAPTURE(size);
      CAPTURE(page);
      const json j =
          b.json("QueryDevice",
                 {{"ProductKey", "a1SmallProd"}, {"PageSize", size}, {"CurrentPage", page}});
      CHECK(b.last.status == 200);
      CHECK(j["Success"] == false);
      CHECK(j["Code"] == "iot.common.InvalidPageParams");
    }
    const json j = b.json("QueryDevice", {{"ProductKey", "a1SmallProd"}, {"PageSize", "50"}});
    CHECK(j["Data"]["DeviceInfo"].size() == 50);
  }

  TEST_CASE("QueryDevice: NextToken required past 10 000 rows, and it walks the whole product") {
    CloudBench b(k_big);
    // 50 × 200 = 10 000 is the last page reachable without a token.
    json j = b.json("QueryDevice",
                    {{"ProductKey", "a1BigProduct"}, {"PageSize", "50"}, {"CurrentPage", "200"}});
    CHECK(j["Success"] == true);
    CHECK(j["Data"]["DeviceInfo"].size() == 50);
    j = b.json("QueryDevice",
               {{"ProductKey", "a1BigProduct"}, {"PageSize", "50"}, {"CurrentPage", "201"}});
    CHECK(j["Success"] == false);
    CHECK(j["Code"] == "iot.common.InvalidPageParams");

    std::set<std::string> seen;
    std::vector<std::string> order;
    std::string token;
    int page = 1;
    int calls = 0;
    for (;;) {
      Fields p{{"ProductKey", "a1BigProduct"},
               {"PageSize", "50"},
               {"CurrentPage", std::to_string(page)}};
      if (!token.empty()) {
        p["NextToken"] = token;
      }
      j = b.json("QueryDevice", p);
      REQUIRE(j["Success"] == true);
      ++calls;
      CHECK(j["Page"] == page);
      CHECK(j["Total"] == 10060);
      CHECK(j["PageCount"] == 202);
      for (const std::string& n : names_of(j["Data"]["DeviceInfo"])) {
        CHECK(seen.insert(n).second);
        order.push_back(n);
      }
      token = j["NextToken"];
      if (token.empty()) {
        break;
      }
      ++page;
      REQUIRE(calls < 300);
    }
    CHECK(seen.size() == 10060);
    CHECK(calls == 202);
    // Same order as offset paging where both are allowed.
    j = b.json("QueryDevice",
               {{"ProductKey", "a1BigProduct"}, {"PageSize", "50"}, {"CurrentPage", "3"}});
    CHECK(names_of(j["Data"]["DeviceInfo"]) ==
          std::vector<std::string>(order.begin() + 100, order.begin() + 150));
  }

  TEST_CASE("QueryDevice: a bad or foreign NextToken is refused") {
    CloudBench b(k_big);
    json j = b.json("QueryDevice", {{"ProductKey", "a1BigProduct"}, {"PageSize", "50"}});
    const std::string token = j["NextToken"];
    REQUIRE(token.size() == 40);
    std::string tampered = token;
    tampered[5] = tampered[5] == '0' ? '1' : '0';
    j = b.json("QueryDevice",
               {{"ProductKey", "a1BigProduct"},
                {"PageSize", "50"},
                {"CurrentPage", "2"},
                {"NextToken", tampered}});
    CHECK(j["Code"] == "iot.common.InvalidPageParams");
    j = b.json("QueryDevice",
               {{"ProductKey", "a1OtherProd"},
                {"PageSize", "50"},
                {"CurrentPage", "2"},
                {"NextToken", token}});
    CHECK(j["Code"] == "iot.common.InvalidPageParams");
    // With a token, PageSize × CurrentPage must stay below 1 000 000.
    j = b.json("QueryDevice",
               {{"ProductKey", "a1BigProduct"},
                {"PageSize", "50"},
                {"CurrentPage", "20000"},
                {"NextToken", token}});
    CHECK(j["Code"] == "iot.common.InvalidPageParams");
  }

  TEST_CASE("QueryDeviceDetail: PK+DN or IotId (which wins), all fields") {
    CloudBench b(k_small);
    json j =
        b.json("QueryDeviceDetail", {{"ProductKey", "a1SmallProd"}, {"DeviceName", "dev-known-1"}});
    REQUIRE(j["Success"] == true);
    const json d = j["Data"];
    CHECK(d["DeviceSecret"] == "ds0000000000000000000000000000a1");
    CHECK(d["ProductName"] == "Small");
    CHECK(d["Status"] == "ONLINE");
    CHECK(d["Nickname"] == "known_one");
    CHECK(d["FirmwareVersion"] == "1.2.3");
    CHECK(d["NodeType"] == 1);
    CHECK(d["Region"] == "cn-shanghai");
    CHECK(d["Owner"] == true);
    CHECK_FALSE(d["IpAddress"].get<std::string>().empty());
    // GmtActive is the UTC+8 wall clock of UtcActive.
    const std::string utc = d["UtcActive"];
    const std::string gmt = d["GmtActive"];
    REQUIRE(utc.size() == 24);
    REQUIRE(gmt.size() == 19);
    CHECK(utc.substr(0, 10) <= gmt.substr(0, 10));
    CHECK(d.contains("GmtOnline"));
    CHECK(d.contains("UtcOnline"));
    const std::string iot_id = d["IotId"];
    j = b.json("QueryDeviceDetail",
               {{"IotId", iot_id}, {"ProductKey", "a1SmallProd"}, {"DeviceName", "dev-known-2"}});
    CHECK(j["Data"]["DeviceName"] == "dev-known-1");
    j = b.json("QueryDeviceDetail", {{"ProductKey", "a1SmallProd"}, {"DeviceName", "dev-known-2"}});
    CHECK(j["Data"]["Status"] == "UNACTIVE");
    CHECK_FALSE(j["Data"].contains("UtcActive"));
    j = b.json("QueryDeviceDetail", {{"ProductKey", "a1SmallProd"}, {"DeviceName", "nobody-here"}});
    CHECK(b.last.status == 200);
    CHECK(j["Code"] == "iot.device.NotExistedDevice");
    j = b.json("QueryDeviceDetail", {{"IotId", "NoSuchIotId0000000000000100"}});
    CHECK(j["Code"] == "iot.device.NotExistedDevice");
    j = b.json("QueryDeviceDetail", {{"ProductKey", "a1SmallProd"}});
    CHECK(j["Code"] == "MissingParameter");
  }

  TEST_CASE("BatchQueryDeviceDetail: unknown names dropped, no IpAddress/GmtOnline, ≤ 100") {
    CloudBench b(k_small);
    json j = b.json("BatchQueryDeviceDetail",
                    {{"ProductKey", "a1SmallProd"},
                     {"DeviceName.1", "dev-known-1"},
                     {"DeviceName.2", "not-a-device"},
                     {"DeviceName.3", "small-0001"}});
    REQUIRE(j["Success"] == true);
    const json& list = j["Data"]["Data"];
    CHECK(names_of(list) == std::vector<std::string>{"dev-known-1", "small-0001"});
    CHECK(list[0]["DeviceSecret"] == "ds0000000000000000000000000000a1");
    CHECK_FALSE(list[0].contains("IpAddress"));
    CHECK_FALSE(list[0].contains("GmtOnline"));
    CHECK(list[0].contains("UtcActive"));
    Fields many{{"ProductKey", "a1SmallProd"}};
    for (int i = 1; i <= 101; ++i) {
      many["DeviceName." + std::to_string(i)] = "small-" + std::to_string(1000 + i);
    }
    j = b.json("BatchQueryDeviceDetail", many);
    CHECK(b.last.status == 400);
    CHECK(j["Code"] == "InvalidParameter");
    many.erase("DeviceName.101");
    j = b.json("BatchQueryDeviceDetail", many);
    CHECK(j["Success"] == true);
  }

  TEST_CASE("BatchGetDeviceState: by names or IotIds, ≤ 50") {
    CloudBench b(k_small);
    json j = b.json("BatchGetDeviceState",
                    {{"ProductKey", "a1SmallProd"},
                     {"DeviceName.1", "dev-known-1"},
                     {"DeviceName.2", "dev-known-3"}});
    REQUIRE(j["Success"] == true);
    const json& list = j["DeviceStatusList"]["DeviceStatus"];
    REQUIRE(list.size() == 2);
    CHECK(list[0]["Status"] == "ONLINE");
    CHECK(list[1]["Status"] == "DISABLE");
    CHECK_FALSE(list[0].contains("Timestamp")); // not in the SDK's DeviceStatus model
    CHECK_FALSE(list[0]["AsAddress"].get<std::string>().empty());
    const std::string iot_id = list[1]["IotId"];
    j = b.json("BatchGetDeviceState", {{"IotId.1", iot_id}});
    CHECK(j["DeviceStatusList"]["DeviceStatus"][0]["DeviceName"] == "dev-known-3");
    Fields many{{"ProductKey", "a1SmallProd"}};
    for (int i = 1; i <= 51; ++i) {
      many["DeviceName." + std::to_string(i)] = "small-" + std::to_string(1000 + i);
    }
    b.json("BatchGetDeviceState", many);
    CHECK(b.last.code == "InvalidParameter");
  }

  TEST_CASE("QueryDeviceByStatus: exact totals of the status mix, paging") {
    CloudBench b(k_small);
    // 97 generated at 50/30/15/5 → 48.5/29.1/14.55/4.85 → largest remainder 48/29/15/5, plus the
    // three listed devices (ONLINE, UNACTIVE, DISABLE).
    const std::vector<std::pair<std::string, int>> expected{
        {"1", 49}, {"3", 29}, {"0", 16}, {"8", 6}};
    for (const auto& [code, total] : expected) {
      CAPTURE(code);
      const json j = b.json("QueryDeviceByStatus",
                            {{"ProductKey", "a1SmallProd"}, {"Status", code}, {"PageSize", "50"}});
      REQUIRE(j["Success"] == true);
      CHECK(j["Total"] == total);
      const json& list = j["Data"]["SimpleDeviceInfo"];
      CHECK(list.size() == static_cast<std::size_t>(std::min(total, 50)));
      const std::string want = code == "1"   ? "ONLINE"
                               : code == "3" ? "OFFLINE"
                               : code == "0" ? "UNACTIVE"
                                             : "DISABLE";
      for (const json& d : list) {
        CHECK(d["Status"] == want);
        CHECK(d.contains("DeviceSecret"));
      }
    }
    // Page 2 of ONLINE continues page 1 without overlap.
    const json p1 = b.json(
        "QueryDeviceByStatus",
        {{"ProductKey", "a1SmallProd"}, {"Status", "1"}, {"PageSize", "30"}, {"CurrentPage", "1"}});
    const json p2 = b.json(
        "QueryDeviceByStatus",
        {{"ProductKey", "a1SmallProd"}, {"Status", "1"}, {"PageSize", "30"}, {"CurrentPage", "2"}});
    std::set<std::string> all;
    for (const auto& n : names_of(p1["Data"]["SimpleDeviceInfo"])) {
      all.insert(n);
    }
    for (const auto& n : names_of(p2["Data"]["SimpleDeviceInfo"])) {
      all.insert(n);
    }
    CHECK(all.size() == 49);
    CHECK(p2["PageCount"] == 2);
    b.json("QueryDeviceByStatus", {{"ProductKey", "a1SmallProd"}, {"Status", "2"}});
    CHECK(b.last.code == "InvalidParameter");
    b.json("QueryDeviceByStatus",
           {{"ProductKey", "a1SmallProd"}, {"Status", "1"}, {"PageSize", "51"}});
    CHECK(b.last.code == "iot.common.InvalidPageParams");
  }

  TEST_CASE("GetDeviceStatus") {
    CloudBench b(k_small);
    const json j =
        b.json("GetDeviceStatus", {{"ProductKey", "a1SmallProd"}, {"DeviceName", "dev-known-3"}});
    CHECK(j["Data"]["Status"] == "DISABLE");
    CHECK(j["Data"]["Timestamp"].get<std::int64_t>() > 1'600'000'000'000);
  }

  TEST_CASE("QueryProduct: ProductSecret and DeviceCount") {
    CloudBench b(k_small);
    const json j = b.json("QueryProduct", {{"ProductKey", "a1SmallProd"}});
    const json& d = j["Data"];
    CHECK(d["ProductSecret"] == "PsSmall000000001");
    CHECK(d["DeviceCount"] == 100);
    CHECK(d["NodeType"] == 1);
    CHECK(d["NetType"] == 3);
    CHECK(d["AuthType"] == "secret");
    CHECK(d["AliyunCommodityCode"] == "iothub");
    CHECK(d["GmtCreate"].is_number_integer());
    // A generated product secret: 16 alphanumerics.
    const json k = b.json("QueryProduct", {{"ProductKey", "a1OtherProd"}});
    CHECK(k["Data"]["ProductSecret"].get<std::string>().size() == 16);
  }

  TEST_CASE("QueryProductList: no ProductSecret, filter, PageSize 1..200, past the end empty") {
    CloudBench b(k_small);
    json j = b.json("QueryProductList", {{"CurrentPage", "1"}, {"PageSize", "200"}});
    REQUIRE(j["Success"] == true);
    CHECK(j["Data"]["Total"] == 2);
    const json& list = j["Data"]["List"]["ProductInfo"];
    REQUIRE(list.size() == 2);
    CHECK_FALSE(list[0].contains("ProductSecret"));
    CHECK(list[0].contains("DeviceCount"));
    j = b.json("QueryProductList",
               {{"CurrentPage", "1"}, {"PageSize", "10"}, {"AliyunCommodityCode", "iothub"}});
    CHECK(j["Data"]["Total"] == 1);
    CHECK(j["Data"]["List"]["ProductInfo"][0]["ProductKey"] == "a1SmallProd");
    CHECK(j["Data"]["List"]["ProductInfo"][0]["DeviceCount"] == 100);
    j = b.json("QueryProductList", {{"CurrentPage", "2"}, {"PageSize", "10"}});
    CHECK(j["Success"] == true);
    CHECK(j["Data"]["List"]["ProductInfo"].empty());
    b.json("QueryProductList", {{"CurrentPage", "1"}, {"PageSize", "201"}});
    CHECK(b.last.code == "iot.common.InvalidPageParams");
    b.json("QueryProductList", {{"CurrentPage", "1"}});
    CHECK(b.last.code == "MissingParameter");
  }
}
