// SPDX-License-Identifier: MIT
// secrets compare in process: run_secrets_compare with a devices file, the factory ledger and a
// cloud answered by the fake HTTP client (the only way to test --cloud until the cloud emulator
// is there), and the command line through cli::run (exit codes, masking, the stderr summary).
#include "cli/app.hpp"
#include "cli_run.hpp"
#include "cloud/iot_api.hpp"
#include "commands/pool.hpp"
#include "commands/secrets_compare.hpp"
#include "unit/cli/capture_output.hpp"
#include "unit/cloud/fake_http.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace iot;
using namespace iot::commands;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_pk = "a1B2c3D4e5F";
const std::string k_s1 = "S1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const std::string k_s2 = "S2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const std::string k_s3 = "S3cccccccccccccccccccccccccccccc";
const std::string k_s4 = "S4dddddddddddddddddddddddddddddd";
const std::string k_other = "SXxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

using iot::test::CaptureOutput;

// A temporary directory with the test's files, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("iotfleet-cmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string write(const std::string& name, const std::string& content) const {
    const auto p = path / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }
};

struct Fixture {
  TempDir dir;
  CaptureOutput output;
  Context ctx;
  Fixture() {
    ctx.output = &output;
    ctx.env.getenv = [](std::string_view name) -> std::optional<std::string> {
      if (name == "HOME") {
        return std::string("/nonexistent-home-for-tests");
      }
      return std::nullopt;
    };
    ctx.env.read_stdin = []() -> Result<std::string> { return std::string(); };
    ctx.env.hostname = [] { return std::string("test-host"); };
  }
};

// Snapshot: dev0001 S1 ONLINE, dev0002 S2 OFFLINE, dev0003 S3 UNACTIVE, dev0004 S4 ONLINE.
std::string snapshot_csv() {
  const std::string pk(k_pk);
  return "product_key,device_name,device_secret,status,iot_id\n" + pk + ",dev0001," + k_s1 +
         ",ONLINE,id1\n" + pk + ",dev0002," + k_s2 + ",OFFLINE,id2\n" + pk + ",dev0003," + k_s3 +
         ",UNACTIVE,id3\n" + pk + ",dev0004," + k_s4 + ",ONLINE,id4\n";
}

// Column name -> cell of each row.
std::map<std::string, std::map<std::string, core::Cell>> rows_by_device(const core::Table& t) {
  std::map<std::string, std::map<std::string, core::Cell>> out;
  for (const auto& row : t.rows) {
    std::map<std::string, core::Cell> cells;
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      cells[t.columns[i]] = row[i];
    }
    out[std::get<std::string>(cells["device_name"])] = cells;
  }
  return out;
}

std::string text(const core::Cell& c) {
  return std::holds_alternative<std::string>(c) ? std::get<std::string>(c) : std::string();
}

// No cell holds a secret, as text or as a Secret cell.
void check_no_secret(const core::Table& t) {
  for (const auto& row : t.rows) {
    for (const auto& cell : row) {
      CHECK_FALSE(std::holds_alternative<core::Secret>(cell));
      for (const auto& s : {k_s1, k_s2, k_s3, k_s4, k_other}) {
        CHECK(text(cell).find(s) == std::string::npos);
      }
    }
  }
}

struct CloudHarness {
  cloud::test::FakeHttpClient http;
  cloud::test::ManualClock clock;
  std::unique_ptr<cloud::OpenApiClient> client;
  std::unique_ptr<cloud::IotApi> api;
  // The live cloud: DeviceName -> (secret, status); other names are unknown to it.
  std::map<std::string, std::pair<std::string, std::string>> devices;
  std::set<std::string> asked;

