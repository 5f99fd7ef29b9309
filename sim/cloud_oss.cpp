// SPDX-License-Identifier: MIT
// The OSS-style object store behind GenerateOTAUploadURL / GenerateDeviceNameListURL (§3): a
// PostObject form upload (key, OSSAccessKeyId, policy, Signature, success_action_status, file
// last) checked against the grant the Action issued, streamed to <state dir>/oss/<key> with its
// MD5 and SHA-256 computed on the way, and GET downloads of the stored objects.
#include "core/text.hpp"
#include "sim/cloud_ota.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace iot::sim::cloud {

namespace {

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

std::optional<std::string> unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::string out(3 * text.size() / 4 + 1, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) {
    return std::nullopt;
  }
  std::size_t size = static_cast<std::size_t>(n);
  for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it) {
    --size; // EVP_DecodeBlock counts the padding
  }
  out.resize(size);
  return out;
}

std::string hmac_sha1_base64(std::string_view key, std::string_view message) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha1(),
       key.data(),
       static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()),
       message.size(),
       digest,
       &length);
  return base64(std::string_view(reinterpret_cast<const char*>(digest), length));
}

std::string hex(const unsigned char* data, std::size_t size) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(digits[data[i] >> 4U]);
    out.push_back(digits[data[i] & 15U]);
  }
  return out;
}

// The emulated OSS credentials: derived from the state's salt, never sent (only the id).
std::string oss_key_id(const CloudStore& store) {
  return "LTAI5tOssEmu" + store.token_salt().substr(0, 12);
}
std::string oss_key_secret(const CloudStore& store) {
  return store.token_salt() + "|oss";
}

std::string xml_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '&':
      out += "&amp;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out.push_back(c);
    }
  }
  return out;
}

OssAnswer
oss_error(int status, std::string code, std::string_view message, std::string_view request_id) {
  OssAnswer a;
  a.status = status;
  a.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n  <Code>" + xml_escape(code) +
           "</Code>\n  <Message>" + xml_escape(message) + "</Message>\n  <RequestId>" +
           xml_escape(request_id) + "</RequestId>\n  <HostId>" + std::string(k_oss_bucket) +
           ".emulator</HostId>\n</Error>\n";
  a.code = std::move(code);
  return a;
}

} // namespace

struct OssUpload::Hashes {
  EVP_MD_CTX* md5 = EVP_MD_CTX_new();
  EVP_MD_CTX* sha256 = EVP_MD_CTX_new();
  Hashes() {
    EVP_DigestInit_ex(md5, EVP_md5(), nullptr);
    EVP_DigestInit_ex(sha256, EVP_sha256(), nullptr);
  }
  Hashes(const Hashes&) = delete;
  Hashes& operator=(const Hashes&) = delete;
  ~Hashes() {
    EVP_MD_CTX_free(md5);
    EVP_MD_CTX_free(sha256);
  }
  void update(const char* data, std::size_t size) {
    EVP_DigestUpdate(md5, data, size);
    EVP_DigestUpdate(sha256, data, size);
  }
  static std::string final(EVP_MD_CTX* ctx) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx, digest, &length);
    return hex(digest, length);
  }
};

OssGrant oss_grant(Conn& c,
                   const CloudStore& store,
                   const ServiceOptions& options,
                   std::string_view kind,
                   std::string_view suffix,
                   std::string_view random_part,
                   std::int64_t now_ms) {
  OssGrant g;
  g.key = std::string(kind == "dnlist" ? "dnlist/" : "ota/") + std::string(random_part) + "/" +
          std::to_string(now_ms) + "." + std::string(suffix);
  nlohmann::json policy;
  policy["expiration"] = utc_iso(now_ms + k_oss_policy_ms);
  policy["conditions"] = nlohmann::json::array(
      {nlohmann::json::array({"content-length-range", 0, options.oss_max_bytes}),
       nlohmann::json{{"bucket", k_oss_bucket}},
       nlohmann::json::array({"eq", "$key", g.key})});
  g.policy = base64(policy.dump());
  g.signature = hmac_sha1_base64(oss_key_secret(store), g.policy);
  g.access_key_id = oss_key_id(store);
  g.host = options.public_url + std::string(k_oss_path);
  g.object_url = g.host + "/" + g.key;
  c.prepare("INSERT INTO ota_objects(object_key, kind, created_ms, expires_ms, uploaded_ms, "
            "size, md5, sha256) VALUES(?1, ?2, ?3, ?4, 0, -1, '', '')")
      .bind(1, g.key)
      .bind(2, kind)
      .bind(3, now_ms)
      .bind(4, now_ms + k_oss_policy_ms)
      .run();
  return g;
}

