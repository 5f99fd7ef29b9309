// SPDX-License-Identifier: MIT
#include "cli/app.hpp"

#include "cli/board.hpp"
#include "cli/exit_codes.hpp"
#include "cli/progress.hpp"
#include "cli/render.hpp"
#include "commands/common_options.hpp"
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
#include "commands/serve.hpp"
#include "core/interrupt.hpp"
#include "core/text.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <map>
#include <optional>

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

void add_global_options(CLI::App& app, commands::GlobalOptions& g) {
  const std::map<std::string, core::OutputFormat> formats = {
      {"table", core::OutputFormat::table},
      {"json", core::OutputFormat::json},
      {"ndjson", core::OutputFormat::ndjson},
      {"csv", core::OutputFormat::csv},
  };
  app.add_option_function<std::string>(
         "-o,--output",
         [&g, formats](const std::string& name) { g.output = formats.at(core::to_lower(name)); },
         "Output format: table (default), json, ndjson or csv")
      ->check(CLI::IsMember({"table", "json", "ndjson", "csv"}, CLI::ignore_case))
      ->option_text("table|json|ndjson|csv");
  auto& s = g.settings;
  app.add_option("--config",
                 s.config_file,
                 "iotfleet config file (default "
                 "$XDG_CONFIG_HOME/iotfleet/config.json)")
      ->option_text("FILE");
  app.add_option("--profile", s.profile, "Profile in ~/.aliyun/config.json and the iotfleet config")
      ->option_text("NAME");
  app.add_option("--region", s.region, "Alibaba Cloud region id, e.g. cn-shanghai")
      ->option_text("ID");
  app.add_option("--endpoint", s.endpoint, "IoT OpenAPI endpoint URL (e.g. an emulator)")
      ->option_text("URL");
  app.add_option("--auth-endpoint",
                 s.auth_endpoint,
                 "Dynamic-registration endpoint URL (default: --endpoint when given, else "
                 "https://iot-auth.<region>.aliyuncs.com)")
      ->option_text("URL");
  app.add_option("--ca-file", s.ca_file, "Extra CA certificate (PEM) to trust, e.g. the emulator's")
      ->option_text("FILE");
  app.add_option("--access-key-id", s.access_key_id, "AccessKeyId (with --access-key-secret-file)")
      ->option_text("ID");
  app.add_option("--access-key-secret-file",
                 s.access_key_secret_file,
                 "File holding the AccessKeySecret, or - for stdin (never the secret itself)")
      ->option_text("FILE|-");
  app.add_option("--security-token-file",
                 s.security_token_file,
                 "File holding an STS security token, or - for stdin")
      ->option_text("FILE|-");
  app.add_option("--ledger",
                 s.ledger,
                 "The factory ledger: an SQLite file for one station (default "
                 "$XDG_DATA_HOME/iotfleet/ledger.db) or postgresql://USER@HOST[:PORT]/DB, one "
                 "shared by a line (password in ~/.pgpass or PGPASSWORD, never in the URL)")
      ->option_text("FILE|URL");
  app.add_flag("-v,--verbose", g.verbosity, "More detail on stderr (repeatable)");
  app.add_flag("-q,--quiet", g.quiet, "Only errors and warnings on stderr; no progress");
  app.add_flag("--show-secrets", g.show_secrets, "Print secrets in full instead of abcd…wxyz");
  app.add_flag("--no-color", g.no_color, "No colour (also: NO_COLOR set in the environment)");
}

// Levenshtein distance, for "did you mean".
std::size_t distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The closest of `names` to `word`, when it is close enough to be a typo.
std::optional<std::string> closest(std::string_view word, const std::vector<std::string>& names) {
  std::optional<std::string> best;
  std::size_t best_distance = 3; // at most two edits
  for (const auto& n : names) {
    const std::size_t d = n.starts_with(word) && word.size() >= 2 ? 1 : distance(word, n);
    if (d < best_distance) {
      best_distance = d;
      best = n;
    }
  }
  return best;
}

// The deepest command the parse reached and its full name ("iotfleet pool").
std::pair<const CLI::App*, std::string> selected_command(const CLI::App& app) {
  const CLI::App* selected = &app;
  std::string path = app.get_name();
  for (;;) {
    const auto subs = selected->get_subcommands();
    if (subs.empty()) {
      return {selected, path};
    }
    selected = subs.front();
    path += " " + selected->get_name();
  }
}

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const auto* sub : app.get_subcommands({})) {
    names.push_back(sub->get_name());
  }
  return names;
}

std::vector<std::string> option_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const auto* opt : app.get_options()) {
    if (!opt->get_group().empty()) {
      for (const auto& n : opt->get_lnames()) {
        names.push_back("--" + n);
      }
    }
  }
  for (const CLI::App* parent = app.get_parent(); parent != nullptr;
       parent = parent->get_parent()) {
    for (auto& n : option_names(*parent)) {
      names.push_back(std::move(n));
    }
  }
  return names;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) {
    out += (out.empty() ? "" : ", ") + i;
  }
  return out;
}

