// SPDX-License-Identifier: MIT
// Internal to store/: a thin RAII layer over libpq with the same shape as store/sqlite.hpp
// (Database, Statement, Transaction), so the ledger's logic is written once for both. Nothing
// outside store/ includes this header (libpq is linked PRIVATE to iot_store).
//
// SQL is written in SQLite's form: parameters ?1, ?2, … become $1, $2, … (outside quoted
// literals). Integers are sent as int8, text with its type left to the server to infer.
#pragma once

#include "core/error.hpp"
#include "store/sql_bind.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct pg_conn;
struct pg_result;

namespace iot::store::pg {

struct Timeouts {
  std::chrono::milliseconds connect{10000};   // to reach the server
  std::chrono::milliseconds lock{10000};      // a row or table another station holds
  std::chrono::milliseconds statement{30000}; // any one statement: a stuck server
};

// The ErrorKind of a failure, from its SQLSTATE: connection classes (08, 57P0x) and a
// statement cancelled by statement_timeout (57014) are ErrorKind::network (the ledger server
// is unreachable or stuck); a lock not had within lock_timeout (55P03) is ErrorKind::io, as a
// busy SQLite file is; anything else ErrorKind::failure.
[[nodiscard]] ErrorKind kind_of_sqlstate(std::string_view sqlstate);

// "?1 … ?12" -> "$1 … $12", leaving quoted literals and identifiers alone.
[[nodiscard]] std::string dollar_parameters(std::string_view sql);

// A connection string (URL) with any password replaced by "***", for messages and logs.
[[nodiscard]] std::string redact_url(std::string_view url);

class Database {
public:
  // Connects with libpq (the URL, libpq's PG* environment, ~/.pgpass, sslmode …) and sets the
  // session's lock_timeout, statement_timeout and idle-in-transaction timeout.
  // ErrorKind::network when the server cannot be reached; ErrorKind::auth when it refuses the
  // credentials; ErrorKind::config for a malformed URL.
  [[nodiscard]] static Result<Database> connect(const std::string& url, const Timeouts& timeouts);
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more statements without parameters or results.
  [[nodiscard]] Status exec(std::string_view sql);
  // COMMIT, and an error when the server rolled the transaction back instead (PostgreSQL
  // answers a COMMIT of a failed transaction with ROLLBACK, not with an error).
  [[nodiscard]] Status commit();
  // A connection the server dropped (restart, network) is opened again; nothing else is done
  // about it: the transaction it was in is gone, and the caller's operation fails.
  [[nodiscard]] Status reconnect_if_lost();
  [[nodiscard]] pg_conn* handle() const { return m_conn; }
  [[nodiscard]] std::string last_error() const;
  // Rows changed by the last statement run through a Statement of this connection.
  [[nodiscard]] std::int64_t changes() const { return m_changes; }
  void set_changes(std::int64_t n) { m_changes = n; }
  [[nodiscard]] const std::string& location() const { return m_location; }
  // Set by Transaction: a connection lost inside a transaction is not opened again until the
  // transaction is over (the rest of it must not run on its own).
  void set_in_transaction(bool in) { m_in_transaction = in; }
  [[nodiscard]] bool in_transaction() const { return m_in_transaction; }
  // The name of `sql` prepared on this connection (prepared now, with these parameter types,
  // the first time it is asked for), so the server parses and plans each of the ledger's
  // statements once per connection; nullopt once the cache is full (the caller sends the
  // statement unnamed). An error when the server refuses to prepare it.
  [[nodiscard]] Result<std::optional<std::string>> prepared(const std::string& sql,
                                                            const std::vector<unsigned>& types);

private:
  Database(pg_conn* conn, std::string location) : m_conn(conn), m_location(std::move(location)) {}
  pg_conn* m_conn = nullptr;
  std::string m_location; // redacted
  std::string m_settings; // the session's SETs, run again after a reconnect
  std::int64_t m_changes = 0;
  bool m_in_transaction = false;
  std::unordered_map<std::string, std::string> m_prepared; // SQL -> its name; reset on reconnect
};

// query / run / bind / rebind / run(): sql::StatementApi (store/sql_bind.hpp).
class Statement : public sql::StatementApi<Statement, Database> {
public:
  [[nodiscard]] static Result<Statement> prepare(Database& db, std::string_view sql);

  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // The first step sends the statement and receives all its rows; then one row per step. Outside
  // a transaction, a connection the server dropped is opened again first.
  [[nodiscard]] Result<bool> step();
  void reset();

  [[nodiscard]] std::string text(int column) const;
  [[nodiscard]] std::int64_t integer(int column) const;
  [[nodiscard]] bool is_null(int column) const;

private:
  Statement(Database* db, std::string sql) : m_db(db), m_sql(std::move(sql)) {}
  template <class Sink, class T> friend void sql::bind_value(Sink&, int&, const T&);
  void bind_text(int index, std::string_view text);
  void bind_integer(int index, std::int64_t value);
  void bind_null(int index);
  void slot(int index);
  void clear_result();
  // Sends the statement: m_result holds the rows, or is empty with m_error set.
  void execute();

  Database* m_db = nullptr;
  std::string m_sql; // with $N parameters
  std::vector<std::optional<std::string>> m_values;
  std::vector<unsigned> m_types; // Oid: 0 (inferred) or int8
  pg_result* m_result = nullptr;
  Error m_error;
  int m_row = -1;
  int m_rows = 0;
};

// BEGIN on construction; ROLLBACK on destruction unless commit() succeeded.
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

} // namespace iot::store::pg
