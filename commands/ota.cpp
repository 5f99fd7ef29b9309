// SPDX-License-Identifier: MIT
#include "commands/ota.hpp"

#include "cloud/crypto.hpp"
#include "cloud/oss_upload.hpp"
#include "commands/cloud_access.hpp"
#include "commands/devices.hpp"
#include "commands/ota_plan.hpp"
#include "core/interrupt.hpp"
#include "core/validate.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

namespace iot::commands {
namespace {

using namespace std::chrono_literals;
using ota::RolloutState;
using ota::WaveCounts;
using ota::WaveRecord;

std::int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Sleeps in slices; false when SIGINT/SIGTERM arrived.
bool nap(std::chrono::milliseconds total) {
  const auto until = std::chrono::steady_clock::now() + total;
  while (std::chrono::steady_clock::now() < until) {
    if (core::interrupt_requested()) {
      return false;
    }
    std::this_thread::sleep_for(
        std::min<std::chrono::nanoseconds>(100ms, until - std::chrono::steady_clock::now()));
  }
  return !core::interrupt_requested();
}

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", share * 100.0);
  return buf;
}

// Test hook (docs/ota.md): IOTFLEET_TEST_CRASH_AFTER_CREATE=N kills the process with SIGKILL
// right after wave N's job was created, before the journal records its JobId.
void crash_hook(int wave) {
  if (const char* v = std::getenv("IOTFLEET_TEST_CRASH_AFTER_CREATE");
      v != nullptr && std::atoi(v) == wave) {
    std::raise(SIGKILL);
  }
}

bool valid_version(const std::string& v) {
  return !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

// One `ota rollout` per state file: an exclusive flock on STATE.lock (the state itself is
// replaced by rename, so it cannot carry the lock). Released when the process ends, however.
class StateLock {
public:
  static Result<StateLock> take(const std::filesystem::path& state) {
    const std::string path = state.string() + ".lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return fail(ErrorKind::io, "cannot open " + path);
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

// ---------------------------------------------------------------------------------------------
// upload

std::string firmware_name(const OtaUploadOptions& opts) {
  if (!opts.name.empty()) {
    return opts.name;
  }
  std::string raw = std::filesystem::path(opts.file).stem().string() + "-" + opts.version;
  std::string out;
  for (char c : raw) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' ||
                    c == '(' || c == ')';
    out += ok ? c : '_';
  }
  if (out.empty() || std::isalnum(static_cast<unsigned char>(out.front())) == 0) {
    out = "fw" + out;
  }
  return out.substr(0, 40);
}

std::string file_suffix(const std::string& file) {
  static const std::vector<std::string> k_allowed = {
      "tar.gz", "bin", "dav", "apk", "tar", "gz", "zip", "gzip"};
  for (const auto& s : k_allowed) {
    if (file.size() > s.size() + 1 && file.ends_with("." + s)) {
      return s;
    }
  }
  return "bin";
}

// Waits for the verification: the firmware's Status 1 (verified) or 3 (failed).
Result<std::string> wait_verify(cloud::IotApi& api,
                                const std::string& firmware_id,
                                const std::string& job_id,
                                int timeout_minutes,
                                Context& ctx) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::minutes(timeout_minutes) + 1min;
  ctx.output->info("verification job " + job_id + ": waiting for the devices");
  for (;;) {
    auto fw = api.query_ota_firmware(firmware_id);
    if (!fw) {
      return fail(fw.error());
    }
    if (fw->status && *fw->status == 1) {
      return std::string("verified");
    }
    if (fw->status && *fw->status == 3) {
      std::string detail;
      if (auto failed = api.list_all_ota_tasks(job_id, "FAILED"); failed && !failed->empty()) {
        for (const auto& t : *failed) {
          detail += (detail.empty() ? "" : "; ") + t.device_name + ": " + t.task_desc;
        }
      }
      return fail(ErrorKind::cloud,
                  "firmware " + firmware_id + " failed verification (job " + job_id + ")" +
                      (detail.empty() ? "" : ": " + detail));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return fail(ErrorKind::cloud,
                  "verification job " + job_id + " has not finished after " +
                      std::to_string(timeout_minutes) + " minutes");
    }
    if (!nap(2s)) {
      return fail(ErrorKind::interrupted,
                  "interrupted while waiting for verification job " + job_id + " (firmware " +
                      firmware_id + " exists)");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// rollout

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
    auto jobs = api().list_all_ota_jobs_by_firmware(state.firmware_id);
    if (!jobs) {
      return fail(jobs.error().context("look up wave " + std::to_string(w.number) + "'s job"));
    }
    const auto want = tags(w);
    for (const auto& job : *jobs) {
      auto job_tags = job.tags;
      if (job_tags.empty()) {
        auto full = api().query_ota_job(job.job_id);
        if (!full) {
          return fail(full.error());
        }
        job_tags = full->tags;
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

  Result<std::string> create_job(const WaveRecord& w) {
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
      auto grant = api().generate_device_name_list_url();
      if (!grant) {
        return fail(grant.error());
      }
      std::string text = "deviceName\n";
      for (const auto& n : list) {
        text += n + "\n";
      }
      cloud::PostObjectOptions po;
      po.filename = "devices.csv";
      if (auto ok = cloud::post_object_text(*cloud.http, *grant, std::move(text), po); !ok) {
        return fail(
            ok.error().context("upload wave " + std::to_string(w.number) + "'s device list"));
      }
      r.dn_list_file_url = grant->url;
    }
    r.max_per_minute = state.options.max_per_minute;
    r.retry_interval = state.options.retry_interval;
    r.retry_count = state.options.retry_count;
    r.timeout_minutes = state.options.timeout_minutes;
    r.tags = tags(w);
    return api().create_ota_static_upgrade_job(r);
  }

  Result<WaveCounts> counts(const std::string& job_id) {
    WaveCounts c;
    const std::pair<const char*, std::int64_t*> wanted[] = {{"", &c.total},
                                                            {"SUCCEEDED", &c.succeeded},
                                                            {"FAILED", &c.failed},
                                                            {"CANCELED", &c.canceled},
                                                            {"NOTIFIED", &c.notified}};
    for (const auto& [status, out] : wanted) {
      auto n = api().count_ota_tasks(job_id, status);
      if (!n) {
        return fail(n.error().context("job " + job_id));
      }
      *out = *n;
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
    auto failed = api().list_all_ota_tasks(w.job_id, "FAILED");
    if (!failed) {
      return fail(failed.error());
    }
    for (const auto& t : *failed) {
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
    return on_disk && on_disk->status == "canceled";
  }

  core::Table table() const {
    core::Table t;
    t.columns = {"wave", "job_id", "devices", "state", "succeeded", "failed", "canceled", "open"};
    for (const auto& w : state.waves) {
      const auto& c = w.counts;
      t.add_row({static_cast<std::int64_t>(w.number),
                 w.job_id.empty() ? core::Cell{} : core::Cell{w.job_id},
                 static_cast<std::int64_t>(w.end - w.begin),
                 w.state,
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
    w.state = std::string(ota::k_wave_aborted);
    state.status = "aborted";
    state.reason = msg;
    if (auto ok = save(); !ok) {
      return ok.error();
    }
    return finish_abort(w);
  }

  Error finish_abort(WaveRecord& w) {
    if (!w.job_id.empty()) {
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
        state.status = "canceled";
        state.reason = "job " + w.job_id + " was canceled outside this rollout (ota cancel?)";
        w.state = std::string(ota::k_wave_aborted);
        (void)save();
        return fail(ErrorKind::failure, state.reason + ": stopped before the next wave");
      }
      if (c->active == 0) {
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
      if (!nap(std::chrono::milliseconds(state.options.poll_ms))) {
        bar->finish();
        return fail(interrupted());
      }
    }
    bar->finish();
    return {};
  }

  Result<core::Table> run() {
    if (state.status == "done" || state.status == "canceled") {
      return finish();
    }
    if (state.status == "aborted") {
      for (auto& w : state.waves) {
        if (w.state == ota::k_wave_aborted) {
          ctx.output->emit(table());
          return fail(finish_abort(w));
        }
      }
    }
    state.status = "running";
    if (auto ok = save(); !ok) {
      return fail(ok.error());
    }
    for (auto& w : state.waves) {
      const std::string tag =
          "wave " + std::to_string(w.number) + "/" + std::to_string(state.waves.size());
      if (w.state == ota::k_wave_pending || w.state == ota::k_wave_creating) {
        if (core::interrupt_requested()) {
          ctx.output->emit(table());
          return fail(interrupted());
        }
        if (canceled_elsewhere()) {
          state.status = "canceled";
          ctx.output->emit(table());
          return fail(ErrorKind::failure, "the rollout was canceled (ota cancel)");
        }
        std::optional<std::string> job;
        if (w.state == ota::k_wave_creating) {
          // The last run wrote the intent and may have created the job: find it by its tags.
          auto found = find_job(w);
          if (!found) {
            return fail(found.error());
          }
          job = *found;
          if (job) {
            ctx.output->info(tag + ": found job " + *job + " created before the interruption");
          }
        } else {
          w.state = std::string(ota::k_wave_creating);
          if (auto ok = save(); !ok) {
            return fail(ok.error());
          }
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
          crash_hook(w.number);
          job = *created;
          ctx.output->info(tag + ": job " + *job + " for " + std::to_string(w.end - w.begin) +
                           " devices");
        }
        w.job_id = *job;
        w.created_at = now_s();
        w.state = std::string(ota::k_wave_running);
        if (auto ok = save(); !ok) {
          return fail(ok.error());
        }
      }
      if (w.state == ota::k_wave_running) {
        if (auto ok = watch(w); !ok) {
          ctx.output->emit(table());
          return fail(ok.error());
        }
        w.finished_at = now_s();
        const bool last = w.number == static_cast<int>(state.waves.size());
        w.state = std::string(last || state.options.wave_soak_s == 0 ? ota::k_wave_finished
                                                                     : ota::k_wave_soaking);
        if (auto ok = save(); !ok) {
          return fail(ok.error());
        }
        ctx.output->info(tag + ": " + std::to_string(w.counts.succeeded) + " succeeded, " +
                         std::to_string(w.counts.failed) + " failed");
      }
      if (w.state == ota::k_wave_soaking) {
        const std::int64_t left = w.finished_at + state.options.wave_soak_s - now_s();
        if (left > 0) {
          ctx.output->info(tag + ": soaking " + std::to_string(left) + " s before the next wave");
          if (!nap(std::chrono::seconds(left))) {
            ctx.output->emit(table());
            return fail(interrupted());
          }
        }
        w.state = std::string(ota::k_wave_finished);
        if (auto ok = save(); !ok) {
          return fail(ok.error());
        }
      }
    }
    state.status = "done";
    if (auto ok = save(); !ok) {
      return fail(ok.error());
    }
    return finish();
  }

  Result<core::Table> finish() {
    std::int64_t failed = 0;
    std::int64_t planned = 0;
    for (const auto& w : state.waves) {
      failed += w.counts.failed;
      planned += w.counts.total;
    }
    if (state.status == "canceled") {
      ctx.output->emit(table());
      return fail(ErrorKind::failure, "the rollout was canceled: " + state.reason);
    }
    if (failed > 0) {
      ctx.output->emit(table());
      return fail(ErrorKind::partial,
                  "rollout done: " + std::to_string(failed) + " of " + std::to_string(planned) +
                      " devices failed (below the abort rule); `iotfleet ota status " +
                      path.string() + " --failures` lists them");
    }
    ctx.output->info("rollout done: " + std::to_string(planned) + " devices, " +
                     std::to_string(state.skipped) + " skipped (already at " + state.dest_version +
                     ")");
    return table();
  }
};

Result<ota::RolloutOptions> rollout_options(const OtaRolloutOptions& o) {
  ota::RolloutOptions r;
  if (o.max_per_minute && (*o.max_per_minute < 10 || *o.max_per_minute > 10'000)) {
    return fail(ErrorKind::usage, "--max-per-minute: 10 to 10000 (§3)");
  }
  if (o.retry_interval.has_value() != o.retry_count.has_value()) {
    return fail(ErrorKind::usage, "--retry-interval and --retry-count go together");
  }
  if (o.retry_interval) {
    static const std::set<int> k_intervals = {0, 10, 30, 60, 1440};
    static const std::set<int> k_counts = {1, 2, 5};
    if (!k_intervals.contains(*o.retry_interval) || !k_counts.contains(*o.retry_count)) {
      return fail(ErrorKind::usage,
                  "--retry-interval is 0, 10, 30, 60 or 1440 minutes, --retry-count 1, 2 or 5");
    }
  }
  if (o.timeout_minutes && (*o.timeout_minutes < 1 || *o.timeout_minutes > 1440)) {
    return fail(ErrorKind::usage, "--timeout-minutes: 1 to 1440");
  }
  if (o.abort_min_finished < 1) {
    return fail(ErrorKind::usage, "--abort-min-finished: at least 1");
  }
  auto rate = ota::parse_rate(o.abort_failure_rate);
  auto soak = ota::parse_duration(o.wave_soak);
  auto grace = ota::parse_duration(o.notified_grace);
  auto poll = ota::parse_duration(o.poll_interval.ends_with("ms") ? "0" : o.poll_interval);
  for (const auto* e : {rate ? nullptr : &rate.error(),
                        soak ? nullptr : &soak.error(),
                        grace ? nullptr : &grace.error(),
                        poll ? nullptr : &poll.error()}) {
    if (e != nullptr) {
      return fail(*e);
    }
  }
  r.max_per_minute = o.max_per_minute;
  r.retry_interval = o.retry_interval;
  r.retry_count = o.retry_count;
  r.timeout_minutes = o.timeout_minutes;
  r.abort = {*rate, o.abort_min_finished};
  r.wave_soak_s = soak->count();
  r.notified_grace_s = grace->count();
  if (o.poll_interval.ends_with("ms")) {
    r.poll_ms = std::atoll(o.poll_interval.c_str());
  } else {
    r.poll_ms = poll->count() * 1000;
  }
  r.poll_ms = std::max<std::int64_t>(100, r.poll_ms);
  return r;
}

// The plan: which devices, in which order, which are skipped.
Result<RolloutState> plan_rollout(const OtaRolloutOptions& o, CloudSession& cloud, Context& ctx) {
  auto specs = ota::parse_waves(o.waves);
  if (!specs) {
    return fail(specs.error());
  }
  auto options = rollout_options(o);
  if (!options) {
    return fail(options.error());
  }
  if (o.devices_file.empty() && !o.all && o.src_version.empty()) {
    return fail(ErrorKind::usage, "choose the devices: --devices FILE, --all or --src-version V");
  }
  if (!o.devices_file.empty() && o.all) {
    return fail(ErrorKind::usage, "--devices and --all are exclusive");
  }
  auto fw = cloud.api->query_ota_firmware(o.firmware_id);
  if (!fw) {
    return fail(fw.error());
  }
  RolloutState s;
  s.rollout_id = "r" + cloud::hex(cloud::random_bytes(6));
  s.product_key = o.product_key.value_or(fw->product_key);
  if (s.product_key.empty()) {
    return fail(ErrorKind::usage, "the firmware names no product: give --product-key");
  }
  s.firmware_id = o.firmware_id;
  s.dest_version = fw->dest_version;
  s.options = *options;

  std::vector<std::string> names;
  if (!o.devices_file.empty()) {
    auto read = read_device_names(o.devices_file);
    if (!read) {
      return fail(read.error());
    }
    names = std::move(*read);
    s.selection = "devices from " + o.devices_file;
  } else {
    auto all = cloud.api->query_all_devices(s.product_key);
    if (!all) {
      return fail(all.error());
    }
    for (const auto& d : *all) {
      names.push_back(d.device_name);
    }
    s.selection = "all devices of " + s.product_key;
  }
  if (!o.src_version.empty()) {
    s.selection += " at " + o.src_version;
  }
  ctx.output->info("planning: reading " + std::to_string(names.size()) + " devices' versions");
  auto details = cloud.api->batch_query_device_detail(s.product_key, names);
  if (!details) {
    return fail(details.error());
  }
  std::unordered_map<std::string, const cloud::DeviceDetail*> by_name;
  for (const auto& d : *details) {
    by_name[d.device_name] = &d;
  }
  const bool default_module = fw->module_name.empty() || fw->module_name == "default";
  if (!default_module) {
    ctx.output->warn("firmware module " + fw->module_name +
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
  s.waves = ota::plan_waves(*specs, s.devices.size());
  ctx.output->info("plan: " + std::to_string(s.devices.size()) + " devices in " +
                   std::to_string(s.waves.size()) + " waves; " + std::to_string(s.skipped) +
                   " already at " + s.dest_version +
                   (other_version > 0
                        ? ", " + std::to_string(other_version) + " not at " + o.src_version
                        : std::string()));
  return s;
}

// ---------------------------------------------------------------------------------------------
// status / cancel

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
    auto s = ota::load_state(target);
    if (!s) {
      return fail(s.error());
    }
    for (const auto& w : s->waves) {
      if (!w.job_id.empty()) {
        t.jobs.push_back({std::to_string(w.number), w.job_id});
      }
    }
    t.state = std::move(*s);
    t.path = target;
    return t;
  }
  if (target.empty() || target.find('/') != std::string::npos) {
    return fail(ErrorKind::usage, "'" + target + "' is neither a JobId nor a state file");
  }
  t.jobs.push_back({"", target});
  return t;
}

constexpr std::array<const char*, 7> k_task_states = {
    "CONFIRM", "QUEUED", "NOTIFIED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "CANCELED"};

struct JobCounts {
  std::string status;
  std::int64_t total = 0;
  std::array<std::int64_t, 7> by_state{};
  [[nodiscard]] std::int64_t open() const {
    return by_state[0] + by_state[1] + by_state[2] + by_state[3];
  }
};

Result<JobCounts> job_counts(cloud::IotApi& api, const std::string& job_id) {
  JobCounts c;
  auto job = api.query_ota_job(job_id);
  if (!job) {
    return fail(job.error());
  }
  c.status = job->job_status;
  for (std::size_t i = 0; i < k_task_states.size(); ++i) {
    auto n = api.count_ota_tasks(job_id, k_task_states[i]);
    if (!n) {
      return fail(n.error());
    }
    c.by_state[i] = *n;
    c.total += *n;
  }
  return c;
}

} // namespace

// ---------------------------------------------------------------------------------------------

Result<core::Table> run_ota_upload(const OtaUploadOptions& opts, Context& ctx) {
  if (!valid_version(opts.version)) {
    return fail(ErrorKind::usage, "--version: 1-64 of A-Z a-z 0-9 . _ -");
  }
  if (!opts.module.empty() && !valid_version(opts.module)) {
    return fail(ErrorKind::usage, "--module: 1-64 of A-Z a-z 0-9 . _ -");
  }
  if (opts.diff && !valid_version(opts.src_version)) {
    return fail(ErrorKind::usage, "--diff needs --src-version (the version it upgrades from)");
  }
  std::string method = opts.sign_method;
  std::transform(method.begin(), method.end(), method.begin(), ::toupper);
  if (method != "MD5" && method != "SHA256") {
    return fail(ErrorKind::usage, "--sign-method: MD5 or SHA256");
  }
  if (opts.verify_devices.size() > cloud::k_ota_verify_devices_max) {
    return fail(ErrorKind::usage, "--verify-devices: at most 10 devices (§3)");
  }
  auto source = cloud::HashingFileSource::open(opts.file);
  if (!source) {
    return fail(source.error());
  }
  auto cloud = open_cloud(ctx);
  if (!cloud) {
    return fail(cloud.error());
  }
  auto pk = product_key_or_config(opts.product_key, cloud->settings);
  if (!pk) {
    return fail(pk.error());
  }
  auto grant = cloud->api->generate_ota_upload_url(file_suffix(opts.file));
  if (!grant) {
    return fail(grant.error());
  }
  // Test hook (docs/ota.md): IOTFLEET_TEST_CORRUPT_UPLOAD=OFFSET flips one byte at OFFSET on the
  // wire, after it was hashed: what a corrupted transfer looks like to the platform.
  std::function<void(char*, std::size_t, std::int64_t)> tamper;
  if (const char* v = std::getenv("IOTFLEET_TEST_CORRUPT_UPLOAD"); v != nullptr) {
    const std::int64_t at = std::atoll(v);
    tamper = [at](char* buf, std::size_t n, std::int64_t offset) {
      if (at >= offset && at < offset + static_cast<std::int64_t>(n)) {
        buf[at - offset] = static_cast<char>(buf[at - offset] ^ 0x5a);
      }
    };
  }
  cloud::PostObjectOptions po;
  po.filename = std::filesystem::path(opts.file).filename().string();
  po.timeout = std::chrono::minutes(30);
  ctx.output->info("uploading " + opts.file + " (" + std::to_string((*source)->size()) + " bytes)");
  if (auto ok = cloud::post_object(*cloud->http, *grant, (*source)->body(tamper), po); !ok) {
    return fail(ok.error());
  }
  if ((*source)->bytes_read() != (*source)->size()) {
    return fail(ErrorKind::io,
                opts.file + " changed while it was uploaded (" +
                    std::to_string((*source)->bytes_read()) + " of " +
                    std::to_string((*source)->size()) + " bytes read): upload again");
  }
  cloud::CreateFirmwareRequest req;
  req.product_key = *pk;
  req.dest_version = opts.version;
  req.firmware_name = firmware_name(opts);
  req.firmware_url = grant->url;
  req.firmware_size = (*source)->size();
  req.sign_method = method;
  req.firmware_sign = method == "MD5" ? (*source)->md5_hex() : (*source)->sha256_hex();
  req.module_name = opts.module;
  req.type = opts.diff ? 1 : 0;
  req.src_version = opts.diff ? opts.src_version : std::string();
  req.description = opts.description;
  if (!opts.verify_devices.empty()) {
    req.need_to_verify = true;
  }
  auto fw = cloud->api->create_ota_firmware(req);
  if (!fw) {
    const auto& m = fw.error().message;
    if (m.find("FirmwareSignMismatch") != std::string::npos ||
        m.find("FirmwareSizeMismatch") != std::string::npos) {
      return fail(fw.error().context("the upload was corrupted on the way (the platform's copy "
                                     "does not match the " +
                                     method + " computed while sending): upload again"));
    }
    return fail(fw.error());
  }
  std::string verify = "not requested";
  if (!opts.verify_devices.empty()) {
    auto job = cloud->api->create_ota_verify_job(
        *pk, *fw, opts.verify_devices, opts.verify_timeout_minutes);
    if (!job) {
      return fail(job.error().context("firmware " + *fw + " created; verification"));
    }
    auto result = wait_verify(*cloud->api, *fw, *job, opts.verify_timeout_minutes, ctx);
    if (!result) {
      return fail(result.error());
    }
    verify = *result;
  }
  core::Table t;
  t.single = true;
  t.columns = {"firmware_id",
               "product_key",
               "version",
               "module",
               "name",
               "size",
               "sign_method",
               "sign",
               "verify"};
  t.add_row({*fw,
             *pk,
             opts.version,
             opts.module.empty() ? std::string("default") : opts.module,
             req.firmware_name,
             req.firmware_size,
             method,
             req.firmware_sign,
             verify});
  return t;
}

Result<core::Table> run_ota_rollout(const OtaRolloutOptions& opts, Context& ctx) {
  const bool resume = !opts.resume.empty();
  if (!resume && opts.state_file.empty()) {
    return fail(ErrorKind::usage, "--state FILE is required: the rollout is journaled there");
  }
  if (!resume && opts.firmware_id.empty()) {
    return fail(ErrorKind::usage, "--firmware ID is required (or --resume STATE)");
  }
  const std::filesystem::path path = resume ? opts.resume : opts.state_file;
  std::error_code ec;
  if (!resume && !opts.dry_run && std::filesystem::exists(path, ec)) {
    return fail(ErrorKind::usage,
                path.string() + " exists: continue it with --resume " + path.string() +
                    ", or choose another --state");
  }
  std::optional<StateLock> lock;
  if (!opts.dry_run) {
    auto taken = StateLock::take(path);
    if (!taken) {
      return fail(taken.error());
    }
    lock.emplace(std::move(*taken));
  }
  std::optional<RolloutState> loaded;
  if (resume) {
    auto s = ota::load_state(path);
    if (!s) {
      return fail(s.error());
    }
    loaded = std::move(*s);
  }
  CloudOptions co;
  co.max_attempts = 6;
  auto cloud = open_cloud(ctx, co);
  if (!cloud) {
    return fail(cloud.error());
  }
  Rollout r{ctx, *cloud, path, {}};
  if (loaded) {
    r.state = std::move(*loaded);
    ctx.output->info("resuming rollout " + r.state.rollout_id + " (" + r.state.status + ")");
  } else {
    auto planned = plan_rollout(opts, *cloud, ctx);
    if (!planned) {
      return fail(planned.error());
    }
    r.state = std::move(*planned);
    if (opts.dry_run) {
      return r.table();
    }
    if (r.state.waves.empty()) {
      ctx.output->info("nothing to do: every device is at " + r.state.dest_version);
    }
    if (auto ok = r.save(); !ok) {
      return fail(ok.error());
    }
  }
  return r.run();
}

Result<core::Table> run_ota_status(const OtaStatusOptions& opts, Context& ctx) {
  auto target = resolve_target(opts.target);
  if (!target) {
    return fail(target.error());
  }
  auto poll = ota::parse_duration(opts.poll_interval);
  if (!poll) {
    return fail(poll.error());
  }
  auto cloud = open_cloud(ctx);
  if (!cloud) {
    return fail(cloud.error());
  }
  if (opts.failures) {
    core::Table t;
    t.columns = {"wave", "job_id", "device_name", "task_desc", "utc_modified"};
    for (const auto& j : target->jobs) {
      auto failed = cloud->api->list_all_ota_tasks(j.job_id, "FAILED");
      if (!failed) {
        return fail(failed.error());
      }
      for (const auto& task : *failed) {
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
    for (const auto& j : target->jobs) {
      auto c = job_counts(*cloud->api, j.job_id);
      if (!c) {
        return fail(c.error());
      }
      std::vector<core::Cell> row{
          j.wave.empty() ? core::Cell{} : core::Cell{j.wave}, j.job_id, c->status, c->total};
      for (auto n : c->by_state) {
        row.emplace_back(n);
      }
      const std::int64_t finished = c->by_state[4] + c->by_state[5] + c->by_state[6];
      row.emplace_back(c->total > 0
                           ? 100.0 * static_cast<double>(finished) / static_cast<double>(c->total)
                           : 100.0);
      t.add_row(std::move(row));
      total += c->total;
      done += finished;
      open += c->open();
      if (!opts.watch && c->by_state[5] > 0) {
        if (auto failed = cloud->api->list_all_ota_tasks(j.job_id, "FAILED")) {
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
      if (target->state) {
        ctx.output->info("rollout " + target->state->rollout_id + ": " + target->state->status +
                         (target->state->reason.empty() ? "" : " — " + target->state->reason));
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
    (void)nap(std::chrono::duration_cast<std::chrono::milliseconds>(*poll));
  }
}

Result<core::Table> run_ota_cancel(const OtaCancelOptions& opts, Context& ctx) {
  auto target = resolve_target(opts.target);
  if (!target) {
    return fail(target.error());
  }
  auto cloud = open_cloud(ctx);
  if (!cloud) {
    return fail(cloud.error());
  }
  if (target->state) {
    // Stop the rollout first: a running `ota rollout` checks this before each wave.
    auto& s = *target->state;
    if (s.status != "done") {
      s.status = "canceled";
      s.reason = "canceled with ota cancel";
      if (auto ok = ota::save_state(target->path, s); !ok) {
        return fail(ok.error());
      }
    }
  }
  cloud::CancelTasks which;
  which.in_progress = opts.in_progress;
  core::Table t;
  t.columns = {"wave", "job_id", "canceled", "open"};
  for (const auto& j : target->jobs) {
    if (auto ok = cloud->api->cancel_ota_task_by_job(j.job_id, which); !ok) {
      return fail(ok.error());
    }
    auto c = job_counts(*cloud->api, j.job_id);
    if (!c) {
      return fail(c.error());
    }
    t.add_row(
        {j.wave.empty() ? core::Cell{} : core::Cell{j.wave}, j.job_id, c->by_state[6], c->open()});
  }
  return t;
}

void register_ota(CLI::App& app, Context& ctx) {
  auto* ota = app.add_subcommand(
      "ota", "Firmware: upload, rollout in waves with an abort rule, status, cancel");
  ota->require_subcommand(1);

  auto up_opts = std::make_shared<OtaUploadOptions>();
  auto* up = ota->add_subcommand(
      "upload",
      "Upload a firmware file (streamed, MD5/SHA256 computed on the way) and create the "
      "firmware; prints the FirmwareId");
  up->add_option("file", up_opts->file, "Firmware file")->required()->check(CLI::ExistingFile);
  up->add_option("--product-key", up_opts->product_key, "The product (default: config)");
  up->add_option("--version", up_opts->version, "DestVersion, e.g. V410")->required();
  up->add_option("--module", up_opts->module, "ModuleName (default: the default module)");
  up->add_option("--src-version", up_opts->src_version, "SrcVersion (with --diff)");
  up->add_flag("--diff", up_opts->diff, "A differential package (needs --src-version)");
  up->add_option("--name", up_opts->name, "FirmwareName (default: <file>-<version>)");
  up->add_option("--sign-method", up_opts->sign_method, "MD5 (default) or SHA256");
  up->add_option("--description", up_opts->description, "FirmwareDesc (≤100)");
  up->add_option("--verify-devices",
                 up_opts->verify_devices,
                 "Up to 10 DeviceNames: create a verification job and wait for it");
  up->add_option("--verify-timeout",
                 up_opts->verify_timeout_minutes,
                 "Minutes the verification may take (1-1440, default 30)")
      ->check(CLI::Range(1, 1440));
  up->callback(
      [&ctx, up_opts] { ctx.output->emit(value_or_throw(run_ota_upload(*up_opts, ctx))); });

  auto ro = std::make_shared<OtaRolloutOptions>();
  auto* roll = ota->add_subcommand(
      "rollout",
      "Roll a firmware out in waves (one static job per wave), stop and cancel on the abort "
      "rule; journaled to --state, continued with --resume");
  roll->add_option("--firmware", ro->firmware_id, "FirmwareId (from ota upload)");
  roll->add_option("--product-key", ro->product_key, "The product (default: the firmware's)");
  roll->add_option("--devices", ro->devices_file, "File with one DeviceName per line")
      ->check(CLI::ExistingFile);
  roll->add_flag("--all", ro->all, "Every device of the product");
  roll->add_option("--src-version",
                   ro->src_version,
                   "Only devices at this version (alone: of the whole product)");
  roll->add_option("--waves",
                   ro->waves,
                   "Cumulative shares or counts (default 1%,10%,50%,100%; e.g. 10,100,all)");
  roll->add_option("--max-per-minute",
                   ro->max_per_minute,
                   "Pushes per minute per wave (MaximumPerMinute, 10-10000)");
  roll->add_option("--retry-interval",
                   ro->retry_interval,
                   "Minutes before a failed device retries (0,10,30,60,1440; with --retry-count)");
  roll->add_option("--retry-count", ro->retry_count, "Retries (1, 2 or 5)");
  roll->add_option("--timeout-minutes",
                   ro->timeout_minutes,
                   "Per device, from its first progress report (1-1440)");
  roll->add_option("--abort-failure-rate",
                   ro->abort_failure_rate,
                   "Abort when failed/finished in a wave reaches this (default 5%)");
  roll->add_option("--abort-min-finished",
                   ro->abort_min_finished,
                   "Judge a wave once this many of its devices finished (default 20)");
  roll->add_option(
      "--wave-soak", ro->wave_soak, "Wait after a wave before the next (e.g. 10m; default 0)");
  roll->add_option("--notified-grace",
                   ro->notified_grace,
                   "A wave is over when only never-reacting (NOTIFIED) devices are left for "
                   "this long (default 10m)");
  roll->add_option(
      "--poll-interval", ro->poll_interval, "Between task status polls (default 5s; e.g. 500ms)");
  roll->add_option("--state", ro->state_file, "Journal file (0600; must not exist)");
  roll->add_option("--resume", ro->resume, "Continue the rollout journaled in this file")
      ->check(CLI::ExistingFile);
  roll->add_flag("--dry-run", ro->dry_run, "Print the wave plan; create nothing");
  roll->callback([&ctx, ro] { ctx.output->emit(value_or_throw(run_ota_rollout(*ro, ctx))); });

  auto st = std::make_shared<OtaStatusOptions>();
  auto* status = ota->add_subcommand(
      "status", "Task counts per status of a job or of every wave of a rollout state file");
  status->add_option("target", st->target, "JobId or rollout state file")->required();
  status->add_flag("--failures", st->failures, "List the failed tasks with their TaskDesc");
  status->add_flag("--watch", st->watch, "Poll until no task is open (a bar on a TTY)");
  status->add_option("--poll-interval", st->poll_interval, "With --watch (default 5s)");
  status->callback([&ctx, st] { ctx.output->emit(value_or_throw(run_ota_status(*st, ctx))); });

  auto ca = std::make_shared<OtaCancelOptions>();
  auto* cancel = ota->add_subcommand(
      "cancel",
      "Cancel the scheduled, queued, notified and unconfirmed tasks of a job or of a rollout "
      "(which then stops)");
  cancel->add_option("target", ca->target, "JobId or rollout state file")->required();
  cancel->add_flag("--in-progress",
                   ca->in_progress,
                   "Also cancel running upgrades (the devices keep their old version)");
  cancel->callback([&ctx, ca] { ctx.output->emit(value_or_throw(run_ota_cancel(*ca, ctx))); });
}

} // namespace iot::commands
