// SPDX-License-Identifier: MIT
// Drivers against transcripts from docs/at-modules.md.
#include "serial/driver.hpp"
#include "unit/serial/fake_serial_port.hpp"

#include <doctest/doctest.h>

using namespace iot;
using namespace iot::serial;
using iot::test::FakeSerialPort;

namespace {

constexpr const char* k_imei = "490154203237518";
constexpr const char* k_ds = "sLefbFmN9SYfnWLJTePG893XNuRVabcd";

std::unique_ptr<ModuleDriver> driver(const char* name, AtChannel& ch) {
  auto d = make_driver(name, ch);
  REQUIRE(d);
  return std::move(*d);
}

} // namespace

TEST_SUITE("serial::driver luat") {
  TEST_CASE("identify reads IMEI, ICCID, firmware and an unset SN") {
    FakeSerialPort port;
    port.expect("AT+CGSN\r").reply("\r\n490154203237518\r\n\r\nOK\r\n");
    port.expect("AT+ICCID\r").reply("\r\n+ICCID: 89860117831003134201\r\n\r\nOK\r\n");
    port.expect("AT+CGMR\r").reply("\r\n+CGMR: \"AirM2M_Air724UG_V409_LTE_AT\"\r\n\r\nOK\r\n");
    port.expect("AT+CGMI\r").reply("\r\nERROR\r\n");
    port.expect("AT+CGMM\r").reply("\r\nAir724UG\r\n\r\nOK\r\n");
    port.expect("AT+WISN?\r").reply("\r\n*CME ERROR: Missing SN\r\n\r\nOK\r\n");
    AtChannel ch(port);
    auto d = driver("luat", ch);
    auto id = d->identify();
    REQUIRE(id);
    CHECK(id->module == "luat");
    CHECK(id->imei == k_imei);
    CHECK(id->iccid == "89860117831003134201");
    CHECK(id->firmware == "AirM2M_Air724UG_V409_LTE_AT");
    CHECK(id->manufacturer.empty());
    CHECK(id->model == "Air724UG");
    CHECK_FALSE(id->sn.has_value());
  }

  TEST_CASE("ICCID falls back to AT+CCID and a set SN is returned") {
    FakeSerialPort port;
    port.expect("AT+CGSN\r").reply("\r\n490154203237518\r\nOK\r\n");
    port.expect("AT+ICCID\r").reply("\r\n+CME ERROR: 4\r\n");
    port.expect("AT+CCID\r").reply("\r\n89860117831003134201\r\nOK\r\n");
    port.expect("AT+CGMR\r").reply("\r\nOK\r\n");
    port.expect("AT+CGMI\r").reply("\r\nOK\r\n");
    port.expect("AT+CGMM\r").reply("\r\nOK\r\n");
    port.expect("AT+WISN?\r").reply("\r\n1234567890\r\nOK\r\n");
    AtChannel ch(port);
    auto id = driver("luat", ch)->identify();
    REQUIRE(id);
    CHECK(id->iccid == "89860117831003134201");
    CHECK(id->sn == std::optional<std::string>("1234567890"));
  }

  TEST_CASE("secret layout: DN must be the IMEI, write, read back, verified") {
    FakeSerialPort port;
    port.expect("AT+CGSN\r").reply("\r\n490154203237518\r\nOK\r\n");
    port.expect(std::string("AT+WISN=\"") + k_ds + "\"\r").reply("\r\nOK\r\n");
    port.expect("AT+WISN?\r").reply(std::string("\r\n") + k_ds + "\r\n\r\nOK\r\n");
    AtChannel ch(port);
    auto d = driver("luat", ch);
    CHECK(d->default_layout() == Layout::secret);
    auto ok = d->write_credentials({"a1BwAGV1234", k_imei, k_ds, ""}, Layout::secret);
    REQUIRE(ok);
  }

  TEST_CASE("secret layout refuses a DeviceName that is not the IMEI, before writing") {
    FakeSerialPort port;
    port.expect("AT+CGSN\r").reply("\r\n490154203237518\r\nOK\r\n");
    AtChannel ch(port);
    auto r =
        driver("luat", ch)->write_credentials({"a1BwAGV1234", "dev0001", k_ds, ""}, Layout::secret);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::usage);
    CHECK(r.error().message.starts_with("DeviceName dev0001 is not this module's IMEI "
                                        "490154203237518"));
    CHECK(port.writes() == std::vector<std::string>{"AT+CGSN\r"});
  }

  TEST_CASE("secret layout refuses a placeholder IMEI") {
    FakeSerialPort port;
    port.expect("AT+CGSN\r").reply("\r\n352099001761481\r\nOK\r\n");
    AtChannel ch(port);
    auto r =
        driver("luat", ch)->write_credentials({"", "352099001761481", k_ds, ""}, Layout::secret);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::module);
    CHECK(r.error().message.find("known placeholder") != std::string::npos);
  }

  TEST_CASE("triplet layout: PK|DN|DS in the SN, above 64 bytes refused before sending") {
    FakeSerialPort port;
    AtChannel ch(port);
    const std::string dn(32, 'd');
    auto r = driver("luat", ch)->write_credentials({"a1BwAGV1234", dn, k_ds, ""}, Layout::triplet);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::usage);
    CHECK(r.error().message ==
          "layout triplet of module luat: SN would need 77 bytes but holds at most 64 "
          "(DeviceName 32 + DeviceSecret 32 + ProductKey 11 + separators) — use --layout secret "
          "(SN = DeviceSecret, DeviceName = IMEI) or shorter DeviceNames");
    CHECK(port.writes().empty());
  }

  TEST_CASE("triplet layout within 64 bytes is written and verified") {
    const std::string sn = std::string("a1BwAGV1234|dev0001|") + k_ds;
    FakeSerialPort port;
    port.expect("AT+WISN=\"" + sn + "\"\r").reply("\r\nOK\r\n");
    port.expect("AT+WISN?\r").reply("\r\n" + sn + "\r\nOK\r\n");
    AtChannel ch(port);
    auto r = driver("luat", ch)
                 ->write_credentials({"a1BwAGV1234", "dev0001", k_ds, ""}, Layout::triplet);
    REQUIRE(r);
  }

  TEST_CASE("plan_write shows the writes and read-backs, sends nothing, validates the same") {
    const std::string sn = std::string("a1BwAGV1234|dev0001|") + k_ds;
    FakeSerialPort port;
    AtChannel ch(port);
    auto d = driver("luat", ch);
    auto plan = d->plan_write({"a1BwAGV1234", "dev0001", k_ds, ""}, Layout::triplet);
    REQUIRE(plan);
    REQUIRE(plan->size() == 2);
    CHECK((*plan)[0].command == "AT+WISN=\"" + sn + "\"");
    CHECK((*plan)[0].purpose == "write SN");
    CHECK((*plan)[1].command == "AT+WISN?");
    CHECK((*plan)[1].purpose == "read back SN");
    CHECK(port.writes().empty());
    auto bad = d->plan_write({"a1BwAGV1234", "dev\"0001", k_ds, ""}, Layout::triplet);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().kind == ErrorKind::usage);
    CHECK(port.writes().empty());
  }

  TEST_CASE("a read-back mismatch is a module error with both secrets masked") {
    const std::string other = "XXXXbFmN9SYfnWLJTePG893XNuRVzzzz";
    FakeSerialPort port;
    port.expect("AT+CGSN\r").reply("\r\n490154203237518\r\nOK\r\n");
    port.expect(std::string("AT+WISN=\"") + k_ds + "\"\r").reply("\r\nOK\r\n");
    port.expect("AT+WISN?\r").reply("\r\n" + other + "\r\nOK\r\n");
    AtChannel ch(port);
    auto r = driver("luat", ch)->write_credentials({"", k_imei, k_ds, ""}, Layout::secret);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::module);
    CHECK(r.error().message ==
          "read-back mismatch in SN: DeviceSecret written \"sLef…abcd\" (32 bytes) but the module "
          "holds \"XXXX…zzzz\" (32 bytes) — not burned; retry, and if it persists replace the "
          "module or check its firmware");
    CHECK(r.error().message.find(k_ds) == std::string::npos);
    CHECK(r.error().message.find(other) == std::string::npos);
  }

  TEST_CASE("an SN still unset after the write is not burned") {
    FakeSerialPort port;
    port.expect("AT+CGSN\r").reply("\r\n490154203237518\r\nOK\r\n");
    port.expect(std::string("AT+WISN=\"") + k_ds + "\"\r").reply("\r\nOK\r\n");
    port.expect("AT+WISN?\r").reply("\r\n*CME ERROR: Missing SN\r\nOK\r\n");
    AtChannel ch(port);
    auto r = driver("luat", ch)->write_credentials({"", k_imei, k_ds, ""}, Layout::secret);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.starts_with("read back SN: the module reports it unset"));
  }

  TEST_CASE("injection attempts are refused, naming the field, and nothing is written") {
    FakeSerialPort port;
    AtChannel ch(port);
    auto d = driver("luat", ch);
    auto quote = d->write_credentials({"a1BwAGV1234", "dev0001", "abc\",\"x", ""}, Layout::triplet);
    REQUIRE_FALSE(quote);
    CHECK(quote.error().kind == ErrorKind::usage);
    CHECK(quote.error().message.starts_with(
        "DeviceSecret contains '\"' (double quote) at position 4"));
    auto cr = d->write_credentials({"a1BwAGV1234", "dev1\rAT+CFUN=1,1", k_ds, ""}, Layout::triplet);
    REQUIRE_FALSE(cr);
    CHECK(cr.error().message.starts_with("DeviceName contains 0x0d (CR) at position 5"));
    auto missing = d->write_credentials({"a1BwAGV1234", "dev0001", "", ""}, Layout::triplet);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message == "DeviceSecret is required for layout triplet of module luat");
    CHECK(port.writes().empty());
  }

  TEST_CASE("read_credentials: secret layout gives DS and the IMEI as DeviceName") {
    FakeSerialPort port;
    port.expect("AT+WISN?\r").reply(std::string("\r\n") + k_ds + "\r\nOK\r\n");
    port.expect("AT+CGSN\r").reply("\r\n490154203237518\r\nOK\r\n");
    port.expect("AT+WISN?\r").reply("\r\n*CME ERROR: Missing SN\r\nOK\r\n");
    AtChannel ch(port);
    auto d = driver("luat", ch);
    auto c = d->read_credentials(Layout::secret);
    REQUIRE(c);
    REQUIRE(c->has_value());
    CHECK((*c)->device_secret == k_ds);
    CHECK((*c)->device_name == k_imei);
    CHECK((*c)->product_key.empty());
    auto none = d->read_credentials(Layout::secret);
    REQUIRE(none);
    CHECK_FALSE(none->has_value());
  }
}

