// SPDX-License-Identifier: MIT
#include "commands/pool.hpp"

#include "commands/ledger_access.hpp"
#include "commands/record_file.hpp"
#include "core/csv.hpp"
#include "core/file.hpp"
#include "core/text.hpp"
#include "core/triplet_file.hpp"
#include "store/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>

namespace iot::commands {
namespace {

constexpr std::uintmax_t k_max_pool_file = 512ull * 1024 * 1024;
constexpr std::size_t k_problems_shown = 50;
const DeviceNamesSpec k_one_device{DeviceArity::one, false, true, "DeviceName"};
const DeviceNamesSpec k_optional_device{DeviceArity::one, false, false, "DeviceName"};

Result<std::string> read_input(const std::string& file, Context& ctx) {
  if (file == "-") {
    return ctx.env.read_stdin();
  }
  return core::read_file(file, "pool file", {ErrorKind::usage, k_max_pool_file});
}

std::string source_name(const std::string& file) {
  return file == "-" ? std::string("stdin") : std::filesystem::path(file).filename().string();
}

core::Cell opt_text(const std::string& text) {
  return text.empty() ? core::Cell{} : core::Cell{text};
}

core::Cell opt_time(std::int64_t ms) {
  return ms == 0 ? core::Cell{} : core::Cell{core::iso8601_utc(ms)};
}

const std::vector<std::string> k_record_columns = {"product_key",
                                                   "device_name",
                                                   "scheme",
                                                   "secret",
                                                   "state",
                                                   "imei",
                                                   "iccid",
                                                   "station",
                                                   "port",
                                                   "attempts",
                                                   "burned_at",
                                                   "updated_at",
                                                   "source"};

std::vector<core::Cell> record_row(const store::TripletRecord& r) {
  return {r.product_key,
          r.device_name,
          std::string(store::to_string(r.scheme)),
          core::Secret{r.secret},
          std::string(store::to_string(r.state)),
          opt_text(r.imei),
          opt_text(r.iccid),
          opt_text(r.station),
          opt_text(r.port),
          static_cast<std::int64_t>(r.attempts),
          opt_time(r.burned_at_ms),
          opt_time(r.updated_at_ms),
          opt_text(r.source)};
}

// The record as our own CSV / NDJSON (what pool import reads back): secrets in full.
std::vector<std::string> export_fields(const store::TripletRecord& r) {
  return {r.product_key,
          r.device_name,
          r.scheme == core::Scheme::device ? r.secret : "",
          r.scheme == core::Scheme::product ? r.secret : "",
          std::string(store::to_string(r.state)),
          r.imei,
          r.iccid,
          r.station,
          r.port,
          std::to_string(r.attempts),
          core::iso8601_utc(r.burned_at_ms)};
}

const std::vector<std::string> k_export_header = {"product_key",
                                                  "device_name",
                                                  "device_secret",
                                                  "product_secret",
                                                  "state",
                                                  "imei",
                                                  "iccid",
                                                  "station",
                                                  "port",
                                                  "attempts",
                                                  "burned_at"};

} // namespace

Result<core::Table> run_pool_import(const PoolImportOptions& opts, Context& ctx) {
  core::TripletParseOptions parse_options;
  parse_options.scheme = opts.scheme == "product" ? core::Scheme::product : core::Scheme::device;
  auto content = IOT_TRY(read_input(opts.file, ctx));
  auto parsed = IOT_TRY_CTX(core::parse_triplet_file(content, parse_options), opts.file);
  auto& file = parsed;
  std::vector<core::RowProblem> problems = file.problems;
  if (opts.product_key) {
    std::vector<core::TripletRow> kept;
    for (auto& row : file.rows) {
      if (row.product_key != *opts.product_key) {
        problems.push_back(
            {row.line,
             "ProductKey " + row.product_key + " is not --product-key " + *opts.product_key});
      } else {
        kept.push_back(std::move(row));
      }
    }
    file.rows = std::move(kept);
  }
  std::sort(problems.begin(), problems.end(), [](const auto& a, const auto& b) {
    return a.line < b.line;
  });
  for (std::size_t i = 0; i < problems.size() && i < k_problems_shown; ++i) {
    ctx.output->warn(opts.file + ":" + std::to_string(problems[i].line) + ": " +
                     problems[i].message);
  }
  if (problems.size() > k_problems_shown) {
    ctx.output->warn("… and " + std::to_string(problems.size() - k_problems_shown) +
                     " more bad rows");
  }
  if (!problems.empty() && !opts.skip_invalid) {
    return fail(ErrorKind::usage,
                opts.file + ": " + std::to_string(problems.size()) +
                    " bad rows (listed above): nothing imported — fix them, or import the good "
                    "rows with --skip-invalid");
  }
  auto handle = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::create));
  auto summary = IOT_TRY(
      handle.ledger->import(file.rows, source_name(opts.file), handle.actor, opts.skip_invalid));
  for (std::size_t i = 0; i < summary.conflicts.size() && i < k_problems_shown; ++i) {
    ctx.output->warn(opts.file + ":" + std::to_string(summary.conflicts[i].line) + ": " +
                     summary.conflicts[i].message);
  }
  if (!summary.committed) {
    return fail(ErrorKind::usage,
                opts.file + ": " + std::to_string(summary.conflicts.size()) +
                    " rows conflict with the ledger (listed above): nothing imported — fix "
                    "them, or import the rest with --skip-invalid");
  }
  core::Table t;
  t.single = true;
  t.columns = {"file",
               "format",
               "ledger",
               "rows",
               "added",
               "already_present",
               "skipped_invalid",
               "skipped_conflicts"};
  t.add_row({opts.file,
             file.format,
             handle.path,
             static_cast<std::int64_t>(file.rows.size() + problems.size()),
             static_cast<std::int64_t>(summary.added),
             static_cast<std::int64_t>(summary.unchanged),
             static_cast<std::int64_t>(problems.size()),
             static_cast<std::int64_t>(summary.conflicts.size())});
  return t;
}

