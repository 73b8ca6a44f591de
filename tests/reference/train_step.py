#!/usr/bin/python3
"""Independent float64 PyTorch reference for one or more LLaMA training steps (loss, gradients, AdamW).

Written from the math, not from Duet's C# code and not from transformers. Needs Debian's
python3-torch and python3-numpy (run it with /usr/bin/python3). Model files are read and
written by llama_reference.py / make_random_llama.py (imported, not copied).

    /usr/bin/python3 tests/reference/train_step.py --model DIR --tokens tokens.npy --hparams hp.json \
        --out OUTDIR [--targets targets.npy] [--steps 2] [--dtype float64|float32] [--save-float64]
    /usr/bin/python3 tests/reference/train_step.py ... --lora-init PEFT_DIR [--weights-through Q8_0|Q4_0|...]
    /usr/bin/python3 tests/reference/train_step.py --write-fixtures tests/reference/fixtures/train
    /usr/bin/python3 tests/reference/train_step.py --self-test

Model (HF LlamaForCausalLM semantics, functional code over a dict of leaf tensors named as HF
names them; every row of the batch is an independent sequence at positions 0..T-1):
    x = embed_tokens[ids]                                   [B, T, D]
    per layer:  n = rmsnorm(x, input_layernorm)
                q, k, v = n Wq^T, n Wk^T, n Wv^T as [B, T, H|Hkv, hd]; q, k = rope(q), rope(k)
                x = x + attn(q, k, v) Wo^T
                n = rmsnorm(x, post_attention_layernorm)
                x = x + (silu(n Wg^T) * (n Wu^T)) Wd^T
    logits = rmsnorm(x, model.norm) Wlm^T    (Wlm = embed_tokens when tie_word_embeddings)
    rmsnorm(x, w) = x / sqrt(mean(x^2 over D) + rms_norm_eps) * w;  silu(g) = g * sigmoid(g)
    rope (HF rotate_half): pairs (d, d + hd/2), inv_freq[d] = theta^(-2d/hd) (rope_scaling as in
        llama_reference.py), angle = pos * inv_freq[d] computed in float64;
        y[d] = x[d] cos - x[d+hd/2] sin,  y[d+hd/2] = x[d+hd/2] cos + x[d] sin
    attn: query head h reads KV head h // (H / Hkv); softmax(q k^T / sqrt(hd) + causal mask) v,
        heads concatenated to [B, T, H*hd].  W is [out, in] (y = x W^T, torch F.linear).

Data: tokens.npy int [B, T+1] (int32); inputs = tokens[:, :-1], targets = tokens[:, 1:].
    With --targets FILE (int [B, T]) the targets come from that file instead; a target equal to
    hparams "ignore_index" (default -1) is masked (for chat SFT: prompt positions).
    Every optimizer step uses the same batch. (A 3-D tokens array [S, B, T+1], and targets
    [S, B, T], is also accepted: step k then uses batch k % S.)

LoRA (--lora-init PEFT_DIR, PEFT's formula, peft/tuners/lora/layer.py Linear.forward): the base is frozen and every
    projection named in DIR/adapter_model.safetensors (base_model.model.<HF module>.lora_A.weight [r, in] and
    .lora_B.weight [out, r], the starting values) becomes  y = x W^T + s * (x A^T) B^T,  s = lora_alpha / r, or
    lora_alpha / sqrt(r) with use_rslora (DIR/adapter_config.json); only the A and B tensors train (all of them
    decayed: 2-D and not the embedding). With --weights-through TYPE every base matrix is first rounded through a GGUF
    block type (llama_reference.weights_through: ggml's reference quantizer and back), as a base read from a
    quantized GGUF computes: QLoRA's dequantized base. Outputs then hold the LoRA tensors under PEFT's names.

Loss: natural-log cross-entropy, mean over the unmasked target positions:
    loss = sum_{unmasked (b,t)} (logsumexp(logits[b,t]) - logits[b,t,target]) / count_unmasked.

Gradient accumulation, hparams "micro_batches" M (B % M == 0): the B rows are split into M
    consecutive chunks of B/M rows; chunk c has loss_c (the mean above over its own unmasked
    targets; a chunk with no unmasked target has loss_c = 0 and gradient 0). Then
        reported loss = (1/M) sum_c loss_c,   gradient = (1/M) sum_c d loss_c / d params.
    This equals the full-batch loss and gradient exactly when every chunk has the same number
    of unmasked targets (always true without masking); with masking it is the mean of the
    chunk means (each chunk weighted equally, not each token).

Clipping, hparams "grad_clip" c (0 = off): norm = sqrt(sum over ALL parameter gradients of g^2)
    (after accumulation); if c > 0 and norm > c every gradient is multiplied by c / (norm + 1e-6).
    result.json "grad_norm" is this pre-clip norm. (torch.nn.utils.clip_grad_norm_ scales when
    c / (norm + 1e-6) < 1; the two differ only for norm in (c - 1e-6, c].)

Learning rate at step s (s = 0 for the first optimizer step), hparams lr, warmup_steps W,
max_steps S, min_lr:
    s < W:                      lr_s = lr * (s + 1) / W
    else if S <= 0:             lr_s = lr                          (no decay)
    else if s >= S:             lr_s = min_lr
    else:                       p = (s - W) / (S - W)
                                lr_s = min_lr + 0.5 * (lr - min_lr) * (1 + cos(pi * p))
    (so with W = 1 steps 0 and 1 both use lr; min_lr is reached at s = S.)

AdamW (decoupled, exactly torch.optim.AdamW, amsgrad off), at step s with t = s + 1, on the
clipped gradient g, moments m, v starting at 0, hparams betas (b1, b2), eps, weight_decay wd:
    p <- p * (1 - lr_s * wd)                     (decayed parameters only)
    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
    p <- p - (lr_s / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    Decayed: every 2-D weight matrix except model.embed_tokens.weight (q/k/v/o, gate/up/down,
    lm_head when untied). Not decayed: embed_tokens (also when it is the tied head), all norm
    weights, any 1-D tensor (biases).

hparams.json keys (defaults): lr (1e-3), betas ([0.9, 0.95]), eps (1e-8), weight_decay (0),
    warmup_steps (0), max_steps (0), min_lr (0), grad_clip (0), micro_batches (1),
    ignore_index (-1). Unknown keys are an error.

Outputs in OUTDIR (tensors keyed by HF names, float32 unless --save-float64):
    result.json              per step: loss, micro-batch losses and target counts, grad_norm
                             (pre-clip), clip_scale, lr; hparams with defaults; config echo;
                             the lr schedule for steps 0..max(max_steps, steps)+1
    grads_step0.safetensors  gradients of step 0 after accumulation, BEFORE clipping
    params_step{k}.safetensors  parameters after optimizer step k (k = 0 .. steps-1)
    m.safetensors, v.safetensors  AdamW exp_avg / exp_avg_sq after the last step (step count = steps)
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import llama_reference as llref  # noqa: E402  (load_model, hparams, rope_inv_freq, read_safetensors)
import make_random_llama as mrl  # noqa: E402  (make_model, write_safetensors)

torch.set_num_threads(1)  # deterministic float order, and the machine is shared

HPARAM_DEFAULTS = dict(lr=1e-3, betas=[0.9, 0.95], eps=1e-8, weight_decay=0.0, warmup_steps=0, max_steps=0,
                       min_lr=0.0, grad_clip=0.0, micro_batches=1, ignore_index=-1)
EMBED = "model.embed_tokens.weight"
HEAD = "lm_head.weight"
CLIP_EPS = 1e-6

# ---------------------------------------------------------------------------------------------
# ops (plain torch functions; the backward is torch autograd)


def rmsnorm(x, w, eps):
    """x [..., D], w [D] -> x / sqrt(mean(x^2, -1) + eps) * w."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_cos_sin(positions, inv_freq, dtype):
    """positions [T] (float64), inv_freq [hd/2] -> cos, sin [T, hd] (the angle repeated for d and d + hd/2)."""
    ang = torch.outer(torch.as_tensor(positions, dtype=torch.float64), torch.as_tensor(inv_freq, dtype=torch.float64))
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().to(dtype), ang.sin().to(dtype)


