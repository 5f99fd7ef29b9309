// SPDX-License-Identifier: MIT
#include "serial/at_parser.hpp"

#include "core/text.hpp"

#include <array>

namespace iot::serial {
namespace {

using core::trim;

bool is_upper_alnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// "+XYZ:" / "^XYZ:" style: a +/^ then [A-Z0-9_ &] then ':'.
bool has_foreign_prefix(std::string_view line, std::string_view expected) {
  if (line.empty() || (line.front() != '+' && line.front() != '^')) {
    return false;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon < 2) {
    return false;
  }
  for (std::size_t i = 1; i < colon; ++i) {
    const char c = line[i];
    if (!is_upper_alnum(c) && c != '_' && c != ' ' && c != '&') {
      return false;
    }
  }
  return !line.starts_with(expected);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'a' && x <= 'z') {
      x = static_cast<char>(x - 'a' + 'A');
    }
    if (y >= 'a' && y <= 'z') {
      y = static_cast<char>(y - 'a' + 'A');
    }
    if (x != y) {
      return false;
    }
  }
  return true;
}

} // namespace

void LineSplitter::feed(std::string_view bytes, std::vector<std::string>& out) {
  for (char c : bytes) {
    if (c == '\0') {
      continue;
    }
    if (c == '\r' || c == '\n') {
      if (!m_partial.empty()) {
        out.push_back(std::move(m_partial));
        m_partial.clear();
      }
      continue;
    }
    m_partial.push_back(c);
    if (m_partial.size() >= k_max_line) {
      out.push_back(std::move(m_partial));
      m_partial.clear();
    }
  }
}

bool LineSplitter::prompt_pending() const {
  return m_partial == ">" || m_partial == "> ";
}

std::optional<FinalCode> parse_final_code(std::string_view raw) {
  const std::string_view line = trim(raw);
  FinalCode code;
  code.line = std::string(line);
  struct Word {
    std::string_view text;
    FinalKind kind;
  };
  static constexpr std::array<Word, 6> k_words = {{
      {"OK", FinalKind::ok},
      {"ERROR", FinalKind::error},
      {"NO CARRIER", FinalKind::no_carrier},
      {"BUSY", FinalKind::busy},
      {"NO ANSWER", FinalKind::no_answer},
      {"NO DIALTONE", FinalKind::no_dialtone},
  }};
  for (const auto& w : k_words) {
    if (line == w.text) {
      code.kind = w.kind;
      return code;
    }
  }
  for (auto [prefix, kind] : {std::pair{std::string_view("+CME ERROR:"), FinalKind::cme_error},
                              std::pair{std::string_view("+CMS ERROR:"), FinalKind::cms_error}}) {
    if (line.starts_with(prefix)) {
      code.kind = kind;
      code.text = std::string(trim(line.substr(prefix.size())));
      return code;
    }
  }
  return std::nullopt;
}

bool is_known_urc(std::string_view raw) {
  const std::string_view line = trim(raw);
  // Whole-line URCs.
  static constexpr std::array<std::string_view, 16> k_exact = {
      "RDY",
      "SMS Ready",
      "Call Ready",
      "ready",
      "WIFI CONNECTED",
      "WIFI GOT IP",
      "WIFI DISCONNECT",
      "+E_UTRAN Service",
      "NORMAL POWER DOWN",
      "POWERED DOWN",
      "RING",
      "+PBREADY",
      "UNDER-VOLTAGE POWER DOWN",
      "OVER-VOLTAGE POWER DOWN",
      "*ATREADY: 1",
      "+CGEV: ME DETACH",
  };
  for (auto e : k_exact) {
    if (line == e) {
      return true;
    }
  }
  static constexpr std::array<std::string_view, 27> k_prefixes = {
      "+CPIN:",    "^SIMST:",  "+CEREG:",
      "+CREG:",    "+CGREG:",  "+QIND:",
      "+CFUN:",    "^MODE:",   "+NITZ:",
      "+CGEV:",    "+QUSIM:",  "*ADMINDATA",
      "+CTZV:",    "+CTZE:",   "+QMTSTAT:",
      "+QMTRECV:", "+CMTI:",   "+CLIP:",
      "+CIEV:",    "+MSUB:",   "+STIN:",
      "^STN",      "busy p",   "+ETWS:",
      "+QNTP:",    "+CSMINS:", "+MQTTDISCONNECTED:",
  };
  for (auto p : k_prefixes) {
    if (line.starts_with(p)) {
      return true;
    }
  }
  return false;
}

std::string derive_prefix(std::string_view command) {
  std::string_view c = trim(command);
  if (c.size() < 4 || !iequals(c.substr(0, 2), "AT") || (c[2] != '+' && c[2] != '^')) {
    return {};
  }
  std::size_t end = 3;
  while (end < c.size() && c[end] != '=' && c[end] != '?' && c[end] != ' ') {
    ++end;
  }
  std::string prefix(c.substr(2, end - 2));
  for (auto& ch : prefix) {
    if (ch >= 'a' && ch <= 'z') {
      ch = static_cast<char>(ch - 'a' + 'A');
    }
  }
  return prefix + ":";
}

LineRole ResponseParser::on_line(std::string_view raw) {
  if (done()) {
    return LineRole::ignored;
  }
  const std::string_view line = trim(raw);
  if (line.empty()) {
    return LineRole::ignored;
  }
  if (!m_spec.command.empty() && iequals(line, trim(m_spec.command))) {
    ++m_response.echoes;
    return LineRole::echo;
  }
  if (m_spec.expect_prompt && (line == ">")) {
    m_response.prompt = true;
    return LineRole::prompt;
  }
  if (auto final = parse_final_code(line)) {
    if (m_spec.expect_prompt && final->kind == FinalKind::ok && !m_response.ok_before_prompt) {
      m_response.ok_before_prompt = true; // ESP-AT: "OK" then ">"
      return LineRole::final_code;
    }
    m_response.final = std::move(final);
    return LineRole::final_code;
  }
  const std::string& prefix = m_spec.expected_prefix;
  if (!prefix.empty() && line.starts_with(prefix)) {
    m_response.lines.emplace_back(line);
    return LineRole::information;
  }
  if (is_known_urc(line) || m_spec.strict ||
      (!prefix.empty() && has_foreign_prefix(line, prefix))) {
    m_response.urcs.emplace_back(line);
    return LineRole::urc;
  }
  m_response.lines.emplace_back(line);
  return LineRole::information;
}

void ResponseParser::on_prompt() {
  if (m_spec.expect_prompt && !done()) {
    m_response.prompt = true;
  }
}

ParsedResponse
parse_response(std::string_view bytes, const ResponseSpec& spec, std::vector<std::string>* rest) {
  LineSplitter splitter;
  ResponseParser parser(spec);
  std::vector<std::string> lines;
  splitter.feed(bytes, lines);
  for (auto& l : lines) {
    if (parser.on_line(l) == LineRole::ignored && rest != nullptr && parser.done()) {
      rest->push_back(std::move(l));
    }
  }
  if (!parser.done() && splitter.prompt_pending()) {
    parser.on_prompt();
  }
  return parser.take();
}

} // namespace iot::serial
