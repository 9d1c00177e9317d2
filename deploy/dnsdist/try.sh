#!/usr/bin/env bash
# Try deploy/dnsdist/dnsdist.conf on loopback, nothing leaves 127.0.0.1:
#   - a stand-in upstream resolver: a second dnsdist answering every A with 192.0.2.1
#     (127.0.0.1:5310; kidsafe-dns never talks to a real resolver here);
#   - two kidsafe-dns instances built from config/family.toml, on 127.0.0.1:5301 and :5302,
#     each with its own compiled list and state dir in a temp dir, reading the PROXY
#     protocol header dnsdist sends (server.proxy_protocol_from), with the "kids" group
#     moved to subscriber 127.0.0.2;
#   - dnsdist with a copy of deploy/dnsdist/dnsdist.conf on 127.0.0.1:5300 (console :5309).
# Then: a blocked and an allowed name through dnsdist; SafeSearch for subscriber 127.0.0.2
# and not for 127.0.0.3 (the backends see each subscriber's own address); backend 1 killed (marked down, the
# queries still answered), restarted (marked up again); the upstream stopped (both marked
# down, blocked names still answered). Everything started is stopped at exit.
#
# Needs: dnsdist and dig (apt-get install dnsdist bind9-dnsutils), a built kidsafe-dns
# (cargo build; or KIDSAFE_DNS=/path/to/kidsafe-dns). KEEP=1 keeps the temp dir and logs.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${KIDSAFE_DNS:-$repo/target/debug/kidsafe-dns}
for tool in dnsdist dig; do
  command -v "$tool" >/dev/null || { echo "try.sh: $tool not found (apt-get install dnsdist bind9-dnsutils)" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "try.sh: no kidsafe-dns at $bin (run cargo build, or set KIDSAFE_DNS)" >&2; exit 2; }

FRONT=5300 BACK1=5301 BACK2=5302 CONSOLE=5309 UPSTREAM=5310
work=$(mktemp -d /tmp/kidsafe-dnsdist.XXXXXX)
declare -A pid=()

