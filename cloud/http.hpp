// SPDX-License-Identifier: MIT
// The HTTP seam of the cloud layer. Everything above it (OpenAPI client, IoT API, commands) talks
// to an HttpClient, so tests use a scripted fake and production uses make_curl_client().
//
// Error contract of send()/send_all():
//   - any HTTP status (2xx, 4xx, 5xx) is a successful Result: the caller interprets it;
//   - transport failures (DNS, connect, timeouts, resets, truncated transfers) are
//     ErrorKind::network, message "<METHOD> <url>: <what failed>";
//   - a server certificate that fails verification is ErrorKind::auth (the server could not prove
//     who it is; retrying cannot help), with a hint to pass --ca-file for a private CA;
//   - a malformed URL or unsupported scheme is ErrorKind::usage, an unreadable CA file
//     ErrorKind::config.
#pragma once

#include "core/error.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iot::cloud {

// A send() error for a request that provably never left this machine (the name did not resolve,
// the connection was refused) ends with this note, so callers can tell "not sent" from "sent,
// answer lost" (dynamic registration keeps a device in doubt only for the second).
inline constexpr std::string_view k_not_sent_note = " (not sent: no connection was made)";
[[nodiscard]] inline bool not_sent(const Error& error) {
  return error.message.ends_with(k_not_sent_note);
}

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// A request body part read piece by piece while it is sent (a firmware file), so it never sits in
// memory. read() fills up to `max` bytes and returns how many (0 = the end, negative = an error:
// the transfer is aborted); rewind() goes back to the first byte (before every attempt, and when
// the client has to send the body again); false = cannot.
struct BodySource {
  std::int64_t size = 0;
  std::function<std::int64_t(char* buffer, std::size_t max)> read;
  std::function<bool()> rewind;
};

// One multipart/form-data field: text `value`, or with `source` a streamed file part.
struct FormPart {
  std::string name;
  std::string value;
  std::string filename;     // with source
  std::string content_type; // with source; empty = application/octet-stream
  std::shared_ptr<BodySource> source;
};

struct HttpRequest {
  std::string method = "GET"; // GET, POST, PUT, DELETE, HEAD
  std::string url;
  HttpHeaders headers; // sent as given; Content-Type is the caller's job
  std::string body;
  // Not empty: the body is multipart/form-data made of these parts, in order (body ignored, the
  // Content-Type with its boundary set by the client). Streamed parts are read while sending.
  std::vector<FormPart> form;
  // Whole-transfer limit; zero = the client's default (HttpOptions::timeout).
  std::chrono::milliseconds timeout{0};
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers; // names as received; the last response's headers after redirects
  std::string body;

  // First header with this name (ASCII case-insensitive).
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
};

class HttpClient {
public:
  virtual ~HttpClient() = default;

  // One request; blocks until the response or a transport failure. Thread-safe for the curl
  // client (each thread gets its own connection set).
  [[nodiscard]] virtual Result<HttpResponse> send(const HttpRequest& request) = 0;

  // Many requests with up to the client's max-in-flight running at once; results in request
  // order. The default implementation sends them one after another.
  [[nodiscard]] virtual std::vector<Result<HttpResponse>>
  send_all(const std::vector<HttpRequest>& requests);
};

struct HttpOptions {
  std::string ca_file; // extra CA bundle (PEM) to trust, e.g. the emulator's; empty = system CAs
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{60'000}; // whole transfer, when a request sets none
  std::size_t max_in_flight = 16;            // per send_all() call
  std::string user_agent;                    // empty = "iotfleet/<version>"
};

// libcurl (multi interface) client: keep-alive connections reused between calls, up to
// max_in_flight transfers at once in send_all(), TLS peer and host verification always on (there
// is no option to turn it off). Fails with ErrorKind::config if the CA file is unreadable.
[[nodiscard]] Result<std::unique_ptr<HttpClient>> make_curl_client(const HttpOptions& options);

} // namespace iot::cloud
