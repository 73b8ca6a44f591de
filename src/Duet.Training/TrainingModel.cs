// A LLaMA model in training: parameters and gradients in one array each (ParameterLayout), activations of a
// micro-batch of B sequences × T positions saved in preallocated native buffers, forward and backward composed
// per layer from the ops in Ops/ (llm.c style: no autograd tape). Per layer l, with N = B·T rows:
//   xn1 = rmsnorm(x_l);  q, k, v = xn1 Wqᵀ, xn1 Wkᵀ, xn1 Wvᵀ;  rope(q, k);  a = attention(q, k, v)
//   m   = x_l + a Woᵀ;   xn2 = rmsnorm(m);  h = silu(xn2 Wgᵀ) ⊙ (xn2 Wuᵀ);  x_{l+1} = m + h Wdᵀ
// then logits = rmsnorm(x_L) Woutᵀ (Wout = the embedding when tied) and cross-entropy. The backward walks the
// same steps in reverse with one running gradient of the residual stream. Every sum runs in an order that does
// not depend on the thread count (rows, heads or columns are split among threads, never a sum; row reductions
// go through fixed chunks), so training is bit-identical with any number of threads.
using System.Runtime.InteropServices;
using Duet.Model;
using Duet.Tensors.Parallel;
using Duet.Training.Ops;

namespace Duet.Training;

public sealed unsafe class TrainingModel : IDisposable
{
    public LlamaConfig Config { get; }
    public ParameterLayout Layout { get; }
    /// <summary>Parameters and their gradients (same layout), pinned.</summary>
    public float[] Parameters { get; }
    public float[] Gradients { get; }
    /// <summary>Sequences and positions per micro-batch the buffers hold.</summary>
    public int BatchSize { get; }
    public int SeqLen { get; }

    private readonly WorkerPool _pool;
    private readonly int _n, _d, _qd, _kd, _f, _vocab, _h, _kvh, _hd, _layers;
    private readonly float _eps;
    private readonly List<IntPtr> _allocations = [];
    private readonly float* _cos, _sin;
    // Activations: resid[0..L], per layer the rest.
    private readonly float*[] _resid, _xn1, _rstd1, _q, _k, _v, _att, _ao, _mid, _xn2, _rstd2, _gate, _up, _hh;
    private readonly float* _xnF, _rstdF, _probs, _losses;
    private readonly int* _inputs, _targets;
    // Backward scratch.
    private readonly float* _dR, _dXn, _dQ, _dK, _dV, _dAo, _dGate, _dUp, _dHh, _dwPartial, _scratch;
    private readonly int _chunks;
    private readonly Job _job = new();
    private int _rows, _b; // rows and sequences of the current micro-batch

    /// <summary>Rows per chunk of a row reduction (norm weight gradients): fixed, so sums do not depend on threads.</summary>
    private const int ChunkRows = 32;

