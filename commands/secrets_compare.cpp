// SPDX-License-Identifier: MIT
// secrets compare. The snapshot is mapped (or read) whole and indexed by DeviceName without
// copying a string (core::SecretSnapshot); the devices file is streamed in blocks, each block's
// rows compared as views into the block. --cloud asks BatchQueryDeviceDetail for each block's
// names (≤100 a call, calls in parallel), --ledger looks each device up. Only the rows to report
// (differences, unactivated devices; everything with --all) become table rows.
#include "commands/secrets_compare.hpp"

#include "cloud/crypto.hpp"
#include "commands/cloud_access.hpp"
#include "commands/common_options.hpp"
#include "commands/config.hpp"
#include "commands/creds.hpp"
#include "commands/ledger_access.hpp"
#include "core/file.hpp"
#include "core/interrupt.hpp"
#include "core/parallel.hpp"
#include "core/secret_file.hpp"
#include "core/validate.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>

namespace iot::commands {
namespace {

using core::SecretEvidence;
using core::SecretVerdict;

constexpr std::size_t k_block = 4u << 20;        // devices file read size
constexpr std::size_t k_snapshot_batch = 20'000; // snapshot devices per cloud/ledger batch

// A whole input file: mapped when it is a regular file, else read (stdin, a pipe).
class InputFile {
public:
  InputFile() = default;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  InputFile(InputFile&& o) noexcept
      : m_map(std::exchange(o.m_map, nullptr)), m_size(std::exchange(o.m_size, 0)),
        m_buffer(std::move(o.m_buffer)) {}
  InputFile& operator=(InputFile&&) = delete;
  ~InputFile() {
    if (m_map) {
      ::munmap(m_map, m_size);
    }
  }

  static Result<InputFile> open(const std::string& path, Context& ctx) {
    InputFile f;
    if (path == "-") {
      auto in = IOT_TRY_CTX(ctx.env.read_stdin(), "stdin");
      f.m_buffer = std::move(in);
      return f;
    }
    const int fd = IOT_TRY(core::open_for_reading(path, "snapshot"));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return fail(core::file_error(ErrorKind::usage, "snapshot", path, err));
    }
    if (S_ISREG(st.st_mode) && st.st_size > 0) {
      f.m_size = static_cast<std::size_t>(st.st_size);
      void* map = ::mmap(nullptr, f.m_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
      ::close(fd);
      if (map == MAP_FAILED) {
        f.m_size = 0;
        return fail(ErrorKind::io, "cannot map " + path + ": " + std::strerror(errno));
      }
      f.m_map = map;
      return f;
    }
    std::array<char, 65536> buf{};
    while (true) {
      const auto n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        return fail(core::file_error(ErrorKind::usage, "snapshot", path, err));
      }
      if (n == 0) {
        break;
      }
      f.m_buffer.append(buf.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return f;
  }

  [[nodiscard]] std::string_view content() const {
    return m_map ? std::string_view(static_cast<const char*>(m_map), m_size)
                 : std::string_view(m_buffer);
  }

private:
  void* m_map = nullptr;
  std::size_t m_size = 0;
  std::string m_buffer;
};

// The --devices file, opened before anything else is (the cloud, the ledger), so a missing or
// unreadable one is the error the user sees first. Opened once: a FIFO's writer is not cut off by a
// second open. "-" is stdin, read whole when compared.
class DevicesInput {
public:
  static Result<DevicesInput> open(const std::string& path) {
    DevicesInput in;
    in.m_path = path;
    if (path != "-") {
      in.m_fd = IOT_TRY(core::open_for_reading(path, "devices file"));
    }
    return in;
  }
  DevicesInput(DevicesInput&& other) noexcept
      : m_path(std::move(other.m_path)), m_fd(std::exchange(other.m_fd, -1)) {}
  DevicesInput& operator=(DevicesInput&&) = delete;
  ~DevicesInput() {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
  }
  [[nodiscard]] std::string name() const { return m_path == "-" ? std::string("stdin") : m_path; }

