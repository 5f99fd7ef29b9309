// SPDX-License-Identifier: MIT
// ota rollout: a firmware rolled out in waves (one static upgrade job per wave), judged by the
// abort rule, journaled before every step so that a crash, Ctrl-C or reboot is continued with
// --resume (docs/ota.md).
#include "cloud/crypto.hpp"
#include "cloud/oss_upload.hpp"
#include "commands/cloud_access.hpp"
#include "commands/ota.hpp"
#include "commands/ota_plan.hpp"
#include "commands/ota_select.hpp"
#include "core/interrupt.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

namespace iot::commands {
namespace {

using namespace std::chrono_literals;
using ota::RolloutState;
using ota::WaveCounts;
using ota::WaveRecord;

std::int64_t now_s(Context& ctx) {
  return ctx.seams.now_ms() / 1000;
}

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", share * 100.0);
  return buf;
}

// One `ota rollout` per state file: an exclusive flock on STATE.lock (the state itself is
// replaced by rename, so it cannot carry the lock). Released when the process ends, however.
class StateLock {
public:
  static Result<StateLock> take(const std::filesystem::path& state) {
    const std::string path = state.string() + ".lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return fail(ErrorKind::usage,
                  "cannot create the journal's lock " + path + ": " + std::strerror(errno) +
                      " — the journal's directory must exist and be writable (nothing was "
                      "created in the cloud)");
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return fail(ErrorKind::usage,
                  "another `iotfleet ota rollout` is running " + state.string() + " (" + path +
                      " is locked)");
    }
    return StateLock(fd);
  }
  StateLock(StateLock&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
  StateLock& operator=(StateLock&&) = delete;
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;
  ~StateLock() {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }

private:
  explicit StateLock(int fd) : m_fd(fd) {}
  int m_fd;
};

struct Rollout {
  Context& ctx;
  CloudSession& cloud;
  std::filesystem::path path;
  RolloutState state;

  cloud::IotApi& api() { return *cloud.api; }

  Status save() { return ota::save_state(path, state); }

  std::vector<std::string> names(const WaveRecord& w) const {
    std::vector<std::string> out;
    for (std::size_t i = w.begin; i < w.end; ++i) {
      out.push_back(state.devices[i].name);
    }
    return out;
  }

  std::vector<cloud::OtaTag> tags(const WaveRecord& w) const {
    return {{std::string(ota::k_tag_rollout), state.rollout_id},
            {std::string(ota::k_tag_wave), std::to_string(w.number)}};
  }

  // The job a crashed run created for this wave, found by its tags.
  Result<std::optional<std::string>> find_job(const WaveRecord& w) {
    auto jobs = IOT_TRY_CTX(api().list_all_ota_jobs_by_firmware(state.firmware_id),
                            "look up wave " + std::to_string(w.number) + "'s job");
    const auto want = tags(w);
    for (const auto& job : jobs) {
      auto job_tags = job.tags;
      if (job_tags.empty()) {
        auto full = IOT_TRY(api().query_ota_job(job.job_id));
        job_tags = full.tags;
      }
      const bool match = std::all_of(want.begin(), want.end(), [&](const cloud::OtaTag& t) {
        return std::find(job_tags.begin(), job_tags.end(), t) != job_tags.end();
      });
      if (match) {
        return std::optional<std::string>(job.job_id);
      }
    }
    return std::optional<std::string>();
  }

  // The wave's push rate, the rollout's retry / timeout / module options and the wave's tags.
  void settings(cloud::UpgradeJobSettings& r, const WaveRecord& w) const {
    r.max_per_minute = w.max_per_minute;
    r.retry_interval = state.options.retry_interval;
    r.retry_count = state.options.retry_count;
    r.timeout_minutes = state.options.timeout_minutes;
    if (state.options.multi_module) {
      r.multi_module_mode = true;
    }
    r.tags = tags(w);
  }

  Result<std::string> create_dynamic_job(const WaveRecord& w) {
    cloud::DynamicJobRequest r;
    settings(r, w);
    r.product_key = state.product_key;
    r.firmware_id = state.firmware_id;
    r.src_versions = {state.src_version};
    r.group_id = state.group_id;
    r.group_type = state.group_type;
    return api().create_ota_dynamic_upgrade_job(r);
  }

