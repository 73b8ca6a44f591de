// The ops of a LLaMA training step, each forward beside its backward (llm.c style), over raw float rows.
// Conventions: row-major; a weight W is [out, in] as in Hugging Face (y = x Wᵀ); every backward ADDS into the
// gradients of its inputs and weights (the residual stream sums its branches, a tied embedding gets two
// contributions), so callers zero gradient buffers once per step. Each function works on a range of rows
// [r0, r1) so the model can run rows in parallel; reductions over rows (norm weights) go into per-chunk
// partial sums that the caller adds in a fixed order, which keeps results bit-identical for any thread count.
// PyTorch equivalents are given per op; tests/reference/train_step.py holds the reference and the fixtures.
// Arguments in the order of docs/CONVENTIONS.md: inputs, then sizes and scalars, then outputs (buffers changed in
// place count as outputs), then the range of rows this call covers. docs/HOWTO-add-op.md walks through adding one.
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Duet.Tensors.Kernels;

namespace Duet.Training.Ops;

public static unsafe class RmsNormOp
{
    /// <summary>y = x · r · w, r = 1/√(mean(x²) + eps), r saved per row.   torch: x * rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w</summary>
    public static void Forward(float* x, float* w, int dim, float eps, float* y, float* rstd, int r0, int r1)
    {
        var wv = new ReadOnlySpan<float>(w, dim);
        for (int r = r0; r < r1; r++)
        {
            var xr = new ReadOnlySpan<float>(x + (long)r * dim, dim);
            var yr = new Span<float>(y + (long)r * dim, dim);
            float s = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xr) / dim + eps);
            rstd[r] = s;
            TensorPrimitives.Multiply(xr, s, yr);
            TensorPrimitives.Multiply(yr, wv, yr);
        }
    }

    /// <summary>
    /// dx += r·(dy⊙w) − x·r³/D·Σ(dy⊙w⊙x);  dwPartial += Σ_rows dy⊙x·r over [r0, r1).
    /// <paramref name="scratch"/> holds dim floats.
    /// </summary>
    public static void Backward(float* dy, float* x, float* w, float* rstd, int dim, float* dx, float* dwPartial, float* scratch, int r0, int r1)
    {
        var wv = new ReadOnlySpan<float>(w, dim);
        var g = new Span<float>(scratch, dim);
        var dw = new Span<float>(dwPartial, dim);
        for (int r = r0; r < r1; r++)
        {
            var xr = new ReadOnlySpan<float>(x + (long)r * dim, dim);
            var dyr = new ReadOnlySpan<float>(dy + (long)r * dim, dim);
            var dxr = new Span<float>(dx + (long)r * dim, dim);
            float s = rstd[r];
            TensorPrimitives.Multiply(dyr, wv, g);                  // g = dy ⊙ w
            float dot = TensorPrimitives.Dot(g, xr);
            float c = -dot * s * s * s / dim;
            TensorPrimitives.MultiplyAdd(g, s, dxr, dxr);           // dx += r g
            TensorPrimitives.MultiplyAdd(xr, c, dxr, dxr);          // dx −= x r³ Σ(g x) / D
            TensorPrimitives.Multiply(dyr, xr, g);                  // dw += dy ⊙ x · r
            TensorPrimitives.MultiplyAdd(g, s, dw, dw);
        }
    }
}

/// <summary>
/// Rotary position embedding in the Hugging Face layout (rotate_half): for d &lt; hd/2 the pair is (d, d + hd/2),
///   y[d] = x[d] cos − x[d+h] sin,   y[d+h] = x[d+h] cos + x[d] sin,   angle = pos · θ^(−2d/hd).
/// Backward is the inverse rotation. GGUF stores Q/K rows permuted so that llama.cpp's interleaved pairs give the
/// same result (ModelPackage.WriteGguf applies it on export); training over such a base in place (LoRA over a GGUF)
/// rotates the interleaved pairs (2d, 2d + 1) instead (llama.cpp's LLAMA_ROPE_TYPE_NORM), at the same angles.
/// </summary>
public static unsafe class RopeOp
{
    /// <summary>cos and sin tables [positions, hd/2], angles computed in double.</summary>
    public static (float[] Cos, float[] Sin) Tables(int positions, int headDim, double theta, int firstPosition = 0)
    {
        int half = headDim / 2;
        var cos = new float[positions * half];
        var sin = new float[positions * half];
        for (int p = 0; p < positions; p++)
            for (int d = 0; d < half; d++)
            {
                double inv = 1.0 / Math.Pow(theta, 2.0 * d / headDim);
                double a = (firstPosition + p) * inv;
                cos[p * half + d] = (float)Math.Cos(a);
                sin[p * half + d] = (float)Math.Sin(a);
            }
        return (cos, sin);
    }

