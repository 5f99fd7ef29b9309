// SPDX-License-Identifier: MIT
// creds mqtt in process: run_creds_mqtt with the secret from a file, stdin and a ledger filled
// with Ledger::import (the doc's vectors, docs/aliyun-iot-protocol.md §4-5), the keepalive checks,
// bad inputs; and the command line through cli::run (masking, -o json, exit codes).
#include "cli/app.hpp"
#include "cli_run.hpp"
#include "cloud/device_sign.hpp"
#include "commands/creds.hpp"
#include "core/triplet_file.hpp"
#include "store/ledger.hpp"
#include "unit/cli/capture_output.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

using namespace iot;
using namespace iot::commands;
namespace fs = std::filesystem;

namespace {

// The official vector of §5.
constexpr std::string_view k_vector_password = "FAFD82A3D602B37FB0FA8B7892F24A477F851A14";
constexpr std::string_view k_vector_client_id =
    "12345|securemode=3,signmethod=hmacsha1,timestamp=789|";
// The synthetic vectors of §4 and §5.
constexpr std::string_view k_pk = "a1b2c3d4e5f";
constexpr std::string_view k_ds = "0123456789abcdef0123456789abcdef";
constexpr std::string_view k_ps = "0123456789ABCDEF";
constexpr std::string_view k_random = "8Ygb7ULYh53B6OA";

using iot::test::CaptureOutput;

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("iotfleet-creds-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  // Written 0600 like a real secret file.
  [[nodiscard]] std::string write(const std::string& name, const std::string& content) const {
    const auto p = path / name;
    std::ofstream(p, std::ios::binary) << content;
    ::chmod(p.c_str(), 0600);
    return p.string();
  }
};

struct Fixture {
  TempDir dir;
  CaptureOutput output;
  Context ctx;
  std::string stdin_text;
  std::map<std::string, std::string> vars{{"HOME", "/nonexistent-home-for-tests"}};
  Fixture() {
    ctx.output = &output;
    ctx.env.getenv = [this](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      return it == vars.end() ? std::nullopt : std::optional(it->second);
    };
    ctx.env.read_stdin = [this]() -> Result<std::string> { return stdin_text; };
    ctx.env.hostname = [] { return std::string("test-host"); };
  }
  // A ledger holding the given rows, set as the context's --ledger.
  void ledger_with(const std::vector<core::TripletRow>& rows) {
    const auto path = dir.path / "ledger.db";
    auto ledger = store::open_ledger(path);
    REQUIRE(ledger);
    auto summary = (*ledger)->import(rows, "test.csv", store::Actor{"test-host", "", 1}, false);
    REQUIRE(summary);
    REQUIRE(summary->committed);
    REQUIRE(summary->added == rows.size());
    ctx.global.settings.ledger = path.string();
  }
};

CredsMqttOptions vector_options() {
  CredsMqttOptions o;
  o.device_name = "device";
  o.product_key = "pk";
  o.client_id = "12345";
  o.timestamp = "789";
  o.sign_method = "hmacsha1";
  o.secure_mode = 3;
  return o;
}

// Field name -> cell of a single-record table.
std::map<std::string, core::Cell> fields(const core::Table& t) {
  REQUIRE(t.single);
  REQUIRE(t.rows.size() == 1);
  std::map<std::string, core::Cell> out;
  for (std::size_t i = 0; i < t.columns.size(); ++i) {
    out[t.columns[i]] = t.rows[0][i];
  }
  return out;
}

std::string text(const core::Cell& c) {
  return std::holds_alternative<std::string>(c) ? std::get<std::string>(c) : std::string();
}

std::string password(const core::Cell& c) {
  REQUIRE(std::holds_alternative<core::Secret>(c));
  return std::get<core::Secret>(c).value;
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Every way to give a DeviceSecret is named.
void check_lists_device_secret_ways(const std::string& message) {
  CHECK(contains(message, "--device-secret-file FILE"));
  CHECK(contains(message, "--device-secret-file - to read it from stdin"));
  CHECK(contains(message, "iotfleet pool import FILE"));
  CHECK(contains(message, "--ledger FILE, IOTFLEET_LEDGER or the config's ledger"));
}

} // namespace

TEST_SUITE("commands::creds mqtt") {
  TEST_CASE("the official vector with the DeviceSecret from a file") {
    Fixture f;
    auto o = vector_options();
    o.device_secret_file = f.dir.write("ds", "secret\n");
    auto r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    auto row = fields(*r);
    CHECK(text(row["client_id"]) == k_vector_client_id);
    CHECK(text(row["username"]) == "device&pk");
    CHECK(password(row["password"]) == k_vector_password);
    CHECK(text(row["sign_content"]) == "clientId12345deviceNamedeviceproductKeypktimestamp789");
    CHECK(text(row["host"]) == "pk.iot-as-mqtt.cn-shanghai.aliyuncs.com");
    CHECK(std::get<std::int64_t>(row["port"]) == 1883);
    CHECK(std::get<bool>(row["tls"]) == false);
    CHECK(std::get<std::int64_t>(row["keepalive"]) == 120);
    CHECK(std::get<std::int64_t>(row["server_drop_after_s"]) == 180);
    CHECK(std::get<std::int64_t>(row["server_drop_latest_s"]) == 210);
    CHECK(text(row["product_key"]) == "pk");
    CHECK(text(row["device_name"]) == "device");
    CHECK(text(row["signed_with"]) == "DeviceSecret from file " + *o.device_secret_file);
    CHECK(f.output.warnings.empty());
    // The column set the README documents, in order.
    CHECK(r->columns == std::vector<std::string>{"host",
                                                 "port",
                                                 "tls",
                                                 "client_id",
                                                 "username",
                                                 "password",
                                                 "keepalive",
                                                 "server_drop_after_s",
                                                 "server_drop_latest_s",
                                                 "product_key",
                                                 "device_name",
                                                 "sign_content",
                                                 "signed_with"});
  }

  TEST_CASE("the DeviceSecret from stdin, defaults: TLS, hmacsha256, PK.DN, no timestamp") {
    Fixture f;
    f.stdin_text = std::string(k_ds) + "\r\n";
    CredsMqttOptions o;
    o.device_name = "dev01";
    o.product_key = std::string(k_pk);
    o.device_secret_file = "-";
    auto r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    auto row = fields(*r);
    CHECK(text(row["client_id"]) == "a1b2c3d4e5f.dev01|securemode=2,signmethod=hmacsha256|");
    CHECK(std::get<bool>(row["tls"]) == true);
    CHECK(password(row["password"]) == cloud::device_sign(cloud::SignMethod::hmacsha256,
                                                          k_ds,
                                                          {{"clientId", "a1b2c3d4e5f.dev01"},
                                                           {"deviceName", "dev01"},
                                                           {"productKey", std::string(k_pk)}}));
    CHECK(text(row["signed_with"]) == "DeviceSecret from stdin");

    // The §5 synthetic SHA-256 vector, with the timestamp.
    o.timestamp = "1700000000000";
    r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    row = fields(*r);
    CHECK(password(row["password"]) ==
          "913C60FE9C89A6FDCEB34A5C8813F3C9FEBA0D061ABA9B5BE16098F9E03CFDC7");
  }

  TEST_CASE("the DeviceSecret from a ledger filled with Ledger::import") {
    Fixture f;
    f.ledger_with({{std::string(k_pk), "dev01", std::string(k_ds), core::Scheme::device, 1},
                   {std::string(k_pk), "dev02", std::string(32, 'x'), core::Scheme::device, 2}});
    CredsMqttOptions o;
    o.device_name = "dev01"; // no --product-key: the ledger's record gives it
    o.timestamp = "1700000000000";
    auto r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    auto row = fields(*r);
    CHECK(text(row["product_key"]) == k_pk);
    CHECK(text(row["username"]) == "dev01&a1b2c3d4e5f");
    CHECK(password(row["password"]) ==
          "913C60FE9C89A6FDCEB34A5C8813F3C9FEBA0D061ABA9B5BE16098F9E03CFDC7");
    CHECK(text(row["signed_with"]) ==
          "DeviceSecret from the ledger " + *f.ctx.global.settings.ledger + " (available)");
    CHECK(text(row["host"]) == "a1b2c3d4e5f.iot-as-mqtt.cn-shanghai.aliyuncs.com");

    // The other device's secret gives another password.
    o.device_name = "dev02";
    r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    CHECK(password(fields(*r)["password"]) !=
          "913C60FE9C89A6FDCEB34A5C8813F3C9FEBA0D061ABA9B5BE16098F9E03CFDC7");
  }

  TEST_CASE("an unknown DeviceName in the ledger names every way to give the secret") {
    Fixture f;
    f.ledger_with({{std::string(k_pk), "dev01", std::string(k_ds), core::Scheme::device, 1}});
    CredsMqttOptions o;
    o.device_name = "dev99";
    auto r = run_creds_mqtt(o, f.ctx);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::usage);
    CHECK(contains(r.error().message, "DeviceName dev99 is not in the ledger"));
    check_lists_device_secret_ways(r.error().message);

    o.device_name = "dev01";
    o.product_key = "a1OtherProd";
    r = run_creds_mqtt(o, f.ctx);
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().message, "DeviceName dev01 of ProductKey a1OtherProd is not in"));
  }

  TEST_CASE("no secret anywhere: the message lists every way and no ledger is created") {
    Fixture f;
    const auto missing = f.dir.path / "missing.db";
    f.ctx.global.settings.ledger = missing.string();
    CredsMqttOptions o;
    o.device_name = "dev01";
    o.product_key = std::string(k_pk);
    auto r = run_creds_mqtt(o, f.ctx);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::usage);
    CHECK(contains(r.error().message, "no DeviceSecret for a1b2c3d4e5f/dev01"));
    CHECK(contains(r.error().message, "no ledger at " + missing.string()));
    check_lists_device_secret_ways(r.error().message);
    CHECK_FALSE(fs::exists(missing));
  }

  TEST_CASE("keepalive: refused outside 30-1200 s, warned outside 60-240 s, drop deadline") {
    Fixture f;
    auto o = vector_options();
    o.device_secret_file = f.dir.write("ds", "secret");

    for (const std::int64_t bad : {0, 29, 1201, -5}) {
      CAPTURE(bad);
      o.keepalive = bad;
      auto r = run_creds_mqtt(o, f.ctx);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == ErrorKind::usage);
      CHECK(contains(r.error().message, "outside 30-1200 s"));
    }
    CHECK(f.output.warnings.empty());

    o.keepalive = 45;
    auto r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    REQUIRE(f.output.warnings.size() == 1);
    CHECK(contains(f.output.warnings[0], "below 60 s"));
    CHECK(contains(f.output.warnings[0], "1.5 x keepalive (67.5 s)"));
    CHECK(contains(f.output.warnings[0], "120 s is recommended on cellular"));
    auto row = fields(*r);
    CHECK(std::get<double>(row["server_drop_after_s"]) == doctest::Approx(67.5));
    CHECK(std::get<double>(row["server_drop_latest_s"]) == doctest::Approx(97.5));
    CHECK(password(row["password"]) == k_vector_password); // keepalive is not signed

    f.output.warnings.clear();
    o.keepalive = 300;
    r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    REQUIRE(f.output.warnings.size() == 1);
    CHECK(contains(f.output.warnings[0], "above 240 s"));
    CHECK(contains(f.output.warnings[0], "base stations close idle connections after about 4"));
    CHECK(std::get<std::int64_t>(fields(*r)["server_drop_after_s"]) == 450);

    // The edges: 30, 59, 241 and 1200 are accepted with a warning, 60 and 240 without.
    for (const std::int64_t edge : {30, 59, 241, 1200}) {
      CAPTURE(edge);
      f.output.warnings.clear();
      o.keepalive = edge;
      CHECK(run_creds_mqtt(o, f.ctx));
      CHECK(f.output.warnings.size() == 1);
    }
    for (const std::int64_t fine : {60, 240}) {
      CAPTURE(fine);
      f.output.warnings.clear();
      o.keepalive = fine;
      CHECK(run_creds_mqtt(o, f.ctx));
      CHECK(f.output.warnings.empty());
    }
  }

  TEST_CASE("hosts: --region for the legacy host, --instance-id or the config's for the new one") {
    Fixture f;
    auto o = vector_options();
    o.device_secret_file = f.dir.write("ds", "secret");
    f.ctx.global.settings.region = "ap-southeast-1";
    auto r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    CHECK(text(fields(*r)["host"]) == "pk.iot-as-mqtt.ap-southeast-1.aliyuncs.com");

    f.vars["IOTFLEET_IOT_INSTANCE_ID"] = "iot-06z00ax1o4qq0py";
    r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    CHECK(text(fields(*r)["host"]) == "iot-06z00ax1o4qq0py.mqtt.iothub.aliyuncs.com");
    CHECK(std::get<std::int64_t>(fields(*r)["port"]) == 1883);

    o.instance_id = "iot-cn-other";
    r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    CHECK(text(fields(*r)["host"]) == "iot-cn-other.mqtt.iothub.aliyuncs.com");

    o.instance_id = "iot.evil.example";
    r = run_creds_mqtt(o, f.ctx);
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().message, "--instance-id iot.evil.example"));
  }

  TEST_CASE("--timestamp now signs the current time in milliseconds") {
    Fixture f;
    auto o = vector_options();
    o.device_secret_file = f.dir.write("ds", "secret");
    o.timestamp = "now";
    const auto ms = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
    const auto before = ms();
    auto r = run_creds_mqtt(o, f.ctx);
    const auto after = ms();
    REQUIRE(r);
    const auto client_id = text(fields(*r)["client_id"]);
    const auto at = client_id.find("timestamp=");
    REQUIRE(at != std::string::npos);
    const auto ts = std::stoll(client_id.substr(at + 10));
    CHECK(ts >= before);
    CHECK(ts <= after);
  }

  TEST_CASE("bad inputs are usage errors naming the fix") {
    Fixture f;
    auto o = vector_options();
    o.device_secret_file = f.dir.write("ds", "secret");
    const auto error_of = [&](const CredsMqttOptions& opts) {
      auto r = run_creds_mqtt(opts, f.ctx);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == ErrorKind::usage);
      return r.error().message;
    };
    auto b = o;
    b.sign_method = "sha256";
    CHECK(contains(error_of(b), "use hmacsha256, hmacsha1 or hmacmd5"));
    b = o;
    b.secure_mode = 1;
    CHECK(contains(error_of(b), "use 2 (TLS) or 3"));
    b = o;
    b.timestamp = "12ab";
    CHECK(contains(error_of(b), "milliseconds since the epoch"));
    b = o;
    b.client_id = "a|securemode=2";
    CHECK(contains(error_of(b), "--client-id: character 2 is not allowed"));
    b = o;
    b.client_id = std::string(65, 'c');
    CHECK(contains(error_of(b), "1-64 characters"));
    b = o;
    b.device_name = "ab";
    CHECK(contains(error_of(b), "DeviceName"));
    b = o;
    b.product_key.reset();
    CHECK(contains(error_of(b), "no ProductKey: give --product-key PK"));
    b = o;
    b.device_secret_file = f.dir.write("two", "secret\nother\n");
    CHECK(contains(error_of(b), "more than one line"));
    b = o;
    b.device_secret_file = f.dir.write("empty", "  \n");
    CHECK(contains(error_of(b), "is empty"));
    b = o;
    b.device_secret_file = (f.dir.path / "absent").string();
    CHECK(contains(error_of(b), "cannot read the DeviceSecret file"));
    b = o;
    b.device_secret_file = f.dir.write("bad", "sec ret");
    const auto bad_secret = error_of(b);
    CHECK(contains(bad_secret, "DeviceSecret from " + *b.device_secret_file));
    CHECK_FALSE(contains(bad_secret, "sec ret"));
    b = o;
    b.product_secret_file = f.dir.write("ps", std::string(k_ps));
    CHECK(contains(error_of(b), "--product-secret-file is for --dynamic"));
    b = o;
    b.random = "abc";
    CHECK(contains(error_of(b), "--random is for --dynamic"));
  }

  TEST_CASE("a secret file readable by others is used with a warning") {
    Fixture f;
    auto o = vector_options();
    o.device_secret_file = f.dir.write("ds", "secret");
    ::chmod(o.device_secret_file->c_str(), 0644);
    auto r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    REQUIRE(f.output.warnings.size() == 1);
    CHECK(contains(f.output.warnings[0], "chmod 600 " + *o.device_secret_file));
  }

  TEST_CASE("--dynamic: the §4 vectors as password, instance and legacy clientIds") {
    Fixture f;
    CredsMqttOptions o;
    o.device_name = "dev01";
    o.product_key = std::string(k_pk);
    o.dynamic = "register";
    o.random = std::string(k_random);
    o.product_secret_file = f.dir.write("ps", std::string(k_ps) + "\n");
    o.instance_id = "iot-06z00ax1o4qq0py";
    auto r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    auto row = fields(*r);
    CHECK(text(row["client_id"]) ==
          "a1b2c3d4e5f.dev01|securemode=-2,authType=register,random=8Ygb7ULYh53B6OA,"
          "signmethod=hmacsha256,instanceId=iot-06z00ax1o4qq0py|");
    CHECK(text(row["username"]) == "dev01&a1b2c3d4e5f");
    CHECK(password(row["password"]) ==
          "118EE025D842CEB096DE9BA9E853015DFF606A0D53D5A9773DF0DDE3A0101BD9");
    CHECK(text(row["host"]) == "iot-06z00ax1o4qq0py.mqtt.iothub.aliyuncs.com");
    CHECK(std::get<bool>(row["tls"]) == true);
    CHECK(text(row["signed_with"]) == "ProductSecret from file " + *o.product_secret_file);
    REQUIRE(f.output.infos.size() == 1);
    CHECK(contains(f.output.infos[0], "/ext/register"));

    o.dynamic = "regnwl";
    o.sign_method = "hmacmd5";
    o.instance_id.reset();
    r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    row = fields(*r);
    CHECK(text(row["client_id"]) == "a1b2c3d4e5f.dev01|securemode=2,authType=regnwl,"
                                    "random=8Ygb7ULYh53B6OA,signmethod=hmacmd5|");
    CHECK(password(row["password"]) == "D4461C5C5A1207A225C28A76A499EC0D");
    CHECK(text(row["host"]) == "a1b2c3d4e5f.iot-as-mqtt.cn-shanghai.aliyuncs.com");
    CHECK(contains(f.output.infos.back(), "authType=connwl"));
  }

  TEST_CASE("--dynamic without --random signs a fresh one, shown in the clientId") {
    Fixture f;
    CredsMqttOptions o;
    o.device_name = "dev01";
    o.product_key = std::string(k_pk);
    o.dynamic = "register";
    f.stdin_text = std::string(k_ps);
    o.product_secret_file = "-";
    auto r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    auto row = fields(*r);
    const auto client_id = text(row["client_id"]);
    const auto at = client_id.find("random=");
    REQUIRE(at != std::string::npos);
    const auto random = client_id.substr(at + 7, client_id.find(',', at) - at - 7);
    CHECK(random.size() == 16);
    CHECK(password(row["password"]) ==
          cloud::dynamic_register_sign({std::string(k_pk), "dev01", std::string(k_ps), random}));
    CHECK(text(row["signed_with"]) == "ProductSecret from stdin");
    // Another run, another random.
    r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    CHECK(text(fields(*r)["client_id"]) != client_id);
  }

  TEST_CASE("--dynamic with the ProductSecret of a --scheme product ledger record") {
    Fixture f;
    f.ledger_with({{std::string(k_pk), "dev01", std::string(k_ps), core::Scheme::product, 1},
                   {std::string(k_pk), "dev02", std::string(k_ds), core::Scheme::device, 2}});
    CredsMqttOptions o;
    o.device_name = "dev01";
    o.dynamic = "register";
    o.random = std::string(k_random);
    auto r = run_creds_mqtt(o, f.ctx);
    REQUIRE(r);
    auto row = fields(*r);
    CHECK(password(row["password"]) ==
          "118EE025D842CEB096DE9BA9E853015DFF606A0D53D5A9773DF0DDE3A0101BD9");
    CHECK(contains(text(row["signed_with"]), "ProductSecret from the ledger"));

    // Without --dynamic a product-scheme record has no DeviceSecret.
    o.dynamic.reset();
    o.random.reset();
    r = run_creds_mqtt(o, f.ctx);
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().message, "one-type-one-secret triplet"));
    CHECK(contains(r.error().message, "--dynamic register|regnwl"));
    check_lists_device_secret_ways(r.error().message);

    // With --dynamic a device-scheme record has no ProductSecret.
    o.device_name = "dev02";
    o.dynamic = "regnwl";
    r = run_creds_mqtt(o, f.ctx);
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().message, "one-device-one-secret triplet"));
    CHECK(contains(r.error().message, "--product-secret-file FILE"));
    CHECK(contains(r.error().message, "--product-secret-file - to read it from stdin"));
    CHECK(contains(r.error().message, "pool import --scheme product"));
  }

  TEST_CASE("--dynamic refuses TCP, a timestamp, a DeviceSecret file, a bad random") {
    Fixture f;
    CredsMqttOptions o;
    o.device_name = "dev01";
    o.product_key = std::string(k_pk);
    o.dynamic = "register";
    o.product_secret_file = f.dir.write("ps", std::string(k_ps));
    const auto error_of = [&](const CredsMqttOptions& opts) {
      auto r = run_creds_mqtt(opts, f.ctx);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == ErrorKind::usage);
      return r.error().message;
    };
    auto b = o;
    b.secure_mode = 3;
    CHECK(contains(error_of(b), "TLS only"));
    b = o;
    b.timestamp = "789";
    CHECK(contains(error_of(b), "drop --timestamp"));
    b = o;
    b.device_secret_file = f.dir.write("ds", "secret");
    CHECK(contains(error_of(b), "give --product-secret-file instead"));
    b = o;
    b.random = "a,b";
    CHECK(contains(error_of(b), "--random must be 1-64 letters and digits"));
    b = o;
    b.dynamic = "connwl";
    CHECK(contains(error_of(b), "use register"));
    b = o;
    b.product_secret_file.reset();
    f.ctx.global.settings.ledger = (f.dir.path / "none.db").string();
    const auto none = error_of(b);
    CHECK(contains(none, "no ProductSecret for a1b2c3d4e5f/dev01"));
    CHECK(contains(none, "--product-secret-file FILE"));
    CHECK(contains(none, "--product-secret-file - to read it from stdin"));
  }
}

