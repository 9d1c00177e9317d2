#!/usr/bin/env python3
"""Report intake load: edges' batches posted to a central's POST /v1/reports.

Usage: report_intake.py URL TOKEN [TOTAL] [BATCH] [CONCURRENCY]

Posts TOTAL reports (default 100000) in batches of BATCH (500) from CONCURRENCY (4)
threads, each report with a fresh idempotency key and one of 5000 names (so the central
both creates and bumps reports), then replays the first batch (it must all be duplicates)
and prints reports/s. Needs only the Python standard library.
"""
import json
import sys
import threading
import time
import urllib.request
import uuid

url, token = sys.argv[1], sys.argv[2]
total = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 500
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 4


def body(n, offset):
    reports = [
        {
            "key": uuid.uuid4().hex,
            "serial": 1,
            "name": f"load{(offset + i) % 5000}.example",
            "category": "adult",
        }
        for i in range(n)
    ]
    return json.dumps({"node": "load", "reports": reports}).encode()


def post(data):
    req = urllib.request.Request(
        url,
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


batches = [body(batch, i * batch) for i in range(total // batch)]
accepted = 0
lock = threading.Lock()


def worker(mine):
    global accepted
    for data in mine:
        got = post(data)
        with lock:
            accepted += got["accepted"]


start = time.monotonic()
ts = [threading.Thread(target=worker, args=(batches[i::threads],)) for i in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
elapsed = time.monotonic() - start
replay = post(batches[0])
print(
    f"{accepted} reports in {len(batches)} batches of {batch}, {threads} threads: "
    f"{elapsed:.2f} s, {accepted / elapsed:.0f} reports/s; "
    f"replayed batch: {replay['accepted']} accepted, {replay['duplicates']} duplicates"
)
sys.exit(0 if accepted == len(batches) * batch and replay["accepted"] == 0 else 1)
