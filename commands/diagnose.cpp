// SPDX-License-Identifier: MIT
// diagnose fleet: the log is read in 4 MB blocks (constant memory), each line parsed in place
// (diagnose::LogParser) and folded into a per-device state (diagnose::FleetAnalyzer); a device
// list, when given, is streamed after it. Bad lines are counted and skipped (the first few
// named on stderr with the fix), or stop the run with --strict.
#include "commands/diagnose.hpp"

#include "commands/common_options.hpp"
#include "commands/diagnose_device.hpp"
#include "core/file.hpp"
#include "core/interrupt.hpp"
#include "core/secret_file.hpp"
#include "core/validate.hpp"
#include "diagnose/fleet.hpp"
#include "diagnose/html_report.hpp"
#include "store/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace iot::commands {
namespace {

using diagnose::Reason;

constexpr std::size_t k_block = 4u << 20;
constexpr std::size_t k_bad_lines_named = 5;

class Fd {
public:
  explicit Fd(int fd) : m_fd(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (m_fd > 2) {
      ::close(m_fd);
    }
  }
  [[nodiscard]] int get() const { return m_fd; }

private:
  int m_fd;
};

// Opens FILE for reading ("-": stdin); its size when it is a regular file.
Result<std::pair<int, std::uint64_t>> open_input(const std::string& path, std::string_view what) {
  if (path == "-") {
    return std::pair<int, std::uint64_t>{STDIN_FILENO, 0};
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return fail(ErrorKind::usage,
                std::string(what) + " " + path + ": cannot read it: " + std::strerror(err) +
                    (err == ENOENT ? std::string(" (export the device log from the console: "
                                                 "Maintenance → Device Log; docs/diagnose.md)")
                                   : std::string()));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    ::close(fd);
    return fail(ErrorKind::usage, std::string(what) + " " + path + ": is a directory, not a file");
  }
  if (S_ISREG(st.st_mode)) {
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  return std::pair<int, std::uint64_t>{
      fd, S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0};
}

} // namespace

Result<int> parse_utc_offset(std::string_view s) {
  if (s == "Z" || s == "UTC" || s == "utc" || s == "+00:00" || s == "0") {
    return 0;
  }
  int sign = 1;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    sign = s[0] == '-' ? -1 : 1;
    s.remove_prefix(1);
  }
  int h = 0;
  int m = 0;
  const auto two = [](std::string_view t, int& out) {
    if (t.size() != 2 || !std::isdigit(static_cast<unsigned char>(t[0])) ||
        !std::isdigit(static_cast<unsigned char>(t[1]))) {
      return false;
    }
    out = (t[0] - '0') * 10 + (t[1] - '0');
    return true;
  };
  bool ok = false;
  if (s.size() == 2) {
    ok = two(s, h);
  } else if (s.size() == 5 && s[2] == ':') {
    ok = two(s.substr(0, 2), h) && two(s.substr(3), m);
  } else if (s.size() == 4) {
    ok = two(s.substr(0, 2), h) && two(s.substr(2), m);
  }
  if (!ok || h > 14 || m > 59) {
    return fail(ErrorKind::usage,
                "--utc-offset: give the zone as +HH:MM (e.g. +08:00, the console's Beijing time) "
                "or Z");
  }
  return sign * (h * 60 + m);
}

namespace {

Result<std::int64_t> parse_bound(const std::string& text, std::string_view flag, int offset) {
  const auto t = diagnose::parse_time(text, offset);
  if (!t) {
    return fail(ErrorKind::usage,
                std::string(flag) + " '" + text +
                    "': give a date (2024-01-02), a time (2024-01-02 15:04:05, ISO-8601 with or "
                    "without zone) or epoch milliseconds");
  }
  return *t;
}

core::Cell text_or_none(std::string_view s) {
  return s.empty() ? core::Cell{} : core::Cell{std::string(s)};
}

core::Cell time_cell(std::int64_t ms, int offset) {
  return ms == 0 ? core::Cell{} : core::Cell{diagnose::format_time(ms, offset)};
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& s : items) {
    out += out.empty() ? "" : std::string(sep);
    out += s;
  }
  return out;
}

