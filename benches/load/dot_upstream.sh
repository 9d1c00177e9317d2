#!/usr/bin/env bash
# What forwarding over TLS costs a miss (run by hand):
#   benches/load/dot_upstream.sh [seconds] [rounds]
# A stand-in upstream (dnsdist answering every A with 192.0.2.1) behind a kidsafe-dns "hop"
# that serves both plain DNS and DoT; in front of it two kidsafe-dns under test, one
# forwarding to the hop in plain DNS and one over TLS (tls://127.0.0.1:5453#localhost).
# Caches are off and every name is new, so every query is a miss through the hop. dnsperf
# (-c 4, 64 outstanding) asks each for SECONDS, alternating, ROUNDS times: qps and
# average latency. Needs dnsperf, dnsdist, openssl. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-10}"; ROUNDS="${2:-2}"
WORK="${WORK:-/tmp/kidsafe-dot}"
BIN=$PWD/target/release/kidsafe-dns
for tool in dnsperf dnsdist openssl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install dnsperf dnsdist openssl)" >&2; exit 2; }
done
cargo build --release -q
rm -rf "$WORK"; mkdir -p "$WORK"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -addext basicConstraints=critical,CA:FALSE \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
echo "list.example" >"$WORK/list.txt"

cat >"$WORK/upstream.conf" <<EOF
setLocal("127.0.0.1:5410")
setACL("127.0.0.0/8")
setSecurityPollSuffix("")
addAction(AllRule(), SpoofAction("192.0.2.1"))
EOF
dnsdist --supervised --disable-syslog -C "$WORK/upstream.conf" >"$WORK/upstream.log" 2>&1 &
pids+=($!)

kidsafe() {  # kidsafe NAME PORT UPSTREAM [server extra] [upstream extra]
  cat >"$WORK/$1.toml" <<EOF
[server]
listen = ["127.0.0.1:$2"]
threads = 1
${4:-}
[upstream]
servers = ["$3"]
${5:-}
[blocking]
mode = "nxdomain"
[cache]
max_entries = 0
[lists]
compiled = "$WORK/$1.fst"
[[lists.source]]
category = "adult"
path = "$WORK/list.txt"
EOF
  "$BIN" serve --config "$WORK/$1.toml" >"$WORK/$1.log" 2>&1 &
  pids+=($!)
}
kidsafe hop 5452 127.0.0.1:5410 "dot_listen = [\"127.0.0.1:5453\"]
tls_cert = \"$WORK/cert.pem\"
tls_key = \"$WORK/key.pem\""
kidsafe plain 5460 127.0.0.1:5452
kidsafe tls 5461 "tls://127.0.0.1:5453#localhost" "" "tls_ca = \"$WORK/cert.pem\""
sleep 1

python3 - "$WORK/names.txt" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(2_000_000):
        f.write(f"n{i}.miss.example A\n")
EOF

run() {  # run PORT [MODE]: "qps avg_ms lost"
  dnsperf -m "${2:-udp}" -s 127.0.0.1 -p "$1" -d "$WORK/names.txt" -l "$SECS" -c 4 -q "${Q:-64}" -t 2 2>/dev/null |
    awk '/Queries lost/ {lost=$3} /Queries per second/ {q=$4} /Average Latency/ {l=$4*1000}
         /Response codes/ {ok = ($0 ~ /NOERROR/ && $0 !~ /SERVFAIL/) ? "yes" : "NO: " $0}
         END {printf "%.0f %.3f %s %s\n", q, l, lost, ok}'
}
printf "%-6s %-8s %10s %12s %8s  %s\n" round path qps avg_ms lost all_noerror
for r in $(seq "$ROUNDS"); do
  for path in plain tls hop-udp hop-tcp hop-dot; do
    case $path in
      plain) args=(5460) ;; tls) args=(5461) ;;
      hop-udp) args=(5452 udp) ;; hop-tcp) args=(5452 tcp) ;; hop-dot) args=(5453 dot) ;;
    esac
    read -r qps lat lost ok < <(run "${args[@]}")
    printf "%-6s %-8s %10s %12s %8s  %s\n" "$r" "$path" "$qps" "$lat" "$lost" "$ok"
  done
done
