// SPDX-License-Identifier: MIT
// ModuleModel: one simulated AT module (Luat, Quectel or ESP-AT), as a pure state machine.
//
// It consumes the bytes a host writes (feed) and produces the bytes the module sends back as
// timed chunks (take_due), given the current time from the caller and an RNG seeded at
// construction. No I/O, no clock of its own: the pty server drives it with steady_clock, the
// unit tests with a hand-moved TimePoint, so every behaviour (latency, URCs, faults) is
// deterministic for a seed and an input schedule.
//
// What it emulates is docs/at-modules.md (formats) and docs/simulator.md (the choices made where
// that document says UNVERIFIED). Output framing: data lines "\r\n<line>\r\n", final results
// "\r\nOK\r\n", "\r\nERROR\r\n", "\r\n+CME ERROR: <n|text>\r\n"; echo (ATE1, on after every
// boot) sends every received byte back as received, so a command comes back as "AT…\r".
//
// Persistence: every NVM change (SN, IMEI, aliauth, SYSMFG, the secret copy) is handed to the
// persist callback before the command's OK is produced; when the callback fails the command answers
// an error and the in-memory NVM is left unchanged. A fault never changes NVM: a command that a
// reboot or stuck fault swallows is not executed at all; a dropped, slow or garbled reply belongs
// to a command that was executed (and persisted) normally.
#pragma once

#include "core/error.hpp"
#include "sim/identity.hpp"
#include "sim/nvm.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::sim {

using SimClock = std::chrono::steady_clock;
using TimePoint = SimClock::time_point;
using Duration = std::chrono::nanoseconds;

// Probabilities (0..1), each drawn once per reply the module is about to give.
struct FaultRates {
  double garble = 0; // flip or insert 1–3 random bytes in the reply
  double drop = 0;   // command executed, reply never sent
  double reboot = 0; // command lost; ~1 s later the boot banner, echo on, CMEE default
  double stuck = 0;  // command lost; no echo, no reply, input discarded for 3–8 s
  double slow = 0;   // reply delayed by 1–3 s more
};

struct ModelConfig {
  ModuleKind kind = ModuleKind::luat;
  FaultRates faults;
  double urcs_per_minute = 3.0; // mean rate of random URCs (Poisson); 0 disables them
  std::chrono::milliseconds nvm_latency_min{50};
  std::chrono::milliseconds nvm_latency_max{300};
  // Quectel aliauth forgotten at reboot (at-modules.md §2.1 says persistence is UNVERIFIED).
  bool volatile_aliauth = false;
};

// Counters for tests and the --verbose log.
struct ModelStats {
  std::uint64_t commands = 0;
  std::uint64_t garbled = 0;
  std::uint64_t dropped = 0;
  std::uint64_t reboots = 0;
  std::uint64_t stuck = 0;
  std::uint64_t slow = 0;
  std::uint64_t urcs = 0;
  std::uint64_t nvm_writes = 0;
};

class ModuleModel {
public:
  // Persists the complete new NVM; must be durable when it returns success.
  using PersistFn = std::function<Status(const Nvm&)>;

  ModuleModel(ModelConfig config, Nvm nvm, std::uint64_t seed, PersistFn persist = {});

  // Power on at `now`: the boot banner (RDY … / ready) starts after `boot_delay`.
  void power_on(TimePoint now, Duration boot_delay = std::chrono::milliseconds(100));

  // Bytes written by the host at `now`. Bytes arriving while the module is off (booting) or
  // stuck are lost, as on a real UART.
  void feed(std::string_view bytes, TimePoint now);

  // Runs everything due up to `now`: queued commands, boot, end of stuck, URCs.
  void advance(TimePoint now);

  // Removes and returns the output whose time is <= now, in order. Calls advance(now) first.
  [[nodiscard]] std::string take_due(TimePoint now);

  // The earliest time something will happen (an output chunk becomes due, a queued command
  // runs, a URC fires, boot or stuck ends); nullopt when nothing is scheduled.
  [[nodiscard]] std::optional<TimePoint> next_deadline() const;

  // Changes the fault probabilities from now on (tests; a future runtime control).
  void set_faults(const FaultRates& faults) { m_config.faults = faults; }

  // Overwrites the module's credential storage behind the host's back (the production line's
  // `set-sn`, to emulate a corrupted secret): Luat the SN (AT+WISN), Quectel the DeviceSecret of
  // aliauth client 0 (an unset aliauth 0 gets empty PK and DN), ESP-AT the string key
  // aliyun-key/DeviceSecret (AT+SYSMFG). Persisted like a host write; on failure (value empty,
  // longer than the field holds, or not saved) nothing changes.
  [[nodiscard]] Status overwrite_sn_storage(std::string value);

