// SPDX-License-Identifier: MIT
// The factory ledger: every triplet of the pool, its state, the module it is bound to, and an
// append-only audit of what happened. It is the station's source of truth (DESIGN.md "The ledger").
//
// State machine (each transition is one transaction, with its audit event in the same one):
//
//   available --claim--> claimed --mark_attempted--> bound --mark_burned--> burned
//       ^                   |                          |
//       +-----unclaim-------+                          |
//       +-----release (operator, with a reason) -------+   (claimed too; burned only with force)
//
// - claim binds a triplet to a module's IMEI before anything is sent to it. A module that comes
//   back (same IMEI) gets the same triplet again (ClaimKind::resumed), never a second one.
// - mark_attempted is written *before* the first byte of a write reaches the module. From then on
//   the triplet may be in that module, so it is bound to the IMEI: only an operator's release
//   gives it to another module.
// - unclaim: the write was never attempted, so nothing reached the module: back to available.
// - A crash (kill -9, power cut) at any point leaves each triplet available, claimed (nothing
//   sent; expire_claims returns it once its process is gone), bound (in doubt: the module may or
//   may not hold it; the same module gets it again) or burned. Never lost, never in two modules.
//
// Implementations: SQLite (a path: one station) and PostgreSQL (a postgresql:// URL: a whole line
// drawing from one pool), one class template over both (store/ledger.cpp); no database type
// appears in this header. open_ledger takes the location, and OpenMode says how a command uses it.
#pragma once

#include "core/error.hpp"
#include "core/triplet_file.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace iot::store {

enum class TripletState { available, claimed, bound, burned };
[[nodiscard]] std::string_view to_string(TripletState state);
// "available" | "claimed" | "bound" | "burned"; ErrorKind::usage otherwise.
[[nodiscard]] Result<TripletState> parse_triplet_state(std::string_view text);
[[nodiscard]] std::string_view to_string(core::Scheme scheme); // "device" | "product"

struct TripletKey {
  std::string product_key;
  std::string device_name;
};

struct TripletRecord {
  std::string product_key;
  std::string device_name;
  std::string secret; // DeviceSecret (scheme device) or ProductSecret (scheme product). SECRET.
  core::Scheme scheme = core::Scheme::device;
  TripletState state = TripletState::available;
  std::string imei; // bound module ("" while available)
  std::string iccid;
  std::string station; // who claimed / burned it
  std::string port;
  std::int64_t owner_pid = 0; // process holding the claim (0: none)
  int attempts = 0;           // writes attempted
  std::string source;         // the import file it came from
  std::int64_t imported_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::int64_t burned_at_ms = 0; // 0 until burned
};

// Who does something, for the audit trail and the claim's owner.
struct Actor {
  std::string station;
  std::string port;
  std::int64_t pid = 0;
};

struct ImportProblem {
  std::size_t line = 0;
  std::string message; // never contains a secret
};

struct ImportSummary {
  std::size_t added = 0;
  std::size_t unchanged = 0;            // already in the ledger with the same secret
  std::vector<ImportProblem> conflicts; // in the ledger with a different secret or scheme
  bool committed = false;               // false: nothing was imported
};

struct ClaimRequest {
  std::string imei;
  std::string iccid;
  Actor actor;
  std::optional<std::string> product_key; // only triplets of this product
  std::optional<std::string> device_name; // exactly this DeviceName (--name-from imei)
  std::optional<core::Scheme> scheme;     // only this scheme
  bool dry_run = false;                   // say what claim would do; change nothing
};

enum class ClaimKind {
  fresh,   // an available triplet, now claimed for this IMEI
  resumed, // this IMEI already held a claimed or bound triplet: the same one again
  burned,  // this IMEI's triplet is burned; compare the module's read-back before doing anything
};
[[nodiscard]] std::string_view to_string(ClaimKind kind);

struct Claim {
  ClaimKind kind = ClaimKind::fresh;
  TripletRecord record;
};

// A device asking a credential server (`iotfleet serve`, docs/enrollment.md) for its secret.
struct IssueRequest {
  TripletKey key;
  std::string imei; // the module asking (required: each DeviceName is bound to one module)
  std::string iccid;
  std::string address; // where the request came from, for the audit trail
  Actor actor;         // station: the server's name; port: "serve"
};

