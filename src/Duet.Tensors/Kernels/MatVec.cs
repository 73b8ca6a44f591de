// y = W x for a weight matrix W [rows, cols] stored row-major in any GGUF/safetensors element type,
// rows split across the worker pool. F32 rows are dotted in place; Q8_0 and Q4_0 rows take fused int8 dot
// products with the activation quantized to Q8_0 once per call (as ggml does), Q4_K, Q5_K and Q6_K rows with
// it quantized to Q8_K (KQuantDot); other types are expanded one row at a time into a per-thread buffer.
// QuantizedMath.Float skips the activation rounding: every quantized row is expanded to floats and dotted with
// the activation as it is (what PyTorch/transformers compute after dequantizing a GGUF).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Numerics.Tensors;
using Duet.Tensors.Parallel;
using Duet.Tensors.Quant;

namespace Duet.Tensors.Kernels;

/// <summary>How quantized weight rows (Q8_0, Q4_0, K-quants) meet the activation vector.</summary>
public enum QuantizedMath
{
    /// <summary>
    /// The activation is rounded to 8-bit blocks (Q8_0 for Q8_0/Q4_0 weights, Q8_K for K-quants) and dotted with
    /// integer instructions, as ggml does: the fastest prompts, and the same logits as llama.cpp.
    /// </summary>
    Integer,
    /// <summary>
    /// Weight rows are expanded to floats and dotted with the unrounded activation, as PyTorch/transformers run a
    /// dequantized GGUF: the logits carry only the weights' own rounding. Q8_0 generation keeps its speed (reading
    /// the weights is the bound), Q4_0 and K-quant generation is slower, prompts run at float speed (docs/interop.md
    /// has the figures).
    /// </summary>
    Float,
}

/// <summary>A read-only view of a 2-D weight: rows of <see cref="Cols"/> elements of <see cref="Type"/>, contiguous.</summary>
public readonly unsafe struct WeightMatrix(GgmlType type, byte* data, int rows, int cols)
{
    public GgmlType Type { get; } = type;
    public byte* Data { get; } = data;
    public int Rows { get; } = rows;
    public int Cols { get; } = cols;
    public long RowBytes => GgmlTypeInfo.RowSize(Type, Cols);
    public ReadOnlySpan<byte> Row(int r) => new(Data + r * RowBytes, (int)RowBytes);

    /// <summary>Row r as floats.</summary>
    public void DequantizeRow(int r, Span<float> dst) => BlockFormats.DequantizeRow(Type, Row(r), dst[..Cols]);
}

public static unsafe class MatVec
{
    private sealed class Job
    {
        public WeightMatrix W;
        public float* X;
        public float* Y;
        public Q8Activations Q8 = new();  // the activation quantized to Q8_0 (for Q8_0 and Q4_0 weights)
        public float[] Permuted = [];  // the activation as HalfDot reads it (for F16 weights)
        public bool Scaled;            // Permuted holds x·2^112 (HalfDot's scaled form)
        public sbyte[] KCodes = [];    // the activation quantized to Q8_K (for Q4_K, Q5_K, Q6_K weights)
        public float[] KScales = [];
        public short[] KBsums = [];    // Q8_K: sums of 16 codes
        public bool Expand;            // QuantizedMath.Float: quantized rows expanded to floats
    }

    private static bool UsesQ8Activations(GgmlType t) => t is GgmlType.Q8_0 or GgmlType.Q4_0;

    [ThreadStatic] private static float[]? t_row;
    [ThreadStatic] private static Job? t_job;

    /// <summary>y[r] = Σ_c W[r, c] x[c] for r in [0, W.Rows).   torch: F.linear(x, W)</summary>
    public static void Multiply(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, WorkerPool? pool = null, QuantizedMath math = QuantizedMath.Integer)
    {
        if (x.Length != w.Cols || y.Length != w.Rows)
            throw new ArgumentException($"MatVec: W is [{w.Rows}, {w.Cols}], x has {x.Length}, y has {y.Length}");
        // F32 rows: MatMul's one-token tile, four rows at a time with the next four prefetched (TensorPrimitives.Dot row
        // by row streamed at a third of the bandwidth); a row then has the bits it has in any invariant batch.
        if (w.Type == GgmlType.F32) { MatMul.Multiply(w, x, y, 1, pool, invariant: true); return; }
        fixed (float* px = x)
        fixed (float* py = y)
        {
            var job = t_job ??= new Job();
            job.W = w; job.X = px; job.Y = py; job.Expand = math == QuantizedMath.Float && (UsesQ8Activations(w.Type) || KQuantDot.Supports(w.Type));
            if (job.Expand) { }
            else if (UsesQ8Activations(w.Type))
            {
                job.Q8.Quantize(x, 1, x.Length);
                if (QuantDot.HasPairKernels) job.Q8.BuildPairs(w.Type, scaledQuads: QuantDot.UsesPermutedQuads);
            }
            else if (w.Type == GgmlType.F16)
            {
                if (job.Permuted.Length < x.Length) job.Permuted = new float[x.Length];
                job.Scaled = HalfDot.Prepare(x, job.Permuted);
            }
            else if (KQuantDot.Supports(w.Type))
            {
                if (job.KCodes.Length < x.Length) { job.KCodes = new sbyte[x.Length]; job.KScales = new float[x.Length / KQuantDot.QK_K]; }
                if (job.KBsums.Length < x.Length / 16) job.KBsums = new short[x.Length / 16];
                KQuantDot.QuantizeActivationsQ8K(x, job.KCodes, job.KScales, job.KBsums);
            }
            (pool ?? WorkerPool.Shared).For(w.Rows, new WeightRows(job));
        }
    }

