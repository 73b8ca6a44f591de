#!/usr/bin/env bash
# Perplexity of the same GGUF files on the same text by Duet (`duet eval perplexity`) and by llama.cpp's
# llama-perplexity (F32 KV cache, as Duet keeps), side by side: final PPL, its uncertainty, chunks, and speed.
# Usage: bench/perplexity_llamacpp.sh LLAMA_CPP_BIN_DIR TEXT_FILE CTX CHUNKS MODEL.gguf [MODEL.gguf ...]
#   e.g. bench/perplexity_llamacpp.sh /work/llama.cpp/build/bin /tmp/val.txt 256 0 out/duet-tiny.gguf
#   (CHUNKS 0: all the text holds). Prints one line per model and tool; exits 1 if a PPL differs by more than 0.1%.
set -euo pipefail
bin="${1:?path to llama.cpp build/bin}"; text="${2:?text file}"; ctx="${3:?context}"; chunks="${4:?chunks, 0 for all}"; shift 4
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
status=0
for m in "$@"; do
  c=(); lc=()
  if [ "$chunks" != 0 ]; then c=(--chunks "$chunks"); lc=(--chunks "$chunks"); fi
  ours="$("${duet[@]}" eval perplexity -m "$m" --data "$text" --ctx "$ctx" "${c[@]}" -t 2 --json 2> /dev/null)"
  theirs="$("$bin/llama-perplexity" -m "$m" -f "$text" -c "$ctx" -b "$ctx" "${lc[@]}" -t 2 -ctk f32 -ctv f32 2>&1)"
  python3 - "$m" "$ours" "$theirs" <<'PY' || status=1
import json, re, sys
m, ours, theirs = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
ppl, err = map(float, re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", theirs).groups())
chunks = int(re.search(r"calculating perplexity over (\d+) chunks", theirs).group(1))
per_pass = float(re.search(r"([0-9.]+) seconds per pass", theirs).group(1))
rel = ours["ppl"] / ppl - 1
print(f"{m}: duet PPL {ours['ppl']:.4f} +/- {ours['ppl_err']:.5f} over {ours['chunks']} chunks ({ours['tokens_per_second']:.0f} tokens/s); "
      f"llama.cpp {ppl:.4f} +/- {err:.5f} over {chunks} chunks ({ours['ctx'] / per_pass:.0f} tokens/s, first pass); relative difference {rel:.2e}")
sys.exit(0 if abs(rel) <= 1e-3 and chunks == ours["chunks"] else 1)
PY
done
exit $status
