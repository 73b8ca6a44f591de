// The training GEMM against a float64 naive product: all four transpose combinations, overwrite and accumulate,
// odd shapes and leading dimensions, every kernel path (AVX-512, AVX2, portable) on this machine; and the same
// bits whatever the thread count.
using Duet.Tensors.Kernels;
using Duet.Tensors.Parallel;

namespace Duet.Tensors.Tests;

[Collection(nameof(CpuPaths))]
public class SgemmTests
{
    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    private static void Check(bool ta, bool tb, int m, int n, int k, bool accumulate, int pad, WorkerPool? pool)
    {
        int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
        var a = Random((ta ? k : m) * lda, 1);
        var b = Random((tb ? n : k) * ldb, 2);
        var c = Random(m * ldc, 3);
        var c0 = (float[])c.Clone();
        Sgemm.Gemm(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, accumulate, pool);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0, abs = 0;
                for (int p = 0; p < k; p++)
                {
                    double x = ta ? a[p * lda + i] : a[i * lda + p], y = tb ? b[j * ldb + p] : b[p * ldb + j];
                    sum += x * y; abs += Math.Abs(x * y);
                }
                double expected = (accumulate ? c0[i * ldc + j] : 0) + sum;
                double bound = 1e-5 * (abs + Math.Abs(c0[i * ldc + j])) + 1e-30;
                Assert.True(Math.Abs(c[i * ldc + j] - expected) <= bound, $"({ta},{tb}) {m}×{n}×{k} acc {accumulate}: C[{i},{j}] = {c[i * ldc + j]}, expected {expected}");
            }
        // Padding columns of C are never written.
        for (int i = 0; i < m; i++) for (int j = n; j < ldc; j++) Assert.Equal(c0[i * ldc + j], c[i * ldc + j]);
    }

    // 300 rows: more than one block of row panels (Sgemm.MCP) with a partial last block.
    public static TheoryData<int, int, int> Shapes => new() { { 1, 1, 1 }, { 3, 17, 1 }, { 8, 32, 256 }, { 17, 31, 33 }, { 65, 129, 257 }, { 33, 65, 300 }, { 9, 257, 31 }, { 130, 40, 520 }, { 300, 70, 45 } };

    public static IEnumerable<object[]> ShapesAndPaths => CpuPaths.Cross(Shapes.Select(s => s.ToArray()).ToArray());

    [Theory, MemberData(nameof(ShapesAndPaths))]
    public void Gemm_AllTransposesAndPaths_MatchFloat64(int m, int n, int k, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
                Check(ta, tb, m, n, k, accumulate: (m + n) % 2 == 0, pad: k % 3, pool: null);
    }

    [Fact]
    public void Gemm_Accumulate_AddsToC_AndOverwriteIgnoresIt()
    {
        Check(false, true, 20, 40, 70, accumulate: true, pad: 0, null);
        Check(true, false, 20, 40, 70, accumulate: false, pad: 1, null);
    }

    [Fact]
    public void Gemm_OneAndTwoThreads_GiveTheSameBits()
    {
        using var p1 = new WorkerPool(1);
        using var p2 = new WorkerPool(2);
        const int m = 300, n = 2100, k = 600; // several k blocks and column blocks
        var a = Random(m * k, 4);
        var b = Random(n * k, 5);
        var c1 = new float[m * n];
        var c2 = new float[m * n];
        var c3 = new float[m * n];
        Sgemm.Gemm(false, true, m, n, k, a, k, b, k, c1, n, false, null);
        Sgemm.Gemm(false, true, m, n, k, a, k, b, k, c2, n, false, p1);
        Sgemm.Gemm(false, true, m, n, k, a, k, b, k, c3, n, false, p2);
        Assert.Equal(c1, c2);
        Assert.Equal(c1, c3);
        Check(true, false, 131, 77, 900, true, 2, p2);
    }

    [Fact]
    public void Gemm_BadSizes_Throw()
    {
        var x = new float[10];
        Assert.Throws<ArgumentException>(() => Sgemm.Gemm(false, false, 4, 4, 4, x, 4, x, 4, new float[16], 4, false));
        Assert.Throws<ArgumentException>(() => Sgemm.Gemm(false, false, 2, 2, 2, new float[4], 1, new float[4], 2, new float[4], 2, false));
        Assert.Throws<ArgumentException>(() => Sgemm.Gemm(false, false, -1, 2, 2, x, 2, x, 2, x, 2, false));
    }
}
