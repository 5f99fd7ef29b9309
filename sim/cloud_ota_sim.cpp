// SPDX-License-Identifier: MIT
// The OTA side of the simulated fleet: rows of the ota_* tables and advance_ota(), which moves
// jobs and tasks on in time (docs/cloud-emulator.md "OTA").
//
// A task's life: QUEUED (ready from ready_ms) → NOTIFIED at its job's next notification slot
// (MaximumPerMinute spreads them evenly: one every 60 s / N, simulated) → IN_PROGRESS when the
// device reacts (progress "0"), download progress in quarters (25, 50, 75, 100), verify, burn →
// SUCCEEDED (the device now has DestVersion) or FAILED with a device-style TaskDesc. Every
// event is scheduled from the time of the previous one, not from when the ticker ran, so the
// outcome does not depend on how often advance_ota() is called. What a device does (reacts or
// not, fails where, how fast) is drawn from an RNG seeded by (seed, task, attempt).
#include "sim/cloud_ota.hpp"
#include "sim/identity.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_set>

namespace iot::sim::cloud {

using json = nlohmann::ordered_json;

const RowTable<FirmwareRow>& firmware_table() {
  static const RowTable<FirmwareRow> table("ota_firmwares",
                                           {{"seq", &FirmwareRow::seq},
                                            {"firmware_id", &FirmwareRow::firmware_id},
                                            {"product_key", &FirmwareRow::product_key},
                                            {"name", &FirmwareRow::name},
                                            {"dest_version", &FirmwareRow::dest_version},
                                            {"src_version", &FirmwareRow::src_version},
                                            {"type", &FirmwareRow::type},
                                            {"module", &FirmwareRow::module},
                                            {"url", &FirmwareRow::url},
                                            {"object_key", &FirmwareRow::object_key},
                                            {"size", &FirmwareRow::size},
                                            {"sign", &FirmwareRow::sign},
                                            {"sign_method", &FirmwareRow::sign_method},
                                            {"md5", &FirmwareRow::md5},
                                            {"description", &FirmwareRow::description},
                                            {"udi", &FirmwareRow::udi},
                                            {"verify_status", &FirmwareRow::verify_status},
                                            {"created_ms", &FirmwareRow::created_ms},
                                            {"modified_ms", &FirmwareRow::modified_ms},
                                            {"files", &FirmwareRow::files}});
  return table;
}

const RowTable<OtaJobRow>& job_table() {
  static const RowTable<OtaJobRow> table("ota_jobs",
                                         {{"seq", &OtaJobRow::seq},
                                          {"job_id", &OtaJobRow::job_id},
                                          {"firmware_id", &OtaJobRow::firmware_id},
                                          {"product_key", &OtaJobRow::product_key},
                                          {"job_type", &OtaJobRow::job_type},
                                          {"status", &OtaJobRow::status},
                                          {"details", &OtaJobRow::details},
                                          {"max_per_minute", &OtaJobRow::max_per_minute},
                                          {"retry_interval", &OtaJobRow::retry_interval},
                                          {"retry_count", &OtaJobRow::retry_count},
                                          {"timeout_min", &OtaJobRow::timeout_min},
                                          {"schedule_ms", &OtaJobRow::schedule_ms},
                                          {"schedule_finish_ms", &OtaJobRow::schedule_finish_ms},
                                          {"start_ms", &OtaJobRow::start_ms},
                                          {"end_ms", &OtaJobRow::end_ms},
                                          {"next_slot_us", &OtaJobRow::next_slot_us},
                                          {"open_tasks", &OtaJobRow::open_tasks},
                                          {"canceled_tasks", &OtaJobRow::canceled_tasks},
                                          {"created_ms", &OtaJobRow::created_ms},
                                          {"modified_ms", &OtaJobRow::modified_ms},
                                          {"dynamic_mode", &OtaJobRow::dynamic_mode}});
  return table;
}

const RowTable<OtaTaskRow>& task_table() {
  static const RowTable<OtaTaskRow> table("ota_tasks",
                                          {{"seq", &OtaTaskRow::seq},
                                           {"task_id", &OtaTaskRow::task_id},
                                           {"job_seq", &OtaTaskRow::job_seq},
                                           {"product_key", &OtaTaskRow::product_key},
                                           {"device_name", &OtaTaskRow::device_name},
                                           {"iot_id", &OtaTaskRow::iot_id},
                                           {"module", &OtaTaskRow::module},
                                           {"src_version", &OtaTaskRow::src_version},
                                           {"status", &OtaTaskRow::status},
                                           {"progress", &OtaTaskRow::progress},
                                           {"task_desc", &OtaTaskRow::task_desc},
                                           {"attempt", &OtaTaskRow::attempt},
                                           {"phase", &OtaTaskRow::phase},
                                           {"ready_ms", &OtaTaskRow::ready_ms},
                                           {"due_ms", &OtaTaskRow::due_ms},
                                           {"deadline_ms", &OtaTaskRow::deadline_ms},
                                           {"created_ms", &OtaTaskRow::created_ms},
                                           {"modified_ms", &OtaTaskRow::modified_ms}});
  return table;
}

namespace {

constexpr std::int64_t k_budget = 20'000;       // events per advance_ota() transaction
constexpr std::int64_t k_dynamic_scan_ms = 250; // how often dynamic jobs look for devices (real)

// A task id for a task a dynamic job adds: unique, derived from the job and the device (the
// ticker has no RNG of its own).
std::string random_task_suffix(const OtaJobRow& job, std::int64_t device_seq) {
  static constexpr char k_alnum[] =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::uint64_t x = derive_seed(static_cast<std::uint64_t>(job.seq) * 0x9E3779B97F4A7C15ULL,
                                static_cast<std::uint64_t>(device_seq));
  std::string out;
  for (int i = 0; i < 16; ++i) {
    out += k_alnum[x % 62];
    x = x / 62 + static_cast<std::uint64_t>(i) * 0x2545F4914F6CDD1DULL;
  }
  return out;
}

// What one device does in one attempt of one task.
struct Plan {
  bool silent = false;  // never reacts to the notification
  int fail_code = 0;    // 0, or the progress step it reports: -1 upgrade, -2 download, -3 verify,
                        // -4 burn failed
  int fail_quarter = 0; // download failures: during quarter 1-4
  const OtaFailureGroup* group = nullptr; // the failure group that matched, if any
  double pickup_ms = 0;                   // simulated
  double download_ms = 0;
  double verify_ms = 0;
  double burn_ms = 0;
};

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

const OtaFailureGroup*
match_group(const OtaScenario& ota, const OtaTaskRow& task, const DeviceRow& device) {
  for (const OtaFailureGroup& g : ota.failure) {
    if (!g.name_prefix.empty() && !starts_with(task.device_name, g.name_prefix)) {
      continue;
    }
    if (!g.nickname_prefix.empty() && !starts_with(device.nickname, g.nickname_prefix)) {
      continue;
    }
    if (g.has_firmware && task.src_version != g.firmware) {
      continue;
    }
    if (!g.product_key.empty() && task.product_key != g.product_key) {
      continue;
    }
    return &g;
  }
  return nullptr;
}

Plan plan_for(const OtaScenario& ota,
              const ServiceOptions& options,
              const OtaTaskRow& task,
              const DeviceRow& device) {
  Rng rng(derive_seed(derive_seed(options.seed, 0x07A),
                      static_cast<std::uint64_t>(task.seq) * 64 +
                          static_cast<std::uint64_t>(task.attempt)));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Plan p;
  p.silent = u(rng) < ota.offline_rate;
  p.group = match_group(ota, task, device);
  const double rate = p.group != nullptr ? p.group->rate : ota.failure_rate;
  const bool fails = u(rng) < rate;
  const OtaFailStep step = p.group != nullptr ? p.group->step : OtaFailStep::any;
  const double pick = u(rng);
  p.fail_quarter = 1 + static_cast<int>(u(rng) * 4) % 4;
  if (fails) {
    switch (step) {
    case OtaFailStep::upgrade:
      p.fail_code = -1;
      break;
    case OtaFailStep::download:
      p.fail_code = -2;
      break;
    case OtaFailStep::verify:
      p.fail_code = -3;
      break;
    case OtaFailStep::burn:
      p.fail_code = -4;
      break;
    case OtaFailStep::any:
      p.fail_code = pick < 1.0 / 3 ? -2 : pick < 2.0 / 3 ? -3 : -4;
      break;
    }
  }
  auto jittered = [&](double seconds) {
    return std::max(0.0, seconds * 1000.0 * (1.0 + ota.jitter * (2 * u(rng) - 1)));
  };
  p.pickup_ms = jittered(ota.pickup_s);
  p.download_ms = jittered(ota.download_s);
  p.verify_ms = jittered(ota.verify_s);
  p.burn_ms = jittered(ota.burn_s);
  return p;
}

// Real ms for `sim_ms` simulated ms.
std::int64_t real_ms(double sim_ms, const ServiceOptions& options) {
  return static_cast<std::int64_t>(std::llround(sim_ms / options.time_scale));
}

std::string step_word(int code) {
  switch (code) {
  case -2:
    return "download";
  case -3:
    return "verify";
  case -4:
    return "burn";
  default:
    return "upgrade";
  }
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::string failure_desc(const Plan& p, const OtaTaskRow& task, const DeviceRow& device) {
  std::string desc =
      p.group != nullptr && !p.group->desc.empty() ? p.group->desc : "{step} failed ({code})";
  desc = replace_all(std::move(desc), "{step}", step_word(p.fail_code));
  desc = replace_all(std::move(desc), "{code}", std::to_string(p.fail_code));
  desc = replace_all(std::move(desc), "{device}", task.device_name);
  desc = replace_all(std::move(desc), "{nickname}", device.nickname);
  desc = replace_all(std::move(desc), "{firmware}", task.src_version);
  return desc;
}

std::vector<OtaJobRow> jobs_with_status(Conn& c, std::string_view status) {
  Stmt s = c.prepare(job_table().select("WHERE status = ?1 ORDER BY seq"));
  s.bind(1, status);
  return job_table().read_all(s);
}

std::optional<OtaTaskRow> task_by_seq(Conn& c, std::int64_t seq) {
  Stmt s = c.prepare(task_table().select("WHERE seq = ?1"));
  s.bind(1, seq);
  return task_table().read_one(s);
}

// Schedules the next event of an IN_PROGRESS task at `next` (simulated offset from t, in real
// ms), or at its deadline if that comes first.
void schedule_next(OtaTaskRow& task, std::int64_t at) {
  task.due_ms = task.deadline_ms > 0 ? std::min(at, task.deadline_ms) : at;
  task.due_ms = std::max<std::int64_t>(task.due_ms, 1);
}

// A failed attempt: retried (back to QUEUED after RetryInterval) or FAILED for good.
void fail_attempt(Conn& c,
                  OtaTaskRow& task,
                  const OtaJobRow& job,
                  std::string desc,
                  std::int64_t t,
                  bool retriable,
                  const ServiceOptions& options) {
  if (retriable && job.retry_interval >= 0 && task.attempt < job.retry_count) {
    task.attempt += 1;
    task.status = std::string(k_task_queued);
    task.progress = "0";
    task.task_desc = "retry " + std::to_string(task.attempt) + " after: " + desc;
    task.phase = 0;
    task.due_ms = 0;
    task.deadline_ms = 0;
    task.ready_ms = t + real_ms(static_cast<double>(job.retry_interval) * 60'000.0, options);
    task.modified_ms = t;
    update_task(c, task);
    return;
  }
  finish_task(c, task, k_task_failed, std::move(desc), t);
}

// One event of a NOTIFIED or IN_PROGRESS task, at its due time.
void step_task(Conn& c, OtaTaskRow& task, const CloudStore& store, const ServiceOptions& options) {
  const std::int64_t t = task.due_ms;
  auto job = find_job_by_seq(c, task.job_seq);
  auto device = CloudStore::device(c, task.product_key, task.device_name);
  if (!job || !device) {
    finish_task(c, task, k_task_failed, "device not found", t);
    return;
  }
  const Plan p = plan_for(store.ota(), options, task, *device);
  task.modified_ms = t;
  if (task.status == k_task_notified) {
    // The device reacts: first progress report.
    task.status = std::string(k_task_in_progress);
    task.progress = "0";
    task.phase = 0;
    task.deadline_ms = job->timeout_min > 0
                           ? t + real_ms(static_cast<double>(job->timeout_min) * 60'000.0, options)
                           : 0;
    schedule_next(task, t + real_ms(p.download_ms / 4, options));
    update_task(c, task);
    return;
  }
  if (task.deadline_ms > 0 && t >= task.deadline_ms) {
    fail_attempt(c,
                 task,
                 *job,
                 "upgrade timed out (TimeoutInMinutes " + std::to_string(job->timeout_min) + ")",
                 t,
                 false,
                 options);
    return;
  }
  const std::int64_t event = task.phase + 1;
  if (event <= 4) {
    if (p.fail_code == -2 && p.fail_quarter == event) {
      fail_attempt(c, task, *job, failure_desc(p, task, *device), t, true, options);
      return;
    }
    task.phase = event;
    task.progress = std::to_string(25 * event);
    schedule_next(task, t + real_ms(event < 4 ? p.download_ms / 4 : p.verify_ms, options));
    update_task(c, task);
    return;
  }
  if (event == 5) {
    if (p.fail_code == -3) {
      fail_attempt(c, task, *job, failure_desc(p, task, *device), t, true, options);
      return;
    }
    task.phase = event;
    schedule_next(task, t + real_ms(p.burn_ms, options));
    update_task(c, task);
    return;
  }
  if (p.fail_code == -4 || p.fail_code == -1) {
    fail_attempt(c, task, *job, failure_desc(p, task, *device), t, true, options);
    return;
  }
  const auto firmware = find_firmware(c, job->firmware_id);
  if (firmware) {
    set_device_version(c, *device, task.module, firmware->dest_version, t);
  }
  task.progress = "100";
  finish_task(c, task, k_task_succeeded, "", t);
}

// Notifies the job's ready QUEUED tasks whose slots have come (MaximumPerMinute). Returns the
// number of tasks notified.
std::int64_t notify(Conn& c,
                    OtaJobRow& job,
                    std::int64_t now,
                    std::int64_t budget,
                    const CloudStore& store,
                    const ServiceOptions& options) {
  const double interval_us =
      job.max_per_minute > 0
          ? 60'000'000.0 / (static_cast<double>(job.max_per_minute) * options.time_scale)
          : 0.0;
  std::vector<OtaTaskRow> ready;
  {
    Stmt s = c.prepare(task_table().select("WHERE job_seq = ?1 AND status = 'QUEUED' AND "
                                           "ready_ms <= ?2 ORDER BY ready_ms, seq LIMIT ?3"));
    s.bind(1, job.seq).bind(2, now).bind(3, budget);
    ready = task_table().read_all(s);
  }
  std::int64_t done = 0;
  for (OtaTaskRow& task : ready) {
    const std::int64_t slot_us = std::max(job.next_slot_us, task.ready_ms * 1000);
    if (slot_us > now * 1000) {
      break;
    }
    const std::int64_t t = slot_us / 1000;
    job.next_slot_us = slot_us + static_cast<std::int64_t>(std::llround(interval_us));
    task.status = std::string(k_task_notified);
    task.modified_ms = t;
    task.due_ms = 0; // stays NOTIFIED unless the device reacts
    const auto device = CloudStore::device(c, task.product_key, task.device_name);
    if (device && device->status == k_online) {
      const Plan p = plan_for(store.ota(), options, task, *device);
      if (!p.silent) {
        task.due_ms = std::max<std::int64_t>(1, t + real_ms(p.pickup_ms, options));
      }
    }
    update_task(c, task);
    ++done;
  }
  if (done > 0) {
    job.modified_ms = std::max(job.modified_ms, now);
    update_job(c, job);
  }
  return done;
}

// A dynamic job takes on the devices that match it now: ONLINE, at one of its SrcVersions (of
// the firmware's module, not at DestVersion), in its group when it names one, without a task in
// this job yet; DynamicMode 2 only devices that came online after the job was created. A device
// with an open task in another job waits for a later tick. Returns the tasks added.
std::int64_t pick_up(Conn& c, OtaJobRow& job, std::int64_t now, std::int64_t budget) {
  const auto firmware = find_firmware(c, job.firmware_id);
  const json details = json::parse(job.details, nullptr, false);
  if (!firmware || details.is_discarded()) {
    return 0;
  }
  std::set<std::string, std::less<>> versions;
  if (details.contains("SrcVersions")) {
    for (const auto& v : details["SrcVersions"].value("SrcVersion", json::array())) {
      versions.insert(v.get<std::string>());
    }
  }
  std::optional<std::unordered_set<std::int64_t>> members;
  if (const std::string group = details.value("GroupId", ""); !group.empty()) {
    const auto g = CloudStore::group(c, group);
    const auto seqs = g ? CloudStore::member_seqs(c, *g) : std::vector<std::int64_t>{};
    members.emplace(seqs.begin(), seqs.end());
  }
  std::vector<std::int64_t> candidates;
  {
    Stmt s = c.prepare("SELECT d.seq FROM devices d WHERE d.product_key = ?1 AND d.status = "
                       "'ONLINE' AND d.online_ms > ?3 AND NOT EXISTS (SELECT 1 FROM ota_tasks t "
                       "WHERE t.job_seq = ?2 AND t.device_name = d.device_name) ORDER BY d.seq "
                       "LIMIT ?4");
    s.bind(1, job.product_key)
        .bind(2, job.seq)
        .bind(3, job.dynamic_mode == 2 ? job.created_ms : std::int64_t{-1})
        .bind(4, budget);
    while (s.step()) {
      candidates.push_back(s.int64(0));
    }
  }
  std::int64_t added = 0;
  for (const std::int64_t seq : candidates) {
    if (members && !members->contains(seq)) {
      continue;
    }
    const auto device = CloudStore::device_by_seq(c, seq);
    if (!device) {
      continue;
    }
    const std::string version = device_version(c, *device, firmware->module);
    if (version == firmware->dest_version || (!versions.empty() && !versions.contains(version)) ||
        (firmware->type == 1 && version != firmware->src_version)) {
      continue;
    }
    Stmt busy = c.prepare("SELECT 1 FROM ota_tasks WHERE product_key = ?1 AND device_name = ?2 "
                          "AND module = ?3 AND status IN ('CONFIRM', 'QUEUED', 'NOTIFIED', "
                          "'IN_PROGRESS') LIMIT 1");
    busy.bind(1, device->product_key).bind(2, device->device_name).bind(3, firmware->module);
    if (busy.step()) {
      continue;
    }
    OtaTaskRow task;
    task.task_id = job.job_id.substr(0, 10) + random_task_suffix(job, seq);
    task.job_seq = job.seq;
    task.product_key = device->product_key;
    task.device_name = device->device_name;
    task.iot_id = device->iot_id;
    task.module = firmware->module;
    task.src_version = version;
    task.status = std::string(details.value("NeedConfirm", false) ? k_task_confirm : k_task_queued);
    task.progress = "0";
    task.ready_ms = now;
    task.created_ms = now;
    task.modified_ms = now;
    insert_task(c, task);
    ++added;
  }
  if (added > 0) {
    job.open_tasks += added;
    job.modified_ms = std::max(job.modified_ms, now);
    update_job(c, job);
  }
  return added;
}

// Cancels the tasks of a job whose ScheduleFinishTime has come (IN_PROGRESS ones carry on).
void finish_schedule(Conn& c, OtaJobRow& job, std::int64_t now) {
  cancel_tasks(c,
               job.seq,
               {k_task_confirm, k_task_queued, k_task_notified},
               "the job's ScheduleFinishTime has passed",
               now);
  if (auto fresh = find_job_by_seq(c, job.seq)) {
    fresh->schedule_finish_ms = 0;
    fresh->modified_ms = now;
    update_job(c, *fresh);
  }
}

} // namespace

bool task_open(std::string_view status) {
  return status == k_task_confirm || status == k_task_queued || status == k_task_notified ||
         status == k_task_in_progress;
}

std::optional<FirmwareRow> find_firmware(Conn& c, std::string_view firmware_id) {
  Stmt s = c.prepare(firmware_table().select("WHERE firmware_id = ?1"));
  s.bind(1, firmware_id);
  return firmware_table().read_one(s);
}

std::optional<OtaJobRow> find_job(Conn& c, std::string_view job_id) {
  Stmt s = c.prepare(job_table().select("WHERE job_id = ?1"));
  s.bind(1, job_id);
  return job_table().read_one(s);
}

std::optional<OtaJobRow> find_job_by_seq(Conn& c, std::int64_t seq) {
  Stmt s = c.prepare(job_table().select("WHERE seq = ?1"));
  s.bind(1, seq);
  return job_table().read_one(s);
}

std::int64_t insert_job(Conn& c, const OtaJobRow& job) {
  return job_table().insert(c, job);
}

void update_job(Conn& c, const OtaJobRow& job) {
  job_table().update(c, job, job.seq);
}

std::int64_t insert_task(Conn& c, const OtaTaskRow& task) {
  return task_table().insert(c, task);
}

void update_task(Conn& c, const OtaTaskRow& task) {
  task_table().update(c, task, task.seq);
}

std::string device_version(Conn& c, const DeviceRow& device, std::string_view module) {
  if (module == k_default_module) {
    return device.firmware;
  }
  Stmt s = c.prepare("SELECT version FROM device_modules WHERE product_key = ?1 AND "
                     "device_name = ?2 AND module = ?3");
  s.bind(1, device.product_key).bind(2, device.device_name).bind(3, module);
  return s.step() ? s.text(0) : std::string();
}

void set_device_version(Conn& c,
                        const DeviceRow& device,
                        std::string_view module,
                        std::string_view version,
                        std::int64_t now_ms) {
  if (module == k_default_module) {
    DeviceRow after = device;
    after.firmware = std::string(version);
    after.modified_ms = std::max(device.modified_ms, now_ms);
    CloudStore::update_device(c, device, after);
    return;
  }
  c.prepare("INSERT INTO device_modules(product_key, device_name, module, version) "
            "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(product_key, device_name, module) DO UPDATE "
            "SET version = excluded.version")
      .bind(1, device.product_key)
      .bind(2, device.device_name)
      .bind(3, module)
      .bind(4, version)
      .run();
}

std::int64_t cancel_tasks(Conn& c,
                          std::int64_t job_seq,
                          std::initializer_list<std::string_view> statuses,
                          std::string_view why,
                          std::int64_t now) {
  std::string in;
  for (const std::string_view st : statuses) {
    in += (in.empty() ? "'" : ", '") + std::string(st) + "'";
  }
  std::vector<OtaTaskRow> tasks;
  {
    Stmt s = c.prepare(
        task_table().select("WHERE job_seq = ?1 AND status IN (" + in + ") ORDER BY seq"));
    s.bind(1, job_seq);
    tasks = task_table().read_all(s);
  }
  for (OtaTaskRow& task : tasks) {
    finish_task(c, task, k_task_canceled, std::string(why), now);
  }
  return static_cast<std::int64_t>(tasks.size());
}

void end_job_if_done(Conn& c, OtaJobRow& job, std::int64_t t) {
  if (job.open_tasks > 0 || job.status == k_job_completed || job.status == k_job_canceled ||
      job.dynamic_mode > 0) {
    return;
  }
  job.status = std::string(job.canceled_tasks > 0 ? k_job_canceled : k_job_completed);
  job.end_ms = t;
  job.modified_ms = t;
  update_job(c, job);
  if (job.job_type != k_job_verify) {
    return;
  }
  // A verification job passes when it had tasks and every one of them succeeded.
  Stmt s = c.prepare("SELECT COUNT(*), COALESCE(SUM(status = 'SUCCEEDED'), 0) FROM ota_tasks "
                     "WHERE job_seq = ?1");
  s.bind(1, job.seq);
  s.step();
  const bool passed = s.int64(0) > 0 && s.int64(0) == s.int64(1);
  c.prepare("UPDATE ota_firmwares SET verify_status = ?2, modified_ms = ?3 WHERE firmware_id = ?1")
      .bind(1, job.firmware_id)
      .bind(2, std::int64_t{passed ? k_verify_ok : k_verify_failed})
      .bind(3, t)
      .run();
}

void finish_task(
    Conn& c, OtaTaskRow& task, std::string_view status, std::string desc, std::int64_t t) {
  const bool was_open = task_open(task.status);
  task.status = std::string(status);
  task.task_desc = std::move(desc);
  task.due_ms = 0;
  task.deadline_ms = 0;
  task.modified_ms = t;
  update_task(c, task);
  if (!was_open) {
    return;
  }
  auto job = find_job_by_seq(c, task.job_seq);
  if (!job) {
    return;
  }
  job->open_tasks -= 1;
  if (status == k_task_canceled) {
    job->canceled_tasks += 1;
  }
  job->modified_ms = t;
  update_job(c, *job);
  end_job_if_done(c, *job, t);
}

std::int64_t advance_ota(CloudStore& store, std::int64_t now, const ServiceOptions& options) {
  auto next = store.write([&](Conn& c) -> std::int64_t {
    std::int64_t budget = k_budget;
    for (OtaJobRow& job : jobs_with_status(c, k_job_planned)) {
      if (job.start_ms <= now) {
        job.status = std::string(k_job_in_progress);
        job.next_slot_us = job.start_ms * 1000;
        job.modified_ms = job.start_ms;
        update_job(c, job);
      }
    }
    bool more = true;
    while (more && budget > 0) {
      more = false;
      for (OtaJobRow& job : jobs_with_status(c, k_job_in_progress)) {
        if (job.schedule_finish_ms > 0 && job.schedule_finish_ms <= now) {
          finish_schedule(c, job, now);
          continue;
        }
        if (job.dynamic_mode > 0) {
          budget -= pick_up(c, job, now, budget);
        }
        const std::int64_t n = notify(c, job, now, budget, store, options);
        budget -= n;
        more = more || n > 0;
      }
      std::vector<std::int64_t> due;
      {
        Stmt s = c.prepare("SELECT seq FROM ota_tasks WHERE due_ms > 0 AND due_ms <= ?1 "
                           "ORDER BY due_ms, seq LIMIT ?2");
        s.bind(1, now).bind(2, std::min<std::int64_t>(budget, 2000));
        while (s.step()) {
          due.push_back(s.int64(0));
        }
      }
      for (const std::int64_t seq : due) {
        auto task = task_by_seq(c, seq);
        if (task && task->due_ms > 0 && task->due_ms <= now) {
          step_task(c, *task, store, options);
        }
      }
      budget -= static_cast<std::int64_t>(due.size());
      more = more || !due.empty();
    }
    if (budget <= 0) {
      return now; // more work is due already
    }
    // The next due time: a task event, a queued task's slot, a scheduled start or finish.
    std::int64_t next_due = 0;
    auto consider = [&](std::int64_t t) {
      if (t > 0 && (next_due == 0 || t < next_due)) {
        next_due = t;
      }
    };
    {
      Stmt s = c.prepare("SELECT COALESCE(MIN(due_ms), 0) FROM ota_tasks WHERE due_ms > 0");
      s.step();
      consider(s.int64(0));
    }
    for (const OtaJobRow& job : jobs_with_status(c, k_job_planned)) {
      consider(job.start_ms);
    }
    for (const OtaJobRow& job : jobs_with_status(c, k_job_in_progress)) {
      consider(job.schedule_finish_ms);
      if (job.dynamic_mode > 0) {
        consider(now + k_dynamic_scan_ms); // devices may come online at any time
      }
      Stmt s = c.prepare("SELECT MIN(ready_ms) FROM ota_tasks WHERE job_seq = ?1 AND "
                         "status = 'QUEUED'");
      s.bind(1, job.seq);
      if (s.step() && !s.is_null(0)) {
        const std::int64_t slot_ms = (job.next_slot_us + 999) / 1000;
        consider(std::max({s.int64(0), slot_ms, now + 1}));
      }
    }
    return next_due;
  });
  return next ? *next : now + 1000; // on a state error try again a second later
}

} // namespace iot::sim::cloud
