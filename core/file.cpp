// SPDX-License-Identifier: MIT
#include "core/file.hpp"

#include "core/interrupt.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace iot::core {
namespace {

std::string fix_for(int err, const std::string& path) {
  switch (err) {
  case ENOENT:
    return "check the path";
  case EACCES:
  case EPERM:
    return "check its permissions (ls -l " + path + ")";
  case EISDIR:
    return "give a file, not a directory";
  case ELOOP:
    return "a symbolic link loops";
  case ENAMETOOLONG:
    return "the path is too long";
  case ENOTDIR:
    return "a part of the path is not a directory";
  case EFBIG:
    return "split it";
  default:
    return "check the file";
  }
}

Result<int> open_checked(const std::filesystem::path& path,
                         std::string_view what,
                         ErrorKind kind,
                         std::uintmax_t max_bytes) {
  const std::string p = path.string();
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(file_error(kind, what, p, errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return fail(file_error(kind, what, p, err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return fail(file_error(kind, what, p, EISDIR));
  }
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
    ::close(fd);
    return fail(kind,
                "cannot read " + std::string(what) + " " + p +
                    ": not a regular file, pipe or character device — give a file");
  }
  if (max_bytes != 0 && S_ISREG(st.st_mode) &&
      static_cast<std::uintmax_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return fail(kind,
                std::string(what) + " " + p + " is " + std::to_string(st.st_size) +
                    " bytes, more than the " + std::to_string(max_bytes) + " accepted: split it");
  }
  return fd;
}

} // namespace

Error file_error(ErrorKind kind, std::string_view what, const std::string& path, int err) {
  std::string message = "cannot read ";
  if (!what.empty()) {
    message += std::string(what) + " ";
  }
  message += path + ": " + std::strerror(err) + " — " + fix_for(err, path);
  return Error{kind, std::move(message)};
}

Result<int>
open_for_reading(const std::filesystem::path& path, std::string_view what, ErrorKind kind) {
  return open_checked(path, what, kind, 0);
}

Result<std::string> read_file(const std::filesystem::path& path,
                              std::string_view what,
                              const ReadFileOptions& options) {
  const int fd = IOT_TRY(open_checked(path, what, options.kind, options.max_bytes));
  std::string content;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) {
      break;
    }
    if (n < 0) {
      if (errno == EINTR && !interrupt_requested()) {
        continue;
      }
      if (errno == EINTR) {
        ::close(fd);
        return fail(ErrorKind::interrupted, "interrupted while reading " + path.string());
      }
      const int err = errno;
      ::close(fd);
      return fail(file_error(options.kind, what, path.string(), err));
    }
    content.append(buf, static_cast<std::size_t>(n));
    if (options.max_bytes != 0 && content.size() > options.max_bytes) {
      ::close(fd);
      return fail(options.kind,
                  std::string(what) + " " + path.string() + " is more than the " +
                      std::to_string(options.max_bytes) + " bytes accepted: split it");
    }
  }
  ::close(fd);
  return content;
}

Status read_line_blocks(int fd,
                        std::string_view name,
                        std::size_t block,
                        const std::function<Status(std::string_view, std::size_t)>& lines,
                        const std::function<void(std::size_t)>& progress) {
  std::vector<char> buf(block);
  std::size_t have = 0;
  std::size_t line = 1;
  bool eof = false;
  while (!eof) {
    if (have == buf.size()) {
      return fail(ErrorKind::usage,
                  std::string(name) + ": line " + std::to_string(line) + " is longer than " +
                      (block >= 1024 ? std::to_string(block >> 10) + " KB"
                                     : std::to_string(block) + " bytes") +
                      ": not a file of lines (a binary file, or the wrong file?)");
    }
    // Waits in slices of 50 ms, so that Ctrl-C wins even on a pipe or FIFO whose writer stays
    // silent (a signal that lands just before a blocking read() would be lost).
    for (;;) {
      if (core::interrupt_requested()) {
        return fail(ErrorKind::interrupted, "interrupted while reading " + std::string(name));
      }
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, 50);
      if (ready > 0 || (ready < 0 && errno != EINTR)) {
        break; // readable, at EOF, or an error read() reports
      }
    }
    const auto n = ::read(fd, buf.data() + have, buf.size() - have);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(ErrorKind::io, "cannot read " + std::string(name) + ": " + std::strerror(errno));
    }
    eof = n == 0;
    have += static_cast<std::size_t>(n);
    std::size_t upto = have;
    if (!eof) {
      const void* last = nullptr;
      // The last LF of the block.
      for (std::size_t i = have; i > 0; --i) {
        if (buf[i - 1] == '\n') {
          last = &buf[i - 1];
          break;
        }
      }
      if (!last) {
        continue;
      }
      upto = static_cast<std::size_t>(static_cast<const char*>(last) - buf.data()) + 1;
    }
    if (upto == 0) {
      break;
    }
    const std::string_view text(buf.data(), upto);
    if (auto ok = lines(text, line); !ok) {
      return ok;
    }
    if (progress) {
      progress(upto);
    }
    line += static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    std::memmove(buf.data(), buf.data() + upto, have - upto);
    have -= upto;
  }
  return {};
}

} // namespace iot::core
