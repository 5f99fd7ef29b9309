// SPDX-License-Identifier: MIT
// The cloud emulator's state: one SQLite database (WAL) per state dir, so that separate CLI runs
// see one cloud. Thread-safe: every read() / write() borrows a connection from a pool (one per
// concurrent caller, opened on demand), reads run in a snapshot transaction, writes are
// serialised by a mutex and run in one BEGIN IMMEDIATE transaction each (all or nothing).
//
// Access keys and products never change after seeding and are kept in memory; devices, status
// counts and batch registrations live in the database. Device rows are ordered by `seq`, the
// create order (larger = newer): "sorted by create time desc" is ORDER BY seq DESC.
#pragma once

#include "core/error.hpp"
#include "sim/cloud_scenario.hpp"

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace iot::sim::cloud {

// Raised by the SQLite wrappers; read() and write() turn it into an ErrorKind::io error.
struct SqlError {
  std::string message;
};

class Conn;

// A prepared statement borrowed from a connection's cache; reset and unbound when destroyed.
class Stmt {
public:
  Stmt(Conn& conn, sqlite3_stmt* stmt) : m_conn(&conn), m_stmt(stmt) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& other) noexcept : m_conn(other.m_conn), m_stmt(other.m_stmt) {
    other.m_stmt = nullptr;
  }
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt();

  // Parameters are 1-based, as in SQLite.
  Stmt& bind(int index, std::int64_t value);
  Stmt& bind(int index, std::string_view value);
  Stmt& bind_null(int index);
  // true while a row is available.
  bool step();
  // Steps to completion (for statements without rows).
  void run();
  // Ready to run again (bindings are kept until rebound).
  void reset();

  [[nodiscard]] std::int64_t int64(int column) const;
  [[nodiscard]] std::string text(int column) const;
  [[nodiscard]] bool is_null(int column) const;

private:
  Conn* m_conn;
  sqlite3_stmt* m_stmt;
};

class Conn {
public:
  explicit Conn(const std::filesystem::path& path);
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn();

  // A cached prepared statement for `sql` (the text is the cache key).
  [[nodiscard]] Stmt prepare(std::string_view sql);
  void exec(const char* sql);
  [[nodiscard]] std::int64_t last_insert_rowid() const;
  [[nodiscard]] int changes() const;
  [[noreturn]] void raise(std::string_view what) const;

private:
  sqlite3* m_db = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> m_cache;
};

struct AccessKeyRow {
  std::string id;
  std::string secret;
  std::string account;
};

struct ProductRow {
  std::string product_key;
  std::string name;
  std::string secret;
  int node_type = 0;
  int data_format = 1;
  std::string auth_type;
  int net_type = 6;
  std::string commodity;
  std::string description;
  std::int64_t created_ms = 0;
  std::int64_t seq = 0;         // create order
  bool dynamic_register = true; // §4 dynamic registration switched on
};

struct DeviceRow {
  std::int64_t seq = 0;
  std::string product_key;
  std::string device_name;
  std::string device_secret;
  std::string iot_id;
  std::string nickname;
  std::string status;         // ONLINE, OFFLINE, UNACTIVE, DISABLE
  std::string enabled_status; // the status EnableThing restores (= status unless DISABLE)
  std::string firmware;
  std::string ip;
  std::int64_t created_ms = 0;
  std::int64_t modified_ms = 0;
  std::int64_t active_ms = 0; // 0: never activated
  std::int64_t online_ms = 0; // last time it came online; 0: never
  std::int64_t status_ms = 0; // last status change
};

// A device group (ScenarioGroup, with its GroupId). rule_key = "" for a static group.
struct GroupRow {
  std::string group_id;
  std::string name;
  std::string description;
  std::string rule_key;
  std::string rule_value;
  std::int64_t created_ms = 0;
  [[nodiscard]] bool dynamic() const { return !rule_key.empty(); }
};

struct StatusCounts {
  std::int64_t online = 0;
  std::int64_t offline = 0;
  std::int64_t unactive = 0;
  std::int64_t disable = 0;
  [[nodiscard]] std::int64_t total() const { return online + offline + unactive + disable; }
  [[nodiscard]] std::int64_t of(std::string_view status) const;
};

