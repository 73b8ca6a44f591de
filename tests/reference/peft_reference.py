#!/usr/bin/python3
"""A PEFT LoRA adapter folder for a random-weight model, and the float64 logits of the model with it applied.

Written from PEFT's file layout and formula (not from Duet's code): adapter_config.json (peft_type LORA, r,
lora_alpha, use_rslora, target_modules, task_type CAUSAL_LM) and adapter_model.safetensors with PEFT's names,
base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight [r, in] and .lora_B.weight [out, r]; the adapted
weight is W + scaling * B @ A, scaling = lora_alpha / r (or / sqrt(r) with use_rslora), and the logits are
llama_reference.py's float64 PyTorch forward of the adapted weights.

    /usr/bin/python3 tests/reference/peft_reference.py --model DIR --out ADAPTER_DIR --rank 4 --alpha 8 \
        [--rslora] [--targets q_proj,v_proj] [--seed 0] --ids "1 2 3" --logits out.npy
"""
import argparse, json, math, os, sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as llref  # noqa: E402
import make_random_llama as mrl  # noqa: E402

SITES = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
         "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rank", type=int, default=4)
    ap.add_argument("--alpha", type=float, default=8.0)
    ap.add_argument("--rslora", action="store_true")
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--logits", required=True)
    a = ap.parse_args(argv)
    cfg, tensors = llref.load_model(a.model)
    rng = np.random.default_rng(a.seed)
    targets = a.targets.split(",")
    scaling = a.alpha / (math.sqrt(a.rank) if a.rslora else a.rank)
    adapter = {}
    for layer in range(cfg["num_hidden_layers"]):
        for t in targets:
            name = f"model.layers.{layer}.{SITES[t]}.{t}"
            w = np.asarray(tensors[name + ".weight"], dtype=np.float64)
            out_dim, in_dim = w.shape
            lora_a = (rng.standard_normal((a.rank, in_dim)) * 0.1).astype(np.float32)
            lora_b = (rng.standard_normal((out_dim, a.rank)) * 0.1).astype(np.float32)
            adapter[f"base_model.model.{name}.lora_A.weight"] = lora_a
            adapter[f"base_model.model.{name}.lora_B.weight"] = lora_b
            tensors[name + ".weight"] = w + scaling * (lora_b.astype(np.float64) @ lora_a.astype(np.float64))
    os.makedirs(a.out, exist_ok=True)
    mrl.write_safetensors(os.path.join(a.out, "adapter_model.safetensors"), adapter)
    with open(os.path.join(a.out, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": a.model, "r": a.rank,
                   "lora_alpha": a.alpha, "use_rslora": a.rslora, "lora_dropout": 0.0, "bias": "none",
                   "fan_in_fan_out": False, "target_modules": targets}, f, indent=2)
    ids = [int(x) for x in a.ids.split()]
    np.save(a.logits, np.asarray(llref.forward_torch(cfg, tensors, ids), dtype=np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main())
