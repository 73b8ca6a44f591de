// The LLaMA forward pass, one position at a time against a KV cache (llama2.c's run.c structure):
//   x = embed(token)
//   per layer: x += Wo · attention(rope(Wq·n), rope(Wk·n), Wv·n)  with n = rmsnorm(x)   (grouped-query)
//              x += Wdown · (silu(Wgate·n) * Wup·n)                  with n = rmsnorm(x)
//   logits = Wout · rmsnorm(x)
// The model is immutable and shared; per-sequence state (KV cache, scratch buffers) lives in LlamaState.
// A decode step allocates nothing.
using Duet.Tensors.Kernels;
using Duet.Tensors.Parallel;

namespace Duet.Model;

public sealed class LlamaState
{
    public LlamaConfig Config { get; }
    public int Capacity { get; }
    /// <summary>Keys and values per layer: [Capacity, KvDim], in the cache types the state was made with.</summary>
    public KvCache[] Keys { get; }
    public KvCache[] Values { get; }
    public int Length { get; set; }

    internal readonly float[] X, Xb, Xb2, Q, K, V, Att, Hb, Hb2, Cos, Sin;
    public float[] Logits { get; }

    public LlamaState(LlamaConfig c, int capacity, KvCacheType keyType = KvCacheType.F32, KvCacheType valueType = KvCacheType.F32)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), "context capacity must be positive");
        Config = c;
        Capacity = capacity;
        Keys = Enumerable.Range(0, c.Layers).Select(_ => new KvCache(keyType, capacity, c.KvDim, c.HeadDim)).ToArray();
        Values = Enumerable.Range(0, c.Layers).Select(_ => new KvCache(valueType, capacity, c.KvDim, c.HeadDim)).ToArray();
        X = new float[c.Dim]; Xb = new float[Math.Max(c.Dim, c.QDim)]; Xb2 = new float[c.Dim];
        Q = new float[c.QDim]; K = new float[c.KvDim]; V = new float[c.KvDim];
        Att = new float[c.Heads * capacity];
        Hb = new float[c.FfnDim]; Hb2 = new float[c.FfnDim];
        Cos = new float[c.RopeDim / 2]; Sin = new float[c.RopeDim / 2];
        Logits = new float[c.Vocab];
    }

    public void Reset() => Length = 0;

    /// <summary>
    /// Rows batched together by the callers that gather rows from many sequences or chunks (the server's step,
    /// perplexity chunks, task requests): 128 rather than 32 gave 14-17% more perplexity tokens/s on duet-tiny (F32,
    /// Q8_0), the same as 256 (bench/README.md#kernel-choices).
    /// </summary>
    public const int MaxBatch = 128;
    /// <summary>
    /// The most rows one <see cref="LlamaModel.ForwardRows"/> call takes, and <see cref="LlamaModel.Prefill"/>'s chunk
    /// (llama.cpp's default micro-batch): each weight matrix is read, and an F16 one expanded, once per chunk, so a
    /// 512-token prompt in one chunk spends a quarter of what four chunks of 128 spend on that.
    /// </summary>
    public const int PromptBatch = 512;
    private int _batchRows;
    private AlignedFloats _bx, _bxb, _bxb2, _bq, _bk, _bv, _bh, _bh2;
    private float[] _bcos = [], _bsin = [];
    /// <summary>Sizes the batch buffers for <paramref name="rows"/> rows (they grow to the largest batch run, never shrink).</summary>
    internal void EnsureBatch(int rows)
    {
        if (rows <= _batchRows) return;
        var c = Config;
        _bx = new(rows * c.Dim); _bxb = new(rows * Math.Max(c.Dim, c.QDim)); _bxb2 = new(rows * c.Dim);
        _bq = new(rows * c.QDim); _bk = new(rows * c.KvDim); _bv = new(rows * c.KvDim);
        _bh = new(rows * c.FfnDim); _bh2 = new(rows * c.FfnDim);
        _bcos = new float[rows * (c.RopeDim / 2)]; _bsin = new float[rows * (c.RopeDim / 2)];
        _batchRows = rows;
    }
    internal AlignedFloats BX => _bx;
    internal AlignedFloats BXb => _bxb;
    internal AlignedFloats BXb2 => _bxb2;
    internal AlignedFloats BQ => _bq;
    internal AlignedFloats BK => _bk;
    internal AlignedFloats BV => _bv;
    internal AlignedFloats BH => _bh;
    internal AlignedFloats BH2 => _bh2;
    internal float[] BCos => _bcos;
    internal float[] BSin => _bsin;
}

