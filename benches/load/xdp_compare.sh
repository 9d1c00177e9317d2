#!/usr/bin/env bash
# Per-core comparison with a load generator that is not the bottleneck (run by hand, as root):
#   sudo benches/load/xdp_compare.sh [seconds-per-run] [rounds] [servers] [mixes] [transports]
#   e.g. sudo benches/load/xdp_compare.sh 5 3 "kidsafe unbound unbound-rpz pdns" \
#          "blocked cached mix miss" "udp tcp"
# Server `kidsafe-profiles` is kidsafe-dns with 100,000 profiles and a 1,000,000-row
# subscriber map loaded (see fill_profiles below).
#
# kxdpgun (AF_XDP, Debian knot-dnsutils) in network namespace `gen` on core 0 drives each
# server in namespace `srv` pinned to core 1 with one thread (benches/load/xdp_lib.sh).
# This machine has 2 cores, so the "two server cores, generator on a third" row needs
# nproc >= 3: the script says so and skips it when that is not the case.
#
# Servers, same list (the 1.46M-name union of ../shared/data), same NSD upstream (in `srv`
# on 127.0.0.1, unpinned): kidsafe-dns; Unbound with the list as `local-zone ...
# always_nxdomain` (its fastest form) and as an RPZ zone file; PowerDNS Recursor with the
# list as an RPZ zone (rpzFile), forwarding to NSD.
# Mixes: blocked (www.<listed name>), cached (2,000 upstream names, warmed first), mix
# (20 % blocked / 70 % cached / 10 % never seen), miss (50 % never seen / 50 % cached).
# Transports: udp, tcp (kxdpgun -T: one query per connection, so a TCP row measures
# handshake + query + close; kxdpgun offers far fewer TCP connections than UDP queries).
# dot, doh (kxdpgun speaks neither; generator on core 0, 16 connections) against
# kidsafe-dns's and Unbound's own DoT (853) and DoH (443, /dns-query) listeners with the
# same self-signed certificate: DoT with `dnsperf -m dot` over the mix's names; DoH with
# h2load (nghttp2-client) POSTing one query of the mix (its first name), because dnsperf
# 2.10's DoH client loses answers with more than one connection against kidsafe-dns (h2load
# and one-connection dnsperf see none lost; dnsperf issue #240 is the same symptom).
# PowerDNS Recursor 4.8 has no DoT/DoH listener (dnsdist fronts it for that), so its TLS
# rows are skipped. These generators cost far more per query than kxdpgun, so a TLS
# saturation row may be the generator's ceiling; the CPU per answer at FIXED_TLS (default
# 10000 qps) is the server's own figure either way.
# Per row: answered qps at saturation (kxdpgun offers ~3M qps), and the server's own CPU
# per answered query at a fixed offered rate (FIXED, default 50000 qps, below every
# server's peak). Rounds alternate the servers; medians and min-max are printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-5}"; ROUNDS="${2:-3}"
SERVERS="${3:-kidsafe unbound unbound-rpz pdns}"
MIXES="${4:-blocked cached mix miss}"
TRANSPORTS="${5:-udp tcp}"
FIXED="${FIXED:-50000}"
FIXED_TLS="${FIXED_TLS:-10000}"
WORK="${WORK:-/tmp/kidsafe-xdp}"
UNION=../shared/data/scale/blocklist-union-domains.txt.gz
NPORT=5400
BIN="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kidsafe-dns}"
. benches/load/xdp_lib.sh
xdp_require
[ -x "$BIN" ] || { echo "build first: cargo build --release (BIN=$BIN)"; exit 1; }
[ -f "$UNION" ] || { echo "need $UNION (../shared/data beside the repo)"; exit 1; }
command -v h2load >/dev/null || apt-get install -y -qq nghttp2-client >/dev/null
for p in unbound nsd pdns_recursor; do
  command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unbound nsd pdns-recursor >/dev/null
done
if [ "$(nproc)" -lt 3 ]; then
  echo "nproc = $(nproc): one server core only (two server cores need a third for kxdpgun)"
fi
mkdir -p "$WORK"
SRV=$XDP_SRV_IP