  CloudHarness() {
    cloud::RateLimiter::Options options;
    options.clock = clock.clock();
    options.sleep = clock.sleeper();
    auto limiter = std::make_shared<cloud::RateLimiter>(options);
    cloud::OpenApiConfig config;
    config.access_key = cloud::AccessKey{"id", "secret", ""};
    config.region_id = "cn-shanghai";
    cloud::OpenApiHooks hooks;
    hooks.sleep = clock.sleeper();
    hooks.jitter = [] { return 0.0; };
    client = std::make_unique<cloud::OpenApiClient>(http, config, limiter, hooks);
    api = std::make_unique<cloud::IotApi>(*client);
    http.set_handler([this](const cloud::HttpRequest& req) -> Result<cloud::HttpResponse> {
      const auto p = cloud::test::form_of(req);
      nlohmann::json list = nlohmann::json::array();
      CHECK(p.at("Action") == "BatchQueryDeviceDetail");
      CHECK(p.at("ProductKey") == k_pk);
      for (int i = 1;; ++i) {
        const auto it = p.find("DeviceName." + std::to_string(i));
        if (it == p.end()) {
          break;
        }
        asked.insert(it->second);
        if (const auto d = devices.find(it->second); d != devices.end()) {
          list.push_back({{"DeviceName", d->first},
                          {"ProductKey", k_pk},
                          {"DeviceSecret", d->second.first},
                          {"Status", d->second.second},
                          {"IotId", "iot-" + d->first}});
        }
      }
      nlohmann::json body = {{"RequestId", "R1"}, {"Success", true}, {"Data", {{"Data", list}}}};
      return cloud::HttpResponse{200, {}, body.dump()};
    });
  }
};

} // namespace

