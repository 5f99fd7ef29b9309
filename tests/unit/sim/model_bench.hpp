// SPDX-License-Identifier: MIT
// Test bench for the module model: a model driven by a hand-moved clock, and a fixed identity.
#pragma once

#include "sim/module_model.hpp"
#include "sim/nvm.hpp"

#include <string>
#include <string_view>

namespace iot::sim::testing {

using namespace std::chrono_literals;

inline Nvm test_nvm() {
  Nvm nvm;
  nvm.imei = "490154203237518";
  nvm.iccid = "89860412345678901234";
  nvm.imsi = "460001234567890";
  nvm.mac = "24:0a:c4:01:02:03";
  return nvm;
}

// Drives one model with a hand-moved clock. No URCs unless asked, so replies are exact.
struct Bench {
  explicit Bench(ModuleKind kind,
                 FaultRates faults = {},
                 std::uint64_t seed = 1,
                 ModuleModel::PersistFn persist = {},
                 Nvm nvm = test_nvm(),
                 double urcs = 0)
      : model(make_config(kind, faults, urcs), std::move(nvm), seed, std::move(persist)) {
    model.power_on(now, 0ms);
    banner = run_for(2s);
  }

  static ModelConfig make_config(ModuleKind kind, FaultRates faults, double urcs) {
    ModelConfig c;
    c.kind = kind;
    c.faults = faults;
    c.urcs_per_minute = urcs;
    return c;
  }

  // Everything the module sends during the next `d`, in 1 ms steps (like the pty loop).
  std::string run_for(Duration d) {
    std::string out;
    const TimePoint end = now + d;
    while (now < end) {
      now += 1ms;
      out += model.take_due(now);
    }
    return out;
  }

  // Sends a command line (CR appended) and returns everything within `d`.
  std::string at(std::string_view line, Duration d = 1s) {
    model.feed(std::string(line) + "\r", now);
    return run_for(d);
  }

  TimePoint now{};
  ModuleModel model;
  std::string banner;
};

} // namespace iot::sim::testing
