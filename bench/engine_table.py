#!/usr/bin/env python3
"""Markdown table from the JSON lines of bench/engine_vs_llamacpp.sh: Duet next to llama.cpp per file and thread count.
Usage: bench/engine_vs_llamacpp.sh BIN | tee run.jsonl; python3 bench/engine_table.py run.jsonl [run2.jsonl ...]
With several runs (this machine is noisy), each cell is the median over the runs of tokens/s, and each ratio
is the median of the per-run ratios (Duet / llama.cpp measured next to each other) with their range.
--tool NAME takes Duet's figures from the lines of that tool (default "duet"; "duet-before" with BEFORE=)."""
import json, statistics, sys

args = sys.argv[1:]
tool = "duet"
if args[:1] == ["--tool"]:
    tool, args = args[1], args[2:]
runs = []
for path in args:
    run = {}
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        kind = "pp" if r["n_prompt"] > 0 else "tg"
        run[(r["file"], r["n_threads"], kind, r["tool"])] = r["avg_ts"]
    runs.append(run)

many = len(runs) > 1
print("| file | threads | llama.cpp pp | Duet pp | ratio | llama.cpp tg | Duet tg | ratio |")
print("|---|---|---|---|---|---|---|---|")
for t in (1, 2):
    for f in [f for f in ("f16", "q8_0", "q4_0", "bf16", "q4_k_m") if any(k[0] == f for run in runs for k in run)]:
        cells = []
        for kind in ("pp", "tg"):
            pairs = [(run[(f, t, kind, "llama.cpp")], run[(f, t, kind, tool)]) for run in runs
                     if (f, t, kind, "llama.cpp") in run and (f, t, kind, tool) in run]
            if not pairs:
                cells += ["-", "-", "-"]
                continue
            ratios = [d / l for l, d in pairs]
            ratio = f"{statistics.median(ratios):.2f}"
            if many:
                ratio += f" ({min(ratios):.2f}-{max(ratios):.2f})"
            cells += [f"{statistics.median(l for l, _ in pairs):.1f}", f"{statistics.median(d for _, d in pairs):.1f}", ratio]
        print(f"| {f.upper()} | {t} | " + " | ".join(cells) + " |")