TEST_SUITE("serial::driver secret copy") {
  // The built-in luat layout secret plus a copy read with AT+NVMDS? (docs/module-profiles.md).
  std::string copy_profile(const std::string& copy_read) {
    return R"({"name": "luat-copy", "identity": {"imei": [{"command": "AT+CGSN", "prefix": "",
      "pattern": "^([0-9]{14,17})$", "optional": false}]},
      "layouts": {"secret": {"dn_is_imei": true, "slots": [{"name": "SN", "value": "{ds}",
        "write": "AT+WISN=\"{value}\"", "read": {"command": "AT+WISN?", "prefix": "",
        "pattern": "^(.+)$", "absent": "^\\*CME ERROR: *Missing SN$"}, "fields": {"ds": 1}}],
        "secret_copy": {"name": "NVM copy", "read": )" +
           copy_read + R"(, "fields": {"ds": 1}}}}})";
  }
  constexpr const char* k_nvmds = R"({"command": "AT+NVMDS?", "prefix": "+NVMDS:",
    "pattern": "^\\+NVMDS: *\"([^\"]*)\"$", "absent": "^\\+NVMDS: *\"\"$")";

  std::unique_ptr<ModuleDriver> copy_driver(const std::string& copy_read, AtChannel& ch) {
    auto p = parse_profile(copy_profile(copy_read), "test");
    REQUIRE_MESSAGE(p, (p ? std::string() : p.error().message));
    return make_profile_driver(std::move(*p), ch);
  }

  TEST_CASE("a layout without a copy reads none and sends nothing") {
    FakeSerialPort port;
    AtChannel ch(port);
    auto d = driver("luat", ch);
    for (const auto layout : {Layout::secret, Layout::triplet}) {
      auto copy = d->read_secret_copy(layout);
      REQUIRE(copy);
      CHECK_FALSE(copy->has_value());
    }
    CHECK(port.writes().empty());
  }

  TEST_CASE("the copy is read, absent or empty reads as no copy, masked in the trace") {
    FakeSerialPort port;
    port.expect("AT+NVMDS?\r").reply(std::string("\r\n+NVMDS: \"") + k_ds + "\"\r\n\r\nOK\r\n");
    port.expect("AT+NVMDS?\r").reply("\r\n+NVMDS: \"\"\r\n\r\nOK\r\n");
    AtChannel ch(port);
    std::string trace;
    ch.set_trace([&](std::string_view dir, std::string_view line) {
      trace += std::string(dir) + " " + std::string(line) + "\n";
    });
    auto d = copy_driver(std::string(k_nvmds) + "}", ch);
    auto copy = d->read_secret_copy(Layout::secret);
    REQUIRE(copy);
    CHECK(*copy == std::optional<std::string>(k_ds));
    auto none = d->read_secret_copy(Layout::secret);
    REQUIRE(none);
    CHECK(*none == std::optional<std::string>(""));
    CHECK(trace.find("AT+NVMDS?") != std::string::npos);
    CHECK(trace.find(k_ds) == std::string::npos);
    CHECK(trace.find("<< +NVM\u2026") != std::string::npos); // the answer masked, not dropped
    auto other = d->read_secret_copy(Layout::triplet);
    REQUIRE_FALSE(other);
    CHECK(other.error().kind == ErrorKind::usage);
  }

  TEST_CASE("ERROR to an optional copy read is no copy, to a required one an error") {
    FakeSerialPort port;
    port.expect("AT+NVMDS?\r").reply("\r\n+CME ERROR: 4\r\n");
    port.expect("AT+NVMDS?\r").reply("\r\n+CME ERROR: 4\r\n");
    AtChannel ch(port);
    auto optional = copy_driver(std::string(k_nvmds) + "}", ch);
    auto none = optional->read_secret_copy(Layout::secret);
    REQUIRE(none);
    CHECK(*none == std::optional<std::string>(""));
    auto required = copy_driver(std::string(k_nvmds) + R"(, "optional": false})", ch);
    auto failed = required->read_secret_copy(Layout::secret);
    REQUIRE_FALSE(failed);
    CHECK(failed.error().kind == ErrorKind::module);
    CHECK(failed.error().message.starts_with("read NVM copy: AT+NVMDS?: +CME ERROR: 4"));
  }
}