namespace {

using Run = testing::CliRun;
Run run_cli(std::vector<const char*> args, std::string stdin_text = {}) {
  return testing::run_cli(std::move(args), {}, std::move(stdin_text));
}

} // namespace

TEST_SUITE("cli creds mqtt") {
  TEST_CASE("the vector on the command line: masked, --show-secrets, -o json, stdin") {
    const std::vector<const char*> vector_args = {"creds",
                                                  "mqtt",
                                                  "device",
                                                  "--product-key",
                                                  "pk",
                                                  "--client-id",
                                                  "12345",
                                                  "--timestamp",
                                                  "789",
                                                  "--sign-method",
                                                  "hmacsha1",
                                                  "--secure-mode",
                                                  "3",
                                                  "--device-secret-file",
                                                  "-"};
    Run r = run_cli(vector_args, "secret\n");
    CHECK(r.code == 0);
    CHECK(r.err.empty());
    CHECK(contains(r.out, "FAFD…1A14"));
    CHECK_FALSE(contains(r.out, k_vector_password));
    CHECK(contains(r.out, k_vector_client_id));

    auto args = vector_args;
    args.insert(args.begin(), "--show-secrets");
    r = run_cli(args, "secret\n");
    CHECK(r.code == 0);
    CHECK(contains(r.out, k_vector_password));

    args = vector_args;
    args.insert(args.begin(), {"-o", "json"});
    r = run_cli(args, "secret\n");
    CHECK(r.code == 0);
    const auto doc = nlohmann::json::parse(r.out);
    REQUIRE(doc.is_object());
    CHECK(doc["host"] == "pk.iot-as-mqtt.cn-shanghai.aliyuncs.com");
    CHECK(doc["port"] == 1883);
    CHECK(doc["tls"] == false);
    CHECK(doc["client_id"] == std::string(k_vector_client_id));
    CHECK(doc["username"] == "device&pk");
    CHECK(doc["password"] == "FAFD…1A14");
    CHECK(doc["keepalive"] == 120);
    CHECK(doc["server_drop_after_s"] == 180);
  }

  TEST_CASE("exit 2: a refused keepalive, a missing secret, a secret given as an argument") {
    Run r = run_cli({"creds",
                     "mqtt",
                     "device",
                     "--product-key",
                     "pk",
                     "--device-secret-file",
                     "-",
                     "--keepalive",
                     "1500"},
                    "secret");
    CHECK(r.code == 2);
    CHECK(contains(r.err, "outside 30-1200 s"));
    CHECK(r.out.empty());

    r = run_cli({"creds",
                 "mqtt",
                 "device",
                 "--product-key",
                 "pk",
                 "--device-secret-file",
                 "-",
                 "--keepalive",
                 "50"},
                "secret");
    CHECK(r.code == 0);
    CHECK(contains(r.err, "iotfleet: warning: --keepalive 50 s is below 60 s"));

    r = run_cli({"creds", "mqtt", "device", "--product-key", "pk"});
    CHECK(r.code == 2);
    CHECK(contains(r.err, "--device-secret-file FILE"));

    r = run_cli({"creds", "mqtt", "device", "secret", "--product-key", "pk"});
    CHECK(r.code == 2);
    CHECK(r.out.empty());

    r = run_cli({"creds", "mqtt", "--help"});
    CHECK(r.code == 0);
    CHECK(contains(r.out, "--device-secret-file"));
    CHECK(contains(r.out, "keepalive x 1.5"));
  }
}
