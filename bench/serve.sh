#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark: iotfleet serve under load (bench/RESULTS.md).
#
# A pool of 200 devices on an SQLite ledger, each already bound to its module by a first request,
# so every measured request is a module fetching its secret again: parse, sign check, one ledger
# transaction with its audit event, the answer. `iotfleet-sim load` keeps C connections busy over
# verified TLS (an ECDSA P-256 certificate), one request per connection and a full handshake, as
# devices booting do (serve's default --keep-alive 1), for D seconds. The baseline is GET /healthz
# of the same server: the same HTTP and TLS stack and a ledger read, without the device protocol.
# Reported, medians over RUNS runs (default 3): requests per second, client-side p50 / p99
# (closed loop: queueing included, with C clients latency is about C / throughput; open loop at
# RATES: counted from when each request was due), and the CPU per request of the server and of
# the load generator (both on the same cores).
# The cloud-miss path: 1 000 devices only in iotfleet-sim cloud (QueryDeviceDetail at its
# documented 50 QPS), serve --cloud-lookup --cloud-queue 8, 8 clients: lookups per second
# against the QPS ceiling.
# Usage: bench/serve.sh [BUILD_DIR]   (prints Markdown; see bench/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-${BUILD_DIR:-build}}
iotfleet="$PWD/$build_dir/iotfleet"
sim="$PWD/$build_dir/iotfleet-sim"
runs=${RUNS:-3}
load_threads=${LOAD_THREADS:-2} # the load generator's event loops: one per core
duration=${DURATION:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/iotfleet-bench-serve.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home" IOTFLEET_LEDGER="$work/ledger.db"
mkdir -p "$HOME"
cd "$work"
pk=a1BenchServ1
enroll=EnrollSecret-bench-0123456789
bodies() { # bodies PK FIRST LAST: one signed request per device dev-FIRST..dev-LAST
  python3 - "$OLDPWD/tests/integration" "$enroll" "$@" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import serve_client
secret, pk, first, last = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
for n in range(first, last + 1):
    d = "86993945" + "%06d" % n
    s = sum(int(c) if i % 2 == 0 else sum(divmod(2 * int(c), 10)) for i, c in enumerate(d))
    fields = {"productKey": pk, "deviceName": "dev-%04d" % n, "random": "b%d" % n,
              "imei": d + str((10 - s % 10) % 10)}
    print(serve_client.body(secret, fields))
PY
}
start_serve() { # start_serve ARGS...: sets $url
  "$iotfleet" "$@" serve --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key key.pem \
    --enrollment enroll.csv --per-device 0 --per-address 0 --access-log /dev/null \
    2>serve.err &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" serve.err 2>/dev/null && break; sleep 0.05; done
  url=$(grep -o 'https://127.0.0.1:[0-9]*' serve.err | head -n1)
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The server's p99 from the histogram's buckets (the first bucket holding 99 % of the requests).
server_p99() {
  curl -sS --cacert cert.pem "$url/metrics" | awk '
    /^iotfleet_serve_request_seconds_bucket/ { match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); n[++k] = $2; b[k] = le }
    /^iotfleet_serve_request_seconds_count/ { total = $2 }
    END { for (i = 1; i <= k; i++) if (n[i] >= 0.99 * total) { print (b[i] == "+Inf" ? "inf" : b[i] * 1000); exit } }'
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem \
  -out cert.pem -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
printf 'product_key,scheme,secret\n%s,product,%s\n' "$pk" "$enroll" >enroll.csv
chmod 600 enroll.csv
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1 200); do printf '%s,dev-%04d,S%031d\n' "$pk" "$n" "$n"; done
} >pool.csv
"$iotfleet" pool import pool.csv -q >/dev/null
bodies "$pk" 1 200 >bodies.txt
start_serve
"$sim" load "$url/auth/register/device" --bodies bodies.txt --ca cert.pem --concurrency 20 \
  --duration 1 >/dev/null # every device bound: what follows is the refetch path

server_pid=${pids[-1]}
ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; } # the server's CPU, 1/100 s
# load ARGS...: one run of iotfleet-sim load; prints its JSON with the server's and the load
# generator's CPU per request (ms) added.
load() {
  local t0 t1 out
  t0=$(ticks)
  out=$("$sim" load "$@" --threads "$load_threads")
  t1=$(ticks)
  jq -c --argjson server "$(((t1 - t0) * 10))" \
    '. + { server_cpu_ms: ($server / .requests), client_cpu_ms: (.cpu_seconds * 1000 / .requests) }' <<<"$out"
}
med() { printf '%s\n' "${runs_out[@]}" | jq -r "$1" | median; } # med FIELD: over $runs_out
# row NAME CLIENTS ARGS...: the medians of RUNS runs as a table row.
row() {
  local name=$1 clients=$2
  runs_out=()
  shift 2
  for _ in $(seq "$runs"); do runs_out+=("$(load "$@" --concurrency "$clients" --duration "$duration")"); done
  printf '| %s | %s | %.0f | %.1f / %.1f | %.2f / %.2f |\n' "$name" "$clients" "$(med .per_second)" \
    "$(med .p50_ms)" "$(med .p99_ms)" "$(med .server_cpu_ms)" "$(med .client_cpu_ms)"
}
register=("$url/auth/register/device" --bodies bodies.txt --ca cert.pem)
echo "Closed loop: each client's next request starts when its answer is in."
echo
echo "| request | clients | requests/s (median of $runs runs of ${duration} s) | p50 / p99 (ms) | CPU per request, server / load generator (ms) |"
echo "|---|---|---|---|---|"
for clients in 50 200; do
  row "GET /healthz (baseline: TLS, HTTP, a ledger read)" "$clients" "$url/healthz" --ca cert.pem
  row "POST /auth/register/device (a module fetching its secret again)" "$clients" "${register[@]}"
