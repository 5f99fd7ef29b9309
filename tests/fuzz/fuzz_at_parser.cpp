// SPDX-License-Identifier: MIT
// libFuzzer target for the pure AT line splitter / response parser (serial/at_parser.cpp).
// Invariants checked on every input:
//   - no line contains CR, LF or NUL, none is longer than LineSplitter::k_max_line;
//   - feeding the bytes in arbitrary chunks gives exactly the same parse as one piece;
//   - every non-empty line lands in exactly one of: echo, information, URC, final, after-final.
#include "serial/at_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace iot::serial;

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

bool same(const ParsedResponse& a, const ParsedResponse& b) {
  return a.final == b.final && a.lines == b.lines && a.urcs == b.urcs && a.echoes == b.echoes &&
         a.prompt == b.prompt && a.ok_before_prompt == b.ok_before_prompt;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) {
    return 0;
  }
  static const char* const k_commands[] = {
      "AT+CSQ", "AT+CPIN?", "AT+CGSN", "AT+WISN?", "AT+QMTCFG=\"aliauth\",0", "ATI"};
  const std::uint8_t mode = data[0];
  const std::uint8_t step = static_cast<std::uint8_t>(data[1] | 1U);
  const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);

  ResponseSpec spec;
  spec.command = k_commands[mode % 6];
  spec.expected_prefix = (mode & 0x08U) != 0 ? std::string() : derive_prefix(spec.command);
  spec.strict = (mode & 0x10U) != 0;
  spec.expect_prompt = (mode & 0x20U) != 0;

  std::vector<std::string> rest_whole;
  const ParsedResponse whole = parse_response(bytes, spec, &rest_whole);

  LineSplitter splitter;
  ResponseParser parser(spec);
  std::vector<std::string> rest_chunked;
  for (std::size_t pos = 0; pos < bytes.size(); pos += step) {
    std::vector<std::string> lines;
    splitter.feed(bytes.substr(pos, step), lines);
    for (auto& l : lines) {
      check(!l.empty() && l.size() <= LineSplitter::k_max_line);
      check(l.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
      if (parser.on_line(l) == LineRole::ignored && parser.done()) {
        rest_chunked.push_back(std::move(l));
      }
    }
  }
  if (!parser.done() && splitter.prompt_pending()) {
    parser.on_prompt();
  }
  const ParsedResponse chunked = parser.take();
  check(same(whole, chunked));
  check(rest_whole == rest_chunked);
  (void)parse_final_code(bytes);
  (void)is_known_urc(bytes);
  (void)derive_prefix(bytes);
  return 0;
}
