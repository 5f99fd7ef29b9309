// SPDX-License-Identifier: MIT
#include "commands/diagnose_device.hpp"

#include "commands/cloud_access.hpp"
#include "commands/common_options.hpp"
#include "commands/config.hpp"
#include "commands/creds.hpp"
#include "commands/diagnose.hpp"
#include "core/file.hpp"
#include "core/secret_file.hpp"
#include "core/validate.hpp"
#include "diagnose/device_rules.hpp"
#include "store/ledger.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace iot::commands {
namespace {

struct Sources {
  core::Table table;
  std::size_t used = 0;
  std::string failures; // "; ledger failed: …" for each source that failed

  Sources() { table.columns = {"source", "status", "detail"}; }
  void used_one(std::string_view source, std::string detail) {
    ++used;
    table.add_row({std::string(source), std::string("used"), std::move(detail)});
  }
  void missing(std::string_view source, std::string detail) {
    table.add_row({std::string(source), std::string("not used"), std::move(detail)});
  }
  void failed(std::string_view source, std::string detail) {
    failures += "; " + std::string(source) + " failed: " + detail;
    table.add_row({std::string(source), std::string("failed"), std::move(detail)});
  }
};

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(std::tolower(c));
  });
  return out;
}

std::int64_t utc_ms(const std::string& text) {
  return text.empty() ? 0 : diagnose::parse_time(text, 0).value_or(0);
}

// The module on the bench: identity, stored credentials, health.
void gather_module(const DiagnoseDeviceOptions& opts,
                   Context& ctx,
                   diagnose::DeviceFacts& facts,
                   Sources& sources) {
  if (opts.connect.port.empty()) {
    sources.missing("module", "give --port P to read the module on the bench");
    return;
  }
  const auto& connect = opts.connect;
  auto session = open_session(connect, ctx, true, true);
  if (!session) {
    sources.failed("module", session.error().message);
    return;
  }
  auto& driver = *session->driver;
  serial::Layout layout = driver.default_layout();
  if (opts.layout) {
    layout = serial::parse_layout(*opts.layout).value_or(layout);
  }
  auto reading = read_stable(*session, layout, connect.port);
  if (!reading) {
    sources.failed("module", reading.error().message);
    return;
  }
  diagnose::ModuleFacts m;
  m.port = connect.port;
  const auto& id = reading->identity;
  m.cellular = id.mac.empty() || !id.imei.empty();
  m.imei = id.imei.empty() ? id.mac : id.imei;
  if (m.cellular) {
    const auto kind = core::classify_imei(id.imei);
    if (kind != core::ImeiClass::valid) {
      m.imei_problem = std::string(core::to_string(kind));
    }
  }
  m.label_imei = opts.label_imei.value_or("");
  if (reading->credentials && !reading->credentials->device_secret.empty()) {
    m.has_credentials = true;
    m.product_key = reading->credentials->product_key;
    m.device_name = reading->credentials->device_name;
    m.secret = reading->credentials->device_secret;
  }
  std::string detail = driver.name().data() + std::string(" on ") + connect.port + ", " +
                       (m.cellular ? "IMEI " : "MAC ") + m.imei;
  if (auto health = driver.health()) {
    m.sim = health->sim;
    m.rssi_dbm = health->rssi_dbm;
    m.reg_stat = health->reg_stat;
    m.reg_status = health->reg_status;
    m.attached = health->attached;
    if (health->rssi_dbm) {
      detail += ", signal " + std::to_string(*health->rssi_dbm) + " dBm";
    }
  } else {
    detail += "; health not read: " + health.error().message;
  }
  facts.module = std::move(m);
  sources.used_one("module", detail);
}

// The ProductKey to look things up with: the flag, the config, the module's, the ledger's.
std::string resolve_product_key(const DiagnoseDeviceOptions& opts,
                                const cloud::Settings* settings,
                                const diagnose::DeviceFacts& facts,
                                const std::optional<store::TripletRecord>& ledger_record) {
  if (opts.product_key) {
    return *opts.product_key;
  }
  if (settings) {
    if (auto pk = settings->value(cloud::key::product_key); pk && !pk->empty()) {
      return *pk;
    }
  }
  if (facts.module && !facts.module->product_key.empty()) {
    return facts.module->product_key;
  }
  if (ledger_record) {
    return ledger_record->product_key;
  }
  return {};
}

