// SPDX-License-Identifier: MIT
// One worker thread per fixture. Each module goes: sync -> read identity and credentials (two
// agreeing readings) -> check the IMEI -> claim (ledger) -> plan the write (validation) ->
// mark attempted (ledger, before the first byte) -> write + read-back -> mark burned (ledger).
// The ledger decides which triplet a module gets; the in-process set of IMEIs in flight stops
// two fixtures holding modules with one IMEI from being served at the same time.
#include "commands/provision.hpp"

#include "cloud/enrollment.hpp"
#include "commands/common_options.hpp"
#include "commands/ledger_access.hpp"
#include "commands/secret_input.hpp"
#include "core/file.hpp"
#include "core/interrupt.hpp"
#include "core/mask.hpp"
#include "core/text.hpp"
#include "core/validate.hpp"

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace iot::commands {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct ModuleResult {
  Outcome outcome = Outcome::failed;
  std::string imei; // IMEI, or MAC for Wi-Fi modules
  std::string iccid;
  std::string product_key;
  std::string device_name;
  std::string secret;
  int attempts = 0;
  Clock::duration claim{0};  // the claim step, from this station (locks and waits included)
  Clock::duration ledger{0}; // every ledger step of this module: claim, attempts, burn
  std::string error;         // what went wrong (masked)
  std::string action;        // what the operator should do
};

std::int64_t wall_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

core::Cell opt_text(const std::string& text) {
  return text.empty() ? core::Cell{} : core::Cell{text};
}

// The credentials a pool record is written as.
serial::Credentials to_credentials(const store::TripletRecord& r) {
  serial::Credentials c;
  c.product_key = r.product_key;
  c.device_name = r.device_name;
  (r.scheme == core::Scheme::product ? c.product_secret : c.device_secret) = r.secret;
  return c;
}

// What goes into the module for this record: the record itself, or with a group secret
// (--enrollment-key) the device's enrollment key in place of its DeviceSecret.
store::TripletRecord as_burned(const store::TripletRecord& record,
                               const std::optional<std::string>& group_secret) {
  store::TripletRecord burned = record;
  if (group_secret) {
    burned.secret = cloud::enrollment_device_key(*group_secret, record.device_name);
  }
  return burned;
}

// True when what the module stores is this record (fields the layout does not store are empty
// in the reading and not compared; the secret always is).
bool holds(const std::optional<serial::Credentials>& read, const store::TripletRecord& r) {
  if (!read) {
    return false;
  }
  const auto& secret =
      r.scheme == core::Scheme::product ? read->product_secret : read->device_secret;
  return secret == r.secret && (read->device_name.empty() || read->device_name == r.device_name) &&
         (read->product_key.empty() || read->product_key == r.product_key);
}

Result<std::vector<std::string>> collect_ports(const ProvisionOptions& opts) {
  std::vector<std::string> ports = opts.ports;
  if (opts.ports_from) {
    const auto content = IOT_TRY(core::read_file(*opts.ports_from, "--ports-from file"));
    std::size_t start = 0;
    while (start < content.size()) {
      auto end = content.find('\n', start);
      end = end == std::string::npos ? content.size() : end;
      const auto text = core::trim(std::string_view(content).substr(start, end - start));
      if (!text.empty() && text.front() != '#') {
        ports.emplace_back(text);
      }
      start = end + 1;
    }
  }
  if (ports.empty()) {
    return fail(ErrorKind::usage,
                "no fixtures: give --port P (repeatable) or --ports-from FILE (see `iotfleet "
                "ports`)");
  }
  std::set<std::string> seen;
  for (const auto& p : ports) {
    if (!seen.insert(p).second) {
      return fail(ErrorKind::usage, "port " + p + " is given twice: one worker per fixture");
    }
  }
  return ports;
}

// Everything the fixtures share.
class Station {
public:
  Station(const ProvisionOptions& options,
          Context& context,
          store::Ledger& store,
          store::Actor station_actor,
          std::vector<std::string> fixture_ports,
          std::int64_t available,
          Registrar* dynamic_registrar)
      : opts(options), ctx(context), ledger(store), actor(std::move(station_actor)),
        ports(std::move(fixture_ports)), registrar(dynamic_registrar), m_available(available),
        m_board(context.output->board({"#", "port", "state", "imei", "device_name", "last"},
                                      ports.size())),
        m_stream(context.global.output == core::OutputFormat::ndjson), m_start(Clock::now()) {
    m_events.columns = {"event",
                        "time",
                        "fixture",
                        "port",
                        "imei",
                        "iccid",
                        "product_key",
                        "device_name",
                        "device_secret",
                        "attempts",
                        "elapsed_ms",
                        "claim_ms",
                        "ledger_ms",
                        "error",
                        "action"};
    update_footer();
  }

  const ProvisionOptions& opts;
  Context& ctx;
  store::Ledger& ledger;
  const store::Actor actor;
  const std::vector<std::string> ports;
  Registrar* const registrar;              // --register; null otherwise
  std::optional<std::string> group_secret; // --enrollment-key: burn each device's key. SECRET.

  // Marks an identity as being worked on; false if another fixture has it right now.
  bool begin(const std::string& identity, std::size_t fixture, std::size_t& other) {
    std::lock_guard lock(m_mutex);
    auto [it, inserted] = m_in_flight.emplace(identity, fixture);
    other = it->second;
    return inserted;
  }
  void end(const std::string& identity) {
    std::lock_guard lock(m_mutex);
    m_in_flight.erase(identity);
  }
  void claimed_fresh() { --m_available; }
  void registered() { ++m_available; } // --register added a row to the pool

  void show(std::size_t fixture,
            const std::string& state,
            const std::string& imei,
            const std::string& dn,
            const std::string& last,
            std::optional<Clock::time_point> since) {
    m_board->set_row(
        fixture, {std::to_string(fixture + 1), ports[fixture], state, imei, dn, last}, since);
  }

  void report(std::size_t fixture, const ModuleResult& r, milliseconds elapsed) {
    std::lock_guard lock(m_mutex);
    ++m_counts[r.outcome];
    std::vector<core::Cell> row = {
        std::string(to_string(r.outcome)),
        core::iso8601_utc(wall_ms()),
        static_cast<std::int64_t>(fixture + 1),
        ports[fixture],
        opt_text(r.imei),
        opt_text(r.iccid),
        opt_text(r.product_key),
        opt_text(r.device_name),
        r.secret.empty() ? core::Cell{} : core::Cell(core::Secret{r.secret}),
        static_cast<std::int64_t>(r.attempts),
        static_cast<std::int64_t>(elapsed.count()),
        static_cast<std::int64_t>(std::chrono::round<milliseconds>(r.claim).count()),
        static_cast<std::int64_t>(std::chrono::round<milliseconds>(r.ledger).count()),
        opt_text(r.error),
        opt_text(r.action)};
    if (m_stream) {
      core::Table one;
      one.columns = m_events.columns;
      one.add_row(row);
      ctx.output->emit(one);
    }
    m_events.add_row(std::move(row));
    if (r.outcome != Outcome::burned && r.outcome != Outcome::already_provisioned) {
      ctx.output->warn("fixture " + std::to_string(fixture + 1) + " (" + ports[fixture] + "): " +
                       std::string(to_string(r.outcome)) + (r.error.empty() ? "" : ": " + r.error) +
                       (r.action.empty() ? "" : " — " + r.action));
    }
    update_footer_locked();
  }

  ProvisionReport finish() {
    m_board->finish();
    std::lock_guard lock(m_mutex);
    ProvisionReport report;
    report.events = m_events;
    report.streamed = m_stream;
    const double seconds = std::chrono::duration<double>(Clock::now() - m_start).count();
    const auto count = [&](Outcome o) {
      auto it = m_counts.find(o);
      return static_cast<std::int64_t>(it == m_counts.end() ? 0 : it->second);
    };
    const auto ok = count(Outcome::burned) + count(Outcome::already_provisioned);
    const auto bad = count(Outcome::failed) + count(Outcome::refused);
    report.summary.single = true;
    report.summary.columns = {"event",
                              "burned",
                              "already_provisioned",
                              "failed",
                              "refused",
                              "port_errors",
                              "pool_available",
                              "elapsed_s",
                              "modules_per_minute"};
    report.summary.add_row(
        {std::string("summary"),
         count(Outcome::burned),
         count(Outcome::already_provisioned),
         count(Outcome::failed),
         count(Outcome::refused),
         count(Outcome::port_error),
         static_cast<std::int64_t>(m_available),
         seconds,
         seconds > 0 ? static_cast<double>(count(Outcome::burned)) * 60.0 / seconds : 0.0});
    if (count(Outcome::port_error) > 0) {
      report.failure = Error{ErrorKind::serial,
                             std::to_string(count(Outcome::port_error)) +
                                 " fixture port(s) could not be opened (see above)"};
    } else if (core::interrupt_requested()) {
      report.failure =
          Error{ErrorKind::interrupted, "interrupted: in-flight writes were finished and recorded"};
    } else if (bad > 0) {
      report.failure = Error{ErrorKind::partial,
                             std::to_string(bad) + " of " + std::to_string(ok + bad) +
                                 " modules were not provisioned (see the events)"};
    }
    return report;
  }

private:
  void update_footer() {
    std::lock_guard lock(m_mutex);
    update_footer_locked();
  }
  void update_footer_locked() {
    std::string footer;
    for (auto o : {Outcome::burned,
                   Outcome::already_provisioned,
                   Outcome::failed,
                   Outcome::refused,
                   Outcome::port_error}) {
      footer += std::string(to_string(o)) + " " +
                std::to_string(m_counts.contains(o) ? m_counts.at(o) : 0) + "  ";
    }
    footer += "pool available " + std::to_string(m_available.load());
    m_board->set_footer(std::move(footer));
  }

  std::mutex m_mutex;
  std::map<std::string, std::size_t> m_in_flight;
  std::map<Outcome, std::size_t> m_counts;
  std::atomic<std::int64_t> m_available;
  core::Table m_events;
  std::unique_ptr<core::BoardSink> m_board;
  bool m_stream;
  Clock::time_point m_start;
};

class Fixture {
public:
  Fixture(Station& station, std::size_t index)
      : m_st(station), m_index(index), m_port(station.ports[index]) {
    m_actor = station.actor;
    m_actor.port = m_port;
    m_connect = station.opts.connect;
    m_connect.port = m_port;
  }

  void run() {
    show("opening", "", "", "", Clock::now());
    auto session = open_module_port(m_connect, m_st.ctx);
    if (!session) {
      ModuleResult r;
      r.outcome = Outcome::port_error;
      r.error = session.error().message;
      r.action = "check the cable / adapter of fixture " + fixture_name() +
                 " and that no other program has " + m_port + " open";
      m_st.report(m_index, r, milliseconds(0));
      show("port error", "", "", r.error, std::nullopt);
      return;
    }
    m_session = std::move(*session);
    auto module = resolve_module_name(m_connect, m_st.ctx);
    if (!module) {
      ModuleResult r;
      r.error = module.error().message;
      m_st.report(m_index, r, milliseconds(0));
      return;
    }
    m_module = *module;
    do {
      if (m_st.opts.loop && !wait_for_module()) {
        break; // interrupted
      }
      const auto start = Clock::now();
      auto result = process();
      const auto elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
      m_st.report(m_index, result, elapsed);
      const bool ok =
          result.outcome == Outcome::burned || result.outcome == Outcome::already_provisioned;
      show(std::string(to_string(result.outcome)) + (m_st.opts.loop ? " — swap module" : ""),
           result.imei,
           result.device_name,
           ok                      ? ""
           : result.action.empty() ? result.error
                                   : result.action,
           std::nullopt);
      if (m_st.opts.loop && !wait_for_removal(result.imei)) {
        break;
      }
    } while (m_st.opts.loop && !core::interrupt_requested());
  }

private:
  std::string fixture_name() const { return std::to_string(m_index + 1); }

  void show(const std::string& state,
            const std::string& imei,
            const std::string& dn,
            const std::string& last,
            std::optional<Clock::time_point> since) {
    m_st.show(m_index, state, imei, dn, last, since);
  }

  // A ledger step that failed because the ledger server is unreachable (ErrorKind::network: a
  // shared ledger whose server restarts, a network blip) is tried again with backoff (0.5 s,
  // doubling to 8 s) for up to --ledger-wait, with "ledger offline" on this fixture's row and
  // one warning per outage; the fixture does nothing else meanwhile (no new claim, no write).
  // Returns the step's last result; the time it took is added to r.ledger.
  template <class Step> auto ledger_step(Step&& step, ModuleResult& r, Clock::time_point since) {
    const auto started = Clock::now();
    auto result = step();
    auto delay = milliseconds(500);
    auto waited = milliseconds(0);
    while (!result && result.error().kind == ErrorKind::network && waited < m_st.opts.ledger_wait &&
           !core::interrupt_requested()) {
      if (waited == milliseconds(0)) {
        m_st.ctx.output->warn("fixture " + fixture_name() + " (" + m_port +
                              "): ledger offline, waiting for it (nothing is written to the "
                              "module meanwhile): " +
                              result.error().message);
      }
      show("ledger offline",
           r.imei,
           r.device_name,
           "retry in " + std::to_string(delay.count()) + " ms; check the network to the ledger",
           since);
      for (auto slept = milliseconds(0); slept < delay && !core::interrupt_requested();
           slept += milliseconds(100)) {
        std::this_thread::sleep_for(milliseconds(100));
      }
      waited += delay;
      delay = std::min(delay * 2, milliseconds(8000));
      result = step();
    }
    if (result && waited > milliseconds(0)) {
      m_st.ctx.output->info("fixture " + fixture_name() + ": the ledger is back after " +
                            std::to_string(waited.count()) + " ms");
    }
    r.ledger += Clock::now() - started;
    return result;
  }

  // --loop: probe until a module answers. false when interrupted.
  bool wait_for_module() {
    show("insert module", "", "", "", std::nullopt);
    while (!core::interrupt_requested()) {
      if (m_session.channel->sync(2, m_st.opts.poll)) {
        return true;
      }
    }
    return false;
  }

  // --loop: after a module is done, wait until it is pulled (two probes without an answer) or
  // another module answers in its place. false when interrupted.
  bool wait_for_removal(const std::string& identity) {
    int misses = 0;
    while (core::sleep_unless_interrupted(m_st.opts.poll)) {
      auto key = m_session.driver ? m_session.driver->read_identity_key()
                                  : Result<std::string>(fail(ErrorKind::module, "no driver"));
      if (!key && key.error().kind == ErrorKind::interrupted) {
        return false;
      }
      if (!key) {
        if (++misses >= 2) {
          return true;
        }
        continue;
      }
      misses = 0;
      if (*key != identity) {
        return true; // swapped faster than we probe
      }
    }
    return false;
  }

  // A module left alone because of Ctrl-C before anything was claimed for it (as in burn()).
  ModuleResult interrupted(ModuleResult r) {
    return failed(r, "interrupted before this module was claimed", "run again");
  }

  ModuleResult refused(ModuleResult r, std::string error, std::string action) {
    r.outcome = Outcome::refused;
    r.error = std::move(error);
    r.action = std::move(action);
    audit(r, "refuse");
    return r;
  }

  ModuleResult failed(ModuleResult r, std::string error, std::string action) {
    r.outcome = Outcome::failed;
    r.error = std::move(error);
    r.action = std::move(action);
    audit(r, "fail");
    return r;
  }

  void audit(const ModuleResult& r, const std::string& action) {
    store::Event e;
    e.station = m_actor.station;
    e.port = m_port;
    e.imei = r.imei;
    e.product_key = r.product_key;
    e.device_name = r.device_name;
    e.action = action;
    e.outcome = std::string(to_string(r.outcome));
    e.detail = r.error + (r.action.empty() ? "" : " — " + r.action);
    if (auto ok = m_st.ledger.record_event(e); !ok) {
      m_st.ctx.output->warn("ledger: cannot record an audit event: " + ok.error().message);
    }
  }

  std::string reseat() const { return "re-seat the module on fixture " + fixture_name(); }

  ModuleResult process() {
    ModuleResult r;
    const auto since = Clock::now();
    show("sync", "", "", "", since);
    if (!m_st.opts.loop) {
      if (auto ok = m_session.channel->sync(); !ok) {
        if (ok.error().kind == ErrorKind::interrupted) {
          return interrupted(r);
        }
        return failed(r, ok.error().message, reseat() + " (no answer to AT: power, cable?)");
      }
    }
    if (auto ok = attach_driver(m_session, m_connect, m_module, m_st.ctx, false); !ok) {
      if (ok.error().kind == ErrorKind::interrupted) {
        return interrupted(r);
      }
      return failed(r, ok.error().message, reseat() + " or check --module");
    }
    auto& driver = *m_session.driver;
    serial::Layout layout = driver.default_layout();
    if (m_st.opts.layout) {
      auto parsed = serial::parse_layout(*m_st.opts.layout);
      if (!parsed) {
        return failed(r, parsed.error().message, "fix --layout");
      }
      layout = *parsed;
    }
    show("reading", "", "", "", since);
    auto reading = read_stable(m_session, layout, m_port, ReadScope::brief);
    if (!reading) {
      if (reading.error().kind == ErrorKind::interrupted) {
        return interrupted(r);
      }
      return failed(r, reading.error().message, reseat());
    }
    const auto& id = reading->identity;
    const bool wifi = id.imei.empty() && !id.mac.empty();
    r.imei = wifi ? id.mac : id.imei;
    r.iccid = id.iccid;
    if (!wifi) {
      if (auto verdict = imei_verdict(id.imei); !verdict.empty()) {
        return refused(r, verdict, "IMEI not written — send the module to rework");
      }
    }
    std::size_t other = 0;
    if (!m_st.begin(r.imei, m_index, other)) {
      return refused(r,
                     "IMEI " + r.imei + " is on fixture " + std::to_string(other + 1) +
                         " at the same time: two modules share one IMEI",
                     "duplicate IMEI — send the module to rework");
    }
    auto result = burn(r, *reading, layout, since);
    m_st.end(r.imei);
    return result;
  }

  ModuleResult burn(ModuleResult r,
                    const ModuleReading& reading,
                    serial::Layout layout,
                    Clock::time_point since) {
    auto& driver = *m_session.driver;
    show("claiming", r.imei, "", "", since);
    store::ClaimRequest request;
    request.imei = r.imei;
    request.iccid = r.iccid;
    request.actor = m_actor;
    request.product_key =
        m_st.registrar ? std::optional(m_st.registrar->product_key()) : m_st.opts.product_key;
    request.scheme = m_st.opts.scheme == "product" ? core::Scheme::product : core::Scheme::device;
    const bool dn_is_imei = m_st.opts.name_from == "imei" || layout == serial::Layout::secret ||
                            m_st.registrar != nullptr;
    if (dn_is_imei) {
      request.device_name = r.imei;
    }
    if (core::interrupt_requested()) {
      return failed(r, "interrupted before this module was claimed", "run again");
    }
    const auto ledger_before = r.ledger;
    auto claim = ledger_step([&] { return m_st.ledger.claim(request); }, r, since);
    r.claim = r.ledger - ledger_before;
    if (claim && !*claim && m_st.registrar) {
      // Not in the pool yet: register the IMEI now. The secret is in the ledger's pool before
      // the claim below can hand it to this module.
      show("registering", r.imei, r.imei, "", since);
      const auto reg = m_st.registrar->register_device(r.imei, false, m_actor);
      if (reg.outcome == RegisterOutcome::in_doubt) {
        return failed(r,
                      reg.error ? reg.error->message : "registration answer lost",
                      "run again: the IMEI is registered anew (nothing was written)");
      }
      if (reg.outcome == RegisterOutcome::failed) {
        return refused(r,
                       reg.error ? reg.error->message : "registration refused",
                       "fix the device in the cloud (see the error), then run again");
      }
      if (reg.outcome == RegisterOutcome::registered) {
        m_st.registered();
      }
      claim = m_st.ledger.claim(request);
    }
    if (!claim) {
      if (claim.error().kind == ErrorKind::module) {
        return refused(r, claim.error().message, "send the module to rework");
      }
      return failed(r,
                    claim.error().message,
                    claim.error().kind == ErrorKind::network
                        ? "the ledger server stayed unreachable: check the network and the "
                          "server, then run again (nothing was written to this module)"
                        : "check the ledger (disk full? locked?)");
    }
    if (!*claim) {
      if (dn_is_imei) {
        return refused(r,
                       "no triplet with DeviceName " + r.imei + " in the pool",
                       "import the batch registered with IMEIs as DeviceNames (`iotfleet pool "
                       "import`), or use --layout triplet");
      }
      return refused(r,
                     "pool empty" + (m_st.opts.product_key
                                         ? " for ProductKey " + *m_st.opts.product_key
                                         : std::string()),
                     "pool empty — import more triplets (`iotfleet pool import FILE`)");
    }
    const auto record = as_burned((*claim)->record, m_st.group_secret);
    const store::TripletKey key{record.product_key, record.device_name};
    r.product_key = record.product_key;
    r.device_name = record.device_name;
    r.secret = record.secret;
    r.attempts = record.attempts;
    show("claimed", r.imei, r.device_name, "", since);
    const bool module_holds_it = holds(reading.credentials, record);

    if ((*claim)->kind == store::ClaimKind::burned) {
      if (module_holds_it) {
        r.outcome = Outcome::already_provisioned;
        return r;
      }
      return refused(r,
                     "IMEI " + r.imei + " was burned with " + r.device_name + " on " +
                         core::iso8601_utc(record.burned_at_ms) + " (" + record.station + " " +
                         record.port + ") but this module does not hold it",
                     "a second module with this IMEI: send it to rework; if it is the same module "
                     "wiped, `iotfleet pool release " +
                         r.device_name + " --force --reason wiped` and run again");
    }
    if ((*claim)->kind == store::ClaimKind::fresh) {
      m_st.claimed_fresh();
      if (reading.credentials && !module_holds_it && !m_st.opts.overwrite) {
        unclaim(key, "module holds credentials this ledger did not burn");
        r.device_name.clear();
        r.product_key.clear();
        r.secret.clear();
        return refused(r,
                       "the module already holds credentials" +
                           (reading.credentials->device_name.empty()
                                ? std::string()
                                : " (DeviceName " + reading.credentials->device_name + ")") +
                           " that this ledger did not burn",
                       "check it with `iotfleet module info`; --overwrite replaces them");
      }
    }
    if (module_holds_it) {
      // A resumed claim whose write had landed before a crash: verified now, nothing to write.
      if (record.state == store::TripletState::claimed) {
        if (auto ok = m_st.ledger.mark_attempted(key, m_actor); !ok) {
          return failed(r, ok.error().message, "check the ledger");
        }
      }
      if (auto ok = m_st.ledger.mark_burned(key, m_actor, "the module already held it"); !ok) {
        return failed(r, ok.error().message, "check the ledger");
      }
      r.outcome = Outcome::burned;
      return r;
    }
    const auto creds = to_credentials(record);
    if (auto plan = driver.plan_write(creds, layout); !plan) {
      if (record.state == store::TripletState::claimed) {
        unclaim(key, "cannot be written: " + plan.error().message);
      }
      return plan.error().kind == ErrorKind::usage
                 ? refused(r, plan.error().message, "fix the pool row or the --layout")
                 : failed(r, plan.error().message, reseat());
    }
    show("writing", r.imei, r.device_name, "", since);
    return write_verified(r, key, creds, layout, since);
  }

  ModuleResult write_verified(ModuleResult r,
                              const store::TripletKey& key,
                              const serial::Credentials& creds,
                              serial::Layout layout,
                              Clock::time_point since) {
    auto& driver = *m_session.driver;
    Error last{ErrorKind::module, "not written"};
    for (int attempt = 0; attempt <= m_st.opts.retries; ++attempt) {
      if (attempt > 0) {
        show("retrying", r.imei, r.device_name, last.message, since);
        if (auto ok = m_session.channel->sync(); !ok) {
          last = ok.error();
          break; // the module is gone: nothing more to try
        }
      }
      // Write-ahead: the ledger knows a write may have reached the module before it can.
      if (auto ok = ledger_step([&] { return m_st.ledger.mark_attempted(key, m_actor); }, r, since);
          !ok) {
        return failed(r, ok.error().message, "check the ledger; nothing was written");
      }
      ++r.attempts;
      // Once the ledger says "attempted", Ctrl-C no longer cuts the port short: the write and
      // its read-back run to their own timeouts, so the outcome below is known and recorded.
      // What an interruption stops is the next step (a retry, the next module).
      auto written = [&] {
        serial::FinishInFlight in_flight(*m_session.port);
        return driver.write_credentials(creds, layout);
      }();
      if (written) {
        return burned(r, key, "read-back matched");
      }
      last = written.error();
      if (last.kind == ErrorKind::usage || core::interrupt_requested()) {
        break; // interrupted: the triplet stays bound to this IMEI; a new run reads it back
      }
      // Unknown outcome (a lost OK, a garbled read-back): look again before writing again.
      if (m_session.channel->sync()) {
        auto reading = read_stable(m_session, layout, m_port, ReadScope::brief);
        if (reading && (reading->identity.imei == r.imei || reading->identity.mac == r.imei)) {
          store::TripletRecord expected;
          expected.product_key = key.product_key;
          expected.device_name = key.device_name;
          expected.secret = r.secret;
          expected.scheme =
              creds.product_secret.empty() ? core::Scheme::device : core::Scheme::product;
          if (holds(reading->credentials, expected)) {
            return burned(r, key, "read-back matched on a second reading");
          }
        }
      }
      if (core::interrupt_requested()) {
        break;
      }
    }
    return failed(r,
                  m_session.channel->mask(last.message),
                  "write not verified — " + reseat() +
                      " and run again: it gets the same "
                      "triplet " +
                      r.device_name);
  }

  ModuleResult burned(ModuleResult r, const store::TripletKey& key, const std::string& detail) {
    bool tried_again = false;
    auto ok = ledger_step(
        [&] {
          auto done = m_st.ledger.mark_burned(key, m_actor, detail);
          // A COMMIT whose answer was lost may have landed: then the triplet is burned already.
          if (!done && tried_again && recorded_burned(key, r.imei)) {
            done = {};
          }
          tried_again = true;
          return done;
        },
        r,
        Clock::now());
    if (!ok) {
      return failed(r,
                    ok.error().message,
                    "the module holds " + r.device_name +
                        " but the ledger could not record it: run again on this module to "
                        "record it");
    }
    r.outcome = Outcome::burned;
    return r;
  }

  bool recorded_burned(const store::TripletKey& key, const std::string& imei) {
    const auto found = m_st.ledger.find(key.device_name, key.product_key);
    return found && !found->empty() && found->front().state == store::TripletState::burned &&
           found->front().imei == imei;
  }

  void unclaim(const store::TripletKey& key, const std::string& reason) {
    if (auto ok = m_st.ledger.unclaim(key, m_actor, reason); !ok) {
      m_st.ctx.output->warn("ledger: " + ok.error().message);
    }
  }

  Station& m_st;
  std::size_t m_index;
  std::string m_port;
  store::Actor m_actor;
  ModuleConnectOptions m_connect;
  ModuleSession m_session;
  std::string m_module;
};

Status check_options(const ProvisionOptions& opts) {
  if (opts.retries < 0 || opts.retries > 10) {
    return fail(ErrorKind::usage, "--retries must be 0..10");
  }
  if (opts.product_key) {
    if (auto ok = core::validate_product_key(*opts.product_key); !ok) {
      return ok;
    }
  }
  if (opts.enrollment_key_file && (opts.register_devices || opts.scheme != "device")) {
    return fail(ErrorKind::usage,
                "--enrollment-key burns each device's enrollment key in place of its DeviceSecret "
                "(--scheme device, no --register): the device fetches the secret itself");
  }
  if (opts.register_devices && opts.scheme != "device") {
    return fail(ErrorKind::usage,
                "--register burns the DeviceSecret it is issued (--scheme device); the "
                "ProductSecret never goes into a module");
  }
  return {};
}

std::int64_t available_count(store::Ledger& ledger, const ProvisionOptions& opts) {
  std::int64_t n = 0;
  if (auto counts = ledger.counts()) {
    for (const auto& c : *counts) {
      if (c.state == store::TripletState::available &&
          (!opts.product_key || c.product_key == *opts.product_key)) {
        n += c.count;
      }
    }
  }
  return n;
}

} // namespace

