#!/usr/bin/python3
"""PyTorch peer of `duet bench-train`: whole training steps of the same LLaMA shape on the CPU.

The same model as Duet trains (HF LlamaForCausalLM semantics: RMSNorm, rotate_half RoPE, causal GQA
attention, SwiGLU, untied or tied head), float32, the same batch and sequence length, cross-entropy,
backward, global-norm clipping and torch.optim.AdamW; random tokens. Debian's torch 1.13 has no
scaled_dot_product_attention, so attention is written out (as in HF's eager path).

    /usr/bin/python3 bench/train_pytorch.py --preset 15m --batch 8 --seq 256 --vocab 32000 --threads 2 --steps 10
    /usr/bin/python3 bench/train_pytorch.py --preset tinyllama --lora 16 --batch 1 --seq 256 --threads 2 --steps 3

With --lora R: PEFT's LoRA (y = x W^T + (alpha/r) (x A^T) B^T, alpha = 2r, on q, k, v, o, gate, up, down) over the
frozen float32 base; only A and B train (AdamW, no clipping beyond the same global norm). PyTorch on a CPU has no
4-bit base (bitsandbytes is CUDA-only), so its base is float32: peak RSS is reported too.

With WORLD_SIZE > 1 in the environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, as torchrun sets them): data-parallel
over torch.distributed (gloo, DistributedDataParallel with its bucketed all-reduce overlapped with the backward); each
rank runs batch / WORLD_SIZE rows and rank 0 prints the line, tokens/s of the global batch (bench/train_mpi.sh peer-ddp).

Prints one JSON line: tokens/s (median over the timed steps after warm-up), ms per step, threads, shape.
Install libopenblas0-pthread first (BENCHMARKS.md): without it Debian's torch uses the reference BLAS.
"""
import argparse, json, math, resource, statistics, time
import torch
import torch.nn.functional as F

PRESETS = {
    "15m": dict(dim=288, layers=6, heads=6, kv_heads=6, ffn=768, tied=True),
    "duet-tiny": dict(dim=256, layers=4, heads=8, kv_heads=4, ffn=704, tied=True),
    "tinyllama": dict(dim=2048, layers=22, heads=32, kv_heads=4, ffn=5632, tied=False),
}


class LoraLinear(torch.nn.Module):
    """PEFT's LoRA layer: base(x) + scale * B(A(x)); A kaiming-uniform, B zero (PEFT's init)."""
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base, self.scale = base, alpha / r
        self.a = torch.nn.Linear(base.in_features, r, bias=False)
        self.b = torch.nn.Linear(r, base.out_features, bias=False)
        torch.nn.init.kaiming_uniform_(self.a.weight, a=math.sqrt(5))
        torch.nn.init.zeros_(self.b.weight)

    def forward(self, x):
        return self.base(x) + self.scale * self.b(self.a(x))