  Result<std::string> create_job(const WaveRecord& w) {
    if (state.dynamic) {
      return create_dynamic_job(w);
    }
    cloud::StaticJobRequest r;
    r.product_key = state.product_key;
    r.firmware_id = state.firmware_id;
    r.target_selection = "SPECIFIC";
    auto list = names(w);
    if (list.size() <= cloud::k_ota_names_per_job) {
      r.device_names = std::move(list);
    } else {
      // More than 200: one job per wave through a device-name list file (§3 allows up to
      // 1 000 000), so MaximumPerMinute holds for the whole wave.
      auto grant = IOT_TRY(api().generate_device_name_list_url());
      std::string text = "deviceName\n";
      for (const auto& n : list) {
        text += n + "\n";
      }
      cloud::PostObjectOptions po;
      po.filename = "devices.csv";
      if (auto ok = cloud::post_object_text(*cloud.http, grant, std::move(text), po); !ok) {
        return fail(
            ok.error().context("upload wave " + std::to_string(w.number) + "'s device list"));
      }
      r.dn_list_file_url = grant.url;
    }
    settings(r, w);
    return api().create_ota_static_upgrade_job(r);
  }

  Result<WaveCounts> counts(const std::string& job_id) {
    WaveCounts c;
    using ota::TaskStatus;
    const std::pair<std::optional<TaskStatus>, std::int64_t*> wanted[] = {
        {std::nullopt, &c.total},
        {TaskStatus::succeeded, &c.succeeded},
        {TaskStatus::failed, &c.failed},
        {TaskStatus::canceled, &c.canceled},
        {TaskStatus::notified, &c.notified}};
    for (const auto& [status, out] : wanted) {
      *out = IOT_TRY_CTX(
          api().count_ota_tasks(job_id, status ? std::string(ota::to_string(*status)) : ""),
          "job " + job_id);
    }
    c.active =
        std::max<std::int64_t>(0, c.total - c.succeeded - c.failed - c.canceled - c.notified);
    return c;
  }

  struct Group {
    std::string name;
    std::int64_t failed = 0;
    std::int64_t in_wave = 0;
    std::map<std::string, std::int64_t> descs;
  };

  // The failed tasks of a wave grouped by the devices' group (Nickname), worst share first.
  Result<std::vector<Group>> failure_groups(const WaveRecord& w) {
    std::unordered_map<std::string, std::string> group_of;
    std::map<std::string, Group> groups;
    for (std::size_t i = w.begin; i < w.end; ++i) {
      const auto& d = state.devices[i];
      const std::string g = d.group.empty() ? "(no nickname)" : d.group;
      group_of[d.name] = g;
      groups[g].name = g;
      ++groups[g].in_wave;
    }
    auto failed = IOT_TRY(
        api().list_all_ota_tasks(w.job_id, std::string(ota::to_string(ota::TaskStatus::failed))));
    for (const auto& t : failed) {
      auto it = group_of.find(t.device_name);
      Group& g = groups[it == group_of.end() ? "(unplanned)" : it->second];
      ++g.failed;
      ++g.descs[t.task_desc];
    }
    std::vector<Group> out;
    for (auto& [name, g] : groups) {
      g.name = name;
      if (g.failed > 0) {
        out.push_back(std::move(g));
      }
    }
    std::sort(out.begin(), out.end(), [](const Group& a, const Group& b) {
      const double ra =
          a.in_wave > 0 ? static_cast<double>(a.failed) / static_cast<double>(a.in_wave) : 1;
      const double rb =
          b.in_wave > 0 ? static_cast<double>(b.failed) / static_cast<double>(b.in_wave) : 1;
      return ra != rb ? ra > rb : a.failed > b.failed;
    });
    return out;
  }

  bool canceled_elsewhere() {
    auto on_disk = ota::load_state(path);
    return on_disk && on_disk->status == ota::RolloutStatus::canceled;
  }

