// SPDX-License-Identifier: MIT
// Text helpers: terminal display width of UTF-8 (CJK is two columns wide), trimming.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace iot::core {

// Columns a terminal uses to show the UTF-8 text: East Asian wide and fullwidth characters
// count 2, combining marks and zero-width characters 0, everything else 1. Invalid bytes count 1
// each (they show as a replacement character).
[[nodiscard]] std::size_t display_width(std::string_view utf8);

// Whitespace (space, tab, CR, LF) removed from both ends.
[[nodiscard]] std::string_view trim(std::string_view text);

// A space or a tab: what separates and pads fields within a line (CR and LF end lines).
[[nodiscard]] constexpr bool is_blank(char c) {
  return c == ' ' || c == '\t';
}
// Spaces and tabs removed from both ends; a CR or LF stays (where it ends a line, it is no blank).
[[nodiscard]] std::string_view trim_blanks(std::string_view text);
// Whether the text holds an ASCII digit.
[[nodiscard]] bool has_digit(std::string_view text);

// ASCII letters lowered (other bytes unchanged); iequals compares that way.
[[nodiscard]] std::string to_lower(std::string_view text);
[[nodiscard]] std::string to_upper(std::string_view text);
[[nodiscard]] bool iequals(std::string_view a, std::string_view b);

// Appends the UTF-8 encoding of code point `cp` (for JSON \u escapes; no validation).
void append_utf8(std::string& out, std::uint32_t cp);

// "2026-11-24T16:08:39.123Z" for milliseconds since the Unix epoch; "" for 0.
[[nodiscard]] std::string iso8601_utc(std::int64_t unix_ms);

// Civil (proleptic Gregorian) dates and days since 1970-01-01, by std::chrono's calendar.
struct CivilDate {
  int year = 1970;
  unsigned month = 1; // 1–12
  unsigned day = 1;   // 1–31
};
[[nodiscard]] std::int64_t days_from_civil(std::int64_t year, unsigned month, unsigned day);
[[nodiscard]] CivilDate civil_from_days(std::int64_t days);

} // namespace iot::core
