// SPDX-License-Identifier: MIT
// creds enrollment-key: the device-key scheme's key of each device (docs/enrollment.md).
#include "cloud/enrollment.hpp"
#include "commands/common_options.hpp"
#include "commands/creds.hpp"
#include "commands/record_file.hpp"
#include "commands/secret_input.hpp"

namespace iot::commands {

Result<core::Table> run_creds_enrollment_key(const CredsEnrollmentKeyOptions& opts, Context& ctx) {
  const auto names = IOT_TRY(resolve_device_names(opts.devices, {}, ctx));
  const auto group_secret = IOT_TRY(read_group_secret(opts.group_secret_file, ctx));
  core::Table t;
  if (opts.out_file) {
    auto file =
        IOT_TRY(RecordFile::create(*opts.out_file, opts.format, {"device_name", "enrollment_key"}));
    for (const auto& name : names) {
      IOT_TRY(file.write({name, cloud::enrollment_device_key(group_secret, name)}));
    }
    IOT_TRY(file.commit());
    t.columns = {"file", "format", "keys"};
    t.add_row({*opts.out_file, opts.format, static_cast<std::int64_t>(names.size())});
    return t;
  }
  t.columns = {"device_name", "enrollment_key"};
  for (const auto& name : names) {
    t.add_row({name, core::Cell(core::Secret{cloud::enrollment_device_key(group_secret, name)})});
  }
  return t;
}

void register_creds_enrollment_key(CLI::App* creds, Context& ctx) {
  auto opts = std::make_shared<CredsEnrollmentKeyOptions>();
  auto* cmd = creds->add_subcommand(
      "enrollment-key",
      "Each device's enrollment key of the device-key scheme, derived from a group secret: what "
      "a station burns in place of the DeviceSecret when devices fetch their secret at first boot");
  add_device_names(cmd, opts->devices, {});
  cmd->add_option("--group-secret-file",
                  opts->group_secret_file,
                  "File holding the group secret (at least 16 characters), or - for stdin")
      ->required()
      ->option_text(std::string(value_name::file_or_stdin) + " REQUIRED");
  add_out_file(cmd, opts->out_file, "the keys in full");
  add_file_format(cmd, opts->format);
  cmd->footer("Key = the first 32 hex digits of HMAC-SHA256(group secret, DeviceName): one "
              "device's key opens one device, and the group secret never leaves the server and "
              "the stations (docs/enrollment.md). Keys are masked unless --show-secrets or -O.");
  add_exit_codes(cmd,
                 {{0, "the keys were computed (or written)"},
                  {2, "a bad DeviceName, an unreadable or short group secret"},
                  {1, "the -O file could not be written"}});
  cmd->callback(
      [&ctx, opts] { ctx.output->emit(value_or_throw(run_creds_enrollment_key(*opts, ctx))); });
}

} // namespace iot::commands
