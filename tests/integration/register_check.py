# SPDX-License-Identifier: MIT
"""Checks iotfleet's dynamic-registration records against the cloud emulator's state.

Reads the ledger and the emulator's cloud.db with Python's own sqlite3 (not iotfleet's code):

  check LEDGER CLOUD_DB PK NAMES_FILE [--all-issued]
      For every DeviceName in NAMES_FILE:
      - at most one 'issued' registration, and no pending one older than it (an answer
        supersedes every request before it);
      - newest issued: the pool's secret, the registration's and the cloud's are the same;
      - the device is activated in the cloud: a registration was issued and the pool holds the
        cloud's secret (a secret the cloud issued for a device that now connects is never lost);
      - a pool row of this product comes from an issued registration (or from no registration).
      --all-issued: every device's newest registration is issued.
  activate LEDGER CLOUD_URL PK COUNT SEED
      Activates (POST /_emulator/activate) up to COUNT random devices whose newest registration
      is issued and that are not activated yet: devices burned with their secret, connecting.
"""
import os
import random
import sqlite3
import sys
import urllib.parse
import urllib.request


def open_ledger(path):
    """The ledger read-only; an empty database when a killed run never created it."""
    if not os.path.exists(path):
        return sqlite3.connect(":memory:")
    # Read-write so that SQLite can recover the WAL of a killed writer (a read-only connection
    # may read the main file alone, mid-checkpoint); nothing is written.
    return sqlite3.connect(path)


def registrations(ledger, pk):
    rows = {}
    # A run killed before it created the ledger's tables has registered nothing.
    if not ledger.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'registrations'"
    ).fetchone():
        return rows
    for dn, status, secret in ledger.execute(
        "SELECT device_name, status, secret FROM registrations WHERE product_key = ? ORDER BY id",
        (pk,),
    ):
        if status != "failed":  # a refusal issued nothing and changed nothing
            rows.setdefault(dn, []).append((status, secret))
    return rows


def check(ledger_path, cloud_path, pk, names_path, all_issued):
    names = [l.strip() for l in open(names_path) if l.strip() and not l.startswith("#")]
    ledger = open_ledger(ledger_path)
    cloud = sqlite3.connect(f"file:{cloud_path}?mode=ro", uri=True)
    regs = registrations(ledger, pk)
    has_pool = ledger.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'triplets'"
    ).fetchone()
    pool = dict(
        ledger.execute(
            "SELECT device_name, secret FROM triplets WHERE product_key = ?", (pk,)
        ).fetchall()
    ) if has_pool else {}
    devices = {
        dn: (secret, active)
        for dn, secret, active in cloud.execute(
            "SELECT device_name, device_secret, active_ms FROM devices WHERE product_key = ?",
            (pk,),
        )
    }
    problems = []
    counts = {"issued": 0, "pending": 0, "none": 0, "activated": 0}
    for dn in names:
        rows = regs.get(dn, [])
        cloud_secret, active = devices.get(dn, (None, 0))
        if active:
            counts["activated"] += 1
        issued = [s for st, s in rows if st == "issued"]
        if len(issued) > 1:
            problems.append(f"{dn}: {len(issued)} issued registrations")
        answered = max((i for i, (st, _) in enumerate(rows) if st == "issued"), default=-1)
        # (rows[:-1] would be every row but the last: without an issued one there is no "before")
        if answered >= 0 and any(st == "pending" for st, _ in rows[:answered]):
            problems.append(f"{dn}: a pending registration older than the issued one")
        newest = rows[-1][0] if rows else "none"
        counts[newest if newest in counts else "none"] += 1
        if newest == "issued":
            secret = rows[-1][1]
            if pool.get(dn) != secret:
                problems.append(f"{dn}: the pool's secret is not the issued one")
            if cloud_secret != secret:
                problems.append(f"{dn}: the cloud's secret is not the issued one (lost a secret)")
        if active and not issued:
            problems.append(f"{dn}: activated in the cloud but no registration was issued")
        if active and pool.get(dn) != cloud_secret:
            problems.append(f"{dn}: activated with a secret the pool does not hold")
        if dn in pool and rows and pool[dn] not in issued:
            problems.append(f"{dn}: the pool's secret is not from an issued registration")
        if all_issued and newest != "issued":
            problems.append(f"{dn}: newest registration is {newest}, not issued")
    for p in problems[:20]:
        print(p)
    print(
        f"{len(names)} devices: {counts['issued']} issued, {counts['pending']} pending, "
        f"{counts['none']} other, {counts['activated']} activated; {len(problems)} problems"
    )
    return 1 if problems else 0


def activate(ledger_path, url, pk, count, seed):
    ledger = open_ledger(ledger_path)
    regs = registrations(ledger, pk)
    ready = sorted(dn for dn, rows in regs.items() if rows[-1][0] == "issued")
    random.Random(seed).shuffle(ready)
    done = 0
    for dn in ready:
        if done >= count:
            break
        body = urllib.parse.urlencode({"productKey": pk, "deviceName": dn}).encode()
        try:
            urllib.request.urlopen(url + "/_emulator/activate", data=body, timeout=10).read()
            done += 1
        except urllib.error.HTTPError as e:  # already activated devices answer 200 too
            print(f"activate {dn}: HTTP {e.code}", file=sys.stderr)
            return 1
    print(f"activated {done}")
    return 0


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "check":
        sys.exit(check(args[0], args[1], args[2], args[3], "--all-issued" in args[4:]))
    if cmd == "activate":
        sys.exit(activate(args[0], args[1], args[2], int(args[3]), int(args[4])))
    sys.exit(f"unknown command {cmd}")