    public TrainingModel(LlamaConfig config, int batchSize, int seqLen, WorkerPool? pool = null)
    {
        Layout = new ParameterLayout(config);
        Config = config;
        if (batchSize <= 0 || seqLen <= 0) throw new ArgumentException($"batch {batchSize} × sequence {seqLen} must be positive");
        if (seqLen > config.ContextLength) throw new ArgumentException($"sequence length {seqLen} exceeds the model's context {config.ContextLength}");
        BatchSize = batchSize; SeqLen = seqLen;
        _pool = pool ?? WorkerPool.Shared;
        _n = batchSize * seqLen; _d = config.Dim; _qd = config.QDim; _kd = config.KvDim; _f = config.FfnDim; _vocab = config.Vocab;
        _h = config.Heads; _kvh = config.KvHeads; _hd = config.HeadDim; _layers = config.Layers; _eps = config.NormEps;
        Parameters = GC.AllocateArray<float>((int)Layout.Count, pinned: true);
        Gradients = GC.AllocateArray<float>((int)Layout.Count, pinned: true);

        var (cos, sin) = RopeOp.Tables(seqLen, _hd, config.RopeTheta);
        _cos = Alloc(cos.Length); _sin = Alloc(sin.Length);
        cos.CopyTo(new Span<float>(_cos, cos.Length)); sin.CopyTo(new Span<float>(_sin, sin.Length));
        long n = _n;
        _resid = new float*[_layers + 1];
        for (int l = 0; l <= _layers; l++) _resid[l] = Alloc(n * _d);
        float*[] PerLayer(long size) { var a = new float*[_layers]; for (int l = 0; l < _layers; l++) a[l] = Alloc(size); return a; }
        _xn1 = PerLayer(n * _d); _rstd1 = PerLayer(n); _q = PerLayer(n * _qd); _k = PerLayer(n * _kd); _v = PerLayer(n * _kd);
        _att = PerLayer((long)batchSize * _h * seqLen * seqLen); _ao = PerLayer(n * _qd); _mid = PerLayer(n * _d);
        _xn2 = PerLayer(n * _d); _rstd2 = PerLayer(n); _gate = PerLayer(n * _f); _up = PerLayer(n * _f); _hh = PerLayer(n * _f);
        _xnF = Alloc(n * _d); _rstdF = Alloc(n); _probs = Alloc(n * _vocab); _losses = Alloc(n);
        _inputs = (int*)Alloc(n); _targets = (int*)Alloc(n);
        _dR = Alloc(n * _d); _dXn = Alloc(n * _d); _dQ = Alloc(n * _qd); _dK = Alloc(n * _kd); _dV = Alloc(n * _kd); _dAo = Alloc(n * _qd);
        _dGate = Alloc(n * _f); _dUp = Alloc(n * _f); _dHh = Alloc(n * _f);
        _chunks = (_n + ChunkRows - 1) / ChunkRows;
        _dwPartial = Alloc((long)_chunks * _d);
        _scratch = Alloc((long)Math.Max(_chunks, batchSize * _kvh) * Math.Max(_d, seqLen));
    }

    /// <summary>Bytes of activation and scratch memory held.</summary>
    public long ActivationBytes { get; private set; }

    private float* Alloc(long floats)
    {
        var p = NativeMemory.AlignedAlloc((nuint)(Math.Max(1, floats) * 4), 64);
        NativeMemory.Clear(p, (nuint)(Math.Max(1, floats) * 4));
        _allocations.Add((IntPtr)p);
        ActivationBytes += floats * 4;
        return (float*)p;
    }

    public void Dispose()
    {
        foreach (var p in _allocations) NativeMemory.AlignedFree((void*)p);
        _allocations.Clear();
    }

    /// <summary>
    /// Runs the forward pass on <paramref name="batch"/> sequences: inputs and targets [batch, SeqLen] (a target
    /// &lt; 0 is masked). Returns the summed loss and the number of unmasked targets; the mean is sum / count.
    /// </summary>
    public (double LossSum, int Count) Forward(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, int batch)
    {
        if (batch <= 0 || batch > BatchSize) throw new ArgumentOutOfRangeException(nameof(batch), $"batch {batch} is not in 1..{BatchSize}");
        int rows = batch * SeqLen;
        if (inputs.Length != rows || targets.Length != rows) throw new ArgumentException($"inputs and targets must hold {batch} × {SeqLen} = {rows} ids");
        foreach (int id in inputs) if ((uint)id >= (uint)_vocab) throw new ArgumentOutOfRangeException(nameof(inputs), $"token {id} is outside the vocabulary of {_vocab}");
        _rows = rows; _b = batch;
        inputs.CopyTo(new Span<int>(_inputs, rows));
        targets.CopyTo(new Span<int>(_targets, rows));
        fixed (float* p = Parameters)
        {
            Run(Kind.Embed, rows, p);
            for (int l = 0; l < _layers; l++) ForwardLayer(l, p);
            _job.Set(_resid[_layers], p + Layout.OutputNorm, _xnF, _rstdF);
            Run(Kind.RmsForward, rows, p);
            MatOps.Forward(_xnF, p + Layout.Output, _probs, rows, _d, _vocab, _pool);
            Run(Kind.CrossEntropy, rows, p);
        }
        double sum = 0;
        int count = 0;
        for (int r = 0; r < rows; r++) { sum += _losses[r]; if (_targets[r] >= 0) count++; }
        return (sum, count);
    }

