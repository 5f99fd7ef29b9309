// SPDX-License-Identifier: MIT
// The CLI conventions (docs/cli-conventions.md), checked mechanically over every command of the
// real command tree (cli::build_app): how a DeviceName, a list file, a duration and a file format
// are given, that a flag means one thing everywhere, that renamed flags are hidden aliases that
// warn, and that every command's help says its exit codes.
#include "cli/app.hpp"
#include "cli_run.hpp"
#include "commands/common_options.hpp"

#include <CLI/CLI.hpp>
#include <doctest/doctest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace iot;

namespace {

struct Command {
  const CLI::App* app;
  std::string path; // "iotfleet pool release"
};

void collect(const CLI::App* app, const std::string& path, std::vector<Command>& out) {
  out.push_back({app, path});
  for (const auto* sub : app->get_subcommands({})) {
    collect(sub, path + " " + sub->get_name(), out);
  }
}

struct Tree {
  commands::Context ctx;
  std::unique_ptr<CLI::App> app;
  std::vector<Command> commands;
  Tree() {
    app = cli::build_app(ctx);
    collect(app.get(), "iotfleet", commands);
  }
  [[nodiscard]] std::vector<Command> leaves() const {
    std::vector<Command> out;
    for (const auto& c : commands) {
      if (c.app->get_subcommands({}).empty()) {
        out.push_back(c);
      }
    }
    return out;
  }
};

bool hidden(const CLI::Option* o) {
  return o->get_group().empty();
}

std::string long_name(const CLI::Option* o) {
  return o->get_lnames().empty() ? std::string() : "--" + o->get_lnames().front();
}

// The value syntax without the arity and requirement markers.
std::string value_syntax(const CLI::Option* o) {
  std::string text = o->get_option_text();
  for (const std::string suffix : {" REQUIRED", " ..."}) {
    if (text.ends_with(suffix)) {
      text.resize(text.size() - suffix.size());
    }
  }
  return text;
}

} // namespace