    private readonly struct WeightRows(Job job) : IRangeOp { public void Run(int start, int end) => Rows(job, start, end); }

    private static void Rows(Job job, int start, int end)
    {
        var w = job.W;
        var x = new ReadOnlySpan<float>(job.X, w.Cols);
        var y = new Span<float>(job.Y, w.Rows);
        // Four rows side by side (F16, Q8_0, Q4_0 decode) unless the CPU streams rows faster one after another
        // (CpuProfile.RowAfterRow; the measurements on both machines: bench/README.md#kernel-choices).
        bool fourRows = !CpuProfile.Current.RowAfterRow;
        if (UsesQ8Activations(w.Type) && !job.Expand)
        {
            var q8 = job.Q8;
            fixed (sbyte* xq = q8.Codes)
            fixed (float* xd = q8.Scales)
            fixed (sbyte* pc = q8.PairCodes)
            fixed (float* ps = q8.PairScales)
            fixed (int* pk = q8.PairCorrection)
            {
                int blocks = w.Cols / 32;
                long rb = w.RowBytes;
                bool pairs = QuantDot.HasPairKernels;
                // Four rows at a time where the 512-bit kernels run and that streams faster (same bits per row as one
                // at a time); where QuantDot.UsesPermutedQuads (VBMI, rows one after another, free denormals), Q4_0 rows through the permuted kernel.
                int r = start;
                fixed (float* py = y)
                    if (fourRows && pairs && w.Type == GgmlType.Q8_0)
                        for (; r + 4 <= end; r += 4) QuantDot.DotQ8_0Pairs4(w.Data + r * rb, rb, xq, xd, ps, blocks, py + r);
                    else if (fourRows && pairs)
                        for (; r + 4 <= end; r += 4) QuantDot.DotQ4_0Quads4(w.Data + r * rb, rb, pc, pk, ps, xq, xd, blocks, py + r);
                if (w.Type == GgmlType.Q4_0 && q8.ScaledQuads)
                    fixed (float* pss = q8.QuadScalesScaled)
                        for (; r < end; r++) y[r] = QuantDot.DotQ4_0QuadsPermuted(w.Data + r * rb, pc, pk, pss, xq, xd, blocks);
                if (w.Type == GgmlType.Q8_0)
                    for (; r < end; r++)
                        y[r] = pairs ? QuantDot.DotQ8_0Pairs(w.Data + r * rb, xq, xd, ps, blocks) : QuantDot.DotQ8_0(w.Data + r * rb, xq, xd, blocks);
                else
                    for (; r < end; r++)
                        y[r] = pairs ? QuantDot.DotQ4_0Quads(w.Data + r * rb, pc, pk, ps, xq, xd, blocks) : QuantDot.DotQ4_0(w.Data + r * rb, xq, xd, blocks);
            }
            return;
        }
        if (KQuantDot.Supports(w.Type) && !job.Expand)
        {
            fixed (sbyte* xq = job.KCodes)
            fixed (float* xd = job.KScales)
            fixed (short* bs = job.KBsums)
            {
                long rb = w.RowBytes;
                for (int r = start; r < end; r++) y[r] = KQuantDot.Dot(w.Type, w.Data + r * rb, xq, xd, bs, w.Cols / KQuantDot.QK_K);
            }
            return;
        }
        if (job.Expand && FloatQuantDot.Supports(w.Type))
        {
            long rb = w.RowBytes;
            for (int r = start; r < end; r++) y[r] = FloatQuantDot.Dot(w.Type, w.Data + r * rb, job.X, w.Cols / 32);
            return;
        }
        var buf = t_row is { } b && b.Length >= w.Cols ? b : t_row = new float[w.Cols];
        var row = buf.AsSpan(0, w.Cols);
        if (job.Expand && FloatQuantDot.CanExpand(w.Type))
        {
            // K-quants under QuantizedMath.Float: each row expanded into an L1-sized buffer, then a float dot.
            long rb = w.RowBytes;
            int blocks = w.Cols / GgmlTypeInfo.BlockSize(w.Type);
            fixed (float* pr = buf)
                for (int r = start; r < end; r++)
                {
                    FloatQuantDot.Expand(w.Type, w.Data + r * rb, pr, blocks);
                    y[r] = TensorPrimitives.Dot(row, x);
                }
            return;
        }
        if (w.Type == GgmlType.F16)
        {
            fixed (float* xp = job.Permuted)
            fixed (float* py = y)
            {
                int r = start;
                if (fourRows) for (; r + 4 <= end; r += 4) HalfDot.Dot4((ushort*)(w.Data + (long)r * w.Cols * 2), w.Cols, xp, job.X, w.Cols, py + r, row, job.Scaled);
                for (; r < end; r++) y[r] = HalfDot.Dot((ushort*)(w.Data + (long)r * w.Cols * 2), xp, job.X, w.Cols, row, job.Scaled);
            }
            return;
        }
        if (w.Type == GgmlType.BF16)
        {
            for (int r = start; r < end; r++) y[r] = BFloat16Rows.Dot((ushort*)(w.Data + (long)r * w.Cols * 2), job.X, w.Cols);
            return;
        }
        for (int r = start; r < end; r++)
        {
            w.DequantizeRow(r, row);
            y[r] = TensorPrimitives.Dot(row, x);
        }
    }
}