def rope(x, cos, sin):
    """x [..., T, heads, hd], cos/sin [T, hd] (or [B, T, hd] per row) -> x cos + rotate_half(x) sin, rotate_half(x) = [-x2, x1]."""
    half = x.shape[-1] // 2
    rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.unsqueeze(-2) + rot * sin.unsqueeze(-2)


def causal_attention(q, k, v, window=None, starts=None):
    """q [..., T, H, hd], k/v [..., T, Hkv, hd] -> [..., T, H*hd].
    Query head h reads KV head h // (H/Hkv); softmax(q k^T / sqrt(hd) + causal mask) v.
    starts [B, T] (packed conversations): position i also sees no key before starts[b, i] (block-diagonal mask)."""
    T, H, hd = q.shape[-3:]
    rep = H // k.shape[-2]
    k = k.repeat_interleave(rep, dim=-2)
    v = v.repeat_interleave(rep, dim=-2)
    q, k, v = q.transpose(-3, -2), k.transpose(-3, -2), v.transpose(-3, -2)   # [..., H, T, hd]
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    allowed = j <= i
    if window:
        allowed = allowed & (i - j < window)
    if starts is not None:
        allowed = (allowed[None] & (j[None] >= starts[:, :, None]))[:, None]   # [B, 1, T, T]
    s = s.masked_fill(~allowed, float("-inf"))
    o = torch.softmax(s, dim=-1) @ v                                          # [..., H, T, hd]
    o = o.transpose(-3, -2)
    return o.reshape(*o.shape[:-2], H * hd)


def swiglu(g, u):
    """silu(g) * u = g * sigmoid(g) * u."""
    return g * torch.sigmoid(g) * u


def linear(x, w, b=None):
    """x [..., in], w [out, in] -> x w^T (+ b)."""
    y = x @ w.transpose(0, 1)
    return y if b is None else y + b


def embedding(ids, table):
    """ids (long) [...], table [V, D] -> table[ids] [..., D]; backward scatter-adds rows."""
    return table[ids]


def cross_entropy_sum(logits, targets, ignore_index=-1):
    """logits [N, V], targets [N] (long) -> (sum of nll over targets != ignore_index, count)."""
    keep = targets != ignore_index
    safe = torch.where(keep, targets, torch.zeros_like(targets))
    nll = torch.logsumexp(logits, dim=-1) - logits.gather(-1, safe[:, None])[:, 0]
    nll = torch.where(keep, nll, torch.zeros_like(nll))
    return nll.sum(), int(keep.sum())


def cross_entropy_mean(logits, targets, ignore_index=-1):
    s, n = cross_entropy_sum(logits, targets, ignore_index)
    return s / max(n, 1), n


# ---------------------------------------------------------------------------------------------
# model


def param_names(cfg, tensors):
    """HF names of the trainable tensors, in model order; lm_head dropped when tied."""
    hp = llref.hparams(cfg)
    names = [EMBED]
    for i in range(hp["L"]):
        p = f"model.layers.{i}."
        for n in ("input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
                  "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight",
                  "self_attn.v_proj.bias", "self_attn.o_proj.weight", "self_attn.o_proj.bias",
                  "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.gate_proj.bias",
                  "mlp.up_proj.weight", "mlp.up_proj.bias", "mlp.down_proj.weight", "mlp.down_proj.bias"):
            if p + n in tensors:
                names.append(p + n)
    names.append("model.norm.weight")
    if not hp["tied"]:
        if HEAD not in tensors:
            raise ValueError("untied model without lm_head.weight")
        names.append(HEAD)
    missing = [n for n in names if n not in tensors]
    if missing:
        raise ValueError(f"missing tensors: {missing[:5]}")
    return names


def is_decayed(name, shape):
    return len(shape) == 2 and name != EMBED


LORA_PREFIX = "base_model.model."


def forward_logits(cfg, P, ids, starts=None, lora_scale=None):
    """P: dict name -> tensor; ids long [B, T] -> logits [B, T, V]. starts [B, T] (packed conversations): per
    position the start of its conversation; RoPE positions restart there and attention stays inside."""
    hp = llref.hparams(cfg)
    H, Hkv, hd, eps = hp["H"], hp["Hkv"], hp["hd"], hp["eps"]
    B, T = ids.shape
    dt = P[EMBED].dtype
    inv = llref.rope_inv_freq(hd, hp["theta"], hp["scaling"])
    if starts is None:
        cos, sin = rope_cos_sin(torch.arange(T, dtype=torch.float64), inv, dt)
    else:
        pos = (torch.arange(T)[None, :] - starts).to(torch.float64)
        cs = [rope_cos_sin(pos[b], inv, dt) for b in range(B)]
        cos, sin = torch.stack([c for c, _ in cs]), torch.stack([s_ for _, s_ in cs])

    def lin(x, name):
        y = linear(x, P[name + ".weight"], P.get(name + ".bias"))
        a = P.get(LORA_PREFIX + name + ".lora_A.weight")
        if a is not None:
            y = y + lora_scale * linear(linear(x, a), P[LORA_PREFIX + name + ".lora_B.weight"])
        return y

    x = embedding(ids, P[EMBED])
    for layer in range(hp["L"]):
        p = f"model.layers.{layer}."
        n = rmsnorm(x, P[p + "input_layernorm.weight"], eps)
        q = rope(lin(n, p + "self_attn.q_proj").view(B, T, H, hd), cos, sin)
        k = rope(lin(n, p + "self_attn.k_proj").view(B, T, Hkv, hd), cos, sin)
        v = lin(n, p + "self_attn.v_proj").view(B, T, Hkv, hd)
        x = x + lin(causal_attention(q, k, v, hp["window"], starts), p + "self_attn.o_proj")
        n = rmsnorm(x, P[p + "post_attention_layernorm.weight"], eps)
        x = x + lin(swiglu(lin(n, p + "mlp.gate_proj"), lin(n, p + "mlp.up_proj")), p + "mlp.down_proj")
    x = rmsnorm(x, P["model.norm.weight"], eps)
    head = P[EMBED] if hp["tied"] else P[HEAD]
    return linear(x, head)


def batch_loss(cfg, P, inputs, targets, ignore_index, starts=None, lora_scale=None):
    """Mean cross-entropy over the unmasked targets of these rows -> (loss tensor, count)."""
    logits = forward_logits(cfg, P, inputs, starts, lora_scale)
    V = logits.shape[-1]
    return cross_entropy_mean(logits.reshape(-1, V), targets.reshape(-1), ignore_index)


