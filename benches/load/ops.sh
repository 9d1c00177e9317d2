#!/usr/bin/env bash
# Operations figures (run by hand): RSS under a flood of idle TCP connections, UDP service
# during it, and the /metrics scrape time.
#   benches/load/ops.sh [connections]
# Starts the release binary on the 1.46M-name union from ../shared/data (compiled once
# into $WORK), with tcp_max_connections = 1024 and tcp_idle_ms = 10000, opens
# [connections] (default 10000) TCP connections that send nothing, and prints VmRSS before,
# during and after, whether dig over UDP still answers during the flood, the connection
# metrics, and the scrape time of /metrics (curl, median of 20) with 10,000 client groups.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS="${1:-10000}"
WORK="${WORK:-/tmp/kidsafe-ops}"
PORT=5421
ADMIN=9421
BIN=$PWD/target/release/kidsafe-dns
UNION=../shared/data/scale/blocklist-union-domains.txt.gz
command -v dig >/dev/null || { echo "needs dig (apt-get install -y bind9-dnsutils)"; exit 1; }
mkdir -p "$WORK"
cargo build --release -q

groups() {
  # 10,000 client groups, one /24 each, so the metrics have many series to render.
  for i in $(seq 0 9999); do
    printf '[[groups]]\nname = "g%d"\nclients = ["10.%d.%d.0/24"]\n' "$i" $((i / 256)) $((i % 256))
  done
  printf '[[groups]]\nname = "default"\n'
}

cat > "$WORK/ops.toml" <<TOML
[server]
listen = ["127.0.0.1:$PORT"]
threads = 2
tcp_max_connections = 1024
tcp_idle_ms = 10000
[upstream]
servers = ["127.0.0.1:9"]
timeout_ms = 200
[lists]
compiled = "$WORK/union.fst"
watch = false
[[lists.source]]
category = "adult"
path = "$(realpath "$UNION")"
[admin]
listen = ["127.0.0.1:$ADMIN"]
$(groups)
TOML

"$BIN" serve --config "$WORK/ops.toml" 2>"$WORK/serve.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  dig +short +tries=1 +time=1 @127.0.0.1 -p $PORT example.com >/dev/null 2>&1 && break
  sleep 0.1
done
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$PID/status"; }
echo "RSS idle:                 $(rss)"

# Traffic so every group... (a few queries give the counters something to show).
for n in 1 2 3; do dig +short @127.0.0.1 -p $PORT "www$n.example.com" >/dev/null || true; done

python3 - "$PORT" "$CONNS" "$PID" "$ADMIN" <<'PY'
import socket, subprocess, sys, time, urllib.request
port, conns, pid, admin = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return line.split()[1] + " kB"
socks, failed = [], 0
t0 = time.time()
for _ in range(conns):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except OSError:
        failed += 1
        continue
    socks.append(s)
time.sleep(1.0)
print(f"opened {len(socks)} idle connections in {time.time() - t0:.1f} s ({failed} failed)")
print(f"RSS during the flood:     {rss()}")
ok = 0
for i in range(50):
    r = subprocess.run(["dig", "+short", "+tries=1", "+time=1", "@127.0.0.1", "-p", str(port),
                        f"flood{i}.example.com"], capture_output=True)
    ok += r.returncode == 0
print(f"UDP queries answered during the flood: {ok}/50")
m = urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics").read().decode()
for line in m.splitlines():
    if line.startswith(("kidsafe_tcp_connections", "kidsafe_tcp_rejected_total")):
        print("  " + line)
for s in socks:
    s.close()
time.sleep(1.0)
print(f"RSS after closing them:   {rss()}")
PY

times=()
for _ in $(seq 1 20); do
  times+=("$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$ADMIN/metrics")")
done
size=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | wc -c)
series=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -vc '^#')
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 10p)
echo "/metrics scrape: median ${median}s over 20 (${size} bytes, ${series} samples, 10,001 groups)"
