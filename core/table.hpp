// SPDX-License-Identifier: MIT
// The records every command returns. Renderers in cli/ print a Table as an aligned table, JSON,
// NDJSON or CSV; commands never format output themselves.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace iot::core {

enum class OutputFormat { table, json, ndjson, csv };

// A value that is masked ("abcd…wxyz") by every renderer unless --show-secrets was given.
struct Secret {
  std::string value;
  friend bool operator==(const Secret&, const Secret&) = default;
};

// A list of texts (e.g. a module's verdicts): a JSON array, "; "-joined in a table and in CSV.
// Kept as one string (items separated by the unit separator 0x1F, which no item may hold):
// g++ 12 warns falsely (-Wmaybe-uninitialized) about a std::vector inside the Cell variant.
struct TextList {
  static constexpr char k_separator = '\x1f';
  std::string packed;

  [[nodiscard]] static TextList of(const std::vector<std::string>& items);
  [[nodiscard]] std::vector<std::string> items() const;
  friend bool operator==(const TextList&, const TextList&) = default;
};

// One cell. std::monostate is "no value": "-" in a table, null in JSON, empty in CSV.
using Cell =
    std::variant<std::monostate, std::string, std::int64_t, double, bool, Secret, TextList>;

struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;
  // One record rather than a list: the table format prints "field  value" lines and JSON an
  // object instead of an array. NDJSON and CSV print it as their single row.
  bool single = false;

  // Appends a row; it must have one cell per column (checked, throws std::logic_error).
  void add_row(std::vector<Cell> row);
};

} // namespace iot::core
