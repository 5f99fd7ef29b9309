// SPDX-License-Identifier: MIT
// Fleet rules (diagnose/fleet.hpp), each with a positive and a negative case: identity conflict
// vs reboot, keepalive inference (too long / too short / no pattern), keepalive clusters by /16,
// frequent resets / DISCONNECT, auth failures, never online, filters, the same answers on a log
// sorted newest first, and the HTML report.
#include "diagnose/fleet.hpp"
#include "diagnose/html_report.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace iot;
using namespace iot::diagnose;

namespace {

constexpr std::int64_t k_t0 = 1704067200000; // 2024-01-01T00:00:00Z
constexpr std::int64_t k_s = 1000;

struct Line {
  std::int64_t t;
  std::string dn;
  std::string content;
  std::string ip;
};

std::string csv_of(const Line& l) {
  return std::to_string(l.t) + ",a1B2c3D4e5F," + l.dn + "," + l.content + "," + l.ip;
}

// Runs the analyzer over the lines (sorted by time; newest first with `descending`).
FleetReport analyze(std::vector<Line> lines,
                    FleetOptions opts = {},
                    bool descending = false,
                    const std::vector<std::string>& listed = {}) {
  std::stable_sort(
      lines.begin(), lines.end(), [](const Line& a, const Line& b) { return a.t < b.t; });
  if (descending) {
    std::reverse(lines.begin(), lines.end());
  }
  LogParser parser;
  FleetAnalyzer a(std::move(opts));
  LogRecord r;
  REQUIRE(parser.parse("time,ProductKey,DeviceName,content,clientIp", r));
  std::size_t n = 1;
  for (const auto& l : lines) {
    const std::string text = csv_of(l);
    auto got = parser.parse(text, r);
    REQUIRE(got);
    REQUIRE(*got);
    a.add(r, ++n, text);
  }
  for (const auto& d : listed) {
    a.add_listed(d);
  }
  if (!listed.empty()) {
    a.set_device_list_given();
  }
  return a.finish();
}

std::vector<std::string> subjects(const FleetReport& rep, std::string_view kind) {
  std::vector<std::string> out;
  for (const auto& f : rep.findings) {
    if (f.kind == kind) {
      out.push_back(f.subject);
    }
  }
  return out;
}

const Finding* finding(const FleetReport& rep, std::string_view kind, std::string_view subject) {
  for (const auto& f : rep.findings) {
    if (f.kind == kind && f.subject == subject) {
      return &f;
    }
  }
  return nullptr;
}

// Two modules with one identity: they take turns every few minutes, each kicking the other.
void duplicate(std::vector<Line>& out, const std::string& dn, int rounds) {
  std::int64_t t = k_t0;
  out.push_back({t, dn, "online", "10.1.0.1"});
  for (int i = 0; i < rounds; ++i) {
    t += 300 * k_s;
    const bool b = i % 2 == 0;
    out.push_back({t, dn, "online", b ? "10.2.0.2" : "10.1.0.1"});
    out.push_back({t + 200, dn, "Kicked by the same device", b ? "10.1.0.1" : "10.2.0.2"});
  }
}

// One module restarting while online: reconnects from the same IP, its old session is kicked.
void reboots(std::vector<Line>& out, const std::string& dn, int n) {
  std::int64_t t = k_t0;
  out.push_back({t, dn, "online", "10.3.0.3"});
  for (int i = 0; i < n; ++i) {
    t += 3600 * k_s;
    out.push_back({t, dn, "online", "10.3.0.3"});
    out.push_back({t + 300, dn, "Kicked by the same device", "10.3.0.3"});
  }
}

// Sessions ending in "Keepalive timeout" `idle_s` (+ jitter) after connecting.
void keepalive(std::vector<Line>& out,
               const std::string& dn,
               const std::string& ip,
               int idle_s,
               int n,
               int jitter_s = 20) {
  std::int64_t t = k_t0;
  for (int i = 0; i < n; ++i) {
    out.push_back({t, dn, "online", ip});
    t += (idle_s + (i * 7) % (jitter_s + 1)) * k_s;
    out.push_back({t, dn, "Keepalive timeout", ip});
    t += 10 * k_s;
  }
}

void sessions(std::vector<Line>& out,
              const std::string& dn,
              const std::string& ip,
              const std::string& reason,
              int n,
              std::int64_t every_s) {
  std::int64_t t = k_t0;
  for (int i = 0; i < n; ++i) {
    out.push_back({t, dn, "online", ip});
    t += every_s * k_s;
    out.push_back({t, dn, reason, ip});
    t += 5 * k_s;
  }
}

} // namespace

