#!/usr/bin/python3
"""numpy reference of ggml's block formats (GGUF tensor types): dequantize and reference quantize.

Independent reference side for Duet's engine tests; written from ggml's definitions
(ggml/src/ggml-common.h block structs; ggml/src/ggml-quants.c dequantize_row_* and
quantize_row_*_ref), not from Duet's C# code. Needs only numpy (Debian python3-numpy).

    /usr/bin/python3 tests/reference/ggml_quants.py --self-test
    /usr/bin/python3 tests/reference/ggml_quants.py --write-fixtures tests/reference/fixtures/engine/quants
    /usr/bin/python3 tests/reference/ggml_quants.py --check-gguf-py [/work/llama.cpp/gguf-py]
    /usr/bin/python3 tests/reference/ggml_quants.py --check-libggml [/work/llama.cpp/build/bin/libggml-base.so]

Library use: quantize(type, x) -> uint8 bytes, dequantize(type, data, n) -> float32.
Types: F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K (quantize and dequantize).

Arithmetic model. The quantizers reproduce the C reference evaluated as written, every
float operation rounded to float32 (C's FLT_EVAL_METHOD 0, as on x86-64 SSE and in .NET),
sums accumulated in the C loop order, and no fused multiply-add. That is how ggml-base is
built by llama.cpp's CMake (no -march flags for ggml-base), and what --check-libggml
compares against. A build that lets the compiler contract a*b+c into an FMA (GCC's default
-ffp-contract=fast with -march=native on FMA hardware) can differ in rare ties; gguf-py's
Q4_0/Q5_0 quantizers emulate such a contracted x*id + 8.5f (see quantize(..., fma=True)).
  nearest_int(f): ggml adds 12582912.f (1.5 * 2^23) and takes the low mantissa bits, i.e.
    round half to even for |f| < 2^22; emulated bit for bit here.
  GGML_FP32_TO_FP16: IEEE round to nearest even (F16C _cvtss_sh(x, 0) or the software
    ggml_compute_fp32_to_fp16, identical), numpy's float32 -> float16 cast.
  GGML_FP32_TO_BF16 (ggml_compute_fp32_to_bf16): NaN -> (u >> 16) | 64, else
    (u + 0x7fff + ((u >> 16) & 1)) >> 16.
  roundf (Q8_0): half away from zero.  (int8_t)/(uint8_t) casts of floats: truncation.
"""
import argparse
import json
import os
import sys

import numpy as np

F32 = np.float32
QK_K = 256
GROUP_MAX_EPS = F32(1e-15)

# name: (ggml_type id, elements per block, bytes per block)   (ggml.h enum ggml_type, ggml-common.h)
TYPES = {
    "F32": (0, 1, 4),
    "F16": (1, 1, 2),
    "Q4_0": (2, 32, 18),
    "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22),
    "Q5_1": (7, 32, 24),
    "Q8_0": (8, 32, 34),
    "Q4_K": (12, 256, 144),
    "Q5_K": (13, 256, 176),
    "Q6_K": (14, 256, 210),
    "BF16": (30, 1, 2),
}
QUANT_TYPES = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"]


# ---------------------------------------------------------------------------------------------
# scalar helpers (all vectorised over blocks)

def fp16_bits(x):
    """GGML_FP32_TO_FP16: float32 -> IEEE half bits, round to nearest even."""
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=F32).astype(np.float16).view(np.uint16)


def fp16_to_f32(bits):
    """GGML_FP16_TO_FP32 (exact)."""
    return np.ascontiguousarray(bits, dtype=np.uint16).view(np.float16).astype(F32)


def fp16_bits_manual(x):
    """The same conversion written out with integer operations (used by --self-test to
    check numpy's cast): round to nearest even, subnormals, overflow to inf, NaN quiet."""
    u = np.asarray(x, dtype=F32).view(np.uint32).astype(np.int64)
    sign = (u >> 16) & 0x8000
    e = (u >> 23) & 0xFF
    m = u & 0x7FFFFF
    out = np.zeros(u.shape, dtype=np.int64)
    nan = (e == 0xFF) & (m != 0)
    inf = (e == 0xFF) & (m == 0)
    he = e - 127 + 15                        # half exponent for normals
    # normal half range: he in [1, 30]; round mantissa 23 -> 10 bits (may carry into exponent)
    mant = m | 0x800000                      # 24-bit significand
    shift = np.where(he >= 1, 13, np.minimum(13 + 1 - he, 40))   # subnormal: extra right shift
    q = mant >> shift
    rem = mant - (q << shift)
    half = np.int64(1) << (shift - 1)
    q = q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))
    normal_val = np.where(he >= 1, ((he - 1) << 10) + q, q)  # carry propagates naturally
    # for he >= 1: value bits = (he << 10) + (q - 1024) = ((he - 1) << 10) + q
    normal_val = np.where(he >= 31, 0x7C00, normal_val)
    normal_val = np.minimum(normal_val, 0x7C00)
    out = np.where(e == 0, 0, normal_val)     # float32 zero/subnormal -> half zero
    out = np.where(inf, 0x7C00, out)
    out = np.where(nan, 0x7E00 | (m >> 13), out)
    return (out | sign).astype(np.uint16)


def bf16_bits(x):
    """ggml_compute_fp32_to_bf16."""
    u = np.asarray(x, dtype=F32).view(np.uint32).astype(np.uint64)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r = (u + (0x7FFF + ((u >> 16) & 1))) >> 16
    return np.where(nan, (u >> 16) | 64, r).astype(np.uint16)


