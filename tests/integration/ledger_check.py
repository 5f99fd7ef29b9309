#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks the factory ledger against what the simulated modules physically hold.

usage: ledger_check.py LEDGER STATE_DIR... [--total N] [--all-burned]

Reads the ledger (not through iotfleet: a file with Python's own sqlite3, a postgresql:// URL
with psql) and every module NVM file
(<module>-<index>[-g<generation>].json) in the simulator state dirs. Invariants (DESIGN.md):
  - no triplet in two modules, no secret in two modules;
  - a module holding credentials has a ledger row bound to its IMEI, state bound or burned,
    with exactly those credentials (bound = in doubt is allowed to hold it or not);
  - a burned row's module holds exactly its credentials;
  - a claimed row's module holds nothing of it (claimed = nothing sent yet);
  - with --total N: the ledger still has N triplets (none lost);
  - with --all-burned: no row is claimed or bound (the job is finished).
Prints each violation and exits 1 if there is any; prints a one-line summary otherwise.
"""
import glob
import json
import os
import sqlite3
import subprocess
import sys

TRIPLETS = "SELECT product_key, device_name, secret, state, imei FROM triplets"


def ledger_rows(ledger):
    """Every triplet row, read by another program than iotfleet."""
    if ledger.startswith(("postgresql://", "postgres://")):
        out = subprocess.run(["psql", ledger, "-X", "-At", "-F", "\t", "-c", TRIPLETS],
                             check=True, capture_output=True, text=True).stdout
        return [tuple(line.split("\t")) for line in out.splitlines() if line]
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    return db.execute(TRIPLETS).fetchall()


def unhex(value):
    return bytes.fromhex(value or "").decode("utf-8", "replace")


def module_credentials(nvm):
    """(device_name or None, secret or None) stored by a luat / quectel / esp-at module."""
    module = nvm.get("module")
    if module == "luat":
        sn = unhex(nvm.get("sn_hex"))
        if not sn:
            return None, None
        if "|" in sn:  # triplet layout: PK|DN|DS
            parts = sn.split("|")
            return parts[1], parts[-1]
        return nvm.get("imei"), sn  # secret layout: DN = IMEI
    if module == "quectel":
        for entry in nvm.get("aliauth") or []:
            if entry.get("index") == 0 and entry.get("device_secret_hex"):
                return unhex(entry.get("device_name_hex")), unhex(entry["device_secret_hex"])
        return None, None
    keys = (nvm.get("sysmfg") or {}).get("aliyun-key") or {}
    if keys.get("DeviceSecret"):
        dn = keys.get("DeviceName")
        return (unhex(dn["hex"]) if dn else None), unhex(keys["DeviceSecret"]["hex"])
    return None, None


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    total = None
    if "--total" in argv:
        total = int(argv[argv.index("--total") + 1])
        args.remove(argv[argv.index("--total") + 1])
    all_burned = "--all-burned" in argv
    ledger, dirs = args[0], args[1:]
    rows = ledger_rows(ledger)
    by_imei = {r[4]: r for r in rows if r[4]}
    violations = []

    modules = []
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(d, "*.json"))):
            if os.path.basename(path) == "ports.json":
                continue
            with open(path) as f:
                nvm = json.load(f)
            if "imei" not in nvm and "mac" not in nvm:
                continue
            dn, ds = module_credentials(nvm)
            modules.append((path, nvm.get("imei") or nvm.get("mac"), dn, ds))

    secrets_seen = {}
    holding = 0
    for path, imei, dn, ds in modules:
        if not ds:
            continue
        holding += 1
        if ds in secrets_seen:
            violations.append(f"secret of {dn} is in two modules: {secrets_seen[ds]} and {path}")
        secrets_seen[ds] = path
        row = by_imei.get(imei)
        if row is None:
            violations.append(f"{path} (IMEI {imei}) holds {dn} but no ledger row is bound to it")
            continue
        if row[3] not in ("bound", "burned"):
            violations.append(f"{path} holds {dn} but its ledger row is {row[3]}")
        if row[3] == "burned" and (row[2] != ds or row[1] != dn):
            violations.append(f"{path} holds {dn} but the ledger burned {row[1]} into IMEI {imei}")

    holders = {}
    for path, imei, dn, ds in modules:
        holders.setdefault(imei, []).append((path, dn, ds))
    for pk, dn, secret, state, imei in rows:
        held = [h for h in holders.get(imei, []) if h[2] == secret and h[1] == dn]
        if state == "burned" and not held:
            violations.append(f"ledger says {pk}/{dn} is burned into IMEI {imei}, "
                              f"but no module with that IMEI holds it")
        if state == "claimed" and held:
            violations.append(f"{pk}/{dn} is only claimed but module {held[0][0]} holds it")
        if all_burned and state in ("claimed", "bound"):
            violations.append(f"{pk}/{dn} is still {state} (IMEI {imei})")

    if total is not None and len(rows) != total:
        violations.append(f"the ledger holds {len(rows)} triplets, expected {total}")

    for v in violations:
        print("VIOLATION:", v)
    states = {}
    for r in rows:
        states[r[3]] = states.get(r[3], 0) + 1
    print(f"ledger_check: {len(rows)} triplets {states}, {len(modules)} modules, "
          f"{holding} holding credentials, {len(violations)} violations")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
