// SPDX-License-Identifier: MIT
// The SQLite ledger. Every public method takes the object's mutex and runs as one transaction
// (BEGIN IMMEDIATE: the write lock up front, so two processes never both decide on the same row).
// A ledger opened with OpenMode::read is a read-only connection (sqlite::Database::open) that is
// neither migrated nor switched to WAL: every change on it fails before touching SQLite.
#include "store/ledger.hpp"

#include "core/text.hpp"
#include "store/pg.hpp"
#include "store/sqlite.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <utility>

namespace iot::store {
namespace {

// The schema, written once for both databases. Migration i takes it from version i to i + 1:
// its tables in SQLite's SQL (pg_sql() makes PostgreSQL's from it: BIGINT, identity keys) and
// its guards, the rules no statement may break (a trigger on each database). Append, never edit.
struct Guard {
  std::string_view name;
  std::string_view table;
  std::string_view event; // "UPDATE", "DELETE" or "UPDATE OF column", before which it refuses
  std::string_view when;  // a condition on OLD / NEW ("": always)
  std::string_view message;
};

struct Migration {
  std::string_view tables;
  std::span<const Guard> guards;
  std::string_view pg_only = {}; // rules only PostgreSQL can state (roles); SQLite has none
};

// The triplet bound to an IMEI. The second term repeats the partial index's condition
// (triplets_imei ... WHERE imei <> ''): without it neither SQLite nor PostgreSQL's generic plan
// can use the index for a parameter, and every claim and first fetch scanned the whole pool.
constexpr char k_by_imei[] = "WHERE imei = ?1 AND imei <> ''";

// The audit trail is append-only.
constexpr Guard k_guards_1[] = {
    {"events_append_only_update", "events", "UPDATE", "", "the audit trail is append-only"},
    {"events_append_only_delete", "events", "DELETE", "", "the audit trail is append-only"},
};
constexpr std::string_view k_tables_1 = R"sql(
CREATE TABLE triplets (
  id          INTEGER PRIMARY KEY,
  product_key TEXT NOT NULL,
  device_name TEXT NOT NULL,
  secret      TEXT NOT NULL,
  scheme      TEXT NOT NULL CHECK (scheme IN ('device', 'product')),
  state       TEXT NOT NULL CHECK (state IN ('available', 'claimed', 'bound', 'burned')),
  imei        TEXT NOT NULL DEFAULT '',
  iccid       TEXT NOT NULL DEFAULT '',
  station     TEXT NOT NULL DEFAULT '',
  port        TEXT NOT NULL DEFAULT '',
  owner_pid   INTEGER NOT NULL DEFAULT 0,
  attempts    INTEGER NOT NULL DEFAULT 0,
  source      TEXT NOT NULL DEFAULT '',
  imported_at INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  burned_at   INTEGER NOT NULL DEFAULT 0,
  UNIQUE (product_key, device_name),
  CHECK ((state = 'available') = (imei = ''))
);
-- One module holds one identity, and one identity is in at most one module.
CREATE UNIQUE INDEX triplets_imei ON triplets (imei) WHERE imei <> '';
CREATE INDEX triplets_state ON triplets (state, id);
CREATE INDEX triplets_device_name ON triplets (device_name);
CREATE TABLE events (
  id          INTEGER PRIMARY KEY,
  time_ms     INTEGER NOT NULL,
  station     TEXT NOT NULL DEFAULT '',
  port        TEXT NOT NULL DEFAULT '',
  imei        TEXT NOT NULL DEFAULT '',
  product_key TEXT NOT NULL DEFAULT '',
  device_name TEXT NOT NULL DEFAULT '',
  action      TEXT NOT NULL,
  outcome     TEXT NOT NULL DEFAULT '',
  detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_device_name ON events (device_name);
)sql";

// A secret the cloud issued is never forgotten: rows change status, they are never deleted.
constexpr Guard k_guards_2[] = {
    {"registrations_keep", "registrations", "DELETE", "", "registrations are kept"},
    {"registrations_keep_secret",
     "registrations",
     "UPDATE OF secret",
     "OLD.secret <> ''",
     "an issued secret is never changed"},
};
constexpr std::string_view k_tables_2 = R"sql(
CREATE TABLE registrations (
  id           INTEGER PRIMARY KEY,
  product_key  TEXT NOT NULL,
  device_name  TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('pending', 'issued', 'superseded', 'failed')),
  secret       TEXT NOT NULL DEFAULT '',
  requested_at INTEGER NOT NULL,
  answered_at  INTEGER NOT NULL DEFAULT 0,
  station      TEXT NOT NULL DEFAULT '',
  pid          INTEGER NOT NULL DEFAULT 0,
  detail       TEXT NOT NULL DEFAULT '',
  CHECK (status <> 'issued' OR secret <> '')
);
CREATE INDEX registrations_device ON registrations (product_key, device_name, id);
)sql";

// A recreation's journal is kept, and so is the secret it issued.
constexpr Guard k_guards_3[] = {
    {"recreations_keep", "recreations", "DELETE", "", "recreations are kept"},
    {"recreations_keep_secret",
     "recreations",
     "UPDATE OF new_secret",
     "OLD.new_secret <> '' AND NEW.new_secret <> OLD.new_secret",
     "an issued secret is never changed"},
};
constexpr std::string_view k_tables_3 = R"sql(
CREATE TABLE recreations (
  id          INTEGER PRIMARY KEY,
  product_key TEXT NOT NULL,
  device_name TEXT NOT NULL,
  step        TEXT NOT NULL CHECK (step IN ('planned', 'deleted', 'registered', 'restored')),
  old_iot_id  TEXT NOT NULL DEFAULT '',
  new_iot_id  TEXT NOT NULL DEFAULT '',
  metadata    TEXT NOT NULL DEFAULT '{}',
  old_secret  TEXT NOT NULL DEFAULT '',
  new_secret  TEXT NOT NULL DEFAULT '',
  to_pool     INTEGER NOT NULL DEFAULT 1,
  scheme      TEXT NOT NULL DEFAULT 'device' CHECK (scheme IN ('device', 'product')),
  started_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  station     TEXT NOT NULL DEFAULT '',
  pid         INTEGER NOT NULL DEFAULT 0,
  detail      TEXT NOT NULL DEFAULT '',
  CHECK (step IN ('planned', 'deleted') OR new_secret <> '')
);
CREATE INDEX recreations_device ON recreations (product_key, device_name, id);
-- At most one unfinished recreation per device.
CREATE UNIQUE INDEX recreations_open ON recreations (product_key, device_name)
  WHERE step <> 'restored';
)sql";

// A triplet that may be in a module (bound) or is (burned) goes back to the pool only by the
// ledger's admin role, the owner of its tables (`pool release`, `devices recreate`): a station's
// role can claim, bind, burn and return a claim it never wrote, nothing more. Superusers are
// members of every role. On SQLite, a file with no roles, this version changes nothing.
constexpr std::string_view k_pg_4 = R"sql(
CREATE FUNCTION ledger_admin_only() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID),
                     'MEMBER') THEN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$f$;
CREATE TRIGGER triplets_release_admin BEFORE UPDATE OF state ON triplets FOR EACH ROW
  WHEN (OLD.state IN ('bound', 'burned') AND NEW.state = 'available')
  EXECUTE FUNCTION ledger_admin_only('returning a bound or burned triplet to the pool needs the '
    'ledger''s admin role (the owner of its tables): ask the ledger''s administrator');
)sql";

// `serve --status-refresh`: the last cloud status check of each product, shared by every server
// on the ledger, so N instances make one check a period, not N (docs/serve.md). A server whose
// copy is older than its period claims the next check with a conditional UPDATE of lease_until
// (one wins: the check is in progress until then); the others read its result. disabled holds
// the DeviceNames found DISABLE, one per line: rewritten whole by each check, so a station role
// needs no DELETE anywhere.
constexpr std::string_view k_tables_5 = R"sql(
CREATE TABLE status_checks (
  product_key TEXT NOT NULL PRIMARY KEY,
  holder      TEXT NOT NULL DEFAULT '',
  lease_until INTEGER NOT NULL DEFAULT 0,
  checked_at  INTEGER NOT NULL DEFAULT 0,
  checked     INTEGER NOT NULL DEFAULT 0,
  missing     INTEGER NOT NULL DEFAULT 0,
  disabled    TEXT NOT NULL DEFAULT ''
);
)sql";

// The station roles (scripts/ledger-roles.sql: those that may change triplets) may claim and
// record checks too, so a ledger migrated after its roles were granted needs no second run.
constexpr std::string_view k_pg_5 = R"sql(
DO $d$
DECLARE
  r TEXT;
BEGIN
  FOR r IN SELECT DISTINCT a.grantee::regrole::text FROM pg_class c, aclexplode(c.relacl) a
           WHERE c.oid = 'triplets'::regclass AND a.privilege_type = 'UPDATE'
             AND a.grantee <> c.relowner AND a.grantee <> 0 LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON status_checks TO %s', r);
  END LOOP;
END
$d$;
)sql";

constexpr std::array<Migration, 5> k_migrations = {{
    {k_tables_1, k_guards_1},
    {k_tables_2, k_guards_2},
    {k_tables_3, k_guards_3},
    {{}, {}, k_pg_4},
    {k_tables_5, {}, k_pg_5},
}};

