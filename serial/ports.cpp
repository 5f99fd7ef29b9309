// SPDX-License-Identifier: MIT
#include "serial/ports.hpp"

#include "core/sim_registry.hpp"
#include "serial/port_backends.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <sstream>
#include <system_error>

namespace iot::serial {
namespace {

bool process_alive(long long pid) {
  if (pid <= 0 || pid > 0x7fffffff) {
    return false;
  }
  if (::kill(static_cast<pid_t>(pid), 0) == 0) {
    return true;
  }
  return errno != ESRCH; // EPERM: alive, owned by someone else
}

std::string json_string(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

} // namespace

std::vector<PortInfo> read_sim_registry(const std::filesystem::path& dir) {
  std::vector<PortInfo> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    return out;
  }
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("sim-") || !name.ends_with(".json")) {
      continue;
    }
    std::ifstream in(entry.path(), std::ios::binary);
    if (!in) {
      continue;
    }
    std::stringstream buf;
    buf << in.rdbuf();
    auto doc = nlohmann::json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) {
      continue;
    }
    auto pid = doc.find("pid");
    if (pid == doc.end() || !pid->is_number_integer() || !process_alive(pid->get<long long>())) {
      continue;
    }
    const std::string module = json_string(doc, "module");
    auto ports = doc.find("ports");
    if (ports == doc.end() || !ports->is_array()) {
      continue;
    }
    for (const auto& p : *ports) {
      if (!p.is_object()) {
        continue;
      }
      PortInfo info;
      info.path = json_string(p, "path");
      if (info.path.empty()) {
        continue;
      }
      info.kind = "simulated";
      info.module = module;
      info.imei = json_string(p, "imei");
      info.description = "iotfleet-sim " + (module.empty() ? std::string("module") : module);
      if (auto idx = p.find("index"); idx != p.end() && idx->is_number_integer()) {
        info.description += " #" + std::to_string(idx->get<long long>());
      }
      out.push_back(std::move(info));
    }
  }
  std::sort(
      out.begin(), out.end(), [](const PortInfo& a, const PortInfo& b) { return a.path < b.path; });
  return out;
}

Result<std::vector<PortInfo>> list_ports() {
  auto ports = IOT_TRY(list_libserialport_ports());
  std::sort(ports.begin(), ports.end(), [](const PortInfo& a, const PortInfo& b) {
    return a.path < b.path;
  });
  auto sims = read_sim_registry(core::sim_registry_dir());
  ports.insert(ports.end(), sims.begin(), sims.end());
  return ports;
}

} // namespace iot::serial
