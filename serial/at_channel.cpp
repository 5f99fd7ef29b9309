// SPDX-License-Identifier: MIT
#include "serial/at_channel.hpp"

#include "core/mask.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <utility>

namespace iot::serial {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string describe_byte(unsigned char c) {
  if (c == '\r') {
    return "0x0d (CR)";
  }
  if (c == '\n') {
    return "0x0a (LF)";
  }
  std::array<char, 8> buf{};
  std::snprintf(buf.data(), buf.size(), "0x%02x", static_cast<unsigned>(c));
  return buf.data();
}

FinalResult to_result(FinalKind kind) {
  switch (kind) {
  case FinalKind::ok:
    return FinalResult::ok;
  case FinalKind::error:
    return FinalResult::error;
  case FinalKind::cme_error:
    return FinalResult::cme_error;
  case FinalKind::cms_error:
    return FinalResult::cms_error;
  default:
    return FinalResult::other;
  }
}

// A few CME codes deserve a fix in the message (docs/at-modules.md §5.2).
std::string cme_hint(const std::string& text) {
  if (text == "10" || text == "SIM not inserted") {
    return " — no SIM: insert one or check the SIM holder";
  }
  if (text == "3" || text == "operation not allowed") {
    return " — the module refused the operation (wrong state or firmware without this command)";
  }
  if (text == "4" || text == "operation not supported") {
    return " — this firmware does not support the command: check --module / the profile";
  }
  if (text == "24" || text == "text string too long") {
    return " — the value is too long for this module";
  }
  if (text == "25" || text == "invalid characters in text string") {
    return " — the module refused a character in the value";
  }
  return {};
}

std::string shorten(std::string s) {
  constexpr std::size_t k_max = 120;
  if (s.size() > k_max) {
    s.resize(k_max);
    s += "…";
  }
  return s;
}

milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

} // namespace

std::optional<std::string_view> AtResponse::line_with(std::string_view prefix) const {
  for (const auto& l : lines) {
    if (l.starts_with(prefix)) {
      return std::string_view(l);
    }
  }
  return std::nullopt;
}

Status check_no_control_bytes(std::string_view text, std::string_view what) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) {
      return fail(ErrorKind::usage,
                  std::string(what) + " contains " + describe_byte(c) + " at position " +
                      std::to_string(i + 1) +
                      "; control bytes are refused because a CR or LF would end the command and "
                      "run the rest as a new one — remove it");
    }
  }
  return {};
}

void AtChannel::add_secret(std::string secret) {
  if (!secret.empty() && std::find(m_secrets.begin(), m_secrets.end(), secret) == m_secrets.end()) {
    m_secrets.push_back(std::move(secret));
  }
}

std::string AtChannel::mask(std::string_view text) const {
  return core::mask_all(text, m_secrets);
}

void AtChannel::trace(std::string_view direction, std::string_view line) const {
  if (m_trace) {
    m_trace(direction, mask(line));
  }
}

std::vector<std::string> AtChannel::take_urcs() {
  (void)absorb_idle();
  return std::exchange(m_idle_urcs, {});
}

Status AtChannel::write_line(std::string_view cmd) {
  trace(">>", cmd);
  std::string line(cmd);
  line += m_line_ending;
  return m_port.write(line);
}

Status AtChannel::absorb_idle() {
  for (int i = 0; i < 64; ++i) { // bounded: a babbling port must not hang us here
    auto chunk = IOT_TRY(m_port.read_some(milliseconds(0)));
    if (chunk.empty()) {
      break;
    }
    std::vector<std::string> lines;
    m_splitter.feed(chunk, lines);
    for (auto& l : lines) {
      trace("<<", l);
      m_backlog.push_back(std::move(l));
    }
  }
  if (m_splitter.prompt_pending()) {
    m_splitter.clear_partial(); // a stale prompt from an abandoned write
  }
  while (!m_backlog.empty()) {
    std::string line = std::move(m_backlog.front());
    m_backlog.pop_front();
    if (!parse_final_code(line)) { // stray finals of timed-out commands are dropped
      m_idle_urcs.push_back(std::move(line));
    }
  }
  return {};
}

