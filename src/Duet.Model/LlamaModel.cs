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
    /// <summary>Keys and values per layer: [Capacity, KvDim].</summary>
    public float[][] KeyCache { get; }
    public float[][] ValueCache { get; }
    public int Length { get; set; }

    internal readonly float[] X, Xb, Xb2, Q, K, V, Att, Hb, Hb2, Cos, Sin;
    public float[] Logits { get; }

    public LlamaState(LlamaConfig c, int capacity)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity), "context capacity must be positive");
        Config = c;
        Capacity = capacity;
        KeyCache = Enumerable.Range(0, c.Layers).Select(_ => new float[(long)capacity * c.KvDim]).ToArray();
        ValueCache = Enumerable.Range(0, c.Layers).Select(_ => new float[(long)capacity * c.KvDim]).ToArray();
        X = new float[c.Dim]; Xb = new float[Math.Max(c.Dim, c.QDim)]; Xb2 = new float[c.Dim];
        Q = new float[c.QDim]; K = new float[c.KvDim]; V = new float[c.KvDim];
        Att = new float[c.Heads * capacity];
        Hb = new float[c.FfnDim]; Hb2 = new float[c.FfnDim];
        Cos = new float[c.RopeDim / 2]; Sin = new float[c.RopeDim / 2];
        Logits = new float[c.Vocab];
    }

    public void Reset() => Length = 0;

    /// <summary>Tokens processed together by <see cref="LlamaModel.Prefill"/>.</summary>
    public const int MaxBatch = 32;
    private float[]? _bx, _bxb, _bxb2, _bq, _bk, _bv, _bh, _bh2, _bcos, _bsin;
    internal float[] BX => _bx ??= new float[MaxBatch * Config.Dim];
    internal float[] BXb => _bxb ??= new float[MaxBatch * Math.Max(Config.Dim, Config.QDim)];
    internal float[] BXb2 => _bxb2 ??= new float[MaxBatch * Config.Dim];
    internal float[] BQ => _bq ??= new float[MaxBatch * Config.QDim];
    internal float[] BK => _bk ??= new float[MaxBatch * Config.KvDim];
    internal float[] BV => _bv ??= new float[MaxBatch * Config.KvDim];
    internal float[] BH => _bh ??= new float[MaxBatch * Config.FfnDim];
    internal float[] BH2 => _bh2 ??= new float[MaxBatch * Config.FfnDim];
    internal float[] BCos => _bcos ??= new float[MaxBatch * (Config.RopeDim / 2)];
    internal float[] BSin => _bsin ??= new float[MaxBatch * (Config.RopeDim / 2)];
}

public sealed class LlamaModel : IDisposable
{
    private readonly float[] _invFreq;
    public LlamaWeights Weights { get; }
    public LlamaConfig Config => Weights.Config;
    public WorkerPool Pool { get; set; } = WorkerPool.Shared;

    public LlamaModel(LlamaWeights weights)
    {
        Weights = weights;
        _invFreq = weights.Config.InverseFrequencies();
        if (weights.RopeFreqFactors is { } f)
            for (int i = 0; i < _invFreq.Length; i++) _invFreq[i] /= f[i];
    }

    public LlamaState CreateState(int? capacity = null) => new(Config, capacity ?? Config.ContextLength);

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
            MatVec.Multiply(L.Q, xb, s.Q, Pool);
            MatVec.Multiply(L.K, xb, s.K, Pool);
            MatVec.Multiply(L.V, xb, s.V, Pool);
            Ops.Rope(s.Q, hd, s.Cos, s.Sin, c.RopeStyle);
            Ops.Rope(s.K, hd, s.Cos, s.Sin, c.RopeStyle);
            s.K.CopyTo(s.KeyCache[l].AsSpan(pos * c.KvDim, c.KvDim));
            s.V.CopyTo(s.ValueCache[l].AsSpan(pos * c.KvDim, c.KvDim));

            var outAtt = s.Xb.AsSpan(0, c.QDim);
            Attend(s, l, s.Q, pos, 1, s.Xb);
            MatVec.Multiply(L.O, outAtt, s.Xb2, Pool);
            System.Numerics.Tensors.TensorPrimitives.Add(s.X, s.Xb2, s.X);