enum class IssueOutcome {
  issued,       // an available triplet, now burned to this IMEI: its secret
  again,        // the name is this module's already (a refetch, seed §3's cure): its secret
  unknown,      // no such triplet
  not_device,   // a one-type-one-secret row (scheme product): no DeviceSecret to give
  clone,        // the name is bound to another module (or claimed for one by a station)
  module_taken, // this module holds another DeviceName
};
[[nodiscard]] std::string_view to_string(IssueOutcome outcome);

struct Issue {
  IssueOutcome outcome = IssueOutcome::unknown;
  std::string secret;     // issued / again: the DeviceSecret. SECRET.
  std::string other_imei; // clone: the module the name is bound to
  std::string other_name; // module_taken: the DeviceName this module holds
};

struct StateCount {
  std::string product_key;
  std::string station; // "" for available triplets
  TripletState state = TripletState::available;
  std::int64_t count = 0;
};

struct RecordFilter {
  std::vector<TripletState> states; // empty: every state
  std::optional<std::string> product_key;
  std::optional<std::string> station;
};

struct Event {
  std::int64_t time_ms = 0;
  std::string station;
  std::string port;
  std::string imei;
  std::string product_key;
  std::string device_name;
  std::string action;  // import, claim, attempt, burned, unclaim, release, expire, verify, fail,
                       // serve-issue …
  std::string outcome; // ok, failed, refused …
  std::string detail;  // free text, never a secret
};

// One-type-one-secret dynamic registration, written ahead (docs/registration.md):
//   begin_registration (pending) -> the HTTPS request -> record_registration (issued) or
//   fail_registration (failed: the cloud refused, nothing was issued).
// A pending row whose process died means the cloud may hold a secret nobody saw: the device must
// be registered again before it is used (possible until it first connects; the newest secret
// wins). Older issued rows, and pending rows overtaken by a newer answer, become superseded.
enum class RegistrationStatus { pending, issued, superseded, failed };
[[nodiscard]] std::string_view to_string(RegistrationStatus status);

struct Registration {
  std::int64_t id = 0;
  std::string product_key;
  std::string device_name;
  RegistrationStatus status = RegistrationStatus::pending;
  std::string secret; // the DeviceSecret the cloud answered ("" unless issued/superseded). SECRET.
  std::int64_t requested_at_ms = 0;
  std::int64_t answered_at_ms = 0; // 0 while pending
  std::string station;
  std::int64_t pid = 0;
  std::string detail; // the refusal, or where the secret went; never a secret
};

// What record_registration did with the pool.
enum class PoolUpdate {
  added,   // the device was not in the pool: now available with the issued secret
  updated, // it was available: its secret is now the issued one (the older one is superseded)
  busy,    // it is claimed, bound or burned: the secret is recorded, the triplet left as it was
};

// devices recreate (seed FAQ §3.3: delete the device on the cloud, register it again), written
// ahead (docs/recreate.md). The device's metadata and secret are recorded before DeleteDevice,
// and each step once the cloud confirmed it:
//   planned -> deleted -> registered (the new secret recorded, the pool updated) -> restored
// An unfinished row is finished by `devices recreate --resume`; a device is never re-created
// twice at once. Rows are kept: the old secret stays as the superseded one.
enum class RecreateStep { planned, deleted, registered, restored };
[[nodiscard]] std::string_view to_string(RecreateStep step);
[[nodiscard]] Result<RecreateStep> parse_recreate_step(std::string_view text);

struct Recreation {
  std::int64_t id = 0;
  std::string product_key;
  std::string device_name;
  RecreateStep step = RecreateStep::planned;
  std::string old_iot_id;
  std::string new_iot_id; // "" until registered
  std::string metadata;   // JSON: nickname, status, tags, groups (never a secret)
  std::string old_secret; // the DeviceSecret before. SECRET.
  std::string new_secret; // the DeviceSecret after ("" until registered). SECRET.
  bool to_pool = true;    // registered: the new secret goes into the pool (not only to a file)
  core::Scheme scheme = core::Scheme::device; // product: one-type-one-secret (dynamic)
  std::int64_t started_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::string station;
  std::int64_t pid = 0;
  std::string detail; // what the last step did; never a secret
};

