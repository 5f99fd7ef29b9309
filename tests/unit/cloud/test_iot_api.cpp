// SPDX-License-Identifier: MIT
#include "cloud/iot_api.hpp"
#include "fake_http.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <set>

using namespace iot;
using namespace iot::cloud;
using namespace iot::cloud::test;
using json = nlohmann::json;

namespace {

struct Harness {
  FakeHttpClient http;
  ManualClock clock;
  std::shared_ptr<RateLimiter> limiter;
  std::unique_ptr<OpenApiClient> client;
  std::unique_ptr<IotApi> api;

  explicit Harness(std::string iot_instance_id = {}) {
    RateLimiter::Options options;
    options.clock = clock.clock();
    options.sleep = clock.sleeper();
    limiter = std::make_shared<RateLimiter>(options);
    OpenApiConfig config;
    config.access_key = AccessKey{"id", "secret", ""};
    config.region_id = "cn-shanghai";
    config.iot_instance_id = std::move(iot_instance_id);
    OpenApiHooks hooks;
    hooks.sleep = clock.sleeper();
    hooks.jitter = [] { return 0.0; };
    client = std::make_unique<OpenApiClient>(http, config, limiter, hooks);
    api = std::make_unique<IotApi>(*client);
  }
};

// Names DeviceName.1..N of a request, in N order.
std::vector<std::string> names_of(const Params& p) {
  std::vector<std::string> names;
  for (int i = 1;; ++i) {
    const auto it = p.find("DeviceName." + std::to_string(i));
    if (it == p.end()) {
      return names;
    }
    names.push_back(it->second);
  }
}

std::vector<std::string> make_names(int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) {
    names.push_back("dev" + std::to_string(i));
  }
  return names;
}

Result<HttpResponse> ok(const json& body) {
  json b = body;
  b["RequestId"] = "R";
  b["Success"] = true;
  return HttpResponse{200, {}, b.dump()};
}

} // namespace