struct SeedStats {
  std::int64_t products = 0;
  std::int64_t devices = 0;
  double seconds = 0;
};

class CloudStore {
public:
  // Opens (creating if needed) the database at `path` and its schema. Access keys and products
  // of an already seeded database are loaded.
  [[nodiscard]] static Result<std::unique_ptr<CloudStore>> open(const std::filesystem::path& path);
  CloudStore(const CloudStore&) = delete;
  CloudStore& operator=(const CloudStore&) = delete;
  ~CloudStore();

  [[nodiscard]] bool seeded() const { return m_seeded; }
  // Seeds access keys, products and devices in one transaction (ErrorKind::usage if already
  // seeded). Deterministic for a given scenario and seed.
  [[nodiscard]] Result<SeedStats> seed(const Scenario& scenario, std::uint64_t seed);

  [[nodiscard]] const AccessKeyRow* access_key(std::string_view id) const;
  [[nodiscard]] const ProductRow* product(std::string_view product_key) const;
  // Every product, newest first.
  [[nodiscard]] const std::vector<ProductRow>& products() const { return m_products; }
  [[nodiscard]] const std::string& region() const { return m_region; }
  [[nodiscard]] const std::string& iot_instance_id() const { return m_iot_instance_id; }
  // How simulated devices behave in OTA tasks (the scenario's "ota", kept in the state).
  [[nodiscard]] const OtaScenario& ota() const { return m_ota; }
  // The directory of the database (uploaded objects live under <state dir>/oss).
  [[nodiscard]] std::filesystem::path state_dir() const { return m_path.parent_path(); }
  // A per-database secret that makes NextTokens opaque and tamper-evident.
  [[nodiscard]] const std::string& token_salt() const { return m_token_salt; }

  // Runs f(conn) in a read (snapshot) transaction.
  template <class F> auto read(F&& f) -> Result<decltype(f(std::declval<Conn&>()))> {
    return run(false, std::forward<F>(f));
  }
  // Runs f(conn) in a write transaction; committed if f returns normally, rolled back if it
  // throws. Bumps generation() after a commit.
  template <class F> auto write(F&& f) -> Result<decltype(f(std::declval<Conn&>()))> {
    return run(true, std::forward<F>(f));
  }
  // Changes with every committed write.
  [[nodiscard]] std::uint64_t generation() const { return m_generation.load(); }

  // --- Queries (inside read() or write()) ------------------------------------------------------
  [[nodiscard]] static StatusCounts counts(Conn& c, std::string_view product_key);
  // Adds `delta` devices of `status` to the product's counters.
  static void add_count(Conn& c, std::string_view product_key, std::string_view status, int delta);
  // `limit` devices of the product (of `status` if not empty), newest first, skipping `offset`.
  // Sequential paging is O(page): the position of each page's end is remembered.
  [[nodiscard]] std::vector<DeviceRow> page(Conn& c,
                                            std::string_view product_key,
                                            std::string_view status,
                                            std::int64_t offset,
                                            std::int64_t limit);
  // Devices older than `before_seq`, newest first (NextToken continuation).
  [[nodiscard]] static std::vector<DeviceRow>
  page_before(Conn& c, std::string_view product_key, std::int64_t before_seq, std::int64_t limit);
  [[nodiscard]] static std::optional<DeviceRow>
  device(Conn& c, std::string_view product_key, std::string_view device_name);
  [[nodiscard]] static std::optional<DeviceRow> device_by_iot_id(Conn& c, std::string_view iot_id);
  [[nodiscard]] static std::optional<DeviceRow> device_by_seq(Conn& c, std::int64_t seq);
  // Inserts a device (seq assigned; counters updated). Returns its seq.
  static std::int64_t insert_device(Conn& c, const DeviceRow& row);
  // Rewrites every mutable column of row (by seq) and fixes the counters.
  static void update_device(Conn& c, const DeviceRow& before, const DeviceRow& after);
  // Deletes the device with its tags and group memberships.
  static void delete_device(Conn& c, const DeviceRow& row);