  // Passes the complete lines of each block (a block ends after its last LF; the rest moves on to
  // the next block) with the number of its first line.
  template <class F> Status for_each_block(Context& ctx, core::ProgressSink& progress, F&& f) {
    if (m_fd < 0) {
      auto in = IOT_TRY_CTX(ctx.env.read_stdin(), "stdin");
      return f(std::string_view(in), std::size_t{1});
    }
    struct stat st {};
    if (::fstat(m_fd, &st) == 0 && S_ISREG(st.st_mode)) {
      progress.set_total(static_cast<std::uint64_t>(st.st_size));
      ::posix_fadvise(m_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    return core::read_line_blocks(
        m_fd,
        m_path,
        k_block,
        [&](std::string_view lines, std::size_t first) -> Status { return f(lines, first); },
        [&](std::size_t bytes) { progress.advance(bytes); });
  }

private:
  DevicesInput() = default;
  std::string m_path;
  int m_fd = -1;
};

// One device to compare: views into a devices-file block, a module reading or the snapshot.
struct Probe {
  std::string_view device_name;
  std::string_view secret;
  std::string_view product_key;
  SecretEvidence::Module module = SecretEvidence::Module::none;
  std::size_t line = 0;              // devices-file line
  const std::string* port = nullptr; // the port it was read from
  bool copy_checked = false;         // the module's profile declares a saved copy (§3.2)
  std::string_view copy_secret;      // what it holds ("" = nothing saved)
};

// A module reading, owned.
struct ModuleRow {
  std::string port;
  std::string device_name;
  std::string secret;
  std::string product_key;
  SecretEvidence::Module module = SecretEvidence::Module::none;
  std::optional<std::string> copy_secret; // the saved copy, when the profile declares one
};

core::Cell fingerprint(std::string_view secret) {
  if (secret.empty()) {
    return {};
  }
  return cloud::hex(cloud::sha256(secret)).substr(0, 8);
}

core::Cell secret_cell(std::string_view secret) {
  if (secret.empty()) {
    return {};
  }
  return core::Secret{std::string(secret)};
}

core::Cell text_or_none(std::string_view text) {
  return text.empty() ? core::Cell{} : core::Cell{std::string(text)};
}

class Comparer {
public:
  Comparer(const SecretsCompareOptions& opts,
           Context& ctx,
           const core::SecretSnapshot* snapshot,
           std::string product_key,
           cloud::IotApi* cloud,
           store::Ledger* ledger,
           SecretsCompareReport& report)
      : m_opts(opts), m_ctx(ctx), m_snapshot(snapshot), m_pk(std::move(product_key)),
        m_cloud(cloud), m_ledger(ledger), m_report(report) {
    m_report.table.columns = {"device_name",
                              "verdict",
                              "source",
                              "status",
                              "module_fp",
                              "snapshot_fp",
                              "cloud_fp",
                              "ledger_fp",
                              "explanation",
                              "action"};
    // Modules read on ports may have a saved copy (§3.2); a probe column with --probe.
    if (!m_opts.ports.empty()) {
      m_report.table.columns.insert(m_report.table.columns.begin() + 5, "copy_fp");
    }
    if (m_opts.probe) {
      m_report.table.columns.insert(m_report.table.columns.begin() + 4, "probe");
    }
    if (m_ctx.global.show_secrets) {
      for (const char* c : {"module_secret", "snapshot_secret", "cloud_secret", "ledger_secret"}) {
        m_report.table.columns.emplace_back(c);
      }
      if (!m_opts.ports.empty()) {
        m_report.table.columns.emplace_back("copy_secret");
      }
    }
  }

  Status process(std::span<const Probe> probes) {
    IOT_TRY(product_key_of(probes));
    std::vector<cloud::DeviceDetail> details;
    std::unordered_map<std::string_view, const cloud::DeviceDetail*> live;
    if (m_cloud && !probes.empty()) {
      std::vector<std::string> names;
      names.reserve(probes.size());
      for (const auto& p : probes) {
        names.emplace_back(p.device_name);
      }
      auto got = IOT_TRY_CTX(m_cloud->batch_query_device_detail(m_pk, names), "--cloud");
      details = std::move(got);
      live.reserve(details.size());
      for (const auto& d : details) {
        live.emplace(d.device_name, &d);
      }
    }
    if (m_opts.probe) {
      IOT_TRY(probe_all(probes, live));
    }
    m_names.resize(probes.size());
    m_found.assign(probes.size(), nullptr);
    for (std::size_t i = 0; i < probes.size(); ++i) {
      m_names[i] = probes[i].device_name;
    }
    if (m_snapshot) {
      m_snapshot->find_many(m_names, m_found);
    }
    constexpr std::size_t ahead = 16; // entries, then their secrets, prefetched this far ahead
    for (std::size_t i = 0; i < probes.size(); ++i) {
      if (i + 2 * ahead < probes.size() && m_found[i + 2 * ahead]) {
        __builtin_prefetch(m_found[i + 2 * ahead]);
      }
      if (i + ahead < probes.size() && m_found[i + ahead]) {
        __builtin_prefetch(m_found[i + ahead]->secret);
      }
      const Probe& p = probes[i];
      SecretEvidence e;
      e.module = p.module;
      e.module_secret = p.secret;
      e.module_product_key = p.product_key;
      e.module_copy_checked = p.copy_checked;
      e.module_copy_secret = p.copy_secret;
      e.snapshot_checked = m_snapshot != nullptr;
      e.snapshot_product_key = m_pk;
      if (const auto* s = m_found[i]) {
        e.in_snapshot = true;
        e.snapshot_secret = s->device_secret();
        e.snapshot_status = s->status;
      }
      if (m_cloud) {
        e.cloud_checked = true;
        if (const auto it = live.find(p.device_name); it != live.end()) {
          e.in_cloud = true;
          e.cloud_secret = it->second->device_secret;
          e.cloud_status = core::parse_device_status(it->second->status);
        }
      }
      std::optional<store::TripletRecord> ledger_record;
      if (m_ledger) {
        e.ledger_checked = true;
        auto found = IOT_TRY_CTX(
            m_ledger->find(p.device_name, m_pk.empty() ? std::nullopt : std::optional(m_pk)),
            "--ledger");
        for (auto& r : found) {
          if (r.scheme == core::Scheme::device) {
            ledger_record = std::move(r);
            break;
          }
        }
        if (ledger_record) {
          e.in_ledger = true;
          e.ledger_secret = ledger_record->secret;
          e.ledger_state = store::to_string(ledger_record->state);
        } else {
          ++m_not_in_ledger;
        }
      }
      std::string probe_text;
      if (m_opts.probe) {
        probe_text = probe_finding(m_probed[i], p, e);
      }
      const SecretVerdict v = core::decide(e);
      ++m_report.checked;
      ++m_report.counts[static_cast<std::size_t>(v)];
      if (core::is_difference(v)) {
        ++m_report.differences;
      }
      if (core::is_difference(v) || v == SecretVerdict::unactivated || m_opts.all) {
        add_row(p, e, v, probe_text);
      }
    }
    return {};
  }

  [[nodiscard]] std::size_t not_in_ledger() const { return m_not_in_ledger; }
  [[nodiscard]] std::size_t probes_skipped_online() const { return m_probes_skipped_online; }
  [[nodiscard]] const std::string& product_key() const { return m_pk; }

private:
  // Without a snapshot or --product-key, the product is the modules' (one product a run: the
  // cloud is asked per product).
  Status product_key_of(std::span<const Probe> probes) {
    for (const auto& p : probes) {
      if (p.product_key.empty()) {
        continue;
      }
      if (m_pk.empty() && m_cloud) {
        m_pk = std::string(p.product_key);
      } else if (m_cloud && p.product_key != m_pk && !m_snapshot) {
        return fail(ErrorKind::usage,
                    std::string(p.device_name) + " is of product " + std::string(p.product_key) +
                        ", not " + m_pk + ": compare one product at a time (--product-key PK)");
      }
    }
    if (m_cloud && m_pk.empty()) {
      return fail(ErrorKind::usage,
                  "the cloud is asked per product and nothing names it: give --product-key PK "
                  "(or a snapshot, or modules that store the ProductKey)");
    }
    return {};
  }

  // --probe: one CONNECT signed with the module's secret, unless the cloud says the device is
  // online (a probe would knock it off), unknown or disabled. The probes of a batch run before
  // its verdicts, --concurrency at a time: each is a network round trip or several (DNS, TCP,
  // TLS, CONNACK), so one after another a large list would wait on each in turn.
  struct ProbeOutcome {
    std::string not_run;        // why none ran ("" when the module has no secret)
    std::optional<Error> error; // it could not be set up (settings, secret)
    std::optional<cloud::MqttProbeResult> result;
  };

  Status probe_all(std::span<const Probe> probes,
                   const std::unordered_map<std::string_view, const cloud::DeviceDetail*>& live) {
    m_probed.assign(probes.size(), ProbeOutcome{});
    std::vector<std::size_t> which;
    std::vector<cloud::MqttProbeTarget> targets;
    for (std::size_t i = 0; i < probes.size(); ++i) {
      const Probe& p = probes[i];
      ProbeOutcome& o = m_probed[i];
      if (p.module != SecretEvidence::Module::secret) {
        continue;
      }
      const auto it = live.find(p.device_name);
      if (it == live.end()) {
        o.not_run = "not run: not on the cloud";
        continue;
      }
      const auto status = core::parse_device_status(it->second->status);
      if (status == core::DeviceStatus::online) {
        ++m_probes_skipped_online;
        o.not_run = "not run: ONLINE (a probe would knock it off)";
        continue;
      }
      if (status == core::DeviceStatus::disable) {
        o.not_run = "not run: disabled (refused whatever the secret)";
        continue;
      }
      auto target = prepare_probe(!p.product_key.empty() ? std::string(p.product_key) : m_pk,
                                  std::string(p.device_name),
                                  std::string(p.secret),
                                  "DeviceSecret from the module",
                                  m_opts.mqtt_endpoint,
                                  m_ctx);
      if (!target) {
        if (target.error().kind == ErrorKind::interrupted ||
            target.error().kind == ErrorKind::usage) {
          return fail(target.error().context("--probe"));
        }
        o.error = std::move(target.error());
        continue;
      }
      which.push_back(i);
      targets.push_back(std::move(*target));
    }
    std::vector<cloud::MqttProbeResult> results(targets.size());
    const std::size_t started =
        core::parallel_for(targets.size(), m_opts.concurrency, [&](std::size_t k) {
          results[k] = cloud::probe_mqtt(targets[k]);
        });
    const bool interrupted = started < targets.size() ||
                             std::ranges::any_of(results, [](const cloud::MqttProbeResult& r) {
                               return r.verdict == cloud::ProbeVerdict::interrupted;
                             });
    if (interrupted) {
      return fail(
          Error{ErrorKind::interrupted, "interrupted while probing the MQTT endpoint"}.context(
              "--probe"));
    }
    for (std::size_t k = 0; k < which.size(); ++k) {
      m_probed[which[k]].result = std::move(results[k]);
    }
    return {};
  }

  // What a probe found: sets e.probe on an answer about the secret; the text for the probe
  // column either way.
  std::string probe_finding(const ProbeOutcome& o, const Probe& p, SecretEvidence& e) {
    if (o.error) {
      ++m_report.probes_failed;
      m_ctx.output->warn(std::string(p.device_name) + ": probe failed: " + o.error->message);
      return "failed: " + o.error->message;
    }
    if (!o.result) {
      return o.not_run;
    }
    switch (o.result->verdict) {
    case cloud::ProbeVerdict::accepted:
      e.probe = SecretEvidence::Probe::accepted;
      return std::string("accepted");
    case cloud::ProbeVerdict::bad_credentials:
      e.probe = SecretEvidence::Probe::refused;
      return "refused: " + cloud::connack_text(o.result->connack);
    default:
      break;
    }
    ++m_report.probes_failed;
    std::string text = std::string(cloud::to_string(o.result->verdict)) +
                       (o.result->detail.empty() ? "" : ": " + o.result->detail);
    m_ctx.output->warn(std::string(p.device_name) + ": probe learnt nothing about the secret (" +
                       text + ")");
    return text;
  }

  void
  add_row(const Probe& p, const SecretEvidence& e, SecretVerdict v, const std::string& probe_text) {
    const auto text = core::explain(v, e, p.device_name);
    std::string source = "snapshot";
    if (p.port) {
      source = *p.port;
    } else if (p.line > 0) {
      source = (*m_opts.devices == "-" ? std::string("stdin") : *m_opts.devices) + ":" +
               std::to_string(p.line);
    }
    const auto status =
        e.cloud_checked && e.in_cloud && e.cloud_status != core::DeviceStatus::unknown
            ? e.cloud_status
            : e.snapshot_status;
    const std::string_view module_secret =
        e.module == SecretEvidence::Module::secret ? e.module_secret : std::string_view();
    std::vector<core::Cell> row = {std::string(p.device_name),
                                   std::string(core::to_string(v)),
                                   source,
                                   text_or_none(core::to_string(status)),
                                   fingerprint(module_secret),
                                   fingerprint(e.snapshot_secret),
                                   fingerprint(e.cloud_secret),
                                   fingerprint(e.ledger_secret),
                                   text.explanation,
                                   text.action};
    if (!m_opts.ports.empty()) {
      row.insert(row.begin() + 5, fingerprint(e.module_copy_secret));
    }
    if (m_opts.probe) {
      row.insert(row.begin() + 4, text_or_none(probe_text));
    }
    if (m_ctx.global.show_secrets) {
      row.push_back(secret_cell(module_secret));
      row.push_back(secret_cell(e.snapshot_secret));
      row.push_back(secret_cell(e.cloud_secret));
      row.push_back(secret_cell(e.ledger_secret));
      if (!m_opts.ports.empty()) {
        row.push_back(secret_cell(e.module_copy_secret));
      }
    }
    m_report.table.add_row(std::move(row));
  }

  const SecretsCompareOptions& m_opts;
  Context& m_ctx;
  const core::SecretSnapshot* m_snapshot; // null: none given (--probe)
  std::string m_pk;
  cloud::IotApi* m_cloud;
  store::Ledger* m_ledger;
  SecretsCompareReport& m_report;
  std::size_t m_not_in_ledger = 0;
  std::size_t m_probes_skipped_online = 0;
  std::vector<std::string_view> m_names;           // of the probes, for find_many
  std::vector<const core::SnapshotEntry*> m_found; // their snapshot entries
  std::vector<ProbeOutcome> m_probed;              // --probe: theirs, by index
};

Result<std::vector<ModuleRow>> read_modules(const SecretsCompareOptions& opts, Context& ctx) {
  std::vector<ModuleRow> rows;
  rows.reserve(opts.ports.size());
  for (const auto& port : opts.ports) {
    ModuleConnectOptions connect = opts.connect;
    connect.port = port;
    auto session = IOT_TRY(open_session(connect, ctx, true, true));
    serial::Layout layout = session.driver->default_layout();
    if (opts.layout) {
      auto parsed = IOT_TRY_CTX(serial::parse_layout(*opts.layout), "--layout");
      layout = parsed;
    }
    auto reading = IOT_TRY(read_stable(session, layout, port, ReadScope::brief));
    ModuleRow row;
    row.port = port;
    row.copy_secret = reading.secret_copy;
    const auto& creds = reading.credentials;
    if (creds && !creds->device_secret.empty()) {
      row.module = SecretEvidence::Module::secret;
      row.device_name = creds->device_name;
      row.secret = creds->device_secret;
      row.product_key = creds->product_key;
    } else {
      row.module = SecretEvidence::Module::empty;
      row.device_name =
          creds && !creds->device_name.empty() ? creds->device_name : reading.identity.imei;
      if (row.device_name.empty()) {
        row.device_name = reading.identity.mac;
      }
    }
    if (row.device_name.empty()) {
      return fail(ErrorKind::module,
                  port + ": the module gave neither a DeviceName nor an IMEI or MAC to name it");
    }
    ctx.output->debug(port + ": read " + row.device_name);
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string summary_line(const SecretsCompareReport& r,
                         const SecretsCompareOptions& opts,
                         const core::SecretSnapshot* snapshot,
                         const std::string& pk) {
  std::string s = "secrets compare: " + std::to_string(r.checked) + " device" +
                  (r.checked == 1 ? "" : "s") + " checked against ";
  if (snapshot) {
    s += opts.snapshot + " (" + std::to_string(snapshot->size()) + " devices, " +
         std::string(snapshot->format()) + (pk.empty() ? std::string() : ", product " + pk) + ")";
  } else {
    s += "the live cloud" + (pk.empty() ? std::string() : " (product " + pk + ")");
  }
  s += opts.probe ? " and the MQTT endpoint: " : ": ";
  bool first = true;
  for (std::size_t i = 0; i < r.counts.size(); ++i) {
    const auto v = static_cast<SecretVerdict>(i);
    if (r.counts[i] == 0 && v != SecretVerdict::match) {
      continue;
    }
    s += first ? "" : ", ";
    first = false;
    s += std::to_string(r.counts[i]) + " " + std::string(core::to_string(v));
  }
  s += "; " + std::to_string(r.differences) + (r.differences == 1 ? " differs" : " differ");
  return s;
}

// ---- run_secrets_compare, step by step: check -> snapshot -> sources -> compare -> summary ----

Status check_options(const SecretsCompareOptions& opts) {
  if (opts.snapshot.empty() && !opts.probe) {
    return fail(ErrorKind::usage,
                "nothing to hold the modules' secrets against: give --snapshot FILE (what "
                "`secrets export` wrote while the fleet was healthy), or --probe to ask the MQTT "
                "endpoint itself");
  }
  if (opts.probe && opts.ports.empty() && !opts.devices) {
    return fail(ErrorKind::usage,
                "--probe signs a CONNECT with each module's secret: give --port P (read from the "
                "module) or --devices FILE with a device_secret column (e.g. `module info -o csv "
                "--show-secrets`)");
  }
  if (opts.mqtt_endpoint && !opts.probe) {
    return fail(ErrorKind::usage, "--mqtt-endpoint is where --probe connects: add --probe");
  }
  if (opts.ports.empty() && !opts.devices && !opts.cloud && !opts.ledger) {
    return fail(ErrorKind::usage,
                "nothing to compare the snapshot with: give at least one of --port P (a "
                "module), --devices FILE (DeviceNames or records read from modules), --cloud "
                "(the live cloud), --ledger (the factory ledger)");
  }
  if (opts.snapshot == "-" && opts.devices && *opts.devices == "-") {
    return fail(ErrorKind::usage, "--snapshot and --devices cannot both be - (stdin)");
  }
  if (opts.product_key) {
    IOT_TRY_CTX(core::validate_product_key(*opts.product_key), "--product-key");
  }
  return {};
}

std::string ms_since(std::chrono::steady_clock::time_point t) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - t)
                            .count()) +
         " ms";
}

// The snapshot, read and indexed, and the ProductKey of the comparison ("" when neither the
// snapshot nor --product-key names one).
struct LoadedSnapshot {
  std::unique_ptr<InputFile> file;              // the snapshot's views point into it: never moved
  std::optional<core::SecretSnapshot> snapshot; // none given (--probe)
  std::string product_key;
};

Result<LoadedSnapshot> load_snapshot(const SecretsCompareOptions& opts, Context& ctx) {
  if (opts.snapshot.empty()) {
    if (opts.product_key) {
      return LoadedSnapshot{nullptr, std::nullopt, *opts.product_key};
    }
    return LoadedSnapshot{};
  }
  const auto started = std::chrono::steady_clock::now();
  auto file =
      std::make_unique<InputFile>(IOT_TRY_CTX(InputFile::open(opts.snapshot, ctx), "--snapshot"));
  auto snapshot =
      IOT_TRY_CTX(core::SecretSnapshot::parse(file->content()), "snapshot " + opts.snapshot);
  std::string pk = snapshot.product_key();
  if (opts.product_key) {
    if (!pk.empty() && pk != *opts.product_key) {
      return fail(ErrorKind::usage,
                  "--product-key " + *opts.product_key + " but the snapshot " + opts.snapshot +
                      " is of product " + pk + ": give the snapshot of that product");
    }
    pk = *opts.product_key;
  }
  ctx.output->debug("snapshot " + opts.snapshot + ": " + std::to_string(snapshot.size()) +
                    " devices, format " + std::string(snapshot.format()) +
                    ", read and indexed in " + ms_since(started));
  return LoadedSnapshot{std::move(file), std::move(snapshot), std::move(pk)};
}

// What the snapshot is compared with besides modules and a devices file: the cloud, the ledger.
struct Sources {
  std::optional<CloudSession> cloud_session;
  cloud::IotApi* cloud = nullptr;
  std::optional<LedgerHandle> ledger;
};

Result<Sources> open_sources(const SecretsCompareOptions& opts,
                             Context& ctx,
                             cloud::IotApi* cloud_api,
                             std::string& pk) {
  Sources s;
  if (opts.cloud || opts.probe) {
    if (cloud_api) {
      s.cloud = cloud_api;
    } else {
      CloudOptions co;
      co.concurrency = std::max<std::size_t>(opts.concurrency, 1);
      s.cloud_session = IOT_TRY_CTX(open_cloud(ctx, co), "--cloud");
      s.cloud = s.cloud_session->api.get();
      if (pk.empty()) {
        if (auto configured = s.cloud_session->settings.value(cloud::key::product_key);
            configured && !configured->empty()) {
          pk = IOT_TRY_CTX(product_key_or_config(std::nullopt, s.cloud_session->settings),
                           "--cloud");
        }
      }
    }
    // Without a snapshot the ProductKey may come from the modules (Comparer::process).
    if (pk.empty() && !(opts.snapshot.empty() && opts.probe)) {
      return fail(ErrorKind::usage,
                  std::string(opts.cloud ? "--cloud" : "--probe") +
                      " needs the ProductKey: the snapshot has none; give --product-key PK");
    }
  }
  if (opts.ledger) {
    s.ledger = IOT_TRY_CTX(open_configured_ledger(ctx, store::OpenMode::read), "--ledger");
  }
  return s;
}

Status compare_modules(const SecretsCompareOptions& opts, Context& ctx, Comparer& comparer) {
  const auto modules = IOT_TRY(read_modules(opts, ctx));
  std::vector<Probe> probes; // one batch: one cloud call for them all, their probes at once
  probes.reserve(modules.size());
  for (const auto& m : modules) {
    Probe& p = probes.emplace_back();
    p.device_name = m.device_name;
    p.secret = m.secret;
    p.product_key = m.product_key;
    p.module = m.module;
    p.port = &m.port;
    p.copy_checked = m.copy_secret.has_value();
    p.copy_secret = m.copy_secret ? std::string_view(*m.copy_secret) : std::string_view();
  }
  return comparer.process(probes);
}

// A devices file, streamed block by block.
Status compare_devices_file(DevicesInput& input, Context& ctx, Comparer& comparer) {
  const std::string name = input.name();
  core::SecretRecordParser parser(core::SecretFileRole::devices);
  std::vector<Probe> probes;
  core::SecretRecord r;
  auto progress = ctx.output->progress("secrets compare");
  const auto probe_of = [&](std::size_t n) {
    Probe p;
    p.device_name = r.device_name;
    p.secret = r.device_secret;
    p.product_key = r.product_key;
    p.module = !r.device_secret.empty() ? SecretEvidence::Module::secret
               : r.name_from_imei       ? SecretEvidence::Module::empty
                                        : SecretEvidence::Module::none;
    p.line = n;
    return p;
  };
  auto ok = input.for_each_block(
      ctx, *progress, [&](std::string_view lines, std::size_t first) -> Status {
        probes.clear();
        IOT_TRY(
            core::for_each_line(lines, first, [&](std::string_view line, std::size_t n) -> Status {
              if (IOT_TRY_CTX(parser.parse(line, r), name + ": line " + std::to_string(n))) {
                probes.push_back(probe_of(n));
              }
              return {};
            }));
        return comparer.process(probes);
      });
  progress->finish();
  IOT_TRY(std::move(ok));
  if (parser.format().empty()) {
    return fail(ErrorKind::usage,
                name + " is empty: give one DeviceName per line, or records read from modules "
                       "(a CSV with a device_name column)");
  }
  return {};
}

// Neither modules nor a devices file: every device of the snapshot against the cloud/ledger.
Status compare_whole_snapshot(const core::SecretSnapshot& snapshot, Comparer& comparer) {
  std::vector<Probe> probes;
  const auto entries = snapshot.entries();
  for (std::size_t i = 0; i < entries.size(); i += k_snapshot_batch) {
    probes.clear();
    for (std::size_t j = i; j < std::min(entries.size(), i + k_snapshot_batch); ++j) {
      Probe p;
      p.device_name = entries[j].device_name();
      probes.push_back(p);
    }
    IOT_TRY(comparer.process(probes));
    if (core::interrupt_requested()) {
      return fail(ErrorKind::interrupted, "secrets compare interrupted");
    }
  }
  return {};
}

} // namespace

Result<SecretsCompareReport>
run_secrets_compare(const SecretsCompareOptions& opts, Context& ctx, cloud::IotApi* cloud_api) {
  IOT_TRY(check_options(opts));
  auto [file, loaded, pk] = IOT_TRY(load_snapshot(opts, ctx));
  const core::SecretSnapshot* snapshot = loaded ? &*loaded : nullptr;
  std::optional<DevicesInput> devices;
  if (opts.devices) {
    devices.emplace(IOT_TRY(DevicesInput::open(*opts.devices)));
  }
  auto sources = IOT_TRY(open_sources(opts, ctx, cloud_api, pk));
  store::Ledger* ledger = sources.ledger ? sources.ledger->ledger.get() : nullptr;

  const auto started = std::chrono::steady_clock::now();
  SecretsCompareReport report;
  report.snapshot_devices = snapshot ? snapshot->size() : 0;
  Comparer comparer(opts, ctx, snapshot, pk, sources.cloud, ledger, report);
  if (!opts.ports.empty()) {
    IOT_TRY(compare_modules(opts, ctx, comparer));
  }
  if (devices) {
    IOT_TRY(compare_devices_file(*devices, ctx, comparer));
  }
  if (opts.ports.empty() && !opts.devices && snapshot) {
    IOT_TRY(compare_whole_snapshot(*snapshot, comparer));
  }
  if (comparer.probes_skipped_online() > 0) {
    ctx.output->warn(std::to_string(comparer.probes_skipped_online()) +
                     " ONLINE device(s) not probed: a probe would knock the real device off "
                     "(\"kicked by the same device\", seed FAQ §6); `iotfleet creds probe DN "
                     "--force` if it is yours");
  }

  if (ledger && comparer.not_in_ledger() > 0) {
    ctx.output->warn(std::to_string(comparer.not_in_ledger()) + " of " +
                     std::to_string(report.checked) + " devices are not in the ledger " +
                     sources.ledger->path + " (burned by another station?): compared without it");
  }
  ctx.output->debug("compared " + std::to_string(report.checked) + " devices in " +
                    ms_since(started));
  report.summary = summary_line(report, opts, snapshot, comparer.product_key());
  return report;
}

void register_secrets_compare(CLI::App& secrets_group, Context& ctx) {
  auto opts = std::make_shared<SecretsCompareOptions>();
  auto* cmd = secrets_group.add_subcommand(
      "compare",
      "Module vs healthy-time snapshot vs live cloud vs ledger: which side changed the secret");
  cmd->add_option("--snapshot",
                  opts->snapshot,
                  "What `secrets export` wrote while the fleet was healthy (csv, json or ndjson; "
                  "the console's batch CSV too), - for stdin; required unless --probe")
      ->option_text(std::string(value_name::file_or_stdin));
  add_connection_options(cmd, opts->connect, &opts->layout, PortUse::optional, &opts->ports);
  cmd->add_option("--devices",
                  opts->devices,
                  "A list of DeviceNames: one per line (# comments), or a CSV / JSON / NDJSON file "
                  "with a device_name column (what secrets export, pool export, devices "
                  "batch-register -O write); - reads standard input")
      ->option_text(std::string(value_name::file_or_stdin));
  cmd->add_flag("--cloud", opts->cloud, "Also the live cloud's secret and status");
  cmd->add_flag("--with-ledger",
                opts->ledger,
                "Also the factory ledger's burned secret (the ledger of --ledger / the config)");
  // The old `--ledger [FILE]` of this command both chose the ledger and turned the comparison
  // on; --ledger is the global ledger path now.
  cmd->add_option_function<std::vector<std::string>>(
         "--ledger",
         [&ctx, opts](const std::vector<std::string>& v) {
           ctx.output->warn(deprecation_warning("secrets compare --ledger [FILE]",
                                                "--with-ledger (and the "
                                                "global --ledger FILE)"));
           opts->ledger = true;
           if (!v.empty() && !v.front().empty()) {
             ctx.global.settings.ledger = v.front();
           }
         },
         "Deprecated: --with-ledger")
      ->expected(0, 1)
      ->group("");
  cmd->add_flag("--probe",
                opts->probe,
                "Ask the MQTT endpoint whether each module's secret is the cloud's: one CONNECT "
                "each, the strongest cloud-side evidence; implies --cloud, skips ONLINE devices");
  cmd->add_option("--mqtt-endpoint",
                  opts->mqtt_endpoint,
                  "With --probe: connect here instead of the devices' endpoint (a lab broker)")
      ->option_text("HOST[:PORT]");
  add_product_key(cmd, opts->product_key, "the snapshot's, else the config's");
  cmd->add_flag("--all", opts->all, "List matching devices too (default: only the others)");
  add_concurrency(cmd, opts->concurrency, ctx, 64, "--parallel");
  cmd->footer(
      "Seed FAQ §3: export every secret while the fleet is healthy (secrets export); when a "
      "device fails, compare. The devices come from --port (read from the modules), --devices "
      "(a list; a file with a device_secret column, e.g. `module info -o csv --show-secrets`, "
      "gives the modules' secrets too), or --cloud / --with-ledger alone (every snapshot "
      "device). Verdicts: match; module-side (the module's secret differs from the "
      "snapshot: re-burn it, keep the module for analysis); cloud-side (the module equals the "
      "snapshot, the live cloud does not: delete and re-register the device, report to Alibaba "
      "Cloud); not-in-cloud; not-in-snapshot; unactivated (never connected: a note, not a "
      "difference); ledger-differs (the factory burned another secret than the snapshot's); "
      "no-secret-on-module; mismatch (the module's secret is not the cloud's and nothing "
      "healthy-time says which side changed).\n--probe signs one CONNECT with each module's "
      "secret, --concurrency at a time, and reads the CONNACK: accepted means the cloud holds "
      "it; refused is held against the snapshot, else the module's saved copy (a profile's "
      "secret_copy, seed FAQ §3.2), else the ledger: the module differs -> module-side, equal "
      "-> cloud-side. Without --snapshot the live cloud and those references decide. An ONLINE "
      "device is never probed (it would be knocked off); an accepted probe of an UNACTIVE "
      "device is its first connection.\nRows: the devices that do not match (all with --all), each "
      "with "
      "the explanation, what to do and the first 8 hex digits of each secret's SHA-256; the "
      "secrets themselves only with --show-secrets. Counts on stderr.");
  add_exit_codes(cmd,
                 {{0, "every device matches"},
                  {2, "bad input (the file, the line and the fix), or nothing to compare with"},
                  {3, "a module could not be read"},
                  {4,
                   "the cloud refused or could not be reached, or a probe learnt nothing (the "
                   "network, TLS, a timeout) and nothing differs"},
                  {6, "a difference was found (see the verdicts)"},
                  {130, "interrupted"}});
  cmd->callback([&ctx, opts] {
    auto report = value_or_throw(run_secrets_compare(*opts, ctx));
    ctx.output->emit(report.table);
    ctx.output->info(report.summary);
    if (report.differences > 0) {
      throw CommandFailure(Error{ErrorKind::difference,
                                 std::to_string(report.differences) + " of " +
                                     std::to_string(report.checked) +
                                     " devices differ (see the verdicts)"});
    }
    if (report.probes_failed > 0) {
      throw CommandFailure(Error{ErrorKind::network,
                                 std::to_string(report.probes_failed) +
                                     " probe(s) could not reach an answer from the MQTT endpoint "
                                     "(see the probe column): nothing about those secrets is "
                                     "known; check the network, --ca-file, --mqtt-endpoint"});
    }
  });
}

} // namespace iot::commands
