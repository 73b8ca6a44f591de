#!/usr/bin/env bash
# Server load: duet serve under many concurrent streaming clients (bench/Duet.Bench.Serve), and llama-server
# on the same GGUF with the same client, alternating.
#   1. verify: 32 clients x 20 streamed requests; each reply must equal what the same request got alone
#      (greedy, end-of-turn tokens banned so every reply runs to max_tokens): none lost, duplicated or mixed.
#   2. throughput at 1 and 8 concurrent streams (tokens/s, time to first token p50/p99): 1, 8, 1, 8 on each
#      server start, the two servers alternating, two rounds.
# Model: a random-weight stories110M-shaped LLaMA (dim 768, 12 layers, 12 heads, ffn 2048) with the bilingual
# 8000-token tokenizer trained on data/sample, F32 (decode is memory-bound, so batching pays) and Q8_0.
# Usage: bench/serve_load.sh [LLAMA_CPP_BIN_DIR] [WORK_DIR] > run.jsonl      (bench/serve_table.py run.jsonl: the tables)
# As root, run it as `nice -n -10 bench/serve_load.sh ...` on a shared machine: both servers and the client then
# take precedence over background builds (the two servers equally).
set -euo pipefail
bin="${1:-}"
work="${2:-/tmp/duet-serve-bench}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/duet" --help > /dev/null
dotnet build "$root/bench/Duet.Bench.Serve" -c Release -v q -nologo > /dev/null
duet=(dotnet "$root/src/Duet.Cli/bin/Release/net10.0/duet.dll")
client=(dotnet "$root/bench/Duet.Bench.Serve/bin/Release/net10.0/Duet.Bench.Serve.dll")
mkdir -p "$work"
if [ ! -f "$work/tokenizer/tokenizer.json" ]; then
  "${duet[@]}" tokenizer train --input "$root/data/sample" --vocab-size 8000 --out "$work/tokenizer" > /dev/null 2>&1
fi
if [ ! -f "$work/s110m-f32.gguf" ]; then
  "${duet[@]}" init --dim 768 --layers 12 --heads 12 --kv-heads 12 --ffn 2048 --ctx 1024 --seed 3 \
    --tokenizer "$work/tokenizer/tokenizer.json" --type F32 -o "$work/s110m-f32.gguf" > /dev/null
  "${duet[@]}" quantize "$work/s110m-f32.gguf" "$work/s110m-q8_0.gguf" --type Q8_0 > /dev/null
fi
port=8180
# A new port for every server: connections closed by the server sit in TIME_WAIT on its port, and llama-server
# does not bind over them.
next_port() { port=$((port + 1)); }
wait_ready() { for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/health" > /dev/null && return 0; sleep 0.2; done; echo "server did not start" >&2; return 1; }
start_duet() { next_port; "${duet[@]}" serve -m "$1" --port $port --parallel 8 --ctx 512 -t 2 > "$work/server.log" 2>&1 & pid=$!; wait_ready; }
start_llama() { next_port; "$bin/llama-server" -m "$1" --port $port -np 8 -c 4096 -t 2 --log-disable > "$work/server.log" 2>&1 & pid=$!; wait_ready; }
stop() { kill "$pid"; wait "$pid" 2> /dev/null || true; }
tag() { sed "s/^{/{\"file\":\"$1\",/"; }

for f in f32 q8_0; do
  [ "${VERIFY:-1}" = 1 ] || break
  start_duet "$work/s110m-$f.gguf"
  "${client[@]}" --url "http://127.0.0.1:$port" --mode verify --clients 32 --requests 20 --max-tokens 24 --tool duet | tag $f
  stop
done
for round in 1 2; do
  for f in f32 q8_0; do
    for tool in duet llama.cpp; do
      if [ "$tool" = llama.cpp ] && [ -z "$bin" ]; then continue; fi
      if [ "$tool" = duet ]; then start_duet "$work/s110m-$f.gguf"; else start_llama "$work/s110m-$f.gguf"; fi
      for c in 1 8 1 8; do
        "${client[@]}" --url "http://127.0.0.1:$port" --mode throughput --clients $c --requests 3 --max-tokens 64 --tool "$tool" | tag $f
      done
      stop
    done
  done
done
