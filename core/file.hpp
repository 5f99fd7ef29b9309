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
#include <functional>
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

// Reads `fd` (a file, a pipe or a FIFO) in blocks of `block` bytes and calls
// `lines(text, first_line)` with the complete lines of each block (ending after its last LF; the
// rest moves on to the next block; the last line needs no LF). Memory: one block. Waits give way
// to an interruption within 50 ms (ErrorKind::interrupted), even on a silent pipe. A line longer
// than a block is ErrorKind::usage, a failed read ErrorKind::io; both messages start with `name`
// (how the user gave the file: "--log fleet.csv"). `lines` returns Status; the first error stops
// the reading. `progress(bytes)` is called after each block with the bytes consumed.
[[nodiscard]] Status
read_line_blocks(int fd,
                 std::string_view name,
                 std::size_t block,
                 const std::function<Status(std::string_view, std::size_t)>& lines,
                 const std::function<void(std::size_t)>& progress = {});

} // namespace iot::core
