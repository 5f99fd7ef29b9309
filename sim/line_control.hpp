// SPDX-License-Identifier: MIT
// The simulated production line: fixtures whose modules operators pull out and replace.
//
// A fixture is one pty of the PtyServer (a USB-serial adapter: the port stays open while the
// module in it changes). ProductionLine owns what is in each fixture: it creates the module
// models (restoring the current module of every fixture from the state dir), applies the control
// commands (`remove`, `insert`, `swap`, `set-sn`, `connected`, `set-copy`, read as lines from the
// --control FIFO on the poll thread), keeps every module's NVM file, appends each inserted module
// to <state-dir>/modules.ndjson and rewrites ports.json (and the registry entry) on every change.
// The formats are documented in docs/simulator.md ("Production-line control").
#pragma once

#include "core/error.hpp"
#include "sim/module_model.hpp"
#include "sim/nvm.hpp"
#include "sim/pty_server.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::sim {

// One line of the control FIFO, parsed.
struct ControlCommand {
  enum class Verb { remove, insert, swap, set_sn, connected, set_copy, refetch };
  Verb verb = Verb::remove;
  std::optional<std::size_t> index; // nullopt: every fixture (`swap all`)
  std::string identity;             // insert / swap: IMEI (MAC for esp-at); empty = random
  std::string value;                // set-sn / set-copy: the new content of the storage
};

[[nodiscard]] std::string_view to_string(ControlCommand::Verb verb);

// Parses "remove I", "insert I [IMEI]", "swap I [IMEI]", "swap all", "set-sn I VALUE",
// "connected I" (the device connected to Aliyun: its script copies the SN's DeviceSecret to the
// NVM copy) and "set-copy I VALUE" (VALUE is the rest of the line, surrounding blanks removed).
// I must be < fixtures; an IMEI is any 15 digits (a MAC aa:bb:cc:dd:ee:ff for esp-at).
// `connected` and `set-copy` need a luat line (the only kind modelling the copy). Errors are
// ErrorKind::usage and never quote a set-sn / set-copy VALUE.
[[nodiscard]] Result<ControlCommand>
parse_control_line(std::string_view line, ModuleKind kind, std::size_t fixtures);

// A module fresh from the box: a new identity drawn from rng (IMEI, ICCID, IMSI, MAC and, for
// Quectel, the module serial number), no SN, no credentials.
[[nodiscard]] Nvm fresh_module_nvm(ModuleKind kind, Rng& rng);

// The current UTC time as "2024-05-01T08:00:00.123Z" (24 characters).
[[nodiscard]] std::string utc_timestamp_ms();

// One line of modules.ndjson: a module that was put in a fixture.
struct ModuleRecord {
  std::size_t index = 0;
  std::size_t generation = 0;
  std::string identity; // IMEI (MAC for esp-at) when inserted
  std::filesystem::path nvm;
  std::string inserted_at;               // utc_timestamp_ms()
  std::optional<std::string> removed_at; // nullopt while the module is in its fixture
  friend bool operator==(const ModuleRecord&, const ModuleRecord&) = default;
};

// <state-dir>/modules.ndjson: one JSON object per line, one line per module ever inserted, in the
// order they were inserted:
//   {"index":0,"generation":1,"imei":"…","nvm":"/abs/luat-0-g1.json",
//    "inserted_at":"2024-05-01T08:00:00.123Z","removed_at":null                      }
// ("mac" instead of "imei" for esp-at). A line is appended when the module is inserted; its
// removal overwrites the padded `null` in place with the time, so the line keeps its length and
// every line stays valid JSON. Writes are flushed to the file (not fsynced).
class ModuleHistory {
public:
  // Opens or creates the file and reads its records. A torn last line (a kill in the middle of an
  // append) is cut off; a line that is not a record is an error.
  [[nodiscard]] static Result<ModuleHistory> open(const std::filesystem::path& path,
                                                  ModuleKind kind);

  ModuleHistory(ModuleHistory&& other) noexcept;
  ModuleHistory& operator=(ModuleHistory&& other) noexcept;
  ModuleHistory(const ModuleHistory&) = delete;
  ModuleHistory& operator=(const ModuleHistory&) = delete;
  ~ModuleHistory();

  [[nodiscard]] const std::vector<ModuleRecord>& records() const { return m_records; }
  // The most recent record of fixture `index` (highest generation), or null.
  [[nodiscard]] const ModuleRecord* latest(std::size_t index) const;
  [[nodiscard]] const std::filesystem::path& path() const { return m_path; }

  // Appends a record (its removed_at must be empty).
  [[nodiscard]] Status append(ModuleRecord record);
  // Sets removed_at of (index, generation) to `when` (a utc_timestamp_ms()).
  [[nodiscard]] Status mark_removed(std::size_t index, std::size_t generation, std::string when);

private:
  ModuleHistory(std::filesystem::path path, ModuleKind kind, int fd);

