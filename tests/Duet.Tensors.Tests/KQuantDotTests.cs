// K-quant weights with Q8_K activations (KQuantDot) against the reference side: the activation codes, scales and
// sums equal quantize_row_q8_K_ref's (tests/reference/ggml_quants.py quant_q8_k, checked bit-identical against
// libggml); the row dots equal, bit for bit, ggml's x86 kernels' float order (vec_dot_q8_k, checked against
// libggml-cpu's ggml_vec_dot_*_q8_K), and the float64 dot of the dequantized row with d·code within float
// rounding. Every check runs under every CPU profile this machine can execute (CpuPaths): AVX2 (with and without
// AVX-VNNI where present) and the portable path.
using Duet.Tensors.Kernels;
using Duet.Tensors.Parallel;
using Duet.Tensors.Quant;
using Duet.Tests;

namespace Duet.Tensors.Tests;

[Collection(nameof(CpuPaths))]
public unsafe class KQuantDotTests
{
    private static readonly string Dir = Path.Combine(Repo.Root, "tests", "reference", "fixtures", "engine", "quants");
    private const int QK = 256, Q8KBytes = 292;

    public static IEnumerable<object[]> TypesAndPaths => CpuPaths.Cross(["Q4_K"], ["Q5_K"], ["Q6_K"]);

    /// <summary>The row dot under the named profile.</summary>
    private static float Dot(GgmlType type, string cpu, byte* w, sbyte* q, float* d, short* bs, int nb)
    {
        using var profile = CpuProfile.Use(cpu);
        return KQuantDot.Dot(type, w, q, d, bs, nb);
    }

    private static void Quantize(string cpu, float[] x, sbyte[] codes, float[] scales, short[] bsums)
    {
        using var profile = CpuProfile.Use(cpu);
        KQuantDot.QuantizeActivationsQ8K(x, codes, scales, bsums);
    }

    /// <summary>block_q8_K fields of Q8_K.bin: float d, int8 qs[256], int16 bsums[16] per block.</summary>
    private static (float[] D, sbyte[] Codes, short[] Bsums) ReadQ8K(byte[] bytes)
    {
        int blocks = bytes.Length / Q8KBytes;
        var d = new float[blocks]; var q = new sbyte[blocks * QK]; var bs = new short[blocks * 16];
        for (int b = 0; b < blocks; b++)
        {
            int o = b * Q8KBytes;
            d[b] = BitConverter.ToSingle(bytes, o);
            for (int i = 0; i < QK; i++) q[b * QK + i] = (sbyte)bytes[o + 4 + i];
            for (int k = 0; k < 16; k++) bs[b * 16 + k] = BitConverter.ToInt16(bytes, o + 260 + 2 * k);
        }
        return (d, q, bs);
    }

