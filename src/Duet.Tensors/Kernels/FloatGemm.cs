// The register-blocked core of prompt processing for float weight panels (F32 rows in place, F16 and other
// formats expanded once per batch): a tile of 4 weight rows x 4 activation rows keeps 16 accumulators in
// registers, so each 16-float step loads 8 vectors for 16 FMAs instead of 2 loads per FMA as a plain dot
// product does; the weight panel is read once per 4 tokens instead of once per token.
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Duet.Tensors.Kernels;

public static unsafe class FloatGemm
{
    // F32 weight rows are read in place, from memory, once per batch: the first tile over four rows prefetches, line for
    // line, the next four (next + j·cols), so those loads are in flight while this group's other tiles compute from L1.
    // Only where the data comes from changes; the sums are untouched.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Prefetch4(float* p, int cols)
    {
        Sse.Prefetch0(p);
        Sse.Prefetch0(p + cols);
        Sse.Prefetch0(p + 2 * cols);
        Sse.Prefetch0(p + 3 * cols);
    }

    /// <summary>
    /// out[4·t + i] = Σ_k w_i[k]·x[t·ldx + k] for i, t in 0..3.   torch: (x[:4] @ w[:4].T).T
    /// <paramref name="next"/>, if not null: the first of the next four rows (cols floats apart), to prefetch.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)] // hot from the first call: no tier-0 vector code
    public static void Tile4x4(float* w0, float* w1, float* w2, float* w3, float* x, int ldx, int cols, float* result, float* next = null)
    {
        if (!CpuProfile.Current.Avx512 || cols % 16 != 0)
        {
            for (int t = 0; t < 4; t++)
                for (int i = 0; i < 4; i++)
                {
                    float* wi = i switch { 0 => w0, 1 => w1, 2 => w2, _ => w3 };
                    result[4 * t + i] = TensorPrimitives.Dot(new ReadOnlySpan<float>(wi, cols), new ReadOnlySpan<float>(x + t * ldx, cols));
                }
            return;
        }
        float* x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        for (int k = 0; k < cols; k += 16)
        {
            if (next != null) Prefetch4(next + k, cols);
            var a0 = Avx512F.LoadVector512(x0 + k); var a1 = Avx512F.LoadVector512(x1 + k);
            var a2 = Avx512F.LoadVector512(x2 + k); var a3 = Avx512F.LoadVector512(x3 + k);
            var b = Avx512F.LoadVector512(w0 + k);
            c00 = Avx512F.FusedMultiplyAdd(a0, b, c00); c10 = Avx512F.FusedMultiplyAdd(a1, b, c10);
            c20 = Avx512F.FusedMultiplyAdd(a2, b, c20); c30 = Avx512F.FusedMultiplyAdd(a3, b, c30);
            b = Avx512F.LoadVector512(w1 + k);
            c01 = Avx512F.FusedMultiplyAdd(a0, b, c01); c11 = Avx512F.FusedMultiplyAdd(a1, b, c11);
            c21 = Avx512F.FusedMultiplyAdd(a2, b, c21); c31 = Avx512F.FusedMultiplyAdd(a3, b, c31);
            b = Avx512F.LoadVector512(w2 + k);
            c02 = Avx512F.FusedMultiplyAdd(a0, b, c02); c12 = Avx512F.FusedMultiplyAdd(a1, b, c12);
            c22 = Avx512F.FusedMultiplyAdd(a2, b, c22); c32 = Avx512F.FusedMultiplyAdd(a3, b, c32);
            b = Avx512F.LoadVector512(w3 + k);
            c03 = Avx512F.FusedMultiplyAdd(a0, b, c03); c13 = Avx512F.FusedMultiplyAdd(a1, b, c13);
            c23 = Avx512F.FusedMultiplyAdd(a2, b, c23); c33 = Avx512F.FusedMultiplyAdd(a3, b, c33);
        }
        result[0] = Vector512.Sum(c00); result[1] = Vector512.Sum(c01); result[2] = Vector512.Sum(c02); result[3] = Vector512.Sum(c03);
        result[4] = Vector512.Sum(c10); result[5] = Vector512.Sum(c11); result[6] = Vector512.Sum(c12); result[7] = Vector512.Sum(c13);
        result[8] = Vector512.Sum(c20); result[9] = Vector512.Sum(c21); result[10] = Vector512.Sum(c22); result[11] = Vector512.Sum(c23);
        result[12] = Vector512.Sum(c30); result[13] = Vector512.Sum(c31); result[14] = Vector512.Sum(c32); result[15] = Vector512.Sum(c33);
    }