Result<core::Table> run_pool_status(const PoolStatusOptions& opts, Context& ctx) {
  auto handle = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::read));
  core::Table t;
  if (opts.in_doubt) {
    t.columns = k_record_columns;
    store::RecordFilter filter;
    filter.states = {store::TripletState::claimed, store::TripletState::bound};
    filter.product_key = opts.product_key;
    auto ok = handle.ledger->for_each(filter, [&](const store::TripletRecord& r) -> Status {
      t.add_row(record_row(r));
      return {};
    });
    if (!ok) {
      return fail(ok.error());
    }
    return t;
  }
  auto counts = IOT_TRY(handle.ledger->counts());
  // One row per product and station; available triplets belong to no station.
  std::map<std::pair<std::string, std::string>, std::array<std::int64_t, 4>> table;
  std::int64_t in_doubt = 0;
  for (const auto& c : counts) {
    if (opts.product_key && c.product_key != *opts.product_key) {
      continue;
    }
    table[{c.product_key, c.station}][static_cast<std::size_t>(c.state)] += c.count;
    if (c.state == store::TripletState::claimed || c.state == store::TripletState::bound) {
      in_doubt += c.count;
    }
  }
  if (opts.by == "product") { // the whole line: every station's rows of a product added up
    std::map<std::string, std::array<std::int64_t, 4>> line;
    for (const auto& [key, n] : table) {
      for (std::size_t i = 0; i < n.size(); ++i) {
        line[key.first][i] += n[i];
      }
    }
    t.columns = {"product_key", "available", "claimed", "bound", "burned"};
    for (const auto& [product, n] : line) {
      t.add_row({product, n[0], n[1], n[2], n[3]});
    }
  } else {
    t.columns = {"product_key", "station", "available", "claimed", "bound", "burned"};
    for (const auto& [key, n] : table) {
      t.add_row({key.first, opt_text(key.second), n[0], n[1], n[2], n[3]});
    }
  }
  if (in_doubt > 0) {
    ctx.output->warn(std::to_string(in_doubt) +
                     " triplets are claimed or bound but not verified as burned (in doubt): "
                     "`iotfleet pool status --in-doubt` lists them; re-seating each module "
                     "finishes it, `iotfleet pool release` frees one whose module is gone");
  }
  return t;
}

