// The optimizer side of a step: learning-rate schedule, global-norm gradient clipping and AdamW, as
// torch.optim.AdamW and torch.nn.utils.clip_grad_norm_ do them (tests/reference/train_step.py is the reference):
//   lr(s)  = lr·(s+1)/W for s < W; then cosine from lr to min_lr over [W, S]; min_lr from S on (S ≤ 0: constant lr)
//   clip   : norm = √Σg² over all gradients; if c > 0 and norm > c: g ← g · c/(norm + 1e-6)
//   AdamW  : p ← p·(1 − lr·wd) for decayed tensors; m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
//            p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε),   t = s + 1
// Decayed: 2-D weight matrices except the token embedding (ParameterSlot.Decay). The norm is summed in double over
// fixed chunks in order, so it does not depend on the thread count.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Duet.Tensors.Parallel;

namespace Duet.Training;

public sealed record OptimizerOptions
{
    public double LearningRate { get; init; } = 1e-3;
    public double MinLearningRate { get; init; } = 1e-4;
    public int WarmupSteps { get; init; } = 100;
    /// <summary>Steps of the cosine schedule (the run's length); 0 keeps the learning rate constant after warmup.</summary>
    public int MaxSteps { get; init; }
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double Epsilon { get; init; } = 1e-8;
    public double WeightDecay { get; init; } = 0.1;
    /// <summary>Global gradient norm limit; 0 turns clipping off.</summary>
    public double GradClip { get; init; } = 1.0;

    public void Validate()
    {
        void Check(bool ok, string what) { if (!ok) throw new ArgumentException($"optimizer: {what}"); }
        Check(LearningRate > 0 && double.IsFinite(LearningRate), $"learning rate {LearningRate} must be positive");
        Check(MinLearningRate >= 0 && MinLearningRate <= LearningRate, $"min learning rate {MinLearningRate} must be in [0, {LearningRate}]");
        Check(WarmupSteps >= 0 && MaxSteps >= 0, "warmup and max steps must not be negative");
        Check(Beta1 is >= 0 and < 1 && Beta2 is >= 0 and < 1, $"betas ({Beta1}, {Beta2}) must be in [0, 1)");
        Check(Epsilon > 0, "epsilon must be positive");
        Check(WeightDecay >= 0 && GradClip >= 0, "weight decay and grad clip must not be negative");
    }

    /// <summary>The learning rate of step s (from 0).</summary>
    public double LearningRateAt(int s)
    {
        if (s < WarmupSteps) return LearningRate * (s + 1) / WarmupSteps;
        if (MaxSteps <= 0) return LearningRate;
        if (s >= MaxSteps) return MinLearningRate;
        double progress = (double)(s - WarmupSteps) / (MaxSteps - WarmupSteps);
        return MinLearningRate + 0.5 * (LearningRate - MinLearningRate) * (1 + Math.Cos(Math.PI * progress));
    }
}

public sealed unsafe class AdamW
{
    private readonly ParameterLayout _layout;
    private readonly OptimizerOptions _o;
    private readonly WorkerPool _pool;
    private readonly (long Start, long End, bool Decay)[] _segments;
    /// <summary>First and second moments of parameters [Start, End), in the parameter layout.</summary>
    public float[] M { get; }
    public float[] V { get; }
    /// <summary>
    /// The parameters this optimizer updates: all of them, or one rank's shard under ZeRO-1 (data-parallel training),
    /// where each rank keeps the moments of its shard only.
    /// </summary>
    public long Start { get; }
    public long End { get; }
    /// <summary>Updates done so far (t − 1 of the next update).</summary>
    public int Steps { get; set; }

    public AdamW(ParameterLayout layout, OptimizerOptions options, WorkerPool? pool = null) : this(layout, options, 0, layout.Count, pool) { }

    public AdamW(ParameterLayout layout, OptimizerOptions options, long start, long end, WorkerPool? pool = null)
    {
        options.Validate();
        if (start < 0 || end < start || end > layout.Count) throw new ArgumentOutOfRangeException(nameof(start), $"[{start}, {end}) is not a range of {layout.Count} parameters");
        _layout = layout; _o = options; _pool = pool ?? WorkerPool.Shared;
        Start = start; End = end;
        M = new float[end - start];
        V = new float[end - start];
        // Pieces of slots inside [start, end), at most SegmentMax long so that threads share a big tensor. The update
        // is elementwise, so any split gives the same bits.
        var segments = new List<(long, long, bool)>();
        foreach (var slot in layout.Slots)
        {
            long a = Math.Max(start, slot.Offset), b = Math.Min(end, slot.Offset + slot.Length);
            for (long x = a; x < b; x += SegmentMax) segments.Add((x, Math.Min(b, x + SegmentMax), slot.Decay));
        }
        _segments = [.. segments];
    }