std::string replaced(std::string text, std::string_view from, std::string_view to) {
  for (auto pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

// Migration v in SQLite's SQL: its tables, and a RAISE(ABORT) trigger per guard.
std::string sqlite_sql(const Migration& m) {
  std::string sql(m.tables);
  for (const auto& g : m.guards) {
    sql += "CREATE TRIGGER " + std::string(g.name) + " BEFORE " + std::string(g.event) + " ON " +
           std::string(g.table) + "\n" +
           (g.when.empty() ? "" : "  WHEN " + std::string(g.when) + "\n") +
           "  BEGIN SELECT RAISE(ABORT, '" + std::string(g.message) + "'); END;\n";
  }
  return sql;
}

// PostgreSQL's ledger keeps its version in a table, and its guards call one function.
constexpr std::string_view k_pg_preamble = R"sql(
CREATE TABLE ledger_schema (version INTEGER NOT NULL);
INSERT INTO ledger_schema VALUES (0);
CREATE FUNCTION ledger_refuse() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END
$f$;
)sql";

// Migration v in PostgreSQL's SQL: 64-bit integers (times are milliseconds), identity keys, a
// row trigger per guard and, for a table whose rows are kept, a TRUNCATE trigger too.
std::string pg_sql(const Migration& m) {
  std::string sql = replaced(std::string(m.tables), "INTEGER PRIMARY KEY", "\x01");
  sql = replaced(std::move(sql), "INTEGER", "BIGINT");
  sql = replaced(std::move(sql), "\x01", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY");
  for (const auto& g : m.guards) {
    const std::string refuse =
        " EXECUTE FUNCTION ledger_refuse('" + std::string(g.message) + "');\n";
    sql += "CREATE TRIGGER " + std::string(g.name) + " BEFORE " + std::string(g.event) + " ON " +
           std::string(g.table) + " FOR EACH ROW" +
           (g.when.empty() ? "" : " WHEN (" + std::string(g.when) + ")") + refuse;
    if (g.event == "DELETE") {
      sql += "CREATE TRIGGER " + std::string(g.name) + "_truncate BEFORE TRUNCATE ON " +
             std::string(g.table) + " FOR EACH STATEMENT" + refuse;
    }
  }
  return sql + std::string(m.pg_only);
}

// What differs between the two databases above the connection layer.
struct SqliteSql {
  using Database = sqlite::Database;
  using Statement = sqlite::Statement;
  using Transaction = sqlite::Transaction;
  // BEGIN IMMEDIATE already holds the one write lock: rows need no locking of their own.
  static constexpr std::string_view for_update = "";
  static constexpr std::string_view skip_locked = "";
};

struct PgSql {
  using Database = pg::Database;
  using Statement = pg::Statement;
  using Transaction = pg::Transaction;
  // Many stations write at once: a row read to be changed is locked, and a claim takes the
  // first available triplet no other claim holds, without waiting for it.
  static constexpr std::string_view for_update = " FOR UPDATE";
  static constexpr std::string_view skip_locked = " FOR UPDATE SKIP LOCKED";
};

constexpr std::string_view k_columns =
    "product_key, device_name, secret, scheme, state, imei, iccid, station, port, owner_pid, "
    "attempts, source, imported_at, updated_at, burned_at";

// The names the ledger stores and prints, one table per enum.
template <class E> using Name = std::pair<E, std::string_view>;
constexpr Name<TripletState> k_triplet_states[] = {{TripletState::available, "available"},
                                                   {TripletState::claimed, "claimed"},
                                                   {TripletState::bound, "bound"},
                                                   {TripletState::burned, "burned"}};
constexpr Name<RegistrationStatus> k_registration_statuses[] = {
    {RegistrationStatus::pending, "pending"},
    {RegistrationStatus::issued, "issued"},
    {RegistrationStatus::superseded, "superseded"},
    {RegistrationStatus::failed, "failed"}};
constexpr Name<RecreateStep> k_recreate_steps[] = {{RecreateStep::planned, "planned"},
                                                   {RecreateStep::deleted, "deleted"},
                                                   {RecreateStep::registered, "registered"},
                                                   {RecreateStep::restored, "restored"}};
constexpr Name<IssueOutcome> k_issue_outcomes[] = {{IssueOutcome::issued, "issued"},
                                                   {IssueOutcome::again, "again"},
                                                   {IssueOutcome::unknown, "unknown"},
                                                   {IssueOutcome::not_device, "not-device"},
                                                   {IssueOutcome::clone, "clone"},
                                                   {IssueOutcome::module_taken, "module-taken"}};
constexpr Name<ClaimKind> k_claim_kinds[] = {
    {ClaimKind::fresh, "fresh"}, {ClaimKind::resumed, "resumed"}, {ClaimKind::burned, "burned"}};

template <class E, std::size_t N> std::string_view name_of(const Name<E> (&names)[N], E value) {
  for (const auto& [v, name] : names) {
    if (v == value) {
      return name;
    }
  }
  return "?";
}

template <class E, std::size_t N>
std::optional<E> value_named(const Name<E> (&names)[N], std::string_view text) {
  for (const auto& [v, name] : names) {
    if (name == text) {
      return v;
    }
  }
  return std::nullopt;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <class Statement> TripletRecord read_record(const Statement& s) {
  TripletRecord r;
  r.product_key = s.text(0);
  r.device_name = s.text(1);
  r.secret = s.text(2);
  r.scheme = s.text(3) == "product" ? core::Scheme::product : core::Scheme::device;
  r.state = parse_triplet_state(s.text(4)).value_or(TripletState::available);
  r.imei = s.text(5);
  r.iccid = s.text(6);
  r.station = s.text(7);
  r.port = s.text(8);
  r.owner_pid = s.integer(9);
  r.attempts = static_cast<int>(s.integer(10));
  r.source = s.text(11);
  r.imported_at_ms = s.integer(12);
  r.updated_at_ms = s.integer(13);
  r.burned_at_ms = s.integer(14);
  return r;
}

std::string describe(const TripletRecord& r) {
  return r.product_key + "/" + r.device_name + " (" + std::string(to_string(r.state)) +
         (r.imei.empty() ? "" : ", IMEI " + r.imei) +
         (r.port.empty() ? "" : ", " + r.station + " " + r.port) + ")";
}

Result<RegistrationStatus> parse_registration_status(std::string_view text) {
  if (auto status = value_named(k_registration_statuses, text)) {
    return *status;
  }
  return fail(ErrorKind::io, "ledger: unknown registration status '" + std::string(text) + "'");
}

} // namespace

Result<RecreateStep> parse_recreate_step(std::string_view text) {
  if (auto step = value_named(k_recreate_steps, text)) {
    return *step;
  }
  return fail(ErrorKind::io, "ledger: unknown recreation step '" + std::string(text) + "'");
}

namespace {

// The ledger on either database (B: SqliteSql or PgSql).
template <class B> class SqlLedger final : public Ledger {
  using Database = typename B::Database;
  using Statement = typename B::Statement;
  using Transaction = typename B::Transaction;

public:
  SqlLedger(Database db, std::string location, bool read_only, int schema)
      : m_location(std::move(location)), m_read_only(read_only), m_schema(schema),
        m_db(std::move(db)) {}

  Result<ImportSummary> import(std::span<const core::TripletRow> rows,
                               std::string_view source,
                               const Actor& actor,
                               bool skip_conflicts) override {
    IOT_TRY(writable());
    std::lock_guard lock(m_mutex);
    auto tx = IOT_TRY(Transaction::begin(m_db));
    auto find = IOT_TRY(Statement::prepare(
        m_db, "SELECT secret, scheme FROM triplets WHERE product_key = ?1 AND device_name = ?2"));
    // Inserted unless the DeviceName is there already: on PostgreSQL another station importing
    // the same file at the same moment waits here for it, and then finds its rows.
    auto insert = IOT_TRY(Statement::prepare(
        m_db,
        "INSERT INTO triplets (product_key, device_name, secret, scheme, state, source, "
        "imported_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'available', ?5, ?6, ?6) ON CONFLICT "
        "(product_key, device_name) DO NOTHING"));
    ImportSummary summary;
    const auto time = now_ms();
    for (const auto& row : rows) {
      const auto scheme = to_string(row.scheme);
      IOT_TRY(
          insert.rebind(row.product_key, row.device_name, row.secret, scheme, source, time).run());
      if (m_db.changes() == 1) {
        ++summary.added;
        continue;
      }
      if (IOT_TRY(find.rebind(row.product_key, row.device_name).step())) {
        if (find.text(0) == row.secret && find.text(1) == scheme) {
          ++summary.unchanged;
        } else {
          summary.conflicts.push_back(
              {row.line,
               "DeviceName " + row.device_name + " of ProductKey " + row.product_key +
                   " is already in the ledger with a different " +
                   (find.text(1) == scheme
                        ? std::string(row.scheme == core::Scheme::device ? "DeviceSecret"
                                                                         : "ProductSecret")
                        : std::string("scheme")) +
                   "; a DeviceName can have only one secret: fix the file or release and "
                   "re-register the device"});
        }
      }
    }
    if (!summary.conflicts.empty() && !skip_conflicts) {
      return summary; // the transaction rolls back: nothing imported
    }
    Event event{time,
                actor.station,
                actor.port,
                "",
                rows.empty() ? "" : rows.front().product_key,
                "",
                "import",
                "ok",
                std::string(source) + ": " + std::to_string(summary.added) + " added, " +
                    std::to_string(summary.unchanged) + " already present, " +
                    std::to_string(summary.conflicts.size()) + " conflicts skipped"};
    IOT_TRY(append_event(event));
    IOT_TRY(tx.commit());
    summary.committed = true;
    return summary;
  }

  Result<std::optional<Claim>> claim(const ClaimRequest& request) override {
    if (request.imei.empty()) {
      return fail(ErrorKind::failure, "claim: the module's IMEI is empty");
    }
    IOT_TRY(writable());
    if (request.dry_run) {
      std::lock_guard lock(m_mutex);
      auto tx = IOT_TRY(Transaction::begin(m_db));
      return claim_locked(request); // the transaction rolls back
    }
    std::optional<Claim> claimed;
    IOT_TRY(write([&]() -> Status {
      claimed = IOT_TRY(claim_locked(request));
      return {};
    }));
    return claimed;
  }

  Result<Issue> issue_secret(const IssueRequest& request) override {
    if (request.imei.empty()) {
      return fail(ErrorKind::failure, "issue_secret: the module's IMEI is empty");
    }
    Issue issue;
    IOT_TRY(write([&]() -> Status {
      issue = IOT_TRY(issue_locked(request));
      return {};
    }));
    return issue;
  }

  Status mark_attempted(const TripletKey& key, const Actor& actor) override {
    return transition(key,
                      actor,
                      {TripletState::claimed, TripletState::bound},
                      "SET state = 'bound', attempts = attempts + 1",
                      "attempt",
                      "write attempted");
  }

  Status mark_burned(const TripletKey& key, const Actor& actor, std::string_view detail) override {
    return transition(key,
                      actor,
                      {TripletState::bound},
                      "SET state = 'burned', burned_at = ?3",
                      "burned",
                      detail);
  }

  Status unclaim(const TripletKey& key, const Actor& actor, std::string_view reason) override {
    return transition(key,
                      actor,
                      {TripletState::claimed},
                      "SET state = 'available', imei = '', iccid = '', station = '', port = '', "
                      "owner_pid = 0",
                      "unclaim",
                      reason);
  }

  Result<TripletRecord>
  release(const TripletKey& key, const Actor& actor, std::string_view reason, bool force) override {
    std::vector<TripletState> from = {TripletState::claimed, TripletState::bound};
    if (force) {
      from.push_back(TripletState::burned);
    }
    TripletRecord before;
    IOT_TRY(transition(key,
                       actor,
                       from,
                       "SET state = 'available', imei = '', iccid = '', station = '', "
                       "port = '', owner_pid = 0, burned_at = 0",
                       "release",
                       reason,
                       &before));
    return before;
  }

  Result<std::size_t>
  expire_claims(const Actor& actor,
                const std::function<bool(std::int64_t pid)>& is_alive) override {
    std::vector<TripletRecord> stale;
    IOT_TRY(write([&]() -> Status { return expire_locked(actor, is_alive, stale); }));
    return stale.size();
  }

  Result<std::vector<TripletRecord>> find(std::string_view device_name,
                                          const std::optional<std::string>& product_key) override {
    std::lock_guard lock(m_mutex);
    std::vector<TripletRecord> found;
    std::vector<std::string> args{std::string(device_name)};
    if (product_key) {
      args.push_back(*product_key);
    }
    IOT_TRY(for_each_locked(product_key ? "WHERE device_name = ?1 AND product_key = ?2"
                                        : "WHERE device_name = ?1",
                            args,
                            [&](const TripletRecord& r) -> Status {
                              found.push_back(r);
                              return {};
                            }));
    return found;
  }

  Result<std::optional<TripletRecord>> find_by_imei(std::string_view imei) override {
    std::lock_guard lock(m_mutex);
    return select_one(k_by_imei, {std::string(imei)});
  }

  Result<std::vector<StateCount>> counts() override {
    std::lock_guard lock(m_mutex);
    auto s = IOT_TRY(Statement::query(m_db,
                                      "SELECT product_key, station, state, count(*) FROM triplets "
                                      "GROUP BY product_key, station, state ORDER BY 1, 2, 3"));
    std::vector<StateCount> out;
    while (IOT_TRY(s.step())) {
      out.push_back({s.text(0),
                     s.text(1),
                     parse_triplet_state(s.text(2)).value_or(TripletState::available),
                     s.integer(3)});
    }
    return out;
  }

  Status for_each(const RecordFilter& filter,
                  const std::function<Status(const TripletRecord&)>& callback) override {
    std::string where = "WHERE 1 = 1";
    std::vector<std::string> args;
    if (!filter.states.empty()) {
      where += " AND state IN (";
      for (std::size_t i = 0; i < filter.states.size(); ++i) {
        args.emplace_back(to_string(filter.states[i]));
        where += (i ? ", ?" : "?") + std::to_string(args.size());
      }
      where += ")";
    }
    if (filter.product_key) {
      args.push_back(*filter.product_key);
      where += " AND product_key = ?" + std::to_string(args.size());
    }
    if (filter.station) {
      args.push_back(*filter.station);
      where += " AND station = ?" + std::to_string(args.size());
    }
    std::lock_guard lock(m_mutex);
    return for_each_locked(where + " ORDER BY id", args, callback);
  }

  Result<Registration> begin_registration(const TripletKey& key, const Actor& actor) override {
    Registration r;
    r.product_key = key.product_key;
    r.device_name = key.device_name;
    r.station = actor.station;
    r.pid = actor.pid;
    IOT_TRY(write([&]() -> Status {
      r.requested_at_ms = now_ms();
      r.id = IOT_TRY(inserted_id(Statement::query(
          m_db,
          "INSERT INTO registrations (product_key, device_name, status, requested_at, station, "
          "pid) VALUES (?1, ?2, 'pending', ?3, ?4, ?5) RETURNING id",
          key.product_key,
          key.device_name,
          r.requested_at_ms,
          actor.station,
          actor.pid)));
      return append_event(registration_event(r, actor, "pending", "request about to be sent"));
    }));
    return r;
  }

  Result<PoolUpdate> record_registration(const Registration& pending,
                                         std::string_view secret,
                                         const Actor& actor) override {
    if (secret.empty()) {
      return fail(ErrorKind::failure, "record_registration: empty secret");
    }
    PoolUpdate update = PoolUpdate::added;
    IOT_TRY(write([&]() -> Status {
      const auto time = now_ms();
      IOT_TRY(Statement::run(m_db,
                             "UPDATE registrations SET status = 'issued', secret = ?2, "
                             "answered_at = ?3 WHERE id = ?1 AND status = 'pending'",
                             pending.id,
                             secret,
                             time));
      if (m_db.changes() != 1) {
        return fail(ErrorKind::failure,
                    "registration " + std::to_string(pending.id) + " of " + pending.device_name +
                        " is not pending");
      }
      IOT_TRY(Statement::run(m_db,
                             "UPDATE registrations SET status = 'superseded', detail = CASE "
                             "detail WHEN '' THEN ?4 ELSE detail END WHERE product_key = ?1 AND "
                             "device_name = ?2 AND id <> ?3 AND status IN ('issued', 'pending')",
                             pending.product_key,
                             pending.device_name,
                             pending.id,
                             "a newer registration was answered at " + core::iso8601_utc(time)));
      const auto current = IOT_TRY(select_one(locked("WHERE product_key = ?1 AND device_name = ?2"),
                                              {pending.product_key, pending.device_name}));
      update =
          !current ? PoolUpdate::added
          : current->state == TripletState::available && current->scheme == core::Scheme::device
              ? PoolUpdate::updated
              : PoolUpdate::busy;
      std::string detail;
      if (update == PoolUpdate::busy) {
        detail = "secret issued and recorded, but the pool's triplet is " +
                 std::string(to_string(current->state)) +
                 (current->imei.empty() ? "" : " (IMEI " + current->imei + ")") +
                 ": it keeps the older secret";
      } else {
        // Added to the pool, or replacing the older secret of an available triplet.
        IOT_TRY(Statement::run(m_db,
                               "INSERT INTO triplets (product_key, device_name, secret, scheme, "
                               "state, source, imported_at, updated_at) VALUES (?1, ?2, ?3, "
                               "'device', 'available', 'dynamic registration', ?4, ?4) ON "
                               "CONFLICT (product_key, device_name) DO UPDATE SET secret = "
                               "excluded.secret, updated_at = excluded.updated_at",
                               pending.product_key,
                               pending.device_name,
                               secret,
                               time));
        detail = update == PoolUpdate::added ? "secret issued; added to the pool"
                                             : "secret issued; replaces the pool's older one";
      }
      return append_event(registration_event(pending, actor, "issued", detail));
    }));
    return update;
  }

  Status fail_registration(const Registration& pending,
                           const Actor& actor,
                           std::string_view reason) override {
    return write([&]() -> Status {
      IOT_TRY(Statement::run(m_db,
                             "UPDATE registrations SET status = 'failed', answered_at = ?2, "
                             "detail = ?3 WHERE id = ?1 AND status = 'pending'",
                             pending.id,
                             now_ms(),
                             reason));
      return append_event(registration_event(pending, actor, "failed", reason));
    });
  }

  Result<std::vector<Registration>> registrations(const TripletKey& key) override {
    return registrations_of(key);
  }

  Result<Recreation> begin_recreation(const Recreation& plan, const Actor& actor) override {
    Recreation r = plan;
    r.step = RecreateStep::planned;
    r.station = actor.station;
    r.pid = actor.pid;
    IOT_TRY(write([&]() -> Status {
      auto open = IOT_TRY(Statement::query(m_db,
                                           "SELECT id, step FROM recreations WHERE product_key = "
                                           "?1 AND device_name = ?2 AND step <> 'restored'",
                                           r.product_key,
                                           r.device_name));
      if (IOT_TRY(open.step())) {
        return fail(ErrorKind::usage,
                    r.product_key + "/" + r.device_name + " has an unfinished recreation (step " +
                        open.text(1) + ", started by this ledger's row " +
                        std::to_string(open.integer(0)) +
                        "): finish it with `iotfleet devices recreate --resume`");
      }
      r.started_at_ms = r.updated_at_ms = now_ms();
      r.id = IOT_TRY(inserted_id(Statement::query(
          m_db,
          "INSERT INTO recreations (product_key, device_name, step, old_iot_id, metadata, "
          "old_secret, to_pool, started_at, updated_at, station, pid, detail, scheme) VALUES (?1, "
          "?2, 'planned', ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11) RETURNING id",
          r.product_key,
          r.device_name,
          r.old_iot_id,
          r.metadata,
          r.old_secret,
          std::int64_t{r.to_pool ? 1 : 0},
          r.started_at_ms,
          r.station,
          r.pid,
          r.detail,
          std::string(to_string(r.scheme)))));
      return append_event(recreation_event(r, actor, "planned", r.detail));
    }));
    return r;
  }

  Result<std::string> advance_recreation(const Recreation& r, const Actor& actor) override {
    if (r.step != RecreateStep::planned && r.step != RecreateStep::deleted &&
        r.new_secret.empty()) {
      return fail(ErrorKind::failure, "advance_recreation: a registered device needs its secret");
    }
    std::string pool;
    IOT_TRY(write([&]() -> Status {
      const auto time = now_ms();
      IOT_TRY(Statement::run(
          m_db,
          "UPDATE recreations SET step = ?2, new_iot_id = ?3, new_secret = ?4, updated_at = ?5, "
          "detail = ?6, station = ?7, pid = ?8 WHERE id = ?1 AND (CASE step WHEN 'planned' THEN "
          "0 WHEN 'deleted' THEN 1 WHEN 'registered' THEN 2 ELSE 3 END) <= ?9",
          r.id,
          std::string(to_string(r.step)),
          r.new_iot_id,
          r.new_secret,
          time,
          r.detail,
          actor.station,
          actor.pid,
          static_cast<std::int64_t>(r.step)));
      if (m_db.changes() != 1) {
        return fail(ErrorKind::failure,
                    "recreation " + std::to_string(r.id) + " of " + r.device_name +
                        " is gone or already past " + std::string(to_string(r.step)));
      }
      if (r.step == RecreateStep::registered) {
        pool = IOT_TRY(pool_after_recreation(r, time));
      }
      std::string detail = r.detail;
      if (!pool.empty()) {
        detail += (detail.empty() ? "" : "; ") + pool;
      }
      return append_event(recreation_event(r, actor, to_string(r.step), detail));
    }));
    return pool;
  }

  Result<std::vector<Recreation>> recreations(const std::optional<TripletKey>& key,
                                              bool unfinished_only) override {
    std::vector<Recreation> out;
    if (m_schema < 3) {
      return out; // a ledger opened for reading, from before recreations were recorded
    }
    std::lock_guard lock(m_mutex);
    std::string sql = "SELECT id, product_key, device_name, step, old_iot_id, new_iot_id, "
                      "metadata, old_secret, new_secret, to_pool, started_at, updated_at, "
                      "station, pid, detail, scheme FROM recreations WHERE 1 = 1";
    if (key) {
      sql += " AND product_key = ?1 AND device_name = ?2";
    }
    if (unfinished_only) {
      sql += " AND step <> 'restored'";
    }
    sql += " ORDER BY id";
    auto s = IOT_TRY(key ? Statement::query(m_db, sql, key->product_key, key->device_name)
                         : Statement::query(m_db, sql));
    while (IOT_TRY(s.step())) {
      Recreation r;
      r.id = s.integer(0);
      r.product_key = s.text(1);
      r.device_name = s.text(2);
      r.step = IOT_TRY(parse_recreate_step(s.text(3)));
      r.old_iot_id = s.text(4);
      r.new_iot_id = s.text(5);
      r.metadata = s.text(6);
      r.old_secret = s.text(7);
      r.new_secret = s.text(8);
      r.to_pool = s.integer(9) != 0;
      r.started_at_ms = s.integer(10);
      r.updated_at_ms = s.integer(11);
      r.station = s.text(12);
      r.pid = s.integer(13);
      r.detail = s.text(14);
      r.scheme = s.text(15) == "product" ? core::Scheme::product : core::Scheme::device;
      out.push_back(std::move(r));
    }
    return out;
  }

  int schema_version() const override { return m_schema; }

  Result<LedgerContents> contents() override {
    LedgerContents c;
    IOT_TRY(for_each({}, [&](const TripletRecord& r) -> Status {
      c.triplets.push_back(r);
      return {};
    }));
    c.events =
        IOT_TRY(events(static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()), {}));
    c.registrations = IOT_TRY(registrations_of(std::nullopt));
    c.recreations = IOT_TRY(recreations(std::nullopt, false));
    return c;
  }

  Result<MergeSummary>
  merge(const LedgerContents& from, std::string_view source, const Actor& actor) override {
    IOT_TRY(writable());
    std::lock_guard lock(m_mutex);
    auto tx = IOT_TRY(Transaction::begin(m_db));
    MergeSummary summary;
    for (const auto& t : from.triplets) {
      IOT_TRY(merge_triplet(t, summary));
    }
    for (const auto& e : from.events) {
      IOT_TRY(merge_event(e, summary));
    }
    for (const auto& r : from.registrations) {
      IOT_TRY(merge_registration(r, summary));
    }
    for (const auto& r : from.recreations) {
      IOT_TRY(merge_recreation(r, summary));
    }
    if (!summary.conflicts.empty()) {
      return summary; // the transaction rolls back: nothing copied
    }
    const auto added = summary.triplets.added + summary.events.added + summary.registrations.added +
                       summary.recreations.added;
    if (added > 0) {
      IOT_TRY(append_event(Event{
          now_ms(),
          actor.station,
          actor.port,
          "",
          "",
          "",
          "migrate",
          "ok",
          "copied from " + std::string(source) + ": " + std::to_string(summary.triplets.added) +
              " triplets, " + std::to_string(summary.events.added) + " events, " +
              std::to_string(summary.registrations.added) + " registrations, " +
              std::to_string(summary.recreations.added) + " recreations"}));
    }
    IOT_TRY(tx.commit());
    summary.committed = true;
    return summary;
  }

  Result<bool> claim_status_check(std::string_view product_key,
                                  std::string_view holder,
                                  std::int64_t now,
                                  std::int64_t stale_before,
                                  std::int64_t lease_until) override {
    IOT_TRY(status_checks_present());
    bool claimed = false;
    IOT_TRY(write([&]() -> Status {
      IOT_TRY(Statement::run(m_db,
                             "INSERT INTO status_checks (product_key) VALUES (?1) ON CONFLICT "
                             "(product_key) DO NOTHING",
                             product_key));
      IOT_TRY(Statement::run(m_db,
                             "UPDATE status_checks SET holder = ?2, lease_until = ?5 WHERE "
                             "product_key = ?1 AND lease_until <= ?3 AND checked_at < ?4",
                             product_key,
                             holder,
                             now,
                             stale_before,
                             lease_until));
      claimed = m_db.changes() == 1;
      return {};
    }));
    return claimed;
  }

  Status record_status_check(const StatusCheck& check) override {
    IOT_TRY(status_checks_present());
    std::string disabled;
    for (const auto& name : check.disabled) {
      disabled += name;
      disabled += '\n';
    }
    return write([&]() -> Status {
      return Statement::run(m_db,
                            "UPDATE status_checks SET lease_until = 0, checked_at = ?3, "
                            "checked = ?4, missing = ?5, disabled = ?6 WHERE product_key = ?1 AND "
                            "holder = ?2",
                            check.product_key,
                            check.holder,
                            check.checked_at_ms,
                            check.checked,
                            check.missing,
                            disabled);
    });
  }

  Status hold_status_check(std::string_view product_key,
                           std::string_view holder,
                           std::int64_t lease_until) override {
    IOT_TRY(status_checks_present());
    return write([&]() -> Status {
      return Statement::run(m_db,
                            "UPDATE status_checks SET lease_until = ?3 WHERE product_key = ?1 AND "
                            "holder = ?2",
                            product_key,
                            holder,
                            lease_until);
    });
  }

  Result<std::optional<StatusCheck>> status_check(std::string_view product_key) override {
    if (m_schema < 5) {
      return std::optional<StatusCheck>{}; // read-only, from before checks were shared
    }
    std::lock_guard lock(m_mutex);
    auto s = IOT_TRY(Statement::query(m_db,
                                      "SELECT holder, lease_until, checked_at, checked, missing, "
                                      "disabled FROM status_checks WHERE product_key = ?1",
                                      product_key));
    if (!IOT_TRY(s.step())) {
      return std::optional<StatusCheck>{};
    }
    StatusCheck check;
    check.product_key = std::string(product_key);
    check.holder = s.text(0);
    check.lease_until_ms = s.integer(1);
    check.checked_at_ms = s.integer(2);
    check.checked = s.integer(3);
    check.missing = s.integer(4);
    const std::string disabled = s.text(5);
    for (std::size_t start = 0; start < disabled.size();) {
      const auto end = disabled.find('\n', start);
      check.disabled.push_back(disabled.substr(start, end - start));
      start = end == std::string::npos ? disabled.size() : end + 1;
    }
    return std::optional<StatusCheck>{std::move(check)};
  }

  Status record_event(const Event& event) override {
    Event stamped = event;
    if (stamped.time_ms == 0) {
      stamped.time_ms = now_ms();
    }
    return write([&]() -> Status { return append_event(stamped); });
  }

  Result<std::vector<Event>> events(std::size_t limit,
                                    const std::optional<std::string>& device_name) override {
    std::lock_guard lock(m_mutex);
    const std::string sql =
        std::string("SELECT * FROM (SELECT id, time_ms, station, port, imei, product_key, "
                    "device_name, action, outcome, detail FROM events ") +
        (device_name ? "WHERE device_name = ?2 " : "") +
        "ORDER BY id DESC LIMIT ?1) AS recent ORDER BY id";
    const auto count = static_cast<std::int64_t>(limit);
    auto s = IOT_TRY(device_name ? Statement::query(m_db, sql, count, *device_name)
                                 : Statement::query(m_db, sql, count));
    std::vector<Event> out;
    while (IOT_TRY(s.step())) {
      out.push_back(Event{s.integer(1),
                          s.text(2),
                          s.text(3),
                          s.text(4),
                          s.text(5),
                          s.text(6),
                          s.text(7),
                          s.text(8),
                          s.text(9)});
    }
    return out;
  }

private:
  Status status_checks_present() const {
    if (m_schema < 5) {
      return fail(ErrorKind::failure,
                  "this ledger's schema is older than the shared status check: open it for "
                  "writing to migrate it");
    }
    return {};
  }

  // The registrations of one device, or of all, oldest first.
  Result<std::vector<Registration>> registrations_of(const std::optional<TripletKey>& key) {
    std::vector<Registration> out;
    if (m_schema < 2) {
      return out; // a ledger opened for reading, from before registrations were recorded
    }
    std::lock_guard lock(m_mutex);
    std::string sql = "SELECT id, status, secret, requested_at, answered_at, station, pid, detail, "
                      "product_key, device_name FROM registrations";
    if (key) {
      sql += " WHERE product_key = ?1 AND device_name = ?2";
    }
    sql += " ORDER BY id";
    auto s = IOT_TRY(key ? Statement::query(m_db, sql, key->product_key, key->device_name)
                         : Statement::query(m_db, sql));
    while (IOT_TRY(s.step())) {
      Registration r;
      r.id = s.integer(0);
      r.status = IOT_TRY(parse_registration_status(s.text(1)));
      r.secret = s.text(2);
      r.requested_at_ms = s.integer(3);
      r.answered_at_ms = s.integer(4);
      r.station = s.text(5);
      r.pid = s.integer(6);
      r.detail = s.text(7);
      r.product_key = s.text(8);
      r.device_name = s.text(9);
      out.push_back(std::move(r));
    }
    return out;
  }

  // merge: an event is added unless the very same one is here.
  Status merge_event(const Event& e, MergeSummary& summary) {
    auto found = IOT_TRY(Statement::query(
        m_db,
        "SELECT 1 FROM events WHERE time_ms = ?1 AND station = ?2 AND port = ?3 AND imei = ?4 AND "
        "product_key = ?5 AND device_name = ?6 AND action = ?7 AND outcome = ?8 AND detail = ?9",
        e.time_ms,
        e.station,
        e.port,
        e.imei,
        e.product_key,
        e.device_name,
        e.action,
        e.outcome,
        e.detail));
    if (IOT_TRY(found.step())) {
      ++summary.events.present;
      return {};
    }
    IOT_TRY(append_event(e));
    ++summary.events.added;
    return {};
  }

  Status merge_triplet(const TripletRecord& t, MergeSummary& summary) {
    const auto name = t.product_key + "/" + t.device_name;
    const auto here = IOT_TRY(select_one(locked("WHERE product_key = ?1 AND device_name = ?2"),
                                         {t.product_key, t.device_name}));
    std::optional<TripletRecord> imei_holder;
    if (!t.imei.empty()) {
      imei_holder = IOT_TRY(select_one(locked(k_by_imei), {t.imei}));
      if (imei_holder && imei_holder->device_name == t.device_name &&
          imei_holder->product_key == t.product_key) {
        imei_holder.reset(); // the same row
      }
    }
    if (here && (here->secret != t.secret || here->scheme != t.scheme)) {
      summary.conflicts.push_back(name + " is in this ledger with a different " +
                                  (here->scheme != t.scheme ? std::string("scheme") : "secret") +
                                  ": a DeviceName has one secret; settle which one the device "
                                  "holds (`secrets compare`) and release or fix the other");
      return {};
    }
    if (imei_holder) {
      summary.conflicts.push_back("IMEI " + t.imei + " holds " + name + " there but " +
                                  describe(*imei_holder) +
                                  " here: one module, one identity; release the one that is "
                                  "void (`pool release`) and run again");
      return {};
    }
    if (here && here->state == t.state && here->imei == t.imei) {
      ++summary.triplets.present;
      return {};
    }
    if (here && here->state != TripletState::available) {
      summary.conflicts.push_back(name + " is " + describe(*here) + " here but " + describe(t) +
                                  " there: release the one that is void and run again");
      return {};
    }
    if (here && t.state == TripletState::available) {
      ++summary.triplets.present; // available in both
      return {};
    }
    // Not here, or available here and taken there (the same batch imported in both).
    IOT_TRY(Statement::run(m_db,
                           "INSERT INTO triplets (" + std::string(k_columns) +
                               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, ?11, ?12, "
                               "?13, ?14) ON CONFLICT (product_key, device_name) DO UPDATE SET "
                               "state = excluded.state, imei = excluded.imei, iccid = "
                               "excluded.iccid, station = excluded.station, port = excluded.port, "
                               "owner_pid = 0, attempts = excluded.attempts, updated_at = "
                               "excluded.updated_at, burned_at = excluded.burned_at",
                           t.product_key,
                           t.device_name,
                           t.secret,
                           std::string(to_string(t.scheme)),
                           std::string(to_string(t.state)),
                           t.imei,
                           t.iccid,
                           t.station,
                           t.port,
                           std::int64_t{t.attempts},
                           t.source,
                           t.imported_at_ms,
                           t.updated_at_ms,
                           t.burned_at_ms));
    ++summary.triplets.added;
    return {};
  }

  // merge: a registration or recreation is the same row when the same process started it at the
  // same moment (its status or step may have moved on since).
  Result<bool> has_journal_row(std::string_view table,
                               std::string_view time_column,
                               const TripletKey& key,
                               std::int64_t time,
                               const std::string& station,
                               std::int64_t pid) {
    auto found = IOT_TRY(Statement::query(m_db,
                                          "SELECT 1 FROM " + std::string(table) +
                                              " WHERE product_key = ?1 AND device_name = ?2 AND " +
                                              std::string(time_column) +
                                              " = ?3 AND station = ?4 AND pid = ?5",
                                          key.product_key,
                                          key.device_name,
                                          time,
                                          station,
                                          pid));
    return found.step();
  }

  Status merge_registration(const Registration& r, MergeSummary& summary) {
    if (IOT_TRY(has_journal_row("registrations",
                                "requested_at",
                                {r.product_key, r.device_name},
                                r.requested_at_ms,
                                r.station,
                                r.pid))) {
      ++summary.registrations.present;
      return {};
    }
    IOT_TRY(Statement::run(m_db,
                           "INSERT INTO registrations (product_key, device_name, requested_at, "
                           "station, pid, status, secret, answered_at, detail) VALUES (?1, ?2, "
                           "?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                           r.product_key,
                           r.device_name,
                           r.requested_at_ms,
                           r.station,
                           r.pid,
                           std::string(to_string(r.status)),
                           r.secret,
                           r.answered_at_ms,
                           r.detail));
    ++summary.registrations.added;
    return {};
  }

  Status merge_recreation(const Recreation& r, MergeSummary& summary) {
    if (IOT_TRY(has_journal_row("recreations",
                                "started_at",
                                {r.product_key, r.device_name},
                                r.started_at_ms,
                                r.station,
                                r.pid))) {
      ++summary.recreations.present;
      return {};
    }
    if (r.step != RecreateStep::restored) {
      auto open = IOT_TRY(Statement::query(m_db,
                                           "SELECT 1 FROM recreations WHERE product_key = ?1 AND "
                                           "device_name = ?2 AND step <> 'restored'",
                                           r.product_key,
                                           r.device_name));
      if (IOT_TRY(open.step())) {
        summary.conflicts.push_back(r.product_key + "/" + r.device_name +
                                    " has an unfinished recreation in both ledgers: finish one "
                                    "with `devices recreate --resume` first");
        return {};
      }
    }
    IOT_TRY(Statement::run(m_db,
                           "INSERT INTO recreations (product_key, device_name, step, old_iot_id, "
                           "new_iot_id, metadata, old_secret, new_secret, to_pool, scheme, "
                           "started_at, updated_at, station, pid, detail) VALUES (?1, ?2, ?3, "
                           "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                           r.product_key,
                           r.device_name,
                           std::string(to_string(r.step)),
                           r.old_iot_id,
                           r.new_iot_id,
                           r.metadata,
                           r.old_secret,
                           r.new_secret,
                           std::int64_t{r.to_pool ? 1 : 0},
                           std::string(to_string(r.scheme)),
                           r.started_at_ms,
                           r.updated_at_ms,
                           r.station,
                           r.pid,
                           r.detail));
    ++summary.recreations.added;
    return {};
  }

  // Changes need a ledger opened to write: OpenMode::read is for commands that only look.
  [[nodiscard]] Status writable() const {
    if (m_read_only) {
      return fail(ErrorKind::failure,
                  "ledger " + m_location +
                      " is open for reading only, so it cannot be changed (a command that "
                      "writes must open it with OpenMode::create or existing)");
    }
    return {};
  }

  Result<std::optional<Claim>> claim_locked(const ClaimRequest& request) {
    const auto existing = IOT_TRY(select_one(locked(k_by_imei), {request.imei}));
    if (existing) {
      return claim_existing(*existing, request);
    }
    std::optional<TripletRecord> candidate;
    if (request.device_name) {
      candidate = IOT_TRY(
          request.product_key
              ? select_one(locked("WHERE device_name = ?1 AND product_key = ?2"),
                           {*request.device_name, *request.product_key})
              : select_one(locked("WHERE device_name = ?1 ORDER BY id"), {*request.device_name}));
      if (candidate && candidate->state != TripletState::available) {
        return fail(ErrorKind::module,
                    "the triplet for DeviceName " + *request.device_name +
                        " is already taken: " + describe(*candidate) +
                        "; if that module was scrapped, `iotfleet pool release " +
                        *request.device_name + " --reason …` frees it");
      }
    } else {
      std::string where = "WHERE state = 'available'";
      std::vector<std::string> args;
      if (request.product_key) {
        args.push_back(*request.product_key);
        where += " AND product_key = ?" + std::to_string(args.size());
      }
      if (request.scheme) {
        args.emplace_back(to_string(*request.scheme));
        where += " AND scheme = ?" + std::to_string(args.size());
      }
      candidate =
          IOT_TRY(select_one(where + " ORDER BY id LIMIT 1" + std::string(B::skip_locked), args));
    }
    if (!candidate) {
      return std::optional<Claim>{};
    }
    return take(std::move(*candidate), request, ClaimKind::fresh);
  }

  Result<std::optional<Claim>> claim_existing(TripletRecord record, const ClaimRequest& request) {
    if ((request.product_key && record.product_key != *request.product_key) ||
        (request.device_name && record.device_name != *request.device_name)) {
      return fail(ErrorKind::module,
                  "IMEI " + request.imei + " already holds " + describe(record) +
                      ", not the triplet asked for; if that burn is void, `iotfleet pool "
                      "release " +
                      record.device_name + " --reason …` frees it");
    }
    if (record.state == TripletState::burned) {
      return std::optional<Claim>{Claim{ClaimKind::burned, std::move(record)}};
    }
    if (record.owner_pid != 0 && record.owner_pid != request.actor.pid &&
        record.station == request.actor.station && process_alive(record.owner_pid)) {
      return fail(ErrorKind::module,
                  "IMEI " + request.imei + " is being burned right now by process " +
                      std::to_string(record.owner_pid) + " on " + record.port +
                      ": two modules with one IMEI? Send this one to rework");
    }
    return take(std::move(record), request, ClaimKind::resumed);
  }

  // Gives `record` to the request's module and actor, with its audit event: a fresh claim
  // (available -> claimed, bound to the IMEI) or a resumed one (the IMEI's own claimed or bound
  // triplet: its state kept, the new holder recorded).
  Result<std::optional<Claim>>
  take(TripletRecord record, const ClaimRequest& request, ClaimKind kind) {
    const auto time = now_ms();
    const auto was = record.state;
    const std::string previous_holder = record.station + " " + record.port;
    if (kind == ClaimKind::fresh) {
      record.state = TripletState::claimed;
      record.imei = request.imei;
    }
    IOT_TRY(Statement::run(m_db,
                           "UPDATE triplets SET state = ?1, imei = ?2, iccid = ?3, station = ?4, "
                           "port = ?5, owner_pid = ?6, updated_at = ?7 WHERE product_key = ?8 "
                           "AND device_name = ?9 AND state = ?10",
                           to_string(record.state),
                           record.imei,
                           request.iccid,
                           request.actor.station,
                           request.actor.port,
                           request.actor.pid,
                           time,
                           record.product_key,
                           record.device_name,
                           to_string(was)));
    if (m_db.changes() != 1) { // the row is locked (PostgreSQL) or the file is (SQLite)
      return fail(ErrorKind::io,
                  "claim: " + describe(record) + " changed while it was being claimed: try again");
    }
    record.iccid = request.iccid;
    record.station = request.actor.station;
    record.port = request.actor.port;
    record.owner_pid = request.actor.pid;
    record.updated_at_ms = time;
    IOT_TRY(append_event(
        kind == ClaimKind::fresh
            ? transition_event(record, request.actor, "claim", "ok", "")
            : transition_event(
                  record, request.actor, "claim", "resumed", "held since " + previous_holder)));
    return std::optional<Claim>{Claim{kind, std::move(record)}};
  }

  Result<Issue> issue_locked(const IssueRequest& request) {
    const auto& key = request.key;
    Issue issue;
    const auto record = IOT_TRY(select_one(locked("WHERE product_key = ?1 AND device_name = ?2"),
                                           {key.product_key, key.device_name}));
    if (!record) {
      return issue; // unknown: nothing written
    }
    if (record->scheme != core::Scheme::device) {
      issue.outcome = IssueOutcome::not_device;
      return issue;
    }
    const auto time = now_ms();
    std::string detail = "from " + request.address;
    if (record->state != TripletState::available) {
      if (record->imei == request.imei) {
        issue.outcome = IssueOutcome::again;
        issue.secret = record->secret;
      } else {
        issue.outcome = IssueOutcome::clone;
        issue.other_imei = record->imei;
        detail += "; " + key.device_name + " is " + std::string(to_string(record->state)) +
                  " to IMEI " + record->imei;
      }
    } else if (const auto holder = IOT_TRY(select_one(locked(k_by_imei), {request.imei}))) {
      issue.outcome = IssueOutcome::module_taken;
      issue.other_name = holder->device_name;
      detail += "; this module holds " + holder->product_key + "/" + holder->device_name;
    } else {
      IOT_TRY(Statement::run(m_db,
                             "UPDATE triplets SET state = 'burned', imei = ?1, iccid = ?2, "
                             "station = ?3, port = ?4, owner_pid = 0, burned_at = ?5, "
                             "updated_at = ?5 WHERE product_key = ?6 AND device_name = ?7 AND "
                             "state = 'available'",
                             request.imei,
                             request.iccid,
                             request.actor.station,
                             request.actor.port,
                             time,
                             key.product_key,
                             key.device_name));
      if (m_db.changes() != 1) {
        return fail(ErrorKind::io,
                    "issue: " + key.product_key + "/" + key.device_name +
                        " changed while it was being issued: try again");
      }
      issue.outcome = IssueOutcome::issued;
      issue.secret = record->secret;
    }
    IOT_TRY(append_event(Event{time,
                               request.actor.station,
                               request.actor.port,
                               request.imei,
                               key.product_key,
                               key.device_name,
                               "serve-issue",
                               std::string(to_string(issue.outcome)),
                               detail}));
    return issue;
  }

  Status expire_locked(const Actor& actor,
                       const std::function<bool(std::int64_t pid)>& is_alive,
                       std::vector<TripletRecord>& stale) {
    IOT_TRY(for_each_locked(locked("WHERE state = 'claimed' AND station = ?1"),
                            {actor.station},
                            [&](const TripletRecord& r) -> Status {
                              if (r.owner_pid == 0 || !is_alive(r.owner_pid)) {
                                stale.push_back(r);
                              }
                              return {};
                            }));
    auto update = IOT_TRY(Statement::prepare(
        m_db,
        "UPDATE triplets SET state = 'available', imei = '', iccid = '', station = '', "
        "port = '', owner_pid = 0, updated_at = ?1 WHERE product_key = ?2 AND device_name = ?3 "
        "AND state = 'claimed'"));
    for (const auto& r : stale) {
      IOT_TRY(update.rebind(now_ms(), r.product_key, r.device_name).run());
      IOT_TRY(append_event(
          transition_event(r,
                           actor,
                           "expire",
                           "ok",
                           "claim of process " + std::to_string(r.owner_pid) + " on " + r.port +
                               " expired: it is gone and had not started writing")));
    }
    return {};
  }

  // One state change: checks the current state is one of `from`, applies `set` (which may use
  // ?3 = now), appends the event. `before` receives the record as it was.
  Status transition(const TripletKey& key,
                    const Actor& actor,
                    const std::vector<TripletState>& from,
                    std::string_view set,
                    std::string_view action,
                    std::string_view detail,
                    TripletRecord* before = nullptr) {
    return write([&]() -> Status {
      const auto current = IOT_TRY(select_one(locked("WHERE product_key = ?1 AND device_name = ?2"),
                                              {key.product_key, key.device_name}));
      if (!current) {
        return fail(ErrorKind::usage,
                    "no triplet " + key.product_key + "/" + key.device_name +
                        " in the ledger (`iotfleet pool status` lists what it holds)");
      }
      const auto& record = *current;
      bool allowed = false;
      std::string expected;
      for (auto state : from) {
        allowed = allowed || record.state == state;
        expected += (expected.empty() ? "" : " or ") + std::string(to_string(state));
      }
      if (!allowed) {
        return fail(ErrorKind::usage,
                    std::string(action) + " " + key.product_key + "/" + key.device_name +
                        ": it is " + std::string(to_string(record.state)) + ", not " + expected);
      }
      const auto time = now_ms();
      IOT_TRY(Statement::run(m_db,
                             "UPDATE triplets " + std::string(set) +
                                 ", updated_at = ?3 WHERE product_key = ?1 AND device_name = ?2",
                             key.product_key,
                             key.device_name,
                             time));
      Event event = transition_event(record, actor, action, "ok", detail);
      event.time_ms = time;
      IOT_TRY(append_event(event));
      if (before) {
        *before = record;
      }
      return {};
    });
  }

  // Group commit. Every change is one operation, run in its own savepoint inside a transaction
  // that may hold the operations of other threads too: the first thread to arrive commits for
  // everyone waiting (one fsync for the batch), and each call returns only once the commit that
  // holds its operation is durable. With 16 fixtures this turns 16 fsyncs into one or two.
  Status write(const std::function<Status()>& body) {
    IOT_TRY(writable());
    Pending mine{&body};
    std::unique_lock lock(m_queue_mutex);
    m_queue.push_back(&mine);
    while (!mine.done) {
      if (m_committing) {
        m_committed.wait(lock);
        continue;
      }
      m_committing = true;
      std::vector<Pending*> batch;
      batch.swap(m_queue);
      lock.unlock();
      run_batch(batch);
      lock.lock();
      for (auto* p : batch) {
        p->done = true;
      }
      m_committing = false;
      m_committed.notify_all();
    }
    return mine.result;
  }

  struct Pending {
    const std::function<Status()>* body;
    Status result{};
    bool done = false;
  };

  void run_batch(const std::vector<Pending*>& batch) {
    std::lock_guard lock(m_mutex);
    auto tx = Transaction::begin(m_db);
    if (!tx) {
      for (auto* p : batch) {
        p->result = fail(tx.error());
      }
      return;
    }
    if (batch.size() == 1) {
      // Nothing to keep apart, so no savepoint (on a server, two round trips fewer): a failed
      // operation rolls the whole transaction back (tx's destructor).
      auto* p = batch.front();
      p->result = (*p->body)();
      if (p->result) {
        if (auto ok = tx->commit(); !ok) {
          p->result = fail(ok.error());
        }
      }
      return;
    }
    for (auto* p : batch) {
      if (auto ok = m_db.exec("SAVEPOINT op"); !ok) {
        p->result = ok;
        continue;
      }
      p->result = (*p->body)();
      (void)m_db.exec(p->result ? "RELEASE op" : "ROLLBACK TO op; RELEASE op");
    }
    if (auto ok = tx->commit(); !ok) {
      for (auto* p : batch) {
        if (p->result) {
          p->result = fail(ok.error());
        }
      }
    }
  }

  static Event transition_event(const TripletRecord& r,
                                const Actor& actor,
                                std::string_view action,
                                std::string_view outcome,
                                std::string_view detail) {
    return Event{now_ms(),
                 actor.station,
                 actor.port,
                 r.imei,
                 r.product_key,
                 r.device_name,
                 std::string(action),
                 std::string(outcome),
                 std::string(detail)};
  }

  // The pool after a re-created device got its new secret (inside the write transaction).
  Result<std::string> pool_after_recreation(const Recreation& r, std::int64_t time) {
    const auto current = IOT_TRY(select_one(locked("WHERE product_key = ?1 AND device_name = ?2"),
                                            {r.product_key, r.device_name}));
    if (!current) {
      if (!r.to_pool) {
        return std::string();
      }
      IOT_TRY(Statement::run(m_db,
                             "INSERT INTO triplets (product_key, device_name, secret, scheme, "
                             "state, source, imported_at, updated_at) VALUES (?1, ?2, ?3, "
                             "'device', 'available', 'devices recreate', ?4, ?4)",
                             r.product_key,
                             r.device_name,
                             r.new_secret,
                             time));
      return std::string("the new secret added to the pool (available)");
    }
    if (current->scheme != core::Scheme::device) {
      return std::string("the pool's triplet is one-type-one-secret (ProductSecret): unchanged");
    }
    if (r.scheme == core::Scheme::product) {
      // Dynamic registration: the module asks again; nothing is bound to it any more.
      IOT_TRY(Statement::run(m_db,
                             "UPDATE triplets SET secret = ?3, state = 'available', imei = '', "
                             "iccid = '', station = '', port = '', owner_pid = 0, updated_at = ?4 "
                             "WHERE product_key = ?1 AND device_name = ?2",
                             r.product_key,
                             r.device_name,
                             r.new_secret,
                             time));
      IOT_TRY(
          Statement::run(m_db,
                         "UPDATE registrations SET status = 'superseded', detail = ?3 WHERE "
                         "product_key = ?1 AND device_name = ?2 AND status IN ('issued', "
                         "'pending')",
                         r.product_key,
                         r.device_name,
                         "the device was re-created on the cloud at " + core::iso8601_utc(time)));
      return "the pool's triplet (was " + std::string(to_string(current->state)) +
             (current->imei.empty() ? "" : ", IMEI " + current->imei) +
             ") is available again with the re-created device's secret: the module registers "
             "dynamically anew (`iotfleet provision --register` or its firmware)";
    }
    if (current->state == TripletState::available) {
      IOT_TRY(Statement::run(m_db,
                             "UPDATE triplets SET secret = ?3, updated_at = ?4 WHERE product_key "
                             "= ?1 AND device_name = ?2",
                             r.product_key,
                             r.device_name,
                             r.new_secret,
                             time));
      return std::string("the pool's available triplet now holds the new secret");
    }
    IOT_TRY(Statement::run(m_db,
                           "UPDATE triplets SET secret = ?3, state = 'bound', owner_pid = 0, "
                           "updated_at = ?4 WHERE product_key = ?1 AND device_name = ?2",
                           r.product_key,
                           r.device_name,
                           r.new_secret,
                           time));
    return "the pool's triplet (was " + std::string(to_string(current->state)) + ", IMEI " +
           current->imei +
           ") now holds the new secret and is bound to that module: `iotfleet provision` on "
           "its port burns it (the module still holds the old one)";
  }

  // An audit event of a device's cloud-side step (no IMEI: the module is not involved).
  static Event device_event(const TripletKey& key,
                            const Actor& actor,
                            std::string_view action,
                            std::string_view outcome,
                            std::string_view detail) {
    return Event{now_ms(),
                 actor.station,
                 actor.port,
                 "",
                 key.product_key,
                 key.device_name,
                 std::string(action),
                 std::string(outcome),
                 std::string(detail)};
  }
  static Event recreation_event(const Recreation& r,
                                const Actor& actor,
                                std::string_view outcome,
                                std::string_view detail) {
    return device_event({r.product_key, r.device_name}, actor, "recreate", outcome, detail);
  }
  static Event registration_event(const Registration& r,
                                  const Actor& actor,
                                  std::string_view outcome,
                                  std::string_view detail) {
    return device_event({r.product_key, r.device_name}, actor, "register", outcome, detail);
  }

  // The id an INSERT … RETURNING id gave its row.
  static Result<std::int64_t> inserted_id(Result<Statement> insert) {
    auto s = IOT_TRY(std::move(insert));
    if (!IOT_TRY(s.step())) {
      return fail(ErrorKind::failure, "ledger: an INSERT returned no id");
    }
    const auto id = s.integer(0);
    IOT_TRY(s.run());
    return id;
  }

  // `where` with the row lock this database needs for a row about to be changed.
  static std::string locked(std::string where) { return where + std::string(B::for_update); }

  Status append_event(const Event& e) {
    return Statement::run(m_db,
                          "INSERT INTO events (time_ms, station, port, imei, product_key, "
                          "device_name, action, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                          "?7, ?8, ?9)",
                          e.time_ms,
                          e.station,
                          e.port,
                          e.imei,
                          e.product_key,
                          e.device_name,
                          e.action,
                          e.outcome,
                          e.detail);
  }

  Result<std::optional<TripletRecord>> select_one(const std::string& where,
                                                  const std::vector<std::string>& args) {
    std::optional<TripletRecord> found;
    IOT_TRY(for_each_locked(where, args, [&](const TripletRecord& r) -> Status {
      if (!found) {
        found = r;
      }
      return {};
    }));
    return found;
  }

  Status for_each_locked(const std::string& where,
                         const std::vector<std::string>& args,
                         const std::function<Status(const TripletRecord&)>& callback) {
    auto s = IOT_TRY(Statement::query(
        m_db, "SELECT " + std::string(k_columns) + " FROM triplets " + where, args));
    while (IOT_TRY(s.step())) {
      IOT_TRY(callback(read_record(s)));
    }
    return {};
  }

  const std::string m_location;
  const bool m_read_only;
  const int m_schema; // as opened: older than ledger_schema_version() only when read-only
  std::mutex m_mutex; // the connection
  Database m_db;
  std::mutex m_queue_mutex; // the group commit
  std::condition_variable m_committed;
  std::vector<Pending*> m_queue;
  bool m_committing = false;
};

Result<int> user_version(sqlite::Database& db) {
  auto s = IOT_TRY(sqlite::Statement::query(db, "PRAGMA user_version"));
  IOT_TRY(s.step());
  return static_cast<int>(s.integer(0));
}

Result<std::int64_t> table_count(sqlite::Database& db) {
  auto s = IOT_TRY(sqlite::Statement::query(db, "SELECT count(*) FROM sqlite_master"));
  IOT_TRY(s.step());
  return s.integer(0);
}

Status refuse_newer(int version) {
  if (version > ledger_schema_version()) {
    return fail(ErrorKind::config,
                "its schema version is " + std::to_string(version) + ", newer than this " +
                    "iotfleet understands (" + std::to_string(ledger_schema_version()) +
                    "): use a newer iotfleet");
  }
  return {};
}

Status migrate(sqlite::Database& db) {
  const auto version = IOT_TRY(user_version(db));
  IOT_TRY(refuse_newer(version));
  for (auto v = static_cast<std::size_t>(version); v < k_migrations.size(); ++v) {
    auto tx = IOT_TRY(sqlite::Transaction::begin(db));
    // A database that already has tables but no version is someone else's file.
    if (v == 0 && IOT_TRY(table_count(db)) != 0) {
      return fail(ErrorKind::io, "it is an SQLite database but not an iotfleet ledger");
    }
    IOT_TRY(db.exec(sqlite_sql(k_migrations[v])));
    IOT_TRY(db.exec("PRAGMA user_version = " + std::to_string(v + 1)));
    IOT_TRY(tx.commit());
  }
  return {};
}

// The schema of a ledger opened for reading, which is not migrated: an older one is read as it
// is; an empty file is not a ledger yet.
Result<int> readable_schema(sqlite::Database& db) {
  const auto version = IOT_TRY(user_version(db));
  IOT_TRY(refuse_newer(version));
  if (version == 0) {
    if (IOT_TRY(table_count(db)) != 0) {
      return fail(ErrorKind::io, "it is an SQLite database but not an iotfleet ledger");
    }
    return fail(ErrorKind::config,
                "the file is empty, not a ledger yet: importing triplets into it "
                "(`iotfleet pool import FILE`) makes it one");
  }
  return version;
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string joined(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    out += (out.empty() ? "" : std::string(separator)) + item;
  }
  return out;
}

// The ledger file and its -wal / -shm hold secrets. Each one group or others can read is set to
// 0600 when `tighten` and this user owns it; the others are named in a warning with the fix.
void keep_private(const std::string& path,
                  bool tighten,
                  const std::function<void(const std::string&)>& warn) {
  std::vector<std::string> tightened;
  std::vector<std::string> loose;
  std::vector<std::string> to_chmod;
  bool others_own = false;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string file = path + suffix;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) == 0) {
      continue;
    }
    const std::string what =
        std::filesystem::path(file).filename().string() + " " + octal_mode(st.st_mode);
    const bool ours = st.st_uid == ::geteuid();
    if (tighten && ours && ::chmod(file.c_str(), 0600) == 0) {
      tightened.push_back(what);
      continue;
    }
    loose.push_back(what);
    to_chmod.push_back(file);
    others_own = others_own || !ours;
  }
  if (!warn) {
    return;
  }
  if (!tightened.empty()) {
    warn("ledger " + path + " was readable by group or others (" + joined(tightened, ", ") +
         "): it holds secrets, so iotfleet set " + (tightened.size() == 1 ? "it" : "them") +
         " to 0600");
  }
  if (!loose.empty()) {
    warn("ledger " + path + " holds secrets and is readable by group or others (" +
         joined(loose, ", ") + "): " + (others_own ? "its owner should run" : "run") +
         " chmod 600 " + joined(to_chmod, " ") +
         (tighten || others_own ? "" : " (a command that writes to the ledger does it itself)"));
  }
}

