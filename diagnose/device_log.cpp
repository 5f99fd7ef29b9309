// SPDX-License-Identifier: MIT
#include "diagnose/device_log.hpp"

#include "core/csv.hpp"
#include "core/json_scan.hpp"
#include "core/text.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace iot::diagnose {
namespace {

// THE reason table. Rows are tried in order, first match wins, so the specific strings come
// before the general ones ("offline" last). Patterns are lower case; matching is a
// case-insensitive substring search of the record's content, then of its status.
// Sources: [doc] docs/aliyun-iot-protocol.md §6 (Alibaba's "Device log" page); [seed] the
// vendor FAQ §6 (its spelling "Connectoin"); [blog] developer.aliyun.com article 775760
// ("Keepalive timeout after 100sec", "TCP长连接断开"); [guess] UNVERIFIED, from MQTT CONNACK
// wording and common SDK logs — confirm against a real export before relying on it.
constexpr ReasonRule k_rules[] = {
    {"kicked by the same device", Reason::kicked, true, "doc §6, seed §6"},
    {"keepalive timeout", Reason::keepalive_timeout, true, "doc §6, seed §6"},
    {"connection reset by peer", Reason::connection_reset, true, "doc §6, seed §6"},
    {"connectoin reset by peer", Reason::connection_reset, true, "seed §6 (its spelling)"},
    {"device disconnect", Reason::device_disconnect, true, "doc §6, seed §6"},
    {"connection occurs exception", Reason::other, true, "doc §6 (server closed on exception)"},
    {"gateway offline", Reason::other, true, "doc §6 (a sub-device's gateway went offline)"},
    {"tcp长连接断开", Reason::connection_reset, false, "blog 775760; UNVERIFIED"},
    {"心跳超时", Reason::keepalive_timeout, false, "UNVERIFIED (Chinese console wording)"},
    {"互踢", Reason::kicked, false, "UNVERIFIED (Chinese console wording)"},
    {"被踢", Reason::kicked, false, "UNVERIFIED (Chinese console wording)"},
    {"auth fail", Reason::auth_failure, false, "UNVERIFIED (guess)"},
    {"authentication fail", Reason::auth_failure, false, "UNVERIFIED (guess)"},
    {"check auth", Reason::auth_failure, false, "UNVERIFIED (guess)"},
    {"bad username or password", Reason::auth_failure, false, "UNVERIFIED (CONNACK 4 wording)"},
    {"not authorized", Reason::auth_failure, false, "UNVERIFIED (CONNACK 5 wording)"},
    {"invalid password", Reason::auth_failure, false, "UNVERIFIED (guess)"},
    {"认证失败", Reason::auth_failure, false, "UNVERIFIED (Chinese wording)"},
    {"鉴权失败", Reason::auth_failure, false, "UNVERIFIED (Chinese wording)"},
    {"offline", Reason::other, false, "status word; an offline record without a known reason"},
    {"下线", Reason::other, false, "UNVERIFIED (Chinese status word)"},
    {"离线", Reason::other, false, "UNVERIFIED (Chinese status word)"},
    {"online", Reason::online, true, "doc §6 status topic: status online"},
    {"上线", Reason::online, false, "UNVERIFIED (Chinese status word)"},
    {"在线", Reason::online, false, "UNVERIFIED (Chinese status word)"},
};

char lower_ascii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Case-insensitive (ASCII) search of a lower-case needle.
bool contains_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) {
    return false;
  }
  const char first = needle.front();
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    if (lower_ascii(hay[i]) != first) {
      continue;
    }
    std::size_t k = 1;
    while (k < needle.size() && lower_ascii(hay[i + k]) == needle[k]) {
      ++k;
    }
    if (k == needle.size()) {
      return true;
    }
  }
  return false;
}

std::optional<Classified> match_rules(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  for (const auto& rule : k_rules) {
    if (contains_ci(text, rule.pattern)) {
      return Classified{rule.reason, true, -1};
    }
  }
  return std::nullopt;
}

