// SPDX-License-Identifier: MIT
#include "store/pg.hpp"

#include <libpq-fe.h>

#include <array>
#include <cstdlib>
#include <utility>

namespace iot::store::pg {
namespace {

constexpr unsigned k_int8_oid = 20;

std::string ms(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + "ms";
}

// libpq's messages span lines ("…failed: Connection refused\n\tIs the server running…"): one
// line, without the trailing newline.
std::string trimmed(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\n' || c == '\t') {
      if (!out.empty() && out.back() != ' ') {
        out += ' ';
      }
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') {
    out.pop_back();
  }
  return out;
}

// The session settings every connection gets (again after a reconnect).
std::string session_settings(const Timeouts& t) {
  return "SET lock_timeout = '" + ms(t.lock) + "'; SET statement_timeout = '" + ms(t.statement) +
         "'; SET idle_in_transaction_session_timeout = '" +
         ms(std::max(t.statement * 2, std::chrono::milliseconds(60000))) +
         "'; SET client_min_messages = warning";
}

void drop_notice(void*, const char*) {} // NOTICEs are not the user's business

// A failed result as an Error: its SQLSTATE decides the kind.
Error result_error(pg_conn* conn,
                   const PGresult* result,
                   std::string_view location,
                   std::string_view sql) {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string message =
      trimmed(result && PQresultErrorMessage(result)[0] ? PQresultErrorMessage(result)
                                                        : PQerrorMessage(conn));
  ErrorKind kind = state ? kind_of_sqlstate(state) : ErrorKind::network;
  if (PQstatus(conn) == CONNECTION_BAD) {
    kind = ErrorKind::network;
    message = "the connection to the ledger server was lost (" + message +
              "): nothing of this operation was recorded; it is tried again on reconnect";
  }
  if (state && std::string_view(state) == "55P03") {
    message += ": another station or an operator holds what this step needs; it was not done, "
               "try again (if it persists, look for a stuck session in pg_stat_activity)";
  } else if (state && std::string_view(state) == "57014") {
    message += ": the ledger server did not finish in time; nothing of this step was recorded";
  }
  std::string text = "ledger " + std::string(location) + ": " + message;
  if (!sql.empty() && kind == ErrorKind::failure) {
    text += " (in: " + std::string(sql.substr(0, 160)) + ")";
  }
  return Error{kind, text};
}

} // namespace

ErrorKind kind_of_sqlstate(std::string_view sqlstate) {
  if (sqlstate.starts_with("08") || sqlstate.starts_with("57P0") || sqlstate == "57014" ||
      sqlstate == "25P03") {
    return ErrorKind::network;
  }
  if (sqlstate == "55P03" || sqlstate == "40001" || sqlstate == "40P01") {
    return ErrorKind::io;
  }
  if (sqlstate == "42501") { // insufficient_privilege: this role may not do that
    return ErrorKind::auth;
  }
  return ErrorKind::failure;
}

std::string dollar_parameters(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  char quote = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote) {
      quote = c == quote ? 0 : quote; // '' inside a literal closes and reopens it
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
      out += '$';
      continue;
    }
    out += c;
  }
  return out;
}

std::string redact_url(std::string_view url) {
  std::string out(url);
  const auto scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    const auto start = scheme_end + 3;
    const auto end = std::min(out.find_first_of("/?", start), out.size());
    const auto at = out.rfind('@', end);
    if (at != std::string::npos && at >= start) {
      const auto colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "***");
      }
    }
  }
  // password=… as a query parameter (URL) or a key=value connection string.
  for (std::size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
    const bool starts_key =
        pos == 0 || out[pos - 1] == '?' || out[pos - 1] == '&' || out[pos - 1] == ' ';
    pos += 9;
    if (!starts_key) {
      continue;
    }
    const auto end = std::min(out.find_first_of("& ", pos), out.size());
    out.replace(pos, end - pos, "***");
  }
  return out;
}

