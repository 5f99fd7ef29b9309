// SPDX-License-Identifier: MIT
// Internal to store/: a thin RAII layer over the SQLite C API. Nothing outside store/ includes
// this header (SQLite is linked PRIVATE to iot_store, so the build enforces it).
#pragma once

#include "core/error.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace iot::store::sqlite {

class Database {
public:
  // Opens or creates; a new file is created with `mode` (SQLite gives its -wal/-shm the same).
  [[nodiscard]] static Result<Database> open(const std::filesystem::path& path, int mode);
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more statements without results.
  [[nodiscard]] Status exec(std::string_view sql);
  [[nodiscard]] sqlite3* handle() const { return m_db; }
  [[nodiscard]] std::string last_error() const;
  [[nodiscard]] std::int64_t changes() const;
  [[nodiscard]] std::int64_t last_insert_rowid() const;

private:
  explicit Database(sqlite3* db) : m_db(db) {}
  sqlite3* m_db = nullptr;
};

class Statement {
public:
  [[nodiscard]] static Result<Statement> prepare(Database& db, std::string_view sql);
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // 1-based, as SQLite numbers parameters. Text is copied (SQLITE_TRANSIENT).
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, std::int64_t value);
  Statement& bind_null(int index);

  // true: a row is available; false: done. Errors name the statement's SQL.
  [[nodiscard]] Result<bool> step();
  // Steps to the end, expecting no rows.
  [[nodiscard]] Status run();
  void reset();

  [[nodiscard]] std::string text(int column) const;
  [[nodiscard]] std::int64_t integer(int column) const;
  [[nodiscard]] bool is_null(int column) const;

private:
  Statement(sqlite3_stmt* stmt, sqlite3* db) : m_stmt(stmt), m_db(db) {}
  sqlite3_stmt* m_stmt = nullptr;
  sqlite3* m_db = nullptr;
};

// BEGIN IMMEDIATE on construction (the write lock, waiting up to the busy timeout); ROLLBACK
// on destruction unless commit() succeeded.
class Transaction {
public:
  [[nodiscard]] static Result<Transaction> begin(Database& db);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  [[nodiscard]] Status commit();

private:
  explicit Transaction(Database* db) : m_db(db) {}
  Database* m_db = nullptr;
};

} // namespace iot::store::sqlite