// "after 465sec", "after 465 sec", "after 465s": the seconds.
std::int32_t idle_seconds(std::string_view text) {
  for (std::size_t i = 0; i + 6 <= text.size(); ++i) {
    if (lower_ascii(text[i]) != 'a' || !contains_ci(text.substr(i, 5), "after")) {
      continue;
    }
    std::size_t p = i + 5;
    while (p < text.size() && text[p] == ' ') {
      ++p;
    }
    std::int64_t v = 0;
    std::size_t digits = 0;
    while (p < text.size() && text[p] >= '0' && text[p] <= '9' && digits < 7) {
      v = v * 10 + (text[p] - '0');
      ++p;
      ++digits;
    }
    if (digits == 0) {
      continue;
    }
    while (p < text.size() && text[p] == ' ') {
      ++p;
    }
    if (p < text.size() && lower_ascii(text[p]) == 's') {
      return static_cast<std::int32_t>(v);
    }
  }
  return -1;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads exactly n digits at p.
bool digits(std::string_view s, std::size_t p, std::size_t n, int& out) {
  if (p + n > s.size()) {
    return false;
  }
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!is_digit(s[p + i])) {
      return false;
    }
    out = out * 10 + (s[p + i] - '0');
  }
  return true;
}

std::string normalize_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      out += c;
    } else if (std::isalnum(u) != 0) {
      out += lower_ascii(c);
    }
  }
  return out;
}

constexpr std::string_view k_shapes =
    "a device log is the console's export: a CSV whose header names at least a time column "
    "(time, timestamp, 时间) and a DeviceName column (DeviceName, deviceName, 设备名称), with "
    "content/reason and/or status, clientIp, ProductKey, traceId; or JSON lines, one object per "
    "line with the same keys (docs/diagnose.md)";

void skip_ws(const char*& p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\t')) {
    ++p;
  }
}

} // namespace

std::string_view to_string(Reason r) {
  switch (r) {
  case Reason::online:
    return "online";
  case Reason::kicked:
    return "kicked";
  case Reason::keepalive_timeout:
    return "keepalive-timeout";
  case Reason::connection_reset:
    return "connection-reset";
  case Reason::device_disconnect:
    return "device-disconnect";
  case Reason::auth_failure:
    return "auth-failure";
  case Reason::other:
    break;
  }
  return "other";
}

std::string_view column_name(Reason r) {
  switch (r) {
  case Reason::online:
    return "online";
  case Reason::kicked:
    return "kicked";
  case Reason::keepalive_timeout:
    return "keepalive_timeout";
  case Reason::connection_reset:
    return "connection_reset";
  case Reason::device_disconnect:
    return "device_disconnect";
  case Reason::auth_failure:
    return "auth_failure";
  case Reason::other:
    break;
  }
  return "other";
}

std::span<const ReasonRule> reason_rules() {
  return k_rules;
}

Classified classify(std::string_view content, std::string_view status) {
  if (auto c = match_rules(content)) {
    if (c->reason == Reason::keepalive_timeout) {
      c->idle_s = idle_seconds(content);
    }
    return *c;
  }
  if (auto s = match_rules(status)) {
    // A status word alone: online, or an offline whose reason no rule knows.
    s->matched = s->reason != Reason::other || content.empty();
    return *s;
  }
  return Classified{};
}

namespace {

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0);
}
} // namespace