TEST_CASE("identity conflict: alternating client IPs with kicks is a duplicate identity") {
  std::vector<Line> lines;
  duplicate(lines, "dupdev01", 6);
  const auto rep = analyze(lines);
  const auto* f = finding(rep, "duplicate-identity", "dupdev01");
  REQUIRE(f);
  CHECK(f->confidence == Confidence::high);
  CHECK(f->client_ips.size() == 2);
  CHECK_FALSE(f->evidence.empty());
  CHECK(f->evidence.front().starts_with("line "));
  CHECK(f->fix.find("IMEI") != std::string::npos);
}

TEST_CASE("identity conflict: a device rebooting from one IP is not a duplicate") {
  std::vector<Line> lines;
  reboots(lines, "rebooter", 4);
  const auto rep = analyze(lines);
  CHECK(subjects(rep, "duplicate-identity").empty());
  const auto* f = finding(rep, "reboots-while-online", "rebooter");
  REQUIRE(f);
  CHECK(f->confidence == Confidence::low);
  CHECK(f->fix.find("§6 case 2") != std::string::npos);
}

TEST_CASE("identity conflict: IP changes without kicks (a roaming module) are not a duplicate") {
  std::vector<Line> lines;
  std::int64_t t = k_t0;
  for (int i = 0; i < 8; ++i) {
    lines.push_back({t, "roamer", "online", i % 2 ? "10.8.0.1" : "10.9.0.1"});
    t += 600 * k_s;
    lines.push_back({t, "roamer", "Connection reset by peer", i % 2 ? "10.8.0.1" : "10.9.0.1"});
    t += 30 * k_s;
  }
  const auto rep = analyze(lines);
  CHECK(subjects(rep, "duplicate-identity").empty());
}

TEST_CASE("identity conflict: a placeholder IMEI as DeviceName with a kick is a duplicate") {
  std::vector<Line> lines;
  lines.push_back({k_t0, "352099001761481", "online", "10.1.0.1"});
  lines.push_back({k_t0 + 60 * k_s, "352099001761481", "online", "10.1.0.1"});
  lines.push_back(
      {k_t0 + 60 * k_s + 100, "352099001761481", "Kicked by the same device", "10.1.0.1"});
  const auto rep = analyze(lines);
  const auto* f = finding(rep, "duplicate-identity", "352099001761481");
  REQUIRE(f);
  CHECK(f->detail.find("placeholder") != std::string::npos);
}

TEST_CASE("identity conflict: found the same on a log sorted newest first") {
  std::vector<Line> lines;
  duplicate(lines, "dupdev02", 6);
  reboots(lines, "rebooter2", 4);
  const auto rep = analyze(lines, {}, true);
  CHECK(rep.order == "descending");
  CHECK(subjects(rep, "duplicate-identity") == std::vector<std::string>{"dupdev02"});
}