// Everything a ledger holds, to move it into another (`pool migrate --from`). SECRETS.
struct LedgerContents {
  std::vector<TripletRecord> triplets; // in import order
  std::vector<Event> events;           // oldest first
  std::vector<Registration> registrations;
  std::vector<Recreation> recreations;
};

// What merge did, or would have done: per table, rows added and rows already there.
struct MergeSummary {
  struct Counts {
    std::size_t added = 0;
    std::size_t present = 0;
  };
  Counts triplets, events, registrations, recreations;
  std::vector<std::string> conflicts; // one per refused row, never a secret
  bool committed = false;             // false: nothing was copied
};

// `serve --status-refresh`, shared by every server on one ledger: the last cloud status check
// of a product (docs/serve.md "Several instances").
struct StatusCheck {
  std::string product_key;
  std::string holder;                // the server that made (or is making) the check
  std::int64_t lease_until_ms = 0;   // a check is in progress (or deferred) until then
  std::int64_t checked_at_ms = 0;    // the last complete check (0: none yet)
  std::int64_t checked = 0;          // pool devices it asked about
  std::int64_t missing = 0;          // of them, unknown to the cloud
  std::vector<std::string> disabled; // DeviceNames it found DISABLE
};

class Ledger {
public:
  virtual ~Ledger() = default;

  // The schema version as opened (older than ledger_schema_version() only when opened to read).
  [[nodiscard]] virtual int schema_version() const = 0;

  // Adds rows in one transaction. A row whose (ProductKey, DeviceName) is already in the ledger
  // with the same secret and scheme is unchanged (re-importing a file is a no-op); with a
  // different one it is a conflict. With conflicts and !skip_conflicts nothing is imported.
  [[nodiscard]] virtual Result<ImportSummary> import(std::span<const core::TripletRow> rows,
                                                     std::string_view source,
                                                     const Actor& actor,
                                                     bool skip_conflicts) = 0;

  // The triplet for the module with request.imei (see ClaimKind), or nullopt when the pool has
  // no available triplet matching the request. ErrorKind::module when the IMEI or the requested
  // DeviceName is held by something else (another live process, another IMEI).
  [[nodiscard]] virtual Result<std::optional<Claim>> claim(const ClaimRequest& request) = 0;

  // claimed|bound -> bound, attempts + 1. Call before the first byte of a write is sent.
  [[nodiscard]] virtual Status mark_attempted(const TripletKey& key, const Actor& actor) = 0;
  // bound -> burned: the module's read-back matched. detail goes to the audit event.
  [[nodiscard]] virtual Status
  mark_burned(const TripletKey& key, const Actor& actor, std::string_view detail) = 0;
  // claimed -> available: nothing was sent to the module.
  [[nodiscard]] virtual Status
  unclaim(const TripletKey& key, const Actor& actor, std::string_view reason) = 0;
  // Operator: claimed|bound -> available (burned too when force). The reason is audited.
  [[nodiscard]] virtual Result<TripletRecord>
  release(const TripletKey& key, const Actor& actor, std::string_view reason, bool force) = 0;
  // Claims of `station` whose owner process is gone (is_alive false) go back to available.
  [[nodiscard]] virtual Result<std::size_t>
  expire_claims(const Actor& actor, const std::function<bool(std::int64_t pid)>& is_alive) = 0;

  // A device asks for its DeviceSecret (IssueRequest), decided in one transaction: an available
  // device-scheme triplet becomes burned to request.imei (as if a station had burned it, the
  // server's name as its station), one already this module's is given again, one bound to
  // another module is a clone, a module holding another name is module_taken. Each outcome but
  // unknown and not_device appends its audit event (action "serve-issue", outcome the
  // IssueOutcome, detail the address and the other module or name; never the secret); unknown
  // names write nothing (a stranger guessing names cannot grow the audit trail).
  [[nodiscard]] virtual Result<Issue> issue_secret(const IssueRequest& request) = 0;

