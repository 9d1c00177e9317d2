#!/usr/bin/env bash
# Two builds of kidsafe-dns on the same config and the same names, alternating (run by
# hand, as root): what one change bought or cost, per core.
#   BIN_A=/tmp/kidsafe-before BIN_B=$CARGO_TARGET_DIR/release/kidsafe-dns \
#     benches/load/ab_binaries.sh [seconds] [rounds]
# kxdpgun in a network namespace on core 0 against the server pinned to core 1 with one
# thread (benches/load/xdp_lib.sh). The config is services.sh's "with" profile (the load's
# source is profile `kids`: the sample adult list, 50 blocked services, 3 windows), so
# every query takes the per-profile path: its activity counters, its windows. The names
# are blocked ones (the shared list's), answered without an upstream. Prints each round's
# qps and CPU per answer, then the median and range of B/A.
# TRANSPORT=tcp: over TCP (kxdpgun -T, one query per connection).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, AF_XDP)"; exit 1; }
SECS="${1:-10}"; ROUNDS="${2:-4}"
: "${BIN_A:?BIN_A: the build to compare against}" "${BIN_B:?BIN_B: the build under test}"
. benches/load/xdp_lib.sh
xdp_setup
WORK="$(mktemp -d /tmp/kidsafe-ab.XXXXXX)"
cleanup() { xdp_stop; xdp_teardown; rm -rf "$WORK"; }
trap cleanup EXIT

services=$(grep -h '^id = ' data/services/*.toml | head -50 | sed 's/id = //' | paste -sd, -)
config() { # $1: the build's own state dir (a newer build may migrate a store the older refuses)
  mkdir -p "$1"
  cat <<TOML
[server]
listen = ["$XDP_SRV_IP:53"]
threads = 1
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
[[groups]]
name = "kids"
clients = ["127.0.0.0/8", "10.200.0.0/24"]
categories = ["adult"]
services = [$services]
[[groups.schedules]]
days = ["mon", "tue", "wed", "thu", "fri"]
start = "08:00"
end = "16:00"
timezone = "Asia/Ho_Chi_Minh"
action = "block"
service_groups = ["games", "social"]
[[groups.schedules]]
days = ["sat", "sun"]
start = "14:00"
end = "17:00"
timezone = "Asia/Ho_Chi_Minh"
action = "allow"
services = ["roblox"]
TOML
}
config "$WORK/a" >"$WORK/a.toml"
config "$WORK/b" >"$WORK/b.toml"
for n in pornhub.com xvideos.com www.pornhub.com; do echo "$n A"; done >"$WORK/q.txt"

run() { # $1: binary, $2: its config; prints "qps cpu-ns-per-answer"
  xdp_serve 1 "$1" serve --config "$2"
  xdp_wait_udp pornhub.com
  local args=(); [ "${TRANSPORT:-udp}" = tcp ] && args=(-T)
  xdp_gun "$SECS" "$WORK/q.txt" "${args[@]}" >"$WORK/gun"
  xdp_stop
  cut -d' ' -f1,3 "$WORK/gun"
}
ratios=(); cpu=()
for r in $(seq "$ROUNDS"); do
  read -r a acpu <<<"$(run "$BIN_A" "$WORK/a.toml")"; read -r b bcpu <<<"$(run "$BIN_B" "$WORK/b.toml")"
  ratios+=("$(python3 -c "print(round($b / $a, 3))")")
  cpu+=("$(python3 -c "print(round($bcpu / $acpu, 3))")")
  echo "round $r: A $a qps ($acpu ns CPU/answer), B $b qps ($bcpu ns), qps B/A ${ratios[-1]}, CPU B/A ${cpu[-1]}"
done
summary='import statistics,sys; r=[float(x) for x in sys.argv[2:]]; print(f"{sys.argv[1]} median {statistics.median(r):.3f}, min {min(r):.3f}, max {max(r):.3f} over {len(r)} rounds")'
python3 -c "$summary" "qps B/A" "${ratios[@]}"
python3 -c "$summary" "CPU per answer B/A" "${cpu[@]}"
