// The hot-path promise of the trainer: a training step (forward and backward over the micro-batches, the
// gradient norm, the AdamW update) allocates nothing once warm. Counted on the calling thread, which runs its
// share of every parallel job.
using Duet.Model;
using Duet.Tensors.Parallel;

namespace Duet.Training.Tests;

public class AllocationTests
{
    private static readonly LlamaConfig Config = new()
    {
        Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 16, RopeDim = 16, FfnDim = 128, Vocab = 300, ContextLength = 32,
        RopeStyle = Duet.Tensors.Kernels.RopeStyle.NeoX,
    };

    /// <summary>A small random model (2 sequences of 32 per micro-batch), its step runner and a batch, warmed up by three steps.</summary>
    private static (TrainingModel Model, StepRunner Runner, int[] Inputs, int[] Targets) Warm(WorkerPool pool, int microBatches, StepProfile? profile = null)
    {
        var model = new TrainingModel(Config, 2, 32, pool) { Profile = profile };
        model.Layout.Load(CanonicalModel.Random(Config, 3), model.Parameters);
        var runner = new StepRunner(model, new OptimizerOptions { MaxSteps = 100, WarmupSteps = 2 }, microBatches);
        var rng = new Random(1);
        var inputs = Enumerable.Range(0, microBatches * 2 * 32).Select(_ => rng.Next(Config.Vocab)).ToArray();
        var targets = Enumerable.Range(0, inputs.Length).Select(i => i % 17 == 0 ? -1 : rng.Next(Config.Vocab)).ToArray();
        for (int i = 0; i < 3; i++) runner.Step(inputs, targets);
        return (model, runner, inputs, targets);
    }

    [Fact]
    public void TrainingStep_AfterWarmUp_AllocatesNothing()
    {
        using var pool = new WorkerPool(2);
        var (model, runner, inputs, targets) = Warm(pool, microBatches: 2);
        using var _ = model;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10; i++) runner.Step(inputs, targets);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated == 0, $"10 training steps allocated {allocated} bytes");
    }

    // duet bench-train --parts: every part of a step is timed, in the order it runs, the parts add up to no more than
    // the steps took, and a warm profiled step still allocates nothing.
    [Fact]
    public void StepProfile_TimesEveryPartInOrder_AndAllocatesNothingWhenWarm()
    {
        using var pool = new WorkerPool(2);
        var profile = new StepProfile();
        var (model, runner, inputs, targets) = Warm(pool, microBatches: 1, profile);
        using var _ = model;
        profile.Clear();
        long before = GC.GetAllocatedBytesForCurrentThread();
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        for (int i = 0; i < 5; i++) runner.Step(inputs, targets);
        double wall = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated == 0, $"5 profiled steps allocated {allocated} bytes");
        string[] expected =
        [
            "forward: embedding", "forward: norm, Q/K/V, RoPE", "forward: attention", "forward: O, norm, FFN", "forward: final norm, head",
            "forward: cross-entropy", "backward: cross-entropy", "backward: head, final norm", "backward: FFN, norm, O", "backward: attention",
            "backward: RoPE, Q/K/V, norm", "backward: embedding", "optimizer: norm, AdamW",
        ];
        Assert.Equal(expected, profile.Parts.Select(x => x.Part));
        Assert.All(profile.Parts, x => Assert.True(x.Milliseconds > 0, $"{x.Part}: {x.Milliseconds} ms"));
        double total = profile.Parts.Sum(x => x.Milliseconds);
        Assert.True(total <= wall, $"the parts add up to {total:F2} ms, more than the {wall:F2} ms the steps took");
    }
}
