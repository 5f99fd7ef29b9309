// SPDX-License-Identifier: MIT
#include "serial/serial_port.hpp"

#include "serial/port_backends.hpp"

#include <cerrno>

namespace iot::serial {

std::string port_error_hint(int errno_value) {
  switch (errno_value) {
  case EACCES:
  case EPERM:
    return "add yourself to the dialout group (sudo usermod -aG dialout $USER, then log in again)";
  case ENOENT:
  case ENODEV:
  case ENXIO:
    return "check the cable / run 'iotfleet ports'";
  case EBUSY:
  case EWOULDBLOCK:
    return "in use by another process (another iotfleet, a terminal program or ModemManager; "
           "find it with 'fuser <port>')";
  case EIO:
    return "the device stopped answering: was it unplugged or did the simulator exit?";
  default:
    return {};
  }
}

Error interrupted_error(std::string_view what,
                        std::chrono::milliseconds waited,
                        std::string_view left_undone) {
  std::string msg = std::string(what) + ": interrupted (Ctrl-C / SIGTERM) after " +
                    std::to_string(waited.count()) + " ms";
  if (!left_undone.empty()) {
    msg += ", ";
    msg += left_undone;
  }
  return Error{ErrorKind::interrupted, std::move(msg)};
}

Result<std::unique_ptr<SerialPort>> open_port(const std::string& path,
                                              const PortSettings& settings) {
  if (path.empty()) {
    return fail(ErrorKind::usage, "no serial port given — pass --port (see 'iotfleet ports')");
  }
  if (!baud_supported(settings.baud)) {
    return fail(ErrorKind::usage,
                "baud rate " + std::to_string(settings.baud) +
                    " is not supported — use a standard rate such as 9600, 115200 or 921600");
  }
  bool known = false;
  auto port = open_libserialport_port(path, settings, known);
  if (known) {
    return port;
  }
  // libserialport does not know the device (ptys have no /sys/class/tty entry, or the path does
  // not exist at all): termios gives the right OS error in both cases.
  return open_posix_port(path, settings);
}

} // namespace iot::serial
