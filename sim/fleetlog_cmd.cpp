// SPDX-License-Identifier: MIT
// The fleet is simulated day by day: each device is a small state machine whose next action
// (connect, end of session, reboot, the other module of a shared identity taking over) has a
// time; a day's records are collected, sorted and written, so memory holds one day (or the whole
// log with --order desc). Reason strings are the console's, written here from
// docs/aliyun-iot-protocol.md §6 independently of iotfleet's reason table, so that the tests
// check that table against the document rather than against itself.
#include "sim/fleetlog_cmd.hpp"

#include "core/text.hpp"
#include "sim/identity.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <unordered_set>
#include <vector>

namespace iot::sim {
namespace {

constexpr std::int64_t k_s = 1000;
constexpr std::int64_t k_min = 60 * k_s;
constexpr std::int64_t k_hour = 60 * k_min;
constexpr std::int64_t k_day = 24 * k_hour;
constexpr int k_offset_min = 480; // the console's Beijing time

// Records: online, then the console's offline reasons (aliyun-iot-protocol.md §6).
enum Rec : std::uint8_t { r_online, r_kicked, r_keepalive, r_reset, r_disconnect, r_exception };
constexpr const char* k_content[] = {"online",
                                     "Kicked by the same device",
                                     "Keepalive timeout",
                                     "Connection reset by peer",
                                     "Device disconnect",
                                     "Connection occurs exception"};

enum class Kind : std::uint8_t { normal, duplicate, nat, flaky, disconnect, reboot };
constexpr const char* k_kind_names[] = {
    "normal", "duplicate", "nat-keepalive", "flaky", "disconnect", "reboot"};

enum class Action : std::uint8_t { connect, end_session, reboot, take_over, none };

// Carrier /16 prefixes the fleet's public egress IPs come from (a plausible spread of Chinese
// mobile carriers); the NAT scenario's devices all sit in the first.
constexpr std::uint32_t k_prefixes[] = {
    0x7588, // 117.136 (the NAT scenario's carrier range)
    0x758B, 0x6F37, 0xDF68, 0xDF5A, 0x7060, 0x7061, 0x78CC, 0xB7C0, 0x246E, 0x2790,
    0x2A64, 0x7162, 0x7185, 0x7520, 0x7524, 0x7628, 0x7786, 0x7A60, 0xAB08, 0xAB58,
    0xB4A0, 0xB7CA, 0xB7E4, 0xDB90, 0xDC80, 0xDDB0, 0x6A26, 0x6A39, 0x6A5C, 0x7010,
    0x7018, 0x7020, 0x7330, 0x7350, 0x7530, 0x75A0, 0x7B90, 0x7CA0, 0x8C20,
};
constexpr std::size_t k_prefix_count = std::size(k_prefixes);

struct Random {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  std::int64_t between(std::int64_t lo, std::int64_t hi) { // [lo, hi]
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  std::int64_t exp_ms(double mean_ms) {
    return static_cast<std::int64_t>(-std::log(1.0 - unit()) * mean_ms) + k_s;
  }
  bool chance(double p) { return unit() < p; }
};

struct Event {
  std::int64_t t;
  std::uint32_t dev;
  std::uint32_t ip;
  std::uint32_t seq;
  Rec rec;
  std::int32_t idle_s; // "after Nsec", -1 none
};

struct Dev {
  std::string name;
  Kind kind = Kind::normal;
  std::uint32_t ip = 0;
  std::uint32_t ip2 = 0; // duplicate: the second module's IP
  std::uint8_t owner = 0;
  Action action = Action::connect;
  std::int64_t next = 0;
  std::int64_t session_end = 0;
  std::int64_t online_at = 0;
  std::vector<std::int64_t> reboots; // pending reboot times, ascending
};

// Appends the time in the chosen format.
void append_time(std::string& out, std::int64_t ms, const std::string& format) {
  char buf[48];
  if (format == "epoch-ms") {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(ms));
    out += buf;
    return;
  }
  const std::int64_t local = ms + k_offset_min * k_min;
  const std::int64_t day = local / k_day;
  const std::int64_t in_day = local - day * k_day;
  const auto [y, m, d] = core::civil_from_days(day);
  const auto sec = in_day / 1000;
  std::snprintf(buf,
                sizeof buf,
                format == "iso" ? "%04d-%02u-%02uT%02d:%02d:%02d.%03d+08:00"
                                : "%04d-%02u-%02u %02d:%02d:%02d.%03d",
                y,
                m,
                d,
                static_cast<int>(sec / 3600),
                static_cast<int>(sec / 60 % 60),
                static_cast<int>(sec % 60),
                static_cast<int>(in_day % 1000));
  out += buf;
}

void append_ip(std::string& out, std::uint32_t ip) {
  char buf[20];
  std::snprintf(
      buf, sizeof buf, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255u, (ip >> 8) & 255u, ip & 255u);
  out += buf;
}

void append_hex(std::string& out, std::uint64_t v, int digits) {
  static constexpr char hex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) {
    out += hex[(v >> (4 * i)) & 15];
  }
}

class Simulation {
public:
  Simulation(const FleetLogOptions& o, std::int64_t t0) : m_o(o), m_t0(t0), m_rng{o.seed} {}

