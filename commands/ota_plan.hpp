// SPDX-License-Identifier: MIT
// The pure half of `ota rollout` (no I/O but the state file): wave specs, the wave plan, the
// abort rule, durations and the journal (state file) format. docs/ota.md.
#pragma once

#include "core/error.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::commands::ota {

// One entry of --waves: a cumulative share of the plan ("10%") or a cumulative count ("500");
// "all" = 100%.
struct WaveSpec {
  bool percent = false;
  double value = 0;
  friend bool operator==(const WaveSpec&, const WaveSpec&) = default;
};

// "1%,10%,50%,100%" or "10,100,all". ErrorKind::usage for an empty list, a value ≤ 0, a percent
// above 100 or values that do not increase.
[[nodiscard]] Result<std::vector<WaveSpec>> parse_waves(std::string_view text);

// The cumulative end index of each wave over `total` devices: a percent rounds up (1% of 50 is
// one device), a count is capped at the total, empty waves are dropped. {} when total is 0.
[[nodiscard]] std::vector<std::size_t> plan_wave_ends(const std::vector<WaveSpec>& specs,
                                                      std::size_t total);

// --max-per-minute: "1000" (every wave) or "100,1000,5000" (one per --waves entry); each 10 to
// 10 000 (§3). ErrorKind::usage naming the bad value, or a list whose length is neither 1 nor
// `waves`.
[[nodiscard]] Result<std::vector<int>> parse_push_rates(std::string_view text, std::size_t waves);

// --tag KEY=VALUE → {KEY, VALUE}; ErrorKind::usage without '=' or with an empty key or value.
struct TagFilter {
  std::string key;
  std::string value;
  friend bool operator==(const TagFilter&, const TagFilter&) = default;
};
[[nodiscard]] Result<TagFilter> parse_tag_filter(std::string_view text);

// The QueryDeviceBySQL statement for --query's condition and one page of it: the product's
// condition is put first unless the condition names product_key itself or has an OR (the
// platform does not nest, so "pk AND (a OR b)" cannot be written; then the caller filters by
// product). ErrorKind::usage for a whole statement (SELECT …) or a LIMIT of the user's.
struct SqlStatement {
  std::string where;           // the WHERE clause without LIMIT
  bool filters_product = true; // false: rows of other products may come back
};
[[nodiscard]] Result<SqlStatement> device_query(std::string_view condition,
                                                std::string_view product_key);
[[nodiscard]] std::string
device_query_page(const SqlStatement& statement, std::int64_t offset, std::int64_t limit);

// "5%" or "0.05" → 0.05. ErrorKind::usage outside [0, 1].
[[nodiscard]] Result<double> parse_rate(std::string_view text);

struct AbortRule {
  double failure_rate = 0.05; // failed / finished at or above this trips the rule
  std::int64_t min_finished = 20;
};

// finished = succeeded + failed (canceled tasks are not a device's verdict). True when
// finished ≥ min_finished and failed ≥ rate × finished (rate 0 = any failure once judged).
[[nodiscard]] bool
abort_tripped(const AbortRule& rule, std::int64_t failed, std::int64_t succeeded);

struct PlannedDevice {
  std::string name;
  std::string group; // the device's Nickname (a hardware revision, say): failures group by it
  friend bool operator==(const PlannedDevice&, const PlannedDevice&) = default;
};

// Wave states, in the order a wave goes through them. `creating` is the intent written before
// CreateOTAStaticUpgradeJob: on resume such a wave's job is looked up by its tags first.
enum class WaveState { pending, creating, running, soaking, finished, aborted };
[[nodiscard]] std::string_view to_string(WaveState state);
[[nodiscard]] Result<WaveState> parse_wave_state(std::string_view text);

// A rollout: planned → running → done | aborted | canceled.
enum class RolloutStatus { planned, running, done, aborted, canceled };
[[nodiscard]] std::string_view to_string(RolloutStatus status);
[[nodiscard]] Result<RolloutStatus> parse_rollout_status(std::string_view text);

// The platform's OTA task states (ListOTATaskByJob TaskStatus), in the order a task goes
// through them. CONFIRM, QUEUED, NOTIFIED and IN_PROGRESS are open; the last three are final.
enum class TaskStatus { confirm, queued, notified, in_progress, succeeded, failed, canceled };
inline constexpr std::array<TaskStatus, 7> k_task_statuses = {TaskStatus::confirm,
                                                              TaskStatus::queued,
                                                              TaskStatus::notified,
                                                              TaskStatus::in_progress,
                                                              TaskStatus::succeeded,
                                                              TaskStatus::failed,
                                                              TaskStatus::canceled};
