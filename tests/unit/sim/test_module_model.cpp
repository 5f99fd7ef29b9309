// SPDX-License-Identifier: MIT
// The module model against docs/at-modules.md: exact bytes on the wire, not our client's view.
#include "sim/module_model.hpp"
#include "sim/nvm.hpp"
#include "unit/sim/model_bench.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <regex>

using namespace iot::sim;
using namespace iot::sim::testing;
using namespace std::chrono_literals;

namespace {

std::string ok_reply(std::string_view line) {
  return "\r\n" + std::string(line) + "\r\n\r\nOK\r\n";
}

} // namespace

TEST_SUITE("sim::ModuleModel boot and echo") {
  TEST_CASE("Luat boots with RDY, +CPIN: READY, SMS Ready") {
    Bench b(ModuleKind::luat);
    CHECK(b.banner == "\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n");
  }

  TEST_CASE("Quectel boots with RDY … +QIND: PB DONE") {
    Bench b(ModuleKind::quectel);
    CHECK(b.banner.starts_with("\r\nRDY\r\n"));
    CHECK(b.banner.find("\r\n+CPIN: READY\r\n") != std::string::npos);
    CHECK(b.banner.ends_with("\r\n+QIND: PB DONE\r\n"));
  }

  TEST_CASE("ESP-AT boots with ready, not RDY") {
    Bench b(ModuleKind::esp_at);
    CHECK(b.banner == "\r\nready\r\n");
  }

  TEST_CASE("input before boot is lost") {
    ModelConfig c;
    c.urcs_per_minute = 0;
    ModuleModel m(c, test_nvm(), 1);
    TimePoint t{};
    m.power_on(t, 500ms);
    m.feed("AT\r", t + 10ms);
    const std::string out = m.take_due(t + 2s);
    CHECK(out.find("OK") == std::string::npos);
  }

  TEST_CASE("echo is on after boot and a command comes back as typed") {
    Bench b(ModuleKind::luat);
    CHECK(b.model.echo());
    CHECK(b.at("AT") == "AT\r\r\nOK\r\n");
    CHECK(b.at("at") == "at\r\r\nOK\r\n");
  }

  TEST_CASE("ATE0 turns echo off, ATE1 back on") {
    Bench b(ModuleKind::quectel);
    CHECK(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK_FALSE(b.model.echo());
    CHECK(b.at("AT") == "\r\nOK\r\n");
    CHECK(b.at("ATE1") == "\r\nOK\r\n");
    CHECK(b.at("AT") == "AT\r\r\nOK\r\n");
  }

  TEST_CASE("a LF after the CR is echoed but does not start a command") {
    Bench b(ModuleKind::luat);
    b.model.feed("AT\r\n", b.now);
    CHECK(b.run_for(1s) == "AT\r\n\r\nOK\r\n");
  }

  TEST_CASE("lines not starting with AT are ignored") {
    Bench b(ModuleKind::luat);
    CHECK(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("hello") == "");
    CHECK(b.at("") == "");
  }

  TEST_CASE("two commands in one write are answered in order") {
    Bench b(ModuleKind::luat);
    CHECK(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    b.model.feed("AT+CPIN?\rAT+CGATT?\r", b.now);
    CHECK(b.run_for(1s) == ok_reply("+CPIN: READY") + ok_reply("+CGATT: 1"));
  }

  TEST_CASE("ESP-AT answers busy p... to a command sent while it is busy") {
    Bench b(ModuleKind::esp_at);
    CHECK(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    b.model.feed("AT\rAT\r", b.now);
    CHECK(b.run_for(1s) == "\r\nbusy p...\r\n\r\nOK\r\n");
  }
}

TEST_SUITE("sim::ModuleModel cellular identity and health") {
  TEST_CASE("identity and health replies have the documented formats") {
    for (const auto kind : {ModuleKind::luat, ModuleKind::quectel}) {
      CAPTURE(to_string(kind));
      Bench b(kind);
      REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
      CHECK(b.at("AT+CGSN") == ok_reply("490154203237518"));
      CHECK(b.at("AT+GSN") == ok_reply("490154203237518"));
      CHECK(b.at("AT+CGSN=1") == ok_reply("+CGSN: \"490154203237518\""));
      CHECK(b.at("AT+CPIN?") == ok_reply("+CPIN: READY"));
      CHECK(std::regex_match(b.at("AT+CSQ"),
                             std::regex("\r\n\\+CSQ: ([0-9]|[12][0-9]|3[01]),99\r\n\r\nOK\r\n")));
      CHECK(b.at("AT+CEREG?") == ok_reply("+CEREG: 0,1"));
      CHECK(b.at("AT+CREG?") == ok_reply("+CREG: 0,1"));
      CHECK(b.at("AT+CGATT?") == ok_reply("+CGATT: 1"));
      CHECK(b.at("AT+COPS?") == ok_reply("+COPS: 0,0,\"CHINA MOBILE\",7"));
      CHECK(b.at("AT+CIMI") == ok_reply("460001234567890"));
    }
  }

  TEST_CASE("Luat ICCID: AT+CCID bare, AT+ICCID prefixed, firmware in +CGMR") {
    Bench b(ModuleKind::luat);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+CCID") == ok_reply("89860412345678901234"));
    CHECK(b.at("AT+ICCID") == ok_reply("+ICCID: 89860412345678901234"));
    CHECK(b.at("AT+CGMR") == ok_reply("+CGMR: \"AirM2M_Air724UG_V409_LTE_AT\""));
    CHECK(b.at("ATI").find("AirM2M") != std::string::npos);
  }

  TEST_CASE("Quectel ICCID: AT+QCCID prefixed, ATI names Quectel") {
    Bench b(ModuleKind::quectel);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+QCCID") == ok_reply("+QCCID: 89860412345678901234"));
    CHECK(b.at("ATI") ==
          "\r\nQuectel\r\n\r\nEC200U\r\n\r\nRevision: EC200UCNAAR02A09M08\r\n\r\nOK\r\n");
  }

  TEST_CASE("AT+CMEE selects ERROR, numeric or verbose errors") {
    Bench b(ModuleKind::luat);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.model.cmee() == 0);
    CHECK(b.at("AT+NOSUCH") == "\r\nERROR\r\n");
    CHECK(b.at("AT+CMEE=1") == "\r\nOK\r\n");
    CHECK(b.at("AT+CMEE?") == ok_reply("+CMEE: 1"));
    CHECK(b.at("AT+NOSUCH") == "\r\n+CME ERROR: 4\r\n");
    CHECK(b.at("AT+CMEE=2") == "\r\nOK\r\n");
    CHECK(b.at("AT+NOSUCH") == "\r\n+CME ERROR: operation not supported\r\n");
    CHECK(b.at("AT+CMEE=7") == "\r\n+CME ERROR: Incorrect parameters\r\n");
    CHECK(b.at("AT+CGSN=9") == "\r\n+CME ERROR: Incorrect parameters\r\n");
  }

  TEST_CASE("Quectel's CMEE default is 1 (numeric)") {
    Bench b(ModuleKind::quectel);
    CHECK(b.model.cmee() == 1);
    CHECK(b.at("AT+NOSUCH") == "AT+NOSUCH\r\r\n+CME ERROR: 4\r\n");
  }
}

TEST_SUITE("sim::ModuleModel Luat SN") {
  TEST_CASE("an unset SN answers the data line *CME ERROR: Missing SN, then OK") {
    Bench b(ModuleKind::luat);
    CHECK(b.at("AT+WISN?") == "AT+WISN?\r\r\n*CME ERROR: Missing SN\r\n\r\nOK\r\n");
  }

  TEST_CASE("AT+WISN writes quoted and unquoted values and reads them back bare") {
    Bench b(ModuleKind::luat);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+WISN=\"1234567890\"") == "\r\nOK\r\n");
    CHECK(b.at("AT+WISN?") == ok_reply("1234567890"));
    CHECK(b.at("AT+WISN=ABC123") == "\r\nOK\r\n");
    CHECK(b.at("AT+WISN?") == ok_reply("ABC123"));
    CHECK(b.model.nvm().sn == "ABC123");
  }

  TEST_CASE("the SN holds at most 64 bytes, a longer write fails and changes nothing") {
    Bench b(ModuleKind::luat);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    const std::string max(64, 'a');
    CHECK(b.at("AT+WISN=\"" + max + "\"") == "\r\nOK\r\n");
    CHECK(b.at("AT+WISN?") == ok_reply(max));
    CHECK(b.at("AT+WISN=\"" + std::string(65, 'b') + "\"") == "\r\nERROR\r\n");
    REQUIRE(b.at("AT+CMEE=2") == "\r\nOK\r\n");
    CHECK(b.at("AT+WISN=\"" + std::string(65, 'b') + "\"") ==
          "\r\n+CME ERROR: text string too long\r\n");
    CHECK(b.at("AT+WISN?") == ok_reply(max));
  }

  TEST_CASE("a quote inside a quoted SN is refused") {
    Bench b(ModuleKind::luat);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+WISN=\"ab\"cd\"") == "\r\nERROR\r\n");
    CHECK_FALSE(b.model.nvm().sn.has_value());
  }

  TEST_CASE("the OK of an NVM write comes after the configured latency") {
    Bench b(ModuleKind::luat);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    b.model.feed("AT+WISN=\"x\"\r", b.now);
    CHECK(b.run_for(45ms) == "");
    CHECK(b.run_for(300ms) == "\r\nOK\r\n");
  }

  TEST_CASE("AT+WIMEI accepts a Luhn-valid IMEI only") {
    Bench b(ModuleKind::luat);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+WIMEI=\"123456789012345\"") == "\r\nERROR\r\n");
    CHECK(b.at("AT+WIMEI=\"352099001761481\"") == "\r\nOK\r\n");
    CHECK(b.at("AT+CGSN") == ok_reply("352099001761481"));
  }
}

