// SPDX-License-Identifier: MIT
// The SQLite ledger. Every public method takes the object's mutex and runs as one transaction
// (BEGIN IMMEDIATE: the write lock up front, so two processes never both decide on the same row).
#include "store/ledger.hpp"

#include "core/text.hpp"
#include "store/sqlite.hpp"

#include <signal.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

namespace iot::store {
namespace {

using sqlite::Database;
using sqlite::Statement;
using sqlite::Transaction;

// Migration i takes the schema from version i to i + 1. Append, never edit.
constexpr std::array<std::string_view, 2> k_migrations = {
    R"sql(
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
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
)sql",
    R"sql(
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
-- A secret the cloud issued is never forgotten: rows change status, they are never deleted.
CREATE TRIGGER registrations_keep BEFORE DELETE ON registrations
  BEGIN SELECT RAISE(ABORT, 'registrations are kept'); END;
CREATE TRIGGER registrations_keep_secret BEFORE UPDATE OF secret ON registrations
  WHEN OLD.secret <> ''
  BEGIN SELECT RAISE(ABORT, 'an issued secret is never changed'); END;
)sql",
};

constexpr std::string_view k_columns =
    "product_key, device_name, secret, scheme, state, imei, iccid, station, port, owner_pid, "
    "attempts, source, imported_at, updated_at, burned_at";

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TripletRecord read_record(const Statement& s) {
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
  for (auto status : {RegistrationStatus::pending,
                      RegistrationStatus::issued,
                      RegistrationStatus::superseded,
                      RegistrationStatus::failed}) {
    if (to_string(status) == text) {
      return status;
    }
  }
  return fail(ErrorKind::io, "ledger: unknown registration status '" + std::string(text) + "'");
}

class SqliteLedger final : public Ledger {
public:
  explicit SqliteLedger(Database db) : m_db(std::move(db)) {}

