// SPDX-License-Identifier: MIT
#include "sim/line_control.hpp"

#include "sim/identity.hpp"
#include "sim/sim_registry.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <sstream>
#include <utility>

namespace iot::sim {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t k_max_control_line = 4096;
constexpr std::string_view k_removed_key = "\"removed_at\":";
// The padded null of a present module: room for "2024-05-01T08:00:00.123Z" with its quotes.
constexpr std::size_t k_removed_slot = 26;
// Seeds: a module's model gets derive_seed(base, generation << 32 | index) (for generation 0 the
// stream is `index`, as before generations existed); an inserted module's identity is drawn from
// derive_seed(its model seed, 1), so the G-th module of fixture I has the same identity for the
// same --seed whatever else happened; start-up modules draw theirs in turn from stream 0xffff.
constexpr std::uint64_t k_startup_identity_stream = 0xffff;

// One message, written with a single write when the statement ends, so a reader tailing stderr
// (a test waiting for "control: …") never sees half a line.
class LogLine {
public:
  explicit LogLine(std::ostream& out) : m_out(out) {}
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  ~LogLine() { m_out << m_buffer.str() << std::flush; }
  template <class T> LogLine& operator<<(const T& value) {
    m_buffer << value;
    return *this;
  }

private:
  std::ostream& m_out;
  std::ostringstream m_buffer;
};

std::string errno_text() {
  return std::strerror(errno);
}

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_blank(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// Splits the next blank-separated token off the front of s.
std::string_view take_token(std::string_view& s) {
  s = trim(s);
  std::size_t end = 0;
  while (end < s.size() && !is_blank(s[end])) {
    ++end;
  }
  const std::string_view token = s.substr(0, end);
  s.remove_prefix(end);
  return token;
}

// What a log line may show of a control line: the first two tokens, printable ASCII only, so a
// set-sn / set-copy value (or a secret typed by mistake) never reaches the log. The second token
// of set-sn / set-copy is shown only when it is a number (the fixture index): with the index
// forgotten it is the value.
std::string loggable(std::string_view line) {
  std::string_view rest = line;
  const std::string_view first = take_token(rest);
  std::string_view second = take_token(rest);
  std::string out(first.substr(0, 32));
  const bool hide =
      (first == "set-sn" || first == "set-copy") &&
      !std::all_of(second.begin(), second.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (hide) {
    second = {};
  }
  if (!second.empty()) {
    out += ' ';
    out += second.substr(0, 32);
  }
  for (char& c : out) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b >= 0x7f) {
      c = '?';
    }
  }
  if (hide || !trim(rest).empty()) {
    out += " ...";
  }
  return out;
}

std::string_view identity_key(ModuleKind kind) {
  return kind == ModuleKind::esp_at ? "mac" : "imei";
}

std::uint64_t model_seed(std::uint64_t base, std::size_t index, std::size_t generation) {
  return derive_seed(
      base, (static_cast<std::uint64_t>(generation) << 32) | static_cast<std::uint64_t>(index));
}

std::uint64_t insert_identity_seed(std::uint64_t base, std::size_t index, std::size_t generation) {
  return derive_seed(model_seed(base, index, generation), 1);
}

Status write_all_at(int fd, std::string_view bytes, off_t offset) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        ::pwrite(fd, bytes.data() + done, bytes.size() - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(ErrorKind::io, errno_text());
    }
    done += static_cast<std::size_t>(n);
  }
  return {};
}

} // namespace

// ---- commands -------------------------------------------------------------------------------

std::string_view to_string(ControlCommand::Verb verb) {
  switch (verb) {
  case ControlCommand::Verb::remove:
    return "remove";
  case ControlCommand::Verb::insert:
    return "insert";
  case ControlCommand::Verb::swap:
    return "swap";
  case ControlCommand::Verb::set_sn:
    return "set-sn";
  case ControlCommand::Verb::connected:
    return "connected";
  case ControlCommand::Verb::set_copy:
    return "set-copy";
  case ControlCommand::Verb::refetch:
    return "refetch";
  }
  return "?";
}