Result<ParsedResponse> AtChannel::run(ResponseParser& parser,
                                      std::string_view what,
                                      milliseconds timeout,
                                      bool secret_response,
                                      bool watch_prompt) {
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  std::string received;
  for (;;) {
    if (m_port.interrupted()) {
      return fail(interrupted_error(what, since(start), "before the final result code"));
    }
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      std::string msg = std::string(what) + ": no final result code within " +
                        std::to_string(timeout.count()) + " ms";
      if (received.empty()) {
        msg += " and no reply at all — check power, cable and baud rate (115200?), and that the "
               "module has booted";
      } else {
        msg += " (received: \"" + shorten(mask(received)) + "\")";
      }
      return fail(ErrorKind::module, std::move(msg));
    }
    auto chunk = IOT_TRY_CTX(m_port.read_some(std::min(left, k_interrupt_slice)), what);
    if (chunk.empty()) {
      continue;
    }
    std::vector<std::string> lines;
    m_splitter.feed(chunk, lines);
    for (auto& l : lines) {
      if (parser.done()) {
        trace("<<", l);
        m_backlog.push_back(std::move(l));
        continue;
      }
      const LineRole role = parser.on_line(l);
      if (secret_response && role == LineRole::information) {
        trace("<<", core::mask_secret(l));
      } else {
        trace("<<", l);
      }
      if (role != LineRole::echo) {
        if (!received.empty()) {
          received += " | ";
        }
        received += secret_response && role == LineRole::information ? core::mask_secret(l) : l;
      }
    }
    if (watch_prompt && !parser.done() && m_splitter.prompt_pending()) {
      trace("<<", m_splitter.partial());
      m_splitter.clear_partial();
      parser.on_prompt();
    }
    if (parser.done()) {
      return parser.take();
    }
  }
}

Result<AtResponse>
AtChannel::command(std::string_view cmd, milliseconds timeout, const CommandOptions& options) {
  if (cmd.empty()) {
    return fail(ErrorKind::usage, "empty AT command");
  }
  IOT_TRY(check_no_control_bytes(cmd, "AT command"));
  IOT_TRY_CTX(absorb_idle(), mask(cmd));
  IOT_TRY_CTX(write_line(cmd), mask(cmd));
  ResponseSpec spec;
  spec.command = std::string(cmd);
  spec.expected_prefix = options.expected_prefix.value_or(derive_prefix(cmd));
  spec.strict = options.strict;
  ResponseParser parser(std::move(spec));
  auto parsed = IOT_TRY(run(parser, mask(cmd), timeout, options.secret_response, false));
  AtResponse r;
  r.final = to_result(parsed.final->kind);
  r.final_line = parsed.final->line;
  r.error_text = parsed.final->text;
  r.lines = std::move(parsed.lines);
  r.urcs = std::exchange(m_idle_urcs, {});
  r.urcs.insert(r.urcs.end(), parsed.urcs.begin(), parsed.urcs.end());
  r.echo = parsed.echoes > 0;
  return r;
}

Result<AtResponse>
AtChannel::command_ok(std::string_view cmd, milliseconds timeout, const CommandOptions& options) {
  auto r = IOT_TRY(command(cmd, timeout, options));
  if (!r.ok()) {
    return fail(ErrorKind::module, mask(cmd) + ": " + r.final_line + cme_hint(r.error_text));
  }
  return r;
}

Result<AtResponse> AtChannel::send_prompt_data(std::string_view cmd,
                                               std::string_view data,
                                               milliseconds timeout,
                                               const CommandOptions& options) {
  IOT_TRY(check_no_control_bytes(cmd, "AT command"));
  if (cmd.empty()) {
    return fail(ErrorKind::usage, "empty AT command");
  }
  IOT_TRY(check_no_control_bytes(data, "prompt data"));
  const std::string what = mask(cmd);
  IOT_TRY_CTX(absorb_idle(), what);
  IOT_TRY_CTX(write_line(cmd), what);
  ResponseSpec spec;
  spec.command = std::string(cmd);
  spec.expected_prefix = options.expected_prefix.value_or(derive_prefix(cmd));
  spec.expect_prompt = true;
  ResponseParser prompt_parser(std::move(spec));
  auto first =
      IOT_TRY(run(prompt_parser, what + " (waiting for the > prompt)", timeout, false, true));
  if (!first.prompt) {
    return fail(ErrorKind::module,
                what + ": " + first.final->line + " instead of the > prompt" +
                    cme_hint(first.final->text));
  }
  trace(">>", data);
  IOT_TRY_CTX(m_port.write(data), what);
  ResponseSpec data_spec;
  data_spec.command = std::string(data); // a module that echoes the data line
  data_spec.expected_prefix = "";
  ResponseParser data_parser(std::move(data_spec));
  auto second = IOT_TRY(run(
      data_parser, what + " (after sending the data)", timeout, options.secret_response, false));
  if (second.final->kind != FinalKind::ok) {
    return fail(ErrorKind::module,
                what + ": " + second.final->line + " after the data" +
                    cme_hint(second.final->text));
  }
  AtResponse r;
  r.final = FinalResult::ok;
  r.final_line = second.final->line;
  r.lines = std::move(second.lines);
  r.urcs = std::exchange(m_idle_urcs, {});
  r.urcs.insert(r.urcs.end(), first.urcs.begin(), first.urcs.end());
  r.urcs.insert(r.urcs.end(), second.urcs.begin(), second.urcs.end());
  r.echo = first.echoes > 0;
  return r;
}

