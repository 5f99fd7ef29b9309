// SPDX-License-Identifier: MIT
#include "cloud/oss_upload.hpp"

#include <cerrno>
#include <cstring>
#include <thread>

namespace iot::cloud {

namespace {

std::string xml_element(const std::string& body, const std::string& name) {
  const std::string open = "<" + name + ">";
  const auto begin = body.find(open);
  if (begin == std::string::npos) {
    return {};
  }
  const auto from = begin + open.size();
  const auto end = body.find("</" + name + ">", from);
  return end == std::string::npos ? std::string{} : body.substr(from, end - from);
}

HttpRequest form_request(const UploadGrant& grant, const PostObjectOptions& options) {
  HttpRequest request;
  request.method = "POST";
  request.url = grant.host;
  request.timeout = options.timeout;
  request.form = {FormPart{"key", grant.key, {}, {}, nullptr},
                  FormPart{"OSSAccessKeyId", grant.access_key_id, {}, {}, nullptr},
                  FormPart{"policy", grant.policy, {}, {}, nullptr},
                  FormPart{"Signature", grant.signature, {}, {}, nullptr},
                  FormPart{"success_action_status", "201", {}, {}, nullptr}};
  return request;
}

Status send_form(HttpClient& http,
                 HttpRequest request,
                 const std::shared_ptr<BodySource>& source,
                 const PostObjectOptions& options) {
  const std::string what = "upload to " + request.url.substr(0, request.url.find('?'));
  Error last{ErrorKind::network, what + ": not attempted"};
  for (int attempt = 1; attempt <= std::max(1, options.max_attempts); ++attempt) {
    if (attempt > 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(250 * (1 << (attempt - 2))));
    }
    if (source && source->rewind && !source->rewind()) {
      return fail(ErrorKind::io, what + ": cannot rewind the file for another attempt");
    }
    auto response = http.send(request);
    if (!response) {
      last = response.error().context(what);
      if (response.error().kind != ErrorKind::network) {
        return fail(last);
      }
      continue;
    }
    if (response->status >= 200 && response->status < 300) {
      return {};
    }
    const std::string code = xml_element(response->body, "Code");
    const std::string message = xml_element(response->body, "Message");
    last = Error{ErrorKind::cloud,
                 what + ": " + (code.empty() ? "error" : code) +
                     (message.empty() ? "" : ": " + message) + " (HTTP " +
                     std::to_string(response->status) + ")"};
    if (response->status < 500) {
      return fail(last);
    }
  }
  return fail(last);
}

} // namespace

HashingFileSource::HashingFileSource(std::FILE* file, std::int64_t size)
    : m_file(file), m_size(size) {}

HashingFileSource::~HashingFileSource() {
  if (m_file != nullptr) {
    std::fclose(m_file);
  }
}

Result<std::shared_ptr<HashingFileSource>>
HashingFileSource::open(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return fail(ErrorKind::usage, "cannot read " + path.string() + ": " + ec.message());
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return fail(ErrorKind::usage, "cannot read " + path.string() + ": " + std::strerror(errno));
  }
  return std::shared_ptr<HashingFileSource>(
      new HashingFileSource(f, static_cast<std::int64_t>(size)));
}

bool HashingFileSource::rewind() {
  if (std::fseek(m_file, 0, SEEK_SET) != 0) {
    return false;
  }
  m_read = 0;
  (void)m_md5.finish();
  (void)m_sha256.finish();
  m_md5_hex.clear();
  m_sha256_hex.clear();
  return true;
}

std::int64_t HashingFileSource::read(char* buffer, std::size_t max) {
  const std::size_t n = std::fread(buffer, 1, max, m_file);
  if (n == 0 && std::ferror(m_file) != 0) {
    return -1;
  }
  const std::string_view bytes(buffer, n);
  m_md5.update(bytes);
  m_sha256.update(bytes);
  m_read += static_cast<std::int64_t>(n);
  return static_cast<std::int64_t>(n);
}

std::string HashingFileSource::md5_hex() {
  if (m_md5_hex.empty()) {
    m_md5_hex = hex(m_md5.finish());
  }
  return m_md5_hex;
}

std::string HashingFileSource::sha256_hex() {
  if (m_sha256_hex.empty()) {
    m_sha256_hex = hex(m_sha256.finish());
  }
  return m_sha256_hex;
}

std::shared_ptr<BodySource>
HashingFileSource::body(std::function<void(char*, std::size_t, std::int64_t)> tamper) {
  auto source = std::make_shared<BodySource>();
  source->size = m_size;
  source->read = [this, tamper = std::move(tamper)](char* buffer, std::size_t max) {
    const std::int64_t offset = m_read;
    const std::int64_t n = read(buffer, max);
    if (n > 0 && tamper) {
      tamper(buffer, static_cast<std::size_t>(n), offset);
    }
    return n;
  };
  source->rewind = [this] { return rewind(); };
  return source;
}

Status post_object(HttpClient& http,
                   const UploadGrant& grant,
                   const std::shared_ptr<BodySource>& source,
                   const PostObjectOptions& options) {
  HttpRequest request = form_request(grant, options);
  request.form.push_back(FormPart{"file", {}, options.filename, {}, source});
  return send_form(http, std::move(request), source, options);
}

Status post_object_text(HttpClient& http,
                        const UploadGrant& grant,
                        std::string content,
                        const PostObjectOptions& options) {
  auto data = std::make_shared<std::string>(std::move(content));
  auto offset = std::make_shared<std::size_t>(0);
  auto source = std::make_shared<BodySource>();
  source->size = static_cast<std::int64_t>(data->size());
  source->read = [data, offset](char* buffer, std::size_t max) {
    const std::size_t n = std::min(max, data->size() - *offset);
    std::memcpy(buffer, data->data() + *offset, n);
    *offset += n;
    return static_cast<std::int64_t>(n);
  };
  source->rewind = [offset] {
    *offset = 0;
    return true;
  };
  HttpRequest request = form_request(grant, options);
  request.form.push_back(FormPart{"file", {}, options.filename, "text/plain", source});
  return send_form(http, std::move(request), source, options);
}

} // namespace iot::cloud
