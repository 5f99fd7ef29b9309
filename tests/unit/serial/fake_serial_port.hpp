// SPDX-License-Identifier: MIT
// A scripted SerialPort for unit tests (after ninja's VirtualFileSystem):
//   FakeSerialPort port;
//   port.expect("AT+CSQ\r").reply("+CSQ: 20,99\r\nOK\r\n");
// Writes are recorded. When the bytes written so far start with the next expectation, its reply
// becomes readable (one read_some() per chunk; reply_split() cuts a reply at given offsets).
// inject() makes bytes readable at once (URCs).
//
// The fake checks the script itself, so a test cannot forget to:
//   - a write that is not the next expectation (or comes after the last one) fails the test at
//     once, naming what was written and what was expected; it gets no reply, so the code under
//     test then times out;
//   - expectations still unmet when the fake is destroyed fail the test, naming them — unless
//     the test said allow_unmet() (the code under test is meant to stop before the end).
// on_failure() sends these messages elsewhere (the fake's own tests assert them).
#pragma once

#include "serial/serial_port.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace iot::test {

class FakeSerialPort final : public iot::serial::SerialPort {
public:
  using FailureHook = std::function<void(const std::string& message)>;

  FakeSerialPort() = default;
  ~FakeSerialPort() override {
    if (m_allow_unmet || m_next == m_steps.size() || std::uncaught_exceptions() > 0) {
      return; // a REQUIRE already failed the test: its message is the one that matters
    }
    std::string msg = m_path + ": " + std::to_string(m_steps.size() - m_next) + " of " +
                      std::to_string(m_steps.size()) + " expectations not met, next ";
    for (std::size_t i = m_next; i < m_steps.size(); ++i) {
      msg += (i == m_next ? "" : ", ") + shown(m_steps[i].expect);
    }
    report(msg);
  }
  FakeSerialPort(const FakeSerialPort&) = delete;
  FakeSerialPort& operator=(const FakeSerialPort&) = delete;
  FakeSerialPort(FakeSerialPort&&) = delete;
  FakeSerialPort& operator=(FakeSerialPort&&) = delete;

  FakeSerialPort& expect(std::string bytes) {
    m_steps.push_back(Step{std::move(bytes), {}});
    return *this;
  }
  // Adds a reply chunk to the last expectation (call several times for several chunks).
  FakeSerialPort& reply(std::string bytes) {
    m_steps.back().chunks.push_back(Chunk{std::move(bytes), false});
    return *this;
  }
  // Adds `bytes` as several chunks, cut at the given offsets (ascending).
  FakeSerialPort& reply_split(const std::string& bytes, const std::vector<std::size_t>& cuts) {
    std::size_t start = 0;
    for (auto cut : cuts) {
      cut = std::min(cut, bytes.size());
      if (cut > start) {
        m_steps.back().chunks.push_back(Chunk{bytes.substr(start, cut - start), false});
        start = cut;
      }
    }
    if (start < bytes.size()) {
      m_steps.back().chunks.push_back(Chunk{bytes.substr(start), false});
    }
    return *this;
  }
  // A reply chunk that is still on the wire when the code under test flushes its input: a
  // flush_input() before it was read does not discard it (a late answer).
  FakeSerialPort& reply_late(std::string bytes) {
    m_steps.back().chunks.push_back(Chunk{std::move(bytes), true});
    return *this;
  }
  // Readable at once, before anything else queued later.
  void inject(std::string bytes) { m_reads.push_back(Chunk{std::move(bytes), false}); }
  void fail_reads(iot::Error error) { m_read_error = std::move(error); }

  // The test expects the code under test to stop before the script's end: no failure for
  // expectations left unmet.
  FakeSerialPort& allow_unmet() {
    m_allow_unmet = true;
    return *this;
  }
  // Where the fake's failures go instead of failing the running test case.
  void on_failure(FailureHook hook) { m_on_failure = std::move(hook); }

  [[nodiscard]] const std::vector<std::string>& writes() const { return m_writes; }
  [[nodiscard]] std::string written() const {
    std::string all;
    for (const auto& w : m_writes) {
      all += w;
    }
    return all;
  }
  [[nodiscard]] int flushes() const { return m_flushes; }

  iot::Status write(std::string_view bytes) override {
    m_writes.emplace_back(bytes);
    m_pending.append(bytes);
    while (m_next < m_steps.size() && !m_pending.empty()) {
      const std::string& want = m_steps[m_next].expect;
      const std::size_t n = std::min(want.size(), m_pending.size());
      if (m_pending.compare(0, n, want, 0, n) != 0) {
        report(m_path + ": unexpected write " + shown(m_pending) + ", expected " + shown(want) +
               " (expectation " + std::to_string(m_next + 1) + " of " +
               std::to_string(m_steps.size()) + ")");
        m_pending.clear();
        break;
      }
      if (m_pending.size() < want.size()) {
        break;
      }
      m_pending.erase(0, want.size());
      for (auto& c : m_steps[m_next].chunks) {
        m_reads.push_back(c);
      }
      ++m_next;
    }
    if (m_next == m_steps.size() && !m_pending.empty()) {
      report(m_path + ": unexpected write " + shown(m_pending) + " after all " +
             std::to_string(m_steps.size()) + " expectations were met");
      m_pending.clear();
    }
    return {};
  }

  iot::Result<std::string> read_some(std::chrono::milliseconds timeout) override {
    if (m_read_error) {
      return std::unexpected(*m_read_error);
    }
    if (!m_reads.empty()) {
      std::string chunk = std::move(m_reads.front().bytes);
      m_reads.pop_front();
      return chunk;
    }
    if (timeout.count() > 0) {
      std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(2)));
    }
    return std::string{};
  }

  iot::Status flush_input() override {
    ++m_flushes;
    std::erase_if(m_reads, [](const Chunk& c) { return !c.late; });
    return {};
  }
  iot::Status drain() override { return {}; }
  const std::string& path() const override { return m_path; }

private:
  struct Chunk {
    std::string bytes;
    bool late = false;
  };
  struct Step {
    std::string expect;
    std::vector<Chunk> chunks;
  };

  // Quoted, with control bytes spelled out: "AT+CSQ\r".
  static std::string shown(std::string_view bytes) {
    std::string out = "\"";
    for (const char c : bytes) {
      if (c == '\r') {
        out += "\\r";
      } else if (c == '\n') {
        out += "\\n";
      } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        char hex[8];
        std::snprintf(
            hex, sizeof hex, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
        out += hex;
      } else {
        out += c;
      }
    }
    return out + "\"";
  }

  void report(const std::string& message) {
    if (m_on_failure) {
      m_on_failure(message);
    } else {
      const std::string text = "FakeSerialPort " + message;
      FAIL_CHECK(text);
    }
  }

  std::vector<Step> m_steps;
  std::size_t m_next = 0;
  std::string m_pending;
  std::deque<Chunk> m_reads;
  std::vector<std::string> m_writes;
  std::optional<iot::Error> m_read_error;
  int m_flushes = 0;
  bool m_allow_unmet = false;
  FailureHook m_on_failure;
  std::string m_path = "/dev/fake0";
};

} // namespace iot::test