  Status build(std::vector<Dev>& devs, std::vector<std::string>& never) {
    Rng rng(derive_seed(m_o.seed, 1));
    std::unordered_set<std::string> names;
    const auto fresh_name = [&] {
      while (true) {
        std::string n = random_imei(rng);
        if (n != k_placeholder_imei && names.insert(n).second) {
          return n;
        }
      }
    };
    const auto& p = m_o.plant;
    const std::int64_t planted = p.duplicate + p.nat_keepalive + p.flaky + p.disconnect + p.reboot;
    if (planted > m_o.devices) {
      return fail(ErrorKind::usage,
                  "--plant: " + std::to_string(planted) + " planted devices but --devices " +
                      std::to_string(m_o.devices) + ": give more devices");
    }
    devs.resize(static_cast<std::size_t>(m_o.devices));
    std::size_t i = 0;
    const auto assign = [&](std::int64_t n, Kind k) {
      for (std::int64_t j = 0; j < n; ++j) {
        devs[i++].kind = k;
      }
    };
    assign(p.duplicate, Kind::duplicate);
    assign(p.nat_keepalive, Kind::nat);
    assign(p.flaky, Kind::flaky);
    assign(p.disconnect, Kind::disconnect);
    assign(p.reboot, Kind::reboot);
    bool placeholder_used = false;
    for (auto& d : devs) {
      // The first shared identity is the factory placeholder IMEI (seed §6: IMEI not written).
      if (d.kind == Kind::duplicate && !placeholder_used) {
        d.name = std::string(k_placeholder_imei);
        names.insert(d.name);
        placeholder_used = true;
      } else {
        d.name = fresh_name();
      }
      d.ip = random_ip(d.kind == Kind::nat ? 0 : m_rng.next() % k_prefix_count);
      if (d.kind == Kind::duplicate) {
        do {
          d.ip2 = random_ip(m_rng.next() % k_prefix_count);
        } while ((d.ip2 >> 16) == (d.ip >> 16));
      }
      d.next = m_t0 + m_rng.between(0, 6 * k_hour);
      d.action = Action::connect;
      if (d.kind == Kind::reboot) {
        const std::int64_t n = m_rng.between(1, 2);
        for (std::int64_t k = 0; k < n; ++k) {
          d.reboots.push_back(m_t0 + m_rng.between(12 * k_hour, m_o.days * k_day - 12 * k_hour));
        }
        std::sort(d.reboots.begin(), d.reboots.end());
      }
    }
    // Shuffle so that planted devices are spread over the fleet.
    for (std::size_t k = devs.size(); k > 1; --k) {
      std::swap(devs[k - 1], devs[m_rng.next() % k]);
    }
    for (std::int64_t j = 0; j < p.never_online; ++j) {
      never.push_back(fresh_name());
    }
    return {};
  }