    /// <summary>
    /// In place on rows [r0, r1) of x [rows, heads·hd]; row r is at position r % seqLen, or, with
    /// <paramref name="starts"/> (per row, the first position of its packed conversation), r % seqLen − starts[r].
    /// inverse: the backward rotation (by −angle), for gradients.
    /// </summary>
    public static void Apply(float* cos, float* sin, int heads, int headDim, int seqLen, bool inverse, float* x, int r0, int r1, int* starts = null, bool interleaved = false)
    {
        int half = headDim / 2, width = heads * headDim;
        // pair d: (d, d + hd/2) in the HF layout, (2d, 2d + 1) interleaved
        int stride = interleaved ? 2 : 1, partner = interleaved ? 1 : half;
        float sign = inverse ? -1f : 1f;
        for (int r = r0; r < r1; r++)
        {
            int pos = r % seqLen - (starts == null ? 0 : starts[r]);
            float* c = cos + pos * half, s = sin + pos * half;
            for (int h = 0; h < heads; h++)
            {
                float* v = x + (long)r * width + h * headDim;
                for (int d = 0; d < half; d++)
                {
                    int i = d * stride;
                    float a = v[i], b = v[i + partner], sn = sign * s[d];
                    v[i] = a * c[d] - b * sn;
                    v[i + partner] = b * c[d] + a * sn;
                }
            }
        }
    }
}

/// <summary>SwiGLU: y = silu(g) ⊙ u, silu(g) = g·σ(g).   torch: F.silu(gate) * up
/// Vectorized with Vector512/256.Exp. A range's last few elements go through the same vector code on a padded copy,
/// so every element gets the same bits wherever the threads' ranges end.</summary>
public static unsafe class SwiGluOp
{
    public static void Forward(float* g, float* u, float* y, long start, long end)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            for (long j = start; j < end; j++) y[j] = g[j] / (1f + MathF.Exp(-g[j])) * u[j];
            return;
        }
        long i = start;
        for (; i + 16 <= end; i += 16) Forward16(g + i, u + i, y + i);
        if (i < end)
        {
            int n = (int)(end - i);
            float* tg = stackalloc float[16], tu = stackalloc float[16], ty = stackalloc float[16];
            Pad(g + i, tg, n); Pad(u + i, tu, n);
            Forward16(tg, tu, ty);
            new ReadOnlySpan<float>(ty, n).CopyTo(new Span<float>(y + i, n));
        }
    }

    /// <summary>dg += dy·u·σ(g)(1 + g(1 − σ(g))),  du += dy·silu(g); with <paramref name="overwrite"/> dg, du = those
    /// (their old values are not read: no clearing pass when nothing else adds to them).</summary>
    public static void Backward(float* dy, float* g, float* u, float* dg, float* du, long start, long end, bool overwrite = false)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            for (long j = start; j < end; j++)
            {
                float x = g[j], sg = 1f / (1f + MathF.Exp(-x));
                float a = dy[j] * u[j] * sg * (1f + x * (1f - sg)), b = dy[j] * x * sg;
                dg[j] = overwrite ? a : dg[j] + a;
                du[j] = overwrite ? b : du[j] + b;
            }
            return;
        }
        long i = start;
        for (; i + 16 <= end; i += 16) Backward16(dy + i, g + i, u + i, dg + i, du + i, overwrite);
        if (i < end)
        {
            int n = (int)(end - i);
            float* t = stackalloc float[5 * 16];
            Pad(dy + i, t, n); Pad(g + i, t + 16, n); Pad(u + i, t + 32, n); Pad(dg + i, t + 48, n); Pad(du + i, t + 64, n);
            Backward16(t, t + 16, t + 32, t + 48, t + 64, overwrite);
            new ReadOnlySpan<float>(t + 48, n).CopyTo(new Span<float>(dg + i, n));
            new ReadOnlySpan<float>(t + 64, n).CopyTo(new Span<float>(du + i, n));
        }
    }

    private static void Pad(float* src, float* dst, int n)
    {
        new ReadOnlySpan<float>(src, n).CopyTo(new Span<float>(dst, 16));
        new Span<float>(dst + n, 16 - n).Clear();
    }

    private static void Forward16(float* g, float* u, float* y)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            var x = Vector512.Load(g);
            (x / (Vector512<float>.One + Vector512.Exp(-x)) * Vector512.Load(u)).Store(y);
        }
        else
            for (int h = 0; h < 16; h += 8)
            {
                var x = Vector256.Load(g + h);
                (x / (Vector256<float>.One + Vector256.Exp(-x)) * Vector256.Load(u + h)).Store(y + h);
            }
    }

    private static void Backward16(float* dy, float* g, float* u, float* dg, float* du, bool overwrite)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            var x = Vector512.Load(g); var d = Vector512.Load(dy); var one = Vector512<float>.One;
            var sg = one / (one + Vector512.Exp(-x));
            var a = d * Vector512.Load(u) * sg * (one + x * (one - sg)); var b = d * x * sg;
            (overwrite ? a : Vector512.Load(dg) + a).Store(dg);
            (overwrite ? b : Vector512.Load(du) + b).Store(du);
        }
        else
            for (int h = 0; h < 16; h += 8)
            {
                var x = Vector256.Load(g + h); var d = Vector256.Load(dy + h); var one = Vector256<float>.One;
                var sg = one / (one + Vector256.Exp(-x));
                var a = d * Vector256.Load(u + h) * sg * (one + x * (one - sg)); var b = d * x * sg;
                (overwrite ? a : Vector256.Load(dg + h) + a).Store(dg + h);
                (overwrite ? b : Vector256.Load(du + h) + b).Store(du + h);
            }
    }
}