std::optional<std::int64_t> parse_time(std::string_view s, int default_offset_min) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  if (s.empty()) {
    return std::nullopt;
  }
  if (std::all_of(s.begin(), s.end(), is_digit)) {
    if (s.size() < 9 || s.size() > 14) {
      return std::nullopt;
    }
    std::int64_t v = 0;
    for (const char c : s) {
      v = v * 10 + (c - '0');
    }
    return s.size() <= 11 ? v * 1000 : v;
  }
  int y = 0;
  int mo = 0;
  int d = 0;
  if (!digits(s, 0, 4, y) || s.size() < 10 || (s[4] != '-' && s[4] != '/') || s[7] != s[4] ||
      !digits(s, 5, 2, mo) || !digits(s, 8, 2, d) || mo < 1 || mo > 12 || d < 1 || d > 31) {
    return std::nullopt;
  }
  std::int64_t ms =
      core::days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86'400'000;
  std::size_t p = 10;
  int offset_min = default_offset_min;
  if (p < s.size()) {
    if (s[p] != ' ' && s[p] != 'T') {
      return std::nullopt;
    }
    ++p;
    int h = 0;
    int mi = 0;
    int se = 0;
    if (!digits(s, p, 2, h) || p + 2 >= s.size() || s[p + 2] != ':' || !digits(s, p + 3, 2, mi)) {
      return std::nullopt;
    }
    p += 5;
    if (p < s.size() && s[p] == ':') {
      if (!digits(s, p + 1, 2, se)) {
        return std::nullopt;
      }
      p += 3;
    }
    if (h > 23 || mi > 59 || se > 60) {
      return std::nullopt;
    }
    ms += (static_cast<std::int64_t>(h) * 3600 + mi * 60 + se) * 1000;
    if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
      ++p;
      int frac = 0;
      int n = 0;
      while (p < s.size() && is_digit(s[p])) {
        if (n < 3) {
          frac = frac * 10 + (s[p] - '0');
        }
        ++n;
        ++p;
      }
      if (n == 0) {
        return std::nullopt;
      }
      for (int k = n; k < 3; ++k) {
        frac *= 10;
      }
      ms += frac;
    }
    while (p < s.size() && s[p] == ' ') {
      ++p;
    }
    if (p < s.size()) {
      if (s[p] == 'Z' || s[p] == 'z') {
        offset_min = 0;
        ++p;
      } else if (s[p] == '+' || s[p] == '-') {
        const int sign = s[p] == '-' ? -1 : 1;
        int oh = 0;
        int om = 0;
        if (!digits(s, p + 1, 2, oh)) {
          return std::nullopt;
        }
        p += 3;
        if (p < s.size() && s[p] == ':') {
          ++p;
        }
        if (p < s.size()) {
          if (!digits(s, p, 2, om)) {
            return std::nullopt;
          }
          p += 2;
        }
        if (oh > 14 || om > 59) {
          return std::nullopt;
        }
        offset_min = sign * (oh * 60 + om);
      }
      if (p != s.size()) {
        return std::nullopt;
      }
    }
  }
  return ms - static_cast<std::int64_t>(offset_min) * 60'000;
}

std::string format_time(std::int64_t ms, int offset_min) {
  if (ms == 0) {
    return "";
  }
  const std::int64_t local = ms + static_cast<std::int64_t>(offset_min) * 60'000;
  const std::int64_t day = floor_div(local, 86'400'000);
  const std::int64_t in_day = local - day * 86'400'000;
  const auto [y, m, d] = core::civil_from_days(day);
  const auto sec = in_day / 1000;
  char buf[40];
  std::snprintf(buf,
                sizeof buf,
                "%04d-%02u-%02u %02d:%02d:%02d",
                y,
                m,
                d,
                static_cast<int>(sec / 3600),
                static_cast<int>(sec / 60 % 60),
                static_cast<int>(sec % 60));
  return buf;
}

std::string format_day(std::int64_t day) {
  const auto [y, m, d] = core::civil_from_days(day);
  char buf[24];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", y, m, d);
  return buf;
}

std::string format_hour(std::int64_t hour) {
  const std::int64_t day = floor_div(hour, 24);
  char buf[8];
  std::snprintf(buf, sizeof buf, " %02d", static_cast<int>(hour - day * 24));
  return format_day(day) + buf;
}

std::optional<std::uint32_t> parse_ipv4(std::string_view s) {
  std::uint32_t ip = 0;
  std::size_t p = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (p >= s.size() || s[p] != '.') {
        return std::nullopt;
      }
      ++p;
    }
    unsigned v = 0;
    std::size_t n = 0;
    while (p < s.size() && is_digit(s[p]) && n < 3) {
      v = v * 10 + static_cast<unsigned>(s[p] - '0');
      ++p;
      ++n;
    }
    if (n == 0 || v > 255) {
      return std::nullopt;
    }
    ip = (ip << 8) | v;
  }
  if (p != s.size()) {
    return std::nullopt;
  }
  return ip;
}

