// SPDX-License-Identifier: MIT
#include "core/secret_file.hpp"

#include "core/csv.hpp"
#include "core/json_scan.hpp"
#include "core/text.hpp"
#include "core/validate.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cstring>
#include <optional>
#include <thread>

namespace iot::core {
namespace {

constexpr std::string_view k_snapshot_formats =
    "a snapshot is what `iotfleet secrets export -O FILE` writes: a CSV with the header "
    "product_key,device_name,device_secret,status,iot_id, or with --format json a JSON array of "
    "one object per line; the console's batch CSV (ProductKey,DeviceName,DeviceSecret) is read "
    "too";
constexpr std::string_view k_devices_formats =
    "a devices file is one DeviceName per line, a CSV whose header has a device_name column "
    "(device_secret optional; what `iotfleet module info -o csv --show-secrets` or `iotfleet "
    "pool export -O FILE` writes), or NDJSON objects with device_name (and device_secret)";

// The characters validate_device_name / validate_device_secret allow, as a table: the row loop
// checks with it and calls the validator (for its message) only when a value fails.
constexpr std::array<bool, 256> k_name_chars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) {
    t[static_cast<std::size_t>(c)] = true;
  }
  for (int c = 'A'; c <= 'Z'; ++c) {
    t[static_cast<std::size_t>(c)] = true;
    t[static_cast<std::size_t>(c - 'A' + 'a')] = true;
  }
  for (const char c : std::string_view("_-@.:")) {
    t[static_cast<unsigned char>(c)] = true;
  }
  return t;
}();

bool fast_valid(std::string_view v,
                std::size_t min,
                std::size_t max,
                const std::array<bool, 256>& allowed) {
  if (v.size() < min || v.size() > max) {
    return false;
  }
  bool ok = true;
  for (const char c : v) {
    ok &= allowed[static_cast<unsigned char>(c)];
  }
  return ok;
}

std::string normalize_name(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == '_' || c == '-' || c == ' ') {
      continue;
    }
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

void skip_ws(const char*& p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
    ++p;
  }
}

} // namespace

SecretRecordParser::SecretRecordParser(SecretFileRole role) : m_role(role) {}

std::string_view SecretRecordParser::format() const {
  switch (m_format) {
  case Format::csv:
    return "csv";
  case Format::aliyun_csv:
    return "aliyun-csv";
  case Format::csv_no_header:
    return "csv-no-header";
  case Format::json:
    return "json";
  case Format::ndjson:
    return "ndjson";
  case Format::names:
    return "names";
  case Format::none:
    break;
  }
  return "";
}

std::string_view SecretRecordParser::keep(std::string value) {
  m_arena.push_back(std::move(value));
  return m_arena.back();
}

Result<bool> SecretRecordParser::parse(std::string_view line, SecretRecord& out) {
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  if (!m_started) {
    return first_line(line, out);
  }
  if (line.empty()) {
    return false;
  }
  if (m_format == Format::json || m_format == Format::ndjson) {
    return json_row(line, out);
  }
  if (m_format == Format::names) {
    return names_row(line, out);
  }
  return csv_row(line, out);
}