/// <summary>
/// Floats whose first element sits on a 64-byte boundary: a pinned array (it never moves) entered at the offset that
/// aligns it. MatMul's 512-bit loads from it never straddle two cache lines, and it takes the batch as it is (an
/// unaligned batch is copied to an aligned scratch first).
/// </summary>
internal readonly struct AlignedFloats
{
    public readonly float[] Array;
    public readonly int Offset, Length;

    public unsafe AlignedFloats(int length)
    {
        Array = GC.AllocateArray<float>(length + 16, pinned: true);
        fixed (float* p = Array) Offset = (int)((64 - ((nint)p & 63)) & 63) / sizeof(float);
        Length = length;
    }

    public Span<float> Span => Array.AsSpan(Offset, Length);
}

public sealed class LlamaModel : IDisposable
{
    private readonly float[] _invFreq;
    public LlamaWeights Weights { get; }
    public LlamaConfig Config => Weights.Config;
    public WorkerPool Pool { get; set; } = WorkerPool.Shared;

    /// <summary>
    /// How quantized weights meet activations: Integer (default) rounds activations to 8 bits as llama.cpp does;
    /// Float dequantizes weight rows and keeps activations in float, as PyTorch runs a dequantized GGUF.
    /// </summary>
    public QuantizedMath QuantizedMath { get; set; } = QuantizedMath.Integer;

    public LlamaModel(LlamaWeights weights)
    {
        Weights = weights;
        _invFreq = weights.Config.InverseFrequencies();
        if (weights.RopeFreqFactors is { } f)
            for (int i = 0; i < _invFreq.Length; i++) _invFreq[i] /= f[i];
    }

    /// <summary>The element types of the KV caches of the states this model creates (<see cref="CreateState"/>); F32 unless set.</summary>
    public KvCacheType KeyCacheType { get; set; } = KvCacheType.F32;
    public KvCacheType ValueCacheType { get; set; } = KvCacheType.F32;

    public LlamaState CreateState(int? capacity = null) => new(Config, capacity ?? Config.ContextLength, KeyCacheType, ValueCacheType);

    /// <summary>Runs one token at position state.Length and appends it to the cache; logits land in state.Logits.</summary>
    public void Forward(LlamaState s, int token)
    {
        var c = Config;
        var w = Weights;
        int pos = s.Length;
        if (pos >= s.Capacity) throw new InvalidOperationException($"the context is full ({s.Capacity} tokens)");
        if ((uint)token >= (uint)c.Vocab) throw new ArgumentOutOfRangeException(nameof(token), $"token {token} is outside the vocabulary (0..{c.Vocab - 1})");

        w.Embedding.DequantizeRow(token, s.X);
        for (int i = 0; i < _invFreq.Length; i++)
        {
            float angle = pos * _invFreq[i];
            s.Cos[i] = MathF.Cos(angle);
            s.Sin[i] = MathF.Sin(angle);
        }
        int hd = c.HeadDim;
        for (int l = 0; l < c.Layers; l++)
        {
            var L = w.Layers[l];
            Ops.RmsNorm(s.X, L.AttnNorm, c.NormEps, s.Xb.AsSpan(0, c.Dim));
            var xb = s.Xb.AsSpan(0, c.Dim);
            MatVec.Multiply(L.Q, xb, s.Q, Pool, QuantizedMath);
            Lora(l, LayerTensor.Q, xb, s.Q, 1);
            MatVec.Multiply(L.K, xb, s.K, Pool, QuantizedMath);
            Lora(l, LayerTensor.K, xb, s.K, 1);
            MatVec.Multiply(L.V, xb, s.V, Pool, QuantizedMath);
            Lora(l, LayerTensor.V, xb, s.V, 1);
            Ops.Rope(s.Q, hd, s.Cos, s.Sin, c.RopeStyle);
            Ops.Rope(s.K, hd, s.Cos, s.Sin, c.RopeStyle);
            s.Keys[l].Store(pos, s.K);
            s.Values[l].Store(pos, s.V);

            var outAtt = s.Xb.AsSpan(0, c.QDim);
            Attend(s, l, s.Q, pos, 1, s.Xb);
            MatVec.Multiply(L.O, outAtt, s.Xb2, Pool, QuantizedMath);
            Lora(l, LayerTensor.O, outAtt, s.Xb2, 1);
            System.Numerics.Tensors.TensorPrimitives.Add(s.X, s.Xb2, s.X);

            Ops.RmsNorm(s.X, L.FfnNorm, c.NormEps, xb);
            MatVec.Multiply(L.Gate, xb, s.Hb, Pool, QuantizedMath);
            Lora(l, LayerTensor.Gate, xb, s.Hb, 1);
            MatVec.Multiply(L.Up, xb, s.Hb2, Pool, QuantizedMath);
            Lora(l, LayerTensor.Up, xb, s.Hb2, 1);
            Ops.SwiGlu(s.Hb, s.Hb2);
            MatVec.Multiply(L.Down, s.Hb, s.Xb2, Pool, QuantizedMath);
            Lora(l, LayerTensor.Down, s.Hb, s.Xb2, 1);
            System.Numerics.Tensors.TensorPrimitives.Add(s.X, s.Xb2, s.X);
        }
        Ops.RmsNorm(s.X, w.OutputNorm, c.NormEps, s.Xb.AsSpan(0, c.Dim));
        MatVec.Multiply(w.Output, s.Xb.AsSpan(0, c.Dim), s.Logits, Pool, QuantizedMath);
        s.Length = pos + 1;
    }