// "postgresql" for "postgresql://…"; nullopt for a path.
std::optional<std::string> url_scheme(std::string_view location) {
  const auto colon = location.find("://");
  if (colon == std::string_view::npos || colon == 0) {
    return std::nullopt;
  }
  const auto scheme = location.substr(0, colon);
  for (const char c : scheme) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return std::nullopt;
    }
  }
  return std::string(scheme);
}

// The schema version of a PostgreSQL ledger; nullopt when the database has none yet.
Result<std::optional<int>> pg_version(pg::Database& db) {
  auto has = IOT_TRY(
      pg::Statement::query(db, "SELECT to_regclass('ledger_schema') IS NOT NULL AS present"));
  if (!IOT_TRY(has.step()) || has.integer(0) == 0) {
    return std::optional<int>{};
  }
  auto s = IOT_TRY(pg::Statement::query(db, "SELECT max(version) FROM ledger_schema"));
  if (!IOT_TRY(s.step()) || s.is_null(0)) {
    return fail(ErrorKind::io, "its ledger_schema table is empty: it is not an iotfleet ledger");
  }
  return std::optional<int>(static_cast<int>(s.integer(0)));
}

Result<std::int64_t> pg_table_count(pg::Database& db) {
  auto s = IOT_TRY(pg::Statement::query(
      db, "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"));
  IOT_TRY(s.step());
  return s.integer(0);
}