  // Runs every device up to `until`, appending its records.
  void run(std::vector<Dev>& devs, std::int64_t until, std::vector<Event>& out) {
    for (std::uint32_t i = 0; i < devs.size(); ++i) {
      Dev& d = devs[i];
      while (d.next < until && d.action != Action::none) {
        step(i, d, out);
      }
    }
  }

private:
  std::uint32_t random_ip(std::size_t prefix) {
    return (k_prefixes[prefix] << 16) | static_cast<std::uint32_t>(m_rng.between(1, 65534));
  }

  void emit(std::vector<Event>& out,
            std::int64_t t,
            std::uint32_t dev,
            std::uint32_t ip,
            Rec r,
            std::int32_t idle = -1) {
    out.push_back(Event{t, dev, ip, m_seq++, r, idle});
  }

  // When a session that starts now ends, and how.
  void start_session(Dev& d, std::int64_t now) {
    d.online_at = now;
    std::int64_t len = 0;
    switch (d.kind) {
    case Kind::nat:
      // Keepalive 300 s, the NAT drops the idle mapping: the server hears nothing after CONNACK
      // and drops the device after 1.5 × 300 s + its 0-30 s check interval.
      len = 450 * k_s + m_rng.between(0, 30 * k_s);
      break;
    case Kind::flaky:
      len = m_rng.exp_ms(30.0 * k_min);
      break;
    case Kind::disconnect:
      len = m_rng.exp_ms(20.0 * k_min);
      break;
    default:
      len = m_rng.exp_ms(m_o.session_hours * static_cast<double>(k_hour));
    }
    d.session_end = now + len;
    d.action = Action::end_session;
    d.next = d.session_end;
    if (d.kind == Kind::duplicate) {
      d.action = Action::take_over; // the other module connects while this one is online
      d.next = now + m_rng.between(10 * k_s, 15 * k_min);
    }
    if (!d.reboots.empty() && d.reboots.front() >= now && d.reboots.front() < d.session_end) {
      d.action = Action::reboot;
      d.next = d.reboots.front();
    }
  }

  void step(std::uint32_t i, Dev& d, std::vector<Event>& out) {
    const std::int64_t now = d.next;
    switch (d.action) {
    case Action::connect:
      emit(out, now, i, d.ip, r_online);
      start_session(d, now);
      return;
    case Action::take_over: {
      // The other module connects with the same identity; the platform kicks this one.
      const std::uint32_t old_ip = d.owner == 0 ? d.ip : d.ip2;
      d.owner ^= 1;
      const std::uint32_t new_ip = d.owner == 0 ? d.ip : d.ip2;
      emit(out, now, i, new_ip, r_online);
      emit(out, now + m_rng.between(50, 500), i, old_ip, r_kicked);
      d.next = now + m_rng.between(10 * k_s, 15 * k_min);
      return;
    }
    case Action::reboot: {
      // Restarted while online: connects again before the server noticed; the old session is
      // kicked. Same IP, or a new one from the carrier.
      d.reboots.erase(d.reboots.begin());
      const std::uint32_t old_ip = d.ip;
      if (m_rng.chance(0.5)) {
        d.ip = random_ip(m_rng.next() % k_prefix_count);
      }
      const std::int64_t t = now + m_rng.between(20 * k_s, 40 * k_s);
      emit(out, t, i, d.ip, r_online);
      emit(out, t + m_rng.between(50, 500), i, old_ip, r_kicked);
      start_session(d, t);
      return;
    }
    case Action::end_session: {
      Rec r = r_reset;
      std::int32_t idle = -1;
      std::int64_t back = m_rng.between(5 * k_s, 120 * k_s);
      switch (d.kind) {
      case Kind::nat:
        r = r_keepalive;
        if (m_rng.chance(0.4)) {
          idle = static_cast<std::int32_t>((now - d.online_at) / k_s);
        }
        back = m_rng.between(5 * k_s, 30 * k_s);
        break;
      case Kind::flaky:
        r = m_rng.chance(0.75) ? r_reset : r_keepalive;
        back = m_rng.between(10 * k_s, 300 * k_s);
        break;
      case Kind::disconnect:
        r = r_disconnect;
        back = m_rng.between(1 * k_s, 10 * k_s);
        break;
      default: {
        const double u = m_rng.unit();
        r = u < 0.45 ? r_reset : u < 0.55 ? r_keepalive : u < 0.85 ? r_disconnect : r_exception;
      }
      }
      emit(out, now, i, d.ip, r, idle);
      if (m_rng.chance(0.2)) {
        // A new connection may leave through another address of the same carrier.
        d.ip = (d.ip & 0xFFFF0000u) | static_cast<std::uint32_t>(m_rng.between(1, 65534));
      }
      d.action = Action::connect;
      d.next = now + back;
      return;
    }
    case Action::none:
      return;
    }
  }