Result<bool> SecretRecordParser::first_line(std::string_view line, SecretRecord& out) {
  if (line.starts_with("\xEF\xBB\xBF")) {
    line.remove_prefix(3);
  }
  const std::string_view t = trim_blanks(line);
  if (t.empty()) {
    return false;
  }
  const auto& formats = m_role == SecretFileRole::snapshot ? k_snapshot_formats : k_devices_formats;
  if (t.find('\0') != std::string_view::npos) {
    return fail(ErrorKind::usage,
                "holds a NUL byte: a binary or UTF-16 file; save it as UTF-8 text (" +
                    std::string(formats) + ")");
  }
  m_started = true;
  if (t.front() == '[' || t.front() == '{') {
    m_format = t.front() == '[' ? Format::json : Format::ndjson;
    return json_row(line, out);
  }
  // CSV: a header, or a first row.
  std::vector<std::string_view> fields;
  CsvCursor cursor(line); // the views below live as long as the cursor
  while (auto field = IOT_TRY(cursor.next())) {
    fields.push_back(*field);
  }
  std::vector<Field> columns;
  bool known = false;
  for (const auto f : fields) {
    const std::string n = normalize_name(f);
    Field field = Field::none;
    if (n == "productkey") {
      field = Field::product_key;
    } else if (n == "devicename") {
      field = Field::device_name;
    } else if (n == "devicesecret") {
      field = Field::device_secret;
    } else if (n == "status") {
      field = Field::status;
    } else if (n == "imei") {
      field = Field::imei;
    }
    if (field != Field::none) {
      if (std::find(columns.begin(), columns.end(), field) != columns.end()) {
        return fail(ErrorKind::usage,
                    "the header names the column " + std::string(f) +
                        " twice: keep one and run again");
      }
      known = true;
    }
    columns.push_back(field);
  }
  const auto has = [&](Field f) {
    return std::find(columns.begin(), columns.end(), f) != columns.end();
  };
  if (known) {
    if (m_role == SecretFileRole::snapshot &&
        (!has(Field::device_name) || !has(Field::device_secret))) {
      return fail(ErrorKind::usage,
                  std::string("the header has no ") +
                      (!has(Field::device_name) ? "device_name (DeviceName)"
                                                : "device_secret (DeviceSecret)") +
                      " column: " + std::string(k_snapshot_formats));
    }
    if (m_role == SecretFileRole::devices && !has(Field::device_name) && !has(Field::imei)) {
      return fail(ErrorKind::usage,
                  "the header has no device_name (DeviceName) column: " +
                      std::string(k_devices_formats));
    }
    m_columns = std::move(columns);
    // A row must reach the columns it cannot do without (DeviceName, and the DeviceSecret of
    // a snapshot); the fields after them may be left out (then empty).
    m_needed_columns = 0;
    for (std::size_t i = 0; i < m_columns.size(); ++i) {
      const Field c = m_columns[i];
      if (c == Field::device_name || c == Field::imei ||
          (c == Field::device_secret && m_role == SecretFileRole::snapshot)) {
        m_needed_columns = i + 1;
      }
    }
    m_has_secret = has(Field::device_secret);
    m_format = fields.size() >= 3 && fields[0] == "ProductKey" && fields[1] == "DeviceName" &&
                       fields[2] == "DeviceSecret"
                   ? Format::aliyun_csv
                   : Format::csv;
    return false;
  }
  if (fields.size() >= 3 && validate_product_key(fields[0]) &&
      (has_digit(fields[0]) || has_digit(fields[1]) || has_digit(fields[2]))) {
    m_format = Format::csv_no_header;
    m_columns = {Field::product_key, Field::device_name, Field::device_secret};
    m_needed_columns = 3;
    m_has_secret = true;
    return csv_row(line, out);
  }
  if (m_role == SecretFileRole::devices && fields.size() == 1) {
    m_format = Format::names;
    return names_row(line, out);
  }
  return fail(ErrorKind::usage,
              "the first line is not one of the formats: " + std::string(formats));
}

Result<bool> SecretRecordParser::csv_row(std::string_view line, SecretRecord& out) {
  Values values;
  CsvCursor cursor(line);
  std::size_t col = 0;
  bool blank = true;
  while (auto field = IOT_TRY(cursor.next())) {
    std::string_view value = *field;
    if (col < m_columns.size() && m_columns[col] != Field::none) {
      // A decoded value lives in the cursor: the record's views need it in the arena.
      values.v[static_cast<std::size_t>(m_columns[col])] =
          cursor.decoded() ? keep(std::string(value)) : value;
    }
    blank = blank && value.empty() && !cursor.quoted();
    ++col;
  }
  blank = blank && col == 1;
  if (blank) {
    return false;
  }
  if (col < m_needed_columns) {
    return fail(ErrorKind::usage,
                "has " + std::to_string(col) + (col == 1 ? " field" : " fields") +
                    " but the header needs at least " + std::to_string(m_needed_columns) +
                    ": a field is missing, or a comma inside a value is not quoted");
  }
  return finish(values, out);
}

Result<bool> SecretRecordParser::names_row(std::string_view line, SecretRecord& out) {
  const std::string_view name = trim_blanks(line);
  if (name.empty()) {
    return false;
  }
  if (name.find(',') != std::string_view::npos) {
    return fail(ErrorKind::usage,
                "has a comma, but the file's first line was a DeviceName alone (a list of "
                "names): give the file a header such as device_name,device_secret");
  }
  Values values;
  values.v[static_cast<std::size_t>(Field::device_name)] = name;
  return finish(values, out);
}

