// SPDX-License-Identifier: MIT
// AtChannel: one AT command at a time over a SerialPort, with echo, URC and timeout handling.
// The parsing rules live in serial/at_parser.hpp; this file adds I/O, deadlines, tracing and
// secret masking. Not thread-safe: one channel per port, used by one thread.
// Every wait here (a command's answer, the > prompt, sync's OK, the quiet-line drain) reads in
// slices of k_interrupt_slice and ends with ErrorKind::interrupted once the port is
// interrupted() (SIGINT / SIGTERM, unless a FinishInFlight is holding it).
#pragma once

#include "core/error.hpp"
#include "serial/at_parser.hpp"
#include "serial/serial_port.hpp"

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::serial {

// Called for every line written (">>", without terminator) and received ("<<"), with every
// registered secret already masked (core::mask_all). For --trace.
using TraceHook = std::function<void(std::string_view direction, std::string_view line)>;

struct CommandOptions {
  // Prefix of the information lines ("+CSQ:"); nullopt derives it from the command
  // (derive_prefix), "" means the response lines carry no prefix (AT+CGSN, AT+WISN?).
  std::optional<std::string> expected_prefix;
  // Lines that do not start with the prefix are URCs (see ResponseSpec::strict).
  bool strict = false;
  // The information lines are secret (AT+WISN?, aliauth read-back): the trace shows them masked.
  bool secret_response = false;
};

enum class FinalResult { ok, error, cme_error, cms_error, other };

struct AtResponse {
  FinalResult final = FinalResult::ok;
  std::string final_line;         // "OK", "ERROR", "+CME ERROR: 3", "NO CARRIER"
  std::string error_text;         // CME/CMS detail: "3", "SIM not inserted"; else ""
  std::vector<std::string> lines; // information lines, echo and URCs removed
  std::vector<std::string> urcs;  // URCs seen since the previous command ended (in order)
  bool echo = false;              // the module echoed the command (ATE1)

  [[nodiscard]] bool ok() const { return final == FinalResult::ok; }
  // The first information line starting with `prefix` ("" = the first line).
  [[nodiscard]] std::optional<std::string_view> line_with(std::string_view prefix) const;
};

// After sync's OK, how long the line must stay silent before the channel counts as aligned,
// and how long sync keeps draining a module that keeps talking.
inline constexpr std::chrono::milliseconds k_sync_quiet{20};
inline constexpr std::chrono::milliseconds k_sync_drain_limit{3000};

class AtChannel {
public:
  explicit AtChannel(SerialPort& port) : m_port(port) {}

  void set_trace(TraceHook hook) { m_trace = std::move(hook); }
  // Masked in traces and in error messages from now on (empty strings are ignored).
  void add_secret(std::string secret);
  [[nodiscard]] const std::vector<std::string>& secrets() const { return m_secrets; }
  // What ends a command line: "\r" (default; V.250 S3, Luat requires it) or "\r\n" (ESP-AT).
  void set_line_ending(std::string ending) { m_line_ending = std::move(ending); }

  // Sends `cmd` (without terminator) and collects the response until a final result code.
  // Returns the response whatever the final code (OK, ERROR, +CME ERROR …): check ok().
  // Errors: ErrorKind::usage if `cmd` is empty or contains CR, LF or another control byte
  // (nothing is written); ErrorKind::module when no final result code arrives within `timeout`;
  // ErrorKind::serial for port failures; ErrorKind::interrupted when interrupted while waiting.
  [[nodiscard]] Result<AtResponse> command(std::string_view cmd,
                                           std::chrono::milliseconds timeout,
                                           const CommandOptions& options = {});

  // command(), and anything but OK is ErrorKind::module: "AT+WISN=\"abcd…wxyz\": +CME ERROR: 3".
  [[nodiscard]] Result<AtResponse> command_ok(std::string_view cmd,
                                              std::chrono::milliseconds timeout,
                                              const CommandOptions& options = {});

  // Prompt-mode write (ESP-AT AT+SYSMFG=2,…,7,<len>; AT+MQTTLONGPASSWORD): sends `cmd`, waits for
  // the `>` prompt (tolerating an OK before it), sends `data` raw (no terminator), and waits for
  // the final result code. `timeout` applies to each phase. `data` must not contain control bytes
  // (ErrorKind::usage). ERROR instead of the prompt, or a non-OK final, is ErrorKind::module.
  [[nodiscard]] Result<AtResponse> send_prompt_data(std::string_view cmd,
                                                    std::string_view data,
                                                    std::chrono::milliseconds timeout,
                                                    const CommandOptions& options = {});

  // Sends "AT" every `interval` until a reply "OK" (echo, RDY, garbage tolerated), at most
  // `attempts` times; then discards pending input, sends ATE0 (echo off) and AT+CMEE=2 (verbose
  // errors; a module that refuses it is accepted). After half the attempts failed, every other
  // attempt uses the other line ending ("\r" <-> "\r\n"); the one that worked is kept.
  // ErrorKind::module if nothing answered; ErrorKind::interrupted when interrupted meanwhile.
  [[nodiscard]] Status sync(int attempts = 25,
                            std::chrono::milliseconds interval = std::chrono::milliseconds(200));

  // URCs received while no command was pending, not yet handed out with a response.
  [[nodiscard]] std::vector<std::string> take_urcs();

  // `text` with every registered secret masked.
  [[nodiscard]] std::string mask(std::string_view text) const;

  [[nodiscard]] SerialPort& port() { return m_port; }

private:
  Status write_line(std::string_view cmd);
  Status absorb_idle(); // reads what is buffered now; every line is a URC (or stray) line
  // Reads and drops everything until nothing arrived for `quiet` (at most `limit`), then
  // flushes the input: nothing earlier can be taken for a later answer.
  Status drain_until_quiet(std::chrono::milliseconds quiet, std::chrono::milliseconds limit);
  void trace(std::string_view direction, std::string_view line) const;
  Result<ParsedResponse> run(ResponseParser& parser,
                             std::string_view what,
                             std::chrono::milliseconds timeout,
                             bool secret_response,
                             bool watch_prompt);

  SerialPort& m_port;
  LineSplitter m_splitter;
  std::deque<std::string> m_backlog; // complete lines received after the last response ended
  std::vector<std::string> m_idle_urcs;
  std::vector<std::string> m_secrets;
  std::string m_line_ending = "\r";
  TraceHook m_trace;
};

// Refuses (ErrorKind::usage) text containing CR, LF or any other control byte (< 0x20, 0x7f),
// naming `what`, the byte and its position but never the text (it may hold a secret).
[[nodiscard]] Status check_no_control_bytes(std::string_view text, std::string_view what);

} // namespace iot::serial
