// SPDX-License-Identifier: MIT
// iotfleet creds mqtt: the MQTT host, port, clientId, username and password a device connects
// with (docs/aliyun-iot-protocol.md §5), or the one-type-one-secret dynamic-registration
// connection's (§4), computed locally from the DeviceSecret (ProductSecret) in a file, on stdin
// or in the factory ledger. Never from the command line: secrets on it are visible in ps.
#pragma once

#include "cloud/device_sign.hpp"
#include "cloud/mqtt_probe.hpp"
#include "commands/common_options.hpp"
#include "commands/context.hpp"
#include "core/keepalive.hpp"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace iot::commands {

struct CredsMqttOptions {
  std::string device_name;
  std::optional<std::string> product_key; // default: the config's product_key, else the ledger's
  // Where the DeviceSecret comes from: a file or "-" (stdin); unset = the factory ledger.
  std::optional<std::string> device_secret_file;
  std::string sign_method = "hmacsha256"; // hmacsha256 | hmacsha1 | hmacmd5
  int secure_mode = 2;                    // 2 = TLS, 3 = TCP (dynamic registration: TLS only)
  std::optional<std::string> timestamp;   // epoch milliseconds or "now"; unset = none signed
  std::optional<std::string> client_id;   // default "${productKey}.${deviceName}"
  std::optional<std::string> instance_id; // default: the config's iot_instance_id
  std::int64_t keepalive = core::keepalive::advised_s;

  // Dynamic registration over MQTT: "register" (pre-registered DeviceName) or "regnwl" (without
  // pre-registration); signed with the ProductSecret instead of a DeviceSecret.
  std::optional<std::string> dynamic;
  // Where the ProductSecret comes from: a file or "-"; unset = the ledger (a --scheme product
  // triplet of this DeviceName).
  std::optional<std::string> product_secret_file;
  std::optional<std::string> random; // dynamic only; unset = a fresh random string

  // Set by a caller that read the DeviceSecret itself (creds probe --port: the module's), not
  // an option: used instead of a file or the ledger, with `from` for signed_with.
  struct GivenSecret {
    std::string secret;
    std::string from;
  };
  std::optional<GivenSecret> given_secret;
};

void register_creds(CLI::App& app, Context& ctx);

// The options `creds mqtt` and `creds probe` share: DEVICE_NAME (one), --product-key,
// --device-secret-file, --secure-mode, --sign-method, --timestamp, --client-id, --instance-id,
// --keepalive.
// The DeviceName is optional when name_required is false (creds probe --port reads it).
void add_mqtt_connection_options(CLI::App* cmd,
                                 CredsMqttOptions& opts,
                                 DeviceNamesInput& device,
                                 Context& ctx,
                                 bool name_required = true);

// `creds probe` (commands/creds_probe.cpp), under the `creds` group.
void register_creds_probe(CLI::App* creds, Context& ctx);

struct CredsEnrollmentKeyOptions {
  DeviceNamesInput devices;
  std::string group_secret_file;       // FILE or "-" (stdin)
  std::optional<std::string> out_file; // -O: the keys in full, 0600
  std::string format = "csv";
};

// `creds enrollment-key` (commands/creds_enrollment.cpp): each device's key of the device-key
// scheme (cloud::enrollment_device_key), one row per DeviceName (device_name, enrollment_key as a
// Secret cell), or with -O a file of them in full and one row naming it.
[[nodiscard]] Result<core::Table> run_creds_enrollment_key(const CredsEnrollmentKeyOptions& opts,
                                                           Context& ctx);
void register_creds_enrollment_key(CLI::App* creds, Context& ctx);

// What probe_secret connects with, computed on the caller's thread (settings read, credentials
// signed, the debug line written): cloud::probe_mqtt of it touches no Context, so many run at
// once (secrets compare --probe). Errors as probe_secret's.
[[nodiscard]] Result<cloud::MqttProbeTarget>
prepare_probe(const std::string& product_key,
              const std::string& device_name,
              const std::string& secret,
              const std::string& from,
              const std::optional<std::string>& mqtt_endpoint,
              Context& ctx);

// One probe of a secret already in hand (diagnose device --probe), with creds probe's defaults:
// the device's endpoint or mqtt_endpoint (HOST[:PORT]), TLS, the default clientId. `from` names
// the secret's origin for signed_with. ErrorKind::usage for a bad endpoint or secret; an
// interruption is an ErrorKind::interrupted error, every other outcome a result.
[[nodiscard]] Result<cloud::MqttProbeResult>
probe_secret(const std::string& product_key,
             const std::string& device_name,
             const std::string& secret,
             const std::string& from,
             const std::optional<std::string>& mqtt_endpoint,
             Context& ctx);

// What a device connects with: the endpoint, the computed credentials, the ProductKey they were
// signed for and where the secret came from ("DeviceSecret from file F", "... from the ledger").
struct MqttConnection {
  cloud::MqttEndpoint endpoint;
  cloud::MqttCredentials credentials;
  std::string product_key;
  std::string signed_with;
  std::optional<std::string> ca_file; // trusted besides the system CAs (--ca-file)
};

// The options checked, the settings loaded, the secret read, the credentials computed: what
// `creds mqtt` prints and `creds probe` connects with. Errors as run_creds_mqtt's.
[[nodiscard]] Result<MqttConnection> resolve_mqtt_connection(const CredsMqttOptions& opts,
                                                             Context& ctx);

// One record: host, port, tls, client_id, username, password (a Secret cell), keepalive,
// server_drop_after_s, server_drop_latest_s, product_key, device_name, sign_content,
// signed_with. Keepalive advice goes to ctx.output->warn; a keepalive the platform refuses, a
// missing secret or a bad value is ErrorKind::usage.
[[nodiscard]] Result<core::Table> run_creds_mqtt(const CredsMqttOptions& opts, Context& ctx);

} // namespace iot::commands
