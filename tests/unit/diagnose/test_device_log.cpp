// SPDX-License-Identifier: MIT
// The device-log reader (diagnose/device_log.hpp): the reason table against the documented
// strings, times in every accepted format, CSV and JSON lines with English and Chinese names,
// bad lines named with the fix, and reading in blocks.
#include "core/text.hpp"
#include "diagnose/device_log.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

using namespace iot;
using namespace iot::diagnose;

namespace {

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

// Parses the lines of `text`; the records (content copied) and the errors.
struct Parsed {
  std::vector<LogRecord> records;
  std::vector<std::string> keep; // owns device names / contents of the records
  std::vector<std::string> errors;
};

Parsed parse_all(std::string_view text, int offset = 480) {
  Parsed out;
  LogParser p(LogParserOptions{offset});
  std::size_t start = 0;
  std::vector<std::string> lines;
  while (start <= text.size()) {
    const auto nl = text.find('\n', start);
    lines.emplace_back(text.substr(start, nl == text.npos ? text.npos : nl - start));
    if (nl == text.npos) {
      break;
    }
    start = nl + 1;
  }
  out.keep.reserve(lines.size() * 4);
  for (const auto& line : lines) {
    LogRecord r;
    auto got = p.parse(line, r);
    if (!got) {
      out.errors.push_back(got.error().message);
      continue;
    }
    if (*got) {
      out.keep.emplace_back(r.device_name);
      r.device_name = out.keep.back();
      out.keep.emplace_back(r.content);
      r.content = out.keep.back();
      out.keep.emplace_back(r.client_ip);
      r.client_ip = out.keep.back();
      out.keep.emplace_back(r.product_key);
      r.product_key = out.keep.back();
      r.status = {};
      r.trace_id = {};
      out.records.push_back(r);
    }
  }
  return out;
}

} // namespace

TEST_CASE("reason table: each documented disconnect string maps to its category") {
  CHECK(classify("Kicked by the same device", "").reason == Reason::kicked);
  CHECK(classify("kicked by the same device", "offline").reason == Reason::kicked);
  CHECK(classify("Keepalive timeout", "").reason == Reason::keepalive_timeout);
  CHECK(classify("Connection reset by peer", "").reason == Reason::connection_reset);
  CHECK(classify("Connectoin reset by peer", "").reason == Reason::connection_reset); // seed
  CHECK(classify("Device disconnect", "").reason == Reason::device_disconnect);
  CHECK(classify("Connection occurs exception", "").reason == Reason::other);
  CHECK(classify("gateway offline", "").reason == Reason::other);
  CHECK(classify("online", "").reason == Reason::online);
  CHECK(classify("", "online").reason == Reason::online);
  CHECK(classify("", "上线").reason == Reason::online);
  CHECK(classify("心跳超时", "").reason == Reason::keepalive_timeout);
  CHECK(classify("bad username or password", "").reason == Reason::auth_failure);
}

TEST_CASE("reason table: negatives and precedence") {
  // "gateway offline" holds neither "online" nor a device reason.
  CHECK(classify("gateway offline", "").reason != Reason::online);
  // The content decides over the status column.
  CHECK(classify("Keepalive timeout", "online").reason == Reason::keepalive_timeout);
  // An unknown offline text: other, and no rule claims it.
  const auto c = classify("something new happened", "offline");
  CHECK(c.reason == Reason::other);
  CHECK_FALSE(c.matched);
  const auto none = classify("hello", "");
  CHECK(none.reason == Reason::other);
  CHECK_FALSE(none.matched);
  CHECK(classify("Device disconnected by server", "").reason == Reason::device_disconnect);
  CHECK_FALSE(classify("disconnect", "").reason == Reason::device_disconnect);
}

TEST_CASE("reason table: 'Keepalive timeout after Nsec' carries the idle seconds") {
  CHECK(classify("Keepalive timeout after 100sec", "").idle_s == 100);
  CHECK(classify("Keepalive timeout after 465 sec", "").idle_s == 465);
  CHECK(classify("Keepalive timeout", "").idle_s == -1);
  CHECK(classify("Connection reset by peer after 5sec", "").idle_s == -1);
}

TEST_CASE("reason table: every row is reachable and guessed rows are marked") {
  for (const auto& rule : reason_rules()) {
    INFO(std::string(rule.pattern));
    // A text that is exactly the pattern classifies as the rule's category (first match wins,
    // so no earlier rule shadows it).
    CHECK(classify(std::string(rule.pattern), "").reason == rule.reason);
    if (!rule.verified) {
      CHECK((contains(rule.source, "UNVERIFIED") || contains(rule.source, "status word")));
    }
  }
}

