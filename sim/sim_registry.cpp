// SPDX-License-Identifier: MIT
#include "sim/sim_registry.hpp"

#include <nlohmann/json.hpp>

namespace iot::sim {

std::string ports_json(pid_t pid,
                       ModuleKind kind,
                       const std::filesystem::path& state_dir,
                       long baud,
                       const std::vector<PortEntry>& ports) {
  nlohmann::json j;
  j["pid"] = pid;
  j["module"] = std::string(to_string(kind));
  j["state_dir"] = state_dir.string();
  j["baud"] = baud;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : ports) {
    nlohmann::json entry{{"index", p.index}, {"path", p.path}};
    entry[kind == ModuleKind::esp_at ? "mac" : "imei"] = p.identity;
    list.push_back(entry);
  }
  j["ports"] = list;
  return j.dump(2) + "\n";
}

} // namespace iot::sim
