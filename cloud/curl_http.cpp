// SPDX-License-Identifier: MIT
// libcurl implementation of HttpClient (multi interface).
//
// Connection reuse: a CURLM handle keeps its connection cache after a transfer ends, so the
// client keeps a small pool of multi handles; each send()/send_all() borrows one for its whole
// duration. Concurrent callers therefore never share a multi handle (libcurl handles are not
// thread-safe) and each keeps its keep-alive connections warm for its next call.
#include "cloud/http.hpp"
#include "core/interrupt.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>

namespace iot::cloud {

namespace {

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct MultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using MultiHandle = std::unique_ptr<CURLM, MultiDeleter>;

// RAII for a curl header list; copy deleted.
class HeaderList {
public:
  HeaderList() = default;
  ~HeaderList() { curl_slist_free_all(m_list); }
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  HeaderList(HeaderList&& other) noexcept : m_list(std::exchange(other.m_list, nullptr)) {}
  HeaderList& operator=(HeaderList&&) = delete;

  bool append(const std::string& line) {
    curl_slist* grown = curl_slist_append(m_list, line.c_str());
    if (grown == nullptr) {
      return false;
    }
    m_list = grown;
    return true;
  }
  [[nodiscard]] curl_slist* get() const { return m_list; }

private:
  curl_slist* m_list = nullptr;
};

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Query strings may carry AccessKeyId/SecurityToken: never put them in a message.
std::string display_url(const std::string& url) {
  return url.substr(0, url.find('?'));
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.back() == '\r' || text.back() == '\n' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.remove_suffix(1);
  }
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  return text;
}

struct MimeDeleter {
  void operator()(curl_mime* mime) const { curl_mime_free(mime); }
};
using MimeHandle = std::unique_ptr<curl_mime, MimeDeleter>;

extern "C" std::size_t
on_source_read(char* buffer, std::size_t size, std::size_t count, void* arg) {
  auto* source = static_cast<BodySource*>(arg);
  const std::int64_t n = source->read(buffer, size * count);
  return n < 0 ? CURL_READFUNC_ABORT : static_cast<std::size_t>(n);
}

extern "C" int on_source_seek(void* arg, curl_off_t offset, int origin) {
  auto* source = static_cast<BodySource*>(arg);
  if (offset == 0 && origin == SEEK_SET && source->rewind && source->rewind()) {
    return CURL_SEEKFUNC_OK;
  }
  return CURL_SEEKFUNC_CANTSEEK;
}

struct Transfer {
  std::size_t index = 0;
  EasyHandle easy;
  HeaderList headers;
  MimeHandle mime;
  HttpResponse response;
  char error[CURL_ERROR_SIZE] = {};
  std::string what; // "POST https://host/path" for messages
};

extern "C" std::size_t on_body(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  transfer->response.body.append(data, size * count);
  return size * count;
}

extern "C" std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    // A new response (after 100 Continue or a redirect): keep only the last one's headers.
    transfer->response.headers.clear();
  } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    transfer->response.headers.emplace_back(std::string(trim(line.substr(0, colon))),
                                            std::string(trim(line.substr(colon + 1))));
  }
  return size * count;
}

class CurlHttpClient final : public HttpClient {
public:
  explicit CurlHttpClient(HttpOptions options) : m_options(std::move(options)) {
    if (m_options.user_agent.empty()) {
      m_options.user_agent = std::string("iotfleet/") + IOTFLEET_VERSION;
    }
    m_options.max_in_flight = std::max<std::size_t>(1, m_options.max_in_flight);
  }

  Result<HttpResponse> send(const HttpRequest& request) override {
    auto results = send_all({request});
    return std::move(results.front());
  }

