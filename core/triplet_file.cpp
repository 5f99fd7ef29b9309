// SPDX-License-Identifier: MIT
#include "core/triplet_file.hpp"

#include "core/csv.hpp"
#include "core/json_scan.hpp"
#include "core/text.hpp"
#include "core/validate.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>

namespace iot::core {
namespace {

// The four columns / keys a pool file may carry; `other` is ignored.
enum class Column : std::uint8_t { product_key, device_name, device_secret, product_secret, other };
constexpr std::size_t k_known_columns = 4;

std::size_t index_of(Column c) {
  return static_cast<std::size_t>(c);
}

char to_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Case-insensitive; the Aliyun name (ProductKey, productKey) or snake_case (product_key).
Column column_of(std::string_view name) {
  std::string n(name);
  for (char& c : n) {
    c = to_lower(c);
  }
  if (n == "productkey" || n == "product_key") {
    return Column::product_key;
  }
  if (n == "devicename" || n == "device_name") {
    return Column::device_name;
  }
  if (n == "devicesecret" || n == "device_secret") {
    return Column::device_secret;
  }
  if (n == "productsecret" || n == "product_secret") {
    return Column::product_secret;
  }
  return Column::other;
}

std::string_view column_name(Column c) {
  switch (c) {
  case Column::product_key:
    return "ProductKey";
  case Column::device_name:
    return "DeviceName";
  case Column::device_secret:
    return "DeviceSecret";
  case Column::product_secret:
    return "ProductSecret";
  case Column::other:
    break;
  }
  return "?";
}

std::string_view json_key_names(Column c) {
  switch (c) {
  case Column::product_key:
    return "productKey, ProductKey or product_key";
  case Column::device_name:
    return "deviceName, DeviceName or device_name";
  case Column::device_secret:
    return "deviceSecret, DeviceSecret or device_secret";
  case Column::product_secret:
    return "productSecret, ProductSecret or product_secret";
  case Column::other:
    break;
  }
  return "?";
}

Column secret_column(Scheme scheme) {
  return scheme == Scheme::device ? Column::device_secret : Column::product_secret;
}

Column other_secret_column(Scheme scheme) {
  return scheme == Scheme::device ? Column::product_secret : Column::device_secret;
}

// The hint for a file that carries the other scheme's secret.
std::string scheme_hint(Scheme scheme) {
  return scheme == Scheme::device
             ? "it has a ProductSecret: for a 一型一密 (product) pool use --scheme product"
             : "it has a DeviceSecret: for a 一机一密 (device) pool drop --scheme product";
}

std::string required_columns(Scheme scheme) {
  return scheme == Scheme::device ? "ProductKey, DeviceName and DeviceSecret"
                                  : "ProductKey, DeviceName and ProductSecret";
}

bool is_blank_line(std::string_view line) {
  for (char c : line) {
    if (!is_blank(c)) {
      return false;
    }
  }
  return true;
}

// Physical lines: each ends with LF, CRLF or a lone CR; a last line without terminator counts.
class LineReader {
public:
  explicit LineReader(std::string_view text) : rest_(text) {}

  bool next(std::string_view& line) {
    if (rest_.empty()) {
      return false;
    }
    ++number_;
    const std::size_t end = rest_.find_first_of("\r\n");
    if (end == std::string_view::npos) {
      line = rest_;
      rest_ = {};
      return true;
    }
    line = rest_.substr(0, end);
    const bool crlf = rest_[end] == '\r' && end + 1 < rest_.size() && rest_[end + 1] == '\n';
    rest_.remove_prefix(end + (crlf ? 2 : 1));
    return true;
  }

  [[nodiscard]] std::size_t number() const { return number_; }

private:
  std::string_view rest_;
  std::size_t number_ = 0;
};

// The 1-based line holding content[offset].
std::size_t line_of(std::string_view content, std::size_t offset) {
  std::size_t line = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    if (content[i] == '\n' ||
        (content[i] == '\r' && (i + 1 >= content.size() || content[i + 1] != '\n'))) {
      ++line;
    }
  }
  return line;
}

std::string too_long_message(std::size_t size, std::size_t limit) {
  return "the line is " + std::to_string(size) + " bytes, over the limit of " +
         std::to_string(limit) +
         "; a triplet line is under 200 bytes — check that this is a pool file";
}

// Validates rows and collects them, or their problems, into a TripletFile.
class RowChecker {
public:
  RowChecker(Scheme scheme, TripletFile& file) : scheme_(scheme), file_(file) {}

