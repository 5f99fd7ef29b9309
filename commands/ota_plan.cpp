// SPDX-License-Identifier: MIT
#include "commands/ota_plan.hpp"

#include "core/file.hpp"
#include "core/text.hpp"
#include "store/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace iot::commands::ota {

using json = nlohmann::json;

namespace {

using core::trim;

std::optional<double> number(std::string_view s) {
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

std::vector<std::string_view> split_commas(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const auto comma = text.find(',', start);
    out.push_back(text.substr(start, comma == std::string_view::npos ? text.npos : comma - start));
    if (comma == std::string_view::npos) {
      return out;
    }
    start = comma + 1;
  }
}

} // namespace

Result<std::vector<WaveSpec>> parse_waves(std::string_view text) {
  std::vector<WaveSpec> out;
  const std::string usage = "--waves '" + std::string(text) +
                            "': give increasing cumulative shares or counts, e.g. "
                            "1%,10%,50%,100% or 10,100,all";
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const auto item = trim(text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    WaveSpec spec;
    if (item == "all") {
      spec = {true, 100};
    } else if (item.ends_with('%')) {
      auto v = number(item.substr(0, item.size() - 1));
      if (!v || *v <= 0 || *v > 100) {
        return fail(ErrorKind::usage, usage + " (a share is above 0% and at most 100%)");
      }
      spec = {true, *v};
    } else {
      auto v = number(item);
      if (!v || *v < 1 || std::floor(*v) != *v) {
        return fail(ErrorKind::usage, usage + " ('" + std::string(item) + "' is not a count)");
      }
      spec = {false, *v};
    }
    if (!out.empty() && out.back().percent == spec.percent && spec.value <= out.back().value) {
      return fail(ErrorKind::usage, usage + " (values must increase)");
    }
    out.push_back(spec);
  }
  if (out.empty()) {
    return fail(ErrorKind::usage, usage);
  }
  return out;
}

namespace {

// The non-empty waves' ends with the index of the spec each comes from.
std::vector<std::pair<std::size_t, std::size_t>> wave_ends(const std::vector<WaveSpec>& specs,
                                                           std::size_t total) {
  std::vector<std::pair<std::size_t, std::size_t>> ends;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto& spec = specs[i];
    std::size_t end = 0;
    if (spec.percent) {
      end = static_cast<std::size_t>(
          std::ceil(static_cast<double>(total) * spec.value / 100.0 - 1e-9));
    } else {
      end = static_cast<std::size_t>(spec.value);
    }
    end = std::min(end, total);
    if (end > (ends.empty() ? 0 : ends.back().first)) {
      ends.emplace_back(end, i);
    }
  }
  return ends;
}

} // namespace

std::vector<std::size_t> plan_wave_ends(const std::vector<WaveSpec>& specs, std::size_t total) {
  std::vector<std::size_t> out;
  for (const auto& [end, spec] : wave_ends(specs, total)) {
    out.push_back(end);
  }
  return out;
}

std::vector<WaveRecord>
plan_waves(const std::vector<WaveSpec>& specs, std::size_t devices, const std::vector<int>& rates) {
  std::vector<WaveRecord> waves;
  std::size_t begin = 0;
  for (const auto& [end, spec] : wave_ends(specs, devices)) {
    WaveRecord w;
    w.number = static_cast<int>(waves.size()) + 1;
    w.begin = begin;
    w.end = end;
    if (rates.size() == 1) {
      w.max_per_minute = rates.front();
    } else if (spec < rates.size()) {
      w.max_per_minute = rates[spec];
    }
    waves.push_back(w);
    begin = end;
  }
  return waves;
}

Result<std::vector<int>> parse_push_rates(std::string_view text, std::size_t waves) {
  std::vector<int> out;
  for (const auto part : split_commas(text)) {
    const auto t = trim(part);
    const auto v = number(t);
    if (!v || *v != std::floor(*v) || *v < 10 || *v > 10'000) {
      return fail(ErrorKind::usage,
                  "--max-per-minute '" + std::string(t) +
                      "': pushes per minute are whole numbers from 10 to 10000 (§3)");
    }
    out.push_back(static_cast<int>(*v));
  }
  if (out.empty()) {
    return fail(ErrorKind::usage, "--max-per-minute: give a rate such as 1000 or 100,1000,5000");
  }
  if (out.size() != 1 && out.size() != waves) {
    return fail(ErrorKind::usage,
                "--max-per-minute has " + std::to_string(out.size()) + " rates for " +
                    std::to_string(waves) + " waves: give one rate, or one per --waves entry");
  }
  return out;
}