/// <summary>
/// Causal grouped-query attention for one sequence and one KV head with its group of query heads:
///   S = q kᵀ / √hd (s ≤ t), P = softmax(S), o = P v.   torch: F.scaled_dot_product_attention(q, k, v, is_causal=True)
/// with query head h reading KV head h / (H / Hkv) (HF repeat_kv). q, o: [T, H·hd] rows of the sequence; k, v:
/// [T, Hkv·hd]; P saved as [H, T, T] for the backward. The backward of a KV head sums over its query heads in a
/// fixed order, so one job per (sequence, KV head) writes its dk, dv alone.
/// Both directions run as matrix products on Sgemm's register tiles, a block of <see cref="BlockRows"/> query rows
/// at a time against the keys up to the block's last position (the causal triangle costs one block's overhang, not
/// the whole upper half): forward S = Q Kᵀ, the row softmax, O = P V; backward dP = dO Vᵀ, dS, dQ += dS K,
/// dK += dSᵀ Q, dV += Pᵀ dO. Each job runs its products on its own thread in a fixed order, so the bits do not
/// depend on the thread count.
/// </summary>
public static unsafe class AttentionOp
{
    /// <summary>Query rows per block.</summary>
    public const int BlockRows = 64;

    /// <summary>Floats of scratch one Backward call needs (one block's dP / dS rows).</summary>
    public static long ScratchFloats(int seqLen) => (long)Math.Min(BlockRows, seqLen) * seqLen;