TEST_CASE("keepalive: gaps of 450-480 s infer a 300 s keepalive, too long for cellular") {
  std::vector<Line> lines;
  keepalive(lines, "natdev", "117.136.1.1", 452, 8);
  for (const bool desc : {false, true}) {
    const auto rep = analyze(lines, {}, desc);
    const auto* f = finding(rep, "keepalive-too-long", "natdev");
    REQUIRE(f);
    REQUIRE(f->keepalive_s);
    CHECK(*f->keepalive_s >= 295);
    CHECK(*f->keepalive_s <= 310);
    CHECK(f->fix.find("120 s") != std::string::npos);
    CHECK(f->events == 8);
  }
}

TEST_CASE("keepalive: 'after Nsec' in the reason gives the idle time directly") {
  std::vector<Line> lines;
  std::int64_t t = k_t0;
  for (int i = 0; i < 4; ++i) {
    t += 3 * 3600 * k_s;
    lines.push_back({t, "kadev", "Keepalive timeout after 46sec", "10.0.0.1"});
  }
  const auto rep = analyze(lines);
  const auto* f = finding(rep, "keepalive-too-short", "kadev");
  REQUIRE(f);
  REQUIRE(f->keepalive_s);
  CHECK(*f->keepalive_s == 30);
}

TEST_CASE("keepalive: a 120 s keepalive with scattered gaps gives no keepalive finding") {
  std::vector<Line> lines;
  // Healthy: 3 timeouts after long, different sessions.
  std::int64_t t = k_t0;
  for (const int s : {7200, 20000, 50000}) {
    lines.push_back({t, "okdev", "online", "10.0.0.2"});
    t += s * k_s;
    lines.push_back({t, "okdev", "Keepalive timeout", "10.0.0.2"});
    t += 20 * k_s;
  }
  // Inferred 120 s (gaps 180-210 s) but only 3 times in a day: no "frequent" finding either.
  keepalive(lines, "ka120", "10.0.0.3", 185, 3);
  const auto rep = analyze(lines);
  CHECK(subjects(rep, "keepalive-too-long").empty());
  CHECK(subjects(rep, "keepalive-too-short").empty());
  CHECK(subjects(rep, "frequent-keepalive-timeouts").empty());
}

TEST_CASE("keepalive clusters: one /16 timing out far more than the rest") {
  std::vector<Line> lines;
  for (int i = 0; i < 8; ++i) {
    keepalive(lines, "nat" + std::to_string(i), "117.136.9." + std::to_string(i + 1), 455, 20);
  }
  for (int i = 0; i < 60; ++i) {
    sessions(lines,
             "ok" + std::to_string(i),
             "111.55.0." + std::to_string(i + 1),
             "Connection reset by peer",
             1,
             3600);
  }
  const auto rep = analyze(lines);
  const auto* f = finding(rep, "keepalive-cluster", "117.136.0.0/16");
  REQUIRE(f);
  CHECK(f->devices == 8);
  REQUIRE(f->keepalive_s);
  CHECK(*f->keepalive_s >= 295);
  CHECK(*f->keepalive_s <= 310);
  CHECK(subjects(rep, "keepalive-cluster").size() == 1);
}

TEST_CASE("keepalive clusters: timeouts spread evenly over ranges are no cluster") {
  std::vector<Line> lines;
  for (int i = 0; i < 40; ++i) {
    keepalive(lines,
              "d" + std::to_string(i),
              std::to_string(100 + i % 4) + ".1.0." + std::to_string(i + 1),
              200,
              20,
              400);
  }
  const auto rep = analyze(lines);
  CHECK(subjects(rep, "keepalive-cluster").empty());
}

TEST_CASE("frequent resets and firmware DISCONNECT, a few are not frequent") {
  std::vector<Line> lines;
  sessions(lines, "flaky", "10.0.1.1", "Connection reset by peer", 40, 1200);
  sessions(lines, "discon", "10.0.1.2", "Device disconnect", 40, 900);
  sessions(lines, "calm", "10.0.1.3", "Connection reset by peer", 2, 36000);
  sessions(lines, "calm", "10.0.1.3", "Device disconnect", 1, 36000);
  const auto rep = analyze(lines);
  CHECK(subjects(rep, "frequent-connection-resets") == std::vector<std::string>{"flaky"});
  CHECK(subjects(rep, "frequent-device-disconnect") == std::vector<std::string>{"discon"});
  const auto* f = finding(rep, "frequent-device-disconnect", "discon");
  REQUIRE(f);
  CHECK(f->fix.find("seed FAQ §6") != std::string::npos);
  CHECK(rep.top.front().device_name != "calm");
}

