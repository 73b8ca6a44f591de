#!/usr/bin/env python3
"""Markdown tables from bench/serve_load.sh output (JSON lines): verify results, and per file and tool the
median aggregate tokens/s at 1 and 8 concurrent streams (min-max in brackets), the 8/1 ratio, and time to
first token. Usage: bench/serve_table.py run.jsonl [more.jsonl ...]"""
import json
import statistics
import sys

rows = [json.loads(l) for f in sys.argv[1:] for l in open(f) if l.startswith("{")]
verify = [r for r in rows if r["mode"] == "verify"]
if verify:
    print("| file | clients x requests | mismatched | tokens | tokens/s | TTFT p50 / p99 (ms) |")
    print("|---|---|---|---|---|---|")
    for r in verify:
        print(f"| {r['file']} | {r['clients']} x {r['requests'] // r['clients']} | {r['mismatched']} | {r['tokens']} | {r['tokens_per_s']} | {r['ttft_p50_ms']:.0f} / {r['ttft_p99_ms']:.0f} |")
    print()
tp = [r for r in rows if r["mode"] == "throughput"]
med = {}
print("| file | server | 1 stream tok/s | 8 streams tok/s | 8 / 1 | TTFT p50 / p99 at 1 (ms) | TTFT p50 / p99 at 8 (ms) |")
print("|---|---|---|---|---|---|---|")
for f in sorted({r["file"] for r in tp}):
    for tool in ["duet", "llama.cpp"]:
        one = [r for r in tp if r["file"] == f and r["tool"] == tool and r["clients"] == 1]
        eight = [r for r in tp if r["file"] == f and r["tool"] == tool and r["clients"] == 8]
        if not one or not eight:
            continue
        m1 = statistics.median(r["tokens_per_s"] for r in one)
        m8 = statistics.median(r["tokens_per_s"] for r in eight)
        med[(f, tool)] = (m1, m8)
        span = lambda rs: f"({min(r['tokens_per_s'] for r in rs):.0f}-{max(r['tokens_per_s'] for r in rs):.0f})"
        t = lambda rs, k: statistics.median(r[k] for r in rs)
        print(f"| {f} | {tool} | {m1:.1f} {span(one)} | {m8:.1f} {span(eight)} | {m8 / m1:.2f}x | {t(one, 'ttft_p50_ms'):.0f} / {t(one, 'ttft_p99_ms'):.0f} | {t(eight, 'ttft_p50_ms'):.0f} / {t(eight, 'ttft_p99_ms'):.0f} |")
print()
for f in sorted({k[0] for k in med}):
    if (f, "duet") in med and (f, "llama.cpp") in med:
        d, l = med[(f, "duet")], med[(f, "llama.cpp")]
        print(f"- {f}: Duet / llama-server at 1 stream {d[0] / l[0]:.2f}x, at 8 streams {d[1] / l[1]:.2f}x")