    /// <param name="starts">null, or per position the first position of its packed conversation: position t attends
    /// to starts[t]..t only (a block-diagonal causal mask), so packed conversations do not see each other.</param>
    public static void Forward(float* q, float* k, float* v, int seqLen, int heads, int kvHeads, int headDim, int kvHead, float* o, float* p, int* starts = null)
    {
        int group = heads / kvHeads, qw = heads * headDim, kw = kvHeads * headDim;
        float scale = 1f / MathF.Sqrt(headDim);
        float* kh = k + kvHead * headDim, vh = v + kvHead * headDim;
        for (int h = kvHead * group; h < (kvHead + 1) * group; h++)
        {
            float* ph = p + (long)h * seqLen * seqLen;
            for (int t0 = 0; t0 < seqLen; t0 += BlockRows)
            {
                int rows = Math.Min(BlockRows, seqLen - t0), end = t0 + rows;
                int kmin = starts == null ? 0 : starts[t0];   // conversations are contiguous: the block's first row starts earliest
                float* pb = ph + (long)t0 * seqLen;
                // S = Q Kᵀ for the block's rows and keys [kmin, end)
                Sgemm.Gemm(false, true, rows, end - kmin, headDim, q + (long)t0 * qw + h * headDim, qw, kh + (long)kmin * kw, kw, pb + kmin, seqLen, accumulate: false);
                for (int t = t0; t < end; t++)
                {
                    float* pr = ph + (long)t * seqLen;
                    int first = starts == null ? 0 : starts[t];
                    new Span<float>(pr, first).Clear();
                    new Span<float>(pr + t + 1, seqLen - t - 1).Clear();
                    var row = new Span<float>(pr + first, t + 1 - first);
                    float sum = RowOps.ExpSum(pr + first, row.Length, TensorPrimitives.Max(row), scale);
                    TensorPrimitives.Multiply(row, 1f / sum, row);
                }
                // O = P V over the same keys
                Sgemm.Gemm(false, false, rows, headDim, end - kmin, pb + kmin, seqLen, vh + (long)kmin * kw, kw, o + (long)t0 * qw + h * headDim, qw, accumulate: false);
            }
        }
    }

    /// <summary>
    /// dP = do vᵀ, dS = P ⊙ (dP − Σ_s P dP), dq += dS k / √hd, dk += dSᵀ q / √hd, dv += Pᵀ do.
    /// <paramref name="scratch"/> holds <see cref="ScratchFloats"/>(seqLen) floats.
    /// </summary>
    public static void Backward(float* dout, float* q, float* k, float* v, float* p, int seqLen, int heads, int kvHeads, int headDim, int kvHead,
        float* dq, float* dk, float* dv, float* scratch, int* starts = null)
    {
        int group = heads / kvHeads, qw = heads * headDim, kw = kvHeads * headDim;
        float scale = 1f / MathF.Sqrt(headDim);
        float* kh = k + kvHead * headDim, vh = v + kvHead * headDim, dkh = dk + kvHead * headDim, dvh = dv + kvHead * headDim;
        for (int h = kvHead * group; h < (kvHead + 1) * group; h++)
        {
            float* ph = p + (long)h * seqLen * seqLen;
            for (int t0 = 0; t0 < seqLen; t0 += BlockRows)
            {
                int rows = Math.Min(BlockRows, seqLen - t0), end = t0 + rows;
                int kmin = starts == null ? 0 : starts[t0], n = end - kmin;
                float* pb = ph + (long)t0 * seqLen + kmin, dob = dout + (long)t0 * qw + h * headDim, qb = q + (long)t0 * qw + h * headDim;
                // dP = dO Vᵀ into the scratch [rows, n] (row stride seqLen), then dS = P ⊙ (dP − Σ P dP) / √hd in place
                Sgemm.Gemm(false, true, rows, n, headDim, dob, qw, vh + (long)kmin * kw, kw, scratch, seqLen, accumulate: false);
                for (int i = 0; i < rows; i++)
                {
                    float* pr = pb + (long)i * seqLen, ds = scratch + (long)i * seqLen;
                    RowOps.SoftmaxGrad(pr, ds, n, TensorPrimitives.Dot(new ReadOnlySpan<float>(pr, n), new ReadOnlySpan<float>(ds, n)), scale);
                }
                Sgemm.Gemm(false, false, rows, headDim, n, scratch, seqLen, kh + (long)kmin * kw, kw, dq + (long)t0 * qw + h * headDim, qw, accumulate: true);
                Sgemm.Gemm(true, false, n, headDim, rows, scratch, seqLen, qb, qw, dkh + (long)kmin * kw, kw, accumulate: true);
                Sgemm.Gemm(true, false, n, headDim, rows, pb, seqLen, dob, qw, dvh + (long)kmin * kw, kw, accumulate: true);
            }
        }
    }
}

