// SPDX-License-Identifier: MIT
// serve --status-refresh: the cloud's status of the pool's devices. Every period one sweep asks
// BatchGetDeviceState about every device the ledger holds of the served products (50 names a
// call, paced at the account's QPS by the cloud client), so a device disabled in the cloud since
// its import is refused (6204) without a cloud call on the request path. A failed sweep keeps
// the last known set and is tried again within a minute.
#pragma once

#include "cloud/iot_api.hpp"
#include "commands/context.hpp"
#include "core/error.hpp"
#include "store/ledger.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace iot::commands {

struct StatusSnapshot {
  std::size_t checked = 0;  // pool devices asked about in the last complete sweep
  std::size_t disabled = 0; // of them, DISABLE in the cloud
  std::size_t missing = 0;  // of them, unknown to the cloud (deleted there): served as before
  std::optional<std::chrono::system_clock::time_point> checked_at; // the last complete sweep
  std::uint64_t sweeps_ok = 0;
  std::uint64_t sweeps_failed = 0;
  std::string problem; // why the last sweep failed; empty after a good one
};

class CloudStatus {
public:
  // `ledger` is a connection of the status check's own, so its reads never wait for requests.
  CloudStatus(cloud::IotApi& api,
              std::unique_ptr<store::Ledger> ledger,
              std::vector<std::string> product_keys,
              std::chrono::milliseconds period,
              Output& output);
  ~CloudStatus();
  CloudStatus(const CloudStatus&) = delete;
  CloudStatus& operator=(const CloudStatus&) = delete;

  // Sweeps at once, then every period, on a thread of its own until destroyed.
  void start();
  // Whether the last complete sweep found this device disabled.
  [[nodiscard]] bool disabled(const std::string& product_key, const std::string& device_name);
  [[nodiscard]] StatusSnapshot snapshot();
  // One sweep, now (the thread's body).
  [[nodiscard]] Status sweep();
  // The Prometheus lines of the check (iotfleet_serve_status_*).
  [[nodiscard]] std::string metrics();

private:
  void loop(const std::stop_token& stop);

  cloud::IotApi& m_api;
  std::unique_ptr<store::Ledger> m_ledger;
  const std::vector<std::string> m_product_keys;
  const std::chrono::milliseconds m_period;
  Output& m_output;
  std::mutex m_mutex;
  std::unordered_set<std::string> m_disabled; // "ProductKey/DeviceName"
  StatusSnapshot m_snapshot;
  std::condition_variable_any m_wake;
  std::jthread m_thread; // last: stopped and joined first
};

} // namespace iot::commands