  void problem(std::size_t line, std::string message) {
    file_.problems.push_back(RowProblem{line, std::move(message)});
  }

  void add(std::string product_key, std::string device_name, std::string secret, std::size_t line) {
    if (column_of(product_key) != Column::other && column_of(device_name) != Column::other &&
        column_of(secret) != Column::other) {
      return problem(line,
                     "the row holds column names, not a triplet (a repeated header? were two "
                     "files joined?); remove it");
    }
    const std::optional<std::string> pk_problem = check(Column::product_key, product_key);
    const std::optional<std::string> dn_problem = check(Column::device_name, device_name);
    const std::optional<std::string> secret_problem = check(secret_column(scheme_), secret);
    // A DeviceName counts as seen from its first line with a valid DeviceName, whatever else is
    // wrong there: a later row with it is a repeat either way.
    std::optional<std::size_t> earlier;
    if (!dn_problem) {
      const auto [it, inserted] = seen_names_.try_emplace(device_name, line);
      if (!inserted) {
        earlier = it->second;
      }
    }
    if (pk_problem) {
      return problem(line, *pk_problem);
    }
    if (dn_problem) {
      return problem(line, *dn_problem);
    }
    if (secret_problem) {
      return problem(line, *secret_problem);
    }
    if (first_key_ && product_key != first_key_->first) {
      return problem(line,
                     "ProductKey " + product_key + " differs from " + first_key_->first +
                         " on line " + std::to_string(first_key_->second) +
                         ", the first valid row; a pool file holds one product — split the file "
                         "by ProductKey");
    }
    if (earlier) {
      return problem(line,
                     "DeviceName repeats line " + std::to_string(*earlier) +
                         "; each DeviceName may appear only once in a file — remove one of the "
                         "two rows");
    }
    if (!first_key_) {
      first_key_.emplace(product_key, line);
    }
    file_.rows.push_back(TripletRow{
        std::move(product_key), std::move(device_name), std::move(secret), scheme_, line});
  }

private:
  std::optional<std::string> check(Column column, std::string_view value) const {
    if (value.empty()) {
      return std::string(column_name(column)) + " is missing (empty); every row needs " +
             required_columns(scheme_);
    }
    Status status;
    switch (column) {
    case Column::product_key:
      status = validate_product_key(value);
      break;
    case Column::device_name:
      status = validate_device_name(value);
      break;
    case Column::device_secret:
      status = validate_device_secret(value);
      break;
    case Column::product_secret:
      status = validate_product_secret(value);
      break;
    case Column::other:
      break;
    }
    if (status) {
      return std::nullopt;
    }
    return status.error().message;
  }

