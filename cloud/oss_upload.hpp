// SPDX-License-Identifier: MIT
// OSS PostObject uploads for the OTA grants (GenerateOTAUploadURL, GenerateDeviceNameListURL):
// a multipart/form-data POST to the grant's Host with key, OSSAccessKeyId, policy, Signature,
// success_action_status, then the file (last). Files are streamed from disk and hashed on the
// way (one pass), so memory stays flat whatever the size. docs/ota.md.
#pragma once

#include "cloud/crypto.hpp"
#include "cloud/http.hpp"
#include "cloud/iot_api.hpp"

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

namespace iot::cloud {

// A file read for upload: MD5 and SHA-256 of exactly the bytes handed to the HTTP client, reset
// on every rewind (a resent body is hashed afresh).
class HashingFileSource {
public:
  [[nodiscard]] static Result<std::shared_ptr<HashingFileSource>>
  open(const std::filesystem::path& path);
  ~HashingFileSource();
  HashingFileSource(const HashingFileSource&) = delete;
  HashingFileSource& operator=(const HashingFileSource&) = delete;

  [[nodiscard]] std::int64_t size() const { return m_size; }
  // Bytes read since the last rewind.
  [[nodiscard]] std::int64_t bytes_read() const { return m_read; }
  // Hex digests of the bytes read since the last rewind (call after the whole file was read).
  [[nodiscard]] std::string md5_hex();
  [[nodiscard]] std::string sha256_hex();
  // The BodySource the HTTP client pulls from. `tamper` (tests only) may change the bytes after
  // they were hashed: a corrupted transfer.
  [[nodiscard]] std::shared_ptr<BodySource>
  body(std::function<void(char*, std::size_t, std::int64_t offset)> tamper = {});

  bool rewind();

private:
  HashingFileSource(std::FILE* file, std::int64_t size);
  std::int64_t read(char* buffer, std::size_t max);

  std::FILE* m_file;
  std::int64_t m_size;
  std::int64_t m_read = 0;
  Hasher m_md5{HashAlgorithm::md5};
  Hasher m_sha256{HashAlgorithm::sha256};
  std::string m_md5_hex;
  std::string m_sha256_hex;
};

struct PostObjectOptions {
  std::string filename = "file";
  int max_attempts = 4; // 5xx and transport errors are retried (the body is rewound)
  std::chrono::milliseconds timeout{0};
};

// Uploads `source` to the grant. ErrorKind::cloud for an OSS error answer (message: the OSS Code
// and Message), ErrorKind::network for transport failures after the retries.
[[nodiscard]] Status post_object(HttpClient& http,
                                 const UploadGrant& grant,
                                 const std::shared_ptr<BodySource>& source,
                                 const PostObjectOptions& options = {});

// A text body (a device-name list) uploaded the same way.
[[nodiscard]] Status post_object_text(HttpClient& http,
                                      const UploadGrant& grant,
                                      std::string content,
                                      const PostObjectOptions& options = {});

} // namespace iot::cloud
