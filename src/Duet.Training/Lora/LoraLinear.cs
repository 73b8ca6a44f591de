// A linear layer with a low-rank update (LoRA, Hu et al. 2021; PEFT's formula), over a frozen base weight kept in
// its own type (F32, F16, BF16, Q8_0, Q4_0, K-quants; memory-mapped, as QLoRA keeps a 4-bit base):
//   y  = x Wᵀ + s · (x Aᵀ) Bᵀ          W [out, in] frozen, A [r, in], B [out, r] trained,
//   s  = alpha / r  (rsLoRA: alpha / sqrt(r))
// and its backward, with u = x Aᵀ [N, r] saved from the forward:
//   dB += s · dyᵀ u      du = s · dy B      dA += duᵀ x      dx += dy W + du A
// The base's rows are dequantized on the fly: the forward through MatMul in float (QuantizedMath.Float: the
// dequantized weights times float activations, as PyTorch runs a dequantized model), the input gradient by blocks
// of rows dequantized into a buffer and multiplied by Sgemm. Every sum runs in an order that does not depend on the
// thread count (MatMul gives a row of W to one thread; Sgemm splits no sum), so a run resumes bit for bit.
//   torch (PEFT): y = F.linear(x, W) + scale * F.linear(F.linear(x, A), B)
using Duet.Tensors;
using Duet.Tensors.Kernels;
using Duet.Tensors.Parallel;

namespace Duet.Training.Lora;

public sealed record LoraOptions
{
    public int Rank { get; init; } = 16;
    public float Alpha { get; init; } = 32;
    /// <summary>rsLoRA (Kalajdzievski 2023): scale alpha / sqrt(rank) instead of alpha / rank.</summary>
    public bool RsLora { get; init; }
    public float Scale => RsLora ? Alpha / MathF.Sqrt(Rank) : Alpha / Rank;
}

public static unsafe class LoraLinear
{
    /// <summary>Rows of W dequantized at a time for the input gradient (a buffer of BlockRows × in floats).</summary>
    public const int BlockRows = 64;

    /// <summary>
    /// y[N, out] = x Wᵀ + scale · u Bᵀ with u[N, r] = x Aᵀ (written, for the backward).
    /// </summary>
    public static void Forward(WeightMatrix w, float* x, int rows, float* a, float* b, int rank, float scale, float* u, float* y, WorkerPool pool)
    {
        int inDim = w.Cols, outDim = w.Rows;
        if (w.Type == GgmlType.F32) MatOps.Forward(x, (float*)w.Data, rows, inDim, outDim, y, pool);
        else MatMul.Multiply(w, new ReadOnlySpan<float>(x, rows * inDim), new Span<float>(y, rows * outDim), rows, pool, invariant: false, QuantizedMath.Float);
        MatOps.Forward(x, a, rows, inDim, rank, u, pool);
        // y += (scale · u) Bᵀ
        Sgemm.Gemm(false, true, rows, outDim, rank, ScaledCopy(u, rows * rank, scale), rank, b, rank, y, outDim, accumulate: true, pool);
    }

    /// <summary>
    /// Gradients of <see cref="Forward"/>: dA += duᵀ x, dB += scale · dyᵀ u, and dx += dy W + du A (if dx is not
    /// null), with du = scale · dy B. <paramref name="du"/> is scratch of N × r floats; <paramref name="wRows"/> of
    /// BlockRows × in floats (unused for an F32 base).
    /// </summary>
    public static void Backward(WeightMatrix w, float* x, float* u, float* dy, int rows, float* a, float* b, int rank, float scale,
        float* dx, float* dA, float* dB, float* du, float* wRows, WorkerPool pool)
    {
        int inDim = w.Cols, outDim = w.Rows;
        // du = scale · dy B   [N, r]
        Sgemm.Gemm(false, false, rows, rank, outDim, dy, outDim, b, rank, du, rank, accumulate: false, pool);
        Scale(du, rows * rank, scale);
        // dB += scale · dyᵀ u  [out, r]
        var su = ScaledCopy(u, rows * rank, scale);
        Sgemm.Gemm(true, false, outDim, rank, rows, dy, outDim, su, rank, dB, rank, accumulate: true, pool);
        // dA += duᵀ x  [r, in]
        Sgemm.Gemm(true, false, rank, inDim, rows, du, rank, x, inDim, dA, inDim, accumulate: true, pool);
        if (dx == null) return;
        // dx += du A  [N, in]
        Sgemm.Gemm(false, false, rows, inDim, rank, du, rank, a, inDim, dx, inDim, accumulate: true, pool);
        // dx += dy W: the base's rows in blocks, dequantized
        if (w.Type == GgmlType.F32) { MatOps.BackwardInput(dy, (float*)w.Data, rows, inDim, outDim, dx, pool); return; }
        for (int r0 = 0; r0 < outDim; r0 += BlockRows)
        {
            int n = Math.Min(BlockRows, outDim - r0);
            for (int r = 0; r < n; r++) w.DequantizeRow(r0 + r, new Span<float>(wRows + (long)r * inDim, inDim));
            Sgemm.Gemm(false, false, rows, inDim, n, dy + r0, outDim, wRows, inDim, dx, inDim, accumulate: true, pool);
        }
    }

    [ThreadStatic] private static float[]? t_scaled;

    /// <summary>scale · v in a per-thread buffer (valid until the next call on this thread).</summary>
    private static float* ScaledCopy(float* v, int n, float scale)
    {
        var buffer = t_scaled is { } s && s.Length >= n ? s : t_scaled = GC.AllocateArray<float>(n, pinned: true);
        fixed (float* p = buffer)
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(v, n), scale, new Span<float>(p, n));
            return p; // pinned: the address stays valid
        }
    }

    private static void Scale(float* v, int n, float scale) =>
        System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(v, n), scale, new Span<float>(v, n));
}