            Ops.RmsNorm(s.X, L.FfnNorm, c.NormEps, xb);
            MatVec.Multiply(L.Gate, xb, s.Hb, Pool);
            MatVec.Multiply(L.Up, xb, s.Hb2, Pool);
            Ops.SwiGlu(s.Hb, s.Hb2);
            MatVec.Multiply(L.Down, s.Hb, s.Xb2, Pool);
            System.Numerics.Tensors.TensorPrimitives.Add(s.X, s.Xb2, s.X);
        }
        Ops.RmsNorm(s.X, w.OutputNorm, c.NormEps, s.Xb.AsSpan(0, c.Dim));
        MatVec.Multiply(w.Output, s.Xb.AsSpan(0, c.Dim), s.Logits, Pool);
        s.Length = pos + 1;
    }

    private sealed class AttendJob
    {
        public LlamaState? State;
        public float[] Query = [], Output = [];
        public int Layer, Start, Count;
    }

    private readonly AttendJob _attend = new();

    /// <summary>
    /// Causal attention of <paramref name="count"/> queries ([count, QDim] in <paramref name="queries"/>, at
    /// positions start..start+count-1) over the cached keys and values of <paramref name="layer"/>, into
    /// <paramref name="output"/> ([count, QDim]); query head h reads kv head h / (Heads / KvHeads). Heads are
    /// independent, so they are split across the worker pool (each head owns its row of the score buffer).
    /// torch: softmax(q·Kᵀ / sqrt(d) + causal mask) · V per head.
    /// </summary>
    private void Attend(LlamaState s, int layer, float[] queries, int start, int count, float[] output)
    {
        var job = _attend;
        job.State = s; job.Query = queries; job.Output = output; job.Layer = layer; job.Start = start; job.Count = count;
        Pool.For(s.Config.Heads, static (h0, h1, st) =>
        {
            var j = (AttendJob)st!;
            for (int h = h0; h < h1; h++) AttendHead(j.State!, j.Layer, j.Query, j.Start, j.Count, h, j.Output);
        }, job);
        job.State = null;
    }

    private static void AttendHead(LlamaState s, int layer, float[] queries, int start, int count, int h, float[] output)
    {
        var c = s.Config;
        int hd = c.HeadDim, group = c.Heads / c.KvHeads, kvOff = (h / group) * hd;
        float scale = 1f / MathF.Sqrt(hd);
        var keys = s.KeyCache[layer];
        var values = s.ValueCache[layer];
        for (int b = 0; b < count; b++)
        {
            int pos = start + b;
            var q = queries.AsSpan(b * c.QDim + h * hd, hd);
            var att = s.Att.AsSpan(h * s.Capacity, pos + 1);
            for (int t = 0; t <= pos; t++)
                att[t] = System.Numerics.Tensors.TensorPrimitives.Dot(q, keys.AsSpan(t * c.KvDim + kvOff, hd)) * scale;
            Ops.Softmax(att);
            var o = output.AsSpan(b * c.QDim + h * hd, hd);
            o.Clear();
            for (int t = 0; t <= pos; t++)
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(values.AsSpan(t * c.KvDim + kvOff, hd), att[t], o, o);
        }
    }

    /// <summary>
    /// Processes a prompt in batches of <see cref="LlamaState.MaxBatch"/> tokens: the same computation as
    /// <see cref="Forward"/> token by token, with each weight matrix streamed once per batch (MatMul).
    /// state.Logits ends with the last token's logits; <paramref name="allLogits"/> ([T, vocab]), if given, gets every position's.
    /// </summary>
    public void Prefill(LlamaState s, ReadOnlySpan<int> tokens, float[]? allLogits = null)
    {
        if (s.Length + tokens.Length > s.Capacity)
            throw new InvalidOperationException($"{tokens.Length} tokens do not fit in the context ({s.Capacity - s.Length} left)");
        if (allLogits is not null && allLogits.Length < (long)tokens.Length * Config.Vocab) throw new ArgumentException("allLogits is too small");
        for (int i = 0; i < tokens.Length; i += LlamaState.MaxBatch)
        {
            int n = Math.Min(LlamaState.MaxBatch, tokens.Length - i);
            ForwardBatch(s, tokens.Slice(i, n), allLogits is null ? null : allLogits.AsSpan(i * Config.Vocab, n * Config.Vocab));
        }
    }

    private void ForwardBatch(LlamaState s, ReadOnlySpan<int> tokens, Span<float> logitsOut)
    {
        var c = Config;
        var w = Weights;
        int B = tokens.Length, start = s.Length, D = c.Dim, hd = c.HeadDim;
        foreach (int t in tokens)
            if ((uint)t >= (uint)c.Vocab) throw new ArgumentOutOfRangeException(nameof(tokens), $"token {t} is outside the vocabulary (0..{c.Vocab - 1})");
        float[] X = s.BX, Xb = s.BXb, Xb2 = s.BXb2, Q = s.BQ, K = s.BK, V = s.BV, H = s.BH, H2 = s.BH2;
        for (int b = 0; b < B; b++) w.Embedding.DequantizeRow(tokens[b], X.AsSpan(b * D, D));
        float[] cos = s.BCos, sin = s.BSin;
        for (int b = 0; b < B; b++)
            for (int i = 0; i < _invFreq.Length; i++)
            {
                float angle = (start + b) * _invFreq[i];
                cos[b * _invFreq.Length + i] = MathF.Cos(angle);
                sin[b * _invFreq.Length + i] = MathF.Sin(angle);
            }
        for (int l = 0; l < c.Layers; l++)
        {
            var L = w.Layers[l];
            for (int b = 0; b < B; b++) Ops.RmsNorm(X.AsSpan(b * D, D), L.AttnNorm, c.NormEps, Xb.AsSpan(b * D, D));
            MatMul.Multiply(L.Q, Xb, Q, B, Pool);
            MatMul.Multiply(L.K, Xb, K, B, Pool);
            MatMul.Multiply(L.V, Xb, V, B, Pool);
            for (int b = 0; b < B; b++)
            {
                var cb = cos.AsSpan(b * _invFreq.Length, _invFreq.Length);
                var sb = sin.AsSpan(b * _invFreq.Length, _invFreq.Length);
                Ops.Rope(Q.AsSpan(b * c.QDim, c.QDim), hd, cb, sb, c.RopeStyle);
                Ops.Rope(K.AsSpan(b * c.KvDim, c.KvDim), hd, cb, sb, c.RopeStyle);
                K.AsSpan(b * c.KvDim, c.KvDim).CopyTo(s.KeyCache[l].AsSpan((start + b) * c.KvDim, c.KvDim));
                V.AsSpan(b * c.KvDim, c.KvDim).CopyTo(s.ValueCache[l].AsSpan((start + b) * c.KvDim, c.KvDim));
            }
            // Causal attention: token b sees positions 0..start+b.
            Attend(s, l, Q, start, B, Xb);
            MatMul.Multiply(L.O, Xb, Xb2, B, Pool);
            System.Numerics.Tensors.TensorPrimitives.Add(X.AsSpan(0, B * D), Xb2.AsSpan(0, B * D), X.AsSpan(0, B * D));
            for (int b = 0; b < B; b++) Ops.RmsNorm(X.AsSpan(b * D, D), L.FfnNorm, c.NormEps, Xb.AsSpan(b * D, D));
            MatMul.Multiply(L.Gate, Xb, H, B, Pool);
            MatMul.Multiply(L.Up, Xb, H2, B, Pool);
            Ops.SwiGlu(H.AsSpan(0, B * c.FfnDim), H2.AsSpan(0, B * c.FfnDim));
            MatMul.Multiply(L.Down, H, Xb2, B, Pool);
            System.Numerics.Tensors.TensorPrimitives.Add(X.AsSpan(0, B * D), Xb2.AsSpan(0, B * D), X.AsSpan(0, B * D));
        }
        s.Length = start + B;
        if (logitsOut.IsEmpty)
        {
            Ops.RmsNorm(X.AsSpan((B - 1) * D, D), w.OutputNorm, c.NormEps, Xb.AsSpan(0, D));
            MatVec.Multiply(w.Output, Xb.AsSpan(0, D), s.Logits, Pool);
            return;
        }
        for (int b = 0; b < B; b++) Ops.RmsNorm(X.AsSpan(b * D, D), w.OutputNorm, c.NormEps, Xb.AsSpan(b * D, D));
        MatMul.Multiply(w.Output, Xb, logitsOut, B, Pool);
        logitsOut.Slice((B - 1) * c.Vocab, c.Vocab).CopyTo(s.Logits);
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

    /// <summary>Loads a .gguf file, or an HF folder (config.json + safetensors).</summary>
    public static LlamaModel Load(string path)
    {
        if (Directory.Exists(path)) return new LlamaModel(LlamaWeights.FromHfFolder(path));
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file or folder", path);
        var gguf = Duet.Formats.Gguf.GgufFile.Open(path);
        try { return new LlamaModel(LlamaWeights.FromGguf(gguf)); }
        catch { gguf.Dispose(); throw; }
    }

    public void Dispose() => Weights.Dispose();
}