    // One attention task per (sequence group, head): a group is a run of batch rows from one sequence at
    // consecutive positions. Groups own distinct states, so each task owns its row of a score buffer.
    private sealed class AttendJob
    {
        public LlamaState[] States = new LlamaState[LlamaState.PromptBatch];
        public int[] Starts = new int[LlamaState.PromptBatch], Counts = new int[LlamaState.PromptBatch], Rows = new int[LlamaState.PromptBatch];
        public int Groups;
        public float[] Query = [], Output = [];
        public int QueryOffset, OutputOffset, Layer;
    }

    private readonly AttendJob _attend = new();

    /// <summary>
    /// Causal attention, per group g, of Counts[g] queries (rows Rows[g].. of <paramref name="queries"/>,
    /// [rows, QDim], at positions Starts[g]..) over the cached keys and values of States[g] in
    /// <paramref name="layer"/>, into the same rows of <paramref name="output"/>; query head h reads kv head
    /// h / (Heads / KvHeads). Heads and groups are independent, so (group, head) pairs are split across the pool.
    /// torch: softmax(q·Kᵀ / sqrt(d) + causal mask) · V per head.
    /// </summary>
    private void Attend(AttendJob job, int layer, float[] queries, int queryOffset, float[] output, int outputOffset)
    {
        job.Query = queries; job.Output = output; job.QueryOffset = queryOffset; job.OutputOffset = outputOffset; job.Layer = layer;
        Pool.For(job.Groups * Config.Heads / HeadsPerTask, new AttendHeads(job, HeadsPerTask));
    }

    // Heads of one grouped-query group four at a time where the group allows (Attention.Head4: each key and value
    // vector loaded once for four heads, every head's bits as Head gives them), else one.
    private int HeadsPerTask => Config.Heads / Config.KvHeads % 4 == 0 ? 4 : 1;

    /// <summary>Items are (group, run of <c>per</c> heads) pairs, group-major.</summary>
    private readonly struct AttendHeads(AttendJob job, int per) : IRangeOp
    {
        public void Run(int start, int end)
        {
            int units = job.States[0].Config.Heads / per;
            for (int i = start; i < end; i++)
            {
                int g = i / units, h = i % units * per;
                AttendHead(job.States[g], job.Layer, job.Query, job.QueryOffset, job.Rows[g], job.Starts[g], job.Counts[g], h, per, job.Output, job.OutputOffset);
            }
        }
    }

