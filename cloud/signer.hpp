// SPDX-License-Identifier: MIT
// Alibaba Cloud OpenAPI RPC signature V1 (HMAC-SHA1), docs/aliyun-iot-protocol.md §1.
//
//   CanonicalizedQueryString = sorted (byte order) enc(name)=enc(value) joined by '&'
//                              (every parameter except Signature; empty values kept as "k=")
//   StringToSign = METHOD + "&%2F&" + enc(CanonicalizedQueryString)
//   Signature    = base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))
// where enc() is percent_encode(). All functions are pure except through the injected clock
// and nonce source of RequestSigner.
#pragma once

#include "cloud/settings.hpp"
#include "core/form.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace iot::cloud {

// Request parameters. std::map orders std::string keys bytewise (char_traits<char>::compare
// compares as unsigned char), which is exactly the order the signature needs.
using Params = std::map<std::string, std::string>;

inline constexpr std::string_view k_api_version = "2018-01-20";

// RFC 3986 percent-encoding (core/form.hpp): A-Z a-z 0-9 - _ . ~ stay, everything else is %XX
// with uppercase hex (space is %20, never '+').
using core::percent_encode;

// enc(k)=enc(v) pairs of every parameter except "Signature", in byte order, joined by '&'.
[[nodiscard]] std::string canonicalized_query(const Params& params);

// METHOD&%2F&enc(canonicalized_query(params)). `method` is the HTTP verb ("GET", "POST").
[[nodiscard]] std::string string_to_sign(std::string_view method, const Params& params);

// base64(HMAC-SHA1(secret + "&", string_to_sign(method, params))).
[[nodiscard]] std::string
rpc_signature(std::string_view method, const Params& params, std::string_view access_key_secret);

// application/x-www-form-urlencoded body (or query string) of all params, Signature included:
// enc(k)=enc(v) joined by '&', in byte order (core/form.hpp).
using core::form_encode;

// UTC "YYYY-MM-DDThh:mm:ssZ" (no fraction), as the Timestamp parameter wants.
[[nodiscard]] std::string format_timestamp(std::chrono::system_clock::time_point time);

using WallClock = std::function<std::chrono::system_clock::time_point()>;
using NonceSource = std::function<std::string()>;

// Builds the complete, signed parameter set of one OpenAPI request. Thread-safe if the clock and
// nonce source are.
class RequestSigner {
public:
  // `iot_instance_id` empty = none (public instance). Null clock/nonce = system clock / uuid_v4.
  RequestSigner(AccessKey key,
                std::string region_id,
                std::string iot_instance_id = {},
                WallClock clock = {},
                NonceSource nonce = {});

  // Action params + common params (Action, Version=2018-01-20, Format=JSON, AccessKeyId,
  // SignatureMethod=HMAC-SHA1, SignatureVersion=1.0, SignatureNonce (fresh on every call),
  // Timestamp (now), RegionId, SecurityToken for STS keys, IotInstanceId when set) + Signature.
  // Common params win over action params of the same name.
  [[nodiscard]] Params sign(std::string_view action,
                            const Params& action_params,
                            std::string_view method = "POST") const;

  [[nodiscard]] const std::string& region_id() const { return m_region_id; }
  [[nodiscard]] const std::string& iot_instance_id() const { return m_iot_instance_id; }

private:
  AccessKey m_key;
  std::string m_region_id;
  std::string m_iot_instance_id;
  WallClock m_clock;
  NonceSource m_nonce;
};

struct SignatureCheck {
  bool valid = false;
  std::string expected_signature; // what the parameters should have been signed with
  std::string string_to_sign;     // the server side's StringToSign (for error messages)
};

// Server side (the cloud emulator): recomputes the signature of the received parameters (query
// and form body merged, "Signature" among them) and compares in constant time. A missing
// Signature is invalid.
[[nodiscard]] SignatureCheck verify_rpc_signature(std::string_view method,
                                                  const Params& received,
                                                  std::string_view access_key_secret);

// Parses "a=1&b=%20x" (form body or query string; '+' means space) into params (core/form.hpp;
// leniently by default: later duplicates win). ErrorKind::usage on a malformed %-escape.
using core::parse_form;

} // namespace iot::cloud
