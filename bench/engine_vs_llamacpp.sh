#!/usr/bin/env bash
# Decode (tg) and prompt (pp) speed of Duet next to llama-bench on the same GGUF files, same thread counts,
# alternating the two per configuration. TinyLlama-1.1B shape (dim 2048, 22 layers, 32 heads, 4 KV heads,
# ffn 5632, vocab 32000), random weights, F16 / Q8_0 / Q4_0 (and with FILES, BF16 and Q4_K_M).
# Usage: [P=128] [N=32] [NOAMX=1] [BEFORE=CLONE] [FILES="f16 q8_0 q4_0 bf16 q4_k_m"] bench/engine_vs_llamacpp.sh LLAMA_CPP_BIN_DIR [WORK_DIR] > run.jsonl
#        bench/engine_table.py run.jsonl   (the markdown table)
# BEFORE: another built checkout of Duet (dotnet build src/Duet.Cli -c Release there), run right after this one on
# each configuration as tool "duet-before": a change's before and after against the same llama.cpp runs
# (bench/engine_table.py --tool duet-before run.jsonl gives the before table).
set -euo pipefail
bin="${1:?path to llama.cpp build/bin}"
work="${2:-/tmp/duet-bench}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/duet" --help > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
mkdir -p "$work"
if [ ! -f "$work/tinyllama-f16.gguf" ]; then
  "${duet[@]}" init --dim 2048 --layers 22 --heads 32 --kv-heads 4 --ffn 5632 --vocab 32000 --ctx 2048 --type F16 -o "$work/tinyllama-f16.gguf"
  "${duet[@]}" quantize "$work/tinyllama-f16.gguf" "$work/tinyllama-q8_0.gguf" --type Q8_0
  "${duet[@]}" quantize "$work/tinyllama-f16.gguf" "$work/tinyllama-q4_0.gguf" --type Q4_0
fi
# FILES: which of them to run (default the three above); bf16 and q4_k_m are made by llama.cpp's own llama-quantize
# from the F16 file (the Q4_K_M mix: Q4_K with some Q6_K tensors, as files from the hub are).
FILES="${FILES:-f16 q8_0 q4_0}"
for f in $FILES; do
  case $f in
    bf16) t=BF16 ;; q4_k_m) t=Q4_K_M ;; *) t="" ;;
  esac
  if [ -n "$t" ] && [ ! -f "$work/tinyllama-$f.gguf" ]; then
    "$bin/llama-quantize" "$work/tinyllama-f16.gguf" "$work/tinyllama-$f.gguf" $t 2 > /dev/null 2>&1
  fi
done
# Prompt and generation lengths: P and N (default 128 and 32, so that the 12 pairs of runs fit in about a
# quarter of an hour on 2 cores); both tools get the same ones, alternating per file and thread count.
P="${P:-128}"; N="${N:-32}"
# NOAMX=1: llama.cpp without its AMX kernels (bench/ggml/noamx.c), i.e. on the vector units Duet uses too.
pre=()
if [ "${NOAMX:-0}" = 1 ]; then gcc -O2 -shared -fPIC -o "$work/noamx.so" "$root/bench/ggml/noamx.c" -ldl; pre=(env LD_PRELOAD="$work/noamx.so"); fi
for t in 1 2; do
  for f in $FILES; do
    "${pre[@]}" "$bin/llama-bench" -m "$work/tinyllama-$f.gguf" -t $t -p "$P" -n "$N" -r 2 -o jsonl 2> /dev/null | sed "s/^{/{\"tool\":\"llama.cpp\",\"file\":\"$f\",/"
    "${duet[@]}" bench -m "$work/tinyllama-$f.gguf" -t $t -p "$P" -n "$N" -r 2 --json | sed "s/^{/{\"tool\":\"duet\",\"file\":\"$f\",/"
    if [ -n "${BEFORE:-}" ]; then
      dotnet "$BEFORE/src/Duet.Cli/bin/Release/net10.0/duet.dll" bench -m "$work/tinyllama-$f.gguf" -t $t -p "$P" -n "$N" -r 2 --json | sed "s/^{/{\"tool\":\"duet-before\",\"file\":\"$f\",/"
    fi
  done
done