Result<bool> SecretRecordParser::json_row(std::string_view line, SecretRecord& out) {
  const char* p = line.data();
  const char* end = p + line.size();
  skip_ws(p, end);
  if (m_format == Format::json && p < end && *p == '[') {
    ++p;
    skip_ws(p, end);
  }
  // Trailing blanks and `,`; in a JSON array also the closing `]`.
  const auto strip_tail = [&] {
    while (end > p && (is_blank(end[-1]) || end[-1] == ',')) {
      --end;
    }
  };
  strip_tail();
  if (m_format == Format::json && end > p && end[-1] == ']') {
    --end;
    strip_tail();
  }
  if (p >= end) {
    return false;
  }
  const auto pretty = [this] {
    return std::string(
        m_format == Format::json
            ? "a JSON snapshot must hold one flat object per line, as `secrets export --format "
              "json` writes it; for pretty-printed JSON run `jq -c '.[]' FILE > F.ndjson` and "
              "give F.ndjson"
            : "NDJSON is one flat object per line");
  };
  if (*p != '{' || end[-1] != '}') {
    return fail(ErrorKind::usage, "is not a JSON object on one line: " + pretty());
  }
  ++p;
  --end; // now inside the braces
  Values values;
  bool any_secret = false;
  const auto bad = [&](const std::string& what) {
    return fail(ErrorKind::usage, "invalid JSON (" + what + "): " + pretty());
  };
  // Reads a string at p (which is at its opening quote).
  const auto read_string = [&](std::string_view& s) -> bool {
    ++p; // the opening quote
    std::string buf;
    bool unescaped = false;
    if (!json_string(p, end, s, buf, unescaped)) {
      return false;
    }
    if (unescaped) {
      s = keep(std::move(buf));
    }
    return true;
  };
  skip_ws(p, end);
  while (p < end) {
    if (*p != '"') {
      return bad("a key must be a string");
    }
    std::string_view key;
    if (!read_string(key)) {
      return bad("unterminated string");
    }
    skip_ws(p, end);
    if (p >= end || *p != ':') {
      return bad("':' expected after a key");
    }
    ++p;
    skip_ws(p, end);
    Field field = Field::none;
    // Keys: snake_case, camelCase or PascalCase of the known names.
    if (key.size() <= 14) {
      const std::string n = normalize_name(key);
      if (n == "productkey") {
        field = Field::product_key;
      } else if (n == "devicename") {
        field = Field::device_name;
      } else if (n == "devicesecret") {
        field = Field::device_secret;
        any_secret = true;
      } else if (n == "status") {
        field = Field::status;
      } else if (n == "imei") {
        field = Field::imei;
      }
    }
    if (p < end && *p == '"') {
      std::string_view value;
      if (!read_string(value)) {
        return bad("unterminated string");
      }
      if (field != Field::none) {
        values.v[static_cast<std::size_t>(field)] = value;
      }
    } else if (p < end && field != Field::none && end - p >= 4 &&
               std::string_view(p, 4) == "null") {
      p += 4;
    } else if (field != Field::none) {
      return fail(ErrorKind::usage,
                  "the value of \"" + std::string(key) + "\" is not text: " + pretty());
    } else if (!json_skip_value(p, end)) {
      return bad("a value is not closed");
    }
    skip_ws(p, end);
    if (p < end) {
      if (*p != ',') {
        return bad("',' expected between members");
      }
      ++p;
      skip_ws(p, end);
      if (p >= end) {
        return bad("a ',' before '}'");
      }
    }
  }
  if (any_secret) {
    m_has_secret = true;
  } else if (m_role == SecretFileRole::snapshot) {
    return fail(ErrorKind::usage, "has no \"device_secret\": " + std::string(k_snapshot_formats));
  }
  return finish(values, out);
}