def accumulated_grads(cfg, P, names, inputs, targets, hp, starts=None, lora_scale=None):
    """-> (loss = mean of chunk losses, grads dict = mean of chunk grads, chunk losses, chunk counts)."""
    M = int(hp["micro_batches"])
    B = inputs.shape[0]
    if M < 1 or B % M:
        raise ValueError(f"micro_batches {M} does not divide the batch of {B} rows")
    c = B // M
    leaves = [P[n] for n in names]
    grads = {n: torch.zeros_like(P[n]) for n in names}
    losses, counts = [], []
    for i in range(M):
        loss, n = batch_loss(cfg, P, inputs[i * c:(i + 1) * c], targets[i * c:(i + 1) * c], hp["ignore_index"],
                             None if starts is None else starts[i * c:(i + 1) * c], lora_scale)
        gs = torch.autograd.grad(loss, leaves, allow_unused=True)
        for name, g in zip(names, gs):
            if g is not None:
                grads[name] += g / M
        losses.append(float(loss))
        counts.append(n)
    return sum(losses) / M, grads, losses, counts


def global_norm(grads):
    return math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads.values()))


def clip_scale(norm, clip):
    return clip / (norm + CLIP_EPS) if clip > 0 and norm > clip else 1.0


def lr_at(step, hp):
    lr, W, S, lo = float(hp["lr"]), int(hp["warmup_steps"]), int(hp["max_steps"]), float(hp["min_lr"])
    if step < W:
        return lr * (step + 1) / W
    if S <= 0:
        return lr
    if step >= S:
        return lo
    p = (step - W) / (S - W)
    return lo + 0.5 * (lr - lo) * (1 + math.cos(math.pi * p))


def adamw_step(P, grads, m, v, names, decayed, lr, hp, t):
    """In place, torch.optim.AdamW's single-tensor update; t = 1 for the first step."""
    b1, b2 = hp["betas"]
    eps, wd = hp["eps"], hp["weight_decay"]
    bc1 = 1 - b1 ** t
    bc2_sqrt = math.sqrt(1 - b2 ** t)
    with torch.no_grad():
        for n in names:
            p, g = P[n], grads[n]
            if n in decayed:
                p.mul_(1 - lr * wd)
            m[n].mul_(b1).add_(g, alpha=1 - b1)
            v[n].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v[n].sqrt() / bc2_sqrt).add_(eps)
            p.addcdiv_(m[n], denom, value=-lr / bc1)


