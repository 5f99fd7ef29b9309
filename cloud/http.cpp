// SPDX-License-Identifier: MIT
#include "cloud/http.hpp"

#include <algorithm>
#include <cctype>

namespace iot::cloud {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

} // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) {
      return value;
    }
  }
  return std::nullopt;
}

std::vector<Result<HttpResponse>> HttpClient::send_all(const std::vector<HttpRequest>& requests) {
  std::vector<Result<HttpResponse>> results;
  results.reserve(requests.size());
  for (const auto& request : requests) {
    results.push_back(send(request));
  }
  return results;
}

} // namespace iot::cloud