Result<bool> SecretRecordParser::finish(const Values& values, SecretRecord& out) {
  const auto get = [&](Field f) { return values.v[static_cast<std::size_t>(f)]; };
  out.product_key = get(Field::product_key);
  out.device_name = get(Field::device_name);
  out.device_secret = get(Field::device_secret);
  out.status = get(Field::status);
  out.name_from_imei = false;
  if (out.device_name.empty()) {
    const std::string_view imei = get(Field::imei);
    if (imei.empty() || !out.device_secret.empty() || m_role == SecretFileRole::snapshot) {
      return fail(ErrorKind::usage,
                  "the DeviceName (device_name) is empty: every row names its device");
    }
    out.device_name = imei;
    out.name_from_imei = true;
  }
  if (!fast_valid(out.device_name, 4, 32, k_name_chars)) {
    IOT_TRY(validate_device_name(out.device_name));
  }
  if (out.device_secret.empty()) {
    if (m_role == SecretFileRole::snapshot) {
      return fail(ErrorKind::usage,
                  "the DeviceSecret (device_secret) is empty: a snapshot holds every device's "
                  "secret; export it again with `iotfleet secrets export -O FILE`");
    }
  } else {
    const auto s = out.device_secret;
    if (!fast_valid(s, 1, 64, k_name_chars)) {
      if (s.find("\xE2\x80\xA6") != std::string_view::npos ||
          s.find_first_not_of('*') == std::string_view::npos) {
        return fail(ErrorKind::usage,
                    "the DeviceSecret (device_secret) is masked (abcd…wxyz or ****): write the "
                    "file again with --show-secrets");
      }
      IOT_TRY(validate_device_secret(s));
    }
  }
  if (!out.product_key.empty() && out.product_key != m_last_product_key) {
    IOT_TRY(validate_product_key(out.product_key));
    m_last_product_key = std::string(out.product_key);
  }
  return true;
}

std::uint64_t hash_device_name(std::string_view s) {
  std::uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xFF51AFD7ED558CCDull);
  const char* p = s.data();
  std::size_t n = s.size();
  while (n >= 8) {
    std::uint64_t k = 0;
    std::memcpy(&k, p, 8);
    h = (h ^ k) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    std::uint64_t k = 0;
    std::memcpy(&k, p, n);
    h = (h ^ k) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
  }
  h ^= h >> 32;
  h *= 0x94D049BB133111EBull;
  h ^= h >> 29;
  return h;
}

namespace {

constexpr std::uint64_t k_tag_mask = 0xFFFFFFFF00000000ull;
constexpr std::size_t k_group = 16;                // lookups whose memory is prefetched together
constexpr std::size_t k_parallel_bytes = 4u << 20; // smaller snapshots are read by one thread

// What one thread made of its part of the snapshot.
struct Part {
  std::vector<SnapshotEntry> entries;
  std::string product_key; // the first row's
  std::size_t product_key_line = 0;
  std::optional<Error> error; // "line N: …"
};

void parse_part(SecretRecordParser& parser,
                std::string_view text,
                std::size_t first_line,
                Part& out) {
  SecretRecord r;
  auto done = for_each_line(text, first_line, [&](std::string_view line, std::size_t n) -> Status {
    auto got = IOT_TRY_CTX(parser.parse(line, r), "line " + std::to_string(n));
    if (!got) {
      return {};
    }
    if (!r.product_key.empty() && r.product_key != out.product_key) {
      if (!out.product_key.empty()) {
        return fail(ErrorKind::usage,
                    "line " + std::to_string(n) + ": ProductKey " + std::string(r.product_key) +
                        " differs from line " + std::to_string(out.product_key_line) + "'s " +
                        out.product_key +
                        ": a snapshot holds one product; compare one product at a time (split "
                        "the file by ProductKey)");
      }
      out.product_key = std::string(r.product_key);
      out.product_key_line = n;
    }
    SnapshotEntry e;
    e.name = r.device_name.data();
    e.name_size = static_cast<std::uint8_t>(r.device_name.size());
    e.secret = r.device_secret.data();
    e.secret_size = static_cast<std::uint8_t>(r.device_secret.size());
    e.status = parse_device_status(r.status);
    out.entries.push_back(e);
    return {};
  });
  if (!done) {
    out.error = done.error();
  }
}

std::string line_of(std::string_view content, const char* p) {
  if (p < content.data() || p >= content.data() + content.size()) {
    return "an earlier line";
  }
  return "line " + std::to_string(std::count(content.data(), p, '\n') + 1);
}

} // namespace