  core::Table table() const {
    core::Table t;
    t.columns = {"wave", "job_id", "devices", "state", "succeeded", "failed", "canceled", "open"};
    for (const auto& w : state.waves) {
      const auto& c = w.counts;
      t.add_row({static_cast<std::int64_t>(w.number),
                 w.job_id.empty() ? core::Cell{} : core::Cell{w.job_id},
                 static_cast<std::int64_t>(w.end - w.begin),
                 std::string(ota::to_string(w.state)),
                 c.succeeded,
                 c.failed,
                 c.canceled,
                 c.total - c.succeeded - c.failed - c.canceled});
    }
    return t;
  }

  Error interrupted() const {
    return Error{ErrorKind::interrupted,
                 "interrupted; the rollout is journaled: continue with `iotfleet ota rollout "
                 "--resume " +
                     path.string() + "`"};
  }

  // Aborts in wave w: journal first (a resume re-sends the cancel), then cancel what is queued.
  Error abort(WaveRecord& w) {
    const auto& c = w.counts;
    const std::int64_t finished = c.succeeded + c.failed;
    std::string msg = "rollout aborted in wave " + std::to_string(w.number) + " of " +
                      std::to_string(state.waves.size()) + ": " + std::to_string(c.failed) +
                      " failed of " + std::to_string(finished) + " finished (" +
                      percent(static_cast<double>(c.failed) / static_cast<double>(finished)) +
                      " ≥ " + percent(state.options.abort.failure_rate) + ", judged from " +
                      std::to_string(state.options.abort.min_finished) + " finished)";
    auto groups = failure_groups(w);
    if (groups && !groups->empty()) {
      const auto& g = groups->front();
      msg += "; failing group: " + g.name + " (" + std::to_string(g.failed) + " of its " +
             std::to_string(g.in_wave) + " devices in the wave failed, " +
             std::to_string(g.failed) + " of " + std::to_string(c.failed) + " failures)";
      for (const auto& gr : *groups) {
        const auto top =
            std::max_element(gr.descs.begin(), gr.descs.end(), [](const auto& a, const auto& b) {
              return a.second < b.second;
            });
        ctx.output->warn("wave " + std::to_string(w.number) + " group " + gr.name + ": " +
                         std::to_string(gr.failed) + " failed of " + std::to_string(gr.in_wave) +
                         " devices; most common: " + top->first + " (" +
                         std::to_string(top->second) + ")");
      }
    } else if (!groups) {
      ctx.output->warn("cannot group the failures: " + groups.error().message);
    }
    w.state = ota::WaveState::aborted;
    state.status = ota::RolloutStatus::aborted;
    state.reason = msg;
    if (auto ok = save(); !ok) {
      return ok.error();
    }
    return finish_abort(w);
  }

  Error finish_abort(WaveRecord& w) {
    if (!w.job_id.empty()) {
      if (state.dynamic) {
        if (auto ok = api().cancel_ota_strategy_by_job(w.job_id); !ok) {
          return ok.error().context(state.reason + "; stopping dynamic job " + w.job_id +
                                    " failed");
        }
      }
      if (auto ok = api().cancel_ota_task_by_job(w.job_id, cloud::CancelTasks{}); !ok) {
        return ok.error().context(state.reason + "; canceling job " + w.job_id + " failed");
      }
      if (auto c = counts(w.job_id)) {
        w.counts = *c;
        (void)save();
      }
    }
    const std::size_t rest = state.waves.size() - static_cast<std::size_t>(w.number);
    return Error{ErrorKind::failure,
                 state.reason + "; queued tasks of job " + w.job_id + " canceled (" +
                     std::to_string(w.counts.canceled) + ")" +
                     (rest > 0 ? "; waves " + std::to_string(w.number + 1) + "-" +
                                     std::to_string(state.waves.size()) + " not started"
                               : "")};
  }