done
# First boot: every request binds a device of its own (a new body file per run).
bind_per_run=$((duration * 4000))
{
  echo "ProductKey,DeviceName,DeviceSecret"
  for n in $(seq 1001 $((1000 + runs * bind_per_run))); do printf '%s,dev-%04d,S%031d\n' "$pk" "$n" "$n"; done
} >bind-pool.csv
"$iotfleet" pool import bind-pool.csv -q >/dev/null
runs_out=()
for r in $(seq "$runs"); do
  first=$((1001 + (r - 1) * bind_per_run))
  bodies "$pk" "$first" $((first + bind_per_run - 1)) >"bind-$r.txt"
  runs_out+=("$(load "$url/auth/register/device" --bodies "bind-$r.txt" --ca cert.pem --concurrency 200 --duration "$duration")")
done
issued=$(printf '%s\n' "${runs_out[@]}" | jq -s 'map(.statuses."200" // 0) | add')
printf '| %s | %s | %.0f | %.1f / %.1f | %.2f / %.2f |\n' "POST /auth/register/device (first boot: binds a new device; $issued bound)" 200 \
  "$(med .per_second)" "$(med .p50_ms)" "$(med .p99_ms)" "$(med .server_cpu_ms)" "$(med .client_cpu_ms)"
echo
echo "Open loop: requests started at a fixed rate from up to 200 connections, latency counted from"
echo "when each was due (waiting for a free connection included)."
echo
echo "| offered requests/s | answered requests/s | p50 / p99 (ms) | CPU per request, server / load generator (ms) |"
echo "|---|---|---|---|"
for rate in ${RATES:-1000 2000 2400}; do
  runs_out=()
  for _ in $(seq "$runs"); do
    runs_out+=("$(load "${register[@]}" --concurrency 200 --duration "$duration" --rate "$rate" 2>/dev/null)")
  done
  printf '| %s | %.0f | %.1f / %.1f | %.2f / %.2f |\n' "$rate" "$(med .per_second)" "$(med .p50_ms)" \
    "$(med .p99_ms)" "$(med .server_cpu_ms)" "$(med .client_cpu_ms)"
done
echo
echo "server p99 (handler time, all of the above): $(server_p99) ms"
kill "${pids[-1]}" 2>/dev/null || true
wait "${pids[-1]}" 2>/dev/null || true

# The cloud-miss path.
cat >scenario.json <<JSON
{"access_keys": [{"id": "LTAI5tBenchServe01", "secret": "benchServeAccessSecret01"}],
 "products": [{"product_key": "a1BenchMiss1", "product_secret": "ProductSecret0001",
   "generate": {"count": 1000, "names": "sequence", "prefix": "dev-", "digits": 4}}]}
JSON
printf 'benchServeAccessSecret01\n' >ak.secret
chmod 600 ak.secret
"$sim" cloud --listen 127.0.0.1:0 --state-dir cloud --scenario scenario.json >cloud.out 2>cloud.err &
pids+=($!)
for _ in $(seq 300); do grep -qx ready cloud.err 2>/dev/null && break; sleep 0.1; done
printf 'product_key,scheme,secret\na1BenchMiss1,product,%s\n' "$enroll" >enroll.csv
"$iotfleet" --endpoint "$(head -n1 cloud.out)" --access-key-id LTAI5tBenchServe01 --access-key-secret-file ak.secret \
  serve --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key key.pem --enrollment enroll.csv \
  --cloud-lookup --cloud-queue 8 --per-device 0 --per-address 0 --threads 16 --access-log /dev/null 2>miss.err &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" miss.err 2>/dev/null && break; sleep 0.05; done
miss_url=$(grep -o 'https://127.0.0.1:[0-9]*' miss.err | head -n1)
bodies a1BenchMiss1 1 1000 >miss.txt
out=$("$sim" load "$miss_url/auth/register/device" --bodies miss.txt --ca cert.pem --concurrency 8 --duration 8)
lookups=$(curl -sS --cacert cert.pem "$miss_url/metrics" | awk '/^iotfleet_serve_cloud_lookups_total/ { print $2 }')
echo
awk -v n="$lookups" -v s="$(jq .seconds <<<"$out")" -v ok="$(jq '.statuses."200" // 0' <<<"$out")" \
  -v other="$(jq '[.statuses | to_entries[] | select(.key != "200") | .value] | add // 0' <<<"$out")" \
  'BEGIN { printf "cloud-miss path: %d QueryDeviceDetail lookups in %.1f s = %.1f/s, %.0f %% of the 50 QPS ceiling; %d answered 200, %d otherwise\n", n, s, n / s, 100 * n / s / 50, ok, other }'
