// SPDX-License-Identifier: MIT
#include "commands/serve_status.hpp"

#include <algorithm>
#include <sstream>

namespace iot::commands {

namespace {
constexpr std::chrono::minutes k_retry_after_failure{1};
constexpr std::size_t k_names_shown = 5; // newly disabled devices named in the log line
} // namespace

CloudStatus::CloudStatus(cloud::IotApi& api,
                         std::unique_ptr<store::Ledger> ledger,
                         std::vector<std::string> product_keys,
                         std::chrono::milliseconds period,
                         Output& output)
    : m_api(api), m_ledger(std::move(ledger)), m_product_keys(std::move(product_keys)),
      m_period(period), m_output(output) {}

CloudStatus::~CloudStatus() {
  if (m_thread.joinable()) {
    m_thread.request_stop();
    m_wake.notify_all();
  }
}

void CloudStatus::start() {
  m_thread = std::jthread([this](const std::stop_token& stop) { loop(stop); });
}

bool CloudStatus::disabled(const std::string& product_key, const std::string& device_name) {
  std::lock_guard lock(m_mutex);
  return !m_disabled.empty() && m_disabled.contains(product_key + "/" + device_name);
}

StatusSnapshot CloudStatus::snapshot() {
  std::lock_guard lock(m_mutex);
  return m_snapshot;
}

std::string CloudStatus::metrics() {
  const StatusSnapshot s = snapshot();
  std::string out =
      "# HELP iotfleet_serve_status_devices Pool devices in the last cloud status check, by "
      "what the cloud said.\n# TYPE iotfleet_serve_status_devices gauge\n"
      "iotfleet_serve_status_devices{status=\"checked\"} " +
      std::to_string(s.checked) + "\niotfleet_serve_status_devices{status=\"disabled\"} " +
      std::to_string(s.disabled) + "\niotfleet_serve_status_devices{status=\"missing\"} " +
      std::to_string(s.missing) +
      "\n# HELP iotfleet_serve_status_sweeps_total Cloud status checks of the pool.\n"
      "# TYPE iotfleet_serve_status_sweeps_total counter\n"
      "iotfleet_serve_status_sweeps_total{result=\"ok\"} " +
      std::to_string(s.sweeps_ok) + "\niotfleet_serve_status_sweeps_total{result=\"failed\"} " +
      std::to_string(s.sweeps_failed) + "\n";
  if (s.checked_at) {
    out += "# HELP iotfleet_serve_status_age_seconds Time since the last complete status "
           "check.\n# TYPE iotfleet_serve_status_age_seconds gauge\n"
           "iotfleet_serve_status_age_seconds " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now() - *s.checked_at)
                              .count()) +
           "\n";
  }
  return out;
}

Status CloudStatus::sweep() {
  const auto started = std::chrono::steady_clock::now();
  std::unordered_set<std::string> disabled;
  std::size_t checked = 0;
  std::size_t missing = 0;
  for (const std::string& product_key : m_product_keys) {
    // The names first, then the cloud: no ledger transaction stays open across cloud calls.
    std::vector<std::string> names;
    store::RecordFilter filter;
    filter.product_key = product_key;
    IOT_TRY(m_ledger->for_each(filter, [&](const store::TripletRecord& r) -> Status {
      names.push_back(r.device_name);
      return {};
    }));
    if (names.empty()) {
      continue;
    }
    const auto states = IOT_TRY_CTX(m_api.batch_get_device_state(product_key, names),
                                    "BatchGetDeviceState of " + product_key);
    std::unordered_set<std::string> answered;
    for (const auto& s : states) {
      answered.insert(s.device_name);
      if (s.status == "DISABLE") {
        disabled.insert(product_key + "/" + s.device_name);
      }
    }
    checked += names.size();
    missing += static_cast<std::size_t>(std::count_if(
        names.begin(), names.end(), [&](const std::string& n) { return !answered.contains(n); }));
  }
  std::vector<std::string> newly;
  const std::size_t disabled_count = disabled.size();
  {
    std::lock_guard lock(m_mutex);
    for (const auto& name : disabled) {
      if (!m_disabled.contains(name)) {
        newly.push_back(name);
      }
    }
    // Same size and nothing new: the same set.
    const bool changed = !newly.empty() || disabled.size() != m_disabled.size();
    m_disabled = std::move(disabled);
    m_snapshot.checked = checked;
    m_snapshot.disabled = m_disabled.size();
    m_snapshot.missing = missing;
    m_snapshot.checked_at = std::chrono::system_clock::now();
    m_snapshot.problem.clear();
    ++m_snapshot.sweeps_ok;
    if (!changed && m_snapshot.sweeps_ok > 1) {
      return {};
    }
  }
  std::ostringstream line;
  line << "cloud status of " << checked << " pool devices checked in "
       << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                started)
              .count()
       << " ms: " << disabled_count << " disabled (refused, 6204)";
  if (missing > 0) {
    line << ", " << missing << " not in the cloud";
  }
  if (!newly.empty()) {
    std::sort(newly.begin(), newly.end());
    line << "; newly disabled:";
    for (std::size_t i = 0; i < newly.size() && i < k_names_shown; ++i) {
      line << ' ' << newly[i];
    }
    if (newly.size() > k_names_shown) {
      line << " and " << newly.size() - k_names_shown << " more";
    }
  }
  m_output.warn(line.str());
  return {};
}

void CloudStatus::loop(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    auto next = m_period;
    if (auto ok = sweep(); !ok) {
      {
        std::lock_guard lock(m_mutex);
        ++m_snapshot.sweeps_failed;
        m_snapshot.problem = ok.error().message;
      }
      next = std::min<std::chrono::milliseconds>(m_period, k_retry_after_failure);
      m_output.warn("cloud status check failed (the last known statuses stay in force; again "
                    "in " +
                    std::to_string(next.count() / 1000) + " s): " + ok.error().message);
    }
    std::mutex wait_mutex;
    std::unique_lock lock(wait_mutex);
    m_wake.wait_for(lock, stop, next, [] { return false; });
  }
}

} // namespace iot::commands