TEST_SUITE("cli conventions") {
  TEST_CASE("every command is reachable and every leaf has a description and exit codes") {
    const Tree t;
    CHECK(t.leaves().size() >= 25);
    for (const auto& c : t.leaves()) {
      CAPTURE(c.path);
      CHECK_FALSE(c.app->get_description().empty());
      const std::string footer = c.app->get_footer();
      const auto heading = footer.find(commands::k_exit_codes_heading);
      REQUIRE(heading != std::string::npos);
      // Exit codes are said in that section only, once.
      CHECK(footer.find(commands::k_exit_codes_heading, heading + 1) == std::string::npos);
      CHECK(footer.substr(0, heading).find("Exit ") == std::string::npos);
      CHECK(footer.find("\n  0 ") != std::string::npos);
    }
  }

  TEST_CASE("the help names the whole command: Usage: iotfleet <group> <command>") {
    const Tree t;
    for (const auto& c : t.commands) {
      CAPTURE(c.path);
      const auto space = c.path.rfind(' ');
      const std::string parent = space == std::string::npos ? "" : c.path.substr(0, space);
      CHECK(c.app->help(parent).find("Usage: " + c.path) != std::string::npos);
    }
  }

  TEST_CASE("a DeviceName is DEVICE_NAME or --device-name, a list is --devices FILE|-") {
    const Tree t;
    std::size_t with_names = 0;
    for (const auto& c : t.leaves()) {
      CAPTURE(c.path);
      const auto* positional = c.app->get_option_no_throw("DEVICE_NAME");
      const auto* flag = c.app->get_option_no_throw("--device-name");
      CHECK((positional == nullptr) == (flag == nullptr));
      if (flag != nullptr) {
        ++with_names;
        CHECK(value_syntax(flag) == commands::value_name::device_name);
      }
      for (const auto* o : c.app->get_options()) {
        const auto name = long_name(o);
        CAPTURE(name);
        if (hidden(o) || name.empty()) {
          continue;
        }
        // No other spelling of a DeviceName list or of one DeviceName.
        CHECK_FALSE(std::regex_match(name,
                                     std::regex("--(names|name-file|devices-file|dn|"
                                                "device|devicename)")));
        if (name == "--devices") {
          CHECK(value_syntax(o) == commands::value_name::file_or_stdin);
          CHECK(o->get_description().find("- reads standard input") != std::string::npos);
        }
      }
    }
    CHECK(with_names >= 9);
  }

  TEST_CASE("durations take the one syntax, formats the one set, counts are N") {
    const Tree t;
    const std::regex time_like("--.*(timeout|interval|grace|soak|poll|keepalive|delay|wait).*");
    for (const auto& c : t.leaves()) {
      CAPTURE(c.path);
      for (const auto* o : c.app->get_options()) {
        const auto name = long_name(o);
        CAPTURE(name);
        if (hidden(o) || name.empty()) {
          continue;
        }
        if (std::regex_match(name, time_like)) {
          CHECK(value_syntax(o) == commands::value_name::duration);
          CHECK(o->get_description().find("(DURATION: 500ms, 30s, 10m, 2h; a bare number is ") !=
                std::string::npos);
        }
        if (name == "--format") {
          CHECK(value_syntax(o) == commands::value_name::formats);
        }
        if (name == "--concurrency") {
          CHECK(value_syntax(o) == commands::value_name::count);
        }
        CHECK_FALSE(name == "--parallel");
      }
    }
  }

  TEST_CASE("a flag means one thing across the tool") {
    const Tree t;
    // Each visible long option: one value syntax everywhere.
    std::map<std::string, std::set<std::string>> syntax;
    // These mean a shared thing: one help text everywhere (made by commands/common_options).
    const std::set<std::string> shared = {
        "--module", "--module-profile", "--baud", "--trace", "--layout", "--devices", "--format"};
    std::map<std::string, std::set<std::string>> help;
    for (const auto& c : t.commands) {
      for (const auto* o : c.app->get_options()) {
        const auto name = long_name(o);
        if (hidden(o) || name.empty() || name == "--help") {
          continue;
        }
        syntax[name].insert(value_syntax(o));
        if (shared.contains(name)) {
          auto text = o->get_description();
          // provision prefixes the options that belong to its --register.
          if (text.starts_with("--register: ")) {
            text = text.substr(12);
          }
          help[name].insert(text);
        }
      }
    }
    for (const auto& [name, forms] : syntax) {
      CAPTURE(name);
      if (name == "--sign-method") {
        continue; // the firmware's digest (MD5|SHA256) vs a device request's HMAC
      }
      if (name == "--resume") {
        // Continue a journal: ota rollout's is a file it names (--resume FILE), devices
        // recreate's is the ledger (a flag), docs/cli-conventions.md.
        CHECK(forms.size() == 2);
        continue;
      }
      if (name == "--dynamic") {
        // The platform's word for two things: creds mqtt's dynamic registration connection
        // (register|regnwl) and ota rollout's dynamic upgrade job (a flag),
        // docs/cli-conventions.md.
        CHECK(forms.size() == 2);
        continue;
      }
      CHECK(forms.size() == 1);
    }
    for (const auto& [name, texts] : help) {
      CAPTURE(name);
      CHECK(texts.size() == 1);
    }
    // --module is the AT driver (ota upload's firmware module is --firmware-module), --state is
    // the ledger state filter (ota rollout's journal is --journal).
    for (const auto& c : t.leaves()) {
      CAPTURE(c.path);
      if (const auto* m = c.app->get_option_no_throw("--module"); m && !hidden(m)) {
        CHECK(m->get_description().starts_with("The module's AT driver"));
      }
      if (const auto* s = c.app->get_option_no_throw("--state"); s && !hidden(s)) {
        CHECK(c.path == "iotfleet pool export");
      }
    }
  }

  TEST_CASE("--module takes the built-in profiles' names and auto") {
    const Tree t;
    const auto names = commands::driver_names();
    CHECK(names.back() == "auto");
    CHECK(names.size() >= 4);
    for (const auto& c : t.leaves()) {
      if (const auto* m = c.app->get_option_no_throw("--module"); m && !hidden(m)) {
        CAPTURE(c.path);
        for (const auto& n : names) {
          CHECK(m->get_description().find(n) != std::string::npos);
        }
      }
    }
  }
}

