// Kernels against plain float64 loops (their formulas), over many lengths and odd shapes.
using Duet.Tensors.Kernels;
using Duet.Tensors.Parallel;
using Duet.Tensors.Quant;

namespace Duet.Tensors.Tests;

[Collection(nameof(CpuPaths))]
public unsafe class KernelTests
{
    private static float[] RandomVector(Random rng, int n, float scale = 1f) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();

    [Fact]
    public void RmsNorm_Lengths1To257_MatchFloat64Formula()
    {
        var rng = new Random(1);
        for (int n = 1; n <= 257; n++)
        {
            var x = RandomVector(rng, n); var w = RandomVector(rng, n); var y = new float[n];
            Ops.RmsNorm(x, w, 1e-5f, y);
            double ms = x.Sum(v => (double)v * v) / n, inv = 1 / Math.Sqrt(ms + 1e-5);
            for (int i = 0; i < n; i++) Assert.Equal(x[i] * inv * w[i], y[i], 1e-5);
        }
    }

    [Fact]
    public void Softmax_LargeLogits_SubtractsMaxAndSumsToOne()
    {
        var rng = new Random(2);
        for (int n = 1; n <= 257; n += 7)
        {
            var x = RandomVector(rng, n, 1000f);
            var expected = x.Select(v => Math.Exp(v - x.Max())).ToArray();
            double sum = expected.Sum();
            Ops.Softmax(x);
            for (int i = 0; i < n; i++) Assert.Equal(expected[i] / sum, x[i], 1e-6);
        }
    }

