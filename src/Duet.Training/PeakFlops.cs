// The machine's FP32 FMA peak, measured (BENCHMARKS.md: report the fraction of peak reached): each worker runs
// independent chains of fused multiply-adds on the widest vectors for a fixed time, enough chains to cover the
// FMA latency on two ports. MFU = achieved model FLOP/s over this.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Duet.Tensors.Parallel;

namespace Duet.Training;

public static class PeakFlops
{
    /// <summary>FLOP/s of all threads of <paramref name="pool"/> together (2 FLOPs per lane per FMA).</summary>
    public static double Measure(WorkerPool pool, double seconds = 0.2)
    {
        var results = new double[pool.Threads];
        pool.For(pool.Threads, new Burn { Results = results, Seconds = seconds });
        return results.Sum();
    }

    /// <summary>One FMA loop per thread, each writing its FLOP/s.</summary>
    private readonly struct Burn : IRangeOp
    {
        public required double[] Results { get; init; }
        public required double Seconds { get; init; }

        public void Run(int start, int end)
        {
            for (int i = start; i < end; i++) Results[i] = OneThread(Seconds);
        }
    }

    private static double OneThread(double seconds)
    {
        var sw = Stopwatch.StartNew();
        long iterations = 0;
        float sink = 0;
        bool wide = Duet.Tensors.Kernels.CpuProfile.Current.Avx512;
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            sink += wide ? Burn512(4096) : Burn256(4096);
            iterations += 4096;
        }
        Sink = sink;
        return iterations * 12.0 * (wide ? 16 : 8) * 2 / sw.Elapsed.TotalSeconds;
    }

    // Twelve independent FMA chains (enough to cover 4 cycles of latency on two ports), kept in registers: the
    // chains live only inside this method, so the JIT does not spill them to the stack between iterations.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Burn512(int n)
    {
        var a = Vector512.Create(0.999f); var b = Vector512.Create(1e-3f);
        Vector512<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (int i = 0; i < n; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(c0, a, b); c1 = Avx512F.FusedMultiplyAdd(c1, a, b); c2 = Avx512F.FusedMultiplyAdd(c2, a, b);
            c3 = Avx512F.FusedMultiplyAdd(c3, a, b); c4 = Avx512F.FusedMultiplyAdd(c4, a, b); c5 = Avx512F.FusedMultiplyAdd(c5, a, b);
            c6 = Avx512F.FusedMultiplyAdd(c6, a, b); c7 = Avx512F.FusedMultiplyAdd(c7, a, b); c8 = Avx512F.FusedMultiplyAdd(c8, a, b);
            c9 = Avx512F.FusedMultiplyAdd(c9, a, b); c10 = Avx512F.FusedMultiplyAdd(c10, a, b); c11 = Avx512F.FusedMultiplyAdd(c11, a, b);
        }
        return ((c0 + c1) + (c2 + c3) + (c4 + c5) + (c6 + c7) + (c8 + c9) + (c10 + c11)).ToScalar();
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Burn256(int n)
    {
        var a = Vector256.Create(0.999f); var b = Vector256.Create(1e-3f);
        Vector256<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (int i = 0; i < n; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, a, b); c1 = Vector256.FusedMultiplyAdd(c1, a, b); c2 = Vector256.FusedMultiplyAdd(c2, a, b);
            c3 = Vector256.FusedMultiplyAdd(c3, a, b); c4 = Vector256.FusedMultiplyAdd(c4, a, b); c5 = Vector256.FusedMultiplyAdd(c5, a, b);
            c6 = Vector256.FusedMultiplyAdd(c6, a, b); c7 = Vector256.FusedMultiplyAdd(c7, a, b); c8 = Vector256.FusedMultiplyAdd(c8, a, b);
            c9 = Vector256.FusedMultiplyAdd(c9, a, b); c10 = Vector256.FusedMultiplyAdd(c10, a, b); c11 = Vector256.FusedMultiplyAdd(c11, a, b);
        }
        return ((c0 + c1) + (c2 + c3) + (c4 + c5) + (c6 + c7) + (c8 + c9) + (c10 + c11)).ToScalar();
    }

    private static float Sink;

    /// <summary>
    /// Training FLOPs per token (PaLM appendix B): 6 per matrix weight (forward 2, backward 4; the output head
    /// included, the embedding lookup not) + 12·layers·dim·seqLen for attention scores and values.
    /// </summary>
    public static double PerToken(Duet.Model.LlamaConfig c, int seqLen)
    {
        double matrix = (double)c.Layers * (c.Dim * (2.0 * c.QDim + 2.0 * c.KvDim) + 3.0 * c.Dim * c.FfnDim) + (double)c.Vocab * c.Dim;
        return 6 * matrix + 12.0 * c.Layers * c.QDim * seqLen;
    }
}