Result<core::Table> run_pool_release(const PoolReleaseOptions& opts, Context& ctx) {
  const auto names = IOT_TRY(resolve_device_names(opts.device, k_one_device, ctx));
  const std::string& device_name = names.front();
  if (core::trim(opts.reason).empty()) {
    return fail(ErrorKind::usage,
                "--reason is required: say why (it goes to the audit trail), e.g. --reason "
                "'module scrapped'");
  }
  auto handle = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::existing));
  auto found = IOT_TRY(handle.ledger->find(device_name, opts.product_key));
  if (found.empty()) {
    return fail(ErrorKind::usage,
                "no triplet with DeviceName " + device_name +
                    (opts.product_key ? " of ProductKey " + *opts.product_key : "") +
                    " in the ledger " + handle.path +
                    ": check the name (`iotfleet pool status --in-doubt` lists the claimed and "
                    "bound ones) or the --ledger");
  }
  if (found.size() > 1) {
    return fail(ErrorKind::usage,
                "DeviceName " + device_name + " exists in " + std::to_string(found.size()) +
                    " products: add --product-key");
  }
  const auto& record = found.front();
  if (record.state == store::TripletState::burned && !opts.force) {
    return fail(ErrorKind::usage,
                record.product_key + "/" + record.device_name + " is burned into IMEI " +
                    record.imei +
                    ": releasing it lets another module get the same identity. Only if that "
                    "module is destroyed (or will be re-burned with this triplet), add --force");
  }
  if (record.state == store::TripletState::available) {
    return fail(ErrorKind::usage,
                record.product_key + "/" + record.device_name +
                    " is already available: nothing to release");
  }
  auto released = IOT_TRY(handle.ledger->release(
      {record.product_key, record.device_name}, handle.actor, opts.reason, opts.force));
  core::Table t;
  t.single = true;
  t.columns = {"product_key", "device_name", "was", "imei", "station", "port", "reason"};
  t.add_row({released.product_key,
             released.device_name,
             std::string(store::to_string(released.state)),
             opt_text(released.imei),
             opt_text(released.station),
             opt_text(released.port),
             opts.reason});
  return t;
}

Result<core::Table> run_pool_export(const PoolExportOptions& opts, Context& ctx) {
  store::RecordFilter filter;
  filter.product_key = opts.product_key;
  if (opts.state != "all") {
    auto state = IOT_TRY_CTX(store::parse_triplet_state(opts.state), "--state");
    filter.states = {state};
  }
  auto handle = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::read));
  if (!opts.out_file) {
    core::Table t;
    t.columns = k_record_columns;
    auto ok = handle.ledger->for_each(filter, [&](const store::TripletRecord& r) -> Status {
      t.add_row(record_row(r));
      return {};
    });
    if (!ok) {
      return fail(ok.error());
    }
    return t;
  }
  auto file = IOT_TRY(RecordFile::create(*opts.out_file, opts.format, k_export_header));
  IOT_TRY(handle.ledger->for_each(filter, [&](const store::TripletRecord& r) -> Status {
    return file.write(export_fields(r));
  }));
  IOT_TRY(file.commit());
  const auto count = static_cast<std::int64_t>(file.records());
  core::Table t;
  t.single = true;
  t.columns = {"file", "format", "records", "state"};
  t.add_row({*opts.out_file, opts.format, count, opts.state});
  return t;
}

Result<core::Table> run_pool_log(const PoolLogOptions& opts, Context& ctx) {
  auto handle = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::read));
  const auto names = IOT_TRY(resolve_device_names(opts.device, k_optional_device, ctx));
  const std::optional<std::string> device_name =
      names.empty() ? std::nullopt : std::optional<std::string>(names.front());
  auto events = IOT_TRY(handle.ledger->events(opts.limit, device_name));
  core::Table t;
  t.columns = {"time",
               "station",
               "port",
               "imei",
               "product_key",
               "device_name",
               "action",
               "outcome",
               "detail"};
  for (const auto& e : events) {
    t.add_row({core::iso8601_utc(e.time_ms),
               opt_text(e.station),
               opt_text(e.port),
               opt_text(e.imei),
               opt_text(e.product_key),
               opt_text(e.device_name),
               e.action,
               opt_text(e.outcome),
               opt_text(e.detail)});
  }
  return t;
}

