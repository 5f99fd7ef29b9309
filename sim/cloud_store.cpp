// SPDX-License-Identifier: MIT
#include "sim/cloud_store.hpp"

#include "sim/cloud_rows.hpp"
#include "sim/cloud_util.hpp"
#include "sim/identity.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <unordered_set>

namespace iot::sim::cloud {

const RowTable<DeviceRow>& device_table() {
  static const RowTable<DeviceRow> table("devices",
                                         {{"seq", &DeviceRow::seq},
                                          {"product_key", &DeviceRow::product_key},
                                          {"device_name", &DeviceRow::device_name},
                                          {"device_secret", &DeviceRow::device_secret},
                                          {"iot_id", &DeviceRow::iot_id},
                                          {"nickname", &DeviceRow::nickname},
                                          {"status", &DeviceRow::status},
                                          {"enabled_status", &DeviceRow::enabled_status},
                                          {"firmware", &DeviceRow::firmware},
                                          {"ip", &DeviceRow::ip},
                                          {"created_ms", &DeviceRow::created_ms},
                                          {"modified_ms", &DeviceRow::modified_ms},
                                          {"active_ms", &DeviceRow::active_ms},
                                          {"online_ms", &DeviceRow::online_ms},
                                          {"status_ms", &DeviceRow::status_ms}});
  return table;
}

namespace {

constexpr const char* k_schema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_keys(
  id TEXT PRIMARY KEY, secret TEXT NOT NULL, account TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS products(
  seq INTEGER PRIMARY KEY, product_key TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
  secret TEXT NOT NULL, node_type INTEGER NOT NULL, data_format INTEGER NOT NULL,
  auth_type TEXT NOT NULL, net_type INTEGER NOT NULL, commodity TEXT NOT NULL,
  description TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS product_options(
  product_key TEXT PRIMARY KEY, dynamic_register INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices(
  seq INTEGER PRIMARY KEY, product_key TEXT NOT NULL, device_name TEXT NOT NULL,
  device_secret TEXT NOT NULL, iot_id TEXT NOT NULL, nickname TEXT NOT NULL,
  status TEXT NOT NULL, enabled_status TEXT NOT NULL, firmware TEXT NOT NULL, ip TEXT NOT NULL,
  created_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL, active_ms INTEGER NOT NULL,
  online_ms INTEGER NOT NULL, status_ms INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS devices_by_name ON devices(product_key, device_name);
CREATE UNIQUE INDEX IF NOT EXISTS devices_by_iot_id ON devices(iot_id);
CREATE INDEX IF NOT EXISTS devices_by_product ON devices(product_key, seq);
CREATE INDEX IF NOT EXISTS devices_by_status ON devices(product_key, status, seq);
CREATE TABLE IF NOT EXISTS status_counts(
  product_key TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY(product_key, status)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applies(
  apply_id INTEGER PRIMARY KEY, product_key TEXT NOT NULL, status TEXT NOT NULL,
  due_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS apply_names(
  apply_id INTEGER NOT NULL, idx INTEGER NOT NULL, device_name TEXT NOT NULL,
  nickname TEXT NOT NULL, error TEXT NOT NULL, device_seq INTEGER NOT NULL,
  PRIMARY KEY(apply_id, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ota_objects(
  object_key TEXT PRIMARY KEY, kind TEXT NOT NULL, created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL, uploaded_ms INTEGER NOT NULL, size INTEGER NOT NULL,
  md5 TEXT NOT NULL, sha256 TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ota_firmwares(
  seq INTEGER PRIMARY KEY, firmware_id TEXT NOT NULL UNIQUE, product_key TEXT NOT NULL,
  name TEXT NOT NULL, dest_version TEXT NOT NULL, src_version TEXT NOT NULL,
  type INTEGER NOT NULL, module TEXT NOT NULL, url TEXT NOT NULL, object_key TEXT NOT NULL,
  size INTEGER NOT NULL, sign TEXT NOT NULL, sign_method TEXT NOT NULL, md5 TEXT NOT NULL,
  description TEXT NOT NULL, udi TEXT NOT NULL, verify_status INTEGER NOT NULL,
  created_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL, files TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS ota_jobs(
  seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL UNIQUE, firmware_id TEXT NOT NULL,
  product_key TEXT NOT NULL, job_type TEXT NOT NULL, status TEXT NOT NULL,
  details TEXT NOT NULL, max_per_minute INTEGER NOT NULL, retry_interval INTEGER NOT NULL,
  retry_count INTEGER NOT NULL, timeout_min INTEGER NOT NULL, schedule_ms INTEGER NOT NULL,
  schedule_finish_ms INTEGER NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
  next_slot_us INTEGER NOT NULL, open_tasks INTEGER NOT NULL, canceled_tasks INTEGER NOT NULL,
  created_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL,
  dynamic_mode INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS ota_jobs_by_firmware ON ota_jobs(firmware_id, seq);
CREATE INDEX IF NOT EXISTS ota_jobs_by_status ON ota_jobs(status);
CREATE TABLE IF NOT EXISTS ota_tasks(
  seq INTEGER PRIMARY KEY, task_id TEXT NOT NULL UNIQUE, job_seq INTEGER NOT NULL,
  product_key TEXT NOT NULL, device_name TEXT NOT NULL, iot_id TEXT NOT NULL,
  module TEXT NOT NULL, src_version TEXT NOT NULL, status TEXT NOT NULL,
  progress TEXT NOT NULL, task_desc TEXT NOT NULL, attempt INTEGER NOT NULL,
  phase INTEGER NOT NULL, ready_ms INTEGER NOT NULL, due_ms INTEGER NOT NULL,
  deadline_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS ota_tasks_by_job ON ota_tasks(job_seq, status, seq);
CREATE INDEX IF NOT EXISTS ota_tasks_queue ON ota_tasks(job_seq, status, ready_ms, seq);
CREATE INDEX IF NOT EXISTS ota_tasks_due ON ota_tasks(due_ms) WHERE due_ms > 0;
CREATE INDEX IF NOT EXISTS ota_tasks_open ON ota_tasks(product_key, device_name, module)
  WHERE status IN ('CONFIRM', 'QUEUED', 'NOTIFIED', 'IN_PROGRESS');
CREATE INDEX IF NOT EXISTS ota_tasks_by_device ON ota_tasks(job_seq, device_name);
CREATE INDEX IF NOT EXISTS ota_tasks_in_job ON ota_tasks(job_seq, seq);
CREATE TABLE IF NOT EXISTS device_modules(
  product_key TEXT NOT NULL, device_name TEXT NOT NULL, module TEXT NOT NULL,
  version TEXT NOT NULL, PRIMARY KEY(product_key, device_name, module)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_tags(
  iot_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY(iot_id, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_groups(
  seq INTEGER PRIMARY KEY, group_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL, rule_key TEXT NOT NULL, rule_value TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS group_members(
  group_id TEXT NOT NULL, iot_id TEXT NOT NULL, PRIMARY KEY(group_id, iot_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS group_members_by_device ON group_members(iot_id);
)sql";

std::string select_devices(std::string_view where) {
  return device_table().select(where);
}

std::vector<DeviceRow> collect(Stmt& s) {
  return device_table().read_all(s);
}

// `count` items shared out in proportion to `weights` (largest remainder: the counts are exact
// and add up to count), as a shuffled list of weight indexes.
template <class Index>
std::vector<Index>
proportional_plan(const std::vector<double>& weights, std::int64_t count, Rng& rng) {
  double sum = 0;
  for (const double w : weights) {
    sum += w;
  }
  std::vector<std::int64_t> n(weights.size());
  std::vector<double> rest(weights.size());
  std::int64_t assigned = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const double exact = static_cast<double>(count) * weights[i] / sum;
    n[i] = static_cast<std::int64_t>(std::floor(exact));
    rest[i] = exact - static_cast<double>(n[i]);
    assigned += n[i];
  }
  while (assigned < count) {
    const auto it = std::max_element(rest.begin(), rest.end());
    n[static_cast<std::size_t>(it - rest.begin())] += 1;
    *it = -1;
    ++assigned;
  }
  std::vector<Index> plan;
  plan.reserve(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i < weights.size(); ++i) {
    plan.insert(plan.end(), static_cast<std::size_t>(n[i]), static_cast<Index>(i));
  }
  std::shuffle(plan.begin(), plan.end(), rng);
  return plan;
}

// Exact status counts for `count` devices from the weights, shuffled.
std::vector<std::uint8_t> status_plan(const StatusMix& mix, std::int64_t count, Rng& rng) {
  return proportional_plan<std::uint8_t>(
      {mix.online, mix.offline, mix.unactive, mix.disable}, count, rng);
}

// Exact nickname counts for `count` devices from the weights, shuffled.
std::vector<std::uint32_t>
nickname_plan(const std::vector<NicknameWeight>& weights, std::int64_t count, Rng& rng) {
  std::vector<double> w;
  w.reserve(weights.size());
  for (const NicknameWeight& nw : weights) {
    w.push_back(nw.weight);
  }
  return proportional_plan<std::uint32_t>(w, count, rng);
}

constexpr std::array<std::string_view, 4> k_statuses{k_online, k_offline, k_unactive, k_disable};

std::string random_ip(Rng& rng) {
  // China Mobile's 117.136.0.0/16 (a cellular fleet's egress addresses).
  std::uniform_int_distribution<int> octet(1, 254);
  return "117.136." + std::to_string(octet(rng)) + "." + std::to_string(octet(rng));
}

// Fills the time and status fields of a seeded device created at `created`.
void fill_status(DeviceRow& d, std::string_view status, std::int64_t created, Rng& rng) {
  constexpr std::int64_t hour = 3600LL * 1000;
  constexpr std::int64_t day = 24 * hour;
  std::uniform_int_distribution<std::int64_t> within_hour(1000, hour);
  std::uniform_int_distribution<std::int64_t> within_month(0, 30 * day);
  std::uniform_int_distribution<std::int64_t> within_day(1000, day);
  d.created_ms = created;
  d.status = std::string(status);
  std::string_view base = status;
  if (status == k_disable) {
    base = (rng() & 1U) != 0 ? k_offline : k_unactive;
  }
  d.enabled_status = std::string(base);
  if (base == k_unactive) {
    d.status_ms = created;
  } else {
    d.active_ms = created + within_hour(rng);
    d.online_ms = d.active_ms + within_month(rng);
    d.status_ms = base == k_online ? d.online_ms : d.online_ms + within_day(rng);
    d.ip = random_ip(rng);
  }
  if (status == k_disable) {
    d.status_ms = std::max(d.status_ms, created) + within_day(rng);
  }
  d.modified_ms = d.status_ms;
}

} // namespace

// --- Stmt / Conn --------------------------------------------------------------------------------

Stmt::~Stmt() {
  if (m_stmt != nullptr) {
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
  }
}

Stmt& Stmt::bind(int index, std::int64_t value) {
  if (sqlite3_bind_int64(m_stmt, index, value) != SQLITE_OK) {
    m_conn->raise("bind");
  }
  return *this;
}

Stmt& Stmt::bind(int index, std::string_view value) {
  if (sqlite3_bind_text(m_stmt,
                        index,
                        value.data() == nullptr ? "" : value.data(),
                        static_cast<int>(value.size()),
                        SQLITE_TRANSIENT) != SQLITE_OK) {
    m_conn->raise("bind");
  }
  return *this;
}

Stmt& Stmt::bind_null(int index) {
  if (sqlite3_bind_null(m_stmt, index) != SQLITE_OK) {
    m_conn->raise("bind");
  }
  return *this;
}

bool Stmt::step() {
  const int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  m_conn->raise("step");
}

void Stmt::run() {
  while (step()) {
  }
}

void Stmt::reset() {
  sqlite3_reset(m_stmt);
}

std::int64_t Stmt::int64(int column) const {
  return sqlite3_column_int64(m_stmt, column);
}

std::string Stmt::text(int column) const {
  const auto* p = sqlite3_column_text(m_stmt, column);
  const int n = sqlite3_column_bytes(m_stmt, column);
  return p == nullptr ? std::string()
                      : std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

bool Stmt::is_null(int column) const {
  return sqlite3_column_type(m_stmt, column) == SQLITE_NULL;
}

Conn::Conn(const std::filesystem::path& path) {
  const int rc = sqlite3_open_v2(path.c_str(),
                                 &m_db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "open " + path.string() + ": " +
                          (m_db != nullptr ? sqlite3_errmsg(m_db) : sqlite3_errstr(rc));
    sqlite3_close(m_db);
    m_db = nullptr;
    throw SqlError{message};
  }
  sqlite3_busy_timeout(m_db, 10000);
  try {
    exec("PRAGMA synchronous=NORMAL");
    exec("PRAGMA mmap_size=268435456");
    exec("PRAGMA temp_store=MEMORY");
  } catch (const SqlError&) {
    sqlite3_close(m_db); // the destructor does not run for a throwing constructor
    m_db = nullptr;
    throw;
  }
}

Conn::~Conn() {
  for (auto& [sql, stmt] : m_cache) {
    sqlite3_finalize(stmt);
  }
  sqlite3_close(m_db);
}

Stmt Conn::prepare(std::string_view sql) {
  auto it = m_cache.find(std::string(sql));
  if (it == m_cache.end()) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(m_db,
                           sql.data(),
                           static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT,
                           &stmt,
                           nullptr) != SQLITE_OK) {
      raise("prepare");
    }
    it = m_cache.emplace(std::string(sql), stmt).first;
  }
  return Stmt(*this, it->second);
}

void Conn::exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(m_db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error != nullptr ? error : sqlite3_errmsg(m_db);
    sqlite3_free(error);
    throw SqlError{message};
  }
}

std::int64_t Conn::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(m_db);
}

int Conn::changes() const {
  return sqlite3_changes(m_db);
}

void Conn::raise(std::string_view what) const {
  throw SqlError{std::string(what) + ": " + sqlite3_errmsg(m_db)};
}

// --- StatusCounts
// ---------------------------------------------------------------------------------

std::int64_t StatusCounts::of(std::string_view status) const {
  if (status == k_online) {
    return online;
  }
  if (status == k_offline) {
    return offline;
  }
  if (status == k_unactive) {
    return unactive;
  }
  if (status == k_disable) {
    return disable;
  }
  return total();
}

// --- CloudStore
// -----------------------------------------------------------------------------------

CloudStore::CloudStore(std::filesystem::path path) : m_path(std::move(path)) {}

CloudStore::~CloudStore() = default;

Result<std::unique_ptr<CloudStore>> CloudStore::open(const std::filesystem::path& path) {
  std::unique_ptr<CloudStore> store(new CloudStore(path));
  try {
    auto conn = std::make_unique<Conn>(path);
    conn->exec("PRAGMA journal_mode=WAL");
    conn->exec(k_schema);
    store->give_back(std::move(conn));
    store->load();
  } catch (const SqlError& e) {
    return fail(ErrorKind::io, "cloud state " + path.string() + ": " + e.message);
  }
  return store;
}

std::unique_ptr<Conn> CloudStore::borrow() {
  {
    const std::lock_guard lock(m_pool_mutex);
    if (!m_pool.empty()) {
      auto conn = std::move(m_pool.back());
      m_pool.pop_back();
      return conn;
    }
  }
  return std::make_unique<Conn>(m_path);
}

void CloudStore::give_back(std::unique_ptr<Conn> conn) {
  const std::lock_guard lock(m_pool_mutex);
  m_pool.push_back(std::move(conn));
}

void CloudStore::load() {
  auto conn = borrow();
  conn->exec("BEGIN");
  {
    Stmt meta = conn->prepare("SELECT key, value FROM meta");
    while (meta.step()) {
      const std::string key = meta.text(0);
      if (key == "seeded") {
        m_seeded = meta.text(1) == "1";
      } else if (key == "region") {
        m_region = meta.text(1);
      } else if (key == "iot_instance_id") {
        m_iot_instance_id = meta.text(1);
      } else if (key == "token_salt") {
        m_token_salt = meta.text(1);
      } else if (key == "ota") {
        // Parsed when it was seeded; a state written by a newer emulator may not parse.
        auto ota = parse_ota_scenario(meta.text(1));
        if (!ota) {
          throw SqlError{ota.error().message};
        }
        m_ota = std::move(*ota);
      }
    }
    Stmt aks = conn->prepare("SELECT id, secret, account FROM access_keys");
    m_access_keys.clear();
    while (aks.step()) {
      AccessKeyRow row{aks.text(0), aks.text(1), aks.text(2)};
      m_access_keys.emplace(row.id, std::move(row));
    }
    // product_options came later: a product without a row there has the defaults.
    Stmt ps = conn->prepare(
        "SELECT p.product_key, p.name, p.secret, p.node_type, p.data_format, p.auth_type, "
        "p.net_type, p.commodity, p.description, p.created_ms, p.seq, "
        "COALESCE(o.dynamic_register, 1) FROM products p "
        "LEFT JOIN product_options o ON o.product_key = p.product_key ORDER BY p.seq DESC");
    m_products.clear();
    m_product_index.clear();
    while (ps.step()) {
      ProductRow p;
      p.product_key = ps.text(0);
      p.name = ps.text(1);
      p.secret = ps.text(2);
      p.node_type = static_cast<int>(ps.int64(3));
      p.data_format = static_cast<int>(ps.int64(4));
      p.auth_type = ps.text(5);
      p.net_type = static_cast<int>(ps.int64(6));
      p.commodity = ps.text(7);
      p.description = ps.text(8);
      p.created_ms = ps.int64(9);
      p.seq = ps.int64(10);
      p.dynamic_register = ps.int64(11) != 0;
      m_product_index.emplace(p.product_key, m_products.size());
      m_products.push_back(std::move(p));
    }
  }
  conn->exec("COMMIT");
  give_back(std::move(conn));
}

Result<SeedStats> CloudStore::seed(const Scenario& scenario, std::uint64_t seed) {
  if (m_seeded) {
    return fail(ErrorKind::usage, "cloud state is already seeded");
  }
  const auto started = std::chrono::steady_clock::now();
  auto done = IOT_TRY(write([&](Conn& c) {
    SeedStats stats;
    c.exec("PRAGMA cache_size=-131072");
    Rng meta_rng(derive_seed(seed, 0));
    auto put_meta = [&](std::string_view key, std::string_view value) {
      c.prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)")
          .bind(1, key)
          .bind(2, value)
          .run();
    };
    put_meta("schema", "1");
    put_meta("region", scenario.region);
    put_meta("iot_instance_id", scenario.iot_instance_id);
    put_meta("ota", scenario.ota.json_text);
    put_meta("token_salt", random_hex(meta_rng, 32));
    for (const ScenarioAccessKey& ak : scenario.access_keys) {
      c.prepare("INSERT INTO access_keys(id, secret, account) VALUES(?1, ?2, ?3)")
          .bind(1, ak.id)
          .bind(2, ak.secret)
          .bind(3, ak.account)
          .run();
    }
    std::int64_t clock = scenario.epoch_ms;       // device k is created at epoch + k seconds
    std::map<std::string, std::string> group_ids; // name -> GroupId
    {
      Rng group_rng(derive_seed(seed, 2'000'000));
      for (const ScenarioGroup& g : scenario.groups) {
        const std::string id = random_alnum(group_rng, 16);
        c.prepare("INSERT INTO device_groups(group_id, name, description, rule_key, rule_value, "
                  "created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)")
            .bind(1, id)
            .bind(2, g.name)
            .bind(3, g.description)
            .bind(4, g.rule_key)
            .bind(5, g.rule_value)
            .bind(6, scenario.epoch_ms - 3600 * 1000)
            .run();
        group_ids.emplace(g.name, id);
      }
    }
    for (std::size_t pi = 0; pi < scenario.products.size(); ++pi) {
      const ScenarioProduct& p = scenario.products[pi];
      Rng rng(derive_seed(seed, pi + 1));
      const std::string secret =
          p.product_secret.empty() ? random_alnum(rng, 16) : p.product_secret;
      const std::int64_t product_created =
          scenario.epoch_ms -
          static_cast<std::int64_t>(scenario.products.size() - pi) * 24 * 3600 * 1000;
      c.prepare("INSERT INTO products(product_key, name, secret, node_type, data_format, "
                "auth_type, net_type, commodity, description, created_ms) "
                "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
          .bind(1, p.product_key)
          .bind(2, p.name)
          .bind(3, secret)
          .bind(4, p.node_type)
          .bind(5, p.data_format)
          .bind(6, p.auth_type)
          .bind(7, p.net_type)
          .bind(8, p.commodity)
          .bind(9, p.description)
          .bind(10, product_created)
          .run();
      c.prepare("INSERT INTO product_options(product_key, dynamic_register) VALUES(?1, ?2)")
          .bind(1, p.product_key)
          .bind(2, std::int64_t{p.dynamic_register ? 1 : 0})
          .run();
      stats.products += 1;
      StatusCounts counts;
      auto count = [&](std::string_view status) {
        if (status == k_online) {
          ++counts.online;
        } else if (status == k_offline) {
          ++counts.offline;
        } else if (status == k_unactive) {
          ++counts.unactive;
        } else {
          ++counts.disable;
        }
      };
      Stmt insert = c.prepare(device_table().insert_sql());
      auto add = [&](DeviceRow& d) {
        device_table().bind(insert, d);
        insert.run();
        insert.reset();
        count(d.status);
        stats.devices += 1;
      };
      std::unordered_set<std::string> names;
      for (const ScenarioDevice& sd : p.devices) {
        DeviceRow d;
        d.product_key = p.product_key;
        d.device_name = sd.name;
        d.device_secret = sd.secret.empty() ? random_hex(rng, 32) : sd.secret;
        d.iot_id = random_iot_id(rng);
        d.nickname = sd.nickname;
        d.firmware = sd.firmware;
        fill_status(d, sd.status, clock, rng);
        clock += 1000;
        names.insert(d.device_name);
        add(d);
        save_tags(c, d.iot_id, sd.tags);
        for (const std::string& g : sd.groups) {
          add_member(c, group_ids.at(g), d.iot_id);
        }
      }
      const DeviceGenerator& g = p.generate;
      if (g.count > 0) {
        const std::vector<std::uint8_t> plan = status_plan(g.status, g.count, rng);
        // A separate stream, so fleets without nicknames stay what they were.
        Rng nick_rng(derive_seed(seed, 1'000'000 + pi));
        const std::vector<std::uint32_t> nicks =
            g.nicknames.empty() ? std::vector<std::uint32_t>{}
                                : nickname_plan(g.nicknames, g.count, nick_rng);
        const std::size_t width = std::max<std::size_t>(std::to_string(g.count).size(),
                                                        static_cast<std::size_t>(g.digits));
        DeviceRow d;
        d.product_key = p.product_key;
        d.firmware = g.firmware;
        for (std::int64_t i = 0; i < g.count; ++i) {
          if (g.names == NameStyle::imei) {
            do {
              d.device_name = random_imei(rng);
            } while (!names.insert(d.device_name).second);
          } else {
            std::string index = std::to_string(i + 1);
            d.device_name = g.prefix + std::string(width - index.size(), '0') + index;
            if (!names.insert(d.device_name).second) {
              throw SqlError{"product " + p.product_key + ": generated DeviceName " +
                             d.device_name + " is also listed in devices"};
            }
          }
          d.device_secret = random_hex(rng, 32);
          d.iot_id = random_iot_id(rng);
          if (!nicks.empty()) {
            d.nickname = g.nicknames[nicks[static_cast<std::size_t>(i)]].nickname;
          }
          d.ip.clear();
          d.active_ms = 0;
          d.online_ms = 0;
          fill_status(d, k_statuses[plan[static_cast<std::size_t>(i)]], clock, rng);
          clock += 1000;
          add(d);
        }
      }
      for (const std::string_view status : k_statuses) {
        c.prepare("INSERT INTO status_counts(product_key, status, n) VALUES(?1, ?2, ?3)")
            .bind(1, p.product_key)
            .bind(2, status)
            .bind(3, counts.of(status))
            .run();
      }
    }
    put_meta("seed", std::to_string(seed));
    put_meta("seeded", "1");
    c.exec("PRAGMA cache_size=-2000");
    return stats;
  }));
  try {
    load();
    // Fold the seed into the database file so the WAL starts small.
    auto conn = borrow();
    conn->exec("PRAGMA wal_checkpoint(TRUNCATE)");
    give_back(std::move(conn));
  } catch (const SqlError& e) {
    return fail(ErrorKind::io, "cloud state: " + e.message);
  }
  done.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return done;
}

const AccessKeyRow* CloudStore::access_key(std::string_view id) const {
  const auto it = m_access_keys.find(std::string(id));
  return it == m_access_keys.end() ? nullptr : &it->second;
}

const ProductRow* CloudStore::product(std::string_view product_key) const {
  const auto it = m_product_index.find(std::string(product_key));
  return it == m_product_index.end() ? nullptr : &m_products[it->second];
}

StatusCounts CloudStore::counts(Conn& c, std::string_view product_key) {
  StatusCounts counts;
  Stmt s = c.prepare("SELECT status, n FROM status_counts WHERE product_key = ?1");
  s.bind(1, product_key);
  while (s.step()) {
    const std::string status = s.text(0);
    const std::int64_t n = s.int64(1);
    if (status == k_online) {
      counts.online = n;
    } else if (status == k_offline) {
      counts.offline = n;
    } else if (status == k_unactive) {
      counts.unactive = n;
    } else if (status == k_disable) {
      counts.disable = n;
    }
  }
  return counts;
}

void CloudStore::add_count(Conn& c,
                           std::string_view product_key,
                           std::string_view status,
                           int delta) {
  c.prepare("INSERT INTO status_counts(product_key, status, n) VALUES(?1, ?2, ?3) "
            "ON CONFLICT(product_key, status) DO UPDATE SET n = n + excluded.n")
      .bind(1, product_key)
      .bind(2, status)
      .bind(3, delta)
      .run();
}

std::vector<DeviceRow> CloudStore::page(Conn& c,
                                        std::string_view product_key,
                                        std::string_view status,
                                        std::int64_t offset,
                                        std::int64_t limit) {
  const std::uint64_t generation = m_generation.load();
  auto key = [&](std::int64_t at) {
    std::string k(product_key);
    k.push_back('\0');
    k += status;
    k.push_back('\0');
    k += std::to_string(at);
    return k;
  };
  std::optional<std::int64_t> before;
  if (offset > 0) {
    const std::lock_guard lock(m_cursor_mutex);
    const auto it = m_cursors.find(key(offset));
    if (it != m_cursors.end() && it->second.first == generation) {
      before = it->second.second;
    }
  }
  std::vector<DeviceRow> rows;
  if (before) {
    if (status.empty()) {
      rows = page_before(c, product_key, *before, limit);
    } else {
      Stmt s = c.prepare(select_devices(
          "WHERE product_key = ?1 AND status = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4"));
      s.bind(1, product_key).bind(2, status).bind(3, *before).bind(4, limit);
      rows = collect(s);
    }
  } else if (status.empty()) {
    Stmt s =
        c.prepare(select_devices("WHERE product_key = ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3"));
    s.bind(1, product_key).bind(2, limit).bind(3, offset);
    rows = collect(s);
  } else {
    Stmt s = c.prepare(select_devices(
        "WHERE product_key = ?1 AND status = ?2 ORDER BY seq DESC LIMIT ?3 OFFSET ?4"));
    s.bind(1, product_key).bind(2, status).bind(3, limit).bind(4, offset);
    rows = collect(s);
  }
  if (!rows.empty()) {
    const std::lock_guard lock(m_cursor_mutex);
    if (m_cursors.size() > 4096) {
      m_cursors.clear();
    }
    m_cursors[key(offset + static_cast<std::int64_t>(rows.size()))] = {generation, rows.back().seq};
  }
  return rows;
}

std::vector<DeviceRow> CloudStore::page_before(Conn& c,
                                               std::string_view product_key,
                                               std::int64_t before_seq,
                                               std::int64_t limit) {
  Stmt s =
      c.prepare(select_devices("WHERE product_key = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"));
  s.bind(1, product_key).bind(2, before_seq).bind(3, limit);
  return collect(s);
}

std::optional<DeviceRow>
CloudStore::device(Conn& c, std::string_view product_key, std::string_view device_name) {
  Stmt s = c.prepare(select_devices("WHERE product_key = ?1 AND device_name = ?2"));
  s.bind(1, product_key).bind(2, device_name);
  return device_table().read_one(s);
}

std::optional<DeviceRow> CloudStore::device_by_iot_id(Conn& c, std::string_view iot_id) {
  Stmt s = c.prepare(select_devices("WHERE iot_id = ?1"));
  s.bind(1, iot_id);
  return device_table().read_one(s);
}

std::optional<DeviceRow> CloudStore::device_by_seq(Conn& c, std::int64_t seq) {
  Stmt s = c.prepare(select_devices("WHERE seq = ?1"));
  s.bind(1, seq);
  return device_table().read_one(s);
}

std::int64_t CloudStore::insert_device(Conn& c, const DeviceRow& row) {
  const std::int64_t seq = device_table().insert(c, row);
  add_count(c, row.product_key, row.status, 1);
  return seq;
}

void CloudStore::update_device(Conn& c, const DeviceRow& before, const DeviceRow& after) {
  device_table().update(c, after, before.seq);
  if (before.status != after.status) {
    add_count(c, before.product_key, before.status, -1);
    add_count(c, after.product_key, after.status, 1);
  }
}

void CloudStore::delete_device(Conn& c, const DeviceRow& row) {
  c.prepare("DELETE FROM devices WHERE seq = ?1").bind(1, row.seq).run();
  // What the device carried goes with it (seed FAQ §3.3: re-creating a device loses it).
  c.prepare("DELETE FROM device_tags WHERE iot_id = ?1").bind(1, row.iot_id).run();
  c.prepare("DELETE FROM group_members WHERE iot_id = ?1").bind(1, row.iot_id).run();
  add_count(c, row.product_key, row.status, -1);
}

std::vector<std::pair<std::string, std::string>> CloudStore::tags(Conn& c,
                                                                  std::string_view iot_id) {
  std::vector<std::pair<std::string, std::string>> out;
  Stmt q = c.prepare("SELECT key, value FROM device_tags WHERE iot_id = ?1 ORDER BY seq");
  q.bind(1, iot_id);
  while (q.step()) {
    out.emplace_back(q.text(0), q.text(1));
  }
  return out;
}

void CloudStore::save_tags(Conn& c,
                           std::string_view iot_id,
                           const std::vector<std::pair<std::string, std::string>>& tags) {
  for (const auto& [key, value] : tags) {
    c.prepare("INSERT INTO device_tags(iot_id, key, value, seq) VALUES(?1, ?2, ?3, "
              "(SELECT COALESCE(MAX(seq), 0) + 1 FROM device_tags WHERE iot_id = ?1)) "
              "ON CONFLICT(iot_id, key) DO UPDATE SET value = excluded.value")
        .bind(1, iot_id)
        .bind(2, key)
        .bind(3, value)
        .run();
  }
}

namespace {
GroupRow group_row(const Stmt& q) {
  GroupRow g;
  g.group_id = q.text(0);
  g.name = q.text(1);
  g.description = q.text(2);
  g.rule_key = q.text(3);
  g.rule_value = q.text(4);
  g.created_ms = q.int64(5);
  return g;
}
constexpr std::string_view k_group_columns =
    "g.group_id, g.name, g.description, g.rule_key, g.rule_value, g.created_ms";
} // namespace

std::vector<GroupRow> CloudStore::groups_of(Conn& c, std::string_view iot_id) {
  std::vector<GroupRow> out;
  Stmt q = c.prepare(
      "SELECT " + std::string(k_group_columns) +
      " FROM device_groups g WHERE (g.rule_key = '' AND EXISTS (SELECT 1 FROM group_members m "
      "WHERE m.group_id = g.group_id AND m.iot_id = ?1)) OR (g.rule_key <> '' AND EXISTS "
      "(SELECT 1 FROM device_tags t WHERE t.iot_id = ?1 AND t.key = g.rule_key AND t.value = "
      "g.rule_value)) ORDER BY g.seq");
  q.bind(1, iot_id);
  while (q.step()) {
    out.push_back(group_row(q));
  }
  return out;
}

std::optional<GroupRow> CloudStore::group(Conn& c, std::string_view group_id) {
  Stmt q = c.prepare("SELECT " + std::string(k_group_columns) +
                     " FROM device_groups g WHERE g.group_id = ?1");
  q.bind(1, group_id);
  if (!q.step()) {
    return std::nullopt;
  }
  return group_row(q);
}

std::vector<GroupRow> CloudStore::all_groups(Conn& c) {
  std::vector<GroupRow> out;
  Stmt q =
      c.prepare("SELECT " + std::string(k_group_columns) + " FROM device_groups g ORDER BY g.seq");
  while (q.step()) {
    out.push_back(group_row(q));
  }
  return out;
}

namespace {
std::vector<std::int64_t> seqs_of(Stmt& q) {
  std::vector<std::int64_t> out;
  while (q.step()) {
    out.push_back(q.int64(0));
  }
  return out;
}
} // namespace

std::vector<std::int64_t> CloudStore::member_seqs(Conn& c, const GroupRow& group) {
  if (group.dynamic()) {
    Stmt q = c.prepare("SELECT d.seq FROM devices d JOIN device_tags t ON t.iot_id = d.iot_id "
                       "WHERE t.key = ?1 AND t.value = ?2 ORDER BY d.seq");
    q.bind(1, group.rule_key).bind(2, group.rule_value);
    return seqs_of(q);
  }
  Stmt q = c.prepare("SELECT d.seq FROM devices d JOIN group_members m ON m.iot_id = d.iot_id "
                     "WHERE m.group_id = ?1 ORDER BY d.seq");
  q.bind(1, group.group_id);
  return seqs_of(q);
}

std::vector<std::int64_t> CloudStore::device_seqs(Conn& c, std::string_view product_key) {
  if (product_key.empty()) {
    Stmt q = c.prepare("SELECT seq FROM devices ORDER BY seq");
    return seqs_of(q);
  }
  Stmt q = c.prepare("SELECT seq FROM devices WHERE product_key = ?1 ORDER BY seq");
  q.bind(1, product_key);
  return seqs_of(q);
}

bool CloudStore::add_member(Conn& c, std::string_view group_id, std::string_view iot_id) {
  c.prepare("INSERT OR IGNORE INTO group_members(group_id, iot_id) VALUES(?1, ?2)")
      .bind(1, group_id)
      .bind(2, iot_id)
      .run();
  return c.changes() == 1;
}

std::int64_t CloudStore::static_group_count(Conn& c, std::string_view iot_id) {
  Stmt q = c.prepare("SELECT COUNT(*) FROM group_members WHERE iot_id = ?1");
  q.bind(1, iot_id);
  q.step();
  return q.int64(0);
}

} // namespace iot::sim::cloud