  // Polls a running wave until it settles or trips the abort rule.
  Status watch(WaveRecord& w) {
    auto bar = ctx.output->progress("wave " + std::to_string(w.number) + "/" +
                                    std::to_string(state.waves.size()));
    bar->set_total(w.end - w.begin);
    std::uint64_t shown = 0;
    std::int64_t last_notified = -1;
    std::pair<std::int64_t, std::int64_t> last_seen{-1, -1};
    auto notified_since = std::chrono::steady_clock::now();
    const auto grace = std::chrono::seconds(state.options.notified_grace_s);
    for (;;) {
      auto c = counts(w.job_id);
      if (!c) {
        bar->finish();
        return fail(c.error());
      }
      w.counts = *c;
      const auto done = static_cast<std::uint64_t>(c->succeeded + c->failed + c->canceled);
      if (done > shown) {
        bar->advance(done - shown);
        shown = done;
      }
      bar->set_detail(std::to_string(c->succeeded) + " ok, " + std::to_string(c->failed) +
                      " failed");
      if (ota::abort_tripped(state.options.abort, c->failed, c->succeeded)) {
        bar->finish();
        return fail(abort(w));
      }
      if (c->canceled > 0 || canceled_elsewhere()) {
        bar->finish();
        state.status = ota::RolloutStatus::canceled;
        state.reason = "job " + w.job_id + " was canceled outside this rollout (ota cancel?)";
        w.state = ota::WaveState::aborted;
        (void)save();
        return fail(ErrorKind::failure, state.reason + ": stopped before the next wave");
      }
      if (state.dynamic) {
        // A dynamic job takes on devices as they come online: it has settled when nothing is
        // active and its counts have not moved for --notified-grace.
        const auto moved = std::make_pair(c->total, c->notified);
        if (c->active > 0 || moved != last_seen) {
          last_seen = moved;
          notified_since = std::chrono::steady_clock::now();
        } else if (std::chrono::steady_clock::now() - notified_since >= grace) {
          break;
        }
      } else if (c->active == 0) {
        if (c->notified == 0) {
          break;
        }
        if (c->notified != last_notified) {
          last_notified = c->notified;
          notified_since = std::chrono::steady_clock::now();
        } else if (std::chrono::steady_clock::now() - notified_since >= grace) {
          ctx.output->warn("wave " + std::to_string(w.number) + ": " + std::to_string(c->notified) +
                           " devices never reacted to the push " + "(offline?) within " +
                           std::to_string(grace.count()) + " s: counted as not finished");
          break;
        }
      }
      if (!core::sleep_unless_interrupted(std::chrono::milliseconds(state.options.poll_ms))) {
        bar->finish();
        return fail(interrupted());
      }
    }
    bar->finish();
    return {};
  }

  Result<core::Table> run() {
    if (state.dynamic && state.status == ota::RolloutStatus::done && !state.waves.empty() &&
        !state.waves.front().job_id.empty()) {
      // A dynamic job keeps taking on devices after its rollout settled: a resume watches it
      // again, under the abort rule.
      state.waves.front().state = ota::WaveState::running;
      ctx.output->info("dynamic job " + state.waves.front().job_id +
                       " is still taking on devices: watching it again");
    } else if (state.status == ota::RolloutStatus::done ||
               state.status == ota::RolloutStatus::canceled) {
      return finish();
    }
    if (state.status == ota::RolloutStatus::aborted) {
      for (auto& w : state.waves) {
        if (w.state == ota::WaveState::aborted) {
          ctx.output->emit(table());
          return fail(finish_abort(w));
        }
      }
    }
    state.status = ota::RolloutStatus::running;
    IOT_TRY(save());
    for (auto& w : state.waves) {
      const std::string tag =
          "wave " + std::to_string(w.number) + "/" + std::to_string(state.waves.size());
      if (w.state == ota::WaveState::pending || w.state == ota::WaveState::creating) {
        if (core::interrupt_requested()) {
          ctx.output->emit(table());
          return fail(interrupted());
        }
        if (canceled_elsewhere()) {
          state.status = ota::RolloutStatus::canceled;
          ctx.output->emit(table());
          return fail(ErrorKind::failure, "the rollout was canceled (ota cancel)");
        }
        std::optional<std::string> job;
        if (w.state == ota::WaveState::creating) {
          // The last run wrote the intent and may have created the job: find it by its tags.
          auto found = IOT_TRY(find_job(w));
          job = found;
          if (job) {
            ctx.output->info(tag + ": found job " + *job + " created before the interruption");
          }
        } else {
          w.state = ota::WaveState::creating;
          IOT_TRY(save());
        }
        if (!job) {
          auto created = create_job(w);
          if (!created) {
            // An ambiguous failure may still have created it: the intent stays, so a resume
            // looks it up before creating another.
            return fail(created.error().context(tag +
                                                ": create the upgrade job (resume with "
                                                "--resume " +
                                                path.string() + ")"));
          }
          if (ctx.seams.after_job_created) {
            IOT_TRY(ctx.seams.after_job_created(w.number));
          }
          job = *created;
          ctx.output->info(tag + ": job " + *job + " for " + std::to_string(w.end - w.begin) +
                           " devices");
        }
        w.job_id = *job;
        w.created_at = now_s(ctx);
        w.state = ota::WaveState::running;
        IOT_TRY(save());
      }
      if (w.state == ota::WaveState::running) {
        if (auto ok = watch(w); !ok) {
          ctx.output->emit(table());
          return fail(ok.error());
        }
        w.finished_at = now_s(ctx);
        const bool last = w.number == static_cast<int>(state.waves.size());
        w.state = last || state.options.wave_soak_s == 0 ? ota::WaveState::finished
                                                         : ota::WaveState::soaking;
        IOT_TRY(save());
        ctx.output->info(tag + ": " + std::to_string(w.counts.succeeded) + " succeeded, " +
                         std::to_string(w.counts.failed) + " failed");
      }
      if (w.state == ota::WaveState::soaking) {
        const std::int64_t left = w.finished_at + state.options.wave_soak_s - now_s(ctx);
        if (left > 0) {
          ctx.output->info(tag + ": soaking " + std::to_string(left) + " s before the next wave");
          if (!core::sleep_unless_interrupted(std::chrono::seconds(left))) {
            ctx.output->emit(table());
            return fail(interrupted());
          }
        }
        w.state = ota::WaveState::finished;
        IOT_TRY(save());
      }
    }
    state.status = ota::RolloutStatus::done;
    IOT_TRY(save());
    return finish();
  }