std::string object_key_of_url(const ServiceOptions& options, std::string_view url) {
  (void)options; // any host: the port may have changed since the URL was issued
  const std::string marker = std::string(k_oss_path) + "/";
  const std::size_t at = url.find(marker);
  if (at == std::string_view::npos) {
    return "";
  }
  std::string_view key = url.substr(at + marker.size());
  key = key.substr(0, key.find_first_of("?#"));
  return std::string(key);
}

std::filesystem::path object_path(const CloudStore& store, std::string_view key) {
  return store.state_dir() / "oss" / std::string(key);
}

std::optional<OssObject> find_object(Conn& c, std::string_view key) {
  Stmt s = c.prepare("SELECT object_key, kind, created_ms, expires_ms, uploaded_ms, size, md5, "
                     "sha256 FROM ota_objects WHERE object_key = ?1");
  s.bind(1, key);
  if (!s.step()) {
    return std::nullopt;
  }
  return OssObject{
      s.text(0), s.text(1), s.int64(2), s.int64(3), s.int64(4), s.int64(5), s.text(6), s.text(7)};
}

OssUpload::OssUpload(CloudStore& store,
                     const ServiceOptions& options,
                     std::int64_t now_ms,
                     std::string request_id)
    : m_store(store), m_options(options), m_now_ms(now_ms), m_request_id(std::move(request_id)) {}

OssUpload::~OssUpload() {
  if (m_out.is_open()) {
    m_out.close();
  }
  if (!m_temp.empty()) {
    std::error_code ec;
    std::filesystem::remove(m_temp, ec);
  }
}

void OssUpload::field(std::string_view name, std::string_view value) {
  if (!m_file_started) {
    m_fields[core::to_lower(name)] = std::string(value.substr(0, 64 * 1024));
  }
}

OssAnswer OssUpload::refuse(int status, std::string code, std::string message) {
  OssAnswer a = oss_error(status, std::move(code), message, m_request_id);
  if (!m_refused) {
    m_refused = a;
  }
  return a;
}

