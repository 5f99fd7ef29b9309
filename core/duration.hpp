// SPDX-License-Identifier: MIT
// The one duration syntax of every option: a number with a unit — `500ms`, `30s`, `10m`, `2h`,
// `1d` — or a bare number, read in the unit the option documents (`--timeout 5000` stays 5000 ms
// where the option always took milliseconds). Fractions are allowed (`1.5s`, `0.5m`).
#pragma once

#include "core/error.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace iot::core {

// The duration `text` gives, with a bare number taken in `bare_unit`. ErrorKind::usage (naming
// the text and the syntax) for anything else, a negative value or more than 10 years.
[[nodiscard]] Result<std::chrono::milliseconds> parse_duration(std::string_view text,
                                                               std::chrono::milliseconds bare_unit);

// The shortest exact spelling: "0", "250ms", "30s", "10m", "2h", "1d"; "1500ms" when no larger
// unit divides it.
[[nodiscard]] std::string format_duration(std::chrono::milliseconds d);

// The name of a bare number's unit for help texts: "ms", "s", "m", "h" or "d".
[[nodiscard]] std::string_view unit_suffix(std::chrono::milliseconds unit);
// The same in words: "milliseconds", "seconds", "minutes", "hours" or "days".
[[nodiscard]] std::string_view unit_name(std::chrono::milliseconds unit);

} // namespace iot::core