    private const int SegmentMax = 1 << 16;

    /// <summary>Elements per chunk of the norm sum and the update: fixed, so results do not depend on threads.</summary>
    public const int Chunk = 1 << 14;

    /// <summary>√Σg² over all gradients, in double, chunk partials added in order.</summary>
    public double GlobalNorm(float[] gradients)
    {
        int chunks = (int)((gradients.LongLength + Chunk - 1) / Chunk);
        if (_normPartial.Length != chunks) _normPartial = new double[chunks];
        SquareSums(gradients, 0, gradients.LongLength, _normPartial, _pool);
        return NormOf(_normPartial);
    }

    /// <summary>The norm from chunk partials, added in chunk order (as <see cref="GlobalNorm"/> does).</summary>
    public static double NormOf(ReadOnlySpan<double> partials)
    {
        double total = 0;
        foreach (var p in partials) total += p;
        return Math.Sqrt(total);
    }

    /// <summary>
    /// partial[c] = Σ g² (in double) over g[offset + c·Chunk, offset + min((c+1)·Chunk, length)). With offset a
    /// multiple of Chunk, a shard's partials are exactly the whole gradient's partials of its chunks.
    /// </summary>
    public static void SquareSums(float[] g, long offset, long length, double[] partial, WorkerPool pool)
    {
        if (offset % Chunk != 0) throw new ArgumentException($"a shard of the norm starts on a chunk boundary ({Chunk}), not at {offset}");
        if (partial.Length != (length + Chunk - 1) / Chunk || offset + length > g.LongLength) throw new ArgumentException("one partial per chunk of a range of g");
        pool.For(partial.Length, new SquareSumsOp { G = g, Offset = offset, Length = length, Partial = partial });
    }

    private double[] _normPartial = [];

    /// <summary>
    /// Σ g² in double: eight running sums of widened squares (lane j takes the elements j mod 8 of each block of
    /// eight), added in a fixed order at the end; the tail adds one by one. The same bits on every CPU with AVX2 or
    /// AVX-512 (both run this Vector256 form) and for any thread count (a chunk's sum is its own).
    /// </summary>
    internal static double SquareSum(ReadOnlySpan<float> g)
    {
        int i = 0;
        double total = 0;
        if (Vector256.IsHardwareAccelerated && g.Length >= 8)
        {
            Vector256<double> lo = default, hi = default;
            ref float r = ref MemoryMarshal.GetReference(g);
            for (; i + 8 <= g.Length; i += 8)
            {
                var (a, b) = Vector256.Widen(Vector256.LoadUnsafe(ref r, (nuint)i));
                lo += a * a; hi += b * b;
            }
            var s = lo + hi;
            total = (s[0] + s[1]) + (s[2] + s[3]);
        }
        for (; i < g.Length; i++) total += (double)g[i] * g[i];
        return total;
    }

    private readonly struct SquareSumsOp : IRangeOp
    {
        public required float[] G { get; init; }
        public required long Offset { get; init; }
        public required long Length { get; init; }
        public required double[] Partial { get; init; }

        public void Run(int c0, int c1)
        {
            for (int c = c0; c < c1; c++)
            {
                int start = (int)(Offset + (long)c * Chunk), end = (int)(Offset + Math.Min(Length, (long)c * Chunk + Chunk));
                Partial[c] = SquareSum(new ReadOnlySpan<float>(G, start, end - start));
            }
        }
    }

