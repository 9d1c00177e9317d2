#!/usr/bin/env bash
# ISP scale (run by hand, as root): a 10,000,000-name list, its compile time and RSS, then a
# list swap every 10 s while kxdpgun offers 80 % of the server's saturation rate.
#   sudo benches/load/swap_under_load.sh [seconds-per-window] [names]
#
# 1. The 1.46M-name union of ../shared/data padded with generated names to [names]
#    (default 10,000,000) is compiled twice (lists A and B differ in 1,000 names), timed
#    with /usr/bin/time: wall time and peak RSS of `kidsafe-dns compile`.
# 2. `serve` (one core, namespace `srv`, benches/load/xdp_lib.sh) on list A; its RSS after
#    300,000 blocked names were asked.
# 3. Saturation: kxdpgun offers ~3M qps of blocked names (www.<listed name>) for 5 s.
# 4. Two windows of [seconds-per-window] (default 60) at 80 % of that rate, each with
#    dnsperf beside kxdpgun at a fixed 2,000 qps (-v: every query's latency, for p50/p99;
#    over a second veth, xdp_second_link, since kxdpgun's XDP program takes every reply on
#    its own):
#    "steady" (no swap), then "swapping" (B and A renamed into place every 10 s, manifest
#    last, as a central's compile would). Printed per window: offered, answered and lost
#    (kxdpgun), dnsperf lost, p50 and p99 latency, swaps the server made (its
#    kidsafe_list_loads_total).
# Targets (issue 18): compile <= 30 s, RSS <= 150 MB serving, no query lost while swapping,
# p99 while swapping within 2x of steady.
set -euo pipefail
cd "$(dirname "$0")/../.."
WINDOW="${1:-60}"
NAMES="${2:-10000000}"
WORK="${WORK:-/tmp/kidsafe-swap}"
UNION=../shared/data/scale/blocklist-union-domains.txt.gz
BIN="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kidsafe-dns}"
ADMIN=9611
. benches/load/xdp_lib.sh
xdp_require
command -v dnsperf >/dev/null || apt-get install -y dnsperf >/dev/null
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null
[ -x "$BIN" ] || { echo "build first: cargo build --release (BIN=$BIN)"; exit 1; }
[ -f "$UNION" ] || { echo "need $UNION (../shared/data beside the repo)"; exit 1; }
mkdir -p "$WORK"

cleanup() {
  xdp_stop
  xdp_teardown
}
trap cleanup EXIT

# --- 1. the lists ---
if [ ! -f "$WORK/a.txt" ] || [ "$(wc -l <"$WORK/a.txt")" != "$NAMES" ]; then
  python3 - "$UNION" "$NAMES" "$WORK" <<'PY'
import gzip, random, sys
union, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
random.seed(7)
words = "casino bet adult xxx play slot porn cam poker lotto game win hot free video".split()
tlds = "com net org info xyz vn top site online club".split()
with open(f"{work}/a.txt", "w") as a, open(f"{work}/b.txt", "w") as b:
    c = 0
    for line in gzip.open(union, "rt"):
        a.write(line); b.write(line); c += 1
    while c < n:
        name = f"{random.choice(words)}{random.choice(words)}-{c:08x}.{random.choice(tlds)}\n"
        a.write(name)
        # B differs from A in the last 1,000 names: a swap is a real change.
        b.write(name if c < n - 1000 else f"other-{c:08x}.test\n")
        c += 1
PY
fi
compile() {
  /usr/bin/time -f "%e s wall, %M KiB peak RSS" -o "$WORK/$1.time" \
    "$BIN" compile --list "adult=$WORK/$1.txt" --out "$WORK/$1.fst" >/dev/null 2>&1
  echo "compile $1 ($NAMES names): $(cat "$WORK/$1.time"), $(stat -c %s "$WORK/$1.fst") B FST"
}
compile a
compile b