Result<ControlCommand>
parse_control_line(std::string_view line, ModuleKind kind, std::size_t fixtures) {
  std::string_view rest = line;
  const std::string_view verb = take_token(rest);
  ControlCommand cmd;
  if (verb == "remove") {
    cmd.verb = ControlCommand::Verb::remove;
  } else if (verb == "insert") {
    cmd.verb = ControlCommand::Verb::insert;
  } else if (verb == "swap") {
    cmd.verb = ControlCommand::Verb::swap;
  } else if (verb == "set-sn") {
    cmd.verb = ControlCommand::Verb::set_sn;
  } else if (verb == "connected") {
    cmd.verb = ControlCommand::Verb::connected;
  } else if (verb == "set-copy") {
    cmd.verb = ControlCommand::Verb::set_copy;
  } else if (verb == "refetch") {
    cmd.verb = ControlCommand::Verb::refetch;
  } else {
    return fail(ErrorKind::usage,
                "unknown command (remove, insert, swap, set-sn, connected, set-copy, refetch)");
  }
  const bool copy_verb =
      cmd.verb == ControlCommand::Verb::connected || cmd.verb == ControlCommand::Verb::set_copy;
  if (copy_verb && kind != ModuleKind::luat) {
    return fail(ErrorKind::usage,
                std::string(verb) + ": the secret copy (AT+NVMDS?) is modelled on luat modules "
                                    "only — start the simulator with --module luat");
  }
  const std::string_view index = take_token(rest);
  if (index.empty()) {
    return fail(ErrorKind::usage, std::string(verb) + " needs a fixture index");
  }
  if (index == "all") {
    if (cmd.verb != ControlCommand::Verb::swap) {
      return fail(ErrorKind::usage, "only swap takes 'all'");
    }
  } else {
    std::size_t value = 0;
    const auto [ptr, ec] = std::from_chars(index.data(), index.data() + index.size(), value);
    if (ec != std::errc() || ptr != index.data() + index.size()) {
      return fail(ErrorKind::usage, "the fixture index must be a number");
    }
    if (value >= fixtures) {
      return fail(ErrorKind::usage,
                  "no fixture " + std::to_string(value) + " (0-" + std::to_string(fixtures - 1) +
                      ")");
    }
    cmd.index = value;
  }
  if (cmd.verb == ControlCommand::Verb::set_sn || cmd.verb == ControlCommand::Verb::set_copy) {
    cmd.value = std::string(trim(rest));
    if (cmd.value.empty()) {
      return fail(ErrorKind::usage, std::string(verb) + " needs a value");
    }
    return cmd;
  }
  if (cmd.verb != ControlCommand::Verb::remove && cmd.verb != ControlCommand::Verb::connected &&
      cmd.verb != ControlCommand::Verb::refetch) {
    cmd.identity = std::string(take_token(rest));
    if (!cmd.identity.empty()) {
      if (!cmd.index) {
        return fail(ErrorKind::usage, "swap all takes no identity");
      }
      if (kind == ModuleKind::esp_at ? !is_mac_shaped(cmd.identity)
                                     : !is_imei_shaped(cmd.identity)) {
        return fail(ErrorKind::usage,
                    kind == ModuleKind::esp_at ? "an esp-at module takes a MAC (aa:bb:cc:dd:ee:ff)"
                                               : "an IMEI is 15 digits");
      }
    }
  }
  if (!trim(rest).empty()) {
    return fail(ErrorKind::usage, "too many arguments");
  }
  return cmd;
}

Nvm fresh_module_nvm(ModuleKind kind, Rng& rng) {
  Nvm nvm;
  nvm.imei = random_imei(rng);
  nvm.iccid = random_iccid(rng);
  nvm.imsi = random_imsi(rng);
  nvm.mac = random_mac(rng);
  if (kind == ModuleKind::quectel) {
    nvm.sn = random_module_sn(rng); // the factory serial number (AT+EGMR=0,5), not a credential
  }
  return nvm;
}

