// SPDX-License-Identifier: MIT
// The device log the Alibaba Cloud IoT console exports (Maintenance → Device Log, business type
// "device": online / offline with the reason), read one line at a time: CSV with a header or
// JSON lines, with flexible column names (English and Chinese), three time formats. The shapes
// accepted are documented in docs/diagnose.md; the console's exact export format is UNVERIFIED
// (docs/aliyun-iot-protocol.md §6), hence the flexibility.
//
// The reason table (reason_rules()) is the one place that maps the console's reason strings to
// categories; change it there.
#pragma once

#include "core/error.hpp"

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace iot::diagnose {

// The console's disconnect categories (plus online and "other").
enum class Reason : std::uint8_t {
  online,
  kicked,            // "Kicked by the same device": another connection with the same identity
  keepalive_timeout, // "Keepalive timeout": no packet within keepalive × 1.5 (+ up to 30 s)
  connection_reset,  // "Connection reset by peer": the TCP connection was reset
  device_disconnect, // "Device disconnect": the firmware sent MQTT DISCONNECT
  auth_failure,      // the platform refused the credentials
  other,             // any other offline reason, or text no rule knows
};
inline constexpr std::size_t k_reason_count = 7;

// "online", "kicked", "keepalive-timeout", "connection-reset", "device-disconnect",
// "auth-failure", "other".
[[nodiscard]] std::string_view to_string(Reason r);
// Snake case for column names: "keepalive_timeout", …
[[nodiscard]] std::string_view column_name(Reason r);

// One row of the reason table: a record whose content (or status) holds `pattern`
// (case-insensitive, ASCII) is of category `reason`. Rows are tried in order; the first that
// matches wins. `verified` false: a guess (UNVERIFIED), kept in the table until a real export
// confirms or removes it. `source` says where the string comes from.
struct ReasonRule {
  std::string_view pattern;
  Reason reason;
  bool verified;
  std::string_view source;
};
[[nodiscard]] std::span<const ReasonRule> reason_rules();

struct Classified {
  Reason reason = Reason::other;
  bool matched = false;     // a rule matched (else `other` by default, or online/offline status)
  std::int32_t idle_s = -1; // "Keepalive timeout after 465sec": the seconds, else -1
};

// The category of a record from its content (reason text) and its status column (online /
// offline / 上线 / 下线), either may be empty. The content decides when a rule matches it;
// otherwise the status: online → online, anything else → other.
[[nodiscard]] Classified classify(std::string_view content, std::string_view status);

// Times. Accepted: epoch seconds (9–11 digits) or milliseconds (12–14 digits);
// "yyyy-MM-dd HH:mm:ss", "yyyy-MM-ddTHH:mm:ss", "yyyy/MM/dd HH:mm:ss", each with optional
// fraction (".SSS", any digits) and optional zone ("Z", "+08:00", "+0800", "+08"); a date alone
// "yyyy-MM-dd" (midnight). A time without a zone is local time at `default_offset_min` minutes
// east of UTC (the console shows Beijing time, +08:00: UNVERIFIED for its export). Returns
// milliseconds since the Unix epoch (UTC), or nothing.
[[nodiscard]] std::optional<std::int64_t> parse_time(std::string_view text, int default_offset_min);
// "yyyy-MM-dd HH:mm:ss" of `ms` shown at `offset_min` minutes east of UTC ("" for none).
[[nodiscard]] std::string format_time(std::int64_t ms, int offset_min);
// "yyyy-MM-dd" / "yyyy-MM-dd HH" of a day / hour index (days or hours since the epoch, local).
[[nodiscard]] std::string format_day(std::int64_t day);
[[nodiscard]] std::string format_hour(std::int64_t hour);

// An IPv4 address as a number, or nothing.
[[nodiscard]] std::optional<std::uint32_t> parse_ipv4(std::string_view text);
[[nodiscard]] std::string format_ipv4(std::uint32_t ip);

// One record. Views point into the line given to LogParser::parse (or into the parser, for an
// unescaped value) and are valid until the next parse.
struct LogRecord {
  std::int64_t time_ms = 0;
  std::string_view device_name;
  std::string_view product_key;  // "" when the log has none
  std::string_view content;      // the reason / message text, "" when none
  std::string_view status;       // online / offline / …, "" when none
  std::string_view client_ip;    // "" when none
  std::string_view trace_id;     // "" when none
  std::int64_t last_time_ms = 0; // the status message's lastTime (last packet), 0 when none
  Classified reason;
};

struct LogParserOptions {
  int default_offset_min = 480; // zone-less times: minutes east of UTC
};

class LogParser {
public:
  explicit LogParser(LogParserOptions options = {});
  LogParser(const LogParser&) = delete;
  LogParser& operator=(const LogParser&) = delete;

  // One physical line without its LF (a trailing CR is dropped). true: `out` holds a record;
  // false: the line holds none (blank, the header). ErrorKind::usage with the problem and its
  // fix (no line number: the caller prefixes "FILE: line N: "). The first non-blank line decides
  // the format: `{` JSON lines, else a CSV header (an error if it has no time or DeviceName
  // column: that file cannot be read at all).
  [[nodiscard]] Result<bool> parse(std::string_view line, LogRecord& out);

  // "csv", "jsonl", "" before the first non-blank line.
  [[nodiscard]] std::string_view format() const;
  // The log has a ProductKey column / key (CSV: known from the header; JSON: seen so far).
  [[nodiscard]] bool has_product_key() const { return m_has_product_key; }

  // The fields a record can carry; public for the header tables.
  enum class Field : std::uint8_t {
    none,
    time,
    device_name,
    product_key,
    content,
    status,
    client_ip,
    trace_id,
    last_time,
  };
  static constexpr std::size_t k_field_count = 9;
  // The field a column or key name stands for ("DeviceName", "设备名称", "client_ip", …).
  [[nodiscard]] static Field field_for_name(std::string_view name);

private:
  Result<bool> header(std::string_view line);
  Result<bool> csv_row(std::string_view line, LogRecord& out);
  Result<bool> json_row(std::string_view line, LogRecord& out);
  Result<bool> finish(std::array<std::string_view, k_field_count>& v, LogRecord& out);
  Field json_key(std::string_view raw);
  std::optional<Classified> cached_rules(std::string_view text);

  LogParserOptions m_options;
  enum class Format : std::uint8_t { none, csv, jsonl } m_format = Format::none;
  std::vector<Field> m_columns;
  std::size_t m_needed = 0; // CSV: a row must have at least this many fields
  bool m_has_product_key = false;
  bool m_has_content = false;
  std::deque<std::string> m_scratch;                      // unescaped values of the current line
  std::vector<std::pair<std::string, Field>> m_key_cache; // JSON key → field
  // Content text → category: the same few strings repeat on every line.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, std::optional<Classified>, Hash, std::equal_to<>> m_reason_cache;
};

} // namespace iot::diagnose
