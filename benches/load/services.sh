#!/usr/bin/env bash
# Matching cost of blocked services and windows (run by hand):
#   benches/load/services.sh [seconds] [rounds]
# One profile for the load's source (127.0.0.0/8) blocks the sample list's categories;
# "with" adds 50 blocked services of the catalog and 3 windows (a school-hours block
# window, a bedtime block window, a weekend allow window), "without" has neither. Both
# answer the same blocked names (the shared list's) from the same process setup,
# alternating. Reports UDP qps per round and the ratio.
#
# GEN=xdp (as root): kxdpgun in a network namespace on core 0 against the server pinned to
# core 1 with one thread (benches/load/xdp_lib.sh), so the generator is not the bottleneck;
# prints the median and range of the ratio. Default: dnsperf on loopback, sharing the cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"; ROUNDS="${2:-2}"
PORT=5454
GEN="${GEN:-dnsperf}"
ADDR=127.0.0.1; THREADS=2; CLIENTS='"127.0.0.0/8"'
if [ "$GEN" = xdp ]; then
  . benches/load/xdp_lib.sh
  xdp_setup
  PORT=53; ADDR=$XDP_SRV_IP; THREADS=1; CLIENTS='"127.0.0.0/8", "10.200.0.0/24"'
fi
BIN="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kidsafe-dns}"
[ -x "$BIN" ] || { echo "build first: cargo build --release (BIN=$BIN)"; exit 1; }
command -v dnsperf >/dev/null || { echo "needs dnsperf"; exit 1; }
WORK="$(mktemp -d /tmp/kidsafe-services.XXXXXX)"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null
  if [ "$GEN" = xdp ]; then xdp_stop; xdp_teardown; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

services=$(grep -h '^id = ' data/services/*.toml | head -50 | sed 's/id = //' | paste -sd, -)
config() { # $1: extra group keys
  cat <<TOML
[server]
listen = ["$ADDR:$PORT"]
threads = $THREADS
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
clients = [$CLIENTS]
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
  if [ "$GEN" = xdp ]; then
    xdp_serve 1 "$BIN" serve --config "$1"
    xdp_wait_udp pornhub.com
    xdp_gun "$SECS" "$WORK/q.txt" >"$WORK/gun"
    xdp_stop
    cut -d' ' -f1,3 "$WORK/gun"
    return
  fi
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
ratios=(); cpu=()
for r in $(seq "$ROUNDS"); do
  read -r a acpu <<<"$(run "$WORK/without.toml")"; read -r b bcpu <<<"$(run "$WORK/with.toml")"
  ratio=$(python3 -c "print(round($b / $a, 3))")
  ratios+=("$ratio")
  if [ -n "${acpu:-}" ]; then
    cpu+=("$(python3 -c "print(round($acpu / $bcpu, 3))")")
    echo "round $r: without $a qps ($acpu ns CPU/answer), with 50 services + 3 windows $b qps ($bcpu ns), ratio $ratio, CPU ratio ${cpu[-1]}"
  else
    echo "round $r: without $a qps, with 50 services + 3 windows $b qps, ratio $ratio"
  fi
done
summary='import statistics,sys; r=[float(x) for x in sys.argv[2:]]; print(f"{sys.argv[1]} median {statistics.median(r):.3f}, min {min(r):.3f}, max {max(r):.3f} over {len(r)} rounds")'
python3 -c "$summary" "qps ratio (with/without)" "${ratios[@]}"
[ ${#cpu[@]} -eq 0 ] || python3 -c "$summary" "CPU-per-answer ratio (without/with)" "${cpu[@]}"
