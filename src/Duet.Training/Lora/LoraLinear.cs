// A linear layer with a low-rank update (LoRA, Hu et al. 2021; PEFT's formula), over a frozen base weight kept in
// its own type (F32, F16, BF16, Q8_0, Q4_0, K-quants; memory-mapped, as QLoRA keeps a 4-bit base):
//   y  = x Wᵀ + s · (x Aᵀ) Bᵀ          W [out, in] frozen, A [r, in], B [out, r] trained,
//   s  = alpha / r  (rsLoRA: alpha / sqrt(r))
// and its backward, with u = x Aᵀ [N, r] saved from the forward:
//   dB += s · dyᵀ u      du = s · dy B      dA += duᵀ x      dx += dy W + du A
// With LoRA dropout p (PEFT's lora_dropout, on the adapter's input only): x in u = x Aᵀ and dA becomes
// x̃ = x ⊙ m / (1 − p), m[r, i] ∈ {0, 1} kept with probability 1 − p, and dx gets (du A) ⊙ m / (1 − p); the mask is
// a hash of (seed, row, element), not a generator's state, so the backward redraws it and a resumed run draws the same.
// The base's rows are dequantized on the fly: the forward through MatMul in float (QuantizedMath.Float: the
// dequantized weights times float activations, as PyTorch runs a dequantized model), the input gradient by blocks
// of rows dequantized into a buffer and multiplied by Sgemm. Every sum runs in an order that does not depend on the
// thread count (MatMul gives a row of W to one thread; Sgemm splits no sum), so a run resumes bit for bit.
//   torch (PEFT): y = F.linear(x, W) + scale * F.linear(F.linear(x, A), B)
using Duet.Tensors;
using Duet.Tensors.Kernels;
using Duet.Tensors.Parallel;

namespace Duet.Training.Lora;

public sealed record LoraOptions
{
    public int Rank { get; init; } = 16;
    public float Alpha { get; init; } = 32;
    /// <summary>rsLoRA (Kalajdzievski 2023): scale alpha / sqrt(rank) instead of alpha / rank.</summary>
    public bool RsLora { get; init; }
    /// <summary>The projections adapted in every layer, by PEFT's module names or the short q, k, v, o, gate, up, down.</summary>
    public string[] Targets { get; init; } = ["q", "k", "v", "o", "gate", "up", "down"];
    /// <summary>PEFT's lora_dropout: the share of the adapter's inputs zeroed while training (0: none).</summary>
    public float Dropout { get; init; }
    [System.Text.Json.Serialization.JsonIgnore]
    public float Scale => RsLora ? Alpha / MathF.Sqrt(Rank) : Alpha / Rank;

    /// <summary>The targets as projections (ArgumentException for a name a LLaMA layer does not have).</summary>
    public IReadOnlyList<Duet.Model.LayerTensor> TargetTensors() => Targets.Select(Duet.Model.LoraAdapter.ParseTarget).ToArray();

    public void Validate()
    {
        if (Rank <= 0) throw new ArgumentException($"LoRA rank {Rank} must be positive");
        if (!(Alpha > 0) || !float.IsFinite(Alpha)) throw new ArgumentException($"LoRA alpha {Alpha} must be positive");
        if (Targets.Length == 0) throw new ArgumentException("LoRA needs at least one target (q, k, v, o, gate, up, down)");
        if (!(Dropout >= 0 && Dropout < 1)) throw new ArgumentException($"LoRA dropout {Dropout} must be in [0, 1)");
        _ = TargetTensors();
    }

