// SPDX-License-Identifier: MIT
// CSV with RFC 4180 quoting: writing (csv_field, csv_line) and reading one line (csv_split_line).
#pragma once

#include "core/error.hpp"

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

} // namespace iot::core
