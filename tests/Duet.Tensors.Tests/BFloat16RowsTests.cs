// BF16 weight rows (BFloat16Rows): every bf16 bit pattern widens to the float32 PyTorch gives (torch.bfloat16 -> float32,
// run by Debian's python3-torch); a row's dot is the float64 dot of those values within float rounding on
// every CPU path; MatVec (decode) and MatMul (prompts, both modes) over BF16 rows give what they give over the F32
// rows of the same values: MatMul bit for bit, MatVec within rounding.
using Duet.Tensors.Kernels;
using Duet.Tensors.Parallel;

namespace Duet.Tensors.Tests;

[Collection(nameof(CpuPaths))]
public unsafe class BFloat16RowsTests
{
    public static IEnumerable<object[]> Paths => CpuPaths.Names;

    [Theory, MemberData(nameof(Paths))]
    public void ToSingle_EveryBitPattern_IsTheFloatWithTheseUpperBits(string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var src = new ushort[65536 + 5]; // a tail past the vector width too
        for (int i = 0; i < src.Length; i++) src[i] = (ushort)(i * 40503);
        var dst = new float[src.Length];
        fixed (ushort* ps = src) fixed (float* pd = dst) BFloat16Rows.ToSingle(ps, pd, src.Length);
        for (int i = 0; i < src.Length; i++)
            Assert.True(BitConverter.SingleToUInt32Bits(dst[i]) == BitConverter.SingleToUInt32Bits(Torch[src[i]]), $"{cpu}: bf16 0x{src[i]:X4} became {dst[i]:R}, torch {Torch[src[i]]:R}");
    }

    /// <summary>Every bf16 bit pattern as PyTorch widens it (torch.bfloat16 -> float32), the reference for ToSingle.</summary>
    private static readonly Lazy<float[]> s_torch = new(() =>
    {
        var npy = Path.Combine(Path.GetTempPath(), $"duet-bf16-{Environment.ProcessId}.npy");
        try
        {
            Duet.Tests.Repo.Python("-c", "import sys, numpy, torch; bits = torch.arange(65536, dtype=torch.int32).to(torch.int16); "
                + "numpy.save(sys.argv[1], bits.view(torch.bfloat16).float().numpy().reshape(1, -1))", npy);
            var m = Duet.Tests.Npy.ReadFloat32Matrix(npy);
            return Enumerable.Range(0, 65536).Select(i => m[0, i]).ToArray();
        }
        finally { File.Delete(npy); }
    });

    private static float[] Torch => s_torch.Value;

    [Theory, MemberData(nameof(Paths))]
    public void Dot_AnyLength_Float64DotWithinRounding(string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var rng = new Random(3);
        foreach (int n in new[] { 1, 7, 16, 31, 33, 64, 100, 2048 + 7 })
        {
            var (w, values) = RandomRow(rng, n);
            var x = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            double expected = 0, magnitude = 0;
            for (int i = 0; i < n; i++) { expected += (double)values[i] * x[i]; magnitude += Math.Abs((double)values[i] * x[i]); }
            float got;
            fixed (ushort* pw = w) fixed (float* px = x) got = BFloat16Rows.Dot(pw, px, n);
            Assert.True(Math.Abs(got - expected) <= 1e-6 * magnitude + 1e-30, $"{cpu} n={n}: {got:R} vs float64 {expected:R}");
        }
    }

    [Theory, MemberData(nameof(Paths))]
    public void MatVecAndMatMul_BF16Rows_AsTheF32RowsOfTheSameValues(string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var rng = new Random(9);
        const int rows = 29, cols = 200, batch = 13;
        var (w, values) = RandomRow(rng, rows * cols);
        var x = Enumerable.Range(0, batch * cols).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        using var pool = new WorkerPool(3);
        fixed (ushort* pw = w)
        fixed (float* pf = values)
        {
            var bf = new WeightMatrix(GgmlType.BF16, (byte*)pw, rows, cols);
            var f32 = new WeightMatrix(GgmlType.F32, (byte*)pf, rows, cols);
            foreach (bool invariant in new[] { false, true })
            {
                var y = new float[batch * rows];
                var yf = new float[batch * rows];
                MatMul.Multiply(bf, x, y, batch, pool, invariant);
                MatMul.Multiply(f32, x, yf, batch, pool, invariant);
                for (int i = 0; i < y.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(y[i]) == BitConverter.SingleToInt32Bits(yf[i]), $"{cpu} invariant={invariant} result {i}: {y[i]:R} vs F32 rows {yf[i]:R}");
            }
            var y1 = new float[rows];
            MatVec.Multiply(bf, x.AsSpan(0, cols), y1, pool);
            for (int r = 0; r < rows; r++)
            {
                double expected = 0, magnitude = 0;
                for (int c = 0; c < cols; c++) { expected += (double)values[r * cols + c] * x[c]; magnitude += Math.Abs((double)values[r * cols + c] * x[c]); }
                Assert.True(Math.Abs(y1[r] - expected) <= 1e-6 * magnitude, $"{cpu} MatVec row {r}: {y1[r]:R} vs float64 {expected:R}");
            }
        }
    }

    /// <summary>n random bf16 values (float32 in [-2, 2) with the low 16 bits dropped) and the floats they stand for.</summary>
    private static (ushort[] Bits, float[] Values) RandomRow(Random rng, int n)
    {
        var bits = new ushort[n];
        var values = new float[n];
        for (int i = 0; i < n; i++)
        {
            bits[i] = (ushort)(BitConverter.SingleToUInt32Bits((float)(rng.NextDouble() * 4 - 2)) >> 16);
            values[i] = BitConverter.UInt32BitsToSingle((uint)bits[i] << 16);
        }
        return (bits, values);
    }
}