TEST_SUITE("commands::secrets_compare") {
  TEST_CASE("a devices file with planted differences: verdicts, counts, no secret printed") {
    Fixture f;
    SecretsCompareOptions o;
    o.snapshot = f.dir.write("snap.csv", snapshot_csv());
    o.devices = f.dir.write("devices.csv",
                            "device_name,device_secret\n"
                            "dev0001," +
                                k_s1 +
                                "\n"
                                "dev0002," +
                                k_other +
                                "\n"
                                "dev0003," +
                                k_s3 +
                                "\n"
                                "dev0009," +
                                k_s1 +
                                "\n"
                                "dev0004\n");
    auto r = run_secrets_compare(o, f.ctx);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(r->checked == 5);
    CHECK(r->differences == 2);
    CHECK(r->counts[static_cast<std::size_t>(core::SecretVerdict::match)] == 2);
    CHECK(r->counts[static_cast<std::size_t>(core::SecretVerdict::module_side)] == 1);
    CHECK(r->counts[static_cast<std::size_t>(core::SecretVerdict::not_in_snapshot)] == 1);
    CHECK(r->counts[static_cast<std::size_t>(core::SecretVerdict::unactivated)] == 1);
    auto rows = rows_by_device(r->table);
    CHECK(rows.size() == 3); // the two differences and the unactivated note
    CHECK(text(rows["dev0002"]["verdict"]) == "module-side");
    CHECK(text(rows["dev0002"]["source"]).ends_with("devices.csv:3"));
    CHECK(text(rows["dev0002"]["status"]) == "OFFLINE");
    CHECK(text(rows["dev0002"]["action"]).find("re-burn") != std::string::npos);
    CHECK(text(rows["dev0009"]["verdict"]) == "not-in-snapshot");
    CHECK(text(rows["dev0003"]["verdict"]) == "unactivated");
    // Fingerprints: 8 hex digits, equal for equal secrets, different otherwise.
    const auto fp_module = text(rows["dev0002"]["module_fp"]);
    const auto fp_snapshot = text(rows["dev0002"]["snapshot_fp"]);
    CHECK(fp_module.size() == 8);
    CHECK(fp_module.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(fp_module != fp_snapshot);
    CHECK(text(rows["dev0003"]["module_fp"]) == text(rows["dev0003"]["snapshot_fp"]));
    CHECK(std::holds_alternative<std::monostate>(rows["dev0002"]["cloud_fp"]));
    check_no_secret(r->table);
    CHECK(r->summary.find("5 devices checked") != std::string::npos);
    CHECK(r->summary.find("1 module-side") != std::string::npos);
    CHECK(r->summary.find("2 differ") != std::string::npos);
  }

  TEST_CASE("all match: nothing listed, --all lists them, --show-secrets adds Secret cells") {
    Fixture f;
    SecretsCompareOptions o;
    o.snapshot = f.dir.write("snap.csv", snapshot_csv());
    o.devices =
        f.dir.write("devices.ndjson",
                    "{\"device_name\":\"dev0001\",\"device_secret\":\"" + k_s1 +
                        "\"}\n{\"device_name\":\"dev0004\",\"device_secret\":\"" + k_s4 + "\"}\n");
    auto r = run_secrets_compare(o, f.ctx);
    REQUIRE(r);
    CHECK(r->differences == 0);
    CHECK(r->checked == 2);
    CHECK(r->table.rows.empty());
    o.all = true;
    f.ctx.global.show_secrets = true;
    r = run_secrets_compare(o, f.ctx);
    REQUIRE(r);
    REQUIRE(r->table.rows.size() == 2);
    auto rows = rows_by_device(r->table);
    CHECK(text(rows["dev0001"]["verdict"]) == "match");
    REQUIRE(std::holds_alternative<core::Secret>(rows["dev0001"]["snapshot_secret"]));
    CHECK(std::get<core::Secret>(rows["dev0001"]["snapshot_secret"]).value == k_s1);
    CHECK(std::get<core::Secret>(rows["dev0004"]["module_secret"]).value == k_s4);
  }

  TEST_CASE("usage errors: no source, a bad snapshot, a bad devices file, another product") {
    Fixture f;
    SecretsCompareOptions o;
    o.snapshot = f.dir.write("snap.csv", snapshot_csv());
    auto none = run_secrets_compare(o, f.ctx);
    REQUIRE_FALSE(none);
    CHECK(none.error().kind == ErrorKind::usage);
    CHECK(none.error().message.find("at least one of --port") != std::string::npos);

    o.devices = f.dir.write("devices.txt", "dev0001\n");
    const std::string bad_path = f.dir.write("bad.csv", snapshot_csv() + "a1B2c3D4e5F,dev0005\n");
    SecretsCompareOptions bad = o;
    bad.snapshot = bad_path;
    auto broken = run_secrets_compare(bad, f.ctx);
    REQUIRE_FALSE(broken);
    CHECK(broken.error().kind == ErrorKind::usage);
    CHECK(broken.error().message.find("snapshot " + bad_path + ": line 6: has 2 fields") == 0);

    SecretsCompareOptions missing = o;
    missing.snapshot = (f.dir.path / "nope.csv").string();
    auto absent = run_secrets_compare(missing, f.ctx);
    REQUIRE_FALSE(absent);
    CHECK(absent.error().kind == ErrorKind::usage);

    SecretsCompareOptions bad_devices = o;
    bad_devices.devices = f.dir.write("d.csv", "device_name,device_secret\ndev0001,ab…cd\n");
    auto masked = run_secrets_compare(bad_devices, f.ctx);
    REQUIRE_FALSE(masked);
    CHECK(masked.error().kind == ErrorKind::usage);
    CHECK(masked.error().message.find("d.csv: line 2: the DeviceSecret (device_secret) is "
                                      "masked") != std::string::npos);

    SecretsCompareOptions other = o;
    other.product_key = "a1OtherKey9";
    auto wrong = run_secrets_compare(other, f.ctx);
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().kind == ErrorKind::usage);
    CHECK(wrong.error().message.find("is of product a1B2c3D4e5F") != std::string::npos);
  }

  TEST_CASE("--cloud: live secrets from BatchQueryDeviceDetail decide cloud-side") {
    Fixture f;
    CloudHarness cloud;
    cloud.devices = {{"dev0001", {k_s1, "ONLINE"}},
                     {"dev0002", {k_other, "OFFLINE"}}, // changed on the cloud side
                     {"dev0003", {k_s3, "ONLINE"}}};    // activated since the snapshot
    // dev0004: deleted from the cloud since the snapshot.
    SecretsCompareOptions o;
    o.snapshot = f.dir.write("snap.csv", snapshot_csv());
    o.cloud = true;
    o.devices = f.dir.write("devices.csv",
                            "device_name,device_secret\n"
                            "dev0001," +
                                k_s1 +
                                "\n"
                                "dev0002," +
                                k_s2 +
                                "\n"
                                "dev0003," +
                                k_s3 +
                                "\n"
                                "dev0004," +
                                k_s4 + "\n");
    auto r = run_secrets_compare(o, f.ctx, cloud.api.get());
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    CHECK(cloud.asked == std::set<std::string>{"dev0001", "dev0002", "dev0003", "dev0004"});
    auto rows = rows_by_device(r->table);
    CHECK(rows.size() == 2);
    CHECK(text(rows["dev0002"]["verdict"]) == "cloud-side");
    CHECK(text(rows["dev0002"]["action"]).find("re-register") != std::string::npos);
    CHECK(text(rows["dev0002"]["cloud_fp"]) != text(rows["dev0002"]["snapshot_fp"]));
    CHECK(text(rows["dev0002"]["module_fp"]) == text(rows["dev0002"]["snapshot_fp"]));
    CHECK(text(rows["dev0004"]["verdict"]) == "not-in-cloud");
    CHECK(r->counts[static_cast<std::size_t>(core::SecretVerdict::match)] == 2); // live ONLINE
    CHECK(r->differences == 2);
    check_no_secret(r->table);

    // Without modules: every device of the snapshot against the cloud.
    SecretsCompareOptions fleet;
    fleet.snapshot = o.snapshot;
    fleet.cloud = true;
    cloud.asked.clear();
    auto all = run_secrets_compare(fleet, f.ctx, cloud.api.get());
    REQUIRE(all);
    CHECK(all->checked == 4);
    CHECK(cloud.asked.size() == 4);
    auto fleet_rows = rows_by_device(all->table);
    CHECK(text(fleet_rows["dev0002"]["verdict"]) == "cloud-side");
    CHECK(text(fleet_rows["dev0002"]["source"]) == "snapshot");
    CHECK(text(fleet_rows["dev0004"]["verdict"]) == "not-in-cloud");
  }

  TEST_CASE("--cloud: a cloud error is a cloud error, not a verdict") {
    Fixture f;
    CloudHarness cloud;
    cloud.http.set_handler([](const cloud::HttpRequest&) -> Result<cloud::HttpResponse> {
      return cloud::HttpResponse{
          400,
          {},
          R"({"RequestId":"R9","Success":false,"Code":"iot.prod.NotExistedProduct","Message":"no"})"};
    });
    SecretsCompareOptions o;
    o.snapshot = f.dir.write("snap.csv", snapshot_csv());
    o.cloud = true;
    auto r = run_secrets_compare(o, f.ctx, cloud.api.get());
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::cloud);
    CHECK(r.error().message.find("--cloud") == 0);
  }

  TEST_CASE("--ledger: the burned secret against the snapshot") {
    Fixture f;
    f.ctx.global.settings.ledger = (f.dir.path / "ledger.db").string();
    const std::string pk(k_pk);
    PoolImportOptions import;
    import.file = f.dir.write("pool.csv",
                              "ProductKey,DeviceName,DeviceSecret\n" + pk + ",dev0001," + k_s1 +
                                  "\n" + pk + ",dev0002," + k_other + "\n");
    REQUIRE(run_pool_import(import, f.ctx));
    SecretsCompareOptions o;
    o.snapshot = f.dir.write("snap.csv", snapshot_csv());
    o.ledger = true;
    o.devices = f.dir.write("devices.csv",
                            "device_name,device_secret\n"
                            "dev0001," +
                                k_s1 +
                                "\n"
                                "dev0002," +
                                k_other +
                                "\n"
                                "dev0004," +
                                k_s4 + "\n");
    auto r = run_secrets_compare(o, f.ctx);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    auto rows = rows_by_device(r->table);
    CHECK(rows.size() == 1);
    // The module holds what the factory burned; the snapshot (the cloud) has another secret.
    CHECK(text(rows["dev0002"]["verdict"]) == "ledger-differs");
    CHECK(text(rows["dev0002"]["ledger_fp"]) == text(rows["dev0002"]["module_fp"]));
    CHECK(r->differences == 1);
    REQUIRE(f.output.warnings.size() == 1);
    CHECK(f.output.warnings[0].find("1 of 3 devices are not in the ledger") == 0);

    SecretsCompareOptions nowhere = o;
    f.ctx.global.settings.ledger = (f.dir.path / "missing.db").string();
    auto missing = run_secrets_compare(nowhere, f.ctx);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().kind == ErrorKind::config);
    CHECK_FALSE(fs::exists(f.dir.path / "missing.db")); // not created by a compare
  }
}