  // The exit code says whether every targeted device is at the target version: 0 all of them
  // (or already there when planned), 5 some failed or never reacted to the push (NOTIFIED when
  // their wave ended: offline devices), 1 canceled. Abort and interruption end earlier.
  Result<core::Table> finish() {
    std::int64_t failed = 0;
    std::int64_t never_reacted = 0;
    std::int64_t succeeded = 0;
    std::int64_t planned = 0;
    for (const auto& w : state.waves) {
      failed += w.counts.failed;
      never_reacted += w.counts.notified + w.counts.active;
      succeeded += w.counts.succeeded;
      planned += w.counts.total;
    }
    if (state.status == ota::RolloutStatus::canceled) {
      ctx.output->emit(table());
      return fail(ErrorKind::failure, "the rollout was canceled: " + state.reason);
    }
    if (failed > 0 || never_reacted > 0) {
      ctx.output->emit(table());
      std::string what;
      if (failed > 0) {
        what = std::to_string(failed) + " failed (below the abort rule; `iotfleet ota status " +
               path.string() + " --failures` lists them)";
      }
      if (never_reacted > 0) {
        what += (what.empty() ? "" : ", ") + std::to_string(never_reacted) +
                " never reacted to the push within --notified-grace (offline?) and are not "
                "upgraded: run a new rollout for them when they are back";
      }
      return fail(ErrorKind::partial,
                  "rollout finished: " + std::to_string(succeeded) + " of " +
                      std::to_string(planned) + " devices at " + state.dest_version + "; " + what);
    }
    ctx.output->info("rollout done: " + std::to_string(planned) + " devices at " +
                     state.dest_version + ", " + std::to_string(state.skipped) +
                     " skipped (already at " + state.dest_version + ")");
    if (state.dynamic && !state.waves.empty()) {
      const std::string journal = path.string();
      ctx.output->info("dynamic job " + state.waves.front().job_id +
                       " stays active: devices that come online at " + state.src_version +
                       " later are upgraded too. `iotfleet ota rollout --resume " + journal +
                       "` watches it again under the abort rule, `iotfleet ota cancel " + journal +
                       "` ends it");
    }
    return table();
  }
};

