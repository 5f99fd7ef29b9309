// SPDX-License-Identifier: MIT
#include "commands/common_options.hpp"

#include "core/duration.hpp"
#include "core/file.hpp"
#include "core/text.hpp"
#include "core/validate.hpp"
#include "serial/profile.hpp"

#include <map>
#include <set>

namespace iot::commands {
namespace {

std::string value_text(std::string_view name) {
  return std::string(name);
}

// Fails the parse (exit 2, "iotfleet: error: …") with a message naming the option.
[[noreturn]] void refuse(const std::string& option, const std::string& message) {
  throw CLI::ValidationError(option, message);
}

} // namespace

// ---- DeviceNames ----

void add_device_names(CLI::App* cmd, DeviceNamesInput& input, const DeviceNamesSpec& spec) {
  const std::string what(spec.what);
  if (spec.arity == DeviceArity::one) {
    cmd->add_option("DEVICE_NAME", input.positional, what + " (or --device-name)")
        ->expected(0, 1)
        ->type_name("");
    cmd->add_option("--device-name", input.flagged, what + " (the same as DEVICE_NAME)")
        ->expected(1)
        ->option_text(value_text(value_name::device_name));
    return;
  }
  cmd->add_option("DEVICE_NAME", input.positional, what + "s (or --device-name, --devices)")
      ->type_name("");
  cmd->add_option(
         "--device-name", input.flagged, what + " (repeatable; the same as DEVICE_NAME...)")
      ->option_text(value_text(value_name::device_name));
  if (spec.list_file) {
    cmd->add_option("--devices",
                    input.file,
                    "A list of " + what +
                        "s: one per line (# comments), or a CSV / JSON / NDJSON file with a "
                        "device_name column (what secrets export, pool export, devices "
                        "batch-register -O write); - reads standard input")
        ->option_text(value_text(value_name::file_or_stdin));
  }
}

Result<std::vector<std::string>> read_device_list(const std::string& path, Context& ctx) {
  std::string content;
  std::string source = path;
  if (path == "-") {
    content = IOT_TRY_CTX(ctx.env.read_stdin(), "--devices -");
    source = "stdin";
  } else {
    content = IOT_TRY(core::read_file(path, "device list"));
  }
  std::vector<std::string> names;
  std::map<std::string, std::size_t> seen;
  std::size_t n = 0;
  std::size_t start = 0;
  while (start <= content.size()) {
    auto end = content.find('\n', start);
    if (end == std::string::npos) {
      end = content.size();
    }
    ++n;
    const auto name = std::string(core::trim(std::string_view(content).substr(start, end - start)));
    start = end + 1;
    if (name.empty() || name.front() == '#') {
      if (end == content.size()) {
        break;
      }
      continue;
    }
    if (auto ok = core::validate_device_name(name); !ok) {
      return fail(ErrorKind::usage, source + ":" + std::to_string(n) + ": " + ok.error().message);
    }
    if (auto [it, inserted] = seen.emplace(name, n); !inserted) {
      return fail(ErrorKind::usage,
                  source + ":" + std::to_string(n) + ": DeviceName " + name + " repeats line " +
                      std::to_string(it->second) + ": remove the duplicate");
    }
    names.push_back(name);
    if (end == content.size()) {
      break;
    }
  }
  if (names.empty()) {
    return fail(ErrorKind::usage, source + " holds no DeviceName (one per line)");
  }
  return names;
}

Result<std::vector<std::string>>
resolve_device_names(const DeviceNamesInput& input, const DeviceNamesSpec& spec, Context& ctx) {
  std::vector<std::string> names;
  std::set<std::string, std::less<>> seen;
  const auto take = [&](const std::string& name, std::string_view how) -> Status {
    if (auto ok = core::validate_device_name(name); !ok) {
      return fail(ErrorKind::usage, std::string(how) + " " + name + ": " + ok.error().message);
    }
    if (seen.insert(name).second) {
      names.push_back(name);
    }
    return {};
  };
  for (const auto& name : input.positional) {
    IOT_TRY(take(name, "DeviceName"));
  }
  for (const auto& name : input.flagged) {
    IOT_TRY(take(name, "--device-name"));
  }
  if (input.file) {
    for (const auto& name : IOT_TRY(read_device_list(*input.file, ctx))) {
      if (seen.insert(name).second) {
        names.push_back(name);
      }
    }
  }
  if (spec.arity == DeviceArity::one && names.size() > 1) {
    return fail(ErrorKind::usage,
                "one DeviceName only: " + names[0] + " and " + names[1] + " were given");
  }
  if (names.empty() && spec.required) {
    return fail(ErrorKind::usage,
                spec.arity == DeviceArity::one
                    ? "no DeviceName: give it as DEVICE_NAME or --device-name DN"
                    : "no DeviceName: give DEVICE_NAME..., --device-name DN (repeatable) or "
                      "--devices FILE (one per line; - for stdin)");
  }
  return names;
}

std::string one_device_name(const DeviceNamesInput& input, Context& ctx) {
  return value_or_throw(resolve_device_names(input, {DeviceArity::one, false, true}, ctx)).front();
}

// ---- other shared values ----

void add_product_key(CLI::App* cmd,
                     std::optional<std::string>& product_key,
                     std::string_view default_from) {
  cmd->add_option("--product-key",
                  product_key,
                  "The ProductKey (default: " + std::string(default_from) + ")")
      ->option_text(value_text(value_name::product_key));
}

void add_concurrency(CLI::App* cmd,
                     std::size_t& concurrency,
                     Context& ctx,
                     std::size_t max,
                     std::string_view deprecated_name) {
  cmd->add_option("--concurrency",
                  concurrency,
                  "Requests in flight at most (default " + std::to_string(concurrency) + ")")
      ->check(CLI::Range(std::size_t{1}, max))
      ->option_text(value_text(value_name::count));
  if (!deprecated_name.empty()) {
    auto* target = &concurrency;
    add_deprecated_option(
        cmd,
        std::string(deprecated_name),
        "--concurrency",
        [target, max, name = std::string(deprecated_name)](const std::string& v) {
          std::size_t n = 0;
          if (!CLI::detail::lexical_cast(v, n) || n < 1 || n > max) {
            refuse(name, "a number from 1 to " + std::to_string(max));
          }
          *target = n;
        },
        ctx);
  }
}

void add_file_format(CLI::App* cmd, std::string& format) {
  cmd->add_option("--format",
                  format,
                  "Format of the file written with -O: csv (default), json (an array, one object "
                  "per line) or ndjson (one object per line); every iotfleet reader takes all "
                  "three")
      ->check(CLI::IsMember({"csv", "json", "ndjson"}))
      ->option_text(value_text(value_name::formats));
}

void add_out_file(CLI::App* cmd, std::optional<std::string>& out, std::string_view holds) {
  cmd->add_option("-O,--out",
                  out,
                  "Write " + std::string(holds) + " to FILE (created 0600, written atomically)")
      ->option_text(value_text(value_name::file));
}

CLI::Option* add_duration(CLI::App* cmd,
                          const std::string& name,
                          std::function<void(std::chrono::milliseconds)> set,
                          std::optional<std::chrono::milliseconds> default_value,
                          std::string_view description,
                          const DurationSpec& spec,
                          Context& ctx) {
  const auto apply = [set = std::move(set), spec, name](const std::string& text) {
    auto parsed = core::parse_duration(text, spec.bare_unit);
    if (!parsed) {
      refuse(name, parsed.error().message);
    }
    if (*parsed < spec.min || *parsed > spec.max) {
      refuse(name,
             "duration '" + text + "' is outside " + core::format_duration(spec.min) + " to " +
                 core::format_duration(spec.max));
    }
    if (spec.granularity.count() > 0 && parsed->count() % spec.granularity.count() != 0) {
      refuse(name,
             "duration '" + text + "' must be a whole number of " +
                 std::string(core::unit_name(spec.granularity)) + " (the platform's unit)");
    }
    set(*parsed);
  };
  auto* option = cmd->add_option_function<std::string>(
      name,
      apply,
      std::string(description) + " (DURATION: 500ms, 30s, 10m, 2h; a bare number is " +
          std::string(core::unit_name(spec.bare_unit)) +
          (default_value ? "; default " + core::format_duration(*default_value) : std::string()) +
          ")");
  option->option_text(value_text(value_name::duration));
  if (!spec.deprecated_name.empty()) {
    add_deprecated_option(cmd, std::string(spec.deprecated_name), name, apply, ctx);
  }
  return option;
}

CLI::Option* add_duration(CLI::App* cmd,
                          const std::string& name,
                          std::chrono::milliseconds& target,
                          std::string_view description,
                          const DurationSpec& spec,
                          Context& ctx) {
  auto* out = &target;
  return add_duration(
      cmd, name, [out](std::chrono::milliseconds d) { *out = d; }, target, description, spec, ctx);
}

CLI::Option* add_duration(CLI::App* cmd,
                          const std::string& name,
                          std::optional<std::chrono::milliseconds>& target,
                          std::string_view description,
                          const DurationSpec& spec,
                          Context& ctx) {
  auto* out = &target;
  return add_duration(
      cmd, name, [out](std::chrono::milliseconds d) { *out = d; }, target, description, spec, ctx);
}

// ---- the serial connection ----

std::vector<std::string> driver_names() {
  std::vector<std::string> names;
  for (const auto& n : serial::builtin_profile_names()) {
    names.emplace_back(n);
  }
  names.emplace_back("auto");
  return names;
}

void add_connection_options(CLI::App* cmd,
                            ModuleConnectOptions& connect,
                            std::optional<std::string>* layout,
                            PortUse use,
                            std::vector<std::string>* ports) {
  const std::string port_help = "Serial port, e.g. /dev/ttyUSB0 (see `iotfleet ports`)";
  switch (use) {
  case PortUse::one:
    cmd->add_option("-p,--port", connect.port, port_help)
        ->required()
        ->option_text(value_text(value_name::port));
    break;
  case PortUse::many:
    cmd->add_option("-p,--port", *ports, port_help + "; repeat it for each fixture")
        ->option_text(value_text(value_name::port));
    break;
  case PortUse::optional:
    cmd->add_option("-p,--port", *ports, port_help + "; read this module too (repeatable)")
        ->option_text(value_text(value_name::port));
    break;
  case PortUse::optional_one:
    cmd->add_option("-p,--port", connect.port, port_help + "; read this module too")
        ->option_text(value_text(value_name::port));
    break;
  }
  const auto names = driver_names();
  std::string list;
  for (const auto& n : names) {
    list += (list.empty() ? "" : ", ") + n;
  }
  cmd->add_option("-m,--module",
                  connect.module,
                  "The module's AT driver: " + list +
                      " (default: the config's module, else auto: identified by ATI / AT+CGMR)")
      ->check(CLI::IsMember(names))
      ->option_text("DRIVER");
  cmd->add_option("--module-profile",
                  connect.profile_file,
                  "A JSON module profile for another module (docs/module-profiles.md)")
      ->check(CLI::ExistingFile)
      ->option_text(value_text(value_name::file));
  cmd->add_option("--baud", connect.baud, "Baud rate (default 115200)")
      ->check(CLI::Range(300, 4'000'000))
      ->option_text(value_text(value_name::count));
  cmd->add_flag("--trace", connect.trace, "The AT conversation on stderr, secrets masked");
  if (layout != nullptr) {
    cmd->add_option("--layout",
                    *layout,
                    "Where the credentials are stored: secret (Luat: SN = DeviceSecret, "
                    "DeviceName = IMEI) or triplet (PK|DN|DS in the SN, Quectel aliauth, ESP-AT "
                    "NVS); default: the module's")
        ->check(CLI::IsMember({"secret", "triplet"}))
        ->option_text("secret|triplet");
  }
}

// ---- renamed options and exit codes ----

std::string deprecation_warning(std::string_view old_name, std::string_view new_name) {
  return std::string(old_name) + " is deprecated and goes in the next release: use " +
         std::string(new_name);
}

void add_deprecated_option(CLI::App* cmd,
                           const std::string& old_name,
                           const std::string& new_name,
                           std::function<void(const std::string&)> apply,
                           Context& ctx) {
  auto* option = cmd->add_option_function<std::string>(
      old_name,
      [apply = std::move(apply), &ctx, old_name, new_name](const std::string& v) {
        if (ctx.output != nullptr) {
          ctx.output->warn(deprecation_warning(old_name, new_name));
        }
        apply(v);
      },
      "Deprecated: " + new_name);
  option->group("");
  if (auto* replacement = cmd->get_option_no_throw(new_name)) {
    option->excludes(replacement);
  }
}

void add_deprecated_flag(CLI::App* cmd,
                         const std::string& old_name,
                         const std::string& new_name,
                         std::function<void()> apply,
                         Context& ctx) {
  auto* option = cmd->add_flag_callback(
      old_name,
      [apply = std::move(apply), &ctx, old_name, new_name] {
        if (ctx.output != nullptr) {
          ctx.output->warn(deprecation_warning(old_name, new_name));
        }
        apply();
      },
      "Deprecated: " + new_name);
  option->group("");
}

void add_exit_codes(CLI::App* cmd, std::vector<std::pair<int, std::string>> codes) {
  std::string text = std::string(k_exit_codes_heading);
  for (const auto& [code, meaning] : codes) {
    text += "\n  " + std::to_string(code) +
            std::string(code >= 100  ? "  "
                        : code >= 10 ? "   "
                                     : "    ") +
            meaning;
  }
  text += "\n  (what every code means: iotfleet --help)";
  const std::string footer = cmd->get_footer();
  cmd->footer(footer.empty() ? text : footer + "\n" + text);
}

} // namespace iot::commands
