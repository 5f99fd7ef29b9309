// SPDX-License-Identifier: MIT
// Internal to store/: a thin RAII layer over the SQLite C API. Nothing outside store/ includes
// this header (SQLite is linked PRIVATE to iot_store, so the build enforces it).
#pragma once

#include "core/error.hpp"
#include "store/sql_bind.hpp"

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace iot::store::sqlite {

enum class Access {
  create,     // read-write; a missing file is created
  read_write, // read-write; the file must exist
  read_only,  // the file must exist; nothing is written to it or created beside it (see open)
};

class Database {
public:
  // create / read_write: the file is opened by us first, so a new one is created with `mode`
  // before SQLite touches it (SQLite gives its -wal and -shm the same mode).
  // read_only: nothing is written. While another process has the database open (its -wal
  // exists), SQLite reads through the -wal / -shm that process made, with its usual locking. When
  // none does, SQLite would create a -wal and -shm and leave them behind (a read-only connection
  // cannot checkpoint them away), or fail when the directory is not writable; so the file is read
  // on its own (SQLite's immutable mode) under the shared lock of SQLite's locking protocol
  // (taken within `busy`). That lock keeps a writer that opens and closes the database meanwhile
  // from checkpointing into the file on close; such a connection reads the file as it was when
  // opened (only an automatic checkpoint, after 1000 pages of writes, could still reach it).
  // ErrorKind::io when the file cannot be opened or is not a regular file (or the lock is not
  // had within `busy`); ErrorKind::interrupted on SIGINT / SIGTERM while waiting for it.
  [[nodiscard]] static Result<Database>
  open(const std::filesystem::path& path,
       Access access,
       int mode = 0600,
       std::chrono::milliseconds busy = std::chrono::seconds(10));
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
  friend class Statement;
  // Each SQL text is prepared once per connection and reused (parsing and planning were a tenth
  // of `serve`'s CPU); a statement in use when the same SQL is asked for again (a query run
  // inside another's loop) gets a fresh one of its own.
  struct Cached {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  static constexpr std::size_t k_cache_max = 256;

  Database(sqlite3* db, int lock_fd)
      : m_db(db), m_lock_fd(lock_fd),
        m_cache(std::make_unique<std::unordered_map<std::string, Cached>>()) {}
  void close();
  sqlite3* m_db = nullptr;
  int m_lock_fd = -1; // read_only on its own: the descriptor holding the shared lock
  std::unique_ptr<std::unordered_map<std::string, Cached>> m_cache; // stable across moves
};

// query / run / bind / rebind / run(): sql::StatementApi (store/sql_bind.hpp; text is copied). A
// parameter the statement does not have makes the next step() fail.
class Statement : public sql::StatementApi<Statement, Database> {
public:
  [[nodiscard]] static Result<Statement> prepare(Database& db, std::string_view sql);

  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // true: a row is available; false: done. Errors name the statement's SQL. In a loop:
  //   while (IOT_TRY(s.step())) { … s.text(0) … }
  [[nodiscard]] Result<bool> step();
  // Back to before the first step, bindings cleared.
  void reset();

  [[nodiscard]] std::string text(int column) const;
  [[nodiscard]] std::int64_t integer(int column) const;
  [[nodiscard]] bool is_null(int column) const;

private:
  Statement(sqlite3_stmt* stmt, sqlite3* db, bool* in_use = nullptr)
      : m_stmt(stmt), m_db(db), m_in_use(in_use) {}
  void release();

  template <class Sink, class T> friend void sql::bind_value(Sink&, int&, const T&);
  void bind_text(int index, std::string_view text);
  void bind_integer(int index, std::int64_t value);
  void bind_null(int index);
  void check_bind(int index, int rc);

  sqlite3_stmt* m_stmt = nullptr;
  sqlite3* m_db = nullptr;
  bool* m_in_use = nullptr; // borrowed from the connection's cache: given back, not finalized
  std::string m_bind_error; // the first failed bind, reported by the next step()
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
