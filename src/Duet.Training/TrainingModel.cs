// A LLaMA model in training: parameters and gradients in one array each (ParameterLayout), activations of a
// micro-batch of B sequences × T positions saved in preallocated native buffers, forward and backward composed
// per layer from the ops in Ops/ (llm.c style: no autograd tape). Per layer l, with N = B·T rows:
//   xn1 = rmsnorm(x_l);  q, k, v = xn1 Wqᵀ, xn1 Wkᵀ, xn1 Wvᵀ;  rope(q, k);  a = attention(q, k, v)
//   m   = x_l + a Woᵀ;   xn2 = rmsnorm(m);  h = silu(xn2 Wgᵀ) ⊙ (xn2 Wuᵀ);  x_{l+1} = m + h Wdᵀ
// then logits = rmsnorm(x_L) Woutᵀ (Wout = the embedding when tied) and cross-entropy. The backward walks the
// same steps in reverse with one running gradient of the residual stream.
// Two kinds of model: every weight trained (pretraining, full fine-tuning: Parameters hold the whole model), or LoRA
// over a frozen base (Parameters hold only the adapters' A and B): the base stays memory-mapped in its own type
// (LlamaWeights; F32, F16, BF16, Q8_0, Q4_0, K-quants) and each projection W becomes W + s·B A (LoraLinear), its
// rows dequantized on the fly in forward and backward as QLoRA does; a base read from GGUF keeps llama.cpp's Q/K row
// order, so RoPE rotates interleaved pairs there (the same angles, the same model). Every sum runs in an order that does
// not depend on the thread count (rows, heads or columns are split among threads, never a sum; row reductions
// go through fixed chunks), so training is bit-identical with any number of threads.
using System.Runtime.InteropServices;
using Duet.Model;
using Duet.Tensors.Kernels;
using Duet.Tensors.Parallel;
using Duet.Training.Lora;
using Duet.Training.Ops;

namespace Duet.Training;

public sealed unsafe class TrainingModel : IDisposable
{
    public LlamaConfig Config { get; }
    public ParameterLayout Layout { get; }
    /// <summary>Parameters and their gradients (same layout), pinned.</summary>
    public float[] Parameters { get; }

    /// <summary>
    /// Where Backward adds gradients: the model's own pinned array, or another of the same length (data-parallel
    /// training computes each micro-batch's gradient into a buffer of its own). Must be pinned (GC.AllocateArray pinned).
    /// </summary>
    public float[] Gradients
    {
        get => _gradients;
        set
        {
            if (value.LongLength != Layout.Count) throw new ArgumentException($"a gradient buffer holds {Layout.Count} values, not {value.LongLength}");
            _gradients = value;
        }
    }
    private float[] _gradients;

    /// <summary>
    /// Called during Backward with each range [offset, offset + length) of <see cref="Gradients"/> whose values are
    /// final for this micro-batch, in the order the backward pass finishes them (the head's norm, each layer from the
    /// last, then the embedding): data-parallel training starts sending a range while the layers below it compute.
    /// Only for whole models (a LoRA model's gradient is small and sent at the end).
    /// </summary>
    public Action<long, long>? GradientReady { get; set; }
    /// <summary>Wall time by part of Forward and Backward (null, the default: not measured).</summary>
    public StepProfile? Profile { get; set; }

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
    private readonly int* _inputs, _targets, _starts;
    private bool _packed;
    // Whole models keep a layer's gate and up activations (and their gradients) side by side in one [N, 2F] buffer, row r
    // = [gate | up]: Wg and Wu are adjacent in the parameter layout, so [Wg; Wu] is one [2F, d] matrix and the two
    // projections run as one product each way (xn2's panels packed once, one pass over dxn instead of two). LoRA
    // models keep separate [N, F] buffers (their projections have separate adapters).
    private readonly bool _stackedFfn;
    // Backward scratch.
    private readonly float* _dR, _dXn, _dQ, _dK, _dV, _dAo, _dGate, _dUp, _dHh, _dwPartial, _scratch, _attnScratch;
    private readonly int _chunks;
    private int _rows, _b; // rows and sequences of the current micro-batch
    // LoRA over a frozen base: the base, the adapters' scale and rank, per (layer, projection) u = x Aᵀ [N, r] saved
    // for the backward, scratch for du and for dequantized rows, the base's norm weights as floats, and a sink for
    // the norms' weight gradients (computed with the input gradient, not trained).
    private readonly LlamaWeights? _base;
    private readonly float _loraScale;
    private readonly int _rank;
    private readonly float*[,]? _u;
    private readonly float* _du, _wRows, _normSink, _outNormF, _xd;
    private readonly float _dropout;
    private readonly float*[]? _attnNormF, _ffnNormF;
    private readonly bool _interleaved;

