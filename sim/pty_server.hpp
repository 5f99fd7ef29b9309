// SPDX-License-Identifier: MIT
// PtyServer: serves ModuleModels on pseudo-terminals, all from one thread with ppoll().
//
// Each module gets a pty pair. The slave side is put in raw mode (cfmakeraw) so the host sees
// the module's bytes unchanged, and the simulator keeps its own slave fd open so the pty does
// not hang up when a client closes it. Output is paced at the configured baud rate (10 bits a
// byte) unless pacing is off. Output nobody reads is dropped once the pty buffer is full, as on
// a UART with nothing attached: a client should flush its input after opening the port.
// Idle cost: the thread sleeps until the next scheduled event (a URC, typically minutes away).
#pragma once

#include "core/error.hpp"
#include "sim/module_model.hpp"

#include <memory>
#include <string>
#include <vector>

namespace iot::sim {

struct PtyServerOptions {
  long baud = 115200;
  bool pacing = true;
};

class PtyServer {
public:
  explicit PtyServer(PtyServerOptions options);
  PtyServer(const PtyServer&) = delete;
  PtyServer& operator=(const PtyServer&) = delete;
  ~PtyServer();

  // Opens a pty for the model and powers the model on. Returns the slave path (/dev/pts/N).
  [[nodiscard]] Result<std::string> add(std::unique_ptr<ModuleModel> model);

  // Serves until stop_fd (e.g. a signalfd) becomes readable. The caller reads stop_fd.
  [[nodiscard]] Status run(int stop_fd);

  [[nodiscard]] std::size_t size() const { return m_ports.size(); }
  [[nodiscard]] const ModuleModel& model(std::size_t index) const { return *m_ports[index].model; }

private:
  struct Port {
    int master = -1;
    int slave = -1;
    std::string path;
    std::unique_ptr<ModuleModel> model;
    std::string tx;       // bytes due on the wire, not yet written
    TimePoint tx_clock{}; // when the next byte starts on the (paced) wire
  };

  void pump_output(Port& port, TimePoint now);
  [[nodiscard]] std::optional<TimePoint> tx_deadline(const Port& port) const;

  PtyServerOptions m_options;
  Duration m_byte_time;
  std::vector<Port> m_ports;
};

} // namespace iot::sim