Result<ota::RolloutOptions> rollout_options(const OtaRolloutOptions& o) {
  ota::RolloutOptions r;
  if (o.retry_interval.has_value() != o.retry_count.has_value()) {
    return fail(ErrorKind::usage, "--retry-interval and --retry-count go together");
  }
  if (o.retry_interval) {
    static const std::set<std::int64_t> k_intervals = {0, 10, 30, 60, 1440};
    static const std::set<int> k_counts = {1, 2, 5};
    const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(*o.retry_interval);
    if (!k_intervals.contains(minutes.count()) || !k_counts.contains(*o.retry_count)) {
      return fail(ErrorKind::usage,
                  "--retry-interval is 0, 10m, 30m, 1h or 1d, --retry-count 1, 2 or 5");
    }
    r.retry_interval = static_cast<int>(minutes.count());
  }
  if (o.task_timeout) {
    r.timeout_minutes =
        static_cast<int>(std::chrono::duration_cast<std::chrono::minutes>(*o.task_timeout).count());
  }
  if (o.abort_min_finished < 1) {
    return fail(ErrorKind::usage, "--abort-min-finished: at least 1");
  }
  r.multi_module = o.multi_module;
  r.retry_count = o.retry_count;
  r.abort = {IOT_TRY_CTX(ota::parse_rate(o.abort_failure_rate), "--abort-failure-rate"),
             o.abort_min_finished};
  r.wave_soak_s = std::chrono::duration_cast<std::chrono::seconds>(o.wave_soak).count();
  r.notified_grace_s = std::chrono::duration_cast<std::chrono::seconds>(o.notified_grace).count();
  r.poll_ms = std::max<std::int64_t>(100, o.poll_interval.count());
  return r;
}

// A dynamic job selects by version and group only (CreateOTADynamicUpgradeJob has no list, tag
// or SQL selection), and is one wave.
Status check_dynamic(const OtaRolloutOptions& o, const std::vector<std::string>& listed) {
  if (!o.dynamic) {
    return {};
  }
  if (o.src_version.empty()) {
    return fail(ErrorKind::usage,
                "--dynamic needs --src-version V: the version whose devices the job upgrades, "
                "now and when they come online later");
  }
  if (!listed.empty() || !o.tags.empty() || !o.query.empty()) {
    return fail(ErrorKind::usage,
                "--dynamic selects by --src-version and --group only (the platform's dynamic "
                "job takes no device list, tag or SQL search): drop them, or roll out "
                "statically");
  }
  if (!o.waves.empty()) {
    return fail(ErrorKind::usage,
                "--dynamic is one job, not waves: drop --waves (the abort rule judges the job "
                "while it is watched)");
  }
  return {};
}

