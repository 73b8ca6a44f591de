#!/usr/bin/env bash
# Training speed, Duet next to PyTorch in the same run (issue 5, acceptance 5): whole steps (forward, backward,
# clipping, AdamW) of the same LLaMA shape, batch and sequence, random tokens, the same thread count, alternating
# Duet and PyTorch so both see the same machine state. Prints one JSON line per measurement and a table.
#   bench/train_vs_pytorch.sh [THREADS...]          (default: 2)
# PyTorch is Debian's python3-torch with OpenBLAS (apt-get install python3-torch libopenblas0-pthread).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
threads=("${@:-2}")
out="$(mktemp)"
for t in "${threads[@]}"; do
  for rep in 1 2; do
    # duet-tiny: dim 256, 4 layers, 8/4 heads, ffn 704, vocab 8000, tied; batch 16 x 256 (as models/duet-tiny/train.json)
    "${duet[@]}" bench-train --preset duet-tiny --vocab 8000 --batch 16 --seq 256 --steps 5 -t "$t" --json | tee -a "$out"
    /usr/bin/python3 "$root/bench/train_pytorch.py" --preset duet-tiny --vocab 8000 --batch 16 --seq 256 --steps 5 --threads "$t" | tee -a "$out"
    # 15M (llama2.c stories15M): dim 288, 6 layers, 6 heads, ffn 768, vocab 32000, tied; batch 8 x 256
    "${duet[@]}" bench-train --preset 15m --vocab 32000 --batch 8 --seq 256 --steps 5 -t "$t" --json | tee -a "$out"
    /usr/bin/python3 "$root/bench/train_pytorch.py" --preset 15m --vocab 32000 --batch 8 --seq 256 --steps 5 --threads "$t" | tee -a "$out"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys, collections
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = collections.defaultdict(lambda: collections.defaultdict(list))
for r in rows: by[(r["preset"], r["threads"])][r["peer"]].append(r)
print("| shape | threads | Duet tokens/s | Duet MFU | PyTorch tokens/s | Duet / PyTorch |")
print("|---|---|---|---|---|---|")
for (preset, t), peers in sorted(by.items()):
    d = max(x["tokens_per_s"] for x in peers["duet"]); p = max(x["tokens_per_s"] for x in peers["pytorch"])
    mfu = max(x["mfu"] for x in peers["duet"])
    print(f"| {preset} | {t} | {d:,.0f} | {mfu:.1%} | {p:,.0f} | {d / p:.2f}x |")
PY
