// SPDX-License-Identifier: MIT
#include "sim/modules_cmd.hpp"

#include "sim/first_boot.hpp"
#include "sim/identity.hpp"
#include "sim/line_control.hpp"
#include "sim/nvm.hpp"
#include "sim/pty_server.hpp"
#include "sim/sim_registry.hpp"

#include <fcntl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>

namespace iot::sim {
namespace {

// The enrollment secret a first-boot firmware carries: one line of a file.
Result<std::string> read_first_boot_secret(const std::string& path) {
  if (path.empty()) {
    return fail(ErrorKind::usage, "--first-boot needs --first-boot-secret-file FILE");
  }
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return fail(ErrorKind::usage, "cannot read the enrollment secret in " + path);
  }
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
    line.pop_back();
  }
  if (line.empty()) {
    return fail(ErrorKind::usage, "the enrollment secret in " + path + " is empty");
  }
  return line;
}

// One fetch for the module: its SN gets the DeviceSecret; what happened, for the log (never the
// secret).
std::string fetch_into_sn(FirstBoot& first_boot, ModuleModel& model) {
  const std::string& imei = model.nvm().imei;
  auto secret = first_boot.fetch(imei, model.nvm().iccid);
  if (!secret) {
    return imei + " got no secret: " + secret.error().message;
  }
  if (auto stored = model.overwrite_sn_storage(*secret); !stored) {
    return imei + " got its secret but could not store it: " + stored.error().message;
  }
  return imei + " fetched its DeviceSecret into SN";
}

namespace fs = std::filesystem;

// Closes an fd on scope exit.
class FdGuard {
public:
  explicit FdGuard(int fd) : m_fd(fd) {}
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  ~FdGuard() {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  [[nodiscard]] int get() const { return m_fd; }

private:
  int m_fd;
};

// Removes a file on scope exit (the registry entry).
class FileRemover {
public:
  explicit FileRemover(fs::path path) : m_path(std::move(path)) {}
  FileRemover(const FileRemover&) = delete;
  FileRemover& operator=(const FileRemover&) = delete;
  ~FileRemover() {
    std::error_code ec;
    fs::remove(m_path, ec);
  }

private:
  fs::path m_path;
};

Result<fs::path> prepare_state_dir(const std::string& requested) {
  if (!requested.empty()) {
    std::error_code ec;
    fs::create_directories(requested, ec);
    if (ec) {
      return fail(ErrorKind::io, "create state dir " + requested + ": " + ec.message());
    }
    return fs::absolute(requested);
  }
  std::error_code ec;
  std::string templ = (fs::temp_directory_path(ec) / "iotfleet-sim-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    return fail(ErrorKind::io, "create temporary state dir: " + std::string(std::strerror(errno)));
  }
  return fs::absolute(templ);
}

Status validate(const ModulesOptions& o, ModuleKind kind) {
  if (o.count < 1 || o.count > 256) {
    return fail(ErrorKind::usage, "--count must be 1..256");
  }
  if (o.imeis.size() > static_cast<std::size_t>(o.count)) {
    return fail(ErrorKind::usage, "more --imei values than --count modules");
  }
  for (const auto& id : o.imeis) {
    if (kind == ModuleKind::esp_at ? !is_mac_shaped(id) : !is_imei_shaped(id)) {
      return fail(ErrorKind::usage,
                  "--imei " + id +
                      (kind == ModuleKind::esp_at
                           ? ": esp-at modules take a MAC (aa:bb:cc:dd:ee:ff)"
                           : ": an IMEI is 15 digits"));
    }
  }
  if (o.placeholder_imei && kind == ModuleKind::esp_at) {
    return fail(ErrorKind::usage, "--placeholder-imei applies to cellular modules only");
  }
  if (o.swap_gap_ms < 0) {
    return fail(ErrorKind::usage, "--swap-gap-ms must be >= 0");
  }
  return {};
}

// Creates the control FIFO (replacing a stale one left by a killed simulator) and opens it
// read-write, non-blocking: the simulator is then a writer too, so no writer's close ever
// gives it EOF, and opening it for writing never blocks for a shell.
Result<int> open_control_fifo(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISFIFO(st.st_mode)) {
      return fail(ErrorKind::usage, "--control " + path + " exists and is not a FIFO");
    }
    ::unlink(path.c_str());
  }
  if (::mkfifo(path.c_str(), 0600) != 0) {
    return fail(ErrorKind::io, "mkfifo " + path + ": " + std::strerror(errno));
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(path.c_str());
    return fail(ErrorKind::io, "open " + path + ": " + reason);
  }
  return fd;
}

} // namespace