TEST_SUITE("serial::driver quectel") {
  TEST_CASE("aliauth write, read back and verify") {
    FakeSerialPort port;
    port.expect(std::string("AT+QMTCFG=\"aliauth\",0,\"a1X2bEnP82z\",\"example_nbiot\",\"") + k_ds +
                "\"\r")
        .reply("\r\nOK\r\n");
    port.expect("AT+QMTCFG=\"aliauth\",0\r")
        .reply(std::string("\r\n+QMTCFG: \"aliauth\",\"a1X2bEnP82z\",\"example_nbiot\",\"") + k_ds +
               "\"\r\n\r\nOK\r\n");
    AtChannel ch(port);
    auto d = driver("quectel", ch);
    CHECK(d->layouts() == std::vector<Layout>{Layout::triplet});
    auto r = d->write_credentials({"a1X2bEnP82z", "example_nbiot", k_ds, ""}, Layout::triplet);
    REQUIRE(r);
  }

  TEST_CASE("aliauth read-back with a different DeviceName is a mismatch") {
    FakeSerialPort port;
    port.expect(std::string("AT+QMTCFG=\"aliauth\",0,\"a1X2bEnP82z\",\"example_nbiot\",\"") + k_ds +
                "\"\r")
        .reply("\r\nOK\r\n");
    port.expect("AT+QMTCFG=\"aliauth\",0\r")
        .reply(std::string("\r\n+QMTCFG: \"aliauth\",0,\"a1X2bEnP82z\",\"other_dev\",\"") + k_ds +
               "\"\r\nOK\r\n");
    AtChannel ch(port);
    auto r = driver("quectel", ch)
                 ->write_credentials({"a1X2bEnP82z", "example_nbiot", k_ds, ""}, Layout::triplet);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.starts_with(
        "read-back mismatch in aliauth: DeviceName written \"example_nbiot\" (13 bytes) but the "
        "module holds \"other_dev\" (9 bytes)"));
  }

  TEST_CASE("the secret layout does not exist for quectel") {
    FakeSerialPort port;
    AtChannel ch(port);
    auto r = driver("quectel", ch)->read_credentials(Layout::secret);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::usage);
    CHECK(r.error().message == "module quectel has no layout \"secret\"; it supports: triplet");
  }

  TEST_CASE("identify: AT+GSN, AT+QCCID, AT+CGMR, AT+EGMR=0,5") {
    FakeSerialPort port;
    port.expect("AT+GSN\r").reply("\r\n490154203237518\r\nOK\r\n");
    port.expect("AT+QCCID\r").reply("\r\n+QCCID: 89860117831003134201F\r\n+CPIN: READY\r\nOK\r\n");
    port.expect("AT+CGMR\r").reply("\r\nEC200UCNAAR02A06M08\r\nOK\r\n");
    port.expect("AT+CGMI\r").reply("\r\nQuectel\r\nOK\r\n");
    port.expect("AT+CGMM\r").reply("\r\nEC200U\r\nOK\r\n");
    port.expect("AT+EGMR=0,5\r").reply("\r\n+EGMR: \"SN123456\"\r\nOK\r\n");
    AtChannel ch(port);
    auto id = driver("quectel", ch)->identify();
    REQUIRE(id);
    CHECK(id->imei == k_imei);
    CHECK(id->iccid == "89860117831003134201F");
    CHECK(id->firmware == "EC200UCNAAR02A06M08");
    CHECK(id->manufacturer == "Quectel");
    CHECK(id->model == "EC200U");
    CHECK(id->sn == std::optional<std::string>("SN123456"));
  }
}