    /// <summary>
    /// One update of <paramref name="parameters"/> from <paramref name="gradients"/> scaled by
    /// <paramref name="gradScale"/> (the clip factor, 1 when not clipped) at learning rate <paramref name="lr"/>.
    /// Only parameters [Start, End) change; <paramref name="gradients"/> holds the gradient from global index
    /// <paramref name="gradientsFirst"/> on (0: the whole gradient; Start: just this shard's).
    /// </summary>
    public void Update(float[] parameters, float[] gradients, double lr, double gradScale, long gradientsFirst = 0)
    {
        if (gradientsFirst > Start || gradientsFirst + gradients.LongLength < End) throw new ArgumentException($"the gradients [{gradientsFirst}, {gradientsFirst + gradients.LongLength}) do not cover the parameters [{Start}, {End})");
        Steps++;
        _pool.For(_segments.Length, new UpdateSegments
        {
            G = gradients, GFirst = gradientsFirst, MFirst = Start, Segments = _segments,
            Scale = (float)gradScale, B1 = (float)_o.Beta1, B2 = (float)_o.Beta2, Eps = (float)_o.Epsilon,
            Decay = (float)(1 - lr * _o.WeightDecay),
            StepSize = (float)(lr / (1 - Math.Pow(_o.Beta1, Steps))),
            Bc2Sqrt = (float)Math.Sqrt(1 - Math.Pow(_o.Beta2, Steps)),
            P = parameters, M = M, V = V,
        });
    }

    /// <summary>The AdamW update of pieces of parameter tensors; P, M and V are updated in place.</summary>
    private readonly struct UpdateSegments : IRangeOp
    {
        public required float[] G { get; init; }
        public required long GFirst { get; init; }
        public required long MFirst { get; init; }
        public required (long Start, long End, bool Decay)[] Segments { get; init; }
        public required float Scale { get; init; }
        public required float B1 { get; init; }
        public required float B2 { get; init; }
        public required float Eps { get; init; }
        public required float Decay { get; init; }
        public required float StepSize { get; init; }
        public required float Bc2Sqrt { get; init; }
        public required float[] P { get; init; }
        public required float[] M { get; init; }
        public required float[] V { get; init; }

        public void Run(int s0, int s1)
        {
            for (int s = s0; s < s1; s++)
            {
                var (start, end, decayed) = Segments[s];
                float decay = decayed ? Decay : 1f;
                int go = (int)(start - GFirst), mo = (int)(start - MFirst), n = (int)(end - start), po = (int)start;
                int i = Vector256.IsHardwareAccelerated ? Update256(go, mo, po, n, decay) : 0;
                for (; i < n; i++)
                {
                    float g = G[go + i] * Scale;
                    float m = M[mo + i] + (1 - B1) * (g - M[mo + i]);          // torch: exp_avg.lerp_(grad, 1 - beta1)
                    float v = V[mo + i] * B2 + (1 - B2) * g * g;                // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
                    M[mo + i] = m; V[mo + i] = v;
                    float p = P[po + i] * decay;                                // param.mul_(1 - lr * weight_decay)
                    P[po + i] = p - StepSize * (m / (MathF.Sqrt(v) / Bc2Sqrt + Eps));
                }
            }
        }

        // The loop above on whole vectors: the same operations in the same order (no fused multiply-adds), so each
        // element gets the bits the scalar loop gives it. Returns how many elements it did. 256 bits on every x86 CPU:
        // the update streams four arrays, so it is bound by memory, not by the vector width.
        private int Update256(int go, int mo, int po, int n, float decay)
        {
            int i = 0;
            ref float g0 = ref MemoryMarshal.GetArrayDataReference(G), m0 = ref MemoryMarshal.GetArrayDataReference(M);
            ref float v0 = ref MemoryMarshal.GetArrayDataReference(V), p0 = ref MemoryMarshal.GetArrayDataReference(P);
            var scale = Vector256.Create(Scale); var b1 = Vector256.Create(1 - B1); var b2 = Vector256.Create(B2); var nb2 = Vector256.Create(1 - B2);
            var dec = Vector256.Create(decay); var step = Vector256.Create(StepSize); var bc2 = Vector256.Create(Bc2Sqrt); var eps = Vector256.Create(Eps);
            for (; i + 8 <= n; i += 8)
            {
                var g = Vector256.LoadUnsafe(ref g0, (nuint)(go + i)) * scale;
                var m = Vector256.LoadUnsafe(ref m0, (nuint)(mo + i));
                m += b1 * (g - m);
                var v = Vector256.LoadUnsafe(ref v0, (nuint)(mo + i)) * b2 + nb2 * g * g;
                m.StoreUnsafe(ref m0, (nuint)(mo + i)); v.StoreUnsafe(ref v0, (nuint)(mo + i));
                var p = Vector256.LoadUnsafe(ref p0, (nuint)(po + i)) * dec;
                (p - step * (m / (Vector256.Sqrt(v) / bc2 + eps))).StoreUnsafe(ref p0, (nuint)(po + i));
            }
            return i;
        }
    }
}
