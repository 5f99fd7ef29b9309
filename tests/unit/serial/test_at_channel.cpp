// SPDX-License-Identifier: MIT
#include "core/interrupt.hpp"
#include "serial/at_channel.hpp"
#include "unit/serial/fake_serial_port.hpp"

#include <doctest/doctest.h>

#include <thread>

using namespace iot;
using namespace iot::serial;
using iot::test::FakeSerialPort;
using std::chrono::milliseconds;

namespace {

using Clock = std::chrono::steady_clock;

milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

// SIGINT as the signal handler would give it: the flag set from another thread after `delay`;
// cleared again at the end of the test.
class InterruptAfter {
public:
  explicit InterruptAfter(milliseconds delay)
      : m_thread([delay] {
          std::this_thread::sleep_for(delay);
          core::request_interrupt();
        }) {}
  ~InterruptAfter() {
    m_thread.join();
    core::clear_interrupt();
  }
  InterruptAfter(const InterruptAfter&) = delete;
  InterruptAfter& operator=(const InterruptAfter&) = delete;

private:
  std::thread m_thread;
};

// The flag cleared whatever happens in the test.
struct ClearInterrupt {
  ClearInterrupt() = default;
  ~ClearInterrupt() { core::clear_interrupt(); }
  ClearInterrupt(const ClearInterrupt&) = delete;
  ClearInterrupt& operator=(const ClearInterrupt&) = delete;
};

} // namespace

