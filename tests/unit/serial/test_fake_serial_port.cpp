// SPDX-License-Identifier: MIT
// The fake port checks its own script: the tests of every serial test depend on it.
#include "unit/serial/fake_serial_port.hpp"

#include <doctest/doctest.h>

using iot::test::FakeSerialPort;

TEST_SUITE("test::FakeSerialPort") {
  TEST_CASE("a write that is not the next expectation is reported at once, naming both") {
    std::vector<std::string> failures;
    {
      FakeSerialPort port;
      port.on_failure([&](const std::string& m) { failures.push_back(m); });
      port.expect("AT+CSQ\r").reply("\r\nOK\r\n");
      port.expect("AT+CGSN\r");
      REQUIRE(port.write("AT+CSQ\r"));
      CHECK(failures.empty());
      REQUIRE(port.write("AT+CGMR\r"));
      REQUIRE(failures.size() == 1); // before the fake is gone
      CHECK(failures[0] == "/dev/fake0: unexpected write \"AT+CGMR\\r\", expected "
                           "\"AT+CGSN\\r\" (expectation 2 of 2)");
      CHECK(port.read_some(std::chrono::milliseconds(0)).value() == "\r\nOK\r\n");
      CHECK(port.read_some(std::chrono::milliseconds(0)).value().empty()); // no reply to it
    }
    REQUIRE(failures.size() == 2);
    CHECK(failures[1] == "/dev/fake0: 1 of 2 expectations not met, next \"AT+CGSN\\r\"");
  }

  TEST_CASE("a write after the last expectation is reported") {
    std::vector<std::string> failures;
    {
      FakeSerialPort port;
      port.on_failure([&](const std::string& m) { failures.push_back(m); });
      port.expect("AT\r");
      REQUIRE(port.write("AT\rATE0\r"));
    }
    CHECK(failures ==
          std::vector<std::string>{
              "/dev/fake0: unexpected write \"ATE0\\r\" after all 1 expectations were met"});
  }

  TEST_CASE("expectations left unmet are reported when the fake is destroyed, all of them") {
    std::vector<std::string> failures;
    {
      FakeSerialPort port;
      port.on_failure([&](const std::string& m) { failures.push_back(m); });
      port.expect("AT\r").expect("ATE0\r").expect("AT+CMEE=2\r");
      REQUIRE(port.write("AT"));
      REQUIRE(port.write("\r")); // an expectation met in two writes
    }
    CHECK(failures == std::vector<std::string>{"/dev/fake0: 2 of 3 expectations not met, next "
                                               "\"ATE0\\r\", \"AT+CMEE=2\\r\""});
  }

  TEST_CASE("allow_unmet: a script the code under test is meant to leave unfinished") {
    std::vector<std::string> failures;
    {
      FakeSerialPort port;
      port.on_failure([&](const std::string& m) { failures.push_back(m); });
      port.expect("AT\r").expect("ATE0\r").allow_unmet();
      REQUIRE(port.write("AT\r"));
    }
    CHECK(failures.empty());
  }

  TEST_CASE("a script followed exactly reports nothing") {
    std::vector<std::string> failures;
    {
      FakeSerialPort port;
      port.on_failure([&](const std::string& m) { failures.push_back(m); });
      port.expect("AT\r").reply("\r\nOK\r\n").expect("ATE0\r");
      REQUIRE(port.write("AT\r"));
      REQUIRE(port.write("ATE0\r"));
    }
    CHECK(failures.empty());
  }

  // Without on_failure the running test case fails: this case must fail (should_fail), so a
  // fake whose reports went nowhere would turn it red.
  TEST_CASE("without a hook an unexpected write fails the running test case" *
            doctest::should_fail()) {
    FakeSerialPort port;
    port.expect("AT\r");
    REQUIRE(port.write("AT\r"));
    REQUIRE(port.write("AT+CSQ\r"));
  }

  TEST_CASE("without a hook an unmet expectation fails the running test case" *
            doctest::should_fail()) {
    FakeSerialPort port;
    port.expect("AT\r");
  }
}