// CLI11's "Could not convert: --threads = abc" says neither what the option takes nor that the
// value was the user's: "--threads: 'abc' is not a whole number (N)". nullopt for other texts.
std::optional<std::string> conversion_text(const CLI::App& command, const std::string& what) {
  constexpr std::string_view prefix = "Could not convert: ";
  if (!what.starts_with(prefix)) {
    return std::nullopt;
  }
  const std::string rest = what.substr(prefix.size());
  const auto eq = rest.find(" = ");
  if (eq == std::string::npos) {
    return std::nullopt;
  }
  const std::string name = rest.substr(0, eq);
  const std::string value = rest.substr(eq + 3);
  const CLI::Option* option = command.get_option_no_throw(name);
  std::string form;
  if (option != nullptr) {
    form = !option->get_option_text().empty() ? option->get_option_text() : option->get_type_name();
  }
  const std::string kind = form == commands::value_name::count ? "a whole number (" + form + ")"
                           : !form.empty()                     ? "of the form " + form
                                                               : "a value it takes";
  return name + ": '" + value + "' is not " + kind;
}

// What a parse error says: "iotfleet: error: …", the fix where a typo is likely, and where the
// command's help is.
std::string failure_text(const CLI::App* app, const CLI::Error& e) {
  const auto [selected, path] = selected_command(*app);
  std::string message = e.what();
  if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::ConversionError)) {
    message = conversion_text(*selected, message).value_or(message);
  }
  if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::ExtrasError)) {
    // Arguments nobody took fall through to the root: look at all of them, an option first.
    auto extras = app->remaining(true);
    std::stable_partition(
        extras.begin(), extras.end(), [](const std::string& a) { return a.starts_with("--"); });
    if (!extras.empty()) {
      const std::string& word = extras.front();
      const auto commands = command_names(*selected);
      if (!word.starts_with("-") && !commands.empty()) {
        message = "unknown command '" + word + "' for '" + path + "'";
        if (auto guess = closest(word, commands)) {
          message += ": did you mean '" + *guess + "'?";
        }
        message += " (commands: " + join(commands) + ")";
      } else if (word.starts_with("--")) {
        const auto name = word.substr(0, word.find('='));
        message = "unknown option " + name + " for '" + path + "'";
        if (auto guess = closest(name, option_names(*selected))) {
          message += ": did you mean " + *guess + "?";
        }
      } else {
        message =
            std::string(extras.size() == 1 ? "unexpected argument '" : "unexpected arguments '") +
            word + (extras.size() == 1 ? "'" : "' …") + " for '" + path + "'";
      }
    }
  }
  return "iotfleet: error: " + message + "\nRun '" + path + " --help' for more information.\n";
}

// `iotfleet register` is the old name of `iotfleet dynreg`: say so when it is used.
void warn_old_command_names(int argc, const char* const* argv, commands::Output& output) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "dynreg" || arg == "devices") {
      return; // `iotfleet devices register` is RegisterDevice, not the old name
    }
    if (arg == "register") {
      output.warn(commands::deprecation_warning("'iotfleet register'", "'iotfleet dynreg'") +
                  " (dynamic registration; `iotfleet devices register` is RegisterDevice)");
      return;
    }
  }
}

} // namespace

std::unique_ptr<CLI::App> build_app(commands::Context& ctx) {
  auto app = std::make_unique<CLI::App>(
      "iotfleet: burn, check, register, diagnose and update IoT modules on Alibaba Cloud IoT "
      "Platform",
      "iotfleet");
  app->set_version_flag("--version", std::string("iotfleet ") + IOTFLEET_VERSION);
  app->require_subcommand(0, 1);
  app->fallthrough();
  add_global_options(*app, ctx.global);

  // Every command is registered here, in the order --help lists them.
  commands::register_ports(*app, ctx);
  commands::register_module(*app, ctx);
  commands::register_pool(*app, ctx);
  commands::register_provision(*app, ctx);
  commands::register_secrets(*app, ctx);
  commands::register_devices(*app, ctx);
  commands::register_register(*app, ctx);
  commands::register_creds(*app, ctx);
  commands::register_diagnose(*app, ctx);
  commands::register_ota(*app, ctx);
  commands::register_serve(*app, ctx);
  commands::register_config(*app, ctx);
  // After the commands: CLI11 copies a parent's footer into the subcommands it adds later.
  app->footer(std::string(exit_code_help()) +
              "\nData goes to stdout, messages and progress to stderr. Secrets are masked unless "
              "--show-secrets. Conventions (DeviceNames, lists, durations, formats): "
              "docs/cli-conventions.md.");
  return app;
}

int run(int argc, const char* const* argv, const AppStreams& streams, cloud::Environment env) {
  commands::Context ctx;
  ctx.env = std::move(env);
  auto app_owner = build_app(ctx);
  CLI::App& app = *app_owner;
  app.failure_message(failure_text);

  const bool color = streams.out_is_tty && !ctx.global.no_color && !ctx.env.getenv("NO_COLOR");
  StreamOutput output(ctx.global, streams, color);
  ctx.output = &output;
  warn_old_command_names(argc, argv, output);

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
  const auto [selected, path] = selected_command(app);
  if (!selected->get_subcommands({}).empty()) {
    streams.err << app.help() << "\niotfleet: error: "
                << (selected == &app ? std::string("a command is required")
                                     : "'" + path + "' needs a command")
                << ": " << join(command_names(*selected)) << '\n';
    return k_exit_usage;
  }
  if (core::interrupt_requested()) {
    return k_exit_interrupted;
  }
  return k_exit_ok;
}

} // namespace iot::cli
