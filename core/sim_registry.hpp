// SPDX-License-Identifier: MIT
// Where running simulators register their pseudo-terminals: iotfleet-sim (sim/) writes there,
// `iotfleet ports` (serial/) reads there; one rule for both, in core.
//
// Contract: one file per simulator process, `<dir>/sim-<pid>.json`:
//   {"pid":123,"module":"luat","ports":[{"path":"/dev/pts/5","imei":"8613…","index":0}]}
// written atomically (temp file + rename) by the simulator and removed when it exits. Readers
// ignore files that do not parse and files whose pid is not alive (kill(pid, 0) fails with ESRCH).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace iot::core {

// $IOTFLEET_SIM_REGISTRY if set and non-empty, else $XDG_RUNTIME_DIR/iotfleet if XDG_RUNTIME_DIR
// is set and non-empty, else /tmp/iotfleet-<uid>. The directory may not exist yet.
[[nodiscard]] inline std::filesystem::path sim_registry_dir() {
  if (const char* dir = std::getenv("IOTFLEET_SIM_REGISTRY"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "iotfleet";
  }
  return std::filesystem::path("/tmp") / ("iotfleet-" + std::to_string(::getuid()));
}

} // namespace iot::core