    /// <summary>The frozen base of a LoRA model (null when every weight is trained).</summary>
    public LlamaWeights? Base => _base;

    /// <summary>Rows per chunk of a row reduction (norm weight gradients): fixed, so sums do not depend on threads.</summary>
    private const int ChunkRows = 32;

    public TrainingModel(LlamaConfig config, int batchSize, int seqLen, WorkerPool? pool = null)
        : this(new ParameterLayout(config), batchSize, seqLen, pool) { }

    /// <summary>
    /// LoRA over <paramref name="frozenBase"/> (kept as it is, memory-mapped; not disposed here): the adapters of
    /// <paramref name="lora"/> (a LoRA layout of the base's config) are the parameters, scaled by
    /// <paramref name="options"/>.Scale.
    /// </summary>
    public TrainingModel(LlamaWeights frozenBase, ParameterLayout lora, LoraOptions options, int batchSize, int seqLen, WorkerPool? pool = null)
        : this(lora.IsLora ? lora : throw new ArgumentException("LoRA training needs a LoRA layout"), batchSize, seqLen, pool)
    {
        var c = frozenBase.Config;
        if (c.Dim != Config.Dim || c.Layers != Config.Layers || c.Heads != Config.Heads || c.KvHeads != Config.KvHeads || c.FfnDim != Config.FfnDim || c.Vocab != Config.Vocab)
            throw new ArgumentException("the LoRA layout was made for another model shape than the base's");
        if (frozenBase.RopeFreqFactors is not null) throw new ArgumentException("training does not support RoPE frequency factors (Llama 3 RoPE scaling)");
        if (options.Rank != lora.LoraRank) throw new ArgumentException($"LoRA rank {options.Rank} and the layout's {lora.LoraRank} differ");
        _base = frozenBase;
        _loraScale = options.Scale;
        _rank = options.Rank;
        _interleaved = c.RopeStyle == RopeStyle.Normal;
        long n = _n;
        _u = new float*[_layers, (int)LayerTensor.Down + 1];
        foreach (var (l, t) in lora.Lora.Keys) _u[l, (int)t] = Alloc(n * _rank);
        _du = Alloc(n * _rank);
        _dropout = options.Dropout;
        if (_dropout > 0) _xd = Alloc(n * Math.Max(_f, _d));
        _wRows = Alloc((long)LoraLinear.BlockRows * Math.Max(_f, _d));
        _normSink = Alloc(_d);
        _attnNormF = new float*[_layers]; _ffnNormF = new float*[_layers];
        float* Copy(float[] v) { var q = Alloc(v.Length); v.CopyTo(new Span<float>(q, v.Length)); return q; }
        for (int l = 0; l < _layers; l++) { _attnNormF[l] = Copy(frozenBase.Layers[l].AttnNorm); _ffnNormF[l] = Copy(frozenBase.Layers[l].FfnNorm); }
        _outNormF = Copy(frozenBase.OutputNorm);
    }

