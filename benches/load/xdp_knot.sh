#!/usr/bin/env bash
# What an AF_XDP receive/send path would buy on this machine (run by hand, as root):
#   sudo benches/load/xdp_knot.sh [seconds-per-run] [rounds]
#
# The same server, Knot DNS, answering the same names from the same zone on one core,
# once through kernel UDP sockets and once through its XDP mode (AF_XDP on the veth,
# the model the performance issue names beside dnsdist 1.9's XSK). The ratio is what
# kernel bypass saves per answer for an answer that needs no upstream: the case of
# kidsafe-dns's blocked names and cache hits. kidsafe-dns (blocked names, UDP) runs in
# the same rounds for scale. kxdpgun in namespace `gen` on core 0, the server in `srv`
# on core 1 (benches/load/xdp_lib.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-5}"; ROUNDS="${2:-3}"
FIXED="${FIXED:-50000}"
WORK="${WORK:-/tmp/kidsafe-xdp-knot}"
BIN="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/kidsafe-dns}"
. benches/load/xdp_lib.sh
xdp_require
[ -x "$BIN" ] || { echo "build first: cargo build --release (BIN=$BIN)"; exit 1; }
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq knot >/dev/null
mkdir -p "$WORK"
cleanup() { xdp_stop; xdp_teardown; }
trap cleanup EXIT
xdp_teardown
xdp_setup
SRV=$XDP_SRV_IP

# One zone, 20,000 names; the load asks them in turn (answers, not NXDOMAIN: Knot's
# cheapest path either way).
{
  echo '$ORIGIN load.test.'; echo '$TTL 3600'
  echo '@ SOA ns.load.test. admin.load.test. 1 3600 600 86400 300'
  echo '@ NS ns.load.test.'; echo 'ns A 127.0.0.1'
  for i in $(seq 1 20000); do echo "n$i A 192.0.2.$((i % 250 + 1))"; done
} >"$WORK/load.test.zone"
seq 1 20000 | awk '{ print "n" $1 ".load.test A" }' >"$WORK/q_knot.txt"
# kidsafe-dns: names blocked by its sample list, answered locally.
for n in pornhub.com xvideos.com www.pornhub.com; do echo "$n A"; done >"$WORK/q_kidsafe.txt"

knot_config() { # udp | xdp
  local xdp=""
  [ "$1" = xdp ] && xdp="xdp:
  listen: vs@53
  udp: on
  tcp: off"
  cat <<KNOT
server:
  rundir: "$WORK"
  listen: $SRV@53
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
$xdp
log:
  - target: stderr
    any: warning
database:
  storage: "$WORK/db-$1"
zone:
  - domain: load.test
    storage: "$WORK"
    file: load.test.zone
KNOT
}
knot_config udp >"$WORK/knot-udp.conf"
knot_config xdp >"$WORK/knot-xdp.conf"
cat >"$WORK/kidsafe.toml" <<TOML
[server]
listen = ["$SRV:53"]
threads = 1
[upstream]
servers = ["127.0.0.1:9"]
[lists]
compiled = "$WORK/list.fst"
state_dir = "$WORK/state"
watch = false
[[lists.source]]
category = "adult"
path = "$PWD/blocklists/adult.txt"
format = "domains"
TOML

start() { # knot-udp | knot-xdp | kidsafe
  case "$1" in
  knot-*) XDP_LOG="$WORK/$1.log" xdp_serve 1 /usr/sbin/knotd -c "$WORK/$1.conf" ;;
  kidsafe) XDP_LOG="$WORK/kidsafe.log" xdp_serve 1 "$BIN" serve --config "$WORK/kidsafe.toml" ;;
  esac
  local probe=n1.load.test; [ "$1" = kidsafe ] && probe=pornhub.com
  # dig asks through the kernel; Knot's XDP mode answers only what reaches the veth
  # through XDP, which a query from `gen` does.
  xdp_wait_udp "$probe"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  for server in knot-udp knot-xdp kidsafe; do
    start "$server"
    q="$WORK/q_knot.txt"; [ "$server" = kidsafe ] && q="$WORK/q_kidsafe.txt"
    read -r qps sent _ <<<"$(xdp_gun "$SECS" "$q")"
    read -r _ _ cpu <<<"$(XDP_QPS=$FIXED xdp_gun "$SECS" "$q")"
    xdp_stop
    printf "%s\t%s\t%s\t%s\t%s\n" "$round" "$server" "$qps" "$sent" "$cpu" | tee -a "$RESULTS"
  done
done
python3 - "$RESULTS" "$FIXED" <<'PY'
import sys, collections, statistics
agg = collections.defaultdict(list)
for line in open(sys.argv[1]):
    rnd, s, qps, sent, cpu = line.split()
    agg[s].append((float(qps), float(cpu)))
med = lambda s, i: statistics.median(v[i] for v in agg[s])
print(f"\nAnswered qps at saturation, median (min-max); server CPU ns per answer at {sys.argv[2]} qps:")
for s in agg:
    q = [v[0] for v in agg[s]]
    print(f"{s:>9}: {med(s, 0):,.0f} ({min(q):,.0f}-{max(q):,.0f}), {med(s, 1):,.0f} ns")
if med("knot-udp", 0) > 0:
    print(f"Knot XDP / Knot UDP sockets: {med('knot-xdp', 0) / med('knot-udp', 0):.2f}x qps, "
          f"CPU per answer {med('knot-xdp', 1) / max(med('knot-udp', 1), 1):.2f}x")
PY