# The live list: A, renamed into place (never written over: the server maps it).
place() {
  for ext in fst fst.bloom; do
    cp "$WORK/$1.$ext" "$WORK/live.$ext.tmp" && mv "$WORK/live.$ext.tmp" "$WORK/live.$ext"
  done
  cp "$WORK/$1.fst.manifest.json" "$WORK/live.tmp" &&
    mv "$WORK/live.tmp" "$WORK/live.fst.manifest.json"
}
place a

cat >"$WORK/swap.toml" <<TOML
[server]
listen = ["$XDP_SRV_IP:53", "$XDP_SRV2_IP:53"]
threads = 1
[upstream]
servers = ["127.0.0.1:9"]
[lists]
compiled = "$WORK/live.fst"
[admin]
listen = ["127.0.0.1:$ADMIN"]
token = "swap-bench-token-0123456789"
TOML

# Queries: blocked names (a subdomain of a listed name), from the part A and B share.
head -n $((NAMES - 1000)) "$WORK/a.txt" | shuf -n 300000 --random-source=<(yes) |
  sed 's/^/www./; s/$/ A/' >"$WORK/q.txt"

xdp_teardown
xdp_setup
xdp_second_link
XDP_LOG="$WORK/serve.log" xdp_serve 1 "$BIN" serve --config "$WORK/swap.toml"
xdp_wait_udp "www.$(head -1 "$WORK/a.txt")"
ip netns exec gen dnsperf -s "$XDP_SRV_IP" -d "$WORK/q.txt" -l 5 -Q 60000 >/dev/null 2>&1 || true
echo "serve RSS after 300,000 blocked names: $(awk '/VmRSS/ {print $2, $3}' /proc/$XDP_PID/status)"

loads() {
  ip netns exec srv curl -s -H "Authorization: Bearer swap-bench-token-0123456789" \
    "http://127.0.0.1:$ADMIN/metrics" | awk '/^kidsafe_list_loads_total/ {print $2}'
}

# --- 3. saturation ---
read -r sat sent cpu < <(xdp_gun 5 "$WORK/q.txt")
rate=$((sat * 8 / 10))
echo "saturation: $sat answered/s of $sent offered ($cpu ns CPU per answer); windows at $rate qps"

# --- 4. the windows ---
window() {
  local name="$1" swapping="$2" before after gun perf
  before=$(loads)
  XDP_QPS=$rate XDP_GUN_OUT="$WORK/gun.$name" xdp_gun "$WINDOW" "$WORK/q.txt" >"$WORK/gunline.$name" &
  gun=$!
  ip netns exec gen taskset -c 0 dnsperf -s "$XDP_SRV2_IP" -d "$WORK/q.txt" -l "$WINDOW" \
    -Q 2000 -v >"$WORK/perf.$name" 2>&1 &
  perf=$!
  if [ "$swapping" = yes ]; then
    local t=0 which=b
    while [ $((t + 10)) -lt "$WINDOW" ]; do
      sleep 10; t=$((t + 10))
      place $which
      [ $which = b ] && which=a || which=b
    done
  fi
  wait $gun $perf || true
  after=$(loads)
  awk -v name="$name" -v swaps=$((after - before)) '
    /^total queries:/ {q=$3} /^total replies:/ {r=$3}
    END {printf "%-9s kxdpgun sent %d, answered %d, lost %d; list swaps %d\n", name, q, r, q - r, swaps}' \
    "$WORK/gun.$name"
  # dnsperf -v lines: "> NOERROR name A 0.000123" (latency in seconds, last field).
  grep -E '^> [A-Z]+ .* [0-9]+\.[0-9]+$' "$WORK/perf.$name" | awk '{print $NF * 1000}' | sort -n |
    awk -v name="$name" -v lost="$(awk '/Queries lost:/ {print $3}' "$WORK/perf.$name")" '
      {v[NR]=$1} END {printf "%-9s dnsperf %d answers at 2,000 qps, lost %s, p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
        name, NR, lost, v[int(NR*0.5)], v[int(NR*0.99)], v[NR]}'
}
window steady no
window swapping yes
