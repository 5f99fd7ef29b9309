// SPDX-License-Identifier: MIT
// CSV with RFC 4180 quoting: writing (csv_field, csv_line) and reading one line (csv_split_line).
#pragma once

#include "core/error.hpp"

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::core {

// The field as RFC 4180 wants it: unchanged unless it holds a comma, a double quote, CR or LF
// (or starts/ends with a space), in which case it is wrapped in double quotes and every double
// quote inside is doubled.
[[nodiscard]] std::string csv_field(std::string_view field);

// Fields joined with commas, each through csv_field; no line terminator.
[[nodiscard]] std::string csv_line(const std::vector<std::string>& fields);

// Splits one CSV record that sits on one physical line (the caller splits lines; a field with a
// line break inside quotes is not supported) into its fields, RFC 4180 quoting: a field that
// starts with a double quote runs to the matching closing quote, `""` inside standing for one `"`;
// commas inside quotes are data. Spaces and tabs around an unquoted field, and outside the quotes
// of a quoted one, are dropped; inside quotes they are kept. A `"` in the middle of an unquoted
// field is kept as a literal character. An empty line is one empty field; `a,` is "a" and "".
// Errors (ErrorKind::usage; the message names the 1-based field number, never the field's text):
// a quote still open at the end of the line, text other than spaces after a closing quote.
// For a non-empty vector v of fields without CR or LF that neither start nor end with a tab
// (csv_field does not quote tabs): csv_split_line(csv_line(v)) == v.
[[nodiscard]] Result<std::vector<std::string>> csv_split_line(std::string_view line);

// The field-by-field reader behind csv_split_line, for readers that keep views instead of copies
// (the device-log parser reads millions of lines): each field is a view into the line, or — for a
// quoted field with a doubled quote — into the cursor's own storage, valid as long as the cursor.
// Same rules and errors as csv_split_line.
class CsvCursor {
public:
  explicit CsvCursor(std::string_view line) : m_line(line) {}
  // The next field; std::nullopt once the line is used up (an empty line is one empty field).
  [[nodiscard]] Result<std::optional<std::string_view>> next();
  // How many fields next() has returned.
  [[nodiscard]] std::size_t count() const { return m_count; }
  // Whether the field next() returned last was in double quotes.
  [[nodiscard]] bool quoted() const { return m_quoted; }
  // Whether it lives in the cursor's storage (it had a doubled quote), not in the line: copy it
  // to keep it longer than the cursor.
  [[nodiscard]] bool decoded() const { return m_decoded_last; }

private:
  std::string_view m_line;
  std::size_t m_pos = 0;
  std::size_t m_count = 0;
  bool m_done = false;
  bool m_quoted = false;
  bool m_decoded_last = false;
  std::deque<std::string> m_decoded; // a deque: views into earlier fields stay valid
};

} // namespace iot::core
