// SPDX-License-Identifier: MIT
// The registry of running simulators, read by `iotfleet ports` to list simulated ports.
//
// Directory: $IOTFLEET_SIM_REGISTRY if set, else $XDG_RUNTIME_DIR/iotfleet if XDG_RUNTIME_DIR is
// set, else /tmp/iotfleet-<uid>. Each simulator writes sim-<pid>.json there (the same content as
// its ports file) and removes it on a clean exit. This is the simulator's own copy of the rule in
// serial/sim_registry.hpp, so sim/ does not depend on serial/ for it; keep the two identical.
#pragma once

#include "core/error.hpp"
#include "sim/nvm.hpp"

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace iot::sim {

[[nodiscard]] std::filesystem::path sim_registry_dir();

struct PortEntry {
  std::size_t index = 0;
  std::string path;     // /dev/pts/N
  std::string identity; // IMEI (cellular) or MAC (esp-at)
};

// {"pid":..,"module":"luat","state_dir":"…","baud":115200,
//  "ports":[{"index":0,"path":"/dev/pts/5","imei":"…"}]}   ("mac" instead of "imei" for esp-at)
[[nodiscard]] std::string ports_json(pid_t pid,
                                     ModuleKind kind,
                                     const std::filesystem::path& state_dir,
                                     long baud,
                                     const std::vector<PortEntry>& ports);

} // namespace iot::sim