std::string utc_timestamp_ms() {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const auto seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[40];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(ms % 1000));
  return text;
}

// ---- modules.ndjson -------------------------------------------------------------------------

ModuleHistory::ModuleHistory(fs::path path, ModuleKind kind, int fd)
    : m_path(std::move(path)), m_kind(kind), m_fd(fd) {}

ModuleHistory::ModuleHistory(ModuleHistory&& other) noexcept
    : m_path(std::move(other.m_path)), m_kind(other.m_kind), m_fd(std::exchange(other.m_fd, -1)),
      m_end(other.m_end), m_records(std::move(other.m_records)),
      m_removed_slot(std::move(other.m_removed_slot)) {}

ModuleHistory& ModuleHistory::operator=(ModuleHistory&& other) noexcept {
  if (this != &other) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_path = std::move(other.m_path);
    m_kind = other.m_kind;
    m_fd = std::exchange(other.m_fd, -1);
    m_end = other.m_end;
    m_records = std::move(other.m_records);
    m_removed_slot = std::move(other.m_removed_slot);
  }
  return *this;
}

ModuleHistory::~ModuleHistory() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

Result<ModuleHistory> ModuleHistory::open(const fs::path& path, ModuleKind kind) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return fail(ErrorKind::io, "open " + path.string() + ": " + errno_text());
  }
  ModuleHistory history(path, kind, fd); // owns fd from here
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return fail(ErrorKind::io, "stat " + path.string() + ": " + errno_text());
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::pread(fd, text.data() + got, text.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return fail(ErrorKind::io, "read " + path.string() + ": " + errno_text());
    }
    got += static_cast<std::size_t>(n);
  }
  // A line is complete once its '\n' is written; anything after the last one is a torn append.
  const std::size_t complete = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
  if (complete < text.size()) {
    if (::ftruncate(fd, static_cast<off_t>(complete)) != 0) {
      return fail(ErrorKind::io, "truncate " + path.string() + ": " + errno_text());
    }
    text.resize(complete);
  }
  history.m_end = static_cast<off_t>(complete);
  std::size_t start = 0;
  std::size_t line_no = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    const std::string_view line(text.data() + start, end - start);
    ++line_no;
    const auto where = [&] { return path.string() + " line " + std::to_string(line_no) + ": "; };
    if (!trim(line).empty()) {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      try {
        if (j.is_discarded() || !j.is_object()) {
          throw std::runtime_error("not a JSON object");
        }
        ModuleRecord r;
        r.index = j.at("index").get<std::size_t>();
        r.generation = j.at("generation").get<std::size_t>();
        r.identity = j.value(std::string(identity_key(kind)), std::string());
        r.nvm = j.at("nvm").get<std::string>();
        r.inserted_at = j.at("inserted_at").get<std::string>();
        off_t slot = -1;
        if (const auto& removed = j.at("removed_at"); removed.is_string()) {
          r.removed_at = removed.get<std::string>();
        } else if (const auto key = line.find(k_removed_key); key != std::string_view::npos) {
          // Our own padding: "null" and blanks up to the closing brace.
          std::size_t width = 0;
          const std::size_t value = key + k_removed_key.size();
          while (value + width < line.size() && line[value + width] != '}') {
            ++width;
          }
          if (line.substr(value, 4) == "null" && width >= k_removed_slot) {
            slot = static_cast<off_t>(start + value);
          }
        }
        history.m_records.push_back(std::move(r));
        history.m_removed_slot.push_back(slot);
      } catch (const std::exception& e) {
        return fail(ErrorKind::io, where() + "not a module record (" + e.what() + ")");
      }
    }
    start = end + 1;
  }
  return history;
}