core::Table findings_table(const diagnose::FleetReport& rep) {
  core::Table t;
  t.columns = {"finding",
               "subject",
               "confidence",
               "events",
               "devices",
               "client_ips",
               "keepalive_s",
               "first_seen",
               "last_seen",
               "detail",
               "evidence",
               "fix"};
  for (const auto& f : rep.findings) {
    t.add_row({f.kind,
               f.subject,
               std::string(diagnose::to_string(f.confidence)),
               static_cast<std::int64_t>(f.events),
               static_cast<std::int64_t>(f.devices),
               text_or_none(join(f.client_ips, " ")),
               f.keepalive_s ? core::Cell{static_cast<std::int64_t>(*f.keepalive_s)} : core::Cell{},
               time_cell(f.first_ms, rep.offset_min),
               time_cell(f.last_ms, rep.offset_min),
               f.detail,
               text_or_none(join(f.evidence, " | ")),
               f.fix});
  }
  return t;
}

void add_reason_columns(core::Table& t) {
  for (std::size_t i = 0; i < diagnose::k_reason_count; ++i) {
    t.columns.emplace_back(diagnose::column_name(static_cast<Reason>(i)));
  }
}

void add_counts(std::vector<core::Cell>& row, const diagnose::ReasonCounts& c) {
  for (const auto n : c) {
    row.emplace_back(static_cast<std::int64_t>(n));
  }
}

std::int64_t disconnects(const diagnose::ReasonCounts& c) {
  std::uint64_t n = 0;
  for (std::size_t i = 1; i < c.size(); ++i) {
    n += c[i];
  }
  return static_cast<std::int64_t>(n);
}

core::Table period_table(const std::map<std::int64_t, diagnose::ReasonCounts>& periods,
                         bool hours) {
  core::Table t;
  t.columns = {hours ? "hour" : "day"};
  add_reason_columns(t);
  t.columns.emplace_back("disconnects");
  for (const auto& [k, c] : periods) {
    std::vector<core::Cell> row{hours ? diagnose::format_hour(k) : diagnose::format_day(k)};
    add_counts(row, c);
    row.emplace_back(disconnects(c));
    t.add_row(std::move(row));
  }
  return t;
}

core::Table devices_table(const diagnose::FleetReport& rep) {
  core::Table t;
  t.columns = {"device_name", "disconnects"};
  add_reason_columns(t);
  for (const char* c : {"client_ips", "first_seen", "last_seen"}) {
    t.columns.emplace_back(c);
  }
  for (const auto& d : rep.top) {
    std::vector<core::Cell> row{d.device_name, static_cast<std::int64_t>(d.disconnects)};
    diagnose::ReasonCounts c{};
    for (std::size_t i = 0; i < c.size(); ++i) {
      c[i] = d.counts[i];
    }
    add_counts(row, c);
    row.emplace_back(text_or_none(join(d.client_ips, " ")));
    row.emplace_back(time_cell(d.first_ms, rep.offset_min));
    row.emplace_back(time_cell(d.last_ms, rep.offset_min));
    t.add_row(std::move(row));
  }
  return t;
}

core::Table reasons_table(const diagnose::FleetReport& rep) {
  core::Table t;
  t.columns = {"text", "category", "rule_matched", "count"};
  for (const auto& r : rep.reason_texts) {
    t.add_row({r.text,
               std::string(diagnose::to_string(r.reason)),
               r.matched,
               static_cast<std::int64_t>(r.count)});
  }
  if (rep.reason_texts_more > 0) {
    t.add_row({std::string("(other texts, not kept)"),
               core::Cell{},
               core::Cell{},
               static_cast<std::int64_t>(rep.reason_texts_more)});
  }
  return t;
}

struct ReadStats {
  std::string format;
  std::uint64_t lines = 0;
  std::uint64_t bytes = 0;
  std::size_t skipped = 0;
  double seconds = 0;
};