  std::vector<Result<HttpResponse>> send_all(const std::vector<HttpRequest>& requests) override {
    std::vector<Result<HttpResponse>> results(requests.size(),
                                              fail(ErrorKind::failure, "request not run"));
    if (requests.empty()) {
      return results;
    }
    MultiHandle multi = borrow();
    if (!multi) {
      for (auto& r : results) {
        r = fail(ErrorKind::failure, "curl_multi_init failed");
      }
      return results;
    }
    run(multi.get(), requests, results);
    give_back(std::move(multi));
    return results;
  }

private:
  MultiHandle borrow() {
    {
      const std::lock_guard lock(m_mutex);
      if (!m_idle.empty()) {
        MultiHandle multi = std::move(m_idle.back());
        m_idle.pop_back();
        return multi;
      }
    }
    MultiHandle multi(curl_multi_init());
    if (multi) {
      curl_multi_setopt(
          multi.get(), CURLMOPT_MAXCONNECTS, static_cast<long>(m_options.max_in_flight));
    }
    return multi;
  }

  void give_back(MultiHandle multi) {
    static constexpr std::size_t k_max_idle = 32;
    const std::lock_guard lock(m_mutex);
    if (m_idle.size() < k_max_idle) {
      m_idle.push_back(std::move(multi));
    }
  }