Result<Database> Database::connect(const std::string& url, const Timeouts& timeouts) {
  const std::string location = redact_url(url);
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(url.c_str(), &parse_error);
  if (!parsed) {
    std::string why = parse_error ? trimmed(parse_error) : "out of memory";
    PQfreemem(parse_error);
    return fail(ErrorKind::config,
                "ledger " + location + ": not a valid PostgreSQL URL (" + why +
                    "): write it as postgresql://USER@HOST[:PORT]/DATABASE[?sslmode=…]");
  }
  PQconninfoFree(parsed);
  // Ours first: the URL's own connect_timeout / application_name win over them.
  const auto connect_seconds =
      std::to_string(std::max<long long>(1, (timeouts.connect.count() + 999) / 1000));
  const std::array<const char*, 4> keys = {
      "connect_timeout", "application_name", "dbname", nullptr};
  const std::array<const char*, 4> values = {
      connect_seconds.c_str(), "iotfleet", url.c_str(), nullptr};
  pg_conn* conn = PQconnectdbParams(keys.data(), values.data(), 1);
  if (!conn) {
    return fail(ErrorKind::failure, "ledger " + location + ": out of memory");
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string why = trimmed(PQerrorMessage(conn));
    const bool refused_credentials =
        PQconnectionNeedsPassword(conn) || why.find("authentication failed") != std::string::npos;
    PQfinish(conn);
    if (refused_credentials) {
      return fail(ErrorKind::auth,
                  "ledger " + location + ": the server refused the credentials (" + why +
                      "): put the password in ~/.pgpass (0600) or PGPASSWORD, never in the URL");
    }
    // The server answered, but refuses this connection: not the network.
    if (why.find("database \"") != std::string::npos &&
        why.find("does not exist") != std::string::npos) {
      return fail(ErrorKind::config,
                  "ledger " + location + ": " + why +
                      ": create the database (createdb, as its admin role) or fix the URL");
    }
    if (why.find("FATAL:") != std::string::npos) {
      return fail(ErrorKind::auth,
                  "ledger " + location + ": the server refused the connection (" + why +
                      "): check the user in the URL, that the role exists and may log in, and "
                      "the server's pg_hba.conf");
    }
    return fail(ErrorKind::network,
                "ledger " + location + ": cannot reach the PostgreSQL server (" + why +
                    "): check the host, port and that the server is running");
  }
  PQsetNoticeProcessor(conn, drop_notice, nullptr);
  Database db(conn, location);
  db.m_settings = session_settings(timeouts);
  IOT_TRY(db.exec(db.m_settings));
  return db;
}

Database::Database(Database&& other) noexcept
    : m_conn(std::exchange(other.m_conn, nullptr)), m_location(std::move(other.m_location)),
      m_settings(std::move(other.m_settings)), m_changes(other.m_changes),
      m_in_transaction(other.m_in_transaction), m_prepared(std::move(other.m_prepared)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    if (m_conn) {
      PQfinish(m_conn);
    }
    m_conn = std::exchange(other.m_conn, nullptr);
    m_location = std::move(other.m_location);
    m_settings = std::move(other.m_settings);
    m_changes = other.m_changes;
    m_in_transaction = other.m_in_transaction;
    m_prepared = std::move(other.m_prepared);
  }
  return *this;
}

Database::~Database() {
  if (m_conn) {
    PQfinish(m_conn);
  }
}

Status Database::exec(std::string_view sql) {
  const std::string text(sql);
  PGresult* result = PQexec(m_conn, text.c_str());
  const auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    auto error = result_error(m_conn, result, m_location, sql);
    PQclear(result);
    return std::unexpected(std::move(error));
  }
  PQclear(result);
  return {};
}