    /// <summary>
    /// Parses "r=16,alpha=32,dropout=0.05,targets=q,k,v,o,gate,up,down[,rslora]" (names after targets= that hold no '=' are more
    /// targets); keys not given keep their defaults.
    /// </summary>
    public static LoraOptions Parse(string spec)
    {
        var o = new LoraOptions();
        var targets = new List<string>();
        bool inTargets = false;
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        foreach (var raw in spec.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = raw.IndexOf('=');
            if (eq < 0)
            {
                if (raw is "rslora" or "rsLoRA" or "use_rslora") { o = o with { RsLora = true }; inTargets = false; }
                else if (inTargets) targets.Add(raw);
                else throw new ArgumentException($"--lora: \"{raw}\" is not KEY=VALUE (keys: r, alpha, dropout, targets, rslora)");
                continue;
            }
            string key = raw[..eq].Trim(), value = raw[(eq + 1)..].Trim();
            inTargets = false;
            switch (key)
            {
                case "r" or "rank":
                    o = o with { Rank = int.TryParse(value, System.Globalization.NumberStyles.Integer, inv, out int r) ? r : throw new ArgumentException($"--lora: rank \"{value}\" is not a whole number") };
                    break;
                case "alpha" or "lora_alpha":
                    o = o with { Alpha = float.TryParse(value, System.Globalization.NumberStyles.Float, inv, out float a) ? a : throw new ArgumentException($"--lora: alpha \"{value}\" is not a number") };
                    break;
                case "dropout" or "lora_dropout":
                    o = o with { Dropout = float.TryParse(value, System.Globalization.NumberStyles.Float, inv, out float p) ? p : throw new ArgumentException($"--lora: dropout \"{value}\" is not a number") };
                    break;
                case "rslora":
                    o = o with { RsLora = bool.TryParse(value, out bool b) ? b : throw new ArgumentException($"--lora: rslora \"{value}\" is not true or false") };
                    break;
                case "targets" or "target_modules":
                    targets.Add(value); inTargets = true;
                    break;
                default: throw new ArgumentException($"--lora: unknown key \"{key}\" (keys: r, alpha, dropout, targets, rslora)");
            }
        }
        if (targets.Count > 0) o = o with { Targets = targets.ToArray() };
        o.Validate();
        return o;
    }
}

public static unsafe class LoraLinear
{
    /// <summary>Rows of W dequantized at a time for the input gradient (a buffer of BlockRows × in floats).</summary>
    public const int BlockRows = 64;

    /// <summary>
    /// y[N, out] = x Wᵀ + scale · u Bᵀ with u[N, r] = x Aᵀ (written, for the backward).
    /// </summary>
    /// <param name="dropout">LoRA dropout (p and the seed of this forward's mask), with <paramref name="xd"/> scratch of N × in floats; default: none</param>
    public static void Forward(WeightMatrix w, float* x, int rows, float* a, float* b, int rank, float scale, float* u, float* y, WorkerPool pool,
        (float P, ulong Seed) dropout = default, float* xd = null)
    {
        int inDim = w.Cols, outDim = w.Rows;
        BaseForward(w, x, rows, y, pool);
        MatOps.Forward(Dropped(x, rows, inDim, dropout, xd, pool), a, rows, inDim, rank, u, pool);
        // y += (scale · u) Bᵀ
        Sgemm.Gemm(false, true, rows, outDim, rank, ScaledCopy(u, rows * rank, scale), rank, b, rank, y, outDim, accumulate: true, pool);
    }

    /// <summary>
    /// Gradients of <see cref="Forward"/>: dA += duᵀ x, dB += scale · dyᵀ u, and dx += dy W + du A (if dx is not
    /// null), with du = scale · dy B. <paramref name="du"/> is scratch of N × r floats; <paramref name="wRows"/> of
    /// BlockRows × in floats (unused for an F32 base).
    /// </summary>
    public static void Backward(WeightMatrix w, float* x, float* u, float* dy, int rows, float* a, float* b, int rank, float scale,
        float* dx, float* dA, float* dB, float* du, float* wRows, WorkerPool pool, (float P, ulong Seed) dropout = default, float* xd = null)
    {
        int inDim = w.Cols, outDim = w.Rows;
        // du = scale · dy B   [N, r]
        Sgemm.Gemm(false, false, rows, rank, outDim, dy, outDim, b, rank, du, rank, accumulate: false, pool);
        Scale(du, rows * rank, scale);
        // dB += scale · dyᵀ u  [out, r]
        var su = ScaledCopy(u, rows * rank, scale);
        Sgemm.Gemm(true, false, outDim, rank, rows, dy, outDim, su, rank, dB, rank, accumulate: true, pool);
        // dA += duᵀ x̃  [r, in]
        Sgemm.Gemm(true, false, rank, inDim, rows, du, rank, Dropped(x, rows, inDim, dropout, xd, pool), inDim, dA, inDim, accumulate: true, pool);
        if (dx == null) return;
        if (dropout.P > 0)
        {
            // dx += (du A) ⊙ m / (1 − p): the product into the scratch, then masked and added
            Sgemm.Gemm(false, false, rows, inDim, rank, du, rank, a, inDim, xd, inDim, accumulate: false, pool);
            pool.For(rows, new DropRows { X = xd, Cols = inDim, P = dropout.P, Seed = dropout.Seed, Out = dx, Accumulate = true });
        }
        else Sgemm.Gemm(false, false, rows, inDim, rank, du, rank, a, inDim, dx, inDim, accumulate: true, pool); // dx += du A  [N, in]
        BaseBackwardInput(w, dy, rows, dx, wRows, pool);
    }