Result<TagFilter> parse_tag_filter(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    return fail(ErrorKind::usage,
                "--tag '" + std::string(text) +
                    "': give KEY=VALUE, e.g. --tag hwrev=B (every --tag must hold)");
  }
  return TagFilter{std::string(trim(text.substr(0, eq))), std::string(trim(text.substr(eq + 1)))};
}

namespace {

// Whether `word` occurs in `text` as a whole word, case-insensitively.
bool has_word(std::string_view text, std::string_view word) {
  const std::string lower = core::to_lower(text);
  for (std::size_t at = lower.find(word); at != std::string::npos; at = lower.find(word, at + 1)) {
    const bool left = at == 0 || (std::isalnum(static_cast<unsigned char>(lower[at - 1])) == 0 &&
                                  lower[at - 1] != '_' && lower[at - 1] != '.');
    const std::size_t after = at + word.size();
    const bool right =
        after >= lower.size() || (std::isalnum(static_cast<unsigned char>(lower[after])) == 0 &&
                                  lower[after] != '_' && lower[after] != '.');
    if (left && right) {
      return true;
    }
  }
  return false;
}

} // namespace

Result<SqlStatement> device_query(std::string_view condition, std::string_view product_key) {
  const auto c = trim(condition);
  if (c.empty()) {
    return fail(ErrorKind::usage, "--query: give a condition, e.g. \"status = 'ONLINE'\"");
  }
  if (has_word(c.substr(0, 6), "select")) {
    return fail(ErrorKind::usage,
                "--query takes the WHERE condition only (iotfleet writes SELECT * FROM device "
                "WHERE … and pages it with LIMIT): drop the SELECT … WHERE part");
  }
  if (has_word(c, "limit") || has_word(c, "order")) {
    return fail(ErrorKind::usage,
                "--query: no LIMIT or ORDER BY (iotfleet pages the whole result itself)");
  }
  SqlStatement s;
  if (has_word(c, "product_key") || has_word(c, "or")) {
    s.where = std::string(c);
    s.filters_product = has_word(c, "product_key") && !has_word(c, "or");
  } else {
    s.where = "product_key = '" + std::string(product_key) + "' AND " + std::string(c);
  }
  return s;
}

std::string
device_query_page(const SqlStatement& statement, std::int64_t offset, std::int64_t limit) {
  return "SELECT * FROM device WHERE " + statement.where + " LIMIT " + std::to_string(offset) +
         "," + std::to_string(limit);
}

Result<double> parse_rate(std::string_view text) {
  const auto t = trim(text);
  std::optional<double> v;
  if (t.ends_with('%')) {
    v = number(t.substr(0, t.size() - 1));
    if (v) {
      *v /= 100.0;
    }
  } else {
    v = number(t);
  }
  if (!v || *v < 0 || *v > 1) {
    return fail(ErrorKind::usage,
                "rate '" + std::string(text) + "': give a share such as 5% or 0.05 (0 to 100%)");
  }
  return *v;
}

namespace {

template <class Enum, std::size_t N>
Result<Enum>
parse_enum(std::string_view text, const std::array<Enum, N>& values, std::string_view what) {
  std::string known;
  for (auto v : values) {
    if (to_string(v) == text) {
      return v;
    }
    known += (known.empty() ? "" : ", ") + std::string(to_string(v));
  }
  return fail(ErrorKind::usage,
              "unknown " + std::string(what) + " '" + std::string(text) + "' (known: " + known +
                  ")");
}

} // namespace

std::string_view to_string(WaveState state) {
  switch (state) {
  case WaveState::pending:
    return "pending";
  case WaveState::creating:
    return "creating";
  case WaveState::running:
    return "running";
  case WaveState::soaking:
    return "soaking";
  case WaveState::finished:
    return "finished";
  case WaveState::aborted:
    return "aborted";
  }
  return "?";
}

Result<WaveState> parse_wave_state(std::string_view text) {
  return parse_enum(text,
                    std::array{WaveState::pending,
                               WaveState::creating,
                               WaveState::running,
                               WaveState::soaking,
                               WaveState::finished,
                               WaveState::aborted},
                    "wave state");
}