cleanup() {
  xdp_stop
  [ -f "$WORK/nsd.pid" ] && kill "$(cat "$WORK/nsd.pid")" 2>/dev/null || true
  xdp_teardown
}
trap cleanup EXIT
xdp_teardown
xdp_setup

# --- the upstream: NSD for load.test in `srv` ---
if [ ! -f "$WORK/load.test.zone" ]; then
  {
    echo '$ORIGIN load.test.'; echo '$TTL 3600'
    echo '@ SOA ns.load.test. admin.load.test. 1 3600 600 86400 300'
    echo '@ NS ns.load.test.'; echo 'ns A 127.0.0.1'; echo '*.miss A 192.0.2.200'
    for i in $(seq 1 20000); do echo "n$i A 192.0.2.$((i % 250 + 1))"; done
  } >"$WORK/load.test.zone"
fi
cat >"$WORK/nsd.conf" <<NSD
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
ip netns exec srv /usr/sbin/nsd -c "$WORK/nsd.conf"

# --- one self-signed certificate for every TLS listener ---
if [ ! -f "$WORK/tls.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=kidsafe-bench" -addext "subjectAltName=IP:$SRV,DNS:localhost" \
    -keyout "$WORK/tls.key" -out "$WORK/tls.pem" 2>/dev/null
fi

# --- the list in each server's form ---
[ -f "$WORK/names.txt" ] || zcat "$UNION" >"$WORK/names.txt"
[ -f "$WORK/local-zones.conf" ] ||
  awk '{ print "local-zone: \"" $1 ".\" always_nxdomain" }' "$WORK/names.txt" >"$WORK/local-zones.conf"
if [ ! -f "$WORK/blocked.rpz" ]; then
  {
    echo '$TTL 300'
    echo '@ SOA localhost. root.localhost. 1 3600 600 86400 300'
    echo '@ NS localhost.'
    awk '{ print $1 " CNAME ."; print "*." $1 " CNAME ." }' "$WORK/names.txt"
  } >"$WORK/blocked.rpz"
fi

# --- queries (kxdpgun: "name TYPE" per line; it loops over the file) ---
if [ ! -f "$WORK/q_miss.txt" ]; then
  awk 'NR % 13 == 0 && ++n <= 100000 { print "www." $1 " A" }' "$WORK/names.txt" >"$WORK/q_blocked.txt"
  seq 1 2000 | awk '{ print "n" $1 ".load.test A" }' >"$WORK/q_cached.txt"
  python3 - "$WORK" <<'PY'
import random, sys
w = sys.argv[1]
blocked = open(f"{w}/q_blocked.txt").read().split("\n")[:-1]
cached = open(f"{w}/q_cached.txt").read().split("\n")[:-1]
rng = random.Random(7)
# Never-seen names must stay never seen for the whole run: more lines than a run sends.
with open(f"{w}/q_mix.txt", "w") as f:
    for i in range(3_000_000):
        r = rng.random()
        if r < 0.2:
            f.write(rng.choice(blocked) + "\n")
        elif r < 0.9:
            f.write(rng.choice(cached) + "\n")
        else:
            f.write(f"u{i}x{rng.randrange(1 << 30)}.miss.load.test A\n")
with open(f"{w}/q_miss.txt", "w") as f:
    for i in range(3_000_000):
        if rng.random() < 0.5:
            f.write(f"m{i}x{rng.randrange(1 << 30)}.miss.load.test A\n")
        else:
            f.write(rng.choice(cached) + "\n")
PY
fi

# --- servers ---
# kidsafe-profiles: kidsafe-dns with a national-scale identity load: PROFILES stored
# profiles (default 100,000; a third with their own categories) and a SUBSCRIBERS-row
# subscriber map (default 1,000,000 /32 lines). The generator's address is one of the
# lines; its profile blocks 50 catalog services and has two weekly windows, so every
# query of the load is chosen through the map and decided with services and schedules.
PROFILES="${PROFILES:-100000}"; SUBSCRIBERS="${SUBSCRIBERS:-1000000}"
services=$(grep -h '^id = ' data/services/*.toml | head -50 | sed 's/id = //' | paste -sd, -)

fill_profiles() { # state dir: creates the store with one start, then fills it (once)
  [ -f "$1/filled" ] && return 0
  mkdir -p "$1"
  kidsafe_config "$1" "" >"$WORK/kidsafe-profiles.toml"
  XDP_LOG="$WORK/kidsafe-profiles.log" xdp_serve 1 "$BIN" serve --config "$WORK/kidsafe-profiles.toml"
  ready >/dev/null
  xdp_stop
  python3 - "$1" "$PROFILES" "$SUBSCRIBERS" "$XDP_GEN_IP" "$services" <<'PY'
import json, sqlite3, sys
state, profiles, rows, gen, services = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
services = [s.strip().strip('"') for s in services.split(",")]
def spec(i):
    s = {"name": f"family-{i}", "categories": ["blocked"] if i % 3 == 0 else None,
         "allow": [], "deny": [], "safesearch": False, "youtube": "strict",
         "mode": None, "schedule": None}
    if i == 1:
        s["services"] = services
        s["schedules"] = [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "16:00",
             "timezone": "Asia/Ho_Chi_Minh", "action": "block", "service_groups": ["games", "social"]},
            {"days": ["sat", "sun"], "start": "14:00", "end": "17:00",
             "timezone": "Asia/Ho_Chi_Minh", "action": "allow", "services": ["roblox"]}]
    return json.dumps(s)
db = sqlite3.connect(f"{state}/profiles.sqlite")
db.executemany("INSERT INTO profiles (id, name, settings, version) VALUES (?, ?, ?, 1)",
               ((i, f"family-{i}", spec(i)) for i in range(1, profiles + 1)))
db.commit()
def v4(n):
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
with open(f"{state}/subscribers.txt", "w") as f:
    f.write(f"{gen} p1\n")
    for r in range(rows - 1):  # 100.64.0.0/10, spread over the profiles
        f.write(f"{v4(0x64400000 + r)} p{r % profiles + 1}\n")
PY
  touch "$1/filled"
}

kidsafe_config() { # state dir, extra TOML
  cat <<TOML
[server]
listen = ["$SRV:53"]
threads = 1
dot_listen = ["$SRV:853"]
doh_listen = ["$SRV:443"]
tls_cert = "$WORK/tls.pem"
tls_key = "$WORK/tls.key"
[upstream]
servers = ["127.0.0.1:$NPORT"]
[blocking]
mode = "nxdomain"
[lists]
compiled = "$1/bench.fst"
state_dir = "$1"
watch = false
[[lists.source]]
category = "blocked"
path = "$WORK/names.txt"
format = "domains"
$2
TOML
}

start_server() { # name
  case "$1" in
  kidsafe | kidsafe-old)
    # kidsafe-old: another build ($BIN_OLD) beside this one, for a before/after in the
    # same run; each with a state dir of its own (a newer build may migrate a store).
    local bin="$BIN"; [ "$1" = kidsafe-old ] && bin="${BIN_OLD:?BIN_OLD: the other build}"
    mkdir -p "$WORK/state-$1"
    kidsafe_config "$WORK/state-$1" "" >"$WORK/$1.toml"
    xdp_serve 1 "$bin" serve --config "$WORK/$1.toml" ;;
  kidsafe-profiles)
    fill_profiles "$WORK/state-profiles"
    kidsafe_config "$WORK/state-profiles" "[subscribers]
path = \"$WORK/state-profiles/subscribers.txt\"" >"$WORK/kidsafe-profiles.toml"
    xdp_serve 1 "$BIN" serve --config "$WORK/kidsafe-profiles.toml" ;;
  unbound | unbound-rpz)
    local list="include: \"$WORK/local-zones.conf\"" modules="iterator" rpz=""
    if [ "$1" = unbound-rpz ]; then
      list=""; modules="respip iterator"
      rpz="rpz:
  name: blocked.rpz.
  zonefile: $WORK/blocked.rpz
  rpz-action-override: nxdomain"
    fi
    cat >"$WORK/$1.conf" <<UB
server:
  interface: $SRV@53
  interface: $SRV@853
  interface: $SRV@443
  incoming-num-tcp: 1000
  tls-port: 853
  https-port: 443
  tls-service-key: "$WORK/tls.key"
  tls-service-pem: "$WORK/tls.pem"
  num-threads: 1
  username: ""
  chroot: ""
  directory: "$WORK"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-not-query-localhost: no
  local-zone: "test." nodefault
  module-config: "$modules"
  qname-minimisation: no
  access-control: 10.200.0.0/24 allow
  msg-cache-size: 64m
  rrset-cache-size: 128m
  $list
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$NPORT
$rpz
UB
    xdp_serve 1 /usr/sbin/unbound -d -c "$WORK/$1.conf" ;;
  pdns)
    mkdir -p "$WORK/pdns"
    echo "rpzFile(\"$WORK/blocked.rpz\", {policyName=\"blocked\", defpol=Policy.NXDOMAIN})" >"$WORK/pdns/rpz.lua"
    cat >"$WORK/pdns/recursor.conf" <<PDNS
local-address=$SRV
local-port=53
threads=1
pdns-distributes-queries=no
reuseport=no
daemon=no
write-pid=no
socket-dir=$WORK/pdns
allow-from=10.200.0.0/24
dont-query=
forward-zones-recurse=.=127.0.0.1:$NPORT
lua-config-file=$WORK/pdns/rpz.lua
max-cache-entries=1000000
quiet=yes
dnssec=off
security-poll-suffix=
loglevel=3
PDNS
    xdp_serve 1 /usr/sbin/pdns_recursor --config-dir="$WORK/pdns" --disable-syslog ;;
  esac
}

ready() { # waits until a blocked name is NXDOMAIN and a cached one answers, prints seconds
  local t0=$SECONDS
  for _ in $(seq 1200); do
    if ip netns exec gen dig @"$SRV" +time=1 +tries=1 "$(head -1 "$WORK/q_blocked.txt" | cut -d' ' -f1)" 2>/dev/null | grep -q NXDOMAIN &&
      ip netns exec gen dig @"$SRV" +time=1 +tries=1 +short n1.load.test 2>/dev/null | grep -q .; then
      echo $((SECONDS - t0)); return 0
    fi
    sleep 0.25
  done
  echo "server did not become ready" >&2; return 1
}

# dnsperf over DoT or DoH: prints "<answered/s> <sent/s> <server CPU ns per answer>" like
# xdp_gun. QPS 0 = as fast as it goes.
tls_gun() { # secs queries mode qps
  local secs="$1" queries="$2" mode="$3" qps="$4" before after limit=()
  before=$(xdp_cpu_ticks)
  if [ "$mode" = dot ]; then
    [ "$qps" != 0 ] && limit=(-Q "$qps")
    ip netns exec gen taskset -c 0 dnsperf -m dot -s "$SRV" -p 853 -c 16 -q 1000 \
      -l "$secs" "${limit[@]}" -d "$queries" >"$WORK/tls.out" 2>&1 || true
  else
    # The mix's first query as a DNS message, POSTed over and over.
    python3 - "$queries" "$WORK/doh.bin" <<'PY'
import struct, sys
name, qtype = open(sys.argv[1]).readline().split()[:2]
labels = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split("."))
msg = struct.pack(">HHHHHH", 0, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", 1, 1)
open(sys.argv[2], "wb").write(msg)
PY
    # h2load in count mode (-n): its duration mode (-D) left every stream unanswered
    # against Unbound 1.17 here, and an idle-timeout made it abort (libev assertion).
    # Saturation: 60,000 x secs requests as fast as they go; fixed: qps x secs at --rps.
    local n=$((60000 * secs))
    [ "$qps" != 0 ] && { limit=(--rps $((qps / 16))); n=$((qps * secs)); }
    local h2=(h2load -c 16 -m 64 -d "$WORK/doh.bin" -H 'content-type: application/dns-message')
    # The first connections after a start: Unbound failed a first run now and then.
    ip netns exec gen timeout 20 "${h2[@]}" -n 1000 "https://$SRV/dns-query" >/dev/null 2>&1 || true
    before=$(xdp_cpu_ticks)
    ip netns exec gen taskset -c 0 timeout $((secs * 10 + 20)) "${h2[@]}" -n "$n" "${limit[@]}" \
      "https://$SRV/dns-query" >"$WORK/tls.out" 2>&1 || true
  fi
  after=$(xdp_cpu_ticks)
  awk -v s="$secs" -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    /Queries sent:/ {q=$3} /Queries completed:/ {r=$3}
    /^finished in/ {s=$3 + 0} /^requests:/ {q=$4; r=$8}
    END {printf "%d %d %d\n", r/s, q/s, (r > 0 ? ticks / hz * 1e9 / r : 0)}' "$WORK/tls.out"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  for server in $SERVERS; do
    XDP_LOG="$WORK/$server.log" start_server "$server"
    secs=$(ready)
    rss=$(ps -o rss= -p "$XDP_PID" | tr -d ' ')
    for t in $TRANSPORTS; do
      case "$t" in dot | doh) [ "$server" = pdns ] && continue ;; esac
      args=(); [ "$t" = tcp ] && args=(-T)
      # warm: every cached name answered once
      XDP_QPS=20000 xdp_gun 1 "$WORK/q_cached.txt" >/dev/null
      for mix in $MIXES; do
        case "$t" in
        dot | doh)
          read -r qps sent cpu_sat <<<"$(tls_gun "$SECS" "$WORK/q_$mix.txt" "$t" 0)"
          read -r fqps fsent cpu <<<"$(tls_gun "$SECS" "$WORK/q_$mix.txt" "$t" "$FIXED_TLS")" ;;
        *)
          read -r qps sent cpu_sat <<<"$(xdp_gun "$SECS" "$WORK/q_$mix.txt" "${args[@]}")"
          read -r fqps fsent cpu <<<"$(XDP_QPS=$FIXED xdp_gun "$SECS" "$WORK/q_$mix.txt" "${args[@]}")" ;;
        esac
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$round" "$server" "$t" "$mix" "$qps" "$sent" "$cpu" "$fqps" "$rss" "$secs" |
          tee -a "$RESULTS"
      done
    done
    xdp_stop
  done
done

python3 - "$RESULTS" "$FIXED" <<'PY'
import sys, collections, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
agg = collections.defaultdict(list)
servers = []
for rnd, s, t, m, qps, sent, cpu, fqps, rss, secs in rows:
    agg[(s, t, m)].append((float(qps), float(cpu), float(fqps), float(rss), float(secs)))
    if s not in servers:
        servers.append(s)
med = lambda k, i: statistics.median(v[i] for v in agg[k])
rng = lambda k, i: (min(v[i] for v in agg[k]), max(v[i] for v in agg[k]))
print(f"\nAnswered qps at saturation, median (min-max); CPU ns per answer at {sys.argv[2]} qps offered (DoT/DoH: FIXED_TLS):")
for t in [t for t in ["udp", "tcp", "dot", "doh"] if any(k[1] == t for k in agg)]:
    for m in ["blocked", "cached", "mix", "miss"]:
        if ("kidsafe", t, m) not in agg:
            continue
        base = med(("kidsafe", t, m), 0)
        cells = []
        for s in servers:
            k = (s, t, m)
            if k not in agg:
                continue
            lo, hi = rng(k, 0)
            ratio = "" if s == "kidsafe" or med(k, 0) == 0 else f" kidsafe/{s} {base / med(k, 0):.2f}x"
            cells.append(f"{s} {med(k, 0):,.0f} ({lo:,.0f}-{hi:,.0f}) cpu {med(k, 1):,.0f} ns{ratio}")
        print(f"{t:>3} {m:>7} | " + " | ".join(cells))
for s in servers:
    ks = [k for k in agg if k[0] == s]
    print(f"{s}: RSS {statistics.median(v[3] for k in ks for v in agg[k]) / 1024:.0f} MB, ready after {statistics.median(v[4] for k in ks for v in agg[k]):.0f} s")
PY