Status Database::commit() {
  PGresult* result = PQexec(m_conn, "COMMIT");
  const auto status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && PQstatus(m_conn) == CONNECTION_BAD) {
    PQclear(result);
    return fail(ErrorKind::network,
                "ledger " + m_location +
                    ": the connection was lost while committing: the server may or may not have "
                    "recorded this step (it is in doubt until the ledger is read again)");
  }
  if (status != PGRES_COMMAND_OK) {
    auto error = result_error(m_conn, result, m_location, "COMMIT");
    PQclear(result);
    return std::unexpected(std::move(error));
  }
  const std::string tag = PQcmdStatus(result); // a copy: PQclear frees it
  PQclear(result);
  if (tag != "COMMIT") {
    return fail(ErrorKind::failure,
                "ledger " + m_location + ": the server rolled the transaction back (" +
                    std::string(tag) + "): nothing of it was recorded");
  }
  return {};
}

Status Database::reconnect_if_lost() {
  if (PQstatus(m_conn) == CONNECTION_OK) {
    return {};
  }
  PQreset(m_conn);
  m_prepared.clear(); // they went with the old connection
  if (PQstatus(m_conn) != CONNECTION_OK) {
    return fail(ErrorKind::network,
                "ledger " + m_location + ": the ledger server is unreachable (" +
                    trimmed(PQerrorMessage(m_conn)) + "): nothing was changed");
  }
  return exec(m_settings);
}

Result<std::optional<std::string>> Database::prepared(const std::string& sql,
                                                      const std::vector<unsigned>& types) {
  constexpr std::size_t k_max_prepared = 256; // the ledger has a few dozen statements
  if (const auto it = m_prepared.find(sql); it != m_prepared.end()) {
    return it->second;
  }
  if (m_prepared.size() >= k_max_prepared) {
    return std::nullopt;
  }
  std::string name = "iotfleet_" + std::to_string(m_prepared.size() + 1);
  PGresult* result =
      PQprepare(m_conn, name.c_str(), sql.c_str(), static_cast<int>(types.size()), types.data());
  if (!result || PQresultStatus(result) != PGRES_COMMAND_OK) {
    auto error = result_error(m_conn, result, m_location, sql);
    PQclear(result);
    return std::unexpected(std::move(error));
  }
  PQclear(result);
  m_prepared.emplace(sql, name);
  return name;
}

std::string Database::last_error() const {
  return m_conn ? trimmed(PQerrorMessage(m_conn)) : "not connected";
}

Result<Statement> Statement::prepare(Database& db, std::string_view sql) {
  return Statement(&db, dollar_parameters(sql));
}

Statement::Statement(Statement&& other) noexcept
    : m_db(other.m_db), m_sql(std::move(other.m_sql)), m_values(std::move(other.m_values)),
      m_types(std::move(other.m_types)), m_result(std::exchange(other.m_result, nullptr)),
      m_row(other.m_row), m_rows(other.m_rows) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    clear_result();
    m_db = other.m_db;
    m_sql = std::move(other.m_sql);
    m_values = std::move(other.m_values);
    m_types = std::move(other.m_types);
    m_result = std::exchange(other.m_result, nullptr);
    m_row = other.m_row;
    m_rows = other.m_rows;
  }
  return *this;
}

Statement::~Statement() {
  clear_result();
}

void Statement::clear_result() {
  if (m_result) {
    PQclear(m_result);
    m_result = nullptr;
  }
  m_row = -1;
  m_rows = 0;
}

void Statement::slot(int index) {
  if (static_cast<std::size_t>(index) > m_values.size()) {
    m_values.resize(static_cast<std::size_t>(index));
    m_types.resize(static_cast<std::size_t>(index), 0);
  }
}

void Statement::bind_text(int index, std::string_view text) {
  slot(index);
  m_values[static_cast<std::size_t>(index - 1)] = std::string(text);
  m_types[static_cast<std::size_t>(index - 1)] = 0;
}

void Statement::bind_integer(int index, std::int64_t value) {
  slot(index);
  m_values[static_cast<std::size_t>(index - 1)] = std::to_string(value);
  m_types[static_cast<std::size_t>(index - 1)] = k_int8_oid;
}

void Statement::bind_null(int index) {
  slot(index);
  m_values[static_cast<std::size_t>(index - 1)].reset();
  m_types[static_cast<std::size_t>(index - 1)] = 0;
}