  Scheme scheme_;
  TripletFile& file_;
  std::optional<std::pair<std::string, std::size_t>> first_key_; // ProductKey, line
  std::unordered_map<std::string, std::size_t> seen_names_;      // DeviceName -> first line
};

bool too_long(std::string_view line, const TripletParseOptions& options) {
  return options.max_line_bytes != 0 && line.size() > options.max_line_bytes;
}

// ---------------------------------------------------------------------------------------- CSV

struct CsvLayout {
  std::size_t fields = 0; // every row has exactly this many
  std::size_t product_key = 0;
  std::size_t device_name = 0;
  std::size_t secret = 0;
  bool header = false;
};

// A header-less first line: at least three fields, a valid ProductKey first and a digit in one of
// the first three (real keys, secrets and IMEIs have digits; a header such as `pk,dn,ds` has
// none).
bool looks_like_triplet(const std::vector<std::string>& fields) {
  return fields.size() >= 3 && validate_product_key(fields[0]).has_value() &&
         (has_digit(fields[0]) || has_digit(fields[1]) || has_digit(fields[2]));
}

std::string unrecognised_first_line(std::string_view line, std::size_t number) {
  std::string msg = "line " + std::to_string(number) +
                    " is neither a header nor a triplet: a header names the columns ProductKey, "
                    "DeviceName, DeviceSecret (ProductSecret with --scheme product; any order, "
                    "any case, or product_key-style), a file without header has "
                    "ProductKey,DeviceName,DeviceSecret (ProductKey,ProductSecret,DeviceName with "
                    "--scheme product) on every line, NDJSON has one {…} object per line";
  if (line.find(',') == std::string_view::npos &&
      line.find_first_of(";\t") != std::string_view::npos) {
    msg += "; this line has semicolons or tabs but no comma: save the file as comma-separated CSV";
  }
  return msg;
}

Result<CsvLayout> csv_layout(const std::vector<std::string>& fields,
                             std::string_view line,
                             std::size_t number,
                             Scheme scheme) {
  std::array<std::optional<std::size_t>, k_known_columns> at{};
  bool any_known = false;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const Column c = column_of(fields[i]);
    if (c == Column::other) {
      continue;
    }
    any_known = true;
    auto& slot = at[index_of(c)];
    if (slot) {
      return fail(ErrorKind::usage,
                  "the header on line " + std::to_string(number) + " names " +
                      std::string(column_name(c)) + " twice (columns " + std::to_string(*slot + 1) +
                      " and " + std::to_string(i + 1) + "); keep one of them");
    }
    slot = i;
  }
  CsvLayout layout;
  layout.fields = fields.size();
  if (!any_known) {
    if (!looks_like_triplet(fields)) {
      return fail(ErrorKind::usage, unrecognised_first_line(line, number));
    }
    layout.product_key = 0;
    layout.secret = scheme == Scheme::device ? 2 : 1;
    layout.device_name = scheme == Scheme::device ? 1 : 2;
    return layout;
  }
  layout.header = true;
  for (Column c : {Column::product_key, Column::device_name, secret_column(scheme)}) {
    if (at[index_of(c)]) {
      continue;
    }
    std::string msg = "the header on line " + std::to_string(number) + " has no " +
                      std::string(column_name(c)) + " column; it needs " +
                      required_columns(scheme) + " (any order, any case, or product_key-style)";
    if (c == secret_column(scheme) && at[index_of(other_secret_column(scheme))]) {
      msg += "; " + scheme_hint(scheme);
    }
    return fail(ErrorKind::usage, std::move(msg));
  }
  layout.product_key = *at[index_of(Column::product_key)];
  layout.device_name = *at[index_of(Column::device_name)];
  layout.secret = *at[index_of(secret_column(scheme))];
  return layout;
}

void csv_row(std::string_view text,
             std::size_t number,
             const CsvLayout& layout,
             const TripletParseOptions& options,
             RowChecker& checker) {
  if (too_long(text, options)) {
    return checker.problem(number, too_long_message(text.size(), options.max_line_bytes));
  }
  auto fields = csv_split_line(text);
  if (!fields) {
    return checker.problem(number, fields.error().message);
  }
  if (fields->size() != layout.fields) {
    return checker.problem(
        number,
        "the line has " + std::to_string(fields->size()) + " fields where " +
            (layout.header ? "the header" : "the first line") + " has " +
            std::to_string(layout.fields) +
            "; every line needs the same columns, and a value holding a comma must be in double "
            "quotes");
  }
  auto& f = *fields;
  checker.add(std::move(f[layout.product_key]),
              std::move(f[layout.device_name]),
              std::move(f[layout.secret]),
              number);
}

// -------------------------------------------------------------------------------------- NDJSON

constexpr int k_max_json_depth = 32;

using KnownValues = std::array<std::optional<std::string>, k_known_columns>;

// A strict parser for one NDJSON line (RFC 8259 syntax; no CR/LF since lines are split first).
// The line must be one object; values of the known keys must be strings and are kept, any other
// key's value is checked and skipped (nesting up to k_max_json_depth). Bytes >= 0x80 are taken as
// they are (not checked to be UTF-8): the validators refuse them in the values that matter.
class JsonLine {
public:
  explicit JsonLine(std::string_view text) : s_(text) {}

  bool object(KnownValues& values) {
    skip_ws();
    if (peek() != '{') {
      error_ = "the line is not a JSON object; an NDJSON pool file has one {…} object per line";
      return false;
    }
    ++i_;
    skip_ws();
    if (peek() == '}') {
      ++i_;
      return end_of_line();
    }
    while (true) {
      if (peek() != '"') {
        return fail_at("expected a key in double quotes");
      }
      std::string key;
      if (!string(&key)) {
        return false;
      }
      skip_ws();
      if (peek() != ':') {
        return fail_at("expected ':' after a key");
      }
      ++i_;
      skip_ws();
      const Column c = column_of(key);
      if (c == Column::other) {
        if (!value(1)) {
          return false;
        }
      } else {
        auto& slot = values[index_of(c)];
        if (slot) {
          error_ = "the object has " + std::string(column_name(c)) + " twice (keys " +
                   std::string(json_key_names(c)) + "); keep one";
          return false;
        }
        if (peek() != '"') {
          error_ = "the value of " + key + " must be a JSON string (\"" + key +
                   "\": \"…\"), not a number, object or literal";
          return false;
        }
        std::string v;
        if (!string(&v)) {
          return false;
        }
        slot = std::move(v);
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
        skip_ws();
        continue;
      }
      if (peek() == '}') {
        ++i_;
        return end_of_line();
      }
      return fail_at("expected ',' or '}'");
    }
  }