const ModuleRecord* ModuleHistory::latest(std::size_t index) const {
  const ModuleRecord* best = nullptr;
  for (const auto& r : m_records) {
    if (r.index == index && (best == nullptr || r.generation >= best->generation)) {
      best = &r;
    }
  }
  return best;
}

Status ModuleHistory::append(ModuleRecord record) {
  nlohmann::ordered_json j;
  j["index"] = record.index;
  j["generation"] = record.generation;
  j[std::string(identity_key(m_kind))] = record.identity;
  j["nvm"] = record.nvm.string();
  j["inserted_at"] = record.inserted_at;
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.pop_back(); // the closing brace
  line += ',';
  line += k_removed_key;
  const auto slot = m_end + static_cast<off_t>(line.size());
  line += "null";
  line.append(k_removed_slot - 4, ' ');
  line += "}\n";
  if (auto written = write_all_at(m_fd, line, m_end); !written) {
    return fail(ErrorKind::io, "append to " + m_path.string() + ": " + written.error().message);
  }
  m_end += static_cast<off_t>(line.size());
  record.removed_at.reset();
  m_records.push_back(std::move(record));
  m_removed_slot.push_back(slot);
  return {};
}

Status ModuleHistory::mark_removed(std::size_t index, std::size_t generation, std::string when) {
  for (std::size_t i = m_records.size(); i-- > 0;) {
    ModuleRecord& r = m_records[i];
    if (r.index != index || r.generation != generation) {
      continue;
    }
    if (r.removed_at) {
      return {};
    }
    const std::string value = "\"" + when + "\"";
    if (m_removed_slot[i] < 0 || value.size() > k_removed_slot) {
      return fail(ErrorKind::io,
                  m_path.string() + ": the line of fixture " + std::to_string(index) +
                      " generation " + std::to_string(generation) + " has no room for removed_at");
    }
    if (auto written = write_all_at(m_fd, value, m_removed_slot[i]); !written) {
      return fail(ErrorKind::io, "update " + m_path.string() + ": " + written.error().message);
    }
    r.removed_at = std::move(when);
    m_removed_slot[i] = -1;
    return {};
  }
  return fail(ErrorKind::io,
              m_path.string() + ": no line for fixture " + std::to_string(index) + " generation " +
                  std::to_string(generation));
}

// ---- the line -------------------------------------------------------------------------------

ProductionLine::ProductionLine(PtyServer& server, LineOptions options, ModuleHistory history)
    : m_server(server), m_options(std::move(options)), m_history(std::move(history)) {}

std::ostream& ProductionLine::log_stream() const {
  return m_options.log != nullptr ? *m_options.log : std::cerr;
}

const std::string& ProductionLine::identity_of(const Nvm& nvm) const {
  return m_options.config.kind == ModuleKind::esp_at ? nvm.mac : nvm.imei;
}

std::string& ProductionLine::identity_of(Nvm& nvm) const {
  return m_options.config.kind == ModuleKind::esp_at ? nvm.mac : nvm.imei;
}

std::string ProductionLine::identity(std::size_t index) const {
  const ModuleModel* model = m_server.model(index);
  return model != nullptr ? identity_of(model->nvm()) : std::string();
}

std::unique_ptr<ModuleModel>
ProductionLine::make_model(std::size_t index, std::size_t generation, Nvm nvm) const {
  const ModuleKind kind = m_options.config.kind;
  const fs::path file = nvm_path(m_options.state_dir, kind, index, generation);
  auto persist = [file, kind](const Nvm& next) { return save_nvm(file, next, kind); };
  return std::make_unique<ModuleModel>(m_options.config,
                                       std::move(nvm),
                                       model_seed(m_options.base_seed, index, generation),
                                       std::move(persist));
}

Status ProductionLine::record_inserted(std::size_t index, std::size_t generation, const Nvm& nvm) {
  return m_history.append(
      ModuleRecord{index,
                   generation,
                   identity_of(nvm),
                   nvm_path(m_options.state_dir, m_options.config.kind, index, generation),
                   utc_timestamp_ms(),
                   std::nullopt});
}

