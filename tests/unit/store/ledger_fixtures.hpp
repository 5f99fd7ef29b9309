// SPDX-License-Identifier: MIT
// What the store tests share: a temporary directory, triplet rows, an opened ledger.
#pragma once

#include "store/ledger.hpp"

#include <doctest/doctest.h>

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace iot::store::test {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/iot-ledger-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline std::vector<core::TripletRow> rows(int n, const std::string& pk = "a1B2c3D4e5F") {
  std::vector<core::TripletRow> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({pk,
                   "dev" + std::to_string(1000 + i),
                   "S3cretValue" + std::to_string(i) + "xxxxxxxxxxxxxxxxxxxx",
                   core::Scheme::device,
                   static_cast<std::size_t>(i + 1)});
  }
  return out;
}

inline std::unique_ptr<Ledger> open_or_die(const std::filesystem::path& path,
                                           const LedgerOptions& options = {}) {
  auto ledger = open_ledger(path, options);
  REQUIRE_MESSAGE(ledger.has_value(), (ledger ? "" : ledger.error().message));
  return std::move(*ledger);
}

inline const Actor k_actor{"station-1", "/dev/ttyUSB0", 4242};

} // namespace iot::store::test
