// The activation rows of a matrix product with Q8_0 or Q4_0 weights, quantized to Q8_0 once per call (as ggml
// quantizes src1 to the weight type's vec_dot_type) and laid out for the kernels that read them:
//  - Codes/Scales: plain Q8_0 blocks (codes and fp16-rounded scales), for the 256-bit and scalar kernels;
//  - pair layouts for the AVX-512 decode kernels, which take two weight blocks per 512-bit vector:
//      Q8_0 weights: codes as they are; scales [dA x8, dB x8] per pair of blocks A, B;
//      Q4_0 weights: four blocks per vector, one block's packed bytes per 128-bit lane (see BuildQuads); since
//      the nibbles are taken unsigned (0..15, not -8..7) each lane carries the correction -8·Σx;
//  - a grouped layout for prompt processing (MatMul), see QuantGemm.
// Buffers grow to the largest call and are reused: nothing is allocated per token.
namespace Duet.Tensors.Quant;

public sealed unsafe class Q8Activations
{
    public int Rows { get; private set; }
    public int Cols { get; private set; }
    public int Blocks => Cols / 32;
    public sbyte[] Codes { get; private set; } = [];
    public float[] Scales { get; private set; } = [];
    /// <summary>The decode layout (batch of one): codes (Q4_0), per-lane scales, per-lane corrections (Q4_0).</summary>
    public sbyte[] PairCodes { get; private set; } = [];
    public float[] PairScales { get; private set; } = [];
    public int[] PairCorrection { get; private set; } = [];
    /// <summary>
    /// Q4_0 quad scales times 2^112 for <see cref="QuantDot.DotQ4_0QuadsPermuted"/> (which takes the weight scales as
    /// their bits moved, i.e. times 2^-112); filled by <see cref="BuildPairs(GgmlType, bool)"/> where that kernel runs
    /// and every scale is below 2^16, as <see cref="ScaledQuads"/> then says.
    /// </summary>
    public float[] QuadScalesScaled { get; private set; } = [];
    public bool ScaledQuads { get; private set; }
    /// <summary>The grouped layout of QuantGemm (prompt processing): codes and starting sums per row and group.</summary>
    public sbyte[] GroupCodes { get; private set; } = [];
    public int[] GroupStart { get; private set; } = [];
    /// <summary>
    /// Where the blocks are not a whole number of groups of eight: per row, the blocks past the last whole group as one
    /// more group, padded with zero codes (and zero scales, TailScales: 8 per row), so the grouped kernels take them too.
    /// </summary>
    public sbyte[] TailCodes { get; private set; } = [];
    public int[] TailStart { get; private set; } = [];
    public float[] TailScales { get; private set; } = [];

    private void BuildGroups(GgmlType type, int r0, int r1)
    {
        int groups = Blocks / 8, full = groups * 8, rest = Blocks - full;
        int offset = QuantGemm.Offset(type);
        fixed (sbyte* c = Codes) fixed (sbyte* gc = GroupCodes) fixed (int* gs = GroupStart)
        fixed (sbyte* tc = TailCodes) fixed (int* ts = TailStart) fixed (float* sc = Scales) fixed (float* tsc = TailScales)
        {
            QuantGemm.PackActivations(c + r0 * Cols, r1 - r0, Blocks, offset, gc + r0 * groups * 256, gs + r0 * groups * 8);
            if (rest == 0) return;
            sbyte* padded = stackalloc sbyte[256];
            for (int r = r0; r < r1; r++)
            {
                new Span<sbyte>(padded, 256).Clear();
                new ReadOnlySpan<sbyte>(c + r * Cols + full * 32, rest * 32).CopyTo(new Span<sbyte>(padded, 256));
                QuantGemm.PackActivations(padded, 1, 8, offset, tc + r * 256, ts + r * 8);
                for (int j = 0; j < 8; j++) tsc[r * 8 + j] = j < rest ? sc[r * Blocks + full + j] : 0f;
            }
        }
    }

    /// <summary>Rows of <see cref="QuantizeGrouped"/>: quantized, then packed in the grouped layout.</summary>
    private readonly struct QuantizeGroupedRows : Parallel.IRangeOp
    {
        public required Q8Activations Owner { get; init; }
        public required float* X { get; init; }
        public required GgmlType Type { get; init; }

        public void Run(int r0, int r1)
        {
            var q = Owner;
            for (int r = r0; r < r1; r++)
                QuantDot.QuantizeActivations(new ReadOnlySpan<float>(X + (long)r * q.Cols, q.Cols), q.Codes.AsSpan(r * q.Cols, q.Cols), q.Scales.AsSpan(r * q.Blocks, q.Blocks));
            q.BuildGroups(Type, r0, r1);
        }
    }

