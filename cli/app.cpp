// SPDX-License-Identifier: MIT
#include "cli/app.hpp"

#include "cli/board.hpp"
#include "cli/exit_codes.hpp"
#include "cli/progress.hpp"
#include "cli/render.hpp"
#include "commands/config.hpp"
#include "commands/creds.hpp"
#include "commands/devices.hpp"
#include "commands/diagnose.hpp"
#include "commands/module.hpp"
#include "commands/ota.hpp"
#include "commands/pool.hpp"
#include "commands/ports.hpp"
#include "commands/provision.hpp"
#include "commands/register.hpp"
#include "commands/secrets.hpp"
#include "core/interrupt.hpp"

#include <CLI/CLI.hpp>

#include <iostream>
#include <map>

namespace iot::cli {
namespace {

class StreamOutput final : public commands::Output {
public:
  StreamOutput(const commands::GlobalOptions& global, const AppStreams& streams, bool color)
      : m_global(global), m_streams(streams), m_color(color) {}

  void emit(const core::Table& table) override {
    render(table, RenderOptions{m_global.output, m_global.show_secrets, m_color}, m_streams.out);
  }
  void warn(std::string_view message) override {
    m_streams.err << "iotfleet: warning: " << message << '\n';
  }
  void info(std::string_view message) override {
    if (!m_global.quiet) {
      m_streams.err << message << '\n';
    }
  }
  void debug(std::string_view message) override {
    if (m_global.verbosity > 0 && !m_global.quiet) {
      m_streams.err << "debug: " << message << '\n';
    }
  }
  std::unique_ptr<core::ProgressSink> progress(std::string_view label) override {
    if (m_global.quiet) {
      return std::make_unique<core::NullProgress>();
    }
    return std::make_unique<TerminalProgress>(
        std::string(label), m_streams.err, m_streams.err_is_tty);
  }
  std::unique_ptr<core::BoardSink> board(std::vector<std::string> columns,
                                         std::size_t rows) override {
    if (m_global.quiet || !m_streams.err_is_tty) {
      return std::make_unique<core::NullBoard>();
    }
    return std::make_unique<TerminalBoard>(std::move(columns), rows, m_streams.err, true);
  }

private:
  const commands::GlobalOptions& m_global;
  const AppStreams& m_streams;
  bool m_color;
};

std::string lower(std::string text) {
  for (auto& c : text) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text;
}

void add_global_options(CLI::App& app, commands::GlobalOptions& g) {
  const std::map<std::string, core::OutputFormat> formats = {
      {"table", core::OutputFormat::table},
      {"json", core::OutputFormat::json},
      {"ndjson", core::OutputFormat::ndjson},
      {"csv", core::OutputFormat::csv},
  };
  app.add_option_function<std::string>(
         "-o,--output",
         [&g, formats](const std::string& name) { g.output = formats.at(lower(name)); },
         "Output format: table (default), json, ndjson or csv")
      ->check(CLI::IsMember({"table", "json", "ndjson", "csv"}, CLI::ignore_case))
      ->option_text("table|json|ndjson|csv");
  auto& s = g.settings;
  app.add_option("--config",
                 s.config_file,
                 "iotfleet config file (default "
                 "$XDG_CONFIG_HOME/iotfleet/config.json)");
  app.add_option(
      "--profile", s.profile, "Profile in ~/.aliyun/config.json and the iotfleet config");
  app.add_option("--region", s.region, "Alibaba Cloud region id, e.g. cn-shanghai");
  app.add_option("--endpoint", s.endpoint, "IoT OpenAPI endpoint URL (e.g. an emulator)");
  app.add_option("--auth-endpoint",
                 s.auth_endpoint,
                 "Dynamic-registration endpoint URL (default: --endpoint when given, else "
                 "https://iot-auth.<region>.aliyuncs.com)");
  app.add_option(
      "--ca-file", s.ca_file, "Extra CA certificate (PEM) to trust, e.g. the emulator's");
  app.add_option("--access-key-id", s.access_key_id, "AccessKeyId (with --access-key-secret-file)");
  app.add_option("--access-key-secret-file",
                 s.access_key_secret_file,
                 "File holding the AccessKeySecret, or - for stdin (never the secret itself)");
  app.add_option("--security-token-file",
                 s.security_token_file,
                 "File holding an STS security token, or - for stdin");
  app.add_option("--ledger", s.ledger, "Factory ledger (SQLite) path");
  app.add_flag("-v,--verbose", g.verbosity, "More detail on stderr (repeatable)");
  app.add_flag("-q,--quiet", g.quiet, "Only errors and warnings on stderr; no progress");
  app.add_flag("--show-secrets", g.show_secrets, "Print secrets in full instead of abcd…wxyz");
  app.add_flag("--no-color", g.no_color, "No colour (also: NO_COLOR set in the environment)");
}

} // namespace

int run(int argc, const char* const* argv, const AppStreams& streams, cloud::Environment env) {
  commands::Context ctx;
  ctx.env = std::move(env);

  CLI::App app{"iotfleet: burn, check, register, diagnose and update IoT modules on Alibaba "
               "Cloud IoT Platform",
               "iotfleet"};
  app.set_version_flag("--version", std::string("iotfleet ") + IOTFLEET_VERSION);
  app.footer(std::string(exit_code_help()) +
             "\nData goes to stdout, messages and progress to stderr. Secrets are masked unless "
             "--show-secrets.");
  app.require_subcommand(0, 1);
  app.fallthrough();
  add_global_options(app, ctx.global);

  // Every command is registered here, in the order --help lists them.
  commands::register_ports(app, ctx);
  commands::register_module(app, ctx);
  commands::register_pool(app, ctx);
  commands::register_provision(app, ctx);
  commands::register_secrets(app, ctx);
  commands::register_devices(app, ctx);
  commands::register_register(app, ctx);
  commands::register_creds(app, ctx);
  commands::register_diagnose(app, ctx);
  commands::register_ota(app, ctx);
  commands::register_config(app, ctx);

  const bool color = streams.out_is_tty && !ctx.global.no_color && !ctx.env.getenv("NO_COLOR");
  StreamOutput output(ctx.global, streams, color);
  ctx.output = &output;

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, streams.out, streams.err);
    return code == 0 ? k_exit_ok : k_exit_usage;
  } catch (const commands::CommandFailure& e) {
    streams.err << "iotfleet: error: " << e.error().message << '\n';
    return exit_code_for(e.error().kind);
  }
  // A command group given without one of its commands ("iotfleet", "iotfleet config"): its help,
  // on stderr, and a usage error.
  CLI::App* selected = &app;
  while (!selected->get_subcommands().empty()) {
    selected = selected->get_subcommands().front();
  }
  if (!selected->get_subcommands({}).empty()) {
    std::string names;
    for (const auto* sub : selected->get_subcommands({})) {
      names += names.empty() ? "" : ", ";
      names += sub->get_name();
    }
    streams.err << selected->help() << "\niotfleet: error: "
                << (selected == &app ? std::string("a command is required")
                                     : "'" + selected->get_name() + "' needs a command")
                << ": " << names << '\n';
    return k_exit_usage;
  }
  if (core::interrupt_requested()) {
    return k_exit_interrupted;
  }
  return k_exit_ok;
}

} // namespace iot::cli
