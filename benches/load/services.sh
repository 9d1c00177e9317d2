#!/usr/bin/env bash
# Matching cost of blocked services and windows (run by hand):
#   benches/load/services.sh [seconds] [rounds]
# One profile for the load's source (127.0.0.0/8) blocks the sample list's categories;
# "with" adds 50 blocked services of the catalog and 3 windows (a school-hours block
# window, a bedtime block window, a weekend allow window), "without" has neither. Both
# answer the same blocked names (the shared list's) from the same process setup,
# alternating, dnsperf on loopback. Reports UDP qps per round and the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"; ROUNDS="${2:-2}"
PORT=5454
BIN="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kidsafe-dns}"
[ -x "$BIN" ] || { echo "build first: cargo build --release (BIN=$BIN)"; exit 1; }
command -v dnsperf >/dev/null || { echo "needs dnsperf"; exit 1; }
WORK="$(mktemp -d /tmp/kidsafe-services.XXXXXX)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

services=$(grep -h '^id = ' data/services/*.toml | head -50 | sed 's/id = //' | paste -sd, -)
config() { # $1: extra group keys
  cat <<TOML
[server]
listen = ["127.0.0.1:$PORT"]
threads = 2
[upstream]
servers = ["127.0.0.1:9"]
[lists]
compiled = "$WORK/list.fst"
state_dir = "$WORK"
watch = false
[[lists.source]]
category = "adult"
path = "$PWD/blocklists/adult.txt"
format = "domains"
[[groups]]
name = "kids"
clients = ["127.0.0.0/8"]
categories = ["adult"]
$1
TOML
}
config "" >"$WORK/without.toml"
config "services = [$services]
[[groups.schedules]]
days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]
start = \"08:00\"
end = \"16:00\"
timezone = \"Asia/Ho_Chi_Minh\"
action = \"block\"
service_groups = [\"games\", \"social\"]
[[groups.schedules]]
days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]
start = \"21:00\"
end = \"06:30\"
timezone = \"Asia/Ho_Chi_Minh\"
action = \"block\"
service_groups = [\"video\"]
[[groups.schedules]]
days = [\"sat\", \"sun\"]
start = \"14:00\"
end = \"17:00\"
timezone = \"Asia/Ho_Chi_Minh\"
action = \"allow\"
services = [\"roblox\"]" >"$WORK/with.toml"
for n in pornhub.com xvideos.com www.pornhub.com; do echo "$n A"; done >"$WORK/q.txt"

run() { # $1: config; prints qps
  "$BIN" serve --config "$1" >"$WORK/log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do
    dig -p "$PORT" @127.0.0.1 +time=1 +tries=1 pornhub.com >/dev/null 2>&1 && break
    sleep 0.1
  done
  dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/q.txt" -l "$SECS" -c 4 -q 200 2>/dev/null \
    | awk '/Queries per second/ {print int($4)}'
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}
for r in $(seq "$ROUNDS"); do
  a=$(run "$WORK/without.toml"); b=$(run "$WORK/with.toml")
  echo "round $r: without $a qps, with 50 services + 3 windows $b qps, ratio $(python3 -c "print(round($b / $a, 3))")"
done
