#!/usr/bin/env bash
# Side-by-side load benchmark: kidsafe-dns vs Unbound, same blocklist, same upstream (run by
# hand, not in CI):
#   benches/load/compare.sh [seconds-per-run] [rounds]
#
# - installs dnsperf, unbound and NSD from Debian if missing;
# - NSD on loopback is the authoritative upstream for load.test (20k names + a wildcard
#   under miss.load.test for never-seen names);
# - the blocklist is the real 1.46M-name union from ../shared/data plus synthetic names up to
#   2M, compiled for kidsafe-dns and written as `local-zone: "name." always_nxdomain` for
#   Unbound (Unbound's fastest form; see BENCHMARKS.md for its RPZ figures);
# - both servers get the same number of threads (1, then 2), and dnsperf -c 4 runs against
#   each in turn, alternating, for three mixes: (a) 100% blocked, (b) allowed names that are
#   all cache hits, (c) 20% blocked / 70% cached / 10% never-seen names;
# - prints one table at full load: qps, p50/p99 latency, server CPU per query, and the
#   ratios kidsafe-dns/Unbound; one of latency at a fixed RATE (default 40000 qps, env);
#   RSS and time to first answer.
# - PEER=<git revision> compares with kidsafe-dns as built at that revision instead of
#   Unbound (before/after a change: `PEER=1bc69af benches/load/compare.sh 5 2`); it is
#   built in a scratch worktree under $WORK with its own target directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"
ROUNDS="${2:-2}"
RATE="${RATE:-40000}"
PEER="${PEER:-unbound}"
WORK="${WORK:-/tmp/kidsafe-compare}"
UNION=../shared/data/scale/blocklist-union-domains.txt.gz
KPORT=5401; UPORT=5402; NPORT=5400
mkdir -p "$WORK"

