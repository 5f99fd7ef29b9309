// SPDX-License-Identifier: MIT
// The HTTP/1.1 server under `iotfleet serve` (docs/serve.md "The HTTP server"). Event loops on
// epoll, one per core, accept, do the TLS handshakes and read and write every connection without
// blocking, so a slow or silent client costs a socket and a few kilobytes, never a thread; each
// complete request goes to a worker thread (the ledger's transaction, a cloud lookup), and its
// answer back to the loop. cpp-httplib, which the emulator uses, gives each connection a thread
// for its whole life: a handful of silent clients held every thread until --read-timeout, and the
// 64 threads its throughput needed contended on OpenSSL's locks (bench/RESULTS.md).
#pragma once

#include "core/error.hpp"

#include <nlohmann/json.hpp>
#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace iot::commands::http {

struct Request {
  std::string method;
  std::string path; // the target without its query
  std::string body;
  std::string remote; // the client's address
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;      // more headers (Retry-After)
  nlohmann::ordered_json log = nlohmann::ordered_json::object(); // fields for the access log
};

struct Limits {
  std::size_t max_connections = 1024; // open at once; more wait in the kernel's listen queue
  int keep_alive = 1;                 // requests one connection may carry
  std::size_t max_body = 4096;        // larger: 413 without reading it
  std::size_t max_header = 8192;      // request line and headers; larger: 431
  // From the connection (or its previous answer) to a complete request, handshake included; a
  // client that takes longer, however it trickles its bytes, is disconnected. Writing an answer
  // gets as long again.
  std::chrono::milliseconds read_timeout{5000};
};

// Answers one request on a worker thread.
using Handler = std::function<Response(const Request&)>;
// Called once for every answer (the handler's, and the server's own 4xx for a request it could
// not read), before it is written; `seconds` from the complete request to its answer.
using Logger = std::function<void(const Request&, const Response&, double seconds)>;

class Server {
public:
  // `tls`: the context every connection's handshake uses (nullptr: plain HTTP); the caller
  // keeps it alive. `workers` threads run the handler, `loops` event loops do the I/O.
  Server(Limits limits, SSL_CTX* tls, Handler handler, Logger logger, int workers, int loops);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds HOST:PORT and listens (PORT 0: the kernel picks); the port listened on.
  [[nodiscard]] Result<int> bind(const std::string& host, int port);
  // Serves until stop(); then accepts nothing more, answers every request it has read (and
  // closes connections still in a handshake or a request), and returns.
  void run();
  // From any thread (a signal watcher).
  void stop();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// The reason phrase of an HTTP status ("Too Many Requests").
[[nodiscard]] std::string_view reason(int status);

} // namespace iot::commands::http