    private void ForwardLayer(int l, float* p)
    {
        var L = Layout;
        int rows = _rows;
        _job.Set(_resid[l], p + L.AttnNorm[l], _xn1[l], _rstd1[l]);
        Run(Kind.RmsForward, rows, p);
        MatOps.Forward(_xn1[l], p + L.Wq[l], _q[l], rows, _d, _qd, _pool);
        MatOps.Forward(_xn1[l], p + L.Wk[l], _k[l], rows, _d, _kd, _pool);
        MatOps.Forward(_xn1[l], p + L.Wv[l], _v[l], rows, _d, _kd, _pool);
        _job.Set(_q[l], _k[l], null, null, inverse: false);
        Run(Kind.Rope, rows, p);
        _job.Layer = l;
        Run(Kind.AttentionForward, _b * _kvh, p);
        // m = x + a Woᵀ: the product into mid, then the residual added.
        MatOps.Forward(_ao[l], p + L.Wo[l], _mid[l], rows, _qd, _d, _pool);
        _job.Set(_mid[l], _resid[l], null, null);
        Run(Kind.AddInPlace, rows, p);
        _job.Set(_mid[l], p + L.FfnNorm[l], _xn2[l], _rstd2[l]);
        Run(Kind.RmsForward, rows, p);
        MatOps.Forward(_xn2[l], p + L.Wg[l], _gate[l], rows, _d, _f, _pool);
        MatOps.Forward(_xn2[l], p + L.Wu[l], _up[l], rows, _d, _f, _pool);
        _job.Set(_gate[l], _up[l], _hh[l], null);
        Run(Kind.SwiGluForward, rows, p);
        MatOps.Forward(_hh[l], p + L.Wd[l], _resid[l + 1], rows, _f, _d, _pool);
        _job.Set(_resid[l + 1], _mid[l], null, null);
        Run(Kind.AddInPlace, rows, p);
    }

    /// <summary>
    /// Adds to <see cref="Gradients"/> the gradient of lossScale × (summed loss of the last forward): 1/count for the
    /// mean loss of this micro-batch, 1/(count·M) for the mean over M micro-batches.
    /// </summary>
    public void Backward(float lossScale)
    {
        if (_rows == 0) throw new InvalidOperationException("Backward needs a Forward first");
        var L = Layout;
        int rows = _rows;
        fixed (float* p = Parameters)
        fixed (float* g = Gradients)
        {
            _job.Scale = lossScale;
            Run(Kind.CrossEntropyBackward, rows, p);                                      // probs -> dlogits
            Clear(_dXn, (long)rows * _d);
            MatOps.BackwardInput(_probs, p + L.Output, _dXn, rows, _d, _vocab, _pool);
            MatOps.BackwardWeight(_probs, _xnF, g + L.Output, rows, _d, _vocab, _pool);
            Clear(_dR, (long)rows * _d);
            RmsBackward(_dXn, _resid[_layers], p + L.OutputNorm, _rstdF, _dR, g + L.OutputNorm, p);
            for (int l = _layers - 1; l >= 0; l--) BackwardLayer(l, p, g);
            _job.Set(_dR, g + L.Embedding, null, null);
            Run(Kind.EmbedBackward, _d, p);
        }
    }

