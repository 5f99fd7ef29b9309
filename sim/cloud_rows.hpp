// SPDX-License-Identifier: MIT
// One table's mapping to its row struct, written once: a list of (column, member) pairs gives
// the column list of a SELECT, the reading of a result row, the binding of a row, and the
// INSERT and UPDATE statements, so that the four cannot drift apart (they were written out by
// hand for devices, OTA firmwares, jobs and tasks).
//
// The first column is the key (`seq INTEGER PRIMARY KEY`): read like the others, never bound
// by insert() (SQLite assigns it), and the WHERE of update().
#pragma once

#include "sim/cloud_store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace iot::sim::cloud {

template <class Row> class RowTable {
public:
  using Member = std::variant<std::string Row::*, std::int64_t Row::*, int Row::*>;
  struct Column {
    std::string_view name;
    Member member;
  };

  RowTable(std::string_view table, std::vector<Column> columns)
      : m_table(table), m_columns(std::move(columns)) {
    std::string names;
    std::string params;
    std::string sets;
    for (std::size_t i = 0; i < m_columns.size(); ++i) {
      m_list += (i == 0 ? "" : ", ") + std::string(m_columns[i].name);
      if (i == 0) {
        continue;
      }
      const std::string p = "?" + std::to_string(i);
      names += (i == 1 ? "" : ", ") + std::string(m_columns[i].name);
      params += (i == 1 ? "" : ", ") + p;
      sets += (i == 1 ? "" : ", ") + std::string(m_columns[i].name) + " = " + p;
    }
    m_insert = "INSERT INTO " + m_table + "(" + names + ") VALUES(" + params + ")";
    m_update = "UPDATE " + m_table + " SET " + sets + " WHERE " + std::string(m_columns[0].name) +
               " = ?" + std::to_string(m_columns.size());
  }

  // "seq, a, b, …": what read() expects, in order.
  [[nodiscard]] const std::string& columns() const { return m_list; }
  // "SELECT <columns> FROM <table> <rest>".
  [[nodiscard]] std::string select(std::string_view rest) const {
    return "SELECT " + m_list + " FROM " + m_table + " " + std::string(rest);
  }

  [[nodiscard]] Row read(const Stmt& s) const {
    Row row;
    for (std::size_t i = 0; i < m_columns.size(); ++i) {
      const int col = static_cast<int>(i);
      std::visit(
          [&](auto member) {
            using T = std::remove_reference_t<decltype(row.*member)>;
            if constexpr (std::is_same_v<T, std::string>) {
              row.*member = s.text(col);
            } else {
              row.*member = static_cast<T>(s.int64(col));
            }
          },
          m_columns[i].member);
    }
    return row;
  }
  // Every row of a stepped statement selected with columns().
  [[nodiscard]] std::vector<Row> read_all(Stmt& s) const {
    std::vector<Row> out;
    while (s.step()) {
      out.push_back(read(s));
    }
    return out;
  }
  // The first row, if any.
  [[nodiscard]] std::optional<Row> read_one(Stmt& s) const {
    if (s.step()) {
      return read(s);
    }
    return std::nullopt;
  }

  // Binds every column but the key, as ?1 … ?N-1.
  void bind(Stmt& s, const Row& row) const {
    for (std::size_t i = 1; i < m_columns.size(); ++i) {
      const int param = static_cast<int>(i);
      std::visit(
          [&](auto member) {
            using T = std::remove_cvref_t<decltype(row.*member)>;
            if constexpr (std::is_same_v<T, std::string>) {
              s.bind(param, std::string_view(row.*member));
            } else {
              s.bind(param, static_cast<std::int64_t>(row.*member));
            }
          },
          m_columns[i].member);
    }
  }

  // The INSERT of bind()'s parameters, for a statement prepared once and run many times.
  [[nodiscard]] const std::string& insert_sql() const { return m_insert; }
  // Inserts row (its key is assigned); the new key.
  std::int64_t insert(Conn& c, const Row& row) const {
    Stmt s = c.prepare(m_insert);
    bind(s, row);
    s.run();
    return c.last_insert_rowid();
  }
  // Rewrites every column but the key of the row whose key is `key`.
  void update(Conn& c, const Row& row, std::int64_t key) const {
    Stmt s = c.prepare(m_update);
    bind(s, row);
    s.bind(static_cast<int>(m_columns.size()), key);
    s.run();
  }

private:
  std::string m_table;
  std::vector<Column> m_columns;
  std::string m_list;
  std::string m_insert;
  std::string m_update;
};

// The devices table (sim/cloud_store.cpp); the OTA tables are in sim/cloud_ota.hpp.
[[nodiscard]] const RowTable<DeviceRow>& device_table();

} // namespace iot::sim::cloud
