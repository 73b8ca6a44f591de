#!/usr/bin/env bash
# Perplexity of the same GGUF files on the same text by Duet (`duet eval perplexity`) and by llama.cpp's
# llama-perplexity (F32 KV cache, as Duet keeps), side by side: final PPL, its uncertainty, chunks, and speed.
# Usage: [REPEAT=3] [THREADS=2] bench/perplexity_llamacpp.sh LLAMA_CPP_BIN_DIR TEXT_FILE CTX CHUNKS MODEL.gguf [MODEL.gguf ...]
#   e.g. bench/perplexity_llamacpp.sh /work/llama.cpp/build/bin /tmp/val.txt 256 0 out/duet-tiny.gguf
#   (CHUNKS 0: all the text holds). Each model is run REPEAT times by each tool, alternating (the machines are
#   noisy); speed is tokens evaluated per second: Duet's chunks x ctx over its evaluation time, llama.cpp's
#   "prompt eval" tokens per second (llama_perf), both without loading and tokenizing; the median of the runs and
#   their ratio. Prints one line per model; exits 1 if a PPL differs by more than 0.1% or the chunk counts differ.
set -euo pipefail
bin="${1:?path to llama.cpp build/bin}"; text="${2:?text file}"; ctx="${3:?context}"; chunks="${4:?chunks, 0 for all}"; shift 4
repeat="${REPEAT:-3}"; threads="${THREADS:-2}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
status=0
for m in "$@"; do
  c=(); lc=()
  if [ "$chunks" != 0 ]; then c=(--chunks "$chunks"); lc=(--chunks "$chunks"); fi
  ours=(); theirs=()
  for ((i = 0; i < repeat; i++)); do
    ours+=("$("${duet[@]}" eval perplexity -m "$m" --data "$text" --ctx "$ctx" "${c[@]}" -t "$threads" --json 2> /dev/null)")
    theirs+=("$("$bin/llama-perplexity" -m "$m" -f "$text" -c "$ctx" -b "$ctx" "${lc[@]}" -t "$threads" -ctk f32 -ctv f32 2>&1 | grep -E 'Final estimate|calculating perplexity over|prompt eval time' | tr '\n' ' ')")
  done
  python3 - "$m" "$(printf '%s\n' "${ours[@]}")" "$(printf '%s\n' "${theirs[@]}")" <<'PY' || status=1
import json, re, statistics, sys
m = sys.argv[1]
ours = [json.loads(l) for l in sys.argv[2].splitlines() if l.strip()]
theirs = [l for l in sys.argv[3].splitlines() if l.strip()]
ppl, err = map(float, re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", theirs[0]).groups())
chunks = int(re.search(r"calculating perplexity over (\d+) chunks", theirs[0]).group(1))
ours_tps = statistics.median(o["tokens_per_second"] for o in ours)
theirs_tps = statistics.median(float(re.search(r"([0-9.]+) tokens per second", t).group(1)) for t in theirs)
rel = ours[0]["ppl"] / ppl - 1
print(f"{m}: duet PPL {ours[0]['ppl']:.4f} +/- {ours[0]['ppl_err']:.5f} over {ours[0]['chunks']} chunks, {ours_tps:.0f} tokens/s; "
      f"llama.cpp {ppl:.4f} +/- {err:.5f} over {chunks} chunks, {theirs_tps:.0f} tokens/s; "
      f"speed ratio {ours_tps / theirs_tps:.2f}x (median of {len(ours)}); PPL relative difference {rel:.2e}")
sys.exit(0 if abs(rel) <= 1e-3 and chunks == ours[0]["chunks"] else 1)
PY
done
exit $status