    private TrainingModel(ParameterLayout layout, int batchSize, int seqLen, WorkerPool? pool)
    {
        Layout = layout;
        var config = layout.Config;
        Config = config;
        if (batchSize <= 0 || seqLen <= 0) throw new ArgumentException($"batch {batchSize} × sequence {seqLen} must be positive");
        if (seqLen > config.ContextLength) throw new ArgumentException($"sequence length {seqLen} exceeds the model's context {config.ContextLength}");
        BatchSize = batchSize; SeqLen = seqLen;
        _pool = pool ?? WorkerPool.Shared;
        _n = batchSize * seqLen; _d = config.Dim; _qd = config.QDim; _kd = config.KvDim; _f = config.FfnDim; _vocab = config.Vocab;
        _h = config.Heads; _kvh = config.KvHeads; _hd = config.HeadDim; _layers = config.Layers; _eps = config.NormEps;
        Parameters = GC.AllocateArray<float>((int)Layout.Count, pinned: true);
        _gradients = GC.AllocateArray<float>((int)Layout.Count, pinned: true);

        var (cos, sin) = RopeOp.Tables(seqLen, _hd, config.RopeTheta);
        _cos = Alloc(cos.Length); _sin = Alloc(sin.Length);
        cos.CopyTo(new Span<float>(_cos, cos.Length)); sin.CopyTo(new Span<float>(_sin, sin.Length));
        long n = _n;
        _resid = new float*[_layers + 1];
        for (int l = 0; l <= _layers; l++) _resid[l] = Alloc(n * _d);
        float*[] PerLayer(long size) { var a = new float*[_layers]; for (int l = 0; l < _layers; l++) a[l] = Alloc(size); return a; }
        _xn1 = PerLayer(n * _d); _rstd1 = PerLayer(n); _q = PerLayer(n * _qd); _k = PerLayer(n * _kd); _v = PerLayer(n * _kd);
        _att = PerLayer((long)batchSize * _h * seqLen * seqLen); _ao = PerLayer(n * _qd); _mid = PerLayer(n * _d);
        _xn2 = PerLayer(n * _d); _rstd2 = PerLayer(n); _hh = PerLayer(n * _f);
        _stackedFfn = !layout.IsLora;
        if (_stackedFfn)
        {
            for (int l = 0; l < _layers; l++)
                if (layout.Wu[l] != layout.Wg[l] + (long)_f * _d) throw new InvalidOperationException("the layout does not keep Wg and Wu adjacent");
            _gate = PerLayer(n * 2 * _f); _up = new float*[_layers];
            for (int l = 0; l < _layers; l++) _up[l] = _gate[l] + _f;
        }
        else { _gate = PerLayer(n * _f); _up = PerLayer(n * _f); }
        _xnF = Alloc(n * _d); _rstdF = Alloc(n); _probs = Alloc(n * _vocab); _losses = Alloc(n);
        _inputs = (int*)Alloc(n); _targets = (int*)Alloc(n); _starts = (int*)Alloc(n);
        _dR = Alloc(n * _d); _dXn = Alloc(n * _d); _dQ = Alloc(n * _qd); _dK = Alloc(n * _kd); _dV = Alloc(n * _kd); _dAo = Alloc(n * _qd);
        if (_stackedFfn) { _dGate = Alloc(n * 2 * _f); _dUp = _dGate + _f; }
        else { _dGate = Alloc(n * _f); _dUp = Alloc(n * _f); }
        _dHh = Alloc(n * _f);
        _chunks = (_n + ChunkRows - 1) / ChunkRows;
        _dwPartial = Alloc((long)_chunks * _d);
        _scratch = Alloc((long)_chunks * _d);
        _attnScratch = Alloc(batchSize * _kvh * AttentionOp.ScratchFloats(seqLen));
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
    /// <param name="starts">
    /// For packed conversations (chat fine-tuning): per position, the position in its sequence where its conversation
    /// starts; attention stays inside a conversation (block-diagonal causal mask) and RoPE positions restart at each.
    /// Empty: one text per sequence.
    /// </param>
    public (double LossSum, int Count) Forward(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, int batch, ReadOnlySpan<int> starts = default)
    {
        Profile?.Skip();
        if (batch <= 0 || batch > BatchSize) throw new ArgumentOutOfRangeException(nameof(batch), $"batch {batch} is not in 1..{BatchSize}");
        int rows = batch * SeqLen;
        if (inputs.Length != rows || targets.Length != rows) throw new ArgumentException($"inputs and targets must hold {batch} × {SeqLen} = {rows} ids");
        _packed = !starts.IsEmpty;
        if (_packed)
        {
            if (starts.Length != rows) throw new ArgumentException($"starts must hold {batch} × {SeqLen} = {rows} positions");
            for (int r = 0; r < rows; r++)
            {
                int t = r % SeqLen, st = starts[r];
                if (st < 0 || st > t || (t > 0 && st != t && st != starts[r - 1]))
                    throw new ArgumentException($"starts[{r}] = {st}: a conversation starts at or before its position and runs on until the next one starts");
            }
            starts.CopyTo(new Span<int>(_starts, rows));
        }
        foreach (int id in inputs) if ((uint)id >= (uint)_vocab) throw new ArgumentOutOfRangeException(nameof(inputs), $"token {id} is outside the vocabulary of {_vocab}");
        _rows = rows; _b = batch;
        _dropoutForward = _dropoutForwards++;
        inputs.CopyTo(new Span<int>(_inputs, rows));
        targets.CopyTo(new Span<int>(_targets, rows));
        var L = Layout;
        fixed (float* p = Parameters)
        {
            if (_base is null) _pool.For(rows, new EmbedRows { Table = p + L.Embedding, Ids = _inputs, Dim = _d, X = _resid[0] });
            else _pool.For(rows, new EmbedFrozenRows { Table = _base.Embedding, Ids = _inputs, Dim = _d, X = _resid[0] });
            if (Noise is { Alpha: > 0 } noise)
                _pool.For(rows, new NoiseRows { Dim = _d, SeqLen = SeqLen, Scale = noise.Alpha / MathF.Sqrt((float)SeqLen * _d), Seed = noise.Seed + 0x9E3779B97F4A7C15UL * _noiseForwards++, X = _resid[0] });
            Profile?.Mark("forward: embedding");
            for (int l = 0; l < _layers; l++) ForwardLayer(l, p);
            _pool.For(rows, new RmsNormRows { X = _resid[_layers], W = _base is null ? p + L.OutputNorm : _outNormF, Dim = _d, Eps = _eps, Y = _xnF, Rstd = _rstdF });
            if (_base is null) MatOps.Forward(_xnF, p + L.Output, rows, _d, _vocab, _probs, _pool);
            else LoraLinear.BaseForward(_base.Output, _xnF, rows, _probs, _pool);
            Profile?.Mark("forward: final norm, head");
            _pool.For(rows, new CrossEntropyRows { Logits = _probs, Targets = _targets, Vocab = _vocab, Losses = _losses });
            Profile?.Mark("forward: cross-entropy");
        }
        double sum = 0;
        int count = 0;
        for (int r = 0; r < rows; r++) { sum += _losses[r]; if (_targets[r] >= 0) count++; }
        return (sum, count);
    }

    private void ForwardLayer(int l, float* p)
    {
        int rows = _rows;
        _pool.For(rows, new RmsNormRows { X = _resid[l], W = Norm(l, attention: true, p), Dim = _d, Eps = _eps, Y = _xn1[l], Rstd = _rstd1[l] });
        Linear(l, LayerTensor.Q, _xn1[l], _q[l], p);
        Linear(l, LayerTensor.K, _xn1[l], _k[l], p);
        Linear(l, LayerTensor.V, _xn1[l], _v[l], p);
        _pool.For(rows, Rope(inverse: false, q: _q[l], k: _k[l]));
        Profile?.Mark("forward: norm, Q/K/V, RoPE");
        _pool.For(_b * _kvh, new AttentionHeads { Q = _q[l], K = _k[l], V = _v[l], SeqLen = SeqLen, Heads = _h, KvHeads = _kvh, HeadDim = _hd, Starts = _packed ? _starts : null, O = _ao[l], P = _att[l] });
        Profile?.Mark("forward: attention");
        // m = x + a Woᵀ: the product into mid, then the residual added.
        Linear(l, LayerTensor.O, _ao[l], _mid[l], p);
        _pool.For(rows, new AddRows { B = _resid[l], Dim = _d, A = _mid[l] });
        _pool.For(rows, new RmsNormRows { X = _mid[l], W = Norm(l, attention: false, p), Dim = _d, Eps = _eps, Y = _xn2[l], Rstd = _rstd2[l] });
        if (_stackedFfn) MatOps.Forward(_xn2[l], p + Layout.Wg[l], rows, _d, 2 * _f, _gate[l], _pool);   // [gate | up] = xn2 [Wg; Wu]ᵀ
        else
        {
            Linear(l, LayerTensor.Gate, _xn2[l], _gate[l], p);
            Linear(l, LayerTensor.Up, _xn2[l], _up[l], p);
        }
        _pool.For(rows, new SwiGluRows { Gate = _gate[l], Up = _up[l], Ffn = _f, Stride = _stackedFfn ? 2 * _f : _f, H = _hh[l] });
        Linear(l, LayerTensor.Down, _hh[l], _resid[l + 1], p);
        _pool.For(rows, new AddRows { B = _mid[l], Dim = _d, A = _resid[l + 1] });
        Profile?.Mark("forward: O, norm, FFN");
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
            Profile?.Skip();
            _pool.For(rows, new CrossEntropyGradRows { Targets = _targets, Vocab = _vocab, Scale = lossScale, Probs = _probs }); // probs -> dlogits
            Profile?.Mark("backward: cross-entropy");
            Clear(_dXn, (long)rows * _d);
            if (_base is null)
            {
                MatOps.BackwardInput(_probs, p + L.Output, rows, _d, _vocab, _dXn, _pool);
                MatOps.BackwardWeight(_probs, _xnF, rows, _d, _vocab, g + L.Output, _pool);
            }
            else LoraLinear.BaseBackwardInput(_base.Output, _probs, rows, _dXn, _wRows, _pool);
            Clear(_dR, (long)rows * _d);
            RmsBackward(_dXn, _resid[_layers], _base is null ? p + L.OutputNorm : _outNormF, _rstdF, _dR, _base is null ? g + L.OutputNorm : _normSink);
            var ready = _base is null ? GradientReady : null;
            // The layout is embedding, layers 0..L-1, final norm, untied head: the tail [OutputNorm, end) is done now
            // (a tied head's gradient is in the embedding's, which the input side adds to last).
            ready?.Invoke(L.OutputNorm, L.Count - L.OutputNorm);
            Profile?.Mark("backward: head, final norm");
            for (int l = _layers - 1; l >= 0; l--)
            {
                BackwardLayer(l, p, g);
                ready?.Invoke(L.AttnNorm[l], (l + 1 < _layers ? L.AttnNorm[l + 1] : L.OutputNorm) - L.AttnNorm[l]);
            }
            if (_base is null) _pool.For(_d, new EmbedGradColumns { DX = _dR, Ids = _inputs, Dim = _d, Rows = rows, DTable = g + L.Embedding });
            ready?.Invoke(L.Embedding, L.AttnNorm[0] - L.Embedding);
            Profile?.Mark("backward: embedding");
        }
    }

