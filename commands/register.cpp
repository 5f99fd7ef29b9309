// SPDX-License-Identifier: MIT
#include "commands/register.hpp"

#include "cloud/device_sign.hpp"
#include "cloud/dynreg_client.hpp"
#include "commands/cloud_access.hpp"
#include "commands/config.hpp"
#include "commands/devices.hpp"
#include "commands/ledger_access.hpp"
#include "commands/record_file.hpp"
#include "commands/secret_input.hpp"
#include "core/csv.hpp"
#include "core/interrupt.hpp"
#include "core/parallel.hpp"
#include "core/text.hpp"
#include "core/validate.hpp"
#include "store/atomic_file.hpp"

#include <algorithm>
#include <mutex>
#include <set>

namespace iot::commands {
namespace {

std::string product_secret_ways() {
  return "give --product-secret-file FILE (or - for stdin), set IOTFLEET_PRODUCT_SECRET, or put "
         "product_secret_file in the iotfleet config; the secret is never taken from the command "
         "line. It is on the console's product page (一型一密 / dynamic registration)";
}

core::Cell secret_cell(const std::string& secret) {
  if (secret.empty()) {
    return std::monostate{};
  }
  return core::Secret{secret};
}

core::Cell text_or_none(const std::string& text) {
  if (text.empty()) {
    return std::monostate{};
  }
  return text;
}

core::Table device_table() {
  core::Table t;
  t.columns = {"product_key",
               "device_name",
               "result",
               "device_secret",
               "attempts",
               "code",
               "detail",
               "error"};
  return t;
}

std::vector<core::Cell> device_row(const DeviceRegistration& d) {
  return {d.product_key,
          d.device_name,
          std::string(to_string(d.outcome)),
          secret_cell(d.secret),
          static_cast<std::int64_t>(d.attempts),
          d.code == 0 ? core::Cell{} : core::Cell{static_cast<std::int64_t>(d.code)},
          text_or_none(d.detail),
          d.error ? core::Cell{d.error->message} : core::Cell{}};
}

} // namespace

std::string_view to_string(RegisterOutcome outcome) {
  switch (outcome) {
  case RegisterOutcome::registered:
    return "registered";
  case RegisterOutcome::skipped:
    return "skipped";
  case RegisterOutcome::failed:
    return "failed";
  case RegisterOutcome::in_doubt:
    return "in_doubt";
  }
  return "?";
}

// ---- Registrar ----

Registrar::Registrar(store::Ledger& ledger, std::string product_key)
    : m_ledger(ledger), m_product_key(std::move(product_key)) {}

Registrar::~Registrar() = default;

const std::string& Registrar::url() const {
  return m_client->url();
}

Result<std::unique_ptr<Registrar>>
Registrar::open(Context& ctx, const RegistrarOptions& options, store::Ledger& ledger) {
  auto settings = IOT_TRY(load_cloud_settings(ctx, {cloud::key::auth_endpoint}));
  auto pk = IOT_TRY(product_key_or_config(options.product_key, settings));
  const auto method = cloud::parse_sign_method(options.sign_method);
  if (!method) {
    return fail(ErrorKind::usage,
                "--sign-method " + options.sign_method +
                    ": use hmacsha256 (default), hmacsha1 or hmacmd5");
  }
  std::string secret;
  if (options.product_secret_file) {
    auto read = IOT_TRY(read_secret_input(*options.product_secret_file, "ProductSecret", ctx));
    secret = std::move(read);
  } else if (const auto* broken = settings.find(cloud::key::product_secret);
             broken && broken->problem) {
    return fail(*broken->problem);
  } else if (auto configured = settings.value(cloud::key::product_secret)) {
    secret = *configured;
    ctx.output->debug("ProductSecret from " + settings.find(cloud::key::product_secret)->source);
  } else {
    return fail(ErrorKind::usage, "no ProductSecret for " + pk + ": " + product_secret_ways());
  }
  if (auto ok = core::validate_product_secret(secret); !ok) {
    return fail(ErrorKind::usage, "the ProductSecret: " + ok.error().message);
  }
  const auto endpoint = settings.value(cloud::key::auth_endpoint);
  if (!endpoint) {
    return fail(ErrorKind::config, "no dynamic-registration endpoint: give --auth-endpoint URL");
  }
  auto http = IOT_TRY(open_http(ctx, settings, options.connections));
  cloud::DynregConfig config;
  config.auth_endpoint = *endpoint;
  config.product_key = pk;
  config.product_secret = std::move(secret);
  config.sign_method = *method;
  config.qps = options.qps;
  config.retry.max_attempts = options.max_attempts;
  std::unique_ptr<Registrar> r(new Registrar(ledger, pk));
  r->m_http = std::move(http);
  r->m_client = std::make_unique<cloud::DynamicRegisterClient>(*r->m_http, std::move(config));
  ctx.output->debug("dynamic registration at " + r->url() + " (" +
                    settings.find(cloud::key::auth_endpoint)->source + "), " +
                    std::string(cloud::to_string(*method)));
  return r;
}

DeviceRegistration
Registrar::register_device(const std::string& device_name, bool force, const store::Actor& actor) {
  DeviceRegistration d;
  d.product_key = m_product_key;
  d.device_name = device_name;
  const auto refuse = [&](ErrorKind kind, std::string message) {
    d.outcome = RegisterOutcome::failed;
    d.error = Error{kind, std::move(message)};
    return d;
  };
  if (auto ok = core::validate_device_name(device_name); !ok) {
    return refuse(ErrorKind::usage, "DeviceName " + device_name + ": " + ok.error().message);
  }
  const store::TripletKey key{m_product_key, device_name};
  auto history = m_ledger.registrations(key);
  auto found = m_ledger.find(device_name, m_product_key);
  if (!history || !found) {
    return refuse(ErrorKind::io, "ledger: " + (!history ? history.error() : found.error()).message);
  }
  // A pending row is a request whose answer nobody read: the cloud may hold a secret from it.
  // Any one counts, not only the newest row: a later request that was refused (failed) says
  // nothing about the earlier one. An answered registration supersedes every pending row
  // before it, so a pending row still here is newer than the last issued secret.
  const auto lost = std::find_if(history->rbegin(), history->rend(), [](const auto& r) {
    return r.status == store::RegistrationStatus::pending;
  });
  const bool lost_before = lost != history->rend();
  if (!found->empty()) {
    const auto& t = found->front();
    if (t.scheme != core::Scheme::device) {
      return refuse(ErrorKind::usage,
                    device_name + " is in the ledger as a ProductSecret row (--scheme product): "
                                  "it is not a registered device");
    }
    if (!lost_before && !force) {
      d.outcome = RegisterOutcome::skipped;
      d.secret = t.secret;
      d.detail = "already in the ledger (" + std::string(store::to_string(t.state)) +
                 (t.source.empty() ? "" : ", from " + t.source) + "); --force registers it again";
      return d;
    }
    if (t.state != store::TripletState::available) {
      const std::string where = std::string(store::to_string(t.state)) +
                                (t.imei.empty() ? "" : " to the module with IMEI " + t.imei);
      if (lost_before) {
        return refuse(ErrorKind::cloud,
                      "a registration of " + device_name + " on " +
                          core::iso8601_utc(lost->requested_at_ms) +
                          " was never answered, so the cloud may hold a newer secret than the "
                          "one " +
                          where +
                          " holds: check it with `iotfleet secrets compare`; to "
                          "register it again, `iotfleet pool release " +
                          device_name + " --force --reason …` first");
      }
      return refuse(ErrorKind::usage,
                    device_name + " is " + where +
                        ": a new secret would lock that module out — `iotfleet pool release " +
                        device_name + " --force --reason …` first if it must be registered again");
    }
  }

  auto pending = m_ledger.begin_registration(key, actor);
  if (!pending) {
    return refuse(ErrorKind::io,
                  "ledger: " + pending.error().message + " (nothing was sent to the cloud)");
  }
  auto answer = m_client->register_device(device_name);
  d.attempts = answer.attempts;
  d.code = answer.code;
  if (answer.ok()) {
    auto pool = m_ledger.record_registration(*pending, answer.device_secret, actor);
    if (!pool) {
      // Nobody holds the secret, so nothing can connect with it: registering again is safe.
      d.outcome = RegisterOutcome::in_doubt;
      d.error = Error{ErrorKind::io,
                      "the cloud issued a secret but the ledger could not record it (" +
                          pool.error().message + "); it is not used: run again to register " +
                          device_name + " anew"};
      return d;
    }
    if (*pool == store::PoolUpdate::busy) {
      return refuse(ErrorKind::cloud,
                    device_name + " was claimed by a station while it was being registered: the "
                                  "new secret is recorded (`iotfleet pool log`) but the module "
                                  "gets the older one — release and burn it again");
    }
    d.outcome = RegisterOutcome::registered;
    d.secret = std::move(answer.device_secret);
    d.detail = *pool == store::PoolUpdate::added
                   ? "added to the pool"
                   : "replaces the pool's older secret (recorded as superseded)";
    if (lost_before) {
      d.detail += "; an earlier registration's answer had been lost";
    }
    return d;
  }
  if (lost_before && answer.code == 6289 && !found->empty()) {
    // The device connected, so with the cloud's current secret, which nobody but this ledger
    // ever read: the earlier request whose answer was lost was refused too. Its pool row stands.
    d.outcome = RegisterOutcome::skipped;
    d.secret = found->front().secret;
    d.detail = "already active with the ledger's secret; the earlier registration whose answer "
               "was lost changed nothing";
    d.error.reset();
    if (auto ok = m_ledger.fail_registration(*pending, actor, "code 6289: already active"); !ok) {
      d.detail += " (the ledger could not record this: " + ok.error().message + ")";
    }
    for (const auto& r : *history) {
      if (r.status == store::RegistrationStatus::pending) {
        (void)m_ledger.fail_registration(r, actor, "refused: the device is active (6289)");
      }
    }
    return d;
  }
  d.error = std::move(answer.error);
  if (answer.answer_lost) {
    d.outcome = RegisterOutcome::in_doubt;
    d.error->message += "; an answer was lost, so the cloud may hold a secret nobody has: run "
                        "again to register " +
                        device_name + " anew";
    return d;
  }
  d.outcome = RegisterOutcome::failed;
  if (auto ok = m_ledger.fail_registration(*pending, actor, d.error->message); !ok) {
    d.error->message +=
        " (and the ledger could not record the refusal: " + ok.error().message + ")";
  }
  return d;
}

// ---- iotfleet dynreg ----

Result<RegisterReport> run_register(const RegisterOptions& opts, Context& ctx) {
  const auto names = IOT_TRY(resolve_device_names(opts.devices, {}, ctx));
  // Every local precondition before the first request: the ledger and the -O file.
  auto handle = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::create));
  std::optional<RecordFile> out;
  if (opts.out_file) {
    out = IOT_TRY(RecordFile::create(
        *opts.out_file, opts.format, {"ProductKey", "DeviceName", "DeviceSecret"}));
  }
  RegistrarOptions registrar_options = opts.registrar;
  registrar_options.connections = std::max<std::size_t>(opts.concurrency, 1);
  auto registrar = IOT_TRY(Registrar::open(ctx, registrar_options, *handle.ledger));

  RegisterReport report;
  report.devices = device_table();
  report.streamed = ctx.global.output == core::OutputFormat::ndjson;
  std::vector<DeviceRegistration> results(names.size());
  std::mutex mutex;
  auto progress = ctx.output->progress("dynreg");
  progress->set_total(names.size());
  // Interrupted: the names after `started` were never sent.
  const std::size_t started =
      core::parallel_for(names.size(), opts.concurrency, [&](std::size_t i) {
        auto d = registrar->register_device(names[i], opts.force, handle.actor);
        const std::lock_guard lock(mutex);
        if (report.streamed) {
          core::Table one = device_table();
          one.add_row(device_row(d));
          ctx.output->emit(one);
        }
        results[i] = std::move(d);
        progress->advance();
      });
  progress->finish();

  std::map<RegisterOutcome, std::size_t> counts;
  std::vector<DeviceRegistration> finished;
  const DeviceRegistration* first_problem = nullptr;
  for (std::size_t i = 0; i < started; ++i) {
    ++counts[results[i].outcome];
    if (!report.streamed) {
      report.devices.add_row(device_row(results[i]));
    }
    if (!first_problem && (results[i].outcome == RegisterOutcome::failed ||
                           results[i].outcome == RegisterOutcome::in_doubt)) {
      first_problem = &results[i];
    }
    finished.push_back(results[i]);
  }
  const std::size_t not_started = names.size() - finished.size();
  std::string summary = "registered " + std::to_string(counts[RegisterOutcome::registered]) +
                        ", skipped " + std::to_string(counts[RegisterOutcome::skipped]) +
                        ", failed " + std::to_string(counts[RegisterOutcome::failed]) +
                        ", in doubt " + std::to_string(counts[RegisterOutcome::in_doubt]);
  if (not_started > 0) {
    summary += ", not started " + std::to_string(not_started);
  }
  ctx.output->info(summary + " (ledger " + handle.path + ")");
  if (counts[RegisterOutcome::in_doubt] > 0) {
    ctx.output->warn(std::to_string(counts[RegisterOutcome::in_doubt]) +
                     " registrations are in doubt (no answer was read): run the same command "
                     "again before these devices are used; it registers them anew");
  }
  if (out) {
    const auto saved = [&]() -> Status {
      for (const auto& d : finished) {
        if (!d.secret.empty()) {
          IOT_TRY(out->write({d.product_key, d.device_name, d.secret}));
        }
      }
      return out->commit();
    }();
    if (!saved) {
      // The secrets are safe in the ledger (written ahead): say where to get them.
      return fail(saved.error().context(
          "the issued secrets are in the ledger " + handle.path + " but " + *opts.out_file +
          " was not written: `iotfleet pool export --state available --product-key " +
          registrar->product_key() + " -O FILE` writes them"));
    }
    ctx.output->info("triplets written to " + *opts.out_file + " (0600)");
  }
  if (not_started > 0) {
    report.failure = Error{ErrorKind::interrupted,
                           "interrupted: " + std::to_string(not_started) +
                               " devices were not started; run the same command again"};
  } else if (first_problem && names.size() == 1) {
    report.failure = first_problem->error;
  } else if (first_problem) {
    report.failure =
        Error{ErrorKind::partial,
              std::to_string(counts[RegisterOutcome::failed] + counts[RegisterOutcome::in_doubt]) +
                  " of " + std::to_string(names.size()) +
                  " devices were not registered; first: " + first_problem->device_name + ": " +
                  (first_problem->error ? first_problem->error->message : std::string())};
  }
  return report;
}

