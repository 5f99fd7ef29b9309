// SPDX-License-Identifier: MIT
// ota status | cancel: what the jobs of a JobId or of a rollout journal are doing, and stopping
// them.
#include "commands/cloud_access.hpp"
#include "commands/ota.hpp"
#include "commands/ota_plan.hpp"
#include "core/interrupt.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>

namespace iot::commands {
namespace {

using ota::RolloutState;

struct JobRef {
  std::string wave; // "" for a bare JobId
  std::string job_id;
};

struct Target {
  std::vector<JobRef> jobs;
  std::optional<RolloutState> state;
  std::filesystem::path path;
};

Result<Target> resolve_target(const std::string& target) {
  Target t;
  std::error_code ec;
  if (std::filesystem::is_regular_file(target, ec)) {
    auto s = IOT_TRY(ota::load_state(target));
    for (const auto& w : s.waves) {
      if (!w.job_id.empty()) {
        t.jobs.push_back({std::to_string(w.number), w.job_id});
      }
    }
    t.state = std::move(s);
    t.path = target;
    return t;
  }
  if (target.empty() || target.find('/') != std::string::npos) {
    return fail(ErrorKind::usage,
                "'" + target + "' is neither a JobId nor a rollout journal file (check the path)");
  }
  t.jobs.push_back({"", target});
  return t;
}

struct JobCounts {
  std::string status;
  std::int64_t total = 0;
  std::array<std::int64_t, ota::k_task_statuses.size()> by_state{};
  [[nodiscard]] std::int64_t of(ota::TaskStatus s) const {
    return by_state[static_cast<std::size_t>(s)];
  }
  [[nodiscard]] std::int64_t open() const {
    std::int64_t n = 0;
    for (auto s : ota::k_task_statuses) {
      n += ota::is_open(s) ? of(s) : 0;
    }
    return n;
  }
};

Result<JobCounts> job_counts(cloud::IotApi& api, const std::string& job_id) {
  JobCounts c;
  auto job = IOT_TRY(api.query_ota_job(job_id));
  c.status = job.job_status;
  for (auto s : ota::k_task_statuses) {
    const auto n = IOT_TRY(api.count_ota_tasks(job_id, std::string(ota::to_string(s))));
    c.by_state[static_cast<std::size_t>(s)] = n;
    c.total += n;
  }
  return c;
}

} // namespace

Result<core::Table> run_ota_status(const OtaStatusOptions& opts, Context& ctx) {
  auto target = IOT_TRY(resolve_target(opts.target));
  auto cloud = IOT_TRY(open_cloud(ctx));
  if (opts.failures) {
    core::Table t;
    t.columns = {"wave", "job_id", "device_name", "task_desc", "utc_modified"};
    for (const auto& j : target.jobs) {
      auto failed = IOT_TRY(cloud.api->list_all_ota_tasks(
          j.job_id, std::string(ota::to_string(ota::TaskStatus::failed))));
      for (const auto& task : failed) {
        t.add_row({j.wave.empty() ? core::Cell{} : core::Cell{j.wave},
                   j.job_id,
                   task.device_name,
                   task.task_desc,
                   task.utc_modified});
      }
    }
    return t;
  }
  std::unique_ptr<core::ProgressSink> bar;
  std::uint64_t shown = 0;
  for (;;) {
    core::Table t;
    t.columns = {"wave",
                 "job_id",
                 "job_status",
                 "total",
                 "confirm",
                 "queued",
                 "notified",
                 "in_progress",
                 "succeeded",
                 "failed",
                 "canceled",
                 "done_pct"};
    std::int64_t total = 0;
    std::int64_t done = 0;
    std::int64_t open = 0;
    std::map<std::string, std::int64_t> failure_descs;
    for (const auto& j : target.jobs) {
      auto c = IOT_TRY(job_counts(*cloud.api, j.job_id));
      std::vector<core::Cell> row{
          j.wave.empty() ? core::Cell{} : core::Cell{j.wave}, j.job_id, c.status, c.total};
      for (auto n : c.by_state) {
        row.emplace_back(n);
      }
      const std::int64_t finished = c.total - c.open();
      row.emplace_back(c.total > 0
                           ? 100.0 * static_cast<double>(finished) / static_cast<double>(c.total)
                           : 100.0);
      t.add_row(std::move(row));
      total += c.total;
      done += finished;
      open += c.open();
      if (!opts.watch && c.of(ota::TaskStatus::failed) > 0) {
        if (auto failed = cloud.api->list_all_ota_tasks(
                j.job_id, std::string(ota::to_string(ota::TaskStatus::failed)))) {
          for (const auto& task : *failed) {
            ++failure_descs[task.task_desc];
          }
        }
      }
    }
    if (!opts.watch || open == 0 || core::interrupt_requested()) {
      if (bar) {
        bar->finish();
      }
      if (target.state) {
        ctx.output->info("rollout " + target.state->rollout_id + ": " +
                         std::string(ota::to_string(target.state->status)) +
                         (target.state->reason.empty() ? "" : " — " + target.state->reason));
      }
      std::vector<std::pair<std::int64_t, std::string>> top;
      for (const auto& [desc, n] : failure_descs) {
        top.emplace_back(n, desc);
      }
      std::sort(top.rbegin(), top.rend());
      for (std::size_t i = 0; i < top.size() && i < 10; ++i) {
        ctx.output->warn("failed: " + std::to_string(top[i].first) + " × " + top[i].second);
      }
      if (core::interrupt_requested()) {
        ctx.output->emit(t);
        return fail(ErrorKind::interrupted, "interrupted");
      }
      return t;
    }
    if (!bar) {
      bar = ctx.output->progress("ota status");
    }
    bar->set_total(static_cast<std::uint64_t>(total));
    if (static_cast<std::uint64_t>(done) > shown) {
      bar->advance(static_cast<std::uint64_t>(done) - shown);
      shown = static_cast<std::uint64_t>(done);
    }
    (void)core::sleep_unless_interrupted(opts.poll_interval);
  }
}

Result<core::Table> run_ota_cancel(const OtaCancelOptions& opts, Context& ctx) {
  auto target = IOT_TRY(resolve_target(opts.target));
  auto cloud = IOT_TRY(open_cloud(ctx));
  if (target.state) {
    // Stop the rollout first: a running `ota rollout` checks this before each wave.
    auto& s = *target.state;
    if (s.status != ota::RolloutStatus::done || s.dynamic) {
      s.status = ota::RolloutStatus::canceled;
      s.reason = "canceled with ota cancel";
      IOT_TRY(ota::save_state(target.path, s));
    }
  }
  cloud::CancelTasks which;
  which.in_progress = opts.in_progress;
  core::Table t;
  t.columns = {"wave", "job_id", "canceled", "open"};
  for (const auto& j : target.jobs) {
    // A dynamic job would take on more devices after its tasks are canceled: its strategy is
    // canceled first (harmless for a static job, but only done where it is needed).
    bool dynamic = target.state && target.state->dynamic;
    if (!target.state) {
      const auto info = IOT_TRY(cloud.api->query_ota_job(j.job_id));
      dynamic = info.selection_type == "DYNAMIC";
    }
    if (dynamic) {
      IOT_TRY(cloud.api->cancel_ota_strategy_by_job(j.job_id));
    }
    IOT_TRY(cloud.api->cancel_ota_task_by_job(j.job_id, which));
    auto c = IOT_TRY(job_counts(*cloud.api, j.job_id));
    t.add_row({j.wave.empty() ? core::Cell{} : core::Cell{j.wave},
               j.job_id,
               c.of(ota::TaskStatus::canceled),
               c.open()});
  }
  return t;
}

} // namespace iot::commands