    /// <summary>
    /// out[4·t + i] = Σ_k w_i[k]·x[t·ldx + k] for i in 0..3, t in 0..5: Tile4x4 widened to six tokens (24 accumulators,
    /// 10 loads per 24 FMAs instead of 8 per 16), each sum in Tile4x4's order.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static void Tile4x6(float* w0, float* w1, float* w2, float* w3, float* x, int ldx, int cols, float* result, float* next = null)
    {
        if (!CpuProfile.Current.Avx512 || cols % 16 != 0)
        {
            Tile4x4(w0, w1, w2, w3, x, ldx, cols, result);
            for (int t = 4; t < 6; t++) Tile4x1(w0, w1, w2, w3, x + t * ldx, cols, result + 4 * t);
            return;
        }
        float* x0 = x, x1 = x + ldx, x2 = x + 2 * ldx, x3 = x + 3 * ldx, x4 = x + 4 * ldx, x5 = x + 5 * ldx;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default;
        Vector512<float> c40 = default, c41 = default, c42 = default, c43 = default;
        Vector512<float> c50 = default, c51 = default, c52 = default, c53 = default;
        for (int k = 0; k < cols; k += 16)
        {
            if (next != null) Prefetch4(next + k, cols);
            var b0 = Avx512F.LoadVector512(w0 + k); var b1 = Avx512F.LoadVector512(w1 + k);
            var b2 = Avx512F.LoadVector512(w2 + k); var b3 = Avx512F.LoadVector512(w3 + k);
            var a = Avx512F.LoadVector512(x0 + k);
            c00 = Avx512F.FusedMultiplyAdd(a, b0, c00); c01 = Avx512F.FusedMultiplyAdd(a, b1, c01); c02 = Avx512F.FusedMultiplyAdd(a, b2, c02); c03 = Avx512F.FusedMultiplyAdd(a, b3, c03);
            a = Avx512F.LoadVector512(x1 + k);
            c10 = Avx512F.FusedMultiplyAdd(a, b0, c10); c11 = Avx512F.FusedMultiplyAdd(a, b1, c11); c12 = Avx512F.FusedMultiplyAdd(a, b2, c12); c13 = Avx512F.FusedMultiplyAdd(a, b3, c13);
            a = Avx512F.LoadVector512(x2 + k);
            c20 = Avx512F.FusedMultiplyAdd(a, b0, c20); c21 = Avx512F.FusedMultiplyAdd(a, b1, c21); c22 = Avx512F.FusedMultiplyAdd(a, b2, c22); c23 = Avx512F.FusedMultiplyAdd(a, b3, c23);
            a = Avx512F.LoadVector512(x3 + k);
            c30 = Avx512F.FusedMultiplyAdd(a, b0, c30); c31 = Avx512F.FusedMultiplyAdd(a, b1, c31); c32 = Avx512F.FusedMultiplyAdd(a, b2, c32); c33 = Avx512F.FusedMultiplyAdd(a, b3, c33);
            a = Avx512F.LoadVector512(x4 + k);
            c40 = Avx512F.FusedMultiplyAdd(a, b0, c40); c41 = Avx512F.FusedMultiplyAdd(a, b1, c41); c42 = Avx512F.FusedMultiplyAdd(a, b2, c42); c43 = Avx512F.FusedMultiplyAdd(a, b3, c43);
            a = Avx512F.LoadVector512(x5 + k);
            c50 = Avx512F.FusedMultiplyAdd(a, b0, c50); c51 = Avx512F.FusedMultiplyAdd(a, b1, c51); c52 = Avx512F.FusedMultiplyAdd(a, b2, c52); c53 = Avx512F.FusedMultiplyAdd(a, b3, c53);
        }
        result[0] = Vector512.Sum(c00); result[1] = Vector512.Sum(c01); result[2] = Vector512.Sum(c02); result[3] = Vector512.Sum(c03);
        result[4] = Vector512.Sum(c10); result[5] = Vector512.Sum(c11); result[6] = Vector512.Sum(c12); result[7] = Vector512.Sum(c13);
        result[8] = Vector512.Sum(c20); result[9] = Vector512.Sum(c21); result[10] = Vector512.Sum(c22); result[11] = Vector512.Sum(c23);
        result[12] = Vector512.Sum(c30); result[13] = Vector512.Sum(c31); result[14] = Vector512.Sum(c32); result[15] = Vector512.Sum(c33);
        result[16] = Vector512.Sum(c40); result[17] = Vector512.Sum(c41); result[18] = Vector512.Sum(c42); result[19] = Vector512.Sum(c43);
        result[20] = Vector512.Sum(c50); result[21] = Vector512.Sum(c51); result[22] = Vector512.Sum(c52); result[23] = Vector512.Sum(c53);
    }