std::string_view to_string(Outcome outcome) {
  switch (outcome) {
  case Outcome::burned:
    return "burned";
  case Outcome::already_provisioned:
    return "already-provisioned";
  case Outcome::failed:
    return "failed";
  case Outcome::refused:
    return "refused";
  case Outcome::port_error:
    return "port-error";
  }
  return "?";
}

Result<ProvisionReport> run_provision(const ProvisionOptions& opts, Context& ctx) {
  IOT_TRY(check_options(opts));
  auto ports = IOT_TRY(collect_ports(opts));
  // Read before the ledger is touched: a wrong file stops the run while nothing has happened.
  std::optional<std::string> group_secret;
  if (opts.enrollment_key_file) {
    group_secret = IOT_TRY(read_group_secret(*opts.enrollment_key_file, ctx));
    ctx.output->info("--enrollment-key: each module gets its device's enrollment key; the "
                     "DeviceSecret stays in the ledger for `iotfleet serve`");
  }
  auto handle = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::create));
  auto expired = IOT_TRY(handle.ledger->expire_claims(handle.actor, store::process_alive));
  if (expired > 0) {
    ctx.output->info(std::to_string(expired) +
                     " claims of an earlier run that had not started writing went back to the "
                     "pool");
  }
  std::unique_ptr<Registrar> registrar;
  if (opts.register_devices) {
    auto options = opts.registrar;
    options.product_key = opts.product_key;
    options.connections = std::max<std::size_t>(ports.size(), 1);
    auto opened = IOT_TRY(Registrar::open(ctx, options, *handle.ledger));
    registrar = std::move(opened);
    ctx.output->info("--register: modules without a pool row get DeviceName = IMEI and a "
                     "DeviceSecret from " +
                     registrar->url() + " (ProductKey " + registrar->product_key() + ")");
  }
  const auto available = available_count(*handle.ledger, opts);
  ctx.output->info("provisioning on " + std::to_string(ports.size()) + " fixture(s), ledger " +
                   handle.path + ", station " + handle.actor.station + ", " +
                   std::to_string(available) + " triplets available" +
                   (opts.loop ? "; Ctrl-C stops after the writes in flight" : ""));
  Station station(opts, ctx, *handle.ledger, handle.actor, ports, available, registrar.get());
  station.group_secret = std::move(group_secret);
  std::vector<std::thread> workers;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    workers.emplace_back([&station, i] { Fixture(station, i).run(); });
  }
  for (auto& w : workers) {
    w.join();
  }
  return station.finish();
}

