// SPDX-License-Identifier: MIT
// Test support for the cloud emulator: an OpenAPI RPC V1 signer written here from
// docs/aliyun-iot-protocol.md §1 (independent of cloud/signer, checked against the doc's
// vectors in test_cloud_gateway.cpp), and a bench that runs a CloudService in-process on a
// temporary state with an injected clock.
#pragma once

#include "sim/cloud_scenario.hpp"
#include "sim/cloud_service.hpp"
#include "sim/cloud_store.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace iot::sim::testing {

using Fields = std::map<std::string, std::string>; // sorted bytewise, as §1 sorts

// §1 percentEncode: keep A-Z a-z 0-9 - _ . ~, everything else %XX uppercase.
inline std::string doc_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4U]);
      out.push_back(hex[c & 15U]);
    }
  }
  return out;
}

// enc(k)=enc(v) joined by '&' in name order, Signature excluded.
inline std::string doc_canonical(const Fields& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (k == "Signature") {
      continue;
    }
    if (!out.empty()) {
      out += '&';
    }
    out += doc_encode(k) + "=" + doc_encode(v);
  }
  return out;
}

inline std::string doc_string_to_sign(std::string_view method, const Fields& params) {
  return std::string(method) + "&" + doc_encode("/") + "&" + doc_encode(doc_canonical(params));
}

inline std::string hmac_sha1_base64(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha1(),
       key.data(),
       static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()),
       message.size(),
       digest,
       &length);
  unsigned char text[64];
  const int n = EVP_EncodeBlock(text, digest, static_cast<int>(length));
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(n));
}

inline std::string
doc_signature(std::string_view method, const Fields& params, std::string_view secret) {
  return hmac_sha1_base64(std::string(secret) + "&", doc_string_to_sign(method, params));
}

// Form encoding of every field (Signature included).
inline std::string doc_form(const Fields& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) {
      out += '&';
    }
    out += doc_encode(k) + "=" + doc_encode(v);
  }
  return out;
}

// "YYYY-MM-DDThh:mm:ssZ"
inline std::string doc_timestamp(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

inline constexpr std::string_view k_ak = "LTAI5tTestKeyA";
inline constexpr std::string_view k_secret = "testSecretA";
inline constexpr std::int64_t k_start_ms = 1'717'243'200'000; // 2024-06-01T12:00:00Z

// A scenario with one AccessKey pair (k_ak / k_secret) and the given products JSON list.
inline std::string scenario_with(const std::string& products_json,
                                 const std::string& extra_top_level = {}) {
  return R"({"access_keys": [{"id": "LTAI5tTestKeyA", "secret": "testSecretA", "account": "acct1"},
                             {"id": "LTAI5tTestKeyB", "secret": "testSecretB", "account": "acct1"},
                             {"id": "LTAI5tTestKeyC", "secret": "testSecretC"}],)" +
         extra_top_level + R"("products": )" + products_json + "}";
}

struct Call {
  std::string ak = std::string(k_ak);
  std::string secret = std::string(k_secret);
  std::string method = "POST";
  std::string nonce;                        // empty: a fresh one
  std::optional<std::int64_t> timestamp_ms; // empty: the bench's now
  bool sign = true;
};

class CloudBench {
public:
  explicit CloudBench(const std::string& scenario_json,
                      cloud::ServiceOptions options = no_limits(),
                      std::uint64_t seed = 1) {
    std::string templ =
        (std::filesystem::temp_directory_path() / "iotfleet-cloud-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
      throw std::runtime_error("mkdtemp");
    }
    dir = templ;
    auto scenario = cloud::parse_scenario(scenario_json);
    if (!scenario) {
      throw std::runtime_error(scenario.error().message);
    }
    auto opened = cloud::CloudStore::open(dir / "cloud.db");
    if (!opened) {
      throw std::runtime_error(opened.error().message);
    }
    store = std::move(*opened);
    if (auto seeded = store->seed(*scenario, seed); !seeded) {
      throw std::runtime_error(seeded.error().message);
    }
    start(options);
  }
  CloudBench(const CloudBench&) = delete;
  CloudBench& operator=(const CloudBench&) = delete;
  ~CloudBench() {
    service.reset();
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  static cloud::ServiceOptions no_limits() {
    cloud::ServiceOptions o;
    o.no_limits = true;
    return o;
  }

  // A new service (fresh nonces, buckets, counters) on the same state.
  void start(cloud::ServiceOptions options) {
    service = std::make_unique<cloud::CloudService>(
        *store, options, [this] { return cloud::from_ms(now_ms); });
  }

  // Signs (per §1, with this file's signer) and sends one request.
  cloud::CloudResponse call(std::string_view action, Fields params, Call how = {}) {
    params["Action"] = std::string(action);
    params.emplace("Version", "2018-01-20");
    params.emplace("Format", "JSON");
    params.emplace("AccessKeyId", how.ak);
    params.emplace("SignatureMethod", "HMAC-SHA1");
    params.emplace("SignatureVersion", "1.0");
    params.emplace("SignatureNonce",
                   how.nonce.empty() ? "nonce-" + std::to_string(++m_nonce) : how.nonce);
    params.emplace("Timestamp", doc_timestamp(how.timestamp_ms.value_or(now_ms)));
    params.emplace("RegionId", "cn-shanghai");
    if (how.sign) {
      params["Signature"] = doc_signature(how.method, params, how.secret);
    }
    return send(how.method, params);
  }

  cloud::CloudResponse send(const std::string& method, const Fields& params) {
    cloud::CloudRequest r;
    r.method = method;
    r.path = "/";
    if (method == "POST") {
      r.body = doc_form(params);
      r.content_type = "application/x-www-form-urlencoded";
    } else {
      r.query = doc_form(params);
    }
    last_params = params;
    return service->handle(r);
  }

  // call() and parse the body.
  nlohmann::json json(std::string_view action, Fields params, Call how = {}) {
    last = call(action, std::move(params), std::move(how));
    return nlohmann::json::parse(last.body);
  }

  std::filesystem::path dir;
  std::unique_ptr<cloud::CloudStore> store;
  std::int64_t now_ms = k_start_ms;
  std::unique_ptr<cloud::CloudService> service;
  cloud::CloudResponse last;
  Fields last_params;

private:
  int m_nonce = 0;
};

} // namespace iot::sim::testing