    [Theory, MemberData(nameof(CpuPaths.Names), MemberType = typeof(CpuPaths))]
    public void QuantizeActivationsQ8K_FixtureRows_EqualReferenceBlocks(string cpu)
    {
        var input = Npy.ReadFloat32Matrix(Path.Combine(Dir, "Q8_K.input.npy"));
        var (d, q, bs) = ReadQ8K(File.ReadAllBytes(Path.Combine(Dir, "Q8_K.bin")));
        int rows = input.GetLength(0), cols = input.GetLength(1), nb = cols / QK;
        Assert.Equal(rows * nb, d.Length);
        var x = new float[cols]; var codes = new sbyte[cols]; var scales = new float[nb]; var sums = new short[nb * 16];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++) x[c] = input[r, c];
            Quantize(cpu, x, codes, scales, sums);
            for (int b = 0; b < nb; b++)
            {
                int blk = r * nb + b;
                Assert.True(BitConverter.SingleToInt32Bits(scales[b]) == BitConverter.SingleToInt32Bits(d[blk]), $"row {r} block {b}: d {scales[b]:R} vs reference {d[blk]:R}");
                for (int i = 0; i < QK; i++)
                    Assert.True(codes[b * QK + i] == q[blk * QK + i], $"row {r} block {b} code {i}: {codes[b * QK + i]} vs reference {q[blk * QK + i]} (x = {x[b * QK + i]:R})");
                for (int k = 0; k < 16; k++) Assert.Equal(bs[blk * 16 + k], sums[b * 16 + k]);
            }
        }
    }

    [Theory, MemberData(nameof(CpuPaths.Names), MemberType = typeof(CpuPaths))]
    public void QuantizeActivationsQ8K_RandomData_EveryPathEqualsPortable(string cpu)
    {
        var rng = new Random(21);
        for (int trial = 0; trial < 200; trial++)
        {
            int n = QK * (1 + rng.Next(6));
            double scale = Math.Pow(10, rng.NextDouble() * 12 - 6);
            var x = Enumerable.Range(0, n).Select(_ => trial % 3 == 0 ? (float)(rng.Next(-40, 41) * 0.125) : (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();
            var (c1, s1, b1) = (new sbyte[n], new float[n / QK], new short[n / 16]);
            var (c2, s2, b2) = (new sbyte[n], new float[n / QK], new short[n / 16]);
            Quantize(cpu, x, c1, s1, b1);
            Quantize("portable", x, c2, s2, b2);
            Assert.Equal(c2, c1);
            Assert.Equal(s2.Select(BitConverter.SingleToInt32Bits), s1.Select(BitConverter.SingleToInt32Bits));
            Assert.Equal(b2, b1);
        }
    }

    [Fact]
    public void QuantizeActivationsQ8K_LengthNotMultipleOf256_Throws() =>
        Assert.Throws<ArgumentException>(() => KQuantDot.QuantizeActivationsQ8K(new float[300], new sbyte[300], new float[2], new short[32]));

    /// <summary>Every weight row of TYPE.bin and TYPE.rand.bin against every Q8_K row of Q8_K.bin: ggml's x86 result bit for bit.</summary>
    [Theory, MemberData(nameof(TypesAndPaths))]
    public void Dot_FixtureRows_BitIdenticalToGgmlX86Order(string name, string cpu)
    {
        var type = Enum.Parse<GgmlType>(name);
        var expected = Npy.ReadFloat32Matrix(Path.Combine(Dir, $"{name}.q8k_dot.npy"));
        var (d, q, bs) = ReadQ8K(File.ReadAllBytes(Path.Combine(Dir, "Q8_K.bin")));
        var w = File.ReadAllBytes(Path.Combine(Dir, $"{name}.bin")).Concat(File.ReadAllBytes(Path.Combine(Dir, $"{name}.rand.bin"))).ToArray();
        int wRows = expected.GetLength(0), aRows = expected.GetLength(1);
        int nb = d.Length / aRows, rowBytes = nb * GgmlTypeInfo.TypeSize(type);
        Assert.Equal(wRows * rowBytes, w.Length);
        fixed (byte* pw = w) fixed (sbyte* pq = q) fixed (float* pd = d) fixed (short* pb = bs)
            for (int i = 0; i < wRows; i++)
                for (int j = 0; j < aRows; j++)
                {
                    float got = Dot(type, cpu, pw + i * rowBytes, pq + j * nb * QK, pd + j * nb, pb + j * nb * 16, nb);
                    Assert.True(BitConverter.SingleToInt32Bits(got) == BitConverter.SingleToInt32Bits(expected[i, j]),
                        $"{name} weight row {i}, activation row {j}: {got:R} vs ggml order {expected[i, j]:R}");
                }
    }

    /// <summary>Random K-quant row bytes with finite fp16 scale fields (the quants and 6-bit scales take every pattern).</summary>
    private static byte[] RandomRows(Random rng, GgmlType type, int rows, int nb)
    {
        int bs = GgmlTypeInfo.TypeSize(type);
        var w = new byte[rows * nb * bs];
        rng.NextBytes(w);
        int[] halves = type == GgmlType.Q6_K ? [208] : [0, 2];
        for (int b = 0; b < rows * nb; b++)
            foreach (int h in halves)
                BitConverter.TryWriteBytes(w.AsSpan(b * bs + h), BitConverter.HalfToUInt16Bits((Half)((rng.NextDouble() * 2 - 1) * 0.05)));
        return w;
    }

    [Theory, MemberData(nameof(TypesAndPaths))]
    public void Dot_RandomRows_MatchesFloat64DotOfDequantizedValues(string name, string cpu)
    {
        var type = Enum.Parse<GgmlType>(name);
        var rng = new Random(name.GetHashCode(StringComparison.Ordinal) & 0xFFFF);
        foreach (int nb in new[] { 1, 2, 3, 5, 8, 12 })
            for (int trial = 0; trial < 8; trial++)
            {
                int n = nb * QK;
                var w = RandomRows(rng, type, 1, nb);
                double xs = Math.Pow(10, rng.NextDouble() * 4 - 2);
                var x = Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * xs)).ToArray();
                var codes = new sbyte[n]; var scales = new float[nb]; var sums = new short[nb * 16];
                Quantize(cpu, x, codes, scales, sums);
                var wf = new float[n];
                BlockFormats.DequantizeRow(type, w, wf);
                double expected = 0, magnitude = 0;
                for (int i = 0; i < n; i++)
                {
                    double term = wf[i] * ((double)scales[i / QK] * codes[i]);
                    expected += term;
                    magnitude += Math.Abs(term);
                }
                float got, other;
                fixed (byte* pw = w) fixed (sbyte* pq = codes) fixed (float* pd = scales) fixed (short* pb = sums)
                {
                    got = Dot(type, cpu, pw, pq, pd, pb, nb);
                    other = Dot(type, "portable", pw, pq, pd, pb, nb);
                }
                Assert.True(Math.Abs(got - expected) <= 1e-5 * magnitude, $"{name} {nb} super-blocks: {got:R} vs float64 {expected:R} (Σ|terms| {magnitude:R})");
                Assert.True(BitConverter.SingleToInt32Bits(got) == BitConverter.SingleToInt32Bits(other), $"{name} {nb} super-blocks: {cpu} and portable paths differ ({got:R} vs {other:R})");
            }
    }

    [Theory, MemberData(nameof(TypesAndPaths))]
    public void MatVecAndMatMul_KQuantWeights_EqualRowDotsWithQ8KActivations(string name, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var type = Enum.Parse<GgmlType>(name);
        var rng = new Random(5);
        const int rows = 37, nb = 3, cols = nb * QK, batch = 5;
        var w = RandomRows(rng, type, rows, nb);
        var x = Enumerable.Range(0, batch * cols).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var y = new float[rows];
        var yb = new float[batch * rows];
        using var pool = new WorkerPool(3);
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        fixed (byte* pw = w)
        {
            var m = new WeightMatrix(type, pw, rows, cols);
            MatVec.Multiply(m, x.AsSpan(0, cols), y, pool);
            MatMul.Multiply(m, x, yb, batch, pool);
            var codes = new sbyte[cols]; var scales = new float[nb]; var sums = new short[nb * 16];
            for (int b = 0; b < batch; b++)
            {
                KQuantDot.QuantizeActivationsQ8K(x.AsSpan(b * cols, cols), codes, scales, sums);
                fixed (sbyte* pq = codes) fixed (float* pd = scales) fixed (short* pb = sums)
                    for (int r = 0; r < rows; r++)
                    {
                        float expected = KQuantDot.Dot(type, pw + r * rowBytes, pq, pd, pb, nb);
                        if (b == 0) Assert.True(BitConverter.SingleToInt32Bits(y[r]) == BitConverter.SingleToInt32Bits(expected), $"{name} MatVec row {r}: {y[r]:R} vs {expected:R}");
                        Assert.True(BitConverter.SingleToInt32Bits(yb[b * rows + r]) == BitConverter.SingleToInt32Bits(expected), $"{name} MatMul token {b} row {r}: {yb[b * rows + r]:R} vs {expected:R}");
                    }
            }
        }
    }
    // Prompts (a batch of at least ten tokens, not invariant) take K-quant rows as float rows: with integer math every
    // result has the bits of the same product of the dequantized F32 rows and the activations rounded through Q8_K
    // (the values the Q8_K dots multiply), and is the dot's value within float rounding; with float math, the bits of
    // the F32 rows' product with the activations as they are. Invariant mode keeps the Q8_K dots of decoding.
    [Theory, MemberData(nameof(TypesAndPaths))]
    public void MatMul_KQuantPrompt_SameBitsAsDequantizedF32Rows(string name, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var type = Enum.Parse<GgmlType>(name);
        var rng = new Random(11);
        const int rows = 37, nb = 2, cols = nb * QK, batch = 13;
        var w = RandomRows(rng, type, rows, nb);
        var x = Enumerable.Range(0, batch * cols).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var deq = new float[rows * cols];
        for (int r = 0; r < rows; r++) BlockFormats.DequantizeRow(type, w.AsSpan((int)(r * rowBytes), (int)rowBytes), deq.AsSpan(r * cols, cols));
        var rounded = new float[batch * cols];
        {
            var c = new sbyte[cols]; var d = new float[nb]; var bs = new short[nb * 16];
            for (int b = 0; b < batch; b++)
            {
                KQuantDot.QuantizeActivationsQ8K(x.AsSpan(b * cols, cols), c, d, bs);
                for (int i = 0; i < cols; i++) rounded[b * cols + i] = d[i / QK] * c[i];
            }
        }
        var y = new float[batch * rows];
        var yq = new float[batch * rows];
        var yf = new float[batch * rows];
        var yfr = new float[batch * rows];
        var yi = new float[batch * rows];
        using var pool = new WorkerPool(3);
        fixed (byte* pw = w)
        fixed (float* pf = deq)
        {
            var m = new WeightMatrix(type, pw, rows, cols);
            var f32 = new WeightMatrix(GgmlType.F32, (byte*)pf, rows, cols);
            MatMul.Multiply(m, x, y, batch, pool);
            MatMul.Multiply(m, x, yq, batch, pool, math: QuantizedMath.Float);
            MatMul.Multiply(f32, rounded, yfr, batch, pool);
            MatMul.Multiply(f32, x, yf, batch, pool);
            MatMul.Multiply(m, x, yi, batch, pool, invariant: true);
            Assert.True(y.AsSpan().SequenceEqual(yfr), $"{name}: integer math, not the F32 rows' product with the Q8_K-rounded activations");
            Assert.True(yq.AsSpan().SequenceEqual(yf), $"{name}: float math, not the F32 rows' product with the activations");
            var codes = new sbyte[cols]; var scales = new float[nb]; var sums = new short[nb * 16];
            for (int b = 0; b < batch; b++)
            {
                KQuantDot.QuantizeActivationsQ8K(x.AsSpan(b * cols, cols), codes, scales, sums);
                for (int r = 0; r < rows; r++)
                {
                    int at = b * rows + r;
                    double expected = 0, magnitude = 0;
                    for (int c = 0; c < cols; c++) { double term = (double)deq[r * cols + c] * rounded[b * cols + c]; expected += term; magnitude += Math.Abs(term); }
                    Assert.True(Math.Abs(y[at] - expected) <= 1e-5 * magnitude, $"{name} token {b} row {r}: {y[at]:R} vs float64 {expected:R}");
                    fixed (sbyte* pq = codes) fixed (float* pd = scales) fixed (short* pb = sums)
                    {
                        float dot = KQuantDot.Dot(type, pw + r * rowBytes, pq, pd, pb, nb);
                        Assert.True(BitConverter.SingleToInt32Bits(yi[at]) == BitConverter.SingleToInt32Bits(dot), $"{name} invariant token {b} row {r}: {yi[at]:R} vs dot {dot:R}");
                        Assert.True(Math.Abs(y[at] - dot) <= 1e-5 * magnitude, $"{name} token {b} row {r}: {y[at]:R} vs the Q8_K dot {dot:R}");
                    }
                }
            }
        }
    }
}