TEST_CASE("times: every accepted format, zones, and rejects") {
  const std::int64_t utc = 1704067200000; // 2024-01-01T00:00:00Z
  CHECK(parse_time("2024-01-01 08:00:00", 480) == utc);
  CHECK(parse_time("2024-01-01 08:00:00.123", 480) == utc + 123);
  CHECK(parse_time("2024/01/01 08:00:00", 480) == utc);
  CHECK(parse_time("2024-01-01T00:00:00Z", 480) == utc);
  CHECK(parse_time("2024-01-01T00:00:00.5Z", 480) == utc + 500);
  CHECK(parse_time("2024-01-01T08:00:00+08:00", 0) == utc);
  CHECK(parse_time("2024-01-01T08:00:00+0800", 0) == utc);
  CHECK(parse_time("2023-12-31T19:00:00-05:00", 480) == utc);
  CHECK(parse_time("2024-01-01 00:00:00", 0) == utc);
  CHECK(parse_time("2024-01-01", 0) == utc);
  CHECK(parse_time("1704067200000", 480) == utc);
  CHECK(parse_time("1704067200", 480) == utc);
  CHECK_FALSE(parse_time("", 0));
  CHECK_FALSE(parse_time("yesterday", 0));
  CHECK_FALSE(parse_time("2024-13-01 00:00:00", 0));
  CHECK_FALSE(parse_time("2024-01-01 25:00:00", 0));
  CHECK_FALSE(parse_time("2024-01-01 08:00:00 +99", 0));
  CHECK_FALSE(parse_time("12345", 0));
  CHECK(format_time(utc, 480) == "2024-01-01 08:00:00");
  CHECK(format_day(iot::core::days_from_civil(2024, 2, 29)) == "2024-02-29");
  CHECK(format_hour(iot::core::days_from_civil(2024, 1, 1) * 24 + 13) == "2024-01-01 13");
}

TEST_CASE("IPv4 addresses") {
  CHECK(parse_ipv4("117.136.5.6") == 0x75880506u);
  CHECK(format_ipv4(0x75880506u) == "117.136.5.6");
  CHECK_FALSE(parse_ipv4("256.1.1.1"));
  CHECK_FALSE(parse_ipv4("1.2.3"));
  CHECK_FALSE(parse_ipv4("2001:db8::1"));
}

TEST_CASE("CSV with the console's English header") {
  const auto p = parse_all("time,TraceId,ProductKey,DeviceName,Status,Content,ClientIp\n"
                           "2024-01-01 08:00:00.000,t1,a1B2c3D4e5F,dev01,online,online,1.2.3.4\n"
                           "2024-01-01 08:05:00.000,t2,a1B2c3D4e5F,dev01,offline,\"Keepalive "
                           "timeout\",1.2.3.4\n");
  REQUIRE(p.errors.empty());
  REQUIRE(p.records.size() == 2);
  CHECK(p.records[0].device_name == "dev01");
  CHECK(p.records[0].reason.reason == Reason::online);
  CHECK(p.records[0].client_ip == "1.2.3.4");
  CHECK(p.records[0].product_key == "a1B2c3D4e5F");
  CHECK(p.records[1].reason.reason == Reason::keepalive_timeout);
  CHECK(p.records[1].time_ms - p.records[0].time_ms == 300000);
}

TEST_CASE("CSV with Chinese column names, any order, extra columns ignored") {
  const auto p = parse_all("内容,设备名称,extra,时间,客户端IP\n"
                           "Kicked by the same device,dev02,x,1704067200000,5.6.7.8\n");
  REQUIRE(p.errors.empty());
  REQUIRE(p.records.size() == 1);
  CHECK(p.records[0].device_name == "dev02");
  CHECK(p.records[0].reason.reason == Reason::kicked);
  CHECK(p.records[0].time_ms == 1704067200000);
  CHECK(p.records[0].client_ip == "5.6.7.8");
}

TEST_CASE("JSON lines with flexible keys and escapes") {
  const auto p = parse_all(
      R"({"timestamp":"2024-01-01T00:00:00Z","deviceName":"dev03","reason":"Device disconnect","ip":"9.9.9.9","extra":{"a":[1,2]}})"
      "\n"
      R"({"time":1704067260000,"DeviceName":"dev\u0030","content":"Connection reset by peer"})"
      "\n");
  REQUIRE(p.errors.empty());
  REQUIRE(p.records.size() == 2);
  CHECK(p.records[0].reason.reason == Reason::device_disconnect);
  CHECK(p.records[0].client_ip == "9.9.9.9");
  CHECK(p.records[1].device_name == "dev0");
  CHECK(p.records[1].time_ms == 1704067260000);
  CHECK(p.records[1].reason.reason == Reason::connection_reset);
}

TEST_CASE("bad lines: each error names the problem and the fix") {
  const auto p = parse_all("time,DeviceName,content\n"
                           "2024-01-01 08:00:00,dev01,online\n"
                           "garbage\n"
                           "not a time,dev01,online\n"
                           "2024-01-01 08:00:00,,online\n"
                           "2024-01-01 08:00:00,dev01,\"open quote\n"
                           "2024-01-01 08:00:00,dev01,\n");
  CHECK(p.records.size() == 1);
  REQUIRE(p.errors.size() == 5);
  CHECK(contains(p.errors[0], "header needs at least"));
  CHECK(contains(p.errors[1], "is not one of"));
  CHECK(contains(p.errors[2], "no DeviceName"));
  CHECK(contains(p.errors[3], "quote is still open"));
  CHECK(contains(p.errors[4], "neither content"));
}

TEST_CASE("a first line that is no header cannot be read, with the accepted shapes") {
  auto p = parse_all("hello,world\n");
  REQUIRE(p.errors.size() == 1);
  CHECK(contains(p.errors[0], "not a header with a time column"));
  CHECK(contains(p.errors[0], "docs/diagnose.md"));
  p = parse_all("time,DeviceName,clientIp\n");
  REQUIRE(p.errors.size() == 1);
  CHECK(contains(p.errors[0], "neither a content/reason column nor a status column"));
  p = parse_all("[{\"time\":1}]\n");
  REQUIRE(p.errors.size() == 1);
  CHECK(contains(p.errors[0], "JSON array"));
  p = parse_all("{\"time\":\"2024-01-01\",\"deviceName\":\"d\",\"content\":\"online\"\n");
  REQUIRE(p.errors.size() == 1);
  CHECK(contains(p.errors[0], "not one JSON object"));
}
