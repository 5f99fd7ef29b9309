// SPDX-License-Identifier: MIT
// The fleet report as one self-contained HTML page: inline CSS, charts as inline SVG (reasons
// per day, per hour, devices ranked by disconnects), the findings with their evidence and fix.
// No network access is needed to view it; a small inline script adds hover read-outs and marks
// the page `data-charts="N"` once it has measured N drawn charts (what the headless-Chromium
// test checks).
#pragma once

#include "diagnose/fleet.hpp"

#include <cstdint>
#include <string>

namespace iot::diagnose {

struct HtmlInfo {
  std::string log;         // the log's name
  std::string format;      // csv / jsonl
  std::uint64_t lines = 0; // physical lines read
  std::size_t skipped = 0; // unreadable lines
  std::string product_key; // "" when not filtered
  std::string zone;        // "UTC+08:00"
  std::string device_list; // "" when none
};

[[nodiscard]] std::string render_fleet_html(const FleetReport& report, const HtmlInfo& info);

// Text escaped for HTML element content and attribute values.
[[nodiscard]] std::string html_escape(std::string_view text);

} // namespace iot::diagnose
