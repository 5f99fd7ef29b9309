// SPDX-License-Identifier: MIT
#include "sim/pty_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace iot::sim {
namespace {

using namespace std::chrono_literals;

// Bytes written per wake-up while pacing: fewer wake-ups, at most ~1.4 ms early at 115200.
constexpr std::size_t k_pace_slice = 16;

speed_t speed_for(long baud) {
  switch (baud) {
  case 9600:
    return B9600;
  case 19200:
    return B19200;
  case 38400:
    return B38400;
  case 57600:
    return B57600;
  case 230400:
    return B230400;
  case 460800:
    return B460800;
  case 921600:
    return B921600;
  default:
    return B115200;
  }
}

std::string errno_text() {
  return std::strerror(errno);
}

} // namespace

PtyServer::PtyServer(PtyServerOptions options)
    : m_options(options),
      m_byte_time(std::chrono::duration_cast<Duration>(
          std::chrono::duration<double>(10.0 / static_cast<double>(std::max(options.baud, 1L))))) {}

PtyServer::~PtyServer() {
  for (auto& p : m_ports) {
    if (p.master >= 0) {
      ::close(p.master);
    }
    if (p.slave >= 0) {
      ::close(p.slave);
    }
  }
}

Result<std::string> PtyServer::add(std::unique_ptr<ModuleModel> model) {
  Port port;
  if (::openpty(&port.master, &port.slave, nullptr, nullptr, nullptr) != 0) {
    return fail(ErrorKind::serial, "openpty: " + errno_text());
  }
  // From here the Port owns the fds (closed by the destructor once pushed, or below).
  auto abandon = [&port](const std::string& what) {
    const std::string reason = errno_text();
    ::close(port.master);
    ::close(port.slave);
    return fail(ErrorKind::serial, what + ": " + reason);
  };
  termios tio{};
  if (::tcgetattr(port.slave, &tio) != 0) {
    return abandon("tcgetattr");
  }
  ::cfmakeraw(&tio);
  ::cfsetispeed(&tio, speed_for(m_options.baud));
  ::cfsetospeed(&tio, speed_for(m_options.baud));
  if (::tcsetattr(port.slave, TCSANOW, &tio) != 0) {
    return abandon("tcsetattr");
  }
  const int flags = ::fcntl(port.master, F_GETFL);
  if (flags < 0 || ::fcntl(port.master, F_SETFL, flags | O_NONBLOCK) != 0) {
    return abandon("fcntl");
  }
  ::fcntl(port.master, F_SETFD, FD_CLOEXEC);
  ::fcntl(port.slave, F_SETFD, FD_CLOEXEC);
  const char* name = ::ttyname(port.slave);
  if (name == nullptr) {
    return abandon("ttyname");
  }
  port.path = name;
  port.model = std::move(model);
  if (port.model) {
    port.model->power_on(SimClock::now());
  }
  std::string path = port.path;
  m_ports.push_back(std::move(port));
  return path;
}

std::unique_ptr<ModuleModel> PtyServer::remove(std::size_t index) {
  Port& port = m_ports.at(index);
  port.tx.clear(); // what had not reached the adapter goes with the module
  return std::move(port.model);
}

void PtyServer::insert(std::size_t index, std::unique_ptr<ModuleModel> model, TimePoint now) {
  Port& port = m_ports.at(index);
  port.tx.clear();
  port.model = std::move(model);
  if (port.model) {
    port.model->power_on(now);
  }
}

std::optional<TimePoint> PtyServer::tx_deadline(const Port& port) const {
  if (port.tx.empty()) {
    return std::nullopt;
  }
  if (!m_options.pacing) {
    return SimClock::now();
  }
  const auto bytes = static_cast<Duration::rep>(std::min(port.tx.size(), k_pace_slice));
  return port.tx_clock + m_byte_time * bytes;
}

