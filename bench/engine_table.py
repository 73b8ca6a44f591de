#!/usr/bin/env python3
"""Markdown table from the JSON lines of bench/engine_vs_llamacpp.sh: Duet next to llama.cpp per file and thread count.
Usage: bench/engine_vs_llamacpp.sh BIN | tee run.jsonl; python3 bench/engine_table.py run.jsonl"""
import json, sys
runs = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    kind = "pp" if r["n_prompt"] > 0 else "tg"
    runs[(r["file"], r["n_threads"], kind, r["tool"])] = (r["avg_ts"], r["n_prompt"] or r["n_gen"])
print("| file | threads | llama.cpp pp | Duet pp | ratio | llama.cpp tg | Duet tg | ratio |")
print("|---|---|---|---|---|---|---|---|")
for t in (1, 2):
    for f in ("f16", "q8_0", "q4_0"):
        cells = []
        for kind in ("pp", "tg"):
            l, d = runs.get((f, t, kind, "llama.cpp")), runs.get((f, t, kind, "duet"))
            if l and d:
                cells += [f"{l[0]:.1f}", f"{d[0]:.1f}", f"{d[0] / l[0]:.2f}"]
            else:
                cells += ["-", "-", "-"]
        print(f"| {f.upper()} | {t} | " + " | ".join(cells) + " |")