core::Table summary_table(const diagnose::FleetReport& rep,
                          const ReadStats& st,
                          const DiagnoseFleetOptions& opts) {
  core::Table t;
  t.single = true;
  t.columns = {"log",
               "format",
               "lines",
               "records",
               "skipped_lines",
               "other_product",
               "outside_window",
               "devices",
               "first_record",
               "last_record",
               "order"};
  std::vector<core::Cell> row{opts.log,
                              st.format,
                              static_cast<std::int64_t>(st.lines),
                              static_cast<std::int64_t>(rep.records),
                              static_cast<std::int64_t>(st.skipped),
                              static_cast<std::int64_t>(rep.other_product),
                              static_cast<std::int64_t>(rep.outside_window),
                              static_cast<std::int64_t>(rep.devices),
                              time_cell(rep.first_ms, rep.offset_min),
                              time_cell(rep.last_ms, rep.offset_min),
                              text_or_none(rep.order)};
  for (std::size_t i = 0; i < diagnose::k_reason_count; ++i) {
    t.columns.emplace_back(diagnose::column_name(static_cast<Reason>(i)));
    row.emplace_back(static_cast<std::int64_t>(rep.totals[i]));
  }
  t.columns.emplace_back("findings");
  row.emplace_back(static_cast<std::int64_t>(rep.findings.size()));
  t.columns.emplace_back("device_list");
  row.emplace_back(rep.device_list ? core::Cell{*opts.devices}
                                   : core::Cell{std::string("not available")});
  t.columns.emplace_back("never_online");
  row.emplace_back(rep.device_list ? core::Cell{static_cast<std::int64_t>(rep.never_online)}
                                   : core::Cell{});
  t.add_row(std::move(row));
  return t;
}

std::string summary_text(const diagnose::FleetReport& rep,
                         const ReadStats& st,
                         const DiagnoseFleetOptions& opts) {
  const std::string name = opts.log == "-" ? std::string("stdin") : opts.log;
  std::string s = "diagnose fleet: " + name + " (" + st.format +
                  (rep.order.empty() ? std::string() : ", " + rep.order) +
                  "): " + std::to_string(st.lines) + " lines, " + std::to_string(rep.records) +
                  " records of " + std::to_string(rep.devices) + " devices";
  if (rep.first_ms != 0) {
    s += ", " + diagnose::format_time(rep.first_ms, rep.offset_min) + " to " +
         diagnose::format_time(rep.last_ms, rep.offset_min) + " (UTC" + opts.utc_offset + ")";
  }
  if (st.skipped > 0) {
    s += "; " + std::to_string(st.skipped) + " unreadable lines skipped";
  }
  if (rep.other_product > 0) {
    s += "; " + std::to_string(rep.other_product) + " records of other products left out";
  }
  if (rep.outside_window > 0) {
    s += "; " + std::to_string(rep.outside_window) + " records outside --since/--until";
  }
  s += "\nreasons: ";
  for (std::size_t i = 0; i < diagnose::k_reason_count; ++i) {
    s += (i ? ", " : "") + std::to_string(rep.totals[i]) + " " +
         std::string(diagnose::to_string(static_cast<Reason>(i)));
  }
  std::map<std::string, std::size_t> kinds;
  for (const auto& f : rep.findings) {
    ++kinds[f.kind];
  }
  s += "\nfindings: " + std::to_string(rep.findings.size());
  bool first = true;
  for (const auto& [k, n] : kinds) {
    s += (first ? " (" : ", ") + std::to_string(n) + " " + k;
    first = false;
  }
  s += first ? "" : ")";
  if (rep.device_list) {
    s += "\ndevice list " + *opts.devices + ": " + std::to_string(rep.listed) + " devices, " +
         std::to_string(rep.never_online) + " never online in the log";
    if (rep.not_listed > 0) {
      s += ", " + std::to_string(rep.not_listed) + " devices of the log not in the list";
    }
  } else {
    s += "\ndevice list: not available (give --devices FILE to find devices never online)";
  }
  if (rep.order == "unsorted") {
    s += "\nwarning: the log is not sorted by time; the identity and keepalive rules read each "
         "device's records in order: sort the log by time first";
  }
  if (rep.evidence_truncated) {
    s += "\nnote: evidence lines were capped (32 MB); the counts are complete";
  }
  char rate[96];
  std::snprintf(rate,
                sizeof rate,
                "\nread %.1f MB in %.2f s (%.0f MB/s)",
                static_cast<double>(st.bytes) / 1e6,
                st.seconds,
                st.seconds > 0 ? static_cast<double>(st.bytes) / 1e6 / st.seconds : 0.0);
  s += rate;
  return s;
}