def full_hparams(hp):
    unknown = sorted(set(hp) - set(HPARAM_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown hparams keys: {unknown}")
    out = dict(HPARAM_DEFAULTS)
    out.update(hp)
    out["betas"] = [float(b) for b in out["betas"]]
    return out


def batches(tokens, targets, ignore_index):
    """-> list of (inputs long [B, T], targets long [B, T]); one entry for a 2-D tokens array."""
    tokens = np.asarray(tokens)
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be integers, got {tokens.dtype}")
    if tokens.ndim == 2:
        tokens = tokens[None]
        if targets is not None:
            targets = np.asarray(targets)[None]
    if tokens.ndim != 3 or tokens.shape[-1] < 2:
        raise ValueError(f"tokens must be [B, T+1] (or [S, B, T+1]), got {tokens.shape}")
    out = []
    for s in range(tokens.shape[0]):
        inp = tokens[s, :, :-1]
        tgt = tokens[s, :, 1:] if targets is None else np.asarray(targets[s])
        if tgt.shape != inp.shape:
            raise ValueError(f"targets shape {tgt.shape} != inputs shape {inp.shape}")
        if (inp < 0).any():
            raise ValueError("negative input token id (mask targets with --targets, not in tokens)")
        bad = (tgt < 0) & (tgt != ignore_index)
        if bad.any():
            raise ValueError(f"negative target ids other than ignore_index {ignore_index}")
        out.append((torch.from_numpy(inp.astype(np.int64)), torch.from_numpy(tgt.astype(np.int64))))
    return out


def read_lora(folder):
    """A PEFT folder -> (tensors by PEFT name in model order, scale)."""
    with open(os.path.join(folder, "adapter_config.json")) as f:
        conf = json.load(f)
    r, alpha = int(conf["r"]), float(conf["lora_alpha"])
    scale = alpha / (math.sqrt(r) if conf.get("use_rslora") else r)
    t = llref.read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    for n, a in t.items():
        if not n.startswith(LORA_PREFIX) or not (n.endswith(".lora_A.weight") or n.endswith(".lora_B.weight")):
            raise ValueError(f"{folder}: {n} is not a PEFT LoRA tensor name")
        if a.shape[0 if n.endswith("lora_A.weight") else 1] != r:
            raise ValueError(f"{folder}: {n} has shape {a.shape}, rank {r}")
    return t, scale


def train(cfg, tensors, tokens, hp, steps=2, dtype=torch.float64, targets=None, starts=None, lora=None):
    """Runs `steps` optimizer steps. Returns a dict with per-step records and tensors (float64 numpy).
    lora: (PEFT tensors, scale): those train over the frozen base instead of the base itself."""
    hp = full_hparams(hp)
    names = param_names(cfg, tensors)
    V = cfg["vocab_size"]
    data = batches(tokens, targets, hp["ignore_index"])
    for inp, tgt in data:
        if int(inp.max()) >= V or int(tgt.max()) >= V:
            raise ValueError(f"token id out of range [0, {V})")
    lora_scale = None
    if lora is None:
        P = {n: torch.tensor(np.asarray(tensors[n], dtype=np.float64), dtype=dtype).requires_grad_(True) for n in names}
    else:
        lt, lora_scale = lora
        P = {n: torch.tensor(np.asarray(tensors[n], dtype=np.float64), dtype=dtype) for n in names}  # frozen
        order = {n: i for i, n in enumerate(names)}
        for n in lt:
            base = n[len(LORA_PREFIX):].rsplit(".lora_", 1)[0] + ".weight"
            if base not in order:
                raise ValueError(f"LoRA tensor {n}: the base has no {base}")
        names = sorted(lt, key=lambda n: (order[n[len(LORA_PREFIX):].rsplit(".lora_", 1)[0] + ".weight"], n))
        for n in names:
            P[n] = torch.tensor(np.asarray(lt[n], dtype=np.float64), dtype=dtype).requires_grad_(True)
    decayed = [n for n in names if is_decayed(n, P[n].shape)]
    m = {n: torch.zeros_like(P[n]) for n in names}
    v = {n: torch.zeros_like(P[n]) for n in names}
    rec = dict(loss=[], micro_batch_losses=[], micro_batch_target_counts=[], grad_norm=[], clip_scale=[],
               clipped=[], grad_norm_after_clip=[], lr=[])
    params_after = []
    grads0 = None
    for s in range(steps):
        inp, tgt = data[s % len(data)]
        loss, grads, losses, counts = accumulated_grads(cfg, P, names, inp, tgt, hp,
                                                        None if starts is None else torch.from_numpy(np.asarray(starts, dtype=np.int64)),
                                                        lora_scale)
        if s == 0:
            grads0 = {n: g.detach().double().numpy().copy() for n, g in grads.items()}
        norm = global_norm(grads)
        scale = clip_scale(norm, float(hp["grad_clip"]))
        if scale != 1.0:
            for g in grads.values():
                g.mul_(scale)
        lr = lr_at(s, hp)
        adamw_step(P, grads, m, v, names, decayed, lr, hp, s + 1)
        params_after.append({n: P[n].detach().double().numpy().copy() for n in names})
        rec["loss"].append(loss)
        rec["micro_batch_losses"].append(losses)
        rec["micro_batch_target_counts"].append(counts)
        rec["grad_norm"].append(norm)
        rec["clip_scale"].append(scale)
        rec["clipped"].append(scale != 1.0)
        rec["grad_norm_after_clip"].append(global_norm(grads))
        rec["lr"].append(lr)
    return dict(hparams=hp, names=names, decayed=decayed, records=rec, grads0=grads0, params=params_after,
                m={n: t.double().numpy().copy() for n, t in m.items()},
                v={n: t.double().numpy().copy() for n, t in v.items()})


def write_outputs(out_dir, cfg, res, steps, dtype_name, tokens_shape, targets_note, save_float64=False):
    os.makedirs(out_dir, exist_ok=True)
    sd = np.float64 if save_float64 else np.float32

    def save(fn, d):
        mrl.write_safetensors(os.path.join(out_dir, fn), {n: np.asarray(a, dtype=sd) for n, a in d.items()})

    save("grads_step0.safetensors", res["grads0"])
    for k, p in enumerate(res["params"]):
        save(f"params_step{k}.safetensors", p)
    save("m.safetensors", res["m"])
    save("v.safetensors", res["v"])
    hp = res["hparams"]
    sched_len = max(int(hp["max_steps"]), steps) + 2
    result = {
        "generator": "tests/reference/train_step.py (float64 PyTorch autograd reference, written from the math)",
        "dtype": dtype_name, "saved_dtype": "F64" if save_float64 else "F32", "steps": steps,
        "tokens_shape": list(tokens_shape), "targets": targets_note,
        "batch_per_step": "the same batch every step" if len(tokens_shape) == 2 else "batch k % S at step k",
        "hparams": hp,
        "conventions": {
            "loss": "mean natural-log cross-entropy over unmasked targets (target == ignore_index is masked)",
            "accumulation": "rows split into micro_batches consecutive equal chunks; loss and gradient = mean over "
                            "chunks of the chunk's mean loss and its gradient",
            "grad_norm": "sqrt(sum g^2) over all gradients after accumulation, before clipping",
            "clip": "if grad_clip > 0 and grad_norm > grad_clip: g *= grad_clip / (grad_norm + 1e-6)",
            "lr": "s < W: lr*(s+1)/W; else S <= 0: lr; s >= S: min_lr; else min_lr + 0.5*(lr-min_lr)*"
                  "(1+cos(pi*(s-W)/(S-W))); s from 0, W = warmup_steps, S = max_steps",
            "adamw": "torch.optim.AdamW: p *= 1 - lr*wd (decayed only); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; "
                     "p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps), t = s + 1",
            "grads_step0": "step 0 gradients after accumulation, before clipping",
            "params_step_k": "parameters after optimizer step k",
            "m_v": f"AdamW exp_avg / exp_avg_sq after the last step (t = {steps})",
        },
        "decayed": res["decayed"],
        "not_decayed": [n for n in res["names"] if n not in res["decayed"]],
        "parameter_count": int(sum(np.asarray(a).size for a in res["params"][0].values())),
        **res["records"],
        "lr_schedule": [lr_at(s, hp) for s in range(sched_len)],
        "model_config": cfg,
        "files": ["grads_step0.safetensors"] + [f"params_step{k}.safetensors" for k in range(steps)]
                 + ["m.safetensors", "v.safetensors"],
    }
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    return result


def run_cli(model, tokens_path, hparams_path, out_dir, steps, dtype_name, targets_path=None, save_float64=False, starts_path=None,
            lora_init=None, weights_through=None):
    cfg, tensors = llref.load_model(model)
    if weights_through:
        tensors = llref.weights_through(tensors, weights_through)
    lora = read_lora(lora_init) if lora_init else None
    tokens = np.load(tokens_path)
    targets = np.load(targets_path) if targets_path else None
    starts = np.load(starts_path) if starts_path else None
    if starts is not None and (tokens.ndim != 2 or starts.shape != (tokens.shape[0], tokens.shape[1] - 1)):
        raise ValueError(f"starts must be [B, T] for tokens [B, T+1], got {starts.shape}")
    with open(hparams_path) as f:
        hp = json.load(f)
    dtype = torch.float64 if dtype_name == "float64" else torch.float32
    res = train(cfg, tensors, tokens, hp, steps, dtype, targets, starts, lora)
    note = f"from {os.path.basename(targets_path)}" if targets_path else "tokens[:, 1:]"
    return write_outputs(out_dir, cfg, res, steps, dtype_name, tokens.shape, note, save_float64)


# ---------------------------------------------------------------------------------------------
# hand-written numpy backward formulas (used by --self-test to check the autograd results a second
# way, and as the formulas a hand-written backward implements)


def np_rmsnorm_bwd(x, w, eps, dy):
    """r = 1/sqrt(mean(x^2)+eps): dw = sum_rows dy x r;  dx = r (dy w) - x r^3 mean((dy w) x)."""
    r = 1 / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    g = dy * w
    dx = r * g - x * r ** 3 * (g * x).mean(-1, keepdims=True)
    dw = (dy * x * r).reshape(-1, x.shape[-1]).sum(0)
    return dx, dw


def np_rope_bwd(cos, sin, dy):
    """The transpose of the rotation (= rope with -sin): dx1 = dy1 c + dy2 s, dx2 = dy2 c - dy1 s.
    cos/sin [T, hd] (repeated halves), dy [T, heads, hd]."""
    h = dy.shape[-1] // 2
    c, s = cos[:, None, :h], sin[:, None, :h]
    d1, d2 = dy[..., :h], dy[..., h:]
    return np.concatenate([d1 * c + d2 * s, d2 * c - d1 * s], axis=-1)


def np_attention_bwd(q, k, v, dy, starts=None):
    """q [T, H, hd], k/v [T, Hkv, hd], dy [T, H*hd]. Per head: P = softmax(S), S = q k^T/sqrt(hd) masked;
    dV += P^T dO; dP = dO V^T; dS = P (dP - rowsum(dP P)); dQ = dS K/sqrt(hd); dK += dS^T Q/sqrt(hd)."""
    T, H, hd = q.shape
    Hkv = k.shape[1]
    sc = 1 / math.sqrt(hd)
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    mask = np.tril(np.ones((T, T), dtype=bool))
    if starts is not None:
        mask &= np.arange(T)[None, :] >= starts[:, None]
    for h in range(H):
        g = h // (H // Hkv)
        S = np.where(mask, q[:, h] @ k[:, g].T * sc, -np.inf)
        Pm = np.exp(S - S.max(-1, keepdims=True))
        Pm /= Pm.sum(-1, keepdims=True)
        dO = dy[:, h * hd:(h + 1) * hd]
        dv[:, g] += Pm.T @ dO
        dP = dO @ v[:, g].T
        dS = Pm * (dP - (dP * Pm).sum(-1, keepdims=True))
        dq[:, h] = dS @ k[:, g] * sc
        dk[:, g] += dS.T @ q[:, h] * sc
    return dq, dk, dv


def np_swiglu_bwd(g, u, dy):
    """s = sigmoid(g): dg = dy u s (1 + g (1 - s)); du = dy g s."""
    s = 1 / (1 + np.exp(-g))
    return dy * u * s * (1 + g * (1 - s)), dy * g * s


def np_linear_bwd(x, w, dy):
    """y = x W^T: dx = dy W; dW = dy^T x (summed over all leading rows)."""
    return dy @ w, dy.reshape(-1, dy.shape[-1]).T @ x.reshape(-1, x.shape[-1])


def np_embedding_bwd(ids, V, dy):
    """dE[i] = sum of dy rows whose id is i."""
    dE = np.zeros((V, dy.shape[-1]))
    np.add.at(dE, ids.ravel(), dy.reshape(-1, dy.shape[-1]))
    return dE


def np_cross_entropy_bwd(logits, targets, ignore_index):
    """d mean-loss / d logits = (softmax - onehot(target)) / count on unmasked rows, 0 on masked rows."""
    keep = targets != ignore_index
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    p[np.arange(len(targets))[keep], targets[keep]] -= 1
    p[~keep] = 0
    return p / max(int(keep.sum()), 1)


# ---------------------------------------------------------------------------------------------
# per-op cases (shared by the self-test and the fixtures)


def op_cases():
    """-> list of dicts: name, fn (torch, inputs -> output), inputs (name -> float64 array, grads wanted),
    consts (name -> array, no grad), scalars, formula, np_bwd (inputs, dy -> grads by name)."""
    rng = np.random.default_rng(1234)
    cases = []

    # rmsnorm: rows at very different scales
    x = rng.standard_normal((5, 16)) * np.array([1e-2, 0.5, 1, 3, 30])[:, None]
    w = 1 + 0.3 * rng.standard_normal(16)
    eps = 1e-5
    cases.append(dict(
        name="rmsnorm", inputs={"x": x, "w": w}, consts={}, scalars={"eps": eps},
        fn=lambda x, w: rmsnorm(x, w, eps),
        np_bwd=lambda a, dy: dict(zip(("x", "w"), np_rmsnorm_bwd(a["x"], a["w"], eps, dy))),
        formula="y = x / sqrt(mean(x^2 over last axis) + eps) * w; x [N, D], w [D]"))

    # rope, positions offset 5 (as after a 5-token prefix), two thetas
    for theta, tag in ((10000.0, "rope_theta1e4"), (500000.0, "rope_theta5e5")):
        T, heads, hd = 5, 3, 8
        pos = np.arange(5, 5 + T, dtype=np.float64)
        cos, sin = rope_cos_sin(torch.from_numpy(pos), llref.rope_inv_freq(hd, theta, None), torch.float64)
        xr = rng.standard_normal((T, heads, hd))
        cases.append(dict(
            name=tag, inputs={"x": xr}, consts={"positions": pos.astype(np.int64), "cos": cos.numpy(),
                                                "sin": sin.numpy()},
            scalars={"theta": theta, "head_dim": hd, "position_offset": 5},
            fn=(lambda c, s: (lambda x: rope(x, c, s)))(cos, sin),
            np_bwd=(lambda c, s: (lambda a, dy: {"x": np_rope_bwd(c, s, dy)}))(cos.numpy(), sin.numpy()),
            formula="HF rotate_half RoPE on x [T, heads, hd]: pairs (d, d+hd/2), inv_freq[d] = theta^(-2d/hd), "
                    "angle = positions[t] * inv_freq[d]; y[d] = x[d] cos - x[d+hd/2] sin, "
                    "y[d+hd/2] = x[d+hd/2] cos + x[d] sin; cos/sin [T, hd] stored (angle repeated for both halves)"))

    # causal GQA attention
    T, H, Hkv, hd = 7, 4, 2, 8
    qa = rng.standard_normal((T, H, hd))
    ka = rng.standard_normal((T, Hkv, hd))
    va = rng.standard_normal((T, Hkv, hd))
    cases.append(dict(
        name="attention_gqa", inputs={"q": qa, "k": ka, "v": va}, consts={}, scalars={"H": H, "Hkv": Hkv, "head_dim": hd},
        fn=lambda q, k, v: causal_attention(q, k, v),
        np_bwd=lambda a, dy: dict(zip(("q", "k", "v"), np_attention_bwd(a["q"], a["k"], a["v"], dy))),
        formula="q [T, H, hd], k/v [T, Hkv, hd] (already rotated); query head h reads KV head h // (H/Hkv); "
                "y[t, h*hd:(h+1)*hd] = softmax_j<=t(q[t,h] . k[j,g] / sqrt(hd)) v[j,g]; y [T, H*hd]"))

    # swiglu, with saturated gates
    g = rng.standard_normal((5, 12)) * 2
    g[0, :4] = [-30, -10, 10, 30]
    u = rng.standard_normal((5, 12))
    cases.append(dict(
        name="swiglu", inputs={"g": g, "u": u}, consts={}, scalars={},
        fn=swiglu,
        np_bwd=lambda a, dy: dict(zip(("g", "u"), np_swiglu_bwd(a["g"], a["u"], dy))),
        formula="y = silu(g) * u = g * sigmoid(g) * u; g = n W_gate^T, u = n W_up^T, all [N, F]"))

    # linear
    xl = rng.standard_normal((5, 6))
    wl = rng.standard_normal((4, 6))
    cases.append(dict(
        name="linear", inputs={"x": xl, "W": wl}, consts={}, scalars={},
        fn=linear,
        np_bwd=lambda a, dy: dict(zip(("x", "W"), np_linear_bwd(a["x"], a["W"], dy))),
        formula="y = x W^T; x [N, in], W [out, in] (HF / torch F.linear layout), y [N, out]"))

    # embedding with repeated ids (and unused rows)
    ids = np.array([3, 1, 3, 0, 7, 3, 1, 9, 0, 3], dtype=np.int64)
    E = rng.standard_normal((12, 6))
    cases.append(dict(
        name="embedding", inputs={"E": E}, consts={"ids": ids}, scalars={},
        fn=lambda E: embedding(torch.from_numpy(ids), E),
        np_bwd=lambda a, dy: {"E": np_embedding_bwd(ids, 12, dy)},
        formula="y = E[ids]; E [V, D], ids [N] with repeats; dE[i] = sum of dy rows with id i (rows 2,4,5,6,8,10,11 "
                "unused: zero)"))

    # cross-entropy with ignore_index, one row of large logits
    N, Vc = 6, 10
    logits = rng.standard_normal((N, Vc)) * 2
    logits[2] = rng.standard_normal(Vc) * 30
    targets = np.array([3, -1, 7, 0, -1, 9], dtype=np.int64)
    cases.append(dict(
        name="cross_entropy", inputs={"logits": logits}, consts={"targets": targets}, scalars={"ignore_index": -1},
        fn=lambda z: cross_entropy_mean(z, torch.from_numpy(targets), -1)[0],
        np_bwd=lambda a, dy: {"logits": float(dy) * np_cross_entropy_bwd(a["logits"], targets, -1)},
        formula="loss = mean over rows with target != -1 of logsumexp(logits[r]) - logits[r, target[r]] (natural "
                "log; 4 of 6 rows count); dy is the scalar upstream gradient (1.0); masked rows get zero gradient"))

    # causal GQA attention over several blocks of query rows, with packed conversations (its own generator, so the
    # cases above keep their values): T = 100 spans two of Duet's 64-row blocks, the second block starts inside a
    # conversation, hd = 40 is not a multiple of the 32-column register tile
    rb = np.random.default_rng(4321)
    T, H, Hkv, hd = 100, 2, 1, 40
    qb = rb.standard_normal((T, H, hd))
    kb = rb.standard_normal((T, Hkv, hd))
    vb = rb.standard_normal((T, Hkv, hd))
    st = np.array([0] * 58 + [58] * 27 + [85] * 15, dtype=np.int64)
    cases.append(dict(
        name="attention_gqa_packed", inputs={"q": qb, "k": kb, "v": vb}, consts={"starts": st},
        scalars={"H": H, "Hkv": Hkv, "head_dim": hd},
        fn=lambda q, k, v: causal_attention(q[None], k[None], v[None], starts=torch.from_numpy(st)[None])[0],
        np_bwd=lambda a, dy: dict(zip(("q", "k", "v"), np_attention_bwd(a["q"], a["k"], a["v"], dy, st))),
        formula="as attention_gqa, with packed conversations: position t sees keys starts[t]..t only "
                "(conversations start at 0, 58 and 85)"))
    return cases


def op_autograd(case, seed=99):
    """-> (output, upstream dy, grads dict) with float64 autograd."""
    names = list(case["inputs"])
    ts = [torch.tensor(case["inputs"][n], dtype=torch.float64, requires_grad=True) for n in names]
    y = case["fn"](*ts)
    rng = np.random.default_rng(seed)
    dy = np.array(1.0) if y.dim() == 0 else rng.standard_normal(tuple(y.shape))
    gs = torch.autograd.grad(y, ts, torch.tensor(dy, dtype=torch.float64))
    return y.detach().numpy(), dy, {n: g.numpy() for n, g in zip(names, gs)}


def op_finite_diff(case, dy, h=1e-6):
    """Central differences of sum(fn(inputs) * dy) for every input element (float64)."""
    names = list(case["inputs"])
    base = {n: np.array(case["inputs"][n], dtype=np.float64) for n in names}

    def f(vals):
        with torch.no_grad():
            y = case["fn"](*[torch.from_numpy(vals[n]) for n in names]).numpy()
        return float((y * dy).sum())

    out = {}
    for n in names:
        g = np.zeros_like(base[n])
        for idx in np.ndindex(base[n].shape):
            old = base[n][idx]
            step = h * max(1.0, abs(old))
            base[n][idx] = old + step
            fp = f(base)
            base[n][idx] = old - step
            fm = f(base)
            base[n][idx] = old
            g[idx] = (fp - fm) / (2 * step)
        out[n] = g
    return out


def rel_err(a, b):
    """max |a - b| / max |b| (scale-relative; the metric suggested for the C# comparisons)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    s = np.abs(b).max()
    return float(np.abs(a - b).max() / s) if s > 0 else float(np.abs(a - b).max())


# ---------------------------------------------------------------------------------------------
# whole-model fixture cases

MODEL_FIXTURES = [
    # untied, full batch (micro_batches 1), clipping triggers (grad norm > 1)
    dict(name="untied-clip", seed=0, tie=False, std=0.3, mask=None,
         hparams=dict(lr=1e-2, betas=[0.9, 0.95], eps=1e-8, weight_decay=0.1, warmup_steps=1, max_steps=10,
                      min_lr=1e-3, grad_clip=1.0, micro_batches=1, ignore_index=-1)),
    # tied, 2 micro-batches with masked (SFT-like) targets of unequal counts, clip set above the norm
    dict(name="tied-mask-accum", seed=1, tie=True, std=0.3, mask=[(0, 5), (1, 9)],
         hparams=dict(lr=1e-2, betas=[0.9, 0.95], eps=1e-8, weight_decay=0.1, warmup_steps=2, max_steps=10,
                      min_lr=1e-3, grad_clip=None, micro_batches=2, ignore_index=-1)),
]
FIXTURE_SHAPE = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2, intermediate_size=48)
FIXTURE_B, FIXTURE_T, FIXTURE_STEPS = 2, 16, 3


def fixture_data(case):
    rng = np.random.default_rng(100 + case["seed"])
    tokens = rng.integers(0, FIXTURE_SHAPE["vocab_size"], size=(FIXTURE_B, FIXTURE_T + 1)).astype(np.int32)
    targets = tokens[:, 1:].copy()
    for row, n in case["mask"] or []:
        targets[row, :n] = -1                      # the first n targets of the row (a "prompt") are masked
    return tokens, targets


def make_fixture_model(d, case):
    return mrl.make_model(d, "llama3", seed=case["seed"], std=case["std"], norm_std=0.1,
                          tie_word_embeddings=case["tie"], rope_theta=10000.0, max_position_embeddings=2048,
                          **FIXTURE_SHAPE)


def write_fixtures(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    index = {"generator": "tests/reference/train_step.py --write-fixtures", "ops": [], "models": []}

    ops_dir = os.path.join(out_dir, "ops")
    os.makedirs(ops_dir, exist_ok=True)
    for case in op_cases():
        y, dy, grads = op_autograd(case)
        t = {}
        for n, a in case["inputs"].items():
            t[n] = np.asarray(a, dtype=np.float64)
        for n, a in case["consts"].items():
            t[n] = np.asarray(a)
        t["y"] = np.asarray(y, dtype=np.float64).reshape(np.shape(y) or (1,))    # a scalar is stored as [1]
        t["dy"] = np.asarray(dy, dtype=np.float64).reshape(np.shape(dy) or (1,))
        for n, g in grads.items():
            t["d" + n] = g
        meta = {"format": "pt", "op": case["name"], "formula": case["formula"]}
        meta.update({k: repr(v) for k, v in case["scalars"].items()})
        fn = case["name"] + ".safetensors"
        mrl.write_safetensors(os.path.join(ops_dir, fn), t, metadata=meta)
        index["ops"].append({"op": case["name"], "file": f"ops/{fn}", "formula": case["formula"],
                             "scalars": case["scalars"],
                             "tensors": {n: [str(a.dtype), list(a.shape)] for n, a in sorted(t.items())},
                             "inputs_with_grads": list(case["inputs"])})
        print(f"ops/{fn}: " + ", ".join(f"{n}{list(a.shape)}" for n, a in t.items()))

    for case in MODEL_FIXTURES:
        d = os.path.join(out_dir, "models", case["name"])
        cfg = make_fixture_model(d, case)
        tokens, targets = fixture_data(case)
        np.save(os.path.join(d, "tokens.npy"), tokens)
        np.save(os.path.join(d, "targets.npy"), targets)
        hp = dict(case["hparams"])
        if hp["grad_clip"] is None:
            # set the threshold well above every step's norm, so the comparison runs and never clips
            probe = train(*llref.load_model(d), tokens, dict(hp, grad_clip=0.0), FIXTURE_STEPS, targets=targets)
            hp["grad_clip"] = float(math.ceil(2 * max(probe["records"]["grad_norm"])))
        with open(os.path.join(d, "hparams.json"), "w") as f:
            json.dump(hp, f, indent=1)
            f.write("\n")
        res = run_cli(d, os.path.join(d, "tokens.npy"), os.path.join(d, "hparams.json"), d, FIXTURE_STEPS,
                      "float64", os.path.join(d, "targets.npy"))
        norms, clip = res["grad_norm"], hp["grad_clip"]
        assert all(abs(n - clip) > 1e-3 * clip for n in norms), "a grad norm is too close to the clip threshold"
        index["models"].append({"name": case["name"], "dir": f"models/{case['name']}", "tied": case["tie"],
                                "std": case["std"], "seed": case["seed"], "shape": FIXTURE_SHAPE,
                                "tokens": [FIXTURE_B, FIXTURE_T + 1], "steps": FIXTURE_STEPS,
                                "masked_targets": int((targets == -1).sum()), "hparams": hp,
                                "loss": res["loss"], "grad_norm": norms, "clipped": res["clipped"], "lr": res["lr"]})
        print(f"models/{case['name']}: {res['parameter_count']} params, tied={case['tie']}, loss "
              f"{[round(x, 6) for x in res['loss']]}, grad_norm {[round(x, 4) for x in norms]} "
              f"(clip {clip}, clipped {res['clipped']}), lr {[round(x, 6) for x in res['lr']]}")
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(r, fn)) for r, _, fs in os.walk(out_dir) for fn in fs)
    print(f"{out_dir}: {total} bytes")


# ---------------------------------------------------------------------------------------------
# self-test


def self_test():
    import copy
    import tempfile
    ok = True

    def report(name, cond, detail):
        nonlocal ok
        ok &= bool(cond)
        print(f"{'ok  ' if cond else 'FAIL'} {name}: {detail}")

    # 1. every op: torch.autograd.gradcheck, full central finite differences, hand-written backward
    for case in op_cases():
        ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in case["inputs"].values()]
        gc = torch.autograd.gradcheck(case["fn"], ts, eps=1e-6, atol=1e-8, rtol=1e-6, raise_exception=False)
        y, dy, grads = op_autograd(case)
        fd = op_finite_diff(case, dy)
        efd = max(rel_err(grads[n], fd[n]) for n in grads)
        hand = case["np_bwd"](case["inputs"], dy)
        ehand = max(rel_err(hand[n], grads[n]) for n in grads)
        report(f"op {case['name']}", gc and efd < 1e-7 and ehand < 1e-12,
               f"gradcheck {'passed' if gc else 'FAILED'}; autograd vs finite differences max rel err {efd:.1e}; "
               f"hand-written backward vs autograd {ehand:.1e}")

    # cross-entropy vs torch.nn.functional.cross_entropy (reduction mean, ignore_index)
    z = torch.randn(9, 11, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    tg = torch.tensor([1, -1, 4, 10, 0, -1, -1, 3, 2])
    ours = cross_entropy_mean(z, tg, -1)[0]
    theirs = torch.nn.functional.cross_entropy(z, tg, ignore_index=-1)
    report("cross-entropy vs F.cross_entropy(ignore_index=-1)", abs(float(ours - theirs)) < 1e-14,
           f"{float(ours):.15f} vs {float(theirs):.15f}")

    with tempfile.TemporaryDirectory() as tmp:
        for case in MODEL_FIXTURES:
            d = os.path.join(tmp, case["name"])
            make_fixture_model(d, case)
            cfg, tensors = llref.load_model(d)
            tokens, targets = fixture_data(case)
            names = param_names(cfg, tensors)
            P = {n: torch.tensor(np.asarray(tensors[n], np.float64), requires_grad=True) for n in names}
            inp = torch.from_numpy(tokens[:, :-1].astype(np.int64))
            tgt = torch.from_numpy(targets.astype(np.int64))
            tag = case["name"]

            # 2. the forward equals llama_reference.forward_torch row by row
            with torch.no_grad():
                logits = forward_logits(cfg, P, inp).numpy()
            e = max(rel_err(logits[b], llref.forward_torch(cfg, tensors, tokens[b, :-1].tolist()))
                    for b in range(tokens.shape[0]))
            report(f"{tag} logits vs llama_reference.forward_torch", e < 1e-13, f"max rel err {e:.1e}")

            # 3. whole-model gradient (with accumulation and masking) vs float64 finite differences
            hp = full_hparams(dict(case["hparams"], grad_clip=0.0))
            loss, grads, _, counts = accumulated_grads(cfg, P, names, inp, tgt, hp)

            def acc_loss():
                with torch.no_grad():
                    M = hp["micro_batches"]
                    c = inp.shape[0] // M
                    return sum(float(batch_loss(cfg, P, inp[i * c:(i + 1) * c], tgt[i * c:(i + 1) * c], -1)[0])
                               for i in range(M)) / M

            rng = np.random.default_rng(7)
            worst, worst_abs, checked = 0.0, 0.0, 0
            for n in names:
                a = P[n].detach()
                flat = a.view(-1)
                g = grads[n].view(-1)
                picks = list(rng.choice(flat.numel(), size=3, replace=False))
                picks.append(int(g.abs().argmax()))
                for idx in picks:
                    old = float(flat[idx])
                    h = 1e-5
                    with torch.no_grad():
                        flat[idx] = old + h
                        fp = acc_loss()
                        flat[idx] = old - h
                        fm = acc_loss()
                        flat[idx] = old
                    fdv = (fp - fm) / (2 * h)
                    scale = float(g.abs().max())
                    worst = max(worst, abs(float(g[idx]) - fdv) / max(abs(fdv), 1e-3 * scale))
                    worst_abs = max(worst_abs, abs(float(g[idx]) - fdv))
                    checked += 1
            report(f"{tag} model gradient vs finite differences", worst < 1e-6,
                   f"{checked} coordinates (3 random + the largest per tensor), max rel err {worst:.1e} "
                   f"(max abs {worst_abs:.1e}); loss {loss:.6f}, chunk target counts {counts}")

            # 4. accumulation: equal chunks == full batch; unequal (masked) chunks = mean of chunk means
            g1 = accumulated_grads(cfg, P, names, inp, tgt, dict(hp, micro_batches=1))
            if case["mask"] is None:
                _, gm, _, _ = accumulated_grads(cfg, P, names, inp, tgt, dict(hp, micro_batches=2))
                e = max(rel_err(gm[n], g1[1][n]) for n in names)
                report(f"{tag} 2 equal micro-batches == full batch", e < 1e-12, f"max rel diff {e:.1e}")
            else:
                e = max(rel_err(grads[n], g1[1][n]) for n in names)
                report(f"{tag} unequal masked micro-batches differ from full batch (as documented)", e > 1e-3,
                       f"rel diff {e:.2e}, loss {loss:.6f} vs full-batch {g1[0]:.6f}")

            # 5. clip: ours vs torch.nn.utils.clip_grad_norm_
            norm = global_norm(grads)
            for clip in (norm / 3, norm * 2):
                ts = [torch.nn.Parameter(grads[n].clone()) for n in names]
                for t in ts:
                    t.grad = t.detach().clone()
                tn = float(torch.nn.utils.clip_grad_norm_(ts, clip))
                sc = clip_scale(norm, clip)
                e = max(rel_err(t.grad, grads[n] * sc) for t, n in zip(ts, names))
                report(f"{tag} clip at {clip:.4f} vs clip_grad_norm_", abs(tn - norm) < 1e-12 * norm and e < 1e-14,
                       f"norm {norm:.10f} vs torch {tn:.10f}, scale {sc:.6f}, grads max rel diff {e:.1e}")

            # 6. the whole loop vs torch.optim.AdamW with two param groups, LambdaLR-free (lr set per step),
            #    gradients accumulated by .backward() into .grad and clipped by clip_grad_norm_
            steps = 4
            hpf = full_hparams(case["hparams"] if case["hparams"]["grad_clip"] is not None
                               else dict(case["hparams"], grad_clip=0.8 * norm))
            res = train(cfg, tensors, tokens, hpf, steps, targets=targets)
            Q = {n: torch.nn.Parameter(torch.tensor(np.asarray(tensors[n], np.float64))) for n in names}
            dec = [Q[n] for n in names if is_decayed(n, Q[n].shape)]
            nodec = [Q[n] for n in names if not is_decayed(n, Q[n].shape)]
            opt = torch.optim.AdamW([{"params": dec, "weight_decay": hpf["weight_decay"]},
                                     {"params": nodec, "weight_decay": 0.0}],
                                    lr=hpf["lr"], betas=tuple(hpf["betas"]), eps=hpf["eps"])
            M = hpf["micro_batches"]
            c = inp.shape[0] // M
            errs = []
            for s in range(steps):
                opt.zero_grad()
                tl = 0.0
                for i in range(M):
                    li, _ = batch_loss(cfg, Q, inp[i * c:(i + 1) * c], tgt[i * c:(i + 1) * c], -1)
                    (li / M).backward()
                    tl += float(li) / M
                tn = float(torch.nn.utils.clip_grad_norm_(list(Q.values()), hpf["grad_clip"]))
                for gr in opt.param_groups:
                    gr["lr"] = lr_at(s, hpf)
                opt.step()
                errs.append(max(rel_err(Q[n].detach(), res["params"][s][n]) for n in names))
                errs.append(abs(tl - res["records"]["loss"][s]) / tl)
                errs.append(abs(tn - res["records"]["grad_norm"][s]) / tn)
            em = max(rel_err(opt.state[Q[n]]["exp_avg"], res["m"][n]) for n in names)
            ev = max(rel_err(opt.state[Q[n]]["exp_avg_sq"], res["v"][n]) for n in names)
            upd = max(rel_err(res["params"][-1][n] - res["params"][-2][n],
                              Q[n].detach().numpy() - res["params"][-2][n]) for n in names)
            report(f"{tag} {steps} steps vs torch.optim.AdamW (param groups) + backward() accumulation + clip_grad_norm_",
                   max(errs) < 1e-12 and em < 1e-12 and ev < 1e-12 and upd < 1e-10,
                   f"params/loss/norm max rel err {max(errs):.1e}, exp_avg {em:.1e}, exp_avg_sq {ev:.1e}, "
                   f"last update {upd:.1e}; clipped {res['records']['clipped']}, lr {[round(x, 6) for x in res['records']['lr']]}")

            # 7. float32 arithmetic vs float64 (how close a float32 trainer can get). The parameters agree to
            #    ~1e-5 of each tensor's largest entry; the first AdamW update itself only to ~1e-3, because
            #    lr * g / (|g| + eps) amplifies the float32 error of gradients near eps (see README).
            r32 = train(cfg, tensors, tokens, hpf, 3, dtype=torch.float32, targets=targets)
            r64 = res
            eg = max(rel_err(r32["grads0"][n], r64["grads0"][n]) for n in names)
            ep = max(rel_err(r32["params"][k][n], r64["params"][k][n]) for n in names for k in range(3))
            ed = max(rel_err(r32["params"][0][n] - tensors[n], r64["params"][0][n] - tensors[n]) for n in names)
            el = max(abs(a - b) / b for a, b in zip(r32["records"]["loss"], r64["records"]["loss"]))
            report(f"{tag} float32 run vs float64", eg < 1e-4 and ep < 1e-4 and el < 1e-5,
                   f"loss {el:.1e}, step-0 grads {eg:.1e}, params after steps 0-2 {ep:.1e}, "
                   f"step-0 update {ed:.1e} (max |a-b| / max |b| per tensor)")

    # 8. lr schedule by hand
    hp = full_hparams(dict(lr=1.0, warmup_steps=2, max_steps=6, min_lr=0.1))
    got = [lr_at(s, hp) for s in range(8)]
    want = [0.5, 1.0, 1.0, 0.1 + 0.45 * (1 + math.cos(math.pi / 4)), 0.55, 0.1 + 0.45 * (1 + math.cos(3 * math.pi / 4)),
            0.1, 0.1]
    report("lr schedule (warmup 2, max 6, lr 1, min 0.1)", np.allclose(got, want, rtol=1e-15, atol=0),
           f"{[round(x, 6) for x in got]}")
    report("lr schedule without max_steps is constant after warmup",
           [lr_at(s, full_hparams(dict(lr=2.0, warmup_steps=4))) for s in (0, 3, 4, 100)] == [0.5, 2.0, 2.0, 2.0], "ok")

    # 9. the command line end to end (3-D tokens: a different batch per step)
    with tempfile.TemporaryDirectory() as tmp:
        case = MODEL_FIXTURES[0]
        d = os.path.join(tmp, "m")
        make_fixture_model(d, case)
        rng = np.random.default_rng(3)
        tok = rng.integers(0, 64, size=(2, 2, 9)).astype(np.int32)
        np.save(os.path.join(tmp, "tokens.npy"), tok)
        with open(os.path.join(tmp, "hp.json"), "w") as f:
            json.dump(dict(lr=1e-2, weight_decay=0.1, micro_batches=2, grad_clip=1.0), f)
        out = os.path.join(tmp, "out")
        main(["--model", d, "--tokens", os.path.join(tmp, "tokens.npy"), "--hparams", os.path.join(tmp, "hp.json"),
              "--out", out, "--steps", "3"])
        with open(os.path.join(out, "result.json")) as f:
            r = json.load(f)
        cfg, tensors = llref.load_model(d)
        names = param_names(cfg, tensors)
        P = {n: torch.tensor(np.asarray(tensors[n], np.float64), requires_grad=True) for n in names}
        l1 = float(batch_loss(cfg, P, torch.from_numpy(tok[1, :, :-1].astype(np.int64)),
                              torch.from_numpy(tok[1, :, 1:].astype(np.int64)), -1)[0])
        p2 = llref.read_safetensors(os.path.join(out, "params_step2.safetensors"))
        g0 = llref.read_safetensors(os.path.join(out, "grads_step0.safetensors"))
        report("command line: files, keys, batch k % S", sorted(os.listdir(out)) == sorted(r["files"] + ["result.json"])
               and sorted(p2) == sorted(names) and sorted(g0) == sorted(names) and len(r["loss"]) == 3
               and p2[EMBED].dtype == np.float32,
               f"{len(names)} tensors per file; step-1 loss {r['loss'][1]:.6f} (batch 1 mean of chunk losses), "
               f"batch 1 full loss {l1:.6f}")
        report("tokens with a negative input id are rejected",
               _raises(lambda: batches(np.array([[1, -1, 2]]), None, -1)), "ok")
        report("unknown hparams key is rejected", _raises(lambda: full_hparams({"learning_rate": 1})), "ok")
    print("self-test", "passed" if ok else "FAILED")
    return 0 if ok else 1


def _raises(fn):
    try:
        fn()
    except ValueError:
        return True
    return False


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="folder with config.json and model.safetensors")
    ap.add_argument("--tokens", help="int32 .npy [B, T+1] (or [S, B, T+1])")
    ap.add_argument("--targets", help="optional int .npy [B, T] (or [S, B, T]); ignore_index marks masked targets")
    ap.add_argument("--hparams", help="JSON file (keys: " + ", ".join(HPARAM_DEFAULTS) + ")")
    ap.add_argument("--out", help="output folder")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--save-float64", action="store_true", help="write the safetensors outputs as F64 (default F32)")
    ap.add_argument("--starts", help="optional int .npy [B, T]: packed conversations, per position the start of its own")
    ap.add_argument("--lora-init", metavar="PEFT_DIR", help="train these LoRA adapters (their starting values) over the frozen base")
    ap.add_argument("--weights-through", metavar="TYPE", help="round every base matrix through this GGUF type first (Q8_0, Q4_0, ...)")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--write-fixtures", metavar="DIR")
    a = ap.parse_args(argv)
    if a.self_test:
        return self_test()
    if a.write_fixtures:
        write_fixtures(a.write_fixtures)
        return 0
    if not (a.model and a.tokens and a.hparams and a.out):
        ap.error("--model, --tokens, --hparams and --out are required (or --self-test / --write-fixtures)")
    if a.steps < 1:
        ap.error("--steps must be at least 1")
    r = run_cli(a.model, a.tokens, a.hparams, a.out, a.steps, a.dtype, a.targets, a.save_float64, a.starts, a.lora_init, a.weights_through)
    print(f"{a.out}: loss {r['loss']}, grad_norm {r['grad_norm']}, lr {r['lr']}, clipped {r['clipped']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