  [[nodiscard]] const std::string& error() const { return error_; }

private:
  [[nodiscard]] char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  [[nodiscard]] bool at_end() const { return i_ >= s_.size(); }

  void skip_ws() {
    while (i_ < s_.size() && is_blank(s_[i_])) {
      ++i_;
    }
  }

  bool fail_at(std::string_view what) {
    error_ = "invalid JSON at column " + std::to_string(i_ + 1) + ": " +
             (at_end() ? std::string("the line ends early") : std::string(what));
    return false;
  }

  bool end_of_line() {
    skip_ws();
    return at_end() || fail_at("text after the object; put one object per line");
  }

  // At the opening quote. `out` null: check and skip. core::json_string_checked, strict.
  bool string(std::string* out) {
    const char* p = s_.data() + i_ + 1;
    const char* const end = s_.data() + s_.size();
    std::string_view value;
    bool unescaped = false;
    const auto error = json_string_checked(p, end, value, buf_, unescaped, true);
    i_ = static_cast<std::size_t>(p - s_.data());
    if (error != JsonStringError::none) {
      return fail_at(describe(error));
    }
    if (out != nullptr) {
      out->assign(value);
    }
    return true;
  }

  bool digits() {
    if (!(peek() >= '0' && peek() <= '9')) {
      return fail_at("expected a digit");
    }
    while (peek() >= '0' && peek() <= '9') {
      ++i_;
    }
    return true;
  }

