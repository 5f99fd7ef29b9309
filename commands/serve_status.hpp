// SPDX-License-Identifier: MIT
// serve --status-refresh: the cloud's status of the pool's devices, so a device disabled in the
// cloud since its import is refused (6204) without a cloud call on the request path.
//
// The check is shared by every server on the ledger (store::Ledger::claim_status_check): each
// period one of them claims a product's check, asks BatchGetDeviceState about every device the
// ledger holds of it (50 names a call, paced at the account's QPS by the cloud client) and
// records the disabled names in the ledger; the others read them from there. N instances make
// one check a period, not N. A failed check keeps the last known statuses and may be claimed
// again (by any server) a minute later. A claim is a lease (the period, clamped to 10 s .. 2 min)
// that a long check renews as it goes; a server that dies holding a check leaves it to the
// others when its lease ends.
#pragma once

#include "cloud/iot_api.hpp"
#include "commands/context.hpp"
#include "core/error.hpp"
#include "store/ledger.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
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
  std::size_t checked = 0;  // pool devices the last complete checks asked about
  std::size_t disabled = 0; // of them, DISABLE in the cloud
  std::size_t missing = 0;  // of them, unknown to the cloud (deleted there): served as before
  // The oldest of the products' last complete checks; nullopt until every product has one.
  std::optional<std::chrono::system_clock::time_point> checked_at;
  std::uint64_t sweeps_ok = 0;     // checks this server made
  std::uint64_t sweeps_failed = 0; // of this server's, those that failed
  std::uint64_t sweeps_shared = 0; // checks another server made, read from the ledger
  std::string problem;             // why the last check failed; empty after a good one
};

class CloudStatus {
public:
  // `ledger` is a connection of the status check's own, so its reads never wait for requests.
  // `holder` names this server in the ledger's status_checks (station and pid).
  CloudStatus(cloud::IotApi& api,
              std::unique_ptr<store::Ledger> ledger,
              std::vector<std::string> product_keys,
              std::chrono::milliseconds period,
              std::string holder,
              Output& output);
  ~CloudStatus();
  CloudStatus(const CloudStatus&) = delete;
  CloudStatus& operator=(const CloudStatus&) = delete;

  // Checks (or reads another server's check) at once, then every poll, on a thread of its own
  // until destroyed.
  void start();
  // Whether the last complete check found this device disabled.
  [[nodiscard]] bool disabled(const std::string& product_key, const std::string& device_name);
  [[nodiscard]] StatusSnapshot snapshot();
  // One round, now (the thread's body): each product's check that is due is claimed and made,
  // the others' newer results adopted. Fails with the first product's failure.
  [[nodiscard]] Status refresh();
  // The Prometheus lines of the check (iotfleet_serve_status_*).
  [[nodiscard]] std::string metrics();

private:
  struct Known {
    std::unordered_set<std::string> disabled; // DeviceNames
    std::size_t checked = 0;
    std::size_t missing = 0;
    std::int64_t checked_at_ms = 0; // 0: none yet
  };
  // What changed in one round, for the log line.
  struct Round {
    bool own = false;               // this server checked at least one product
    std::string shared;             // else: who made the check read from the ledger
    std::vector<std::string> newly; // "ProductKey/DeviceName" newly disabled
    bool changed = false;
  };
  Status refresh_product(const std::string& product_key, Round& round);
  Result<store::StatusCheck> check_cloud(const std::string& product_key);
  [[nodiscard]] std::chrono::milliseconds lease_length() const; // the period, 10 s .. 2 min
  void adopt(const store::StatusCheck& check, Round& round);
  [[nodiscard]] StatusSnapshot summary() const; // caller holds m_mutex
  void loop(const std::stop_token& stop);

  cloud::IotApi& m_api;
  std::unique_ptr<store::Ledger> m_ledger;
  const std::vector<std::string> m_product_keys;
  const std::chrono::milliseconds m_period;
  const std::string m_holder;
  Output& m_output;
  std::mutex m_mutex;
  std::map<std::string, Known> m_known; // by ProductKey
  // The counters and the last problem; the counts and the age come from m_known (summary()).
  StatusSnapshot m_tally;
  bool m_logged = false; // the first complete state was logged
  std::condition_variable_any m_wake;
  std::jthread m_thread; // last: stopped and joined first
};

} // namespace iot::commands
