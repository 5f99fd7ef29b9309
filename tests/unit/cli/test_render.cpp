// SPDX-License-Identifier: MIT
#include "cli/board.hpp"
#include "cli/exit_codes.hpp"
#include "cli/progress.hpp"
#include "cli/render.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <sstream>

using namespace iot;
using core::Cell;
using core::OutputFormat;

namespace {

core::Table devices() {
  core::Table t;
  t.columns = {"device_name", "secret", "count", "online"};
  t.add_row({std::string("dev01"),
             core::Secret{"sLefbFmN9SYfnWLJTePG893XNuRVabcd"},
             std::int64_t{7},
             true});
  t.add_row({std::string("设备二"), Cell{}, std::int64_t{1234}, false});
  return t;
}

std::string render(const core::Table& t, OutputFormat f, bool show_secrets = false) {
  std::ostringstream os;
  cli::render(t, cli::RenderOptions{f, show_secrets, false}, os);
  return os.str();
}

} // namespace

TEST_SUITE("cli::render table") {
  TEST_CASE("columns align by display width, CJK counting two, numbers right-aligned") {
    const std::string expected = "DEVICE_NAME  SECRET     COUNT  ONLINE\n"
                                 "dev01        sLef\u2026abcd      7  true\n"
                                 "设备二       -           1234  false\n";
    CHECK(render(devices(), OutputFormat::table) == expected);
  }
  TEST_CASE("--show-secrets prints the secret in full") {
    CHECK(render(devices(), OutputFormat::table, true).find("sLefbFmN9SYfnWLJTePG893XNuRVabcd") !=
          std::string::npos);
    CHECK(render(devices(), OutputFormat::table, false).find("sLefbFmN9SYfn") == std::string::npos);
  }
  TEST_CASE("a single record prints as field/value lines") {
    core::Table t;
    t.single = true;
    t.columns = {"imei", "状态"};
    t.add_row({std::string("490154203237518"), Cell{}});
    CHECK(render(t, OutputFormat::table) == "imei  490154203237518\n状态  -\n");
  }
  TEST_CASE("an empty table prints its header") {
    core::Table t;
    t.columns = {"a", "bb"};
    CHECK(render(t, OutputFormat::table) == "A  BB\n");
  }
}

TEST_SUITE("cli::render csv") {
  TEST_CASE("header then rows, RFC 4180 quoting, secrets masked, no value empty") {
    core::Table t;
    t.columns = {"name", "note", "secret"};
    t.add_row(
        {std::string("a,b"), std::string("say \"x\"\nnext"), core::Secret{"0123456789abcdef"}});
    t.add_row({std::string("c"), Cell{}, Cell{}});
    CHECK(render(t, OutputFormat::csv) ==
          "name,note,secret\n\"a,b\",\"say \"\"x\"\"\nnext\",0123\u2026cdef\nc,,\n");
  }
}

TEST_SUITE("cli::render json") {
  TEST_CASE("json is an array of typed objects in column order") {
    const auto doc = nlohmann::json::parse(render(devices(), OutputFormat::json));
    REQUIRE(doc.is_array());
    REQUIRE(doc.size() == 2);
    CHECK(doc[0]["device_name"] == "dev01");
    CHECK(doc[0]["secret"] == "sLef\u2026abcd");
    CHECK(doc[0]["count"] == 7);
    CHECK(doc[0]["online"] == true);
    CHECK(doc[1]["secret"].is_null());
    CHECK(doc[1]["device_name"] == "设备二");
    const auto ordered = nlohmann::ordered_json::parse(render(devices(), OutputFormat::json));
    CHECK(ordered[0].begin().key() == "device_name");
  }
  TEST_CASE("a single record is an object") {
    core::Table t;
    t.single = true;
    t.columns = {"k"};
    t.add_row({std::string("v")});
    CHECK(nlohmann::json::parse(render(t, OutputFormat::json)) == nlohmann::json{{"k", "v"}});
  }
  TEST_CASE("invalid UTF-8 from a module is rendered as U+FFFD, the rest kept") {
    core::Table t;
    t.columns = {"raw"};
    t.add_row({std::string("\xff\xfe garbled")});
    const auto doc = nlohmann::json::parse(render(t, OutputFormat::json));
    CHECK(doc[0]["raw"] == "\xef\xbf\xbd\xef\xbf\xbd garbled"); // one U+FFFD per bad byte
    const auto line = nlohmann::json::parse(render(t, OutputFormat::ndjson));
    CHECK(line["raw"] == "\xef\xbf\xbd\xef\xbf\xbd garbled");
  }
  TEST_CASE("ndjson is one compact object per line") {
    const std::string text = render(devices(), OutputFormat::ndjson);
    std::istringstream in(text);
    std::string line;
    int lines = 0;
    while (std::getline(in, line)) {
      const auto obj = nlohmann::json::parse(line);
      CHECK(obj.contains("device_name"));
      ++lines;
    }
    CHECK(lines == 2);
    CHECK(text.find("\n ") == std::string::npos);
  }
}

