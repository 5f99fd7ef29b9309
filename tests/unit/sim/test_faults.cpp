// SPDX-License-Identifier: MIT
// Fault injection and URCs: deterministic for a seed; faults never change NVM behind the host.
#include "sim/module_model.hpp"
#include "unit/sim/model_bench.hpp"

#include <doctest/doctest.h>

using namespace iot::sim;
using namespace iot::sim::testing;
using namespace std::chrono_literals;

namespace {

// The same command script against a model; returns everything the module said.
std::string script(std::uint64_t seed, FaultRates faults) {
  Bench r(ModuleKind::luat, faults, seed, {}, test_nvm(), 30);
  std::string out = r.banner;
  for (int i = 0; i < 40; ++i) {
    out += r.at("AT+CGSN", 500ms);
    out += r.at("AT+WISN=\"secret" + std::to_string(i) + "\"", 500ms);
    out += r.at("AT+WISN?", 500ms);
  }
  out += r.run_for(10s);
  return out;
}

} // namespace

TEST_SUITE("sim::ModuleModel faults") {
  TEST_CASE("a fixed seed gives the same faults, replies and URCs, another seed does not") {
    const FaultRates faults{0.1, 0.1, 0.05, 0.03, 0.1};
    const std::string a = script(1234, faults);
    CHECK(a == script(1234, faults));
    CHECK(a != script(1235, faults));
  }

  TEST_CASE("no fault rates, no faults") {
    Bench r(ModuleKind::luat, {}, 5);
    for (int i = 0; i < 50; ++i) {
      REQUIRE(r.at("AT", 50ms) == "AT\r\r\nOK\r\n");
    }
    const ModelStats& s = r.model.stats();
    CHECK(s.garbled + s.dropped + s.reboots + s.stuck + s.slow == 0);
  }

  TEST_CASE("garble changes the reply bytes") {
    Bench r(ModuleKind::luat, FaultRates{1.0, 0, 0, 0, 0}, 9);
    r.model.feed("ATE0\r", r.now);
    r.run_for(1s);
    int changed = 0;
    for (int i = 0; i < 20; ++i) {
      if (r.at("AT+CGSN", 200ms) != "\r\n490154203237518\r\n\r\nOK\r\n") {
        ++changed;
      }
    }
    CHECK(changed == 20);
    CHECK(r.model.stats().garbled == 21);
  }

  TEST_CASE("drop: the command runs (and persists) but no reply comes") {
    Bench r(ModuleKind::luat, FaultRates{0, 1.0, 0, 0, 0}, 3);
    CHECK(r.at("AT+WISN=\"kept\"") == "AT+WISN=\"kept\"\r"); // the echo only
    r.model.set_faults({});
    CHECK(r.at("AT+WISN?") == "AT+WISN?\r\r\nkept\r\n\r\nOK\r\n");
  }

  TEST_CASE("reboot: the command is lost, RDY ~1 s later, echo back on, CMEE reset, NVM kept") {
    Bench r(ModuleKind::luat, {}, 4);
    REQUIRE(r.at("AT+WISN=\"before\"") == "AT+WISN=\"before\"\r\r\nOK\r\n");
    REQUIRE(r.at("ATE0") == "ATE0\r\r\nOK\r\n");
    REQUIRE(r.at("AT+CMEE=2") == "\r\nOK\r\n");
    r.model.set_faults(FaultRates{0, 0, 1.0, 0, 0});
    CHECK(r.at("AT+WISN=\"lost\"", 800ms) == "");
    CHECK_FALSE(r.model.running());
    r.model.set_faults({});
    const std::string banner = r.run_for(2s);
    CHECK(banner.starts_with("\r\nRDY\r\n"));
    CHECK(r.model.echo());
    CHECK(r.model.cmee() == 0);
    CHECK(r.at("AT+WISN?") == "AT+WISN?\r\r\nbefore\r\n\r\nOK\r\n");
    CHECK(r.model.stats().reboots == 1);
  }

  TEST_CASE("reboot during an ESP prompt write loses the write") {
    Bench r(ModuleKind::esp_at, {}, 4);
    REQUIRE(r.at("ATE0") == "ATE0\r\r\nOK\r\n");
    REQUIRE(r.at("AT+SYSMFG=2,\"aliyun-key\",\"DeviceName\",7,4") == "\r\nOK\r\n\r\n>");
    r.model.set_faults(FaultRates{0, 0, 1.0, 0, 0});
    r.model.feed("dev1", r.now);
    r.model.set_faults({});
    CHECK(r.run_for(2s) == "\r\nready\r\n");
    CHECK(r.model.nvm().sysmfg.empty());
  }

  TEST_CASE("stuck: no echo, no reply and input ignored for 3-8 s, then normal again") {
    Bench r(ModuleKind::luat, FaultRates{0, 0, 0, 1.0, 0}, 6);
    CHECK(r.at("AT+WISN=\"lost\"", 100ms) == "AT+WISN=\"lost\"\r");
    r.model.set_faults({});
    CHECK(r.at("AT", 2s) == "");
    r.run_for(7s);
    CHECK(r.at("AT") == "AT\r\r\nOK\r\n");
    CHECK_FALSE(r.model.nvm().sn.has_value());
  }

  TEST_CASE("slow: the reply comes 1-3 s late") {
    Bench r(ModuleKind::luat, FaultRates{0, 0, 0, 0, 1.0}, 8);
    CHECK(r.at("AT", 990ms) == "AT\r");
    CHECK(r.run_for(3s) == "\r\nOK\r\n");
  }
}

TEST_SUITE("sim::ModuleModel URCs") {
  TEST_CASE("URCs arrive on their own at about the configured rate") {
    Bench r(ModuleKind::quectel, {}, 11, {}, test_nvm(), 60); // one a second on average
    const std::string out = r.run_for(60s);
    CHECK(r.model.stats().urcs > 30);
    CHECK(r.model.stats().urcs < 100);
    CHECK(out.find("\r\n+CGEV: ME PDN ACT 1\r\n") != std::string::npos);
  }

  TEST_CASE("a URC can arrive between the lines of a multi-line reply") {
    bool between = false;
    for (std::uint64_t seed = 1; seed < 200 && !between; ++seed) {
      Bench r(ModuleKind::quectel, {}, seed, {}, test_nvm(), 3000); // ~50 a second
      r.model.feed("ATI\r", r.now);
      const std::string out = r.run_for(50ms);
      const auto first = out.find("\r\nQuectel\r\n");
      const auto last = out.find("\r\nOK\r\n");
      if (first == std::string::npos || last == std::string::npos) {
        continue;
      }
      const std::string middle = out.substr(first, last - first);
      between = middle.find("\r\n+") != std::string::npos; // every Quectel URC starts with '+'
    }
    CHECK(between);
  }

  TEST_CASE("no URCs while the ESP waits for prompt data") {
    Bench r(ModuleKind::esp_at, {}, 2, {}, test_nvm(), 600);
    r.model.feed("ATE0\r", r.now);
    r.run_for(20ms);
    r.model.feed("AT+SYSMFG=2,\"aliyun-key\",\"ProductKey\",7,2\r", r.now);
    r.run_for(20ms);
    const auto before = r.model.stats().urcs;
    r.run_for(5s);
    CHECK(r.model.stats().urcs == before);
  }
}
