#!/usr/bin/python3
"""Compares the arrays (parameters, AdamW moments) of Duet training checkpoints and the losses of their runs.

Usage: ckpt_compare.py RUN_A RUN_B [RUN_C ...]   (run folders; their newest checkpoints are compared with RUN_A's)
Prints one JSON line per run: whether every array is bit-identical to RUN_A's, the largest relative difference,
and whether the train/validation losses in metrics.jsonl are equal. Exit 1 if any differs.
The header (config, with its thread count) is not compared: only what the run computed.
Format (src/Duet.Training/Checkpoints.cs): "DUETCKPT" | u32 version | u32 header bytes | header | u32 arrays |
per array: u16 name bytes | name | i64 floats | floats ... | SHA-256.
"""
import json, os, struct, sys
import numpy as np


def newest(run):
    d = os.path.join(run, "checkpoints")
    return os.path.join(d, sorted(f for f in os.listdir(d) if f.endswith(".ckpt"))[-1])


def arrays(path):
    b = open(path, "rb").read()
    assert b[:8] == b"DUETCKPT", path
    hlen = struct.unpack_from("<I", b, 12)[0]
    header = json.loads(b[16:16 + hlen])
    at = 16 + hlen
    n = struct.unpack_from("<I", b, at)[0]; at += 4
    out = {}
    for _ in range(n):
        ln = struct.unpack_from("<H", b, at)[0]; at += 2
        name = b[at:at + ln].decode(); at += ln
        count = struct.unpack_from("<q", b, at)[0]; at += 8
        out[name] = np.frombuffer(b, dtype="<f4", count=count, offset=at); at += 4 * count
    return header, out


def losses(run):
    rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
    return [(r["kind"], r["step"], r.get("loss"), r.get("val_loss")) for r in rows]


def main():
    runs = sys.argv[1:]
    ha, a = arrays(newest(runs[0]))
    la = losses(runs[0])
    bad = False
    for run in runs[1:]:
        hb, b = arrays(newest(run))
        same = hb["step"] == ha["step"] and a.keys() == b.keys() and all(np.array_equal(a[k].view("<u4"), b[k].view("<u4")) for k in a)
        rel = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]) / np.maximum(np.abs(a[k].astype(np.float64)), 1e-30))) for k in a)
        same_losses = losses(run) == la
        bad |= not (same and same_losses)
        print(json.dumps({"run": run, "reference": runs[0], "step": hb["step"], "bit_identical": bool(same),
                          "max_rel_diff": rel, "losses_equal": same_losses}))
    sys.exit(1 if bad else 0)


main()
