// SPDX-License-Identifier: MIT
// The emulator's subset of QueryDeviceBySQL (sim/device_sql.hpp): parsing, its limits, LIKE, and
// matching with AND before OR.
#include "sim/device_sql.hpp"

#include <doctest/doctest.h>

#include <map>

using namespace iot;
using namespace iot::sim::cloud;

namespace {

// A device as field → values.
SqlFieldValues device(std::map<std::string, std::vector<std::string>> fields) {
  return [fields = std::move(fields)](const std::string& f) {
    auto it = fields.find(f);
    return it == fields.end() ? std::vector<std::string>{} : it->second;
  };
}

bool matches(std::string_view sql, const SqlFieldValues& d) {
  auto q = parse_device_sql(sql);
  REQUIRE_MESSAGE(q, (q ? "" : q.error().message));
  return sql_matches(*q, d);
}

} // namespace

TEST_CASE("device SQL: a statement with ORDER BY and LIMIT") {
  auto q = parse_device_sql("select * FROM device where product_key = \"a1PK\" AND status != "
                            "'OFFLINE' order by gmt_create DESC limit 100, 20");
  REQUIRE(q);
  REQUIRE(q->any_of.size() == 1);
  REQUIRE(q->any_of[0].size() == 2);
  CHECK(q->any_of[0][0].field == "product_key");
  CHECK(q->any_of[0][0].values == std::vector<std::string>{"a1PK"});
  CHECK(q->any_of[0][1].op == SqlOp::ne);
  CHECK(q->order_by == "gmt_create");
  CHECK(q->descending);
  CHECK(q->offset == 100);
  CHECK(q->limit == 20);
  auto d = parse_device_sql("SELECT * FROM device WHERE status = 'ONLINE'");
  REQUIRE(d);
  CHECK(d->limit == 20); // no LIMIT = LIMIT 20
  CHECK(d->offset == 0);
}

TEST_CASE("device SQL: the platform's limits and what the subset refuses") {
  CHECK(!parse_device_sql("SELECT * FROM device WHERE status = 'ONLINE' LIMIT 51"));
  CHECK(!parse_device_sql("SELECT * FROM device WHERE status = 'ONLINE' LIMIT 9990,20"));
  CHECK(parse_device_sql("SELECT * FROM device WHERE status = 'ONLINE' LIMIT 9950,50"));
  CHECK(!parse_device_sql("SELECT * FROM device WHERE a = '1'"));
  CHECK(!parse_device_sql("SELECT count(*) FROM device WHERE status = 'ONLINE'"));
  CHECK(!parse_device_sql("SELECT * FROM device"));
  CHECK(!parse_device_sql("SELECT * FROM device WHERE (status = 'ONLINE')"));
  CHECK(!parse_device_sql("SELECT * FROM device WHERE status = ONLINE"));
  CHECK(!parse_device_sql("SELECT * FROM device WHERE status = 'ONLINE"));
  CHECK(!parse_device_sql("SELECT * FROM device WHERE status > '1'"));
  CHECK(!parse_device_sql("SELECT * FROM device WHERE status = 'ONLINE' ORDER BY nickname"));
  std::string six = "SELECT * FROM device WHERE status = 'a'";
  for (int i = 0; i < 5; ++i) {
    six += " OR status = 'a'";
  }
  auto too_many = parse_device_sql(six);
  REQUIRE(!too_many);
  CHECK(too_many.error().message.find("5 conditions") != std::string::npos);
  auto long_one =
      parse_device_sql("SELECT * FROM device WHERE nickname = '" + std::string(400, 'x') + "'");
  REQUIRE(!long_one);
  CHECK(long_one.error().message.find("400") != std::string::npos);
  auto unknown = parse_device_sql("SELECT * FROM device WHERE colour = 'red'");
  REQUIRE(!unknown);
  CHECK(unknown.error().message.find("unknown field colour") != std::string::npos);
}

TEST_CASE("device SQL: LIKE wildcards") {
  CHECK(sql_like("hwrev%", "hwrevB"));
  CHECK(sql_like("%B", "hwrevB"));
  CHECK(sql_like("%rev%", "hwrevB"));
  CHECK(sql_like("hw_evB", "hwrevB"));
  CHECK(sql_like("%", ""));
  CHECK(sql_like("a%b%c", "aXXbYYc"));
  CHECK_FALSE(sql_like("a%b%c", "aXXbYY"));
  CHECK_FALSE(sql_like("hwrev", "hwrevB"));
  CHECK_FALSE(sql_like("HWREV%", "hwrevB")); // case-sensitive
}

TEST_CASE("device SQL: AND binds tighter than OR - tags and groups and IN") {
  const auto b = device({{"status", {"ONLINE"}},
                         {"nickname", {"hwrevB"}},
                         {"tag.site", {"north"}},
                         {"group_id", {"G1", "G2"}}});
  CHECK(matches("SELECT * FROM device WHERE status = 'OFFLINE' AND nickname = 'x' OR "
                "tag.site = 'north'",
                b));
  CHECK_FALSE(matches("SELECT * FROM device WHERE status = 'OFFLINE' AND nickname = 'hwrevB'", b));
  CHECK(
      matches("SELECT * FROM device WHERE group_id = 'G2' AND status IN ('ONLINE', 'OFFLINE')", b));
  CHECK_FALSE(matches("SELECT * FROM device WHERE group_id = 'G3'", b));
  CHECK(matches("SELECT * FROM device WHERE group_id != 'G3'", b));
  // A tag the device lacks matches no condition, != included.
  CHECK_FALSE(matches("SELECT * FROM device WHERE tag.floor = '2'", b));
  CHECK_FALSE(matches("SELECT * FROM device WHERE tag.floor != '2'", b));
  CHECK(matches("SELECT * FROM device WHERE tag.site <> 'south'", b));
  CHECK(matches("SELECT * FROM device WHERE nickname LIKE 'hwrev%'", b));
}
