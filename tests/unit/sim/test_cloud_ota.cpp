// SPDX-License-Identifier: MIT
// OTA in the cloud emulator (§3): the OSS-style upload, firmware, verification and static
// upgrade jobs with their limits, and the simulated devices (MaximumPerMinute, time scale,
// failure groups, retries, timeouts, cancel, one open task per device).
#include "sim/cloud_ota.hpp"
#include "unit/sim/test_cloud_support.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>

#include <fstream>
#include <regex>
#include <set>

using namespace iot::sim::testing;
using iot::sim::cloud::OssAnswer;
using iot::sim::cloud::OssUpload;
using iot::sim::cloud::ServiceOptions;
using nlohmann::json;

namespace {

constexpr const char* k_pk = "a1OtaProduct";

// A product of `count` ONLINE devices at V1 (dev000001...), plus `extra` devices JSON and the
// "ota" block.
std::string fleet(int count,
                  const std::string& ota = "{}",
                  const std::string& extra = "[]",
                  const std::string& generate_extra = "") {
  return scenario_with(R"([{"product_key": "a1OtaProduct", "devices": )" + extra +
                           R"(, "generate": {"count": )" + std::to_string(count) +
                           R"(, "status": {"ONLINE": 1}, "firmware": "V1")" + generate_extra +
                           "}}]",
                       R"("ota": )" + ota + ",");
}

ServiceOptions scaled(double scale) {
  ServiceOptions o = CloudBench::no_limits();
  o.time_scale = scale;
  return o;
}

std::string digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out, &n, md, nullptr);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned int i = 0; i < n; ++i) {
    s.push_back(hex[out[i] >> 4U]);
    s.push_back(hex[out[i] & 15U]);
  }
  return s;
}

std::string md5(std::string_view data) {
  return digest(EVP_md5(), data);
}
std::string sha256(std::string_view data) {
  return digest(EVP_sha256(), data);
}

// A PostObject as an OSS client sends it: the grant's fields, then the file in chunks.
OssAnswer post_object(CloudBench& b,
                      const json& grant,
                      std::string_view content,
                      std::map<std::string, std::string> overrides = {}) {
  std::map<std::string, std::string> fields{
      {"key", grant["Key"]},
      {"OSSAccessKeyId",
       grant.contains("OSSAccessKeyId") ? grant["OSSAccessKeyId"] : grant["AccessKeyId"]},
      {"policy", grant["Policy"]},
      {"Signature", grant["Signature"]},
      {"success_action_status", "200"}};
  for (auto& [k, v] : overrides) {
    if (v == "<drop>") {
      fields.erase(k);
    } else {
      fields[k] = v;
    }
  }
  OssUpload up(*b.store, b.service->options(), b.now_ms, "REQ-1");
  for (const auto& [k, v] : fields) {
    up.field(k, v);
  }
  if (up.begin_file()) {
    for (std::size_t at = 0; at < content.size(); at += 1000) {
      if (!up.write(content.data() + at, std::min<std::size_t>(1000, content.size() - at))) {
        break;
      }
    }
  }
  return up.finish(true);
}

json upload_grant(CloudBench& b, const std::string& suffix = "bin") {
  const json j = b.json("GenerateOTAUploadURL", {{"FileSuffix", suffix}});
  REQUIRE(j["Success"] == true);
  return j["Data"];
}

// Uploads `content` and creates a firmware of DestVersion `dest`; returns the FirmwareId.
std::string make_firmware(CloudBench& b,
                          const std::string& dest,
                          const std::string& content = "firmware image",
                          Fields extra = {}) {
  const json g = upload_grant(b);
  const OssAnswer a = post_object(b, g, content);
  REQUIRE(a.status == 200);
  Fields p{{"ProductKey", k_pk},
           {"DestVersion", dest},
           {"FirmwareName", "fw-" + dest},
           {"FirmwareUrl", g["FirmwareUrl"]},
           {"FirmwareSize", std::to_string(content.size())},
           {"FirmwareSign", md5(content)}};
  for (auto& [k, v] : extra) {
    p[k] = v;
  }
  const json j = b.json("CreateOTAFirmware", p);
  REQUIRE(j["Success"] == true);
  return j["Data"]["FirmwareId"];
}

json static_job(CloudBench& b, const std::string& firmware, Fields extra) {
  Fields p{{"ProductKey", k_pk}, {"FirmwareId", firmware}};
  for (auto& [k, v] : extra) {
    p[k] = v;
  }
  return b.json("CreateOTAStaticUpgradeJob", p);
}

std::string job_of(CloudBench& b, const std::string& firmware, Fields extra) {
  const json j = static_job(b, firmware, std::move(extra));
  REQUIRE(j["Success"] == true);
  return j["Data"]["JobId"];
}

// Every task of a job, through ListOTATaskByJob pages of 100.
std::vector<json> tasks(CloudBench& b, const std::string& job, const std::string& status = "") {
  std::vector<json> out;
  for (int page = 1;; ++page) {
    Fields p{{"JobId", job}, {"PageSize", "100"}, {"CurrentPage", std::to_string(page)}};
    if (!status.empty()) {
      p["TaskStatus"] = status;
    }
    const json j = b.json("ListOTATaskByJob", p);
    REQUIRE(j["Success"] == true);
    for (const json& t : j["Data"]["SimpleOTATaskInfo"]) {
      out.push_back(t);
    }
    if (page >= j["PageCount"].get<int>()) {
      return out;
    }
  }
}

std::map<std::string, int> counts(CloudBench& b, const std::string& job) {
  std::map<std::string, int> c;
  for (const json& t : tasks(b, job)) {
    c[t["TaskStatus"].get<std::string>()] += 1;
  }
  return c;
}

std::string job_status(CloudBench& b, const std::string& job) {
  return b.json("QueryOTAJob", {{"JobId", job}})["Data"]["JobStatus"];
}

// Advances the bench's clock by `ms` in steps, letting the simulation run.
void run_for(CloudBench& b, std::int64_t ms, std::int64_t step = 1000) {
  const std::int64_t end = b.now_ms + ms;
  while (b.now_ms < end) {
    b.now_ms = std::min(end, b.now_ms + step);
    b.service->tick();
  }
}

std::string firmware_of(CloudBench& b, const std::string& dn) {
  return b.json("QueryDeviceDetail",
                {{"ProductKey", k_pk}, {"DeviceName", dn}})["Data"]["FirmwareVersion"];
}

const std::string k_fast =
    R"({"speed": {"pickup_s": 1, "download_s": 8, "verify_s": 1, "burn_s": 2, "jitter": 0}})";

} // namespace