Status ProductionLine::start(std::size_t count, const IdentityOverrides& overrides) {
  const ModuleKind kind = m_options.config.kind;
  Rng startup_rng(derive_seed(m_options.base_seed, k_startup_identity_stream));
  std::optional<std::string> first_identity;
  m_fixtures.assign(count, Fixture{});
  for (std::size_t i = 0; i < count; ++i) {
    const ModuleRecord* latest = m_history.latest(i);
    if (latest != nullptr && latest->removed_at) {
      // The fixture was left empty: it stays empty until an `insert`.
      m_fixtures[i].generation = latest->generation;
      IOT_TRY(m_server.add(nullptr));
      LogLine(log_stream()) << "iotfleet-sim: fixture " << i
                            << " is empty (its module was removed at " << *latest->removed_at << ")"
                            << (i < overrides.identities.size() ? "; --imei for it ignored" : "")
                            << '\n';
      continue;
    }
    std::size_t generation = latest != nullptr ? latest->generation : 0;
    fs::path file = nvm_path(m_options.state_dir, kind, i, generation);
    auto loaded = IOT_TRY(load_nvm(file));
    Nvm nvm;
    bool changed = false;
    bool new_record = latest == nullptr;
    if (loaded) {
      nvm = std::move(*loaded);
    } else if (latest != nullptr) {
      // The current module's file is gone: a fresh module took its place.
      IOT_TRY(m_history.mark_removed(i, generation, utc_timestamp_ms()));
      ++generation;
      file = nvm_path(m_options.state_dir, kind, i, generation);
      Rng rng(insert_identity_seed(m_options.base_seed, i, generation));
      nvm = fresh_module_nvm(kind, rng);
      changed = true;
      new_record = true;
      LogLine(log_stream()) << "iotfleet-sim: fixture " << i << ": state file of generation "
                            << generation - 1 << " missing, a new module is inserted as generation "
                            << generation << '\n';
    } else {
      nvm = fresh_module_nvm(kind, startup_rng);
      changed = true;
    }
    std::string& identity = identity_of(nvm);
    std::string wanted = identity;
    if (overrides.placeholder) {
      wanted = std::string(k_placeholder_imei);
    } else if (i < overrides.identities.size()) {
      wanted = overrides.identities[i];
    } else if (overrides.duplicate && first_identity) {
      wanted = *first_identity;
    }
    if (wanted != identity) {
      identity = wanted;
      changed = true;
    }
    if (!first_identity) {
      first_identity = identity;
    }
    if (changed) {
      IOT_TRY(save_nvm(file, nvm, kind));
    }
    if (new_record) {
      IOT_TRY(record_inserted(i, generation, nvm));
    }
    m_fixtures[i].generation = generation;
    IOT_TRY(m_server.add(make_model(i, generation, std::move(nvm))));
  }
  return {};
}

Status ProductionLine::publish() const {
  const ModuleKind kind = m_options.config.kind;
  std::vector<PortEntry> entries;
  for (std::size_t i = 0; i < m_fixtures.size(); ++i) {
    entries.push_back(PortEntry{i, m_server.path(i), identity(i)});
  }
  nlohmann::json doc = nlohmann::json::parse(
      ports_json(m_options.pid, kind, m_options.state_dir, m_options.baud, entries));
  for (auto& port : doc.at("ports")) {
    const auto i = port.at("index").get<std::size_t>();
    port["generation"] = m_fixtures[i].generation;
    port["present"] = present(i);
    if (!present(i)) {
      port[std::string(identity_key(kind))] = nullptr;
    }
  }
  const std::string text = doc.dump(2) + "\n";
  for (const auto& file : m_options.ports_files) {
    IOT_TRY(write_file_atomic(file, text));
  }
  return {};
}