std::string_view to_string(RolloutStatus status) {
  switch (status) {
  case RolloutStatus::planned:
    return "planned";
  case RolloutStatus::running:
    return "running";
  case RolloutStatus::done:
    return "done";
  case RolloutStatus::aborted:
    return "aborted";
  case RolloutStatus::canceled:
    return "canceled";
  }
  return "?";
}

Result<RolloutStatus> parse_rollout_status(std::string_view text) {
  return parse_enum(text,
                    std::array{RolloutStatus::planned,
                               RolloutStatus::running,
                               RolloutStatus::done,
                               RolloutStatus::aborted,
                               RolloutStatus::canceled},
                    "rollout status");
}

std::string_view to_string(TaskStatus status) {
  switch (status) {
  case TaskStatus::confirm:
    return "CONFIRM";
  case TaskStatus::queued:
    return "QUEUED";
  case TaskStatus::notified:
    return "NOTIFIED";
  case TaskStatus::in_progress:
    return "IN_PROGRESS";
  case TaskStatus::succeeded:
    return "SUCCEEDED";
  case TaskStatus::failed:
    return "FAILED";
  case TaskStatus::canceled:
    return "CANCELED";
  }
  return "?";
}

bool abort_tripped(const AbortRule& rule, std::int64_t failed, std::int64_t succeeded) {
  const std::int64_t finished = failed + succeeded;
  if (finished < std::max<std::int64_t>(1, rule.min_finished) || failed == 0) {
    return false;
  }
  // failed / finished ≥ rate, without dividing.
  return static_cast<double>(failed) >= rule.failure_rate * static_cast<double>(finished) - 1e-9;
}

// ---- journal ----

namespace {

json opt_int(const std::optional<int>& v) {
  return v ? json(*v) : json(nullptr);
}
std::optional<int> get_opt_int(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) {
    return std::nullopt;
  }
  return j[key].get<int>();
}

} // namespace