  // Device tags, in the order they were first saved; save_tags adds or overwrites.
  [[nodiscard]] static std::vector<std::pair<std::string, std::string>>
  tags(Conn& c, std::string_view iot_id);
  static void save_tags(Conn& c,
                        std::string_view iot_id,
                        const std::vector<std::pair<std::string, std::string>>& tags);
  // The groups the device is in: static ones it was added to, dynamic ones whose tag it has.
  [[nodiscard]] static std::vector<GroupRow> groups_of(Conn& c, std::string_view iot_id);
  [[nodiscard]] static std::optional<GroupRow> group(Conn& c, std::string_view group_id);
  // Adds a device to a static group; false when it already was in it.
  static bool add_member(Conn& c, std::string_view group_id, std::string_view iot_id);
  // The static groups the device is in.
  [[nodiscard]] static std::int64_t static_group_count(Conn& c, std::string_view iot_id);
  // Every group, in creation order.
  [[nodiscard]] static std::vector<GroupRow> all_groups(Conn& c);
  // The seqs of the devices in a group (members of a static one, holders of a dynamic one's
  // tag), in device order.
  [[nodiscard]] static std::vector<std::int64_t> member_seqs(Conn& c, const GroupRow& group);
  // The seqs of every device, of one product when product_key is not empty, in device order.
  [[nodiscard]] static std::vector<std::int64_t> device_seqs(Conn& c, std::string_view product_key);

private:
  explicit CloudStore(std::filesystem::path path);

  template <class F> auto run(bool writing, F&& f) -> Result<decltype(f(std::declval<Conn&>()))>;
  std::unique_ptr<Conn> borrow();
  void give_back(std::unique_ptr<Conn> conn);
  void load();

  std::filesystem::path m_path;
  std::mutex m_pool_mutex;
  std::vector<std::unique_ptr<Conn>> m_pool;
  std::mutex m_write_mutex;
  std::atomic<std::uint64_t> m_generation{0};

  bool m_seeded = false;
  std::string m_region;
  std::string m_iot_instance_id;
  std::string m_token_salt;
  OtaScenario m_ota;
  std::unordered_map<std::string, AccessKeyRow> m_access_keys;
  std::vector<ProductRow> m_products; // newest first
  std::unordered_map<std::string, std::size_t> m_product_index;

  // Page-end positions: "pk\0status\0offset" -> (generation, seq of the row before offset).
  std::mutex m_cursor_mutex;
  std::unordered_map<std::string, std::pair<std::uint64_t, std::int64_t>> m_cursors;
};

template <class F>
auto CloudStore::run(bool writing, F&& f) -> Result<decltype(f(std::declval<Conn&>()))> {
  using T = decltype(f(std::declval<Conn&>()));
  std::unique_ptr<Conn> conn;
  std::unique_lock<std::mutex> write_lock(m_write_mutex, std::defer_lock);
  if (writing) {
    write_lock.lock();
  }
  try {
    conn = borrow();
  } catch (const SqlError& e) {
    return fail(ErrorKind::io, "cloud state: " + e.message);
  }
  bool open = false;
  try {
    conn->exec(writing ? "BEGIN IMMEDIATE" : "BEGIN");
    open = true;
    if constexpr (std::is_void_v<T>) {
      f(*conn);
      conn->exec("COMMIT");
      open = false;
      if (writing) {
        m_generation.fetch_add(1);
      }
      give_back(std::move(conn));
      return {};
    } else {
      T value = f(*conn);
      conn->exec("COMMIT");
      open = false;
      if (writing) {
        m_generation.fetch_add(1);
      }
      give_back(std::move(conn));
      return value;
    }
  } catch (const SqlError& e) {
    if (open) {
      try {
        conn->exec("ROLLBACK");
      } catch (const SqlError&) {
        conn.reset(); // a connection that cannot roll back is not reused
      }
    }
    if (conn) {
      give_back(std::move(conn));
    }
    return fail(ErrorKind::io, "cloud state: " + e.message);
  } catch (...) {
    if (open) {
      try {
        conn->exec("ROLLBACK");
      } catch (const SqlError&) {
        conn.reset();
      }
    }
    if (conn) {
      give_back(std::move(conn));
    }
    throw;
  }
}

} // namespace iot::sim::cloud