Result<std::pair<std::chrono::milliseconds, std::chrono::milliseconds>>
parse_latency_range(std::string_view text) {
  auto number = [](std::string_view s) -> std::optional<long> {
    long v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size() || s.empty() || v < 0) {
      return std::nullopt;
    }
    return v;
  };
  const auto dash = text.find('-');
  const auto lo = number(text.substr(0, dash));
  const auto hi = dash == std::string_view::npos ? lo : number(text.substr(dash + 1));
  if (!lo || !hi || *hi < *lo) {
    return fail(ErrorKind::usage,
                "--nvm-latency-ms wants MIN-MAX or N milliseconds, got '" + std::string(text) +
                    "'");
  }
  return std::pair{std::chrono::milliseconds(*lo), std::chrono::milliseconds(*hi)};
}

Status run_modules(const ModulesOptions& o) {
  const auto kind = IOT_TRY(parse_module_kind(o.module));
  IOT_TRY(validate(o, kind));
  const auto latency = IOT_TRY(parse_latency_range(o.nvm_latency_ms));
  const auto state_dir = IOT_TRY(prepare_state_dir(o.state_dir));
  if (o.state_dir.empty()) {
    std::cerr << "iotfleet-sim: state dir " << state_dir.string() << '\n';
  }

  // Signals become a readable fd for the poll loop; block them before anything else.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  if (::sigprocmask(SIG_BLOCK, &signals, nullptr) != 0) {
    return fail(ErrorKind::failure, std::string("sigprocmask: ") + std::strerror(errno));
  }
  std::signal(SIGPIPE, SIG_IGN);
  const FdGuard stop_fd(::signalfd(-1, &signals, SFD_CLOEXEC));
  if (stop_fd.get() < 0) {
    return fail(ErrorKind::failure, std::string("signalfd: ") + std::strerror(errno));
  }

  // The control FIFO first: a bad --control path fails before any pty is made.
  std::optional<FileRemover> remove_fifo;
  std::optional<FdGuard> control_fd;
  if (!o.control.empty()) {
    auto fd = IOT_TRY(open_control_fifo(o.control));
    remove_fifo.emplace(o.control);
    control_fd.emplace(fd);
  }

  const std::uint64_t base_seed = o.seed ? *o.seed : std::random_device{}();
  ModelConfig config;
  config.kind = kind;
  config.faults = o.faults;
  config.urcs_per_minute = o.urc_rate;
  config.nvm_latency_min = latency.first;
  config.nvm_latency_max = latency.second;
  config.volatile_aliauth = o.volatile_aliauth;

  auto history = IOT_TRY(ModuleHistory::open(state_dir / "modules.ndjson", kind));
  const fs::path ports_file =
      o.ports_file.empty() ? state_dir / "ports.json" : fs::path(o.ports_file);
  const fs::path registry = sim_registry_dir();
  std::error_code ec;
  fs::create_directories(registry, ec);
  if (ec) {
    return fail(ErrorKind::io, "create registry dir " + registry.string() + ": " + ec.message());
  }
  fs::permissions(registry, fs::perms::owner_all, fs::perm_options::replace, ec);
  const fs::path registry_file = registry / ("sim-" + std::to_string(::getpid()) + ".json");
  const FileRemover unregister(registry_file);

  PtyServer server(PtyServerOptions{o.baud, !o.no_pacing});
  LineOptions line_options;
  line_options.config = config;
  line_options.state_dir = state_dir;
  line_options.base_seed = base_seed;
  line_options.swap_gap = std::chrono::milliseconds(o.swap_gap_ms);
  // Both rewritten whenever a fixture changes.
  line_options.ports_files = {ports_file, registry_file};
  line_options.pid = ::getpid();
  line_options.baud = o.baud;
  std::optional<FirstBoot> first_boot;
  if (!o.first_boot.empty()) {
    if (config.kind != ModuleKind::luat) {
      return fail(ErrorKind::usage,
                  "--first-boot is modelled on luat modules (the SN holds the DeviceSecret, the "
                  "DeviceName is the IMEI): start with --module luat");
    }
    auto secret = IOT_TRY(read_first_boot_secret(o.first_boot_secret_file));
    first_boot = IOT_TRY(FirstBoot::create(
        {o.first_boot,
         o.first_boot_product,
         std::move(secret),
         o.first_boot_ca.empty() ? std::nullopt : std::optional(o.first_boot_ca)}));
    line_options.refetch = [&first_boot](std::size_t, ModuleModel& model) {
      return fetch_into_sn(*first_boot, model);
    };
  }
  ProductionLine line(server, std::move(line_options), std::move(history));
  if (auto started = line.start(static_cast<std::size_t>(o.count),
                                IdentityOverrides{o.imeis, o.duplicate_imei, o.placeholder_imei});
      !started) {
    return started;
  }
  IOT_TRY(line.publish());
  if (first_boot) {
    // First boot: every module whose SN is empty asks the server before the line is ready.
    for (std::size_t i = 0; i < server.size(); ++i) {
      ModuleModel* model = server.model(i);
      if (model != nullptr && !model->nvm().sn) {
        std::cerr << "iotfleet-sim: first boot " << i << ": " << fetch_into_sn(*first_boot, *model)
                  << '\n';
      }
    }
  }
  if (control_fd) {
    line.set_control_fd(control_fd->get());
  }

  for (std::size_t i = 0; i < server.size(); ++i) {
    const std::string id = line.identity(i);
    std::cout << server.path(i) << ' ' << (id.empty() ? std::string("-") : id) << '\n';
  }
  std::cout.flush();
  std::cerr << "ready" << std::endl;

  IOT_TRY(server.run(stop_fd.get(), &line));
  signalfd_siginfo info{};
  if (::read(stop_fd.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    std::cerr << "iotfleet-sim: " << ::strsignal(static_cast<int>(info.ssi_signo))
              << ", shutting down\n";
  }
  for (std::size_t i = 0; i < server.size(); ++i) {
    std::cerr << "iotfleet-sim: module " << i;
    if (line.generation(i) > 0) {
      std::cerr << " (generation " << line.generation(i) << ")";
    }
    const ModuleModel* model = server.model(i);
    if (model == nullptr) {
      std::cerr << ": fixture empty\n";
      continue;
    }
    const ModelStats& s = model->stats();
    std::cerr << ": " << s.commands << " commands, " << s.nvm_writes << " NVM writes, " << s.urcs
              << " URCs, faults: " << s.garbled << " garbled, " << s.dropped << " dropped, "
              << s.reboots << " reboots, " << s.stuck << " stuck, " << s.slow << " slow\n";
  }
  return {};
}

