// SPDX-License-Identifier: MIT
// PtyServer: serves ModuleModels on pseudo-terminals, all from one thread with ppoll().
//
// Each module gets a pty pair. The slave side is put in raw mode (cfmakeraw) so the host sees
// the module's bytes unchanged, and the simulator keeps its own slave fd open so the pty does
// not hang up when a client closes it. Output is paced at the configured baud rate (10 bits a
// byte) unless pacing is off. Output nobody reads is dropped once the pty buffer is full, as on
// a UART with nothing attached: a client should flush its input after opening the port.
// Idle cost: the thread sleeps until the next scheduled event (a URC, typically minutes away).
//
// A port is a fixture (a USB-serial adapter): it stays open while the module in it changes.
// remove() pulls the module out (the port then discards input and sends nothing), insert() puts
// another one in (it boots). An optional Controller (the production line's control FIFO) is
// served by the same thread, so it may call remove() / insert() from its callbacks.
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

class PtyServer;

// Something else the poll thread serves: a readable fd and timers of its own. Its callbacks run
// on the poll thread, between two rounds of port I/O.
class ServerController {
public:
  ServerController() = default;
  ServerController(const ServerController&) = delete;
  ServerController& operator=(const ServerController&) = delete;
  virtual ~ServerController() = default;
  // The fd to poll for input; -1 for none.
  [[nodiscard]] virtual int control_fd() const = 0;
  // control_fd() became readable (read it non-blocking until EAGAIN).
  virtual void on_readable(TimePoint now) = 0;
  // The earliest time advance() has something to do; nullopt when nothing is scheduled.
  [[nodiscard]] virtual std::optional<TimePoint> next_deadline() const = 0;
  // Runs everything due up to now.
  virtual void advance(TimePoint now) = 0;
};

class PtyServer {
public:
  explicit PtyServer(PtyServerOptions options);
  PtyServer(const PtyServer&) = delete;
  PtyServer& operator=(const PtyServer&) = delete;
  ~PtyServer();

  // Opens a pty for the model and powers the model on. Returns the slave path (/dev/pts/N).
  // A null model gives an empty fixture (a silent port) until insert().
  [[nodiscard]] Result<std::string> add(std::unique_ptr<ModuleModel> model);

  // Pulls the module out of port `index` and returns it (null if the fixture was empty). Its
  // output not yet on the wire is lost; from now on the port discards input and sends nothing.
  std::unique_ptr<ModuleModel> remove(std::size_t index);
  // Puts a module in port `index` (which must be empty) and powers it on at `now`.
  void insert(std::size_t index, std::unique_ptr<ModuleModel> model, TimePoint now);

  // Serves until stop_fd (e.g. a signalfd) becomes readable. The caller reads stop_fd.
  [[nodiscard]] Status run(int stop_fd, ServerController* controller = nullptr);

  [[nodiscard]] std::size_t size() const { return m_ports.size(); }
  [[nodiscard]] const std::string& path(std::size_t index) const { return m_ports[index].path; }
  // The module in port `index`, or null when the fixture is empty.
  [[nodiscard]] const ModuleModel* model(std::size_t index) const {
    return m_ports[index].model.get();
  }
  [[nodiscard]] ModuleModel* model(std::size_t index) { return m_ports[index].model.get(); }

private:
  struct Port {
    int master = -1;
    int slave = -1;
    std::string path;
    std::unique_ptr<ModuleModel> model; // null: empty fixture
    std::string tx;                     // bytes due on the wire, not yet written
    TimePoint tx_clock{};               // when the next byte starts on the (paced) wire
  };

  void pump_output(Port& port, TimePoint now);
  [[nodiscard]] std::optional<TimePoint> tx_deadline(const Port& port) const;

  PtyServerOptions m_options;
  Duration m_byte_time;
  std::vector<Port> m_ports;
};

} // namespace iot::sim