  bool number() {
    if (peek() == '-') {
      ++i_;
    }
    if (peek() == '0') {
      ++i_;
    } else if (!digits()) {
      return false;
    }
    if (peek() == '.') {
      ++i_;
      if (!digits()) {
        return false;
      }
    }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') {
        ++i_;
      }
      if (!digits()) {
        return false;
      }
    }
    return true;
  }

  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) {
      return fail_at("expected a value");
    }
    i_ += word.size();
    return true;
  }

  // Any JSON value, checked and skipped.
  bool value(int depth) {
    if (depth > k_max_json_depth) {
      return fail_at("values are nested deeper than 32 levels");
    }
    switch (peek()) {
    case '"':
      return string(nullptr);
    case '{':
    case '[': {
      const char close = peek() == '{' ? '}' : ']';
      const bool is_object = close == '}';
      ++i_;
      skip_ws();
      if (peek() == close) {
        ++i_;
        return true;
      }
      while (true) {
        if (is_object) {
          if (peek() != '"') {
            return fail_at("expected a key in double quotes");
          }
          if (!string(nullptr)) {
            return false;
          }
          skip_ws();
          if (peek() != ':') {
            return fail_at("expected ':' after a key");
          }
          ++i_;
          skip_ws();
        }
        if (!value(depth + 1)) {
          return false;
        }
        skip_ws();
        if (peek() == ',') {
          ++i_;
          skip_ws();
          continue;
        }
        if (peek() == close) {
          ++i_;
          return true;
        }
        return fail_at(is_object ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
    case 't':
      return literal("true");
    case 'f':
      return literal("false");
    case 'n':
      return literal("null");
    default:
      if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
        return number();
      }
      return fail_at("expected a value");
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
  std::string buf_; // a string's decoded text while it has escapes
  std::string error_;
};

// Parses one NDJSON line into the checker. On the first record a JSON error is returned instead
// (the file is then not NDJSON at all, e.g. pretty-printed JSON).
Status ndjson_row(std::string_view text,
                  std::size_t number,
                  bool first,
                  const TripletParseOptions& options,
                  RowChecker& checker) {
  if (too_long(text, options)) {
    checker.problem(number, too_long_message(text.size(), options.max_line_bytes));
    return {};
  }
  KnownValues values;
  JsonLine parser(text);
  if (!parser.object(values)) {
    if (first) {
      return fail(ErrorKind::usage,
                  "line " + std::to_string(number) +
                      " starts with '{' but is not one complete "
                      "JSON object (" +
                      parser.error() +
                      "): NDJSON pool files have one object per line; convert pretty-printed "
                      "JSON with `jq -c`");
    }
    checker.problem(number, parser.error());
    return {};
  }
  const Column secret = secret_column(options.scheme);
  for (Column c : {Column::product_key, Column::device_name, secret}) {
    if (values[index_of(c)]) {
      continue;
    }
    std::string msg = "the object has no " + std::string(column_name(c)) + " (key " +
                      std::string(json_key_names(c)) + "); every object needs " +
                      required_columns(options.scheme);
    if (c == secret && values[index_of(other_secret_column(options.scheme))]) {
      msg += "; " + scheme_hint(options.scheme);
    }
    checker.problem(number, std::move(msg));
    return {};
  }
  checker.add(std::move(*values[index_of(Column::product_key)]),
              std::move(*values[index_of(Column::device_name)]),
              std::move(*values[index_of(secret)]),
              number);
  return {};
}

} // namespace

Result<TripletFile> parse_triplet_file(std::string_view content,
                                       const TripletParseOptions& options) {
  if (content.size() >= 2 && ((static_cast<unsigned char>(content[0]) == 0xFF &&
                               static_cast<unsigned char>(content[1]) == 0xFE) ||
                              (static_cast<unsigned char>(content[0]) == 0xFE &&
                               static_cast<unsigned char>(content[1]) == 0xFF))) {
    return fail(ErrorKind::usage,
                "the file is UTF-16 text; save it as UTF-8 (Excel: \"CSV UTF-8 (Comma "
                "delimited)\") and import it again");
  }
  if (content.starts_with("\xEF\xBB\xBF")) {
    content.remove_prefix(3);
  }
  if (const std::size_t nul = content.find('\0'); nul != std::string_view::npos) {
    return fail(ErrorKind::usage,
                "the file has a NUL byte on line " + std::to_string(line_of(content, nul)) +
                    ": it is binary or UTF-16, not a CSV or NDJSON text file; export the pool "
                    "again as UTF-8 text");
  }

  TripletFile file;
  RowChecker checker(options.scheme, file);
  LineReader reader(content);
  std::string_view line;
  bool found = false;
  while (reader.next(line)) {
    if (!is_blank_line(line)) {
      found = true;
      break;
    }
  }
  if (!found) {
    return fail(ErrorKind::usage,
                "the file is empty; a pool file is CSV (a ProductKey,DeviceName,DeviceSecret "
                "header, then one triplet per line) or NDJSON (one JSON object per line)");
  }
  const std::size_t first_number = reader.number();
  if (too_long(line, options)) {
    return fail(ErrorKind::usage,
                "line " + std::to_string(first_number) + ", the first, is " +
                    std::to_string(line.size()) + " bytes, over the limit of " +
                    std::to_string(options.max_line_bytes) +
                    ": this is not a pool file (a header or triplet line is under 200 bytes)");
  }

  const char lead = trim_blanks(line).front();
  if (lead == '[') {
    return fail(ErrorKind::usage,
                "line " + std::to_string(first_number) +
                    " starts a JSON array; pool files take NDJSON, one object per line: convert "
                    "with `jq -c '.[]' FILE`");
  }
  if (lead == '{') {
    file.format = "ndjson";
    IOT_TRY(ndjson_row(line, first_number, true, options, checker));
    while (reader.next(line)) {
      if (!is_blank_line(line)) {
        (void)ndjson_row(line, reader.number(), false, options, checker);
      }
    }
    file.lines = reader.number();
    return file;
  }

  auto first_fields = csv_split_line(line);
  if (!first_fields) {
    return fail(ErrorKind::usage,
                "line " + std::to_string(first_number) +
                    ", the first: " + first_fields.error().message);
  }
  auto layout = IOT_TRY(csv_layout(*first_fields, line, first_number, options.scheme));
  if (layout.header) {
    const auto& f = *first_fields;
    file.format =
        f.size() >= 3 && f[0] == "ProductKey" && f[1] == "DeviceName" && f[2] == "DeviceSecret"
            ? "aliyun-csv"
            : "csv";
  } else {
    file.format = "csv-no-header";
    csv_row(line, first_number, layout, options, checker);
  }
  while (reader.next(line)) {
    if (!is_blank_line(line)) {
      csv_row(line, reader.number(), layout, options, checker);
    }
  }
  file.lines = reader.number();
  return file;
}

} // namespace iot::core