bool OssUpload::begin_file() {
  if (m_refused) {
    return false;
  }
  m_file_started = true;
  auto get = [&](const char* name) -> const std::string* {
    const auto it = m_fields.find(name);
    return it == m_fields.end() ? nullptr : &it->second;
  };
  for (const char* name : {"key", "ossaccesskeyid", "policy", "signature"}) {
    if (get(name) == nullptr || get(name)->empty()) {
      (void)refuse(400,
                   "InvalidArgument",
                   std::string("The form field ") + name + " is required before file.");
      return false;
    }
  }
  if (*get("ossaccesskeyid") != oss_key_id(m_store)) {
    (void)refuse(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist.");
    return false;
  }
  if (hmac_sha1_base64(oss_key_secret(m_store), *get("policy")) != *get("signature")) {
    (void)refuse(403,
                 "SignatureDoesNotMatch",
                 "The request signature we calculated does not match the signature you "
                 "provided.");
    return false;
  }
  const auto decoded = unbase64(*get("policy"));
  const nlohmann::json policy =
      decoded ? nlohmann::json::parse(*decoded, nullptr, false) : nlohmann::json();
  if (!policy.is_object() || !policy.contains("expiration") || !policy["expiration"].is_string()) {
    (void)refuse(400, "InvalidPolicyDocument", "Invalid Policy: the policy cannot be read.");
    return false;
  }
  const auto expires = parse_iso_utc(policy["expiration"].get<std::string>());
  if (!expires || *expires < m_now_ms) {
    (void)refuse(403, "AccessDenied", "Invalid according to Policy: Policy expired.");
    return false;
  }
  std::string policy_key;
  for (const auto& cond : policy.value("conditions", nlohmann::json::array())) {
    if (cond.is_array() && cond.size() == 3 && cond[0] == "eq" && cond[1] == "$key" &&
        cond[2].is_string()) {
      policy_key = cond[2].get<std::string>();
    }
  }
  m_key = *get("key");
  if (m_key != policy_key) {
    (void)refuse(403,
                 "AccessDenied",
                 "Invalid according to Policy: Policy Condition failed: [\"eq\", \"$key\", \"" +
                     policy_key + "\"]");
    return false;
  }
  const auto object = m_store.read([&](Conn& c) { return find_object(c, m_key); });
  if (!object || !*object) {
    (void)refuse(403, "AccessDenied", "The object key was not granted by this platform.");
    return false;
  }
  const std::filesystem::path target = object_path(m_store, m_key);
  std::error_code ec;
  std::filesystem::create_directories(target.parent_path(), ec);
  m_temp = target;
  m_temp += ".part-" + m_request_id;
  m_out.open(m_temp, std::ios::binary | std::ios::trunc);
  if (!m_out) {
    (void)refuse(500, "InternalError", "The object cannot be stored.");
    return false;
  }
  m_hashes = std::make_unique<Hashes>();
  return true;
}

bool OssUpload::write(const char* data, std::size_t size) {
  if (m_refused || !m_out.is_open()) {
    return !m_refused || m_refused->code != "EntityTooLarge";
  }
  m_size += static_cast<std::int64_t>(size);
  if (m_size > m_options.oss_max_bytes) {
    (void)refuse(400,
                 "EntityTooLarge",
                 "Your proposed upload exceeds the maximum allowed size (" +
                     std::to_string(m_options.oss_max_bytes) + " bytes).");
    m_out.close();
    return false;
  }
  m_hashes->update(data, size);
  m_out.write(data, static_cast<std::streamsize>(size));
  if (!m_out) {
    (void)refuse(500, "InternalError", "The object cannot be stored.");
    return false;
  }
  return true;
}

OssAnswer OssUpload::finish(bool complete) {
  if (m_refused) {
    return *m_refused;
  }
  if (!m_file_started) {
    return refuse(400, "InvalidArgument", "The form has no file field.");
  }
  if (!complete) {
    return refuse(400, "IncompleteBody", "The request body ended before the form did.");
  }
  m_out.close();
  if (!m_out) {
    return refuse(500, "InternalError", "The object cannot be stored.");
  }
  const std::string md5 = Hashes::final(m_hashes->md5);
  const std::string sha256 = Hashes::final(m_hashes->sha256);
  std::error_code ec;
  std::filesystem::rename(m_temp, object_path(m_store, m_key), ec);
  if (ec) {
    return refuse(500, "InternalError", "The object cannot be stored.");
  }
  m_temp.clear();
  const auto stored = m_store.write([&](Conn& c) {
    c.prepare("UPDATE ota_objects SET uploaded_ms = ?2, size = ?3, md5 = ?4, sha256 = ?5 "
              "WHERE object_key = ?1")
        .bind(1, m_key)
        .bind(2, m_now_ms)
        .bind(3, m_size)
        .bind(4, md5)
        .bind(5, sha256)
        .run();
  });
  if (!stored) {
    return refuse(500, "InternalError", "The object cannot be recorded.");
  }
  OssAnswer a;
  const auto status = m_fields.find("success_action_status");
  const std::string wanted = status == m_fields.end() ? "" : status->second;
  const std::string etag = core::to_upper(md5);
  if (wanted == "201") {
    a.status = 201;
    a.body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse>\n  <Bucket>" +
             std::string(k_oss_bucket) + "</Bucket>\n  <Location>" +
             xml_escape(m_options.public_url + std::string(k_oss_path) + "/" + m_key) +
             "</Location>\n  <Key>" + xml_escape(m_key) + "</Key>\n  <ETag>\"" + etag +
             "\"</ETag>\n</PostResponse>\n";
  } else {
    a.status = wanted == "200" ? 200 : 204; // OSS: anything else answers 204
  }
  return a;
}

OssDownload oss_download(CloudStore& store, std::string_view key) {
  OssDownload d;
  const auto object = store.read([&](Conn& c) { return find_object(c, key); });
  if (!object || !*object || (*object)->uploaded_ms == 0) {
    d.error = oss_error(404, "NoSuchKey", "The specified key does not exist.", "");
    return d;
  }
  d.error.status = 200;
  d.path = object_path(store, key);
  d.size = (*object)->size;
  return d;
}

} // namespace iot::sim::cloud