  Result<ImportSummary> import(std::span<const core::TripletRow> rows,
                               std::string_view source,
                               const Actor& actor,
                               bool skip_conflicts) override {
    std::lock_guard lock(m_mutex);
    auto tx = Transaction::begin(m_db);
    if (!tx) {
      return std::unexpected(tx.error());
    }
    auto find = Statement::prepare(
        m_db, "SELECT secret, scheme FROM triplets WHERE product_key = ?1 AND device_name = ?2");
    auto insert = Statement::prepare(
        m_db,
        "INSERT INTO triplets (product_key, device_name, secret, scheme, state, source, "
        "imported_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'available', ?5, ?6, ?6)");
    if (!find || !insert) {
      return std::unexpected(!find ? find.error() : insert.error());
    }
    ImportSummary summary;
    const auto time = now_ms();
    for (const auto& row : rows) {
      const auto scheme = to_string(row.scheme);
      find->reset();
      find->bind(1, row.product_key).bind(2, row.device_name);
      auto found = find->step();
      if (!found) {
        return std::unexpected(found.error());
      }
      if (*found) {
        if (find->text(0) == row.secret && find->text(1) == scheme) {
          ++summary.unchanged;
        } else {
          summary.conflicts.push_back(
              {row.line,
               "DeviceName " + row.device_name + " of ProductKey " + row.product_key +
                   " is already in the ledger with a different " +
                   (find->text(1) == scheme
                        ? std::string(row.scheme == core::Scheme::device ? "DeviceSecret"
                                                                         : "ProductSecret")
                        : std::string("scheme")) +
                   "; a DeviceName can have only one secret: fix the file or release and "
                   "re-register the device"});
        }
        continue;
      }
      insert->reset();
      insert->bind(1, row.product_key)
          .bind(2, row.device_name)
          .bind(3, row.secret)
          .bind(4, scheme)
          .bind(5, source)
          .bind(6, time);
      if (auto ok = insert->run(); !ok) {
        return std::unexpected(ok.error());
      }
      ++summary.added;
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
    if (auto ok = append_event(event); !ok) {
      return std::unexpected(ok.error());
    }
    if (auto ok = tx->commit(); !ok) {
      return std::unexpected(ok.error());
    }
    summary.committed = true;
    return summary;
  }

  Result<std::optional<Claim>> claim(const ClaimRequest& request) override {
    if (request.imei.empty()) {
      return fail(ErrorKind::failure, "claim: the module's IMEI is empty");
    }
    if (request.dry_run) {
      std::lock_guard lock(m_mutex);
      auto tx = Transaction::begin(m_db);
      if (!tx) {
        return std::unexpected(tx.error());
      }
      return claim_locked(request); // the transaction rolls back
    }
    std::optional<Claim> claimed;
    auto ok = write([&]() -> Status {
      auto r = claim_locked(request);
      if (!r) {
        return std::unexpected(r.error());
      }
      claimed = std::move(*r);
      return {};
    });
    if (!ok) {
      return std::unexpected(ok.error());
    }
    return claimed;
  }

  Status mark_attempted(const TripletKey& key, const Actor& actor) override {
    return transition(key,
                      actor,
                      {TripletState::claimed, TripletState::bound},
                      "SET state = 'bound', attempts = attempts + 1",
                      "attempt",
                      "write attempted");
  }

private:
  Result<std::optional<Claim>> claim_locked(const ClaimRequest& request) {
    auto existing = select_one("WHERE imei = ?1", {request.imei});
    if (!existing) {
      return std::unexpected(existing.error());
    }
    if (*existing) {
      return claim_existing(**existing, request);
    }
    Result<std::optional<TripletRecord>> candidate;
    if (request.device_name) {
      candidate = select_one(request.product_key ? "WHERE device_name = ?1 AND product_key = ?2"
                                                 : "WHERE device_name = ?1 ORDER BY id",
                             {*request.device_name, request.product_key.value_or("")});
      if (candidate && *candidate && (*candidate)->state != TripletState::available) {
        return fail(ErrorKind::module,
                    "the triplet for DeviceName " + *request.device_name +
                        " is already taken: " + describe(**candidate) +
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
      candidate = select_one(where + " ORDER BY id LIMIT 1", args);
    }
    if (!candidate) {
      return std::unexpected(candidate.error());
    }
    if (!*candidate) {
      return std::optional<Claim>{};
    }
    auto record = std::move(**candidate);
    const auto time = now_ms();
    auto update = Statement::prepare(
        m_db,
        "UPDATE triplets SET state = 'claimed', imei = ?1, iccid = ?2, station = ?3, port = ?4, "
        "owner_pid = ?5, updated_at = ?6 WHERE product_key = ?7 AND device_name = ?8 AND "
        "state = 'available'");
    if (!update) {
      return std::unexpected(update.error());
    }
    update->bind(1, request.imei)
        .bind(2, request.iccid)
        .bind(3, request.actor.station)
        .bind(4, request.actor.port)
        .bind(5, request.actor.pid)
        .bind(6, time)
        .bind(7, record.product_key)
        .bind(8, record.device_name);
    if (auto ok = update->run(); !ok) {
      return std::unexpected(ok.error());
    }
    record.state = TripletState::claimed;
    record.imei = request.imei;
    record.iccid = request.iccid;
    record.station = request.actor.station;
    record.port = request.actor.port;
    record.owner_pid = request.actor.pid;
    record.updated_at_ms = time;
    if (auto ok = append_event(transition_event(record, request.actor, "claim", "ok", "")); !ok) {
      return std::unexpected(ok.error());
    }
    return std::optional<Claim>{Claim{ClaimKind::fresh, std::move(record)}};
  }

public:
  Status mark_burned(const TripletKey& key, const Actor& actor, std::string_view detail) override {
    return transition(key,
                      actor,
                      {TripletState::bound},
                      "SET state = 'burned', burned_at = ?9",
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
    auto ok = transition(key,
                         actor,
                         from,
                         "SET state = 'available', imei = '', iccid = '', station = '', "
                         "port = '', owner_pid = 0, burned_at = 0",
                         "release",
                         reason,
                         &before);
    if (!ok) {
      return std::unexpected(ok.error());
    }
    return before;
  }

  Result<std::size_t>
  expire_claims(const Actor& actor,
                const std::function<bool(std::int64_t pid)>& is_alive) override {
    std::vector<TripletRecord> stale;
    auto done = write([&]() -> Status { return expire_locked(actor, is_alive, stale); });
    if (!done) {
      return std::unexpected(done.error());
    }
    return stale.size();
  }

  Status expire_locked(const Actor& actor,
                       const std::function<bool(std::int64_t pid)>& is_alive,
                       std::vector<TripletRecord>& stale) {
    auto ok = for_each_locked("WHERE state = 'claimed' AND station = ?1",
                              {actor.station},
                              [&](const TripletRecord& r) -> Status {
                                if (r.owner_pid == 0 || !is_alive(r.owner_pid)) {
                                  stale.push_back(r);
                                }
                                return {};
                              });
    if (!ok) {
      return std::unexpected(ok.error());
    }
    auto update = Statement::prepare(
        m_db,
        "UPDATE triplets SET state = 'available', imei = '', iccid = '', station = '', "
        "port = '', owner_pid = 0, updated_at = ?1 WHERE product_key = ?2 AND device_name = ?3 "
        "AND state = 'claimed'");
    if (!update) {
      return std::unexpected(update.error());
    }
    for (const auto& r : stale) {
      update->reset();
      update->bind(1, now_ms()).bind(2, r.product_key).bind(3, r.device_name);
      if (auto run = update->run(); !run) {
        return std::unexpected(run.error());
      }
      auto event =
          transition_event(r,
                           actor,
                           "expire",
                           "ok",
                           "claim of process " + std::to_string(r.owner_pid) + " on " + r.port +
                               " expired: it is gone and had not started writing");
      if (auto appended = append_event(event); !appended) {
        return std::unexpected(appended.error());
      }
    }
    return {};
  }

  Result<std::vector<TripletRecord>> find(std::string_view device_name,
                                          const std::optional<std::string>& product_key) override {
    std::lock_guard lock(m_mutex);
    std::vector<TripletRecord> found;
    auto ok = for_each_locked(product_key ? "WHERE device_name = ?1 AND product_key = ?2"
                                          : "WHERE device_name = ?1",
                              {std::string(device_name), product_key.value_or("")},
                              [&](const TripletRecord& r) -> Status {
                                found.push_back(r);
                                return {};
                              });
    if (!ok) {
      return std::unexpected(ok.error());
    }
    return found;
  }

  Result<std::optional<TripletRecord>> find_by_imei(std::string_view imei) override {
    std::lock_guard lock(m_mutex);
    return select_one("WHERE imei = ?1", {std::string(imei)});
  }

  Result<std::vector<StateCount>> counts() override {
    std::lock_guard lock(m_mutex);
    auto s = Statement::prepare(m_db,
                                "SELECT product_key, station, state, count(*) FROM triplets "
                                "GROUP BY product_key, station, state ORDER BY 1, 2, 3");
    if (!s) {
      return std::unexpected(s.error());
    }
    std::vector<StateCount> out;
    for (;;) {
      auto row = s->step();
      if (!row) {
        return std::unexpected(row.error());
      }
      if (!*row) {
        break;
      }
      out.push_back({s->text(0),
                     s->text(1),
                     parse_triplet_state(s->text(2)).value_or(TripletState::available),
                     s->integer(3)});
    }
    return out;
  }

  Status for_each(const RecordFilter& filter,
                  const std::function<Status(const TripletRecord&)>& callback) override {
    std::string where = "WHERE 1";
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
    auto ok = write([&]() -> Status {
      r.requested_at_ms = now_ms();
      auto insert = Statement::prepare(
          m_db,
          "INSERT INTO registrations (product_key, device_name, status, requested_at, station, "
          "pid) VALUES (?1, ?2, 'pending', ?3, ?4, ?5)");
      if (!insert) {
        return std::unexpected(insert.error());
      }
      insert->bind(1, key.product_key)
          .bind(2, key.device_name)
          .bind(3, r.requested_at_ms)
          .bind(4, actor.station)
          .bind(5, actor.pid);
      if (auto done = insert->run(); !done) {
        return done;
      }
      r.id = m_db.last_insert_rowid();
      return append_event(registration_event(r, actor, "pending", "request about to be sent"));
    });
    if (!ok) {
      return std::unexpected(ok.error());
    }
    return r;
  }

  Result<PoolUpdate> record_registration(const Registration& pending,
                                         std::string_view secret,
                                         const Actor& actor) override {
    if (secret.empty()) {
      return fail(ErrorKind::failure, "record_registration: empty secret");
    }
    PoolUpdate update = PoolUpdate::added;
    auto ok = write([&]() -> Status {
      const auto time = now_ms();
      auto issued = Statement::prepare(
          m_db,
          "UPDATE registrations SET status = 'issued', secret = ?2, answered_at = ?3 "
          "WHERE id = ?1 AND status = 'pending'");
      auto older = Statement::prepare(
          m_db,
          "UPDATE registrations SET status = 'superseded', detail = CASE detail WHEN '' THEN "
          "?4 ELSE detail END WHERE product_key = ?1 AND device_name = ?2 AND id <> ?3 AND "
          "status IN ('issued', 'pending')");
      if (!issued || !older) {
        return std::unexpected(!issued ? issued.error() : older.error());
      }
      issued->bind(1, pending.id).bind(2, secret).bind(3, time);
      if (auto done = issued->run(); !done) {
        return done;
      }
      if (m_db.changes() != 1) {
        return fail(ErrorKind::failure,
                    "registration " + std::to_string(pending.id) + " of " + pending.device_name +
                        " is not pending");
      }
      older->bind(1, pending.product_key)
          .bind(2, pending.device_name)
          .bind(3, pending.id)
          .bind(4, "a newer registration was answered at " + core::iso8601_utc(time));
      if (auto done = older->run(); !done) {
        return done;
      }
      auto current = select_one("WHERE product_key = ?1 AND device_name = ?2",
                                {pending.product_key, pending.device_name});
      if (!current) {
        return std::unexpected(current.error());
      }
      std::string detail;
      if (!*current) {
        auto insert = Statement::prepare(
            m_db,
            "INSERT INTO triplets (product_key, device_name, secret, scheme, state, source, "
            "imported_at, updated_at) VALUES (?1, ?2, ?3, 'device', 'available', "
            "'dynamic registration', ?4, ?4)");
        if (!insert) {
          return std::unexpected(insert.error());
        }
        insert->bind(1, pending.product_key)
            .bind(2, pending.device_name)
            .bind(3, secret)
            .bind(4, time);
        if (auto done = insert->run(); !done) {
          return done;
        }
        update = PoolUpdate::added;
        detail = "secret issued; added to the pool";
      } else if ((*current)->state == TripletState::available &&
                 (*current)->scheme == core::Scheme::device) {
        auto set = Statement::prepare(m_db,
                                      "UPDATE triplets SET secret = ?3, updated_at = ?4 WHERE "
                                      "product_key = ?1 AND device_name = ?2");
        if (!set) {
          return std::unexpected(set.error());
        }
        set->bind(1, pending.product_key)
            .bind(2, pending.device_name)
            .bind(3, secret)
            .bind(4, time);
        if (auto done = set->run(); !done) {
          return done;
        }
        update = PoolUpdate::updated;
        detail = "secret issued; replaces the pool's older one";
      } else {
        update = PoolUpdate::busy;
        detail = "secret issued and recorded, but the pool's triplet is " +
                 std::string(to_string((*current)->state)) +
                 ((*current)->imei.empty() ? "" : " (IMEI " + (*current)->imei + ")") +
                 ": it keeps the older secret";
      }
      Registration answered = pending;
      return append_event(registration_event(answered, actor, "issued", detail));
    });
    if (!ok) {
      return std::unexpected(ok.error());
    }
    return update;
  }

  Status fail_registration(const Registration& pending,
                           const Actor& actor,
                           std::string_view reason) override {
    return write([&]() -> Status {
      auto s = Statement::prepare(m_db,
                                  "UPDATE registrations SET status = 'failed', answered_at = ?2, "
                                  "detail = ?3 WHERE id = ?1 AND status = 'pending'");
      if (!s) {
        return std::unexpected(s.error());
      }
      s->bind(1, pending.id).bind(2, now_ms()).bind(3, reason);
      if (auto done = s->run(); !done) {
        return done;
      }
      return append_event(registration_event(pending, actor, "failed", reason));
    });
  }

  Result<std::vector<Registration>> registrations(const TripletKey& key) override {
    std::lock_guard lock(m_mutex);
    auto s = Statement::prepare(
        m_db,
        "SELECT id, status, secret, requested_at, answered_at, station, pid, detail FROM "
        "registrations WHERE product_key = ?1 AND device_name = ?2 ORDER BY id");
    if (!s) {
      return std::unexpected(s.error());
    }
    s->bind(1, key.product_key).bind(2, key.device_name);
    std::vector<Registration> out;
    for (;;) {
      auto row = s->step();
      if (!row) {
        return std::unexpected(row.error());
      }
      if (!*row) {
        return out;
      }
      Registration r;
      r.id = s->integer(0);
      r.product_key = key.product_key;
      r.device_name = key.device_name;
      auto status = parse_registration_status(s->text(1));
      if (!status) {
        return std::unexpected(status.error());
      }
      r.status = *status;
      r.secret = s->text(2);
      r.requested_at_ms = s->integer(3);
      r.answered_at_ms = s->integer(4);
      r.station = s->text(5);
      r.pid = s->integer(6);
      r.detail = s->text(7);
      out.push_back(std::move(r));
    }
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
    auto s = Statement::prepare(
        m_db,
        std::string("SELECT * FROM (SELECT id, time_ms, station, port, imei, product_key, "
                    "device_name, action, outcome, detail FROM events ") +
            (device_name ? "WHERE device_name = ?2 " : "") +
            "ORDER BY id DESC LIMIT ?1) ORDER BY id");
    if (!s) {
      return std::unexpected(s.error());
    }
    s->bind(1, static_cast<std::int64_t>(limit));
    if (device_name) {
      s->bind(2, *device_name);
    }
    std::vector<Event> out;
    for (;;) {
      auto row = s->step();
      if (!row) {
        return std::unexpected(row.error());
      }
      if (!*row) {
        break;
      }
      out.push_back(Event{s->integer(1),
                          s->text(2),
                          s->text(3),
                          s->text(4),
                          s->text(5),
                          s->text(6),
                          s->text(7),
                          s->text(8),
                          s->text(9)});
    }
    return out;
  }

private:
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
    auto update = Statement::prepare(
        m_db,
        "UPDATE triplets SET iccid = ?1, station = ?2, port = ?3, owner_pid = ?4, updated_at = "
        "?5 WHERE product_key = ?6 AND device_name = ?7");
    if (!update) {
      return std::unexpected(update.error());
    }
    const auto time = now_ms();
    update->bind(1, request.iccid)
        .bind(2, request.actor.station)
        .bind(3, request.actor.port)
        .bind(4, request.actor.pid)
        .bind(5, time)
        .bind(6, record.product_key)
        .bind(7, record.device_name);
    if (auto ok = update->run(); !ok) {
      return std::unexpected(ok.error());
    }
    const std::string previous_port = record.station + " " + record.port;
    record.iccid = request.iccid;
    record.station = request.actor.station;
    record.port = request.actor.port;
    record.owner_pid = request.actor.pid;
    record.updated_at_ms = time;
    auto event =
        transition_event(record, request.actor, "claim", "resumed", "held since " + previous_port);
    if (auto ok = append_event(event); !ok) {
      return std::unexpected(ok.error());
    }
    return std::optional<Claim>{Claim{ClaimKind::resumed, std::move(record)}};
  }

  // One state change: checks the current state is one of `from`, applies `set` (which may use
  // ?9 = now), appends the event. `before` receives the record as it was.
  Status transition(const TripletKey& key,
                    const Actor& actor,
                    const std::vector<TripletState>& from,
                    std::string_view set,
                    std::string_view action,
                    std::string_view detail,
                    TripletRecord* before = nullptr) {
    return write([&]() -> Status {
      return transition_locked(key, actor, from, set, action, detail, before);
    });
  }

  Status transition_locked(const TripletKey& key,
                           const Actor& actor,
                           const std::vector<TripletState>& from,
                           std::string_view set,
                           std::string_view action,
                           std::string_view detail,
                           TripletRecord* before) {
    auto current = select_one("WHERE product_key = ?1 AND device_name = ?2",
                              {key.product_key, key.device_name});
    if (!current) {
      return std::unexpected(current.error());
    }
    if (!*current) {
      return fail(ErrorKind::usage,
                  "no triplet " + key.product_key + "/" + key.device_name +
                      " in the ledger (`iotfleet pool status` lists what it holds)");
    }
    const auto& record = **current;
    bool allowed = false;
    std::string expected;
    for (auto state : from) {
      allowed = allowed || record.state == state;
      expected += (expected.empty() ? "" : " or ") + std::string(to_string(state));
    }
    if (!allowed) {
      return fail(ErrorKind::usage,
                  std::string(action) + " " + key.product_key + "/" + key.device_name + ": it is " +
                      std::string(to_string(record.state)) + ", not " + expected);
    }
    const auto time = now_ms();
    auto update =
        Statement::prepare(m_db,
                           "UPDATE triplets " + std::string(set) +
                               ", updated_at = ?9 WHERE product_key = ?1 AND device_name = ?2");
    if (!update) {
      return std::unexpected(update.error());
    }
    update->bind(1, key.product_key).bind(2, key.device_name).bind(9, time);
    if (auto ok = update->run(); !ok) {
      return ok;
    }
    Event event = transition_event(record, actor, action, "ok", detail);
    event.time_ms = time;
    if (auto ok = append_event(event); !ok) {
      return ok;
    }
    if (before) {
      *before = record;
    }
    return {};
  }

  // Group commit. Every change is one operation, run in its own savepoint inside a transaction
  // that may hold the operations of other threads too: the first thread to arrive commits for
  // everyone waiting (one fsync for the batch), and each call returns only once the commit that
  // holds its operation is durable. With 16 fixtures this turns 16 fsyncs into one or two.
  Status write(const std::function<Status()>& body) {
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
        p->result = std::unexpected(tx.error());
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
          p->result = std::unexpected(ok.error());
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

  static Event registration_event(const Registration& r,
                                  const Actor& actor,
                                  std::string_view outcome,
                                  std::string_view detail) {
    return Event{now_ms(),
                 actor.station,
                 actor.port,
                 "",
                 r.product_key,
                 r.device_name,
                 "register",
                 std::string(outcome),
                 std::string(detail)};
  }

  Status append_event(const Event& e) {
    auto s = Statement::prepare(
        m_db,
        "INSERT INTO events (time_ms, station, port, imei, product_key, device_name, action, "
        "outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    if (!s) {
      return std::unexpected(s.error());
    }
    s->bind(1, e.time_ms)
        .bind(2, e.station)
        .bind(3, e.port)
        .bind(4, e.imei)
        .bind(5, e.product_key)
        .bind(6, e.device_name)
        .bind(7, e.action)
        .bind(8, e.outcome)
        .bind(9, e.detail);
    return s->run();
  }

  Result<std::optional<TripletRecord>> select_one(const std::string& where,
                                                  const std::vector<std::string>& args) {
    std::optional<TripletRecord> found;
    auto ok = for_each_locked(where, args, [&](const TripletRecord& r) -> Status {
      if (!found) {
        found = r;
      }
      return {};
    });
    if (!ok) {
      return std::unexpected(ok.error());
    }
    return found;
  }

  Status for_each_locked(const std::string& where,
                         const std::vector<std::string>& args,
                         const std::function<Status(const TripletRecord&)>& callback) {
    auto s =
        Statement::prepare(m_db, "SELECT " + std::string(k_columns) + " FROM triplets " + where);
    if (!s) {
      return std::unexpected(s.error());
    }
    for (std::size_t i = 0; i < args.size(); ++i) {
      s->bind(static_cast<int>(i + 1), args[i]);
    }
    for (;;) {
      auto row = s->step();
      if (!row) {
        return std::unexpected(row.error());
      }
      if (!*row) {
        return {};
      }
      if (auto ok = callback(read_record(*s)); !ok) {
        return ok;
      }
    }
  }

  std::mutex m_mutex; // the connection
  Database m_db;
  std::mutex m_queue_mutex; // the group commit
  std::condition_variable m_committed;
  std::vector<Pending*> m_queue;
  bool m_committing = false;
};

Result<int> user_version(Database& db) {
  auto s = Statement::prepare(db, "PRAGMA user_version");
  if (!s) {
    return std::unexpected(s.error());
  }
  auto row = s->step();
  if (!row) {
    return std::unexpected(row.error());
  }
  return static_cast<int>(s->integer(0));
}

Status migrate(Database& db) {
  auto version = user_version(db);
  if (!version) {
    return std::unexpected(version.error());
  }
  if (*version > ledger_schema_version()) {
    return fail(ErrorKind::config,
                "its schema version is " + std::to_string(*version) + ", newer than this " +
                    "iotfleet understands (" + std::to_string(ledger_schema_version()) +
                    "): use a newer iotfleet");
  }
  for (auto v = static_cast<std::size_t>(*version); v < k_migrations.size(); ++v) {
    auto tx = Transaction::begin(db);
    if (!tx) {
      return std::unexpected(tx.error());
    }
    if (v == 0) {
      // A database that already has tables but no version is someone else's file.
      auto s = Statement::prepare(db, "SELECT count(*) FROM sqlite_master");
      if (!s) {
        return std::unexpected(s.error());
      }
      if (auto row = s->step(); !row) {
        return std::unexpected(row.error());
      }
      if (s->integer(0) != 0) {
        return fail(ErrorKind::io, "it is an SQLite database but not an iotfleet ledger");
      }
    }
    if (auto ok = db.exec(k_migrations[v]); !ok) {
      return ok;
    }
    if (auto ok = db.exec("PRAGMA user_version = " + std::to_string(v + 1)); !ok) {
      return ok;
    }
    if (auto ok = tx->commit(); !ok) {
      return ok;
    }
  }
  return {};
}

} // namespace

std::string_view to_string(TripletState state) {
  switch (state) {
  case TripletState::available:
    return "available";
  case TripletState::claimed:
    return "claimed";
  case TripletState::bound:
    return "bound";
  case TripletState::burned:
    return "burned";
  }
  return "?";
}

Result<TripletState> parse_triplet_state(std::string_view text) {
  for (auto state : {TripletState::available,
                     TripletState::claimed,
                     TripletState::bound,
                     TripletState::burned}) {
    if (text == to_string(state)) {
      return state;
    }
  }
  return fail(ErrorKind::usage,
              "unknown triplet state '" + std::string(text) +
                  "': use available, claimed, bound or burned");
}

std::string_view to_string(core::Scheme scheme) {
  return scheme == core::Scheme::product ? "product" : "device";
}

std::string_view to_string(RegistrationStatus status) {
  switch (status) {
  case RegistrationStatus::pending:
    return "pending";
  case RegistrationStatus::issued:
    return "issued";
  case RegistrationStatus::superseded:
    return "superseded";
  case RegistrationStatus::failed:
    return "failed";
  }
  return "?";
}

std::string_view to_string(ClaimKind kind) {
  switch (kind) {
  case ClaimKind::fresh:
    return "fresh";
  case ClaimKind::resumed:
    return "resumed";
  case ClaimKind::burned:
    return "burned";
  }
  return "?";
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

Result<std::unique_ptr<Ledger>> open_ledger(const std::filesystem::path& path,
                                            const LedgerOptions& options) {
  const auto context = "ledger " + path.string();
  if (path.has_parent_path() && !std::filesystem::is_directory(path.parent_path())) {
    return fail(ErrorKind::io,
                context + ": directory " + path.parent_path().string() +
                    " does not exist: create it or choose another --ledger");
  }
  auto db = Database::open(path, 0600);
  if (!db) {
    return std::unexpected(db.error().context("ledger"));
  }
  sqlite3_busy_timeout(db->handle(), options.busy_timeout_ms);
  for (auto pragma :
       {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON"}) {
    if (auto ok = db->exec(pragma); !ok) {
      return std::unexpected(ok.error().context(context));
    }
  }
  if (auto ok = migrate(*db); !ok) {
    return std::unexpected(ok.error().context(context));
  }
  return std::unique_ptr<Ledger>(std::make_unique<SqliteLedger>(std::move(*db)));
}

} // namespace iot::store
