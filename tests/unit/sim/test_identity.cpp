// SPDX-License-Identifier: MIT
#include "sim/identity.hpp"
#include "sim/modules_cmd.hpp"
#include "sim/sim_registry.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdlib>
#include <set>

using namespace iot::sim;

TEST_SUITE("sim::identity") {
  TEST_CASE("the Luhn check digit matches the at-modules.md test vector") {
    CHECK(luhn_check_digit("49015420323751") == '8');
    CHECK(luhn_valid("490154203237518"));
    CHECK_FALSE(luhn_valid("490154203237517"));
    CHECK(luhn_valid(k_placeholder_imei));
    CHECK(luhn_valid("000000000000000"));
    CHECK_FALSE(luhn_valid("123456789012345")); // at-modules.md §6: fails Luhn
    CHECK(luhn_check_digit("12345678901234") == '7');
    CHECK_FALSE(luhn_valid("86299123456789x"));
  }

  TEST_CASE("generated IMEIs are 15 digits, Luhn-valid, 86-TAC and distinct") {
    Rng rng(42);
    std::set<std::string> seen;
    for (int i = 0; i < 2000; ++i) {
      const std::string imei = random_imei(rng);
      REQUIRE(is_imei_shaped(imei));
      REQUIRE(luhn_valid(imei));
      REQUIRE(imei.starts_with("86"));
      seen.insert(imei);
    }
    CHECK(seen.size() == 2000);
  }

  TEST_CASE("generated ICCIDs, IMSIs and MACs have their shapes") {
    Rng rng(7);
    const std::string iccid = random_iccid(rng);
    CHECK(iccid.size() == 20);
    CHECK(iccid.starts_with("8986"));
    CHECK(luhn_valid(iccid));
    CHECK(random_imsi(rng).size() == 15);
    const std::string mac = random_mac(rng);
    CHECK(is_mac_shaped(mac));
    CHECK(mac.starts_with("24:0a:c4:"));
    CHECK_FALSE(is_mac_shaped("24:0a:c4:00:11"));
  }

  TEST_CASE("the same seed gives the same identities") {
    Rng a(derive_seed(99, 3));
    Rng b(derive_seed(99, 3));
    CHECK(random_imei(a) == random_imei(b));
    CHECK(derive_seed(99, 3) != derive_seed(99, 4));
  }
}

TEST_SUITE("sim::modules_cmd") {
  TEST_CASE("NVM latency ranges parse as MIN-MAX or N") {
    const auto range = parse_latency_range("50-300");
    REQUIRE(range);
    CHECK(range->first.count() == 50);
    CHECK(range->second.count() == 300);
    const auto single = parse_latency_range("0");
    REQUIRE(single);
    CHECK(single->first.count() == 0);
    CHECK(single->second.count() == 0);
    CHECK_FALSE(parse_latency_range("300-50"));
    CHECK_FALSE(parse_latency_range("abc"));
    CHECK_FALSE(parse_latency_range("-5"));
  }

  TEST_CASE("the registry dir follows IOTFLEET_SIM_REGISTRY, then XDG_RUNTIME_DIR, then /tmp") {
    const char* old_reg = std::getenv("IOTFLEET_SIM_REGISTRY");
    const char* old_xdg = std::getenv("XDG_RUNTIME_DIR");
    const std::string saved_reg = old_reg ? old_reg : "";
    const std::string saved_xdg = old_xdg ? old_xdg : "";
    ::setenv("IOTFLEET_SIM_REGISTRY", "/x/reg", 1);
    ::setenv("XDG_RUNTIME_DIR", "/run/user/5", 1);
    CHECK(sim_registry_dir() == "/x/reg");
    ::unsetenv("IOTFLEET_SIM_REGISTRY");
    CHECK(sim_registry_dir() == "/run/user/5/iotfleet");
    ::unsetenv("XDG_RUNTIME_DIR");
    CHECK(sim_registry_dir() == "/tmp/iotfleet-" + std::to_string(::getuid()));
    if (old_reg) {
      ::setenv("IOTFLEET_SIM_REGISTRY", saved_reg.c_str(), 1);
    }
    if (old_xdg) {
      ::setenv("XDG_RUNTIME_DIR", saved_xdg.c_str(), 1);
    }
  }

  TEST_CASE("the ports JSON names pid, module and each port's path and identity") {
    const auto text =
        ports_json(1234, ModuleKind::luat, "/s", 115200, {{0, "/dev/pts/5", "860000000000000"}});
    const auto j = nlohmann::json::parse(text);
    CHECK(j["pid"] == 1234);
    CHECK(j["module"] == "luat");
    CHECK(j["ports"][0]["index"] == 0);
    CHECK(j["ports"][0]["path"] == "/dev/pts/5");
    CHECK(j["ports"][0]["imei"] == "860000000000000");
    const auto esp = nlohmann::json::parse(
        ports_json(1, ModuleKind::esp_at, "/s", 115200, {{0, "/dev/pts/6", "24:0a:c4:00:00:01"}}));
    CHECK(esp["module"] == "esp-at");
    CHECK(esp["ports"][0]["mac"] == "24:0a:c4:00:00:01");
  }
}