void ProductionLine::publish_or_log() const {
  if (auto published = publish(); !published) {
    LogLine(log_stream()) << "control: error: ports file not updated: " << published.error().message
                          << '\n';
  }
}

std::string ProductionLine::remove_module(std::size_t index) {
  std::unique_ptr<ModuleModel> model = m_server.remove(index);
  if (!model) {
    return {};
  }
  std::string id = identity_of(model->nvm());
  if (auto marked = m_history.mark_removed(index, m_fixtures[index].generation, utc_timestamp_ms());
      !marked) {
    LogLine(log_stream()) << "control: error: " << marked.error().message << '\n';
  }
  publish_or_log();
  return id.empty() ? std::string("?") : id;
}

std::string
ProductionLine::insert_module(std::size_t index, const std::string& identity, TimePoint now) {
  const ModuleKind kind = m_options.config.kind;
  const std::size_t generation = m_fixtures[index].generation + 1;
  Rng rng(insert_identity_seed(m_options.base_seed, index, generation));
  Nvm nvm = fresh_module_nvm(kind, rng);
  if (!identity.empty()) {
    identity_of(nvm) = identity;
  }
  const fs::path file = nvm_path(m_options.state_dir, kind, index, generation);
  if (auto saved = save_nvm(file, nvm, kind); !saved) {
    LogLine(log_stream()) << "control: error: insert " << index << ": " << saved.error().message
                          << '\n';
    return {};
  }
  m_fixtures[index].generation = generation;
  if (auto recorded = record_inserted(index, generation, nvm); !recorded) {
    LogLine(log_stream()) << "control: error: " << recorded.error().message << '\n';
  }
  std::string id = identity_of(nvm);
  m_server.insert(index, make_model(index, generation, std::move(nvm)), now);
  publish_or_log();
  return id;
}

void ProductionLine::apply(const ControlCommand& command, TimePoint now) {
  using Verb = ControlCommand::Verb;
  const auto gap_ms = m_options.swap_gap.count();
  if (command.verb == Verb::swap) {
    std::vector<std::size_t> targets;
    if (command.index) {
      targets.push_back(*command.index);
    } else {
      for (std::size_t i = 0; i < m_fixtures.size(); ++i) {
        targets.push_back(i);
      }
    }
    for (const std::size_t i : targets) {
      const std::string old = remove_module(i);
      m_fixtures[i].insert_at = now + m_options.swap_gap;
      m_fixtures[i].insert_identity = command.identity;
      LogLine(log_stream()) << "control: swap " << i << ": "
                            << (old.empty() ? std::string("fixture was empty") : "removed " + old)
                            << ", inserting in " << gap_ms << " ms\n";
    }
    return;
  }
  const std::size_t i = *command.index;
  Fixture& fixture = m_fixtures[i];
  switch (command.verb) {
  case Verb::remove: {
    const bool cancelled = fixture.insert_at.has_value();
    fixture.insert_at.reset();
    const std::string old = remove_module(i);
    if (!old.empty()) {
      LogLine(log_stream()) << "control: remove " << i << " (" << old << ", generation "
                            << fixture.generation << ")\n";
    } else {
      LogLine(log_stream()) << "control: remove " << i << ": fixture already empty"
                            << (cancelled ? "; pending swap insert cancelled" : ", ignored")
                            << '\n';
    }
    return;
  }
  case Verb::insert: {
    fixture.insert_at.reset();
    const std::string old = remove_module(i);
    const std::string id = insert_module(i, command.identity, now);
    if (!id.empty()) {
      LogLine(log_stream()) << "control: insert " << i << " -> " << id << " (generation "
                            << fixture.generation
                            << (old.empty() ? std::string() : "; replaced " + old) << ")\n";
    }
    return;
  }
  case Verb::set_sn: {
    ModuleModel* model = m_server.model(i);
    if (model == nullptr) {
      LogLine(log_stream()) << "control: set-sn " << i << ": fixture empty, ignored\n";
      return;
    }
    if (auto done = model->overwrite_sn_storage(command.value); !done) {
      LogLine(log_stream()) << "control: set-sn " << i << " failed: " << done.error().message
                            << '\n';
      return;
    }
    LogLine(log_stream()) << "control: set-sn " << i << '\n';
    return;
  }
  case Verb::connected:
  case Verb::set_copy: {
    const std::string_view verb = to_string(command.verb);
    ModuleModel* model = m_server.model(i);
    if (model == nullptr) {
      LogLine(log_stream()) << "control: " << verb << ' ' << i << ": fixture empty, ignored\n";
      return;
    }
    if (auto done = command.verb == Verb::connected ? model->simulate_connection()
                                                    : model->overwrite_secret_copy(command.value);
        !done) {
      LogLine(log_stream()) << "control: " << verb << ' ' << i
                            << " failed: " << done.error().message << '\n';
      return;
    }
    LogLine(log_stream()) << "control: " << verb << ' ' << i << '\n';
    return;
  }
  case Verb::refetch: {
    ModuleModel* model = m_server.model(i);
    if (!m_options.refetch) {
      LogLine(log_stream()) << "control: refetch " << i << ": ignored (start with --first-boot)\n";
    } else if (model == nullptr) {
      LogLine(log_stream()) << "control: refetch " << i << ": fixture empty, ignored\n";
    } else {
      LogLine(log_stream()) << "control: refetch " << i << ": " << m_options.refetch(i, *model)
                            << '\n';
    }
    return;
  }
  case Verb::swap:
    return; // handled above
  }
}

