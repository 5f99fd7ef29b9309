// SPDX-License-Identifier: MIT
#include "core/mask.hpp"

#include <algorithm>

namespace iot::core {

std::string mask_secret(std::string_view secret) {
  constexpr std::size_t k_shown = 4;
  constexpr std::size_t k_min_partial = 12;
  if (secret.empty()) {
    return {};
  }
  if (secret.size() < k_min_partial) {
    return "****";
  }
  std::string masked(secret.substr(0, k_shown));
  masked += "\u2026";
  masked += secret.substr(secret.size() - k_shown);
  return masked;
}

std::string mask_all(std::string_view text, const std::vector<std::string>& secrets) {
  std::vector<std::string_view> sorted;
  for (const auto& s : secrets) {
    if (!s.empty()) {
      sorted.emplace_back(s);
    }
  }
  std::sort(sorted.begin(), sorted.end(), [](auto a, auto b) { return a.size() > b.size(); });
  std::string out(text);
  for (auto secret : sorted) {
    const std::string replacement = mask_secret(secret);
    std::size_t pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), replacement);
      pos += replacement.size();
    }
  }
  return out;
}

std::vector<std::string> secret_like_tokens(std::string_view text) {
  constexpr std::size_t k_min = 16;
  constexpr std::size_t k_max = 64;
  const auto alnum = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  };
  std::vector<std::string> out;
  for (std::size_t i = 0; i < text.size();) {
    if (!alnum(text[i])) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    bool digit = false;
    bool letter = false;
    for (; i < text.size() && alnum(text[i]); ++i) {
      digit = digit || (text[i] >= '0' && text[i] <= '9');
      letter = letter || !(text[i] >= '0' && text[i] <= '9');
    }
    const std::size_t length = i - start;
    if (length >= k_min && length <= k_max && digit && letter) {
      out.emplace_back(text.substr(start, length));
    }
  }
  return out;
}

} // namespace iot::core