    private void BackwardLayer(int l, float* p, float* g)
    {
        int rows = _rows;
        // FFN: x_{l+1} = m + h Wdᵀ, h = silu(xn2 Wgᵀ) ⊙ (xn2 Wuᵀ).
        // The first product into a scratch gradient overwrites it (no clearing pass over N × F floats); later ones add.
        LinearBackward(l, LayerTensor.Down, _dR, _hh[l], _dHh, p, g, overwrite: true);
        _pool.For(rows, new SwiGluGradRows { DH = _dHh, Gate = _gate[l], Up = _up[l], Ffn = _f, Stride = _stackedFfn ? 2 * _f : _f, DGate = _dGate, DUp = _dUp });
        if (_stackedFfn)
        {
            // dxn = [dgate | dup] [Wg; Wu];  d[Wg; Wu] += [dgate | dup]ᵀ xn2
            MatOps.BackwardInput(_dGate, p + Layout.Wg[l], rows, _d, 2 * _f, _dXn, _pool, accumulate: false);
            MatOps.BackwardWeight(_dGate, _xn2[l], rows, _d, 2 * _f, g + Layout.Wg[l], _pool);
        }
        else
        {
            LinearBackward(l, LayerTensor.Gate, _dGate, _xn2[l], _dXn, p, g, overwrite: true);
            LinearBackward(l, LayerTensor.Up, _dUp, _xn2[l], _dXn, p, g);
        }
        RmsBackward(_dXn, _mid[l], Norm(l, attention: false, p), _rstd2[l], _dR, NormGrad(l, attention: false, g));   // _dR is now d(m)
        // Attention: m = x + a Woᵀ.
        LinearBackward(l, LayerTensor.O, _dR, _ao[l], _dAo, p, g, overwrite: true);
        Clear(_dQ, (long)rows * _qd); Clear(_dK, (long)rows * _kd); Clear(_dV, (long)rows * _kd);
        Profile?.Mark("backward: FFN, norm, O");
        _pool.For(_b * _kvh, new AttentionGradHeads
        {
            DOut = _dAo, Q = _q[l], K = _k[l], V = _v[l], P = _att[l], SeqLen = SeqLen, Heads = _h, KvHeads = _kvh, HeadDim = _hd, Starts = _packed ? _starts : null,
            DQ = _dQ, DK = _dK, DV = _dV, Scratch = _attnScratch, ScratchStride = AttentionOp.ScratchFloats(SeqLen),
        });
        Profile?.Mark("backward: attention");
        _pool.For(rows, Rope(inverse: true, q: _dQ, k: _dK));
        // Over a frozen base nothing below layer 0's projections trains: its input gradient is not needed.
        float* dxn = _base is not null && l == 0 ? null : _dXn;
        if (dxn != null) Clear(_dXn, (long)rows * _d);
        LinearBackward(l, LayerTensor.Q, _dQ, _xn1[l], dxn, p, g);
        LinearBackward(l, LayerTensor.K, _dK, _xn1[l], dxn, p, g);
        LinearBackward(l, LayerTensor.V, _dV, _xn1[l], dxn, p, g);
        if (dxn != null) RmsBackward(_dXn, _resid[l], Norm(l, attention: true, p), _rstd1[l], _dR, NormGrad(l, attention: true, g));  // _dR is now d(x_l)
        Profile?.Mark("backward: RoPE, Q/K/V, norm");
    }