// "CONFIRM", "QUEUED", … as the API spells them.
[[nodiscard]] std::string_view to_string(TaskStatus status);
[[nodiscard]] constexpr bool is_open(TaskStatus s) {
  return s == TaskStatus::confirm || s == TaskStatus::queued || s == TaskStatus::notified ||
         s == TaskStatus::in_progress;
}

struct WaveCounts {
  std::int64_t total = 0;
  std::int64_t succeeded = 0;
  std::int64_t failed = 0;
  std::int64_t canceled = 0;
  std::int64_t notified = 0;
  // QUEUED, CONFIRM, IN_PROGRESS
  std::int64_t active = 0;
  friend bool operator==(const WaveCounts&, const WaveCounts&) = default;
};

struct WaveRecord {
  int number = 0;        // 1-based
  std::size_t begin = 0; // device index range [begin, end) of the plan
  std::size_t end = 0;
  WaveState state = WaveState::pending;
  std::string job_id;
  std::int64_t created_at = 0;       // epoch s
  std::int64_t finished_at = 0;      // epoch s; the soak runs from here
  std::optional<int> max_per_minute; // this wave's push rate; unset = the rollout's / none
  WaveCounts counts;
  friend bool operator==(const WaveRecord&, const WaveRecord&) = default;
};

struct RolloutOptions {
  std::optional<int> max_per_minute; // journals before per-wave rates; now each wave has its own
  bool multi_module = false;         // MultiModuleMode
  std::optional<int> retry_interval;
  std::optional<int> retry_count;
  std::optional<int> timeout_minutes;
  AbortRule abort;
  std::int64_t wave_soak_s = 0;
  std::int64_t notified_grace_s = 600;
  std::int64_t poll_ms = 5000;
  friend bool operator==(const RolloutOptions& a, const RolloutOptions& b) {
    return a.max_per_minute == b.max_per_minute && a.multi_module == b.multi_module &&
           a.retry_interval == b.retry_interval && a.retry_count == b.retry_count &&
           a.timeout_minutes == b.timeout_minutes && a.abort.failure_rate == b.abort.failure_rate &&
           a.abort.min_finished == b.abort.min_finished && a.wave_soak_s == b.wave_soak_s &&
           a.notified_grace_s == b.notified_grace_s && a.poll_ms == b.poll_ms;
  }
};

struct RolloutState {
  int version = 1;
  std::string rollout_id; // also the jobs' tag iotfleet.rollout
  std::string product_key;
  std::string firmware_id;
  std::string dest_version;
  std::string selection; // how the devices were chosen, for the report
  // A dynamic rollout: one wave, one CreateOTADynamicUpgradeJob for the devices at src_version
  // (in group_id when set) now and later; `devices` are those that matched when planned.
  bool dynamic = false;
  std::string src_version;
  std::string group_id;
  std::string group_type;
  RolloutOptions options;
  std::vector<PlannedDevice> devices; // plan order; waves are ranges of it
  std::int64_t skipped = 0;           // already at the target version when planned
  std::vector<WaveRecord> waves;
  RolloutStatus status = RolloutStatus::planned;
  std::string reason; // why it aborted / was canceled
  friend bool operator==(const RolloutState&, const RolloutState&) = default;
};

// Tags that make a wave's job findable (ListOTAJobByFirmware) after a crash between its creation
// and the journal entry.
inline constexpr std::string_view k_tag_rollout = "iotfleet.rollout";
inline constexpr std::string_view k_tag_wave = "iotfleet.wave";

// Waves over the devices: one WaveRecord per non-empty wave of the spec, each with its entry of
// `rates` (one per spec, or one for all, or none); a wave that vanishes takes its rate along.
[[nodiscard]] std::vector<WaveRecord> plan_waves(const std::vector<WaveSpec>& specs,
                                                 std::size_t devices,
                                                 const std::vector<int>& rates = {});

[[nodiscard]] std::string state_to_json(const RolloutState& state);
// ErrorKind::usage naming what is wrong (not a rollout state file, unknown version, bad shape).
[[nodiscard]] Result<RolloutState> state_from_json(std::string_view text);
// Atomically, 0600 (store/atomic_file).
[[nodiscard]] Status save_state(const std::filesystem::path& path, const RolloutState& state);
[[nodiscard]] Result<RolloutState> load_state(const std::filesystem::path& path);

} // namespace iot::commands::ota
