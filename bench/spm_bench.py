#!/usr/bin/python3
"""Single-thread encode throughput of python3-sentencepiece (line by line, split on LF only).

Usage: /usr/bin/python3 bench/spm_bench.py MODEL TEXT
Prints one JSON line: {"tool", "tokenizer", "bytes", "mb_per_s"} where bytes is the
input file size and mb_per_s = bytes / 1e6 / median of 5 timed passes (after 1 warm-up).
"""
import json
import statistics
import sys
import time
from pathlib import Path

import sentencepiece as spm

model, text = sys.argv[1], sys.argv[2]
data = Path(text).read_bytes()
lines = data.decode("utf-8").split("\n")
if lines and lines[-1] == "":
    lines.pop()
sp = spm.SentencePieceProcessor(model_file=model, num_threads=1)


def one_pass():
    t0 = time.perf_counter()
    for line in lines:
        sp.encode(line, out_type=int)
    return time.perf_counter() - t0


def batch_pass():
    # The whole list in one call: no Python overhead per line (the fastest way to use the library).
    t0 = time.perf_counter()
    sp.encode(lines, out_type=int, num_threads=1)
    return time.perf_counter() - t0


for mode, fn in (("per-line", one_pass), ("batch", batch_pass)):
    fn()  # warm-up
    median = statistics.median(fn() for _ in range(5))
    print(json.dumps({"tool": "python3-sentencepiece", "mode": mode, "tokenizer": Path(model).stem,
                      "bytes": len(data), "mb_per_s": round(len(data) / 1e6 / median, 3)}, separators=(",", ":")))
