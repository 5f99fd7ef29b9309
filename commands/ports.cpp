// SPDX-License-Identifier: MIT
#include "commands/ports.hpp"

#include "commands/common_options.hpp"
#include "serial/ports.hpp"

namespace iot::commands {
namespace {

core::Cell text_or_none(const std::string& text) {
  return text.empty() ? core::Cell{} : core::Cell{text};
}

} // namespace

Result<core::Table> run_ports(const PortsOptions& /*opts*/, Context& /*ctx*/) {
  auto ports = serial::list_ports();
  if (!ports) {
    return fail(ports.error().context("list serial ports"));
  }
  core::Table table;
  table.columns = {"port", "kind", "usb_id", "serial", "description", "module", "imei"};
  for (const auto& p : *ports) {
    table.add_row({p.path,
                   p.kind,
                   text_or_none(p.usb_vid_pid),
                   text_or_none(p.serial_number),
                   text_or_none(p.description),
                   text_or_none(p.module),
                   text_or_none(p.imei)});
  }
  return table;
}

void register_ports(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "ports", "List serial ports (USB VID:PID, serial number, description) and simulator ptys");
  cmd->footer("Simulated ports come from running 'iotfleet-sim modules' processes.");
  add_exit_codes(
      cmd,
      {{0, "the ports were listed (none is not an error)"}, {3, "ports could not be enumerated"}});
  auto opts = std::make_shared<PortsOptions>();
  cmd->callback([&ctx, opts] { ctx.output->emit(value_or_throw(run_ports(*opts, ctx))); });
}

} // namespace iot::commands
