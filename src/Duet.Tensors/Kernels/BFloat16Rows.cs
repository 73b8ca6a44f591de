// BF16 weight rows (Hugging Face checkpoints are mostly stored this way, and GGUF keeps them as BF16): a bf16 value is
// the upper half of a float32, so widening to 32 bits and shifting left by 16 gives the float exactly, infinities and
// NaNs included. Decode dots a row with the activation in registers (memory-bound: one load, one shift and one FMA
// per 16 weights); prompts expand rows once per row block into float panels (ToSingle) for MatMul's tiles.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Duet.Tensors.Kernels;

public static unsafe class BFloat16Rows
{
    private const int PrefetchAhead = 4096; // elements: 8 KB ahead, as HalfDot

    /// <summary>The float a bf16 stands for.   torch: t.view(torch.bfloat16).float()</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Σ_i w[i]·x[i] for a bf16 row of <paramref name="n"/> elements (any n). The sum's order depends on the CPU path.</summary>
    public static float Dot(ushort* w, float* x, int n)
    {
        int i = 0;
        float sum = 0;
        var cpu = CpuProfile.Current;
        if (cpu.Avx512 && n >= 64)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 64 <= n; i += 64)
            {
                Sse.Prefetch0(w + i + PrefetchAhead);
                Sse.Prefetch0(w + i + PrefetchAhead + 32);
                a0 = Avx512F.FusedMultiplyAdd(Widen(w + i), Avx512F.LoadVector512(x + i), a0);
                a1 = Avx512F.FusedMultiplyAdd(Widen(w + i + 16), Avx512F.LoadVector512(x + i + 16), a1);
                a2 = Avx512F.FusedMultiplyAdd(Widen(w + i + 32), Avx512F.LoadVector512(x + i + 32), a2);
                a3 = Avx512F.FusedMultiplyAdd(Widen(w + i + 48), Avx512F.LoadVector512(x + i + 48), a3);
            }
            for (; i + 16 <= n; i += 16) a0 = Avx512F.FusedMultiplyAdd(Widen(w + i), Avx512F.LoadVector512(x + i), a0);
            sum = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else if (cpu.Avx2 && n >= 32)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i + 32 <= n; i += 32)
            {
                Sse.Prefetch0(w + i + PrefetchAhead);
                a0 = Fma.MultiplyAdd(Widen256(w + i), Avx.LoadVector256(x + i), a0);
                a1 = Fma.MultiplyAdd(Widen256(w + i + 8), Avx.LoadVector256(x + i + 8), a1);
                a2 = Fma.MultiplyAdd(Widen256(w + i + 16), Avx.LoadVector256(x + i + 16), a2);
                a3 = Fma.MultiplyAdd(Widen256(w + i + 24), Avx.LoadVector256(x + i + 24), a3);
            }
            for (; i + 8 <= n; i += 8) a0 = Fma.MultiplyAdd(Widen256(w + i), Avx.LoadVector256(x + i), a0);
            sum = Vector256.Sum((a0 + a1) + (a2 + a3));
        }
        for (; i < n; i++) sum = MathF.FusedMultiplyAdd(ToSingle(w[i]), x[i], sum);
        return sum;
    }

    /// <summary>dst[i] = the float of src[i], exactly (for the float panels of prompt processing).   torch: src.float()</summary>
    public static void ToSingle(ushort* src, float* dst, int n)
    {
        int i = 0;
        if (CpuProfile.Current.Avx512)
            for (; i + 16 <= n; i += 16) Avx512F.Store(dst + i, Widen(src + i));
        else if (CpuProfile.Current.Avx2)
            for (; i + 8 <= n; i += 8) Avx.Store(dst + i, Widen256(src + i));
        for (; i < n; i++) dst[i] = ToSingle(src[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(ushort* p) => (Avx512F.ConvertToVector512UInt32(Avx.LoadVector256(p)) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen256(ushort* p) => (Avx2.ConvertToVector256Int32(p).AsUInt32() << 16).AsSingle();
}
