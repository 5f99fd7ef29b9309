// SPDX-License-Identifier: MIT
#include "store/sqlite.hpp"

#include "core/interrupt.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

namespace iot::store::sqlite {
namespace {

// SQLite's locking protocol on the database file (os_unix.c): a reader holds a read lock on
// SHARED_SIZE bytes from SHARED_FIRST; a writer about to take the file for itself write-locks
// PENDING_BYTE first, so new readers wait, then write-locks the shared range.
constexpr off_t k_pending_byte = 0x40000000;
constexpr off_t k_shared_first = k_pending_byte + 2;
constexpr off_t k_shared_size = 510;

bool ofd_lock(int fd, short type, off_t start, off_t length) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = start;
  lock.l_len = length;
  // Open-file-description locks: closing this descriptor does not drop the POSIX locks another
  // SQLite connection of this process holds on the same file, as a plain fcntl lock would.
  return ::fcntl(fd, F_OFD_SETLK, &lock) == 0;
}

// The shared lock a reader of SQLite takes, waiting up to `busy` for a writer that holds the
// file (closing: checkpointing the -wal into it).
Status shared_lock(int fd, const std::filesystem::path& path, std::chrono::milliseconds busy) {
  const auto deadline = std::chrono::steady_clock::now() + busy;
  for (;;) {
    if (ofd_lock(fd, F_RDLCK, k_pending_byte, 1)) {
      const bool shared = ofd_lock(fd, F_RDLCK, k_shared_first, k_shared_size);
      (void)ofd_lock(fd, F_UNLCK, k_pending_byte, 1);
      if (shared) {
        return {};
      }
    }
    if (errno != EAGAIN && errno != EACCES) {
      return fail(ErrorKind::io, "cannot lock " + path.string() + ": " + std::strerror(errno));
    }
    if (core::interrupt_requested()) {
      return fail(ErrorKind::interrupted, "interrupted while waiting for " + path.string());
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return fail(ErrorKind::io,
                  path.string() + " stayed locked by another process for " +
                      std::to_string(busy.count()) + " ms: try again when it is done");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// "file:///abs/path?immutable=1": SQLite's URI form, the only way to ask for immutable.
std::string immutable_uri(const std::filesystem::path& path) {
  std::string uri = "file://";
  for (const unsigned char c : std::filesystem::absolute(path).string()) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        std::strchr("/-._~", c) != nullptr) {
      uri += static_cast<char>(c);
    } else {
      static constexpr char k_hex[] = "0123456789ABCDEF";
      uri += '%';
      uri += k_hex[c >> 4];
      uri += k_hex[c & 15];
    }
  }
  return uri + "?immutable=1";
}

bool exists_beside(const std::filesystem::path& path, std::string_view suffix) {
  struct stat st {};
  return ::lstat((path.string() + std::string(suffix)).c_str(), &st) == 0;
}

} // namespace

Result<Database> Database::open(const std::filesystem::path& path,
                                Access access,
                                int mode,
                                std::chrono::milliseconds busy) {
  // Open the file ourselves first: a new one gets its mode right from the first byte (SQLite
  // would create it 0644 and give the same to -wal and -shm, which hold the same secrets).
  int flags = O_CLOEXEC;
  if (access == Access::read_only) {
    flags |= O_RDONLY;
  } else {
    flags |= O_RDWR | (access == Access::create ? O_CREAT : 0);
  }
  const int fd = ::open(path.c_str(), flags, static_cast<mode_t>(mode));
  if (fd < 0) {
    return fail(ErrorKind::io, "cannot open " + path.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(ErrorKind::io,
                "cannot open " + path.string() + ": not a regular file (give the ledger's file)");
  }
  int lock_fd = -1;
  std::string target = path.string();
  int open_flags = SQLITE_OPEN_NOMUTEX;
  if (access != Access::read_only) {
    ::close(fd);
    open_flags |= SQLITE_OPEN_READWRITE;
  } else {
    open_flags |= SQLITE_OPEN_READONLY;
    if (auto locked = shared_lock(fd, path, busy); !locked) {
      ::close(fd);
      return fail(locked.error());
    }
    // Under the shared lock no one deletes a -wal; one that exists now belongs to a process
    // that has the file open (or died with it open): read through it as SQLite does.
    if (exists_beside(path, "-wal") || exists_beside(path, "-journal")) {
      ::close(fd);
    } else {
      lock_fd = fd;
      target = immutable_uri(path);
      open_flags |= SQLITE_OPEN_URI;
    }
  }
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(target.c_str(), &db, open_flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    if (lock_fd >= 0) {
      ::close(lock_fd);
    }
    return fail(ErrorKind::io, "cannot open " + path.string() + ": " + message);
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(busy.count()));
  return Database(db, lock_fd);
}

Database::Database(Database&& other) noexcept
    : m_db(std::exchange(other.m_db, nullptr)), m_lock_fd(std::exchange(other.m_lock_fd, -1)),
      m_cache(std::move(other.m_cache)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    close();
    m_db = std::exchange(other.m_db, nullptr);
    m_lock_fd = std::exchange(other.m_lock_fd, -1);
    m_cache = std::move(other.m_cache);
  }
  return *this;
}

Database::~Database() {
  close();
}

void Database::close() {
  if (m_cache) {
    for (auto& [sql, cached] : *m_cache) {
      sqlite3_finalize(cached.stmt);
    }
    m_cache->clear();
  }
  sqlite3_close(m_db); // before the lock goes: SQLite may still read while closing
  m_db = nullptr;
  if (m_lock_fd >= 0) {
    ::close(m_lock_fd);
    m_lock_fd = -1;
  }
}

Status Database::exec(std::string_view sql) {
  char* message = nullptr;
  const std::string text(sql);
  if (sqlite3_exec(m_db, text.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string error = message ? message : last_error();
    sqlite3_free(message);
    return fail(ErrorKind::io, "ledger: " + error);
  }
  return {};
}

std::string Database::last_error() const {
  return m_db ? sqlite3_errmsg(m_db) : "not open";
}

std::int64_t Database::changes() const {
  return sqlite3_changes(m_db);
}

std::int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(m_db);
}

Result<Statement> Statement::prepare(Database& db, std::string_view sql) {
  const auto compile = [&](unsigned flags) -> Result<sqlite3_stmt*> {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(
            db.handle(), sql.data(), static_cast<int>(sql.size()), flags, &stmt, nullptr) !=
        SQLITE_OK) {
      return fail(ErrorKind::io, "ledger: " + db.last_error());
    }
    return stmt;
  };
  auto& cache = *db.m_cache;
  std::string key(sql);
  auto it = cache.find(key);
  if (it == cache.end() && cache.size() < Database::k_cache_max) {
    sqlite3_stmt* stmt = IOT_TRY(compile(SQLITE_PREPARE_PERSISTENT));
    it = cache.emplace(std::move(key), Database::Cached{stmt, false}).first;
  }
  if (it != cache.end() && !it->second.in_use) {
    it->second.in_use = true;
    return Statement(it->second.stmt, db.handle(), &it->second.in_use);
  }
  // In use (a query inside another's loop), or the cache is full: one of its own.
  return Statement(IOT_TRY(compile(0)), db.handle());
}

