// One optimizer step of the trainer: gradient accumulation over micro-batches, global-norm clipping, AdamW.
// Accumulation follows tests/reference/train_step.py: the B rows of a step are split into M consecutive
// micro-batches; loss = mean of the micro-batch mean losses and gradient = mean of their gradients (the full-batch
// gradient when every micro-batch has as many unmasked targets; a micro-batch with none adds nothing).
// The sum is fixed in its rounding, so that data-parallel training (Distributed/DataParallel.cs) gives the same bits
// on any number of ranks: each micro-batch's gradient g_m = ∂(loss_m / (count_m·M)) is computed on its own (into a
// zeroed buffer), and G = (((0 + g_0) + g_1) + ...) + g_{M−1} in micro-batch order, skipping those without targets.
namespace Duet.Training;

public readonly record struct StepResult(int Step, double Loss, double GradNorm, double LearningRate, bool Clipped, int Tokens);

public sealed class StepRunner
{
    public TrainingModel Model { get; }
    public AdamW Optimizer { get; }
    public OptimizerOptions Options { get; }
    public int MicroBatches { get; }
    private float[]? _single; // one micro-batch's gradient, when a step has more than one

    public StepRunner(TrainingModel model, OptimizerOptions options, int microBatches)
    {
        if (microBatches <= 0) throw new ArgumentOutOfRangeException(nameof(microBatches), "micro-batches must be positive");
        Model = model; Options = options; MicroBatches = microBatches;
        Optimizer = new AdamW(model.Layout, options);
    }

    /// <summary>
    /// Optimizer step number <see cref="AdamW.Steps"/> on rows × SeqLen inputs and targets, rows = MicroBatches × the
    /// model's batch size. Returns the loss before the update, the pre-clip gradient norm and the learning rate used.
    /// </summary>
    public StepResult Step(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets) => Step(inputs, targets, default);

    /// <inheritdoc cref="Step(ReadOnlySpan{int}, ReadOnlySpan{int})"/>
    /// <param name="starts">packed conversations' starts per position (TrainingModel.Forward), or empty</param>
    public StepResult Step(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets, ReadOnlySpan<int> starts)
    {
        int micro = Model.BatchSize * Model.SeqLen;
        if (inputs.Length != micro * MicroBatches || targets.Length != inputs.Length)
            throw new ArgumentException($"a step takes {MicroBatches} × {Model.BatchSize} × {Model.SeqLen} inputs and targets, not {inputs.Length} and {targets.Length}");
        var total = Model.Gradients;
        Array.Clear(total);
        double loss = 0;
        int tokens = 0;
        for (int m = 0; m < MicroBatches; m++)
        {
            var (sum, count) = Model.Forward(inputs.Slice(m * micro, micro), targets.Slice(m * micro, micro), Model.BatchSize,
                starts.IsEmpty ? default : starts.Slice(m * micro, micro));
            if (count == 0) continue;
            loss += sum / count / MicroBatches;
            // The first micro-batch with targets goes straight into the zeroed total (0 + g = g); later ones into a
            // zeroed buffer of their own, then added.
            bool first = tokens == 0;
            tokens += count;
            if (!first)
            {
                _single ??= GC.AllocateArray<float>(total.Length, pinned: true);
                Array.Clear(_single);
                Model.Gradients = _single;
            }
            try { Model.Backward(1f / (count * MicroBatches)); }
            finally { Model.Gradients = total; }
            if (!first) System.Numerics.Tensors.TensorPrimitives.Add(total, _single!, total);
        }
        Model.Profile?.Skip();
        int step = Optimizer.Steps;
        double lr = Options.LearningRateAt(step);
        double norm = Optimizer.GlobalNorm(Model.Gradients);
        bool clip = Options.GradClip > 0 && norm > Options.GradClip;
        Optimizer.Update(Model.Parameters, Model.Gradients, lr, clip ? Options.GradClip / (norm + 1e-6) : 1.0);
        Model.Profile?.Mark("optimizer: norm, AdamW");
        return new StepResult(step, loss, norm, lr, clip, tokens);
    }

    /// <summary>Mean loss over the unmasked targets of some sequences, without gradients (validation).</summary>
    public (double LossSum, int Count) Evaluate(ReadOnlySpan<int> inputs, ReadOnlySpan<int> targets)
    {
        int micro = Model.BatchSize * Model.SeqLen;
        double sum = 0;
        int count = 0;
        for (int start = 0; start < inputs.Length; start += micro)
        {
            int n = Math.Min(micro, inputs.Length - start);
            if (n % Model.SeqLen != 0) throw new ArgumentException("evaluation rows must be whole sequences");
            var (s, c) = Model.Forward(inputs.Slice(start, n), targets.Slice(start, n), n / Model.SeqLen);
            sum += s; count += c;
        }
        return (sum, count);
    }
}
