#!/usr/bin/env bash
# Profiles at ISP scale on one node (run by hand):
#   benches/load/profiles_scale.sh [profiles] [subscriber-rows]
# 100,000 stored profiles (each with an `ip` identity, a third with their own categories)
# written straight into the SQLite store the resolver keeps, and a 5,000,000-row
# subscriber map (one /32 per line, spread over the profiles). Reports, for the same
# config with and without them: start to first answer (a blocked name, answered
# locally), RSS once answering, and RSS growth per subscriber row. "cold" compiles the
# subscriber map at start; "warm" starts on the map compiled by the run before (a
# restart, the usual case). Uses only loopback.
set -euo pipefail
cd "$(dirname "$0")/../.."
PROFILES="${1:-100000}"; ROWS="${2:-5000000}"
PORT=5453
BIN="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kidsafe-dns}"
[ -x "$BIN" ] || { echo "build first: cargo build --release (BIN=$BIN)"; exit 1; }
if ss -lnu "sport = :$PORT" 2>/dev/null | grep -q ":$PORT"; then
  echo "port $PORT is taken (a server left from an earlier run?)"; exit 1
fi
WORK="$(mktemp -d /tmp/kidsafe-scale.XXXXXX)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
[ -n "${DEBUG:-}" ] && set -x

config() { # $1: state dir, $2: extra TOML
  cat <<TOML
[server]
listen = ["127.0.0.1:$PORT"]
threads = 2
[upstream]
servers = ["127.0.0.1:9"]
[lists]
compiled = "$1/list.fst"
state_dir = "$1"
watch = false
[[lists.source]]
category = "adult"
path = "$PWD/blocklists/adult.txt"
format = "domains"
$2
TOML
}

# Sets MS to the milliseconds from exec to the first answer; leaves the server running
# as $PID.
start() { # $1: config file
  local t0 t1
  t0=$(date +%s%N)
  "$BIN" serve --config "$1" >"$WORK/log" 2>&1 &
  PID=$!
  # A UDP query every 10 ms (kdig's shortest timeout is 1 s: too coarse here).
  python3 - "$PORT" "$PID" <<'PY' || { cat "$WORK/log"; exit 1; }
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
q = bytes.fromhex("abcd01000001000000000000") + b"\x07pornhub\x03com\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.01)
while True:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(1)
    s.sendto(q, ("127.0.0.1", port))
    try:
        r = s.recv(512)
        if r[:2] == q[:2] and r[3] & 0x0F == 3:  # NXDOMAIN: the list answered
            break
    except (socket.timeout, ConnectionRefusedError):
        pass
PY
  t1=$(date +%s%N)
  MS=$(( (t1 - t0) / 1000000 ))
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

# Without: the same config, no profiles, no map.
mkdir -p "$WORK/plain"
config "$WORK/plain" "" >"$WORK/plain.toml"
start "$WORK/plain.toml"; stop      # compile the list once
start "$WORK/plain.toml"; ms_plain=$MS; rss_plain=$(rss_kb "$PID"); stop

# With: create the store (one run), fill it, write the subscriber file.
mkdir -p "$WORK/scale"
config "$WORK/scale" "" >"$WORK/scale.toml"
start "$WORK/scale.toml"; stop      # creates profiles.sqlite, compiles the list
python3 - "$WORK/scale" "$PROFILES" "$ROWS" <<'PY'
import json, sqlite3, sys
state, profiles, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(f"{state}/profiles.sqlite")
def spec(i):
    s = {"name": f"family-{i}", "categories": ["adult"] if i % 3 == 0 else None,
         "allow": [], "deny": [], "safesearch": False, "youtube": "strict",
         "mode": None, "schedule": None}
    return json.dumps(s)
db.executemany("INSERT INTO profiles (id, name, settings, version) VALUES (?, ?, ?, 1)",
               ((i, f"family-{i}", spec(i)) for i in range(1, profiles + 1)))
# 10.64.0.0/10 for the profiles' own addresses, 100.64.0.0/10 for subscriber lines.
def v4(base, i):
    n = base + i
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
db.executemany("INSERT INTO identities (profile_id, kind, value) VALUES (?, 'ip', ?)",
               ((i, v4(0x0A400000, i)) for i in range(1, profiles + 1)))
db.commit()
with open(f"{state}/subscribers.txt", "w") as f:
    for r in range(rows):
        f.write(f"{v4(0x64400000, r)} p{r % profiles + 1}\n")
PY
config "$WORK/scale" "[subscribers]
path = \"$WORK/scale/subscribers.txt\"" >"$WORK/scale.toml"
start "$WORK/scale.toml"; ms_cold=$MS; stop
start "$WORK/scale.toml"; ms_warm=$MS; rss_scale=$(rss_kb "$PID")
stop
# UDP qps, same harness, alternating: blocked names from a client no profile or line
# names (every table is asked and misses: the most work choosing costs).
qps() { dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/q.txt" -l "${SECS:-10}" -c 4 -q 200 2>/dev/null | awk '/Queries per second/ {print int($4)}'; }
if command -v dnsperf >/dev/null; then
  for n in pornhub.com xvideos.com www.pornhub.com; do echo "$n A"; done >"$WORK/q.txt"
  for round in 1 2; do
    start "$WORK/plain.toml"; q_plain[$round]=$(qps); stop
    start "$WORK/scale.toml"; q_scale[$round]=$(qps); stop
  done
fi
per_row=$(python3 -c "print(round(($rss_scale - $rss_plain) * 1024 / $ROWS, 1))")
echo "profiles=$PROFILES subscriber_rows=$ROWS"
echo "start to first answer: without ${ms_plain} ms; with: cold (map compiled at start) ${ms_cold} ms, warm ${ms_warm} ms"
echo "RSS answering: without $((rss_plain / 1024)) MiB, with $((rss_scale / 1024)) MiB; growth ${per_row} B per subscriber row (profiles included)"
if command -v dnsperf >/dev/null; then
  echo "UDP qps, blocked names (2 rounds): without ${q_plain[1]} ${q_plain[2]}; with ${q_scale[1]} ${q_scale[2]}"
fi