    // ---- the weights a layer reads: the trained model's slots, or the frozen base and its adapters ----

    private float* Norm(int l, bool attention, float* p) =>
        _base is null ? p + (attention ? Layout.AttnNorm[l] : Layout.FfnNorm[l]) : (attention ? _attnNormF![l] : _ffnNormF![l]);

    private float* NormGrad(int l, bool attention, float* g) =>
        _base is null ? g + (attention ? Layout.AttnNorm[l] : Layout.FfnNorm[l]) : _normSink;

    private long DenseOffset(int l, LayerTensor t) => t switch
    {
        LayerTensor.Q => Layout.Wq[l], LayerTensor.K => Layout.Wk[l], LayerTensor.V => Layout.Wv[l], LayerTensor.O => Layout.Wo[l],
        LayerTensor.Gate => Layout.Wg[l], LayerTensor.Up => Layout.Wu[l], LayerTensor.Down => Layout.Wd[l],
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    private WeightMatrix Frozen(int l, LayerTensor t)
    {
        var w = _base!.Layers[l];
        return t switch
        {
            LayerTensor.Q => w.Q, LayerTensor.K => w.K, LayerTensor.V => w.V, LayerTensor.O => w.O,
            LayerTensor.Gate => w.Gate, LayerTensor.Up => w.Up, LayerTensor.Down => w.Down,
            _ => throw new ArgumentOutOfRangeException(nameof(t)),
        };
    }

    /// <summary>y = x Wᵀ for projection t of layer l (with its adapter, over a frozen base).</summary>
    private void Linear(int l, LayerTensor t, float* x, float* y, float* p)
    {
        if (_base is null)
        {
            var (outDim, inDim) = WeightNames.Shape(Config, t);
            MatOps.Forward(x, p + DenseOffset(l, t), _rows, inDim, outDim, y, _pool);
        }
        else if (Layout.Lora.TryGetValue((l, t), out var ab)) LoraLinear.Forward(Frozen(l, t), x, _rows, p + ab.A, p + ab.B, _rank, _loraScale, _u![l, (int)t], y, _pool, Dropout(l, t), _xd);
        else LoraLinear.BaseForward(Frozen(l, t), x, _rows, y, _pool);
    }

    /// <summary>
    /// LoRA dropout while training: set per step (as <see cref="Noise"/>), the mask of each projection in each forward a
    /// hash of (seed, the forward's number since set, layer, projection, row, element); null (validation): none.
    /// </summary>
    public ulong? LoraDropoutSeed { get => _dropoutSeed; set { _dropoutSeed = value; _dropoutForwards = 0; } }
    private ulong? _dropoutSeed;
    private ulong _dropoutForwards, _dropoutForward; // forwards since set; the number of the last one (its backward redraws its masks)

    private (float, ulong) Dropout(int l, LayerTensor t) => _dropout > 0 && _dropoutSeed is ulong seed
        ? (_dropout, NormalRng.Mix(seed + 0x9E3779B97F4A7C15UL * _dropoutForward) ^ ((ulong)l << 8 | (uint)t))
        : default;

    /// <summary>
    /// dx += dy W (dx = dy W with <paramref name="overwrite"/>; dx null: not needed) and the trained weights' gradients
    /// of projection t of layer l.
    /// </summary>
    private void LinearBackward(int l, LayerTensor t, float* dy, float* x, float* dx, float* p, float* g, bool overwrite = false)
    {
        if (_base is null)
        {
            var (outDim, inDim) = WeightNames.Shape(Config, t);
            long off = DenseOffset(l, t);
            if (dx != null) MatOps.BackwardInput(dy, p + off, _rows, inDim, outDim, dx, _pool, accumulate: !overwrite);
            MatOps.BackwardWeight(dy, x, _rows, inDim, outDim, g + off, _pool);
            return;
        }
        if (overwrite && dx != null) Clear(dx, (long)_rows * WeightNames.Shape(Config, t).Cols);
        if (Layout.Lora.TryGetValue((l, t), out var ab))
            LoraLinear.Backward(Frozen(l, t), x, _u![l, (int)t], dy, _rows, p + ab.A, p + ab.B, _rank, _loraScale, dx, g + ab.A, g + ab.B, _du, _wRows, _pool, Dropout(l, t), _xd);
        else if (dx != null) LoraLinear.BaseBackwardInput(Frozen(l, t), dy, _rows, dx, _wRows, _pool);
    }

    // dx += rmsnorm backward; dw += Σ over rows, summed chunk by chunk in order.
    private void RmsBackward(float* dy, float* x, float* w, float* rstd, float* dx, float* dw)
    {
        int chunks = (_rows + ChunkRows - 1) / ChunkRows;
        Clear(_dwPartial, (long)chunks * _d);
        _pool.For(chunks, new RmsNormGradChunks { DY = dy, X = x, W = w, Rstd = rstd, Dim = _d, Rows = _rows, DX = dx, DwPartial = _dwPartial, Scratch = _scratch });
        _pool.For(_d, new AddChunkSums { Partial = _dwPartial, Chunks = chunks, Dim = _d, Sum = dw });
    }

    private RopeRows Rope(bool inverse, float* q, float* k) =>
        new() { Cos = _cos, Sin = _sin, Heads = _h, KvHeads = _kvh, HeadDim = _hd, SeqLen = SeqLen, Inverse = inverse, Interleaved = _interleaved, Q = q, K = k, Starts = _packed ? _starts : null };

    private static void Clear(float* p, long n) => NativeMemory.Clear(p, (nuint)(n * 4));

    /// <summary>Mean loss of the rows of the last forward with unmasked targets (validation).</summary>
    internal ReadOnlySpan<float> RowLosses => new(_losses, _rows);

    // ---- parallel ops: one struct per op, its arguments as named fields in the conventions' order (inputs, sizes
    // and scalars, outputs); WorkerPool.For splits the items (rows, chunks, columns or heads) among threads ----

    /// <summary>Rows: X[r] = Table[Ids[r]].</summary>
    /// <summary>
    /// NEFTune (Jain et al. 2023): uniform noise in [−1, 1] · alpha / sqrt(T·d) added to the embeddings of the next
    /// forward passes, a training-time regularizer of fine-tuning. The noise of row r, element i is a hash of
    /// (Seed, the forward's number since Noise was set, r, i), not the state of a generator, so a resumed run draws
    /// the same noise; set Noise per step.
    /// Null (the default): none. The gradient is the embedding's own (the noise is added, not multiplied).
    /// </summary>
    public (float Alpha, ulong Seed)? Noise { get => _noise; set { _noise = value; _noiseForwards = 0; } }
    private (float Alpha, ulong Seed)? _noise;
    private ulong _noiseForwards; // forwards since Noise was set: each micro-batch of a step draws its own noise

    /// <summary>Rows: X[r] += noise(Seed, r, i) · Scale.</summary>
    private struct NoiseRows : IRangeOp
    {
        public int Dim, SeqLen; public float Scale; public ulong Seed; public float* X;
        public readonly void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
                for (int i = 0; i < Dim; i++)
                {
                    ulong h = NormalRng.Mix(Seed ^ NormalRng.Mix(((ulong)r << 32) | (uint)i));
                    X[(long)r * Dim + i] += ((h >> 40) * (1f / (1 << 24)) * 2 - 1) * Scale;
                }
        }
    }

