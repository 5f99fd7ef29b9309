// SPDX-License-Identifier: MIT
// iotfleet serve: the customer's own credential server (seed FAQ 000 §7, the second way;
// docs/serve.md). Devices POST an Aliyun-style dynamic registration request
// (cloud/enrollment.hpp) and get their DeviceSecret from the ledger, each request decided in one
// transaction (store::Ledger::issue_secret). TLS unless --insecure-http; /healthz, /metrics
// (Prometheus text), an NDJSON access log without secrets or signs; SIGHUP reloads the
// certificate; SIGTERM stops accepting, finishes what is in flight and exits 0.
#pragma once

#include "commands/context.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace iot::commands {

struct ServeOptions {
  std::string listen;                  // HOST:PORT (PORT 0: any free one)
  std::optional<std::string> tls_cert; // PEM certificate chain
  std::optional<std::string> tls_key;  // PEM private key
  bool insecure_http = false;          // plain HTTP (labs only)
  std::string enrollment_file;         // product_key,scheme,secret per line (0600)
  std::string access_log = "-";        // NDJSON, one line per request; "-": stdout
  int threads = 16; // workers answering complete requests; the I/O is one event loop per core
  // Connections open at once (in a handshake, a request, or being answered); beyond it new
  // clients wait in the kernel's listen queue, not in the server's memory.
  int max_connections = 1024;
  // Requests one connection may carry: a device asks once per boot, so by default the
  // connection is closed after its answer; a load balancer in front that reuses its
  // connections wants more.
  int keep_alive = 1;
  std::int64_t max_body = 4096;                           // bytes; larger bodies get 413
  std::chrono::milliseconds read_timeout{5000};           // to a complete request, else closed
  std::chrono::milliseconds replay_window{5 * 60 * 1000}; // a timestamp further off: refused
  int per_address = 6000; // requests per minute from one source address (0: no limit)
  int per_device = 10;    // signed requests per minute for one DeviceName (0: no limit)
  // A name not in the pool is looked up with QueryDeviceDetail (the account's QPS, at most
  // cloud_queue requests waiting for it; more get 429) and its secret kept in the ledger.
  bool cloud_lookup = false;
  int cloud_queue = 8;
  // With cloud_lookup: only these names (a DeviceName list file) may be asked of the cloud.
  std::optional<std::string> allow_file;
  // With cloud_lookup: a name the cloud does not know that matches this glob is registered
  // (RegisterDevice), at most register_rate a minute.
  std::optional<std::string> register_unknown;
  int register_rate = 60;
  // How often the cloud's status of the pool's devices is checked (a disabled one is refused);
  // unset: 10 minutes with cloud_lookup, otherwise never; 0: never.
  std::optional<std::chrono::milliseconds> status_refresh;
};

void register_serve(CLI::App& app, Context& ctx);
// Serves until SIGINT / SIGTERM (then Ok). ErrorKind::usage for bad options or files, io when
// the address cannot be listened on, config for a ledger that is not there.
[[nodiscard]] Status run_serve(const ServeOptions& opts, Context& ctx);

} // namespace iot::commands