// The schema of a PostgreSQL ledger, created or migrated unless it is opened for reading. One
// station migrates at a time (an advisory lock), each migration in the same transaction as the
// version it sets: stations starting together never half-migrate the shared ledger.
Result<int> pg_schema(pg::Database& db, const LedgerOptions& options) {
  const auto no_ledger = [&]() {
    return fail(ErrorKind::config,
                "no ledger in this database yet" +
                    (options.missing_hint
                         ? options.missing_hint()
                         : std::string(": `iotfleet pool import FILE` creates a ledger")));
  };
  const auto not_ours = [&]() -> Status {
    if (IOT_TRY(pg_table_count(db)) != 0) {
      return fail(ErrorKind::io,
                  "the database's schema has tables but no ledger_schema: it is not an iotfleet "
                  "ledger (give the ledger its own database or schema)");
    }
    return {};
  };
  if (options.mode == OpenMode::read) {
    const auto version = IOT_TRY(pg_version(db));
    if (!version) {
      IOT_TRY(not_ours());
      return no_ledger();
    }
    IOT_TRY(refuse_newer(*version));
    IOT_TRY(db.exec("SET default_transaction_read_only = on"));
    return *version;
  }
  auto tx = IOT_TRY(pg::Transaction::begin(db));
  IOT_TRY(db.exec("SELECT pg_advisory_xact_lock(7306115101)")); // "iotfleet ledger migration"
  auto version = IOT_TRY(pg_version(db));
  if (!version) {
    IOT_TRY(not_ours());
    if (options.mode == OpenMode::existing) {
      return no_ledger();
    }
    IOT_TRY(db.exec(k_pg_preamble));
    version = 0;
  }
  IOT_TRY(refuse_newer(*version));
  for (auto v = static_cast<std::size_t>(*version); v < k_migrations.size(); ++v) {
    IOT_TRY(db.exec(pg_sql(k_migrations[v])));
    IOT_TRY(db.exec("UPDATE ledger_schema SET version = " + std::to_string(v + 1)));
  }
  IOT_TRY(tx.commit());
  return ledger_schema_version();
}