void add_registrar_options(CLI::App* cmd, RegistrarOptions& registrar, bool for_provision) {
  const std::string prefix = for_provision ? "--register: " : "";
  cmd->add_option("--product-secret-file",
                  registrar.product_secret_file,
                  prefix + "File holding the ProductSecret, or - for stdin (default: "
                           "IOTFLEET_PRODUCT_SECRET, the config's product_secret_file); never the "
                           "secret itself")
      ->option_text(std::string(value_name::file_or_stdin));
  cmd->add_option("--sign-method",
                  registrar.sign_method,
                  prefix + "How requests are signed: hmacsha256 (default), hmacsha1 or hmacmd5")
      ->check(CLI::IsMember({"hmacsha256", "hmacsha1", "hmacmd5"}, CLI::ignore_case))
      ->option_text("hmacsha256|hmacsha1|hmacmd5");
}

void register_register(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<RegisterOptions>();
  auto* cmd = app.add_subcommand(
      "dynreg",
      "One-type-one-secret dynamic registration: the device's DeviceSecret, asked for with the "
      "ProductSecret and written to the ledger first (`register` is its old name; "
      "`devices register` creates devices with the OpenAPI instead)");
  cmd->alias("register");
  add_product_key(cmd, opts->registrar.product_key);
  add_device_names(cmd, opts->devices, {DeviceArity::many, true, true, "DeviceName"});
  add_registrar_options(cmd, opts->registrar, false);
  cmd->add_flag("--force",
                opts->force,
                "Register again devices the ledger already has (before their first connect; "
                "the new secret wins, the old one is kept as superseded)");
  add_concurrency(cmd, opts->concurrency, ctx);
  cmd->add_option("--qps", opts->registrar.qps, "Requests per second at most (default 20)")
      ->check(CLI::Range(0.1, 1000.0))
      ->option_text("Q");
  cmd->add_option_function<int>(
         "--retries",
         [opts](int n) { opts->registrar.max_attempts = n + 1; },
         "Extra attempts per device after a 5xx, throttling or lost answer (default 5)")
      ->check(CLI::Range(0, 20))
      ->option_text(std::string(value_name::count));
  add_out_file(
      cmd, opts->out_file, "ProductKey,DeviceName,DeviceSecret of every device holding a secret");
  add_file_format(cmd, opts->format);
  cmd->footer(
      "Which one you want: `dynreg` is for one-type-one-secret products (一型一密): the devices "
      "exist in the cloud already (`devices register` / `devices batch-register`) and each "
      "DeviceSecret is asked for with the ProductSecret, as the device's own firmware would, "
      "before its first connect. `devices register` creates one-device-one-secret devices with "
      "the OpenAPI and AccessKey.\nPOST <auth endpoint>/auth/register/device (--auth-endpoint; "
      "default --endpoint if given, else https://iot-auth.<region>.aliyuncs.com). Each device "
      "gets a pending row in the ledger before its request and its secret in the same "
      "transaction that adds it to the pool, so a crash never leaves a secret the ledger does "
      "not know about unnoticed: a device whose answer was lost is 'in_doubt' and is registered "
      "anew on the next run. Devices already in the ledger are skipped unless --force.");
  add_exit_codes(cmd,
                 {{0, "every device registered or skipped"},
                  {2, "bad options or names, the ProductSecret missing (nothing sent)"},
                  {4, "one device: refused by the platform or not reachable"},
                  {5, "some devices failed or are in doubt (one device: its own code)"},
                  {130, "interrupted (requests in flight are recorded first)"}});
  cmd->callback([&ctx, opts] {
    auto report = value_or_throw(run_register(*opts, ctx));
    if (!report.streamed) {
      ctx.output->emit(report.devices);
    }
    if (report.failure) {
      throw CommandFailure(*report.failure);
    }
  });
}

} // namespace iot::commands