    private void BackwardLayer(int l, float* p, float* g)
    {
        var L = Layout;
        int rows = _rows;
        // FFN: x_{l+1} = m + h Wdᵀ, h = silu(xn2 Wgᵀ) ⊙ (xn2 Wuᵀ).
        Clear(_dHh, (long)rows * _f);
        MatOps.BackwardInput(_dR, p + L.Wd[l], _dHh, rows, _f, _d, _pool);
        MatOps.BackwardWeight(_dR, _hh[l], g + L.Wd[l], rows, _f, _d, _pool);
        Clear(_dGate, (long)rows * _f); Clear(_dUp, (long)rows * _f);
        _job.Set(_dHh, _gate[l], _up[l], _dGate); _job.E = _dUp;
        Run(Kind.SwiGluBackward, rows, p);
        Clear(_dXn, (long)rows * _d);
        MatOps.BackwardInput(_dGate, p + L.Wg[l], _dXn, rows, _d, _f, _pool);
        MatOps.BackwardInput(_dUp, p + L.Wu[l], _dXn, rows, _d, _f, _pool);
        MatOps.BackwardWeight(_dGate, _xn2[l], g + L.Wg[l], rows, _d, _f, _pool);
        MatOps.BackwardWeight(_dUp, _xn2[l], g + L.Wu[l], rows, _d, _f, _pool);
        RmsBackward(_dXn, _mid[l], p + L.FfnNorm[l], _rstd2[l], _dR, g + L.FfnNorm[l], p);   // _dR is now d(m)
        // Attention: m = x + a Woᵀ.
        Clear(_dAo, (long)rows * _qd);
        MatOps.BackwardInput(_dR, p + L.Wo[l], _dAo, rows, _qd, _d, _pool);
        MatOps.BackwardWeight(_dR, _ao[l], g + L.Wo[l], rows, _qd, _d, _pool);
        Clear(_dQ, (long)rows * _qd); Clear(_dK, (long)rows * _kd); Clear(_dV, (long)rows * _kd);
        _job.Layer = l;
        Run(Kind.AttentionBackward, _b * _kvh, p);
        _job.Set(_dQ, _dK, null, null, inverse: true);
        Run(Kind.Rope, rows, p);
        Clear(_dXn, (long)rows * _d);
        MatOps.BackwardInput(_dQ, p + L.Wq[l], _dXn, rows, _d, _qd, _pool);
        MatOps.BackwardInput(_dK, p + L.Wk[l], _dXn, rows, _d, _kd, _pool);
        MatOps.BackwardInput(_dV, p + L.Wv[l], _dXn, rows, _d, _kd, _pool);
        MatOps.BackwardWeight(_dQ, _xn1[l], g + L.Wq[l], rows, _d, _qd, _pool);
        MatOps.BackwardWeight(_dK, _xn1[l], g + L.Wk[l], rows, _d, _kd, _pool);
        MatOps.BackwardWeight(_dV, _xn1[l], g + L.Wv[l], rows, _d, _kd, _pool);
        RmsBackward(_dXn, _resid[l], p + L.AttnNorm[l], _rstd1[l], _dR, g + L.AttnNorm[l], p);  // _dR is now d(x_l)
    }

    // dx += rmsnorm backward; dw += Σ over rows, summed chunk by chunk in order.
    private void RmsBackward(float* dy, float* x, float* w, float* rstd, float* dx, float* dw, float* p)
    {
        int chunks = (_rows + ChunkRows - 1) / ChunkRows;
        Clear(_dwPartial, (long)chunks * _d);
        _job.Set(dy, x, w, rstd); _job.E = dx;
        Run(Kind.RmsBackwardChunks, chunks, p);
        _job.Set(_dwPartial, dw, null, null); _job.Chunks = chunks;
        Run(Kind.SumChunks, _d, p);
    }

    private static void Clear(float* p, long n) => NativeMemory.Clear(p, (nuint)(n * 4));

    /// <summary>Mean loss of the rows of the last forward with unmasked targets (validation).</summary>
    internal ReadOnlySpan<float> RowLosses => new(_losses, _rows);

    // ---- parallel jobs: one reusable state object, a static body, no allocation per call ----

    private enum Kind { Embed, EmbedBackward, RmsForward, RmsBackwardChunks, SumChunks, Rope, AttentionForward, AttentionBackward, AddInPlace, SwiGluForward, SwiGluBackward, CrossEntropy, CrossEntropyBackward }

    private sealed class Job
    {
        public TrainingModel M = null!;
        public Kind Kind;
        public float* A, B, C, D, E, P;
        public bool Inverse;
        public int Layer, Chunks;
        public float Scale;

        public void Set(float* a, float* b, float* c, float* d, bool inverse = false) { A = a; B = b; C = c; D = d; Inverse = inverse; }
    }

