// SPDX-License-Identifier: MIT
// The serial seam: one SerialPort interface, two implementations chosen by open_port().
//   - libserialport for real devices (what a factory runs; portable);
//   - POSIX termios for pseudo-terminals (/dev/pts/N), which Debian's libserialport 0.1.1 cannot
//     open because it looks devices up under /sys/class/tty. The simulator and tests use this one.
// A SerialPort is used by one thread at a time; different ports may be used from different threads.
//
// Interruption: SIGINT / SIGTERM set core::interrupt_requested(). Every wait on a port (its reads
// and writes, and the AtChannel's waits above it) then ends within k_interrupt_slice with
// ErrorKind::interrupted, unless the port is inside a FinishInFlight: work that must not be cut
// in half (a credential write and its read-back) runs to its own, bounded, timeouts.
#pragma once

#include "core/error.hpp"
#include "core/interrupt.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace iot::serial {

// The longest a wait on a port goes without looking at the interrupt flag.
inline constexpr std::chrono::milliseconds k_interrupt_slice{50};

class SerialPort {
public:
  SerialPort() = default;
  virtual ~SerialPort() = default;
  SerialPort(const SerialPort&) = delete;
  SerialPort& operator=(const SerialPort&) = delete;
  SerialPort(SerialPort&&) = delete;
  SerialPort& operator=(SerialPort&&) = delete;

  // Writes all of `bytes` (blocking until the OS took them, at most a few seconds). A short or
  // failed write is ErrorKind::serial; interrupted() while the OS takes no data is
  // ErrorKind::interrupted (some of the bytes may have left).
  [[nodiscard]] virtual Status write(std::string_view bytes) = 0;

  // Whatever arrived within `timeout` (returns as soon as at least one byte is there); an empty
  // string means nothing arrived before the timeout. A zero timeout polls. Never blocks forever.
  // A device that disappeared (USB unplugged, simulator exited) is ErrorKind::serial; when
  // interrupted() becomes true while nothing has arrived, ErrorKind::interrupted within
  // k_interrupt_slice.
  [[nodiscard]] virtual Result<std::string> read_some(std::chrono::milliseconds timeout) = 0;

  // Discards bytes received but not yet read.
  [[nodiscard]] virtual Status flush_input() = 0;

  // Waits until every written byte has left the UART.
  [[nodiscard]] virtual Status drain() = 0;

  // The device path given to open_port ("/dev/ttyUSB3", "/dev/pts/5").
  [[nodiscard]] virtual const std::string& path() const = 0;

  // True when a stop was requested (SIGINT / SIGTERM) and this port's waits are to give way to
  // it: every wait polls this at least every k_interrupt_slice.
  [[nodiscard]] bool interrupted() const noexcept {
    return m_interruptible && core::interrupt_requested();
  }
  [[nodiscard]] bool interruptible() const noexcept { return m_interruptible; }
  // false: waits ignore interruption and run to their own timeouts (see FinishInFlight).
  void set_interruptible(bool on) noexcept { m_interruptible = on; }

private:
  bool m_interruptible = true;
};

// While alive, `port` ignores interruption, so what was started on it is finished: provision
// wraps a credential write and its read-back in one, so that Ctrl-C never leaves a write half
// sent or unverified (every wait inside still has its own timeout). Restores the previous
// setting; nests.
class FinishInFlight {
public:
  explicit FinishInFlight(SerialPort& port) noexcept
      : m_port(port), m_was_interruptible(port.interruptible()) {
    m_port.set_interruptible(false);
  }
  ~FinishInFlight() { m_port.set_interruptible(m_was_interruptible); }
  FinishInFlight(const FinishInFlight&) = delete;
  FinishInFlight& operator=(const FinishInFlight&) = delete;
  FinishInFlight(FinishInFlight&&) = delete;
  FinishInFlight& operator=(FinishInFlight&&) = delete;

private:
  SerialPort& m_port;
  bool m_was_interruptible;
};

// The error of a wait that gave way to an interruption (ErrorKind::interrupted, exit 130):
// "<what>: interrupted (Ctrl-C / SIGTERM) after N ms[, <what was left undone>]".
[[nodiscard]] Error interrupted_error(std::string_view what,
                                      std::chrono::milliseconds waited,
                                      std::string_view left_undone = {});

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