TEST_SUITE("sim::ModuleModel Quectel") {
  TEST_CASE("aliauth is written with a client index and read back without it") {
    Bench b(ModuleKind::quectel);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+QMTCFG=\"aliauth\",0") == "\r\nOK\r\n"); // nothing configured yet
    CHECK(b.at("AT+QMTCFG=\"aliauth\",0,\"a1X2bEnP82z\",\"example_nbiot\",\"DdBFSqer\"") ==
          "\r\nOK\r\n");
    CHECK(b.at("AT+QMTCFG=\"aliauth\",0") ==
          ok_reply("+QMTCFG: \"aliauth\",\"a1X2bEnP82z\",\"example_nbiot\",\"DdBFSqer\""));
    CHECK(b.at("AT+QMTCFG=\"aliauth\",6,\"a\",\"b\",\"c\"") == "\r\n+CME ERROR: 50\r\n");
    CHECK(b.at("AT+QMTCFG=?") ==
          ok_reply("+QMTCFG: \"aliauth\",(0-5),\"product key\",\"device name\",\"device secret\""));
  }

  TEST_CASE("AT+EGMR=0,5 reads the SN, 0,7 the IMEI") {
    Nvm nvm = test_nvm();
    nvm.sn = "MPY23LA01234567";
    Bench b(ModuleKind::quectel, {}, 1, {}, nvm);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+EGMR=0,5") == ok_reply("+EGMR: \"MPY23LA01234567\""));
    CHECK(b.at("AT+EGMR=0,7") == ok_reply("+EGMR: \"490154203237518\""));
  }
}