    /// <summary>Rows: X[r] = the frozen table's row Ids[r], dequantized.</summary>
    private struct EmbedFrozenRows : IRangeOp
    {
        public WeightMatrix Table; public int* Ids; public int Dim; public float* X;
        public readonly void Run(int start, int end)
        {
            for (int r = start; r < end; r++) Table.DequantizeRow(Ids[r], new Span<float>(X + (long)r * Dim, Dim));
        }
    }

    private struct EmbedRows : IRangeOp
    {
        public float* Table; public int* Ids; public int Dim; public float* X;
        public readonly void Run(int start, int end) => EmbeddingOp.Forward(Table, Ids, Dim, X, start, end);
    }

    /// <summary>Columns [start, end) of DTable += the rows of DX at their ids.</summary>
    private struct EmbedGradColumns : IRangeOp
    {
        public float* DX; public int* Ids; public int Dim, Rows; public float* DTable;
        public readonly void Run(int start, int end) => EmbeddingOp.Backward(DX, Ids, Dim, Rows, DTable, start, end);
    }

    /// <summary>Rows: Y = rmsnorm(X) ⊙ W, 1/rms saved in Rstd.</summary>
    private struct RmsNormRows : IRangeOp
    {
        public float* X, W; public int Dim; public float Eps; public float* Y, Rstd;
        public readonly void Run(int start, int end) => RmsNormOp.Forward(X, W, Dim, Eps, Y, Rstd, start, end);
    }

