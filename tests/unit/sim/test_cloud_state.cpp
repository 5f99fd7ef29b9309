// SPDX-License-Identifier: MIT
// The cloud emulator's scenario files, seeding, time formats, field validation (§2, §7) and
// its TLS certificates.
#include "sim/cloud_cmd.hpp"
#include "sim/cloud_tls.hpp"
#include "sim/cloud_util.hpp"
#include "unit/sim/test_cloud_support.hpp"

#include <doctest/doctest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

using namespace iot::sim::testing;
namespace cloud = iot::sim::cloud;
using nlohmann::json;

namespace {

std::string secrets_of(CloudBench& b, const std::string& pk) {
  std::string all;
  for (int page = 1; page <= 4; ++page) {
    const json j =
        b.json("QueryDevice",
               {{"ProductKey", pk}, {"PageSize", "50"}, {"CurrentPage", std::to_string(page)}});
    for (const json& d : j["Data"]["DeviceInfo"]) {
      all += d["DeviceName"].get<std::string>() + ":" + d["DeviceSecret"].get<std::string>() + ":" +
             d["IotId"].get<std::string>() + ":" + d["DeviceStatus"].get<std::string>() + "\n";
    }
  }
  return all;
}

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct TempDir {
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "iotfleet-tls-XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path path;
};

X509* load_cert(const std::filesystem::path& p) {
  const std::string pem = read(p);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return cert;
}

} // namespace