  const FleetLogOptions& m_o;
  std::int64_t m_t0;
  Random m_rng;
  std::uint32_t m_seq = 0;
};

class Writer {
public:
  Writer(const FleetLogOptions& o, const std::vector<Dev>& devs)
      : m_o(o), m_devs(devs), m_trace{o.seed ^ 0x5eedull} {}

  void header(std::string& out) const {
    if (m_o.format == "jsonl") {
      return;
    }
    out += m_o.header == "zh" ? "时间,TraceID,ProductKey,设备名称,业务类型,状态,内容,客户端IP\n"
                              : "time,traceId,productKey,deviceName,bizType,status,content,"
                                "clientIp\n";
  }

  void line(std::string& out, const Event& e) {
    const Dev& d = m_devs[e.dev];
    char content[64];
    if (e.idle_s >= 0) {
      std::snprintf(content, sizeof content, "Keepalive timeout after %dsec", e.idle_s);
    } else {
      std::snprintf(content, sizeof content, "%s", k_content[e.rec]);
    }
    const char* status = e.rec == r_online ? "online" : "offline";
    if (m_o.format == "jsonl") {
      out += "{\"time\":";
      if (m_o.time_format == "epoch-ms") {
        append_time(out, e.t, m_o.time_format);
      } else {
        out += '"';
        append_time(out, e.t, m_o.time_format);
        out += '"';
      }
      out += ",\"traceId\":\"";
      append_hex(out, m_trace.next(), 16);
      out += "\",\"productKey\":\"" + m_o.product_key + "\",\"deviceName\":\"" + d.name +
             "\",\"bizType\":\"device\",\"status\":\"" + status + "\",\"content\":\"" + content +
             "\",\"clientIp\":\"";
      append_ip(out, e.ip);
      out += "\"}\n";
      return;
    }
    append_time(out, e.t, m_o.time_format);
    out += ',';
    append_hex(out, m_trace.next(), 16);
    out += ',';
    out += m_o.product_key;
    out += ',';
    out += d.name;
    out += ",device,";
    out += status;
    out += ',';
    out += content;
    out += ',';
    append_ip(out, e.ip);
    out += '\n';
  }

private:
  const FleetLogOptions& m_o;
  const std::vector<Dev>& m_devs;
  Random m_trace;
};

// A file written to a temporary name and renamed into place when complete.
class OutFile {
public:
  static Result<OutFile> create(const std::string& path) {
    OutFile f;
    f.m_path = path;
    f.m_temp = path + ".tmp";
    f.m_file = std::fopen(f.m_temp.c_str(), "wb");
    if (!f.m_file) {
      return fail(ErrorKind::io, "create " + f.m_temp + ": " + std::strerror(errno));
    }
    return f;
  }
  OutFile() = default;
  OutFile(OutFile&& o) noexcept
      : m_path(std::move(o.m_path)), m_temp(std::move(o.m_temp)),
        m_file(std::exchange(o.m_file, nullptr)) {}
  OutFile& operator=(OutFile&&) = delete;
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;
  ~OutFile() {
    if (m_file) {
      std::fclose(m_file);
      std::remove(m_temp.c_str());
    }
  }
  Status write(std::string_view s) {
    if (std::fwrite(s.data(), 1, s.size(), m_file) != s.size()) {
      return fail(ErrorKind::io, "write " + m_temp + ": " + std::strerror(errno));
    }
    return {};
  }
  Status commit() {
    const bool ok = std::fclose(m_file) == 0;
    m_file = nullptr;
    if (!ok || std::rename(m_temp.c_str(), m_path.c_str()) != 0) {
      std::remove(m_temp.c_str());
      return fail(ErrorKind::io, "write " + m_path + ": " + std::strerror(errno));
    }
    return {};
  }

private:
  std::string m_path;
  std::string m_temp;
  std::FILE* m_file = nullptr;
};

Result<std::int64_t> parse_start(const std::string& s) {
  unsigned y = 0;
  unsigned m = 0;
  unsigned d = 0;
  char tail = 0;
  if (std::sscanf(s.c_str(), "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 || y < 2000 || y > 2090 ||
      m < 1 || m > 12 || d < 1 || d > 31) {
    return fail(ErrorKind::usage, "--start " + s + ": give a date yyyy-MM-dd");
  }
  return core::days_from_civil(y, m, d) * k_day - k_offset_min * k_min;
}

} // namespace

Result<FleetLogPlant> parse_plant(std::string_view text) {
  FleetLogPlant p;
  std::vector<std::string> seen;
  std::size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    const auto comma = text.find(',', start);
    const std::string_view item =
        text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    const auto eq = item.find('=');
    const std::string key(item.substr(0, eq));
    if (eq == std::string_view::npos || eq + 1 >= item.size()) {
      return fail(ErrorKind::usage,
                  "--plant: '" + std::string(item) +
                      "' is not KEY=COUNT (keys: duplicate, nat-keepalive, flaky, disconnect, "
                      "reboot, never-online)");
    }
    std::int64_t n = 0;
    for (const char c : item.substr(eq + 1)) {
      if (c < '0' || c > '9' || n > 100'000'000) {
        return fail(ErrorKind::usage, "--plant: " + key + ": the count must be a number");
      }
      n = n * 10 + (c - '0');
    }
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      return fail(ErrorKind::usage, "--plant: " + key + " given twice");
    }
    seen.push_back(key);
    if (key == "duplicate") {
      p.duplicate = n;
    } else if (key == "nat-keepalive") {
      p.nat_keepalive = n;
    } else if (key == "flaky") {
      p.flaky = n;
    } else if (key == "disconnect") {
      p.disconnect = n;
    } else if (key == "reboot") {
      p.reboot = n;
    } else if (key == "never-online") {
      p.never_online = n;
    } else {
      return fail(ErrorKind::usage,
                  "--plant: unknown problem '" + key +
                      "' (duplicate, nat-keepalive, flaky, disconnect, reboot, never-online)");
    }
    if (comma == std::string_view::npos) {
      break;
    }
    start = comma + 1;
  }
  return p;
}