TEST_SUITE("serial::AtChannel") {
  TEST_CASE("a command collects information lines and URCs, with or without echo") {
    for (bool echo : {false, true}) {
      CAPTURE(echo);
      FakeSerialPort port;
      port.expect("AT+CSQ\r")
          .reply(std::string(echo ? "AT+CSQ\r\r\n" : "") + "\r\n+CEREG: 1\r\n+CSQ: 20,99\r\n")
          .reply("\r\nOK\r\n");
      AtChannel ch(port);
      auto r = ch.command("AT+CSQ", milliseconds(500));
      REQUIRE(r);
      CHECK(r->ok());
      CHECK(r->echo == echo);
      CHECK(r->lines == std::vector<std::string>{"+CSQ: 20,99"});
      CHECK(r->urcs == std::vector<std::string>{"+CEREG: 1"});
      CHECK(r->line_with("+CSQ:") == std::optional<std::string_view>("+CSQ: 20,99"));
      CHECK(port.written() == "AT+CSQ\r");
    }
  }

  TEST_CASE("the reply split at every byte boundary gives the same response") {
    const std::string reply = "AT+CPIN?\r\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nOK\r\n";
    for (std::size_t cut = 0; cut <= reply.size(); ++cut) {
      CAPTURE(cut);
      FakeSerialPort port;
      port.expect("AT+CPIN?\r").reply_split(reply, {cut});
      AtChannel ch(port);
      auto r = ch.command("AT+CPIN?", milliseconds(500));
      REQUIRE(r);
      CHECK(r->lines == std::vector<std::string>{"+CPIN: READY"});
      CHECK(r->urcs == std::vector<std::string>{"RDY"});
      CHECK(r->ok());
    }
  }

  TEST_CASE("URCs that arrived while idle are handed out with the next response") {
    FakeSerialPort port;
    port.inject("\r\n+QIND: SMS DONE\r\n");
    port.expect("AT+GSN\r").reply("\r\n861234567890123\r\n\r\nOK\r\n+QUSIM: 1\r\n");
    port.expect("AT\r").reply("\r\nOK\r\n");
    AtChannel ch(port);
    CommandOptions opts;
    opts.expected_prefix = "";
    auto r = ch.command("AT+GSN", milliseconds(500), opts);
    REQUIRE(r);
    CHECK(r->lines == std::vector<std::string>{"861234567890123"});
    CHECK(r->urcs == std::vector<std::string>{"+QIND: SMS DONE"});
    auto next = ch.command("AT", milliseconds(500));
    REQUIRE(next);
    CHECK(next->urcs == std::vector<std::string>{"+QUSIM: 1"});
  }

  TEST_CASE("CME errors, numeric and verbose, are responses, command_ok makes them module errors") {
    FakeSerialPort port;
    port.expect("AT+CPIN?\r").reply("\r\n+CME ERROR: 10\r\n");
    port.expect("AT+CPIN?\r").reply("\r\n+CME ERROR: SIM not inserted\r\n");
    AtChannel ch(port);
    auto r = ch.command("AT+CPIN?", milliseconds(500));
    REQUIRE(r);
    CHECK(r->final == FinalResult::cme_error);
    CHECK(r->error_text == "10");
    auto e = ch.command_ok("AT+CPIN?", milliseconds(500));
    REQUIRE_FALSE(e);
    CHECK(e.error().kind == ErrorKind::module);
    CHECK(e.error().message ==
          "AT+CPIN?: +CME ERROR: SIM not inserted — no SIM: insert one or check the SIM holder");
  }

  TEST_CASE("no final result code within the timeout is a module error") {
    FakeSerialPort port;
    port.expect("AT+CSQ\r").reply("\r\n+CSQ: 20,99\r\n"); // never OK
    port.expect("AT+CGSN\r");
    AtChannel ch(port);
    auto r = ch.command("AT+CSQ", milliseconds(40));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::module);
    CHECK(r.error().message ==
          "AT+CSQ: no final result code within 40 ms (received: \"+CSQ: 20,99\")");
    auto silent = ch.command("AT+CGSN", milliseconds(30));
    REQUIRE_FALSE(silent);
    CHECK(silent.error().message.starts_with(
        "AT+CGSN: no final result code within 30 ms and no reply at all — check power"));
  }

  TEST_CASE("port failures are serial errors with the command as context") {
    FakeSerialPort port; // the read of what arrived while idle fails: nothing is written
    port.fail_reads(Error{ErrorKind::serial, "read /dev/fake0: Input/output error"});
    AtChannel ch(port);
    auto r = ch.command("AT", milliseconds(100));
    REQUIRE_FALSE(r);
    CHECK(r.error() == Error{ErrorKind::serial, "AT: read /dev/fake0: Input/output error"});
    CHECK(port.writes().empty());
  }

  TEST_CASE("a command with CR, LF or control bytes is refused and nothing is written") {
    FakeSerialPort port;
    AtChannel ch(port);
    for (std::string_view bad : {std::string_view("AT+WISN=\"x\rAT+CFUN=1,1\""),
                                 std::string_view("AT\n"),
                                 std::string_view("AT\x01")}) {
      auto r = ch.command(bad, milliseconds(50));
      REQUIRE_FALSE(r);
      CHECK(r.error().kind == ErrorKind::usage);
      CHECK(r.error().message.starts_with("AT command contains 0x"));
    }
    auto empty = ch.command("", milliseconds(50));
    REQUIRE_FALSE(empty);
    CHECK(empty.error().kind == ErrorKind::usage);
    CHECK(port.writes().empty());
    auto data = ch.send_prompt_data("AT+SYSMFG=2,\"a\",\"b\",7,3", "a\rb", milliseconds(50));
    REQUIRE_FALSE(data);
    CHECK(data.error().message.starts_with("prompt data contains 0x0d (CR) at position 2"));
    CHECK(port.writes().empty());
  }

  TEST_CASE("the trace hook sees every line with secrets masked") {
    const std::string secret = "sLefbFmN9SYfnWLJTePG893XNuRVabcd";
    FakeSerialPort port;
    port.expect("AT+WISN=\"" + secret + "\"\r").reply("\r\nOK\r\n");
    port.expect("AT+WISN?\r").reply("\r\n" + secret + "\r\nOK\r\n");
    AtChannel ch(port);
    std::vector<std::string> seen;
    ch.set_trace([&](std::string_view dir, std::string_view line) {
      seen.push_back(std::string(dir) + " " + std::string(line));
    });
    ch.add_secret(secret);
    REQUIRE(ch.command_ok("AT+WISN=\"" + secret + "\"", milliseconds(200)));
    CommandOptions opts;
    opts.expected_prefix = "";
    REQUIRE(ch.command_ok("AT+WISN?", milliseconds(200), opts));
    CHECK(seen == std::vector<std::string>{
                      ">> AT+WISN=\"sLef…abcd\"", "<< OK", ">> AT+WISN?", "<< sLef…abcd", "<< OK"});
  }

  TEST_CASE("secret_response masks unknown information lines in the trace") {
    FakeSerialPort port;
    port.expect("AT+WISN?\r").reply("\r\nabcdefghijklmnop\r\nOK\r\n");
    AtChannel ch(port);
    std::vector<std::string> seen;
    ch.set_trace([&](std::string_view, std::string_view line) { seen.emplace_back(line); });
    CommandOptions opts;
    opts.expected_prefix = "";
    opts.secret_response = true;
    auto r = ch.command("AT+WISN?", milliseconds(200), opts);
    REQUIRE(r);
    CHECK(r->lines == std::vector<std::string>{"abcdefghijklmnop"});
    CHECK(seen == std::vector<std::string>{"AT+WISN?", "abcd…mnop", "OK"});
  }

  TEST_CASE("prompt-mode write: command, OK, >, raw data, OK") {
    FakeSerialPort port;
    port.expect("AT+SYSMFG=2,\"aliyun-key\",\"ProductKey\",7,11\r\n").reply("\r\nOK\r\n\r\n>");
    port.expect("a1BwAGV1234").reply("\r\nOK\r\n");
    AtChannel ch(port);
    ch.set_line_ending("\r\n");
    auto r = ch.send_prompt_data(
        "AT+SYSMFG=2,\"aliyun-key\",\"ProductKey\",7,11", "a1BwAGV1234", milliseconds(300));
    REQUIRE(r);
    CHECK(r->ok());
    CHECK(port.writes().back() == "a1BwAGV1234"); // no terminator after prompt data
  }

  TEST_CASE("prompt-mode write refused by the module") {
    FakeSerialPort port;
    port.expect("AT+SYSMFG=2,\"aliyun-key\",\"ProductKey\",7,11\r").reply("\r\nERROR\r\n");
    AtChannel ch(port);
    auto r = ch.send_prompt_data(
        "AT+SYSMFG=2,\"aliyun-key\",\"ProductKey\",7,11", "a1BwAGV1234", milliseconds(300));
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::module);
    CHECK(r.error().message ==
          "AT+SYSMFG=2,\"aliyun-key\",\"ProductKey\",7,11: ERROR instead of the > prompt");
    CHECK(port.writes().size() == 1);
  }

  TEST_CASE("sync: AT until OK despite garbage and RDY, then ATE0 and AT+CMEE=2") {
    FakeSerialPort port;
    port.expect("AT\r").reply("\xff\xfe garbage\r\nRDY\r\n"); // first AT lost
    port.expect("AT\r").reply("AT\r\r\nOK\r\n");
    port.expect("ATE0\r").reply("ATE0\r\r\nOK\r\n");
    port.expect("AT+CMEE=2\r").reply("\r\nERROR\r\n"); // refused: still synced
    AtChannel ch(port);
    auto s = ch.sync(5, milliseconds(20));
    REQUIRE(s);
    CHECK(port.flushes() == 1);
  }

  TEST_CASE("sync drains late answers left by a killed process, so later answers align") {
    FakeSerialPort port;
    // Our AT gets a stale OK first; the answers to a queued AT+CGSN of the dead process and to
    // our own AT are still on the wire when the first OK is read.
    port.expect("AT\r")
        .reply("\r\nOK\r\n")
        .reply_late("\r\n490154203237518\r\n\r\nOK\r\n")
        .reply_late("\r\nOK\r\n");
    port.expect("ATE0\r").reply("\r\nOK\r\n");
    port.expect("AT+CMEE=2\r").reply("\r\nOK\r\n");
    port.expect("AT+CGMR\r").reply("\r\n+CGMR: \"V409\"\r\n\r\nOK\r\n");
    AtChannel ch(port);
    REQUIRE(ch.sync(3, std::chrono::milliseconds(50)));
    auto r = ch.command("AT+CGMR", std::chrono::milliseconds(200));
    REQUIRE(r);
    CHECK(r->ok());
    REQUIRE(r->lines.size() == 1);
    CHECK(r->lines[0] == "+CGMR: \"V409\"");
  }

  TEST_CASE("sync gives up with a fix") {
    FakeSerialPort port;
    port.expect("AT\r").expect("AT\r").expect("AT\r").expect("AT\r\n"); // 4th: other ending
    AtChannel ch(port);
    auto s = ch.sync(4, milliseconds(10));
    REQUIRE_FALSE(s);
    CHECK(s.error().kind == ErrorKind::module);
    CHECK(s.error().message ==
          "sync: no OK to \"AT\" after 4 attempts (40 ms) — check power, cable, baud rate "
          "(115200?) and the port name");
  }

  TEST_CASE("sync switches to CR LF when only that works, and keeps it") {
    FakeSerialPort port;
    port.expect("AT\r");
    port.expect("AT\r\n").reply("\r\nOK\r\n");
    port.expect("ATE0\r\n").reply("\r\nOK\r\n");
    port.expect("AT+CMEE=2\r\n").reply("\r\nOK\r\n");
    AtChannel ch(port);
    REQUIRE(ch.sync(2, milliseconds(10)));
  }

  TEST_CASE("a command waiting for its answer gives way to Ctrl-C within a slice") {
    FakeSerialPort port;
    port.expect("AT+CSQ\r"); // a dead module: no answer ever
    AtChannel ch(port);
    const auto start = Clock::now();
    InterruptAfter interrupt(milliseconds(30));
    auto r = ch.command("AT+CSQ", milliseconds(3000));
    const auto waited = since(start);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::interrupted);
    CHECK(r.error().message.starts_with("AT+CSQ: interrupted (Ctrl-C / SIGTERM) after "));
    CHECK(r.error().message.ends_with(" ms, before the final result code"));
    CHECK(waited < milliseconds(30) + 2 * k_interrupt_slice);
  }

  TEST_CASE("sync gives way to Ctrl-C while it waits for an OK") {
    FakeSerialPort port;
    port.expect("AT\r"); // the next one would come 200 ms later: an unexpected write
    AtChannel ch(port);
    const auto start = Clock::now();
    InterruptAfter interrupt(milliseconds(30));
    auto s = ch.sync(25, milliseconds(200));
    REQUIRE_FALSE(s);
    CHECK(s.error().kind == ErrorKind::interrupted);
    CHECK(s.error().message.starts_with("sync: interrupted (Ctrl-C / SIGTERM) after "));
    CHECK(s.error().message.ends_with(" ms, before the module answered AT"));
    CHECK(since(start) < milliseconds(30) + 2 * k_interrupt_slice);
    CHECK(port.writes() == std::vector<std::string>{"AT\r"});
  }

  TEST_CASE("the quiet-line drain after sync's OK gives way to Ctrl-C") {
    ClearInterrupt clear;
    FakeSerialPort port;
    port.expect("AT\r").reply("\r\nOK\r\n");
    AtChannel ch(port);
    // Ctrl-C arrives the moment the OK is read: the drain is next.
    ch.set_trace([](std::string_view dir, std::string_view line) {
      if (dir == "<<" && line == "OK") {
        core::request_interrupt();
      }
    });
    auto s = ch.sync(3, milliseconds(50));
    REQUIRE_FALSE(s);
    CHECK(s.error().kind == ErrorKind::interrupted);
    CHECK(s.error().message.starts_with("sync: drain: interrupted (Ctrl-C / SIGTERM) after "));
    CHECK(s.error().message.ends_with(" ms, before the line was quiet"));
    CHECK(port.flushes() == 0); // ATE0 was never sent
  }

  TEST_CASE("FinishInFlight: an interrupted port still finishes what was started") {
    ClearInterrupt clear;
    core::request_interrupt();
    FakeSerialPort port;
    port.expect("AT+WISN=\"x\"\r").reply("\r\nOK\r\n");
    port.expect("AT+WISN?\r"); // the read-back answer is lost
    port.expect("AT+CSQ\r");
    AtChannel ch(port);
    {
      FinishInFlight in_flight(port);
      CHECK_FALSE(port.interrupted());
      CHECK(ch.command_ok("AT+WISN=\"x\"", milliseconds(500)));
      const auto start = Clock::now();
      auto lost = ch.command("AT+WISN?", milliseconds(120));
      REQUIRE_FALSE(lost);
      CHECK(lost.error().kind == ErrorKind::module); // ran to its own timeout
      CHECK(since(start) >= milliseconds(110));      // its timeout (ms rounded down), not 0
    }
    CHECK(port.interruptible());
    CHECK(port.interrupted());
    auto next = ch.command("AT+CSQ", milliseconds(5000));
    REQUIRE_FALSE(next);
    CHECK(next.error().kind == ErrorKind::interrupted);
  }

  TEST_CASE("FinishInFlight nests and restores what it found") {
    FakeSerialPort port;
    {
      FinishInFlight outer(port);
      {
        FinishInFlight inner(port);
        CHECK_FALSE(port.interruptible());
      }
      CHECK_FALSE(port.interruptible());
    }
    CHECK(port.interruptible());
  }
}