Statement::Statement(Statement&& other) noexcept
    : m_stmt(std::exchange(other.m_stmt, nullptr)), m_db(other.m_db),
      m_in_use(std::exchange(other.m_in_use, nullptr)),
      m_bind_error(std::move(other.m_bind_error)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    release();
    m_stmt = std::exchange(other.m_stmt, nullptr);
    m_db = other.m_db;
    m_in_use = std::exchange(other.m_in_use, nullptr);
    m_bind_error = std::move(other.m_bind_error);
  }
  return *this;
}

Statement::~Statement() {
  release();
}

// A cached statement goes back to the cache reset (its read, if any, ended) and unbound; an
// uncached one is finalized.
void Statement::release() {
  if (m_in_use != nullptr) {
    sqlite3_reset(m_stmt);
    sqlite3_clear_bindings(m_stmt);
    *m_in_use = false;
    m_in_use = nullptr;
  } else {
    sqlite3_finalize(m_stmt);
  }
  m_stmt = nullptr;
}

void Statement::bind_text(int index, std::string_view text) {
  check_bind(index,
             sqlite3_bind_text(
                 m_stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT));
}

void Statement::bind_integer(int index, std::int64_t value) {
  check_bind(index, sqlite3_bind_int64(m_stmt, index, value));
}

void Statement::bind_null(int index) {
  check_bind(index, sqlite3_bind_null(m_stmt, index));
}

void Statement::check_bind(int index, int rc) {
  if (rc != SQLITE_OK && m_bind_error.empty()) {
    m_bind_error = "cannot bind parameter " + std::to_string(index) + ": " + sqlite3_errstr(rc);
  }
}

Result<bool> Statement::step() {
  if (!m_bind_error.empty()) {
    return fail(ErrorKind::failure,
                "ledger: " + m_bind_error + " (in: " + sqlite3_sql(m_stmt) + ")");
  }
  const int rc = sqlite3_step(m_stmt);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  const int base = rc & 0xff;
  const ErrorKind kind =
      (base == SQLITE_BUSY || base == SQLITE_LOCKED) ? ErrorKind::io : ErrorKind::failure;
  return fail(
      kind, std::string("ledger: ") + sqlite3_errmsg(m_db) + " (in: " + sqlite3_sql(m_stmt) + ")");
}

void Statement::reset() {
  sqlite3_reset(m_stmt);
  sqlite3_clear_bindings(m_stmt);
  m_bind_error.clear();
}

std::string Statement::text(int column) const {
  const auto* data = sqlite3_column_text(m_stmt, column);
  const int size = sqlite3_column_bytes(m_stmt, column);
  return data ? std::string(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size))
              : std::string();
}

std::int64_t Statement::integer(int column) const {
  return sqlite3_column_int64(m_stmt, column);
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(m_stmt, column) == SQLITE_NULL;
}

Result<Transaction> Transaction::begin(Database& db) {
  IOT_TRY(db.exec("BEGIN IMMEDIATE"));
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : m_db(std::exchange(other.m_db, nullptr)) {}

Transaction::~Transaction() {
  if (m_db) {
    (void)m_db->exec("ROLLBACK");
  }
}

Status Transaction::commit() {
  IOT_TRY(m_db->exec("COMMIT"));
  m_db = nullptr;
  return {};
}

} // namespace iot::store::sqlite
