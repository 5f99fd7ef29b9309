// SPDX-License-Identifier: MIT
// The registry of running simulators, read by `iotfleet ports` to list simulated ports.
//
// Directory: core::sim_registry_dir(). Each simulator writes sim-<pid>.json there (the same
// content as its ports file) and removes it on a clean exit.
#pragma once

#include "core/error.hpp"
#include "core/sim_registry.hpp"
#include "sim/nvm.hpp"

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace iot::sim {

using core::sim_registry_dir;

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