TEST_SUITE("serial::driver esp-at") {
  TEST_CASE("SYSMFG prompt writes by length, then read back each key") {
    FakeSerialPort port;
    const auto key_write = [&](const std::string& key, const std::string& value) {
      port.expect("AT+SYSMFG=2,\"aliyun-key\",\"" + key + "\",7," + std::to_string(value.size()) +
                  "\r\n")
          .reply("\r\nOK\r\n\r\n>");
      port.expect(value).reply("\r\nOK\r\n");
    };
    const auto key_read = [&](const std::string& key, const std::string& value) {
      port.expect("AT+SYSMFG=1,\"aliyun-key\",\"" + key + "\"\r\n")
          .reply("\r\n+SYSMFG:\"aliyun-key\",\"" + key + "\",7," + std::to_string(value.size()) +
                 "," + value + "\r\n\r\nOK\r\n");
    };
    key_write("ProductKey", "a1BwAGV1234");
    key_write("DeviceName", "esp_dev_01");
    key_write("DeviceSecret", k_ds);
    key_read("ProductKey", "a1BwAGV1234");
    key_read("DeviceName", "esp_dev_01");
    key_read("DeviceSecret", k_ds);
    AtChannel ch(port);
    auto d = driver("esp-at", ch);
    auto r = d->write_credentials({"a1BwAGV1234", "esp_dev_01", k_ds, ""}, Layout::triplet);
    REQUIRE(r);
  }

  TEST_CASE("plan_write: prompt data is separate from the command") {
    FakeSerialPort port;
    AtChannel ch(port);
    auto plan =
        driver("esp-at", ch)->plan_write({"a1BwAGV1234", "esp_dev_01", k_ds, ""}, Layout::triplet);
    REQUIRE(plan);
    REQUIRE(plan->size() == 6);
    CHECK((*plan)[2].command == "AT+SYSMFG=2,\"aliyun-key\",\"DeviceSecret\",7,32");
    CHECK((*plan)[2].prompt_data == k_ds);
    CHECK((*plan)[5].command == "AT+SYSMFG=1,\"aliyun-key\",\"DeviceSecret\"");
    CHECK(port.writes().empty());
  }

  TEST_CASE("read_identity_key: the IMEI on cellular modules, the MAC on ESP-AT") {
    FakeSerialPort cell;
    cell.expect("AT+CGSN\r").reply("\r\n490154203237518\r\nOK\r\n");
    AtChannel cell_ch(cell);
    CHECK(driver("luat", cell_ch)->read_identity_key().value() == k_imei);
    FakeSerialPort wifi;
    wifi.expect("AT+CIPSTAMAC?\r\n").reply("\r\n+CIPSTAMAC:\"24:0a:c4:12:34:56\"\r\n\r\nOK\r\n");
    AtChannel wifi_ch(wifi);
    CHECK(driver("esp-at", wifi_ch)->read_identity_key().value() == "24:0a:c4:12:34:56");
  }

  TEST_CASE("identify reads the station MAC and AT version") {
    FakeSerialPort port;
    port.expect("AT+CIPSTAMAC?\r\n").reply("\r\n+CIPSTAMAC:\"24:0a:c4:00:00:01\"\r\nOK\r\n");
    port.expect("AT+GMR\r\n")
        .reply("\r\nAT version:2.2.0.0(c6fa6bf - ESP32 - Jul  2 2021 06:44:05)\r\n"
               "SDK version:v4.2.2-76-gefa6eca\r\nOK\r\n");
    port.expect("AT+SYSMFG=1,\"factory_param\",\"module_name\"\r\n")
        .reply("\r\n+SYSMFG:\"factory_param\",\"module_name\",7,6,MINI-1\r\n\r\nOK\r\n");
    AtChannel ch(port);
    auto id = driver("esp-at", ch)->identify();
    REQUIRE(id);
    CHECK(id->mac == "24:0a:c4:00:00:01");
    CHECK(id->imei.empty());
    CHECK(id->firmware == "2.2.0.0(c6fa6bf - ESP32 - Jul  2 2021 06:44:05)");
    CHECK(id->model == "MINI-1");
  }
}