    [Theory]
    [InlineData(RopeStyle.Normal)]
    [InlineData(RopeStyle.NeoX)]
    public void Rope_RotatesThePairsOfItsLayout(RopeStyle style)
    {
        const int hd = 8;
        var x = Enumerable.Range(1, 2 * hd).Select(i => (float)i).ToArray();
        var orig = (float[])x.Clone();
        float[] cos = [1, 0, MathF.Cos(0.5f), -1], sin = [0, 1, MathF.Sin(0.5f), 0];
        Ops.Rope(x, hd, cos, sin, style);
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < hd / 2; i++)
            {
                int a = h * hd + (style == RopeStyle.Normal ? 2 * i : i), b = h * hd + (style == RopeStyle.Normal ? 2 * i + 1 : i + hd / 2);
                Assert.Equal(orig[a] * cos[i] - orig[b] * sin[i], x[a], 5);
                Assert.Equal(orig[a] * sin[i] + orig[b] * cos[i], x[b], 5);
            }
    }

    public static IEnumerable<object[]> AttentionCases => CpuPaths.Cross([32], [64], [128], [24], [8]);

    /// <summary>
    /// Attention.Head on every CPU path against the float64 formula: head dims that take the 16-wide (32, 64, 128),
    /// 8-wide (24, 8 on AVX2) and portable paths; 1 to 70 positions (the four-key blocks and their remainders); keys and
    /// values at an offset inside wider cache rows; large scores (the max subtracted before exp).
    /// </summary>
    [Theory, MemberData(nameof(AttentionCases))]
    public void AttentionHead_AnyPath_MatchesFloat64Softmax(int hd, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var rng = new Random(hd);
        int stride = 3 * hd, offset = hd;
        for (int n = 1; n <= 70; n += n < 10 ? 1 : 7)
        {
            var q = RandomVector(rng, hd, 3f);
            var k = RandomVector(rng, n * stride, 3f);
            var v = RandomVector(rng, n * stride);
            var scores = new float[n];
            var o = new float[hd];
            float scale = 1f / MathF.Sqrt(hd);
            Attention.Head(q, k, v, stride, offset, n, scale, scores, o);
            var s = new double[n];
            for (int t = 0; t < n; t++)
            {
                double d = 0;
                for (int i = 0; i < hd; i++) d += (double)q[i] * k[t * stride + offset + i];
                s[t] = d * scale;
            }
            double max = s.Max(), sum = s.Sum(x => Math.Exp(x - max));
            for (int i = 0; i < hd; i++)
            {
                double want = 0;
                for (int t = 0; t < n; t++) want += Math.Exp(s[t] - max) / sum * v[t * stride + offset + i];
                Assert.True(Math.Abs(o[i] - want) <= 1e-5 + 1e-5 * Math.Abs(want), $"{cpu} hd {hd} n {n} dim {i}: {o[i]} vs {want}");
            }
        }
    }

    /// <summary>
    /// Attention.Head4 (four heads over shared keys and values) gives each head exactly Head's bits, on every CPU path
    /// and head dim above, for 1 to 70 positions, the scores rows apart in a wider buffer.
    /// </summary>
    [Theory, MemberData(nameof(AttentionCases))]
    public void AttentionHead4_AnyPath_SameBitsAsHead(int hd, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var rng = new Random(hd + 1);
        int stride = 3 * hd, offset = hd, capacity = 80;
        for (int n = 1; n <= 70; n += n < 10 ? 1 : 7)
        {
            var q = RandomVector(rng, 4 * hd, 3f);
            var k = RandomVector(rng, n * stride, 3f);
            var v = RandomVector(rng, n * stride);
            float scale = 1f / MathF.Sqrt(hd);
            var scores = new float[4 * capacity];
            var o = new float[4 * hd];
            Attention.Head4(q, k, v, stride, offset, n, scale, scores, capacity, o);
            for (int j = 0; j < 4; j++)
            {
                var one = new float[hd];
                Attention.Head(q.AsSpan(j * hd, hd), k, v, stride, offset, n, scale, new float[n], one);
                Assert.True(one.AsSpan().SequenceEqual(o.AsSpan(j * hd, hd)), $"{cpu} hd {hd} n {n} head {j}");
            }
        }
    }

    [Fact]
    public void AttentionHead_BuffersTooSmall_Throw()
    {
        var q = new float[32];
        Assert.Throws<ArgumentException>(() => Attention.Head(q, new float[2 * 64 - 1], new float[2 * 64], 64, 32, 2, 1f, new float[2], new float[32]));
        Assert.Throws<ArgumentException>(() => Attention.Head(q, new float[128], new float[128], 64, 40, 2, 1f, new float[2], new float[32]));
        Assert.Throws<ArgumentOutOfRangeException>(() => Attention.Head(q, new float[128], new float[128], 64, 0, 0, 1f, new float[2], new float[32]));
    }

    public static IEnumerable<object[]> MatVecCases => CpuPaths.Cross(
        [GgmlType.F32, 96],
        [GgmlType.F16, 96],
        [GgmlType.F16, 416],
        [GgmlType.BF16, 96],
        [GgmlType.Q4_1, 96],
        [GgmlType.Q8_0, 96],
        [GgmlType.Q8_0, 416],
        [GgmlType.Q4_0, 96],
        [GgmlType.Q4_0, 416],
        [GgmlType.Q4_0, 512]);

    [Theory, MemberData(nameof(MatVecCases))]
    public void MatVec_AnyType_EqualsDotOfDequantizedRows(GgmlType type, int cols, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var rng = new Random(3);
        const int rows = 37;
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var data = new byte[rows * rowBytes];
        var w = RandomVector(rng, rows * cols, 0.5f);
        for (int r = 0; r < rows; r++)
            if (Quantizer.CanQuantize(type)) Quantizer.QuantizeRow(type, w.AsSpan(r * cols, cols), data.AsSpan((int)(r * rowBytes), (int)rowBytes));
            else rng.NextBytes(data.AsSpan((int)(r * rowBytes), (int)rowBytes)); // Q4_1: random blocks
        if (type == GgmlType.Q4_1)
            for (int r = 0; r < rows; r++)
                for (int b = 0; b < cols / 32; b++)
                {
                    int o = (int)(r * rowBytes) + b * 20;
                    BitConverter.TryWriteBytes(data.AsSpan(o), BitConverter.HalfToUInt16Bits((Half)0.01f));
                    BitConverter.TryWriteBytes(data.AsSpan(o + 2), BitConverter.HalfToUInt16Bits((Half)(-0.05f)));
                }
        var x = RandomVector(rng, cols);
        // The reference: dequantized rows, and for Q8_0/Q4_0 the activation quantized as ggml does.
        var xRef = x.Select(v => (double)v).ToArray();
        if (type is GgmlType.Q8_0 or GgmlType.Q4_0)
        {
            var codes = new sbyte[cols]; var scales = new float[cols / 32];
            QuantDot.QuantizeActivations(x, codes, scales);
            for (int i = 0; i < cols; i++) xRef[i] = codes[i] * (double)scales[i / 32];
        }
        var y = new float[rows];
        using var pool = new WorkerPool(3);
        fixed (byte* p = data)
            MatVec.Multiply(new WeightMatrix(type, p, rows, cols), x, y, pool);
        var row = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            BlockFormats.DequantizeRow(type, data.AsSpan((int)(r * rowBytes), (int)rowBytes), row);
            double expected = 0;
            for (int c = 0; c < cols; c++) expected += row[c] * xRef[c];
            Assert.True(Math.Abs(expected - y[r]) <= 1e-4 * (1 + Math.Abs(expected)), $"{type} row {r}: {y[r]} vs {expected}");
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 13)] // the unrolled loop, a single pair and an odd block
    [InlineData(GgmlType.Q8_0, 64)]
    [InlineData(GgmlType.Q4_0, 13)] // the unrolled loop, a single quad and a block past them
    [InlineData(GgmlType.Q4_0, 176)]
    public void QuantDotFourRows_EachRow_SameBitsAsOneRow(GgmlType type, int blocks)
    {
        if (!QuantDot.HasPairKernels) return; // the four-row kernels are AVX-512 only, like the one-row ones they mirror
        var rng = new Random(blocks);
        int cols = blocks * 32;
        long rowBytes = GgmlTypeInfo.RowSize(type, cols), stride = rowBytes + 40; // rows apart, as in a strided view
        var data = new byte[4 * stride];
        for (int k = 0; k < 4; k++)
            Quantizer.QuantizeRow(type, RandomVector(rng, cols, 0.5f), data.AsSpan((int)(k * stride), (int)rowBytes));
        var x = RandomVector(rng, cols);
        var q8 = new Q8Activations();
        q8.Quantize(x, 1, cols);
        q8.BuildPairs(type);
        var y = new float[4];
        fixed (byte* p = data) fixed (sbyte* xq = q8.Codes, pc = q8.PairCodes) fixed (float* xd = q8.Scales, ps = q8.PairScales, py = y) fixed (int* pk = q8.PairCorrection)
        {
            if (type == GgmlType.Q8_0) QuantDot.DotQ8_0Pairs4(p, stride, xq, xd, ps, blocks, py);
            else QuantDot.DotQ4_0Quads4(p, stride, pc, pk, ps, xq, xd, blocks, py);
            for (int k = 0; k < 4; k++)
            {
                float one = type == GgmlType.Q8_0
                    ? QuantDot.DotQ8_0Pairs(p + k * stride, xq, xd, ps, blocks)
                    : QuantDot.DotQ4_0Quads(p + k * stride, pc, pk, ps, xq, xd, blocks);
                Assert.True(one != 0);
                Assert.Equal(BitConverter.SingleToInt32Bits(one), BitConverter.SingleToInt32Bits(y[k]));
            }
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 1)]  // an odd block alone
    [InlineData(GgmlType.Q8_0, 13)] // the unrolled loop, a single pair and an odd block
    [InlineData(GgmlType.Q8_0, 64)]
    [InlineData(GgmlType.Q4_0, 3)]  // no quad at all
    [InlineData(GgmlType.Q4_0, 13)] // the unrolled loop, a single quad and a block past them
    [InlineData(GgmlType.Q4_0, 176)]
    public void QuantDotFourTokens_EachToken_SameBitsAsAlone(GgmlType type, int blocks)
    {
        if (!QuantDot.HasPairKernels) return; // the four-token kernels are AVX-512 only, like the one-token ones they mirror
        // A server's batch: one weight row against four tokens' activations must give each token the bits of the
        // decode kernel alone, or replies would change with what else is in the batch.
        var rng = new Random(blocks + 7);
        int cols = blocks * 32;
        var row = new byte[GgmlTypeInfo.RowSize(type, cols)];
        Quantizer.QuantizeRow(type, RandomVector(rng, cols, 0.5f), row);
        if (type == GgmlType.Q8_0)
            for (int b = 0; b < blocks; b += 3) row[b * 34 + 2 + b % 32] = 0x80; // the code -128, which no quantizer writes but a file may hold
        var x = RandomVector(rng, 4 * cols);
        var q8 = new Q8Activations();
        q8.Quantize(x, 4, cols);
        q8.BuildPairs(type);
        int ls = q8.LaneStride(type);
        var y = new float[4];
        fixed (byte* p = row) fixed (sbyte* xq = q8.Codes, pc = q8.PairCodes) fixed (float* xd = q8.Scales, ps = q8.PairScales, py = y) fixed (int* pk = q8.PairCorrection)
        {
            if (type == GgmlType.Q8_0) QuantDot.DotQ8_0Pairs4Tokens(p, xq, cols, xd, blocks, ps, ls, blocks, py);
            else QuantDot.DotQ4_0Quads4Tokens(p, pc, pk, ps, xq, xd, cols, ls, blocks, blocks, py);
            for (int k = 0; k < 4; k++)
            {
                float one = type == GgmlType.Q8_0
                    ? QuantDot.DotQ8_0Pairs(p, xq + k * cols, xd + k * blocks, ps + k * ls, blocks)
                    : QuantDot.DotQ4_0Quads(p, pc + k * cols, pk + k * ls, ps + k * ls, xq + k * cols, xd + k * blocks, blocks);
                Assert.True(one != 0);
                Assert.Equal(BitConverter.SingleToInt32Bits(one), BitConverter.SingleToInt32Bits(y[k]));
            }
        }
    }

    /// <summary>
    /// The permuted Q4_0 kernel (two loads, vpermt2b/vpermb, scales as moved bits against quad scales times 2^112)
    /// gives each row the bits of <see cref="QuantDot.DotQ4_0Quads"/>: random rows with random fp16 scales (subnormal
    /// and negative ones among them), every nibble, a block count past the last whole quad.
    /// </summary>
    [Theory]
    [InlineData(13)]
    [InlineData(176)]
    public void QuantDotQ4_0Permuted_SameBitsAsQuads(int blocks)
    {
        if (!QuantDot.CanPermuteQuads) return; // AVX-512 VBMI
        var rng = new Random(blocks + 1);
        int cols = blocks * 32;
        var data = new byte[3 * blocks * 18];
        rng.NextBytes(data);
        for (int b = 0; b < 3 * blocks; b++)
        {
            double m = b % 7 == 0 ? 3e-6 : 0.05; // some subnormal fp16 scales
            BitConverter.TryWriteBytes(data.AsSpan(b * 18), BitConverter.HalfToUInt16Bits((Half)((rng.NextDouble() - 0.5) * m)));
        }
        var x = RandomVector(rng, cols);
        var q8 = new Q8Activations();
        q8.Quantize(x, 1, cols);
        q8.BuildPairs(GgmlType.Q4_0, scaledQuads: true);
        Assert.True(q8.ScaledQuads);
        fixed (byte* p = data) fixed (sbyte* xq = q8.Codes, pc = q8.PairCodes) fixed (float* xd = q8.Scales, ps = q8.PairScales, pss = q8.QuadScalesScaled) fixed (int* pk = q8.PairCorrection)
            for (int r = 0; r < 3; r++)
            {
                float want = QuantDot.DotQ4_0Quads(p + r * blocks * 18, pc, pk, ps, xq, xd, blocks);
                float got = QuantDot.DotQ4_0QuadsPermuted(p + r * blocks * 18, pc, pk, pss, xq, xd, blocks);
                Assert.True(want != 0);
                Assert.Equal(BitConverter.SingleToInt32Bits(want), BitConverter.SingleToInt32Bits(got));
            }
        q8.Quantize(x, 1, cols); // a new call: no scaled scales until BuildPairs asks for them
        Assert.False(q8.ScaledQuads);
        q8.BuildPairs(GgmlType.Q4_0, scaledQuads: false);
        Assert.False(q8.ScaledQuads);
    }

    /// <summary>
    /// QuantizedMath.Float: quantized rows dotted with the activation as it is (no 8-bit rounding of x), in MatVec,
    /// MatMul and MatMul's invariant mode: within float rounding of the float64 dot of the dequantized row with x,
    /// and measurably apart from the integer path (which rounds x), so the option is really in effect.
    /// </summary>
    public static IEnumerable<object[]> QuantizedMathFloatCases => CpuPaths.Cross(
        [GgmlType.Q8_0, 416],
        [GgmlType.Q4_0, 416],
        [GgmlType.Q4_K, 512],
        [GgmlType.Q5_K, 512],
        [GgmlType.Q6_K, 512]);

    [Theory, MemberData(nameof(QuantizedMathFloatCases))]
    public void QuantizedMathFloat_EqualsDotOfDequantizedRowWithUnroundedActivation(GgmlType type, int cols, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var rng = new Random(9);
        const int rows = 29, batch = 6;
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var data = new byte[rows * rowBytes];
        var w = RandomVector(rng, rows * cols, 0.5f);
        for (int r = 0; r < rows; r++) Quantizer.QuantizeRow(type, w.AsSpan(r * cols, cols), data.AsSpan((int)(r * rowBytes), (int)rowBytes));
        var x = RandomVector(rng, batch * cols);
        var dq = new float[rows * cols];
        for (int r = 0; r < rows; r++) BlockFormats.DequantizeRow(type, data.AsSpan((int)(r * rowBytes), (int)rowBytes), dq.AsSpan(r * cols, cols));
        double Expected(int b, int r)
        {
            double e = 0;
            for (int c = 0; c < cols; c++) e += dq[r * cols + c] * (double)x[b * cols + c];
            return e;
        }
        using var pool = new WorkerPool(2);
        fixed (byte* p = data)
        {
            var m = new WeightMatrix(type, p, rows, cols);
            var one = new float[rows];
            var integer = new float[rows];
            MatVec.Multiply(m, x.AsSpan(0, cols), one, pool, QuantizedMath.Float);
            MatVec.Multiply(m, x.AsSpan(0, cols), integer, pool);
            double apart = 0;
            for (int r = 0; r < rows; r++)
            {
                Assert.True(Math.Abs(Expected(0, r) - one[r]) <= 1e-5 * (1 + Math.Abs(Expected(0, r))), $"MatVec row {r}: {one[r]} vs {Expected(0, r)}");
                apart = Math.Max(apart, Math.Abs(Expected(0, r) - integer[r]));
            }
            Assert.True(apart > 1e-3, $"the integer path should differ by its activation rounding, max {apart}");
            foreach (bool invariant in new[] { false, true })
            {
                var y = new float[batch * rows];
                MatMul.Multiply(m, x, y, batch, pool, invariant, QuantizedMath.Float);
                for (int b = 0; b < batch; b++)
                    for (int r = 0; r < rows; r++)
                        Assert.True(Math.Abs(Expected(b, r) - y[b * rows + r]) <= 1e-5 * (1 + Math.Abs(Expected(b, r))),
                            $"MatMul (invariant {invariant}) token {b} row {r}: {y[b * rows + r]} vs {Expected(b, r)}");
            }
        }
    }

    /// <summary>
    /// FloatQuantDot (QuantizedMath.Float's Q8_0/Q4_0 kernels), every path this CPU has (AVX-512, AVX2, scalar),
    /// odd and even block counts: the float64 dot of the dequantized row with the unrounded x, up to float rounding;
    /// and the fast row expansion gives BlockFormats.DequantizeRow's bits.
    /// </summary>
    public static IEnumerable<object[]> FloatQuantDotCases => CpuPaths.Cross(
        [GgmlType.Q8_0, 13],
        [GgmlType.Q8_0, 64],
        [GgmlType.Q4_0, 13],
        [GgmlType.Q4_0, 64]);

    [Theory, MemberData(nameof(FloatQuantDotCases))]
    public void FloatQuantDot_EveryPath_EqualsFloat64DotOfDequantizedRow(GgmlType type, int blocks, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var rng = new Random(17);
        int cols = blocks * 32;
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var data = new byte[rowBytes + 4096 + 128]; // the kernels prefetch ahead (never faults, but keep it inside)
        Quantizer.QuantizeRow(type, RandomVector(rng, cols, 0.5f), data.AsSpan(0, (int)rowBytes));
        var x = RandomVector(rng, cols);
        var dq = new float[cols];
        BlockFormats.DequantizeRow(type, data.AsSpan(0, (int)rowBytes), dq);
        double expected = 0;
        for (int c = 0; c < cols; c++) expected += dq[c] * (double)x[c];
        var expanded = new float[cols];
        fixed (byte* w = data)
        fixed (float* px = x)
        fixed (float* pe = expanded)
        {
            float got = FloatQuantDot.Dot(type, w, px, blocks);
            Assert.True(Math.Abs(got - expected) <= 1e-5 * (1 + Math.Abs(expected)), $"{cpu}: {got} vs {expected}");
            FloatQuantDot.Expand(type, w, pe, blocks);
        }
        Assert.Equal(dq, expanded);
    }

    /// <summary>FloatQuantDot.Expand of K-quant rows (random bytes: every scale, min and high-bit pattern) gives BlockFormats.DequantizeRow's bits.</summary>
    public static IEnumerable<object[]> ExpandKQuantCases => CpuPaths.Cross(
        [GgmlType.Q4_K],
        [GgmlType.Q5_K],
        [GgmlType.Q6_K]);

    [Theory, MemberData(nameof(ExpandKQuantCases))]
    public void FloatQuantDot_ExpandKQuants_SameBitsAsBlockFormats(GgmlType type, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var rng = new Random(23);
        const int blocks = 6;
        int cols = blocks * 256;
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var data = new byte[rowBytes];
        rng.NextBytes(data);
        int ts = GgmlTypeInfo.TypeSize(type);
        for (int b = 0; b < blocks; b++) // finite fp16 scales (random exponents up to 2^-3)
            foreach (int at in type == GgmlType.Q6_K ? new[] { 208 } : new[] { 0, 2 })
                BitConverter.TryWriteBytes(data.AsSpan(b * ts + at), BitConverter.HalfToUInt16Bits((Half)((rng.NextDouble() - 0.5) * 0.25)));
        var expected = new float[cols];
        BlockFormats.DequantizeRow(type, data, expected);
        var got = new float[cols];
        fixed (byte* w = data)
        fixed (float* y = got)
            FloatQuantDot.Expand(type, w, y, blocks);
        Assert.Equal(expected, got);
    }

    /// <summary>
    /// When For returns, every range has finished: uneven ranges, more threads than cores, the count checked at
    /// once, over many jobs. (A completion signal set late by the previous job once let a caller return while a
    /// worker still ran; that window is too narrow for this stress test to hit reliably, so the fix is also
    /// argued in WorkerPool.For's comment.)
    /// </summary>
    [Fact]
    public void WorkerPool_For_ReturnsOnlyWhenAllRangesAreDone()
    {
        using var pool = new WorkerPool(8); // more threads than cores: workers get preempted mid-signal
        var state = new int[1];
        for (int job = 0; job < 20000; job++)
        {
            state[0] = 0;
            int n = 1 + job % 9;
            pool.For(n, new CountItems { Total = state });
            Assert.Equal(n, Volatile.Read(ref state[0]));
        }
    }

    private readonly struct CountItems : IRangeOp
    {
        public required int[] Total { get; init; }
        public void Run(int start, int end)
        {
            if ((start + end) % 3 == 0) Thread.SpinWait(200 * (end - start));
            Interlocked.Add(ref Total[0], end - start);
        }
    }

    // 416 columns are 13 blocks: a whole group of eight and five past it (the zero-padded tail group); 96 are three
    // blocks, a tail group alone; 704 (duet-tiny's FFN) two groups and six.
    public static IEnumerable<object[]> MatMulBatchCases => CpuPaths.Cross(
        [GgmlType.Q8_0, 1, 416],
        [GgmlType.Q8_0, 7, 416],
        [GgmlType.Q8_0, 9, 96],
        [GgmlType.Q8_0, 8, 704],
        [GgmlType.Q4_0, 4, 416],
        [GgmlType.Q4_0, 13, 416],
        [GgmlType.Q4_0, 6, 96],
        [GgmlType.Q4_0, 8, 704],
        [GgmlType.F16, 5, 416],
        [GgmlType.F32, 3, 416]);

    [Theory, MemberData(nameof(MatMulBatchCases))]
    public void MatMul_Batch_EqualsMatVecOnEachRow(GgmlType type, int batch, int cols, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var rng = new Random(9);
        const int rows = 29;
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var data = new byte[rows * rowBytes];
        var w = RandomVector(rng, rows * cols, 0.5f);
        for (int r = 0; r < rows; r++) Quantizer.QuantizeRow(type, w.AsSpan(r * cols, cols), data.AsSpan((int)(r * rowBytes), (int)rowBytes));
        var x = RandomVector(rng, batch * cols);
        var y = new float[batch * rows];
        var one = new float[rows];
        using var pool = new WorkerPool(2);
        fixed (byte* p = data)
        {
            var m = new WeightMatrix(type, p, rows, cols);
            MatMul.Multiply(m, x, y, batch, pool);
            for (int b = 0; b < batch; b++)
            {
                MatVec.Multiply(m, x.AsSpan(b * cols, cols), one, pool);
                for (int r = 0; r < rows; r++) Assert.True(Math.Abs(one[r] - y[b * rows + r]) <= 1e-5f * (1 + Math.Abs(one[r])), $"{type} token {b} row {r}: {y[b * rows + r]} vs {one[r]}");
            }
        }
    }

    public static IEnumerable<object[]> QuantGemmCases => CpuPaths.Cross([GgmlType.Q8_0], [GgmlType.Q4_0]);

    [Theory, MemberData(nameof(QuantGemmCases))]
    public void QuantGemm_PackRow_RegisterTransposeEqualsWordByWordPacking(GgmlType type, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var kind = QuantGemm.Kind;
        if (kind == QuantGemmKind.None) return; // no grouped kernels on this profile: prompts take the per-token kernels
        // Random bytes as blocks: every code and nibble value, scales included (the packing must not care).
        var rng = new Random(13);
        const int blocks = 27; // three whole groups of eight, three blocks left unpacked
        var row = new byte[GgmlTypeInfo.RowSize(type, blocks * 32)];
        rng.NextBytes(row);
        for (int b = 0; b < blocks; b++) row[b * (type == GgmlType.Q8_0 ? 34 : 18) + 1] &= 0x3B; // finite fp16 scales
        var fast = new byte[3 * 256]; var slow = new byte[3 * 256];
        var fastScales = new float[blocks]; var slowScales = new float[blocks];
        fixed (byte* r = row) fixed (byte* f = fast) fixed (byte* s = slow) fixed (float* fs = fastScales) fixed (float* ss = slowScales)
        {
            QuantGemm.PackRow(type, r, blocks, f, fs);
            QuantGemm.PackRowPortable(type, r, blocks, s, ss);
        }
        Assert.Equal(slow, fast);
        Assert.Equal(slowScales.AsSpan(0, 24).ToArray(), fastScales.AsSpan(0, 24).ToArray());
    }

    /// <summary>
    /// The grouped prompt kernels of each kind this CPU runs (AVX-VNNI where present, the AVX2 form everywhere
    /// with AVX2) against the definition, Σ over blocks of d_w·d_x·(integer dot of the codes), summed in float64
    /// from codes read straight out of the blocks: random bytes (every code and nibble), and the extremes where
    /// 16-bit sums would saturate if the AVX2 form's bounds were wrong (Q8_0 code -128 against activations ±127,
    /// Q4_0 nibble 15 against 127 in every step of a group).
    /// </summary>
    [Theory, MemberData(nameof(QuantGemmCases))]
    public void QuantGemm_Kernels_EqualBlockDotsInFloat64(GgmlType type, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var kind = QuantGemm.Kind;
        if (kind == QuantGemmKind.None) return; // no grouped kernels on this profile: prompts take the per-token kernels
        var rng = new Random(21);
        const int blocks = 24, groups = 3, tokens = 4;
        bool q4 = type == GgmlType.Q4_0;
        int bs = q4 ? 18 : 34;
        for (int trial = 0; trial < 3; trial++)
        {
            var rows = new byte[2 * blocks * bs];
            rng.NextBytes(rows);
            var codes = new sbyte[tokens * blocks * 32];
            for (int i = 0; i < codes.Length; i++) codes[i] = (sbyte)rng.Next(-127, 128); // activation codes are within ±127
            if (trial == 1) // the extremes: all weight codes -128 (Q8_0) or nibble 15 (Q4_0), activations ±127
            {
                for (int b = 0; b < 2 * blocks; b++) for (int j = 2; j < bs; j++) rows[b * bs + j] = q4 ? (byte)0xFF : (byte)0x80;
                for (int i = 0; i < codes.Length; i++) codes[i] = (sbyte)(i / 32 % 2 == 0 ? 127 : -127);
            }
            if (trial == 2) // and the other sign
            {
                for (int b = 0; b < 2 * blocks; b++) for (int j = 2; j < bs; j++) rows[b * bs + j] = q4 ? (byte)0xFF : (byte)0x81;
                for (int i = 0; i < codes.Length; i++) codes[i] = -127;
            }
            for (int b = 0; b < 2 * blocks; b++) // finite fp16 weight scales
                BitConverter.TryWriteBytes(rows.AsSpan(b * bs), BitConverter.HalfToUInt16Bits((Half)((rng.NextDouble() - 0.5) * 0.25)));
            var xd = new float[tokens * blocks];
            for (int i = 0; i < xd.Length; i++) xd[i] = (float)(Half)(rng.NextDouble() * 0.1);
            (double Sum, double Abs) Expected(int row, int t)
            {
                double sum = 0, abs = 0;
                for (int b = 0; b < blocks; b++)
                {
                    int o = (row * blocks + b) * bs, dot = 0;
                    for (int j = 0; j < 32; j++)
                    {
                        int wq = q4 ? (j < 16 ? rows[o + 2 + j] & 0x0F : rows[o + 2 + j - 16] >> 4) - 8 : (sbyte)rows[o + 2 + j];
                        dot += wq * codes[(t * blocks + b) * 32 + j];
                    }
                    double term = (double)((float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(rows, o)) * xd[t * blocks + b]) * dot;
                    sum += term; abs += Math.Abs(term);
                }
                return (sum, abs);
            }
            var pw = new byte[2 * groups * 256]; var pws = new float[2 * blocks];
            var gx = new sbyte[tokens * groups * 256]; var gs = new int[tokens * groups * 8];
            var got = new float[8];
            fixed (byte* r = rows) fixed (byte* w = pw) fixed (float* ws = pws) fixed (sbyte* c = codes) fixed (sbyte* x = gx) fixed (int* st = gs)
            fixed (float* d = xd) fixed (float* y = got)
            {
                for (int i = 0; i < 2; i++) QuantGemm.PackRow(type, r + i * blocks * bs, blocks, w + i * groups * 256, ws + i * blocks);
                QuantGemm.PackActivations(c, tokens, blocks, QuantGemm.Offset(type), x, st);
                int xs = groups * 256, ss = groups * 8;
                void Check(string kernel, int row, int t, float value)
                {
                    var (e, abs) = Expected(row, t);
                    Assert.True(Math.Abs(value - e) <= 1e-6 * (1 + abs), $"{type} {kind} {kernel} trial {trial} row {row} token {t}: {value} vs {e}");
                }
                QuantGemm.Row2x4(type, w, xs, ws, blocks, x, st, d, xs, ss, blocks, groups, y);
                for (int i = 0; i < 2; i++) for (int t = 0; t < tokens; t++) Check("Row2x4", i, t, got[4 * i + t]);
                for (int i = 0; i < 2; i++)
                {
                    QuantGemm.Row4(type, w + i * xs, ws + i * blocks, x, st, d, xs, ss, blocks, groups, y);
                    for (int t = 0; t < tokens; t++) Check("Row4", i, t, got[t]);
                    for (int t = 0; t < tokens; t++) Check("Row1", i, t, QuantGemm.Row1(type, w + i * xs, ws + i * blocks, x + t * xs, st + t * ss, d + t * blocks, groups));
                }
            }
        }
    }

    public static IEnumerable<object[]> InvariantCases => CpuPaths.Cross(
        [GgmlType.F32, 416, QuantizedMath.Integer],
        [GgmlType.F32, 100, QuantizedMath.Integer],
        [GgmlType.F16, 416, QuantizedMath.Integer],
        [GgmlType.Q8_0, 416, QuantizedMath.Integer],
        [GgmlType.Q4_0, 416, QuantizedMath.Integer],
        [GgmlType.Q4_K, 512, QuantizedMath.Integer],
        [GgmlType.Q6_K, 512, QuantizedMath.Integer],
        [GgmlType.Q8_0, 416, QuantizedMath.Float],
        [GgmlType.Q4_K, 512, QuantizedMath.Float]);

    [Theory, MemberData(nameof(InvariantCases))]
    public void MatMul_Invariant_EveryTokenSameBitsInAnyBatch(GgmlType type, int cols, QuantizedMath math, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        // A server batches whichever sequences are running: with invariant kernels a token's result must not depend
        // on the batch size or its place in the batch (tiles of 4, the single-token tail, MatVec for one token).
        var rng = new Random(5);
        const int rows = 23;
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var data = new byte[rows * rowBytes];
        var w = RandomVector(rng, rows * cols, 0.5f);
        for (int r = 0; r < rows; r++) Quantizer.QuantizeRow(type, w.AsSpan(r * cols, cols), data.AsSpan((int)(r * rowBytes), (int)rowBytes));
        var x = RandomVector(rng, 11 * cols);
        using var pool = new WorkerPool(2);
        fixed (byte* p = data)
        {
            var m = new WeightMatrix(type, p, rows, cols);
            var alone = new float[11][];
            for (int b = 0; b < 11; b++)
            {
                alone[b] = new float[rows];
                MatMul.Multiply(m, x.AsSpan(b * cols, cols), alone[b], 1, pool, invariant: true, math);
            }
            foreach (int batch in new[] { 2, 3, 4, 5, 8, 11 })
                for (int offset = 0; offset + batch <= 11; offset += 3)
                {
                    var y = new float[batch * rows];
                    MatMul.Multiply(m, x.AsSpan(offset * cols, batch * cols), y, batch, pool, invariant: true, math);
                    for (int b = 0; b < batch; b++)
                        Assert.Equal(alone[offset + b], y.AsSpan(b * rows, rows).ToArray());
                }
            var plain = new float[rows];
            MatVec.Multiply(m, x.AsSpan(0, cols), plain, pool, math);
            for (int r = 0; r < rows; r++) Assert.True(Math.Abs(plain[r] - alone[0][r]) <= 1e-4f * (1 + Math.Abs(plain[r])));
            // F32 decode runs the one-token tile itself (where the 512-bit tiles run): the same bits as any batch, so a
            // speculative step's rows equal plain decoding's.
            if (type == GgmlType.F32 && CpuProfile.Current.Avx512 && cols % 16 == 0) Assert.Equal(alone[0], plain);
        }
    }

    [Theory]
    [InlineData(GgmlType.F32, QuantizedMath.Integer, 1)]
    [InlineData(GgmlType.F16, QuantizedMath.Integer, 1)]
    [InlineData(GgmlType.F16, QuantizedMath.Integer, 2)]
    [InlineData(GgmlType.Q8_0, QuantizedMath.Float, 2)]
    public void MatMul_FloatRows_CacheBlocks_SameBitsAsOneToken(GgmlType type, QuantizedMath math, int threads)
    {
        // With a 64 KiB L2, FloatRows cuts 23 rows of 416 columns into blocks of 12 (a short last tile, blocks that end
        // mid-range, the next block's rows prefetched) and a batch into blocks of 12 tokens (the last one 1 to 5
        // tokens: the 4-token, 2-3-token and 1-token tiles). Every (row, token) must keep the bits it has alone, from
        // activations on a 64-byte boundary and from ones that are not (copied to one), and match a double reference.
        using var profile = CpuProfile.Use(CpuProfile.Detected with { L2Bytes = 64 << 10 });
        var rng = new Random(11);
        const int rows = 23, cols = 416, tokens = 41;
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var data = new byte[rows * rowBytes];
        var w = RandomVector(rng, rows * cols, 0.5f);
        for (int r = 0; r < rows; r++) Quantizer.QuantizeRow(type, w.AsSpan(r * cols, cols), data.AsSpan((int)(r * rowBytes), (int)rowBytes));
        var stored = new float[rows * cols];
        fixed (byte* p = data) for (int r = 0; r < rows; r++) new WeightMatrix(type, p, rows, cols).DequantizeRow(r, stored.AsSpan(r * cols, cols));
        float* aligned = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)((tokens * cols + 16) * 4), 64);
        try
        {
            var xs = new Span<float>(aligned, tokens * cols + 16);
            var values = RandomVector(rng, tokens * cols);
            using var pool = new WorkerPool(threads);
            fixed (byte* p = data)
            {
                var m = new WeightMatrix(type, p, rows, cols);
                var alone = new float[tokens][];
                for (int t = 0; t < tokens; t++)
                {
                    alone[t] = new float[rows];
                    MatMul.Multiply(m, values.AsSpan(t * cols, cols), alone[t], 1, pool, invariant: true, math);
                    for (int r = 0; r < rows; r++)
                    {
                        double e = 0, abs = 0;
                        for (int k = 0; k < cols; k++) { double term = (double)stored[r * cols + k] * values[t * cols + k]; e += term; abs += Math.Abs(term); }
                        Assert.True(Math.Abs(alone[t][r] - e) <= 1e-5 * (1 + abs), $"row {r} token {t}: {alone[t][r]} vs {e}");
                    }
                }
                foreach (int shift in new[] { 0, 5 }) // floats: 0 on the boundary, 5 off it
                {
                    values.CopyTo(xs[shift..]);
                    foreach (int batch in new[] { 13, 37, 38, 39, 40, 41 })
                    {
                        var y = new float[batch * rows];
                        MatMul.Multiply(m, xs.Slice(shift, batch * cols), y, batch, pool, invariant: false, math);
                        for (int t = 0; t < batch; t++)
                            Assert.True(alone[t].AsSpan().SequenceEqual(y.AsSpan(t * rows, rows)), $"shift {shift} batch {batch} token {t}");
                    }
                }
            }
        }
        finally { System.Runtime.InteropServices.NativeMemory.AlignedFree(aligned); }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, 1)]
    [InlineData(GgmlType.Q8_0, 2)]
    [InlineData(GgmlType.Q4_0, 2)]
    public void MatMul_PackedRows_CacheBlocks_SameBitsAsOneBlock(GgmlType type, int threads)
    {
        // Q8_0/Q4_0 prompts (QuantGemm on packed rows): with a 16 KiB L2 the rows are cut into blocks of 12 (odd-sized
        // ranges, a lone last row) and the tokens into blocks of 4, with 416 columns (one group of eight blocks and a
        // padded tail group); the results must be the bits of one block over everything (a 64 MiB L2).
        if (!QuantGemm.Supported) return;
        var rng = new Random(13);
        const int rows = 23, cols = 416;
        long rowBytes = GgmlTypeInfo.RowSize(type, cols);
        var data = new byte[rows * rowBytes];
        var w = RandomVector(rng, rows * cols, 0.5f);
        for (int r = 0; r < rows; r++) Quantizer.QuantizeRow(type, w.AsSpan(r * cols, cols), data.AsSpan((int)(r * rowBytes), (int)rowBytes));
        var x = RandomVector(rng, 41 * cols);
        using var pool = new WorkerPool(threads);
        fixed (byte* p = data)
        {
            var m = new WeightMatrix(type, p, rows, cols);
            foreach (int batch in new[] { 5, 13, 38, 41 })
            {
                var whole = new float[batch * rows];
                var blocked = new float[batch * rows];
                using (CpuProfile.Use(CpuProfile.Detected with { L2Bytes = 64 << 20 })) MatMul.Multiply(m, x.AsSpan(0, batch * cols), whole, batch, pool);
                using (CpuProfile.Use(CpuProfile.Detected with { L2Bytes = 16 << 10 })) MatMul.Multiply(m, x.AsSpan(0, batch * cols), blocked, batch, pool);
                Assert.True(whole.AsSpan().SequenceEqual(blocked), $"batch {batch}");
                for (int t = 0; t < batch; t++) // and both near the float product (the activations' 8-bit rounding)
                    for (int r = 0; r < rows; r++)
                    {
                        double e = 0, abs = 0;
                        for (int k = 0; k < cols; k++) { double term = (double)w[r * cols + k] * x[t * cols + k]; e += term; abs += Math.Abs(term); }
                        Assert.True(Math.Abs(whole[t * rows + r] - e) <= 0.03 * (1 + abs), $"batch {batch} row {r} token {t}: {whole[t * rows + r]} vs {e}");
                    }
            }
        }
    }

    [Theory, MemberData(nameof(CpuPaths.Names), MemberType = typeof(CpuPaths))]
    public void MatMul_Q8_0Prompt_FloatRowsWithoutAvxVnni(string cpu)
    {
        // A Q8_0 prompt (13 tokens, not invariant) runs as float rows where the profile has no AVX-VNNI: the bits of the
        // product of the dequantized F32 rows with the activations rounded through Q8_0 (the values the integer kernels
        // multiply). With AVX-VNNI, and in invariant mode everywhere, the integer kernels: not those bits.
        using var profile = CpuProfile.Use(cpu);
        var rng = new Random(17);
        const int rows = 21, cols = 512, batch = 13;
        long rowBytes = GgmlTypeInfo.RowSize(GgmlType.Q8_0, cols);
        var data = new byte[rows * rowBytes];
        var deq = new float[rows * cols];
        var w = RandomVector(rng, rows * cols, 0.5f);
        for (int r = 0; r < rows; r++)
        {
            Quantizer.QuantizeRow(GgmlType.Q8_0, w.AsSpan(r * cols, cols), data.AsSpan((int)(r * rowBytes), (int)rowBytes));
            BlockFormats.DequantizeRow(GgmlType.Q8_0, data.AsSpan((int)(r * rowBytes), (int)rowBytes), deq.AsSpan(r * cols, cols));
        }
        var x = RandomVector(rng, batch * cols);
        var rounded = new float[batch * cols];
        var codes = new sbyte[batch * cols];
        var scales = new float[batch * cols / 32];
        QuantDot.QuantizeActivations(x, codes, scales);
        for (int i = 0; i < rounded.Length; i++) rounded[i] = scales[i / 32] * codes[i];
        using var pool = new WorkerPool(2);
        var y = new float[batch * rows];
        var yf = new float[batch * rows];
        var yi = new float[batch * rows];
        // First a K-quant product of the same shape on this thread: it sizes the shared activation buffers for Q8_K (a
        // scale per 256 codes), which the Q8_0 rounding (a scale per 32) must grow, not overrun.
        long kBytes = GgmlTypeInfo.RowSize(GgmlType.Q4_K, cols);
        var kData = new byte[rows * kBytes];
        for (int r = 0; r < rows; r++) Quantizer.QuantizeRow(GgmlType.Q4_K, w.AsSpan(r * cols, cols), kData.AsSpan((int)(r * kBytes), (int)kBytes));
        fixed (byte* pk = kData) MatMul.Multiply(new WeightMatrix(GgmlType.Q4_K, pk, rows, cols), x, new float[batch * rows], batch, pool, invariant: true);
        fixed (byte* p = data)
        fixed (float* pf = deq)
        {
            var m = new WeightMatrix(GgmlType.Q8_0, p, rows, cols);
            MatMul.Multiply(m, x, y, batch, pool);
            MatMul.Multiply(m, x, yi, batch, pool, invariant: true);
            MatMul.Multiply(new WeightMatrix(GgmlType.F32, (byte*)pf, rows, cols), rounded, yf, batch, pool);
        }
        // Whichever route, every result is the float64 product of the dequantized rows and the rounded activations
        // within float rounding (the integer kernels' sums of codes are exact).
        foreach (var (got, route) in new[] { (y, "prompt"), (yi, "invariant") })
            for (int b = 0; b < batch; b++)
                for (int r = 0; r < rows; r++)
                {
                    double e = 0, magnitude = 0;
                    for (int c = 0; c < cols; c++) { double term = (double)deq[r * cols + c] * rounded[b * cols + c]; e += term; magnitude += Math.Abs(term); }
                    Assert.True(Math.Abs(got[b * rows + r] - e) <= 1e-5 * magnitude, $"{cpu} {route} token {b} row {r}: {got[b * rows + r]:R} vs float64 {e:R}");
                }
        Assert.False(yi.AsSpan().SequenceEqual(yf), $"{cpu}: invariant mode should run the integer kernels");
        if (CpuProfile.Current.AvxVnni) Assert.False(y.AsSpan().SequenceEqual(yf), $"{cpu}: with AVX-VNNI a Q8_0 prompt should run the integer kernels");
        else Assert.True(y.AsSpan().SequenceEqual(yf), $"{cpu}: without AVX-VNNI a Q8_0 prompt should be the float product of the dequantized rows and rounded activations");
    }

    [Theory, MemberData(nameof(CpuPaths.Names), MemberType = typeof(CpuPaths))] // the scaled form where free_denormals is on
    public void HalfDot_EveryFiniteHalf_ConvertsExactly(string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        // All 63,488 finite fp16 values (subnormals, ±0 included), 32 at a time (each position of the
        // even/odd lane layout), against the exact conversion.
        var w = new ushort[65536];
        var x = new float[65536];
        int n = 0;
        for (int h = 0; h < 65536; h++)
            if ((h & 0x7C00) != 0x7C00) w[n++] = (ushort)h;
        n -= n % 32;
        var scratch = new float[32];
        var xp = new float[32];
        for (int i = 0; i < n; i += 32)
            for (int k = 0; k < 32; k++)
            {
                Array.Clear(x, i, 32);
                x[i + k] = 1f;
                bool s = HalfDot.Prepare(x.AsSpan(i, 32), xp);
                Assert.Equal(HalfDot.UsesScaledForm, s);
                fixed (ushort* pw = &w[i]) fixed (float* px = &x[i]) fixed (float* pp = xp)
                {
                    float got = HalfDot.Dot(pw, pp, px, 32, scratch, s);
                    float want = (float)BitConverter.UInt16BitsToHalf(w[i + k]);
                    Assert.True(BitConverter.SingleToInt32Bits(got) == BitConverter.SingleToInt32Bits(want) || (got == 0 && want == 0), $"half 0x{w[i + k]:X4}: {got} vs {want}");
                }
            }
    }

    [Fact]
    public void HalfToSingle_EveryBitPattern_EqualsTheExactConversion()
    {
        var h = new ushort[65536 + 7]; // a length that is not a multiple of 16: the scalar tail too
        for (int i = 0; i < h.Length; i++) h[i] = (ushort)i;
        var f = new float[h.Length];
        fixed (ushort* ph = h) fixed (float* pf = f) HalfDot.ToSingle(ph, pf, h.Length);
        for (int i = 0; i < h.Length; i++)
        {
            float want = (float)BitConverter.UInt16BitsToHalf(h[i]);
            Assert.True(BitConverter.SingleToInt32Bits(f[i]) == BitConverter.SingleToInt32Bits(want) || (float.IsNaN(want) && float.IsNaN(f[i])), $"0x{h[i]:X4}: {f[i]} vs {want}");
        }
    }

    public static IEnumerable<object[]> SpecialHalfCases => CpuPaths.Cross(
        [(ushort)0x7C00, float.PositiveInfinity], [(ushort)0xFC00, float.NegativeInfinity], [(ushort)0x7E00, float.NaN]);

    [Theory, MemberData(nameof(SpecialHalfCases))]
    public void HalfDot_InfiniteOrNaNWeight_Propagates(ushort special, float want, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var w = new ushort[64];
        for (int i = 0; i < w.Length; i++) w[i] = BitConverter.HalfToUInt16Bits((Half)(0.01f * (i - 32)));
        w[37] = special;
        var x = Enumerable.Repeat(1f, 64).ToArray();
        var xp = new float[64];
        bool s = HalfDot.Prepare(x, xp);
        fixed (ushort* pw = w) fixed (float* px = x) fixed (float* pp = xp)
        {
            Assert.Equal(want, HalfDot.Dot(pw, pp, px, 64, new float[64], s));
            w[37 ^ 1] = special; // the other half of the lane too
            w[37] = 0;
            Assert.Equal(want, HalfDot.Dot(pw, pp, px, 64, new float[64], s));
        }
    }

    /// <summary>
    /// The scaled form is taken only where x·2^112 stays finite: an activation of 2^16 or more keeps the plain
    /// form, and an infinite one does not stop the scaled form (inf·2^112 is inf, as the plain product would be).
    /// </summary>
    [Fact]
    public void HalfDot_Prepare_ScaledOnlyWhereActivationsStayFinite()
    {
        if (!CpuProfile.Detected.Avx512) return;
        using var profile = CpuProfile.Use(CpuProfile.Detected with { FreeDenormals = true });
        var x = Enumerable.Repeat(1f, 64).ToArray();
        var xp = new float[64];
        Assert.True(HalfDot.Prepare(x, xp));
        Assert.Equal(5.192296858534828e33f, xp[0]);
        x[5] = -65536f;
        Assert.False(HalfDot.Prepare(x, xp));
        Assert.Equal(-65536f, xp[16 + 2]); // index 5 is odd: the odd half of block 0, position 2
        x[5] = 65535f; x[9] = float.PositiveInfinity;
        Assert.True(HalfDot.Prepare(x, xp));
        using (CpuProfile.Use(CpuProfile.Detected with { FreeDenormals = false })) Assert.False(HalfDot.Prepare(x, xp));
    }

    public static IEnumerable<object[]> HalfDot4Cases => CpuPaths.Cross(
        [2048, -1], [5632, -1],
        [64, 2],     // an infinity in the third row: all four take the plain path
        [96, -1],
        [100, -1]);  // not a multiple of 32: the plain path

    [Theory, MemberData(nameof(HalfDot4Cases))]
    public void HalfDot4_EachRow_SameBitsAsDotAndNearFloat64(int n, int infRow, string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        var rng = new Random(n);
        long stride = n + 32; // rows apart, as in a strided view
        var w = new ushort[4 * stride];
        for (int i = 0; i < w.Length; i++)
        {
            double g = (rng.NextDouble() * 2 - 1) * (i % 5 == 0 ? 1e-4 : 0.05); // many fp16 subnormals
            w[i] = BitConverter.HalfToUInt16Bits((Half)g);
        }
        for (int k = 0; k < 4; k++) w[k * stride + n / 3] = 0; // zeros take the subnormal branch too
        if (infRow >= 0) w[infRow * stride + 7] = 0x7C00;
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var xp = new float[n];
        var xPlain = new float[n];
        using (CpuProfile.Use(CpuProfile.Current with { FreeDenormals = false })) HalfDot.Prepare(x, xPlain); // the plain form
        bool s = HalfDot.Prepare(x, xp);
        var y = new float[4];
        var scratch = new float[n];
        fixed (ushort* pw = w) fixed (float* px = x) fixed (float* pp = xp) fixed (float* pq = xPlain) fixed (float* py = y)
        {
            HalfDot.Dot4(pw, stride, pp, px, n, py, scratch, s);
            for (int k = 0; k < 4; k++)
            {
                float one = HalfDot.Dot(pw + k * stride, pp, px, n, scratch, s);
                Assert.Equal(BitConverter.SingleToInt32Bits(one), BitConverter.SingleToInt32Bits(y[k]));
                float plain = HalfDot.Dot(pw + k * stride, pq, px, n, scratch);
                Assert.Equal(BitConverter.SingleToInt32Bits(plain), BitConverter.SingleToInt32Bits(y[k]));
                if (k == infRow) { Assert.Equal(float.PositiveInfinity * Math.Sign(x[7]), y[k]); continue; }
                double want = 0, mag = 0;
                for (int i = 0; i < n; i++)
                {
                    double p = (double)(float)BitConverter.UInt16BitsToHalf(w[k * stride + i]) * x[i];
                    want += p; mag += Math.Abs(p);
                }
                Assert.True(Math.Abs(y[k] - want) <= 1e-6 * mag + 1e-30, $"row {k}: {y[k]} vs {want}");
            }
        }
    }

    /// <summary>
    /// A row that starts on a cache line and the same row 32 bytes into one (as GGUF's 32-byte alignment often
    /// places it: the scaled form then reads 32-byte halves) give the same bits, in both forms.
    /// </summary>
    [Theory, MemberData(nameof(CpuPaths.Names), MemberType = typeof(CpuPaths))]
    public void HalfDot_RowAlignment_SameBits(string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        const int n = 2048;
        if (!HalfDot.UsesPermutedActivation(n)) return; // the AVX-512 forms' loads (the fallback's float dot aligns as it likes)
        var rng = new Random(5);
        var row = new ushort[n];
        for (int i = 0; i < n; i++) row[i] = BitConverter.HalfToUInt16Bits((Half)((rng.NextDouble() * 2 - 1) * (i % 7 == 0 ? 1e-4 : 0.05)));
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        var xp = new float[n];
        bool s = HalfDot.Prepare(x, xp);
        var scratch = new float[n];
        var buffer = (ushort*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(n + 64) * 2, 64);
        try
        {
            float Dot(int offset)
            {
                row.AsSpan().CopyTo(new Span<ushort>(buffer + offset, n));
                fixed (float* pp = xp) fixed (float* px = x) return HalfDot.Dot(buffer + offset, pp, px, n, scratch, s);
            }
            float lineStart = Dot(0), lineMiddle = Dot(16), odd = Dot(8);
            Assert.Equal(BitConverter.SingleToInt32Bits(lineStart), BitConverter.SingleToInt32Bits(lineMiddle));
            Assert.Equal(BitConverter.SingleToInt32Bits(lineStart), BitConverter.SingleToInt32Bits(odd));
        }
        finally { System.Runtime.InteropServices.NativeMemory.AlignedFree(buffer); }
    }

    [Theory, MemberData(nameof(CpuPaths.Names), MemberType = typeof(CpuPaths))]
    public void QuantizeActivations_EveryPath_EqualsRoundHalfToEven(string cpu)
    {
        using var profile = CpuProfile.Use(cpu);
        // Values with exact .5 ties after scaling (amax 127 makes id 1), zeros, negatives, and random blocks.
        var x = new float[32 * 40];
        for (int j = 0; j < 32; j++) x[j] = j % 2 == 0 ? j + 0.5f : -(j + 0.5f);
        x[31] = 127;
        var rng = new Random(4);
        for (int i = 64; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 3 == 0 ? 1e-3f : 10f);
        var codes = new sbyte[x.Length];
        var scales = new float[x.Length / 32];
        QuantDot.QuantizeActivations(x, codes, scales);
        for (int b = 0; b < x.Length / 32; b++)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.Max(amax, Math.Abs(x[b * 32 + j]));
            float id = amax != 0 ? 127f / amax : 0f;
            Assert.Equal((float)(Half)(amax / 127f), scales[b]);
            for (int j = 0; j < 32; j++)
                Assert.Equal((sbyte)Math.Round(x[b * 32 + j] * id, MidpointRounding.ToEven), codes[b * 32 + j]);
        }
    }

    [Fact]
    public void WorkerPool_ManyJobs_CoverEveryIndexOnce()
    {
        using var pool = new WorkerPool(4);
        for (int n = 0; n < 200; n++)
        {
            var hits = new int[n];
            pool.For(n, new HitItems { Hits = hits });
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    private readonly struct HitItems : IRangeOp
    {
        public required int[] Hits { get; init; }
        public void Run(int start, int end) { for (int i = start; i < end; i++) Interlocked.Increment(ref Hits[i]); }
    }
}