TEST_SUITE("cli::exit_codes") {
  TEST_CASE("error kinds map to the documented exit codes") {
    CHECK(cli::exit_code_for(ErrorKind::failure) == 1);
    CHECK(cli::exit_code_for(ErrorKind::io) == 1);
    CHECK(cli::exit_code_for(ErrorKind::usage) == 2);
    CHECK(cli::exit_code_for(ErrorKind::config) == 2);
    CHECK(cli::exit_code_for(ErrorKind::serial) == 3);
    CHECK(cli::exit_code_for(ErrorKind::module) == 3);
    CHECK(cli::exit_code_for(ErrorKind::cloud) == 4);
    CHECK(cli::exit_code_for(ErrorKind::network) == 4);
    CHECK(cli::exit_code_for(ErrorKind::auth) == 4);
    CHECK(cli::exit_code_for(ErrorKind::partial) == 5);
    CHECK(cli::exit_code_for(ErrorKind::difference) == 6);
    CHECK(cli::exit_code_for(ErrorKind::interrupted) == 130);
  }
  TEST_CASE("the help text lists every code") {
    const auto help = cli::exit_code_help();
    for (const char* code : {"  0 ", "  1 ", "  2 ", "  3 ", "  4 ", "  5 ", "  6 ", "  130 "}) {
      CHECK(help.find(code) != std::string_view::npos);
    }
  }
}

TEST_SUITE("cli::TerminalProgress") {
  TEST_CASE("draws a bar on a TTY and clears it when finished") {
    std::ostringstream err;
    cli::TerminalProgress p("export", err, true, 10);
    p.set_total(4);
    p.advance(2);
    CHECK(p.line().starts_with("export [#####.....]  50% 2/4"));
    p.finish();
    const std::string drawn = err.str();
    CHECK(drawn.find("\rexport [") != std::string::npos);
    CHECK(drawn.back() == '\r');
  }
  TEST_CASE("prints nothing when stderr is not a TTY") {
    std::ostringstream err;
    {
      cli::TerminalProgress p("export", err, false);
      p.set_total(3);
      p.advance(3);
      p.set_detail("dev01");
    }
    CHECK(err.str().empty());
  }
  TEST_CASE("unknown total shows a counter") {
    std::ostringstream err;
    cli::TerminalProgress p("scan", err, false);
    p.advance(5);
    CHECK(p.line().starts_with("scan 5 "));
  }
}

TEST_CASE("board: aligned rows, a ticking elapsed column, cut long cells, nothing without a TTY") {
  std::ostringstream err;
  {
    cli::TerminalBoard board({"fixture", "state", "error"}, 2, err, false);
    board.set_row(0, {"1", "burned", ""}, std::nullopt);
    board.set_row(1,
                  {"2", "writing", std::string(100, 'x')},
                  std::chrono::steady_clock::now() - std::chrono::seconds(3));
    board.set_footer("burned 1");
    const auto lines = board.lines();
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].starts_with("fixture  state    error"));
    CHECK(lines[1] == "1        burned");
    CHECK(lines[2].starts_with("2        writing  xxxx"));
    CHECK(lines[2].find("…") != std::string::npos);
    CHECK(lines[2].find("3.0s") != std::string::npos);
    CHECK(lines[3] == "burned 1");
    board.finish();
  }
  CHECK(err.str().empty());
}

TEST_CASE("board: on a TTY the final frame stays on screen") {
  std::ostringstream err;
  cli::TerminalBoard board({"fixture", "state"}, 1, err, true);
  board.set_row(0, {"1", "burned"}, std::nullopt);
  board.set_footer("done");
  board.finish();
  const auto out = err.str();
  CHECK(out.find("burned") != std::string::npos);
  CHECK(out.rfind("done\n") == out.size() - 5);
}

TEST_SUITE("cli::render text lists") {
  TEST_CASE("a list is a JSON array, and joined in a table and in CSV") {
    core::Table t;
    t.single = true;
    t.columns = {"verdicts"};
    t.add_row({core::TextList::of({"IMEI not written", "weak signal (-105 dBm)"})});
    CHECK(render(t, OutputFormat::json) == "{\n  \"verdicts\": [\n    \"IMEI not written\",\n    "
                                           "\"weak signal (-105 dBm)\"\n  ]\n}\n");
    CHECK(render(t, OutputFormat::table) == "verdicts  IMEI not written; weak signal (-105 dBm)\n");
    CHECK(render(t, OutputFormat::csv) == "verdicts\nIMEI not written; weak signal (-105 dBm)\n");
    CHECK(core::TextList::of({"a", "", "b"}).items() == std::vector<std::string>{"a", "", "b"});
    CHECK(core::TextList::of({}).items().empty());
  }
}
