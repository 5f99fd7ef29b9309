#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# How commands open the ledger, with the real iotfleet: a ledger file others can read is made
# private by the command that fills it; a mistyped --ledger is refused by readers, naming the
# default and the fix, and nothing is created; a ledger the user may only read (in a directory it
# cannot write) is viewed by pool status / export / log, older schema included, and left as it was.
source "$(dirname "$0")/lib.sh"

cat >f.csv <<'CSV'
ProductKey,DeviceName,DeviceSecret
a1B2c3D4e5F,dev0001,0123456789abcdef0123456789abcd01
a1B2c3D4e5F,dev0002,0123456789abcdef0123456789abcd02
a1B2c3D4e5F,dev0003,0123456789abcdef0123456789abcd03
CSV

mode_of() { stat -c %a "$1"; }
fix="check --ledger, IOTFLEET_LEDGER and the config's \"ledger\"; \`iotfleet pool import FILE\` creates a ledger"

# 1. touch l.db, then pool import: the file gets the secrets, so it is made 0600 first, saying so.
touch l.db
chmod 644 l.db
run "$IOTFLEET" --ledger l.db pool import f.csv
expect_rc 0 "import into a touched ledger"
expect_eq "$err" "iotfleet: warning: ledger l.db was readable by group or others (l.db 0644): it holds secrets, so iotfleet set it to 0600" "the tightening warning"
expect_eq "$(mode_of l.db)" 600 "the touched ledger's mode"
run "$IOTFLEET" --ledger l.db pool import f.csv
expect_rc 0 "import again"
expect_no_err "warning" "warned once: the ledger is private now"

# 2. a mistyped --ledger: every reader (and pool release) exits 2 and creates nothing.
for cmd in "pool status" "pool export" "pool log" "pool release dev0001 --reason test"; do
  # shellcheck disable=SC2086
  run "$IOTFLEET" --ledger typo.db $cmd
  expect_rc 2 "$cmd with a mistyped --ledger"
  expect_eq "$err" "iotfleet: error: no ledger at typo.db (from flag --ledger; the default is $HOME/.local/share/iotfleet/ledger.db): $fix" "$cmd: the message"
done
run env IOTFLEET_LEDGER=station.db "$IOTFLEET" --ledger typo.db pool status
expect_rc 2 "mistyped --ledger over IOTFLEET_LEDGER"
expect_eq "$err" "iotfleet: error: no ledger at typo.db (from flag --ledger; the configured ledger is station.db, from env IOTFLEET_LEDGER): $fix" "the configured ledger named"
if compgen -G 'typo.db*' >/dev/null || compgen -G 'station.db*' >/dev/null || [ -e "$HOME/.local" ]; then
  fail "a reader created a ledger: $(ls -a . "$HOME")"
else
  ok
fi

# 3. a ledger this user may only read, in a directory it cannot write. As root (CI), which
# permissions do not stop, the readers run as nobody; otherwise the files are made read-only.
mkdir ro
cp l.db ro/l.db
python3 - ro/old.db <<'PY'
import sqlite3, sys
src = sqlite3.connect("l.db")
old = sqlite3.connect(sys.argv[1])
src.backup(old)
src.close()
# Schema 1, as an iotfleet from before dynamic registration left it.
old.executescript("DROP TABLE registrations; PRAGMA user_version = 1;")
old.close()
PY
if [ "$(id -u)" = 0 ]; then
  chmod 755 "$IOT_TMP" "$HOME" ro
  chmod 644 ro/l.db ro/old.db
  as_reader() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
  loose="(l.db 0644): its owner should run chmod 600 ro/l.db"
else
  chmod 444 ro/l.db ro/old.db
  chmod 555 ro
  as_reader() { "$@"; }
  loose="(l.db 0444): run chmod 600 ro/l.db (a command that writes to the ledger does it itself)"
fi
before=$(sha256sum ro/l.db ro/old.db; stat -c '%n %s %Y %a' ro/l.db ro/old.db)
run as_reader "$IOTFLEET" --ledger ro/l.db pool status -o csv
expect_rc 0 "pool status of a read-only ledger"
expect_out "^a1B2c3D4e5F,,3,0,0,0$" "pool status counts"
expect_eq "$err" "iotfleet: warning: ledger ro/l.db holds secrets and is readable by group or others $loose" "a reader only warns"
run as_reader "$IOTFLEET" --ledger ro/l.db pool export --state available -o csv
expect_rc 0 "pool export of a read-only ledger"
expect_out "^a1B2c3D4e5F,dev0003,device," "pool export rows"
expect_no_out "0123456789abcdef0123456789abcd03" "pool export masks secrets"
run as_reader "$IOTFLEET" --ledger ro/l.db pool log -o csv
expect_rc 0 "pool log of a read-only ledger"
expect_out "f.csv: 3 added, 0 already present" "pool log events"
run as_reader "$IOTFLEET" --ledger ro/old.db pool status -o csv
expect_rc 0 "pool status of a read-only schema-1 ledger"
expect_out "^a1B2c3D4e5F,,3,0,0,0$" "schema-1 counts"
expect_eq "$(python3 -c 'import sqlite3; print(sqlite3.connect("file:ro/old.db?mode=ro&immutable=1", uri=True).execute("PRAGMA user_version").fetchone()[0])')" 1 "a reader does not migrate"
expect_eq "$(ls -A ro | tr '\n' ' ')" "l.db old.db " "nothing left beside the ledgers"
expect_eq "$(sha256sum ro/l.db ro/old.db; stat -c '%n %s %Y %a' ro/l.db ro/old.db)" "$before" "the read-only ledgers are unchanged"
# A command that writes cannot, and says so.
run as_reader "$IOTFLEET" --ledger ro/l.db pool release dev0001 --reason test
if [ "$rc" -ne 0 ] && grep -q "ro/l.db" <<<"$err"; then ok; else fail "pool release of a read-only ledger: exit $rc: $err"; fi

finish