// Streams the log at `path` ("-": stdin) through `parser`, calling add(record, line number,
// line) for each record. Bad lines are named (the first few), skipped and counted in `st`, or
// stop the reading with `strict`; a first line that is no known header always stops it.
template <class Add>
Status stream_log(const std::string& path,
                  diagnose::LogParser& parser,
                  bool strict,
                  Context& ctx,
                  ReadStats& st,
                  Add&& add) {
  auto in = IOT_TRY(open_input(path, "--log"));
  Fd fd(in.first);
  const std::string name = path == "-" ? std::string("stdin") : path;
  diagnose::LogRecord record;
  auto progress = ctx.output->progress("diagnose");
  if (in.second > 0) {
    progress->set_total(in.second);
  }
  const auto started = std::chrono::steady_clock::now();
  auto ok = core::read_line_blocks(
      fd.get(),
      "--log " + name,
      k_block,
      [&](std::string_view text, std::size_t first) -> Status {
        auto done =
            core::for_each_line(text, first, [&](std::string_view line, std::size_t n) -> Status {
              auto got = parser.parse(line, record);
              if (!got) {
                Error e = got.error().context(name + ": line " + std::to_string(n));
                if (strict || parser.format().empty()) {
                  if (parser.format().empty()) {
                    e.message += " (nothing was read)";
                  }
                  return fail(std::move(e));
                }
                if (++st.skipped <= k_bad_lines_named) {
                  ctx.output->warn(e.message + "; line skipped (--strict stops here instead)");
                }
                return {};
              }
              if (*got) {
                add(record, n, line);
              }
              return {};
            });
        if (!done) {
          return fail(done.error());
        }
        st.lines = *done;
        if (core::interrupt_requested()) {
          return fail(ErrorKind::interrupted, "diagnose interrupted");
        }
        return {};
      },
      [&](std::size_t bytes) {
        st.bytes += bytes;
        progress->advance(bytes);
      });
  progress->finish();
  if (!ok) {
    return fail(ok.error());
  }
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  st.format = std::string(parser.format());
  if (st.format.empty()) {
    return fail(ErrorKind::usage,
                "--log " + name +
                    " is empty: export the device log from the console (Maintenance → Device "
                    "Log) as CSV or JSON lines (docs/diagnose.md)");
  }
  if (st.skipped > k_bad_lines_named) {
    ctx.output->warn(std::to_string(st.skipped - k_bad_lines_named) +
                     " more unreadable lines skipped");
  }
  return {};
}

Status read_device_list(const std::string& path, diagnose::FleetAnalyzer& analyzer, Context& ctx) {
  auto in = IOT_TRY(open_input(path, "--devices"));
  Fd fd(in.first);
  const std::string name = path == "-" ? std::string("stdin") : path;
  core::SecretRecordParser parser(core::SecretFileRole::devices);
  core::SecretRecord r;
  analyzer.set_device_list_given();
  auto ok = core::read_line_blocks(
      fd.get(),
      "--devices " + name,
      k_block,
      [&](std::string_view text, std::size_t first) -> Status {
        auto done =
            core::for_each_line(text, first, [&](std::string_view line, std::size_t n) -> Status {
              auto got = parser.parse(line, r);
              if (!got) {
                return fail(
                    got.error().context("--devices " + name + ": line " + std::to_string(n)));
              }
              if (*got) {
                analyzer.add_listed(r.device_name);
              }
              return {};
            });
        if (!done) {
          return fail(done.error());
        }
        return {};
      });
  if (!ok) {
    return fail(ok.error());
  }
  if (parser.format().empty()) {
    ctx.output->warn("--devices " + name + " is empty: no device list");
  }
  return {};
}

} // namespace

