// SPDX-License-Identifier: MIT
#include "commands/module.hpp"

#include "commands/common_options.hpp"
#include "commands/config.hpp"
#include "commands/module_session.hpp"
#include "core/mask.hpp"
#include "core/text.hpp"
#include "core/validate.hpp"
#include "serial/driver.hpp"
#include "serial/profile.hpp"

#include <algorithm>
#include <cctype>

namespace iot::commands {
namespace {

constexpr int k_weak_signal_dbm = -100;

core::Cell text_or_none(const std::string& text) {
  return text.empty() ? core::Cell{} : core::Cell{text};
}

std::string imei_check(const std::string& imei) {
  if (imei.empty()) {
    return "";
  }
  switch (core::classify_imei(imei)) {
  case core::ImeiClass::valid:
    return "valid";
  case core::ImeiClass::placeholder:
    return "placeholder";
  case core::ImeiClass::bad_check_digit:
    return "bad check digit";
  case core::ImeiClass::bad_length_or_chars:
    return "invalid";
  }
  return "";
}

std::vector<std::string> verdicts(const ModuleReading& r, const serial::Health& h, bool cellular) {
  std::vector<std::string> out;
  if (cellular) {
    if (auto v = imei_verdict(r.identity.imei); !v.empty()) {
      out.push_back(v);
    }
  }
  if (!r.credentials) {
    out.push_back("no credentials stored");
  }
  if (secret_copy_state(r) == "differs") {
    out.push_back("the stored DeviceSecret differs from its copy: the SN or the copy changed since "
                  "the last successful connection — secrets compare with a snapshot or "
                  "--with-ledger, or creds probe --port, says which");
  }
  if (cellular) {
    if (!h.sim.empty() && h.sim != "READY") {
      out.push_back("SIM not ready (" + h.sim + ")");
    }
    if (h.reg_stat && *h.reg_stat != 1 && *h.reg_stat != 5) {
      out.push_back("not registered on the network (" + h.reg_status + ")");
    }
    if (h.rssi_dbm && *h.rssi_dbm < k_weak_signal_dbm) {
      out.push_back("weak signal (" + std::to_string(*h.rssi_dbm) + " dBm)");
    } else if (h.csq_rssi && *h.csq_rssi == 99) {
      out.push_back("no signal reading (CSQ 99)");
    }
    if (h.attached && !*h.attached) {
      out.push_back("not attached to packet data (AT+CGATT? = 0)");
    }
  }
  return out;
}

// Whether `profile` reads a secret with `wanted` (upper case): a secret identity query, a
// credential read-back or the read of a secret copy.
bool reads_secret(const serial::ModuleProfile& profile, const std::string& wanted) {
  const auto same = [&](const serial::ProfileQuery& q) {
    return q.secret && core::to_upper(q.command) == wanted;
  };
  for (const auto& [field, queries] : profile.identity) {
    if (std::ranges::any_of(queries, same)) {
      return true;
    }
  }
  for (const auto& layout : profile.layouts) {
    for (const auto& slot : layout.slots) {
      if (same(slot.read)) {
        return true;
      }
    }
    if (layout.secret_copy && same(layout.secret_copy->read)) {
      return true;
    }
  }
  return false;
}

// Queries whose answers hold secrets in some built-in profile (AT+WISN? on Luat, the aliauth
// read-back on Quectel, …) or in the --module-profile given (e.g. the read of its secret copy):
// `module at` masks their answers unless --show-secrets.
Result<bool> is_secret_query(std::string_view command,
                             const std::optional<std::string>& profile_file) {
  const std::string wanted = core::to_upper(command);
  for (const auto& name : serial::builtin_profile_names()) {
    auto profile = serial::builtin_profile(name);
    if (profile && reads_secret(*profile, wanted)) {
      return true;
    }
  }
  if (profile_file) {
    auto profile = IOT_TRY(serial::load_profile(*profile_file));
    return reads_secret(profile, wanted);
  }
  return false;
}

} // namespace

Result<core::Table> run_module_info(const ModuleInfoOptions& opts, Context& ctx) {
  auto session = IOT_TRY(open_session(opts.connect, ctx, true, true));
  auto& driver = *session.driver;
  serial::Layout layout = driver.default_layout();
  if (opts.layout) {
    auto parsed = IOT_TRY(serial::parse_layout(*opts.layout));
    layout = parsed;
  }
  auto reading = IOT_TRY(read_stable(session, layout, opts.connect.port));
  auto health = IOT_TRY_CTX(driver.health(), opts.connect.port);
  const bool cellular = reading.identity.mac.empty() || !reading.identity.imei.empty();
  const auto& id = reading.identity;
  const auto& h = health;
  const serial::Credentials creds = reading.credentials.value_or(serial::Credentials{});

  core::Table t;
  t.single = true;
  t.columns = {"port",         "module",
               "manufacturer", "model",
               "firmware",     "imei",
               "imei_check",   "mac",
               "iccid",        "sn",
               "layout",       "product_key",
               "device_name",  "device_secret",
               "secret_copy",  "secret_copy_state",
               "sim",          "csq",
               "signal_dbm",   "registration",
               "attached",     "operator",
               "verdicts"};
  const auto optional_int = [](const std::optional<int>& v) {
    return v ? core::Cell(static_cast<std::int64_t>(*v)) : core::Cell{};
  };
  const auto secret_or_none = [](const std::string& v) {
    return v.empty() ? core::Cell{} : core::Cell(core::Secret{v});
  };
  const auto found = verdicts(reading, h, cellular);
  t.add_row({opts.connect.port,
             std::string(driver.name()),
             text_or_none(id.manufacturer),
             text_or_none(id.model),
             text_or_none(id.firmware),
             text_or_none(id.imei),
             text_or_none(imei_check(id.imei)),
             text_or_none(id.mac),
             text_or_none(id.iccid),
             id.sn ? core::Cell(core::Secret{*id.sn}) : core::Cell{},
             std::string(serial::to_string(layout)),
             text_or_none(creds.product_key),
             text_or_none(creds.device_name),
             secret_or_none(creds.device_secret),
             secret_or_none(reading.secret_copy.value_or("")),
             text_or_none(secret_copy_state(reading)),
             text_or_none(h.sim),
             optional_int(h.csq_rssi),
             optional_int(h.rssi_dbm),
             text_or_none(h.reg_status),
             h.attached ? core::Cell(*h.attached) : core::Cell{},
             text_or_none(h.operator_name),
             core::TextList::of(found.empty() ? std::vector<std::string>{"ok"} : found)});
  for (const auto& note : h.notes) {
    ctx.output->debug(opts.connect.port + ": " + note);
  }
  return t;
}

Result<ModuleAtReport> run_module_at(const ModuleAtOptions& opts, Context& ctx) {
  IOT_TRY(serial::check_no_control_bytes(opts.command, "AT command"));
  std::string cmd(core::trim(opts.command));
  if (!core::to_upper(cmd).starts_with("AT")) {
    return fail(ErrorKind::usage, "'" + cmd + "' is not an AT command: it must start with AT");
  }
  const bool secret = IOT_TRY(is_secret_query(cmd, opts.connect.profile_file));
  auto session = IOT_TRY(open_session(opts.connect, ctx, !opts.no_sync, false));
  serial::CommandOptions co;
  co.secret_response = secret;
  auto response = IOT_TRY_CTX(session.channel->command(cmd, opts.timeout, co), opts.connect.port);
  ModuleAtReport report;
  report.ok = response.ok();
  report.final_line = response.final_line;
  report.table.columns = {"type", "line"};
  for (const auto& urc : response.urcs) {
    report.table.add_row({std::string("urc"), urc});
  }
  for (const auto& line : response.lines) {
    // An answer no profile names as secret may still hold one (a copy of the SN elsewhere in
    // NVM, a vendor's own command): what looks like a credential is masked too.
    const auto masked =
        ctx.global.show_secrets ? line : core::mask_all(line, core::secret_like_tokens(line));
    report.table.add_row(
        {std::string("info"), secret ? core::Cell(core::Secret{line}) : core::Cell(masked)});
  }
  report.table.add_row({std::string("final"), response.final_line});
  return report;
}

void register_module(CLI::App& app, Context& ctx) {
  auto* module = app.add_subcommand("module",
                                    "One module on a serial port: identity, "
                                    "credentials, health, raw AT");
  module->require_subcommand(0, 1);

  auto info_opts = std::make_shared<ModuleInfoOptions>();
  auto* info = module->add_subcommand(
      "info", "Identity, stored credentials (masked), link health and verdicts");
  add_connection_options(info, info_opts->connect, &info_opts->layout, PortUse::one);
  info->footer(
      "Verdicts: IMEI placeholder / invalid (IMEI not written), no credentials stored, the\n"
      "DeviceSecret differs from its copy, SIM not ready, not registered, weak signal\n"
      "(< -100 dBm), not attached.\n"
      "secret_copy, secret_copy_state: only with a --module-profile whose layout declares a\n"
      "secret_copy, the DeviceSecret the device script keeps in NVM after each successful\n"
      "connection (seed FAQ §3.2, docs/module-profiles.md). The copy is masked unless\n"
      "--show-secrets; the state is same, differs (the SN or the copy changed since the last\n"
      "successful connection: secrets compare or creds probe --port says which) or no-copy\n"
      "(none stored: not connected since the script was installed).");
  add_exit_codes(info,
                 {{0, "the module was read (verdicts may still name problems)"},
                  {2, "bad options"},
                  {3, "the port could not be opened, or no two readings agreed"},
                  {130, "interrupted"}});
  info->callback(
      [&ctx, info_opts] { ctx.output->emit(value_or_throw(run_module_info(*info_opts, ctx))); });

  auto at_opts = std::make_shared<ModuleAtOptions>();
  auto* at = module->add_subcommand("at", "Send one AT command and print the response");
  add_connection_options(at, at_opts->connect, nullptr, PortUse::one);
  at->add_option("command", at_opts->command, "The command, e.g. 'AT+CSQ'")->required();
  add_duration(at,
               "--timeout",
               at_opts->timeout,
               "How long to wait for the final result",
               {.bare_unit = std::chrono::milliseconds(1),
                .min = std::chrono::milliseconds(1),
                .max = std::chrono::minutes(10)},
               ctx);
  at->add_flag("--no-sync",
               at_opts->no_sync,
               "Send the command as is: no AT/ATE0/AT+CMEE=2 handshake first");
  at->footer("Answers that hold secrets (AT+WISN?, the aliauth read-back, …, and the secret "
             "reads of a --module-profile) are masked unless --show-secrets; in any other "
             "answer, what looks like a credential (16-64 letters and digits, with both) is.");
  add_exit_codes(at,
                 {{0, "the module answered OK"},
                  {2, "bad options, or a command with a control byte (nothing was sent)"},
                  {3, "ERROR / +CME ERROR, no final result in time, or a port error"},
                  {130, "interrupted"}});
  at->callback([&ctx, at_opts] {
    auto report = value_or_throw(run_module_at(*at_opts, ctx));
    ctx.output->emit(report.table);
    if (!report.ok) {
      throw CommandFailure(
          Error{ErrorKind::module, at_opts->command + " answered " + report.final_line});
    }
  });
}

} // namespace iot::commands