void gather_ledger(const DiagnoseDeviceOptions& opts,
                   const cloud::Settings& settings,
                   diagnose::DeviceFacts& facts,
                   std::optional<store::TripletRecord>& record,
                   Sources& sources) {
  if (opts.no_ledger) {
    sources.missing("ledger", "--no-ledger");
    return;
  }
  const auto path = settings.value(cloud::key::ledger);
  if (!path || !store::ledger_may_exist(*path)) {
    sources.missing("ledger",
                    "no factory ledger at " + (path ? store::display_location(*path) : "(none)"));
    return;
  }
  auto ledger = store::open_ledger(*path, store::LedgerOptions(store::OpenMode::read));
  if (!ledger) {
    sources.failed("ledger", ledger.error().message);
    return;
  }
  diagnose::LedgerFacts l;
  auto found = (*ledger)->find(facts.device_name, opts.product_key);
  if (!found) {
    sources.failed("ledger", found.error().message);
    return;
  }
  if (!found->empty()) {
    record = found->front();
    l.found = true;
    l.state = std::string(store::to_string(record->state));
    l.imei = record->imei;
    l.secret = record->secret;
    l.station = record->station;
    l.burned_at_ms = record->burned_at_ms;
  }
  if (facts.module && !facts.module->imei.empty()) {
    if (auto bound = (*ledger)->find_by_imei(facts.module->imei); bound && *bound) {
      l.module_imei_holds = (*bound)->device_name;
    }
  }
  sources.used_one("ledger",
                   store::display_location(*path) +
                       (l.found ? ": " + facts.device_name + " " + l.state +
                                      (l.imei.empty() ? "" : " to IMEI " + l.imei)
                                : ": " + facts.device_name + " not in it"));
  facts.ledger = std::move(l);
}

Status gather_snapshot(const DiagnoseDeviceOptions& opts,
                       diagnose::DeviceFacts& facts,
                       Sources& sources,
                       Context& ctx) {
  if (!opts.snapshot) {
    sources.missing("snapshot",
                    "give --snapshot FILE (a healthy-time `secrets export`) to tell which side "
                    "changed a secret");
    return {};
  }
  const std::string content = *opts.snapshot == "-"
                                  ? IOT_TRY_CTX(ctx.env.read_stdin(), "--snapshot -")
                                  : IOT_TRY(core::read_file(*opts.snapshot, "snapshot"));
  auto snapshot =
      IOT_TRY_CTX(core::SecretSnapshot::parse(content, 1), "--snapshot " + *opts.snapshot);
  diagnose::SnapshotFacts s;
  s.product_key = snapshot.product_key();
  if (const auto* entry = snapshot.find(facts.device_name)) {
    s.found = true;
    s.secret = std::string(entry->device_secret());
    s.status = entry->status;
  }
  sources.used_one("snapshot",
                   *opts.snapshot + ": " + std::to_string(snapshot.size()) + " devices" +
                       (s.found ? "" : ", " + facts.device_name + " not among them"));
  facts.snapshot = std::move(s);
  return {};
}

void gather_cloud(const DiagnoseDeviceOptions& opts,
                  Context& ctx,
                  diagnose::DeviceFacts& facts,
                  Sources& sources) {
  if (opts.no_cloud) {
    sources.missing("cloud", "--no-cloud");
    return;
  }
  if (facts.product_key.empty()) {
    sources.missing("cloud", "no ProductKey: give --product-key PK");
    return;
  }
  auto session = open_cloud(ctx, CloudOptions{1, 4});
  if (!session) {
    sources.missing("cloud", session.error().message);
    return;
  }
  auto& api = *session->api;
  diagnose::CloudFacts c;
  auto product = api.query_product(facts.product_key);
  if (!product) {
    if (!cloud::has_error_code(product.error(), "NotExistedProduct")) {
      sources.failed("cloud", product.error().message);
      return;
    }
    // Seed FAQ §4: a ProductKey typed in another letter case names no product.
    const auto wanted = lower(facts.product_key);
    for (int page = 1; page <= 50; ++page) {
      auto list = api.query_product_list(page, 200);
      if (!list) {
        break;
      }
      for (const auto& p : list->products) {
        if (lower(p.product_key) == wanted) {
          c.product_key_other_case = p.product_key;
        }
      }
      if (!c.product_key_other_case.empty() || page >= list->page_count) {
        break;
      }
    }
    facts.cloud = std::move(c);
    sources.used_one("cloud", "QueryProduct " + facts.product_key + ": not found");
    return;
  }
  c.product_found = true;
  auto detail = api.query_device_detail(cloud::DeviceRef{facts.product_key, facts.device_name, {}});
  if (!detail) {
    if (!cloud::has_error_code(detail.error(), "NotExistedDevice")) {
      sources.failed("cloud", detail.error().message);
      return;
    }
    facts.cloud = std::move(c);
    sources.used_one("cloud", "QueryDeviceDetail " + facts.device_name + ": not found");
    return;
  }
  c.device_found = true;
  c.status = core::parse_device_status(detail->status);
  c.active_ms = utc_ms(detail->utc_active);
  c.online_ms = utc_ms(detail->utc_online);
  c.ip = detail->ip_address;
  c.secret = detail->device_secret;
  std::string text = "status " + detail->status;
  if (!detail->utc_active.empty()) {
    text += ", activated " + detail->utc_active;
  }
  if (!detail->utc_online.empty()) {
    text += ", last online " + detail->utc_online;
  }
  if (!detail->ip_address.empty()) {
    text += ", IP " + detail->ip_address;
  }
  facts.cloud = std::move(c);
  sources.used_one("cloud", text);
}