std::string format_ipv4(std::uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." +
         std::to_string((ip >> 8) & 255) + "." + std::to_string(ip & 255);
}

LogParser::Field LogParser::field_for_name(std::string_view name) {
  static const std::unordered_map<std::string, Field> names = {
      {"time", Field::time},
      {"timestamp", Field::time},
      {"ts", Field::time},
      {"datetime", Field::time},
      {"eventtime", Field::time},
      {"logtime", Field::time},
      {"occurtime", Field::time},
      {"gmtcreate", Field::time},
      {"utctime", Field::time},
      {"timeutc", Field::time},
      {"时间", Field::time},
      {"时间戳", Field::time},
      {"发生时间", Field::time},
      {"日志时间", Field::time},
      {"devicename", Field::device_name},
      {"device", Field::device_name},
      {"dn", Field::device_name},
      {"设备名称", Field::device_name},
      {"设备名", Field::device_name},
      {"设备", Field::device_name},
      {"productkey", Field::product_key},
      {"pk", Field::product_key},
      {"产品key", Field::product_key},
      {"产品", Field::product_key},
      {"content", Field::content},
      {"reason", Field::content},
      {"message", Field::content},
      {"msg", Field::content},
      {"offlinereason", Field::content},
      {"detail", Field::content},
      {"description", Field::content},
      {"内容", Field::content},
      {"消息内容", Field::content},
      {"原因", Field::content},
      {"离线原因", Field::content},
      {"日志内容", Field::content},
      {"描述", Field::content},
      {"status", Field::status},
      {"action", Field::status},
      {"event", Field::status},
      {"state", Field::status},
      {"operation", Field::status},
      {"状态", Field::status},
      {"行为", Field::status},
      {"事件", Field::status},
      {"操作", Field::status},
      {"clientip", Field::client_ip},
      {"ip", Field::client_ip},
      {"ipaddress", Field::client_ip},
      {"sourceip", Field::client_ip},
      {"srcip", Field::client_ip},
      {"remoteip", Field::client_ip},
      {"客户端ip", Field::client_ip},
      {"设备ip", Field::client_ip},
      {"ip地址", Field::client_ip},
      {"traceid", Field::trace_id},
      {"lasttime", Field::last_time},
      {"utclasttime", Field::last_time},
  };
  const auto it = names.find(normalize_name(name));
  return it == names.end() ? Field::none : it->second;
}

LogParser::LogParser(LogParserOptions options) : m_options(options) {}

std::string_view LogParser::format() const {
  switch (m_format) {
  case Format::csv:
    return "csv";
  case Format::jsonl:
    return "jsonl";
  case Format::none:
    break;
  }
  return "";
}

Result<bool> LogParser::parse(std::string_view line, LogRecord& out) {
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  if (m_format == Format::csv) {
    return csv_row(line, out);
  }
  if (m_format == Format::jsonl) {
    return json_row(line, out);
  }
  if (line.starts_with("\xEF\xBB\xBF")) {
    line.remove_prefix(3);
  }
  const std::string_view t = core::trim(line);
  if (t.empty()) {
    return false;
  }
  if (t.find('\0') != std::string_view::npos) {
    return fail(ErrorKind::usage,
                "holds a NUL byte: a binary or UTF-16 file; save it as UTF-8 text (" +
                    std::string(k_shapes) + ")");
  }
  if (t.front() == '{') {
    m_format = Format::jsonl;
    return json_row(t, out);
  }
  if (t.front() == '[') {
    return fail(ErrorKind::usage,
                "is a JSON array: give JSON lines, one object per line (`jq -c '.[]' FILE > "
                "F.jsonl`), or " +
                    std::string(k_shapes));
  }
  return header(t);
}