TEST_SUITE("sim::cloud OTA") {
  TEST_CASE("scenario: the ota block is strict, generated nicknames have exact counts") {
    CHECK(
        iot::sim::cloud::parse_scenario(fleet(1, R"({"speed": {"pickup": 1}})")).error().message ==
        "scenario: $.ota.speed.pickup: unknown key");
    CHECK(iot::sim::cloud::parse_scenario(fleet(1, R"({"failure": [{"match": {}}]})"))
              .error()
              .message == "scenario: $.ota.failure[0].rate: required");
    CHECK(iot::sim::cloud::parse_scenario(fleet(1, R"({"failure": [{"rate": 2}]})"))
              .error()
              .message.find("$.ota.failure[0].rate: must be 0..1") != std::string::npos);
    CHECK(iot::sim::cloud::parse_scenario(fleet(1, R"({"failure": [{"rate": 0.1, "step": "x"}]})"))
              .error()
              .message.find("$.ota.failure[0].step") != std::string::npos);
    CHECK_FALSE(
        iot::sim::cloud::parse_scenario(fleet(1, "{}", "[]", R"(, "nicknames": {"a": 1})")));
    CloudBench b(fleet(97, "{}", "[]", R"(, "nicknames": {"hwrevA": 70, "hwrevB": 30})"));
    std::map<std::string, int> nick;
    for (int page = 1; page <= 2; ++page) {
      const json j =
          b.json("QueryDevice",
                 {{"ProductKey", k_pk}, {"PageSize", "50"}, {"CurrentPage", std::to_string(page)}});
      for (const json& d : j["Data"]["DeviceInfo"]) {
        nick[d["Nickname"].get<std::string>()] += 1;
      }
    }
    CHECK(nick["hwrevA"] == 68); // 67.9 → 68, 29.1 → 29 (largest remainder)
    CHECK(nick["hwrevB"] == 29);
  }

  TEST_CASE("GenerateOTAUploadURL: Host is the emulator, a signed 1-minute policy for one key") {
    CloudBench b(fleet(1));
    const json g = upload_grant(b, "tar.gz");
    CHECK(g["Host"] == "http://127.0.0.1/_oss/iotx-ota");
    CHECK(g["ObjectStorage"] == "OSS");
    CHECK(std::regex_match(g["Key"].get<std::string>(),
                           std::regex(R"(ota/[0-9a-f]{32}/\d+\.tar\.gz)")));
    CHECK(g["FirmwareUrl"] == g["Host"].get<std::string>() + "/" + g["Key"].get<std::string>());
    CHECK_FALSE(g["OSSAccessKeyId"].get<std::string>().empty());
    CHECK_FALSE(g["Signature"].get<std::string>().empty());
    // The policy: expiration 60 s ahead, the size range and the key.
    std::string policy = g["Policy"];
    std::string decoded(policy.size(), '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                  reinterpret_cast<const unsigned char*>(policy.data()),
                                  static_cast<int>(policy.size()));
    decoded.resize(static_cast<std::size_t>(n));
    while (!decoded.empty() && decoded.back() == '\0') {
      decoded.pop_back();
    }
    const json p = json::parse(decoded);
    CHECK(p["expiration"] == "2024-06-01T12:01:00.000Z");
    CHECK(p["conditions"][0] == json::array({"content-length-range", 0, 1048576000}));
    CHECK(p["conditions"][2] == json::array({"eq", "$key", g["Key"]}));
    for (const char* bad : {"exe", "BIN", "tgz"}) {
      CAPTURE(bad);
      const json j = b.json("GenerateOTAUploadURL", {{"FileSuffix", bad}});
      CHECK(j["Code"] == "iot.common.InvalidParameter");
    }
    CHECK(b.json("GenerateOTAUploadURL", {})["Data"]["Key"].get<std::string>().ends_with(".bin"));
  }

  TEST_CASE(
      "PostObject: stored with its digests, policy, signature, key, expiry and size checked") {
    ServiceOptions o = CloudBench::no_limits();
    o.oss_max_bytes = 5000;
    CloudBench b(fleet(1), o);
    json g = upload_grant(b);
    const std::string content(4321, 'x');
    OssAnswer a = post_object(b, g, content, {{"success_action_status", "201"}});
    CHECK(a.status == 201);
    CHECK(a.body.find("<Key>" + g["Key"].get<std::string>() + "</Key>") != std::string::npos);
    std::ifstream in(b.dir / "oss" / g["Key"].get<std::string>(), std::ios::binary);
    const std::string stored((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
    CHECK(stored == content);
    CHECK(post_object(b, g, content, {{"success_action_status", "<drop>"}}).status == 204);

    a = post_object(b, g, content, {{"Signature", "AAAA"}});
    CHECK(a.status == 403);
    CHECK(a.code == "SignatureDoesNotMatch");
    a = post_object(b, g, content, {{"key", "ota/other.bin"}});
    CHECK(a.code == "AccessDenied");
    a = post_object(b, g, content, {{"OSSAccessKeyId", "LTAI-nobody"}});
    CHECK(a.code == "InvalidAccessKeyId");
    a = post_object(b, g, content, {{"policy", "<drop>"}});
    CHECK(a.status == 400);
    CHECK(a.code == "InvalidArgument");
    a = post_object(b, g, std::string(5001, 'y'));
    CHECK(a.status == 400);
    CHECK(a.code == "EntityTooLarge");
    {
      OssUpload up(*b.store, b.service->options(), b.now_ms, "REQ-2");
      up.field("key", g["Key"].get<std::string>());
      CHECK(up.finish(true).code == "InvalidArgument"); // no file field
    }
    b.now_ms += 61'000; // upload within 1 min (§3)
    a = post_object(b, g, content);
    CHECK(a.status == 403);
    CHECK(a.code == "AccessDenied");
    CHECK(a.body.find("Policy expired") != std::string::npos);
    // No temporary files are left behind.
    int files = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(b.dir / "oss")) {
      files += e.is_regular_file() ? 1 : 0;
    }
    CHECK(files == 1);
  }

  TEST_CASE("CreateOTAFirmware: the object must exist, size and sign are checked against it") {
    CloudBench b(fleet(1));
    const std::string content = "image v2 bytes";
    json g = upload_grant(b);
    Fields p{{"ProductKey", k_pk},
             {"DestVersion", "V2"},
             {"FirmwareName", "tracker-V2"},
             {"FirmwareUrl", g["FirmwareUrl"]},
             {"FirmwareSize", std::to_string(content.size())},
             {"FirmwareSign", md5(content)}};
    json j = b.json("CreateOTAFirmware", p);
    CHECK(j["Code"] == "iot.ota.InvalidFirmwareUrl"); // nothing uploaded yet
    // A corrupted upload (one byte differs): same size, other digest.
    std::string corrupted = content;
    corrupted[3] ^= 0x20;
    REQUIRE(post_object(b, g, corrupted).status == 200);
    j = b.json("CreateOTAFirmware", p);
    CHECK(j["Code"] == "iot.ota.FirmwareSignMismatch");
    CHECK(j["ErrorMessage"].get<std::string>().find("corrupted") != std::string::npos);
    Fields sha = p;
    sha["SignMethod"] = "SHA256";
    sha["FirmwareSign"] = sha256(content);
    CHECK(b.json("CreateOTAFirmware", sha)["Code"] == "iot.ota.FirmwareSignMismatch");
    sha["FirmwareSign"] = md5(content); // an MD5 with SignMethod SHA256: not a SHA-256 digest
    CHECK(b.json("CreateOTAFirmware", sha)["Code"] == "iot.common.InvalidParameter");
    // The right file: accepted, with either method; size checked too.
    REQUIRE(post_object(b, g, content).status == 200);
    Fields big = p;
    big["FirmwareSize"] = "99";
    CHECK(b.json("CreateOTAFirmware", big)["Code"] == "iot.ota.FirmwareSizeMismatch");
    sha["FirmwareSign"] = sha256(content);
    CHECK(b.json("CreateOTAFirmware", sha)["Success"] == true);
    Fields upper = p;
    upper["FirmwareSign"] = md5(content);
    std::transform(upper["FirmwareSign"].begin(),
                   upper["FirmwareSign"].end(),
                   upper["FirmwareSign"].begin(),
                   [](unsigned char c) { return std::toupper(c); });
    j = b.json("CreateOTAFirmware", upper);
    REQUIRE(j["Success"] == true);
    const std::string id = j["Data"]["FirmwareId"];
    CHECK(j["Data"]["UtcCreate"] == "2024-06-01T12:00:00.000Z");
    j = b.json("QueryOTAFirmware", {{"FirmwareId", id}});
    const json f = j["FirmwareInfo"];
    CHECK(f["DestVersion"] == "V2");
    CHECK(f["FirmwareSize"] == content.size());
    CHECK(f["FirmwareSign"] == md5(content));
    CHECK(f["SignMethod"] == "MD5");
    CHECK(f["ModuleName"] == "default");
    CHECK(f["Status"] == -1);
    CHECK(f["FirmwareUrl"] == g["FirmwareUrl"]);
    // Without FirmwareSign / FirmwareSize the platform takes the object's.
    j = b.json("CreateOTAFirmware",
               {{"ProductKey", k_pk},
                {"DestVersion", "V2b"},
                {"FirmwareName", "x"},
                {"FirmwareUrl", g["FirmwareUrl"]}});
    CHECK(j["Success"] == true);
    CHECK(b.json("QueryOTAFirmware", {{"FirmwareId", "nope"}})["Code"] ==
          "iot.ota.NotExistedFirmware");
  }

  TEST_CASE("CreateOTAFirmware: parameter rules and the 60-minute purge") {
    CloudBench b(fleet(1));
    const json g = upload_grant(b);
    REQUIRE(post_object(b, g, "abc").status == 200);
    const Fields base{{"ProductKey", k_pk},
                      {"DestVersion", "V2"},
                      {"FirmwareName", "fw"},
                      {"FirmwareUrl", g["FirmwareUrl"]}};
    const std::vector<std::pair<std::string, std::string>> bad{
        {"DestVersion", "V 2"},
        {"DestVersion", std::string(65, 'a')},
        {"FirmwareName", "-starts-with-dash"},
        {"FirmwareName", std::string(41, 'a')},
        {"FirmwareName", "has space"},
        {"SignMethod", "SHA1"},
        {"Type", "2"},
        {"Type", "1"}, // diff without SrcVersion
        {"FirmwareSize", "abc"},
        {"FirmwareDesc", std::string(101, 'd')},
        {"NeedToVerify", "yes"},
        {"ModuleName", "bad module"}};
    for (const auto& [k, v] : bad) {
      CAPTURE(k);
      CAPTURE(v);
      Fields p = base;
      p[k] = v;
      CHECK(b.json("CreateOTAFirmware", p)["Code"] == "iot.common.InvalidParameter");
    }
    Fields missing = base;
    missing.erase("DestVersion");
    b.json("CreateOTAFirmware", missing);
    CHECK(b.last.status == 400);
    CHECK(b.last.code == "MissingParameter");
    Fields other = base;
    other["FirmwareUrl"] = "https://example.com/fw.bin";
    CHECK(b.json("CreateOTAFirmware", other)["Code"] == "iot.ota.InvalidFirmwareUrl");
    CHECK(b.json("CreateOTAFirmware", base)["Success"] == true);
    // Another upload left unused for over 60 minutes is purged.
    const json g2 = upload_grant(b);
    REQUIRE(post_object(b, g2, "abc").status == 200);
    b.now_ms += 60 * 60'000 + 1000;
    Fields late = base;
    late["FirmwareUrl"] = g2["FirmwareUrl"];
    const json j = b.json("CreateOTAFirmware", late);
    CHECK(j["Code"] == "iot.ota.InvalidFirmwareUrl");
    CHECK(j["ErrorMessage"].get<std::string>().find("60 minutes") != std::string::npos);
    // The used one still serves new firmware records.
    CHECK(b.json("CreateOTAFirmware", base)["Success"] == true);
  }

  TEST_CASE("CreateOTAStaticUpgradeJob: limits and parameter rules") {
    CloudBench b(fleet(250));
    const std::string fw = make_firmware(b, "V2");
    auto code = [&](Fields extra) { return static_job(b, fw, std::move(extra))["Code"]; };
    Fields names{{"TargetSelection", "SPECIFIC"}};
    for (int i = 1; i <= 201; ++i) {
      char dn[16];
      std::snprintf(dn, sizeof dn, "dev%06d", i);
      names["TargetDeviceName." + std::to_string(i)] = dn;
    }
    CHECK(code(names) == "iot.ota.DeviceCountExceeded");
    names.erase("TargetDeviceName.201");
    CHECK(static_job(b, fw, names)["Success"] == true); // exactly 200
    const std::vector<Fields> invalid{
        {{"TargetSelection", "SOME"}},
        {{"TargetSelection", "GROUP"}},
        {{"TargetSelection", "SPECIFIC"}},
        {{"TargetSelection", "ALL"}, {"TargetDeviceName.1", "dev000001"}},
        {{"TargetSelection", "ALL"}, {"MaximumPerMinute", "9"}},
        {{"TargetSelection", "ALL"}, {"MaximumPerMinute", "10001"}},
        {{"TargetSelection", "ALL"}, {"RetryInterval", "5"}, {"RetryCount", "1"}},
        {{"TargetSelection", "ALL"}, {"RetryInterval", "10"}, {"RetryCount", "3"}},
        {{"TargetSelection", "ALL"}, {"RetryInterval", "10"}},
        {{"TargetSelection", "ALL"}, {"RetryCount", "1"}},
        {{"TargetSelection", "ALL"}, {"TimeoutInMinutes", "0"}},
        {{"TargetSelection", "ALL"}, {"TimeoutInMinutes", "1441"}},
        {{"TargetSelection", "GRAY"}, {"GrayPercent", "0"}},
        {{"TargetSelection", "GRAY"}, {"GrayPercent", "101"}},
        {{"TargetSelection", "ALL"}, {"SrcVersion.1", "bad version"}},
        {{"TargetSelection", "ALL"}, {"ScheduleTime", std::to_string(k_start_ms + 60'000)}},
        {{"TargetSelection", "ALL"}, {"Tag.1.Key", "bad key!"}, {"Tag.1.Value", "v"}},
    };
    for (const Fields& f : invalid) {
      CAPTURE(json(f).dump());
      CHECK(code(f) == "iot.common.InvalidParameter");
    }
    static_job(b, fw, {{"TargetSelection", "GRAY"}});
    CHECK(b.last.code == "MissingParameter");
    CHECK(code({{"TargetSelection", "SPECIFIC"}, {"TargetDeviceName.1", "no-such-device"}}) ==
          "iot.device.NotExistedDevice");
    CHECK(b.json(
              "CreateOTAStaticUpgradeJob",
              {{"ProductKey", k_pk}, {"FirmwareId", "nope"}, {"TargetSelection", "ALL"}})["Code"] ==
          "iot.ota.NotExistedFirmware");
    // Nothing above created a job, except the one with 200 devices.
    const json jobs = b.json("ListOTAJobByFirmware", {{"FirmwareId", fw}});
    CHECK(jobs["Total"] == 1);
    CHECK(jobs["Data"]["SimpleOTAJobInfo"][0]["TargetSelection"] == "SPECIFIC");
  }

  TEST_CASE("tasks: MaximumPerMinute spreads notifications, --time-scale compresses time") {
    // 100 devices, 10 per simulated minute, 60 simulated seconds per real second.
    CloudBench b(fleet(100, k_fast), scaled(60));
    const std::string fw = make_firmware(b, "V2");
    const std::string job = job_of(b, fw, {{"TargetSelection", "ALL"}, {"MaximumPerMinute", "10"}});
    CHECK(job_status(b, job) == "IN_PROGRESS");
    CHECK(counts(b, job)["QUEUED"] == 99); // the first slot is now
    // Slots every 6 simulated s = 100 real ms: 10 in the first simulated minute (1 real s).
    run_for(b, 999, 50);
    CHECK(100 - counts(b, job)["QUEUED"] == 10);
    run_for(b, 1000, 50);
    CHECK(100 - counts(b, job)["QUEUED"] == 20);
    // Any simulated minute has at most 10 notifications.
    run_for(b, 3000, 250);
    CHECK(100 - counts(b, job)["QUEUED"] == 50);
    // Each device: pickup 1 s, download 8 s, verify 1 s, burn 2 s (simulated) = 0.2 real s.
    run_for(b, 6000, 100);
    const auto c = counts(b, job);
    CHECK(c.at("SUCCEEDED") == 100);
    CHECK(job_status(b, job) == "COMPLETED");
    CHECK(firmware_of(b, "dev000042") == "V2");
    const json t = tasks(b, job, "SUCCEEDED").front();
    CHECK(t["Progress"] == "100");
    CHECK(t["SrcVersion"] == "V1");
    CHECK(t["DestVersion"] == "V2");
    CHECK(t["TaskDesc"] == "");
    const json q = b.json("QueryOTAJob", {{"JobId", job}})["Data"];
    CHECK(q["JobType"] == "UPGRADE_FIRMWARE");
    CHECK(q["SelectionType"] == "STATIC");
    CHECK(q["MaximumPerMinute"] == 10);
    CHECK(q.contains("UtcEndTime"));
  }

  TEST_CASE("tasks: progress goes 0, 25 … 100 through IN_PROGRESS, deterministic per seed") {
    CloudBench b(fleet(3, k_fast));
    const std::string fw = make_firmware(b, "V2");
    const std::string job = job_of(b, fw, {{"TargetSelection", "ALL"}});
    run_for(b, 0);
    b.service->tick();
    CHECK(counts(b, job)["NOTIFIED"] == 3);
    std::vector<std::string> seen;
    for (int i = 0; i < 14; ++i) {
      run_for(b, 1000);
      const json t = tasks(b, job).front();
      seen.push_back(t["TaskStatus"].get<std::string>() + ":" + t["Progress"].get<std::string>());
    }
    CHECK(seen == std::vector<std::string>{"IN_PROGRESS:0",
                                           "IN_PROGRESS:0",
                                           "IN_PROGRESS:25",
                                           "IN_PROGRESS:25",
                                           "IN_PROGRESS:50",
                                           "IN_PROGRESS:50",
                                           "IN_PROGRESS:75",
                                           "IN_PROGRESS:75",
                                           "IN_PROGRESS:100",
                                           "IN_PROGRESS:100",
                                           "IN_PROGRESS:100",
                                           "SUCCEEDED:100",
                                           "SUCCEEDED:100",
                                           "SUCCEEDED:100"});
  }

  TEST_CASE("failure groups: one hardware revision fails 30 %, visible in TaskDesc") {
    const std::string ota =
        R"({"speed": {"pickup_s": 1, "download_s": 4, "verify_s": 1, "burn_s": 1},
      "failure": [{"match": {"nickname_prefix": "hwrevB"}, "rate": 0.3,
                   "desc": "{step} failed ({code}) hw={nickname}"}]})";
    CloudBench b(fleet(1000, ota, "[]", R"(, "nicknames": {"hwrevA": 70, "hwrevB": 30})"),
                 scaled(10));
    const std::string fw = make_firmware(b, "V2");
    const std::string job = job_of(b, fw, {{"TargetSelection", "ALL"}});
    run_for(b, 5000, 500);
    CHECK(job_status(b, job) == "COMPLETED");
    int failed_b = 0;
    int failed_other = 0;
    std::set<std::string> steps;
    const std::regex desc(R"((download|verify|burn) failed \((-[234])\) hw=hwrevB)");
    for (const json& t : tasks(b, job, "FAILED")) {
      std::smatch m;
      const std::string d = t["TaskDesc"];
      if (std::regex_match(d, m, desc)) {
        ++failed_b;
        steps.insert(m[1]);
      } else {
        ++failed_other;
      }
    }
    // 300 hwrevB devices × 0.3 = 90 (binomial sd 7.9).
    CHECK(failed_b >= 60);
    CHECK(failed_b <= 120);
    CHECK(failed_other == 0);
    CHECK(steps.size() == 3); // "any": download, verify and burn failures
    CHECK(counts(b, job)["SUCCEEDED"] == 1000 - failed_b);
    // A failed device keeps its version.
    const json f = tasks(b, job, "FAILED").front();
    CHECK(firmware_of(b, f["DeviceName"]) == "V1");
    // The same seed and scenario fail the same devices.
    CloudBench again(fleet(1000, ota, "[]", R"(, "nicknames": {"hwrevA": 70, "hwrevB": 30})"),
                     scaled(10));
    const std::string fw2 = make_firmware(again, "V2");
    const std::string job2 = job_of(again, fw2, {{"TargetSelection", "ALL"}});
    run_for(again, 5000, 500);
    CHECK(counts(again, job2)["FAILED"] == failed_b);
  }

  TEST_CASE("failure groups by name prefix and firmware, a fixed step, default failure_rate") {
    const std::string ota =
        R"({"speed": {"pickup_s": 0, "download_s": 4, "verify_s": 0, "burn_s": 0},
      "failure_rate": 0,
      "failure": [{"match": {"name_prefix": "bad-"}, "rate": 1, "step": "download"},
                  {"match": {"firmware": "V0"}, "rate": 1, "step": "burn"}]})";
    CloudBench b(fleet(10, ota, R"([{"name": "bad-0001", "status": "ONLINE", "firmware": "V1"},
                                    {"name": "old-0001", "status": "ONLINE", "firmware": "V0"}])"));
    const std::string fw = make_firmware(b, "V2");
    const std::string job = job_of(b, fw, {{"TargetSelection", "ALL"}});
    run_for(b, 10'000);
    std::map<std::string, std::string> desc;
    for (const json& t : tasks(b, job, "FAILED")) {
      desc[t["DeviceName"]] = t["TaskDesc"];
    }
    CHECK(desc.size() == 2);
    CHECK(desc["bad-0001"] == "download failed (-2)");
    CHECK(desc["old-0001"] == "burn failed (-4)");
    CHECK(counts(b, job)["SUCCEEDED"] == 10);
  }

  TEST_CASE("devices already at DestVersion are skipped, SrcVersion.N and GRAY select") {
    CloudBench b(fleet(20, k_fast, R"([{"name": "at-v2-001", "status": "ONLINE", "firmware": "V2"},
                                        {"name": "at-v0-001", "status": "ONLINE", "firmware": "V0"}])"));
    const std::string fw = make_firmware(b, "V2");
    std::string job = job_of(b, fw, {{"TargetSelection", "ALL"}});
    auto all = tasks(b, job);
    CHECK(all.size() == 21);
    for (const json& t : all) {
      CHECK(t["DeviceName"] != "at-v2-001");
    }
    job = job_of(b, fw, {{"TargetSelection", "SPECIFIC"}, {"TargetDeviceName.1", "at-v2-001"}});
    CHECK(tasks(b, job).empty());
    CHECK(job_status(b, job) == "COMPLETED"); // nothing to do
    run_for(b, 20'000);
    const std::string fw3 = make_firmware(b, "V3");
    job = job_of(b, fw3, {{"TargetSelection", "ALL"}, {"SrcVersion.1", "V0"}});
    CHECK(tasks(b, job).empty()); // at-v0-001 is at V2 now
    job = job_of(b, fw3, {{"TargetSelection", "GRAY"}, {"GrayPercent", "33"}});
    CHECK(tasks(b, job).size() == 7); // 33 % of 22, rounded down
  }

  TEST_CASE("a device has one open task: a second job fails for it until the first ends") {
    CloudBench b(fleet(5, k_fast));
    const std::string fw = make_firmware(b, "V2");
    const std::string first =
        job_of(b, fw, {{"TargetSelection", "SPECIFIC"}, {"TargetDeviceName.1", "dev000001"}});
    const std::string fw3 = make_firmware(b, "V3");
    const std::string second = job_of(b, fw3, {{"TargetSelection", "ALL"}});
    const auto failed = tasks(b, second, "FAILED");
    REQUIRE(failed.size() == 1);
    CHECK(failed[0]["DeviceName"] == "dev000001");
    CHECK(failed[0]["TaskDesc"].get<std::string>().find(first) != std::string::npos);
    CHECK(tasks(b, second).size() == 5);
    CHECK(counts(b, second)["FAILED"] == 1);
    run_for(b, 20'000);
    CHECK(firmware_of(b, "dev000001") == "V2");
    CHECK(firmware_of(b, "dev000002") == "V3");
    const std::string third =
        job_of(b, fw3, {{"TargetSelection", "SPECIFIC"}, {"TargetDeviceName.1", "dev000001"}});
    const auto c = counts(b, third);
    CHECK(c.count("FAILED") == 0);
    CHECK(c.at("NOTIFIED") == 1);
  }

  TEST_CASE("CancelOTATaskByJob: the five booleans, the job ends CANCELED") {
    CloudBench b(fleet(30, k_fast));
    const std::string fw = make_firmware(b, "V2");
    const std::string job = job_of(b, fw, {{"TargetSelection", "ALL"}, {"MaximumPerMinute", "10"}});
    run_for(b, 13'500, 500); // 3 notified (0, 6, 12 s); the first one is far along
    auto c = counts(b, job);
    CHECK(c["QUEUED"] == 27);
    CHECK(b.json("CancelOTATaskByJob", {{"JobId", job}})["Code"] == "iot.common.InvalidParameter");
    CHECK(b.json("CancelOTATaskByJob", {{"JobId", job}, {"CancelQueuedTask", "maybe"}})["Code"] ==
          "iot.common.InvalidParameter");
    CHECK(b.json("CancelOTATaskByJob", {{"JobId", "nope"}, {"CancelQueuedTask", "true"}})["Code"] ==
          "iot.ota.NotExistedJob");
    CHECK(b.json("CancelOTATaskByJob", {{"JobId", job}, {"CancelQueuedTask", "true"}})["Success"] ==
          true);
    c = counts(b, job);
    CHECK(c["CANCELED"] == 27);
    CHECK(c["QUEUED"] == 0);
    CHECK(job_status(b, job) == "IN_PROGRESS"); // the started ones carry on
    CHECK(b.json("CancelOTATaskByJob",
                 {{"JobId", job}, {"CancelInProgressTask", "true"}})["Success"] == true);
    run_for(b, 30'000);
    c = counts(b, job);
    CHECK(c["CANCELED"] + c["SUCCEEDED"] == 30);
    CHECK(c["CANCELED"] >= 28);
    CHECK(job_status(b, job) == "CANCELED");
    CHECK(tasks(b, job, "CANCELED").front()["TaskDesc"] == "Canceled by the user.");
  }

  TEST_CASE("offline devices stay NOTIFIED, CancelNotifiedTask ends them") {
    CloudBench b(
        fleet(2, k_fast, R"([{"name": "offline-01", "status": "OFFLINE", "firmware": "V1"}])"));
    const std::string fw = make_firmware(b, "V2");
    const std::string job = job_of(b, fw, {{"TargetSelection", "ALL"}});
    run_for(b, 60'000);
    const auto notified = tasks(b, job, "NOTIFIED");
    REQUIRE(notified.size() == 1);
    CHECK(notified[0]["DeviceName"] == "offline-01");
    CHECK(job_status(b, job) == "IN_PROGRESS");
    b.json("CancelOTATaskByJob", {{"JobId", job}, {"CancelNotifiedTask", "true"}});
    CHECK(job_status(b, job) == "CANCELED");
    CHECK(firmware_of(b, "offline-01") == "V1");
  }

  TEST_CASE("retries after RetryInterval, RetryCount times, timeouts are not retried") {
    const std::string ota =
        R"({"speed": {"pickup_s": 1, "download_s": 4, "verify_s": 1, "burn_s": 1, "jitter": 0},
      "failure": [{"match": {"name_prefix": "dev"}, "rate": 1, "step": "verify"}]})";
    CloudBench b(fleet(1, ota), scaled(60));
    const std::string fw = make_firmware(b, "V2");
    const std::string job =
        job_of(b, fw, {{"TargetSelection", "ALL"}, {"RetryInterval", "10"}, {"RetryCount", "2"}});
    run_for(b, 1000, 20);
    json t = tasks(b, job).front();
    CHECK(t["TaskStatus"] == "QUEUED"); // failed once, waits 10 simulated minutes = 10 real s
    CHECK(t["TaskDesc"] == "retry 1 after: verify failed (-3)");
    run_for(b, 9000, 100);
    CHECK(tasks(b, job).front()["TaskStatus"] == "QUEUED");
    run_for(b, 30'000, 100);
    t = tasks(b, job).front();
    CHECK(t["TaskStatus"] == "FAILED");
    CHECK(t["TaskDesc"] == "verify failed (-3)");
    CHECK(job_status(b, job) == "COMPLETED");

    // 3 simulated minutes of download against a 1-minute timeout.
    CloudBench slow(fleet(1, R"({"speed": {"pickup_s": 1, "download_s": 180, "jitter": 0}})"),
                    scaled(60));
    const std::string fw2 = make_firmware(slow, "V2");
    const std::string job2 = job_of(slow,
                                    fw2,
                                    {{"TargetSelection", "ALL"},
                                     {"TimeoutInMinutes", "1"},
                                     {"RetryInterval", "0"},
                                     {"RetryCount", "5"}});
    run_for(slow, 1500, 50);
    t = tasks(slow, job2).front();
    CHECK(t["TaskStatus"] == "FAILED");
    CHECK(t["TaskDesc"] == "upgrade timed out (TimeoutInMinutes 1)");
    CHECK(t["Progress"] == "25");
    CHECK(t["Timeout"] == "1");
  }

  TEST_CASE("ListOTATaskByJob: paging ≤ 100, TaskStatus and DeviceNames.N filters") {
    CloudBench b(fleet(150, k_fast));
    const std::string fw = make_firmware(b, "V2");
    const std::string job = job_of(b, fw, {{"TargetSelection", "ALL"}, {"MaximumPerMinute", "10"}});
    json j = b.json("ListOTATaskByJob", {{"JobId", job}, {"PageSize", "101"}});
    CHECK(j["Code"] == "iot.common.InvalidPageParams");
    j = b.json("ListOTATaskByJob", {{"JobId", job}, {"TaskStatus", "DONE"}});
    CHECK(j["Code"] == "iot.common.InvalidParameter");
    j = b.json("ListOTATaskByJob", {{"JobId", job}, {"PageSize", "100"}, {"CurrentPage", "2"}});
    CHECK(j["Total"] == 150);
    CHECK(j["PageCount"] == 2);
    CHECK(j["CurrentPage"] == 2);
    CHECK(j["Data"]["SimpleOTATaskInfo"].size() == 50);
    CHECK(j["Data"]["SimpleOTATaskInfo"][0]["DeviceName"] == "dev000101");
    const json t = j["Data"]["SimpleOTATaskInfo"][0];
    for (const char* key : {"TaskId",
                            "JobId",
                            "IotId",
                            "ProductKey",
                            "ProductName",
                            "DeviceName",
                            "FirmwareId",
                            "SrcVersion",
                            "DestVersion",
                            "TaskStatus",
                            "Progress",
                            "TaskDesc",
                            "Timeout",
                            "UtcCreate",
                            "UtcModified"}) {
      CAPTURE(key);
      CHECK(t.contains(key));
    }
    CHECK_FALSE(t.contains("ModuleName")); // not in the SDK's SimpleOTATaskInfo
    j = b.json("ListOTATaskByJob",
               {{"JobId", job},
                {"DeviceNames.1", "dev000007"},
                {"DeviceNames.2", "dev000150"},
                {"TaskStatus", "QUEUED"}});
    CHECK(j["Total"] == 2);
    j = b.json("ListOTATaskByJob",
               {{"JobId", job}, {"DeviceNames.1", "dev000001"}, {"TaskStatus", "QUEUED"}});
    CHECK(j["Total"] == 0); // the first one was notified at once
    CHECK(b.json("ListOTATaskByJob", {{"JobId", "nope"}})["Code"] == "iot.ota.NotExistedJob");
  }

  TEST_CASE("verification job: ≤ 10 devices, NeedToVerify firmware waits for a passed one") {
    CloudBench b(fleet(20, k_fast));
    const std::string fw = make_firmware(b, "V2", "image", {{"NeedToVerify", "true"}});
    CHECK(b.json("QueryOTAFirmware", {{"FirmwareId", fw}})["FirmwareInfo"]["Status"] == 0);
    CHECK(static_job(b, fw, {{"TargetSelection", "ALL"}})["Code"] == "iot.ota.UnverifiedFirmware");
    Fields eleven{{"ProductKey", k_pk}, {"FirmwareId", fw}};
    for (int i = 1; i <= 11; ++i) {
      char dn[16];
      std::snprintf(dn, sizeof dn, "dev%06d", i);
      eleven["TargetDeviceName." + std::to_string(i)] = dn;
    }
    CHECK(b.json("CreateOTAVerifyJob", eleven)["Code"] == "iot.ota.DeviceCountExceeded");
    const json j = b.json("CreateOTAVerifyJob",
                          {{"ProductKey", k_pk},
                           {"FirmwareId", fw},
                           {"TargetDeviceName.1", "dev000001"},
                           {"TargetDeviceName.2", "dev000002"},
                           {"TimeoutInMinutes", "30"}});
    REQUIRE(j["Success"] == true);
    const std::string verify = j["Data"]["JobId"];
    CHECK(b.json("QueryOTAJob", {{"JobId", verify}})["Data"]["JobType"] == "VERFIY_FIRMWARE");
    CHECK(b.json("QueryOTAFirmware", {{"FirmwareId", fw}})["FirmwareInfo"]["Status"] == 2);
    run_for(b, 30'000);
    CHECK(job_status(b, verify) == "COMPLETED");
    CHECK(b.json("QueryOTAFirmware", {{"FirmwareId", fw}})["FirmwareInfo"]["Status"] == 1);
    const std::string job = job_of(b, fw, {{"TargetSelection", "ALL"}});
    CHECK(tasks(b, job).size() == 18); // the verified two are at V2 already
  }

  TEST_CASE("ScheduleTime: PLANNED until its (scaled) time, CancelScheduledTask") {
    CloudBench b(fleet(5, k_fast), scaled(60));
    const std::string fw = make_firmware(b, "V2");
    // 10 simulated minutes ahead = 10 real seconds.
    const std::string job = job_of(
        b,
        fw,
        {{"TargetSelection", "ALL"}, {"ScheduleTime", std::to_string(k_start_ms + 600'000)}});
    CHECK(job_status(b, job) == "PLANNED");
    CHECK(b.json("QueryOTAJob", {{"JobId", job}})["Data"]["UtcScheduleTime"] ==
          "2024-06-01T12:10:00.000Z");
    run_for(b, 9900, 100);
    CHECK(job_status(b, job) == "PLANNED");
    CHECK(counts(b, job)["QUEUED"] == 5);
    run_for(b, 2000, 100);
    CHECK(job_status(b, job) == "COMPLETED");
    const std::string later = job_of(
        b,
        make_firmware(b, "V3"),
        {{"TargetSelection", "ALL"}, {"ScheduleTime", std::to_string(b.now_ms + 3'600'000)}});
    b.json("CancelOTATaskByJob", {{"JobId", later}, {"CancelQueuedTask", "true"}});
    CHECK(counts(b, later)["QUEUED"] == 5); // a scheduled job's tasks need CancelScheduledTask
    b.json("CancelOTATaskByJob", {{"JobId", later}, {"CancelScheduledTask", "true"}});
    CHECK(counts(b, later)["CANCELED"] == 5);
    CHECK(job_status(b, later) == "CANCELED");
  }

  TEST_CASE("GenerateDeviceNameListURL + DnListFileUrl: more than 200 devices in one job") {
    CloudBench b(fleet(600, k_fast));
    const std::string fw = make_firmware(b, "V2");
    const json g = b.json("GenerateDeviceNameListURL", {})["Data"];
    CHECK(g.contains("FileUrl"));
    CHECK(g.contains("AccessKeyId"));
    std::string list = "deviceName\n";
    for (int i = 1; i <= 450; ++i) {
      char dn[16];
      std::snprintf(dn, sizeof dn, "dev%06d", i);
      list += std::string(dn) + "\r\n";
    }
    REQUIRE(post_object(b, g, list).status == 200);
    const std::string job =
        job_of(b, fw, {{"TargetSelection", "SPECIFIC"}, {"DnListFileUrl", g["FileUrl"]}});
    CHECK(tasks(b, job).size() == 450);
    CHECK_FALSE(b.json("QueryOTAJob", {{"JobId", job}})["Data"].contains("DnListFileUrl"));
    // A firmware URL is not a device list, and a list with an unknown name is refused.
    const json fg = upload_grant(b);
    REQUIRE(post_object(b, fg, "x").status == 200);
    CHECK(static_job(
              b,
              fw,
              {{"TargetSelection", "SPECIFIC"}, {"DnListFileUrl", fg["FirmwareUrl"]}})["Code"] ==
          "iot.ota.InvalidDnListFileUrl");
    const json g2 = b.json("GenerateDeviceNameListURL", {})["Data"];
    REQUIRE(post_object(b, g2, "dev000001\nghost-0001\n").status == 200);
    CHECK(static_job(
              b, fw, {{"TargetSelection", "SPECIFIC"}, {"DnListFileUrl", g2["FileUrl"]}})["Code"] ==
          "iot.device.NotExistedDevice");
  }

  TEST_CASE("OTA Actions: injected faults refuse without effect, state survives a restart") {
    CloudBench b(fleet(10, k_fast));
    const std::string fw = make_firmware(b, "V2");
    ServiceOptions failing = CloudBench::no_limits();
    failing.faults.fail_5xx = 1;
    b.start(failing);
    for (int i = 0; i < 4; ++i) {
      const auto r = b.call("CreateOTAStaticUpgradeJob",
                            {{"ProductKey", k_pk}, {"FirmwareId", fw}, {"TargetSelection", "ALL"}});
      CHECK((r.code == "ServiceUnavailable" || r.code == "iot.system.SystemException"));
    }
    b.start(CloudBench::no_limits());
    CHECK(b.json("ListOTAJobByFirmware", {{"FirmwareId", fw}})["Total"] == 0);
    const std::string job = job_of(b, fw, {{"TargetSelection", "ALL"}, {"MaximumPerMinute", "10"}});
    run_for(b, 20'000);
    const auto before = counts(b, job);
    // A new service on the same state (the emulator restarted) carries on where it was.
    b.start(CloudBench::no_limits());
    CHECK(counts(b, job) == before);
    run_for(b, 120'000, 2000);
    CHECK(counts(b, job)["SUCCEEDED"] == 10);
    ServiceOptions limited;
    limited.qps_scale = 1;
    b.start(limited);
    int throttled = 0;
    for (int i = 0; i < 15; ++i) {
      throttled += b.call("ListOTATaskByJob", {{"JobId", job}}).code == "Throttling.User" ? 1 : 0;
    }
    CHECK(throttled == 5); // QPS 10 (§3)
  }
}

namespace {

// POST /_emulator/activate: the device is ONLINE (or OFFLINE) from now on.
void set_online(CloudBench& b, const std::string& dn, const std::string& status = "ONLINE") {
  iot::sim::cloud::CloudRequest r;
  r.method = "POST";
  r.path = "/_emulator/activate";
  r.content_type = "application/x-www-form-urlencoded";
  r.body = std::string("productKey=") + k_pk + "&deviceName=" + dn + "&status=" + status;
  const auto answer = b.service->handle(r);
  REQUIRE(answer.status == 200);
}

std::set<std::string> task_names(CloudBench& b, const std::string& job) {
  std::set<std::string> out;
  for (const json& t : tasks(b, job)) {
    out.insert(t["DeviceName"].get<std::string>());
  }
  return out;
}

} // namespace

TEST_SUITE("sim::cloud OTA selection") {
  TEST_CASE("dynamic job: online devices at SrcVersion now and later, until its strategy ends") {
    CloudBench b(fleet(3,
                       k_fast,
                       R"([{"name": "late-001", "status": "OFFLINE", "firmware": "V1"},
                           {"name": "late-002", "status": "OFFLINE", "firmware": "V1"},
                           {"name": "old-0001", "status": "ONLINE", "firmware": "V0"}])"));
    const std::string fw = make_firmware(b, "V2");
    CHECK(b.json("CreateOTADynamicUpgradeJob",
                 {{"ProductKey", k_pk}, {"FirmwareId", fw}})["Success"] == false); // no SrcVersion
    const json created = b.json("CreateOTADynamicUpgradeJob",
                                {{"ProductKey", k_pk},
                                 {"FirmwareId", fw},
                                 {"SrcVersion.1", "V1"},
                                 {"Tag.1.Key", "k"},
                                 {"Tag.1.Value", "v"}});
    REQUIRE(created["Success"] == true);
    const std::string job = created["Data"]["JobId"];
    run_for(b, 60'000);
    CHECK(task_names(b, job) == std::set<std::string>{"dev000001", "dev000002", "dev000003"});
    CHECK(job_status(b, job) == "IN_PROGRESS"); // no open task, still taking on devices
    const json info = b.json("QueryOTAJob", {{"JobId", job}})["Data"];
    CHECK(info["SelectionType"] == "DYNAMIC");
    CHECK(info["DynamicMode"] == 1);
    set_online(b, "late-001");
    run_for(b, 60'000);
    CHECK(task_names(b, job).contains("late-001"));
    CHECK(firmware_of(b, "late-001") == "V2");
    CHECK_FALSE(task_names(b, job).contains("old-0001")); // not at a SrcVersion
    REQUIRE(b.json("CancelOTAStrategyByJob", {{"JobId", job}})["Success"] == true);
    CHECK(job_status(b, job) == "CANCELED");
    set_online(b, "late-002");
    run_for(b, 60'000);
    CHECK_FALSE(task_names(b, job).contains("late-002"));
  }

  TEST_CASE("dynamic job, DynamicMode 2: only devices that come online after it") {
    CloudBench b(
        fleet(2, k_fast, R"([{"name": "late-001", "status": "OFFLINE", "firmware": "V1"}])"));
    const std::string fw = make_firmware(b, "V2");
    const json created = b.json(
        "CreateOTADynamicUpgradeJob",
        {{"ProductKey", k_pk}, {"FirmwareId", fw}, {"SrcVersion.1", "V1"}, {"DynamicMode", "2"}});
    REQUIRE(created["Success"] == true);
    const std::string job = created["Data"]["JobId"];
    run_for(b, 30'000);
    CHECK(task_names(b, job).empty());
    b.now_ms += 1000;
    set_online(b, "late-001");
    run_for(b, 60'000);
    CHECK(task_names(b, job) == std::set<std::string>{"late-001"});
  }

  TEST_CASE("static job, TargetSelection GROUP: the group's devices of the product") {
    const std::string s = scenario_with(
        R"([{"product_key": "a1OtaProduct", "devices": [
              {"name": "grp-0001", "status": "ONLINE", "firmware": "V1", "groups": ["g1"]},
              {"name": "grp-0002", "status": "ONLINE", "firmware": "V1", "tags": {"hw": "B"}},
              {"name": "grp-0003", "status": "ONLINE", "firmware": "V1"}]}])",
        R"("groups": [{"name": "g1"}, {"name": "hwb", "dynamic_tag": "hw=B"}], "ota": )" + k_fast +
            ",");
    CloudBench b(s);
    const std::string fw = make_firmware(b, "V2");
    const json list = b.json("QueryDeviceGroupList", {{"GroupName", "hw"}});
    REQUIRE(list["Data"]["GroupInfo"].size() == 1);
    CHECK(list["Data"]["GroupInfo"][0]["GroupType"] == "LINK_PLATFORM_DYNAMIC");
    const std::string dyn = list["Data"]["GroupInfo"][0]["GroupId"];
    const json all = b.json("QueryDeviceGroupList", {});
    REQUIRE(all["Data"]["GroupInfo"].size() == 2);
    const std::string g1 = all["Data"]["GroupInfo"][0]["GroupId"];
    std::string job = job_of(b, fw, {{"TargetSelection", "GROUP"}, {"GroupId", g1}});
    CHECK(task_names(b, job) == std::set<std::string>{"grp-0001"});
    job = job_of(b, fw, {{"TargetSelection", "GROUP"}, {"GroupId", dyn}});
    CHECK(task_names(b, job) == std::set<std::string>{"grp-0002"});
    CHECK(b.json("QueryOTAJob", {{"JobId", job}})["Data"]["GroupName"] == "hwb");
    CHECK(static_job(b, fw, {{"TargetSelection", "GROUP"}, {"GroupId", "nope"}})["Code"] ==
          "iot.group.NotExistedGroup");
    const json members =
        b.json("QueryDeviceListByDeviceGroup", {{"GroupId", g1}, {"PageSize", "1"}});
    CHECK(members["Total"] == 1);
    CHECK(members["Data"]["SimpleDeviceInfo"][0]["DeviceName"] == "grp-0001");
    const json tagged =
        b.json("QueryDeviceByTags", {{"Tag.1.TagKey", "hw"}, {"Tag.1.TagValue", "B"}});
    CHECK(tagged["Total"] == 1);
    CHECK(tagged["Data"]["SimpleDeviceInfo"][0]["DeviceName"] == "grp-0002");
    const json found = b.json(
        "QueryDeviceBySQL",
        {{"SQL",
          "SELECT * FROM device WHERE tag.hw = 'B' OR device_name LIKE 'grp-000_' LIMIT 1,2"}});
    REQUIRE(found["Success"] == true);
    CHECK(found["TotalCount"] == 3);
    REQUIRE(found["Data"].size() == 2);
    CHECK(found["Data"][0]["DeviceName"] == "grp-0002");
    CHECK(found["Data"][0]["Tags"][0]["TagName"] == "hw");
    CHECK(found["Data"][0]["OTAModules"][0]["FirmwareVersion"] == "V1");
  }

  TEST_CASE("multi-file firmware: every file checked, listed by QueryOTAFirmware") {
    CloudBench b(fleet(1, k_fast));
    const std::string one = "user1 image";
    const std::string two = "user2 image, longer";
    const json g1 = upload_grant(b);
    REQUIRE(post_object(b, g1, one).status == 200);
    const json g2 = upload_grant(b);
    REQUIRE(post_object(b, g2, two).status == 200);
    Fields p{{"ProductKey", k_pk},
             {"DestVersion", "V2"},
             {"FirmwareName", "fw-multi"},
             {"MultiFiles.1.Name", "user1.bin"},
             {"MultiFiles.1.Size", std::to_string(one.size())},
             {"MultiFiles.1.Url", g1["FirmwareUrl"]},
             {"MultiFiles.1.SignValue", md5(one)},
             {"MultiFiles.2.Name", "user2.bin"},
             {"MultiFiles.2.Size", std::to_string(two.size())},
             {"MultiFiles.2.Url", g2["FirmwareUrl"]},
             {"MultiFiles.2.SignValue", md5(one)}}; // wrong: user1's digest
    CHECK(b.json("CreateOTAFirmware", p)["Code"] == "iot.ota.FirmwareSignMismatch");
    p["MultiFiles.2.SignValue"] = md5(two);
    p["MultiFiles.2.Name"] = "user1.bin";
    CHECK(b.json("CreateOTAFirmware", p)["Success"] == false); // two files of one name
    p["MultiFiles.2.Name"] = "user2.bin";
    const json created = b.json("CreateOTAFirmware", p);
    REQUIRE(created["Success"] == true);
    const json info = b.json("QueryOTAFirmware", {{"FirmwareId", created["Data"]["FirmwareId"]}});
    const json files = info["FirmwareInfo"]["MultiFiles"];
    REQUIRE(files.size() == 2);
    CHECK(files[1]["Name"] == "user2.bin");
    CHECK(files[1]["Size"] == two.size());
    CHECK(files[1]["FileMd5"] == md5(two));
    CHECK_FALSE(files[1].contains("object_key"));
    CHECK(info["FirmwareInfo"]["FirmwareUrl"] == g1["FirmwareUrl"]); // the first file's
  }
}