TEST_SUITE("sim::ModuleModel ESP-AT") {
  TEST_CASE("AT+SYSMFG writes through the > prompt by length and reads back") {
    Bench b(ModuleKind::esp_at);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    const std::string secret = "0123456789abcdef0123456789ABCDEF";
    CHECK(b.at("AT+SYSMFG=2,\"aliyun-key\",\"DeviceSecret\",7,32") == "\r\nOK\r\n\r\n>");
    b.model.feed(secret, b.now); // raw, not echoed, no CR
    CHECK(b.run_for(1s) == "\r\nOK\r\n");
    CHECK(b.at("AT+SYSMFG=1,\"aliyun-key\",\"DeviceSecret\"") ==
          ok_reply("+SYSMFG:\"aliyun-key\",\"DeviceSecret\",7,32," + secret));
    CHECK(b.model.nvm().sysmfg.at("aliyun-key").at("DeviceSecret").data == secret);
  }

  TEST_CASE("prompt data is raw: quotes, commas and CR are stored as sent") {
    Bench b(ModuleKind::esp_at); // echo on: the command echoes, the data does not
    CHECK(b.at("AT+SYSMFG=2,\"aliyun-key\",\"DeviceName\",7,6") ==
          "AT+SYSMFG=2,\"aliyun-key\",\"DeviceName\",7,6\r\r\nOK\r\n\r\n>");
    b.model.feed("a\"b,\rc", b.now);
    CHECK(b.run_for(1s) == "\r\nOK\r\n");
    CHECK(b.model.nvm().sysmfg.at("aliyun-key").at("DeviceName").data == "a\"b,\rc");
  }

  TEST_CASE("numeric SYSMFG values are written inline and range-checked") {
    Bench b(ModuleKind::esp_at);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+SYSMFG=2,\"factory_param\",\"uart_baudrate\",6,115200") == "\r\nOK\r\n");
    CHECK(b.at("AT+SYSMFG=1,\"factory_param\",\"uart_baudrate\"") ==
          ok_reply("+SYSMFG:\"factory_param\",\"uart_baudrate\",6,6,115200"));
    CHECK(b.at("AT+SYSMFG=2,\"factory_param\",\"x\",1,256") == "\r\nERROR\r\n");
  }

  TEST_CASE("SYSMFG lists namespaces and keys, erases, and refuses missing keys") {
    Bench b(ModuleKind::esp_at);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+SYSMFG?").find("\r\n+SYSMFG:\"aliyun-key\"\r\n") != std::string::npos);
    CHECK(b.at("AT+SYSMFG=1,\"aliyun-key\",\"ProductKey\"") == "\r\nERROR\r\n");
    REQUIRE(b.at("AT+SYSMFG=2,\"aliyun-key\",\"ProductKey\",7,3") == "\r\nOK\r\n\r\n>");
    b.model.feed("pk1", b.now);
    REQUIRE(b.run_for(1s) == "\r\nOK\r\n");
    CHECK(b.at("AT+SYSMFG=1,\"aliyun-key\"") ==
          ok_reply("+SYSMFG:\"aliyun-key\",\"ProductKey\",7"));
    CHECK(b.at("AT+SYSMFG=0,\"aliyun-key\",\"ProductKey\"") == "\r\nOK\r\n");
    CHECK(b.at("AT+SYSMFG=1,\"aliyun-key\",\"ProductKey\"") == "\r\nERROR\r\n");
  }

  TEST_CASE("MAC, firmware, and no CMEE on ESP-AT") {
    Bench b(ModuleKind::esp_at);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+CIPSTAMAC?") == ok_reply("+CIPSTAMAC:\"24:0a:c4:01:02:03\""));
    CHECK(b.at("AT+GMR").starts_with("\r\nAT version:"));
    CHECK(b.at("AT+CMEE=2") == "\r\nERROR\r\n");
    CHECK(b.at("AT+CGSN") == "\r\nERROR\r\n");
  }

  TEST_CASE("AT+RST answers OK and reboots to ready") {
    Bench b(ModuleKind::esp_at);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+RST", 2s) == "\r\nOK\r\n\r\nready\r\n");
    CHECK(b.model.echo());
  }
}