    /// <summary>
    /// Quantizes <paramref name="rows"/> rows and builds the grouped layout for <paramref name="type"/>, rows split
    /// across <paramref name="pool"/> (prompt processing: the batch's rows are independent).
    /// </summary>
    public void QuantizeGrouped(ReadOnlySpan<float> x, int rows, int cols, GgmlType type, Parallel.WorkerPool pool)
    {
        Allocate(x, rows, cols);
        int groups = Blocks / 8;
        if (GroupStart.Length < rows * groups * 8) { GroupCodes = new sbyte[rows * groups * 256]; GroupStart = new int[rows * groups * 8]; }
        if (Blocks % 8 != 0 && TailStart.Length < rows * 8) { TailCodes = new sbyte[rows * 256]; TailStart = new int[rows * 8]; TailScales = new float[rows * 8]; }
        fixed (float* px = x)
            pool.For(rows, new QuantizeGroupedRows { Owner = this, X = px, Type = type });
    }

    /// <summary>Quantizes <paramref name="rows"/> rows of <paramref name="cols"/> (a multiple of 32).</summary>
    public void Quantize(ReadOnlySpan<float> x, int rows, int cols)
    {
        Allocate(x, rows, cols);
        for (int r = 0; r < rows; r++)
            QuantDot.QuantizeActivations(x.Slice(r * cols, cols), Codes.AsSpan(r * cols, cols), Scales.AsSpan(r * Blocks, Blocks));
    }

    private void Allocate(ReadOnlySpan<float> x, int rows, int cols)
    {
        if (cols % 32 != 0) throw new ArgumentException($"Q8_0 activations need a multiple of 32 columns, not {cols}");
        if (x.Length < rows * cols) throw new ArgumentException($"Q8Activations: x has {x.Length} values, not {rows} x {cols}");
        Rows = rows; Cols = cols;
        ScaledQuads = false; // until BuildPairs fills the scaled quad scales for these rows
        if (Codes.Length < rows * cols) { Codes = new sbyte[rows * cols]; Scales = new float[rows * cols / 32]; }
    }

    /// <summary>Codes per row in the decode layout (Q4_0).</summary>
    public int CodeStride => Cols;
    /// <summary>Scales (and corrections) per row in the decode layout: 16 per pair (Q8_0) or per quad (Q4_0).</summary>
    public int LaneStride(GgmlType type) => type == GgmlType.Q4_0 ? Blocks / 4 * 16 : Blocks / 2 * 16;

    /// <summary>Builds, for every row, the layout that the AVX-512 kernels for <paramref name="type"/> read.</summary>
    public void BuildPairs(GgmlType type) => BuildPairs(type, scaledQuads: false);

    /// <inheritdoc cref="BuildPairs(GgmlType)"/>
    /// <param name="scaledQuads">Also the scaled Q4_0 quad scales (where AVX-512 VBMI runs), for decode's <see cref="QuantDot.DotQ4_0QuadsPermuted"/>.</param>
    public void BuildPairs(GgmlType type, bool scaledQuads)
    {
        ScaledQuads = false;
        int ls = LaneStride(type);
        if (PairScales.Length < Rows * ls) { PairScales = new float[Rows * ls]; PairCorrection = new int[Rows * ls]; }
        if (type == GgmlType.Q4_0 && PairCodes.Length < Rows * Cols) PairCodes = new sbyte[Rows * Cols];
        for (int r = 0; r < Rows; r++)
        {
            if (type == GgmlType.Q4_0) { BuildQuads(r, ls); continue; }
            var scales = PairScales.AsSpan(r * ls, ls);
            for (int p = 0; p < Blocks / 2; p++)
                for (int lane = 0; lane < 16; lane++) scales[p * 16 + lane] = Scales[r * Blocks + 2 * p + lane / 8];
        }
        if (type == GgmlType.Q4_0 && scaledQuads && QuantDot.CanPermuteQuads) BuildScaledQuads(ls);
    }

    private void BuildScaledQuads(int ls)
    {
        int n = Rows * ls;
        if (QuadScalesScaled.Length < n) QuadScalesScaled = new float[n];
        for (int i = 0; i < n; i++)
        {
            if (!(Math.Abs(PairScales[i]) < 65536f)) return; // x·2^112 would overflow (or a NaN): the plain kernel
            QuadScalesScaled[i] = PairScales[i] * Kernels.HalfDot.TwoTo112;
        }
        ScaledQuads = true;
    }

    // Q4_0: per four blocks A-D, the codes 0-15 of each block then the codes 16-31 of each (two 64-byte
    // vectors), the scales [dA x4, dB x4, dC x4, dD x4] and the correction -8·Σx of each int32 lane, whose
    // four 16-bit sums cover codes 4k..4k+3 of the low half and the same of the high half.
    private void BuildQuads(int r, int ls)
    {
        for (int q = 0; q < Blocks / 4; q++)
            for (int k = 0; k < 4; k++)
            {
                int blk = q * 4 + k;
                var c = Codes.AsSpan(r * Cols + blk * 32, 32);
                var dst = PairCodes.AsSpan(r * Cols + q * 128, 128);
                c[..16].CopyTo(dst[(k * 16)..]);
                c[16..].CopyTo(dst[(64 + k * 16)..]);
                for (int j = 0; j < 4; j++)
                {
                    int lane = r * ls + q * 16 + k * 4 + j, sum = 0;
                    for (int i = 0; i < 4; i++) sum += c[j * 4 + i] + c[16 + j * 4 + i];
                    PairScales[lane] = Scales[r * Blocks + blk];
                    PairCorrection[lane] = -8 * sum;
                }
            }
    }
}
