// The hot-path promise of the trainer: a training step (forward and backward over the micro-batches, the
// gradient norm, the AdamW update) allocates nothing once warm. Counted on the calling thread, which runs its
// share of every parallel job.
using Duet.Model;
using Duet.Tensors.Parallel;

namespace Duet.Training.Tests;

public class AllocationTests
{
    [Fact]
    public void TrainingStep_AfterWarmUp_AllocatesNothing()
    {
        var config = new LlamaConfig
        {
            Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 16, RopeDim = 16, FfnDim = 128, Vocab = 300, ContextLength = 32,
            RopeStyle = Duet.Tensors.Kernels.RopeStyle.NeoX,
        };
        using var pool = new WorkerPool(2);
        using var model = new TrainingModel(config, 2, 32, pool);
        model.Layout.Load(CanonicalModel.Random(config, 3), model.Parameters);
        var runner = new StepRunner(model, new OptimizerOptions { MaxSteps = 100, WarmupSteps = 2 }, microBatches: 2);
        var rng = new Random(1);
        var inputs = Enumerable.Range(0, 2 * 2 * 32).Select(_ => rng.Next(config.Vocab)).ToArray();
        var targets = Enumerable.Range(0, inputs.Length).Select(i => i % 17 == 0 ? -1 : rng.Next(config.Vocab)).ToArray();
        for (int i = 0; i < 3; i++) runner.Step(inputs, targets);
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
        var config = new LlamaConfig
        {
            Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 16, RopeDim = 16, FfnDim = 128, Vocab = 300, ContextLength = 32,
            RopeStyle = Duet.Tensors.Kernels.RopeStyle.NeoX,
        };
        using var pool = new WorkerPool(2);
        using var model = new TrainingModel(config, 2, 32, pool) { Profile = new StepProfile() };
        model.Layout.Load(CanonicalModel.Random(config, 3), model.Parameters);
        var runner = new StepRunner(model, new OptimizerOptions { MaxSteps = 100, WarmupSteps = 2 }, microBatches: 1);
        var rng = new Random(1);
        var inputs = Enumerable.Range(0, 2 * 32).Select(_ => rng.Next(config.Vocab)).ToArray();
        var targets = Enumerable.Range(0, inputs.Length).Select(_ => rng.Next(config.Vocab)).ToArray();
        for (int i = 0; i < 3; i++) runner.Step(inputs, targets);
        model.Profile.Clear();
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
        Assert.Equal(expected, model.Profile.Parts.Select(x => x.Part));
        Assert.All(model.Profile.Parts, x => Assert.True(x.Milliseconds > 0, $"{x.Part}: {x.Milliseconds} ms"));
        double total = model.Profile.Parts.Sum(x => x.Milliseconds);
        Assert.True(total <= wall, $"the parts add up to {total:F2} ms, more than the {wall:F2} ms the steps took");
    }
}