Result<DiagnoseFleetResult> run_diagnose_fleet(const DiagnoseFleetOptions& opts, Context& ctx) {
  static const std::vector<std::string> shows = {
      "findings", "days", "hours", "devices", "reasons", "summary"};
  if (std::find(shows.begin(), shows.end(), opts.show) == shows.end()) {
    return fail(ErrorKind::usage,
                "--show " + opts.show +
                    ": give findings, days, hours, devices, reasons or summary");
  }
  if (opts.log == "-" && opts.devices && *opts.devices == "-") {
    return fail(ErrorKind::usage, "--log and --devices cannot both be - (stdin)");
  }
  if (opts.product_key) {
    IOT_TRY_CTX(core::validate_product_key(*opts.product_key), "--product-key");
  }
  auto offset = IOT_TRY(parse_utc_offset(opts.utc_offset));
  diagnose::FleetOptions fo;
  fo.product_key = opts.product_key;
  fo.offset_min = offset;
  fo.top = opts.top;
  fo.min_events = std::max<std::uint32_t>(1, opts.min_events);
  fo.min_per_day = opts.min_per_day;
  if (opts.since) {
    auto t = IOT_TRY(parse_bound(*opts.since, "--since", offset));
    fo.since_ms = t;
  }
  if (opts.until) {
    auto t = IOT_TRY(parse_bound(*opts.until, "--until", offset));
    fo.until_ms = t;
  }
  if (fo.since_ms && fo.until_ms && *fo.until_ms <= *fo.since_ms) {
    return fail(ErrorKind::usage, "--until must be later than --since");
  }

  diagnose::LogParserOptions po;
  po.default_offset_min = offset;
  diagnose::LogParser parser(po);
  diagnose::FleetAnalyzer analyzer(fo);
  ReadStats st;
  const std::string name = opts.log == "-" ? std::string("stdin") : opts.log;
  if (auto ok = stream_log(opts.log,
                           parser,
                           opts.strict,
                           ctx,
                           st,
                           [&](const diagnose::LogRecord& r, std::size_t n, std::string_view line) {
                             analyzer.add(r, n, line);
                           });
      !ok) {
    return fail(ok.error());
  }
  if (opts.product_key && !parser.has_product_key()) {
    ctx.output->warn("--product-key " + *opts.product_key +
                     ": the log has no ProductKey "
                     "column; every record was used");
  }
  if (opts.devices) {
    IOT_TRY(read_device_list(*opts.devices, analyzer, ctx));
  }
  diagnose::FleetReport rep = analyzer.finish();
  if (rep.records == 0 && st.skipped > 0) {
    return fail(ErrorKind::usage,
                "--log " + name + ": none of its " + std::to_string(st.skipped) +
                    " record lines could be read (see the first errors above; docs/diagnose.md)");
  }

  DiagnoseFleetResult result;
  result.findings = rep.findings.size();
  result.skipped = st.skipped;
  result.summary = summary_text(rep, st, opts);
  if (opts.show == "findings") {
    result.table = findings_table(rep);
  } else if (opts.show == "days") {
    result.table = period_table(rep.per_day, false);
  } else if (opts.show == "hours") {
    result.table = period_table(rep.per_hour, true);
  } else if (opts.show == "devices") {
    result.table = devices_table(rep);
  } else if (opts.show == "reasons") {
    result.table = reasons_table(rep);
  } else {
    result.table = summary_table(rep, st, opts);
  }

  if (core::interrupt_requested()) {
    return fail(ErrorKind::interrupted, "diagnose interrupted: no report written");
  }
  if (opts.html) {
    diagnose::HtmlInfo info;
    info.log = name;
    info.format = st.format;
    info.lines = st.lines;
    info.skipped = st.skipped;
    info.product_key = opts.product_key.value_or("");
    info.zone = "UTC" + opts.utc_offset;
    info.device_list = opts.devices.value_or("");
    const std::string html = diagnose::render_fleet_html(rep, info);
    IOT_TRY_CTX(store::write_file_atomically(*opts.html, html, 0644), "--html " + *opts.html);
    ctx.output->info("wrote " + *opts.html);
  }
  return result;
}

Result<diagnose::FleetReport> analyse_device_log(const std::string& path,
                                                 const std::optional<std::string>& product_key,
                                                 std::string_view device_name,
                                                 int utc_offset_min,
                                                 Context& ctx) {
  diagnose::LogParserOptions po;
  po.default_offset_min = utc_offset_min;
  diagnose::LogParser parser(po);
  diagnose::FleetOptions fo;
  fo.product_key = product_key;
  fo.offset_min = utc_offset_min;
  diagnose::FleetAnalyzer analyzer(fo);
  ReadStats st;
  if (auto ok = stream_log(path,
                           parser,
                           false,
                           ctx,
                           st,
                           [&](const diagnose::LogRecord& r, std::size_t n, std::string_view line) {
                             if (r.device_name == device_name) {
                               analyzer.add(r, n, line);
                             }
                           });
      !ok) {
    return fail(ok.error());
  }
  return analyzer.finish();
}