  // Every triplet named device_name (one per product), optionally of one product.
  [[nodiscard]] virtual Result<std::vector<TripletRecord>>
  find(std::string_view device_name, const std::optional<std::string>& product_key) = 0;
  // The non-available triplet bound to this IMEI, if any.
  [[nodiscard]] virtual Result<std::optional<TripletRecord>>
  find_by_imei(std::string_view imei) = 0;
  // Counts grouped by product, station and state.
  [[nodiscard]] virtual Result<std::vector<StateCount>> counts() = 0;
  // Each matching record, in import order. Stops at the first error the callback returns.
  [[nodiscard]] virtual Status
  for_each(const RecordFilter& filter,
           const std::function<Status(const TripletRecord&)>& callback) = 0;

  // Write-ahead: a pending registration of this device, before its request is sent.
  [[nodiscard]] virtual Result<Registration> begin_registration(const TripletKey& key,
                                                                const Actor& actor) = 0;
  // The cloud's answer, in one transaction: the pending row becomes issued with the secret,
  // every older issued or pending row of the device superseded, and the pool updated (PoolUpdate).
  [[nodiscard]] virtual Result<PoolUpdate>
  record_registration(const Registration& pending, std::string_view secret, const Actor& actor) = 0;
  // The cloud refused (nothing issued): the pending row becomes failed with the reason.
  [[nodiscard]] virtual Status
  fail_registration(const Registration& pending, const Actor& actor, std::string_view reason) = 0;
  // Every registration of a device, oldest first.
  [[nodiscard]] virtual Result<std::vector<Registration>> registrations(const TripletKey& key) = 0;

  // devices recreate: the plan (step planned), before DeleteDevice. ErrorKind::usage when the
  // device has an unfinished recreation (finish it with --resume).
  [[nodiscard]] virtual Result<Recreation> begin_recreation(const Recreation& plan,
                                                            const Actor& actor) = 0;
  // Records r.step (with new_iot_id, new_secret and detail) in one transaction with its audit
  // event; steps only move forward. At `registered` the pool is updated in the same transaction
  // (a device-scheme triplet gets the new secret: available stays available, claimed / bound /
  // burned become bound to the same IMEI, so the next `provision` of that module burns the new
  // secret; not in the pool and to_pool: added, available). A one-type-one-secret recreation
  // (scheme product) makes the device's triplet available again instead (its module registers
  // dynamically anew) and supersedes its issued registrations. Returns what happened to the pool
  // ("" when nothing).
  [[nodiscard]] virtual Result<std::string> advance_recreation(const Recreation& r,
                                                               const Actor& actor) = 0;
  // Recreations, oldest first: of one device (key) or all; only those not restored yet when
  // unfinished_only.
  [[nodiscard]] virtual Result<std::vector<Recreation>>
  recreations(const std::optional<TripletKey>& key, bool unfinished_only) = 0;

  // Everything this ledger holds (secrets included).
  [[nodiscard]] virtual Result<LedgerContents> contents() = 0;
  // Copies another ledger's contents into this one in one transaction, nothing half-copied:
  // - a triplet not here is added as it is (state, module, station; a claim's owner process is
  //   dropped: it ran on another machine); one here with the same secret and scheme is present
  //   when it is in the same state for the same module, or takes the other's state when it is
  //   still available here (the same batch imported in both);
  // - conflicts, each named: a DeviceName here with another secret or scheme, or bound here to
  //   another module; an IMEI bound here to another DeviceName; an unfinished recreation of a
  //   device that has another one here. With any, nothing is copied (committed false);
  // - events, registrations and recreations are added unless the same row is here already, so
  //   running it again adds nothing.
  // `source` names the other ledger in the audit event of the copy.
  [[nodiscard]] virtual Result<MergeSummary>
  merge(const LedgerContents& from, std::string_view source, const Actor& actor) = 0;

