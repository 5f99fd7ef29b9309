// SPDX-License-Identifier: MIT
#include "serial/at_parser.hpp"

#include <doctest/doctest.h>

using namespace iot::serial;
using namespace std::string_literals;
using namespace std::string_view_literals;

namespace {

ResponseSpec spec(std::string cmd, std::string prefix, bool strict = false) {
  ResponseSpec s;
  s.command = std::move(cmd);
  s.expected_prefix = std::move(prefix);
  s.strict = strict;
  return s;
}

// Feeds `bytes` in two pieces split at `cut`, as two reads would deliver them.
ParsedResponse parse_split(const std::string& bytes, std::size_t cut, const ResponseSpec& s) {
  LineSplitter splitter;
  ResponseParser parser(s);
  std::vector<std::string> lines;
  splitter.feed(std::string_view(bytes).substr(0, cut), lines);
  splitter.feed(std::string_view(bytes).substr(cut), lines);
  for (const auto& l : lines) {
    parser.on_line(l);
  }
  if (!parser.done() && splitter.prompt_pending()) {
    parser.on_prompt();
  }
  return parser.take();
}

bool same(const ParsedResponse& a, const ParsedResponse& b) {
  return a.final == b.final && a.lines == b.lines && a.urcs == b.urcs && a.echoes == b.echoes &&
         a.prompt == b.prompt;
}

} // namespace

TEST_SUITE("serial::LineSplitter") {
  TEST_CASE("lines end at CR, LF, CRLF and CRCRLF, NULs and empty lines are dropped") {
    LineSplitter s;
    std::vector<std::string> out;
    s.feed("AT+CSQ\r\r\n+CSQ: 2", out);
    CHECK(out == std::vector<std::string>{"AT+CSQ"});
    CHECK(s.partial() == "+CSQ: 2");
    s.feed("0,99\nOK\r\n\0\r\nRDY\r"sv, out);
    CHECK(out == std::vector<std::string>{"AT+CSQ", "+CSQ: 20,99", "OK", "RDY"});
    CHECK(s.partial().empty());
  }

  TEST_CASE("the data prompt is recognised only as the unterminated rest") {
    LineSplitter s;
    std::vector<std::string> out;
    s.feed("\r\nOK\r\n\r\n> ", out);
    CHECK(out == std::vector<std::string>{"OK"});
    CHECK(s.prompt_pending());
    s.clear_partial();
    s.feed(">x", out);
    CHECK_FALSE(s.prompt_pending());
  }

  TEST_CASE("an endless line is cut at k_max_line") {
    LineSplitter s;
    std::vector<std::string> out;
    s.feed(std::string(LineSplitter::k_max_line + 10, 'x'), out);
    REQUIRE(out.size() == 1);
    CHECK(out[0].size() == LineSplitter::k_max_line);
    CHECK(s.partial().size() == 10);
  }
}