    private static void AttendHead(LlamaState s, int layer, float[] queries, int queryOffset, int row0, int start, int count, int h, int per,
        float[] output, int outputOffset)
    {
        var c = s.Config;
        int hd = c.HeadDim, group = c.Heads / c.KvHeads, kvOff = (h / group) * hd;
        float scale = 1f / MathF.Sqrt(hd);
        var kc = s.Keys[layer];
        var vc = s.Values[layer];
        float[] keys, values;
        int stride = c.KvDim, offset = kvOff;
        if (kc.Floats is { } kf && vc.Floats is { } vf) { keys = kf; values = vf; }
        else
        {
            // An F16 or Q8_0 cache: this KV head's positions up to the last row's, expanded once for the task's rows.
            int n = start + count;
            keys = ExpandHead(kc, ref t_keys, n, kvOff, hd);
            values = ExpandHead(vc, ref t_values, n, kvOff, hd);
            stride = hd; offset = 0;
        }
        for (int b = 0; b < count; b++)
        {
            int pos = start + b, at = (row0 + b) * c.QDim + h * hd;
            if (per == 4)
                Attention.Head4(queries.AsSpan(queryOffset + at, 4 * hd), keys, values, stride, offset, pos + 1, scale,
                    s.Att.AsSpan(h * s.Capacity, 3 * s.Capacity + pos + 1), s.Capacity, output.AsSpan(outputOffset + at, 4 * hd));
            else
                Attention.Head(queries.AsSpan(queryOffset + at, hd), keys, values, stride, offset, pos + 1, scale,
                    s.Att.AsSpan(h * s.Capacity, pos + 1), output.AsSpan(outputOffset + at, hd));
        }
    }

    [ThreadStatic] private static float[]? t_keys, t_values;

    /// <summary>
    /// Columns [offset, offset + hd) of positions [0, n) of a cache as floats [n, hd], in a per-thread buffer sized once
    /// for the state's whole context (an F32 side too when the other side is not F32, so that both are read with one stride).
    /// </summary>
    private static unsafe float[] ExpandHead(KvCache cache, ref float[]? buffer, int n, int offset, int hd)
    {
        var buf = buffer is { } b && b.Length >= (long)n * hd ? b : buffer = new float[(long)cache.Capacity * hd];
        fixed (float* p = buf) cache.Expand(n, offset, hd, p);
        return buf;
    }

    private void Attend(LlamaState s, int layer, float[] queries, int start, int count, float[] output)
    {
        var job = _attend;
        job.States[0] = s; job.Rows[0] = 0; job.Starts[0] = start; job.Counts[0] = count; job.Groups = 1;
        Attend(job, layer, queries, 0, output, 0);
        job.States[0] = null!;
    }

    /// <summary>
    /// Processes a prompt in batches of <see cref="LlamaState.PromptBatch"/> tokens: the same computation as
    /// <see cref="Forward"/> token by token, with each weight matrix streamed once per batch (MatMul).
    /// state.Logits ends with the last token's logits; <paramref name="allLogits"/> ([T, vocab]), if given, gets every position's.
    /// </summary>
    public void Prefill(LlamaState s, ReadOnlySpan<int> tokens, float[]? allLogits = null)
    {
        if (s.Length + tokens.Length > s.Capacity)
            throw new InvalidOperationException($"{tokens.Length} tokens do not fit in the context ({s.Capacity - s.Length} left)");
        if (allLogits is not null && allLogits.Length < (long)tokens.Length * Config.Vocab) throw new ArgumentException("allLogits is too small");
        int chunk = Math.Min(LlamaState.PromptBatch, Math.Max(1, tokens.Length));
        var rows = new LlamaState[chunk];
        Array.Fill(rows, s);
        Span<int> all = stackalloc int[chunk];
        for (int i = 0; i < all.Length; i++) all[i] = i;
        for (int i = 0; i < tokens.Length; i += chunk)
        {
            int n = Math.Min(chunk, tokens.Length - i);
            if (allLogits is null)
            {
                if (i + n < tokens.Length) ForwardRows(s, rows.AsSpan(0, n), tokens.Slice(i, n), [], []);
                else ForwardRows(s, rows.AsSpan(0, n), tokens.Slice(i, n), [n - 1], s.Logits);
            }
            else
            {
                var dst = allLogits.AsSpan(i * Config.Vocab, n * Config.Vocab);
                ForwardRows(s, rows.AsSpan(0, n), tokens.Slice(i, n), all[..n], dst);
                dst.Slice((n - 1) * Config.Vocab, Config.Vocab).CopyTo(s.Logits);
            }
        }
    }

