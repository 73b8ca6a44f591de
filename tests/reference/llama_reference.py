#!/usr/bin/python3
"""Independent float64 reference of the Hugging Face LLaMA forward pass (logits for a token list).

Written from the math, not from transformers and not from Duet's C# code. Needs Debian's
python3-torch and python3-numpy (run it with /usr/bin/python3).

    /usr/bin/python3 tests/reference/llama_reference.py --model DIR --ids "1 2 3" --out logits.npy
    /usr/bin/python3 tests/reference/llama_reference.py --model DIR --ids "1 2 3" --weights-through Q8_0 --out logits.npy
    /usr/bin/python3 tests/reference/llama_reference.py --model DIR --ids-file ids.txt --out logits.npy
    /usr/bin/python3 tests/reference/llama_reference.py --self-test
    /usr/bin/python3 tests/reference/llama_reference.py --write-fixtures tests/reference/fixtures/engine/models

DIR holds config.json and model.safetensors (or sharded model-*.safetensors with
model.safetensors.index.json); F32, F16 and BF16 tensors are read, all computed in float64.
The output is float32 logits of shape [T, V] for positions 0..T-1 (no KV cache, one pass).

The model (per layer i, x is [T, D]):
    h   = x + o_proj(attn(rmsnorm(x, input_layernorm)))
    x'  = h + down_proj(silu(gate_proj(n)) * up_proj(n)),  n = rmsnorm(h, post_attention_layernorm)
    logits = lm_head(rmsnorm(x_L, model.norm))   (lm_head = embed_tokens when tie_word_embeddings)
    rmsnorm(x, w) = x * rsqrt(mean(x^2, last axis) + eps) * w
    attn: q = q_proj(n) as [T, H, hd], k, v = k_proj(n), v_proj(n) as [T, Hkv, hd];
          RoPE on q and k; query head h uses KV head h // (H / Hkv) (HF repeat_kv);
          softmax(q k^T / sqrt(hd) + causal mask) v, heads concatenated -> [T, H*hd].
    RoPE, HF convention (rotate_half): for d < hd/2 the pair is (d, d + hd/2),
          inv_freq[d] = theta^(-2d/hd), angle = pos * inv_freq[d],
          out[d]        = x[d] cos - x[d + hd/2] sin
          out[d + hd/2] = x[d + hd/2] cos + x[d] sin
    rope_scaling (config.json "rope_scaling", key "rope_type" or "type"):
      "linear": inv_freq / factor   (the same as positions / factor)
      "llama3": Llama 3.1 remapping of inv_freq (transformers _compute_llama3_parameters):
          low_wl = original_max_position_embeddings / low_freq_factor
          high_wl = original_max_position_embeddings / high_freq_factor
          wl = 2 pi / inv_freq
          wl <  high_wl            -> inv_freq unchanged (high frequencies)
          wl >  low_wl             -> inv_freq / factor  (low frequencies)
          otherwise (medium)       -> (1 - s) * inv_freq / factor + s * inv_freq,
                                      s = (original_max_position_embeddings / wl - low_freq_factor)
                                          / (high_freq_factor - low_freq_factor)
    Mistral "sliding_window" (if set, not null): query i sees key j only when i - j < window.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

# ---------------------------------------------------------------------------------------------
# safetensors reader (format: u64 LE header length N, N bytes JSON header, raw LE data)

_ST_NP = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I32": "<i4", "I64": "<i8", "U8": "u1", "I8": "i1",
          "I16": "<i2", "BF16": "<u2"}


def read_safetensors(path):
    """Returns dict name -> numpy array (BF16 widened to float32, other dtypes as stored)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        if dt not in _ST_NP:
            raise ValueError(f"{path}: {name}: dtype {dt} not supported")
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw, dtype=_ST_NP[dt], count=(e - b) // np.dtype(_ST_NP[dt]).itemsize,
                            offset=base + b)
        if dt == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.reshape(info["shape"])
    return out


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        for fn in files:
            tensors.update(read_safetensors(os.path.join(model_dir, fn)))
    else:
        tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    return cfg, tensors


# ---------------------------------------------------------------------------------------------
# config helpers (shared by both implementations below)

