// SPDX-License-Identifier: MIT
#include "core/table.hpp"

#include <stdexcept>

namespace iot::core {

TextList TextList::of(const std::vector<std::string>& items) {
  TextList list;
  for (std::size_t i = 0; i < items.size(); ++i) {
    list.packed += (i == 0 ? "" : std::string(1, k_separator)) + items[i];
  }
  if (items.empty()) {
    list.packed.clear();
  }
  return list;
}

std::vector<std::string> TextList::items() const {
  std::vector<std::string> out;
  if (packed.empty()) {
    return out;
  }
  std::size_t start = 0;
  for (;;) {
    const auto end = packed.find(k_separator, start);
    out.push_back(packed.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) {
      return out;
    }
    start = end + 1;
  }
}

void Table::add_row(std::vector<Cell> row) {
  if (row.size() != columns.size()) {
    throw std::logic_error("Table::add_row: " + std::to_string(row.size()) + " cells for " +
                           std::to_string(columns.size()) + " columns");
  }
  rows.push_back(std::move(row));
}

} // namespace iot::core
