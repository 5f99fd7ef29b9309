// SPDX-License-Identifier: MIT
// Pure AT response parsing, separated from I/O so it can be unit-tested at every byte boundary and
// fuzzed. Deliberately uses no core/error.hpp (<expected>): tests/fuzz builds this file alone with
// clang 14, whose libstdc++ 12 <expected> is unusable.
//
// Model (docs/at-modules.md §5): the module sends lines framed by CR and/or LF. During a command we
// see, in any order: the echo of the command (ATE1), information lines, URCs, and finally one final
// result code (OK, ERROR, +CME ERROR: …, +CMS ERROR: …, NO CARRIER, …) or, for prompt-mode writes,
// the `>` prompt.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::serial {

// Splits a byte stream into lines across arbitrary read boundaries. CR and LF both end a line, so
// "\r\n", "\n" (missing leading CR) and "\r\r\n" (echo) all work; empty lines and NUL bytes are
// dropped. A line longer than k_max_line bytes is cut into pieces of that size (bounded memory on
// a garbage flood).
class LineSplitter {
public:
  static constexpr std::size_t k_max_line = 4096;

  // Appends every line completed by `bytes` to `out` (without terminators).
  void feed(std::string_view bytes, std::vector<std::string>& out);

  // The bytes after the last line terminator (e.g. "> " while the module waits for data).
  [[nodiscard]] const std::string& partial() const { return m_partial; }

  // True when the unterminated rest is the data prompt: ">" or "> " (nothing else).
  [[nodiscard]] bool prompt_pending() const;

  void clear_partial() { m_partial.clear(); }

private:
  std::string m_partial;
};

enum class FinalKind { ok, error, cme_error, cms_error, no_carrier, busy, no_answer, no_dialtone };

struct FinalCode {
  FinalKind kind = FinalKind::ok;
  std::string line; // as received: "+CME ERROR: 3"
  std::string text; // CME/CMS: what follows the colon, trimmed ("3", "SIM not inserted"); else ""
  friend bool operator==(const FinalCode&, const FinalCode&) = default;
};

// The final result code `line` is, if it is one. "*CME ERROR: Missing SN" (Luat's unset-SN data
// line) is NOT a final code. Matching is exact on the trimmed line (case-sensitive, as V.250).
[[nodiscard]] std::optional<FinalCode> parse_final_code(std::string_view line);

// True for unsolicited result codes this tool knows (boot, SIM, registration, Wi-Fi, MQTT status
// …): "RDY", "+CPIN: READY", "+CEREG: 1", "+QIND: SMS DONE", "ready", "WIFI GOT IP", …
[[nodiscard]] bool is_known_urc(std::string_view line);

// "+CSQ:" for "AT+CSQ", "+CPIN:" for "AT+CPIN?", "+QMTCFG:" for "AT+QMTCFG=\"aliauth\",0",
// "^SYSINFO:" for "AT^SYSINFO"; "" for basic commands ("ATI", "AT", "ATE0").
[[nodiscard]] std::string derive_prefix(std::string_view command);

struct ResponseSpec {
  std::string command;         // the command line as sent, without terminator (echo detection)
  std::string expected_prefix; // information lines start with this; "" = no prefix expected
  // true: a line neither echo, final, nor starting with expected_prefix is a URC (Luat RIL's
  // rule for typed responses). false: such lines are information unless they are known URCs or
  // carry a different +/^ prefix while a prefix is expected.
  bool strict = false;
  bool expect_prompt = false; // finish at the `>` prompt (an OK before it is tolerated, ESP-AT)
};

struct ParsedResponse {
  std::optional<FinalCode> final; // set when a final result code ended the response
  bool prompt = false;            // expect_prompt and the `>` arrived
  std::vector<std::string> lines; // information lines, in order
  std::vector<std::string> urcs;  // URCs seen while the command was pending
  int echoes = 0;                 // echoed command lines dropped
  bool ok_before_prompt = false;  // ESP-AT answers "OK" then ">"
  [[nodiscard]] bool done() const { return final.has_value() || prompt; }
};

enum class LineRole { echo, final_code, prompt, information, urc, ignored };

// Assembles one command's response, one line at a time.
class ResponseParser {
public:
  explicit ResponseParser(ResponseSpec spec) : m_spec(std::move(spec)) {}

  // Classifies `line` and records it. Lines after done() are ignored (LineRole::ignored): the
  // caller keeps them for later.
  LineRole on_line(std::string_view line);

  // The splitter reports a pending "> " without terminator.
  void on_prompt();

  [[nodiscard]] bool done() const { return m_response.done(); }
  [[nodiscard]] const ParsedResponse& response() const { return m_response; }
  [[nodiscard]] ParsedResponse take() { return std::move(m_response); }

private:
  ResponseSpec m_spec;
  ParsedResponse m_response;
};

// Convenience for tests and fuzzing: splits `bytes` and feeds every line (and a trailing prompt)
// to a ResponseParser. Lines after the response is done are returned in `rest` when given.
[[nodiscard]] ParsedResponse parse_response(std::string_view bytes,
                                            const ResponseSpec& spec,
                                            std::vector<std::string>* rest = nullptr);

} // namespace iot::serial