    /// <summary>
    /// One forward pass over a batch of rows that may belong to different sequences (continuous batching):
    /// row b feeds <paramref name="tokens"/>[b] to sequence <paramref name="rowStates"/>[b] at its next
    /// position. Rows of one sequence must be adjacent; they take consecutive positions from its Length, and
    /// each sequence's Length grows by its row count. Logits of the rows listed in <paramref name="logitRows"/>
    /// land in <paramref name="logits"/> ([logitRows.Length, vocab]); <paramref name="hidden"/>, if not empty,
    /// gets every row's final normed hidden state ([rows, Dim]). <paramref name="scratch"/> lends its batch
    /// buffers (any state of this model; its cache is not touched unless it is also a row's state).
    /// With <paramref name="invariant"/>, every row is computed with the single-token kernels
    /// (MatMul's invariant mode), so a sequence's results do not depend on what else is in the batch.
    /// </summary>
    public void ForwardRows(LlamaState scratch, ReadOnlySpan<LlamaState> rowStates, ReadOnlySpan<int> tokens,
        ReadOnlySpan<int> logitRows, Span<float> logits, Span<float> hidden = default, bool invariant = false)
    {
        var c = Config;
        var w = Weights;
        int B = tokens.Length, D = c.Dim, hd = c.HeadDim, V = c.Vocab;
        if (B == 0) return;
        if (B > LlamaState.PromptBatch) throw new ArgumentException($"at most {LlamaState.PromptBatch} rows per batch, got {B}");
        if (rowStates.Length != B) throw new ArgumentException("one state per row is needed");
        if (logits.Length < logitRows.Length * V) throw new ArgumentException("the logits buffer is too small");
        if (!hidden.IsEmpty && hidden.Length < B * D) throw new ArgumentException("the hidden-state buffer is too small");
        foreach (int t in tokens)
            if ((uint)t >= (uint)V) throw new ArgumentOutOfRangeException(nameof(tokens), $"token {t} is outside the vocabulary (0..{V - 1})");
        foreach (int r in logitRows)
            if ((uint)r >= (uint)B) throw new ArgumentOutOfRangeException(nameof(logitRows), $"row {r} is not in the batch");

        // Groups of adjacent rows of one sequence.
        var job = _attend;
        int groups = 0;
        Span<int> positions = stackalloc int[B];
        for (int b = 0; b < B; b++)
        {
            var st = rowStates[b];
            if (!Equals(st.Config, c)) throw new ArgumentException("a row's state belongs to another model");
            if (b == 0 || !ReferenceEquals(st, rowStates[b - 1]))
            {
                for (int g = 0; g < groups; g++)
                    if (ReferenceEquals(job.States[g], st)) throw new ArgumentException("rows of one sequence must be adjacent");
                job.States[groups] = st; job.Rows[groups] = b; job.Starts[groups] = st.Length; job.Counts[groups] = 0;
                groups++;
            }
            int gi = groups - 1;
            positions[b] = job.Starts[gi] + job.Counts[gi]++;
            if (positions[b] >= st.Capacity) throw new InvalidOperationException($"the context is full ({st.Capacity} tokens)");
        }
        job.Groups = groups;

        scratch.EnsureBatch(B);
        Span<float> X = scratch.BX.Span, Xb = scratch.BXb.Span, Xb2 = scratch.BXb2.Span, Q = scratch.BQ.Span, K = scratch.BK.Span, Vv = scratch.BV.Span,
            H = scratch.BH.Span, H2 = scratch.BH2.Span;
        for (int b = 0; b < B; b++) w.Embedding.DequantizeRow(tokens[b], X.Slice(b * D, D));
        float[] cos = scratch.BCos, sin = scratch.BSin;
        int half = _invFreq.Length;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < half; i++)
            {
                float angle = positions[b] * _invFreq[i];
                cos[b * half + i] = MathF.Cos(angle);
                sin[b * half + i] = MathF.Sin(angle);
            }
        try
        {
            for (int l = 0; l < c.Layers; l++)
            {
                var L = w.Layers[l];
                RowsInParallel(B, new NormRows(scratch.BX, scratch.BXb, L.AttnNorm, c.NormEps));
                MatMul.Multiply(L.Q, Xb, Q, B, Pool, invariant, QuantizedMath);
                Lora(l, LayerTensor.Q, Xb, Q, B);
                MatMul.Multiply(L.K, Xb, K, B, Pool, invariant, QuantizedMath);
                Lora(l, LayerTensor.K, Xb, K, B);
                MatMul.Multiply(L.V, Xb, Vv, B, Pool, invariant, QuantizedMath);
                Lora(l, LayerTensor.V, Xb, Vv, B);
                for (int b = 0; b < B; b++)
                {
                    var cb = cos.AsSpan(b * half, half);
                    var sb = sin.AsSpan(b * half, half);
                    Ops.Rope(Q.Slice(b * c.QDim, c.QDim), hd, cb, sb, c.RopeStyle);
                    Ops.Rope(K.Slice(b * c.KvDim, c.KvDim), hd, cb, sb, c.RopeStyle);
                    var st = rowStates[b];
                    st.Keys[l].Store(positions[b], K.Slice(b * c.KvDim, c.KvDim));
                    st.Values[l].Store(positions[b], Vv.Slice(b * c.KvDim, c.KvDim));
                }
                // Causal attention: row b sees its sequence's positions 0..positions[b].
                Attend(job, l, scratch.BQ.Array, scratch.BQ.Offset, scratch.BXb.Array, scratch.BXb.Offset);
                MatMul.Multiply(L.O, Xb, Xb2, B, Pool, invariant, QuantizedMath);
                Lora(l, LayerTensor.O, Xb, Xb2, B);
                System.Numerics.Tensors.TensorPrimitives.Add(X.Slice(0, B * D), Xb2.Slice(0, B * D), X.Slice(0, B * D));
                RowsInParallel(B, new NormRows(scratch.BX, scratch.BXb, L.FfnNorm, c.NormEps));
                MatMul.Multiply(L.Gate, Xb, H, B, Pool, invariant, QuantizedMath);
                Lora(l, LayerTensor.Gate, Xb, H, B);
                MatMul.Multiply(L.Up, Xb, H2, B, Pool, invariant, QuantizedMath);
                Lora(l, LayerTensor.Up, Xb, H2, B);
                RowsInParallel(B, new SwiGluRows(scratch.BH, scratch.BH2, c.FfnDim));
                MatMul.Multiply(L.Down, H, Xb2, B, Pool, invariant, QuantizedMath);
                Lora(l, LayerTensor.Down, H, Xb2, B);
                System.Numerics.Tensors.TensorPrimitives.Add(X.Slice(0, B * D), Xb2.Slice(0, B * D), X.Slice(0, B * D));
            }
        }
        finally
        {
            for (int g = 0; g < groups; g++) job.States[g] = null!;
        }
        for (int b = 0; b < B; b++)
        {
            var st = rowStates[b];
            st.Length = Math.Max(st.Length, positions[b] + 1);
        }
        if (!hidden.IsEmpty)
            for (int b = 0; b < B; b++) Ops.RmsNorm(X.Slice(b * D, D), w.OutputNorm, c.NormEps, hidden.Slice(b * D, D));
        int n = logitRows.Length;
        if (n == 0) return;
        for (int i = 0; i < n; i++) Ops.RmsNorm(X.Slice(logitRows[i] * D, D), w.OutputNorm, c.NormEps, Xb.Slice(i * D, D));
        if (n == 1 && !invariant) MatVec.Multiply(w.Output, Xb.Slice(0, D), logits[..V], Pool, QuantizedMath);
        else MatMul.Multiply(w.Output, Xb, logits, n, Pool, invariant, QuantizedMath);
    }

    // The per-row steps between the matrix products (RMSNorm, SwiGLU: a scalar exp per element), split across the pool
    // for a batch instead of running on the calling thread while the workers wait. Each row is computed exactly as
    // before, so the bits do not change. (TinyLlama F16 pp512 on two threads: SwiGLU, RMSNorm and the exp under it were
    // about 3% of the samples, all on one thread.)
    private void RowsInParallel<TOp>(int rows, TOp op) where TOp : struct, IRangeOp
    {
        if (rows >= 8) Pool.For(rows, op);
        else op.Run(0, rows);
    }

    private readonly struct NormRows(AlignedFloats x, AlignedFloats dst, float[] weight, float eps) : IRangeOp
    {
        public void Run(int start, int end)
        {
            int d = weight.Length;
            for (int b = start; b < end; b++)
                Ops.RmsNorm(x.Array.AsSpan(x.Offset + b * d, d), weight, eps, dst.Array.AsSpan(dst.Offset + b * d, d));
        }
    }

    private readonly struct SwiGluRows(AlignedFloats gate, AlignedFloats up, int ffn) : IRangeOp
    {
        public void Run(int start, int end) =>
            Ops.SwiGlu(gate.Array.AsSpan(gate.Offset + start * ffn, (end - start) * ffn), up.Array.AsSpan(up.Offset + start * ffn, (end - start) * ffn));
    }

    private readonly List<(LoraAdapter Adapter, float Scale)> _adapters = [];
    // Per adapter, B transposed to [r, out] for each site: the update is then r vector multiply-adds of the output
    // row, not one r-long dot per output element.
    private readonly List<Dictionary<(int, LayerTensor), float[]>> _transposedB = [];
    private int _maxRank;

    /// <summary>The LoRA adapters applied at run time, each with its user scale (llama.cpp's --lora-scaled).</summary>
    public IReadOnlyList<(LoraAdapter Adapter, float Scale)> Adapters => _adapters;

    /// <summary>
    /// Applies <paramref name="adapter"/> from now on, without merging: each targeted projection's output gains
    /// scale · adapter.Scale · (x Aᵀ) Bᵀ, per row, so a row's result does not depend on its batch.
    /// InvalidDataException if the adapter does not fit this model.
    /// </summary>
    public void AddAdapter(LoraAdapter adapter, float scale = 1f)
    {
        adapter.Check(Config, "the adapter");
        // Weights read from GGUF hold Q's and K's rows in llama.cpp's order (RoPE on adjacent pairs): B's rows follow.
        if (Config.RopeStyle == RopeStyle.Normal) adapter = adapter.WithGgufRowOrder(Config);
        if (adapter.Rank > 4096) throw new InvalidDataException($"the adapter's rank {adapter.Rank} is beyond any LoRA's (at most 4096)");
        var transposed = new Dictionary<(int, LayerTensor), float[]>();
        int r = adapter.Rank;
        foreach (var (key, (_, b)) in adapter.Weights)
        {
            int outDim = b.Length / r;
            var bt = new float[b.Length];
            for (int o = 0; o < outDim; o++)
                for (int k = 0; k < r; k++) bt[k * outDim + o] = b[o * r + k];
            transposed[key] = bt;
        }
        _adapters.Add((adapter, scale));
        _transposedB.Add(transposed);
        _maxRank = Math.Max(_maxRank, r);
    }

    /// <summary>y[rows, out] += s · (x Aᵀ) Bᵀ for each adapter on this layer's projection (x [rows, in] row-major).</summary>
    private void Lora(int layer, LayerTensor site, ReadOnlySpan<float> x, Span<float> y, int rows)
    {
        if (_adapters.Count == 0) return;
        var (outDim, inDim) = WeightNames.Shape(Config, site);
        Span<float> scratch = stackalloc float[_maxRank]; // per call: the model stays shareable between threads
        for (int ai = 0; ai < _adapters.Count; ai++)
        {
            var (adapter, userScale) = _adapters[ai];
            if (!adapter.Weights.TryGetValue((layer, site), out var ab)) continue;
            var bt = _transposedB[ai][(layer, site)];
            int r = adapter.Rank;
            float s = adapter.Scale * userScale;
            var u = scratch[..r];
            for (int b = 0; b < rows; b++)
            {
                var xb = x.Slice(b * inDim, inDim);
                for (int k = 0; k < r; k++) u[k] = s * System.Numerics.Tensors.TensorPrimitives.Dot(xb, ab.A.AsSpan(k * inDim, inDim));
                var yb = y.Slice(b * outDim, outDim);
                for (int k = 0; k < r; k++) System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(bt.AsSpan(k * outDim, outDim), u[k], yb, yb);
            }
        }
    }

    /// <summary>Teacher-forced logits at every position: [T, vocab].</summary>
    public float[,] LogitsOf(ReadOnlySpan<int> ids)
    {
        var s = CreateState(Math.Max(1, ids.Length));
        var flat = new float[ids.Length * Config.Vocab];
        Prefill(s, ids, flat);
        var result = new float[ids.Length, Config.Vocab];
        Buffer.BlockCopy(flat, 0, result, 0, flat.Length * 4);
        return result;
    }

    /// <summary>Loads a .gguf file, or an HF folder (config.json + safetensors): the weights only (<see cref="ModelPackage.Open"/> also finds the tokenizer).</summary>
    public static LlamaModel Load(string path) => ModelPackage.Open(path, loadTokenizer: false).Model;

    public void Dispose() => Weights.Dispose();
}