if ! command -v dnsperf >/dev/null || ! [ -x /usr/sbin/unbound ] || ! [ -x /usr/sbin/nsd ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf unbound nsd bind9-dnsutils
fi
[ -f "$UNION" ] || { echo "need $UNION (../shared/data beside the repo)"; exit 1; }
cargo build --release -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/kidsafe-dns
if [ "$PEER" != unbound ]; then
  rev=$(git rev-parse --short "$PEER")
  PEER_LABEL="at-$rev"
  rm -rf "$WORK/peer-src"; git worktree prune
  git worktree add -q --detach "$WORK/peer-src" "$rev"
  mkdir -p "$WORK/peer-target"
  [ -d "${CARGO_TARGET_DIR:-target}/release" ] && [ ! -d "$WORK/peer-target/release" ] && cp -r "${CARGO_TARGET_DIR:-target}/release" "$WORK/peer-target/"
  (cd "$WORK/peer-src" && CARGO_TARGET_DIR="$WORK/peer-target" cargo build --release -q)
  PEER_BIN="$WORK/peer-target/release/kidsafe-dns"
  git worktree remove --force "$WORK/peer-src"
else
  PEER_LABEL=unbound
fi

cleanup() {
  [ -f "$WORK/nsd.pid" ] && kill "$(cat "$WORK/nsd.pid")" 2>/dev/null || true
  pkill -f "unbound -d -c $WORK/unbound.conf" 2>/dev/null || true
  pkill -f "kidsafe-dns serve --config $WORK/kidsafe.toml" 2>/dev/null || true
  pkill -f "kidsafe-dns serve --config $WORK/peer.toml" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

# --- upstream zone ---
if [ ! -f "$WORK/load.test.zone" ]; then
  {
    echo '$ORIGIN load.test.'
    echo '$TTL 3600'
    echo '@ SOA ns.load.test. admin.load.test. 1 3600 600 86400 300'
    echo '@ NS ns.load.test.'
    echo 'ns A 127.0.0.1'
    echo '*.miss A 192.0.2.200'
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
  server-count: 2
  verbosity: 0
  rrl-ratelimit: 0
zone:
  name: load.test
  zonefile: load.test.zone
NSD
/usr/sbin/nsd -c "$WORK/nsd.conf"

# --- the 2M-name list, for both servers ---
if [ ! -f "$WORK/names.txt" ]; then
  { zcat "$UNION"; python3 benches/load/gen_names.py $((2000000 - $(zcat "$UNION" | wc -l))) 42; } > "$WORK/names.txt"
fi
NAMES=$(wc -l < "$WORK/names.txt")
if [ ! -f "$WORK/local-zones.conf" ]; then
  awk '{ print "local-zone: \"" $1 ".\" always_nxdomain" }' "$WORK/names.txt" > "$WORK/local-zones.conf"
fi

# --- query files ---
if [ ! -f "$WORK/q_mix.txt" ]; then
  awk 'NR % 19 == 0 && ++n <= 100000 { print "www." $1 " A" }' "$WORK/names.txt" > "$WORK/q_blocked.txt"
  seq 1 2000 | awk '{ print "n" $1 ".load.test A" }' > "$WORK/q_cached.txt"
  python3 - "$WORK" <<'PY'
import random, sys
w = sys.argv[1]
blocked = open(f"{w}/q_blocked.txt").read().split("\n")[:-1]
cached = open(f"{w}/q_cached.txt").read().split("\n")[:-1]
rng = random.Random(7)
with open(f"{w}/q_mix.txt", "w") as f:
    for i in range(1_500_000):
        r = rng.random()
        if r < 0.2:
            f.write(rng.choice(blocked) + "\n")
        elif r < 0.9:
            f.write(rng.choice(cached) + "\n")
        else:
            f.write(f"u{i}x{rng.randrange(1 << 30)}.miss.load.test A\n")
PY
fi

kidsafe_config() {  # threads [file port]
  cat > "$WORK/${2:-kidsafe}.toml" <<TOML
[server]
listen = ["127.0.0.1:${3:-$KPORT}"]
threads = $1
[upstream]
servers = ["127.0.0.1:$NPORT"]
timeout_ms = 2000
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
unbound_config() {
  cat > "$WORK/unbound.conf" <<UB
server:
  interface: 127.0.0.1@$UPORT
  num-threads: $1
  so-reuseport: yes
  username: ""
  chroot: ""
  directory: "$WORK"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-not-query-localhost: no
  local-zone: "test." nodefault
  module-config: "iterator"
  qname-minimisation: no
  access-control: 127.0.0.0/8 allow
  include: "$WORK/local-zones.conf"
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$NPORT
UB
}

wait_answer() {  # port -> seconds until it answers
  local start=$(date +%s.%N)
  until dig +short +tries=1 +time=1 @127.0.0.1 -p "$1" n1.load.test A 2>/dev/null | grep -q .; do sleep 0.005; done
  echo "$(date +%s.%N) - $start" | bc
}

cpu_ticks() {  # pid -> user+system clock ticks so far
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

latency() {  # port file [dnsperf options] -> "p50 p99" in ms
  # Per-query latencies from dnsperf -v, written to a file and read after dnsperf has
  # exited (parsing them live would compete for the same two cores).
  local port=$1 file=$2
  shift 2
  dnsperf -s 127.0.0.1 -p "$port" -d "$file" -c 4 -l "$SECS" -q 256 "$@" -v > "$WORK/latency.out" 2>/dev/null
  python3 - "$WORK/latency.out" <<'PY'
import sys
lat = []
for line in open(sys.argv[1]):
    p = line.split()
    if line.startswith("> ") and len(p) >= 5:
        try: lat.append(float(p[-1]))
        except ValueError: pass
lat.sort()
pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
print("%.3f" % pct(0.5), "%.3f" % pct(0.99))
PY
}

perf() {  # port file -> "qps p50 p99 cpu-us-per-query"
  # Two passes: qps without -v (per-query output costs dnsperf, which shares the two
  # cores, a third of its speed), then latency with -v. The server's CPU time per
  # answered query is taken over the first pass: dnsperf shares the cores, so when it is
  # the bottleneck qps understates the faster server; CPU per query does not.
  local out qps done t0 t1 us
  t0=$(cpu_ticks "$PID")
  out=$(dnsperf -s 127.0.0.1 -p "$1" -d "$2" -c 4 -l "$SECS" -q 256 2>/dev/null)
  t1=$(cpu_ticks "$PID")
  qps=$(awk '/Queries per second/ { print $4 }' <<<"$out")
  done=$(awk '/Queries completed/ { print $3 }' <<<"$out")
  us=$(python3 -c "import os; print('%.2f' % (($t1 - $t0) / os.sysconf('SC_CLK_TCK') * 1e6 / max(1, int('${done:-0}'))))")
  echo "${qps:-0} $(latency "$1" "$2") $us"
}

fixed() {  # port file -> "p50 p99" at $RATE queries per second (below both servers' peak)
  latency "$1" "$2" -Q "$RATE"
}

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
kidsafe_config 1
echo "== compiling $NAMES names for kidsafe-dns"
/usr/bin/time -f "   %e s, peak RSS %M KB" "$BIN" compile --config "$WORK/kidsafe.toml" | sed -n 1p

for threads in 1 2; do
  for round in $(seq 1 "$ROUNDS"); do
    for server in kidsafe unbound; do
      if [ $server = kidsafe ]; then
        kidsafe_config "$threads"
        "$BIN" serve --config "$WORK/kidsafe.toml" 2>"$WORK/kidsafe.log" & PID=$!; PORT=$KPORT
      elif [ "$PEER" != unbound ]; then
        kidsafe_config "$threads" peer "$UPORT"
        "$PEER_BIN" serve --config "$WORK/peer.toml" 2>"$WORK/peer.log" & PID=$!; PORT=$UPORT
      else
        unbound_config "$threads"
        /usr/sbin/unbound -d -c "$WORK/unbound.conf" 2>"$WORK/unbound.log" & PID=$!; PORT=$UPORT
      fi
      first=$(wait_answer $PORT)
      # warm the cache with the cached set
      dnsperf -s 127.0.0.1 -p $PORT -d "$WORK/q_cached.txt" -c 4 -n 1 >/dev/null 2>&1
      rss=$(ps -o rss= -p $PID | tr -d ' ')
      for mix in blocked cached mix; do
        read -r qps p50 p99 cpu < <(perf $PORT "$WORK/q_$mix.txt")
        read -r f50 f99 < <(fixed $PORT "$WORK/q_$mix.txt")
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$threads" "$round" "$server" "$mix" "$qps" "$p50" "$p99" "$rss" "$first" "$cpu" "$f50" "$f99" | tee -a "$RESULTS"
      done
      kill $PID; wait $PID 2>/dev/null || true
    done
  done
done

python3 - "$RESULTS" "$RATE" "$PEER_LABEL" <<'PY'
import sys, collections, statistics
peer = sys.argv[3]
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
agg = collections.defaultdict(list)
for t, r, s, m, qps, p50, p99, rss, first, cpu, f50, f99 in rows:
    agg[(t, m, s)].append(tuple(map(float, (qps, p50, p99, rss, first, cpu, f50, f99))))
med = lambda t, m, s: [statistics.median(x) for x in zip(*agg[(t, m, s)])]
print()
print("At full load (dnsperf -q 256; cpu = server CPU microseconds per answered query):")
print(f"{'threads':>7} {'mix':>8} | {'kidsafe qps':>11} {'p50 ms':>7} {'p99 ms':>7} {'cpu us':>7} | {peer + ' qps':>11} {'p50 ms':>7} {'p99 ms':>7} {'cpu us':>7} | {'qps ratio':>9} {'p99 ratio':>9} {'cpu ratio':>9}")
for t in sorted({k[0] for k in agg}):
    for m in ["blocked", "cached", "mix"]:
        k, u = med(t, m, "kidsafe"), med(t, m, "unbound")
        print(f"{t:>7} {m:>8} | {k[0]:>11.0f} {k[1]:>7.3f} {k[2]:>7.3f} {k[5]:>7.2f} | {u[0]:>11.0f} {u[1]:>7.3f} {u[2]:>7.3f} {u[5]:>7.2f} | {k[0]/u[0]:>9.2f} {k[2]/u[2]:>9.2f} {k[5]/u[5]:>9.2f}")
print()
print(f"At a fixed {sys.argv[2]} queries per second (dnsperf -Q), latency in ms:")
print(f"{'threads':>7} {'mix':>8} | {'kidsafe p50':>11} {'p99':>7} | {peer + ' p50':>11} {'p99':>7} | {'p99 ratio':>9}")
for t in sorted({k[0] for k in agg}):
    for m in ["blocked", "cached", "mix"]:
        k, u = med(t, m, "kidsafe"), med(t, m, "unbound")
        print(f"{t:>7} {m:>8} | {k[6]:>11.3f} {k[7]:>7.3f} | {u[6]:>11.3f} {u[7]:>7.3f} | {k[7]/u[7]:>9.2f}")
for s in ["kidsafe", "unbound"]:
    label = s if s == "kidsafe" else peer
    rss = statistics.median(v[3] for k, vs in agg.items() if k[2] == s for v in vs)
    first = statistics.median(v[4] for k, vs in agg.items() if k[2] == s for v in vs)
    print(f"{label}: RSS after warm-up {rss/1024:.0f} MB, start to first answer {first:.3f} s")
PY