Result<bool> Statement::step() {
  if (!m_result) {
    // Outside a transaction a statement only reads (every change runs in one), so when the
    // server dropped the connection since its last use, it is safe to connect and send it again.
    const bool may_retry = !m_db->in_transaction();
    if (may_retry) {
      IOT_TRY(m_db->reconnect_if_lost());
    }
    execute();
    if (!m_result && may_retry && PQstatus(m_db->handle()) == CONNECTION_BAD) {
      IOT_TRY(m_db->reconnect_if_lost());
      execute();
    }
    if (!m_result) {
      return std::unexpected(m_error);
    }
  }
  if (m_row + 1 < m_rows) {
    ++m_row;
    return true;
  }
  m_row = m_rows;
  return false;
}

void Statement::execute() {
  std::vector<const char*> values;
  values.reserve(m_values.size());
  for (const auto& v : m_values) {
    values.push_back(v ? v->c_str() : nullptr);
  }
  auto name = m_db->prepared(m_sql, m_types);
  if (!name) {
    m_error = std::move(name.error());
    clear_result();
    return;
  }
  m_result = *name ? PQexecPrepared(m_db->handle(),
                                    (*name)->c_str(),
                                    static_cast<int>(values.size()),
                                    values.data(),
                                    nullptr,
                                    nullptr,
                                    0)
                   : PQexecParams(m_db->handle(),
                                  m_sql.c_str(),
                                  static_cast<int>(values.size()),
                                  m_types.data(),
                                  values.data(),
                                  nullptr,
                                  nullptr,
                                  0);
  const auto status = m_result ? PQresultStatus(m_result) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    m_error = result_error(m_db->handle(), m_result, m_db->location(), m_sql);
    clear_result(); // m_result stays empty: step() decides whether to try again
    return;
  }
  const char* changed = PQcmdTuples(m_result);
  m_db->set_changes(changed && *changed ? std::strtoll(changed, nullptr, 10) : 0);
  m_rows = PQntuples(m_result);
  m_row = -1;
}

void Statement::reset() {
  clear_result();
  m_values.clear();
  m_types.clear();
}

std::string Statement::text(int column) const {
  if (!m_result || m_row < 0 || m_row >= m_rows || PQgetisnull(m_result, m_row, column)) {
    return {};
  }
  return std::string(PQgetvalue(m_result, m_row, column),
                     static_cast<std::size_t>(PQgetlength(m_result, m_row, column)));
}

std::int64_t Statement::integer(int column) const {
  if (!m_result || m_row < 0 || m_row >= m_rows || PQgetisnull(m_result, m_row, column)) {
    return 0;
  }
  const char* value = PQgetvalue(m_result, m_row, column);
  if (value[0] == 't' || value[0] == 'f') { // boolean
    return value[0] == 't' ? 1 : 0;
  }
  return std::strtoll(value, nullptr, 10);
}

bool Statement::is_null(int column) const {
  return !m_result || m_row < 0 || m_row >= m_rows || PQgetisnull(m_result, m_row, column);
}

Result<Transaction> Transaction::begin(Database& db) {
  IOT_TRY(db.reconnect_if_lost());
  if (auto begun = db.exec("BEGIN"); !begun) {
    // A connection the server dropped since the last use (a restart) shows only now; nothing
    // was done in it yet, so it is safe to connect again and begin once more.
    if (PQstatus(db.handle()) == CONNECTION_OK) {
      return std::unexpected(begun.error());
    }
    IOT_TRY(db.reconnect_if_lost());
    IOT_TRY(db.exec("BEGIN"));
  }
  db.set_in_transaction(true);
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : m_db(std::exchange(other.m_db, nullptr)) {}

Transaction::~Transaction() {
  if (m_db) {
    if (PQstatus(m_db->handle()) == CONNECTION_OK) {
      (void)m_db->exec("ROLLBACK");
    }
    m_db->set_in_transaction(false);
  }
}

Status Transaction::commit() {
  auto committed = m_db->commit();
  m_db->set_in_transaction(false);
  m_db = nullptr;
  return committed;
}

} // namespace iot::store::pg
