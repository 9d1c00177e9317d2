#!/bin/sh
# The central's report intake under load: starts `kidsafe-dns serve` as a central (one
# edge token) in a scratch directory and runs report_intake.py against it.
# Usage: benches/load/report_intake.sh [BINARY] [TOTAL] [BATCH] [CONCURRENCY]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-target/release/kidsafe-dns}
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
token=load-edge-token-0123456789
echo "$token" > "$dir/edge.token"
echo "bad.example" > "$dir/adult.txt"
cat > "$dir/central.toml" <<TOML
[server]
listen = ["127.0.0.1:10953"]
[upstream]
servers = ["127.0.0.1:9"]
[lists]
compiled = "var/blocklist.fst"
[[lists.source]]
category = "adult"
path = "adult.txt"
[admin]
listen = ["127.0.0.1:10954"]
[reports]
edges = [{ node = "load", token_file = "edge.token" }]
TOML
"$bin" serve --config "$dir/central.toml" 2>"$dir/log" &
pid=$!
for _ in $(seq 100); do
    curl -sf http://127.0.0.1:10954/healthz >/dev/null && break
    sleep 0.1
done
python3 "$here/report_intake.py" http://127.0.0.1:10954/v1/reports "$token" "${2:-100000}" "${3:-500}" "${4:-4}"