def bf16_to_f32(bits):
    return (np.ascontiguousarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(F32)


_MAGIC = F32(12582912.0)


def nearest_int(v):
    """ggml nearest_int: float val = fval + 12582912.f; return (bits(val) & 0x7fffff) - 0x400000."""
    v = np.asarray(v, dtype=F32)
    with np.errstate(over="ignore", invalid="ignore"):
        s = (v + _MAGIC).astype(F32)
    return ((s.view(np.int32) & 0x007FFFFF) - 0x00400000).astype(np.int64)


def roundf(v):
    """C roundf: nearest, halves away from zero (exact for float32)."""
    v = np.asarray(v, dtype=F32)
    t = np.trunc(v)
    frac = v - t
    return (t + np.where(np.abs(frac) >= F32(0.5), np.sign(v), F32(0))).astype(F32)


def _trunc_int(v):
    """(int) of a float: truncation toward zero (values here are small)."""
    with np.errstate(invalid="ignore"):
        return np.trunc(np.asarray(v, dtype=F32)).astype(np.int64)


def _recip(d):
    """C: d ? 1.0f/d : 0.0f."""
    with np.errstate(divide="ignore"):
        return np.where(d != 0, F32(1) / d, F32(0)).astype(F32)


def _abs_max_signed(xb):
    """C: amax = 0, max = 0; for v: if (amax < fabsf(v)) { amax = fabsf(v); max = v; }  ->(amax, max)."""
    amax = np.zeros(xb.shape[0], dtype=F32)
    mx = np.zeros(xb.shape[0], dtype=F32)
    for j in range(xb.shape[1]):
        a = np.abs(xb[:, j])
        upd = amax < a
        amax = np.where(upd, a, amax)
        mx = np.where(upd, xb[:, j], mx)
    return amax, mx


def _min_max(xb):
    """C: min = FLT_MAX, max = -FLT_MAX; if (v < min) min = v; if (v > max) max = v."""
    mn = np.full(xb.shape[0], np.finfo(F32).max, dtype=F32)
    mx = np.full(xb.shape[0], -np.finfo(F32).max, dtype=F32)
    for j in range(xb.shape[1]):
        v = xb[:, j]
        mn = np.where(v < mn, v, mn)
        mx = np.where(v > mx, v, mx)
    return mn, mx


def _u16_bytes(bits):
    return np.ascontiguousarray(bits, dtype="<u2").view(np.uint8).reshape(-1, 2)


def _field_u16(blocks, off):
    return np.ascontiguousarray(blocks[:, off:off + 2]).view("<u2").reshape(-1)


# ---------------------------------------------------------------------------------------------
# 32-element block types

# block_q8_0 (34 bytes): ggml_half d; int8_t qs[32];           x[j] = qs[j] * d
def dequant_q8_0(b):
    d = fp16_to_f32(_field_u16(b, 0))[:, None]
    qs = b[:, 2:34].view(np.int8).astype(F32)
    return qs * d


def quant_q8_0(xb, fma=False):
    amax, _ = _abs_max_signed(xb)          # MAX(amax, fabsf(v)) gives the same amax
    d = (amax / F32(127)).astype(F32)      # amax / ((1 << 7) - 1)
    idv = _recip(d)
    q = roundf(xb * idv[:, None]).astype(np.int64)
    return np.concatenate([_u16_bytes(fp16_bits(d)), (q & 0xFF).astype(np.uint8)], axis=1)


# block_q4_0 (18 bytes): ggml_half d; uint8_t qs[16];
#   x[j] = ((qs[j] & 0xF) - 8) * d,  x[j + 16] = ((qs[j] >> 4) - 8) * d,  j < 16
def dequant_q4_0(b):
    d = fp16_to_f32(_field_u16(b, 0))[:, None]
    qs = b[:, 2:18].astype(np.int32)
    q = np.concatenate([(qs & 0xF) - 8, (qs >> 4) - 8], axis=1)
    return q.astype(F32) * d


def _scaled_plus(xb, idv, c, fma):
    """x*id + c as float32: two roundings (C as written), or one (FMA contraction, as gguf-py)."""
    if fma:
        return (xb.astype(np.float64) * idv.astype(np.float64)[:, None] + float(c)).astype(F32)
    return (xb * idv[:, None]).astype(F32) + F32(c)


def quant_q4_0(xb, fma=False):
    _, mx = _abs_max_signed(xb)
    d = (mx / F32(-8)).astype(F32)
    idv = _recip(d)
    q = np.minimum(15, _trunc_int(_scaled_plus(xb, idv, 8.5, fma)))   # MIN(15, (int8_t)(x0 + 8.5f))
    q &= 0xFF
    qs = (q[:, :16] & 0xFF) | ((q[:, 16:] << 4) & 0xFF)
    return np.concatenate([_u16_bytes(fp16_bits(d)), qs.astype(np.uint8)], axis=1)


# block_q4_1 (20 bytes): ggml_half d; ggml_half m; uint8_t qs[16];
#   x[j] = (qs[j] & 0xF) * d + m,  x[j + 16] = (qs[j] >> 4) * d + m
def dequant_q4_1(b):
    d = fp16_to_f32(_field_u16(b, 0))[:, None]
    m = fp16_to_f32(_field_u16(b, 2))[:, None]
    qs = b[:, 4:20].astype(np.int32)
    q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(F32)
    return (q * d).astype(F32) + m


def quant_q4_1(xb, fma=False):
    mn, mx = _min_max(xb)
    d = ((mx - mn) / F32(15)).astype(F32)
    idv = _recip(d)
    v = (xb - mn[:, None]).astype(F32)
    q = np.minimum(15, _trunc_int(_scaled_plus(v, idv, 0.5, fma))) & 0xFF
    qs = (q[:, :16]) | ((q[:, 16:] << 4) & 0xFF)
    return np.concatenate([_u16_bytes(fp16_bits(d)), _u16_bytes(fp16_bits(mn)), qs.astype(np.uint8)], axis=1)


# block_q5_0 (22 bytes): ggml_half d; uint8_t qh[4]; uint8_t qs[16];
#   qh read as a little-endian uint32; element j (< 16) = (qs[j] & 0xF) | bit j of qh << 4,
#   element j + 16 = (qs[j] >> 4) | bit (j + 16) of qh << 4;  x = (q - 16) * d
def _q5_values(qh_bytes, qs):
    qh = np.ascontiguousarray(qh_bytes).view("<u4").reshape(-1, 1).astype(np.int64)
    bits = (qh >> np.arange(32)[None, :]) & 1
    lo = np.concatenate([qs & 0xF, qs >> 4], axis=1)
    return lo | (bits << 4)


def dequant_q5_0(b):
    d = fp16_to_f32(_field_u16(b, 0))[:, None]
    q = _q5_values(b[:, 2:6], b[:, 6:22].astype(np.int64))
    return (q - 16).astype(F32) * d


def _q5_pack(q):
    q = q & 0xFF
    qs = ((q[:, :16] & 0x0F) | ((q[:, 16:] & 0x0F) << 4)).astype(np.uint8)
    hb = (q >> 4) & 1
    qh = (hb << np.arange(32)[None, :]).sum(axis=1).astype("<u4")
    return qh.view(np.uint8).reshape(-1, 4), qs


def quant_q5_0(xb, fma=False):
    _, mx = _abs_max_signed(xb)
    d = (mx / F32(-16)).astype(F32)
    idv = _recip(d)
    q = np.minimum(31, _trunc_int(_scaled_plus(xb, idv, 16.5, fma)))  # MIN(31, (int8_t)(x0 + 16.5f))
    qh, qs = _q5_pack(q)
    return np.concatenate([_u16_bytes(fp16_bits(d)), qh, qs], axis=1)


# block_q5_1 (24 bytes): ggml_half d; ggml_half m; uint8_t qh[4]; uint8_t qs[16];   x = q * d + m
def dequant_q5_1(b):
    d = fp16_to_f32(_field_u16(b, 0))[:, None]
    m = fp16_to_f32(_field_u16(b, 2))[:, None]
    q = _q5_values(b[:, 4:8], b[:, 8:24].astype(np.int64))
    return (q.astype(F32) * d).astype(F32) + m


def quant_q5_1(xb, fma=False):
    mn, mx = _min_max(xb)
    d = ((mx - mn) / F32(31)).astype(F32)
    idv = _recip(d)
    v = (xb - mn[:, None]).astype(F32)
    q = _trunc_int(_scaled_plus(v, idv, 0.5, fma))                     # (uint8_t)(x0 + 0.5f), no MIN
    qh, qs = _q5_pack(q)
    return np.concatenate([_u16_bytes(fp16_bits(d)), _u16_bytes(fp16_bits(mn)), qh, qs], axis=1)


# ---------------------------------------------------------------------------------------------
# K-quant helpers (ggml-quants.c make_qkx2_quants, make_qx_quants, get_scale_min_k4)

def make_qkx2_quants(x, w, nmax, rmin, rdelta, nstep, use_mad=False):
    """x, w: [N, n] float32. Returns (scale [N], the_min [N] (= -min, >= 0), L [N, n] in 0..nmax)."""
    N, n = x.shape
    err = np.errstate(divide="ignore", invalid="ignore", over="ignore")
    err.__enter__()
    try:
        mn = x[:, 0].copy()
        mx = x[:, 0].copy()
        sum_w = w[:, 0].copy()
        sum_x = (sum_w * x[:, 0]).astype(F32)
        for i in range(1, n):
            xi = x[:, i]
            mn = np.where(xi < mn, xi, mn)
            mx = np.where(xi > mx, xi, mx)
            sum_w = (sum_w + w[:, i]).astype(F32)
            sum_x = (sum_x + (w[:, i] * xi).astype(F32)).astype(F32)
        mn = np.where(mn > 0, F32(0), mn).astype(F32)
        degenerate = mx == mn
        iscale = (F32(nmax) / (mx - mn)).astype(F32)
        scale = (F32(1) / iscale).astype(F32)
        L = np.zeros((N, n), dtype=np.int64)
        best = np.zeros(N, dtype=F32)
        for i in range(n):
            l = np.clip(nearest_int(iscale * (x[:, i] - mn)), 0, nmax)
            L[:, i] = l
            diff = ((scale * l.astype(F32)).astype(F32) + mn).astype(F32) - x[:, i]
            diff = np.abs(diff) if use_mad else (diff * diff).astype(F32)
            best = (best + (w[:, i] * diff).astype(F32)).astype(F32)
        for step in range(nstep + 1) if nstep >= 1 else ():
            num = (F32(rmin) + F32(rdelta) * F32(step)) + F32(nmax)      # rmin + rdelta*is + nmax
            iscale = (F32(num) / (mx - mn)).astype(F32)
            sum_l = np.zeros(N, dtype=F32)
            sum_l2 = np.zeros(N, dtype=F32)
            sum_xl = np.zeros(N, dtype=F32)
            Laux = np.empty((N, n), dtype=np.int64)
            for i in range(n):
                l = np.clip(nearest_int(iscale * (x[:, i] - mn)), 0, nmax)
                Laux[:, i] = l
                lf = l.astype(F32)
                wl = (w[:, i] * lf).astype(F32)
                sum_l = (sum_l + wl).astype(F32)
                sum_l2 = (sum_l2 + (wl * lf).astype(F32)).astype(F32)
                sum_xl = (sum_xl + (wl * x[:, i]).astype(F32)).astype(F32)
            D = ((sum_w * sum_l2).astype(F32) - (sum_l * sum_l).astype(F32)).astype(F32)
            this_scale = (((sum_w * sum_xl).astype(F32) - (sum_x * sum_l).astype(F32)) / D).astype(F32)
            this_min = (((sum_l2 * sum_x).astype(F32) - (sum_l * sum_xl).astype(F32)) / D).astype(F32)
            pos = this_min > 0
            this_scale = np.where(pos, (sum_xl / sum_l2).astype(F32), this_scale)
            this_min = np.where(pos, F32(0), this_min)
            cur = np.zeros(N, dtype=F32)
            for i in range(n):
                diff = ((this_scale * Laux[:, i].astype(F32)).astype(F32) + this_min).astype(F32) - x[:, i]
                diff = np.abs(diff) if use_mad else (diff * diff).astype(F32)
                cur = (cur + (w[:, i] * diff).astype(F32)).astype(F32)
            upd = (D > 0) & (cur < best) & ~degenerate
            L = np.where(upd[:, None], Laux, L)
            best = np.where(upd, cur, best)
            scale = np.where(upd, this_scale, scale)
            mn = np.where(upd, this_min, mn)
        L = np.where(degenerate[:, None], 0, L)
        scale = np.where(degenerate, F32(0), scale).astype(F32)
        return scale, (-mn).astype(F32), L
    finally:
        err.__exit__(None, None, None)


def make_qx_quants_rmse1(x, nmax):
    """make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL): weights x*x.
    x: [N, n] float32. Returns (scale [N], L [N, n] in 0..2*nmax-1)."""
    N, n = x.shape
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        amax = np.zeros(N, dtype=F32)
        mx = np.zeros(N, dtype=F32)
        for i in range(n):                                   # if (ax > amax) { amax = ax; max = x[i]; }
            a = np.abs(x[:, i])
            upd = a > amax
            amax = np.where(upd, a, amax)
            mx = np.where(upd, x[:, i], mx)
        zero = amax < GROUP_MAX_EPS
        w = (x * x).astype(F32)

        def sums(iscale):
            sumlx = np.zeros(N, dtype=F32)
            suml2 = np.zeros(N, dtype=F32)
            Ls = np.empty((N, n), dtype=np.int64)
            for i in range(n):
                l = np.clip(nearest_int(iscale * x[:, i]), -nmax, nmax - 1)
                Ls[:, i] = l + nmax
                lf = l.astype(F32)
                sumlx = (sumlx + ((w[:, i] * x[:, i]).astype(F32) * lf).astype(F32)).astype(F32)
                suml2 = (suml2 + ((w[:, i] * lf).astype(F32) * lf).astype(F32)).astype(F32)
            return sumlx, suml2, Ls

        iscale = (F32(-nmax) / mx).astype(F32)
        sumlx, suml2, L = sums(iscale)
        scale = np.where(suml2 != 0, (sumlx / suml2).astype(F32), F32(0)).astype(F32)
        best = (scale * sumlx).astype(F32)
        for step in range(-9, 10):
            if step == 0:
                continue
            num = -(F32(nmax) + F32(0.1) * F32(step))        # -(nmax + 0.1f*is)
            iscale = (F32(num) / mx).astype(F32)
            sumlx, suml2, Ls = sums(iscale)
            upd = (suml2 > 0) & ((sumlx * sumlx).astype(F32) > (best * suml2).astype(F32))
            L = np.where(upd[:, None], Ls, L)
            scale = np.where(upd, (sumlx / suml2).astype(F32), scale)
            best = np.where(upd, (scale * sumlx).astype(F32), best)
        L = np.where(zero[:, None], 0, L)
        scale = np.where(zero, F32(0), scale).astype(F32)
        return scale, L


def get_scale_min_k4(j, q):
    """q: [N, 12] packed 6-bit scales/mins of Q4_K / Q5_K. Returns (sc, m) for sub-block j (0..7):
    j < 4: sc = q[j] & 63, m = q[j+4] & 63
    else:  sc = (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4),  m = (q[j+4] >> 4) | ((q[j] >> 6) << 4)"""
    q = q.astype(np.int64)
    if j < 4:
        return q[:, j] & 63, q[:, j + 4] & 63
    return (q[:, j + 4] & 0xF) | ((q[:, j - 4] >> 6) << 4), (q[:, j + 4] >> 4) | ((q[:, j] >> 6) << 4)


def _pack_scale_min_k4(ls, lm):
    """Inverse of get_scale_min_k4 as quantize_row_q4_K_ref writes it. ls, lm: [N, 8] in 0..63."""
    N = ls.shape[0]
    s = np.zeros((N, 12), dtype=np.int64)
    for j in range(8):
        if j < 4:
            s[:, j] = ls[:, j]
            s[:, j + 4] = lm[:, j]
        else:
            s[:, j + 4] = (ls[:, j] & 0xF) | ((lm[:, j] & 0xF) << 4)
            s[:, j - 4] |= (ls[:, j] >> 4) << 6
            s[:, j] |= (lm[:, j] >> 4) << 6
    return (s & 0xFF).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Q4_K / Q5_K

# block_q4_K (144 bytes): ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qs[128];
#   8 sub-blocks of 32; sub-block j has (sc, m) = get_scale_min_k4(j, scales) and
#   x = d*sc * q - dmin*m. Quants: for chunk c (0..3) of 64 elements, qs[32c + l] holds
#   element 64c + l in its low nibble and element 64c + 32 + l in its high nibble.
# block_q5_K (176 bytes): ggml_half d; ggml_half dmin; uint8_t scales[12]; uint8_t qh[32];
#   uint8_t qs[128]; as Q4_K plus a 5th bit: element 64c + l takes bit 2c of qh[l],
#   element 64c + 32 + l takes bit 2c+1 of qh[l].
def _dequant_k4(b, ql, qh):
    nb = b.shape[0]
    d = fp16_to_f32(_field_u16(b, 0))[:, None]
    dmin = fp16_to_f32(_field_u16(b, 2))[:, None]
    scales = b[:, 4:16]
    out = np.empty((nb, QK_K), dtype=F32)
    ql = ql.astype(np.int64)
    for c in range(4):
        q = ql[:, 32 * c:32 * c + 32]
        lo, hi = q & 0xF, q >> 4
        if qh is not None:
            h = qh.astype(np.int64)
            lo = lo + ((h >> (2 * c)) & 1) * 16
            hi = hi + ((h >> (2 * c + 1)) & 1) * 16
        for k, vals in ((2 * c, lo), (2 * c + 1, hi)):
            sc, m = get_scale_min_k4(k, scales)
            d1 = (d[:, 0] * sc.astype(F32)).astype(F32)[:, None]
            m1 = (dmin[:, 0] * m.astype(F32)).astype(F32)[:, None]
            out[:, 32 * k:32 * k + 32] = (d1 * vals.astype(F32)).astype(F32) - m1
    return out


def dequant_q4_k(b):
    return _dequant_k4(b, b[:, 16:144], None)


def dequant_q5_k(b):
    return _dequant_k4(b, b[:, 48:176], b[:, 16:48])


def _quant_k4(xb, nmax, rmin, rdelta, nstep):
    """Shared part of quantize_row_q4_K_ref / quantize_row_q5_K_ref: returns (d, dmin, scales12, L[nb, 256])."""
    nb = xb.shape[0]
    sub = xb.reshape(nb * 8, 32)
    sum_x2 = np.zeros(nb * 8, dtype=F32)
    for l in range(32):
        sum_x2 = (sum_x2 + (sub[:, l] * sub[:, l]).astype(F32)).astype(F32)
    av_x = np.sqrt((sum_x2 / F32(32)).astype(F32)).astype(F32)
    weights = (av_x[:, None] + np.abs(sub)).astype(F32)
    scales, mins, L = make_qkx2_quants(sub, weights, nmax, rmin, rdelta, nstep)
    scales = scales.reshape(nb, 8)
    mins = mins.reshape(nb, 8)
    L = L.reshape(nb, 8, 32)
    max_scale = np.zeros(nb, dtype=F32)
    max_min = np.zeros(nb, dtype=F32)
    for j in range(8):
        max_scale = np.where(scales[:, j] > max_scale, scales[:, j], max_scale)
        max_min = np.where(mins[:, j] > max_min, mins[:, j], max_min)
    with np.errstate(divide="ignore"):
        inv_scale = np.where(max_scale > 0, F32(63) / max_scale, F32(0)).astype(F32)
        inv_min = np.where(max_min > 0, F32(63) / max_min, F32(0)).astype(F32)
    ls = np.minimum(63, nearest_int(inv_scale[:, None] * scales) & 0xFF)   # uint8_t ls = nearest_int(..)
    lm = np.minimum(63, nearest_int(inv_min[:, None] * mins) & 0xFF)
    packed = _pack_scale_min_k4(ls, lm)
    d_bits = fp16_bits((max_scale / F32(63)).astype(F32))
    dmin_bits = fp16_bits((max_min / F32(63)).astype(F32))
    d = fp16_to_f32(d_bits)
    dmin = fp16_to_f32(dmin_bits)
    xs = xb.reshape(nb, 8, 32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for j in range(8):
            sc, m = get_scale_min_k4(j, packed)
            dd = (d * sc.astype(F32)).astype(F32)
            dm = (dmin * m.astype(F32)).astype(F32)
            l = np.clip(nearest_int(((xs[:, j, :] + dm[:, None]).astype(F32) / dd[:, None]).astype(F32)), 0, nmax)
            L[:, j, :] = np.where((dd != 0)[:, None], l, L[:, j, :])             # if (!d) continue;
    return d_bits, dmin_bits, packed, L.reshape(nb, QK_K)


def quant_q4_k(xb, fma=False):
    d, dmin, packed, L = _quant_k4(xb, 15, -1.0, 0.1, 20)
    qs = np.concatenate([L[:, 64 * c:64 * c + 32] | (L[:, 64 * c + 32:64 * c + 64] << 4) for c in range(4)], axis=1)
    return np.concatenate([_u16_bytes(d), _u16_bytes(dmin), packed, qs.astype(np.uint8)], axis=1)


def quant_q5_k(xb, fma=False):
    d, dmin, packed, L = _quant_k4(xb, 31, -0.5, 0.1, 15)
    nb = xb.shape[0]
    qh = np.zeros((nb, 32), dtype=np.int64)
    ql = np.zeros((nb, 128), dtype=np.int64)
    for c in range(4):
        l1 = L[:, 64 * c:64 * c + 32]
        l2 = L[:, 64 * c + 32:64 * c + 64]
        qh |= (l1 > 15) << (2 * c)
        qh |= (l2 > 15) << (2 * c + 1)
        ql[:, 32 * c:32 * c + 32] = np.where(l1 > 15, l1 - 16, l1) | (np.where(l2 > 15, l2 - 16, l2) << 4)
    return np.concatenate([_u16_bytes(d), _u16_bytes(dmin), packed, qh.astype(np.uint8), ql.astype(np.uint8)],
                          axis=1)


# ---------------------------------------------------------------------------------------------
# Q6_K

# block_q6_K (210 bytes): uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d;
#   16 sub-blocks of 16, x = d * scales[s] * (q - 32), q 6 bits. For half h (0, 1) of 128
#   elements and l < 32, with ql' = ql[64h:], qh' = qh[32h:], sc' = scales[8h:]:
#     element 128h +  0 + l: (ql'[l]    & 0xF) | ((qh'[l] >> 0) & 3) << 4, scale sc'[l/16 + 0]
#     element 128h + 32 + l: (ql'[l+32] & 0xF) | ((qh'[l] >> 2) & 3) << 4, scale sc'[l/16 + 2]
#     element 128h + 64 + l: (ql'[l]    >> 4)  | ((qh'[l] >> 4) & 3) << 4, scale sc'[l/16 + 4]
#     element 128h + 96 + l: (ql'[l+32] >> 4)  | ((qh'[l] >> 6) & 3) << 4, scale sc'[l/16 + 6]
#   y = d * sc * q evaluated as (d * sc) * q.
def dequant_q6_k(b):
    nb = b.shape[0]
    ql_all = b[:, 0:128].astype(np.int64)
    qh_all = b[:, 128:192].astype(np.int64)
    sc_all = b[:, 192:208].view(np.int8).astype(F32)
    d = fp16_to_f32(_field_u16(b, 208))
    out = np.empty((nb, QK_K), dtype=F32)
    for h in range(2):
        ql = ql_all[:, 64 * h:64 * h + 64]
        qh = qh_all[:, 32 * h:32 * h + 32]
        sc = sc_all[:, 8 * h:8 * h + 8]
        parts = [
            (0, (ql[:, :32] & 0xF) | (((qh >> 0) & 3) << 4), 0),
            (32, (ql[:, 32:] & 0xF) | (((qh >> 2) & 3) << 4), 2),
            (64, (ql[:, :32] >> 4) | (((qh >> 4) & 3) << 4), 4),
            (96, (ql[:, 32:] >> 4) | (((qh >> 6) & 3) << 4), 6),
        ]
        for off, q, s0 in parts:
            for half in range(2):                              # is = l / 16
                ds = (d * sc[:, s0 + half]).astype(F32)[:, None]
                qq = (q[:, 16 * half:16 * half + 16] - 32).astype(F32)
                out[:, 128 * h + off + 16 * half:128 * h + off + 16 * half + 16] = (ds * qq).astype(F32)
    return out


def quant_q6_k(xb, fma=False):
    nb = xb.shape[0]
    sub = xb.reshape(nb * 16, 16)
    scales, L = make_qx_quants_rmse1(sub, 32)
    scales = scales.reshape(nb, 16)
    L = L.reshape(nb, 16, 16)
    max_scale = np.zeros(nb, dtype=F32)
    max_abs = np.zeros(nb, dtype=F32)
    for ib in range(16):
        a = np.abs(scales[:, ib])
        upd = a > max_abs
        max_abs = np.where(upd, a, max_abs)
        max_scale = np.where(upd, scales[:, ib], max_scale)
    zero = max_abs < GROUP_MAX_EPS
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = (F32(-128) / max_scale).astype(F32)
        d_bits = fp16_bits((F32(1) / iscale).astype(F32))
        sc = np.minimum(127, nearest_int(iscale[:, None] * scales))           # int8_t store: wraps
        sc = ((sc & 0xFF) ^ 0x80) - 0x80
        d = fp16_to_f32(d_bits)
        xs = xb.reshape(nb, 16, 16)
        for j in range(16):
            dd = (d * sc[:, j].astype(F32)).astype(F32)
            l = np.clip(nearest_int((xs[:, j, :] / dd[:, None]).astype(F32)), -32, 31) + 32
            L[:, j, :] = np.where((dd != 0)[:, None], l, L[:, j, :])
    L = L.reshape(nb, QK_K)
    ql = np.zeros((nb, 128), dtype=np.int64)
    qh = np.zeros((nb, 64), dtype=np.int64)
    for h in range(2):
        Lh = L[:, 128 * h:128 * h + 128]
        q1, q2, q3, q4 = Lh[:, 0:32], Lh[:, 32:64], Lh[:, 64:96], Lh[:, 96:128]
        ql[:, 64 * h:64 * h + 32] = (q1 & 0xF) | ((q3 & 0xF) << 4)
        ql[:, 64 * h + 32:64 * h + 64] = (q2 & 0xF) | ((q4 & 0xF) << 4)
        qh[:, 32 * h:32 * h + 32] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
    out = np.concatenate([ql.astype(np.uint8), (qh & 0xFF).astype(np.uint8), (sc & 0xFF).astype(np.uint8),
                          _u16_bytes(d_bits)], axis=1)
    out[zero] = 0                                                              # memset(&y[i], 0, ...)
    return out


# ---------------------------------------------------------------------------------------------
# Q8_K activations and the K-quant x Q8_K dot products of ggml's x86 CPU backend

# block_q8_K (292 bytes): float d; int8_t qs[256]; int16_t bsums[16];   x[j] = d * qs[j]
# quantize_row_q8_K_ref (ggml-quants.c; ggml-cpu's quantize_row_q8_K calls it on x86):
#   max = the first x[j] of largest |x[j]| (if (ax > amax) { amax = ax; max = x[j]; })
#   amax == 0: d = 0, qs = 0 (the C leaves bsums unwritten; 0 here, and they only ever meet a zero d)
#   iscale = -127.f/max; qs[j] = MIN(127, nearest_int(iscale*x[j])); bsums[k] = sum of qs[16k..16k+15];
#   d = 1/iscale.
Q8K_BYTES = 292


def quant_q8_k(xb):
    """xb: [N, 256] float32 -> (d float32 [N], qs int64 [N, 256], bsums int64 [N, 16])."""
    xb = np.ascontiguousarray(xb, dtype=F32).reshape(-1, QK_K)
    amax, mx = _abs_max_signed(xb)
    zero = amax == 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = (F32(-127) / mx).astype(F32)
        q = np.minimum(127, nearest_int((iscale[:, None] * xb).astype(F32)))
        d = (F32(1) / iscale).astype(F32)
    q = ((q & 0xFF) ^ 0x80) - 0x80                                         # int8_t store
    q[zero] = 0
    d = np.where(zero, F32(0), d).astype(F32)
    bsums = q.reshape(-1, 16, 16).sum(axis=2)
    return d, q, bsums


def q8_k_bytes(d, q, bsums):
    return np.concatenate([np.ascontiguousarray(d, dtype="<f4").view(np.uint8).reshape(-1, 4),
                           (q & 0xFF).astype(np.uint8),
                           np.ascontiguousarray(bsums, dtype="<i2").view(np.uint8).reshape(-1, 32)], axis=1)


def q8_k_fields(b):
    """block_q8_K bytes [N, 292] -> (d, qs, bsums) as quant_q8_k returns them."""
    b = np.ascontiguousarray(b, dtype=np.uint8).reshape(-1, Q8K_BYTES)
    d = np.ascontiguousarray(b[:, 0:4]).view("<f4").reshape(-1).astype(F32)
    q = b[:, 4:260].view(np.int8).astype(np.int64)
    bs = np.ascontiguousarray(b[:, 260:292]).view("<i2").astype(np.int64)
    return d, q, bs


def fma32(a, b, c):
    """float32 a*b + c with one rounding (vfmadd*ps), computed exactly: the product of two float32 is exact in
    float64, TwoSum recovers the error of the float64 sum, and that error only matters when the float64 sum
    lies exactly halfway between two float32 values (then the exact value is on the error's side)."""
    a, b, c = (np.asarray(v, dtype=F32).astype(np.float64) for v in (a, b, c))
    p = a * b
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)
    with np.errstate(over="ignore", invalid="ignore"):
        r = s.astype(F32)
        rd = r.astype(np.float64)
        other = np.nextafter(r, np.where(s > rd, F32(np.inf), F32(-np.inf)).astype(F32)).astype(F32)
        mid = (rd + other.astype(np.float64)) * 0.5
        tie = (rd != s) & (s == mid) & (err != 0)
        toward_other = np.sign(other.astype(np.float64) - s) == np.sign(err)
    return np.where(tie & toward_other, other, r).astype(F32)


def _sum8(a):
    """hsum_float_8: ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)), float32 at every step."""
    r = [(a[..., 4 + i] + a[..., i]).astype(F32) for i in range(4)]
    return (((r[0] + r[2]).astype(F32)) + ((r[1] + r[3]).astype(F32))).astype(F32)


def _k_codes(qtype, b):
    """Weight super-blocks [N, bytes] -> (d, dmin (Q6_K: None) float32 [N], per-element scale int64 [N, 256],
    per-sub-block min int64 [N, 8] (Q6_K: None), codes int64 [N, 256] in element order; Q6_K codes are q - 32)."""
    n = b.shape[0]
    q = np.empty((n, QK_K), dtype=np.int64)
    if qtype == "Q6_K":
        sc = np.empty((n, QK_K), dtype=np.int64)
        scales = b[:, 192:208].view(np.int8).astype(np.int64)
        for h in range(2):
            ql = b[:, 64 * h:64 * h + 64].astype(np.int64)
            qh = b[:, 128 + 32 * h:160 + 32 * h].astype(np.int64)
            for k in range(4):
                src = ql[:, 32 * (k & 1):32 * (k & 1) + 32]
                lo = src & 0xF if k < 2 else src >> 4
                q[:, 128 * h + 32 * k:128 * h + 32 * k + 32] = (lo | (((qh >> (2 * k)) & 3) << 4)) - 32
                for half in range(2):
                    e = 128 * h + 32 * k + 16 * half
                    sc[:, e:e + 16] = scales[:, 8 * h + 2 * k + half][:, None]
        return fp16_to_f32(_field_u16(b, 208)), None, sc, None, q
    q5 = qtype == "Q5_K"
    ql = (b[:, 48:176] if q5 else b[:, 16:144]).astype(np.int64)
    for c in range(4):
        lo, hi = ql[:, 32 * c:32 * c + 32] & 0xF, ql[:, 32 * c:32 * c + 32] >> 4
        if q5:
            h = b[:, 16:48].astype(np.int64)
            lo = lo | (((h >> (2 * c)) & 1) << 4)
            hi = hi | (((h >> (2 * c + 1)) & 1) << 4)
        q[:, 64 * c:64 * c + 32] = lo
        q[:, 64 * c + 32:64 * c + 64] = hi
    sm = [get_scale_min_k4(j, b[:, 4:16]) for j in range(8)]
    sc = np.repeat(np.stack([s for s, _ in sm], axis=1), 32, axis=1)
    m = np.stack([mm for _, mm in sm], axis=1)
    return fp16_to_f32(_field_u16(b, 0)), fp16_to_f32(_field_u16(b, 2)), sc, m, q


def vec_dot_q8_k(qtype, w, a):
    """Dots of K-quant weight rows w (uint8 [N, row bytes]) with Q8_K activation rows a (uint8 [M, row blocks *
    292]) as ggml's x86 AVX2 kernels compute them (ggml_vec_dot_q4_K_q8_K, _q5_K_, _q6_K_): per super-block the
    exact integer sums in 8 lanes (lane k: elements at positions 4k..4k+3 of every 32), converted to float32 and
    FMA-accumulated with d = d_x * d_w; the Q4_K min term in 4 lanes (lane k: sub-blocks 2k, 2k+1) FMA-accumulated
    with dmin = -d_x * dmin_w, the Q5_K one as one float FMA-accumulated; hsum_float_8 of the lanes, plus
    (m0+m2)+(m1+m3) (Q4_K) or the float (Q5_K). Returns float32 [N, M]."""
    _, _, bb = TYPES[qtype]
    w = np.ascontiguousarray(w, dtype=np.uint8)
    nw, nb = w.shape[0], w.shape[1] // bb
    dw, dminw, sc, m, q = _k_codes(qtype, w.reshape(-1, bb))
    dw, sc, q = dw.reshape(nw, nb), sc.reshape(nw, nb, QK_K), q.reshape(nw, nb, QK_K)
    xd, xq, xbs = q8_k_fields(a)
    na = xd.size // nb
    xd, xq, xbs = xd.reshape(na, nb), xq.reshape(na, nb, QK_K), xbs.reshape(na, nb, 16)
    acc = np.zeros((nw, na, 8), dtype=F32)
    accm = np.zeros((nw, na, 4), dtype=F32)
    accm5 = np.zeros((nw, na), dtype=F32)
    for i in range(nb):
        prod = (sc[:, i] * q[:, i])[:, None, :] * xq[None, :, i, :]              # [N, M, 256]
        lanes = prod.reshape(nw, na, 8, 8, 4).sum(axis=(2, 4))                  # [N, M, 8]
        d = (xd[None, :, i] * dw[:, None, i]).astype(F32)
        acc = fma32(d[..., None], lanes.astype(F32), acc)
        if m is not None:
            mi = m.reshape(nw, nb, 8)[:, i]
            sub = xbs[:, i, 0::2] + xbs[:, i, 1::2]                              # [M, 8] sums of 32 codes
            terms = mi[:, None, :] * sub[None, :, :]                             # [N, M, 8]
            mlanes = terms[..., 0::2] + terms[..., 1::2]                         # [N, M, 4]
            dmin = ((-xd[None, :, i]) * dminw.reshape(nw, nb)[:, None, i]).astype(F32)
            if qtype == "Q4_K":
                accm = fma32(dmin[..., None], mlanes.astype(F32), accm)
            else:
                accm5 = fma32(dmin, mlanes.sum(axis=2).astype(F32), accm5)
    total = _sum8(acc)
    if qtype == "Q4_K":
        total = (total + (((accm[..., 0] + accm[..., 2]).astype(F32)) + ((accm[..., 1] + accm[..., 3]).astype(F32))).astype(F32)).astype(F32)
    elif qtype == "Q5_K":
        total = (total + accm5).astype(F32)
    return total


Q8K_EXTRA_ROW_KINDS = [
    "N(0,1) with outliers x100 (activation-like)",
    "|max| twice with both signs: +a first in block 0, -a first in block 1",
    "ties: max -127 (iscale 1) in block 0, +127 (iscale -1) in block 1, other values k + 0.5",
    "max at the last element of each block",
    "all -0.0 in block 0, one tiny value in block 1",
    "subnormal floats (iscale overflows to -inf: all codes 0, d -0.0)",
    "N(0,1e4)",
    "uniform 0..1 then 0..-1",
]


def make_q8k_rows(seed=4321, n=None):
    """Activation rows for Q8_K: the fixture rows of make_test_rows plus the edge cases above."""
    n = n or ROW_LEN
    rng = np.random.default_rng(seed)
    rows = []
    r = rng.standard_normal(n)
    r[rng.choice(n, 6, replace=False)] *= 100
    rows.append(r)
    r = rng.uniform(-1, 1, n)
    r[10], r[200] = 3.0, -3.0
    r[256 + 5], r[256 + 100] = -3.0, 3.0
    rows.append(r)
    r = rng.integers(-126, 126, n) + 0.5
    r[7] = -127.0
    r[256 + 9] = -127.0
    r[256:] = -r[256:]                       # block 1: max +127, iscale -1
    rows.append(r)
    r = rng.uniform(-1, 1, n)
    r[255], r[511] = -1.5, 1.5
    rows.append(r)
    r = np.zeros(n)
    r[:256] = -0.0
    r[256 + 17] = 1e-6
    rows.append(r)
    rows.append(rng.uniform(-1, 1, n) * 1e-39)
    rows.append(rng.standard_normal(n) * 1e4)
    rows.append(np.concatenate([rng.uniform(0, 1, n // 2), -rng.uniform(0, 1, n // 2)]))
    extra = np.asarray(rows, dtype=F32)
    extra[4, :256] = -0.0                    # keep the sign through the float32 cast
    return np.concatenate([make_test_rows(), extra], axis=0).astype(F32)


# ---------------------------------------------------------------------------------------------
# F16 / BF16 (one element per "block")

def dequant_f16(b):
    return fp16_to_f32(_field_u16(b, 0))[:, None]


def quant_f16(xb, fma=False):
    return _u16_bytes(fp16_bits(xb[:, 0]))


def dequant_bf16(b):
    return bf16_to_f32(_field_u16(b, 0))[:, None]


def quant_bf16(xb, fma=False):
    return _u16_bytes(bf16_bits(xb[:, 0]))


_DEQ = {"F16": dequant_f16, "BF16": dequant_bf16, "Q8_0": dequant_q8_0, "Q4_0": dequant_q4_0,
        "Q4_1": dequant_q4_1, "Q5_0": dequant_q5_0, "Q5_1": dequant_q5_1, "Q4_K": dequant_q4_k,
        "Q5_K": dequant_q5_k, "Q6_K": dequant_q6_k}
_QUANT = {"F16": quant_f16, "BF16": quant_bf16, "Q8_0": quant_q8_0, "Q4_0": quant_q4_0,
          "Q4_1": quant_q4_1, "Q5_0": quant_q5_0, "Q5_1": quant_q5_1, "Q4_K": quant_q4_k,
          "Q5_K": quant_q5_k, "Q6_K": quant_q6_k}


def row_bytes(qtype, n):
    _, be, bb = TYPES[qtype]
    if n % be:
        raise ValueError(f"{qtype}: row length {n} is not a multiple of {be}")
    return n // be * bb


def quantize(qtype, x, fma=False):
    """x: float32 array (any shape, total size a multiple of the block size; rows are just
    consecutive blocks). Returns the ggml bytes as a flat uint8 array."""
    _, be, bb = TYPES[qtype]
    x = np.ascontiguousarray(x, dtype=F32).reshape(-1)
    if x.size % be:
        raise ValueError(f"{qtype}: {x.size} values is not a multiple of {be}")
    out = _QUANT[qtype](x.reshape(-1, be), fma=fma)
    assert out.shape == (x.size // be, bb) and out.dtype == np.uint8, (qtype, out.shape, out.dtype)
    return out.reshape(-1)


def dequantize(qtype, data, n=None):
    """data: bytes or uint8 array of whole blocks. Returns float32 [n]."""
    _, be, bb = TYPES[qtype]
    b = np.frombuffer(bytes(data), dtype=np.uint8) if isinstance(data, (bytes, bytearray)) else \
        np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
    if b.size % bb:
        raise ValueError(f"{qtype}: {b.size} bytes is not a multiple of {bb}")
    y = _DEQ[qtype](b.reshape(-1, bb)).astype(F32).reshape(-1)
    if n is not None and n != y.size:
        raise ValueError(f"{qtype}: {b.size} bytes hold {y.size} values, not {n}")
    return y


# ---------------------------------------------------------------------------------------------
# test data

ROW_LEN = 512

ROW_KINDS = [
    "normal N(0,1)",
    "weights N(0,0.02)",
    "all zeros",
    "N(0,1) with zero 32-blocks, zero 16-sub-blocks, a lone nonzero, and -0.0",
    "tiny N(0,1e-5) (fp16-subnormal scales)",
    "tiny N(0,1e-9) (scales underflow fp16)",
    "N(0,0.02) with outliers up to +-50",
    "positive U(0.5,1.5)",
    "negative -U(0.1,2)",
    "constant blocks (0.3, -0.7, 1.0, -2.5)",
    "large N(0,3000)",
    "laplace(0,0.05)",
    "grid: integers -8..7 times 0.25 (rounding ties)",
    "sparse: 1-3 nonzeros per 32-block",
    "ramp linspace(-1,1)",
    "per-32-block scale 10^U(-4,1)",
]


def make_test_rows(seed=1234, n=ROW_LEN):
    rng = np.random.default_rng(seed)
    rows = []
    rows.append(rng.standard_normal(n))
    rows.append(rng.standard_normal(n) * 0.02)
    rows.append(np.zeros(n))
    r = rng.standard_normal(n)
    r[32:64] = 0
    r[128:160] = 0
    r[160:176] = 0                 # a zero 16-sub-block (Q6_K) inside a nonzero 32-block
    r[256:288] = 0
    r[256 + 7] = 0.75              # a lone nonzero in a 32-block
    r[300:310] = -0.0
    r[400:416] = -0.0
    rows.append(r)
    rows.append(rng.standard_normal(n) * 1e-5)
    rows.append(rng.standard_normal(n) * 1e-9)
    r = rng.standard_normal(n) * 0.02
    idx = rng.choice(n, 8, replace=False)
    r[idx] = rng.uniform(5, 50, 8) * rng.choice([-1, 1], 8)
    rows.append(r)
    rows.append(rng.uniform(0.5, 1.5, n))
    rows.append(-rng.uniform(0.1, 2.0, n))
    r = np.empty(n)
    consts = [0.3, -0.7, 1.0, -2.5]
    for b in range(n // 32):
        r[32 * b:32 * b + 32] = consts[b % 4]
    rows.append(r)
    rows.append(rng.standard_normal(n) * 3000)
    rows.append(rng.laplace(0, 0.05, n))
    rows.append(rng.integers(-8, 8, n) * 0.25)
    r = np.zeros(n)
    for b in range(n // 32):
        k = rng.integers(1, 4)
        pos = rng.choice(32, k, replace=False)
        r[32 * b + pos] = rng.standard_normal(k)
    rows.append(r)
    rows.append(np.linspace(-1, 1, n))
    r = rng.standard_normal(n)
    for b in range(n // 32):
        r[32 * b:32 * b + 32] *= 10 ** rng.uniform(-4, 1)
    rows.append(r)
    out = np.asarray(rows, dtype=F32)
    assert out.shape == (len(ROW_KINDS), n)
    return out


_HALF_FIELDS = {"F16": [0], "BF16": [], "Q8_0": [0], "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2],
                "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}   # byte offsets of ggml_half fields


def random_blocks(qtype, nblocks, rng):
    """Random block bytes with every fp16 scale field set to a random finite value in
    +-[2^-14, 2^2) or a subnormal, so dequantize sees every bit pattern of the quant fields."""
    _, be, bb = TYPES[qtype]
    b = rng.integers(0, 256, (nblocks, bb), dtype=np.uint8)

    def half(k):
        v = rng.uniform(-4, 4, k).astype(F32)
        v[::5] = rng.uniform(-6e-5, 6e-5, v[::5].size)   # some subnormal halves
        return _u16_bytes(fp16_bits(v))

    for off in ([] if qtype == "F16" else _HALF_FIELDS[qtype]):
        b[:, off:off + 2] = half(nblocks)
    if qtype == "F16":     # no inf / NaN
        bits = b.view("<u2")
        bits[(bits & 0x7C00) == 0x7C00] &= 0xBFFF
    if qtype == "BF16":
        bits = b.view("<u2")
        bits[(bits & 0x7F80) == 0x7F80] &= 0xBFFF
    return b.reshape(-1)


# ---------------------------------------------------------------------------------------------
# fixtures

def write_fixtures(out_dir, seed=1234):
    os.makedirs(out_dir, exist_ok=True)
    x = make_test_rows(seed)
    rows, n = x.shape
    np.save(os.path.join(out_dir, "input.npy"), x)
    rng = np.random.default_rng(seed + 1)
    index = {
        "generator": "tests/reference/ggml_quants.py --write-fixtures (numpy reference of ggml-quants.c "
                     "quantize_row_*_ref / dequantize_row_*; strict float32, no FMA)",
        "seed": seed,
        "input": "input.npy",
        "rows": rows,
        "row_length": n,
        "row_kinds": ROW_KINDS,
        "files": "TYPE.bin: ggml blocks of input.npy quantized by the reference (rows x row_bytes, no header); "
                 "TYPE.deq.npy: float32 [rows, row_length] dequantized from TYPE.bin; "
                 "TYPE.rand.bin / TYPE.rand.deq.npy: random block bytes (finite fp16 scale fields) and "
                 "their dequantization, for dequantize-only tests",
        "types": {},
    }
    for qt in QUANT_TYPES:
        tid, be, bb = TYPES[qt]
        q = quantize(qt, x)
        y = dequantize(qt, q).reshape(rows, n)
        q.tofile(os.path.join(out_dir, f"{qt}.bin"))
        np.save(os.path.join(out_dir, f"{qt}.deq.npy"), y)
        err = (y.astype(np.float64) - x.astype(np.float64))
        rms_rows = np.sqrt((err ** 2).mean(axis=1))
        rel_rows = rms_rows / np.maximum(np.sqrt((x.astype(np.float64) ** 2).mean(axis=1)), 1e-300)
        rand_rows = 2
        rb = random_blocks(qt, rand_rows * n // be, rng)
        rb.tofile(os.path.join(out_dir, f"{qt}.rand.bin"))
        np.save(os.path.join(out_dir, f"{qt}.rand.deq.npy"), dequantize(qt, rb).reshape(rand_rows, n))
        entry = {
            "ggml_type": tid, "block_elements": be, "block_bytes": bb, "rows": rows, "row_length": n,
            "row_bytes": row_bytes(qt, n),
            "quantized": f"{qt}.bin", "dequantized": f"{qt}.deq.npy",
            "rms_error": float(np.sqrt((err ** 2).mean())),
            "rms_error_per_row": [float(v) for v in rms_rows],
            "relative_rms_error_per_row": [float(v) if np.isfinite(v) and rms_rows[i] > 0 else 0.0
                                           for i, v in enumerate(rel_rows)],
            "max_abs_error": float(np.abs(err).max()),
            "random_blocks": {"rows": rand_rows, "row_length": n, "quantized": f"{qt}.rand.bin",
                              "dequantized": f"{qt}.rand.deq.npy"},
        }
        if qt in ("Q4_0", "Q4_1", "Q5_0", "Q5_1"):
            qf = quantize(qt, x, fma=True)
            entry["blocks_differing_with_fma"] = int((qf.reshape(-1, bb) != q.reshape(-1, bb)).any(axis=1).sum())
        index["types"][qt] = entry
    index["q8_k"] = write_q8k_fixtures(out_dir, x.shape[1])
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(out_dir, fn)) for fn in os.listdir(out_dir))
    print(f"{out_dir}: {len(os.listdir(out_dir))} files, {total} bytes")
    for qt, e in index["types"].items():
        extra = f", FMA-sensitive blocks {e['blocks_differing_with_fma']}" if "blocks_differing_with_fma" in e else ""
        print(f"  {qt:5s} {e['row_bytes']:5d} bytes/row  rms err {e['rms_error']:.4g}  "
              f"rel rms err (row 0, N(0,1)) {e['relative_rms_error_per_row'][0]:.4g}{extra}")
    return index


def write_q8k_fixtures(out_dir, n):
    """Q8_K activations of make_q8k_rows and ggml's x86 dots of the K-quant fixture rows with them."""
    a = make_q8k_rows(n=n)
    np.save(os.path.join(out_dir, "Q8_K.input.npy"), a)
    q8 = q8_k_bytes(*quant_q8_k(a))
    q8.tofile(os.path.join(out_dir, "Q8_K.bin"))
    q8 = q8.reshape(a.shape[0], -1)
    entry = {
        "ggml_type": 15, "block_elements": QK_K, "block_bytes": Q8K_BYTES, "rows": a.shape[0], "row_length": n,
        "row_bytes": n // QK_K * Q8K_BYTES,
        "input": "Q8_K.input.npy", "input_row_kinds": ROW_KINDS + Q8K_EXTRA_ROW_KINDS,
        "quantized": "Q8_K.bin",
        "files": "Q8_K.bin: block_q8_K (float d, int8 qs[256], int16 bsums[16]) of Q8_K.input.npy by "
                 "quantize_row_q8_K_ref; TYPE.q8k_dot.npy: float32 [weight rows, activation rows], the dots of the "
                 "rows of TYPE.bin then TYPE.rand.bin with the rows of Q8_K.bin as ggml's x86 AVX2 "
                 "ggml_vec_dot_TYPE_q8_K computes them (vec_dot_q8_k)",
        "dots": {},
    }
    for qt in ("Q4_K", "Q5_K", "Q6_K"):
        rb = row_bytes(qt, n)
        w = np.concatenate([np.fromfile(os.path.join(out_dir, f"{qt}.bin"), dtype=np.uint8).reshape(-1, rb),
                            np.fromfile(os.path.join(out_dir, f"{qt}.rand.bin"), dtype=np.uint8).reshape(-1, rb)])
        np.save(os.path.join(out_dir, f"{qt}.q8k_dot.npy"), vec_dot_q8_k(qt, w, q8))
        entry["dots"][qt] = {"file": f"{qt}.q8k_dot.npy", "weight_rows": [f"{qt}.bin", f"{qt}.rand.bin"],
                             "shape": [int(w.shape[0]), int(a.shape[0])]}
    return entry


# ---------------------------------------------------------------------------------------------
# cross-checks against other implementations

def _check_data(n_rows=512, seed=99):
    """Fixture rows plus n_rows more rows of assorted kinds (all rows 512 long)."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(n_rows):
        kind = r % 8
        scale = 10.0 ** rng.uniform(-6, 3)
        if kind == 0:
            v = rng.standard_normal(ROW_LEN) * scale
        elif kind == 1:                       # rounding ties on a grid
            v = rng.integers(-64, 64, ROW_LEN) * (2.0 ** rng.integers(-8, 3))
        elif kind == 2:                       # one sign only
            v = np.abs(rng.standard_normal(ROW_LEN)) * scale * rng.choice([-1, 1])
        elif kind == 3:                       # sparse with zero sub-blocks
            v = rng.standard_normal(ROW_LEN) * scale * (rng.random(ROW_LEN) < 0.2)
        elif kind == 4:                       # each 16 / 32 block at its own scale
            v = rng.standard_normal(ROW_LEN) * np.repeat(10.0 ** rng.uniform(-5, 2, ROW_LEN // 16), 16)
        elif kind == 5:                       # constant pieces
            v = np.repeat(rng.standard_normal(ROW_LEN // 8) * scale, 8)
        elif kind == 6:                       # heavy tails / outliers
            v = rng.standard_t(2, ROW_LEN) * scale
        else:                                 # offset data (min far from 0)
            v = (rng.standard_normal(ROW_LEN) * 0.1 + rng.uniform(-3, 3)) * scale
        out.append(v)
    extra = np.asarray(out, dtype=F32).reshape(-1, ROW_LEN)
    return np.concatenate([make_test_rows(), extra], axis=0).astype(F32)


def _bits_equal(a, b):
    a = np.ascontiguousarray(a, dtype=F32).view(np.uint32)
    b = np.ascontiguousarray(b, dtype=F32).view(np.uint32)
    return a.shape == b.shape and np.array_equal(a, b)


def check_gguf_py(path, n_rows=512):
    """Compare with gguf-py's gguf.quants (llama.cpp/gguf-py) on the same data."""
    sys.path.insert(0, os.path.abspath(path))
    try:
        import gguf
        from gguf import quants as gq
        QT = gguf.GGMLQuantizationType
    except Exception as e:  # noqa: BLE001
        print(f"cannot import gguf from {path}: {e}")
        return 2
    x = _check_data(n_rows)
    rng = np.random.default_rng(7)
    ok = True
    print(f"gguf-py from {os.path.dirname(gguf.__file__)}; data {x.shape[0]} rows x {x.shape[1]}")
    for qt in QUANT_TYPES:
        _, be, bb = TYPES[qt]
        gt = getattr(QT, qt)
        mine_q = quantize(qt, x).reshape(x.shape[0], -1)
        rb = random_blocks(qt, 64 * 512 // be, rng).reshape(64, -1)
        for label, data in (("reference-quantized", mine_q), ("random blocks", rb)):
            a = dequantize(qt, data).reshape(data.shape[0], -1)
            b = np.asarray(gq.dequantize(data, gt), dtype=F32).reshape(a.shape)
            same = _bits_equal(a, b)
            ok &= same
            nd = int((a.view(np.uint32) != b.view(np.uint32)).sum())
            print(f"  {qt:5s} dequantize ({label}): {'bit-identical' if same else f'{nd} values differ'}")
        try:
            theirs = np.asarray(gq.quantize(x, gt)).view(np.uint8).reshape(x.shape[0], -1)
        except NotImplementedError:
            print(f"  {qt:5s} quantize: gguf-py has none")
            continue
        for fma in (False, True) if qt in ("Q4_0", "Q5_0") else (False,):
            mine = quantize(qt, x, fma=fma).reshape(-1, bb)
            th = theirs.reshape(-1, bb)
            bad = (mine != th).any(axis=1)
            # gguf-py takes the max / min with numpy, ggml's loop keeps +0.0 (Q4_0/Q5_0 max) or the
            # first zero seen (Q4_1/Q5_1 min): blocks of only +-0 can then differ in the sign bit of a
            # zero fp16 field. Count those apart from real differences.
            m2, t2 = mine.copy(), th.copy()
            for off in _HALF_FIELDS[qt]:
                for arr in (m2, t2):
                    h = np.ascontiguousarray(arr[:, off:off + 2]).view("<u2").reshape(-1)
                    h = np.where(h == 0x8000, 0, h).astype("<u2")
                    arr[:, off:off + 2] = h.view(np.uint8).reshape(-1, 2)
            real = (m2 != t2).any(axis=1)
            zero_sign = int(bad.sum() - real.sum())
            if fma or qt not in ("Q4_0", "Q5_0"):
                ok &= not real.any()
            note = " (fma=True, as gguf-py emulates)" if fma else ""
            msg = "bit-identical" if not bad.any() else \
                f"{int(real.sum())} of {mine.shape[0]} blocks differ" + \
                (f", {zero_sign} more differ only in the sign of a zero fp16 field" if zero_sign else "")
            if bad.any() and not real.any():
                msg = f"identical except {zero_sign} of {mine.shape[0]} blocks whose only difference is " \
                      f"the sign of a zero fp16 field (+-0 input; ggml's loop, as here, keeps +0.0 / the first zero)"
            print(f"  {qt:5s} quantize{note}: {msg}")
    print("gguf-py check", "passed" if ok else "FAILED")
    return 0 if ok else 1


def check_libggml(path, n_rows=512):
    """Compare with ggml's own C functions (quantize_row_*_ref, dequantize_row_*) through ctypes,
    from an already built libggml-base.so (this script builds nothing)."""
    import ctypes
    try:
        lib = ctypes.CDLL(os.path.abspath(path))
    except OSError as e:
        print(f"cannot load {path}: {e}")
        return 2
    fn = {"F16": ("ggml_fp32_to_fp16_row", "ggml_fp16_to_fp32_row"),
          "BF16": ("ggml_fp32_to_bf16_row_ref", "ggml_bf16_to_fp32_row")}
    for qt in QUANT_TYPES:
        if qt not in fn:
            low = qt.lower().replace("_k", "_K")
            fn[qt] = (f"quantize_row_{low}_ref", f"dequantize_row_{low}")
    # Older ggml builds convert fp16 through a table that ggml_init() fills: call it once.
    class InitParams(ctypes.Structure):
        _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]
    lib.ggml_init.argtypes = [InitParams]
    lib.ggml_init.restype = ctypes.c_void_p
    lib.ggml_free.argtypes = [ctypes.c_void_p]
    ctx = lib.ggml_init(InitParams(1 << 20, None, False))
    if ctx:
        lib.ggml_free(ctx)
    x = _check_data(n_rows)
    rng = np.random.default_rng(7)
    ok = True
    print(f"libggml {path}; data {x.shape[0]} rows x {x.shape[1]}")
    P = ctypes.c_void_p
    for qt in QUANT_TYPES:
        _, be, bb = TYPES[qt]
        qname, dname = fn[qt]
        qf, df = getattr(lib, qname), getattr(lib, dname)
        qf.argtypes = [P, P, ctypes.c_int64]
        df.argtypes = [P, P, ctypes.c_int64]
        qf.restype = df.restype = None
        src = np.ascontiguousarray(x.reshape(-1))
        theirs = np.zeros(src.size // be * bb, dtype=np.uint8)
        qf(src.ctypes.data, theirs.ctypes.data, src.size)
        mine = quantize(qt, src)
        diff_blocks = int((mine.reshape(-1, bb) != theirs.reshape(-1, bb)).any(axis=1).sum())
        ok &= diff_blocks == 0
        print(f"  {qt:5s} quantize:   {'bit-identical' if diff_blocks == 0 else f'{diff_blocks} of {mine.size // bb} blocks differ'}"
              f" ({mine.size // bb} blocks)")
        if diff_blocks:
            rows_bad = sorted(set((np.nonzero((mine.reshape(-1, bb) != theirs.reshape(-1, bb)).any(axis=1))[0]
                                   * be) // ROW_LEN))
            print(f"        rows with differences: {rows_bad[:20]}")
        rb = random_blocks(qt, 64 * 512 // be, rng)
        for label, data in (("reference-quantized", mine), ("random blocks", rb)):
            data = np.ascontiguousarray(data)
            n = data.size // bb * be
            out = np.zeros(n, dtype=F32)
            df(data.ctypes.data, out.ctypes.data, n)
            a = dequantize(qt, data)
            same = _bits_equal(a, out)
            ok &= same
            nd = int((a.view(np.uint32) != out.view(np.uint32)).sum())
            print(f"  {qt:5s} dequantize ({label}): {'bit-identical' if same else f'{nd} values differ'}")
    ok &= check_libggml_q8k(lib, path, x)
    print("libggml check", "passed" if ok else "FAILED")
    return 0 if ok else 1


def check_libggml_q8k(base, path, x):
    """Q8_K quantization (quantize_row_q8_K_ref in ggml-base, quantize_row_q8_K in ggml-cpu) and the K-quant
    dots of ggml-cpu (libggml-cpu.so beside libggml-base.so; its x86 kernels if it was built for x86 with AVX2)
    against quant_q8_k and vec_dot_q8_k."""
    import ctypes
    P = ctypes.c_void_p
    x = np.concatenate([x, make_q8k_rows(n=x.shape[1])]).astype(F32)
    src = np.ascontiguousarray(x.reshape(-1))
    mine = q8_k_bytes(*quant_q8_k(src))
    ok = True
    fns = [(base, "quantize_row_q8_K_ref")]
    cpu_path = os.path.join(os.path.dirname(os.path.abspath(path)), "libggml-cpu.so")
    cpu = None
    if os.path.exists(cpu_path):
        cpu = ctypes.CDLL(cpu_path)
        cpu.ggml_cpu_init()
        fns.append((cpu, "quantize_row_q8_K"))
    for lib, name in fns:
        f = getattr(lib, name)
        f.argtypes = [P, P, ctypes.c_int64]
        f.restype = None
        theirs = np.zeros(mine.shape, dtype=np.uint8)      # the C leaves bsums of all-zero blocks unwritten
        f(src.ctypes.data, theirs.ctypes.data, src.size)
        bad = int((theirs != mine).any(axis=1).sum())
        ok &= bad == 0
        print(f"  Q8_K  {name}: {'bit-identical' if bad == 0 else f'{bad} of {mine.shape[0]} blocks differ'}"
              f" ({mine.shape[0]} blocks)")
    if cpu is None:
        print(f"  {cpu_path} not found: K-quant dot check skipped")
        return ok
    rng = np.random.default_rng(11)
    a = mine.reshape(x.shape[0], -1)
    n = x.shape[1]
    for qt in ("Q4_K", "Q5_K", "Q6_K"):
        f = getattr(cpu, f"ggml_vec_dot_{qt[:2].lower()}_K_q8_K")
        f.argtypes = [ctypes.c_int, P, ctypes.c_size_t, P, ctypes.c_size_t, P, ctypes.c_size_t, ctypes.c_int]
        f.restype = None
        rb = row_bytes(qt, n)
        w = np.concatenate([quantize(qt, x[:64]).reshape(-1, rb), random_blocks(qt, 64 * n // QK_K, rng).reshape(-1, rb)])
        expect = vec_dot_q8_k(qt, w, a)
        got = np.zeros(expect.shape, dtype=F32)
        out = np.zeros(1, dtype=F32)
        for i in range(w.shape[0]):
            wi = np.ascontiguousarray(w[i])
            for j in range(a.shape[0]):
                aj = np.ascontiguousarray(a[j])
                f(n, out.ctypes.data, 0, wi.ctypes.data, 0, aj.ctypes.data, 0, 1)
                got[i, j] = out[0]
        same = _bits_equal(got, expect)
        ok &= same
        nd = int((got.view(np.uint32) != expect.view(np.uint32)).sum())
        print(f"  {qt:5s} ggml_vec_dot_{qt[:2].lower()}_K_q8_K vs vec_dot_q8_k: "
              f"{'bit-identical' if same else f'{nd} of {got.size} differ'} ({got.size} dots)")
    return ok


# ---------------------------------------------------------------------------------------------
# self-test (no other implementation needed)

def self_test():
    ok = True

    def report(name, cond, detail=""):
        nonlocal ok
        ok &= bool(cond)
        print(f"{'ok  ' if cond else 'FAIL'} {name}{': ' + detail if detail else ''}")

    rng = np.random.default_rng(5)
    # fp16: numpy's cast vs the integer-only conversion, on random bit patterns and edge values
    bits = rng.integers(0, 2 ** 32, 2_000_000, dtype=np.uint64).astype(np.uint32)
    edge = np.array([0, 0x80000000, 0x33000000, 0x33000001, 0x32FFFFFF, 0x387FC000, 0x387FE000, 0x38800000,
                     0x477FE000, 0x477FEFFF, 0x477FF000, 0x7F800000, 0xFF800000, 0x3F800000, 0x3F801000,
                     0x3F803000, 0x3F802FFF, 0x00000001, 0x7F7FFFFF], dtype=np.uint32)
    v = np.concatenate([bits, edge]).view(F32)
    v = v[~np.isnan(v)]
    a, b = fp16_bits(v), fp16_bits_manual(v)
    report("fp32->fp16 numpy cast == integer RNE conversion", np.array_equal(a, b),
           f"{v.size} values, {int((a != b).sum())} differ")
    # bf16
    u = np.array([0x3F808000, 0x3F818000, 0x3F808001, 0x7F7FFFFF, 0x7FC00001, 0xFF800001], dtype=np.uint32)
    report("fp32->bf16 rounding", bf16_bits(u.view(F32)).tolist() == [0x3F80, 0x3F82, 0x3F81, 0x7F80, 0x7FC0, 0xFFC0],
           str([hex(t) for t in bf16_bits(u.view(F32))]))
    # nearest_int == round half to even, inside its domain
    f = np.concatenate([rng.uniform(-4e6, 4e6, 100000), np.arange(-40, 40) / 2.0]).astype(F32)
    report("nearest_int == rint (half to even)", np.array_equal(nearest_int(f), np.rint(f).astype(np.int64)))
    report("roundf halves away from zero", roundf(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999997], F32)).tolist()
           == [1, 2, 3, -1, -3, 0])
    # layouts from hand-made blocks
    blk = np.zeros(18, np.uint8)
    blk[0:2] = _u16_bytes(fp16_bits(np.array([2.0], F32)))[0]
    blk[2:18] = np.arange(16) | ((15 - np.arange(16)) << 4)
    y = dequantize("Q4_0", blk)
    report("Q4_0 low nibbles are elements 0..15, high nibbles 16..31",
           y.tolist() == [2.0 * (k - 8) for k in range(16)] + [2.0 * (7 - k) for k in range(16)])
    blk = np.zeros(22, np.uint8)
    blk[0:2] = _u16_bytes(fp16_bits(np.array([1.0], F32)))[0]
    blk[2:6] = np.frombuffer(np.uint32(0x80000001).tobytes(), np.uint8)   # bits 0 and 31
    y = dequantize("Q5_0", blk)
    report("Q5_0 qh bit j is the 5th bit of element j", y[0] == 0 and y[31] == 0 and y[1] == -16 and y[16] == -16)
    # get_scale_min_k4 is the inverse of the packing, for all 6-bit values
    ls = rng.integers(0, 64, (1000, 8))
    lm = rng.integers(0, 64, (1000, 8))
    packed = _pack_scale_min_k4(ls, lm)
    back = np.stack([np.stack(get_scale_min_k4(j, packed), axis=1) for j in range(8)], axis=1)
    report("Q4_K/Q5_K 12-byte scale packing round-trips", np.array_equal(back[:, :, 0], ls) and
           np.array_equal(back[:, :, 1], lm))
    # Q6_K: one nonzero quant per position class
    blk = np.zeros(210, np.uint8)
    blk[208:210] = _u16_bytes(fp16_bits(np.array([0.5], F32)))[0]
    blk[192:208] = np.arange(1, 17).astype(np.int8).view(np.uint8)
    blk[0:128] = 0x00
    blk[128:192] = 0x00
    y = dequantize("Q6_K", blk)
    expect = np.repeat(np.arange(1, 17), 16) * 0.5 * -32
    report("Q6_K all-zero quants give d*scale*(-32) per 16-sub-block", np.array_equal(y, expect.astype(F32)))
    blk[64 + 5] = 0x21          # half 1, ql[l=5]: low nibble 1 -> element 128+5, high 2 -> element 128+64+5
    blk[128 + 32 + 5] = 0b11100100   # qh half 1, l=5: bits (0,1)=0 -> e128+5; (2,3)=1 -> e160+5; (4,5)=2; (6,7)=3
    y = dequantize("Q6_K", blk)
    d = lambda s: 0.5 * (s + 1)
    report("Q6_K ql/qh bit placement", y[133] == d(8) * (1 - 32) and y[165] == d(10) * (16 - 32)
           and y[197] == d(12) * (2 + 32 - 32) and y[229] == d(14) * (48 - 32))
    # round trip error of the reference quantizers on N(0,1) data
    x = rng.standard_normal((8, 512)).astype(F32)
    limits = {"F16": 1e-3, "BF16": 5e-3, "Q8_0": 0.01, "Q4_0": 0.12, "Q4_1": 0.12, "Q5_0": 0.06, "Q5_1": 0.06,
              "Q4_K": 0.11, "Q5_K": 0.055, "Q6_K": 0.03}
    for qt in QUANT_TYPES:
        y = dequantize(qt, quantize(qt, x)).reshape(x.shape)
        rel = np.sqrt(((y - x) ** 2).mean()) / np.sqrt((x ** 2).mean())
        report(f"{qt} quantize->dequantize relative rms error", rel < limits[qt], f"{rel:.4f} (limit {limits[qt]})")
    # a few known bytes
    xi = rng.integers(-127, 128, 32).astype(F32)
    xi[3] = -127
    q = quantize("Q8_0", xi)
    report("Q8_0 known block (amax 127 -> d 1, qs = x)", q[:2].tolist() == [0x00, 0x3C]
           and q[2:].view(np.int8).tolist() == xi.astype(int).tolist())
    q = quantize("Q4_0", np.zeros(32, F32))
    report("Q4_0 all-zero block: d = -0.0 (0x8000), quants 8", q[:2].tolist() == [0, 0x80]
           and set(q[2:].tolist()) == {0x88})
    q = quantize("Q6_K", np.zeros(256, F32))
    report("Q6_K all-zero block is all zero bytes", not q.any())
    # Q8_K: max -127 gives iscale 1, so the codes are x rounded half to even; +127 first wins over a later -127
    xb = np.zeros(256, F32)
    xb[:6] = [-127, 0.5, 1.5, 2.5, -0.5, -1.5]
    d, q, bs = quant_q8_k(xb)
    report("Q8_K known block (max -127: d 1, ties to even, bsums)", d[0] == 1 and q[0, :6].tolist() == [-127, 0, 2, 2, 0, -2]
           and bs[0, 0] == -125 and not bs[0, 1:].any())
    xb[:2] = [127, -127]
    d, q, _ = quant_q8_k(xb)
    report("Q8_K keeps the sign of the first largest |x|", d[0] == -1 and q[0, :2].tolist() == [-127, 127])
    # fma32: a*b + c exactly halfway in float64 but not exactly: 1 + 2^-23 + 2^-24 - 2^-60 rounds down to 1 + 2^-23
    a, b, c = F32(2.0 ** -24 * (1 + 2.0 ** -18)), F32(1 - 2.0 ** -18), F32(1 + 2.0 ** -23)
    report("fma32 rounds once where float64 would round twice", fma32(a, b, c) == F32(1 + 2.0 ** -23)
           and ((a.astype(np.float64) * b + c).astype(F32)) == F32(1 + 2.0 ** -22))
    print("self-test", "passed" if ok else "FAILED")
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--write-fixtures", metavar="DIR")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--check-rows", type=int, default=512, help="extra random rows of 512 for the checks")
    ap.add_argument("--check-gguf-py", metavar="DIR", nargs="?", const="/work/llama.cpp/gguf-py")
    ap.add_argument("--check-libggml", metavar="SO", nargs="?", const="/work/llama.cpp/build/bin/libggml-base.so")
    a = ap.parse_args(argv)
    rc = 0
    did = False
    if a.self_test:
        rc |= self_test()
        did = True
    if a.write_fixtures:
        write_fixtures(a.write_fixtures, a.seed)
        did = True
    if a.check_gguf_py:
        if os.path.isdir(a.check_gguf_py):
            rc |= check_gguf_py(a.check_gguf_py, a.check_rows)
        else:
            print(f"{a.check_gguf_py} not found: gguf-py check skipped")
        did = True
    if a.check_libggml:
        if os.path.exists(a.check_libggml):
            rc |= check_libggml(a.check_libggml, a.check_rows)
        else:
            print(f"{a.check_libggml} not found: libggml check skipped")
        did = True
    if not did:
        ap.print_help()
    return rc


if __name__ == "__main__":
    sys.exit(main())
