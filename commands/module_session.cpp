// SPDX-License-Identifier: MIT
#include "commands/module_session.hpp"

#include "commands/config.hpp"
#include "core/validate.hpp"

namespace iot::commands {
namespace {

// Readings of identity and credentials must agree on two reads before they are
// reported: on a noisy line a garbled digit could otherwise show as a wrong IMEI or secret.
constexpr int k_max_reads = 6;

void attach_trace(serial::AtChannel& channel, const std::string& port, Context& ctx) {
  channel.set_trace([&ctx, port](std::string_view direction, std::string_view line) {
    ctx.output->info("trace " + port + " " + std::string(direction) + " " + std::string(line));
  });
}

Result<ModuleReading>
read_once(serial::ModuleDriver& driver, serial::Layout layout, ReadScope scope) {
  ModuleReading r;
  auto identity = IOT_TRY(scope == ReadScope::brief ? driver.identify_brief() : driver.identify());
  r.identity = std::move(identity);
  auto creds = IOT_TRY(driver.read_credentials(layout));
  r.credentials = std::move(creds);
  auto copy = IOT_TRY(driver.read_secret_copy(layout));
  r.secret_copy = std::move(copy);
  return r;
}

// Reads until two readings agree (a garbled reading never agrees with a clean one, and two
// garbled ones practically never agree with each other); re-syncs after a failed read.
} // namespace

Result<ModuleSession> open_module_port(const ModuleConnectOptions& opts, Context& ctx) {
  if (opts.port.empty()) {
    return fail(ErrorKind::usage, "--port is required (see 'iotfleet ports')");
  }
  ModuleSession s;
  auto port = IOT_TRY(ctx.seams.open_port(opts.port, serial::PortSettings{opts.baud}));
  s.port = std::move(port);
  s.channel = std::make_unique<serial::AtChannel>(*s.port);
  if (opts.trace) {
    attach_trace(*s.channel, opts.port, ctx);
  }
  return s;
}

Result<std::string> resolve_module_name(const ModuleConnectOptions& opts, Context& ctx) {
  if (opts.module && !opts.module->empty()) {
    return *opts.module;
  }
  auto settings = IOT_TRY(load_settings(ctx));
  return settings.value(cloud::key::module).value_or("auto");
}

Status attach_driver(ModuleSession& s,
                     const ModuleConnectOptions& opts,
                     const std::string& module,
                     Context& ctx,
                     bool warn_mismatch) {
  std::optional<std::filesystem::path> profile;
  if (opts.profile_file) {
    profile = *opts.profile_file;
  }
  if (warn_mismatch && module != "auto" && !profile) {
    // A forced driver that does not match what the module says it is reads the wrong places.
    if (auto detected = serial::detect_module(*s.channel); detected && *detected != module) {
      ctx.output->warn(opts.port + " answers like a " + *detected + " module, not " + module +
                       ": credentials may be read from the wrong place (use --module " + *detected +
                       " or auto)");
    }
  }
  auto driver = IOT_TRY_CTX(serial::make_driver(module, *s.channel, profile), opts.port);
  s.driver = std::move(driver);
  return {};
}

Result<ModuleSession>
open_session(const ModuleConnectOptions& opts, Context& ctx, bool sync, bool need_driver) {
  auto s = open_module_port(opts, ctx);
  if (!s) {
    return s;
  }
  if (sync) {
    IOT_TRY_CTX(s->channel->sync(), opts.port);
  }
  if (!need_driver) {
    return s;
  }
  auto module = IOT_TRY(resolve_module_name(opts, ctx));
  IOT_TRY(attach_driver(*s, opts, module, ctx, true));
  return s;
}

Result<ModuleReading>
read_stable(ModuleSession& s, serial::Layout layout, const std::string& port, ReadScope scope) {
  std::vector<ModuleReading> readings;
  std::optional<Error> last_error;
  for (int attempt = 0; attempt < k_max_reads; ++attempt) {
    auto reading = read_once(*s.driver, layout, scope);
    if (!reading) {
      // A refusal, a port failure or Ctrl-C is not cured by reading again.
      if (reading.error().kind == ErrorKind::usage || reading.error().kind == ErrorKind::serial ||
          reading.error().kind == ErrorKind::interrupted) {
        return fail(reading.error().context(port));
      }
      last_error = reading.error();
      IOT_TRY_CTX(s.channel->sync(), port);
      continue;
    }
    for (const auto& earlier : readings) {
      if (earlier.same_as(*reading)) {
        return std::move(*reading);
      }
    }
    readings.push_back(std::move(*reading));
  }
  if (readings.empty() && last_error) {
    return fail(last_error->context(port + ": no clean reading in " + std::to_string(k_max_reads) +
                                    " tries (noisy line?)"));
  }
  return fail(ErrorKind::module,
              port + ": no two of " + std::to_string(k_max_reads) +
                  " readings agreed (noisy line or loose cable?): nothing "
                  "reported");
}

std::string secret_copy_state(const ModuleReading& reading) {
  if (!reading.secret_copy) {
    return "";
  }
  if (reading.secret_copy->empty()) {
    return "no-copy";
  }
  const std::string stored = reading.credentials ? reading.credentials->device_secret : "";
  return *reading.secret_copy == stored ? "same" : "differs";
}

std::string imei_verdict(const std::string& imei) {
  switch (core::classify_imei(imei)) {
  case core::ImeiClass::valid:
    return "";
  case core::ImeiClass::placeholder:
    return "IMEI not written: " + imei +
           " is a factory placeholder; modules sharing it kick each other off Aliyun (\"kicked "
           "by the same device\") — write the label IMEI";
  case core::ImeiClass::bad_check_digit:
    return "IMEI " + imei + " fails the Luhn check: it was written wrongly — write the label IMEI";
  case core::ImeiClass::bad_length_or_chars:
    return "IMEI '" + imei + "' is not 15 digits: IMEI not written";
  }
  return "";
}

} // namespace iot::commands
