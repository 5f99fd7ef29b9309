// SPDX-License-Identifier: MIT
// Secrets files (core/secret_file.hpp): snapshots in every accepted format, devices files, the
// index (find, find_many, one or two parsing threads), and errors that name the line and the fix
// without ever holding a secret.
#include "core/secret_file.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

using namespace iot;
using namespace iot::core;

namespace {

constexpr std::string_view k_pk = "a1B2c3D4e5F";
constexpr std::string_view k_ds1 = "sLefbFmN9SYfnWLJTePG893XNuRV0001";
constexpr std::string_view k_ds2 = "sLefbFmN9SYfnWLJTePG893XNuRV0002";
constexpr std::string_view k_ds3 = "sLefbFmN9SYfnWLJTePG893XNuRV0003";

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

// Snapshots and parsed rows point into the text they came from: keep every test's text alive
// for the whole run (the callers pass temporaries).
const std::string& keep(const std::string& content) {
  static std::deque<std::string> texts;
  return texts.emplace_back(content);
}

SecretSnapshot snapshot_ok(const std::string& text, unsigned threads = 1) {
  const auto& content = keep(text);
  auto r = SecretSnapshot::parse(content, threads);
  REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().message));
  return std::move(*r);
}

Error snapshot_err(const std::string& content, unsigned threads = 1) {
  auto r = SecretSnapshot::parse(content, threads);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().kind == ErrorKind::usage);
  for (const auto s : {k_ds1, k_ds2, k_ds3}) {
    CHECK_FALSE(contains(r.error().message, s)); // never a secret
  }
  return r.error();
}

std::string csv3() {
  return "product_key,device_name,device_secret,status,iot_id\n" + std::string(k_pk) + ",dev0001," +
         std::string(k_ds1) + ",ONLINE,id1\n" + std::string(k_pk) + ",dev0002," +
         std::string(k_ds2) + ",UNACTIVE,id2\n" + std::string(k_pk) + ",dev0003," +
         std::string(k_ds3) + ",OFFLINE,id3\n";
}

void check_three(const SecretSnapshot& s) {
  CHECK(s.size() == 3);
  CHECK(s.product_key() == k_pk);
  const auto* e = s.find("dev0002");
  REQUIRE(e);
  CHECK(e->device_name() == "dev0002");
  CHECK(e->device_secret() == k_ds2);
  CHECK(e->status == DeviceStatus::unactive);
  CHECK(s.find("dev0004") == nullptr);
  CHECK(s.find("dev000") == nullptr);
}

// Lines of a devices file through the parser: the records, or the first error "N: message".
struct DevicesResult {
  std::vector<SecretRecord> rows;
  std::vector<std::string> names;
  std::string error;
  std::string format;
};

DevicesResult parse_devices(const std::string& text) {
  const auto& content = keep(text);
  DevicesResult out;
  SecretRecordParser parser(SecretFileRole::devices);
  SecretRecord r;
  auto done = for_each_line(content, 1, [&](std::string_view line, std::size_t n) -> Status {
    auto got = parser.parse(line, r);
    if (!got) {
      return fail(got.error().context(std::to_string(n)));
    }
    if (*got) {
      out.rows.push_back(r);
      out.names.emplace_back(r.device_name);
    }
    return {};
  });
  if (!done) {
    out.error = done.error().message;
  }
  out.format = std::string(parser.format());
  return out;
}

// A big snapshot (over the 4 MB two-thread threshold): rows i = 0..n-1, DN "d%07u".
std::string big_snapshot(std::size_t n, std::size_t duplicate_of = SIZE_MAX) {
  std::string out = "product_key,device_name,device_secret,status,iot_id\n";
  char line[160];
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t dn = (i + 1 == n && duplicate_of != SIZE_MAX) ? duplicate_of : i;
    std::snprintf(line,
                  sizeof line,
                  "%s,d%07zu,S%031zu,%s,iot-id-of-the-device-%07zu-padding-padding\n",
                  std::string(k_pk).c_str(),
                  dn,
                  i,
                  i % 7 == 0 ? "OFFLINE" : "ONLINE",
                  i);
    out += line;
  }
  return out;
}

} // namespace

