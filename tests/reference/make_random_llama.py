#!/usr/bin/python3
"""Write a random-weight Hugging Face LLaMA model folder (config.json + model.safetensors).

Independent reference side for Duet's engine tests: nothing here reads Duet's C# code.
Needs only numpy (Debian python3-numpy).

    /usr/bin/python3 tests/reference/make_random_llama.py --preset llama3 --seed 0 --out /tmp/m

Tensor names and shapes are exactly those of transformers' LlamaForCausalLM
(D = hidden_size, F = intermediate_size, V = vocab_size, H = heads, Hkv = KV heads,
hd = head_dim, default D / H):

    model.embed_tokens.weight                       [V, D]
    model.layers.{i}.input_layernorm.weight         [D]
    model.layers.{i}.self_attn.q_proj.weight        [H*hd, D]
    model.layers.{i}.self_attn.k_proj.weight        [Hkv*hd, D]
    model.layers.{i}.self_attn.v_proj.weight        [Hkv*hd, D]
    model.layers.{i}.self_attn.o_proj.weight        [D, H*hd]
    model.layers.{i}.post_attention_layernorm.weight [D]
    model.layers.{i}.mlp.gate_proj.weight           [F, D]
    model.layers.{i}.mlp.up_proj.weight             [F, D]
    model.layers.{i}.mlp.down_proj.weight           [D, F]
    model.norm.weight                               [D]
    lm_head.weight                                  [V, D]   (absent when tie_word_embeddings)

Weights: numpy.random.default_rng(seed); matrices normal * 0.02, norm weights
1 + 0.1 * normal; all float32 (--std and --norm-std change 0.02 and 0.1). Note that with
std 0.02 the attention scores are tiny, softmax is near uniform, and RoPE moves the logits
by only ~1e-3 (rope_scaling by ~5e-5); tests of positional behaviour should use --std 0.1,
where RoPE changes logits by ~1 and llama3 rope scaling by ~0.03 (float32 error ~2e-6). Values are drawn in the order of the list above
(layer by layer), so a given preset/seed/overrides always gives the same bytes.

safetensors layout written here (https://github.com/huggingface/safetensors, "Format"):
8-byte little-endian u64 N, then N bytes of UTF-8 JSON
{"__metadata__": {"format": "pt"}, name: {"dtype": "F32", "shape": [...],
"data_offsets": [begin, end]}, ...} with names sorted, padded with spaces so that
8 + N is a multiple of 8, then the raw little-endian tensor bytes (offsets are
relative to the start of that byte buffer), tensors stored in sorted-name order.
"""
import argparse
import json
import os
import sys

import numpy as np

