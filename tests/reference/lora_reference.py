#!/usr/bin/python3
"""Independent float64 PyTorch reference for a LoRA linear layer (PEFT's formula) over a base weight of any GGUF type.

Written from PEFT's definition (peft/tuners/lora/layer.py, Linear.forward: result = base_layer(x) +
lora_B(lora_A(dropout(x))) * scaling, scaling = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora), not from
Duet's C# code; gradients by torch autograd. The base weight is dequantized from its GGUF block bytes by
ggml_quants.py (numpy, checked bit for bit against ggml), as QLoRA computes with the dequantized base.

    /usr/bin/python3 tests/reference/lora_reference.py --dir DIR

DIR/spec.json: {"rows": N, "in": I, "out": O, "rank": r, "alpha": a, "rslora": bool, "type": "F32"|"Q8_0"|...}
DIR/x.f32 [N, I], a.f32 [r, I], b.f32 [O, r], g.f32 [N, O] (the upstream gradient dL/dy), w.bin (the base's rows
in the type's bytes) -> DIR/y.f64, dx.f64, da.f64, db.f64 (little-endian float64, row-major), for L = sum(y * g).
LoRA dropout (spec "dropout_mask": true): DIR/mask.f32 [N, I] holds the multipliers dropout drew (0 or 1/(1-p));
PEFT's lora_B(lora_A(dropout(x))) is then computed on x * mask (the mask's randomness is not what is checked here).
"""
import argparse, json, math, os, sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ggml_quants as gq  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True)
    a = ap.parse_args(argv)
    import torch
    spec = json.load(open(os.path.join(a.dir, "spec.json")))
    n, i, o, r = spec["rows"], spec["in"], spec["out"], spec["rank"]

    def f32(name, shape):
        return torch.from_numpy(np.fromfile(os.path.join(a.dir, name), dtype="<f4").astype(np.float64).reshape(shape))

    raw = np.fromfile(os.path.join(a.dir, "w.bin"), dtype=np.uint8)
    if spec["type"] == "F32":
        w = raw.view("<f4").astype(np.float64).reshape(o, i)
    else:
        w = gq.dequantize(spec["type"], raw.reshape(o, -1)).astype(np.float64).reshape(o, i)
    w = torch.from_numpy(w)
    x = f32("x.f32", (n, i)).requires_grad_(True)
    lora_a = f32("a.f32", (r, i)).requires_grad_(True)
    lora_b = f32("b.f32", (o, r)).requires_grad_(True)
    g = f32("g.f32", (n, o))
    scaling = spec["alpha"] / (math.sqrt(r) if spec["rslora"] else r)
    xd = x * f32("mask.f32", (n, i)) if spec.get("dropout_mask") else x
    y = torch.nn.functional.linear(x, w) + torch.nn.functional.linear(torch.nn.functional.linear(xd, lora_a), lora_b) * scaling
    (y * g).sum().backward()
    for name, t in (("y", y), ("dx", x.grad), ("da", lora_a.grad), ("db", lora_b.grad)):
        t.detach().numpy().astype("<f8").tofile(os.path.join(a.dir, name + ".f64"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
