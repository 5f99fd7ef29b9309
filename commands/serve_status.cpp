// SPDX-License-Identifier: MIT
#include "commands/serve_status.hpp"

#include <algorithm>
#include <sstream>

namespace iot::commands {

namespace {
using std::chrono::milliseconds;
constexpr milliseconds k_retry_after_failure = std::chrono::minutes(1);
// How often a server looks whether a check is due or another server recorded a newer one (one
// small read per product): half the period, so a check older than the period is made within
// half a period more, and at most every 10 s.
constexpr milliseconds k_poll_max = std::chrono::seconds(10);
constexpr milliseconds k_lease_min = std::chrono::seconds(10);
constexpr milliseconds k_lease_max = std::chrono::minutes(2);
// Names asked about between two looks at the lease: 5 BatchGetDeviceState calls, 5 s at 1 QPS,
// well inside the shortest lease.
constexpr std::size_t k_chunk = 250;
constexpr std::size_t k_names_shown = 5; // newly disabled devices named in the log line

std::int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
} // namespace

CloudStatus::CloudStatus(cloud::IotApi& api,
                         std::unique_ptr<store::Ledger> ledger,
                         std::vector<std::string> product_keys,
                         std::chrono::milliseconds period,
                         std::string holder,
                         Output& output)
    : m_api(api), m_ledger(std::move(ledger)), m_product_keys(std::move(product_keys)),
      m_period(period), m_holder(std::move(holder)), m_output(output) {}

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
  const auto it = m_known.find(product_key);
  return it != m_known.end() && it->second.disabled.contains(device_name);
}

StatusSnapshot CloudStatus::snapshot() {
  std::lock_guard lock(m_mutex);
  return summary();
}

// Caller holds m_mutex.
StatusSnapshot CloudStatus::summary() const {
  StatusSnapshot s = m_tally;
  bool complete = m_known.size() == m_product_keys.size();
  std::int64_t oldest = 0;
  for (const auto& [product_key, known] : m_known) {
    s.checked += known.checked;
    s.disabled += known.disabled.size();
    s.missing += known.missing;
    complete = complete && known.checked_at_ms > 0;
    oldest = oldest == 0 ? known.checked_at_ms : std::min(oldest, known.checked_at_ms);
  }
  if (complete) {
    s.checked_at = std::chrono::system_clock::time_point(milliseconds(oldest));
  }
  return s;
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
      "\n# HELP iotfleet_serve_status_sweeps_total Cloud status checks of a product: made by "
      "this server (ok, failed) or by another one and read from the ledger (shared).\n"
      "# TYPE iotfleet_serve_status_sweeps_total counter\n"
      "iotfleet_serve_status_sweeps_total{result=\"ok\"} " +
      std::to_string(s.sweeps_ok) + "\niotfleet_serve_status_sweeps_total{result=\"failed\"} " +
      std::to_string(s.sweeps_failed) + "\niotfleet_serve_status_sweeps_total{result=\"shared\"} " +
      std::to_string(s.sweeps_shared) + "\n";
  if (s.checked_at) {
    out += "# HELP iotfleet_serve_status_age_seconds Time since the oldest product's last "
           "complete status check.\n# TYPE iotfleet_serve_status_age_seconds gauge\n"
           "iotfleet_serve_status_age_seconds " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now() - *s.checked_at)
                              .count()) +
           "\n";
  }
  return out;
}

Result<store::StatusCheck> CloudStatus::check_cloud(const std::string& product_key) {
  store::StatusCheck check;
  check.product_key = product_key;
  check.holder = m_holder;
  // The names first, then the cloud: no ledger transaction stays open across cloud calls.
  std::vector<std::string> names;
  store::RecordFilter filter;
  filter.product_key = product_key;
  IOT_TRY(m_ledger->for_each(filter, [&](const store::TripletRecord& r) -> Status {
    names.push_back(r.device_name);
    return {};
  }));
  // In chunks, renewing the lease once half of it has gone: a pool that takes longer to check
  // than the lease is not claimed by a second server meanwhile.
  const auto lease = lease_length();
  auto renewed = std::chrono::steady_clock::now();
  std::unordered_set<std::string> answered;
  for (std::size_t i = 0; i < names.size(); i += k_chunk) {
    if (std::chrono::steady_clock::now() - renewed > lease / 2) {
      IOT_TRY_CTX(m_ledger->hold_status_check(product_key, m_holder, now_ms() + lease.count()),
                  "renewing the status check's lease");
      renewed = std::chrono::steady_clock::now();
    }
    const std::vector<std::string> chunk(
        names.begin() + static_cast<std::ptrdiff_t>(i),
        names.begin() + static_cast<std::ptrdiff_t>(std::min(names.size(), i + k_chunk)));
    const auto states = IOT_TRY_CTX(m_api.batch_get_device_state(product_key, chunk),
                                    "BatchGetDeviceState of " + product_key);
    for (const auto& s : states) {
      answered.insert(s.device_name);
      if (s.status == "DISABLE") {
        check.disabled.push_back(s.device_name);
      }
    }
  }
  check.checked = static_cast<std::int64_t>(names.size());
  check.missing = std::count_if(
      names.begin(), names.end(), [&](const std::string& n) { return !answered.contains(n); });
  check.checked_at_ms = now_ms();
  return check;
}