Result<bool> LogParser::header(std::string_view line) {
  std::vector<Field> columns;
  core::CsvCursor cursor(line);
  while (auto name = IOT_TRY(cursor.next())) {
    Field f = field_for_name(*name);
    if (f != Field::none && std::find(columns.begin(), columns.end(), f) != columns.end()) {
      f = Field::none; // a second column for the same field (time and utcTime): the first wins
    }
    columns.push_back(f);
  }
  const auto has = [&](Field f) {
    return std::find(columns.begin(), columns.end(), f) != columns.end();
  };
  if (!has(Field::time) || !has(Field::device_name)) {
    return fail(ErrorKind::usage,
                std::string("the first line is not a header with ") +
                    (!has(Field::time) ? "a time" : "a DeviceName") +
                    " column: " + std::string(k_shapes));
  }
  if (!has(Field::content) && !has(Field::status)) {
    return fail(ErrorKind::usage,
                "the header has neither a content/reason column nor a status column: nothing "
                "says why a device went offline; export the log with its content (" +
                    std::string(k_shapes) + ")");
  }
  m_has_product_key = has(Field::product_key);
  m_has_content = has(Field::content);
  m_needed = 0;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == Field::time || columns[i] == Field::device_name) {
      m_needed = i + 1;
    }
  }
  m_columns = std::move(columns);
  m_format = Format::csv;
  return false;
}

Result<bool> LogParser::csv_row(std::string_view line, LogRecord& out) {
  std::array<std::string_view, k_field_count> v{};
  std::size_t col = 0;
  bool blank = true;
  m_scratch.clear();
  core::CsvCursor cursor(line);
  while (auto field = IOT_TRY(cursor.next())) {
    std::string_view value = *field;
    if (cursor.decoded()) {
      value = m_scratch.emplace_back(value); // the record's views outlive the cursor
    }
    if (col < m_columns.size()) {
      v[static_cast<std::size_t>(m_columns[col])] = value;
    }
    blank = blank && value.empty() && !cursor.quoted();
    ++col;
  }
  if (blank && col == 1) {
    return false;
  }
  if (col < m_needed) {
    return fail(ErrorKind::usage,
                "has " + std::to_string(col) + (col == 1 ? " field" : " fields") +
                    " but the header needs at least " + std::to_string(m_needed) +
                    " (time and DeviceName): a field is missing, or a comma inside a value is "
                    "not quoted");
  }
  return finish(v, out);
}

LogParser::Field LogParser::json_key(std::string_view raw) {
  for (const auto& [k, f] : m_key_cache) {
    if (k == raw) {
      return f;
    }
  }
  const Field f = field_for_name(raw);
  if (m_key_cache.size() < 64) {
    m_key_cache.emplace_back(std::string(raw), f);
  }
  return f;
}

namespace {
// Skips a non-string JSON value (number, literal, object, array); its text in `raw`.
bool json_other(const char*& p, const char* end, std::string_view& raw) {
  const char* start = p;
  if (!core::json_skip_value(p, end)) {
    return false;
  }
  raw = std::string_view(start, static_cast<std::size_t>(p - start));
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\t')) {
    raw.remove_suffix(1);
  }
  return true;
}
} // namespace

Result<bool> LogParser::json_row(std::string_view line, LogRecord& out) {
  const char* p = line.data();
  const char* end = p + line.size();
  skip_ws(p, end);
  while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
    --end;
  }
  if (p >= end) {
    return false;
  }
  if (*p != '{' || end[-1] != '}') {
    return fail(ErrorKind::usage,
                "is not one JSON object on one line (JSON lines: `{...}` per line; for "
                "pretty-printed JSON run `jq -c . FILE > F.jsonl`)");
  }
  ++p;
  --end;
  std::array<std::string_view, k_field_count> v{};
  m_scratch.clear();
  std::string buf;
  bool any = false;
  while (true) {
    skip_ws(p, end);
    if (p >= end) {
      break;
    }
    if (*p != '"') {
      return fail(ErrorKind::usage, "a key is not a quoted string: not valid JSON");
    }
    ++p;
    std::string_view key;
    bool unescaped = false;
    if (!core::json_string(p, end, key, buf, unescaped)) {
      return fail(ErrorKind::usage, "a key's quote is not closed: not valid JSON");
    }
    const Field f = json_key(key);
    skip_ws(p, end);
    if (p >= end || *p != ':') {
      return fail(ErrorKind::usage, "no ':' after a key: not valid JSON");
    }
    ++p;
    skip_ws(p, end);
    std::string_view value;
    if (p < end && *p == '"') {
      ++p;
      if (!core::json_string(p, end, value, buf, unescaped)) {
        return fail(ErrorKind::usage,
                    "a string value's quote is not closed (or a bad \\ escape): not valid JSON");
      }
      if (unescaped) {
        m_scratch.push_back(buf);
        value = m_scratch.back();
      }
    } else if (!json_other(p, end, value)) {
      return fail(ErrorKind::usage, "a value is not closed: not valid JSON");
    }
    if (f != Field::none && v[static_cast<std::size_t>(f)].empty()) {
      v[static_cast<std::size_t>(f)] = value == "null" ? std::string_view() : value;
      any = true;
      if (f == Field::product_key) {
        m_has_product_key = true;
      }
    }
    skip_ws(p, end);
    if (p < end) {
      if (*p != ',') {
        return fail(ErrorKind::usage, "no ',' between two members: not valid JSON");
      }
      ++p;
    }
  }
  if (!any) {
    return fail(ErrorKind::usage,
                "the object has none of the known keys (time, deviceName, content, status, "
                "clientIp, productKey, traceId; docs/diagnose.md)");
  }
  return finish(v, out);
}