  // Prepares one easy handle; an error means the request cannot even be tried.
  Result<std::unique_ptr<Transfer>> prepare(const HttpRequest& request, std::size_t index) {
    auto transfer = std::make_unique<Transfer>();
    transfer->index = index;
    transfer->what = request.method + " " + display_url(request.url);
    transfer->easy.reset(curl_easy_init());
    CURL* easy = transfer->easy.get();
    if (easy == nullptr) {
      return fail(ErrorKind::failure, transfer->what + ": curl_easy_init failed");
    }
    for (const auto& [name, value] : request.headers) {
      if (!transfer->headers.append(name + ": " + value)) {
        return fail(ErrorKind::failure, transfer->what + ": out of memory");
      }
    }
    // No "Expect: 100-continue" round trip for bodies.
    transfer->headers.append("Expect:");

    const auto timeout = request.timeout.count() > 0 ? request.timeout : m_options.timeout;
    curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer.get());
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer->error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer.get());
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, transfer.get());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->headers.get());
    curl_easy_setopt(easy, CURLOPT_USERAGENT, m_options.user_agent.c_str());
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(
        easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(m_options.connect_timeout.count()));
    // Verification is always on; there is deliberately no way to turn it off.
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!m_options.ca_file.empty()) {
      curl_easy_setopt(easy, CURLOPT_CAINFO, m_options.ca_file.c_str());
    }

    if (request.method == "GET") {
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else if (request.method == "HEAD") {
      curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else if (!request.form.empty()) {
      transfer->mime.reset(curl_mime_init(easy));
      for (const auto& part : request.form) {
        curl_mimepart* p = curl_mime_addpart(transfer->mime.get());
        curl_mime_name(p, part.name.c_str());
        if (part.source) {
          // Streamed: libcurl pulls the bytes through the source while it sends.
          curl_mime_data_cb(p,
                            static_cast<curl_off_t>(part.source->size),
                            on_source_read,
                            on_source_seek,
                            nullptr,
                            part.source.get());
          curl_mime_filename(p, part.filename.empty() ? "file" : part.filename.c_str());
          curl_mime_type(p,
                         part.content_type.empty() ? "application/octet-stream"
                                                   : part.content_type.c_str());
        } else {
          curl_mime_data(p, part.value.data(), part.value.size());
        }
      }
      curl_easy_setopt(easy, CURLOPT_MIMEPOST, transfer->mime.get());
    } else {
      if (request.method == "POST") {
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
      } else {
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      }
      // The request outlives the transfer (send_all holds it), so no copy is needed.
      curl_easy_setopt(
          easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
    }
    return transfer;
  }

  Error transport_error(const Transfer& transfer, CURLcode code, const HttpRequest& request) const {
    std::string detail = transfer.error[0] != '\0' ? std::string(transfer.error)
                                                   : std::string(curl_easy_strerror(code));
    const std::string prefix = transfer.what + ": ";
    switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return Error{ErrorKind::network, prefix + detail + std::string(k_not_sent_note)};
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Error{ErrorKind::usage, prefix + detail + " (check --endpoint)"};
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
      return Error{ErrorKind::config,
                   prefix + "cannot use CA file '" + m_options.ca_file + "': " + detail};
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: {
      std::string hint =
          m_options.ca_file.empty()
              ? "; if the server uses a private CA (the emulator), pass --ca-file FILE"
              : "; the certificate is not signed by the system CAs or '" + m_options.ca_file + "'";
      return Error{ErrorKind::auth,
                   prefix + "TLS certificate verification failed: " + detail + hint};
    }
    case CURLE_OPERATION_TIMEDOUT: {
      const auto timeout = request.timeout.count() > 0 ? request.timeout : m_options.timeout;
      return Error{ErrorKind::network,
                   prefix + "timed out (limit " + std::to_string(timeout.count()) +
                       " ms): " + detail};
    }
    default:
      return Error{ErrorKind::network, prefix + detail};
    }
  }

  void run(CURLM* multi,
           const std::vector<HttpRequest>& requests,
           std::vector<Result<HttpResponse>>& results) {
    std::vector<std::unique_ptr<Transfer>> active;
    std::size_t next = 0;
    while (next < requests.size() || !active.empty()) {
      while (active.size() < m_options.max_in_flight && next < requests.size()) {
        const std::size_t index = next++;
        auto transfer = prepare(requests[index], index);
        if (!transfer) {
          results[index] = fail(transfer.error());
          continue;
        }
        if (const CURLMcode mc = curl_multi_add_handle(multi, (*transfer)->easy.get());
            mc != CURLM_OK) {
          results[index] =
              fail(ErrorKind::failure, (*transfer)->what + ": " + curl_multi_strerror(mc));
          continue;
        }
        active.push_back(std::move(*transfer));
      }
      if (active.empty()) {
        break;
      }

      int still_running = 0;
      const CURLMcode mc = curl_multi_perform(multi, &still_running);
      if (mc != CURLM_OK) {
        for (auto& transfer : active) {
          results[transfer->index] =
              fail(ErrorKind::failure, transfer->what + ": " + curl_multi_strerror(mc));
          curl_multi_remove_handle(multi, transfer->easy.get());
        }
        active.clear();
        continue;
      }

      int queued = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
        if (msg->msg != CURLMSG_DONE) {
          continue;
        }
        CURL* easy = msg->easy_handle;
        const CURLcode code = msg->data.result;
        auto it = std::find_if(
            active.begin(), active.end(), [easy](const auto& t) { return t->easy.get() == easy; });
        if (it == active.end()) {
          continue;
        }
        Transfer& transfer = **it;
        if (code == CURLE_OK) {
          long status = 0;
          curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
          transfer.response.status = static_cast<int>(status);
          results[transfer.index] = std::move(transfer.response);
        } else {
          results[transfer.index] = fail(transport_error(transfer, code, requests[transfer.index]));
        }
        curl_multi_remove_handle(multi, easy);
        active.erase(it);
      }

      if (!active.empty() && still_running > 0) {
        if (core::interrupt_requested()) {
          // Ctrl-C: stop waiting. A request in flight may have been sent and even run, so its
          // answer counts as lost (network), never as a refusal.
          for (auto& t : active) {
            results[t->index] = fail(ErrorKind::network,
                                     t->what + ": interrupted while waiting for the answer (the "
                                               "request may have reached the server)");
            curl_multi_remove_handle(multi, t->easy.get());
          }
          active.clear();
          for (; next < requests.size(); ++next) {
            results[next] =
                fail(ErrorKind::interrupted,
                     "interrupted before the request was sent" + std::string(k_not_sent_note));
          }
          break;
        }
        curl_multi_poll(multi, nullptr, 0, 50, nullptr); // 50 ms: Ctrl-C is seen at once
      }
    }
  }

  HttpOptions m_options;
  std::mutex m_mutex;
  std::vector<MultiHandle> m_idle;
};

} // namespace

Result<std::unique_ptr<HttpClient>> make_curl_client(const HttpOptions& options) {
  global_init_once();
  if (!options.ca_file.empty()) {
    if (std::FILE* f = std::fopen(options.ca_file.c_str(), "rb")) {
      std::fclose(f);
    } else {
      return fail(ErrorKind::config, "cannot read CA file '" + options.ca_file + "'");
    }
  }
  return std::unique_ptr<HttpClient>(std::make_unique<CurlHttpClient>(options));
}

} // namespace iot::cloud
