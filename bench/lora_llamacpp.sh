#!/usr/bin/env bash
# LoRA interop with llama.cpp by greedy generation of 32 tokens: a PEFT adapter made by the reference
# (tests/reference/peft_reference.py, PEFT's names and formula) for a random-weight model with a real tokenizer,
# converted by `duet lora convert` to llama.cpp's GGUF adapter format, then
#   1. llama-cli with the base GGUF and --lora adapter.gguf,
#   2. duet generate with the same base and --lora adapter.gguf (applied at run time, unmerged),
#   3. duet generate on the model `duet lora merge` wrote,
#   4. llama-cli on that merged model,
# must all give the same 32 tokens (compared as text); then the same four ways for an adapter Duet trained itself
# (duet finetune --lora on data/chat). Exits 1 if one differs.
# Usage: bench/lora_llamacpp.sh LLAMA_CPP_BIN_DIR [WORK_DIR]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/llamacpp_interop_env.sh" "$@"
"${duet[@]}" init --dim 256 --layers 4 --heads 8 --kv-heads 2 --ffn 512 --ctx 512 --std "${STD:-0.1}" --seed "${SEED:-7}" --tokenizer "$tok" -o base.gguf 2> /dev/null
"${duet[@]}" convert base.gguf base-hf --format safetensors --type F32 > /dev/null 2>&1
/usr/bin/python3 "$root/tests/reference/peft_reference.py" --model base-hf --out peft --rank 8 --alpha 16 --ids "1 2 3" --logits peft-logits.npy
"${duet[@]}" lora convert peft --model base.gguf -o adapter.gguf
"${duet[@]}" lora merge --model base.gguf --lora adapter.gguf -o merged.gguf 2> /dev/null
# Both as UTF-8 with U+FFFD for a byte that is no character (llama-cli prints a lone byte token raw, Duet as U+FFFD).
norm() { python3 -c 'import sys; sys.stdout.write(sys.stdin.buffer.read().decode("utf-8", "replace"))'; }
gen_duet() { "${duet[@]}" generate -m "$1" -p "$prompt" -n 32 --temp 0 -t 2 "${@:2}" 2> /dev/null | norm; }
gen_llama() {
  local out; out="$("$bin/llama-cli" -m "$1" -p "$prompt" -n 32 --temp 0 -ctk f32 -ctv f32 -no-cnv --no-warmup -t 2 "${@:2}" 2> /dev/null)"
  out="${out#" $prompt"}"; printf '%s' "${out#"$prompt"}" | norm
}
# check NAME BASE ADAPTER MERGED: the four ways give the same 32 tokens, and the adapter changes them.
status=0
check() {
  local name="$1" base="$2" adapter="$3" merged="$4" ref plain got what
  echo "== $name"
  ref="$(gen_llama "$base" --lora "$adapter")"; ref="${ref# }"
  plain="$(gen_llama "$base")"; plain="${plain# }"
  [ "$ref" != "$plain" ] || { echo "the adapter changes nothing in llama.cpp's 32 tokens: no test"; status=1; return; }
  for what in "duet --lora" "duet merged" "llama.cpp merged"; do
    case "$what" in
      "duet --lora") got="$(gen_duet "$base" --lora "$adapter")" ;;
      "duet merged") got="$(gen_duet "$merged")" ;;
      "llama.cpp merged") got="$(gen_llama "$merged")" ;;
    esac
    got="${got# }"
    if [ "$got" == "$ref" ]; then echo "$what: the same 32 greedy tokens as llama.cpp with --lora $adapter"
    else echo "$what: DIFFERENT"; echo "  got:       $got"; echo "  llama.cpp: $ref"; status=1; fi
  done
  echo "(without the adapter llama.cpp gives: $plain)"
}
check "PEFT adapter of the reference, converted by duet lora convert (F32 base)" base.gguf adapter.gguf merged.gguf

# An adapter Duet trained: duet finetune --lora over the F32 base on the shipped instruction set, written as GGUF.
# (Over a quantized base the comparison is not token for token: llama.cpp rounds the activations of a Q8_0 base to
# 8 bits under the adapter, and this random-weight model has near-ties that such rounding flips after ~9 tokens.)
rm -rf tuned
"${duet[@]}" finetune --base base.gguf --data "$root/data/chat/train.jsonl" --out tuned --lora r=8,alpha=16 \
  --steps "${STEPS:-30}" --batch 4 --seq-len 256 --lr 3e-3 --warmup 3 --eval-every 0 --checkpoint-every 0 -t 2 2> /dev/null
"${duet[@]}" lora merge --model base.gguf --lora tuned/adapter.gguf -o tuned-merged.gguf 2> /dev/null
check "adapter trained by duet finetune --lora (F32 base)" base.gguf tuned/adapter.gguf tuned-merged.gguf
exit $status