Result<std::unique_ptr<Ledger>> open_pg_ledger(const std::string& url,
                                               const LedgerOptions& options) {
  const auto location = pg::redact_url(url);
  if (location != url && options.warn) {
    options.warn("ledger " + location +
                 ": the URL carries a password, which ends up in shell history, process lists "
                 "and logs: put it in ~/.pgpass (0600) or PGPASSWORD instead");
  }
  pg::Timeouts timeouts;
  timeouts.lock = std::chrono::milliseconds(options.busy_timeout_ms);
  auto db = IOT_TRY(pg::Database::connect(url, timeouts));
  const int schema = IOT_TRY_CTX(pg_schema(db, options), "ledger " + location);
  return std::unique_ptr<Ledger>(std::make_unique<SqlLedger<PgSql>>(
      std::move(db), location, options.mode == OpenMode::read, schema));
}

} // namespace

std::string_view to_string(TripletState state) {
  return name_of(k_triplet_states, state);
}

Result<TripletState> parse_triplet_state(std::string_view text) {
  if (auto state = value_named(k_triplet_states, text)) {
    return *state;
  }
  return fail(ErrorKind::usage,
              "unknown triplet state '" + std::string(text) +
                  "': use available, claimed, bound or burned");
}

std::string_view to_string(core::Scheme scheme) {
  return scheme == core::Scheme::product ? "product" : "device";
}