  std::filesystem::path m_path;
  ModuleKind m_kind;
  int m_fd = -1;
  off_t m_end = 0;
  std::vector<ModuleRecord> m_records;
  std::vector<off_t> m_removed_slot; // file offset of each record's removed_at value; -1 = none
};

struct LineOptions {
  ModelConfig config;
  std::filesystem::path state_dir; // absolute
  std::uint64_t base_seed = 0;
  std::chrono::milliseconds swap_gap{300};
  // Rewritten atomically whenever a fixture changes: ports.json, the registry entry.
  std::vector<std::filesystem::path> ports_files;
  pid_t pid = 0;
  long baud = 115200;
  std::ostream* log = nullptr; // control messages; null = std::cerr
  // `refetch I` (with --first-boot): fetches the module's DeviceSecret again into its SN and
  // returns what to log; unset = the verb is refused.
  std::function<std::string(std::size_t index, ModuleModel& model)> refetch;
};

// Identity flags of `iotfleet-sim modules`; they apply to the modules present at start-up.
struct IdentityOverrides {
  std::vector<std::string> identities; // --imei, fixture 0, 1, … in order
  bool duplicate = false;              // --duplicate-imei
  bool placeholder = false;            // --placeholder-imei
};

class ProductionLine final : public ServerController {
public:
  ProductionLine(PtyServer& server, LineOptions options, ModuleHistory history);

  // Adds `count` ports to the server, each with its fixture's current module: the latest
  // generation recorded in modules.ndjson (empty if that one was removed), the generation-0 file
  // of an older state dir, or a new module. Records modules that modules.ndjson does not know yet.
  // Does not write the ports files (publish() does).
  [[nodiscard]] Status start(std::size_t count, const IdentityOverrides& overrides);

  // Rewrites every ports file with the current identity of each fixture.
  [[nodiscard]] Status publish() const;

  // The control channel: a non-blocking fd carrying command lines (the FIFO; a pipe in tests).
  // Not owned. EOF (a pipe's writer gone) stops polling it.
  void set_control_fd(int fd) { m_control_fd = fd; }

  // Parses one line and applies it, or logs why it is ignored. Blank lines and '#' comments are
  // ignored silently.
  void handle_line(std::string_view line, TimePoint now);
  // Applies a parsed command at `now`; a swap's insert is scheduled swap_gap later. Every outcome
  // is logged as one "control: …" line.
  void apply(const ControlCommand& command, TimePoint now);

  [[nodiscard]] int control_fd() const override { return m_control_eof ? -1 : m_control_fd; }
  void on_readable(TimePoint now) override;
  [[nodiscard]] std::optional<TimePoint> next_deadline() const override;
  void advance(TimePoint now) override;

  [[nodiscard]] std::size_t size() const { return m_fixtures.size(); }
  // The latest generation fixture `index` has seen (its current module's, when one is in).
  [[nodiscard]] std::size_t generation(std::size_t index) const {
    return m_fixtures[index].generation;
  }
  [[nodiscard]] bool present(std::size_t index) const { return m_server.model(index) != nullptr; }
  // The identity (IMEI, MAC for esp-at) of the module in fixture `index`; empty when none.
  [[nodiscard]] std::string identity(std::size_t index) const;
  [[nodiscard]] const ModuleHistory& history() const { return m_history; }

private:
  struct Fixture {
    std::size_t generation = 0;
    std::optional<TimePoint> insert_at; // a swap's pending insert
    std::string insert_identity;
  };

  [[nodiscard]] std::ostream& log_stream() const;
  [[nodiscard]] std::unique_ptr<ModuleModel>
  make_model(std::size_t index, std::size_t generation, Nvm nvm) const;
  [[nodiscard]] Status record_inserted(std::size_t index, std::size_t generation, const Nvm& nvm);
  [[nodiscard]] const std::string& identity_of(const Nvm& nvm) const;
  std::string& identity_of(Nvm& nvm) const;
  // Pulls the module out; returns its identity (empty if the fixture was empty).
  std::string remove_module(std::size_t index);
  // Puts a fresh module in (the fixture must be empty); returns its identity, or empty on error
  // (logged).
  std::string insert_module(std::size_t index, const std::string& identity, TimePoint now);
  void publish_or_log() const;

  PtyServer& m_server;
  LineOptions m_options;
  ModuleHistory m_history;
  std::vector<Fixture> m_fixtures;
  int m_control_fd = -1;
  bool m_control_eof = false;
  std::string m_control_buffer;
  bool m_control_discarding = false; // inside an over-long line
};

} // namespace iot::sim