/// <summary>
/// Y = X Wᵀ for a batch of activation rows X [batch, cols] (prompt processing): each weight row is read
/// once per batch and dotted with every activation row while it sits in L1, so weights stream from memory
/// once per batch instead of once per token.   torch: F.linear(X, W)
/// </summary>
public static unsafe class MatMul
{
    private sealed class Job
    {
        public WeightMatrix W;
        public float* X;
        public float* Y;
        public int Batch;
        public bool Invariant;
        public int Next, Chunk;        // float rows: the next row block to take, rows per block
        public Q8Activations Q8 = new();
        public sbyte[] KCodes = [];    // Q8_K activations, batch rows one after another
        public float[] KScales = [];
        public short[] KBsums = [];
    }

    [ThreadStatic] private static float* t_panel, t_x;
    [ThreadStatic] private static long t_panelLength, t_xLength;
    [ThreadStatic] private static Job? t_job;
    [ThreadStatic] private static byte[]? t_packed;
    [ThreadStatic] private static float[]? t_packedScales;

    /// <param name="invariant">
    /// Computes every row of Y with exactly <see cref="MatVec"/>'s arithmetic (its kernels, its summation order),
    /// so a token's result does not depend on the batch it rides in: what a server needs for a sequence to give
    /// the same tokens alone or batched with others. Weights are still read once per batch; only the faster
    /// multi-token kernels (QuantGemm, 4x4 float tiles), whose sums are ordered differently, are given up.
    /// </param>
    /// <param name="math">How quantized rows meet the activations (<see cref="QuantizedMath"/>).</param>
    public static void Multiply(WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch, WorkerPool? pool = null, bool invariant = false,
        QuantizedMath math = QuantizedMath.Integer)
    {
        if (x.Length < batch * w.Cols || y.Length < batch * w.Rows)
            throw new ArgumentException($"MatMul: W is [{w.Rows}, {w.Cols}], batch {batch}, x has {x.Length}, y has {y.Length}");
        // Quantized types run MatVec's kernels per token in invariant mode, so one token may take MatVec itself;
        // float types run 4x4 tiles and their one-token twin (FloatGemm), never MatVec's dot, when invariant.
        bool promptAsFloat = math == QuantizedMath.Integer && PromptAsFloatRows(w.Type, batch, invariant);
        bool floatRows = math == QuantizedMath.Float || !(w.Type is GgmlType.Q8_0 or GgmlType.Q4_0) && !KQuantDot.Supports(w.Type) || promptAsFloat;
        if (batch == 1 && !(invariant && floatRows)) { MatVec.Multiply(w, x[..w.Cols], y[..w.Rows], pool, math); return; }
        var job = t_job ??= new Job();
        fixed (float* px0 = x)
        fixed (float* py = y)
        {
            // Float rows meet the activations in 512-bit loads: on a 64-byte boundary (a copy when they are not)
            // every load is one cache line, not two.
            float* px = px0;
            if (promptAsFloat)
            {
                // Integer math rounds the activations to 8 bits as the integer kernels would (Q8_0 blocks of 32, or Q8_K
                // blocks of 256 for K-quants): the float rows then multiply those very values, and the product differs
                // from the integer kernels' only by float rounding, prompt and decode computing the same model.
                px = AlignedScratch.Floats(ref t_x, ref t_xLength, (long)batch * w.Cols);
                RoundActivations(job, w.Type, px0, batch, w.Cols, px, pool ?? WorkerPool.Shared);
            }
            else if (floatRows && ((nint)px0 & 63) != 0)
            {
                px = AlignedScratch.Floats(ref t_x, ref t_xLength, (long)batch * w.Cols);
                x[..(batch * w.Cols)].CopyTo(new Span<float>(px, batch * w.Cols));
            }
            job.W = w; job.X = px; job.Y = py; job.Batch = batch; job.Invariant = invariant;
            if (floatRows) { }
            else if (w.Type is GgmlType.Q8_0 or GgmlType.Q4_0)
            {
                if (QuantGemm.Supported && !invariant) job.Q8.QuantizeGrouped(x, batch, w.Cols, w.Type, pool ?? WorkerPool.Shared);
                else
                {
                    job.Q8.Quantize(x, batch, w.Cols);
                    if (QuantDot.HasPairKernels) job.Q8.BuildPairs(w.Type);
                }
            }
            else if (KQuantDot.Supports(w.Type))
            {
                int n = batch * w.Cols, sb = w.Cols / KQuantDot.QK_K;
                if (job.KCodes.Length < n) { job.KCodes = new sbyte[n]; job.KScales = new float[n / KQuantDot.QK_K]; }
                if (job.KBsums.Length < n / 16) job.KBsums = new short[n / 16];
                for (int b = 0; b < batch; b++)
                    KQuantDot.QuantizeActivationsQ8K(x.Slice(b * w.Cols, w.Cols), job.KCodes.AsSpan(b * w.Cols, w.Cols), job.KScales.AsSpan(b * sb, sb), job.KBsums.AsSpan(b * sb * 16, sb * 16));
            }
            var p = pool ?? WorkerPool.Shared;
            if (floatRows)
            {
                // Row blocks taken one at a time by whichever thread is free: on a busy machine a thread that is held
                // up takes fewer blocks instead of holding up the whole product.
                job.Chunk = FloatBlocks(w.Cols, batch).Rows;
                job.Next = 0;
                p.For(Math.Min(p.Threads, (w.Rows + job.Chunk - 1) / job.Chunk), new FloatRowBlocks(job, p.Threads));
            }
            else p.For(w.Rows, new WeightRows(job));
        }
    }