TEST_SUITE("cli secrets compare") {
  using Run = testing::CliRun;
  Run run_cli(std::vector<const char*> args) {
    return testing::run_cli(std::move(args), {}, "dev0001\ndev0003\n");
  }

  TEST_CASE("exit 6 on a difference, 0 when all match, 2 without a source, masked output") {
    TempDir dir;
    const auto snap = dir.write("snap.csv", snapshot_csv());
    const auto diff = dir.write("d.csv", "device_name,device_secret\ndev0002," + k_other + "\n");
    Run r = run_cli(
        {"secrets", "compare", "--snapshot", snap.c_str(), "--devices", diff.c_str(), "-o", "csv"});
    CHECK(r.code == 6);
    CHECK(r.out.find("\ndev0002,module-side,") != std::string::npos);
    CHECK(r.out.find(k_other) == std::string::npos);
    CHECK(r.out.find(k_s2) == std::string::npos);
    CHECK(r.err.find("secrets compare: 1 device checked") != std::string::npos);
    CHECK(r.err.find("iotfleet: error: 1 of 1 devices differ") != std::string::npos);

    r = run_cli({"secrets",
                 "compare",
                 "--snapshot",
                 snap.c_str(),
                 "--devices",
                 diff.c_str(),
                 "-o",
                 "csv",
                 "--show-secrets"});
    CHECK(r.code == 6);
    CHECK(r.out.find(k_other) != std::string::npos);
    CHECK(r.out.find(k_s2) != std::string::npos);

    // Names from stdin: presence and status only (dev0003 is UNACTIVE: a note, exit 0).
    r = run_cli({"secrets", "compare", "--snapshot", snap.c_str(), "--devices", "-", "-o", "csv"});
    CHECK(r.code == 0);
    CHECK(r.out.find("dev0003,unactivated,stdin:2,UNACTIVE") != std::string::npos);

    r = run_cli({"secrets", "compare", "--snapshot", snap.c_str()});
    CHECK(r.code == 2);
    CHECK(r.err.find("at least one of --port") != std::string::npos);
  }

  TEST_CASE("--ledger takes an optional FILE") {
    TempDir dir;
    const auto snap = dir.write("snap.csv", snapshot_csv());
    const auto missing = (dir.path / "none.db").string();
    Run r =
        run_cli({"secrets", "compare", "--snapshot", snap.c_str(), "--ledger", missing.c_str()});
    CHECK(r.code == 2);
    CHECK(r.err.find("no ledger at " + missing) != std::string::npos);
    r = run_cli({"--ledger",
                 missing.c_str(),
                 "secrets",
                 "compare",
                 "--ledger",
                 "--snapshot",
                 snap.c_str()});
    CHECK(r.code == 2);
    CHECK(r.err.find("no ledger at " + missing) != std::string::npos);
  }
}
