// SPDX-License-Identifier: MIT
// The ota command group's options; the commands are in ota_upload.cpp, ota_rollout.cpp and
// ota_jobs.cpp (status, cancel), the pure planning and the journal in ota_plan.cpp.
#include "commands/ota.hpp"

#include "commands/common_options.hpp"

namespace iot::commands {

void register_ota(CLI::App& app, Context& ctx) {
  using std::chrono::minutes;
  auto* ota = app.add_subcommand(
      "ota", "Firmware: upload, rollout in waves with an abort rule, status, cancel");
  ota->require_subcommand(0, 1);
  const std::pair<int, std::string> bad_input = {2, "bad options or input (nothing was created)"};
  const std::pair<int, std::string> cloud_error = {4, "the cloud refused or could not be reached"};
  const std::pair<int, std::string> interrupted = {130, "interrupted"};

  auto up_opts = std::make_shared<OtaUploadOptions>();
  auto* up = ota->add_subcommand(
      "upload",
      "Upload a firmware file (streamed, MD5/SHA256 computed on the way) and create the "
      "firmware; prints the FirmwareId");
  up->add_option("FILE",
                 up_opts->files,
                 "The firmware file (regular, not empty, ≤ 1000 MB); several files (up to 20, "
                 "e.g. ESP8266 NONOS user1.bin user2.bin) make one multi-file firmware")
      ->required()
      ->type_name("");
  add_product_key(up, up_opts->product_key);
  up->add_option(
        "--dest-version", up_opts->version, "The firmware's version (DestVersion), e.g. V410")
      ->option_text("VERSION REQUIRED");
  add_deprecated_option(
      up,
      "--version",
      "--dest-version",
      [up_opts](const std::string& v) { up_opts->version = v; },
      ctx);
  up->add_option("--firmware-module",
                 up_opts->module,
                 "The firmware's ModuleName, for devices with several modules (default: the "
                 "default module)")
      ->option_text("NAME");
  add_deprecated_option(
      up,
      "--module",
      "--firmware-module",
      [up_opts](const std::string& v) { up_opts->module = v; },
      ctx);
  up->add_option("--src-version", up_opts->src_version, "SrcVersion (with --diff)")
      ->option_text("VERSION");
  up->add_flag("--diff", up_opts->diff, "A differential package (needs --src-version)");
  up->add_option("--name", up_opts->name, "FirmwareName (default: <file>-<version>)")
      ->option_text("NAME");
  up->add_option("--sign-method", up_opts->sign_method, "MD5 (default) or SHA256")
      ->option_text("MD5|SHA256");
  up->add_option("--description", up_opts->description, "FirmwareDesc (≤100)")->option_text("TEXT");
  up->add_option("--verify-device",
                 up_opts->verify_devices.flagged,
                 "A DeviceName to verify the firmware on first (repeatable, up to 10): creates a "
                 "verification job and waits for it")
      ->option_text(std::string(value_name::device_name));
  // The old spelling took several names after one flag.
  up->add_option_function<std::vector<std::string>>(
        "--verify-devices",
        [&ctx, up_opts](const std::vector<std::string>& names) {
          ctx.output->warn(deprecation_warning("--verify-devices", "--verify-device (repeated)"));
          up_opts->verify_devices.flagged.insert(
              up_opts->verify_devices.flagged.end(), names.begin(), names.end());
        },
        "Deprecated: --verify-device")
      ->expected(1, -1)
      ->group("");
  add_duration(
      up,
      "--verify-timeout",
      up_opts->verify_timeout,
      "How long the verification may take",
      {.bare_unit = minutes(1), .min = minutes(1), .max = minutes(1440), .granularity = minutes(1)},
      ctx);
  add_exit_codes(up,
                 {{0, "the firmware was created (and verified, when asked)"},
                  {2,
                   "bad options, or a firmware file that is missing, empty or not a regular "
                   "file (nothing was uploaded)"},
                  cloud_error,
                  interrupted});
  up->callback(
      [&ctx, up_opts] { ctx.output->emit(value_or_throw(run_ota_upload(*up_opts, ctx))); });

  auto ro = std::make_shared<OtaRolloutOptions>();
  auto* roll = ota->add_subcommand(
      "rollout",
      "Roll a firmware out in waves (one static job per wave), stop and cancel on the abort "
      "rule; journaled to --journal, continued with --resume");
  roll->add_option("--firmware", ro->firmware_id, "FirmwareId (from ota upload)")
      ->option_text("ID");
  add_product_key(roll, ro->product_key, "the firmware's");
  add_device_names(roll, ro->devices, {DeviceArity::many, true, false, "DeviceName"});
  roll->add_flag("--all", ro->all, "Every device of the product");
  roll->add_option("--group",
                   ro->group,
                   "The devices of this device group (its name or GroupId), of the product")
      ->option_text("NAME|ID");
  roll->add_option("--tag", ro->tags, "Devices with this tag (repeatable: every tag must hold)")
      ->allow_extra_args(false)
      ->option_text("KEY=VALUE");
  roll->add_option("--query",
                   ro->query,
                   "Devices matching the platform's SQL-like search (the WHERE condition, e.g. "
                   "\"status = 'ONLINE' AND nickname LIKE 'hwrevB%'\"; ≤ 10000 devices)")
      ->option_text("CONDITION");
  roll->add_option("--src-version",
                   ro->src_version,
                   "Only devices at this version (alone: of the whole product). Selections "
                   "combine as an intersection")
      ->option_text("VERSION");
  roll->add_flag("--dynamic",
                 ro->dynamic,
                 "One dynamic job instead of waves: the devices at --src-version (in --group) "
                 "now and every one that comes online at it later, until `ota cancel`. No "
                 "--waves: the job is one wave, judged by the abort rule while it is watched");
  roll->add_flag("--multi-module",
                 ro->multi_module,
                 "MultiModuleMode: devices upgrade several modules in one job");
  roll->add_option("--waves",
                   ro->waves,
                   "Cumulative shares or counts (default 1%,10%,50%,100%; e.g. 10,100,all)")
      ->option_text("LIST");
  roll->add_option("--max-per-minute",
                   ro->max_per_minute,
                   "Pushes per minute (MaximumPerMinute, 10-10000): one rate for every wave, or "
                   "one per --waves entry, e.g. 100,1000,5000")
      ->option_text("N[,N...]");
  add_duration(roll,
               "--retry-interval",
               ro->retry_interval,
               "Before a failed device retries: 0, 10m, 30m, 1h or 1d (with --retry-count)",
               {.bare_unit = minutes(1), .max = minutes(1440), .granularity = minutes(1)},
               ctx);
  roll->add_option("--retry-count", ro->retry_count, "Retries (1, 2 or 5)")
      ->option_text(std::string(value_name::count));
  add_duration(roll,
               "--task-timeout",
               ro->task_timeout,
               "Per device, from its first progress report (TimeoutInMinutes: 1m to 1d)",
               {.bare_unit = minutes(1),
                .min = minutes(1),
                .max = minutes(1440),
                .deprecated_name = "--timeout-minutes",
                .granularity = minutes(1)},
               ctx);
  roll->add_option("--abort-failure-rate",
                   ro->abort_failure_rate,
                   "Abort when failed/finished in a wave reaches this (default 5%)")
      ->option_text("RATE");
  roll->add_option("--abort-min-finished",
                   ro->abort_min_finished,
                   "Judge a wave once this many of its devices finished (default 20)")
      ->option_text(std::string(value_name::count));
  add_duration(roll,
               "--wave-soak",
               ro->wave_soak,
               "Wait after a wave before the next",
               {.max = std::chrono::hours(24 * 7)},
               ctx);
  add_duration(roll,
               "--notified-grace",
               ro->notified_grace,
               "A wave is over when only never-reacting (NOTIFIED) devices are left for this long",
               {.max = std::chrono::hours(24 * 7)},
               ctx);
  add_duration(roll,
               "--poll-interval",
               ro->poll_interval,
               "Between task status polls",
               {.min = std::chrono::milliseconds(100), .max = std::chrono::hours(1)},
               ctx);
  roll->add_option("--journal", ro->journal, "The rollout's journal file (0600; must not exist)")
      ->option_text(std::string(value_name::file));
  add_deprecated_option(
      roll, "--state", "--journal", [ro](const std::string& v) { ro->journal = v; }, ctx);
  roll->add_option("--resume", ro->resume, "Continue the rollout journaled in this file")
      ->check(CLI::ExistingFile)
      ->option_text(std::string(value_name::file));
  roll->add_flag("--dry-run", ro->dry_run, "Print the wave plan; create nothing");
  add_exit_codes(roll,
                 {{0, "every targeted device is at the target version (or was already)"},
                  {1,
                   "the abort rule tripped (queued tasks canceled), or the rollout was "
                   "canceled"},
                  bad_input,
                  cloud_error,
                  {5,
                   "finished, but some devices failed or never reacted to the push "
                   "(offline past --notified-grace): they are not upgraded"},
                  {130, "interrupted: continue with --resume JOURNAL"}});
  roll->callback([&ctx, ro] { ctx.output->emit(value_or_throw(run_ota_rollout(*ro, ctx))); });

  auto st = std::make_shared<OtaStatusOptions>();
  auto* status = ota->add_subcommand(
      "status", "Task counts per status of a job or of every wave of a rollout journal");
  status->add_option("TARGET", st->target, "A JobId or a rollout journal file")
      ->required()
      ->type_name("");
  status->add_flag("--failures", st->failures, "List the failed tasks with their TaskDesc");
  status->add_flag("--watch", st->watch, "Poll until no task is open (a bar on a TTY)");
  add_duration(status,
               "--poll-interval",
               st->poll_interval,
               "Between task status polls",
               {.min = std::chrono::milliseconds(100), .max = std::chrono::hours(1)},
               ctx);
  add_exit_codes(status, {{0, "the counts were printed"}, bad_input, cloud_error, interrupted});
  status->callback([&ctx, st] { ctx.output->emit(value_or_throw(run_ota_status(*st, ctx))); });

  auto ca = std::make_shared<OtaCancelOptions>();
  auto* cancel = ota->add_subcommand(
      "cancel",
      "Cancel the scheduled, queued, notified and unconfirmed tasks of a job or of a rollout "
      "(which then stops)");
  cancel->add_option("TARGET", ca->target, "A JobId or a rollout journal file")
      ->required()
      ->type_name("");
  cancel->add_flag("--in-progress",
                   ca->in_progress,
                   "Also cancel running upgrades (the devices keep their old version)");
  add_exit_codes(cancel, {{0, "canceled"}, bad_input, cloud_error});
  cancel->callback([&ctx, ca] { ctx.output->emit(value_or_throw(run_ota_cancel(*ca, ctx))); });
}

} // namespace iot::commands