    /// <summary>Chunks of <see cref="ChunkRows"/> rows: DX += the input gradient; DwPartial[chunk] = the chunk's weight gradient.</summary>
    private struct RmsNormGradChunks : IRangeOp
    {
        public float* DY, X, W, Rstd; public int Dim, Rows; public float* DX, DwPartial, Scratch;
        public readonly void Run(int start, int end)
        {
            for (int c = start; c < end; c++)
            {
                int r0 = c * ChunkRows, r1 = Math.Min(Rows, r0 + ChunkRows);
                RmsNormOp.Backward(DY, X, W, Rstd, Dim, DX, DwPartial + (long)c * Dim, Scratch + (long)c * Dim, r0, r1);
            }
        }
    }

    /// <summary>Columns: Sum[col] += Σ_chunks Partial[chunk][col], chunks in order (the same bits on any thread count).</summary>
    private struct AddChunkSums : IRangeOp
    {
        public float* Partial; public int Chunks, Dim; public float* Sum;
        public readonly void Run(int start, int end)
        {
            for (int c = 0; c < Chunks; c++)
            {
                float* src = Partial + (long)c * Dim;
                for (int i = start; i < end; i++) Sum[i] += src[i];
            }
        }
    }

    /// <summary>Rows: RoPE on the query and key rows in place (Inverse: the backward rotation of their gradients).</summary>
    private struct RopeRows : IRangeOp
    {
        public float* Cos, Sin; public int Heads, KvHeads, HeadDim, SeqLen; public bool Inverse, Interleaved; public float* Q, K; public int* Starts;
        public readonly void Run(int start, int end)
        {
            RopeOp.Apply(Cos, Sin, Heads, HeadDim, SeqLen, Inverse, Q, start, end, Starts, Interleaved);
            RopeOp.Apply(Cos, Sin, KvHeads, HeadDim, SeqLen, Inverse, K, start, end, Starts, Interleaved);
        }
    }