TEST_SUITE("serial::driver health") {
  TEST_CASE("decoders") {
    CHECK(parse_csq("+CSQ: 23,99") == 23);
    CHECK(parse_csq("+CEREG: 1").has_value() == false);
    CHECK(csq_to_dbm(0) == -113);
    CHECK(csq_to_dbm(20) == -73);
    CHECK(csq_to_dbm(31) == -51);
    CHECK_FALSE(csq_to_dbm(99));
    CHECK(parse_registration("+CEREG: 0,1") == 1);
    CHECK(parse_registration("+CREG: 2,5,\"1A2B\",\"01C2D3E4\",7") == 5);
    CHECK(parse_registration("+CEREG: 3") == 3);
    CHECK(parse_registration("+CEREG: 1,\"1A2B\",\"01C2D3E4\",7") == 1);
    CHECK(reg_status_text(1) == "home");
    CHECK(reg_status_text(2) == "searching");
    CHECK(reg_status_text(3) == "denied");
    CHECK(reg_status_text(5) == "roaming");
    CHECK(reg_status_text(0) == "not registered");
  }

  TEST_CASE("a registered cellular module") {
    FakeSerialPort port;
    port.expect("AT+CPIN?\r").reply("\r\n+CPIN: READY\r\n\r\nOK\r\n");
    port.expect("AT+CSQ\r").reply("\r\n+CSQ: 20,99\r\n\r\nOK\r\n");
    port.expect("AT+CEREG?\r").reply("\r\n+CEREG: 0,1\r\n\r\nOK\r\n");
    port.expect("AT+CGATT?\r").reply("\r\n+CGATT: 1\r\n\r\nOK\r\n");
    port.expect("AT+COPS?\r").reply("\r\n+COPS: 0,0,\"CHINA MOBILE\",7\r\n\r\nOK\r\n");
    AtChannel ch(port);
    auto h = driver("luat", ch)->health();
    REQUIRE(h);
    CHECK(h->sim == "READY");
    CHECK(h->csq_rssi == 20);
    CHECK(h->rssi_dbm == -73);
    CHECK(h->reg_stat == 1);
    CHECK(h->reg_status == "home");
    CHECK(h->reg_command == "AT+CEREG?");
    CHECK(h->attached == true);
    CHECK(h->operator_name == "CHINA MOBILE");
    CHECK(h->notes.empty());
  }

  TEST_CASE("no SIM, unknown signal, LTE searching but 2G roaming") {
    FakeSerialPort port;
    port.expect("AT+CPIN?\r").reply("\r\n+CME ERROR: 10\r\n");
    port.expect("AT+CSQ\r").reply("\r\n+CSQ: 99,99\r\nOK\r\n");
    port.expect("AT+CEREG?\r").reply("\r\n+CEREG: 0,2\r\nOK\r\n");
    port.expect("AT+CREG?\r").reply("\r\n+CREG: 0,5\r\nOK\r\n");
    port.expect("AT+CGATT?\r").reply("\r\n+CGATT: 0\r\nOK\r\n");
    port.expect("AT+COPS?\r").reply("\r\n+COPS: 0\r\nOK\r\n");
    AtChannel ch(port);
    auto h = driver("quectel", ch)->health();
    REQUIRE(h);
    CHECK(h->sim == "NOT INSERTED");
    CHECK(h->csq_rssi == 99);
    CHECK_FALSE(h->rssi_dbm);
    CHECK(h->reg_stat == 5);
    CHECK(h->reg_status == "roaming");
    CHECK(h->reg_command == "AT+CREG?");
    CHECK(h->attached == false);
    CHECK(h->operator_name.empty());
    CHECK(h->notes == std::vector<std::string>{"AT+CPIN?: +CME ERROR: 10"});
  }
}