class Llama(torch.nn.Module):
    def __init__(self, vocab, dim, layers, heads, kv_heads, ffn, tied, seq, theta=10000.0):
        super().__init__()
        self.h, self.kvh, self.hd = heads, kv_heads, dim // heads
        self.emb = torch.nn.Embedding(vocab, dim)
        self.layers = torch.nn.ModuleList()
        for _ in range(layers):
            l = torch.nn.Module()
            l.n1 = torch.nn.Parameter(torch.ones(dim)); l.n2 = torch.nn.Parameter(torch.ones(dim))
            l.q = torch.nn.Linear(dim, heads * self.hd, bias=False); l.k = torch.nn.Linear(dim, kv_heads * self.hd, bias=False)
            l.v = torch.nn.Linear(dim, kv_heads * self.hd, bias=False); l.o = torch.nn.Linear(heads * self.hd, dim, bias=False)
            l.g = torch.nn.Linear(dim, ffn, bias=False); l.u = torch.nn.Linear(dim, ffn, bias=False); l.d = torch.nn.Linear(ffn, dim, bias=False)
            self.layers.append(l)
        self.norm = torch.nn.Parameter(torch.ones(dim))
        self.head = None if tied else torch.nn.Linear(dim, vocab, bias=False)
        for p in self.parameters():
            if p.dim() == 2: torch.nn.init.normal_(p, std=0.02)
        inv = 1.0 / theta ** (torch.arange(0, self.hd, 2).float() / self.hd)
        ang = torch.outer(torch.arange(seq).float(), inv)
        self.register_buffer("cos", torch.cat([ang.cos(), ang.cos()], -1))
        self.register_buffer("sin", torch.cat([ang.sin(), ang.sin()], -1))
        self.register_buffer("mask", torch.full((seq, seq), float("-inf")).triu(1))

    @staticmethod
    def rms(x, w, eps=1e-5):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def rope(self, x):  # x [B, heads, T, hd]
        half = x.shape[-1] // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], -1)
        return x * self.cos + rot * self.sin

    def forward(self, ids):
        b, t = ids.shape
        x = self.emb(ids)
        for l in self.layers:
            n = self.rms(x, l.n1)
            q = self.rope(l.q(n).view(b, t, self.h, self.hd).transpose(1, 2))
            k = self.rope(l.k(n).view(b, t, self.kvh, self.hd).transpose(1, 2))
            v = l.v(n).view(b, t, self.kvh, self.hd).transpose(1, 2)
            rep = self.h // self.kvh
            if rep > 1: k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + self.mask[:t, :t]
            a = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)
            x = x + l.o(a)
            n = self.rms(x, l.n2)
            x = x + l.d(F.silu(l.g(n)) * l.u(n))
        x = self.rms(x, self.norm)
        return x @ self.emb.weight.T if self.head is None else self.head(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="15m", choices=PRESETS)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--lora", type=int, default=0, metavar="R", help="LoRA of rank R over the frozen base instead of full training")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    import os
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", rank=rank, world_size=world)
        assert a.batch % world == 0, "the batch must divide among the ranks"
    p = PRESETS[a.preset]
    with torch.no_grad():
        m = Llama(a.vocab, p["dim"], p["layers"], p["heads"], p["kv_heads"], p["ffn"], p["tied"], a.seq)
    if a.lora:
        for q in m.parameters(): q.requires_grad_(False)
        for l in m.layers:
            for name in ("q", "k", "v", "o", "g", "u", "d"):
                setattr(l, name, LoraLinear(getattr(l, name), a.lora, 2 * a.lora))
        trained = [q for q in m.parameters() if q.requires_grad]
        opt = torch.optim.AdamW(trained, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    else:
        decay = [q for n, q in m.named_parameters() if q.dim() == 2 and not n.startswith("emb")]
        rest = [q for n, q in m.named_parameters() if not (q.dim() == 2 and not n.startswith("emb"))]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
        trained = list(m.parameters())
    model = m
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(m)
    rows = a.batch // world
    g = torch.Generator().manual_seed(1 + rank)
    times = []
    for s in range(a.warmup + a.steps):
        ids = torch.randint(0, a.vocab, (rows, a.seq + 1), generator=g)
        t0 = time.perf_counter()
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        if s >= a.warmup: times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    if world > 1:
        t = torch.tensor([med]); torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX); med = float(t)
        if rank != 0: return
    print(json.dumps({"peer": "pytorch" if world == 1 else f"pytorch-ddp-gloo-{world}", "torch": torch.__version__, "preset": a.preset, "vocab": a.vocab, "batch": a.batch, "seq": a.seq,
                      "threads": a.threads, "step_ms": med * 1e3, "tokens_per_s": a.batch * a.seq / med,
                      "params": sum(q.numel() for q in m.parameters()), "trained": sum(q.numel() for q in trained), "lora": a.lora,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "loss": float(loss)}))


if __name__ == "__main__":
    main()
