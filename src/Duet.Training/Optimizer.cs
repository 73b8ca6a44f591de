// The optimizer side of a step: learning-rate schedule, global-norm gradient clipping and AdamW, as
// torch.optim.AdamW and torch.nn.utils.clip_grad_norm_ do them (tests/reference/train_step.py is the reference):
//   lr(s)  = lr·(s+1)/W for s < W; then cosine from lr to min_lr over [W, S]; min_lr from S on (S ≤ 0: constant lr)
//   clip   : norm = √Σg² over all gradients; if c > 0 and norm > c: g ← g · c/(norm + 1e-6)
//   AdamW  : p ← p·(1 − lr·wd) for decayed tensors; m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
//            p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε),   t = s + 1
// Decayed: 2-D weight matrices except the token embedding (ParameterSlot.Decay). The norm is summed in double over
// fixed chunks in order, so it does not depend on the thread count.
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
    /// <summary>First and second moments, in the parameter layout.</summary>
    public float[] M { get; }
    public float[] V { get; }
    /// <summary>Updates done so far (t − 1 of the next update).</summary>
    public int Steps { get; set; }

    public AdamW(ParameterLayout layout, OptimizerOptions options, WorkerPool? pool = null)
    {
        options.Validate();
        _layout = layout; _o = options; _pool = pool ?? WorkerPool.Shared;
        M = new float[layout.Count];
        V = new float[layout.Count];
    }

    /// <summary>Elements per chunk of the norm sum and the update: fixed, so results do not depend on threads.</summary>
    private const int Chunk = 1 << 14;

    /// <summary>√Σg² over all gradients, in double, chunk partials added in order.</summary>
    public double GlobalNorm(float[] gradients)
    {
        int chunks = (int)((gradients.LongLength + Chunk - 1) / Chunk);
        if (_normPartial.Length != chunks) _normPartial = new double[chunks];
        _pool.For(chunks, new SquareSums { G = gradients, Partial = _normPartial });
        double total = 0;
        foreach (var p in _normPartial) total += p;
        return Math.Sqrt(total);
    }

    private double[] _normPartial = [];

    /// <summary>Partial[c] = Σ g² over chunk c of <see cref="Chunk"/> elements, in double.</summary>
    private readonly struct SquareSums : IRangeOp
    {
        public required float[] G { get; init; }
        public required double[] Partial { get; init; }

        public void Run(int c0, int c1)
        {
            for (int c = c0; c < c1; c++)
            {
                int start = c * Chunk, end = (int)Math.Min(G.LongLength, (long)start + Chunk);
                double sum = 0;
                for (int i = start; i < end; i++) sum += (double)G[i] * G[i];
                Partial[c] = sum;
            }
        }
    }

    /// <summary>
    /// One update of <paramref name="parameters"/> from <paramref name="gradients"/> scaled by
    /// <paramref name="gradScale"/> (the clip factor, 1 when not clipped) at learning rate <paramref name="lr"/>.
    /// </summary>
    public void Update(float[] parameters, float[] gradients, double lr, double gradScale)
    {
        Steps++;
        _pool.For(_layout.Slots.Count, new UpdateSlots
        {
            G = gradients, Layout = _layout,
            Scale = (float)gradScale, B1 = (float)_o.Beta1, B2 = (float)_o.Beta2, Eps = (float)_o.Epsilon,
            Decay = (float)(1 - lr * _o.WeightDecay),
            StepSize = (float)(lr / (1 - Math.Pow(_o.Beta1, Steps))),
            Bc2Sqrt = (float)Math.Sqrt(1 - Math.Pow(_o.Beta2, Steps)),
            P = parameters, M = M, V = V,
        });
    }

    /// <summary>The AdamW update of whole parameter tensors (slots of the layout); P, M and V are updated in place.</summary>
    private readonly struct UpdateSlots : IRangeOp
    {
        public required float[] G { get; init; }
        public required ParameterLayout Layout { get; init; }
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

        // Whole tensors per thread: the update is elementwise, so any split gives the same bits.
        public void Run(int s0, int s1)
        {
            for (int s = s0; s < s1; s++)
            {
                var slot = Layout.Slots[s];
                int start = (int)slot.Offset, end = (int)(slot.Offset + slot.Length);
                float decay = slot.Decay ? Decay : 1f;
                for (int i = start; i < end; i++)
                {
                    float g = G[i] * Scale;
                    float m = M[i] + (1 - B1) * (g - M[i]);          // torch: exp_avg.lerp_(grad, 1 - beta1)
                    float v = V[i] * B2 + (1 - B2) * g * g;          // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
                    M[i] = m; V[i] = v;
                    float p = P[i] * decay;                          // param.mul_(1 - lr * weight_decay)
                    P[i] = p - StepSize * (m / (MathF.Sqrt(v) / Bc2Sqrt + Eps));
                }
            }
        }
    }
}