def hparams(cfg):
    D = cfg["hidden_size"]
    H = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or D // H
    rope = cfg.get("rope_parameters") or {}  # transformers v5 layout
    theta = cfg.get("rope_theta", rope.get("rope_theta", 10000.0))
    scaling = cfg.get("rope_scaling")
    if scaling is None and rope.get("rope_type", "default") != "default":
        scaling = rope
    return dict(D=D, H=H, Hkv=Hkv, hd=hd, L=cfg["num_hidden_layers"], V=cfg["vocab_size"],
                eps=cfg.get("rms_norm_eps", 1e-6), theta=float(theta), scaling=scaling,
                tied=cfg.get("tie_word_embeddings", False),
                window=cfg.get("sliding_window") if cfg.get("model_type") == "mistral" else None)


def rope_inv_freq(hd, theta, scaling):
    """float64 numpy inv_freq[hd/2] including rope_scaling (see module doc)."""
    inv = 1.0 / (theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    if not scaling:
        return inv
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv
    if kind == "linear":
        return inv / float(scaling["factor"])
    if kind == "llama3":
        factor = float(scaling["factor"])
        lo = float(scaling["low_freq_factor"])
        hi = float(scaling["high_freq_factor"])
        old = float(scaling["original_max_position_embeddings"])
        low_wl = old / lo
        high_wl = old / hi
        wl = 2 * math.pi / inv
        out = np.where(wl > low_wl, inv / factor, inv)
        s = (old / wl - lo) / (hi - lo)
        smoothed = (1 - s) * out / factor + s * out
        medium = ~(wl < high_wl) & ~(wl > low_wl)
        return np.where(medium, smoothed, out)
    raise ValueError(f"rope_scaling type {kind!r} not supported by this reference")


def _t(tensors, name):
    return tensors[name] if name in tensors else None


# ---------------------------------------------------------------------------------------------
# PyTorch float64 implementation (the reference)

def kv_through(t, qtype):
    """Keys or values [T, Hkv, hd] (float64) as a KV cache of qtype holds them: each position's row of Hkv*hd values
    rounded to float32 (what the engine computes), then to F16, or through Q8_0 blocks of 32 along the row with ggml's
    reference quantizer (llama.cpp's --cache-type-k/-v q8_0), and back."""
    import torch
    if qtype is None:
        return t
    T = t.shape[0]
    rows = t.reshape(T, -1).numpy().astype(np.float32)
    if qtype == "F16":
        back = rows.astype(np.float16).astype(np.float32)
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import ggml_quants as gq
        back = gq.dequantize(qtype, gq.quantize(qtype, rows), rows.size).reshape(rows.shape)
    return torch.from_numpy(back.astype(np.float64)).view(t.shape)


def forward_torch(cfg, tensors, ids, kv=None):
    import torch
    hp = hparams(cfg)
    D, H, Hkv, hd, eps = hp["D"], hp["H"], hp["Hkv"], hp["hd"], hp["eps"]
    dt = torch.float64

    def W(name):
        a = _t(tensors, name)
        return None if a is None else torch.from_numpy(np.asarray(a, dtype=np.float64))

    def linear(x, name):
        y = x @ W(name + ".weight").T
        b = W(name + ".bias")
        return y if b is None else y + b

    def rmsnorm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    ids_t = torch.tensor(ids, dtype=torch.long)
    T = len(ids)
    emb = W("model.embed_tokens.weight")
    x = emb[ids_t]

    inv = torch.from_numpy(rope_inv_freq(hd, hp["theta"], hp["scaling"]))
    pos = torch.arange(T, dtype=dt)
    ang = torch.outer(pos, inv)                       # [T, hd/2]
    ang = torch.cat([ang, ang], dim=-1)               # [T, hd]
    cos, sin = ang.cos()[:, None, :], ang.sin()[:, None, :]

    def rotate_half(v):
        return torch.cat([-v[..., hd // 2:], v[..., :hd // 2]], dim=-1)

    def rope(v):                                      # v: [T, heads, hd]
        return v * cos + rotate_half(v) * sin

    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    if hp["window"]:
        allowed = allowed & (i - j < hp["window"])
    mask = torch.zeros(T, T, dtype=dt).masked_fill(~allowed, float("-inf"))
    rep = H // Hkv

    for layer in range(hp["L"]):
        p = f"model.layers.{layer}."
        n = rmsnorm(x, W(p + "input_layernorm.weight"))
        q = rope(linear(n, p + "self_attn.q_proj").view(T, H, hd))
        k = rope(linear(n, p + "self_attn.k_proj").view(T, Hkv, hd))
        v = linear(n, p + "self_attn.v_proj").view(T, Hkv, hd)
        if kv:
            k, v = kv_through(k, kv[0]), kv_through(v, kv[1])
        k = k.repeat_interleave(rep, dim=1)           # head h -> kv head h // rep
        v = v.repeat_interleave(rep, dim=1)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)   # [H, T, hd]
        scores = q @ k.transpose(1, 2) / math.sqrt(hd) + mask
        a = torch.softmax(scores, dim=-1) @ v         # [H, T, hd]
        a = a.transpose(0, 1).reshape(T, H * hd)
        x = x + linear(a, p + "self_attn.o_proj")
        n = rmsnorm(x, W(p + "post_attention_layernorm.weight"))
        g = linear(n, p + "mlp.gate_proj")
        u = linear(n, p + "mlp.up_proj")
        x = x + linear(torch.nn.functional.silu(g) * u, p + "mlp.down_proj")

    x = rmsnorm(x, W("model.norm.weight"))
    head = W("lm_head.weight")
    if head is None or hp["tied"]:
        head = emb
    return (x @ head.T).numpy()


# ---------------------------------------------------------------------------------------------
# Plain numpy implementation, written differently on purpose (loops over heads and
# positions, explicit pair rotation), used only by --self-test as a cross-check.

def forward_numpy(cfg, tensors, ids, dtype=np.float32):
    hp = hparams(cfg)
    D, H, Hkv, hd, eps = hp["D"], hp["H"], hp["Hkv"], hp["hd"], hp["eps"]
    f = lambda name: None if name not in tensors else np.asarray(tensors[name], dtype=dtype)
    T = len(ids)
    emb = f("model.embed_tokens.weight")
    x = emb[np.asarray(ids)]
    half = hd // 2
    inv = rope_inv_freq(hd, hp["theta"], hp["scaling"])
    cos = np.empty((T, half), dtype=dtype)
    sin = np.empty((T, half), dtype=dtype)
    for t in range(T):
        for d in range(half):
            cos[t, d] = math.cos(t * inv[d])
            sin[t, d] = math.sin(t * inv[d])

    def norm(v, w):
        ms = (v * v).mean(axis=-1, keepdims=True)
        return v / np.sqrt(ms + dtype(eps)) * w

    def lin(v, name):
        y = v @ f(name + ".weight").T
        b = f(name + ".bias")
        return y if b is None else y + b

    def rot(v):  # v [T, hd] for one head
        out = np.empty_like(v)
        a, b = v[:, :half], v[:, half:]
        out[:, :half] = a * cos - b * sin
        out[:, half:] = b * cos + a * sin
        return out

    scale = dtype(1.0 / math.sqrt(hd))
    for layer in range(hp["L"]):
        p = f"model.layers.{layer}."
        n = norm(x, f(p + "input_layernorm.weight"))
        q = lin(n, p + "self_attn.q_proj")
        k = lin(n, p + "self_attn.k_proj")
        v = lin(n, p + "self_attn.v_proj")
        att = np.zeros((T, H * hd), dtype=dtype)
        for h in range(H):
            g = h * Hkv // H
            qh = rot(q[:, h * hd:(h + 1) * hd])
            kh = rot(k[:, g * hd:(g + 1) * hd])
            vh = v[:, g * hd:(g + 1) * hd]
            for t in range(T):
                lo = 0 if not hp["window"] else max(0, t - hp["window"] + 1)
                s = (kh[lo:t + 1] @ qh[t]) * scale
                e = np.exp(s - s.max())
                att[t, h * hd:(h + 1) * hd] = (e / e.sum()) @ vh[lo:t + 1]
        x = x + lin(att, p + "self_attn.o_proj")
        n = norm(x, f(p + "post_attention_layernorm.weight"))
        gt = lin(n, p + "mlp.gate_proj")
        up = lin(n, p + "mlp.up_proj")
        x = x + lin(gt / (1 + np.exp(-gt)) * up, p + "mlp.down_proj")
    x = norm(x, f("model.norm.weight"))
    head = f("lm_head.weight")
    if head is None or hp["tied"]:
        head = emb
    return x @ head.T


# ---------------------------------------------------------------------------------------------

def weights_through(tensors, qtype):
    """Every matrix (2-D tensor) rounded through a GGUF block type as a GGUF file stores it: each row quantized in
    blocks along its last axis with ggml's reference quantizer (ggml_quants.py) and expanded back to float32; a
    matrix whose rows are not a whole number of blocks goes through F16 instead (what Duet's writer does). Norm
    vectors stay as they are. The forward pass then shows the type's own effect on the logits, computed exactly."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import ggml_quants as gq
    _, block, _ = gq.TYPES[qtype]
    out = {}
    for name, t in tensors.items():
        t = np.asarray(t, dtype=np.float32)
        if t.ndim != 2:
            out[name] = t
        elif t.shape[1] % block == 0:
            out[name] = gq.dequantize(qtype, gq.quantize(qtype, t), t.size).reshape(t.shape)
        else:
            out[name] = t.astype(np.float16).astype(np.float32)
    return out


def run(model_dir, ids, through=None, kv=None):
    cfg, tensors = load_model(model_dir)
    if through:
        tensors = weights_through(tensors, through)
    V = cfg["vocab_size"]
    bad = [i for i in ids if not 0 <= i < V]
    if bad:
        raise ValueError(f"token ids out of range [0, {V}): {bad[:5]}")
    return forward_torch(cfg, tensors, ids, kv).astype(np.float32)


def checksum(a):
    """Order-sensitive float64 checksum printed by --self-test: sum(a) and sum(a * (1 + index % 7))."""
    a = np.asarray(a, dtype=np.float64).ravel()
    w = 1 + (np.arange(a.size) % 7)
    return float(a.sum()), float((a * w).sum())


def self_test():
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_random_llama as mrl
    ok = True

    def report(name, cond, detail):
        nonlocal ok
        ok &= bool(cond)
        print(f"{'ok  ' if cond else 'FAIL'} {name}: {detail}")

    with tempfile.TemporaryDirectory() as tmp:
        cases = [  # (name, preset, std of the matrices, config changes)
            ("tiny", "tiny", 0.02, {}),
            ("llama2", "llama2", 0.02, {}),
            ("llama3", "llama3", 0.02, {}),
            ("mistral", "mistral", 0.02, {}),
            ("tiny std0.1", "tiny", 0.1, {}),
            ("llama2 std0.1", "llama2", 0.1, {}),
            ("llama31 std0.1", "llama31", 0.1, {}),
            ("tiny linear-x4 std0.1", "tiny", 0.1, {"rope_scaling": {"rope_type": "linear", "factor": 4.0}}),
            ("mistral window5 std0.1", "mistral", 0.1, {"sliding_window": 5}),
        ]
        ids = [1, 7, 42, 3, 99, 0, 15, 8, 23, 4, 61, 2, 17, 5, 33, 9]
        for name, preset, std, change in cases:
            d = os.path.join(tmp, name.replace(" ", "_"))
            mrl.make_model(d, preset, seed=0, std=std)
            cfg, tensors = load_model(d)
            cfg.update(change)
            ref = forward_torch(cfg, tensors, ids)
            f32 = forward_numpy(cfg, tensors, ids, np.float32)
            f64 = forward_numpy(cfg, tensors, ids, np.float64)
            scale = np.abs(ref).max()
            e32 = np.abs(ref - f32).max() / scale
            e64 = np.abs(ref - f64).max() / scale
            report(f"{name} torch-f64 vs numpy-f32", e32 < 2e-5, f"max rel err {e32:.2e}")
            report(f"{name} torch-f64 vs numpy-f64", e64 < 1e-12, f"max rel err {e64:.2e}")
            # causality: a prefix gives the same logits as the first rows of the full run
            pre = forward_torch(cfg, tensors, ids[:5])
            ec = np.abs(pre - ref[:5]).max() / scale
            report(f"{name} causal prefix", ec < 1e-12, f"max rel diff {ec:.2e}")
            if std >= 0.1:
                # the positional parts must move the logits far more than float32 rounding does
                import copy
                c2 = copy.deepcopy(cfg)
                c2["rope_theta"], c2["rope_scaling"] = 1e300, None
                dr = np.abs(forward_torch(c2, tensors, ids) - ref).max() / scale
                report(f"{name} rope_theta matters", dr > 1e3 * e32, f"theta 1e300 instead: rel diff {dr:.2e}")
                for key in ("rope_scaling", "sliding_window"):
                    if cfg.get(key):
                        c3 = copy.deepcopy(cfg)
                        c3[key] = None
                        dk = np.abs(forward_torch(c3, tensors, ids) - ref).max() / scale
                        report(f"{name} {key} matters", dk > 100 * e32, f"without it rel diff {dk:.2e}")
            if name == "tiny":
                out = run(d, ids[:8])
                s, ws = checksum(out)
                print(f"     tiny seed 0 ids {ids[:8]}: logits {out.shape} {out.dtype}, "
                      f"sum {s:.9g}, weighted sum {ws:.9g}, [0,:4] {out[0, :4].tolist()}")
        # rope checks independent of a model
        inv = rope_inv_freq(8, 500000.0, None)
        sc = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 8192}
        inv3 = rope_inv_freq(8, 500000.0, sc)
        wl = 2 * math.pi / inv
        s = (8192 / wl[2] - 1) / 3
        expect = np.array([inv[0], inv[1], (1 - s) * inv[2] / 8 + s * inv[2], inv[3] / 8])
        report("llama3 rope remap (hd 8, theta 5e5)", np.allclose(inv3, expect, rtol=1e-15, atol=0),
               f"wavelengths {np.round(wl, 1).tolist()} -> inv_freq {inv3.tolist()}")
        lin = rope_inv_freq(8, 10000.0, {"type": "linear", "factor": 2.0})
        report("linear rope = inv_freq / factor", np.allclose(lin, rope_inv_freq(8, 10000.0, None) / 2, rtol=0),
               "ok")
        # the safetensors round trip
        arr = np.arange(12, dtype=np.float32).reshape(3, 4)
        p = os.path.join(tmp, "rt.safetensors")
        mrl.write_safetensors(p, {"b": arr, "a": arr[:1] * 2})
        back = read_safetensors(p)
        raw = open(p, "rb").read()
        n = int.from_bytes(raw[:8], "little")
        report("safetensors round trip", np.array_equal(back["b"], arr) and np.array_equal(back["a"], arr[:1] * 2)
               and (8 + n) % 8 == 0 and json.loads(raw[8:8 + n])["a"]["data_offsets"] == [0, 16], f"header {n} bytes")
    print("self-test", "passed" if ok else "FAILED")
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------
# committed fixtures: small models and their reference logits

FIXTURE_IDS = [1, 17, 42, 3, 99, 0, 15, 8, 23, 4, 61, 2, 77, 5, 33, 9]
SMALL = dict(hidden_size=32, intermediate_size=64, vocab_size=100)
MODEL_FIXTURES = [  # (name, preset, std of the matrices, overrides for make_random_llama.make_model)
    ("tiny", "tiny", 0.02, {}),
    ("tiny-std0.1", "tiny", 0.1, {}),
    ("mha-2layer", "llama2", 0.1, dict(SMALL, num_attention_heads=4, num_key_value_heads=4)),
    ("gqa-head-dim", "llama3", 0.1, dict(SMALL, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                                         head_dim=16)),
    # original_max_position_embeddings 64 (not 8192) so that, with 16 positions, all three llama3
    # bands (kept, smoothed, divided by factor) move the logits well above float32 noise
    ("llama31-rope-scaling", "llama31", 0.1, dict(SMALL, num_hidden_layers=1, num_attention_heads=2,
                                                  num_key_value_heads=1, rope_scaling={
                                                      "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64})),
    ("linear-rope-scaling", "tiny", 0.1, dict(tie_word_embeddings=False,
                                              rope_scaling={"rope_type": "linear", "factor": 2.0})),
    ("mistral-window", "mistral", 0.1, dict(SMALL, num_attention_heads=4, num_key_value_heads=2, sliding_window=4)),
]


def write_fixtures(out_dir):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import make_random_llama as mrl
    os.makedirs(out_dir, exist_ok=True)
    index = {"generator": "tests/reference/llama_reference.py --write-fixtures (models from make_random_llama.py, "
                          "logits from the float64 PyTorch reference, stored as float32)",
             "ids": FIXTURE_IDS, "models": []}
    for name, preset, std, ov in MODEL_FIXTURES:
        d = os.path.join(out_dir, name)
        mrl.make_model(d, preset, seed=0, std=std, **ov)
        cfg, tensors = load_model(d)
        ref = forward_torch(cfg, tensors, FIXTURE_IDS)
        logits = ref.astype(np.float32)
        np.save(os.path.join(d, "logits.npy"), logits)
        f32 = forward_numpy(cfg, tensors, FIXTURE_IDS, np.float32)
        hp = hparams(cfg)
        index["models"].append({
            "name": name, "dir": name, "preset": preset, "seed": 0, "std": std,
            "overrides": ov,
            "architecture": cfg["architectures"][0],
            "D": hp["D"], "L": hp["L"], "H": hp["H"], "Hkv": hp["Hkv"], "head_dim": hp["hd"],
            "F": cfg["intermediate_size"], "V": hp["V"], "rope_theta": hp["theta"],
            "rope_scaling": hp["scaling"], "sliding_window": hp["window"], "tied": hp["tied"],
            "logits": f"{name}/logits.npy", "shape": list(logits.shape),
            "max_abs_logit": float(np.abs(ref).max()),
            "float32_numpy_max_abs_diff": float(np.abs(ref - f32).max()),
            "argmax": logits.argmax(-1).tolist(),
            "checksum": checksum(logits),
        })
        print(f"{d}: {cfg['architectures'][0]} logits {logits.shape}, max |logit| {np.abs(ref).max():.3f}, "
              f"float32 numpy diff {np.abs(ref - f32).max():.2e}")
    with open(os.path.join(out_dir, "index.json"), "w") as fh:
        json.dump(index, fh, indent=1)
        fh.write("\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="folder with config.json and model.safetensors")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--ids", help='token ids, e.g. "1 2 3" (spaces or commas)')
    g.add_argument("--ids-file", help="file of token ids separated by whitespace or commas")
    ap.add_argument("--out", help="output .npy, float32 [T, V]")
    ap.add_argument("--weights-through", metavar="TYPE", choices=["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"],
                    help="round every matrix through this GGUF type first (ggml's reference quantizer; rows that are "
                         "not whole blocks through F16): the logits of the quantized model computed exactly")
    ap.add_argument("--kv-through", metavar="K,V", help="keys and values as a KV cache of these types holds them "
                    "(F32, F16 or Q8_0 each, e.g. Q8_0,Q8_0): the logits of an engine with that --cache-type-k/-v")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--write-fixtures", metavar="DIR", help="write the small models and logits of MODEL_FIXTURES")
    a = ap.parse_args(argv)
    if a.self_test:
        return self_test()
    if a.write_fixtures:
        write_fixtures(a.write_fixtures)
        return 0
    if not (a.model and (a.ids or a.ids_file) and a.out):
        ap.error("--model, --ids or --ids-file, and --out are required (or --self-test)")
    text = a.ids if a.ids is not None else open(a.ids_file).read()
    ids = [int(t) for t in text.replace(",", " ").split()]
    if not ids:
        ap.error("no token ids")
    kv = None
    if a.kv_through:
        kv = a.kv_through.upper().split(",")
        if len(kv) != 2 or any(t not in ("F32", "F16", "Q8_0") for t in kv):
            ap.error("--kv-through: two of F32, F16, Q8_0, e.g. Q8_0,Q8_0")
        kv = [None if t == "F32" else t for t in kv]
        kv = None if kv == [None, None] else kv
    logits = run(a.model, ids, a.weights_through, kv)
    np.save(a.out, logits)
    print(f"{a.out}: logits {logits.shape} float32, argmax {logits.argmax(-1).tolist()[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