TEST_SUITE("serial::AtParser") {
  TEST_CASE("final result codes, including CME/CMS numeric and text variants") {
    CHECK(parse_final_code("OK")->kind == FinalKind::ok);
    CHECK(parse_final_code("ERROR")->kind == FinalKind::error);
    CHECK(parse_final_code("NO CARRIER")->kind == FinalKind::no_carrier);
    auto n = parse_final_code("+CME ERROR: 10");
    REQUIRE(n);
    CHECK(n->kind == FinalKind::cme_error);
    CHECK(n->text == "10");
    auto t = parse_final_code("+CME ERROR: SIM not inserted");
    REQUIRE(t);
    CHECK(t->text == "SIM not inserted");
    CHECK(t->line == "+CME ERROR: SIM not inserted");
    auto cms = parse_final_code("+CMS ERROR: 500");
    REQUIRE(cms);
    CHECK(cms->kind == FinalKind::cms_error);
    CHECK_FALSE(parse_final_code("*CME ERROR: Missing SN"));
    CHECK_FALSE(parse_final_code("OKAY"));
    CHECK_FALSE(parse_final_code("+CSQ: 20,99"));
  }

  TEST_CASE("derive_prefix") {
    CHECK(derive_prefix("AT+CSQ") == "+CSQ:");
    CHECK(derive_prefix("AT+CPIN?") == "+CPIN:");
    CHECK(derive_prefix("AT+QMTCFG=\"aliauth\",0") == "+QMTCFG:");
    CHECK(derive_prefix("at+cgatt?") == "+CGATT:");
    CHECK(derive_prefix("AT^SYSINFO") == "^SYSINFO:");
    CHECK(derive_prefix("ATI").empty());
    CHECK(derive_prefix("ATE0").empty());
  }

  TEST_CASE("echo on and echo off give the same response") {
    const auto s = spec("AT+CSQ", "+CSQ:");
    auto off = parse_response("\r\n+CSQ: 20,99\r\n\r\nOK\r\n", s);
    auto on = parse_response("AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n", s);
    CHECK(off.lines == std::vector<std::string>{"+CSQ: 20,99"});
    CHECK(on.lines == off.lines);
    CHECK(on.final == off.final);
    CHECK(on.echoes == 1);
    CHECK(off.echoes == 0);
  }

  TEST_CASE("URCs before, during and after a response are separated from it") {
    const std::string bytes = "RDY\r\n+CPIN: READY\r\nAT+CSQ\r\r\n^MODE: 17,17\r\n+CSQ: 20,99\r\n"
                              "+CEREG: 1\r\nSMS Ready\r\nOK\r\n+QIND: PB DONE\r\n";
    std::vector<std::string> rest;
    auto r = parse_response(bytes, spec("AT+CSQ", "+CSQ:"), &rest);
    CHECK(r.lines == std::vector<std::string>{"+CSQ: 20,99"});
    CHECK(r.urcs == std::vector<std::string>{
                        "RDY", "+CPIN: READY", "^MODE: 17,17", "+CEREG: 1", "SMS Ready"});
    REQUIRE(r.final);
    CHECK(r.final->kind == FinalKind::ok);
    CHECK(rest == std::vector<std::string>{"+QIND: PB DONE"});
  }

  TEST_CASE("a URC-looking line with the pending command's prefix is the response") {
    auto r = parse_response("\r\n+CPIN: READY\r\n\r\nOK\r\n", spec("AT+CPIN?", "+CPIN:"));
    CHECK(r.lines == std::vector<std::string>{"+CPIN: READY"});
    CHECK(r.urcs.empty());
    auto reg = parse_response("+CEREG: 1\r\n+CEREG: 0,1\r\nOK\r\n", spec("AT+CEREG?", "+CEREG:"));
    CHECK(reg.lines.size() == 2);
  }

  TEST_CASE("prefix-less information lines are recognised from the pending command") {
    auto imei =
        parse_response("AT+CGSN\r\r\n359759002514931\r\nRDY\r\nOK\r\n", spec("AT+CGSN", ""));
    CHECK(imei.lines == std::vector<std::string>{"359759002514931"});
    CHECK(imei.urcs == std::vector<std::string>{"RDY"});
    auto sn = parse_response("\r\n1234567890\r\n\r\nOK\r\n", spec("AT+WISN?", ""));
    CHECK(sn.lines == std::vector<std::string>{"1234567890"});
  }

  TEST_CASE("Luat's *CME ERROR: Missing SN is a data line, not a failure") {
    auto r = parse_response("\r\n*CME ERROR: Missing SN\r\n\r\nOK\r\n", spec("AT+WISN?", ""));
    CHECK(r.lines == std::vector<std::string>{"*CME ERROR: Missing SN"});
    REQUIRE(r.final);
    CHECK(r.final->kind == FinalKind::ok);
    // Even with the derived "+WISN:" prefix (raw `module at`), it stays data.
    auto raw = parse_response("\r\n*CME ERROR: Missing SN\r\nOK\r\n", spec("AT+WISN?", "+WISN:"));
    CHECK(raw.lines == std::vector<std::string>{"*CME ERROR: Missing SN"});
  }

  TEST_CASE("strict mode routes unexpected lines to the URCs, lenient mode only foreign prefixes") {
    const std::string bytes = "+CSQ: 5,99\r\n+XFOO: 1\r\ngarbage\r\nOK\r\n";
    auto strict = parse_response(bytes, spec("AT+CSQ", "+CSQ:", true));
    CHECK(strict.lines == std::vector<std::string>{"+CSQ: 5,99"});
    CHECK(strict.urcs == std::vector<std::string>{"+XFOO: 1", "garbage"});
    auto lenient = parse_response(bytes, spec("AT+CSQ", "+CSQ:", false));
    CHECK(lenient.lines == std::vector<std::string>{"+CSQ: 5,99", "garbage"});
    CHECK(lenient.urcs == std::vector<std::string>{"+XFOO: 1"});
  }

  TEST_CASE("prompt mode: ESP-AT answers OK, then > without a line end") {
    ResponseSpec s = spec("AT+SYSMFG=2,\"aliyun-key\",\"ProductKey\",7,11", "+SYSMFG:");
    s.expect_prompt = true;
    auto r = parse_response("\r\nOK\r\n\r\n>", s);
    CHECK(r.prompt);
    CHECK(r.ok_before_prompt);
    CHECK_FALSE(r.final);
    auto err = parse_response("\r\nERROR\r\n", s);
    CHECK_FALSE(err.prompt);
    REQUIRE(err.final);
    CHECK(err.final->kind == FinalKind::error);
  }

  TEST_CASE("a response split at every possible byte boundary gives the same parse") {
    const std::string bytes = "AT+CSQ\r\r\n+CEREG: 1\r\n\r\n+CSQ: 20,99\r\n\0RDY\n\r\nOK\r\n"s;
    REQUIRE(bytes.find('\0') != std::string::npos);
    const auto s = spec("AT+CSQ", "+CSQ:");
    const auto whole = parse_response(std::string_view(bytes.data(), bytes.size()), s);
    REQUIRE(whole.final);
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
      CAPTURE(cut);
      CHECK(same(parse_split(bytes, cut, s), whole));
    }
    // And byte by byte.
    LineSplitter splitter;
    ResponseParser parser(s);
    for (char c : bytes) {
      std::vector<std::string> lines;
      splitter.feed(std::string_view(&c, 1), lines);
      for (const auto& l : lines) {
        parser.on_line(l);
      }
    }
    CHECK(same(parser.response(), whole));
  }

  TEST_CASE("the prompt is found at every split too") {
    ResponseSpec s = spec("AT+SYSMFG=2,\"aliyun-key\",\"DeviceName\",7,15", "+SYSMFG:");
    s.expect_prompt = true;
    const std::string bytes = "\r\nOK\r\n\r\n> ";
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
      CAPTURE(cut);
      CHECK(parse_split(bytes, cut, s).prompt);
    }
  }
}
