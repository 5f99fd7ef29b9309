// SPDX-License-Identifier: MIT
// Pool files (core/triplet_file.hpp) and the CSV line reader (core/csv.hpp): a corpus of good
// files of every format and of each kind of bad file, asserting rows, line numbers and messages,
// and that no message ever carries a secret.
#include "core/csv.hpp"
#include "core/triplet_file.hpp"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

using namespace iot;
using namespace iot::core;

namespace {

constexpr std::string_view k_pk = "a1BwAGV1234";
constexpr std::string_view k_pk2 = "a1OtherKey9";
constexpr std::string_view k_ds1 = "sLefbFmN9SYfnWLJTePG893XNuRV0001";
constexpr std::string_view k_ds2 = "sLefbFmN9SYfnWLJTePG893XNuRV0002";
constexpr std::string_view k_ds3 = "sLefbFmN9SYfnWLJTePG893XNuRV0003";
constexpr std::string_view k_ps = "Pr0dSecretXyZ123";

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

TripletFile parse_ok(std::string_view content,
                     Scheme scheme = Scheme::device,
                     std::size_t max_line_bytes = 4096) {
  auto r = parse_triplet_file(content, TripletParseOptions{scheme, max_line_bytes});
  REQUIRE_MESSAGE(r.has_value(), (r ? std::string() : r.error().message));
  return *r;
}

Error parse_err(std::string_view content, Scheme scheme = Scheme::device) {
  auto r = parse_triplet_file(content, TripletParseOptions{scheme, 4096});
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().kind == ErrorKind::usage);
  return r.error();
}

void check_row(const TripletRow& row,
               std::string_view pk,
               std::string_view dn,
               std::string_view secret,
               std::size_t line,
               Scheme scheme = Scheme::device) {
  CHECK(row.product_key == pk);
  CHECK(row.device_name == dn);
  CHECK(row.secret == secret);
  CHECK(row.line == line);
  CHECK(row.scheme == scheme);
}

// No problem message contains any of `secrets`.
void check_no_secret(const TripletFile& file, std::initializer_list<std::string_view> secrets) {
  for (const auto& p : file.problems) {
    for (auto s : secrets) {
      CHECK_MESSAGE(!contains(p.message, s), p.message);
    }
  }
}

std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) {
    out += p;
  }
  return out;
}

// "PK,DN,DS" as one CSV line.
std::string csv3(std::string_view a, std::string_view b, std::string_view c) {
  return cat({a, ",", b, ",", c});
}

} // namespace

