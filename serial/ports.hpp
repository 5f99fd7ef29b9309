// SPDX-License-Identifier: MIT
// Port enumeration for `iotfleet ports`: libserialport's devices plus simulator ptys.
#pragma once

#include "core/error.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace iot::serial {

struct PortInfo {
  std::string path;          // "/dev/ttyUSB3", "/dev/pts/5"
  std::string description;   // libserialport's description; "iotfleet-sim luat #0" for simulators
  std::string usb_vid_pid;   // "1a86:7523" (lowercase hex), empty if not USB
  std::string serial_number; // USB serial number string, empty if none
  std::string kind;          // "usb", "native", "bluetooth" or "simulated"
  std::string module;        // simulated only: "luat", "quectel", "esp-at"
  std::string imei;          // simulated only: the IMEI the simulator reports (may be empty)
};

// libserialport's ports, then the ptys of live simulators (sim_registry_dir()), sorted by path
// within each group. A registry that cannot be read is skipped, not an error; a libserialport
// enumeration failure is ErrorKind::serial.
[[nodiscard]] Result<std::vector<PortInfo>> list_ports();

// The simulated ports registered in `dir` (see core/sim_registry.hpp). Unparsable files and files
// of dead processes are ignored; a missing directory gives an empty list.
[[nodiscard]] std::vector<PortInfo> read_sim_registry(const std::filesystem::path& dir);

} // namespace iot::serial