void register_diagnose(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand(
      "diagnose", "Why devices go offline: evidence from device logs, and the fix");
  group->require_subcommand(0, 1);
  register_diagnose_device(*group, ctx);

  auto opts = std::make_shared<DiagnoseFleetOptions>();
  auto* cmd = group->add_subcommand(
      "fleet",
      "Reasons across a fleet from the console's device log: identity conflicts, keepalive "
      "problems, clusters, devices never online");
  cmd->add_option("--log",
                  opts->log,
                  "The device log exported from the console (CSV with a header, or JSON lines; "
                  "- for stdin); read as a stream, any size")
      ->required()
      ->option_text("FILE|- REQUIRED");
  add_product_key(cmd, opts->product_key, "every product in the log");
  cmd->add_option("--devices",
                  opts->devices,
                  "A list of DeviceNames: one per line (# comments), or a CSV / JSON / NDJSON file "
                  "with a device_name column (what secrets export, pool export, devices "
                  "batch-register -O write); - reads standard input")
      ->option_text(std::string(value_name::file_or_stdin));
  cmd->add_option("--since", opts->since, "From this time or date (inclusive)")
      ->option_text("TIME");
  cmd->add_option("--until", opts->until, "Up to this time or date (exclusive)")
      ->option_text("TIME");
  cmd->add_option("--html",
                  opts->html,
                  "Also write one self-contained HTML report with charts (no network needed)")
      ->option_text(std::string(value_name::file));
  cmd->add_option("--show",
                  opts->show,
                  "What to print: findings (default), days, hours (reasons per day / hour), "
                  "devices (ranked by disconnects), reasons (every reason text and its "
                  "category), summary")
      ->check(CLI::IsMember({"findings", "days", "hours", "devices", "reasons", "summary"}))
      ->option_text("findings|days|hours|devices|reasons|summary");
  cmd->add_option("--utc-offset",
                  opts->utc_offset,
                  "Zone of times written without one, and of days and hours (the console "
                  "shows Beijing time; default +08:00)")
      ->option_text("+HH:MM");
  cmd->add_option("--top", opts->top, "--show devices: how many (default 20)")
      ->check(CLI::Range(1, 1000000))
      ->option_text(std::string(value_name::count));
  cmd->add_option("--min-events",
                  opts->min_events,
                  "A device's reason counts as frequent from this many records")
      ->check(CLI::Range(1, 1000000))
      ->option_text(std::string(value_name::count));
  cmd->add_option("--min-per-day",
                  opts->min_per_day,
                  "… and from this many a day on average over the log's span")
      ->check(CLI::Range(0.0, 1e6))
      ->option_text("X");
  cmd->add_flag("--strict",
                opts->strict,
                "A bad line stops the run (exit 2) instead of being "
                "skipped");
  cmd->footer(
      "Findings (docs/diagnose.md): duplicate-identity (two modules share a DeviceName: client "
      "IPs take turns, \"Kicked by the same device\"; not a device rebooting from one IP), "
      "keepalive-too-long / keepalive-too-short (the keepalive inferred from the gaps before "
      "\"Keepalive timeout\": keepalive × 1.5 + up to 30 s), keepalive-cluster (a /16 IP range "
      "timing out far more than the rest), frequent-connection-resets, "
      "frequent-keepalive-timeouts, frequent-device-disconnect, auth-failures, never-online "
      "(with --devices), reboots-while-online. Each has its evidence (log lines quoted) and the "
      "fix (seed FAQ §3-§7).");
  add_exit_codes(cmd,
                 {{0, "nothing found"},
                  {1, "--html could not be written"},
                  {2,
                   "bad input (missing log, unknown shape, a bad line with --strict: the "
                   "file, the line and the fix)"},
                  {6, "findings"},
                  {130, "interrupted (an --html report is left as it was)"}});
  cmd->callback([&ctx, opts] {
    auto result = value_or_throw(run_diagnose_fleet(*opts, ctx));
    ctx.output->emit(result.table);
    ctx.output->info(result.summary);
    if (result.findings > 0) {
      throw CommandFailure(
          Error{ErrorKind::difference,
                std::to_string(result.findings) + " findings (see the rows; docs/diagnose.md)"});
    }
  });
}

} // namespace iot::commands
