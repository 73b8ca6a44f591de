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
}