void PtyServer::pump_output(Port& port, TimePoint now) {
  if (!port.model) {
    return; // empty fixture: nothing to send
  }
  std::string due = port.model->take_due(now);
  if (!due.empty()) {
    if (port.tx.empty() && port.tx_clock < now) {
      port.tx_clock = now; // the wire was idle
    }
    port.tx += due;
  }
  if (port.tx.empty()) {
    return;
  }
  std::size_t allowed = port.tx.size();
  if (m_options.pacing) {
    // A byte is delivered once its last bit has gone over the wire.
    const auto elapsed = now - port.tx_clock;
    allowed = elapsed.count() <= 0
                  ? 0
                  : std::min(port.tx.size(), static_cast<std::size_t>(elapsed / m_byte_time));
  }
  if (allowed == 0) {
    return;
  }
  const ssize_t n = ::write(port.master, port.tx.data(), allowed);
  std::size_t consumed = allowed;
  if (n >= 0) {
    // A short write means the pty buffer is full: nobody is reading, the rest is lost.
    consumed = allowed;
  } else if (errno == EINTR) {
    consumed = 0;
  }
  // EAGAIN and other errors: nobody is listening; drop, as a UART would.
  port.tx.erase(0, consumed);
  if (m_options.pacing) {
    port.tx_clock += m_byte_time * static_cast<Duration::rep>(consumed);
  }
}

Status PtyServer::run(int stop_fd, ServerController* controller) {
  // fds[0]: stop_fd, fds[1]: the controller's fd (-1 = none: poll skips it), then the ports.
  constexpr std::size_t k_first_port = 2;
  std::vector<pollfd> fds;
  std::string buffer(4096, '\0');
  while (true) {
    TimePoint now = SimClock::now();
    std::optional<TimePoint> deadline;
    auto consider = [&deadline](std::optional<TimePoint> t) {
      if (t && (!deadline || *t < *deadline)) {
        deadline = t;
      }
    };
    if (controller != nullptr) {
      controller->advance(now);
      consider(controller->next_deadline());
    }
    for (auto& port : m_ports) {
      pump_output(port, now);
      if (port.model) {
        consider(port.model->next_deadline());
      }
      consider(tx_deadline(port));
    }
    timespec timeout{};
    timespec* timeout_ptr = nullptr;
    if (deadline) {
      const auto wait = std::max(Duration(0), *deadline - SimClock::now());
      timeout.tv_sec =
          static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(wait).count());
      timeout.tv_nsec = static_cast<long>((wait % std::chrono::seconds(1)).count());
      timeout_ptr = &timeout;
    }
    fds.resize(m_ports.size() + k_first_port);
    fds[0] = pollfd{stop_fd, POLLIN, 0};
    fds[1] = pollfd{controller != nullptr ? controller->control_fd() : -1, POLLIN, 0};
    for (std::size_t i = 0; i < m_ports.size(); ++i) {
      fds[i + k_first_port] = pollfd{m_ports[i].master, POLLIN, 0};
    }
    const int ready = ::ppoll(fds.data(), fds.size(), timeout_ptr, nullptr);
    if (ready < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(ErrorKind::serial, "ppoll: " + errno_text());
    }
    if ((fds[0].revents & POLLIN) != 0) {
      return {};
    }
    now = SimClock::now();
    for (std::size_t i = 0; i < m_ports.size(); ++i) {
      if ((fds[i + k_first_port].revents & POLLIN) == 0) {
        continue;
      }
      while (true) {
        const ssize_t n = ::read(m_ports[i].master, buffer.data(), buffer.size());
        if (n <= 0) {
          break; // EAGAIN (drained), EIO (no slave: cannot happen, we hold one) or EOF
        }
        if (m_ports[i].model) { // an empty fixture discards what the host sends
          m_ports[i].model->feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)), now);
        }
      }
    }
    if (controller != nullptr && fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP)) != 0) {
      controller->on_readable(now);
    }
  }
}

} // namespace iot::sim
