// SPDX-License-Identifier: MIT
// iotfleet dynreg (formerly `register`, still accepted): one-type-one-secret dynamic registration
// (docs/registration.md). Each device's DeviceSecret is asked for with the product's ProductSecret
// over HTTPS and written to the factory ledger before anything else happens to it (write-ahead: a
// pending row before the request, the secret in the same transaction that adds it to the pool).
//
// The Registrar is shared with `provision --register`, which registers each module's IMEI on the
// fly.
#pragma once

#include "commands/common_options.hpp"
#include "commands/context.hpp"
#include "store/ledger.hpp"

#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace iot::cloud {
class DynamicRegisterClient;
class HttpClient;
} // namespace iot::cloud

namespace iot::commands {

struct RegistrarOptions {
  std::optional<std::string> product_key;         // default: the config's product_key
  std::optional<std::string> product_secret_file; // path or "-"; default env / config
  std::string sign_method = "hmacsha256";         // hmacsha256 | hmacsha1 | hmacmd5
  double qps = 20.0;                              // requests per second, all threads together
  int max_attempts = 6;                           // per device, first try included
  std::size_t connections = 8;                    // parallel HTTP connections
};

enum class RegisterOutcome {
  registered, // the cloud issued a secret; it is in the ledger's pool
  skipped,    // already in the ledger (no --force): nothing sent
  failed,     // refused (nothing issued) or not attempted (bad name, busy triplet)
  in_doubt,   // no answer was read: the cloud may hold a secret nobody has; run again
};
[[nodiscard]] std::string_view to_string(RegisterOutcome outcome);

struct DeviceRegistration {
  std::string product_key;
  std::string device_name;
  RegisterOutcome outcome = RegisterOutcome::failed;
  std::string secret; // registered / skipped: the ledger's secret for the device. SECRET.
  std::string detail; // what happened, never a secret
  std::optional<Error> error;
  int attempts = 0;
  int code = 0; // the platform's last answer code (0: none read)
};

class Registrar {
public:
  // Resolves the ProductKey, ProductSecret (--product-secret-file, IOTFLEET_PRODUCT_SECRET, the
  // config's product_secret[_file]), the auth endpoint and the sign method, and opens an HTTP
  // client. ErrorKind::usage names every way to give what is missing.
  [[nodiscard]] static Result<std::unique_ptr<Registrar>>
  open(Context& ctx, const RegistrarOptions& options, store::Ledger& ledger);
  ~Registrar();
  Registrar(const Registrar&) = delete;
  Registrar& operator=(const Registrar&) = delete;

  [[nodiscard]] const std::string& product_key() const { return m_product_key; }
  [[nodiscard]] const std::string& url() const;

  // Registers one device unless the ledger already has it (or force). Thread-safe.
  [[nodiscard]] DeviceRegistration
  register_device(const std::string& device_name, bool force, const store::Actor& actor);

private:
  Registrar(store::Ledger& ledger, std::string product_key);
  store::Ledger& m_ledger;
  std::string m_product_key;
  std::unique_ptr<cloud::HttpClient> m_http;
  std::unique_ptr<cloud::DynamicRegisterClient> m_client;
};

struct RegisterOptions {
  RegistrarOptions registrar;
  DeviceNamesInput devices; // DEVICE_NAME..., --device-name, --devices FILE|-
  bool force = false;
  std::size_t concurrency = 8;
  std::optional<std::string> out_file; // -O: ProductKey,DeviceName,DeviceSecret (0600, atomic)
  std::string format = "csv";          // of out_file
};

struct RegisterReport {
  core::Table devices;          // one row per device, in list order
  std::optional<Error> failure; // one device: its error; many: partial (5); Ctrl-C: interrupted
  bool streamed = false;        // rows were emitted one by one (ndjson)
};

void register_register(CLI::App& app, Context& ctx);
// --product-secret-file and --sign-method, shared with `provision --register`.
void add_registrar_options(CLI::App* cmd, RegistrarOptions& registrar, bool for_provision);
[[nodiscard]] Result<RegisterReport> run_register(const RegisterOptions& opts, Context& ctx);

} // namespace iot::commands
