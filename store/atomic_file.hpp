// SPDX-License-Identifier: MIT
// Atomic file replacement: the target path holds either its old content or the complete new
// content, never a part, whatever happens (error, SIGINT, kill -9, power cut after commit).
//
// Write goes to a temporary file in the target's directory (same file system, so rename is
// atomic), created with the requested mode from the start (0600 for anything holding a secret:
// the bytes are never readable by others, not even briefly). commit() flushes, fsyncs, renames
// over the target and fsyncs the directory. Destroying an uncommitted AtomicFile removes the
// temporary file and leaves the target untouched.
#pragma once

#include "core/error.hpp"

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace iot::store {

class AtomicFile {
public:
  // Creates the temporary file next to target. mode is applied exactly (umask does not widen
  // or narrow it). Errors are ErrorKind::io and name the directory.
  [[nodiscard]] static Result<AtomicFile> create(const std::filesystem::path& target,
                                                 mode_t mode = 0600);

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  // Appends bytes (buffered). After a failed write the file can only be abandoned.
  [[nodiscard]] Status write(std::string_view bytes);
  // Makes the content the target's, durably. At most once.
  [[nodiscard]] Status commit();

  [[nodiscard]] const std::filesystem::path& target() const { return m_target; }
  [[nodiscard]] const std::filesystem::path& temp_path() const { return m_temp; }

private:
  AtomicFile(std::filesystem::path target, std::filesystem::path temp, int fd);
  [[nodiscard]] Status flush_buffer();
  void abandon() noexcept;

  std::filesystem::path m_target;
  std::filesystem::path m_temp;
  int m_fd = -1;
  std::string m_buffer;
  bool m_failed = false;
};

// Writes the whole content atomically (create + write + commit).
[[nodiscard]] Status write_file_atomically(const std::filesystem::path& target,
                                           std::string_view content,
                                           mode_t mode = 0600);

} // namespace iot::store