TEST_SUITE("core::csv reader") {
  TEST_CASE("csv_split_line splits, trims outside quotes and undoes RFC 4180 quoting") {
    using V = std::vector<std::string>;
    CHECK(csv_split_line("a,b,c").value() == V{"a", "b", "c"});
    CHECK(csv_split_line("").value() == V{""});
    CHECK(csv_split_line("a,").value() == V{"a", ""});
    CHECK(csv_split_line(",,").value() == V{"", "", ""});
    CHECK(csv_split_line("  a \t, b ,c  ").value() == V{"a", "b", "c"});
    CHECK(csv_split_line(R"("a,b","c""d",e)").value() == V{"a,b", "c\"d", "e"});
    CHECK(csv_split_line(R"(  " x "  ,"")").value() == V{" x ", ""});
    CHECK(csv_split_line(R"(ab"c,d)").value() == V{"ab\"c", "d"});
    CHECK(csv_split_line(R"("""")").value() == V{"\""});
  }

  TEST_CASE("csv_split_line refuses an open quote or text after a closing quote, naming the "
            "field and not its text") {
    auto open = csv_split_line(R"(a,b,"secretvalue)");
    REQUIRE_FALSE(open);
    CHECK(open.error().kind == ErrorKind::usage);
    CHECK(contains(open.error().message, "field 3: a quote is still open at the end of the line"));
    CHECK_FALSE(contains(open.error().message, "secretvalue"));
    auto after = csv_split_line(R"(a,"secret"value,c)");
    REQUIRE_FALSE(after);
    CHECK(contains(after.error().message, "field 2: text after its closing double quote"));
    CHECK_FALSE(contains(after.error().message, "secret"));
  }

  TEST_CASE("csv_split_line reads back what csv_line writes") {
    const std::vector<std::vector<std::string>> cases = {
        {"a", "b"},
        {""},
        {"", ""},
        {"a,b", "c\"d", " lead", "trail ", "  ", "\"", "=cmd|' /C calc'!A0"},
        {"x", "", "y,", ",", "\"\""},
    };
    for (const auto& fields : cases) {
      auto back = csv_split_line(csv_line(fields));
      REQUIRE(back);
      CHECK(*back == fields);
    }
  }
}

TEST_SUITE("core::triplet_file good files") {
  TEST_CASE("the Aliyun console's batch download, extra columns ignored") {
    const std::string content = cat({"ProductKey,DeviceName,DeviceSecret,IotId\n",
                                     csv3(k_pk, "dev-0001", k_ds1),
                                     ",Q7uOhVRdZRRlDnTLv00100\n",
                                     csv3(k_pk, "862012345678903", k_ds2),
                                     ",X\n"});
    const auto f = parse_ok(content);
    CHECK(f.format == "aliyun-csv");
    CHECK(f.lines == 3);
    CHECK(f.problems.empty());
    REQUIRE(f.rows.size() == 2);
    check_row(f.rows[0], k_pk, "dev-0001", k_ds1, 2);
    check_row(f.rows[1], k_pk, "862012345678903", k_ds2, 3);
  }

  TEST_CASE("the Aliyun file without a header, with and without an extra column") {
    const auto f =
        parse_ok(cat({csv3(k_pk, "dev-0001", k_ds1), "\n", csv3(k_pk, "dev-0002", k_ds2)}));
    CHECK(f.format == "csv-no-header");
    CHECK(f.lines == 2);
    CHECK(f.problems.empty());
    REQUIRE(f.rows.size() == 2);
    check_row(f.rows[0], k_pk, "dev-0001", k_ds1, 1);
    check_row(f.rows[1], k_pk, "dev-0002", k_ds2, 2);

    const auto g = parse_ok(cat({csv3(k_pk, "dev-0001", k_ds1), ",note\n"}));
    CHECK(g.format == "csv-no-header");
    REQUIRE(g.rows.size() == 1);
    check_row(g.rows[0], k_pk, "dev-0001", k_ds1, 1);
  }

  TEST_CASE("our own CSV: any column order, any case, snake_case, unknown columns ignored") {
    const std::string content = cat({"device_secret,Device_Name,station,PRODUCT_KEY\n",
                                     k_ds1,
                                     ",dev-0001,st1,",
                                     k_pk,
                                     "\n",
                                     k_ds2,
                                     ",dev-0002,,",
                                     k_pk,
                                     "\n"});
    const auto f = parse_ok(content);
    CHECK(f.format == "csv");
    CHECK(f.problems.empty());
    REQUIRE(f.rows.size() == 2);
    check_row(f.rows[0], k_pk, "dev-0001", k_ds1, 2);
    check_row(f.rows[1], k_pk, "dev-0002", k_ds2, 3);

    // The Aliyun names in another order are "csv", not "aliyun-csv".
    const auto g =
        parse_ok(cat({"DeviceName,ProductKey,DeviceSecret\n", "dev-0001,", k_pk, ",", k_ds1}));
    CHECK(g.format == "csv");
    REQUIRE(g.rows.size() == 1);
    check_row(g.rows[0], k_pk, "dev-0001", k_ds1, 2);
  }

  TEST_CASE("what pool export writes (both secret columns, one empty) reads back per scheme") {
    const std::vector<std::string> header = {"product_key",
                                             "device_name",
                                             "device_secret",
                                             "product_secret",
                                             "state",
                                             "imei",
                                             "iccid",
                                             "station",
                                             "port",
                                             "attempts",
                                             "burned_at"};
    const std::string dev_csv = csv_line(header) + "\n" +
                                csv_line({std::string(k_pk),
                                          "dev-0001",
                                          std::string(k_ds1),
                                          "",
                                          "burned",
                                          "862012345678903",
                                          "",
                                          "st 1",
                                          "/dev/ttyUSB0",
                                          "1",
                                          "2026-01-01T00:00:00Z"}) +
                                "\n";
    const auto f = parse_ok(dev_csv, Scheme::device);
    CHECK(f.format == "csv");
    CHECK(f.problems.empty());
    REQUIRE(f.rows.size() == 1);
    check_row(f.rows[0], k_pk, "dev-0001", k_ds1, 2);
    // The same file read as a product pool: its ProductSecret column is empty.
    const auto g = parse_ok(dev_csv, Scheme::product);
    CHECK(g.rows.empty());
    REQUIRE(g.problems.size() == 1);
    CHECK(g.problems[0].message == "ProductSecret is missing (empty); every row needs ProductKey, "
                                   "DeviceName and ProductSecret");

    const std::string ndjson = cat({R"({"product_key":")",
                                    k_pk,
                                    R"(","device_name":"dev-0001","device_secret":"",)",
                                    R"("product_secret":")",
                                    k_ps,
                                    R"(","state":"available","attempts":"0"})",
                                    "\n"});
    const auto h = parse_ok(ndjson, Scheme::product);
    REQUIRE(h.rows.size() == 1);
    check_row(h.rows[0], k_pk, "dev-0001", k_ps, 1, Scheme::product);
    check_no_secret(g, {k_ds1});
  }

  TEST_CASE("product scheme: ProductSecret column, header-less order PK,PS,DN") {
    const auto f = parse_ok(cat({"product_key,device_name,product_secret\n",
                                 csv3(k_pk, "dev-0001", k_ps),
                                 "\n",
                                 csv3(k_pk, "dev-0002", k_ps),
                                 "\n"}),
                            Scheme::product);
    CHECK(f.format == "csv");
    REQUIRE(f.rows.size() == 2);
    check_row(f.rows[0], k_pk, "dev-0001", k_ps, 2, Scheme::product);
    check_row(f.rows[1], k_pk, "dev-0002", k_ps, 3, Scheme::product);

    const auto g = parse_ok(cat({csv3(k_pk, k_ps, "dev-0001"), "\n", csv3(k_pk, k_ps, "dev-0002")}),
                            Scheme::product);
    CHECK(g.format == "csv-no-header");
    CHECK(g.problems.empty());
    REQUIRE(g.rows.size() == 2);
    check_row(g.rows[0], k_pk, "dev-0001", k_ps, 1, Scheme::product);
    check_row(g.rows[1], k_pk, "dev-0002", k_ps, 2, Scheme::product);
  }

  TEST_CASE("a header with both secrets: the scheme picks which one is read") {
    const std::string content = cat({"ProductKey,DeviceName,DeviceSecret,ProductSecret\n",
                                     csv3(k_pk, "dev-0001", k_ds1),
                                     ",",
                                     k_ps,
                                     "\n"});
    const auto dev = parse_ok(content, Scheme::device);
    REQUIRE(dev.rows.size() == 1);
    check_row(dev.rows[0], k_pk, "dev-0001", k_ds1, 2, Scheme::device);
    CHECK(dev.format == "aliyun-csv");
    const auto prod = parse_ok(content, Scheme::product);
    REQUIRE(prod.rows.size() == 1);
    check_row(prod.rows[0], k_pk, "dev-0001", k_ps, 2, Scheme::product);
  }

  TEST_CASE("NDJSON: camelCase and other spellings, blank lines, unknown keys of any type") {
    const std::string content =
        cat({R"({"productKey":")",
             k_pk,
             R"(","deviceName":"dev-0001","deviceSecret":")",
             k_ds1,
             "\"}\n",
             "\n   \n",
             R"(  { "ProductKey" : ")",
             k_pk,
             R"(" , "device_name":"dev\u002d0002", )",
             R"("iotId":"Q7u","n":-1.5e+3,"ok":true,"x":null,"tags":[1,[],{"a":[false]}],)",
             R"("deviceSecret":")",
             k_ds2,
             "\"}  \r\n",
             R"({"product_key":")",
             k_pk,
             R"(","DEVICENAME":"dev-0003","device_secret":")",
             k_ds3,
             R"(","nick":"\u6d4b\ud83d\ude00\"\\\/\b\f\n\r\t"})"});
    const auto f = parse_ok(content);
    CHECK(f.format == "ndjson");
    CHECK(f.lines == 5);
    CHECK(f.problems.empty());
    REQUIRE(f.rows.size() == 3);
    check_row(f.rows[0], k_pk, "dev-0001", k_ds1, 1);
    check_row(f.rows[1], k_pk, "dev-0002", k_ds2, 4);
    check_row(f.rows[2], k_pk, "dev-0003", k_ds3, 5);
  }

  TEST_CASE("NDJSON with the product scheme") {
    const std::string content = cat({R"({"productKey":")",
                                     k_pk,
                                     R"(","productSecret":")",
                                     k_ps,
                                     R"(","deviceName":"dev-0001"})",
                                     "\n"});
    const auto f = parse_ok(content, Scheme::product);
    CHECK(f.format == "ndjson");
    REQUIRE(f.rows.size() == 1);
    check_row(f.rows[0], k_pk, "dev-0001", k_ps, 1, Scheme::product);
  }

  TEST_CASE("UTF-8 BOM, CRLF, LF and lone CR mixed, blank lines, no final newline") {
    const std::string content = cat({"\xEF\xBB\xBFProductKey,DeviceName,DeviceSecret\r\n",
                                     csv3(k_pk, "dev-0001", k_ds1),
                                     "\n",
                                     "\r\n",
                                     csv3(k_pk, "dev-0002", k_ds2),
                                     "\r",
                                     " \t\n",
                                     csv3(k_pk, "dev-0003", k_ds3)});
    const auto f = parse_ok(content);
    CHECK(f.format == "aliyun-csv");
    CHECK(f.lines == 6);
    CHECK(f.problems.empty());
    REQUIRE(f.rows.size() == 3);
    check_row(f.rows[0], k_pk, "dev-0001", k_ds1, 2);
    check_row(f.rows[1], k_pk, "dev-0002", k_ds2, 4);
    check_row(f.rows[2], k_pk, "dev-0003", k_ds3, 6);
  }

  TEST_CASE("a header-only file is fine: zero rows") {
    const auto f = parse_ok("ProductKey,DeviceName,DeviceSecret\n");
    CHECK(f.format == "aliyun-csv");
    CHECK(f.rows.empty());
    CHECK(f.problems.empty());
    CHECK(f.lines == 1);
    const auto g = parse_ok("\n\nproduct_key,device_name,device_secret\r\n\r\n");
    CHECK(g.format == "csv");
    CHECK(g.rows.empty());
    CHECK(g.lines == 4);
  }

  TEST_CASE("spaces around unquoted and quoted fields are trimmed, inside quotes they stay") {
    const std::string content = cat({"ProductKey , DeviceName,DeviceSecret\n",
                                     "  ",
                                     k_pk,
                                     " ,\tdev-0001 , ",
                                     k_ds1,
                                     "  \n",
                                     "\"",
                                     k_pk,
                                     "\", \"dev-0002\" ,\"",
                                     k_ds2,
                                     "\"\n",
                                     k_pk,
                                     ",\" dev-0003\",",
                                     k_ds3,
                                     "\n"});
    const auto f = parse_ok(content);
    REQUIRE(f.rows.size() == 2);
    check_row(f.rows[0], k_pk, "dev-0001", k_ds1, 2);
    check_row(f.rows[1], k_pk, "dev-0002", k_ds2, 3);
    REQUIRE(f.problems.size() == 1);
    CHECK(f.problems[0].line == 4);
    CHECK(f.problems[0].message.starts_with("DeviceName contains ' ' (space) at position 1"));
  }

  TEST_CASE("invalid UTF-8 in an ignored column does not matter") {
    const std::string content = cat({"ProductKey,DeviceName,DeviceSecret,Nickname\n",
                                     csv3(k_pk, "dev-0001", k_ds1),
                                     ",\xB2\xE2\xCA\xD4\xff\n"});
    const auto f = parse_ok(content);
    CHECK(f.problems.empty());
    REQUIRE(f.rows.size() == 1);
    check_row(f.rows[0], k_pk, "dev-0001", k_ds1, 2);
  }
}

TEST_SUITE("core::triplet_file whole-file problems") {
  TEST_CASE("an empty file, or one with only a BOM or blank lines") {
    for (std::string_view content : {std::string_view(""),
                                     std::string_view("\xEF\xBB\xBF"),
                                     std::string_view("\r\n\n  \t\r\n"),
                                     std::string_view("\r")}) {
      const auto e = parse_err(content);
      CHECK(e.message.starts_with("the file is empty; a pool file is CSV"));
    }
  }

  TEST_CASE("NUL bytes: binary or UTF-16 files") {
    const std::string content = cat({"ProductKey,DeviceName,DeviceSecret\r\n",
                                     csv3(k_pk, "dev-0001", k_ds1),
                                     "\r\n",
                                     std::string_view("dev\0x", 5),
                                     "\n"});
    const auto e = parse_err(content);
    CHECK(contains(e.message, "NUL byte on line 3"));
    CHECK(contains(e.message, "export the pool again as UTF-8 text"));
    const auto u16 = parse_err(std::string_view("\xff\xfeP\0K\0", 6));
    CHECK(contains(u16.message, "UTF-16"));
    CHECK(contains(u16.message, "save it as UTF-8"));
  }

  TEST_CASE("a first line that is neither a header nor a triplet") {
    const auto e = parse_err("pk,dn,ds\nx,y,z\n");
    CHECK(e.message.starts_with("line 1 is neither a header nor a triplet"));
    CHECK(contains(e.message, "ProductKey"));
    const auto bad_pk = parse_err(cat({"\n=cmd|' /C calc'!A0,dev-0001,", k_ds1, "\n"}));
    CHECK(bad_pk.message.starts_with("line 2 is neither a header nor a triplet"));
    CHECK_FALSE(contains(bad_pk.message, k_ds1));
    const auto semi = parse_err(cat({"ProductKey;DeviceName;DeviceSecret\n", k_pk, ";d;", k_ds1}));
    CHECK(contains(semi.message, "save the file as comma-separated CSV"));
    const auto few = parse_err(cat({k_pk, ",dev-0001\n"}));
    CHECK(few.message.starts_with("line 1 is neither"));
  }

  TEST_CASE("a header without the scheme's columns, or with one twice") {
    const auto no_ds = parse_err("ProductKey,DeviceName\n");
    CHECK(no_ds.message ==
          "the header on line 1 has no DeviceSecret column; it needs ProductKey, DeviceName and "
          "DeviceSecret (any order, any case, or product_key-style)");
    const auto ps_only = parse_err("ProductKey,DeviceName,ProductSecret\n");
    CHECK(contains(ps_only.message, "has no DeviceSecret column"));
    CHECK(contains(ps_only.message, "use --scheme product"));
    const auto ds_only = parse_err("ProductKey,DeviceName,DeviceSecret\n", Scheme::product);
    CHECK(contains(ds_only.message, "has no ProductSecret column"));
    CHECK(contains(ds_only.message, "drop --scheme product"));
    const auto no_pk = parse_err("DeviceName,DeviceSecret,Other\n");
    CHECK(contains(no_pk.message, "has no ProductKey column"));
    const auto twice = parse_err("ProductKey,DeviceName,device_name,DeviceSecret\n");
    CHECK(contains(twice.message, "names DeviceName twice (columns 2 and 3); keep one of them"));
  }

  TEST_CASE("a first line with a quoting error or over the length limit") {
    const auto quote = parse_err("ProductKey,\"DeviceName,DeviceSecret\n");
    CHECK(quote.message.starts_with("line 1, the first: field 2: a quote is still open"));
    const std::string huge(5000, 'A');
    const auto too_long = parse_err(huge + "\n");
    CHECK(contains(too_long.message, "line 1, the first, is 5000 bytes, over the limit of 4096"));
  }

  TEST_CASE("JSON that is not NDJSON objects") {
    const auto array = parse_err(cat({R"([{"productKey":")", k_pk, "\"}]\n"}));
    CHECK(contains(array.message, "starts a JSON array"));
    CHECK(contains(array.message, "jq -c '.[]' FILE"));
    const auto pretty = parse_err(
        cat({"{\n  \"productKey\": \"", k_pk, "\",\n  \"deviceSecret\": \"", k_ds1, "\"\n}\n"}));
    CHECK(pretty.message.starts_with("line 1 starts with '{' but is not one complete JSON object "
                                     "(invalid JSON at column 2: the line ends early)"));
    CHECK_FALSE(contains(pretty.message, k_ds1));
  }
}

TEST_SUITE("core::triplet_file row problems") {
  TEST_CASE("values outside the whitelist, spreadsheet injection, quoting leftovers") {
    const std::string content = cat({"ProductKey,DeviceName,DeviceSecret\n",
                                     csv3(k_pk, "dev-0001", "=cmd|' /C calc'!A0"),
                                     "\n", // 2
                                     csv3(k_pk, "=HYPERLINK(\"\"x\"\")", k_ds1),
                                     "\n", // 3
                                     k_pk,
                                     ",dev-0003,\"sLefb,FmN9SYfnWLJ\"\n", // 4: comma inside quotes
                                     k_pk,
                                     ",dev-0004,\"sLefb\"\"FmN9SYfnWLJ\"\n", // 5: doubled quote
                                     csv3(k_pk, "dev-0005", "+sLefbFmN9SYfnWLJ"),
                                     "\n", // 6
                                     csv3("a1Bw-AGV12", "dev-0006", k_ds2),
                                     "\n", // 7
                                     csv3(k_pk, "dev-0007", k_ds3),
                                     "\n"}); // 8: good
    const auto f = parse_ok(content);
    REQUIRE(f.rows.size() == 1);
    check_row(f.rows[0], k_pk, "dev-0007", k_ds3, 8);
    REQUIRE(f.problems.size() == 6);
    CHECK(f.problems[0].line == 2);
    CHECK(f.problems[0].message ==
          "DeviceSecret contains '=' at position 1; only letters, digits and _ - @ . : are allowed "
          "(a quote, comma or line break would corrupt the AT command)");
    CHECK(f.problems[1].line == 3);
    CHECK(f.problems[1].message.starts_with("DeviceName contains '=' at position 1"));
    CHECK(f.problems[2].line == 4);
    CHECK(f.problems[2].message.starts_with("DeviceSecret contains ',' at position 6"));
    CHECK(f.problems[3].line == 5);
    CHECK(f.problems[3].message.starts_with(
        "DeviceSecret contains '\"' (double quote) at position 6"));
    CHECK(f.problems[4].line == 6);
    CHECK(f.problems[4].message.starts_with("DeviceSecret contains '+' at position 1"));
    CHECK(f.problems[5].line == 7);
    CHECK(f.problems[5].message.starts_with("ProductKey contains '-' at position 5"));
    check_no_secret(f, {"cmd|", "calc", "sLefb", "FmN9SYfnWLJ", k_ds1, k_ds2});
  }

  TEST_CASE("missing fields, wrong field counts, lengths") {
    const std::string content = cat({"ProductKey,DeviceName,DeviceSecret\n",
                                     k_pk,
                                     ",dev-0001,\n", // 2 empty DS
                                     k_pk,
                                     ",dev-0002\n", // 3 too few
                                     csv3(k_pk, "dev-0003", k_ds1),
                                     ",extra\n", // 4 too many
                                     csv3(k_pk, "abc", k_ds2),
                                     "\n", // 5 DN short
                                     csv3(k_pk, std::string(33, 'd'), k_ds2),
                                     "\n", // 6 DN long
                                     csv3(k_pk, "dev-0007", std::string(65, 's')),
                                     "\n",
                                     ",dev-0008,",
                                     k_ds3,
                                     "\n", // 8 empty PK
                                     csv3(k_pk, "dev-0009", k_ds3),
                                     "\n"});
    const auto f = parse_ok(content);
    REQUIRE(f.rows.size() == 1);
    check_row(f.rows[0], k_pk, "dev-0009", k_ds3, 9);
    REQUIRE(f.problems.size() == 7);
    CHECK(f.problems[0].line == 2);
    CHECK(
        f.problems[0].message ==
        "DeviceSecret is missing (empty); every row needs ProductKey, DeviceName and DeviceSecret");
    CHECK(f.problems[1].line == 3);
    CHECK(f.problems[1].message.starts_with("the line has 2 fields where the header has 3;"));
    CHECK(f.problems[2].line == 4);
    CHECK(f.problems[2].message.starts_with("the line has 4 fields where the header has 3;"));
    CHECK(contains(f.problems[2].message, "a value holding a comma must be in double quotes"));
    CHECK(f.problems[3].message == "DeviceName has 3 characters; it must have 4-32 of letters, "
                                   "digits and _ - @ . :");
    CHECK(f.problems[4].message.starts_with("DeviceName has 33 characters"));
    CHECK(f.problems[5].message.starts_with("DeviceSecret has 65 characters; it must have 1-64"));
    CHECK(f.problems[6].line == 8);
    CHECK(f.problems[6].message.starts_with("ProductKey is missing (empty)"));
    check_no_secret(f, {k_ds1, k_ds2, k_ds3, std::string(20, 's')});
  }

  TEST_CASE("header-less rows are counted against the first line") {
    const auto f =
        parse_ok(cat({csv3(k_pk, "dev-0001", k_ds1), "\n", csv3(k_pk, "dev-0002", k_ds2), ",x\n"}));
    REQUIRE(f.rows.size() == 1);
    REQUIRE(f.problems.size() == 1);
    CHECK(f.problems[0].line == 2);
    CHECK(f.problems[0].message.starts_with("the line has 4 fields where the first line has 3"));
  }

  TEST_CASE("one ProductKey per file, each DeviceName once, naming the earlier line") {
    const std::string content = cat({csv3(k_pk, "dev-0001", "bad secret"),
                                     "\n", // 1: bad DS
                                     csv3(k_pk, "dev-0002", k_ds1),
                                     "\n", // 2: first valid
                                     csv3(k_pk2, "dev-0003", k_ds2),
                                     "\n", // 3: other PK
                                     csv3(k_pk, "dev-0002", k_ds3),
                                     "\n", // 4: repeat of 2
                                     csv3(k_pk, "dev-0001", k_ds3),
                                     "\n", // 5: repeat of 1
                                     csv3(k_pk, "DEV-0002", k_ds3),
                                     "\n"}); // 6: case differs
    const auto f = parse_ok(content);
    CHECK(f.format == "csv-no-header");
    REQUIRE(f.rows.size() == 2);
    check_row(f.rows[0], k_pk, "dev-0002", k_ds1, 2);
    check_row(f.rows[1], k_pk, "DEV-0002", k_ds3, 6);
    REQUIRE(f.problems.size() == 4);
    CHECK(f.problems[0].line == 1);
    CHECK(f.problems[0].message.starts_with("DeviceSecret contains ' ' (space) at position 4"));
    CHECK(f.problems[1].line == 3);
    CHECK(f.problems[1].message ==
          "ProductKey a1OtherKey9 differs from a1BwAGV1234 on line 2, the first valid row; a pool "
          "file holds one product — split the file by ProductKey");
    CHECK(f.problems[2].line == 4);
    CHECK(f.problems[2].message ==
          "DeviceName repeats line 2; each DeviceName may appear only once in a file — remove one "
          "of the two rows");
    CHECK(f.problems[3].line == 5);
    CHECK(f.problems[3].message.starts_with("DeviceName repeats line 1;"));
    check_no_secret(f, {"bad secret", k_ds1, k_ds2, k_ds3, "dev-000", "DEV-000"});
  }

  TEST_CASE("a product file read with the device scheme never shows the ProductSecret") {
    // Header-less PK,PS,DN read as PK,DN,DS: the ProductSecret lands in the DeviceName column
    // and repeats on every line.
    const auto f =
        parse_ok(cat({csv3(k_pk, k_ps, "dev-0001"), "\n", csv3(k_pk, k_ps, "dev-0002"), "\n"}));
    REQUIRE(f.problems.size() == 1);
    CHECK(f.problems[0].message.starts_with("DeviceName repeats line 1"));
    check_no_secret(f, {k_ps});
  }

  TEST_CASE("a 1 MB line is reported without being parsed, the lines after it still count") {
    const std::string content = cat({"ProductKey,DeviceName,DeviceSecret\n",
                                     csv3(k_pk, "dev-0001", std::string(1 << 20, 'S')),
                                     "\r\n",
                                     csv3(k_pk, "dev-0003", k_ds1)});
    const auto f = parse_ok(content);
    CHECK(f.lines == 3);
    REQUIRE(f.rows.size() == 1);
    check_row(f.rows[0], k_pk, "dev-0003", k_ds1, 3);
    REQUIRE(f.problems.size() == 1);
    CHECK(f.problems[0].line == 2);
    CHECK(f.problems[0].message ==
          "the line is 1048597 bytes, over the limit of 4096; a triplet line is under 200 bytes — "
          "check that this is a pool file");
    check_no_secret(f, {"SSSSSSSS"});
  }

  TEST_CASE("max_line_bytes is the caller's, 0 meaning no limit") {
    const std::string content =
        cat({"ProductKey,DeviceName,DeviceSecret\n", csv3(k_pk, "dev-0001", k_ds1), "\n"});
    const auto small = parse_ok(content, Scheme::device, 50);
    CHECK(small.rows.empty());
    REQUIRE(small.problems.size() == 1);
    CHECK(small.problems[0].message.starts_with("the line is 53 bytes, over the limit of 50"));
    const auto exact = parse_ok(content, Scheme::device, 53);
    CHECK(exact.rows.size() == 1);
    const auto unlimited = parse_ok(content, Scheme::device, 0);
    CHECK(unlimited.rows.size() == 1);
  }

  TEST_CASE("invalid UTF-8 in a triplet field is refused without echoing the bytes") {
    const std::string content = cat({"ProductKey,DeviceName,DeviceSecret\n",
                                     csv3(k_pk, "dev\xff\xfe", k_ds1),
                                     "\n",
                                     csv3(k_pk, "dev-0002", "\xc3\x28secret"),
                                     "\n"});
    const auto f = parse_ok(content);
    CHECK(f.rows.empty());
    REQUIRE(f.problems.size() == 2);
    CHECK(f.problems[0].message.starts_with("DeviceName contains 0xff at position 4"));
    CHECK(f.problems[1].message.starts_with("DeviceSecret contains 0xc3 at position 1"));
    for (const auto& p : f.problems) {
      CHECK_FALSE(contains(p.message, "\xff"));
      CHECK_FALSE(contains(p.message, "\xc3"));
    }
  }

  TEST_CASE("a repeated header (two files joined) and a broken quote on a row") {
    const std::string content = cat({"ProductKey,DeviceName,DeviceSecret\n",
                                     csv3(k_pk, "dev-0001", k_ds1),
                                     "\n",
                                     "ProductKey,DeviceName,DeviceSecret\n",
                                     k_pk,
                                     ",dev-0002,\"",
                                     k_ds2,
                                     "\n",
                                     k_pk,
                                     ",\"dev-0003\"x,",
                                     k_ds3,
                                     "\n"});
    const auto f = parse_ok(content);
    REQUIRE(f.rows.size() == 1);
    REQUIRE(f.problems.size() == 3);
    CHECK(f.problems[0].line == 3);
    CHECK(f.problems[0].message ==
          "the row holds column names, not a triplet (a repeated header? were two files "
          "joined?); remove it");
    CHECK(f.problems[1].line == 4);
    CHECK(
        f.problems[1].message.starts_with("field 3: a quote is still open at the end of the line"));
    CHECK(f.problems[2].line == 5);
    CHECK(f.problems[2].message.starts_with("field 2: text after its closing double quote"));
    check_no_secret(f, {k_ds2, k_ds3});
  }

  TEST_CASE("a row of column names is refused in NDJSON too, so an export reads back") {
    const std::string content = cat(
        {R"({"productKey":"ProductKey","deviceName":"device_name","deviceSecret":"Secret1"})",
         "\n",
         R"({"productKey":"ProductKey","deviceName":"device_name","deviceSecret":"DeviceSecret"})",
         "\n"});
    const auto f = parse_ok(content);
    REQUIRE(f.rows.size() == 1);
    check_row(f.rows[0], "ProductKey", "device_name", "Secret1", 1);
    REQUIRE(f.problems.size() == 1);
    CHECK(f.problems[0].line == 2);
    CHECK(f.problems[0].message.starts_with("the row holds column names, not a triplet"));
  }

  TEST_CASE(
      "NDJSON rows: broken JSON, not an object, non-string values, missing and repeated keys") {
    const std::string good1 = cat({R"({"productKey":")",
                                   k_pk,
                                   R"(","deviceName":"dev-0001","deviceSecret":")",
                                   k_ds1,
                                   "\"}"});
    const std::string content = cat({
        good1,
        "\n", // 1
        R"({"productKey":")",
        k_pk,
        R"(","deviceName":"dev-0002","deviceSecret":")",
        k_ds2,
        "\n",      // 2
        "[1,2]\n", // 3
        R"({"productKey":")",
        k_pk,
        R"(","deviceName":862012345678903,"deviceSecret":")",
        k_ds2,
        "\"}\n", // 4
        R"({"productKey":")",
        k_pk,
        R"(","deviceName":"dev-0005"})",
        "\n", // 5
        R"({"productKey":")",
        k_pk,
        R"(","deviceName":"dev-0006","productSecret":")",
        k_ps,
        "\"}\n", // 6
        R"({"productKey":")",
        k_pk,
        R"(","device_name":"dev-0007","DeviceName":"x"})",
        "\n", // 7
        R"({"productKey":")",
        k_pk,
        R"(","deviceName":"dev-0008","deviceSecret":"\u0000)",
        k_ds3,
        "\"}\n", // 8
        R"({"productKey":")",
        k_pk,
        R"(","deviceName":"dev-0009","deviceSecret":")",
        k_ds3,
        "\"} x\n", // 9
        R"({"a":"\ud800x"})",
        "\n", // 10
        R"({"a":"\udc00"})",
        "\n", // 11
        R"({"a":"\q"})",
        "\n",                      // 12
        "{\"a\":\"tab\there\"}\n", // 13
        R"({"a":01})",
        "\n", // 14
        R"({"a":tru})",
        "\n", // 15
        "{\"a\":",
        std::string(40, '['),
        std::string(40, ']'),
        "}\n", // 16
        R"({"productKey":")",
        k_pk,
        R"(","deviceName":"dev-0017","deviceSecret":")",
        k_ds3,
        "\"}\n", // 17
    });
    const auto f = parse_ok(content);
    CHECK(f.format == "ndjson");
    CHECK(f.lines == 17);
    REQUIRE(f.rows.size() == 2);
    check_row(f.rows[0], k_pk, "dev-0001", k_ds1, 1);
    check_row(f.rows[1], k_pk, "dev-0017", k_ds3, 17);
    REQUIRE(f.problems.size() == 15);
    const auto& p = f.problems;
    CHECK(p[0].line == 2);
    CHECK(p[0].message.starts_with("invalid JSON at column "));
    CHECK(contains(p[0].message, "the line ends early"));
    CHECK(p[1].line == 3);
    CHECK(p[1].message.starts_with("the line is not a JSON object"));
    CHECK(p[2].message == "the value of deviceName must be a JSON string (\"deviceName\": \"…\"), "
                          "not a number, object or literal");
    CHECK(p[3].message ==
          "the object has no DeviceSecret (key deviceSecret, DeviceSecret or device_secret); every "
          "object needs ProductKey, DeviceName and DeviceSecret");
    CHECK(contains(p[4].message, "use --scheme product"));
    CHECK(p[5].message.starts_with("the object has DeviceName twice"));
    CHECK(p[6].line == 8);
    CHECK(p[6].message.starts_with("DeviceSecret contains 0x00 at position 1"));
    CHECK(p[7].message.starts_with("invalid JSON at column "));
    CHECK(contains(p[7].message, "text after the object"));
    CHECK(contains(p[8].message, "high surrogate without a low one"));
    CHECK(contains(p[9].message, "low surrogate without a high one"));
    CHECK(contains(p[10].message, "unknown escape"));
    CHECK(contains(p[11].message, "control character inside a string"));
    CHECK(p[12].message == "invalid JSON at column 7: expected ',' or '}'");
    CHECK(p[13].message == "invalid JSON at column 6: expected a value");
    CHECK(p[14].line == 16);
    CHECK(contains(p[14].message, "nested deeper than 32 levels"));
    check_no_secret(f, {k_ds1, k_ds2, k_ds3, k_ps, "dev-000", "862012345678903"});
  }
}
