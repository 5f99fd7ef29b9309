// SPDX-License-Identifier: MIT
#include "core/duration.hpp"

#include "core/text.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <utility>

namespace iot::core {
namespace {

using std::chrono::milliseconds;

constexpr std::array<std::string_view, 5> k_unit_names = {
    "milliseconds", "seconds", "minutes", "hours", "days"};

constexpr std::array<std::pair<std::string_view, std::int64_t>, 5> k_units = {{
    {"ms", 1},
    {"s", 1000},
    {"m", 60'000},
    {"h", 3'600'000},
    {"d", 86'400'000},
}};

constexpr double k_max_ms = 10.0 * 365 * 86'400'000;

} // namespace

Result<milliseconds> parse_duration(std::string_view text, milliseconds bare_unit) {
  const auto t = trim(text);
  const auto bad = [&] {
    return fail(ErrorKind::usage,
                "duration '" + std::string(text) + "': give a number with a unit — 500ms, 30s, " +
                    "10m, 2h, 1d — or a bare number of " + std::string(unit_name(bare_unit)));
  };
  std::size_t digits = 0;
  while (digits < t.size() &&
         (std::isdigit(static_cast<unsigned char>(t[digits])) != 0 || t[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) {
    return bad();
  }
  double value = 0;
  const auto number = t.substr(0, digits);
  const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) {
    return bad();
  }
  const auto unit_text = trim(t.substr(digits));
  double unit = static_cast<double>(bare_unit.count());
  if (!unit_text.empty()) {
    bool known = false;
    for (const auto& [name, ms] : k_units) {
      if (unit_text == name) {
        unit = static_cast<double>(ms);
        known = true;
      }
    }
    if (!known) {
      return bad();
    }
  }
  const double ms = value * unit;
  if (!std::isfinite(ms) || ms < 0 || ms > k_max_ms) {
    return bad();
  }
  return milliseconds(static_cast<std::int64_t>(std::llround(ms)));
}

std::string format_duration(milliseconds d) {
  const auto ms = d.count();
  if (ms == 0) {
    return "0";
  }
  for (auto it = k_units.rbegin(); it != k_units.rend(); ++it) {
    if (ms % it->second == 0) {
      return std::to_string(ms / it->second) + std::string(it->first);
    }
  }
  return std::to_string(ms) + "ms";
}

std::string_view unit_suffix(milliseconds unit) {
  for (const auto& [name, ms] : k_units) {
    if (unit.count() == ms) {
      return name;
    }
  }
  return "ms";
}

std::string_view unit_name(milliseconds unit) {
  for (std::size_t i = 0; i < k_units.size(); ++i) {
    if (unit.count() == k_units[i].second) {
      return k_unit_names[i];
    }
  }
  return "milliseconds";
}

} // namespace iot::core