// --probe: one MQTT connection signed with the module's secret (else the ledger's), only when the
// cloud says the device is not online (a probe knocks a connected device off).
Status gather_probe(const DiagnoseDeviceOptions& opts,
                    Context& ctx,
                    diagnose::DeviceFacts& facts,
                    Sources& sources) {
  if (!opts.probe) {
    sources.missing("probe",
                    "give --probe to ask the MQTT endpoint itself whether the module's (or the "
                    "ledger's) secret is the cloud's");
    return {};
  }
  if (!facts.cloud || !facts.cloud->device_found) {
    sources.failed("probe",
                   "not run: it needs the cloud's record of the device first (a probe knocks a "
                   "connected device off); give an AccessKey and drop --no-cloud");
    return {};
  }
  if (facts.cloud->status == core::DeviceStatus::online) {
    sources.failed("probe",
                   "not run: the device is ONLINE and a probe would knock it off (\"kicked by "
                   "the same device\"); `iotfleet creds probe --force` if it is yours");
    return {};
  }
  std::string secret;
  std::string from;
  if (facts.module && facts.module->has_credentials && !facts.module->secret.empty()) {
    secret = facts.module->secret;
    from = "module";
  } else if (facts.ledger && facts.ledger->found && !facts.ledger->secret.empty()) {
    secret = facts.ledger->secret;
    from = "ledger";
  } else {
    sources.failed("probe",
                   "not run: no secret to probe; give --port P (the module's) or a ledger that "
                   "holds the device");
    return {};
  }
  auto result = probe_secret(facts.product_key,
                             facts.device_name,
                             secret,
                             "DeviceSecret from the " + from,
                             opts.mqtt_endpoint,
                             ctx);
  if (!result) {
    if (result.error().kind == ErrorKind::interrupted || result.error().kind == ErrorKind::usage) {
      return fail(result.error().context("--probe"));
    }
    sources.failed("probe", result.error().message);
    return {};
  }
  diagnose::ProbeFacts p;
  p.accepted = result->verdict == cloud::ProbeVerdict::accepted;
  p.refused = result->verdict == cloud::ProbeVerdict::bad_credentials;
  p.secret_from = from;
  p.detail = result->detail;
  const std::string text = "the " + from +
                           "'s secret: " + std::string(cloud::to_string(result->verdict)) +
                           (result->detail.empty() ? "" : " (" + result->detail + ")");
  if (p.accepted || p.refused) {
    facts.probe = std::move(p);
    sources.used_one("probe", text);
  } else {
    sources.failed("probe", text + ": nothing about the secret is known");
  }
  return {};
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) {
    out += (out.empty() ? "" : " | ") + i;
  }
  return out;
}

} // namespace

