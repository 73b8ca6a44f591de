#!/usr/bin/env bash
# KL divergence both ways between Duet and llama.cpp: a base file of log-probabilities written by each tool
# (`duet eval perplexity --save-logits`, `llama-perplexity --kl-divergence-base`) from the same base GGUF and text,
# then each tool reads each base against each quantized GGUF. Prints the statistics of both tools side by side.
# Usage: bench/kld_llamacpp.sh LLAMA_CPP_BIN_DIR TEXT_FILE CTX BASE.gguf Q.gguf [Q.gguf ...]
set -euo pipefail
bin="${1:?path to llama.cpp build/bin}"; text="${2:?text file}"; ctx="${3:?context}"; base="${4:?base GGUF}"; shift 4
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
"${duet[@]}" eval perplexity -m "$base" --data "$text" --ctx "$ctx" -t 2 --save-logits "$work/duet.kld" > /dev/null 2>&1
"$bin/llama-perplexity" -m "$base" -f "$text" -c "$ctx" -b "$ctx" -t 2 -ctk f32 -ctv f32 --kl-divergence-base "$work/llama.kld" > /dev/null 2>&1
for q in "$@"; do
  for b in duet llama; do
    "${duet[@]}" eval perplexity -m "$q" --kl-base "$work/$b.kld" -t 2 --json 2> /dev/null > "$work/d.json"
    "$bin/llama-perplexity" -m "$q" -c "$ctx" -b "$ctx" -t 2 -ctk f32 -ctv f32 --kl-divergence-base "$work/$b.kld" --kl-divergence > "$work/l.txt" 2>&1
    python3 - "$q" "$b" "$work/d.json" "$work/l.txt" <<'PY'
import json, re, sys
q, b, d, l = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3])), open(sys.argv[4], encoding="utf-8").read()
def g(pat): return float(re.search(pat, l).group(1))
rows = [("PPL(Q)/PPL(base)", d["ppl_ratio"], g(r"Mean PPL\(Q\)/PPL\(base\)\s*:\s*([0-9.]+)")),
        ("mean KLD", d["kld_mean"], g(r"Mean\s+KLD:\s*([0-9.]+)")),
        ("99% KLD", d["kld_99"], g(r"99\.0%\s+KLD:\s*([0-9.]+)")),
        ("median KLD", d["kld_median"], g(r"Median\s+KLD:\s*([0-9.]+)")),
        ("RMS dp %", 100 * d["delta_p_rms"], g(r"RMS Δp\s*:\s*([0-9.]+)")),
        ("same top %", 100 * d["same_top"], g(r"Same top p:\s*([0-9.]+)"))]
print(f"{q} against the {b} base: " + "; ".join(f"{n} duet {a:.6g} llama.cpp {c:.6g}" for n, a, c in rows))
PY
  done
done
