#!/usr/bin/env bash
# Interop with llama.cpp, both ways, by greedy generation of 32 tokens from the same GGUF file:
#   1. GGUF files written by `duet init` (F32) and `duet quantize` (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) run in
#      llama.cpp's llama-cli;
#   2. GGUF files written by llama.cpp's llama-quantize (from Duet's F32 file: F16, Q8_0, Q4_0, Q6_K, Q4_K_M)
#      run in Duet.
# On a CPU with AMX, llama.cpp (built with GGML_NATIVE) runs K-quant matrices through its AMX kernels, whose
# float order differs from ggml_vec_dot_*_q8_K (see docs/interop.md); LD_LIBRARY_PATH=DIR with a
# libggml-cpu.so built without AMX selects the ordinary CPU kernels.
# Each line says whether the 32 generated tokens (compared as their text) are the same.
# Usage: bench/interop_llamacpp.sh LLAMA_CPP_BIN_DIR [WORK_DIR]
# Build llama.cpp beside the project first (docs/interop.md says how).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp_interop_env.sh" "$@"
"${duet[@]}" init --dim 256 --layers 4 --heads 8 --kv-heads 2 --ffn 512 --ctx 512 --std "${STD:-0.1}" --seed "${SEED:-7}" --tokenizer "$tok" -o duet-f32.gguf 2> /dev/null
"${duet[@]}" quantize duet-f32.gguf duet-q8_0.gguf --type Q8_0 2> /dev/null
"${duet[@]}" quantize duet-f32.gguf duet-q4_0.gguf --type Q4_0 2> /dev/null
for t in q4_k q5_k q6_k; do "${duet[@]}" quantize duet-f32.gguf duet-$t.gguf --type ${t^^} 2> /dev/null; done
"$bin/llama-quantize" duet-f32.gguf llamacpp-q8_0.gguf Q8_0 > /dev/null 2>&1
"$bin/llama-quantize" duet-f32.gguf llamacpp-q4_0.gguf Q4_0 > /dev/null 2>&1
"$bin/llama-quantize" duet-f32.gguf llamacpp-f16.gguf F16 > /dev/null 2>&1
"$bin/llama-quantize" duet-f32.gguf llamacpp-q6_k.gguf Q6_K > /dev/null 2>&1
"$bin/llama-quantize" duet-f32.gguf llamacpp-q4_k_m.gguf Q4_K_M > /dev/null 2>&1
pre=()   # NOAMX=1: llama.cpp without its AMX kernels (bench/ggml/noamx.c; see docs/interop.md)
if [ "${NOAMX:-0}" = 1 ]; then gcc -O2 -shared -fPIC -o noamx.so "$root/bench/ggml/noamx.c" -ldl; pre=(env LD_PRELOAD="$PWD/noamx.so"); fi
status=0
for f in duet-f32 duet-q8_0 duet-q4_0 duet-q4_k duet-q5_k duet-q6_k llamacpp-f16 llamacpp-q8_0 llamacpp-q4_0 llamacpp-q6_k llamacpp-q4_k_m; do
  ours="$("${duet[@]}" generate -m $f.gguf -p "$prompt" -n 32 --temp 0 -t 2)"
  theirs="$("${pre[@]}" "$bin/llama-cli" -m $f.gguf -p "$prompt" -n 32 --temp 0 -ctk f32 -ctv f32 -no-cnv --no-warmup -t 2 2> /dev/null)"
  theirs="${theirs#" $prompt"}"; theirs="${theirs#"$prompt"}"
  # Compare without a leading space: Duet before fb7ab39 dropped it from a first token that starts a word
  # (as SentencePiece decoding of a whole text does); llama-cli prints it. The tokens are the same either way.
  ours="${ours# }"; theirs="${theirs# }"
  if [ "$ours" == "$theirs" ]; then echo "$f.gguf: same 32 greedy tokens in Duet and llama.cpp"
  else echo "$f.gguf: DIFFERENT"; echo "  duet:      $ours"; echo "  llama.cpp: $theirs"; status=1; fi
done
exit $status