    /// <summary>(sequence, KV head) pairs: causal attention of the head's query group; probabilities saved in P [B, H, T, T].</summary>
    private struct AttentionHeads : IRangeOp
    {
        public float* Q, K, V; public int SeqLen, Heads, KvHeads, HeadDim; public int* Starts; public float* O, P;
        public readonly void Run(int start, int end)
        {
            int qd = Heads * HeadDim, kd = KvHeads * HeadDim;
            for (int i = start; i < end; i++)
            {
                int b = i / KvHeads, kv = i % KvHeads;
                long row = (long)b * SeqLen;
                AttentionOp.Forward(Q + row * qd, K + row * kd, V + row * kd, SeqLen, Heads, KvHeads, HeadDim, kv, O + row * qd, P + (long)b * Heads * SeqLen * SeqLen,
                    Starts == null ? null : Starts + row);
            }
        }
    }

    /// <summary>(sequence, KV head) pairs: DQ, DK, DV += attention's gradients; each pair owns a scratch row.</summary>
    private struct AttentionGradHeads : IRangeOp
    {
        public float* DOut, Q, K, V, P; public int SeqLen, Heads, KvHeads, HeadDim; public int* Starts; public float* DQ, DK, DV, Scratch; public long ScratchStride;
        public readonly void Run(int start, int end)
        {
            int qd = Heads * HeadDim, kd = KvHeads * HeadDim;
            for (int i = start; i < end; i++)
            {
                int b = i / KvHeads, kv = i % KvHeads;
                long row = (long)b * SeqLen;
                AttentionOp.Backward(DOut + row * qd, Q + row * qd, K + row * kd, V + row * kd, P + (long)b * Heads * SeqLen * SeqLen,
                    SeqLen, Heads, KvHeads, HeadDim, kv, DQ + row * qd, DK + row * kd, DV + row * kd, Scratch + (long)i * ScratchStride,
                    Starts == null ? null : Starts + row);
            }
        }
    }

    /// <summary>Rows: A += B.</summary>
    private struct AddRows : IRangeOp
    {
        public float* B; public int Dim; public float* A;
        public readonly void Run(int start, int end)
        {
            long a = (long)start * Dim, n = (long)(end - start) * Dim;
            System.Numerics.Tensors.TensorPrimitives.Add(new ReadOnlySpan<float>(A + a, (int)n), new ReadOnlySpan<float>(B + a, (int)n), new Span<float>(A + a, (int)n));
        }
    }

    /// <summary>Rows: H = silu(Gate) ⊙ Up; Gate and Up rows Stride floats apart (2F when side by side, else F). Row by
    /// row: SwiGluOp gives an element the same bits wherever a range ends, so this equals one call over contiguous rows.</summary>
    private struct SwiGluRows : IRangeOp
    {
        public float* Gate, Up; public int Ffn, Stride; public float* H;
        public readonly void Run(int start, int end)
        {
            for (int r = start; r < end; r++) SwiGluOp.Forward(Gate + (long)r * Stride, Up + (long)r * Stride, H + (long)r * Ffn, 0, Ffn);
        }
    }

    /// <summary>Rows: DGate, DUp = SwiGLU's gradients from DH (written, not added: nothing else contributes).</summary>
    private struct SwiGluGradRows : IRangeOp
    {
        public float* DH, Gate, Up; public int Ffn, Stride; public float* DGate, DUp;
        public readonly void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                long o = (long)r * Stride;
                SwiGluOp.Backward(DH + (long)r * Ffn, Gate + o, Up + o, DGate + o, DUp + o, 0, Ffn, overwrite: true);
            }
        }
    }

    /// <summary>Rows: Losses[r] = cross-entropy of row r; the logits become their softmax.</summary>
    private struct CrossEntropyRows : IRangeOp
    {
        public float* Logits; public int* Targets; public int Vocab; public float* Losses;
        public readonly void Run(int start, int end) => CrossEntropyOp.Forward(Logits, Targets, Vocab, Losses, start, end);
    }

    /// <summary>Rows: the softmax rows become Scale·(softmax − onehot(target)).</summary>
    private struct CrossEntropyGradRows : IRangeOp
    {
        public int* Targets; public int Vocab; public float Scale; public float* Probs;
        public readonly void Run(int start, int end) => CrossEntropyOp.Backward(Probs, Targets, Vocab, Scale, start, end);
    }
}