Result<core::Table> run_pool_migrate(const PoolMigrateOptions& opts, Context& ctx) {
  if (!opts.to.empty()) {
    ctx.global.settings.ledger = opts.to;
  }
  core::Table t;
  t.single = true;
  if (opts.from.empty()) {
    const int before =
        IOT_TRY(open_configured_ledger(ctx, store::OpenMode::read)).ledger->schema_version();
    auto handle = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::existing));
    t.columns = {"ledger", "schema_before", "schema_after", "result"};
    t.add_row({handle.path,
               std::int64_t{before},
               std::int64_t{handle.ledger->schema_version()},
               before == handle.ledger->schema_version() ? "up to date" : "migrated"});
    return t;
  }
  store::LedgerOptions source_options(store::OpenMode::read);
  source_options.warn = [&ctx](const std::string& warning) { ctx.output->warn(warning); };
  source_options.missing_hint = [] {
    return std::string(": --from names the ledger to copy (a station's ledger file)");
  };
  auto source = IOT_TRY_CTX(store::open_ledger(opts.from, source_options), "--from");
  const auto contents = IOT_TRY_CTX(source->contents(), "--from");
  auto handle = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::create));
  const auto from_name = store::display_location(opts.from);
  std::error_code ec;
  if (from_name == handle.path || std::filesystem::equivalent(opts.from, handle.path, ec)) {
    return fail(ErrorKind::usage,
                "--from " + from_name +
                    " is the ledger it would be copied into: give the shared ledger with --to "
                    "(or --ledger)");
  }
  const auto summary = IOT_TRY(handle.ledger->merge(contents, from_name, handle.actor));
  for (std::size_t i = 0; i < summary.conflicts.size() && i < k_problems_shown; ++i) {
    ctx.output->warn("conflict: " + summary.conflicts[i]);
  }
  if (summary.conflicts.size() > k_problems_shown) {
    ctx.output->warn("… and " + std::to_string(summary.conflicts.size() - k_problems_shown) +
                     " more conflicts");
  }
  if (!summary.committed) {
    return fail(ErrorKind::usage,
                std::to_string(summary.conflicts.size()) + " rows of " + from_name +
                    " conflict with " + handle.path +
                    " (listed above): nothing copied — settle each, then run it again");
  }
  t.columns = {"from",
               "to",
               "triplets_added",
               "triplets_present",
               "events_added",
               "events_present",
               "registrations_added",
               "recreations_added"};
  const auto n = [](std::size_t v) { return static_cast<std::int64_t>(v); };
  t.add_row({from_name,
             handle.path,
             n(summary.triplets.added),
             n(summary.triplets.present),
             n(summary.events.added),
             n(summary.events.present),
             n(summary.registrations.added),
             n(summary.recreations.added)});
  return t;
}