/// <summary>One-pass row loops of the softmaxes (cross-entropy, attention): each pass over a row counts.</summary>
internal static unsafe class RowOps
{
    /// <summary>z ← exp((z − shift)·scale) in place over n values; returns their sum.</summary>
    public static float ExpSum(float* z, int n, float shift, float scale)
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var acc = Vector512<float>.Zero; var m = Vector512.Create(shift); var sc = Vector512.Create(scale);
            for (; i + 16 <= n; i += 16) { var e = Vector512.Exp((Vector512.Load(z + i) - m) * sc); e.Store(z + i); acc += e; }
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var acc = Vector256<float>.Zero; var m = Vector256.Create(shift); var sc = Vector256.Create(scale);
            for (; i + 8 <= n; i += 8) { var e = Vector256.Exp((Vector256.Load(z + i) - m) * sc); e.Store(z + i); acc += e; }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++) { float e = MathF.Exp((z[i] - shift) * scale); z[i] = e; sum += e; }
        return sum;
    }

    /// <summary>ds ← p ⊙ (ds − dot)·scale over n values (softmax backward, dot = Σ p ⊙ ds).</summary>
    public static void SoftmaxGrad(float* p, float* ds, int n, float dot, float scale)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var d = Vector512.Create(dot); var sc = Vector512.Create(scale);
            for (; i + 16 <= n; i += 16) ((Vector512.Load(ds + i) - d) * Vector512.Load(p + i) * sc).Store(ds + i);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var d = Vector256.Create(dot); var sc = Vector256.Create(scale);
            for (; i + 8 <= n; i += 8) ((Vector256.Load(ds + i) - d) * Vector256.Load(p + i) * sc).Store(ds + i);
        }
        for (; i < n; i++) ds[i] = (ds[i] - dot) * p[i] * scale;
    }
}

/// <summary>
/// Softmax cross-entropy over rows of logits [rows, vocab]: loss_r = logsumexp(z_r) − z_r[target_r], nothing for a
/// target &lt; 0 (masked).   torch: F.cross_entropy(z, t, ignore_index=-1, reduction="none")
/// The forward leaves softmax(z) in the buffer (the backward and perplexity need nothing else), one pass fewer
/// over the largest activation of a small model.
/// </summary>
public static unsafe class CrossEntropyOp
{
    /// <summary>Per-row losses (0 for masked rows); the logits are replaced by their softmax.</summary>
    public static void Forward(float* logits, int* targets, int vocab, float* losses, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
        {
            var z = new Span<float>(logits + (long)r * vocab, vocab);
            int t = targets[r];
            if (t >= vocab) throw new ArgumentOutOfRangeException(nameof(targets), $"target {t} is outside the vocabulary of {vocab}");
            float max = TensorPrimitives.Max(z);
            float zt = t >= 0 ? z[t] : 0;
            float sum = RowOps.ExpSum(logits + (long)r * vocab, vocab, max, 1f);
            losses[r] = t < 0 ? 0f : max + MathF.Log(sum) - zt;
            TensorPrimitives.Multiply(z, 1f / sum, z);
        }
    }

    /// <summary>In place: the softmax rows become dlogits = scale·(softmax(z) − onehot(target)); masked rows 0.</summary>
    public static void Backward(float* probs, int* targets, int vocab, float scale, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
        {
            var z = new Span<float>(probs + (long)r * vocab, vocab);
            int t = targets[r];
            if (t < 0) { z.Clear(); continue; }
            TensorPrimitives.Multiply(z, scale, z);
            z[t] -= scale;
        }
    }
}

/// <summary>Token embedding: x[r] = E[id[r]].   torch: F.embedding(ids, E)</summary>
public static unsafe class EmbeddingOp
{
    public static void Forward(float* table, int* ids, int dim, float* x, int r0, int r1)
    {
        for (int r = r0; r < r1; r++)
            new ReadOnlySpan<float>(table + (long)ids[r] * dim, dim).CopyTo(new Span<float>(x + (long)r * dim, dim));
    }

    /// <summary>dE[id[r]] += dx[r] for columns [c0, c1), rows in order (repeated ids add up in the same order on any thread count).</summary>
    public static void Backward(float* dx, int* ids, int dim, int rows, float* dTable, int c0, int c1)
    {
        for (int r = 0; r < rows; r++)
        {
            float* src = dx + (long)r * dim, dst = dTable + (long)ids[r] * dim;
            for (int c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}