Result<core::Table> run_provision_dry_run(const ProvisionOptions& opts, Context& ctx) {
  IOT_TRY(check_options(opts));
  auto ports = IOT_TRY(collect_ports(opts));
  std::optional<std::string> group_secret;
  if (opts.enrollment_key_file) {
    group_secret = IOT_TRY(read_group_secret(*opts.enrollment_key_file, ctx));
  }
  auto handle = IOT_TRY(open_configured_ledger(ctx, store::OpenMode::create));
  std::unique_ptr<Registrar> registrar;
  if (opts.register_devices) {
    auto options = opts.registrar;
    options.product_key = opts.product_key;
    auto opened = IOT_TRY(Registrar::open(ctx, options, *handle.ledger));
    registrar = std::move(opened);
  }
  core::Table t;
  t.columns = {"fixture", "port", "imei", "triplet", "step", "command", "data"};
  const auto add = [&](std::size_t i,
                       const std::string& imei,
                       const std::string& triplet,
                       const std::string& step,
                       const std::string& command,
                       const std::string& data) {
    t.add_row({static_cast<std::int64_t>(i + 1),
               ports[i],
               opt_text(imei),
               opt_text(triplet),
               step,
               opt_text(command),
               opt_text(data)});
  };
  for (std::size_t i = 0; i < ports.size(); ++i) {
    auto connect = opts.connect;
    connect.port = ports[i];
    auto session = open_session(connect, ctx, true, true);
    if (!session) {
      add(i, "", "", "error", session.error().message, "");
      continue;
    }
    serial::Layout layout = session->driver->default_layout();
    if (opts.layout) {
      layout = serial::parse_layout(*opts.layout).value_or(layout);
    }
    auto reading = read_stable(*session, layout, connect.port, ReadScope::brief);
    if (!reading) {
      add(i, "", "", "error", reading.error().message, "");
      continue;
    }
    const auto& id = reading->identity;
    const std::string imei = id.imei.empty() ? id.mac : id.imei;
    store::ClaimRequest request;
    request.imei = imei;
    request.iccid = id.iccid;
    request.actor = handle.actor;
    request.actor.port = connect.port;
    request.product_key = opts.product_key;
    request.scheme = opts.scheme == "product" ? core::Scheme::product : core::Scheme::device;
    request.dry_run = true;
    if (opts.name_from == "imei" || layout == serial::Layout::secret || registrar) {
      request.device_name = imei;
    }
    if (registrar) {
      request.product_key = registrar->product_key();
    }
    if (auto verdict = id.imei.empty() ? "" : imei_verdict(id.imei); !verdict.empty()) {
      add(i, imei, "", "refuse", verdict, "");
      continue;
    }
    auto claim = handle.ledger->claim(request);
    if (claim && !*claim && registrar) {
      add(i,
          imei,
          registrar->product_key() + "/" + imei + " (to register)",
          "register",
          "POST " + registrar->url(),
          "then write the DeviceSecret it returns");
      continue;
    }
    if (!claim || !*claim) {
      add(i,
          imei,
          "",
          "refuse",
          claim ? "no triplet available for this module" : claim.error().message,
          "");
      continue;
    }
    const auto record = as_burned((*claim)->record, group_secret);
    const std::string triplet = record.product_key + "/" + record.device_name + " (" +
                                std::string(store::to_string((*claim)->kind)) + ")";
    if (holds(reading->credentials, record)) {
      add(i, imei, triplet, "skip", "", "the module already holds it");
      continue;
    }
    auto plan = session->driver->plan_write(to_credentials(record), layout);
    if (!plan) {
      add(i, imei, triplet, "refuse", plan.error().message, "");
      continue;
    }
    const std::vector<std::string> secrets = {record.secret};
    const auto shown = [&](const std::string& text) {
      return ctx.global.show_secrets ? text : core::mask_all(text, secrets);
    };
    for (const auto& step : *plan) {
      add(i, imei, triplet, step.purpose, shown(step.command), shown(step.prompt_data));
    }
  }
  return t;
}

