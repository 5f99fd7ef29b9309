// SPDX-License-Identifier: MIT
// POSIX termios SerialPort, used for pseudo-terminals (the simulator) and anything libserialport
// does not enumerate.
#include "serial/port_backends.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace iot::serial {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

// A poll(2) timeout of at most one interrupt slice (0 when `left` is not positive).
int slice_ms(milliseconds left) {
  return static_cast<int>(std::clamp(left, milliseconds(0), k_interrupt_slice).count());
}

struct BaudEntry {
  int baud;
  speed_t speed;
};

constexpr BaudEntry k_bauds[] = {
    {1200, B1200},       {2400, B2400},       {4800, B4800},       {9600, B9600},
    {19200, B19200},     {38400, B38400},     {57600, B57600},     {115200, B115200},
    {230400, B230400},   {460800, B460800},   {500000, B500000},   {576000, B576000},
    {921600, B921600},   {1000000, B1000000}, {1152000, B1152000}, {1500000, B1500000},
    {2000000, B2000000}, {3000000, B3000000}, {4000000, B4000000},
};

std::string os_error(const std::string& what, const std::string& path, int err) {
  std::string msg = what + " " + path + ": " + std::strerror(err);
  if (auto hint = port_error_hint(err); !hint.empty()) {
    msg += " — " + hint;
  }
  return msg;
}

class PosixPort final : public SerialPort {
public:
  PosixPort(std::string path, int fd) : m_path(std::move(path)), m_fd(fd) {}
  ~PosixPort() override { ::close(m_fd); }
  PosixPort(const PosixPort&) = delete;
  PosixPort& operator=(const PosixPort&) = delete;
  PosixPort(PosixPort&&) = delete;
  PosixPort& operator=(PosixPort&&) = delete;

  Status write(std::string_view bytes) override {
    constexpr std::chrono::milliseconds k_write_timeout{5000};
    const auto start = Clock::now();
    const std::size_t total = bytes.size();
    while (!bytes.empty()) {
      const ssize_t n = ::write(m_fd, bytes.data(), bytes.size());
      if (n > 0) {
        bytes.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && errno != EAGAIN) {
        return fail(ErrorKind::serial, os_error("write", m_path, errno));
      }
      // The OS takes no more for now: wait for room, a slice at a time.
      if (interrupted()) {
        return fail(interrupted_error("write " + m_path,
                                      since(start),
                                      std::to_string(total - bytes.size()) + " of " +
                                          std::to_string(total) + " bytes had left"));
      }
      if (since(start) >= k_write_timeout) {
        return fail(ErrorKind::serial,
                    "write " + m_path +
                        ": the port accepted no data for 5000 ms — is the other "
                        "end reading (flow control, stuck device)?");
      }
      pollfd pfd{m_fd, POLLOUT, 0};
      if (::poll(&pfd, 1, slice_ms(k_write_timeout - since(start))) < 0 && errno != EINTR) {
        return fail(ErrorKind::serial, os_error("write", m_path, errno));
      }
    }
    return {};
  }

  Result<std::string> read_some(milliseconds timeout) override {
    const auto start = Clock::now();
    for (;;) {
      const auto left = timeout - since(start);
      pollfd pfd{m_fd, POLLIN, 0};
      const int r = ::poll(&pfd, 1, slice_ms(left));
      if (r < 0) {
        if (errno == EINTR) {
          continue;
        }
        return fail(ErrorKind::serial, os_error("read", m_path, errno));
      }
      if (r == 0) {
        if (left <= k_interrupt_slice) {
          return std::string{};
        }
        if (interrupted()) { // only a slice of the wait has passed
          return fail(interrupted_error("read " + m_path, since(start)));
        }
        continue;
      }
      char buf[4096];
      const ssize_t n = ::read(m_fd, buf, sizeof buf);
      if (n > 0) {
        return std::string(buf, static_cast<std::size_t>(n));
      }
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        if (left.count() <= 0) {
          return std::string{};
        }
        continue;
      }
      // n == 0 or EIO: the other side of the pty closed / the device went away.
      const int err = n == 0 ? EIO : errno;
      return fail(ErrorKind::serial, os_error("read", m_path, err));
    }
  }

  Status flush_input() override {
    if (::tcflush(m_fd, TCIFLUSH) != 0) {
      return fail(ErrorKind::serial, os_error("flush", m_path, errno));
    }
    return {};
  }

  Status drain() override {
    while (::tcdrain(m_fd) != 0) {
      if (errno != EINTR) {
        return fail(ErrorKind::serial, os_error("drain", m_path, errno));
      }
    }
    return {};
  }

  const std::string& path() const override { return m_path; }

private:
  std::string m_path;
  int m_fd;
};

} // namespace

bool baud_supported(int baud) {
  for (const auto& e : k_bauds) {
    if (e.baud == baud) {
      return true;
    }
  }
  return false;
}

Status lock_exclusive(int fd, const std::string& path) {
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) {
      continue;
    }
    const int err = errno;
    if (err == EWOULDBLOCK) {
      return fail(ErrorKind::serial, "open " + path + ": " + port_error_hint(EBUSY));
    }
    return fail(ErrorKind::serial, os_error("lock", path, err));
  }
  return {};
}

Result<std::unique_ptr<SerialPort>> open_posix_port(const std::string& path,
                                                    const PortSettings& settings) {
  const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return fail(ErrorKind::serial, os_error("open", path, errno));
  }
  auto port = std::make_unique<PosixPort>(path, fd); // owns fd from here on
  if (!::isatty(fd)) {
    return fail(ErrorKind::serial,
                "open " + path + ": not a serial port or terminal — run 'iotfleet ports'");
  }
  IOT_TRY(lock_exclusive(fd, path));
  termios tio{};
  if (::tcgetattr(fd, &tio) != 0) {
    return fail(ErrorKind::serial, os_error("configure", path, errno));
  }
  ::cfmakeraw(&tio);
  tio.c_cflag |= CLOCAL | CREAD;
  tio.c_cflag &= ~static_cast<tcflag_t>(CSTOPB | PARENB | CRTSCTS);
  tio.c_iflag &= ~static_cast<tcflag_t>(IXON | IXOFF | IXANY);
  tio.c_cc[VMIN] = 0;
  tio.c_cc[VTIME] = 0;
  for (const auto& e : k_bauds) {
    if (e.baud == settings.baud) {
      ::cfsetispeed(&tio, e.speed);
      ::cfsetospeed(&tio, e.speed);
    }
  }
  if (::tcsetattr(fd, TCSANOW, &tio) != 0) {
    return fail(ErrorKind::serial, os_error("configure", path, errno));
  }
  return std::unique_ptr<SerialPort>(std::move(port));
}

} // namespace iot::serial
