// SPDX-License-Identifier: MIT
// The OTA wrappers of IotApi (§3) and the streamed OSS PostObject, over the fake HTTP client.
#include "cloud/iot_api.hpp"
#include "cloud/oss_upload.hpp"
#include "fake_http.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace iot;
using namespace iot::cloud;
using namespace iot::cloud::test;

namespace {

struct OtaHarness {
  FakeHttpClient http;
  ManualClock clock;
  std::unique_ptr<OpenApiClient> client;
  std::unique_ptr<IotApi> api;

  OtaHarness() {
    RateLimiter::Options options;
    options.clock = clock.clock();
    options.sleep = clock.sleeper();
    OpenApiConfig config;
    config.access_key = AccessKey{"id", "secret", ""};
    config.region_id = "cn-shanghai";
    OpenApiHooks hooks;
    hooks.sleep = clock.sleeper();
    hooks.jitter = [] { return 0.0; };
    client = std::make_unique<OpenApiClient>(
        http, config, std::make_shared<RateLimiter>(options), hooks);
    api = std::make_unique<IotApi>(*client);
  }
};

// Reads a streamed form part to the end, as libcurl would.
std::string drain(BodySource& source) {
  std::string out;
  char buf[7];
  for (;;) {
    const auto n = source.read(buf, sizeof buf);
    REQUIRE(n >= 0);
    if (n == 0) {
      return out;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
}

} // namespace

TEST_CASE("CreateOTAStaticUpgradeJob sends names, options and tags, 201 names are refused") {
  OtaHarness h;
  h.http.reply(200, R"({"Success":true,"RequestId":"r","Data":{"JobId":"J1","UtcCreate":"x"}})");
  StaticJobRequest r;
  r.product_key = "pk";
  r.firmware_id = "fw";
  r.device_names = {"a", "b"};
  r.max_per_minute = 100;
  r.retry_interval = 10;
  r.retry_count = 2;
  r.tags = {{"iotfleet.rollout", "r1"}, {"iotfleet.wave", "2"}};
  auto job = h.api->create_ota_static_upgrade_job(r);
  REQUIRE(job);
  CHECK(*job == "J1");
  const auto p = form_of(h.http.requests().at(0));
  CHECK(p.at("Action") == "CreateOTAStaticUpgradeJob");
  CHECK(p.at("TargetSelection") == "SPECIFIC");
  CHECK(p.at("TargetDeviceName.1") == "a");
  CHECK(p.at("TargetDeviceName.2") == "b");
  CHECK(p.at("MaximumPerMinute") == "100");
  CHECK(p.at("RetryInterval") == "10");
  CHECK(p.at("RetryCount") == "2");
  CHECK(p.at("Tag.2.Key") == "iotfleet.wave");
  CHECK(p.at("Tag.2.Value") == "2");
  CHECK(p.count("TimeoutInMinutes") == 0);

  r.device_names.assign(201, "x");
  auto refused = h.api->create_ota_static_upgrade_job(r);
  REQUIRE(!refused);
  CHECK(refused.error().kind == ErrorKind::usage);
  CHECK(h.http.count() == 1);
}

TEST_CASE("CreateOTAStaticUpgradeJob is not retried after a 500 (it may have run)") {
  OtaHarness h;
  h.http.reply(500, R"({"Code":"InternalError","RequestId":"r"})");
  h.http.reply(200, R"({"Success":true,"Data":{"JobId":"J2"}})");
  StaticJobRequest r;
  r.product_key = "pk";
  r.firmware_id = "fw";
  r.dn_list_file_url = "https://oss/list.csv";
  auto job = h.api->create_ota_static_upgrade_job(r);
  // The call as sent: DnListFileUrl, no names.
  const auto p = form_of(h.http.requests().at(0));
  CHECK(p.at("DnListFileUrl") == "https://oss/list.csv");
  CHECK(p.count("TargetDeviceName.1") == 0);
  // A 500 does not prove the job was not created: no retry (the rollout finds it by its tags).
  REQUIRE(!job);
  CHECK(h.http.count() == 1);
}

TEST_CASE("ListOTATaskByJob pages, counts and task fields") {
  OtaHarness h;
  h.http.reply(200, R"({"Success":true,"Total":3,"PageSize":2,"PageCount":2,"CurrentPage":1,
    "Data":{"SimpleOTATaskInfo":[
      {"TaskId":"t1","JobId":"J","DeviceName":"d1","TaskStatus":"FAILED","Progress":"25",
       "TaskDesc":"download failed (-2) hw=hwrevB"},
      {"TaskId":"t2","JobId":"J","DeviceName":"d2","TaskStatus":"SUCCEEDED","Progress":"100"}]}})");
  h.http.reply(200, R"({"Success":true,"Total":3,"PageSize":2,"PageCount":2,"CurrentPage":2,
    "Data":{"SimpleOTATaskInfo":[{"TaskId":"t3","DeviceName":"d3","TaskStatus":"QUEUED"}]}})");
  auto all = h.api->list_all_ota_tasks("J");
  REQUIRE(all);
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].task_desc == "download failed (-2) hw=hwrevB");
  CHECK((*all)[0].progress == "25");
  CHECK((*all)[2].task_status == "QUEUED");
  CHECK(form_of(h.http.requests().at(1)).at("CurrentPage") == "2");
  CHECK(form_of(h.http.requests().at(1)).at("PageSize") == "100");

  h.http.reply(200, R"({"Success":true,"Total":17,"Data":{"SimpleOTATaskInfo":[]}})");
  auto n = h.api->count_ota_tasks("J", "FAILED");
  REQUIRE(n);
  CHECK(*n == 17);
  const auto p = form_of(h.http.requests().at(2));
  CHECK(p.at("TaskStatus") == "FAILED");
  CHECK(p.at("PageSize") == "1");
}