TEST_SUITE("sim::ModuleModel persistence") {
  TEST_CASE("NVM round-trips through the state dir, arbitrary bytes included") {
    const auto dir =
        std::filesystem::temp_directory_path() / ("iot-sim-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto file = nvm_path(dir, ModuleKind::luat, 0);
    auto persist = [file](const Nvm& n) { return save_nvm(file, n, ModuleKind::luat); };
    {
      Bench b(ModuleKind::luat, {}, 1, persist);
      REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
      CHECK(b.at("AT+WISN=\"s\xff\x01cr\"") == "\r\nOK\r\n");
    }
    const auto loaded = load_nvm(file);
    REQUIRE(loaded);
    REQUIRE(loaded->has_value());
    CHECK((*loaded)->sn == std::string("s\xff\x01cr"));
    CHECK((*loaded)->imei == "490154203237518");
    Bench again(ModuleKind::luat, {}, 2, persist, **loaded);
    REQUIRE(again.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(again.at("AT+WISN?") == ok_reply("s\xff\x01cr"));

    Nvm full = test_nvm();
    full.aliauth[3] = AliAuth{"pk", "dn", "d\"s"};
    full.sysmfg["aliyun-key"]["DeviceSecret"] = MfgValue{8, std::string("\0\1\2", 3)};
    REQUIRE(save_nvm(file, full, ModuleKind::quectel));
    const auto back = load_nvm(file);
    REQUIRE(back);
    CHECK(**back == full);
    std::filesystem::remove_all(dir);
  }

  TEST_CASE("a missing state file loads as nothing") {
    const auto loaded = load_nvm("/nonexistent-dir/none.json");
    REQUIRE(loaded);
    CHECK_FALSE(loaded->has_value());
  }

  TEST_CASE("a failed persist answers an error and leaves the NVM unchanged") {
    auto broken = [](const Nvm&) -> iot::Status {
      return iot::fail(iot::ErrorKind::io, "disk full");
    };
    Bench b(ModuleKind::luat, {}, 1, broken);
    REQUIRE(b.at("ATE0") == "ATE0\r\r\nOK\r\n");
    CHECK(b.at("AT+WISN=\"abc\"") == "\r\nERROR\r\n");
    CHECK_FALSE(b.model.nvm().sn.has_value());
  }
}