TEST_CASE("auth failures: any is a finding, none is not") {
  std::vector<Line> lines;
  sessions(lines, "authdev", "10.0.2.1", "auth failed: bad username or password", 3, 60);
  sessions(lines, "gooddev", "10.0.2.2", "Connection reset by peer", 1, 60);
  const auto rep = analyze(lines);
  CHECK(subjects(rep, "auth-failures") == std::vector<std::string>{"authdev"});
}

TEST_CASE("never online: listed devices without an online record, unlisted are counted") {
  std::vector<Line> lines;
  sessions(lines, "seen", "10.0.3.1", "Connection reset by peer", 1, 60);
  lines.push_back({k_t0, "triesonly", "auth failed", "10.0.3.2"});
  lines.push_back({k_t0, "stranger", "online", "10.0.3.3"});
  const auto rep = analyze(lines, {}, false, {"seen", "triesonly", "silent"});
  auto never = subjects(rep, "never-online");
  std::sort(never.begin(), never.end());
  CHECK(never == std::vector<std::string>{"silent", "triesonly"});
  CHECK(rep.never_online == 2);
  CHECK(rep.listed == 3);
  CHECK(rep.not_listed == 1);
  // Without a list: no never-online finding at all.
  CHECK(subjects(analyze(lines), "never-online").empty());
}

TEST_CASE("filters: product, time window, per day / hour counts") {
  std::vector<Line> lines;
  sessions(lines, "dev", "10.0.4.1", "Connection reset by peer", 3, 3600);
  FleetOptions o;
  o.since_ms = k_t0 + 1800 * k_s;
  const auto rep = analyze(lines, o);
  CHECK(rep.outside_window == 1);
  CHECK(rep.records == 5);
  o = {};
  o.product_key = "zzzzzzzzzzz";
  CHECK(analyze(lines, o).other_product == 6);
  const auto all = analyze(lines);
  CHECK(all.totals[static_cast<std::size_t>(Reason::online)] == 3);
  CHECK(all.totals[static_cast<std::size_t>(Reason::connection_reset)] == 3);
  REQUIRE(all.per_day.size() == 1);
  CHECK(format_day(all.per_day.begin()->first) == "2024-01-01"); // 08:00 +08:00
  CHECK(all.per_hour.size() == 4);
}

TEST_CASE("HTML report: self-contained, charts, escaped text") {
  std::vector<Line> lines;
  duplicate(lines, "dup<x>", 6);
  sessions(lines, "flaky", "10.0.1.1", "Connection reset by peer", 40, 1200);
  const auto rep = analyze(lines);
  HtmlInfo info;
  info.log = "log & more.csv";
  info.format = "csv";
  info.zone = "UTC+08:00";
  const std::string html = render_fleet_html(rep, info);
  CHECK(html.starts_with("<!DOCTYPE html>"));
  CHECK(html.find("id=\"chart-days\"") != std::string::npos);
  CHECK(html.find("id=\"chart-hours\"") != std::string::npos);
  CHECK(html.find("id=\"chart-top\"") != std::string::npos);
  CHECK(html.find("<rect") != std::string::npos);
  CHECK(html.find("dup&lt;x&gt;") != std::string::npos);
  CHECK(html.find("dup<x>") == std::string::npos);
  CHECK(html.find("log &amp; more.csv") != std::string::npos);
  // No network: nothing loaded from elsewhere.
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
}
