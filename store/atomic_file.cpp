// SPDX-License-Identifier: MIT
#include "store/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace iot::store {
namespace {

constexpr std::size_t k_buffer_limit = 1 << 16;

std::string os_error(int err) {
  return std::strerror(err);
}

std::filesystem::path parent_of(const std::filesystem::path& target) {
  auto dir = target.parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

} // namespace

Result<AtomicFile> AtomicFile::create(const std::filesystem::path& target, mode_t mode) {
  const auto dir = parent_of(target);
  // Built step by step: g++ 12 -O2 warns falsely (-Wrestrict) on "." + std::string.
  std::string name(1, '.');
  name += target.filename().string();
  name += ".tmp.XXXXXX";
  std::string pattern = (dir / name).string();
  // mkstemp creates the file 0600; fchmod sets the requested mode before any byte is written.
  const int fd = ::mkostemp(pattern.data(), O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string hint;
    if (err == ENOENT) {
      hint = " (create the directory first)";
    } else if (err == EACCES || err == EPERM) {
      hint = " (no write permission on the directory)";
    }
    return fail(ErrorKind::io,
                "cannot create a file in " + dir.string() + ": " + os_error(err) + hint);
  }
  if (::fchmod(fd, mode) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(pattern.c_str());
    return fail(ErrorKind::io, "chmod " + pattern + ": " + os_error(err));
  }
  return AtomicFile(target, pattern, fd);
}

AtomicFile::AtomicFile(std::filesystem::path target, std::filesystem::path temp, int fd)
    : m_target(std::move(target)), m_temp(std::move(temp)), m_fd(fd) {}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : m_target(std::move(other.m_target)), m_temp(std::move(other.m_temp)), m_fd(other.m_fd),
      m_buffer(std::move(other.m_buffer)), m_failed(other.m_failed) {
  other.m_fd = -1;
}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    abandon();
    m_target = std::move(other.m_target);
    m_temp = std::move(other.m_temp);
    m_fd = other.m_fd;
    m_buffer = std::move(other.m_buffer);
    m_failed = other.m_failed;
    other.m_fd = -1;
  }
  return *this;
}

AtomicFile::~AtomicFile() {
  abandon();
}

void AtomicFile::abandon() noexcept {
  if (m_fd >= 0) {
    ::close(m_fd);
    ::unlink(m_temp.c_str());
    m_fd = -1;
  }
}

Status AtomicFile::flush_buffer() {
  std::size_t done = 0;
  while (done < m_buffer.size()) {
    const ssize_t n = ::write(m_fd, m_buffer.data() + done, m_buffer.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      m_failed = true;
      return fail(ErrorKind::io, "write " + m_target.string() + ": " + os_error(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  m_buffer.clear();
  return {};
}

Status AtomicFile::write(std::string_view bytes) {
  if (m_fd < 0 || m_failed) {
    return fail(ErrorKind::io, "write " + m_target.string() + ": file already closed or failed");
  }
  m_buffer.append(bytes);
  if (m_buffer.size() >= k_buffer_limit) {
    return flush_buffer();
  }
  return {};
}

Status AtomicFile::commit() {
  if (m_fd < 0 || m_failed) {
    return fail(ErrorKind::io, "commit " + m_target.string() + ": file already closed or failed");
  }
  if (auto r = flush_buffer(); !r) {
    abandon();
    return r;
  }
  if (::fsync(m_fd) != 0) {
    const int err = errno;
    abandon();
    return fail(ErrorKind::io, "fsync " + m_target.string() + ": " + os_error(err));
  }
  if (::close(m_fd) != 0) {
    const int err = errno;
    m_fd = -1;
    ::unlink(m_temp.c_str());
    return fail(ErrorKind::io, "close " + m_target.string() + ": " + os_error(err));
  }
  m_fd = -1;
  if (::rename(m_temp.c_str(), m_target.c_str()) != 0) {
    const int err = errno;
    ::unlink(m_temp.c_str());
    return fail(ErrorKind::io, "rename to " + m_target.string() + ": " + os_error(err));
  }
  // The rename itself is durable only once the directory entry is on disk.
  const int dir_fd = ::open(parent_of(m_target).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return {};
}

Status
write_file_atomically(const std::filesystem::path& target, std::string_view content, mode_t mode) {
  auto file = IOT_TRY(AtomicFile::create(target, mode));
  IOT_TRY(file.write(content));
  return file.commit();
}

} // namespace iot::store