void register_provision(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<ProvisionOptions>();
  auto* cmd = app.add_subcommand(
      "provision",
      "Burn triplets from the pool into modules on many fixtures at once, verified by read-back");
  add_connection_options(cmd, opts->connect, &opts->layout, PortUse::many, &opts->ports);
  cmd->add_option("--ports-from", opts->ports_from, "File with one port per line (# comments)")
      ->option_text(std::string(value_name::file));
  add_product_key(cmd, opts->product_key, "any product in the pool");
  cmd->add_option("--scheme", opts->scheme, "Pool rows: device (PK,DN,DS) or product (PK,PS,DN)")
      ->check(CLI::IsMember({"device", "product"}))
      ->option_text("device|product");
  cmd->add_option("--name-from",
                  opts->name_from,
                  "pool: next available triplet; imei: the row whose DeviceName is the IMEI")
      ->check(CLI::IsMember({"pool", "imei"}))
      ->option_text("pool|imei");
  cmd->add_flag(
      "--loop", opts->loop, "Keep going as operators swap modules on each fixture, until Ctrl-C");
  cmd->add_flag("--dry-run",
                opts->dry_run,
                "Print the exact AT sequence per port (secrets masked); write and claim nothing");
  cmd->add_flag("--overwrite",
                opts->overwrite,
                "Replace credentials a module holds that this ledger did not burn");
  cmd->add_option("--retries", opts->retries, "Extra write attempts when a write is not verified")
      ->check(CLI::Range(0, 10))
      ->option_text(std::string(value_name::count));
  cmd->add_flag("--register",
                opts->register_devices,
                "One-type-one-secret: a module whose IMEI has no pool row is registered on the "
                "fly (DeviceName = IMEI, dynamic registration), its DeviceSecret written to the "
                "ledger, then burned; the ProductSecret never reaches the module");
  add_registrar_options(cmd, opts->registrar, true);
  cmd->add_option("--enrollment-key",
                  opts->enrollment_key_file,
                  "Device-key enrollment: the file (or - for stdin) of the group secret; each "
                  "module gets its device's enrollment key (HMAC-SHA256(group secret, DN), as "
                  "`creds enrollment-key`) in place of the DeviceSecret, and fetches the secret "
                  "from `iotfleet serve` at first boot; the ledger keeps the DeviceSecret")
      ->option_text(std::string(value_name::file_or_stdin));
  add_duration(cmd,
               "--poll",
               opts->poll,
               "--loop: how often an idle fixture is probed",
               {.bare_unit = milliseconds(1),
                .min = milliseconds(50),
                .max = milliseconds(10'000),
                .deprecated_name = "--poll-ms"},
               ctx);
  add_duration(
      cmd,
      "--ledger-wait",
      opts->ledger_wait,
      "How long a fixture waits for an unreachable ledger server (\"ledger offline\" on "
      "the board, nothing claimed or written meanwhile) before it gives its module up "
      "as failed; 0: at once",
      {.bare_unit = std::chrono::seconds(1), .min = milliseconds(0), .max = std::chrono::hours(24)},
      ctx);
  cmd->footer(
      "Each module: sync, read IMEI/ICCID and credentials (two agreeing readings), refuse a "
      "placeholder or invalid IMEI or one already burned into another module, claim a triplet "
      "(the same IMEI always gets the same one), record the attempt, write, read back, record "
      "it burned. A module already holding its triplet is already-provisioned (nothing "
      "consumed).\nOn a TTY a live board shows each fixture; -o ndjson streams one event per "
      "module, then a summary line.");
  add_exit_codes(cmd,
                 {{0, "every module burned or already provisioned"},
                  {2, "bad options, no fixtures, a ledger that cannot be opened"},
                  {3, "a fixture's port could not be opened"},
                  {5, "some modules failed or were refused (see the events)"},
                  {130, "Ctrl-C (the writes in flight were finished and recorded first)"}});
  cmd->callback([&ctx, opts] {
    if (opts->dry_run) {
      ctx.output->emit(value_or_throw(run_provision_dry_run(*opts, ctx)));
      return;
    }
    auto report = value_or_throw(run_provision(*opts, ctx));
    if (report.streamed) {
      ctx.output->emit(report.summary);
    } else {
      ctx.output->emit(report.events);
      const auto& s = report.summary.rows.front();
      std::string line = "summary:";
      for (std::size_t i = 1; i < report.summary.columns.size(); ++i) {
        line += " " + report.summary.columns[i] + "=";
        if (const auto* n = std::get_if<std::int64_t>(&s[i])) {
          line += std::to_string(*n);
        } else if (const auto* d = std::get_if<double>(&s[i])) {
          char buf[32];
          std::snprintf(buf, sizeof buf, "%.1f", *d);
          line += buf;
        }
      }
      ctx.output->info(line);
    }
    if (report.failure) {
      throw CommandFailure(*report.failure);
    }
  });
}

} // namespace iot::commands
