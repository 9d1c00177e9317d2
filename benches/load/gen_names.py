#!/usr/bin/env python3
"""Deterministic synthetic hostnames shaped like list entries: gen_names.py COUNT SEED."""
import random
import sys

SYL = ["ka", "lo", "mi", "ne", "po", "ru", "sa", "ti", "vu", "xe", "bet", "cam", "sex", "win",
       "hot", "club", "play", "tube", "live", "star", "ads", "cdn", "img", "web"]
TLD = ["com", "net", "org", "xyz", "top", "info", "ru", "de", "vn", "co.uk", "com.br", "io"]

count, seed = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
out = sys.stdout
for i in range(count):
    sub = rng.choice(SYL) + "." if rng.random() < 0.25 else ""
    body = "".join(rng.choice(SYL) for _ in range(rng.randint(2, 4)))
    out.write(f"{sub}{body}{i}.{rng.choice(TLD)}\n")
