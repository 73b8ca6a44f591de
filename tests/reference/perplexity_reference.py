#!/usr/bin/python3
"""Independent float64 PyTorch reference for llama-perplexity's method (examples/perplexity in llama.cpp).

Written from the method's description, not from Duet's C# code. The model is llama_reference.py's float64
LLaMA (imported, not copied), read from an HF folder (config.json + model.safetensors).

    /usr/bin/python3 tests/reference/perplexity_reference.py --model DIR --ids-file IDS --ctx 32 [--bos 1] [--chunks N] --out result.json

Method, given the whole text's token ids (BOS first where the vocabulary adds one):
    chunks = min(N, len(ids) // ctx); chunk c holds ids[c*ctx : (c+1)*ctx], run from an empty cache, its first
    token replaced by BOS when --bos is given; first = ctx // 2; for j in [first, ctx - 2] the negative
    log-likelihood of ids[c*ctx + j + 1] under softmax(logits at position j). With the n NLLs of all chunks:
    mean = sum/n, PPL = exp(mean), uncertainty = PPL * sqrt((sum(nll^2)/n - mean^2) / (n - 1)).
Output JSON: chunks, scored, nll_sum, ppl, ppl_err, and nll (every scored token's NLL, in order).
"""
import argparse, json, math, os, sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as llref  # noqa: E402


def perplexity(cfg, tensors, ids, ctx, bos=None, chunks=None):
    import torch
    n_chunks = len(ids) // ctx
    if chunks is not None:
        n_chunks = min(chunks, n_chunks)
    if len(ids) < 2 * ctx:
        raise ValueError(f"{len(ids)} tokens: at least {2 * ctx} are needed for a context of {ctx}")
    first = ctx // 2
    nlls = []
    for c in range(n_chunks):
        chunk = list(ids[c * ctx:(c + 1) * ctx])
        if bos is not None:
            chunk[0] = bos
        logits = torch.from_numpy(np.asarray(llref.forward_torch(cfg, tensors, chunk), dtype=np.float64))
        logp = torch.log_softmax(logits, dim=-1)
        for j in range(first, ctx - 1):
            nlls.append(-float(logp[j, ids[c * ctx + j + 1]]))
    n = len(nlls)
    s = math.fsum(nlls)
    mean = s / n
    var = math.fsum(x * x for x in nlls) / n - mean * mean
    ppl = math.exp(mean)
    return {"chunks": n_chunks, "scored": n, "nll_sum": s, "ppl": ppl,
            "ppl_err": ppl * math.sqrt(var / (n - 1)) if var > 0 else 0.0, "nll": nlls}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="HF folder: config.json and model.safetensors")
    ap.add_argument("--ids-file", required=True, help="token ids separated by whitespace")
    ap.add_argument("--ctx", type=int, required=True)
    ap.add_argument("--bos", type=int, default=None, help="BOS id put in place of each chunk's first token")
    ap.add_argument("--chunks", type=int, default=None)
    ap.add_argument("--out", required=True, help="result JSON")
    a = ap.parse_args(argv)
    ids = [int(t) for t in open(a.ids_file).read().split()]
    cfg, tensors = llref.load_model(a.model)
    r = perplexity(cfg, tensors, ids, a.ctx, a.bos, a.chunks)
    with open(a.out, "w") as f:
        json.dump(r, f)
    print(f"PPL = {r['ppl']:.6f} +/- {r['ppl_err']:.6f} over {r['chunks']} chunks, {r['scored']} tokens")


if __name__ == "__main__":
    main()
