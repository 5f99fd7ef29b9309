// SPDX-License-Identifier: MIT
// Test doubles for the cloud layer: a scripted HttpClient and a manual clock.
#pragma once

#include "cloud/http.hpp"
#include "cloud/openapi.hpp"
#include "cloud/signer.hpp"

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace iot::cloud::test {

// Answers from a queue of scripted results, or from a handler when the queue is empty.
// Records every request. Thread-safe (call_all sends from several threads).
class FakeHttpClient final : public HttpClient {
public:
  using Handler = std::function<Result<HttpResponse>(const HttpRequest&)>;

  FakeHttpClient& reply(int status, std::string body) {
    const std::lock_guard lock(m_mutex);
    m_script.push_back(HttpResponse{status, {}, std::move(body)});
    return *this;
  }
  FakeHttpClient& reply_error(ErrorKind kind, std::string message) {
    const std::lock_guard lock(m_mutex);
    m_script.push_back(fail(kind, std::move(message)));
    return *this;
  }
  void set_handler(Handler handler) { m_handler = std::move(handler); }

  Result<HttpResponse> send(const HttpRequest& request) override {
    {
      const std::lock_guard lock(m_mutex);
      m_requests.push_back(request);
      if (!m_script.empty()) {
        auto next = std::move(m_script.front());
        m_script.pop_front();
        return next;
      }
    }
    if (m_handler) {
      return m_handler(request);
    }
    return fail(ErrorKind::failure, "FakeHttpClient: no scripted response left");
  }

  std::vector<HttpRequest> requests() const {
    const std::lock_guard lock(m_mutex);
    return m_requests;
  }
  std::size_t count() const {
    const std::lock_guard lock(m_mutex);
    return m_requests.size();
  }

private:
  mutable std::mutex m_mutex;
  std::deque<Result<HttpResponse>> m_script;
  std::vector<HttpRequest> m_requests;
  Handler m_handler;
};

// Steady clock that only moves when told to (or when something sleeps on it).
class ManualClock {
public:
  std::chrono::steady_clock::time_point now() const {
    const std::lock_guard lock(m_mutex);
    return m_now;
  }
  void advance(std::chrono::nanoseconds d) {
    const std::lock_guard lock(m_mutex);
    m_now += d;
    m_sleeps.push_back(d);
  }
  std::vector<std::chrono::nanoseconds> sleeps() const {
    const std::lock_guard lock(m_mutex);
    return m_sleeps;
  }
  SteadyClock clock() {
    return [this] { return now(); };
  }
  Sleeper sleeper() {
    return [this](std::chrono::nanoseconds d) { advance(d); };
  }

private:
  mutable std::mutex m_mutex;
  std::chrono::steady_clock::time_point m_now{std::chrono::hours(1000)};
  std::vector<std::chrono::nanoseconds> m_sleeps;
};

inline Params form_of(const HttpRequest& request) {
  auto params = parse_form(request.body);
  return params ? *params : Params{};
}

} // namespace iot::cloud::test
