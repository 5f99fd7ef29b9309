// SPDX-License-Identifier: MIT
// ota rollout's pure parts: wave specs and plans, the abort rule, durations, the journal.
#include "commands/ota_plan.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>

using namespace iot;
using namespace iot::commands::ota;

TEST_CASE("--waves: shares and counts, cumulative, increasing") {
  auto w = parse_waves("1%,10%,50%,100%");
  REQUIRE(w);
  CHECK(*w == std::vector<WaveSpec>{{true, 1}, {true, 10}, {true, 50}, {true, 100}});
  auto c = parse_waves("10, 100,all");
  REQUIRE(c);
  CHECK(*c == std::vector<WaveSpec>{{false, 10}, {false, 100}, {true, 100}});
  CHECK(!parse_waves(""));
  CHECK(!parse_waves("10%,5%"));
  CHECK(!parse_waves("0%"));
  CHECK(!parse_waves("101%"));
  CHECK(!parse_waves("1.5"));
  CHECK(parse_waves("10%,5%").error().kind == ErrorKind::usage);
}

TEST_CASE("wave plan: percent rounds up, counts cap, empty waves vanish") {
  const auto pct = *parse_waves("1%,10%,50%,100%");
  CHECK(plan_wave_ends(pct, 10'000) == std::vector<std::size_t>{100, 1000, 5000, 10000});
  CHECK(plan_wave_ends(pct, 50) == std::vector<std::size_t>{1, 5, 25, 50});
  CHECK(plan_wave_ends(pct, 3) == std::vector<std::size_t>{1, 2, 3});
  CHECK(plan_wave_ends(pct, 1) == std::vector<std::size_t>{1});
  CHECK(plan_wave_ends(pct, 0).empty());
  CHECK(plan_wave_ends(*parse_waves("20,100,50%,100%"), 1000) ==
        std::vector<std::size_t>{20, 100, 500, 1000});
  CHECK(plan_wave_ends(*parse_waves("10,100"), 50) == std::vector<std::size_t>{10, 50});
  // A plan short of 100 % leaves the rest out.
  CHECK(plan_wave_ends(*parse_waves("10%"), 200) == std::vector<std::size_t>{20});
  const auto waves = plan_waves(pct, 10'000);
  REQUIRE(waves.size() == 4);
  CHECK(waves[1].number == 2);
  CHECK(waves[1].begin == 100);
  CHECK(waves[1].end == 1000);
  CHECK(waves[3].begin == 5000);
  CHECK(waves[3].state == WaveState::pending);
}

TEST_CASE("abort rule: failed / finished ≥ rate once finished ≥ min") {
  const AbortRule rule{0.05, 20};
  CHECK(!abort_tripped(rule, 5, 14)); // 19 finished: not judged yet
  CHECK(abort_tripped(rule, 1, 19));  // 1/20 = 5 %: trips (≥)
  CHECK(!abort_tripped(rule, 1, 20)); // 1/21 < 5 %
  CHECK(!abort_tripped(rule, 0, 1000));
  CHECK(abort_tripped(rule, 50, 950));
  CHECK(!abort_tripped(rule, 49, 951));
  CHECK(!abort_tripped(AbortRule{1.0, 1}, 5, 5));
  CHECK(abort_tripped(AbortRule{1.0, 1}, 5, 0));
  CHECK(abort_tripped(AbortRule{0.0, 1}, 1, 100)); // rate 0: any failure
  CHECK(!abort_tripped(AbortRule{0.0, 1}, 0, 100));
}

TEST_CASE("rates") {
  CHECK(*parse_rate("5%") == doctest::Approx(0.05));
  CHECK(*parse_rate("0.3") == doctest::Approx(0.3));
  CHECK(!parse_rate("120%"));
  CHECK(!parse_rate("x"));
}

TEST_CASE("states are enums with the journal's and the platform's spellings") {
  CHECK(to_string(WaveState::creating) == "creating");
  CHECK(parse_wave_state("soaking").value() == WaveState::soaking);
  CHECK(parse_wave_state("done").error().message ==
        "unknown wave state 'done' (known: pending, creating, running, soaking, finished, "
        "aborted)");
  CHECK(parse_rollout_status("canceled").value() == RolloutStatus::canceled);
  CHECK_FALSE(parse_rollout_status("Running"));
  CHECK(to_string(TaskStatus::in_progress) == "IN_PROGRESS");
  int open = 0;
  for (auto t : k_task_statuses) {
    open += is_open(t) ? 1 : 0;
  }
  CHECK(open == 4);
  CHECK_FALSE(is_open(TaskStatus::succeeded));
}

TEST_CASE("the journal round-trips and is written 0600") {
  RolloutState s;
  s.rollout_id = "rabc";
  s.product_key = "pk";
  s.firmware_id = "fw";
  s.dest_version = "V2";
  s.selection = "devices from d.txt";
  s.options.max_per_minute = 100;
  s.options.retry_interval = 10;
  s.options.retry_count = 2;
  s.options.abort = {0.05, 20};
  s.options.wave_soak_s = 600;
  s.devices = {{"a", "hwrevA"}, {"b", ""}, {"c\"q", "hwrevB"}};
  s.waves = plan_waves(*parse_waves("1,all"), 3);
  s.waves[0].state = WaveState::finished;
  s.waves[0].job_id = "J1";
  s.waves[0].counts = {1, 1, 0, 0, 0, 0};
  s.waves[1].state = WaveState::creating;
  s.status = RolloutStatus::running;
  auto back = state_from_json(state_to_json(s));
  REQUIRE(back);
  CHECK(*back == s);

  const auto path = std::filesystem::temp_directory_path() / "iotfleet-ota-state-unit.json";
  REQUIRE(save_state(path, s));
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto loaded = load_state(path);
  REQUIRE(loaded);
  CHECK(*loaded == s);
  std::filesystem::remove(path);

  CHECK(!state_from_json("{}"));
  CHECK(!state_from_json("not json"));
  auto broken = state_to_json(s);
  broken.replace(broken.find("\"end\": 3"), 8, "\"end\": 9");
  auto bad = state_from_json(broken);
  REQUIRE(!bad);
  CHECK(bad.error().message.find("out of the plan") != std::string::npos);
}

TEST_CASE("--max-per-minute: one rate for all waves or one per --waves entry") {
  auto one = parse_push_rates("1000", 4);
  REQUIRE(one);
  CHECK(*one == std::vector<int>{1000});
  auto each = parse_push_rates("100, 1000,5000", 3);
  REQUIRE(each);
  CHECK(*each == std::vector<int>{100, 1000, 5000});
  CHECK(!parse_push_rates("100,1000", 3));
  CHECK(parse_push_rates("100,1000", 3).error().message.find("2 rates for 3 waves") !=
        std::string::npos);
  CHECK(!parse_push_rates("9", 1));
  CHECK(!parse_push_rates("10001", 1));
  CHECK(!parse_push_rates("12.5", 1));
  CHECK(!parse_push_rates("", 1));
  CHECK(!parse_push_rates("100,,200", 3));

  // A wave that vanishes takes its rate along: 2 devices, "1,2,all" has only two waves.
  const auto waves = plan_waves(*parse_waves("1,2,all"), 2, {10, 20, 30});
  REQUIRE(waves.size() == 2);
  CHECK(waves[0].max_per_minute == 10);
  CHECK(waves[1].max_per_minute == 20);
  const auto same = plan_waves(*parse_waves("50%,100%"), 10, {500});
  CHECK(same[0].max_per_minute == 500);
  CHECK(same[1].max_per_minute == 500);
  CHECK_FALSE(plan_waves(*parse_waves("100%"), 10)[0].max_per_minute.has_value());
}

TEST_CASE("--tag KEY=VALUE") {
  auto t = parse_tag_filter("hwrev=B");
  REQUIRE(t);
  CHECK(*t == TagFilter{"hwrev", "B"});
  auto eq = parse_tag_filter("url=a=b");
  REQUIRE(eq);
  CHECK(*eq == TagFilter{"url", "a=b"});
  CHECK(!parse_tag_filter("hwrev"));
  CHECK(!parse_tag_filter("=B"));
  CHECK(!parse_tag_filter("hwrev="));
}

TEST_CASE("--query: the product's condition first unless the condition names it or has an OR") {
  auto s = device_query("status = 'ONLINE'", "a1PK");
  REQUIRE(s);
  CHECK(s->where == "product_key = 'a1PK' AND status = 'ONLINE'");
  CHECK(s->filters_product);
  CHECK(device_query_page(*s, 50, 50) ==
        "SELECT * FROM device WHERE product_key = 'a1PK' AND status = 'ONLINE' LIMIT 50,50");
  auto own = device_query("product_key = 'a1Other' AND nickname LIKE 'x%'", "a1PK");
  REQUIRE(own);
  CHECK(own->where == "product_key = 'a1Other' AND nickname LIKE 'x%'");
  auto either = device_query("device_name = 'a' OR device_name = 'b'", "a1PK");
  REQUIRE(either);
  CHECK(either->where == "device_name = 'a' OR device_name = 'b'");
  CHECK_FALSE(either->filters_product);
  // "or" inside a value or a word is not an OR.
  auto word = device_query("nickname = 'floor2' AND device_name LIKE 'door%'", "a1PK");
  REQUIRE(word);
  CHECK(word->where.starts_with("product_key = 'a1PK' AND "));
  CHECK(!device_query("", "a1PK"));
  CHECK(!device_query("SELECT * FROM device WHERE status = 'ONLINE'", "a1PK"));
  CHECK(!device_query("status = 'ONLINE' LIMIT 10", "a1PK"));
  CHECK(!device_query("status = 'ONLINE' ORDER BY gmt_create", "a1PK"));
}

TEST_CASE("the journal keeps a dynamic rollout and per-wave rates") {
  RolloutState s;
  s.rollout_id = "rdyn";
  s.product_key = "pk";
  s.firmware_id = "fw";
  s.dest_version = "V2";
  s.selection = "dynamic: group g at V1";
  s.dynamic = true;
  s.src_version = "V1";
  s.group_id = "G123";
  s.group_type = "LINK_PLATFORM_DYNAMIC";
  s.options.multi_module = true;
  s.devices = {{"a", ""}};
  s.waves = plan_waves(*parse_waves("100%"), 1, {250});
  auto back = state_from_json(state_to_json(s));
  REQUIRE(back);
  CHECK(*back == s);
  CHECK(back->waves[0].max_per_minute == 250);

  // A journal written before per-wave rates: each wave takes the rollout's rate.
  RolloutState old = s;
  old.dynamic = false;
  old.options.max_per_minute = 600;
  auto text = state_to_json(old);
  const auto at = text.find("\"max_per_minute\": 250");
  REQUIRE(at != std::string::npos);
  text.replace(at, std::string("\"max_per_minute\": 250,").size(), "");
  auto migrated = state_from_json(text);
  REQUIRE(migrated);
  CHECK(migrated->waves[0].max_per_minute == 600);
}