  // The Luat device script of seed FAQ §3.2 (assumed, docs/simulator.md): after each successful
  // connection to Aliyun it saves the DeviceSecret it connected with to NVM, read with AT+NVMDS?
  // (`+NVMDS: "<secret>"`, `+NVMDS: ""` before the first connection). simulate_connection is such
  // a connection (the production line's `connected`): the SN's DeviceSecret — the whole SN, or its
  // third field when the SN holds PK|DN|DS — becomes the copy; it fails when there is no SN.
  // overwrite_secret_copy corrupts the copy behind everyone's back (`set-copy`; 1–64 bytes). Luat
  // only; persisted like a host write; on failure nothing changes.
  [[nodiscard]] Status simulate_connection();
  [[nodiscard]] Status overwrite_secret_copy(std::string value);

  [[nodiscard]] const Nvm& nvm() const { return m_nvm; }
  [[nodiscard]] const ModelStats& stats() const { return m_stats; }
  [[nodiscard]] const ModelConfig& config() const { return m_config; }
  [[nodiscard]] bool echo() const { return m_echo; }
  [[nodiscard]] int cmee() const { return m_cmee; }
  // True once the banner was scheduled and until the next reboot / stuck fault.
  [[nodiscard]] bool running() const { return m_power == Power::running; }

  // Firmware strings (also used by docs and tests).
  [[nodiscard]] static int default_cmee(ModuleKind kind);

private:
  enum class Power { off, booting, running, stuck };
  enum class Final { ok, error, none };

  struct Chunk {
    TimePoint at;
    std::string bytes;
  };
  struct PendingLine {
    TimePoint arrived;
    std::string text;
  };
  struct Reply {
    std::vector<std::string> lines; // data lines, framed "\r\n<line>\r\n"
    Final final = Final::ok;
    std::string error_line; // the final line when final == error ("ERROR" / "+CME ERROR: …")
    bool nvm_write = false; // OK waits for the NVM write latency
    bool prompt = false;    // ESP-AT: after OK, "\r\n>" and raw data mode
    bool reboot_after = false;
  };
  struct PromptWrite {
    std::string ns;
    std::string key;
    int type = 7;
    std::size_t length = 0;
    std::string data;
  };
  struct FaultDraw {
    bool garble = false;
    bool drop = false;
    bool reboot = false;
    bool stuck = false;
    bool slow = false;
  };

  void schedule(TimePoint at, std::string bytes);
  void schedule_urc_timer(TimePoint from);
  void boot(TimePoint at);
  void reboot(TimePoint at, Duration delay);
  void process_line(const std::string& line, TimePoint at);
  void finish_prompt(TimePoint at);
  void emit_reply(const Reply& reply, TimePoint at, bool garble);
  FaultDraw draw_faults();
  // A reboot or stuck fault swallows the command (nothing executes); true when one struck.
  bool swallowed_by_fault(const FaultDraw& f, TimePoint at);
  Duration uniform(Duration lo, Duration hi);
  Duration nvm_latency();

  Reply execute(std::string_view line);
  Reply execute_common(std::string_view name, char form, std::string_view args, bool& handled);
  Reply execute_luat(std::string_view name, char form, std::string_view args, bool& handled);
  Reply execute_quectel(std::string_view name, char form, std::string_view args, bool& handled);
  Reply execute_esp(std::string_view name, char form, std::string_view args, bool& handled);
  Reply ok(std::vector<std::string> lines = {}) const;
  Reply cme_error(int code) const;
  Reply commit(Nvm next); // persists and answers OK after the NVM latency, or an error

  ModelConfig m_config;
  Nvm m_nvm;
  Rng m_rng;
  PersistFn m_persist;
  ModelStats m_stats;

  Power m_power = Power::off;
  TimePoint m_power_at{}; // boot time (off) or end of stuck (stuck)
  bool m_echo = true;
  int m_cmee = 0;
  int m_rssi = 24;

  std::string m_line; // command being typed
  bool m_line_overflow = false;
  std::deque<PendingLine> m_pending; // complete lines waiting for the module to be free
  TimePoint m_busy_until{};
  std::optional<PromptWrite> m_prompt; // ESP-AT raw data after '>'
  std::optional<TimePoint> m_next_urc;
  std::deque<Chunk> m_out; // sorted by time, stable
};

} // namespace iot::sim
