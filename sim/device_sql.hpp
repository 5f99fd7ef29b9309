// SPDX-License-Identifier: MIT
// The subset of QueryDeviceBySQL's SQL-like statements the cloud emulator accepts
// (docs/cloud-emulator.md "Device search"): pure parsing and matching, no database.
//
//   SELECT * FROM device WHERE cond {AND|OR cond} [ORDER BY gmt_create|gmt_modified|active_time
//   [ASC|DESC]] [LIMIT k | LIMIT n,k]
//
// At most 400 characters and 5 conditions, no parentheses (the platform does not nest); AND
// binds tighter than OR. cond is `field op value` with op =, !=, <>, LIKE ('%' any run) or
// IN ('a', 'b'); values are quoted with ' or ". k ≤ 50, n + k ≤ 10 000, no LIMIT = LIMIT 20.
// Fields: product_key, device_name, nickname, status, group_id, ota_module.version (the
// default module's), and tag.KEY (the device's tag KEY; UNVERIFIED spelling).
#pragma once

#include "core/error.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iot::sim::cloud {

enum class SqlOp { eq, ne, like, in };

struct SqlCondition {
  std::string field; // lower case; tag.KEY keeps the key's case
  SqlOp op = SqlOp::eq;
  std::vector<std::string> values; // one, or the IN list
};

struct SqlQuery {
  // OR of AND-groups: a device matches when every condition of one group holds.
  std::vector<std::vector<SqlCondition>> any_of;
  std::string order_by; // "" = the emulator's device order
  bool descending = false;
  std::int64_t offset = 0;
  std::int64_t limit = 20;
};

inline constexpr std::size_t k_sql_max_chars = 400;
inline constexpr std::size_t k_sql_max_conditions = 5;
inline constexpr std::int64_t k_sql_max_page = 50;
inline constexpr std::int64_t k_sql_max_rows = 10'000;

// ErrorKind::usage with a message saying what is wrong and where.
[[nodiscard]] Result<SqlQuery> parse_device_sql(std::string_view text);

// SQL LIKE: '%' matches any run (also empty), '_' one character; case-sensitive.
[[nodiscard]] bool sql_like(std::string_view pattern, std::string_view text);

// A field's values for a device: one for most fields, one per group for group_id, none for a
// tag the device lacks. =, LIKE and IN hold when one value does; != when there are values and
// none is equal (a missing tag matches no condition at all).
using SqlFieldValues = std::function<std::vector<std::string>(const std::string& field)>;

[[nodiscard]] bool sql_matches(const SqlQuery& query, const SqlFieldValues& values_of);

} // namespace iot::sim::cloud