void ProductionLine::handle_line(std::string_view line, TimePoint now) {
  const std::string_view text = trim(line);
  if (text.empty() || text.front() == '#') {
    return;
  }
  auto command = parse_control_line(text, m_options.config.kind, m_fixtures.size());
  if (!command) {
    LogLine(log_stream()) << "control: ignored '" << loggable(text)
                          << "': " << command.error().message << '\n';
    return;
  }
  apply(*command, now);
}

void ProductionLine::on_readable(TimePoint now) {
  char buffer[4096];
  while (!m_control_eof) {
    const ssize_t n = ::read(m_control_fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      break; // EAGAIN: drained
    }
    if (n == 0) {
      m_control_eof = true; // a pipe whose writer is gone (the FIFO is also open for writing)
      if (!m_control_discarding && !m_control_buffer.empty()) {
        handle_line(m_control_buffer, now);
      }
      m_control_buffer.clear();
      break;
    }
    for (const char c : std::string_view(buffer, static_cast<std::size_t>(n))) {
      if (c == '\n') {
        if (m_control_discarding) {
          LogLine(log_stream()) << "control: ignored a line longer than " << k_max_control_line
                                << " bytes\n";
        } else {
          handle_line(m_control_buffer, now);
        }
        m_control_discarding = false;
        m_control_buffer.clear();
      } else if (!m_control_discarding) {
        m_control_buffer.push_back(c);
        if (m_control_buffer.size() > k_max_control_line) {
          m_control_discarding = true;
          m_control_buffer.clear();
        }
      }
    }
  }
}

std::optional<TimePoint> ProductionLine::next_deadline() const {
  std::optional<TimePoint> next;
  for (const auto& f : m_fixtures) {
    if (f.insert_at && (!next || *f.insert_at < *next)) {
      next = f.insert_at;
    }
  }
  return next;
}

void ProductionLine::advance(TimePoint now) {
  for (std::size_t i = 0; i < m_fixtures.size(); ++i) {
    Fixture& f = m_fixtures[i];
    if (!f.insert_at || *f.insert_at > now) {
      continue;
    }
    f.insert_at.reset();
    const std::string id = insert_module(i, f.insert_identity, now);
    if (!id.empty()) {
      LogLine(log_stream()) << "control: swap " << i << " -> " << id << " (generation "
                            << f.generation << ")\n";
    }
  }
}

} // namespace iot::sim