Result<DiagnoseDeviceResult> run_diagnose_device(const DiagnoseDeviceOptions& opts, Context& ctx) {
  if (auto ok = core::validate_device_name(opts.device_name); !ok) {
    return fail(ErrorKind::usage, "DeviceName " + opts.device_name + ": " + ok.error().message);
  }
  if (opts.product_key) {
    IOT_TRY(core::validate_product_key(*opts.product_key));
  }
  if (opts.label_imei && core::classify_imei(*opts.label_imei) != core::ImeiClass::valid) {
    return fail(ErrorKind::usage,
                "--label-imei " + *opts.label_imei + ": not a valid IMEI (15 digits, Luhn)");
  }
  auto offset = IOT_TRY(parse_utc_offset(opts.utc_offset));
  auto settings = IOT_TRY(load_settings(ctx));

  Sources sources;
  diagnose::DeviceFacts facts;
  facts.device_name = opts.device_name;
  gather_module(opts, ctx, facts, sources);
  std::optional<store::TripletRecord> ledger_record;
  gather_ledger(opts, settings, facts, ledger_record, sources);
  facts.product_key = resolve_product_key(opts, &settings, facts, ledger_record);
  IOT_TRY(gather_snapshot(opts, facts, sources, ctx));
  if (facts.product_key.empty() && facts.snapshot) {
    // The snapshot's ProductKey, when nothing else named one.
    facts.product_key = facts.snapshot->product_key;
  }
  gather_cloud(opts, ctx, facts, sources);
  IOT_TRY(gather_probe(opts, ctx, facts, sources));
  if (opts.log) {
    auto log = IOT_TRY(analyse_device_log(
        *opts.log,
        facts.product_key.empty() ? std::nullopt : std::optional(facts.product_key),
        opts.device_name,
        offset,
        ctx));
    sources.used_one(
        "log", *opts.log + ": " + std::to_string(log.records) + " records of " + opts.device_name);
    facts.log = std::move(log);
  } else {
    sources.missing("log",
                    "give --log FILE (the console's device log: Maintenance → Device Log) for "
                    "the disconnect reasons; no API returns them");
  }
  if (sources.used == 0) {
    return fail(ErrorKind::usage,
                "no source could be used for " + opts.device_name +
                    ": give --log FILE, --port P, --snapshot FILE or an AccessKey for the cloud" +
                    sources.failures);
  }

  DiagnoseDeviceResult result;
  result.sources = std::move(sources.table);
  result.findings.columns = {"rank", "cause", "confidence", "detail", "evidence", "fix"};
  const auto found = diagnose::device_findings(facts);
  std::int64_t rank = 0;
  for (const auto& f : found) {
    result.findings.add_row({++rank,
                             f.kind,
                             std::string(diagnose::to_string(f.confidence)),
                             f.detail,
                             join(f.evidence),
                             f.fix});
  }
  result.causes = found.size();
  return result;
}

void register_diagnose_device(CLI::App& diagnose, Context& ctx) {
  auto opts = std::make_shared<DiagnoseDeviceOptions>();
  auto device = std::make_shared<DeviceNamesInput>();
  auto* cmd = diagnose.add_subcommand(
      "device", "Why one device is offline: cloud, log, module, ledger and snapshot, ranked");
  add_device_names(cmd, *device, {DeviceArity::one, false, true, "DeviceName"});
  add_product_key(cmd, opts->product_key, "the config's, the module's, the ledger's");
  cmd->add_option(
         "--log", opts->log, "The console's exported device log (CSV or JSON lines), - for stdin")
      ->option_text(std::string(value_name::file_or_stdin));
  add_connection_options(cmd, opts->connect, &opts->layout, PortUse::optional_one);
  cmd->add_option("--label-imei", opts->label_imei, "The IMEI printed on the module's label")
      ->option_text("IMEI");
  cmd->add_option("--snapshot",
                  opts->snapshot,
                  "A healthy-time `secrets export` file (csv, json or ndjson), - for stdin")
      ->option_text(std::string(value_name::file_or_stdin));
  cmd->add_flag("--no-cloud", opts->no_cloud, "Do not ask the cloud");
  cmd->add_flag("--no-ledger", opts->no_ledger, "Do not read the factory ledger");
  cmd->add_flag("--probe",
                opts->probe,
                "Ask the MQTT endpoint whether the module's (else the ledger's) secret is the "
                "cloud's: one CONNECT, only when the cloud says the device is not online");
  cmd->add_option("--mqtt-endpoint",
                  opts->mqtt_endpoint,
                  "With --probe: connect here instead of the device's endpoint (a lab broker)")
      ->option_text("HOST[:PORT]");
  cmd->add_option("--utc-offset", opts->utc_offset, "Zone of log times written without one")
      ->option_text("+HH:MM");
  cmd->footer(
      "Causes are ranked by confidence, root causes (identity, credentials, SIM) before their "
      "symptoms (keepalive timeouts, never activated); each names its evidence and the fix. "
      "The sources used and missing are listed on stderr.");
  add_exit_codes(cmd,
                 {{0, "no cause found in the sources used"},
                  {2, "bad input (a file, a value; the fix is named)"},
                  {6, "causes found (ranked)"},
                  {130, "interrupted"}});
  cmd->callback([&ctx, opts, device] {
    opts->device_name = one_device_name(*device, ctx);
    auto result = value_or_throw(run_diagnose_device(*opts, ctx));
    for (const auto& row : result.sources.rows) {
      const auto& source = std::get<std::string>(row[0]);
      const auto& status = std::get<std::string>(row[1]);
      const auto& detail = std::get<std::string>(row[2]);
      ctx.output->info("source " + source + ": " + status + " — " + detail);
    }
    ctx.output->emit(result.findings);
    if (result.causes > 0) {
      throw CommandFailure(Error{ErrorKind::difference,
                                 std::to_string(result.causes) + " possible cause(s) for " +
                                     opts->device_name + "; the first is the most likely"});
    }
    ctx.output->info("no cause found for " + opts->device_name + " in the sources used");
  });
}

} // namespace iot::commands