std::unique_ptr<SecretRecordParser> SecretRecordParser::for_later_lines() const {
  auto p = std::make_unique<SecretRecordParser>(m_role);
  p->m_format = m_format;
  p->m_has_secret = m_has_secret;
  p->m_started = m_started;
  p->m_columns = m_columns;
  p->m_needed_columns = m_needed_columns;
  return p;
}

std::optional<std::uint32_t> SecretSnapshot::insert_all() {
  const auto n = m_entries.size();
  std::array<std::uint64_t, k_group> hashes{};
  for (std::size_t i = 0; i < n; i += k_group) {
    const std::size_t g = std::min(k_group, n - i);
    for (std::size_t j = 0; j < g; ++j) {
      hashes[j] = hash_device_name(m_entries[i + j].device_name());
      __builtin_prefetch(&m_slots[hashes[j] & m_mask], 1);
    }
    for (std::size_t j = 0; j < g; ++j) {
      const auto index = static_cast<std::uint32_t>(i + j);
      const std::string_view name = m_entries[index].device_name();
      const std::uint64_t tag = hashes[j] & k_tag_mask;
      for (std::uint64_t pos = hashes[j] & m_mask;; pos = (pos + 1) & m_mask) {
        const std::uint64_t slot = m_slots[pos];
        if (slot == 0) {
          m_slots[pos] = tag | (static_cast<std::uint64_t>(index) + 1);
          break;
        }
        if ((slot & k_tag_mask) == tag &&
            m_entries[(slot & 0xFFFFFFFFull) - 1].device_name() == name) {
          return index;
        }
      }
    }
  }
  return std::nullopt;
}

const SnapshotEntry* SecretSnapshot::find(std::string_view name) const {
  if (m_slots.empty()) {
    return nullptr;
  }
  const std::uint64_t h = hash_device_name(name);
  const std::uint64_t tag = h & k_tag_mask;
  for (std::uint64_t pos = h & m_mask;; pos = (pos + 1) & m_mask) {
    const std::uint64_t slot = m_slots[pos];
    if (slot == 0) {
      return nullptr;
    }
    if ((slot & k_tag_mask) == tag) {
      const SnapshotEntry& e = m_entries[(slot & 0xFFFFFFFFull) - 1];
      if (e.device_name() == name) {
        return &e;
      }
    }
  }
}

void SecretSnapshot::find_many(std::span<const std::string_view> names,
                               std::span<const SnapshotEntry*> out) const {
  // A software pipeline: lookup k hashes its name and prefetches its slot; k - D walks its slot
  // chain (in cache by then) and prefetches the entry; k - 2D prefetches the entry's name and
  // secret; k - 3D compares. Each miss has D lookups' time to arrive.
  constexpr std::size_t d = k_group;
  constexpr std::size_t ring = 4 * d;
  std::array<std::uint64_t, ring> hashes{};
  std::array<const SnapshotEntry*, ring> candidates{};
  const std::size_t n = names.size();
  if (m_slots.empty()) {
    std::fill(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n), nullptr);
    return;
  }
  for (std::size_t k = 0; k < n + 3 * d; ++k) {
    if (k < n) {
      hashes[k % ring] = hash_device_name(names[k]);
      __builtin_prefetch(&m_slots[hashes[k % ring] & m_mask]);
    }
    if (k >= d && k - d < n) {
      const std::size_t j = k - d;
      const std::uint64_t h = hashes[j % ring];
      const SnapshotEntry* c = nullptr;
      for (std::uint64_t pos = h & m_mask;; pos = (pos + 1) & m_mask) {
        const std::uint64_t slot = m_slots[pos];
        if (slot == 0) {
          break;
        }
        if ((slot & k_tag_mask) == (h & k_tag_mask)) {
          c = &m_entries[(slot & 0xFFFFFFFFull) - 1];
          __builtin_prefetch(c);
          break;
        }
      }
      candidates[j % ring] = c;
    }
    if (k >= 2 * d && k - 2 * d < n) {
      if (const SnapshotEntry* c = candidates[(k - 2 * d) % ring]) {
        __builtin_prefetch(c->name);
        __builtin_prefetch(c->secret);
      }
    }
    if (k >= 3 * d) {
      const std::size_t j = k - 3 * d;
      const SnapshotEntry* c = candidates[j % ring];
      if (!c) {
        out[j] = nullptr;
      } else if (c->device_name() == names[j]) {
        out[j] = c;
      } else {
        out[j] = find(names[j]); // two names with one tag: walk the whole chain
      }
    }
  }
}