    private static readonly RangeBody s_body = static (start, end, state) => ((Job)state!).M.Execute(start, end);

    private void Run(Kind kind, int count, float* parameters)
    {
        _job.M = this; _job.Kind = kind; _job.P = parameters;
        _pool.For(count, s_body, _job);
    }

    private void Execute(int start, int end)
    {
        var j = _job;
        switch (j.Kind)
        {
            case Kind.Embed:
                EmbeddingOp.Forward(j.P + Layout.Embedding, _inputs, _resid[0], _d, start, end);
                break;
            case Kind.EmbedBackward: // columns [start, end)
                EmbeddingOp.Backward(j.A, _inputs, j.B, _d, _rows, start, end);
                break;
            case Kind.RmsForward:
                RmsNormOp.Forward(j.A, j.B, j.C, j.D, _d, _eps, start, end);
                break;
            case Kind.RmsBackwardChunks:
                for (int c = start; c < end; c++)
                {
                    int r0 = c * ChunkRows, r1 = Math.Min(_rows, r0 + ChunkRows);
                    RmsNormOp.Backward(j.A, j.B, j.C, j.D, j.E, _dwPartial + (long)c * _d, _scratch + (long)c * _d, _d, r0, r1);
                }
                break;
            case Kind.SumChunks: // dw[col] += Σ_chunks partial[chunk][col], chunks in order
                for (int c = 0; c < j.Chunks; c++)
                {
                    float* src = j.A + (long)c * _d;
                    for (int i = start; i < end; i++) j.B[i] += src[i];
                }
                break;
            case Kind.Rope:
                RopeOp.Apply(j.A, _h, _hd, _cos, _sin, SeqLen, j.Inverse, start, end);
                RopeOp.Apply(j.B, _kvh, _hd, _cos, _sin, SeqLen, j.Inverse, start, end);
                break;
            case Kind.AttentionForward:
                for (int i = start; i < end; i++)
                {
                    int b = i / _kvh, kv = i % _kvh, l = j.Layer;
                    long row = (long)b * SeqLen;
                    AttentionOp.Forward(_q[l] + row * _qd, _k[l] + row * _kd, _v[l] + row * _kd, _ao[l] + row * _qd,
                        _att[l] + (long)b * _h * SeqLen * SeqLen, SeqLen, _h, _kvh, _hd, kv);
                }
                break;
            case Kind.AttentionBackward:
                for (int i = start; i < end; i++)
                {
                    int b = i / _kvh, kv = i % _kvh, l = j.Layer;
                    long row = (long)b * SeqLen;
                    AttentionOp.Backward(_dAo + row * _qd, _q[l] + row * _qd, _k[l] + row * _kd, _v[l] + row * _kd,
                        _att[l] + (long)b * _h * SeqLen * SeqLen, _dQ + row * _qd, _dK + row * _kd, _dV + row * _kd,
                        _scratch + (long)i * Math.Max(_d, SeqLen), SeqLen, _h, _kvh, _hd, kv);
                }
                break;
            case Kind.AddInPlace:
                {
                    long a = (long)start * _d, n = (long)(end - start) * _d;
                    System.Numerics.Tensors.TensorPrimitives.Add(new ReadOnlySpan<float>(j.A + a, (int)n), new ReadOnlySpan<float>(j.B + a, (int)n), new Span<float>(j.A + a, (int)n));
                }
                break;
            case Kind.SwiGluForward:
                SwiGluOp.Forward(j.A, j.B, j.C, (long)start * _f, (long)end * _f);
                break;
            case Kind.SwiGluBackward:
                SwiGluOp.Backward(j.A, j.B, j.C, j.D, j.E, (long)start * _f, (long)end * _f);
                break;
            case Kind.CrossEntropy:
                CrossEntropyOp.Forward(_probs, _targets, _vocab, _losses, start, end);
                break;
            case Kind.CrossEntropyBackward:
                CrossEntropyOp.Backward(_probs, _targets, _vocab, j.Scale, start, end);
                break;
        }
    }
}