    private readonly struct WeightRows(Job job) : IRangeOp { public void Run(int start, int end) => Rows(job, start, end); }

    /// <summary>
    /// dst = x rounded through the activation format the integer kernels of <paramref name="type"/> use: each block's
    /// scale times its codes (Q8_0 for Q8_0 weights, Q8_K for K-quants), the values those kernels multiply. Rows are
    /// independent: they are split across the pool.
    /// </summary>
    private static void RoundActivations(Job job, GgmlType type, float* x, int batch, int cols, float* dst, WorkerPool pool)
    {
        int n = batch * cols;
        // The K-quant kernels size these buffers for Q8_K (a scale per 256 codes); Q8_0 needs a scale per 32.
        if (job.KCodes.Length < n) job.KCodes = new sbyte[n];
        if (job.KScales.Length < n / 32) job.KScales = new float[n / 32];
        if (job.KBsums.Length < n / 16) job.KBsums = new short[n / 16];
        pool.For(batch, new RoundRows(job, KQuantDot.Supports(type), x, cols, dst));
    }

    private readonly struct RoundRows(Job job, bool q8k, float* x, int cols, float* dst) : IRangeOp
    {
        public void Run(int start, int end)
        {
            int block = q8k ? KQuantDot.QK_K : 32, blocks = cols / block;
            bool v512 = CpuProfile.Current.Avx512;
            fixed (sbyte* c = job.KCodes)
                for (int r = start; r < end; r++)
                {
                    var row = new ReadOnlySpan<float>(x + (long)r * cols, cols);
                    var codes = job.KCodes.AsSpan(r * cols, cols);
                    var scales = job.KScales.AsSpan(r * blocks, blocks);
                    if (q8k) KQuantDot.QuantizeActivationsQ8K(row, codes, scales, job.KBsums.AsSpan(r * blocks * 16, blocks * 16));
                    else QuantDot.QuantizeActivations(row, codes, scales);
                    for (int i = r * cols, e = i + cols; i < e; i += block)
                    {
                        float d = job.KScales[i / block];
                        int k = i;
                        if (v512)
                            for (var vd = Vector512.Create(d); k < i + block; k += 16)
                                Avx512F.Store(dst + k, Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Sse2.LoadVector128(c + k))) * vd);
                        for (; k < i + block; k++) dst[k] = d * c[k];
                    }
                }
        }
    }

    private readonly struct FloatRowBlocks(Job job, int threads) : IRangeOp
    {
        public void Run(int start, int end)
        {
            int rows = job.W.Rows, chunk = job.Chunk, blocks = (rows + chunk - 1) / chunk;
            for (int c; (c = Interlocked.Increment(ref job.Next) - 1) < blocks;)
            {
                int next = Math.Min(blocks, c + threads); // the block this thread most likely takes next, to prefetch
                FloatRows(job, c * chunk, Math.Min(rows, (c + 1) * chunk), next * chunk, Math.Min(rows, (next + 1) * chunk));
            }
        }
    }

    // Q8_0/Q4_0 with AVX-VNNI or AVX2: each weight row packed once, then two rows by four tokens at a time (QuantGemm;
    // faster prompts than one row by four tokens, bench/README.md#kernel-choices); blocks past the last whole group of eight take the
    // plain kernels.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Grouped(Job job, int start, int end)
    {
        var w = job.W;
        var q8 = job.Q8;
        int cols = w.Cols, batch = job.Batch, blocks = cols / 32, groups = blocks / 8, full = groups * 8;
        bool q4 = w.Type == GgmlType.Q4_0;
        int bs = q4 ? 18 : 34;
        long rb = w.RowBytes;
        // Cache blocks, as FloatRows: a block of rows, packed once, meets the batch a block of tokens at a time, both
        // sized to stay in L2 together (a packed row and a token's codes take about a byte per column); one token
        // block needs no more than two rows at a time. The tiles and their sums do not change.
        int xs = groups * 256, ss = groups * 8;
        long rowCost = xs + 256 + 4 * (blocks + 8), l2 = CpuProfile.Current.L2Bytes;
        int tb = (int)Math.Max(4, (long)(l2 * PackedTokenShare) / rowCost / 4 * 4);
        int rbk = batch <= tb ? 2 : (int)Math.Max(2, (long)(l2 * PackedRowShare) / rowCost / 2 * 2);
        int blockRows = Math.Min(rbk, end - start + 1 & ~1);
        var packed = t_packed is { } pb && pb.Length >= blockRows * (xs + 256) ? pb : t_packed = new byte[blockRows * (xs + 256)];
        var pscales = t_packedScales is { } ps && ps.Length >= blockRows * (blocks + 8) ? ps : t_packedScales = new float[blockRows * (blocks + 8)];
        // The blocks past the last whole group of eight (duet-tiny's FFN width 704 is 22 blocks: 6 of them) as one more
        // group, zero-padded, through the same kernels (Q8Activations.TailCodes); they took a plain dot per (row, token).
        int rest = blocks - full;
        float* eight = stackalloc float[8];
        float* tail = stackalloc float[8];
        byte* padded = stackalloc byte[8 * 34];
        fixed (sbyte* gx = q8.GroupCodes)
        fixed (int* gs = q8.GroupStart)
        fixed (sbyte* tx = q8.TailCodes)
        fixed (int* ts = q8.TailStart)
        fixed (float* td = q8.TailScales)
        fixed (float* xd = q8.Scales)
        fixed (byte* pw = packed)
        fixed (float* pws = pscales)
        {
            byte* tw = pw + (long)blockRows * xs;       // the rows' packed tail groups, 256 bytes apart
            float* tws = pws + (long)blockRows * blocks; // and their 8 scales each
            for (int r0 = start; r0 < end; r0 += rbk)
            {
                int r1 = Math.Min(end, r0 + rbk);
                for (int r = r0; r < r1; r++)
                {
                    int i = r - r0;
                    byte* wr = w.Data + r * rb;
                    if (groups > 0) QuantGemm.PackRow(w.Type, wr, blocks, pw + (long)i * xs, pws + (long)i * blocks);
                    if (rest > 0)
                    {
                        new Span<byte>(padded, 8 * bs).Clear();
                        new ReadOnlySpan<byte>(wr + full * bs, rest * bs).CopyTo(new Span<byte>(padded, 8 * bs));
                        QuantGemm.PackRow(w.Type, padded, 8, tw + i * 256, tws + i * 8);
                    }
                }
                for (int b0 = 0; b0 < batch; b0 += tb)
                {
                    int b1 = Math.Min(batch, b0 + tb);
                    for (int r = r0; r < r1; r += 2)
                    {
                        // Two rows at a time (each activation load serves both), an odd last one alone.
                        int nr = Math.Min(2, r1 - r), i = r - r0;
                        for (int b = b0; b < b1; b += 4)
                        {
                            int n = Math.Min(4, b1 - b);
                            Dots(w.Type, nr, n, pw + (long)i * xs, xs, pws + (long)i * blocks, blocks, gx + (long)b * xs, gs + b * ss, xd + b * blocks, ss, groups, eight);
                            if (rest > 0) Dots(w.Type, nr, n, tw + i * 256, 256, tws + i * 8, 8, tx + b * 256, ts + b * 8, td + b * 8, 8, 1, tail);
                            for (int k = 0; k < nr; k++)
                                for (int t = 0; t < n; t++)
                                    job.Y[(long)(b + t) * w.Rows + r + k] = rest > 0 ? eight[4 * k + t] + tail[4 * k + t] : eight[4 * k + t];
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// <paramref name="nr"/> packed weight rows (1 or 2, <paramref name="xs"/> bytes apart, scales <paramref name="sOff"/>
    /// apart) by <paramref name="n"/> packed tokens (1-4, the same strides): result[4·i + k] for row i, token k.
    /// </summary>
    private static void Dots(GgmlType type, int nr, int n, byte* pw, int xs, float* pws, int sOff, sbyte* gx, int* gs, float* xd, int ss, int groups, float* result)
    {
        if (groups == 0) { for (int k = 0; k < 8; k++) result[k] = 0; return; }
        if (n == 4 && nr == 2) { QuantGemm.Row2x4(type, pw, xs, pws, sOff, gx, gs, xd, xs, ss, sOff, groups, result); return; }
        for (int i = 0; i < nr; i++)
        {
            if (n == 4) QuantGemm.Row4(type, pw + i * xs, pws + i * sOff, gx, gs, xd, xs, ss, sOff, groups, result + 4 * i);
            else for (int k = 0; k < n; k++) result[4 * i + k] = QuantGemm.Row1(type, pw + i * xs, pws + i * sOff, gx + k * xs, gs + k * ss, xd + k * sOff, groups);
        }
    }

    private static void Rows(Job job, int start, int end)
    {
        var w = job.W;
        int cols = w.Cols, batch = job.Batch;
        if (w.Type is GgmlType.Q8_0 or GgmlType.Q4_0 && QuantGemm.Supported && !job.Invariant)
        {
            Grouped(job, start, end);
            return;
        }
        if (w.Type is GgmlType.Q8_0 or GgmlType.Q4_0)
        {
            // Without AVX2, or invariant: each token against the row with the decode kernels (the activations were laid out for them).
            var q8 = job.Q8;
            fixed (sbyte* xq = q8.Codes)
            fixed (float* xd = q8.Scales)
            fixed (sbyte* pc = q8.PairCodes)
            fixed (float* ps = q8.PairScales)
            fixed (int* pk = q8.PairCorrection)
            {
                int blocks = cols / 32, ls = q8.LaneStride(w.Type);
                long rb = w.RowBytes;
                bool q4 = w.Type == GgmlType.Q4_0, pairs = QuantDot.HasPairKernels;
                float* four = stackalloc float[4];
                for (int r = start; r < end; r++)
                {
                    byte* wr = w.Data + r * rb;
                    int b = 0;
                    // Four tokens against the row at a time (each weight pair or quad taken apart once), with the
                    // decode kernels' per-token arithmetic, so every result keeps the bits it has alone.
                    if (pairs)
                        for (; b + 4 <= batch; b += 4)
                        {
                            if (q4) QuantDot.DotQ4_0Quads4Tokens(wr, pc + b * cols, pk + b * ls, ps + b * ls, xq + b * cols, xd + b * blocks, cols, ls, blocks, blocks, four);
                            else QuantDot.DotQ8_0Pairs4Tokens(wr, xq + b * cols, cols, xd + b * blocks, blocks, ps + b * ls, ls, blocks, four);
                            for (int k = 0; k < 4; k++) job.Y[(long)(b + k) * w.Rows + r] = four[k];
                        }
                    for (; b < batch; b++)
                    {
                        sbyte* bq = xq + b * cols;
                        float* bd = xd + b * blocks;
                        job.Y[(long)b * w.Rows + r] = pairs
                            ? (q4 ? QuantDot.DotQ4_0Quads(wr, pc + b * cols, pk + b * ls, ps + b * ls, bq, bd, blocks) : QuantDot.DotQ8_0Pairs(wr, bq, bd, ps + b * ls, blocks))
                            : (q4 ? QuantDot.DotQ4_0(wr, bq, bd, blocks) : QuantDot.DotQ8_0(wr, bq, bd, blocks));
                    }
                }
            }
            return;
        }
        if (KQuantDot.Supports(w.Type))
        {
            fixed (sbyte* xq = job.KCodes)
            fixed (float* xd = job.KScales)
            fixed (short* bs = job.KBsums)
            {
                int sb = cols / KQuantDot.QK_K;
                long rb = w.RowBytes;
                for (int r = start; r < end; r++)
                    for (int b = 0; b < batch; b++)
                        job.Y[(long)b * w.Rows + r] = KQuantDot.Dot(w.Type, w.Data + r * rb, xq + (long)b * cols, xd + b * sb, bs + b * sb * 16, sb);
            }
            return;
        }
        throw new InvalidOperationException($"MatMul: no kernel for {w.Type}");
    }

    // Quantized rows that meet a prompt (a batch of at least FloatPromptBatch tokens, not invariant) as float rows, expanded
    // once per row block (FloatQuantDot.Expand: exactly the dequantized weights) and multiplied by the float activations
    // in FloatRows' tiles, where that is faster than their integer products:
    // - K-quants (Q4_K, Q5_K, Q6_K) always: their integer path is one Q8_K dot per (row, token). TinyLlama Q4_K_M, two
    //   threads, Intel Xeon: 4 tokens 33 (dots) against 23 tokens/s (float rows), 8: 41 / 34, 10: 38-41 / 41-45, 12:
    //   40-42 / 49, 32: 43 / 69, 128: 40 / 76.
    // - Q8_0 where the CPU has no AVX-VNNI: 8-bit by 8-bit products then take vpsignb/vpmaddubsw/vpmaddwd per 32 bytes.
    //   TinyLlama Q8_0 on the Intel Xeon model 207 (AVX-512, no AVX-VNNI), integer against float rows: two threads pp8
    //   39 / 40, pp16 51 / 61, pp32 66 / 80, pp128 75 / 95, pp512 76 / 94; one thread pp128 41 / 50, pp512 38 / 48.
    //   Q4_0's integer path stays ahead there (pp128 60 / 52 on one thread, 108 / 95 on two).
    // Below the batch the integer products win, the expansion not being paid back. Invariant mode keeps the integer
    // kernels: a token's result must not depend on its batch.
    private const int FloatPromptBatch = 10;

    private static bool PromptAsFloatRows(GgmlType type, int batch, bool invariant) =>
        !invariant && batch >= FloatPromptBatch && (KQuantDot.Supports(type) || type == GgmlType.Q8_0 && !CpuProfile.Current.AvxVnni);

    // Shares of one core's L2 for the resident row block and token block. Float rows: 3/8 each (F16 pp512 on the Intel
    // Xeon: 44 -> 106 GFLOP/s against no blocks). Packed int8 rows: 1/2 for the rows and 1/16 for the tokens' codes, a
    // block of ~50 tokens at 2048 columns that stays near L1 (Q8_0 pp512 on the same CPU: 3/8 and 3/8 gave 55-56
    // tokens/s, 1/2 and 1/8 61-64, 1/2 and 1/16 66-67, 1/2 and 1/32 62-67).
    private const double FloatRowShare = 0.375, FloatTokenShare = 0.375, PackedRowShare = 0.5, PackedTokenShare = 0.0625;

    /// <summary>
    /// FloatRows' blocks for <paramref name="batch"/> tokens of <paramref name="cols"/> columns: tokens per block (3/8 of
    /// the L2 in float rows, a multiple of 6, blocks of even size: 128 = 66 + 62, not 96 + 32) and rows per block (3/8 of
    /// the L2, a multiple of 4; 16 rows, taken 4 at a time, when one token block holds the batch: nothing to keep).
    /// </summary>
    private static (int Tokens, int Rows, int PanelRows) FloatBlocks(int cols, int batch)
    {
        long rowBytes = (long)cols * sizeof(float), l2 = CpuProfile.Current.L2Bytes;
        int tb = (int)Math.Max(6, (long)(l2 * FloatTokenShare) / rowBytes / 6 * 6);
        if (batch <= tb) return (tb, 16, 4);
        int blocks = (batch + tb - 1) / tb, rb = (int)Math.Max(4, (long)(l2 * FloatRowShare) / rowBytes / 4 * 4);
        return (((batch + blocks - 1) / blocks + 5) / 6 * 6, rb, rb);
    }

    /// <summary>Rows [start, end) against the batch; rows [prefetchStart, prefetchEnd) (stored form) are prefetched meanwhile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FloatRows(Job job, int start, int end, int prefetchStart, int prefetchEnd)
    {
        var w = job.W;
        int cols = w.Cols, batch = job.Batch;
        bool inPlace = w.Type == GgmlType.F32;
        // Float rows: F32 in place, other formats expanded into float rows once per batch; register tiles of 4 rows
        // by 6 tokens (Tile4x6: 1.26x the 4x4 tiles at 1.1 B parameters, bench/README.md#kernel-choices), then 4, then the
        // last 2 or 3 tokens together (Tile4xN), a single one through Tile4x1, all summing in one order: every (row, token)
        // result is the same bits whatever the batch (what invariant mode needs; it costs the fast mode nothing).
        // Cache blocks: a block of rows (expanded once) meets the batch a block of tokens at a time, both sized to stay in
        // L2 together, so a tile's operands come from L2 rather than from L3 or memory. Only the order in which tiles run
        // changes, never a sum: the tiles take every row's whole length.
        long rowBytes = (long)cols * sizeof(float);
        var (tb, _, rb) = FloatBlocks(cols, batch);
        float* pp = inPlace ? null : AlignedScratch.Floats(ref t_panel, ref t_panelLength, (long)Math.Min(rb, end - start + 3 & ~3) * cols);
        float* tile = stackalloc float[24];
        var rows = stackalloc float*[4];
        {
            float* x = job.X;
            for (int r0 = start; r0 < end; r0 += rb)
            {
                int r1 = Math.Min(end, r0 + rb);
                if (!inPlace)
                    for (int r = r0; r < r1; r++)
                    {
                        float* dst = pp + (long)(r - r0) * cols;
                        if (w.Type == GgmlType.F16) HalfDot.ToSingle((ushort*)(w.Data + (long)r * cols * 2), dst, cols);
                        else if (w.Type == GgmlType.BF16) BFloat16Rows.ToSingle((ushort*)(w.Data + (long)r * cols * 2), dst, cols);
                        else if (FloatQuantDot.CanExpand(w.Type)) FloatQuantDot.Expand(w.Type, w.Data + r * w.RowBytes, dst, cols / GgmlTypeInfo.BlockSize(w.Type));
                        else w.DequantizeRow(r, new Span<float>(dst, cols));
                    }
                // The next block's stored rows (one contiguous range) are prefetched a few lines per tile while this block
                // computes: expanding them then reads from cache, not from memory a page at a time.
                byte* pf = null, pfEnd = null;
                int pfLines = 0;
                int p0 = r1 < end ? r1 : prefetchStart, p1 = r1 < end ? Math.Min(end, r1 + rb) : prefetchEnd;
                if (!inPlace && p0 < p1 && Sse.IsSupported)
                {
                    pf = w.Data + p0 * w.RowBytes;
                    pfEnd = w.Data + p1 * w.RowBytes;
                    long tiles = (long)(r1 - r0 + 3) / 4 * ((batch + 5) / 6);
                    pfLines = (int)Math.Min(64, ((pfEnd - pf) / 64 + tiles - 1) / tiles);
                }
                for (int b0 = 0; b0 < batch; b0 += tb)
                {
                    int b1 = Math.Min(batch, b0 + tb);
                    for (int r = r0; r < r1; r += 4)
                    {
                        int nr = Math.Min(4, r1 - r);
                        for (int i = 0; i < 4; i++)
                        {
                            int ri = r + Math.Min(i, nr - 1); // a short last tile repeats its last row
                            rows[i] = inPlace ? (float*)(w.Data + ri * rowBytes) : pp + (long)(ri - r0) * cols;
                        }
                        // F32 rows are read in place: the first tile over them prefetches the next four rows.
                        float* next = inPlace && b0 == 0 && r + 8 <= end ? (float*)(w.Data + (r + 4) * rowBytes) : null;
                        Tiles(rows, x, cols, b0, b1, nr, job.Y + r, w.Rows, tile, next, ref pf, pfEnd, pfLines);
                    }
                }
            }
        }
    }

    // Tokens [b0, b1) against four rows: 6 at a time, then 4, then the last 2 or 3 together, a single one alone.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tiles(float** rows, float* x, int cols, int b0, int b1, int nr, float* y, int ldy, float* tile, float* next,
        ref byte* pf, byte* pfEnd, int pfLines)
    {
        int b = b0;
        for (; b + 6 <= b1; b += 6, next = null)
        {
            for (int l = 0; l < pfLines && pf < pfEnd; l++, pf += 64) Sse.Prefetch1(pf);
            FloatGemm.Tile4x6(rows[0], rows[1], rows[2], rows[3], x + (long)b * cols, cols, cols, tile, next);
            for (int t = 0; t < 6; t++)
                for (int i = 0; i < nr; i++) y[(long)(b + t) * ldy + i] = tile[4 * t + i];
        }
        for (; b + 4 <= b1; b += 4, next = null)
        {
            FloatGemm.Tile4x4(rows[0], rows[1], rows[2], rows[3], x + (long)b * cols, cols, cols, tile, next);
            for (int t = 0; t < 4; t++)
                for (int i = 0; i < nr; i++) y[(long)(b + t) * ldy + i] = tile[4 * t + i];
        }
        if (b1 - b >= 2)
        {
            int n = b1 - b;
            FloatGemm.Tile4xN(rows[0], rows[1], rows[2], rows[3], x + (long)b * cols, cols, cols, n, tile, next);
            for (int t = 0; t < n; t++)
                for (int i = 0; i < nr; i++) y[(long)(b + t) * ldy + i] = tile[4 * t + i];
            return;
        }
        if (b < b1)
        {
            FloatGemm.Tile4x1(rows[0], rows[1], rows[2], rows[3], x + (long)b * cols, cols, tile, next);
            for (int i = 0; i < nr; i++) y[(long)b * ldy + i] = tile[i];
        }
    }
}
