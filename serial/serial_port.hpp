// SPDX-License-Identifier: MIT
// The serial seam: one SerialPort interface, two implementations chosen by open_port().
//   - libserialport for real devices (what a factory runs; portable);
//   - POSIX termios for pseudo-terminals (/dev/pts/N), which Debian's libserialport 0.1.1 cannot
//     open because it looks devices up under /sys/class/tty. The simulator and tests use this one.
// A SerialPort is used by one thread at a time; different ports may be used from different threads.
#pragma once

#include "core/error.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace iot::serial {

class SerialPort {
public:
  virtual ~SerialPort() = default;

  // Writes all of `bytes` (blocking until the OS took them, at most a few seconds). A short or
  // failed write is ErrorKind::serial.
  [[nodiscard]] virtual Status write(std::string_view bytes) = 0;

  // Whatever arrived within `timeout` (returns as soon as at least one byte is there); an empty
  // string means nothing arrived before the timeout. A zero timeout polls. Never blocks forever.
  // A device that disappeared (USB unplugged, simulator exited) is ErrorKind::serial.
  [[nodiscard]] virtual Result<std::string> read_some(std::chrono::milliseconds timeout) = 0;

  // Discards bytes received but not yet read.
  [[nodiscard]] virtual Status flush_input() = 0;

  // Waits until every written byte has left the UART.
  [[nodiscard]] virtual Status drain() = 0;

  // The device path given to open_port ("/dev/ttyUSB3", "/dev/pts/5").
  [[nodiscard]] virtual const std::string& path() const = 0;
};

struct PortSettings {
  int baud = 115200; // 8N1, no flow control; standard rates 1200..4000000
};

// Opens `path` read/write, exclusively (a second open of the same device, by us or anyone using
// flock, fails with "in use by another process"), raw 8N1, no flow control, at settings.baud.
// libserialport first; if it does not know the device (ptys), POSIX termios.
// Errors (ErrorKind::serial) read "open <path>: <OS message> — <fix>"; an unsupported baud rate is
// ErrorKind::usage.
[[nodiscard]] Result<std::unique_ptr<SerialPort>> open_port(const std::string& path,
                                                            const PortSettings& settings = {});

// The fix to append to an OS error from opening or using a port: for EACCES the dialout-group hint,
// for ENOENT/ENODEV/ENXIO "check the cable / run 'iotfleet ports'", for EBUSY/EWOULDBLOCK "in use
// by another process …". Empty when there is no better advice than the OS message.
[[nodiscard]] std::string port_error_hint(int errno_value);

} // namespace iot::serial