std::string state_to_json(const RolloutState& s) {
  json j;
  j["kind"] = "iotfleet-ota-rollout";
  j["version"] = s.version;
  j["rollout_id"] = s.rollout_id;
  j["product_key"] = s.product_key;
  j["firmware_id"] = s.firmware_id;
  j["dest_version"] = s.dest_version;
  j["selection"] = s.selection;
  if (s.dynamic) {
    j["dynamic"] = {
        {"src_version", s.src_version}, {"group_id", s.group_id}, {"group_type", s.group_type}};
  }
  j["status"] = std::string(to_string(s.status));
  j["reason"] = s.reason;
  j["skipped"] = s.skipped;
  const auto& o = s.options;
  j["options"] = {{"max_per_minute", opt_int(o.max_per_minute)},
                  {"multi_module", o.multi_module},
                  {"retry_interval", opt_int(o.retry_interval)},
                  {"retry_count", opt_int(o.retry_count)},
                  {"timeout_minutes", opt_int(o.timeout_minutes)},
                  {"abort_failure_rate", o.abort.failure_rate},
                  {"abort_min_finished", o.abort.min_finished},
                  {"wave_soak_s", o.wave_soak_s},
                  {"notified_grace_s", o.notified_grace_s},
                  {"poll_ms", o.poll_ms}};
  json waves = json::array();
  for (const auto& w : s.waves) {
    waves.push_back({{"number", w.number},
                     {"begin", w.begin},
                     {"end", w.end},
                     {"state", std::string(to_string(w.state))},
                     {"job_id", w.job_id},
                     {"created_at", w.created_at},
                     {"finished_at", w.finished_at},
                     {"max_per_minute", opt_int(w.max_per_minute)},
                     {"counts",
                      {{"total", w.counts.total},
                       {"succeeded", w.counts.succeeded},
                       {"failed", w.counts.failed},
                       {"canceled", w.counts.canceled},
                       {"notified", w.counts.notified},
                       {"active", w.counts.active}}}});
  }
  j["waves"] = std::move(waves);
  // Devices last, one [name, group] pair per line: the file stays readable with a pager.
  std::string head = j.dump(2);
  head.pop_back(); // "}"
  while (!head.empty() && (head.back() == '\n' || head.back() == ' ')) {
    head.pop_back();
  }
  std::string out = head + ",\n  \"devices\": [";
  for (std::size_t i = 0; i < s.devices.size(); ++i) {
    out += (i == 0 ? "\n    " : ",\n    ") +
           json::array({s.devices[i].name, s.devices[i].group}).dump();
  }
  out += s.devices.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

Result<RolloutState> state_from_json(std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("kind", "") != "iotfleet-ota-rollout") {
    return fail(ErrorKind::usage, "not an iotfleet rollout state file");
  }
  try {
    RolloutState s;
    s.version = j.at("version").get<int>();
    if (s.version != 1) {
      return fail(ErrorKind::usage,
                  "rollout state version " + std::to_string(s.version) + " is not supported");
    }
    s.rollout_id = j.at("rollout_id").get<std::string>();
    s.product_key = j.at("product_key").get<std::string>();
    s.firmware_id = j.at("firmware_id").get<std::string>();
    s.dest_version = j.at("dest_version").get<std::string>();
    s.selection = j.value("selection", "");
    if (j.contains("dynamic")) {
      const json& d = j.at("dynamic");
      s.dynamic = true;
      s.src_version = d.at("src_version").get<std::string>();
      s.group_id = d.value("group_id", "");
      s.group_type = d.value("group_type", "");
    }
    s.status =
        IOT_TRY_CTX(parse_rollout_status(j.at("status").get<std::string>()), "rollout state file");
    s.reason = j.value("reason", "");
    s.skipped = j.value("skipped", std::int64_t{0});
    const json& o = j.at("options");
    s.options.max_per_minute = get_opt_int(o, "max_per_minute");
    s.options.multi_module = o.value("multi_module", false);
    s.options.retry_interval = get_opt_int(o, "retry_interval");
    s.options.retry_count = get_opt_int(o, "retry_count");
    s.options.timeout_minutes = get_opt_int(o, "timeout_minutes");
    s.options.abort.failure_rate = o.at("abort_failure_rate").get<double>();
    s.options.abort.min_finished = o.at("abort_min_finished").get<std::int64_t>();
    s.options.wave_soak_s = o.at("wave_soak_s").get<std::int64_t>();
    s.options.notified_grace_s = o.at("notified_grace_s").get<std::int64_t>();
    s.options.poll_ms = o.at("poll_ms").get<std::int64_t>();
    for (const auto& d : j.at("devices")) {
      s.devices.push_back(PlannedDevice{d.at(0).get<std::string>(), d.at(1).get<std::string>()});
    }
    for (const auto& w : j.at("waves")) {
      WaveRecord r;
      r.number = w.at("number").get<int>();
      r.begin = w.at("begin").get<std::size_t>();
      r.end = w.at("end").get<std::size_t>();
      r.state = IOT_TRY_CTX(parse_wave_state(w.at("state").get<std::string>()),
                            "rollout state file: wave " + std::to_string(r.number));
      r.job_id = w.at("job_id").get<std::string>();
      r.created_at = w.at("created_at").get<std::int64_t>();
      r.finished_at = w.at("finished_at").get<std::int64_t>();
      // Journals written before per-wave rates carry the rollout's rate only.
      r.max_per_minute = w.contains("max_per_minute") ? get_opt_int(w, "max_per_minute")
                                                      : s.options.max_per_minute;
      const json& c = w.at("counts");
      r.counts = {c.at("total").get<std::int64_t>(),
                  c.at("succeeded").get<std::int64_t>(),
                  c.at("failed").get<std::int64_t>(),
                  c.at("canceled").get<std::int64_t>(),
                  c.at("notified").get<std::int64_t>(),
                  c.at("active").get<std::int64_t>()};
      if (r.begin > r.end || r.end > s.devices.size()) {
        return fail(ErrorKind::usage,
                    "rollout state: wave " + std::to_string(r.number) + " is out of the plan");
      }
      s.waves.push_back(std::move(r));
    }
    return s;
  } catch (const json::exception& e) {
    return fail(ErrorKind::usage, std::string("rollout state file is damaged: ") + e.what());
  }
}

Status save_state(const std::filesystem::path& path, const RolloutState& state) {
  IOT_TRY_CTX(store::write_file_atomically(path, state_to_json(state), 0600),
              "save the rollout journal " + path.string());
  return {};
}

Result<RolloutState> load_state(const std::filesystem::path& path) {
  const auto text = IOT_TRY(core::read_file(path, "rollout journal"));
  return IOT_TRY_CTX(state_from_json(text), path.string());
}

} // namespace iot::commands::ota
