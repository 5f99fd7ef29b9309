// SPDX-License-Identifier: MIT
// A scripted SerialPort for unit tests (after ninja's VirtualFileSystem):
//   FakeSerialPort port;
//   port.expect("AT+CSQ\r").reply("+CSQ: 20,99\r\nOK\r\n");
// Writes are recorded. When the bytes written so far start with the next expectation, its reply
// becomes readable (one read_some() per chunk; reply_split() cuts a reply at given offsets).
// inject() makes bytes readable at once (URCs). A write that does not match the next expectation
// is recorded in mismatch() and gets no reply, so the code under test times out.
#pragma once

#include "serial/serial_port.hpp"

#include <algorithm>
#include <deque>
#include <string>
#include <thread>
#include <vector>

namespace iot::test {

class FakeSerialPort final : public iot::serial::SerialPort {
public:
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

  [[nodiscard]] const std::vector<std::string>& writes() const { return m_writes; }
  [[nodiscard]] std::string written() const {
    std::string all;
    for (const auto& w : m_writes) {
      all += w;
    }
    return all;
  }
  [[nodiscard]] const std::string& mismatch() const { return m_mismatch; }
  [[nodiscard]] bool all_expectations_met() const { return m_next == m_steps.size(); }
  [[nodiscard]] int flushes() const { return m_flushes; }

  iot::Status write(std::string_view bytes) override {
    m_writes.emplace_back(bytes);
    m_pending.append(bytes);
    while (m_next < m_steps.size() && !m_pending.empty()) {
      const std::string& want = m_steps[m_next].expect;
      const std::size_t n = std::min(want.size(), m_pending.size());
      if (m_pending.compare(0, n, want, 0, n) != 0) {
        if (m_mismatch.empty()) {
          m_mismatch = "expected \"" + want + "\", got \"" + m_pending + "\"";
        }
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
    if (m_next == m_steps.size() && !m_pending.empty() && m_mismatch.empty()) {
      m_mismatch = "unexpected write \"" + m_pending + "\"";
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
  std::vector<Step> m_steps;
  std::size_t m_next = 0;
  std::string m_pending;
  std::deque<Chunk> m_reads;
  std::vector<std::string> m_writes;
  std::string m_mismatch;
  std::optional<iot::Error> m_read_error;
  int m_flushes = 0;
  std::string m_path = "/dev/fake0";
};

} // namespace iot::test