std::chrono::milliseconds CloudStatus::lease_length() const {
  return std::clamp<milliseconds>(m_period, k_lease_min, k_lease_max);
}

// Caller holds m_mutex.
void CloudStatus::adopt(const store::StatusCheck& check, Round& round) {
  Known fresh;
  fresh.disabled.insert(check.disabled.begin(), check.disabled.end());
  fresh.checked = static_cast<std::size_t>(check.checked);
  fresh.missing = static_cast<std::size_t>(check.missing);
  fresh.checked_at_ms = check.checked_at_ms;
  Known& known = m_known[check.product_key];
  bool added = false;
  for (const auto& name : fresh.disabled) {
    if (!known.disabled.contains(name)) {
      round.newly.push_back(check.product_key + "/" + name);
      added = true;
    }
  }
  // Nothing new and the same size: the same set.
  round.changed = round.changed || added || fresh.disabled.size() != known.disabled.size();
  known = std::move(fresh);
}

Status CloudStatus::refresh_product(const std::string& product_key, Round& round) {
  const auto now = now_ms();
  const auto stale_before = now - m_period.count();
  // A read first: only a check that looks due is claimed, so a look at a fresh check writes
  // nothing. A check in progress is another's for a lease at most (a holder that died gives it
  // up); of servers claiming at once, the ledger lets one win.
  const auto stored = IOT_TRY(m_ledger->status_check(product_key));
  const bool due =
      !stored || (stored->lease_until_ms <= now && stored->checked_at_ms < stale_before);
  if (!due || !IOT_TRY(m_ledger->claim_status_check(
                  product_key, m_holder, now, stale_before, now + lease_length().count()))) {
    // Another server checks this period: take its result once it is newer than ours (a claim
    // lost just now shows at the next look).
    std::lock_guard lock(m_mutex);
    if (stored && stored->checked_at_ms > m_known[product_key].checked_at_ms) {
      adopt(*stored, round);
      ++m_tally.sweeps_shared;
      if (!round.own && round.shared.empty()) {
        round.shared = stored->holder;
      }
    }
    return {};
  }
  auto check = check_cloud(product_key);
  if (!check) {
    // Any server may try again a minute from now (or at the next period, if sooner).
    (void)m_ledger->hold_status_check(
        product_key, m_holder, now_ms() + std::min(m_period, k_retry_after_failure).count());
    return fail(check.error());
  }
  {
    std::lock_guard lock(m_mutex);
    adopt(*check, round);
    ++m_tally.sweeps_ok;
    round.own = true;
  }
  if (auto ok = m_ledger->record_status_check(*check); !ok) {
    return with_context(ok, "recording the status check in the ledger");
  }
  return {};
}

Status CloudStatus::refresh() {
  const auto started = std::chrono::steady_clock::now();
  Round round;
  Status result{};
  for (const std::string& product_key : m_product_keys) {
    if (auto ok = refresh_product(product_key, round); !ok) {
      std::lock_guard lock(m_mutex);
      ++m_tally.sweeps_failed;
      if (result) {
        result = std::move(ok);
      }
    }
  }
  StatusSnapshot s;
  {
    std::lock_guard lock(m_mutex);
    if (!result) {
      m_tally.problem = result.error().message;
    } else if (round.own || !round.shared.empty()) {
      m_tally.problem.clear();
    }
    s = summary();
    if (!s.checked_at || (!round.changed && m_logged)) {
      return result;
    }
    m_logged = true;
  }
  std::ostringstream line;
  line << "cloud status of " << s.checked << " pool devices ";
  if (round.own) {
    line << "checked in "
         << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started)
                .count()
         << " ms";
  } else {
    line << "read from the ledger (checked by " << round.shared << ")";
  }
  line << ": " << s.disabled << " disabled (refused, 6204)";
  if (s.missing > 0) {
    line << ", " << s.missing << " not in the cloud";
  }
  if (!round.newly.empty()) {
    std::sort(round.newly.begin(), round.newly.end());
    line << "; newly disabled:";
    for (std::size_t i = 0; i < round.newly.size() && i < k_names_shown; ++i) {
      line << ' ' << round.newly[i];
    }
    if (round.newly.size() > k_names_shown) {
      line << " and " << round.newly.size() - k_names_shown << " more";
    }
  }
  m_output.warn(line.str());
  return result;
}

void CloudStatus::loop(const std::stop_token& stop) {
  while (!stop.stop_requested()) {
    auto next = std::min(m_period / 2, k_poll_max);
    if (auto ok = refresh(); !ok) {
      next = std::min(m_period, k_retry_after_failure);
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