TEST_SUITE("cloud::IotApi") {
  TEST_CASE("BatchGetDeviceState splits 120 names into 50 + 50 + 20") {
    Harness h;
    h.http.set_handler([](const HttpRequest& req) {
      const Params p = form_of(req);
      json list = json::array();
      for (const auto& n : names_of(p)) {
        list.push_back({{"DeviceName", n}, {"Status", "ONLINE"}, {"LastOnlineTime", "t"}});
      }
      return ok({{"DeviceStatusList", {{"DeviceStatus", list}}}});
    });
    const auto names = make_names(120);
    auto states = h.api->batch_get_device_state("pk", names);
    REQUIRE(states);
    REQUIRE(states->size() == 120);
    for (std::size_t i = 0; i < names.size(); ++i) {
      CHECK((*states)[i].device_name == names[i]);
    }
    CHECK((*states)[0].last_online_time == "t");
    const auto requests = h.http.requests();
    REQUIRE(requests.size() == 3);
    std::multiset<std::size_t> sizes;
    for (const auto& req : requests) {
      const Params p = form_of(req);
      CHECK(p.at("Action") == "BatchGetDeviceState");
      CHECK(p.at("ProductKey") == "pk");
      sizes.insert(names_of(p).size());
    }
    CHECK(sizes == std::multiset<std::size_t>{20, 50, 50});
  }

  TEST_CASE("BatchQueryDeviceDetail splits by 100 and parses Data.Data") {
    Harness h;
    h.http.set_handler([](const HttpRequest& req) {
      json list = json::array();
      for (const auto& n : names_of(form_of(req))) {
        list.push_back({{"DeviceName", n},
                        {"ProductKey", "pk"},
                        {"DeviceSecret", "s-" + n},
                        {"IotId", "id-" + n},
                        {"Status", "OFFLINE"},
                        {"NodeType", 0},
                        {"UtcActive", "2019-02-20T02:16:09.000Z"}});
      }
      return ok({{"Data", {{"Data", list}}}});
    });
    auto details = h.api->batch_query_device_detail("pk", make_names(250));
    REQUIRE(details);
    CHECK(details->size() == 250);
    CHECK(h.http.count() == 3);
    CHECK(details->at(249).device_name == "dev249");
    CHECK(details->at(249).device_secret == "s-dev249");
    CHECK(details->at(0).node_type == 0);
    CHECK(details->at(0).ip_address.empty());
  }

  TEST_CASE("a failed chunk names the range") {
    Harness h;
    h.http.set_handler([](const HttpRequest& req) -> Result<HttpResponse> {
      const auto names = names_of(form_of(req));
      if (names.front() == "dev50") {
        return HttpResponse{
            200, {}, R"({"RequestId":"RX","Success":false,"Code":"iot.prod.NotExistedProduct"})"};
      }
      return ok({{"DeviceStatusList", {{"DeviceStatus", json::array()}}}});
    });
    auto states = h.api->batch_get_device_state("pk", make_names(120));
    REQUIRE_FALSE(states);
    CHECK(states.error().kind == ErrorKind::cloud);
    CHECK(states.error().message ==
          "names 51-100: BatchGetDeviceState: iot.prod.NotExistedProduct (HTTP 200, RequestId RX)");
  }

  TEST_CASE("QueryDevice pages past 10 000 rows with NextToken") {
    Harness h;
    static constexpr int k_total = 10'050;
    h.http.set_handler([](const HttpRequest& req) -> Result<HttpResponse> {
      const Params p = form_of(req);
      const int size = std::stoi(p.at("PageSize"));
      const int page = std::stoi(p.at("CurrentPage"));
      const auto token = p.find("NextToken");
      if (size * page > 10'000 &&
          (token == p.end() || token->second != "tok-" + std::to_string(page))) {
        return HttpResponse{
            200, {}, R"({"RequestId":"R","Success":false,"Code":"iot.common.InvalidPageParams"})"};
      }
      json list = json::array();
      for (int i = (page - 1) * size; i < std::min(k_total, page * size); ++i) {
        list.push_back({{"DeviceName", "d" + std::to_string(i)},
                        {"DeviceStatus", "ONLINE"},
                        {"ProductKey", "pk"}});
      }
      const int pages = (k_total + size - 1) / size;
      return ok({{"Total", k_total},
                 {"PageSize", size},
                 {"PageCount", pages},
                 {"Page", page},
                 {"NextToken", page < pages ? "tok-" + std::to_string(page + 1) : ""},
                 {"Data", {{"DeviceInfo", list}}}});
    });
    std::size_t last_rows = 0;
    auto devices =
        h.api->query_all_devices("pk", [&](std::size_t rows, std::int64_t) { last_rows = rows; });
    REQUIRE(devices);
    CHECK(devices->size() == k_total);
    CHECK(last_rows == k_total);
    CHECK(devices->back().device_name == "d10049");
    CHECK(devices->front().status == "ONLINE");
    CHECK(h.http.count() == 201);
    const Params last = form_of(h.http.requests().back());
    CHECK(last.at("CurrentPage") == "201");
    CHECK(last.at("NextToken") == "tok-201");
    CHECK(form_of(h.http.requests().front()).count("NextToken") == 0);
  }

  TEST_CASE("QueryDevice arguments are checked before any call") {
    Harness h;
    auto r = h.api->query_device({"pk", 51, 1, {}});
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::usage);
    r = h.api->query_device({"pk", 50, 201, {}});
    REQUIRE_FALSE(r);
    CHECK(r.error().message ==
          "QueryDevice: NextToken is required when PageSize x CurrentPage exceeds 10000");
    CHECK(h.http.count() == 0);
  }

  TEST_CASE("QueryDeviceDetail by IotId, IotInstanceId is sent") {
    Harness h("iot-inst-1");
    h.http.reply(200, R"({"RequestId":"R","Success":true,"Data":{
      "IotId":"Q7uOhVRdZRRlDnTLv****00100","ProductKey":"a1BwAGV****","ProductName":"Lamp",
      "DeviceName":"light","DeviceSecret":"sLefbFmN9SYfnWLJTePG893XNuRV****",
      "FirmwareVersion":"V1.0.0.0","GmtCreate":"2017-10-11 10:45:56","UtcCreate":"2017-10-11T02:45:56.000Z",
      "GmtActive":"2018-08-06 10:48:41","UtcActive":"2018-08-06T02:48:41.000Z","Status":"ONLINE",
      "IpAddress":"10.0.0.1","NodeType":0,"Region":"cn-shanghai","Owner":true,"Nickname":null}})");
    auto d = h.api->query_device_detail({"", "", "Q7uOhVRdZRRlDnTLv****00100"});
    REQUIRE(d);
    CHECK(d->device_name == "light");
    CHECK(d->device_secret == "sLefbFmN9SYfnWLJTePG893XNuRV****");
    CHECK(d->utc_active == "2018-08-06T02:48:41.000Z");
    CHECK(d->owner == true);
    CHECK(d->nickname.empty());
    const Params p = form_of(h.http.requests().at(0));
    CHECK(p.at("IotId") == "Q7uOhVRdZRRlDnTLv****00100");
    CHECK(p.count("DeviceName") == 0);
    CHECK(p.at("IotInstanceId") == "iot-inst-1");

    auto missing = h.api->query_device_detail({"pk", "", ""});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind == ErrorKind::usage);
  }

  TEST_CASE("wrong types are cloud errors naming the Action and the path") {
    Harness h;
    h.http.reply(200, R"({"Success":true,"Data":{"ProductKey":"pk","ProductName":{"a":1}}})");
    auto p = h.api->query_product("pk");
    REQUIRE_FALSE(p);
    CHECK(p.error().kind == ErrorKind::cloud);
    CHECK(p.error().message ==
          "unexpected response from QueryProduct: Data.ProductName: expected text");

    h.http.reply(200, R"({"Success":true,"Data":{"DeviceInfo":[{"DeviceName":"a"},7]}})");
    auto page = h.api->query_device({"pk", 10, 1, {}});
    REQUIRE_FALSE(page);
    CHECK(page.error().message ==
          "unexpected response from QueryDevice: Data.DeviceInfo[1]: expected an object");

    h.http.reply(200, R"({"Success":true,"Data":{"DeviceCount":"many"}})");
    p = h.api->query_product("pk");
    REQUIRE_FALSE(p);
    CHECK(p.error().message ==
          "unexpected response from QueryProduct: Data.DeviceCount: expected an integer");
  }

  TEST_CASE("QueryProduct and QueryProductList") {
    Harness h;
    h.http.reply(200, R"({"RequestId":"R","Success":true,"Data":{
      "ProductKey":"a1b2c3d4e5f","ProductName":"Meter","ProductSecret":"0123456789ABCDEF",
      "DeviceCount":"12","NodeType":0,"DataFormat":1,"AuthType":"secret","Id2":false,"NetType":6,
      "ProductStatus":"DEVELOPMENT_STATUS","AliyunCommodityCode":"iothub_senior","GmtCreate":1581595942000}})");
    auto p = h.api->query_product("a1b2c3d4e5f");
    REQUIRE(p);
    CHECK(p->product_secret == "0123456789ABCDEF");
    CHECK(p->device_count == 12);
    CHECK(p->net_type == 6);
    CHECK(p->id2 == false);
    CHECK(p->gmt_create == 1581595942000);
    CHECK_FALSE(p->owner.has_value());

    h.http.reply(200, R"({"Success":true,"Data":{"CurrentPage":1,"PageCount":1,"PageSize":200,
      "Total":2,"List":{"ProductInfo":[{"ProductKey":"a"},{"ProductKey":"b","DeviceCount":3}]}}})");
    auto list = h.api->query_product_list(1, 200);
    REQUIRE(list);
    REQUIRE(list->products.size() == 2);
    CHECK(list->products[1].device_count == 3);
    CHECK(list->total == 2);
    CHECK_FALSE(h.api->query_product_list(1, 201));
  }

  TEST_CASE("QueryDeviceByStatus parses SimpleDeviceInfo") {
    Harness h;
    // The SDK model's fields (QueryDeviceByStatusResponseBodyDataSimpleDeviceInfo).
    h.http.reply(200, R"({"Success":true,"Total":1,"PageSize":10,"PageCount":1,"Page":1,
      "Data":{"SimpleDeviceInfo":[{"DeviceName":"d","Status":"OFFLINE","IotId":"i",
      "ProductKey":"pk","Nickname":"n","DeviceSecret":"s","GmtCreate":"Mon, 22-Apr-2019 01:58:41 GMT",
      "UtcCreate":"2019-04-22T01:58:41.000Z","GmtModified":"Mon, 22-Apr-2019 01:58:41 GMT",
      "UtcModified":"2019-04-22T01:58:41.000Z"}]}})");
    auto page = h.api->query_device_by_status("pk", 3, 10, 1);
    REQUIRE(page);
    REQUIRE(page->devices.size() == 1);
    CHECK(page->devices[0].status == "OFFLINE");
    CHECK(page->devices[0].iot_id == "i");
    CHECK(page->devices[0].device_secret == "s");
    CHECK(page->devices[0].utc_create == "2019-04-22T01:58:41.000Z");
    CHECK(form_of(h.http.requests().at(0)).at("Status") == "3");
  }

  TEST_CASE("RegisterDevice without a name is not retried after a timeout") {
    Harness h;
    h.http.reply_error(ErrorKind::network, "POST https://x/: timed out");
    auto r = h.api->register_device("pk", "");
    REQUIRE_FALSE(r);
    CHECK(h.http.count() == 1);

    h.http.reply_error(ErrorKind::network, "POST https://x/: timed out");
    h.http.reply(200, R"({"Success":true,"Data":{"IotId":"i","DeviceName":"dev","DeviceSecret":"s",
      "ProductKey":"pk","Nickname":"n"}})");
    auto named = h.api->register_device("pk", "dev", "n");
    REQUIRE(named);
    CHECK(named->device_secret == "s");
    const Params p = form_of(h.http.requests().back());
    CHECK(p.at("DeviceName") == "dev");
    CHECK(p.at("Nickname") == "n");
  }

  TEST_CASE("bulk registration flow") {
    Harness h;
    // The SDK model's wrappers: InvalidDeviceNameList.InvalidDeviceName[], likewise for nicknames.
    h.http.reply(200, R"({"Success":true,"Data":{"ApplyId":1295006,
      "InvalidDeviceNameList":{"InvalidDeviceName":["bad name"]},
      "InvalidDeviceNicknameList":{"InvalidDeviceNickname":["x!"]}}})");
    auto check = h.api->batch_check_device_names("pk", {{"good", "Nick_1"}, {"bad name", ""}});
    REQUIRE(check);
    CHECK(check->apply_id == 1295006);
    CHECK(check->invalid_device_names == std::vector<std::string>{"bad name"});
    CHECK(check->invalid_nicknames == std::vector<std::string>{"x!"});
    Params p = form_of(h.http.requests().back());
    CHECK(p.at("DeviceNameList.1.DeviceName") == "good");
    CHECK(p.at("DeviceNameList.1.DeviceNickname") == "Nick_1");
    CHECK(p.at("DeviceNameList.2.DeviceName") == "bad name");
    CHECK(p.count("DeviceNameList.2.DeviceNickname") == 0);

    h.http.reply(200, R"({"Success":true,"Data":{}})");
    REQUIRE(h.api->batch_check_device_names("pk", {{"a1", ""}, {"a2", ""}}));
    p = form_of(h.http.requests().back());
    CHECK(p.at("DeviceName.2") == "a2");
    CHECK_FALSE(h.api->batch_check_device_names("pk", {}));

    h.http.reply(200, R"({"Success":true,"Data":{"Status":"CHECK_SUCCESS",
      "ValidList":{"Name":["a1","a2"]},"InvalidList":{"Name":[]}}})");
    auto status = h.api->query_batch_register_device_status("pk", 1295006);
    REQUIRE(status);
    CHECK(status->status == "CHECK_SUCCESS");
    CHECK(status->valid == std::vector<std::string>{"a1", "a2"});

    h.http.reply(200, R"({"Success":true,"Data":{"ApplyId":1295006}})");
    auto apply = h.api->batch_register_device_with_apply_id("pk", 1295006);
    REQUIRE(apply);
    CHECK(*apply == 1295006);

    h.http.reply(200, R"({"Success":true,"Total":2,"Page":1,"PageSize":50,"PageCount":1,
      "ApplyDeviceList":{"ApplyDeviceInfo":[{"DeviceName":"a1","DeviceSecret":"s1","IotId":"i1"},
      {"DeviceName":"a2","DeviceSecret":"s2","IotId":"i2"}]}})");
    auto page = h.api->query_page_by_apply_id(1295006, 50, 1);
    REQUIRE(page);
    REQUIRE(page->devices.size() == 2);
    CHECK(page->devices[1].device_secret == "s2");
    CHECK(form_of(h.http.requests().back()).at("ApplyId") == "1295006");
  }

  TEST_CASE("DeleteDevice and ResetThing") {
    Harness h;
    h.http.reply(200, R"({"Success":true,"RequestId":"R"})");
    CHECK(h.api->delete_device({"pk", "dn", ""}));
    Params p = form_of(h.http.requests().back());
    CHECK(p.at("Action") == "DeleteDevice");
    CHECK(p.at("ProductKey") == "pk");
    CHECK(p.at("DeviceName") == "dn");

    h.http.reply(200, R"({"Success":true,"RequestId":"R","JobId":"XkRMdEx1ZK"})");
    auto job = h.api->reset_thing({"pk", "dn", ""});
    REQUIRE(job);
    CHECK(*job == "XkRMdEx1ZK");
  }
}