  // The product's next status check is `holder`'s when none is in progress (lease_until <= now)
  // and the last complete one is older than stale_before (or none was made): lease_until becomes
  // lease_until_ms, so of servers asking at once exactly one gets true; a holder that dies leaves
  // it to be claimed again then. Times are milliseconds since the epoch.
  [[nodiscard]] virtual Result<bool> claim_status_check(std::string_view product_key,
                                                        std::string_view holder,
                                                        std::int64_t now_ms,
                                                        std::int64_t stale_before_ms,
                                                        std::int64_t lease_until_ms) = 0;
  // The holder's complete check (check.holder, checked_at_ms, the counts and names); the lease
  // ends. Changes nothing when another server holds the check by now.
  [[nodiscard]] virtual Status record_status_check(const StatusCheck& check) = 0;
  // The holder keeps the check until lease_until_ms: a long check renews its lease as it goes,
  // and a failed one pauses the next claim (by anyone) until then; the last complete check stays
  // what it was. Changes nothing when another server holds the check by now.
  [[nodiscard]] virtual Status hold_status_check(std::string_view product_key,
                                                 std::string_view holder,
                                                 std::int64_t lease_until_ms) = 0;
  // The product's last recorded check; nullopt when none was ever claimed.
  [[nodiscard]] virtual Result<std::optional<StatusCheck>>
  status_check(std::string_view product_key) = 0;

  // Appends to the audit trail (for events that are not a transition, e.g. a refused module).
  [[nodiscard]] virtual Status record_event(const Event& event) = 0;
  // The newest `limit` events, oldest first (optionally only those of one DeviceName).
  [[nodiscard]] virtual Result<std::vector<Event>>
  events(std::size_t limit, const std::optional<std::string>& device_name) = 0;
};

// How a command uses the ledger.
enum class OpenMode {
  create,   // read-write; created (mode 0600) when missing; migrated: commands that fill the pool
  existing, // read-write and migrated, but it must exist: commands that only change what is in it
  read,     // it must exist; opened read-only: nothing written, migrated or created beside it
};

struct LedgerOptions {
  LedgerOptions() = default;
  explicit LedgerOptions(OpenMode m) : mode(m) {}

  OpenMode mode = OpenMode::create;
  int busy_timeout_ms = 10000; // another process holding the write lock
  // What the user should hear that does not stop the open (a ledger others can read). The store
  // prints nothing itself. Empty: such warnings are dropped.
  std::function<void(const std::string&)> warn;
  // existing / read, when there is no ledger at the location: appended to "no ledger at
  // LOCATION" (say where the location came from and the fix). Empty: a hint naming
  // `iotfleet pool import`, which creates one.
  std::function<std::string()> missing_hint;
};

// Opens the ledger at `location`, a file path: SQLite (WAL, synchronous=FULL, foreign keys, busy
// timeout). A URL (`scheme://…`) is refused with ErrorKind::config: it is where another backend
// (a PostgreSQL ledger shared by a whole line) will be chosen. The object is safe to use from
// many threads; many processes may share the file.
// - The ledger file and its -wal / -shm hold secrets. create / existing: any of them this user
//   owns that group or others can read is set to 0600 before anything is read or written, with
//   one warning saying so; one owned by someone else is named in a warning with the chmod to run.
//   read: changes nothing and only warns.
// - create makes a missing file (0600); existing / read fail with ErrorKind::config
//   "no ledger at LOCATION…" (missing_hint) and create nothing.
// - create / existing migrate an older schema. read does not: an older ledger reads as what it
//   holds (schema 1 has no registrations: registrations() is empty). read refuses an empty file
//   (ErrorKind::config: not a ledger yet, and how to make one).
// - read writes nothing, and no -wal / -shm is left beside the file: it works on a ledger this
//   user may only read, in a directory it cannot write (sqlite::Database::open says how, and how
//   it stays consistent with a writer). Every change on such a ledger fails (ErrorKind::failure).
// ErrorKind::io when the file cannot be opened or is not a ledger; ErrorKind::config when its
// schema is newer than this build.
[[nodiscard]] Result<std::unique_ptr<Ledger>> open_ledger(const std::string& location,
                                                          const LedgerOptions& options = {});

// The location as messages, logs and tables show it: a URL's password replaced by "***" (a path
// as it is).
[[nodiscard]] std::string display_location(std::string_view location);

// Whether a ledger may be at `location` without opening it: a URL (a server: only connecting
// tells), or a path that exists.
[[nodiscard]] bool ledger_may_exist(std::string_view location);

// The schema version this build writes.
[[nodiscard]] int ledger_schema_version();

// True if a process with this pid exists on this machine (kill(pid, 0)).
[[nodiscard]] bool process_alive(std::int64_t pid);

} // namespace iot::store
