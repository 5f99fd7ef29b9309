// SPDX-License-Identifier: MIT
// The cloud emulator's exchange log (`iotfleet-sim cloud --exchange-log FILE`): one NDJSON line
// per OpenAPI exchange — the Action, the request's own parameters, who sent it, the HTTP status
// and the JSON answer — with every secret value masked. tests/contract/check.js reads these lines
// and checks them against Alibaba's SDK models (docs/cloud-emulator.md, "Exchange log").
#pragma once

#include "core/error.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace iot::sim::cloud {

// What the log keeps of one exchange.
struct Exchange {
  std::string action; // the request's Action parameter, as sent ("" when none)
  std::string method; // GET, POST
  std::string user_agent;
  const std::map<std::string, std::string>* params = nullptr; // all query + form parameters
  int status = 200;
  std::string code;      // the answer's error Code, "" on success
  std::string delivery;  // "normal", "truncate", "reset"
  std::string_view body; // the JSON answer as sent
};

// Parameters every RPC call carries and the SDK's <Action>Request models do not: the gateway's
// (Action, Format, Version, AccessKeyId, Signature*, SignatureNonce, Timestamp, SecurityToken)
// and RegionId, which older Alibaba SDKs add and the generated ones do not.
[[nodiscard]] bool common_parameter(std::string_view name);

// True for names whose value is a secret (DeviceSecret, ProductSecret, AccessKeySecret, an
// upload grant's Signature, passwords, tokens of STS): the log holds a masked value instead.
[[nodiscard]] bool secret_name(std::string_view name);

// Replaces, at any depth, the value of every member with a secret_name by a masked one of the
// same JSON type ("***" for text, 0 for numbers, false for booleans; objects and arrays have
// their leaves masked).
void mask_secrets(nlohmann::ordered_json& value);

// "iotfleet" for iotfleet's own client (User-Agent iotfleet/<version>), else "other".
[[nodiscard]] std::string_view exchange_client(std::string_view user_agent);

// The NDJSON line (without the newline):
// {"action","client","user_agent","method","params":{…},"status","code","delivery","response"}.
// A body that is not JSON is kept as text in "response_text".
[[nodiscard]] std::string exchange_line(const Exchange& exchange);

// An append-only NDJSON file, shared by the server's threads: each line is written with one
// write(2) on an O_APPEND descriptor, so lines never interleave.
class ExchangeLog {
public:
  ExchangeLog() = default;
  ExchangeLog(const ExchangeLog&) = delete;
  ExchangeLog& operator=(const ExchangeLog&) = delete;
  ~ExchangeLog();

  // Opens (creates, mode 0600) `path` for appending.
  [[nodiscard]] static Result<std::unique_ptr<ExchangeLog>> open(const std::string& path);
  void write(const Exchange& exchange);

private:
  std::mutex m_mutex;
  int m_fd = -1;
  std::string m_path;
  bool m_failed = false; // a write failed: said once on stderr
};

} // namespace iot::sim::cloud