TEST_CASE("ListOTAJobByFirmware reads Tags, QueryOTAFirmware reads the top-level FirmwareInfo") {
  OtaHarness h;
  h.http.reply(200, R"({"Success":true,"Total":1,"PageCount":1,"CurrentPage":1,
    "Data":{"SimpleOTAJobInfo":[{"JobId":"J9","JobStatus":"IN_PROGRESS",
      "Tags":{"OtaTagDTO":[{"Key":"iotfleet.rollout","Value":"r1"},
                           {"Key":"iotfleet.wave","Value":"3"}]}}]}})");
  auto jobs = h.api->list_all_ota_jobs_by_firmware("fw");
  REQUIRE(jobs);
  REQUIRE(jobs->size() == 1);
  CHECK((*jobs)[0].tags == std::vector<OtaTag>{{"iotfleet.rollout", "r1"}, {"iotfleet.wave", "3"}});

  h.http.reply(200, R"({"Success":true,"FirmwareInfo":{"FirmwareId":"fw","DestVersion":"V2",
    "ProductKey":"pk","ModuleName":"default","FirmwareSize":"42","Status":1}})");
  auto fw = h.api->query_ota_firmware("fw");
  REQUIRE(fw);
  CHECK(fw->dest_version == "V2");
  CHECK(fw->size == 42);
  CHECK(fw->status == 1);
}

TEST_CASE("CreateOTAFirmware sends size and sign, a sign mismatch is the cloud's error") {
  OtaHarness h;
  h.http.reply(200, R"({"Success":false,"Code":"iot.ota.FirmwareSignMismatch",
    "ErrorMessage":"FirmwareSign does not match","RequestId":"r"})");
  CreateFirmwareRequest r;
  r.product_key = "pk";
  r.dest_version = "V2";
  r.firmware_name = "fw";
  r.firmware_url = "https://oss/x.bin";
  r.firmware_size = 10;
  r.firmware_sign = "00112233445566778899aabbccddeeff";
  r.sign_method = "MD5";
  auto fw = h.api->create_ota_firmware(r);
  REQUIRE(!fw);
  CHECK(fw.error().kind == ErrorKind::cloud);
  CHECK(fw.error().message.find("iot.ota.FirmwareSignMismatch") != std::string::npos);
  const auto p = form_of(h.http.requests().at(0));
  CHECK(p.at("FirmwareSize") == "10");
  CHECK(p.at("FirmwareSign") == r.firmware_sign);
  CHECK(p.at("SignMethod") == "MD5");
}

TEST_CASE("post_object streams the file last, hashes what was sent, retries a 5xx afresh") {
  const auto path = std::filesystem::temp_directory_path() / "iotfleet-ota-unit.bin";
  {
    std::ofstream f(path, std::ios::binary);
    f << "hello firmware";
  }
  auto source = HashingFileSource::open(path);
  REQUIRE(source);
  FakeHttpClient http;
  std::vector<std::string> bodies;
  int calls = 0;
  http.set_handler([&](const HttpRequest& req) -> Result<HttpResponse> {
    REQUIRE(req.form.size() == 6);
    CHECK(req.form.front().name == "key");
    CHECK(req.form.back().name == "file");
    CHECK(req.form.back().source->size == 14);
    bodies.push_back(drain(*req.form.back().source));
    if (++calls == 1) {
      return HttpResponse{503, {}, "<Error><Code>ServiceUnavailable</Code></Error>"};
    }
    return HttpResponse{201, {}, "<PostResponse/>"};
  });
  UploadGrant g{"https://oss/k", "https://oss", "k", "ak", "policy", "sig", "OSS"};
  PostObjectOptions po;
  po.max_attempts = 3;
  REQUIRE(post_object(http, g, (*source)->body(), po));
  CHECK(bodies == std::vector<std::string>{"hello firmware", "hello firmware"});
  CHECK((*source)->bytes_read() == 14);
  CHECK((*source)->md5_hex() == hex(md5("hello firmware")));
  CHECK((*source)->sha256_hex() == hex(sha256("hello firmware")));

  // An OSS refusal (4xx) is not retried and names the OSS Code.
  http.set_handler([&](const HttpRequest&) -> Result<HttpResponse> {
    return HttpResponse{403,
                        {},
                        "<Error><Code>AccessDenied</Code><Message>Policy expired."
                        "</Message></Error>"};
  });
  const auto before = http.count();
  auto refused = post_object(http, g, (*source)->body(), po);
  REQUIRE(!refused);
  CHECK(http.count() == before + 1);
  CHECK(refused.error().message.find("AccessDenied: Policy expired.") != std::string::npos);
  std::filesystem::remove(path);
}
