// SPDX-License-Identifier: MIT
// Internal to serial/: the two SerialPort implementations behind open_port() and the
// libserialport enumeration. libserialport.h stays inside libserialport_port.cpp.
#pragma once

#include "core/error.hpp"
#include "serial/ports.hpp"
#include "serial/serial_port.hpp"

#include <memory>
#include <string>
#include <vector>

namespace iot::serial {

// True for the rates termios can express (B1200 … B4000000).
[[nodiscard]] bool baud_supported(int baud);

// Sets `known` to false (and returns an error) when libserialport cannot find the device, so the
// caller can fall back to termios; when `known` is true the result is final.
[[nodiscard]] Result<std::unique_ptr<SerialPort>>
open_libserialport_port(const std::string& path, const PortSettings& settings, bool& known);

[[nodiscard]] Result<std::unique_ptr<SerialPort>> open_posix_port(const std::string& path,
                                                                  const PortSettings& settings);

// Ports libserialport enumerates, kind "usb", "native" or "bluetooth".
[[nodiscard]] Result<std::vector<PortInfo>> list_libserialport_ports();

// Locks fd exclusively (flock LOCK_EX|LOCK_NB); ErrorKind::serial "in use by another process".
[[nodiscard]] Status lock_exclusive(int fd, const std::string& path);

} // namespace iot::serial