void register_pool(CLI::App& app, Context& ctx) {
  auto* pool = app.add_subcommand(
      "pool",
      "The triplet pool in the factory ledger: import, status, release, export, log, migrate");
  pool->require_subcommand(0, 1);
  const std::pair<int, std::string> ledger_code = {
      2, "bad options, or the ledger is missing, unreadable or newer than this build"};

  auto import_opts = std::make_shared<PoolImportOptions>();
  auto* import = pool->add_subcommand(
      "import", "Load triplets (Aliyun console batch CSV, our CSV, JSON, NDJSON) into the ledger");
  import->add_option("FILE", import_opts->file, "The pool file, or - for standard input")
      ->required()
      ->type_name("");
  import->add_option("--scheme", import_opts->scheme, "device (PK,DN,DS) or product (PK,PS,DN)")
      ->check(CLI::IsMember({"device", "product"}))
      ->option_text("device|product");
  import->add_flag("--skip-invalid",
                   import_opts->skip_invalid,
                   "Import the good rows even if some are bad or conflict (default: all or none)");
  add_product_key(import, import_opts->product_key, "any; with it, rows of another are refused");
  import->footer("Every row is validated (charset, lengths, one ProductKey, no DeviceName twice, "
                 "no DeviceName already in the ledger with another secret); bad rows are named "
                 "by line on stderr. Re-importing a file is a no-op. Formats: docs/pool-files.md. "
                 "Creates the ledger when it does not exist yet.");
  add_exit_codes(import,
                 {{0, "imported (or already present)"},
                  {2, "bad rows or conflicts: nothing imported (the file, the line and the fix)"},
                  {130, "interrupted"}});
  import->callback([&ctx, import_opts] {
    ctx.output->emit(value_or_throw(run_pool_import(*import_opts, ctx)));
});

auto status_opts = std::make_shared<PoolStatusOptions>();
auto* status = pool->add_subcommand(
    "status", "Counts per product, station and state; --in-doubt lists unverified triplets");
status->add_flag("--in-doubt",
                 status_opts->in_doubt,
                 "List claimed and bound triplets (write attempted, not verified)");
add_product_key(status, status_opts->product_key, "every product");
status
    ->add_option("--by",
                 status_opts->by,
                 "station: a row per product and station (the available pool has no station); "
                 "product: a row per product, every station added up (the whole line)")
    ->check(CLI::IsMember({"station", "product"}))
    ->option_text("station|product (default: station)");
status->footer("On a shared ledger every station's triplets are counted, and --in-doubt lists "
               "every station's.");
add_exit_codes(status, {{0, "the counts (or the list) were printed"}, ledger_code});
status->callback([&ctx, status_opts] {
  ctx.output->emit(value_or_throw(run_pool_status(*status_opts, ctx)));
});

auto release_opts = std::make_shared<PoolReleaseOptions>();
auto* release = pool->add_subcommand(
    "release", "Operator: free a claimed or bound triplet (its module is gone or rejected)");
add_device_names(release, release_opts->device, k_one_device);
release->add_option("--reason", release_opts->reason, "Why (kept in the audit trail)")
    ->required()
    ->option_text("TEXT REQUIRED");
add_product_key(release, release_opts->product_key, "needed only when two products share the DN");
release->add_flag("--force",
                  release_opts->force,
                  "Also release a burned triplet (only if its module is destroyed)");
add_exit_codes(release,
               {{0, "released"},
                {2,
                 "no such triplet, already available, burned without --force, or a "
                 "missing ledger"},
                {4,
                 "a shared ledger refused it: a station's role cannot return a bound or burned "
                 "triplet to the pool (its admin role can), or the server is unreachable"}});
release->callback([&ctx, release_opts] {
  ctx.output->emit(value_or_throw(run_pool_release(*release_opts, ctx)));
});

auto export_opts = std::make_shared<PoolExportOptions>();
auto* exp = pool->add_subcommand(
    "export", "Burned records (or --state S|all): to stdout masked, or to a 0600 file in full");
add_out_file(exp, export_opts->out_file, "the records with their secrets in full");
add_file_format(exp, export_opts->format);
add_product_key(exp, export_opts->product_key, "every product");
exp->add_option("--state",
                export_opts->state,
                "Ledger state of the records: available, "
                "claimed, bound, burned (default) or all")
    ->check(CLI::IsMember({"available", "claimed", "bound", "burned", "all"}))
    ->option_text("available|claimed|bound|burned|all");
exp->footer("The file is what `pool import` reads back (any of the three formats).");
add_exit_codes(exp, {{0, "exported"}, ledger_code, {1, "the file could not be written"}});
exp->callback([&ctx, export_opts] {
  ctx.output->emit(value_or_throw(run_pool_export(*export_opts, ctx)));
});

auto log_opts = std::make_shared<PoolLogOptions>();
auto* log = pool->add_subcommand("log", "The audit trail, newest last (never a secret)");
log->add_option("--limit", log_opts->limit, "How many events, the newest (default 50)")
    ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}))
    ->option_text(std::string(value_name::count));
add_device_names(log, log_opts->device, k_optional_device);
log->footer("With a DeviceName: only that device's events.");
add_exit_codes(log, {{0, "the events were printed"}, ledger_code});
log->callback([&ctx, log_opts] { ctx.output->emit(value_or_throw(run_pool_log(*log_opts, ctx))); });

auto migrate_opts = std::make_shared<PoolMigrateOptions>();
auto* migrate = pool->add_subcommand(
    "migrate", "Upgrade the ledger's schema, or copy a station's ledger into it (--from)");
migrate
    ->add_option("--from",
                 migrate_opts->from,
                 "A station's ledger to copy in: triplets, audit trail, registrations, "
                 "recreations")
    ->option_text("FILE|URL");
migrate
    ->add_option("--to",
                 migrate_opts->to,
                 "The ledger upgraded or copied into (default: the configured ledger, as "
                 "--ledger gives it)")
    ->option_text("FILE|URL");
migrate->footer(
    "Without --from: the ledger's schema is brought to this build's (commands that write do it "
    "too; on a shared PostgreSQL ledger run it once as the admin role). With --from: one "
    "transaction; a row of the other ledger that contradicts this one (a DeviceName with "
    "another secret, an IMEI bound to another DeviceName) is named and nothing is copied; "
    "running it again copies nothing twice. docs/ledger-postgresql.md.");
add_exit_codes(migrate,
               {{0, "migrated or copied (or already so)"},
                {2, "bad options, a missing ledger, or conflicts: nothing copied"},
                {4, "the ledger server could not be reached"}});
migrate->callback([&ctx, migrate_opts] {
  ctx.output->emit(value_or_throw(run_pool_migrate(*migrate_opts, ctx)));
});
} // namespace iot::commands

} // namespace iot::commands