Result<SecretSnapshot> SecretSnapshot::parse(std::string_view content, unsigned threads) {
  SecretSnapshot s;
  s.m_parsers.push_back(std::make_unique<SecretRecordParser>(SecretFileRole::snapshot));
  SecretRecordParser& first = *s.m_parsers.front();
  std::vector<Part> parts(1);
  // Up to the first non-blank line (the header, for CSV) in this thread: it sets the format.
  std::size_t pos = 0;
  std::size_t line = 1;
  while (pos < content.size() && first.format().empty()) {
    const void* nl = std::memchr(content.data() + pos, '\n', content.size() - pos);
    const std::size_t end =
        nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - content.data()) + 1
           : content.size();
    parse_part(first, content.substr(pos, end - pos), line, parts[0]);
    if (parts[0].error) {
      return fail(*parts[0].error);
    }
    pos = end;
    ++line;
  }
  if (first.format().empty()) {
    return fail(ErrorKind::usage,
                "is empty (or holds only blank lines): " + std::string(k_snapshot_formats));
  }
  // The rest in two halves, one per thread, each with its own parser and entries.
  if (threads == 0) {
    threads = std::min(2u, std::max(1u, std::thread::hardware_concurrency()));
  }
  std::string_view rest = content.substr(pos);
  std::string_view second_half;
  std::size_t second_line = 0;
  if (threads > 1 && rest.size() > k_parallel_bytes) {
    const auto nl = rest.find('\n', rest.size() / 2);
    if (nl != std::string_view::npos && nl + 1 < rest.size()) {
      second_half = rest.substr(nl + 1);
      rest = rest.substr(0, nl + 1);
      second_line = line + static_cast<std::size_t>(std::count(rest.begin(), rest.end(), '\n'));
    }
  }
  std::thread worker;
  if (!second_half.empty()) {
    s.m_parsers.push_back(first.for_later_lines());
    parts.emplace_back();
    worker = std::thread([&s, &parts, second_half, second_line] {
      parse_part(*s.m_parsers[1], second_half, second_line, parts[1]);
    });
  }
  parse_part(first, rest, line, parts[0]);
  if (worker.joinable()) {
    worker.join();
  }
  for (const auto& part : parts) {
    if (part.error) {
      return fail(*part.error);
    }
  }
  if (parts.size() > 1 && !parts[1].product_key.empty()) {
    if (parts[0].product_key.empty()) {
      parts[0].product_key = parts[1].product_key;
    } else if (parts[1].product_key != parts[0].product_key) {
      return fail(ErrorKind::usage,
                  "line " + std::to_string(parts[1].product_key_line) + ": ProductKey " +
                      parts[1].product_key + " differs from line " +
                      std::to_string(parts[0].product_key_line) + "'s " + parts[0].product_key +
                      ": a snapshot holds one product; compare one product at a time (split the "
                      "file by ProductKey)");
    }
  }
  s.m_product_key = std::move(parts[0].product_key);
  s.m_entries = std::move(parts[0].entries);
  if (parts.size() > 1) {
    s.m_entries.insert(s.m_entries.end(), parts[1].entries.begin(), parts[1].entries.end());
    parts[1].entries = {};
  }
  if (s.m_entries.empty()) {
    return fail(ErrorKind::usage,
                "holds no device (a header only): export the snapshot while the fleet is "
                "healthy, with `iotfleet secrets export -O FILE`");
  }
  if (s.m_entries.size() >= 0xFFFFFFF0u) {
    return fail(ErrorKind::usage, "has more than 4 294 967 280 devices: split it");
  }
  const std::size_t capacity = std::bit_ceil(std::max<std::size_t>(16, 2 * s.m_entries.size()));
  s.m_slots.assign(capacity, 0);
  s.m_mask = capacity - 1;
  if (const auto dup = s.insert_all()) {
    const SnapshotEntry& later = s.m_entries[*dup];
    const SnapshotEntry* earlier = s.find(later.device_name());
    return fail(ErrorKind::usage,
                line_of(content, later.name) + ": the DeviceName repeats " +
                    (earlier ? line_of(content, earlier->name) : std::string("an earlier line")) +
                    ": a snapshot holds each device once; export it again");
  }
  return s;
}

} // namespace iot::core