TEST_SUITE("serial::driver auto") {
  TEST_CASE("auto picks quectel from ATI") {
    FakeSerialPort port;
    port.expect("ATI\r").reply(
        "\r\nQuectel\r\nEC200U\r\nRevision: EC200UCNAAR02A06M08\r\n\r\nOK\r\n");
    port.expect("AT+CGMR\r").reply("\r\nEC200UCNAAR02A06M08\r\nOK\r\n");
    port.expect("AT+GMR\r").reply("\r\nERROR\r\n");
    AtChannel ch(port);
    auto d = make_driver("auto", ch);
    REQUIRE(d);
    CHECK((*d)->name() == "quectel");
  }

  TEST_CASE("auto picks luat from AT+CGMR and esp-at from AT+GMR") {
    FakeSerialPort port;
    port.expect("ATI\r").reply("\r\nERROR\r\n");
    port.expect("AT+CGMR\r").reply("\r\n+CGMR: \"AirM2M_Air724UG_V409_LTE_AT\"\r\nOK\r\n");
    port.expect("AT+GMR\r").reply("\r\nERROR\r\n");
    AtChannel ch(port);
    auto name = detect_module(ch);
    REQUIRE(name);
    CHECK(*name == "luat");
  }

  TEST_CASE("an unknown module is reported with what it answered") {
    FakeSerialPort port;
    port.expect("ATI\r").reply("\r\nACME Modem 1.0\r\nOK\r\n");
    port.expect("AT+CGMR\r").reply("\r\nERROR\r\n");
    port.expect("AT+GMR\r").reply("\r\nERROR\r\n");
    AtChannel ch(port);
    auto d = make_driver("auto", ch);
    REQUIRE_FALSE(d);
    CHECK(d.error().kind == ErrorKind::module);
    CHECK(d.error().message == "identify module: did not recognise \"ACME Modem 1.0|\" — pass "
                               "--module luat|quectel|esp-at or --module-profile FILE");
  }

  TEST_CASE("unknown module names and layouts are usage errors") {
    FakeSerialPort port;
    AtChannel ch(port);
    auto d = make_driver("simcom", ch);
    REQUIRE_FALSE(d);
    CHECK(d.error().kind == ErrorKind::usage);
    CHECK(d.error().message == "unknown module \"simcom\"; built-in: esp-at, luat, quectel, or "
                               "auto, or --module-profile FILE");
    CHECK_FALSE(parse_layout("sn"));
    CHECK(parse_layout("triplet") == Layout::triplet);
  }
}
