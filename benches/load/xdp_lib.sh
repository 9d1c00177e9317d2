# Shared by the kxdpgun harnesses (source it; run as root).
#
# The load generator is kxdpgun (Debian knot-dnsutils), which sends and receives through
# AF_XDP and costs far less per query than dnsperf, so the server is what saturates. It
# runs in network namespace `gen` on core 0 against a server in namespace `srv` pinned to
# core 1, over a veth pair (native XDP mode). Only addresses in the namespaces made here
# are used (10.200.0.1 = generator, 10.200.0.2 = server); xdp_teardown removes them.
#
#   xdp_setup                         namespaces + veth (idempotent)
#   xdp_second_link                   a second veth (10.201.0.1 -> 10.201.0.2) for a socket
#                                     client beside kxdpgun, whose XDP program takes every
#                                     reply arriving on the first one
#   xdp_teardown                      removes both namespaces (and the veth with them)
#   xdp_serve CORES CMD...            starts CMD in `srv` on CORES (taskset list), sets XDP_PID
#   xdp_wait_udp NAME                 waits until the server answers NAME over UDP
#   xdp_stop                          stops the server started by xdp_serve
#   xdp_gun SECS QUERIES [ARGS...]    prints "<answered/s> <sent/s> <server CPU ns per answer>"
#
# The CPU per answer (the server's own user+system time over the run, from /proc, divided
# by the replies) holds still when other work on the machine steals time from the server:
# a descheduled server answers less but also spends less.

XDP_GEN_IP=10.200.0.1
XDP_SRV_IP=10.200.0.2
XDP_PID=""

xdp_require() {
  [ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, AF_XDP)" >&2; exit 1; }
  command -v kxdpgun >/dev/null || apt-get install -y knot-dnsutils >/dev/null
  command -v dig >/dev/null || apt-get install -y bind9-dnsutils >/dev/null
}

xdp_setup() {
  xdp_require
  ip netns list | grep -qw gen && ip netns list | grep -qw srv && return 0
  ip netns add gen
  ip netns add srv
  ip link add vg type veth peer name vs
  ip link set vg netns gen
  ip link set vs netns srv
  ip -n gen addr add "$XDP_GEN_IP/24" dev vg
  ip -n srv addr add "$XDP_SRV_IP/24" dev vs
  ip -n gen link set vg up
  ip -n srv link set vs up
  ip -n gen link set lo up
  ip -n srv link set lo up
}

XDP_GEN2_IP=10.201.0.1
XDP_SRV2_IP=10.201.0.2

xdp_second_link() {
  ip -n srv link show vs2 >/dev/null 2>&1 && return 0
  ip link add vg2 type veth peer name vs2
  ip link set vg2 netns gen
  ip link set vs2 netns srv
  ip -n gen addr add "$XDP_GEN2_IP/24" dev vg2
  ip -n srv addr add "$XDP_SRV2_IP/24" dev vs2
  ip -n gen link set vg2 up
  ip -n srv link set vs2 up
}

xdp_teardown() {
  ip netns del gen 2>/dev/null || true
  ip netns del srv 2>/dev/null || true
}

xdp_serve() {
  local cores="$1"; shift
  ip netns exec srv taskset -c "$cores" "$@" >"${XDP_LOG:-/dev/null}" 2>&1 &
  XDP_PID=$!
}

xdp_wait_udp() {
  for _ in $(seq 300); do
    ip netns exec gen dig @"$XDP_SRV_IP" +time=1 +tries=1 "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not answer $1" >&2
  return 1
}

xdp_stop() {
  [ -n "$XDP_PID" ] || return 0
  kill "$XDP_PID" 2>/dev/null || true
  wait "$XDP_PID" 2>/dev/null || true
  XDP_PID=""
}

# utime+stime of XDP_PID and its threads, in clock ticks.
xdp_cpu_ticks() {
  awk '{print $14 + $15}' "/proc/$XDP_PID/stat"
}

xdp_gun() {
  local secs="$1" queries="$2"; shift 2
  local before after
  before=$(xdp_cpu_ticks)
  ip netns exec gen taskset -c 0 kxdpgun -t "$secs" -Q "${XDP_QPS:-3000000}" -F 0 "$@" \
    -i "$queries" "$XDP_SRV_IP" >"${XDP_GUN_OUT:-/tmp/kxdpgun.out}" 2>&1
  after=$(xdp_cpu_ticks)
  awk -v s="$secs" -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
    /^total (queries|SYNs):/ {q=$3} /^total replies:/ {r=$3}
    END {printf "%d %d %d\n", r/s, q/s, (r > 0 ? ticks / hz * 1e9 / r : 0)}' \
    "${XDP_GUN_OUT:-/tmp/kxdpgun.out}"
}
