// SPDX-License-Identifier: MIT
#include "cloud/settings.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

using namespace iot;
namespace fs = std::filesystem;

namespace {

// A temp HOME plus a fake environment; nothing of the real process leaks in.
struct Fixture {
  fs::path home;
  std::map<std::string, std::string> vars;
  std::string stdin_text;
  cloud::SettingsFlags flags;

  Fixture() {
    std::string pattern = (fs::temp_directory_path() / "iot-home-XXXXXX").string();
    home = ::mkdtemp(pattern.data());
    vars["HOME"] = home.string();
  }
  ~Fixture() { fs::remove_all(home); }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  cloud::Environment env() {
    cloud::Environment e;
    e.getenv = [this](std::string_view name) -> std::optional<std::string> {
      auto it = vars.find(std::string(name));
      return it == vars.end() ? std::nullopt : std::optional(it->second);
    };
    e.read_stdin = [this]() -> Result<std::string> { return stdin_text; };
    e.hostname = [] { return std::string("station-7"); };
    return e;
  }

  fs::path write(const fs::path& rel, const std::string& text, mode_t mode = 0600) {
    const auto p = home / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p;
  }
  void aliyun(const std::string& text, mode_t mode = 0600) {
    write(".aliyun/config.json", text, mode);
  }
  void own(const std::string& text, mode_t mode = 0600) {
    write(".config/iotfleet/config.json", text, mode);
  }

  Result<cloud::Settings> resolve() { return cloud::resolve_settings(flags, env()); }
};

const cloud::Setting& get(const cloud::Settings& s, std::string_view name) {
  const auto* setting = s.find(name);
  REQUIRE(setting != nullptr);
  return *setting;
}

const char* k_aliyun = R"({
  "current": "default",
  "profiles": [
    {"name": "default", "mode": "AK", "access_key_id": "ALIYUN_ID",
     "access_key_secret": "aliyun-secret-0123456789", "region_id": "cn-hangzhou"},
    {"name": "sts", "mode": "StsToken", "access_key_id": "STS_ID",
     "access_key_secret": "sts-secret-0123456789", "sts_token": "token-abcdefghijkl",
     "region_id": "ap-southeast-1"},
    {"name": "role", "mode": "RamRoleArn", "access_key_id": "ROLE_ID",
     "access_key_secret": "x", "region_id": "us-west-1"}
  ]
})";

} // namespace

