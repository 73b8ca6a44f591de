#!/usr/bin/env bash
# Teacher-forced logits of Duet and llama.cpp on the same GGUF files, every position of a 64-token sequence:
# a check of the engines' arithmetic that does not depend on greedy near-ties (see docs/interop.md).
# For each file: max |logit difference| Duet vs llama.cpp, how many positions agree to 1e-4, and each engine's
# own drift from the F32 file (the quantization's effect, for scale).
# Usage: [NOAMX=1] [STD=0.02] bench/ggml/logits_vs_llamacpp.sh LLAMA_CPP_DIR [WORK_DIR]
#   LLAMA_CPP_DIR: the source tree, built in build/. NOAMX=1 preloads bench/ggml/noamx.c so that llama.cpp
#   does not use its AMX kernels on a CPU that has AMX (they sum in another order, and their Q4_0/Q4_1 tile
#   kernel for 32-row batches is wrong in c392e50: docs/interop.md).
set -euo pipefail
src="${1:?path to a llama.cpp source tree built in build/}"
work="${2:-$(mktemp -d)}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
"${duet[@]}" init --dim 256 --layers 4 --heads 8 --kv-heads 2 --ffn 512 --ctx 512 --std "${STD:-0.1}" --seed "${SEED:-7}" -o f32.gguf 2> /dev/null
for t in Q8_0 Q4_0 Q4_K Q6_K; do "${duet[@]}" quantize f32.gguf "$t.gguf" --type $t 2> /dev/null; done
ids="$(python3 -c 'print(" ".join(str((i * 7919 + 13) % 32000) for i in range(64)))')"
for f in f32 Q8_0 Q4_0 Q4_K Q6_K; do
  "${pre[@]}" ./ggml_logits "$f.gguf" "$f.ggml.bin" 2 f32 $ids 2> /dev/null
  "${duet[@]}" logits --model "$f.gguf" --ids "$ids" --out "$f.duet.npy" -t 2 > /dev/null
done
/usr/bin/python3 - <<'PY'
import numpy as np
T = 64
def ggml(f):
    a = np.fromfile(f"{f}.ggml.bin", dtype=np.float32); return a.reshape(T, -1).astype(np.float64)
def duet(f): return np.load(f"{f}.duet.npy").astype(np.float64)
g32, d32 = ggml("f32"), duet("f32")
print("| file | max abs diff, Duet vs llama.cpp | positions within 1e-4 | llama.cpp drift from F32 | Duet drift from F32 |")
print("|---|---|---|---|---|")
for f in ["f32", "Q8_0", "Q4_0", "Q4_K", "Q6_K"]:
    g, d = ggml(f), duet(f)
    rows = np.abs(g - d).max(axis=1)
    print(f"| {f.upper()} | {rows.max():.2e} | {(rows <= 1e-4).sum()} of {T} | {np.abs(g - g32).max():.2e} | {np.abs(d - d32).max():.2e} |")
PY