TEST_SUITE("core::secret_file") {
  TEST_CASE("for_each_line: LF, CRLF, a last line without LF") {
    std::vector<std::string> lines;
    std::vector<std::size_t> numbers;
    auto n = for_each_line("a\r\nb\n\nc", 5, [&](std::string_view l, std::size_t i) -> Status {
      lines.emplace_back(l);
      numbers.push_back(i);
      return {};
    });
    REQUIRE(n);
    CHECK(*n == 8);
    CHECK(lines == std::vector<std::string>{"a", "b", "", "c"});
    CHECK(numbers == std::vector<std::size_t>{5, 6, 7, 8});
  }

  TEST_CASE("snapshot: secrets export's CSV") {
    const auto s = snapshot_ok(csv3());
    CHECK(s.format() == "csv");
    check_three(s);
  }

  TEST_CASE("snapshot: secrets export --format json, and the brackets on the rows' lines") {
    const std::string o1 =
        R"({"product_key":"a1B2c3D4e5F","device_name":"dev0001","device_secret":")" +
        std::string(k_ds1) + R"(","status":"ONLINE","iot_id":"id1"})";
    const std::string o2 =
        R"({"product_key":"a1B2c3D4e5F","device_name":"dev0002","device_secret":")" +
        std::string(k_ds2) + R"(","status":"UNACTIVE","iot_id":"id2"})";
    const std::string o3 =
        R"({"product_key":"a1B2c3D4e5F","device_name":"dev0003","device_secret":")" +
        std::string(k_ds3) + R"(","status":"OFFLINE","iot_id":null})";
    const auto a = snapshot_ok("[\n" + o1 + ",\n" + o2 + ",\n" + o3 + "\n]\n");
    CHECK(a.format() == "json");
    check_three(a);
    const auto b = snapshot_ok("  [" + o1 + ",\r\n" + o2 + ",\r\n" + o3 + "]");
    CHECK(b.format() == "json");
    check_three(b);
    const auto c = snapshot_ok(o1 + "\n" + o2 + "\n\n" + o3 + "\n");
    CHECK(c.format() == "ndjson");
    check_three(c);
  }

  TEST_CASE("snapshot: JSON escapes, other keys and values are read or skipped") {
    const std::string row = R"({"extra":{"a":[1,2,{"b":"}"}]},"n":1.5e3,"ok":true,)"
                            R"("device_name":"dev\u0030001","DeviceSecret":")" +
                            std::string(k_ds1) + R"(","productKey":"a1B2c3D4e5F"})";
    const auto s = snapshot_ok(row + "\n");
    REQUIRE(s.find("dev0001"));
    CHECK(s.find("dev0001")->device_secret() == k_ds1);
    CHECK(s.product_key() == k_pk);
  }

  TEST_CASE("snapshot: the console's batch CSV, with or without its header") {
    const std::string rows = std::string(k_pk) + ",dev0001," + std::string(k_ds1) + "\n" +
                             std::string(k_pk) + ",dev0002," + std::string(k_ds2) + "\n";
    const auto a = snapshot_ok("ProductKey,DeviceName,DeviceSecret\n" + rows);
    CHECK(a.format() == "aliyun-csv");
    CHECK(a.size() == 2);
    CHECK(a.find("dev0001")->status == DeviceStatus::unknown);
    const auto b = snapshot_ok(rows);
    CHECK(b.format() == "csv-no-header");
    CHECK(b.find("dev0002")->device_secret() == k_ds2);
  }

  TEST_CASE("snapshot: BOM, CRLF, quoting, blank lines, columns in any order") {
    const std::string content = "\xEF\xBB\xBF"
                                "Status , DEVICE_SECRET,iot_id,deviceName\r\n"
                                "\r\n"
                                "ONLINE,\"" +
                                std::string(k_ds1) +
                                "\",\"id \"\"quoted\"\", with comma\",  dev0001 \r\n"
                                "  \t\r\n"
                                "OFFLINE , " +
                                std::string(k_ds2) + " ,\"x\",\"dev0002\"\r\n";
    const auto s = snapshot_ok(content);
    CHECK(s.format() == "csv");
    CHECK(s.size() == 2);
    CHECK(s.product_key().empty());
    REQUIRE(s.find("dev0001"));
    CHECK(s.find("dev0001")->device_secret() == k_ds1);
    CHECK(s.find("dev0002")->device_secret() == k_ds2);
    CHECK(s.find("dev0002")->status == DeviceStatus::offline);
  }

  TEST_CASE("snapshot errors name the line and the fix, never a secret") {
    CHECK(contains(snapshot_err("").message, "is empty"));
    CHECK(contains(snapshot_err("\n  \n").message, "is empty"));
    CHECK(contains(snapshot_err("product_key,device_name,device_secret\n").message,
                   "holds no device"));
    const auto unknown = snapshot_err("pk,dn,ds\nx,y,z\n");
    CHECK(contains(unknown.message, "line 1: the first line is not one of the formats"));
    CHECK(contains(unknown.message, "secrets export"));
    CHECK(contains(snapshot_err("device_name,status\ndev0001,ONLINE\n").message,
                   "no device_secret (DeviceSecret) column"));
    CHECK(contains(snapshot_err("device_name,device_name,device_secret\n").message, "twice"));
    CHECK(contains(snapshot_err(std::string("dev\0ice_name", 12) + "\n").message, "NUL byte"));

    const std::string header = "product_key,device_name,device_secret,status\n";
    const std::string ok1 = std::string(k_pk) + ",dev0001," + std::string(k_ds1) + ",ONLINE\n";
    const auto missing = snapshot_err(header + ok1 + std::string(k_pk) + ",dev0002\n");
    CHECK(contains(missing.message, "line 3: has 2 fields but the header needs at least 3"));
    const auto empty = snapshot_err(header + ok1 + std::string(k_pk) + ",dev0002,,ONLINE\n");
    CHECK(contains(empty.message, "line 3: the DeviceSecret (device_secret) is empty"));
    CHECK(contains(empty.message, "secrets export -O FILE"));
    const auto bad_char =
        snapshot_err(header + std::string(k_pk) + ",dev0001," + std::string(k_ds1) + "=,ONLINE\n");
    CHECK(contains(bad_char.message, "line 2: DeviceSecret contains '='"));
    const auto quote =
        snapshot_err(header + std::string(k_pk) + ",\"dev0001," + std::string(k_ds1) + ",ONLINE\n");
    CHECK(contains(quote.message, "line 2: field 2: a quote is still open"));
    const auto dup = snapshot_err(header + ok1 + std::string(k_pk) + ",dev0002," +
                                  std::string(k_ds2) + ",ONLINE\n" + std::string(k_pk) +
                                  ",dev0001," + std::string(k_ds3) + ",ONLINE\n");
    CHECK(contains(dup.message, "line 4: the DeviceName repeats line 2"));
    const auto two_pk =
        snapshot_err(header + ok1 + "a1OtherKey9,dev0002," + std::string(k_ds2) + ",ONLINE\n");
    CHECK(contains(two_pk.message, "line 3: ProductKey a1OtherKey9 differs from line 2's"));
    CHECK(contains(two_pk.message, "one product"));
    const auto pretty = snapshot_err("[\n  {\n    \"device_name\": \"dev0001\",\n");
    CHECK(contains(pretty.message, "line 2: is not a JSON object on one line"));
    CHECK(contains(pretty.message, "jq -c"));
    const auto no_secret = snapshot_err("{\"device_name\":\"dev0001\"}\n");
    CHECK(contains(no_secret.message, "line 1: has no \"device_secret\""));
    const auto not_text =
        snapshot_err("{\"device_name\":12345,\"device_secret\":\"" + std::string(k_ds1) + "\"}\n");
    CHECK(contains(not_text.message, "\"device_name\" is not text"));
    const auto broken = snapshot_err("{\"device_name\":\"dev0001\",\"device_secret\":\"" +
                                     std::string(k_ds1) + "\" \"status\":\"x\"}\n");
    CHECK(contains(broken.message, "invalid JSON"));
  }

  TEST_CASE("devices: a list of DeviceNames") {
    const auto d = parse_devices("dev0001\n  dev0002 \n\ndev0003");
    CHECK(d.error.empty());
    CHECK(d.format == "names");
    CHECK(d.names == std::vector<std::string>{"dev0001", "dev0002", "dev0003"});
    CHECK(d.rows[0].device_secret.empty());
    const auto comma = parse_devices("dev0001\ndev0002," + std::string(k_ds1) + "\n");
    CHECK(contains(comma.error, "2: has a comma"));
    CHECK_FALSE(contains(comma.error, k_ds1));
    const auto bad = parse_devices("dev0001\nde\n");
    CHECK(contains(bad.error, "2: DeviceName has 2 characters"));
  }

  TEST_CASE("devices: records read from modules (module info, pool export, NDJSON)") {
    // module info -o csv --show-secrets: a module without credentials has no device_name.
    const auto info =
        parse_devices("port,module,imei,sn,layout,product_key,device_name,device_secret,verdicts\n"
                      "/dev/pts/3,luat,862012345678903," +
                      std::string(k_ds1) + ",secret,,862012345678903," + std::string(k_ds1) +
                      ",ok\n"
                      "/dev/pts/4,luat,862012345678911,,secret,,,,no credentials stored\n");
    REQUIRE(info.error.empty());
    REQUIRE(info.rows.size() == 2);
    CHECK(info.rows[0].device_name == "862012345678903");
    CHECK(info.rows[0].device_secret == k_ds1);
    CHECK_FALSE(info.rows[0].name_from_imei);
    CHECK(info.rows[1].device_name == "862012345678911");
    CHECK(info.rows[1].device_secret.empty());
    CHECK(info.rows[1].name_from_imei);

    // pool export -O F: product_key, device_name, device_secret, product_secret, state, …
    const auto pool = parse_devices(
        "product_key,device_name,device_secret,product_secret,state,imei\n" + std::string(k_pk) +
        ",dev0001," + std::string(k_ds1) + ",,burned,862012345678903\n");
    REQUIRE(pool.error.empty());
    CHECK(pool.format == "csv");
    CHECK(pool.rows[0].product_key == k_pk);
    CHECK(pool.rows[0].device_name == "dev0001"); // the DeviceName, not the IMEI

    const auto nd = parse_devices("{\"deviceName\":\"dev0001\",\"deviceSecret\":\"" +
                                  std::string(k_ds1) + "\"}\n{\"device_name\":\"dev0002\"}\n");
    REQUIRE(nd.error.empty());
    CHECK(nd.format == "ndjson");
    CHECK(nd.rows[0].device_secret == k_ds1);
    CHECK(nd.rows[1].device_secret.empty());

    // A row may leave out the secret (a presence / status check).
    const auto short_row = parse_devices("device_name,device_secret,status\ndev0001\n");
    REQUIRE(short_row.error.empty());
    CHECK(short_row.names == std::vector<std::string>{"dev0001"});
    CHECK(short_row.rows[0].device_secret.empty());

    const auto names_only = parse_devices("DeviceName\ndev0001\n");
    REQUIRE(names_only.error.empty());
    CHECK(names_only.format == "csv");
    CHECK(names_only.names == std::vector<std::string>{"dev0001"});
  }

  TEST_CASE("devices errors: masked secrets, rows without a name, a header without one") {
    const auto masked = parse_devices("device_name,device_secret\ndev0001,sLef…0001\n");
    CHECK(contains(masked.error, "2: the DeviceSecret (device_secret) is masked"));
    CHECK(contains(masked.error, "--show-secrets"));
    const auto stars = parse_devices("device_name,device_secret\ndev0001,****\n");
    CHECK(contains(stars.error, "is masked"));
    const auto no_name = parse_devices("device_name,device_secret\n," + std::string(k_ds1) + "\n");
    CHECK(contains(no_name.error, "2: the DeviceName (device_name) is empty"));
    CHECK_FALSE(contains(no_name.error, k_ds1));
    const auto header = parse_devices("port,device_secret\nx,y\n");
    CHECK(contains(header.error, "1: the header has no device_name"));
  }

  TEST_CASE("find_many agrees with find, with one and two parsing threads") {
    const std::size_t n = 70'000; // ~5.6 MB: over the two-thread threshold
    const std::string content = big_snapshot(n);
    REQUIRE(content.size() > (4u << 20));
    const auto one = snapshot_ok(content, 1);
    const auto two = snapshot_ok(content, 2);
    CHECK(one.size() == n);
    CHECK(two.size() == n);
    CHECK(two.product_key() == k_pk);
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < n + 5000; i += 3) {
      char dn[16];
      std::snprintf(dn, sizeof dn, "d%07zu", i); // the last 5000 are absent
      keys.emplace_back(dn);
    }
    keys.emplace_back("d");
    keys.emplace_back("");
    std::vector<std::string_view> names(keys.begin(), keys.end());
    std::vector<const SnapshotEntry*> found(names.size());
    two.find_many(names, found);
    std::size_t hits = 0;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const SnapshotEntry* expected = two.find(names[i]);
      CHECK(found[i] == expected);
      if (expected) {
        ++hits;
        CHECK(expected->device_name() == names[i]);
        const auto* other = one.find(names[i]);
        REQUIRE(other);
        CHECK(other->device_secret() == expected->device_secret());
        CHECK(other->status == expected->status);
      }
    }
    CHECK(hits == (n + 2) / 3);
  }

  TEST_CASE("two threads: errors and duplicates across the halves keep their line numbers") {
    const std::size_t n = 70'000;
    const auto dup = snapshot_err(big_snapshot(n, 5), 2);
    CHECK(
        contains(dup.message, "line " + std::to_string(n + 1) + ": the DeviceName repeats line 7"));
    std::string bad = big_snapshot(n);
    const auto at = bad.rfind("ONLINE"); // on the last line or close: in the second half
    bad.insert(bad.find(',', bad.rfind('\n', at)) + 1, "\"");
    const auto err = snapshot_err(bad, 2);
    CHECK(contains(err.message, "a quote is still open"));
    std::size_t line = 1;
    for (std::size_t i = 0; i < bad.rfind('\n', at); ++i) {
      line += bad[i] == '\n' ? 1 : 0;
    }
    CHECK(contains(err.message, "line " + std::to_string(line + 1) + ":"));
  }
}
