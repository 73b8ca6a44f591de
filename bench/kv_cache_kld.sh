#!/usr/bin/env bash
# What a rounded KV cache costs in quality, by Duet and by llama.cpp on the same model and text: each tool writes the
# log-probabilities of the model with an F32 cache as a KL-divergence base (`duet eval perplexity --save-logits`,
# `llama-perplexity --kl-divergence-base`), then reads the same model against its own base with each cache type
# (`--cache-type-k T --cache-type-v T`; llama.cpp -ctk T -ctv T, with -fa, which a quantized V cache needs there;
# its base runs without -fa, whose CPU kernel takes no F32 keys in c392e50).
# Usage: bench/kv_cache_kld.sh LLAMA_CPP_BIN_DIR TEXT_FILE CTX MODEL.gguf [TYPES...]   (TYPES default: f16 q8_0)
set -euo pipefail
bin="${1:?path to llama.cpp build/bin}"; text="${2:?text file}"; ctx="${3:?context}"; model="${4:?GGUF}"; shift 4
types=("$@"); [ ${#types[@]} -gt 0 ] || types=(f16 q8_0)
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
"${duet[@]}" eval perplexity -m "$model" --data "$text" --ctx "$ctx" -t 2 --save-logits "$work/duet.kld" > /dev/null 2>&1
"$bin/llama-perplexity" -m "$model" -f "$text" -c "$ctx" -b "$ctx" -t 2 -ctk f32 -ctv f32 --kl-divergence-base "$work/llama.kld" > /dev/null 2>&1
for t in "${types[@]}"; do
  "${duet[@]}" eval perplexity -m "$model" --kl-base "$work/duet.kld" -t 2 --json --cache-type-k "$t" --cache-type-v "$t" 2> /dev/null > "$work/d.json"
  "$bin/llama-perplexity" -m "$model" -c "$ctx" -b "$ctx" -t 2 -ctk "$t" -ctv "$t" -fa --kl-divergence-base "$work/llama.kld" --kl-divergence > "$work/l.txt" 2>&1
  python3 - "$t" "$work/d.json" "$work/l.txt" <<'PY'
import json, re, sys
t, d, l = sys.argv[1], json.load(open(sys.argv[2])), open(sys.argv[3], encoding="utf-8").read()
def g(pat): return float(re.search(pat, l).group(1))
rows = [("PPL(Q)/PPL(base)", d["ppl_ratio"], g(r"Mean PPL\(Q\)/PPL\(base\)\s*:\s*([0-9.]+)")),
        ("mean KLD", d["kld_mean"], g(r"Mean\s+KLD:\s*([0-9.]+)")),
        ("99% KLD", d["kld_99"], g(r"99\.0%\s+KLD:\s*([0-9.]+)")),
        ("RMS dp %", 100 * d["delta_p_rms"], g(r"RMS Δp\s*:\s*([0-9.]+)")),
        ("same top %", 100 * d["same_top"], g(r"Same top p:\s*([0-9.]+)"))]
print(json.dumps({"cache": t, "duet": {n: a for n, a, _ in rows}, "llama.cpp": {n: c for n, _, c in rows}}))
PY
done