Result<bool> LogParser::finish(std::array<std::string_view, k_field_count>& v, LogRecord& out) {
  const auto get = [&](Field f) { return v[static_cast<std::size_t>(f)]; };
  const std::string_view time = get(Field::time);
  const std::string_view name = core::trim(get(Field::device_name));
  if (name.empty()) {
    return fail(ErrorKind::usage,
                "has no DeviceName (the deviceName column/key is empty or missing)");
  }
  if (name.size() > 64) {
    return fail(ErrorKind::usage,
                "the DeviceName is " + std::to_string(name.size()) +
                    " bytes long (at most 32 are allowed): the columns are shifted, or this is "
                    "not a device log");
  }
  if (time.empty()) {
    return fail(ErrorKind::usage, "has no time (the time column/key is empty or missing)");
  }
  const auto t = parse_time(time, m_options.default_offset_min);
  if (!t || *t < 946'684'800'000 || *t > 4'102'444'800'000) {
    std::string shown(time.substr(0, 40));
    return fail(ErrorKind::usage,
                "the time '" + shown +
                    "' is not one of: yyyy-MM-dd HH:mm:ss(.SSS), ISO-8601 with or without zone "
                    "(2024-01-02T03:04:05.678+08:00), epoch seconds or milliseconds (years "
                    "2000-2099)");
  }
  out.time_ms = *t;
  out.device_name = name;
  out.product_key = core::trim(get(Field::product_key));
  out.content = core::trim(get(Field::content));
  out.status = core::trim(get(Field::status));
  out.client_ip = core::trim(get(Field::client_ip));
  out.trace_id = get(Field::trace_id);
  out.last_time_ms = 0;
  if (const auto lt = get(Field::last_time); !lt.empty()) {
    out.last_time_ms = parse_time(lt, m_options.default_offset_min).value_or(0);
  }
  if (out.content.empty() && out.status.empty()) {
    return fail(ErrorKind::usage,
                "has neither content (the reason) nor status: nothing says what happened");
  }
  // Classification, as classify() does it, with the rules' answer cached per text: the same
  // few strings repeat on every line.
  if (const auto c = cached_rules(out.content)) {
    out.reason = *c;
    return true;
  }
  if (auto s = cached_rules(out.status)) {
    s->matched = s->reason != Reason::other || out.content.empty();
    s->idle_s = -1;
    out.reason = *s;
    return true;
  }
  out.reason = Classified{};
  return true;
}

std::optional<Classified> LogParser::cached_rules(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  if (const auto it = m_reason_cache.find(text); it != m_reason_cache.end()) {
    return it->second;
  }
  auto c = match_rules(text);
  if (c && c->reason == Reason::keepalive_timeout) {
    c->idle_s = idle_seconds(text);
  }
  if (m_reason_cache.size() < 4096) {
    m_reason_cache.emplace(std::string(text), c);
  }
  return c;
}

} // namespace iot::diagnose
