#!/usr/bin/env bash
# Q8_0-vs-F32 logit drift of a random test model (tests/reference/make_random_llama.py) in llama.cpp and in
# Duet, on the same two GGUF files, and against the independent reference computing the Q8_0 model exactly:
# separates the Q8_0 weights' own drift from the 8-bit activation rounding of integer math (ggml's and Duet's default).
# Usage: bench/ggml/q8_drift.sh LLAMA_CPP_DIR [PRESET (yi)] [WORK_DIR]
set -euo pipefail
src="${1:?path to a llama.cpp source tree built in build/}"
preset="${2:-yi}"
work="${3:-$(mktemp -d)}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
/usr/bin/python3 "$root/tests/reference/make_random_llama.py" --preset "$preset" --seed 11 --std 0.02 --out hf > /dev/null
"${duet[@]}" convert hf f32.gguf --type F32 > /dev/null
"${duet[@]}" quantize f32.gguf q8_0.gguf --type Q8_0 > /dev/null
vocab="$(/usr/bin/python3 -c 'import json; print(json.load(open("hf/config.json"))["vocab_size"])')"
ids="$(/usr/bin/python3 -c "print(' '.join(str((i * 7919 + 13) % $vocab) for i in range(64)))")"
for f in f32 q8_0; do
  "${pre[@]}" ./ggml_logits $f.gguf $f.ggml.bin 2 f32 $ids 2> /dev/null
  "${duet[@]}" logits --model $f.gguf --ids "$ids" --out $f.duet.npy -t 2 > /dev/null
done
# Duet with float activations (--math float), and the independent reference: float64 PyTorch on the F32 weights
# and on the same weights rounded through Q8_0 by ggml's reference quantizer (the Q8_0 model computed exactly).
"${duet[@]}" logits --model q8_0.gguf --ids "$ids" --out q8_0.float.npy -t 2 --math float > /dev/null
/usr/bin/python3 "$root/tests/reference/llama_reference.py" --model hf --ids "$ids" --out ref_f32.npy > /dev/null
/usr/bin/python3 "$root/tests/reference/llama_reference.py" --model hf --ids "$ids" --weights-through Q8_0 --out ref_q8_0.npy > /dev/null
/usr/bin/python3 - <<'PY'
import numpy as np
g = {f: np.fromfile(f"{f}.ggml.bin", dtype=np.float32).reshape(64, -1).astype(np.float64) for f in ("f32", "q8_0")}
d = {f: np.load(f"{f}.duet.npy").astype(np.float64) for f in ("f32", "q8_0")}
for name, a, b in [("llama.cpp Q8_0 vs llama.cpp F32", g["q8_0"], g["f32"]), ("Duet Q8_0 vs Duet F32", d["q8_0"], d["f32"]),
                   ("Duet F32 vs llama.cpp F32", d["f32"], g["f32"]), ("Duet Q8_0 vs llama.cpp Q8_0", d["q8_0"], g["q8_0"])]:
    print(f"{name:44s} max |diff| {np.abs(a - b).max():.4e}")
r = {f: np.load(f"ref_{f}.npy").astype(np.float64) for f in ("f32", "q8_0")}
fl = np.load("q8_0.float.npy").astype(np.float64)
for name, a, b in [("reference Q8_0 (exact) vs reference F32", r["q8_0"], r["f32"]),
                   ("Duet Q8_0 --math float vs reference F32", fl, r["f32"]),
                   ("Duet Q8_0 --math float vs reference Q8_0", fl, r["q8_0"]),
                   ("Duet Q8_0 (integer) vs reference Q8_0", d["q8_0"], r["q8_0"])]:
    print(f"{name:44s} max |diff| {np.abs(a - b).max():.4e}")
PY