    /// <summary>The dropout multiplier of input element (row, i): 0 with probability p, else 1 / (1 − p), from a hash of (seed, row, i).</summary>
    public static float DropoutKeep(ulong seed, int row, int i, float p)
    {
        ulong h = Duet.Model.NormalRng.Mix(seed ^ Duet.Model.NormalRng.Mix(((ulong)(uint)row << 32) | (uint)i));
        return (h >> 40) * (1f / (1 << 24)) < p ? 0f : 1f / (1f - p);
    }

    /// <summary>x, or x ⊙ m / (1 − p) written to xd when dropout is on.</summary>
    private static float* Dropped(float* x, int rows, int cols, (float P, ulong Seed) dropout, float* xd, WorkerPool pool)
    {
        if (dropout.P <= 0) return x;
        if (xd == null) throw new ArgumentException("LoRA dropout needs N × in floats of scratch");
        pool.For(rows, new DropRows { X = x, Cols = cols, P = dropout.P, Seed = dropout.Seed, Out = xd });
        return xd;
    }

    /// <summary>Rows: Out = X ⊙ m / (1 − p) (Accumulate: Out += that).</summary>
    private struct DropRows : IRangeOp
    {
        public float* X; public int Cols; public float P; public ulong Seed; public float* Out; public bool Accumulate;
        public readonly void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
                for (int i = 0; i < Cols; i++)
                {
                    long k = (long)r * Cols + i;
                    float v = X[k] * DropoutKeep(Seed, r, i, P);
                    Out[k] = Accumulate ? Out[k] + v : v;
                }
        }
    }

    /// <summary>y[N, out] = x Wᵀ through the frozen base alone (overwrites y).</summary>
    public static void BaseForward(WeightMatrix w, float* x, int rows, float* y, WorkerPool pool)
    {
        if (w.Type == GgmlType.F32) MatOps.Forward(x, (float*)w.Data, rows, w.Cols, w.Rows, y, pool);
        else MatMul.Multiply(w, new ReadOnlySpan<float>(x, rows * w.Cols), new Span<float>(y, rows * w.Rows), rows, pool, invariant: false, QuantizedMath.Float);
    }

    /// <summary>dx[N, in] += dy W through the frozen base: its rows in blocks of <see cref="BlockRows"/>, dequantized into <paramref name="wRows"/>.</summary>
    public static void BaseBackwardInput(WeightMatrix w, float* dy, int rows, float* dx, float* wRows, WorkerPool pool)
    {
        int inDim = w.Cols, outDim = w.Rows;
        if (w.Type == GgmlType.F32) { MatOps.BackwardInput(dy, (float*)w.Data, rows, inDim, outDim, dx, pool); return; }
        for (int r0 = 0; r0 < outDim; r0 += BlockRows)
        {
            int n = Math.Min(BlockRows, outDim - r0);
            pool.For(n, new DequantizeRows { W = w, First = r0, Dst = wRows });
            Sgemm.Gemm(false, false, rows, inDim, n, dy + r0, outDim, wRows, inDim, dx, inDim, accumulate: true, pool);
        }
    }

    /// <summary>Rows i of a block: Dst[i] = W's row First + i as floats.</summary>
    private struct DequantizeRows : IRangeOp
    {
        public WeightMatrix W; public int First; public float* Dst;
        public readonly void Run(int start, int end)
        {
            for (int i = start; i < end; i++) W.DequantizeRow(First + i, new Span<float>(Dst + (long)i * W.Cols, W.Cols));
        }
    }

    [ThreadStatic] private static float[]? t_scaled;

    /// <summary>scale · v in a per-thread buffer (valid until the next call on this thread).</summary>
    private static float* ScaledCopy(float* v, int n, float scale)
    {
        var buffer = t_scaled is { } s && s.Length >= n ? s : t_scaled = GC.AllocateArray<float>(n, pinned: true);
        fixed (float* p = buffer)
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(v, n), scale, new Span<float>(p, n));
            return p; // pinned: the address stays valid
        }
    }

    private static void Scale(float* v, int n, float scale) =>
        System.Numerics.Tensors.TensorPrimitives.Multiply(new ReadOnlySpan<float>(v, n), scale, new Span<float>(v, n));
}