Status run_fleetlog(const FleetLogOptions& o) {
  if (o.devices < 1 || o.devices > 50'000'000) {
    return fail(ErrorKind::usage, "--devices: 1 to 50 000 000");
  }
  if (o.days < 1 || o.days > 366) {
    return fail(ErrorKind::usage, "--days: 1 to 366");
  }
  auto t0 = IOT_TRY(parse_start(o.start));
  Simulation sim(o, t0);
  std::vector<Dev> devs;
  std::vector<std::string> never;
  IOT_TRY(sim.build(devs, never));
  auto file = IOT_TRY(OutFile::create(o.output));
  Writer writer(o, devs);
  std::string buf;
  buf.reserve(8u << 20);
  writer.header(buf);
  const auto by_time = [](const Event& a, const Event& b) {
    return a.t != b.t ? a.t < b.t : a.seq < b.seq;
  };
  std::vector<Event> events;
  std::vector<Event> all; // --order desc
  for (int day = 0; day < o.days; ++day) {
    events.clear();
    sim.run(devs, t0 + (day + 1) * k_day, events);
    std::sort(events.begin(), events.end(), by_time);
    if (o.order == "desc") {
      all.insert(all.end(), events.begin(), events.end());
      continue;
    }
    for (const auto& e : events) {
      writer.line(buf, e);
      if (buf.size() >= (8u << 20)) {
        IOT_TRY(file.write(buf));
        buf.clear();
      }
    }
  }
  if (o.order == "desc") {
    std::sort(all.begin(), all.end(), by_time);
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      writer.line(buf, *it);
      if (buf.size() >= (8u << 20)) {
        IOT_TRY(file.write(buf));
        buf.clear();
      }
    }
  }
  IOT_TRY(file.write(buf));
  IOT_TRY(file.commit());

  // The truth: which device has which planted problem.
  const std::string truth_path = o.truth.empty() ? o.output + ".truth.csv" : o.truth;
  auto truth = IOT_TRY(OutFile::create(truth_path));
  std::string t = "device_name,problem,client_ips\n";
  for (const auto& d : devs) {
    if (d.kind == Kind::normal) {
      continue;
    }
    t += d.name + "," + k_kind_names[static_cast<int>(d.kind)] + ",";
    append_ip(t, d.ip);
    if (d.kind == Kind::duplicate) {
      t += ' ';
      append_ip(t, d.ip2);
    }
    t += '\n';
  }
  for (const auto& n : never) {
    t += n + ",never-online,\n";
  }
  IOT_TRY(truth.write(t));
  IOT_TRY(truth.commit());
  if (!o.devices_out.empty()) {
    auto list = IOT_TRY(OutFile::create(o.devices_out));
    std::string l = "device_name\n";
    for (const auto& d : devs) {
      l += d.name + "\n";
    }
    for (const auto& n : never) {
      l += n + "\n";
    }
    IOT_TRY(list.write(l));
    IOT_TRY(list.commit());
  }
  return {};
}