cleanup() {
  local p
  for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pid[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
q() {  # q NAME [dig options]: ask dnsdist, show the status, EDE and records
  dig @127.0.0.1 -p "$FRONT" +time=3 +tries=1 "$@" 2>&1 |
    grep -E 'status:|EDE|^[^;].*IN[[:space:]]+(A|SOA|CNAME)[[:space:]]|timed out|no servers' || true
}
console() { dnsdist -C "$work/dnsdist.conf" -c -e "$1"; }
servers() { console 'showServers()'; }
wait_state() {  # wait_state NAME up|down: poll dnsdist's view of a backend, 30 s at most
  local start=$EPOCHREALTIME
  while awk -v s="$start" -v now="$EPOCHREALTIME" 'BEGIN { exit !(now - s < 30) }'; do
    if servers | awk -v n="$1" -v s="$2" '$2 == n && tolower($4) == s { found = 1 } END { exit !found }'; then
      awk -v n="$1" -v st="$2" -v s="$start" -v now="$EPOCHREALTIME" \
        'BEGIN { printf "dnsdist marks %s %s (%.1f s after asking)\n", n, st, now - s }'
      return 0
    fi
    sleep 0.3
  done
  echo "try.sh: $1 not marked $2 within 30 s" >&2
  servers >&2
  return 1
}
wait_port() {  # wait_port PORT LOG: until something answers DNS on the port
  local i
  # From 127.0.0.2: the backends expect a PROXY protocol header from 127.0.0.1 (dnsdist).
  for i in $(seq 100); do
    dig -b 127.0.0.2 @127.0.0.1 -p "$1" +time=1 +tries=1 health.kidsafe-dns.invalid >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "try.sh: nothing answers on 127.0.0.1:$1; log $2:" >&2
  cat "$2" >&2
  return 1
}

start_upstream() {
  cat >"$work/upstream.conf" <<EOF
setLocal("127.0.0.1:$UPSTREAM")
setACL("127.0.0.0/8")
setSecurityPollSuffix("")
addAction(QTypeRule(DNSQType.A), SpoofAction("192.0.2.1"))
addAction(AllRule(), RCodeAction(DNSRCode.NOERROR))
EOF
  dnsdist --supervised --disable-syslog -C "$work/upstream.conf" >"$work/upstream.log" 2>&1 &
  pid[upstream]=$!
  wait_port "$UPSTREAM" "$work/upstream.log"
}

start_backend() {  # start_backend N PORT
  local dir=$work/backend$1
  mkdir -p "$dir"
  # The first listen is [server]'s; the admin API's moves to a free port.
  sed -e "0,/^listen = .*/s||listen = [\"127.0.0.1:$2\"]\nproxy_protocol_from = [\"127.0.0.1/32\"]|" \
      -e "s|^listen = \[\"127.0.0.1:9153\"\]|listen = [\"127.0.0.1:0\"]|" \
      -e "s|^clients = \[\"192.168.1.50/31\", \"192.168.1.52\"\]|clients = [\"127.0.0.2\"]|" \
      -e "s|^servers = .*|servers = [\"127.0.0.1:$UPSTREAM\"]|" \
      -e "s|^timeout_ms = .*|timeout_ms = 1000|" \
      -e "s|^compiled = .*|compiled = \"$dir/family.fst\"\nstate_dir = \"$dir\"|" \
      -e "s|\"\.\./blocklists|\"$repo/blocklists|" \
      "$repo/config/family.toml" >"$dir/kidsafe-dns.toml"
  "$bin" check-config "$dir/kidsafe-dns.toml" >/dev/null
  NO_COLOR=1 "$bin" serve --config "$dir/kidsafe-dns.toml" >>"$dir/serve.log" 2>&1 &
  pid[backend$1]=$!
  wait_port "$2" "$dir/serve.log"
}

start_dnsdist() {
  key=$(head -c 32 /dev/urandom | base64)
  sed -e "s|^LISTEN = .*|LISTEN = { \"127.0.0.1:$FRONT\" }|" \
      -e "s|^SUBSCRIBERS = .*|SUBSCRIBERS = { \"127.0.0.0/8\" }|" \
      -e "s|^BACKENDS = .*|BACKENDS = { \"127.0.0.1:$BACK1\", \"127.0.0.1:$BACK2\" }|" \
      "$repo/deploy/dnsdist/dnsdist.conf" >"$work/dnsdist.conf"
  # Console for showServers(); no security-status poll (a DNS query through the system
  # resolver): this demo stays on loopback.
  printf 'controlSocket("127.0.0.1:%s")\nsetKey("%s")\nsetSecurityPollSuffix("")\n' \
    "$CONSOLE" "$key" >>"$work/dnsdist.conf"
  dnsdist --check-config -C "$work/dnsdist.conf"
  # Line-buffered, so the log shows the up/down transitions as they happen.
  stdbuf -oL dnsdist --supervised --disable-syslog -C "$work/dnsdist.conf" >"$work/dnsdist.log" 2>&1 &
  pid[dnsdist]=$!
  wait_port "$FRONT" "$work/dnsdist.log"
}

say "starting a stand-in upstream on 127.0.0.1:$UPSTREAM, kidsafe-dns on :$BACK1 and :$BACK2, dnsdist on :$FRONT"
start_upstream
start_backend 1 "$BACK1"
start_backend 2 "$BACK2"
start_dnsdist
wait_state kidsafe-1 up
wait_state kidsafe-2 up

say "a blocked name through dnsdist: answered by kidsafe-dns from its list"
q www.pornhub.com
say "over TCP"
q bet365.com +tcp
say "an allowed name: forwarded to the (stand-in) upstream"
q wikipedia.org
say "subscriber 127.0.0.2 (the kids group): SafeSearch; 127.0.0.3: the real answer"
q www.google.com -b 127.0.0.2
q www.google.com -b 127.0.0.3
for i in $(seq 10); do q "n$i.example.org" >/dev/null; done
say "both backends take queries (Queries column)"
servers

say "killing kidsafe-dns backend 1 (pid ${pid[backend1]}, SIGKILL: a crash)"
kill -KILL "${pid[backend1]}"; wait "${pid[backend1]}" 2>/dev/null || true; unset 'pid[backend1]'
wait_state kidsafe-1 down
for name in www.pornhub.com xvideos.com wikipedia.org; do say "$name with backend 1 down"; q "$name"; done
servers

say "restarting backend 1"
start_backend 1 "$BACK1"
wait_state kidsafe-1 up

say "stopping the upstream: every health check fails now"
kill "${pid[upstream]}"; wait "${pid[upstream]}" 2>/dev/null || true; unset 'pid[upstream]'
wait_state kidsafe-1 down
wait_state kidsafe-2 down
servers
say "every backend down: roundrobin still uses them; blocked names keep their sinkhole answer"
q www.pornhub.com
say "allowed names: kidsafe-dns's SERVFAIL + EDE 22 (no reachable upstream)"
q wikipedia.org

say "dnsdist's log"
grep "Marking" "$work/dnsdist.log" || true
say "done"