std::string_view to_string(RegistrationStatus status) {
  return name_of(k_registration_statuses, status);
}

std::string_view to_string(RecreateStep step) {
  return name_of(k_recreate_steps, step);
}

std::string_view to_string(ClaimKind kind) {
  return name_of(k_claim_kinds, kind);
}

std::string_view to_string(IssueOutcome outcome) {
  return name_of(k_issue_outcomes, outcome);
}

std::string display_location(std::string_view location) {
  return url_scheme(location) ? pg::redact_url(location) : std::string(location);
}

bool ledger_may_exist(std::string_view location) {
  std::error_code ec;
  return !location.empty() &&
         (url_scheme(location) || std::filesystem::exists(std::filesystem::path(location), ec));
}

int ledger_schema_version() {
  return static_cast<int>(k_migrations.size());
}

bool process_alive(std::int64_t pid) {
  if (pid <= 0) {
    return false;
  }
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

Result<std::unique_ptr<Ledger>> open_ledger(const std::string& location,
                                            const LedgerOptions& options) {
  const auto context = "ledger " + location;
  if (auto scheme = url_scheme(location)) {
    if (*scheme == "postgresql" || *scheme == "postgres") {
      return open_pg_ledger(location, options);
    }
    return fail(ErrorKind::config,
                "ledger " + pg::redact_url(location) + ": a " + *scheme +
                    ":// ledger is not supported: give a file path (SQLite, one station) or a "
                    "postgresql://USER@HOST[:PORT]/DATABASE URL (a ledger shared by a line)");
  }
  const std::filesystem::path path(location);
  struct stat st {};
  if (options.mode != OpenMode::create && ::stat(path.c_str(), &st) != 0 &&
      (errno == ENOENT || errno == ENOTDIR)) {
    return fail(ErrorKind::config,
                "no ledger at " + location +
                    (options.missing_hint
                         ? options.missing_hint()
                         : std::string(": `iotfleet pool import FILE` creates a ledger")));
  }
  if (options.mode == OpenMode::create && path.has_parent_path() &&
      !std::filesystem::is_directory(path.parent_path())) {
    return fail(ErrorKind::io,
                context + ": directory " + path.parent_path().string() +
                    " does not exist: create it or choose another --ledger");
  }
  const bool read_only = options.mode == OpenMode::read;
  keep_private(location, !read_only, options.warn);
  const auto access = options.mode == OpenMode::create ? sqlite::Access::create
                      : read_only                      ? sqlite::Access::read_only
                                                       : sqlite::Access::read_write;
  auto db = IOT_TRY_CTX(sqlite::Database::open(
                            path, access, 0600, std::chrono::milliseconds(options.busy_timeout_ms)),
                        "ledger");
  int schema = ledger_schema_version();
  if (read_only) {
    schema = IOT_TRY_CTX(readable_schema(db), context);
  } else {
    for (auto pragma :
         {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON"}) {
      IOT_TRY_CTX(db.exec(pragma), context);
    }
    IOT_TRY_CTX(migrate(db), context);
  }
  return std::unique_ptr<Ledger>(
      std::make_unique<SqlLedger<SqliteSql>>(std::move(db), location, read_only, schema));
}

} // namespace iot::store