TEST_SUITE("sim::cloud state") {
  TEST_CASE("time formats of the API (§2 examples)") {
    const auto ms = cloud::parse_iso_utc("2019-02-20T02:16:09Z");
    REQUIRE(ms);
    CHECK(cloud::gmt_cookie(*ms) == "Wed, 20-Feb-2019 02:16:09 GMT");
    CHECK(cloud::utc_iso(*ms) == "2019-02-20T02:16:09.000Z");
    const auto active = cloud::parse_iso_utc("2018-08-06T02:48:41.000Z");
    REQUIRE(active);
    CHECK(cloud::china_local(*active) == "2018-08-06 10:48:41");
    CHECK(cloud::utc_iso(*active) == "2018-08-06T02:48:41.000Z");
    CHECK(cloud::parse_timestamp("2016-02-23T12:46:24Z") ==
          cloud::parse_iso_utc("2016-02-23T12:46:24Z"));
    CHECK_FALSE(cloud::parse_timestamp("2016-02-23T12:46:24.000Z"));
    CHECK_FALSE(cloud::parse_timestamp("2016-02-30T12:46:24Z"));
    CHECK_FALSE(cloud::parse_timestamp("2016-02-23T24:00:00Z"));
  }

  TEST_CASE("--listen and --latency-ms parsing") {
    using iot::sim::parse_listen;
    CHECK(parse_listen("127.0.0.1:0") == std::pair<std::string, int>{"127.0.0.1", 0});
    CHECK(parse_listen("localhost:8443") == std::pair<std::string, int>{"localhost", 8443});
    CHECK(parse_listen("[::1]:9000") == std::pair<std::string, int>{"::1", 9000});
    CHECK(parse_listen(":7000") == std::pair<std::string, int>{"127.0.0.1", 7000});
    for (const char* bad :
         {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "h:-1", "[::1]9000", "h:1x"}) {
      CAPTURE(bad);
      const auto r = parse_listen(bad);
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == iot::ErrorKind::usage);
    }
    using iot::sim::parse_latency_ms;
    CHECK(parse_latency_ms("5-15") == std::pair<std::int64_t, std::int64_t>{5, 15});
    CHECK(parse_latency_ms("30") == std::pair<std::int64_t, std::int64_t>{30, 30});
    for (const char* bad : {"15-5", "", "-5", "5-", "a-b", "1-700000"}) {
      CAPTURE(bad);
      CHECK_FALSE(parse_latency_ms(bad));
    }
  }

  TEST_CASE("field validation (§7)") {
    CHECK(cloud::valid_device_name("abcd"));
    CHECK(cloud::valid_device_name("A-b_c@d.e:f"));
    CHECK(cloud::valid_device_name(std::string(32, 'x')));
    CHECK_FALSE(cloud::valid_device_name("abc"));
    CHECK_FALSE(cloud::valid_device_name(std::string(33, 'x')));
    CHECK_FALSE(cloud::valid_device_name("ab cd"));
    CHECK_FALSE(cloud::valid_device_name("ab\"cd"));
    CHECK(cloud::valid_nickname("温度"));     // 2 CJK = 4 units
    CHECK_FALSE(cloud::valid_nickname("温")); // 2 units
    CHECK(cloud::valid_nickname("abc_1"));
    CHECK_FALSE(cloud::valid_nickname("abc-1"));
    CHECK(cloud::valid_nickname(std::string(64, 'a')));
    CHECK_FALSE(cloud::valid_nickname(std::string(31, 'a') + "温温温温温温温温温温温温温温温温温"));
    CHECK(cloud::valid_product_key("a1B2c3D4e5F"));
    CHECK_FALSE(cloud::valid_product_key(""));
    CHECK_FALSE(cloud::valid_product_key("a1B2-3D4e5F"));
  }

  TEST_CASE("scenario parsing is strict") {
    CHECK(cloud::parse_scenario(scenario_with("[]")));
    const std::vector<std::pair<std::string, std::string>> bad{
        {R"({"access_keys": []})", "$.access_keys"},
        {scenario_with(R"([{"product_key": "bad-key"}])"), "product_key"},
        {scenario_with(R"([{"product_key": "a1Prod", "colour": "red"}])"), "colour: unknown key"},
        {scenario_with(R"([{"product_key": "a1Prod"}, {"product_key": "a1Prod"}])"), "duplicate"},
        {scenario_with(R"([{"product_key": "a1Prod", "devices": [{"name": "ab"}]}])"), "name"},
        {scenario_with(
             R"([{"product_key": "a1Prod", "devices": [{"name": "abcd", "status": "ON"}]}])"),
         "status"},
        {scenario_with(
             R"([{"product_key": "a1Prod", "generate": {"count": 3, "status": {"ONLINE": 0}}}])"),
         "weight"},
        {scenario_with(
             R"([{"product_key": "a1Prod", "generate": {"count": 3, "prefix": "x", "digits": 1}}])"),
         "prefix"},
        {"{not json", "not valid JSON"},
    };
    for (const auto& [text, needle] : bad) {
      CAPTURE(text);
      const auto parsed = cloud::parse_scenario(text);
      REQUIRE_FALSE(parsed);
      CHECK(parsed.error().kind == iot::ErrorKind::usage);
      CHECK(parsed.error().message.find(needle) != std::string::npos);
    }
    // Messages never carry a secret's value.
    const auto parsed = cloud::parse_scenario(
        scenario_with(R"([{"product_key": "a1Prod", "product_secret": "TopSecret with space"}])"));
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message.find("TopSecret") == std::string::npos);
  }

  TEST_CASE("seeding is deterministic for a seed, and another seed differs") {
    const std::string s = scenario_with(R"([{"product_key": "a1SeedProd1",
      "generate": {"count": 150, "names": "imei", "status": {"ONLINE": 1, "OFFLINE": 1}}}])");
    CloudBench a(s, CloudBench::no_limits(), 42);
    CloudBench b(s, CloudBench::no_limits(), 42);
    CloudBench c(s, CloudBench::no_limits(), 43);
    const std::string fleet = secrets_of(a, "a1SeedProd1");
    CHECK(std::count(fleet.begin(), fleet.end(), '\n') == 150);
    CHECK(fleet == secrets_of(b, "a1SeedProd1"));
    CHECK(fleet != secrets_of(c, "a1SeedProd1"));
    // IMEI names: 15 digits, Luhn-valid.
    const json j = a.json("QueryDevice", {{"ProductKey", "a1SeedProd1"}, {"PageSize", "1"}});
    const std::string imei = j["Data"]["DeviceInfo"][0]["DeviceName"];
    REQUIRE(imei.size() == 15);
    int sum = 0;
    for (int i = 0; i < 15; ++i) {
      int d = imei[static_cast<std::size_t>(14 - i)] - '0';
      if (i % 2 == 1) {
        d *= 2;
        d = d > 9 ? d - 9 : d;
      }
      sum += d;
    }
    CHECK(sum % 10 == 0);
  }

  TEST_CASE("seeding 20 000 devices is one transaction with exact counts") {
    CloudBench b(scenario_with(R"([{"product_key": "a1BulkProd1",
      "generate": {"count": 20000, "status": {"ONLINE": 3, "OFFLINE": 1}}}])"));
    const json j = b.json("QueryDeviceByStatus", {{"ProductKey", "a1BulkProd1"}, {"Status", "1"}});
    CHECK(j["Total"] == 15000);
    CHECK(b.json("QueryProduct", {{"ProductKey", "a1BulkProd1"}})["Data"]["DeviceCount"] == 20000);
  }

  TEST_CASE("TLS: a CA and a server certificate for 127.0.0.1, keys 0600, reused") {
    TempDir dir;
    const auto files = cloud::ensure_tls_files(dir.path, {"127.0.0.1"});
    REQUIRE(files);
    CHECK(files->generated);
    for (const auto& key : {files->server_key, files->ca_key}) {
      struct stat st {};
      REQUIRE(::stat(key.c_str(), &st) == 0);
      CHECK((st.st_mode & 0777) == 0600);
    }
    X509* ca = load_cert(files->ca_cert);
    X509* server = load_cert(files->server_cert);
    REQUIRE(ca != nullptr);
    REQUIRE(server != nullptr);
    X509_STORE* trust = X509_STORE_new();
    X509_STORE_add_cert(trust, ca);
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, trust, server, nullptr);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    CHECK(X509_verify_cert(ctx) == 1);
    CHECK(X509_check_ip_asc(server, "127.0.0.1", 0) == 1);
    CHECK(X509_check_ip_asc(server, "::1", 0) == 1);
    CHECK(X509_check_host(server, "localhost", 0, 0, nullptr) == 1);
    CHECK(X509_check_host(server, "example.com", 0, 0, nullptr) != 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(trust);
    X509_free(server);
    X509_free(ca);

    const std::string before = read(files->server_cert);
    const auto again = cloud::ensure_tls_files(dir.path);
    REQUIRE(again);
    CHECK_FALSE(again->generated);
    CHECK(read(files->server_cert) == before);
    // A lost server certificate is re-made under the same CA.
    const std::string ca_before = read(files->ca_cert);
    std::filesystem::remove(files->server_cert);
    const auto remade = cloud::ensure_tls_files(dir.path);
    REQUIRE(remade);
    CHECK(remade->generated);
    CHECK(read(files->ca_cert) == ca_before);
    CHECK(read(files->server_cert) != before);
  }
}