// The plan: which devices, in which order, which are skipped.
Result<RolloutState> plan_rollout(const OtaRolloutOptions& o, CloudSession& cloud, Context& ctx) {
  const auto specs = IOT_TRY(ota::parse_waves(o.waves.empty() ? k_default_waves : o.waves));
  auto options = IOT_TRY(rollout_options(o));
  const auto listed = IOT_TRY(resolve_device_names(o.devices, {.required = false}, ctx));
  IOT_TRY(check_dynamic(o, listed));
  std::vector<int> rates;
  if (!o.max_per_minute.empty()) {
    rates = IOT_TRY(ota::parse_push_rates(o.max_per_minute, o.dynamic ? 1 : specs.size()));
  }
  auto fw = IOT_TRY(cloud.api->query_ota_firmware(o.firmware_id));
  RolloutState s;
  s.rollout_id = "r" + cloud::hex(cloud::random_bytes(6));
  s.product_key = o.product_key.value_or(fw.product_key);
  if (s.product_key.empty()) {
    return fail(ErrorKind::usage, "the firmware names no product: give --product-key");
  }
  s.firmware_id = o.firmware_id;
  s.dest_version = fw.dest_version;
  s.options = options;

  auto selection = IOT_TRY(ota::select_devices(o, listed, s.product_key, *cloud.api, ctx));
  std::vector<std::string> names = std::move(selection.names);
  s.selection = selection.text;
  if (o.dynamic) {
    s.dynamic = true;
    s.src_version = o.src_version;
    s.group_id = selection.group.id;
    s.group_type = selection.group.type;
    s.selection = "dynamic: " + s.selection;
  }
  if (!o.src_version.empty()) {
    s.selection += " at " + o.src_version;
  }
  ctx.output->info("planning: reading " + std::to_string(names.size()) + " devices' versions");
  auto details = IOT_TRY(cloud.api->batch_query_device_detail(s.product_key, names));
  std::unordered_map<std::string, const cloud::DeviceDetail*> by_name;
  for (const auto& d : details) {
    by_name[d.device_name] = &d;
  }
  const bool default_module = fw.module_name.empty() || fw.module_name == "default";
  if (!default_module) {
    ctx.output->warn("firmware module " + fw.module_name +
                     ": FirmwareVersion is the default module's, so devices are not skipped "
                     "by version here (the platform skips those already at " +
                     s.dest_version + ")");
  }
  std::vector<std::string> unknown;
  std::int64_t other_version = 0;
  for (const auto& n : names) {
    auto it = by_name.find(n);
    if (it == by_name.end()) {
      unknown.push_back(n);
      continue;
    }
    const auto& d = *it->second;
    if (default_module && d.firmware_version == s.dest_version) {
      ++s.skipped;
      continue;
    }
    if (default_module && !o.src_version.empty() && d.firmware_version != o.src_version) {
      ++other_version;
      continue;
    }
    s.devices.push_back(ota::PlannedDevice{n, d.nickname});
  }
  if (!unknown.empty()) {
    std::string list;
    for (std::size_t i = 0; i < unknown.size() && i < 5; ++i) {
      list += (i ? ", " : "") + unknown[i];
    }
    return fail(ErrorKind::usage,
                std::to_string(unknown.size()) + " devices are not in product " + s.product_key +
                    ": " + list + (unknown.size() > 5 ? ", …" : "") + " (fix the device list)");
  }
  if (s.dynamic) {
    // One wave over the devices matching now; the job takes on later ones by itself.
    ota::WaveRecord w;
    w.number = 1;
    w.end = s.devices.size();
    if (!rates.empty()) {
      w.max_per_minute = rates.front();
    }
    s.waves = {w};
  } else {
    s.waves = ota::plan_waves(specs, s.devices.size(), rates);
  }
  ctx.output->info("plan: " + std::to_string(s.devices.size()) + " devices in " +
                   std::to_string(s.waves.size()) + " waves; " + std::to_string(s.skipped) +
                   " already at " + s.dest_version +
                   (other_version > 0
                        ? ", " + std::to_string(other_version) + " not at " + o.src_version
                        : std::string()));
  return s;
}

} // namespace

Result<core::Table> run_ota_rollout(const OtaRolloutOptions& opts, Context& ctx) {
  const bool resume = !opts.resume.empty();
  if (!resume && opts.journal.empty()) {
    return fail(ErrorKind::usage, "--journal FILE is required: the rollout is journaled there");
  }
  if (!resume && opts.firmware_id.empty()) {
    return fail(ErrorKind::usage, "--firmware ID is required (or --resume STATE)");
  }
  const std::filesystem::path path = resume ? opts.resume : opts.journal;
  std::error_code ec;
  if (!resume && !opts.dry_run && std::filesystem::exists(path, ec)) {
    return fail(ErrorKind::usage,
                path.string() + " exists: continue it with --resume " + path.string() +
                    ", or choose another --journal");
  }
  std::optional<StateLock> lock;
  if (!opts.dry_run) {
    auto taken = IOT_TRY(StateLock::take(path));
    lock.emplace(std::move(taken));
  }
  std::optional<RolloutState> loaded;
  if (resume) {
    auto s = IOT_TRY(ota::load_state(path));
    loaded = std::move(s);
  }
  CloudOptions co;
  co.max_attempts = 6;
  auto cloud = IOT_TRY(open_cloud(ctx, co));
  Rollout r{ctx, cloud, path, {}};
  if (loaded) {
    r.state = std::move(*loaded);
    ctx.output->info("resuming rollout " + r.state.rollout_id + " (" +
                     std::string(ota::to_string(r.state.status)) + ")");
  } else {
    auto planned = IOT_TRY(plan_rollout(opts, cloud, ctx));
    r.state = std::move(planned);
    if (opts.dry_run) {
      return r.table();
    }
    if (r.state.waves.empty()) {
      ctx.output->info("nothing to do: every device is at " + r.state.dest_version);
    }
    IOT_TRY(r.save());
  }
  return r.run();
}

} // namespace iot::commands