TEST_SUITE("cloud::settings") {
  TEST_CASE("nothing configured: defaults, and no credentials") {
    Fixture f;
    auto s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "region").value == "cn-shanghai");
    CHECK(get(*s, "region").source == "default");
    CHECK(get(*s, "endpoint").value == "https://iot.cn-shanghai.aliyuncs.com");
    CHECK_FALSE(get(*s, "access_key_id").value);
    CHECK(get(*s, "station").value == "station-7");
    CHECK(get(*s, "ledger").value == (f.home / ".local/share/iotfleet/ledger.db").string());
    CHECK(get(*s, "config_file").source == "default (file absent)");
    auto ak = cloud::require_access_key(*s);
    REQUIRE_FALSE(ak);
    CHECK(ak.error().kind == ErrorKind::auth);
    CHECK(ak.error().message.find("ALIBABA_CLOUD_ACCESS_KEY_ID") != std::string::npos);
  }

  TEST_CASE("environment alone") {
    Fixture f;
    f.vars["ALIBABA_CLOUD_ACCESS_KEY_ID"] = "ENV_ID";
    f.vars["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "env-secret-0123456789";
    f.vars["ALIBABA_CLOUD_SECURITY_TOKEN"] = "env-token";
    f.vars["ALIBABA_CLOUD_REGION_ID"] = "eu-central-1";
    auto s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "access_key_id").source == "env ALIBABA_CLOUD_ACCESS_KEY_ID");
    CHECK(get(*s, "access_key_secret").secret);
    CHECK(get(*s, "region").value == "eu-central-1");
    CHECK(get(*s, "endpoint").value == "https://iot.eu-central-1.aliyuncs.com");
    auto ak = cloud::require_access_key(*s);
    REQUIRE(ak);
    CHECK(ak->id == "ENV_ID");
    CHECK(ak->secret == "env-secret-0123456789");
    CHECK(ak->security_token == "env-token");
  }

  TEST_CASE("an id without a secret in the environment is a config error of the AccessKey") {
    Fixture f;
    f.vars["ALIBABA_CLOUD_ACCESS_KEY_ID"] = "ENV_ID";
    f.own(R"({"ledger": "/srv/ledger.db"})");
    auto s = f.resolve();
    REQUIRE(s); // local settings still resolve
    CHECK(get(*s, "ledger").value == "/srv/ledger.db");
    CHECK(get(*s, "access_key_id").source.starts_with("not resolved: "));
    auto ak = cloud::require_access_key(*s);
    REQUIRE_FALSE(ak);
    CHECK(ak.error().kind == ErrorKind::config);
    CHECK(ak.error().message.find("ALIBABA_CLOUD_ACCESS_KEY_SECRET") != std::string::npos);
  }

  TEST_CASE("aliyun CLI config alone: current profile, AK mode") {
    Fixture f;
    f.aliyun(k_aliyun);
    auto s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "profile").value == "default");
    CHECK(get(*s, "profile").source.starts_with("aliyun CLI current profile"));
    CHECK(get(*s, "access_key_id").value == "ALIYUN_ID");
    CHECK(get(*s, "access_key_secret").value == "aliyun-secret-0123456789");
    CHECK(get(*s, "access_key_id").source.starts_with("aliyun CLI profile 'default'"));
    CHECK(get(*s, "region").value == "cn-hangzhou");
    CHECK(s->warnings.empty());
  }

  TEST_CASE("aliyun CLI StsToken profile chosen with --profile carries the token") {
    Fixture f;
    f.aliyun(k_aliyun);
    f.flags.profile = "sts";
    auto s = f.resolve();
    REQUIRE(s);
    auto ak = cloud::require_access_key(*s);
    REQUIRE(ak);
    CHECK(ak->id == "STS_ID");
    CHECK(ak->security_token == "token-abcdefghijkl");
    CHECK(get(*s, "region").value == "ap-southeast-1");
  }

  TEST_CASE("an unsupported aliyun CLI mode is skipped with a warning") {
    Fixture f;
    f.aliyun(k_aliyun);
    f.flags.profile = "role";
    auto s = f.resolve();
    REQUIRE(s);
    CHECK_FALSE(get(*s, "access_key_id").value);
    REQUIRE(s->warnings.size() == 1);
    CHECK(s->warnings[0].find("RamRoleArn") != std::string::npos);
  }

  TEST_CASE("iotfleet config alone, with a secret file and a profile section") {
    Fixture f;
    const auto secret_file = f.write("ak_secret", "own-secret-0123456789\n");
    f.own(R"({"access_key_id": "OWN_ID", "access_key_secret_file": ")" + secret_file.string() +
          R"(", "region": "cn-beijing", "ledger": "/var/lib/iotfleet/ledger.db",
          "module": "luat", "station": "line1-st3",
          "profiles": {"lab": {"region": "cn-shenzhen", "endpoint": "http://127.0.0.1:9000"}}})");
    auto s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "access_key_secret").value == "own-secret-0123456789");
    CHECK(get(*s, "region").value == "cn-beijing");
    CHECK(get(*s, "module").value == "luat");
    CHECK(get(*s, "station").value == "line1-st3");
    CHECK(get(*s, "ledger").value == "/var/lib/iotfleet/ledger.db");

    f.flags.profile = "lab";
    auto lab = f.resolve();
    REQUIRE(lab);
    CHECK(get(*lab, "region").value == "cn-shenzhen");
    CHECK(get(*lab, "endpoint").value == "http://127.0.0.1:9000");
    CHECK(get(*lab, "endpoint").source.find("profile 'lab'") != std::string::npos);
    CHECK(get(*lab, "module").value == "luat"); // top level still applies
  }

  TEST_CASE("precedence: flags > env > aliyun CLI > iotfleet config") {
    Fixture f;
    f.aliyun(k_aliyun);
    f.own(R"({"access_key_id": "OWN_ID", "access_key_secret": "own-secret-0123456789",
              "region": "cn-beijing"})");
    auto s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "access_key_id").value == "ALIYUN_ID"); // aliyun beats own config
    CHECK(get(*s, "region").value == "cn-hangzhou");

    f.vars["ALIBABA_CLOUD_ACCESS_KEY_ID"] = "ENV_ID";
    f.vars["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "env-secret-0123456789";
    f.vars["ALIBABA_CLOUD_REGION_ID"] = "us-east-1";
    s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "access_key_id").value == "ENV_ID"); // env beats aliyun
    CHECK(get(*s, "region").value == "us-east-1");

    const auto secret_file = f.write("flag_secret", "flag-secret-0123456789");
    f.flags.access_key_id = "FLAG_ID";
    f.flags.access_key_secret_file = secret_file.string();
    f.flags.region = "ap-northeast-1";
    s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "access_key_id").value == "FLAG_ID"); // flags beat everything
    CHECK(get(*s, "access_key_secret").value == "flag-secret-0123456789");
    CHECK(get(*s, "region").value == "ap-northeast-1");
    CHECK(get(*s, "region").source == "flag --region");
  }

  TEST_CASE("credentials come whole from one source, never mixed") {
    Fixture f;
    f.own(R"({"access_key_id": "OWN_ID"})"); // no secret here
    f.aliyun(k_aliyun);
    auto s = f.resolve();
    REQUIRE(s);
    // The aliyun profile has the pair; the config's lone id must not be paired with it.
    CHECK(get(*s, "access_key_id").value == "ALIYUN_ID");

    Fixture g;
    g.own(R"({"access_key_id": "OWN_ID"})");
    auto t = g.resolve();
    REQUIRE(t);
    auto ak = cloud::require_access_key(*t);
    REQUIRE_FALSE(ak);
    CHECK(ak.error().message.find("has no AccessKeySecret") != std::string::npos);
  }

  TEST_CASE("the secret can come from stdin, never from the flag value itself") {
    Fixture f;
    f.stdin_text = "stdin-secret-0123456789\n";
    f.flags.access_key_id = "FLAG_ID";
    f.flags.access_key_secret_file = "-";
    auto s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "access_key_secret").value == "stdin-secret-0123456789");
    CHECK(get(*s, "access_key_secret").source == "flag --access-key-secret-file (stdin)");

    f.flags.access_key_secret_file.reset();
    auto missing = f.resolve();
    REQUIRE(missing);
    auto ak = cloud::require_access_key(*missing);
    REQUIRE_FALSE(ak);
    CHECK(ak.error().kind == ErrorKind::usage);
    CHECK(ak.error().message.find("--access-key-secret-file") != std::string::npos);
  }

  TEST_CASE("a config file holding a secret that others can read draws a warning") {
    Fixture f;
    f.own(R"({"access_key_id": "OWN_ID", "access_key_secret": "own-secret-0123456789"})", 0644);
    auto s = f.resolve();
    REQUIRE(s);
    REQUIRE(s->warnings.size() == 1);
    CHECK(s->warnings[0].find("chmod 600") != std::string::npos);
    CHECK(s->warnings[0].find("0644") != std::string::npos);
    CHECK(s->warnings[0].find("own-secret") == std::string::npos);

    Fixture g;
    g.own(R"({"region": "cn-beijing"})", 0644); // no secret: no warning
    auto t = g.resolve();
    REQUIRE(t);
    CHECK(t->warnings.empty());
  }

  TEST_CASE("bad configuration is a config error naming the file and the problem") {
    Fixture f;
    SUBCASE("broken JSON") {
      f.own("{\"region\": ");
      auto s = f.resolve();
      REQUIRE_FALSE(s);
      CHECK(s.error().kind == ErrorKind::config);
      CHECK(s.error().message.find("config.json is not valid JSON") != std::string::npos);
    }
    SUBCASE("unknown key, as a typo would be") {
      f.own(R"({"ledgr": "/tmp/x"})");
      auto s = f.resolve();
      REQUIRE_FALSE(s);
      CHECK(s.error().message.find("unknown setting 'ledgr'") != std::string::npos);
    }
    SUBCASE("--config naming a missing file") {
      f.flags.config_file = (f.home / "nope.json").string();
      auto s = f.resolve();
      REQUIRE_FALSE(s);
      CHECK(s.error().message.find("nope.json") != std::string::npos);
      CHECK(s.error().message.find("No such file") != std::string::npos);
    }
    SUBCASE("an explicitly chosen profile that exists nowhere") {
      f.aliyun(k_aliyun);
      f.flags.profile = "prod";
      auto s = f.resolve();
      REQUIRE_FALSE(s);
      CHECK(s.error().kind == ErrorKind::config);
      CHECK(s.error().message.find("unknown profile 'prod'") != std::string::npos);
      CHECK(s.error().message.find("default (aliyun CLI)") != std::string::npos);
    }
    SUBCASE("--config naming a directory") {
      fs::create_directories(f.home / "confdir");
      f.flags.config_file = (f.home / "confdir").string();
      auto s = f.resolve();
      REQUIRE_FALSE(s);
      CHECK(s.error().kind == ErrorKind::config);
      CHECK(s.error().message.find((f.home / "confdir").string()) != std::string::npos);
      CHECK(s.error().message.find("Is a directory") != std::string::npos);
      CHECK(s.error().message.find("flag --config") != std::string::npos);
    }
    SUBCASE("the default config.json being a directory") {
      fs::create_directories(f.home / ".config/iotfleet/config.json");
      auto s = f.resolve();
      REQUIRE_FALSE(s);
      CHECK(s.error().kind == ErrorKind::config);
      CHECK(s.error().message.find("Is a directory") != std::string::npos);
    }
    SUBCASE("an unreadable secret file named by the config") {
      fs::create_directories(f.home / "secretdir");
      f.own(R"({"access_key_id": "OWN_ID", "access_key_secret_file": ")" +
            (f.home / "secretdir").string() + R"("})");
      auto s = f.resolve();
      REQUIRE(s);
      auto ak = cloud::require_access_key(*s);
      REQUIRE_FALSE(ak);
      CHECK(ak.error().kind == ErrorKind::config);
      CHECK(ak.error().message.find("Is a directory") != std::string::npos);
    }
    SUBCASE("a region that is not a region id: a problem for cloud commands only") {
      f.flags.region = "CN Shanghai";
      auto s = f.resolve();
      REQUIRE(s);
      auto ok = cloud::require_cloud_settings(*s, {cloud::key::region});
      REQUIRE_FALSE(ok);
      CHECK(ok.error().kind == ErrorKind::config);
      CHECK(ok.error().message.find("not a region id") != std::string::npos);
      // The default endpoint is made from it, so it is not usable either.
      CHECK_FALSE(cloud::require_cloud_settings(*s, {cloud::key::endpoint}));
      CHECK(cloud::require_cloud_settings(*s, {cloud::key::ledger}));
    }
  }

  TEST_CASE("a broken aliyun CLI config stops only what would come from it") {
    Fixture f;
    f.own(R"({"ledger": "/srv/iot/ledger.db", "station": "line2", "module": "luat",
              "product_key": "a1PK"})");
    SUBCASE("truncated JSON") {
      f.aliyun(R"({"profiles":[)");
    }
    SUBCASE("not an object") {
      f.aliyun("[]");
    }
    SUBCASE("a directory") {
      fs::create_directories(f.home / ".aliyun/config.json");
    }
    auto s = f.resolve();
    REQUIRE(s);
    REQUIRE(s->aliyun_problem);
    CHECK(s->aliyun_problem->kind == ErrorKind::config);
    CHECK(s->aliyun_problem->message.find(".aliyun/config.json") != std::string::npos);
    // Local settings from iotfleet's own config are intact.
    CHECK(get(*s, "ledger").value == "/srv/iot/ledger.db");
    CHECK(get(*s, "station").value == "line2");
    CHECK(get(*s, "module").value == "luat");
    CHECK(get(*s, "product_key").value == "a1PK");
    // What the aliyun profile would have given is not usable.
    auto ak = cloud::require_access_key(*s);
    REQUIRE_FALSE(ak);
    CHECK(ak.error().kind == ErrorKind::config);
    CHECK(ak.error().message.find(".aliyun/config.json") != std::string::npos);
    CHECK_FALSE(cloud::require_cloud_settings(*s, {cloud::key::region}));
    CHECK_FALSE(cloud::require_cloud_settings(*s, {cloud::key::auth_endpoint}));
  }

  TEST_CASE("a broken aliyun CLI config does not matter when flags and env come first") {
    Fixture f;
    f.aliyun("not json");
    f.vars["ALIBABA_CLOUD_ACCESS_KEY_ID"] = "ENV_ID";
    f.vars["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "env-secret-0123456789";
    f.flags.region = "cn-beijing";
    f.flags.profile = "prod"; // may be in the unreadable file: not an error of its own
    auto s = f.resolve();
    REQUIRE(s);
    CHECK(s->aliyun_problem);
    auto ak = cloud::require_access_key(*s);
    REQUIRE(ak);
    CHECK(ak->id == "ENV_ID");
    CHECK(cloud::require_cloud_settings(
        *s, {cloud::key::region, cloud::key::endpoint, cloud::key::auth_endpoint}));
  }

  TEST_CASE("access_key_origin names the id, masked, and its source, never the secret") {
    Fixture f;
    f.aliyun(R"({"current": "default", "profiles": [{"name": "default", "mode": "AK",
      "access_key_id": "LTAI5tAbCdEfGhIjKlMnOxyz", "access_key_secret": "the-secret-value-123"}]})");
    auto s = f.resolve();
    REQUIRE(s);
    const auto origin = cloud::access_key_origin(*s);
    CHECK(origin.starts_with("AccessKey LTAI"));
    CHECK(origin.find("LTAI5tAbCdEfGhIjKlMnOxyz") == std::string::npos);
    CHECK(origin.find("aliyun CLI profile 'default'") != std::string::npos);
    CHECK(origin.find("the-secret") == std::string::npos);

    Fixture g;
    auto t = g.resolve();
    REQUIRE(t);
    CHECK(cloud::access_key_origin(*t).empty());
  }

  TEST_CASE("IOTFLEET_CONFIG and XDG_CONFIG_HOME choose the config file") {
    Fixture f;
    const auto p = f.write("elsewhere/station.json", R"({"station": "from-env-path"})");
    f.vars["IOTFLEET_CONFIG"] = p.string();
    auto s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "station").value == "from-env-path");
    CHECK(get(*s, "config_file").source == "env IOTFLEET_CONFIG");

    Fixture g;
    g.write("xdg/iotfleet/config.json", R"({"station": "from-xdg"})");
    g.vars["XDG_CONFIG_HOME"] = (g.home / "xdg").string();
    auto t = g.resolve();
    REQUIRE(t);
    CHECK(get(*t, "station").value == "from-xdg");
  }

  TEST_CASE("dynamic registration: auth endpoint from the region, or the --endpoint given") {
    Fixture f;
    f.flags.region = "cn-beijing";
    auto s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "auth_endpoint").value == "https://iot-auth.cn-beijing.aliyuncs.com");
    CHECK_FALSE(get(*s, "product_secret").value);
    CHECK(get(*s, "product_secret").secret);

    f.flags.endpoint = "http://127.0.0.1:8080"; // an emulator serves both
    s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "auth_endpoint").value == "http://127.0.0.1:8080");
    CHECK(get(*s, "auth_endpoint").source == "endpoint (flag --endpoint)");

    f.flags.auth_endpoint = "https://auth.example";
    s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "auth_endpoint").value == "https://auth.example");

    f.flags.auth_endpoint = "auth.example"; // not a URL
    s = f.resolve();
    REQUIRE(s);
    auto ok = cloud::require_cloud_settings(*s, {cloud::key::auth_endpoint});
    REQUIRE_FALSE(ok);
    CHECK(ok.error().kind == ErrorKind::config);
  }

  TEST_CASE("the ProductSecret: environment, then the config's value or file") {
    Fixture f;
    f.write("ps.txt", "FileProductSecret1\n");
    f.own(R"({"product_secret_file": ")" + (f.home / "ps.txt").string() + R"("})");
    auto s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "product_secret").value == "FileProductSecret1");
    CHECK(get(*s, "product_secret").source.find("product_secret_file") != std::string::npos);

    f.vars["IOTFLEET_PRODUCT_SECRET"] = "EnvProductSecret1";
    s = f.resolve();
    REQUIRE(s);
    CHECK(get(*s, "product_secret").value == "EnvProductSecret1");
    CHECK(get(*s, "product_secret").source == "env IOTFLEET_PRODUCT_SECRET");

    Fixture g;
    g.own(R"({"product_secret": "InlineProductSecret"})", 0644);
    s = g.resolve();
    REQUIRE(s);
    CHECK(get(*s, "product_secret").value == "InlineProductSecret");
    REQUIRE(s->warnings.size() == 1);
    CHECK(s->warnings[0].find("chmod 600") != std::string::npos);
  }
}