    /// <summary>
    /// out[4·t + i] = Σ_k w_i[k]·x[t·ldx + k] for i in 0..3 and <paramref name="tokens"/> (2 or 3) tokens, each sum in
    /// Tile4x4's order: a batch's last two or three tokens in one pass over the rows. One Tile4x1 per token re-read the
    /// rows and ran four dependent FMA chains only (at 9 tokens, 6 + 3 x 1 cost twice 6 + 6).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public static void Tile4xN(float* w0, float* w1, float* w2, float* w3, float* x, int ldx, int cols, int tokens, float* result, float* next = null)
    {
        if (tokens is < 2 or > 3) throw new ArgumentOutOfRangeException(nameof(tokens), "2 or 3 tokens");
        if (!CpuProfile.Current.Avx512 || cols % 16 != 0)
        {
            for (int t = 0; t < tokens; t++) Tile4x1(w0, w1, w2, w3, x + t * ldx, cols, result + 4 * t);
            return;
        }
        float* x0 = x, x1 = x + ldx, x2 = x + (tokens == 3 ? 2 * ldx : ldx);
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default;
        for (int k = 0; k < cols; k += 16)
        {
            if (next != null) Prefetch4(next + k, cols);
            var b0 = Avx512F.LoadVector512(w0 + k); var b1 = Avx512F.LoadVector512(w1 + k);
            var b2 = Avx512F.LoadVector512(w2 + k); var b3 = Avx512F.LoadVector512(w3 + k);
            var a = Avx512F.LoadVector512(x0 + k);
            c00 = Avx512F.FusedMultiplyAdd(a, b0, c00); c01 = Avx512F.FusedMultiplyAdd(a, b1, c01); c02 = Avx512F.FusedMultiplyAdd(a, b2, c02); c03 = Avx512F.FusedMultiplyAdd(a, b3, c03);
            a = Avx512F.LoadVector512(x1 + k);
            c10 = Avx512F.FusedMultiplyAdd(a, b0, c10); c11 = Avx512F.FusedMultiplyAdd(a, b1, c11); c12 = Avx512F.FusedMultiplyAdd(a, b2, c12); c13 = Avx512F.FusedMultiplyAdd(a, b3, c13);
            a = Avx512F.LoadVector512(x2 + k); // with two tokens, the second again (its result is not written)
            c20 = Avx512F.FusedMultiplyAdd(a, b0, c20); c21 = Avx512F.FusedMultiplyAdd(a, b1, c21); c22 = Avx512F.FusedMultiplyAdd(a, b2, c22); c23 = Avx512F.FusedMultiplyAdd(a, b3, c23);
        }
        result[0] = Vector512.Sum(c00); result[1] = Vector512.Sum(c01); result[2] = Vector512.Sum(c02); result[3] = Vector512.Sum(c03);
        result[4] = Vector512.Sum(c10); result[5] = Vector512.Sum(c11); result[6] = Vector512.Sum(c12); result[7] = Vector512.Sum(c13);
        if (tokens == 3) { result[8] = Vector512.Sum(c20); result[9] = Vector512.Sum(c21); result[10] = Vector512.Sum(c22); result[11] = Vector512.Sum(c23); }
    }

    /// <summary>
    /// out[i] = Σ_k w_i[k]·x[k] for i in 0..3, summed in exactly Tile4x4's order (one accumulator per output,
    /// k ascending in 16-float steps, then Vector512.Sum): a token gets the same bits from this as from a 4x4
    /// tile, so a batch can mix tiles and single tokens without a sequence's result depending on its batch.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)] // hot from the first call: no tier-0 vector code
    public static void Tile4x1(float* w0, float* w1, float* w2, float* w3, float* x, int cols, float* result, float* next = null)
    {
        if (!CpuProfile.Current.Avx512 || cols % 16 != 0)
        {
            for (int i = 0; i < 4; i++)
            {
                float* wi = i switch { 0 => w0, 1 => w1, 2 => w2, _ => w3 };
                result[i] = TensorPrimitives.Dot(new ReadOnlySpan<float>(wi, cols), new ReadOnlySpan<float>(x, cols));
            }
            return;
        }
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        for (int k = 0; k < cols; k += 16)
        {
            if (next != null) Prefetch4(next + k, cols);
            var a = Avx512F.LoadVector512(x + k);
            c0 = Avx512F.FusedMultiplyAdd(a, Avx512F.LoadVector512(w0 + k), c0);
            c1 = Avx512F.FusedMultiplyAdd(a, Avx512F.LoadVector512(w1 + k), c1);
            c2 = Avx512F.FusedMultiplyAdd(a, Avx512F.LoadVector512(w2 + k), c2);
            c3 = Avx512F.FusedMultiplyAdd(a, Avx512F.LoadVector512(w3 + k), c3);
        }
        result[0] = Vector512.Sum(c0); result[1] = Vector512.Sum(c1); result[2] = Vector512.Sum(c2); result[3] = Vector512.Sum(c3);
    }
}
