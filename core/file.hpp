// SPDX-License-Identifier: MIT
// Reading a local input file the one checked way: a directory, a missing or unreadable file, or
// one too large gives an Error that names the file, says why (the system's own words) and what to
// do — never a bare "cannot read X", never a stream exception. The only file I/O in core/, so
// every layer's readers (commands, cloud settings, diagnose) say the same thing for the same
// failure.
#pragma once

#include "core/error.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace iot::core {

// "cannot read <what> <path>: <strerror(err)> — <fix>", the fix chosen from err (ENOENT: check
// the path; EACCES: the permissions, ls -l; EISDIR: give a file, not a directory; …).
[[nodiscard]] Error
file_error(ErrorKind kind, std::string_view what, const std::string& path, int err);

struct ReadFileOptions {
  ErrorKind kind = ErrorKind::usage; // the kind of every error (input files are usage errors)
  std::uintmax_t max_bytes = 0;      // 0: no limit; larger regular files are refused
};

// The whole content of path. Regular files, FIFOs and character devices (/dev/stdin, a shell's
// <(…)) are read; a directory or anything else is refused with file_error(EISDIR / …). `what`
// says what the file is for ("device list", "snapshot").
[[nodiscard]] Result<std::string>
read_file(const std::filesystem::path& path, std::string_view what, const ReadFileOptions& = {});

// An open file descriptor for reading path as a stream (same checks and messages as read_file);
// the caller closes it.
[[nodiscard]] Result<int> open_for_reading(const std::filesystem::path& path,
                                           std::string_view what,
                                           ErrorKind kind = ErrorKind::usage);

} // namespace iot::core
