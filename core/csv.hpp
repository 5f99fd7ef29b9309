// SPDX-License-Identifier: MIT
// CSV with RFC 4180 quoting.
#pragma once

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

} // namespace iot::core