void register_fleetlog(CLI::App& app) {
  auto o = std::make_shared<FleetLogOptions>();
  auto plant = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "fleetlog",
      "Write a simulated fleet's device log in the console's export shape, with planted "
      "problems and a truth file");
  cmd->add_option("--devices,-n", o->devices, "Devices with records")->capture_default_str();
  cmd->add_option("--days", o->days, "Days of log")->capture_default_str();
  cmd->add_option("--seed", o->seed, "Same seed, same log")->capture_default_str();
  cmd->add_option("--start", o->start, "First day (local date, UTC+08:00)")->capture_default_str();
  cmd->add_option("--plant",
                  *plant,
                  "Problems to plant: duplicate=K,nat-keepalive=K,flaky=K,disconnect=K,"
                  "reboot=K,never-online=K");
  cmd->add_option("-O,--output", o->output, "The log file")->required();
  cmd->add_option("--format", o->format, "csv or jsonl")
      ->check(CLI::IsMember({"csv", "jsonl"}))
      ->capture_default_str();
  cmd->add_option("--header", o->header, "CSV header: en or zh (Chinese column names)")
      ->check(CLI::IsMember({"en", "zh"}))
      ->capture_default_str();
  cmd->add_option("--time-format",
                  o->time_format,
                  "local (yyyy-MM-dd HH:mm:ss.SSS, UTC+08:00), iso (with zone) or epoch-ms")
      ->check(CLI::IsMember({"local", "iso", "epoch-ms"}))
      ->capture_default_str();
  cmd->add_option("--order", o->order, "asc, or desc (newest first; held in memory)")
      ->check(CLI::IsMember({"asc", "desc"}))
      ->capture_default_str();
  cmd->add_option("--truth", o->truth, "The truth file (default: OUTPUT.truth.csv)");
  cmd->add_option("--devices-out", o->devices_out, "Also write the device list (device_name)");
  cmd->add_option("--product-key", o->product_key, "ProductKey of the records")
      ->capture_default_str();
  cmd->add_option("--session-hours",
                  o->session_hours,
                  "Mean session of a healthy device (hours; smaller = more records)")
      ->check(CLI::Range(0.05, 10000.0))
      ->capture_default_str();
  cmd->callback([o, plant] {
    if (!plant->empty()) {
      auto p = parse_plant(*plant);
      if (!p) {
        std::cerr << "iotfleet-sim: error: " << p.error().message << '\n';
        throw CLI::RuntimeError(2);
      }
      o->plant = *p;
    }
    if (auto done = run_fleetlog(*o); !done) {
      std::cerr << "iotfleet-sim: error: " << done.error().message << '\n';
      throw CLI::RuntimeError(done.error().kind == ErrorKind::usage ? 2 : 1);
    }
  });
}

} // namespace iot::sim