PRESETS = {
    # Llama 2: MHA (Hkv == H), theta 1e4, untied, 32000-style small vocab
    "llama2": dict(arch="LlamaForCausalLM", model_type="llama", hidden_size=64, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=4, intermediate_size=172, vocab_size=320,
                   rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                   max_position_embeddings=4096),
    # Llama 3: GQA 8/2, theta 5e5, untied
    "llama3": dict(arch="LlamaForCausalLM", model_type="llama", hidden_size=64, num_hidden_layers=2,
                   num_attention_heads=8, num_key_value_heads=2, intermediate_size=192, vocab_size=512,
                   rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                   max_position_embeddings=8192),
    # Llama 3.1: as llama3 plus rope_scaling of type "llama3" (all three frequency bands are hit
    # with head_dim 8: wavelengths ~6, ~167, ~4440, ~118000 against 2048 / 8192)
    "llama31": dict(arch="LlamaForCausalLM", model_type="llama", hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=8, num_key_value_heads=2, intermediate_size=192, vocab_size=512,
                    rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                    max_position_embeddings=131072,
                    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    # Yi: LLaMA architecture, GQA 8/2, theta 5e6, the real Yi vocab size 64000 (~33 MB file)
    "yi": dict(arch="LlamaForCausalLM", model_type="llama", hidden_size=64, num_hidden_layers=2,
               num_attention_heads=8, num_key_value_heads=2, intermediate_size=176, vocab_size=64000,
               rope_theta=5000000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
               max_position_embeddings=4096),
    # Mistral: MistralForCausalLM, GQA 8/2, theta 1e6
    "mistral": dict(arch="MistralForCausalLM", model_type="mistral", hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=8, num_key_value_heads=2, intermediate_size=224, vocab_size=400,
                    rope_theta=1000000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                    max_position_embeddings=32768),
    # tiny: tied embeddings, GQA 2/1
    "tiny": dict(arch="LlamaForCausalLM", model_type="llama", hidden_size=32, num_hidden_layers=1,
                 num_attention_heads=2, num_key_value_heads=1, intermediate_size=64, vocab_size=100,
                 rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True,
                 max_position_embeddings=2048),
}

# ---------------------------------------------------------------------------------------------
# safetensors writer

_ST_DTYPES = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("float64"): "F64",
              np.dtype("int32"): "I32", np.dtype("int64"): "I64", np.dtype("uint8"): "U8"}


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (float32 etc.). Writes in sorted-name order."""
    meta = {"format": "pt"} if metadata is None else dict(metadata)
    header = {"__metadata__": meta}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        dt = _ST_DTYPES[arr.dtype]
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":"), sort_keys=False).encode("utf-8")
    pad = (8 - (8 + len(hjson)) % 8) % 8
    hjson += b" " * pad
    with open(path, "wb") as f:
        f.write(len(hjson).to_bytes(8, "little"))
        f.write(hjson)
        for b in blobs:
            f.write(b)


# ---------------------------------------------------------------------------------------------

def build_config(p):
    hd = p.get("head_dim") or p["hidden_size"] // p["num_attention_heads"]
    cfg = {
        "architectures": [p["arch"]],
        "model_type": p["model_type"],
        "hidden_size": p["hidden_size"],
        "intermediate_size": p["intermediate_size"],
        "num_hidden_layers": p["num_hidden_layers"],
        "num_attention_heads": p["num_attention_heads"],
        "num_key_value_heads": p["num_key_value_heads"],
        "vocab_size": p["vocab_size"],
        "max_position_embeddings": p["max_position_embeddings"],
        "rms_norm_eps": p["rms_norm_eps"],
        "rope_theta": p["rope_theta"],
        "rope_scaling": p.get("rope_scaling"),
        "tie_word_embeddings": p["tie_word_embeddings"],
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": "float32",
        "bos_token_id": p.get("bos_token_id", 1),
        "eos_token_id": p.get("eos_token_id", 2),
        "initializer_range": 0.02,
        "use_cache": True,
    }
    if p.get("head_dim"):
        cfg["head_dim"] = hd
    if p["model_type"] == "mistral":
        cfg["sliding_window"] = p.get("sliding_window")
    return cfg


def build_tensors(cfg, seed, std=0.02, norm_std=0.1):
    rng = np.random.default_rng(seed)
    D = cfg["hidden_size"]
    F = cfg["intermediate_size"]
    V = cfg["vocab_size"]
    H = cfg["num_attention_heads"]
    Hkv = cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or D // H

    def mat(*shape):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def norm(n):
        return (1.0 + norm_std * rng.standard_normal(n)).astype(np.float32)

    t = {}
    t["model.embed_tokens.weight"] = mat(V, D)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = norm(D)
        t[p + "self_attn.q_proj.weight"] = mat(H * hd, D)
        t[p + "self_attn.k_proj.weight"] = mat(Hkv * hd, D)
        t[p + "self_attn.v_proj.weight"] = mat(Hkv * hd, D)
        t[p + "self_attn.o_proj.weight"] = mat(D, H * hd)
        t[p + "post_attention_layernorm.weight"] = norm(D)
        t[p + "mlp.gate_proj.weight"] = mat(F, D)
        t[p + "mlp.up_proj.weight"] = mat(F, D)
        t[p + "mlp.down_proj.weight"] = mat(D, F)
    t["model.norm.weight"] = norm(D)
    if not cfg["tie_word_embeddings"]:
        t["lm_head.weight"] = mat(V, D)
    return t


def make_model(out_dir, preset="tiny", seed=0, std=0.02, norm_std=0.1, **overrides):
    """Write the folder; returns the config dict. overrides: any PRESETS key; a value of None
    leaves the preset's value, except rope_scaling, where None removes it (pass "keep" to keep)."""
    p = dict(PRESETS[preset])
    for k, v in overrides.items():
        if k == "rope_scaling":
            if v != "keep":
                p[k] = v
        elif v is not None:
            p[k] = v
    if p["num_attention_heads"] % p["num_key_value_heads"]:
        raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
    cfg = build_config(p)
    tensors = build_tensors(cfg, seed, std, norm_std)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors)
    return cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--std", type=float, default=0.02,
                    help="std of the matrices (default 0.02; about 0.1 makes attention, and so RoPE, matter)")
    ap.add_argument("--norm-std", type=float, default=0.1, help="norm weights are 1 + norm_std * normal")
    ap.add_argument("--hidden-size", type=int)
    ap.add_argument("--intermediate-size", type=int)
    ap.add_argument("--num-layers", type=int, dest="num_hidden_layers")
    ap.add_argument("--num-heads", type=int, dest="num_attention_heads")
    ap.add_argument("--num-kv-heads", type=int, dest="num_key_value_heads")
    ap.add_argument("--head-dim", type=int, help="written as config head_dim (default hidden/heads)")
    ap.add_argument("--vocab-size", type=int)
    ap.add_argument("--max-position-embeddings", type=int)
    ap.add_argument("--rope-theta", type=float)
    ap.add_argument("--rms-norm-eps", type=float)
    ap.add_argument("--rope-scaling", help='JSON, e.g. \'{"rope_type":"linear","factor":2.0}\' or "null"')
    ap.add_argument("--bos-token-id", type=int)
    ap.add_argument("--eos-token-id", type=int)
    ap.add_argument("--arch", choices=["LlamaForCausalLM", "MistralForCausalLM"])
    ap.add_argument("--sliding-window", type=int, help="config sliding_window (Mistral only; default null)")
    tie = ap.add_mutually_exclusive_group()
    tie.add_argument("--tie", dest="tie_word_embeddings", action="store_const", const=True)
    tie.add_argument("--no-tie", dest="tie_word_embeddings", action="store_const", const=False)
    a = ap.parse_args(argv)
    ov = {k: getattr(a, k) for k in (
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "head_dim", "vocab_size", "max_position_embeddings", "rope_theta", "rms_norm_eps", "bos_token_id",
        "eos_token_id", "tie_word_embeddings", "arch", "sliding_window")}
    if a.arch:
        ov["model_type"] = "mistral" if a.arch == "MistralForCausalLM" else "llama"
    ov["rope_scaling"] = "keep" if a.rope_scaling is None else json.loads(a.rope_scaling)
    cfg = make_model(a.out, a.preset, a.seed, a.std, a.norm_std, **ov)
    size = os.path.getsize(os.path.join(a.out, "model.safetensors"))
    print(f"{a.out}: {cfg['architectures'][0]} D={cfg['hidden_size']} L={cfg['num_hidden_layers']} "
          f"H={cfg['num_attention_heads']} Hkv={cfg['num_key_value_heads']} F={cfg['intermediate_size']} "
          f"V={cfg['vocab_size']} theta={cfg['rope_theta']:g} tied={cfg['tie_word_embeddings']} "
          f"model.safetensors {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