using Run = testing::CliRun;
using testing::run_cli;

TEST_SUITE("cli conventions: parse errors") {
  TEST_CASE("a parse error says iotfleet: error: and where the help is") {
    const Run r = run_cli({"module", "at", "--port", "/dev/null", "AT", "--timeout", "5x"});
    CHECK(r.code == 2);
    CHECK(
        r.err ==
        "iotfleet: error: --timeout: duration '5x': give a number with a unit — 500ms, 30s, "
        "10m, 2h, 1d — or a bare number of milliseconds\nRun 'iotfleet module at --help' for more "
        "information.\n");
  }
  TEST_CASE("a mistyped command or option gets the closest one suggested") {
    const Run cmd = run_cli({"pool", "stat"});
    CHECK(cmd.code == 2);
    CHECK(cmd.err.starts_with("iotfleet: error: unknown command 'stat' for 'iotfleet pool': did "
                              "you mean 'status'? (commands: import, status, release, export, "
                              "log, migrate)\n"));
    const Run list = run_cli({"devices", "lst"});
    CHECK(list.err.find("did you mean 'list'?") != std::string::npos);
    const Run opt = run_cli({"pool", "status", "--prodct-key", "x"});
    CHECK(opt.err.starts_with("iotfleet: error: unknown option --prodct-key for 'iotfleet pool "
                              "status': did you mean --product-key?\n"));
  }
  TEST_CASE("a value that is not a number names the option, the value and what it takes") {
    const Run count = run_cli({"serve", "--threads", "abc"});
    CHECK(count.code == 2);
    CHECK(count.err == "iotfleet: error: --threads: 'abc' is not a whole number (N)\nRun "
                       "'iotfleet serve --help' for more information.\n");
    const Run fraction = run_cli({"serve", "--per-device", "1.5"});
    CHECK(fraction.err.starts_with("iotfleet: error: --per-device: '1.5' is not a whole number"));
    const Run bytes = run_cli({"serve", "--max-body", "lots"});
    CHECK(bytes.err.starts_with("iotfleet: error: --max-body: 'lots' is not of the form BYTES\n"));
  }
  TEST_CASE("a command group without its command prints the group's help, not 'Usage: pool'") {
    const Run r = run_cli({"pool"});
    CHECK(r.code == 2);
    CHECK(r.err.find("Usage: iotfleet pool [OPTIONS]") != std::string::npos);
    CHECK(r.err.find("iotfleet: error: 'iotfleet pool' needs a command: import, status, release, "
                     "export, log") != std::string::npos);
  }
  TEST_CASE("an out-of-range count is refused") {
    CHECK(run_cli({"pool", "log", "--limit", "-1"}).code == 2);
    CHECK(run_cli({"pool", "log", "--limit", "0"}).code == 2);
  }
  TEST_CASE("an old spelling still works, hidden, with a deprecation warning") {
    // --poll-ms is provision's old --poll: parsed (the command then fails for want of ports).
    const Run r = run_cli({"provision", "--poll-ms", "100"});
    CHECK(r.code == 2);
    CHECK(r.err.find("iotfleet: warning: --poll-ms is deprecated and goes in the next release: "
                     "use --poll\n") != std::string::npos);
    CHECK(r.err.find("no fixtures") != std::string::npos);
    const Run help = run_cli({"provision", "--help"});
    CHECK(help.out.find("--poll-ms") == std::string::npos);
    CHECK(help.out.find("--poll DURATION") != std::string::npos);
    const Run old = run_cli({"register", "--help"});
    CHECK(old.code == 0);
    CHECK(old.out.find("Usage: iotfleet dynreg") != std::string::npos);
    CHECK(old.err.find("'iotfleet register' is deprecated") != std::string::npos);
  }
}
