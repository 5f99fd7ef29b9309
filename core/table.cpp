// SPDX-License-Identifier: MIT
#include "core/table.hpp"

#include <stdexcept>

namespace iot::core {

void Table::add_row(std::vector<Cell> row) {
  if (row.size() != columns.size()) {
    throw std::logic_error("Table::add_row: " + std::to_string(row.size()) + " cells for " +
                           std::to_string(columns.size()) + " columns");
  }
  rows.push_back(std::move(row));
}

} // namespace iot::core