void register_modules(CLI::App& app) {
  auto options = std::make_shared<ModulesOptions>();
  auto seed = std::make_shared<std::uint64_t>(0);
  CLI::App* cmd = app.add_subcommand(
      "modules", "Simulate N AT modules (luat, quectel, esp-at) on pseudo-terminals");
  cmd->add_option("--count,-n", options->count, "Number of modules")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--module,-m", options->module, "Module dialect")
      ->check(CLI::IsMember({"luat", "quectel", "esp-at"}))
      ->capture_default_str();
  cmd->add_option("--state-dir",
                  options->state_dir,
                  "Directory for the modules' NVM (default: a new temporary dir, printed)");
  cmd->add_option("--baud", options->baud, "Emulated baud rate for output pacing")
      ->check(CLI::Range(300L, 4000000L))
      ->capture_default_str();
  CLI::Option* seed_opt =
      cmd->add_option("--seed", *seed, "RNG seed: same seed, same identities, latencies, faults");
  cmd->add_option("--imei",
                  options->imeis,
                  "Identity of module 0, 1, … in order (IMEI; MAC for esp-at); repeatable");
  cmd->add_flag(
      "--duplicate-imei", options->duplicate_imei, "All modules share module 0's IMEI (MAC)");
  cmd->add_flag("--placeholder-imei",
                options->placeholder_imei,
                "All modules report the unwritten default IMEI 352099001761481");
  cmd->add_option("--ports-file",
                  options->ports_file,
                  "Where to write the ports JSON (default: <state-dir>/ports.json)");
  const auto probability = CLI::Range(0.0, 1.0);
  cmd->add_option("--garble", options->faults.garble, "P(reply has flipped/inserted bytes)")
      ->check(probability);
  cmd->add_option("--drop", options->faults.drop, "P(reply never sent)")->check(probability);
  cmd->add_option("--reboot", options->faults.reboot, "P(module reboots instead of replying)")
      ->check(probability);
  cmd->add_option("--stuck", options->faults.stuck, "P(port stops answering for 3-8 s)")
      ->check(probability);
  cmd->add_option("--slow", options->faults.slow, "P(reply delayed by 1-3 s)")->check(probability);
  cmd->add_option("--urc-rate", options->urc_rate, "Random URCs per minute per module")
      ->check(CLI::Range(0.0, 60000.0))
      ->capture_default_str();
  cmd->add_option("--nvm-latency-ms", options->nvm_latency_ms, "NVM write latency MIN-MAX ms")
      ->capture_default_str();
  cmd->add_flag("--no-pacing", options->no_pacing, "Send output at once, not at the baud rate");
  cmd->add_option("--control",
                  options->control,
                  "Create a FIFO at PATH and read production-line commands from it: remove I, "
                  "insert I [IMEI], swap I|all [IMEI], set-sn I VALUE, connected I, "
                  "set-copy I VALUE, refetch I (with --first-boot)");
  cmd->add_option("--swap-gap-ms", options->swap_gap_ms, "Pause between a swap's remove and insert")
      ->check(CLI::Range(0L, 600000L))
      ->capture_default_str();
  cmd->add_option("--first-boot",
                  options->first_boot,
                  "URL of an `iotfleet serve`: luat modules with an empty SN fetch their "
                  "DeviceSecret from it at start (DeviceName = IMEI, signed with the product's "
                  "enrollment secret) and store it in SN; `refetch I` fetches again");
  cmd->add_option("--first-boot-product", options->first_boot_product, "With --first-boot: PK");
  cmd->add_option("--first-boot-secret-file",
                  options->first_boot_secret_file,
                  "With --first-boot: the file of the product's enrollment secret");
  cmd->add_option("--first-boot-ca", options->first_boot_ca, "With --first-boot: a CA to trust");
  cmd->add_flag("--volatile-aliauth",
                options->volatile_aliauth,
                "Quectel: forget AT+QMTCFG=\"aliauth\" at reboot (persistence is UNVERIFIED)");
  cmd->callback([options, seed, seed_opt]() {
    if (seed_opt->count() > 0) {
      options->seed = *seed;
    }
    if (auto done = run_modules(*options); !done) {
      std::cerr << "iotfleet-sim: error: " << done.error().message << '\n';
      throw CLI::RuntimeError(done.error().kind == ErrorKind::usage ? 2 : 1);
    }
  });
}

} // namespace iot::sim
