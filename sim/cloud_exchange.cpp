// SPDX-License-Identifier: MIT
#include "sim/cloud_exchange.hpp"

#include "core/text.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <iostream>

namespace iot::sim::cloud {

namespace {

using json = nlohmann::ordered_json;

bool contains_nocase(std::string_view text, std::string_view part) {
  return core::to_lower(text).find(part) != std::string::npos;
}

json masked(const json& value) {
  if (value.is_string()) {
    return "***";
  }
  if (value.is_number()) {
    return 0;
  }
  if (value.is_boolean()) {
    return false;
  }
  if (value.is_object() || value.is_array()) {
    json out = value;
    for (auto& item : out) {
      item = masked(item);
    }
    return out;
  }
  return value; // null
}

} // namespace

bool common_parameter(std::string_view name) {
  static constexpr std::array<std::string_view, 11> k_common{"Action",
                                                             "Format",
                                                             "Version",
                                                             "AccessKeyId",
                                                             "Signature",
                                                             "SignatureMethod",
                                                             "SignatureVersion",
                                                             "SignatureNonce",
                                                             "Timestamp",
                                                             "SecurityToken",
                                                             "RegionId"};
  for (const std::string_view c : k_common) {
    if (name == c) {
      return true;
    }
  }
  return false;
}

bool secret_name(std::string_view name) {
  return contains_nocase(name, "secret") || contains_nocase(name, "password") ||
         name == "Signature" || name == "SecurityToken";
}

void mask_secrets(json& value) {
  if (value.is_object()) {
    for (auto& [key, member] : value.items()) {
      if (secret_name(key)) {
        member = masked(member);
      } else {
        mask_secrets(member);
      }
    }
  } else if (value.is_array()) {
    for (auto& item : value) {
      mask_secrets(item);
    }
  }
}

std::string_view exchange_client(std::string_view user_agent) {
  return user_agent.starts_with("iotfleet/") ? "iotfleet" : "other";
}

std::string exchange_line(const Exchange& e) {
  json line = json::object();
  line["action"] = e.action;
  line["client"] = exchange_client(e.user_agent);
  line["user_agent"] = e.user_agent;
  line["method"] = e.method;
  json params = json::object();
  if (e.params != nullptr) {
    for (const auto& [name, value] : *e.params) {
      if (common_parameter(name)) {
        continue;
      }
      params[name] = secret_name(name) ? json("***") : json(value);
    }
  }
  line["params"] = std::move(params);
  line["status"] = e.status;
  line["code"] = e.code;
  line["delivery"] = e.delivery;
  json body = json::parse(e.body, nullptr, false);
  if (body.is_discarded()) {
    line["response_text"] = "(not JSON, " + std::to_string(e.body.size()) + " bytes)";
  } else {
    mask_secrets(body);
    line["response"] = std::move(body);
  }
  // Invalid UTF-8 in a parameter is replaced rather than failing the dump.
  return line.dump(-1, ' ', false, json::error_handler_t::replace);
}

ExchangeLog::~ExchangeLog() {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

Result<std::unique_ptr<ExchangeLog>> ExchangeLog::open(const std::string& path) {
  auto log = std::make_unique<ExchangeLog>();
  log->m_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log->m_fd < 0) {
    return fail(ErrorKind::io, "--exchange-log " + path + ": " + std::strerror(errno));
  }
  log->m_path = path;
  return log;
}

void ExchangeLog::write(const Exchange& exchange) {
  std::string line = exchange_line(exchange);
  line.push_back('\n');
  const std::lock_guard lock(m_mutex);
  const char* data = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(m_fd, data, left);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      if (!m_failed) {
        m_failed = true;
        std::cerr << "iotfleet-sim cloud: exchange log " << m_path << ": " << std::strerror(errno)
                  << " (further lines are lost)\n";
      }
      return;
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

} // namespace iot::sim::cloud