Status AtChannel::drain_until_quiet(milliseconds quiet, milliseconds limit) {
  const auto start = Clock::now();
  const auto give_up = start + limit;
  for (;;) {
    if (m_port.interrupted()) {
      return fail(interrupted_error("drain", since(start), "before the line was quiet"));
    }
    auto chunk = IOT_TRY(m_port.read_some(std::min(quiet, k_interrupt_slice)));
    if (chunk.empty() || Clock::now() >= give_up) {
      break;
    }
    std::vector<std::string> lines;
    m_splitter.feed(chunk, lines);
    for (const auto& l : lines) {
      trace("<<", l);
    }
  }
  IOT_TRY(m_port.flush_input());
  m_splitter.clear_partial();
  m_backlog.clear();
  return {};
}

Status AtChannel::sync(int attempts, milliseconds interval) {
  attempts = std::max(attempts, 1);
  const auto start = Clock::now();
  bool synced = false;
  for (int i = 0; i < attempts && !synced; ++i) {
    if (m_port.interrupted()) {
      return fail(interrupted_error("sync", since(start), "before the module answered AT"));
    }
    // After half the attempts failed, alternate the line ending: ESP-AT wants CR LF, Luat CR.
    const bool alternate = i >= attempts / 2 && i % 2 == 1;
    const std::string ending =
        alternate ? (m_line_ending == "\r" ? std::string("\r\n") : std::string("\r"))
                  : m_line_ending;
    trace(">>", "AT");
    IOT_TRY_CTX(m_port.write("AT" + ending), "sync");
    const auto deadline = Clock::now() + interval;
    while (!synced) {
      if (m_port.interrupted()) {
        return fail(interrupted_error("sync", since(start), "before the module answered AT"));
      }
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        break;
      }
      auto chunk = IOT_TRY_CTX(m_port.read_some(std::min(left, k_interrupt_slice)), "sync");
      std::vector<std::string> lines;
      m_splitter.feed(chunk, lines);
      for (const auto& l : lines) {
        trace("<<", l);
        if (auto f = parse_final_code(l); f && f->kind == FinalKind::ok) {
          synced = true;
          m_line_ending = ending;
        } else if (is_known_urc(l)) {
          m_idle_urcs.push_back(l);
        }
      }
    }
  }
  if (!synced) {
    return fail(ErrorKind::module,
                "sync: no OK to \"AT\" after " + std::to_string(attempts) + " attempts (" +
                    std::to_string(static_cast<long long>(attempts) * interval.count()) +
                    " ms) — check power, cable, baud rate (115200?) and the port name");
  }
  // The OK may be a stale answer: to an extra "AT" of ours, or to a command a previous user of
  // the port (a process killed mid-conversation) left queued in the module. Their answers
  // follow within milliseconds; drain until the line has been quiet for a while, or every
  // later answer would be taken for the one before it.
  IOT_TRY_CTX(drain_until_quiet(k_sync_quiet, k_sync_drain_limit), "sync");
  // A garbled echo or OK on a noisy line must not fail the session: ATE0 is idempotent.
  constexpr int k_echo_off_tries = 3;
  for (int i = 1;; ++i) {
    auto e = command_ok("ATE0", milliseconds(1000));
    if (e) {
      break;
    }
    if (i == k_echo_off_tries || e.error().kind != ErrorKind::module) {
      return fail(e.error().context("sync"));
    }
  }
  auto cmee = command("AT+CMEE=2", milliseconds(1000));
  if (!cmee && cmee.error().kind != ErrorKind::module) {
    return fail(cmee.error().context("sync"));
  }
  return {};
}

} // namespace iot::serial
