// SPDX-License-Identifier: MIT
// Renderers: a core::Table as an aligned table, JSON, NDJSON or CSV. Secret cells are masked
// unless show_secrets. Output ends with a newline; an empty table prints only its header
// (table, CSV), "[]" (JSON) or nothing (NDJSON).
#pragma once

#include "core/table.hpp"

#include <ostream>
#include <string>

namespace iot::cli {

struct RenderOptions {
  core::OutputFormat format = core::OutputFormat::table;
  bool show_secrets = false;
  bool color = false; // bold header in table format
};

void render(const core::Table& table, const RenderOptions& options, std::ostream& out);

// A cell as text for the table and CSV formats ("" for no value).
[[nodiscard]] std::string cell_text(const core::Cell& cell, bool show_secrets);

} // namespace iot::cli
