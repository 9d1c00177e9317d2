#!/usr/bin/env bash
# Load figures for the resolver (run by hand, not in CI):
#   benches/load/resolver.sh [seconds-per-run]
# Installs dnsperf and NSD from Debian, serves a generated zone from NSD on loopback as the
# upstream, compiles a 2M-name list (the 1.46M real union from ../shared/data plus synthetic
# names), starts kidsafe-dns on it, and runs dnsperf for blocked and forwarded names.
# Prints qps and latency per mix, RSS at rest, and time from start to first answer.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"
WORK="${WORK:-/tmp/kidsafe-load}"
UNION=../shared/data/scale/blocklist-union-domains.txt.gz
KPORT=5391
NPORT=5390
mkdir -p "$WORK"

for tool in dnsperf nsd; do
  command -v "$tool" >/dev/null || command -v "/usr/sbin/$tool" >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf nsd bind9-dnsutils; }
done
[ -f "$UNION" ] || { echo "need $UNION (../shared/data)"; exit 1; }
cargo build --release -q
BIN=target/release/kidsafe-dns

# --- upstream: NSD authoritative for load.test with 20k names ---
if [ ! -f "$WORK/load.test.zone" ]; then
  {
    echo '$ORIGIN load.test.'
    echo '$TTL 3600'
    echo '@ SOA ns.load.test. admin.load.test. 1 3600 600 86400 300'
    echo '@ NS ns.load.test.'
    echo 'ns A 127.0.0.1'
    for i in $(seq 1 20000); do echo "n$i A 192.0.2.$((i % 250 + 1))"; done
  } > "$WORK/load.test.zone"
fi
cat > "$WORK/nsd.conf" <<NSD
server:
  ip-address: 127.0.0.1@$NPORT
  zonesdir: "$WORK"
  pidfile: "$WORK/nsd.pid"
  database: ""
  username: ""
  server-count: 1
  verbosity: 0
  rrl-ratelimit: 0
zone:
  name: load.test
  zonefile: load.test.zone
NSD
pkill -f "nsd -c $WORK/nsd.conf" 2>/dev/null || true
/usr/sbin/nsd -c "$WORK/nsd.conf"
trap 'kill $(cat "$WORK/nsd.pid") 2>/dev/null || true; kill "${KPID:-0}" 2>/dev/null || true' EXIT

# --- the 2M list ---
if [ ! -f "$WORK/synthetic.txt" ]; then
  python3 benches/load/gen_names.py 540000 42 > "$WORK/synthetic.txt"
fi
cat > "$WORK/kidsafe.toml" <<TOML
[server]
listen = ["127.0.0.1:$KPORT"]
[upstream]
servers = ["127.0.0.1:$NPORT"]
timeout_ms = 2000
[blocking]
mode = "nxdomain"
[lists]
compiled = "$WORK/bench.fst"
[[lists.source]]
category = "union"
path = "$(realpath "$UNION")"
[[lists.source]]
category = "synthetic"
path = "$WORK/synthetic.txt"
TOML
echo "== compile 2M"
/usr/bin/time -f "compile: %e s, max RSS %M KB" "$BIN" compile --config "$WORK/kidsafe.toml" > "$WORK/compile.out"; tail -4 "$WORK/compile.out"

# --- query files ---
zcat "$UNION" | awk 'NR % 97 == 0 && ++n <= 100000 { print "www." $1 " A" }' > "$WORK/q_blocked.txt"
seq 1 20000 | awk '{ print "n" $1 ".load.test A" }' > "$WORK/q_forwarded.txt"

echo "== start kidsafe-dns"
start=$(date +%s.%N)
"$BIN" serve --config "$WORK/kidsafe.toml" 2>"$WORK/kidsafe.log" &
KPID=$!
until dig +short +tries=1 +time=1 @127.0.0.1 -p $KPORT n1.load.test A >/dev/null 2>&1; do sleep 0.01; done
echo "first answer after $(echo "$(date +%s.%N) - $start" | bc) s"
sleep 1
echo "RSS at rest with the 2M list: $(ps -o rss= -p $KPID) KB"

run() {
  local label=$1 file=$2
  dnsperf -s 127.0.0.1 -p $KPORT -d "$file" -c 4 -l "$SECS" -q 200 2>&1 \
    | awk -v l="$label" '/Queries per second/ {q=$4} /Average Latency/ {lat=$4} /Queries lost/ {lost=$3}
        END { printf "%-22s %10.0f qps  avg latency %s s  lost %s\n", l, q, lat, lost }'
}
echo "== dnsperf -c 4 -q 200, ${SECS}s each"
run blocked "$WORK/q_blocked.txt"
run forwarded "$WORK/q_forwarded.txt"
echo "RSS after load: $(ps -o rss= -p $KPID) KB"
