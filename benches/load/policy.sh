#!/usr/bin/env bash
# qps with per-client policy on vs off (run by hand, after compare.sh has built $WORK):
#   benches/load/policy.sh [seconds] [rounds]
# "off": no groups, no rate limit. "on": 10,000 client groups (one /24 each, plus the
# loopback group dnsperf falls in, with its own deny list and SafeSearch), allow_clients,
# and a rate limit high enough never to trigger (so its bookkeeping is measured, not its
# refusals). Same 2M-name list, blocked mix, 2 threads, dnsperf -c 4.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"; ROUNDS="${2:-2}"
WORK="${WORK:-/tmp/kidsafe-compare}"
PORT=5411
BIN=$PWD/target/release/kidsafe-dns
[ -f "$WORK/bench.fst" ] && [ -f "$WORK/q_blocked.txt" ] || { echo "run benches/load/compare.sh first"; exit 1; }
cargo build --release -q

base() {
  cat <<TOML
[server]
listen = ["127.0.0.1:$PORT"]
threads = 2
$1
[upstream]
servers = ["127.0.0.1:5400"]
[blocking]
mode = "nxdomain"
[lists]
compiled = "$WORK/bench.fst"
watch = false
[[lists.source]]
category = "blocked"
path = "$WORK/names.txt"
format = "domains"
TOML
}
base "" > "$WORK/policy-off.toml"
{
  base 'allow_clients = ["127.0.0.0/8", "10.0.0.0/8"]
rate_limit_qps = 1000000
rate_limit_burst = 2000000'
  cat <<TOML
[safesearch]
dir = "$PWD/blocklists/safesearch"
[[groups]]
name = "bench"
clients = ["127.0.0.0/8"]
deny = ["deny.example"]
safesearch = true
TOML
  for i in $(seq 0 9999); do
    printf '[[groups]]\nname = "g%d"\nclients = ["10.%d.%d.0/24"]\ncategories = ["blocked"]\n' "$i" $((i / 256)) $((i % 256))
  done
} > "$WORK/policy-on.toml"

for round in $(seq 1 "$ROUNDS"); do
  for mode in off on; do
    "$BIN" serve --config "$WORK/policy-$mode.toml" 2>"$WORK/policy-$mode.log" & PID=$!
    until dig +short +tries=1 +time=1 @127.0.0.1 -p $PORT x.test >/dev/null 2>&1; do sleep 0.05; done
    qps=$(dnsperf -s 127.0.0.1 -p $PORT -d "$WORK/q_blocked.txt" -c 4 -l "$SECS" -q 256 2>/dev/null | awk '/Queries per second/ {print $4}')
    echo "round $round policies $mode: $qps qps"
    kill $PID; wait $PID 2>/dev/null || true
  done
done
