// The hot-path promise of the engine: a decode step allocates nothing once warm (buffers, thread-static job
// state and the worker pool's operator boxes are made on the first calls). Counted on the calling thread, which
// runs its share of every parallel job, around 100 steps, for each weight format.
using Duet.Model;
using Duet.Tensors;
using Duet.Tensors.Parallel;

namespace Duet.Inference.Tests;

public class AllocationTests
{
    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_K)]
    public void DecodeStep_AfterWarmUp_AllocatesNothing(GgmlType type)
    {
        using var files = new TinyModelFile();
        var config = TinyModelFile.Config(dim: type == GgmlType.Q4_K ? 256 : 64) with { ContextLength = 256 };
        using var m = LlamaModel.Load(files.Write(type, config));
        using var pool = new WorkerPool(2);
        m.Pool = pool;
        var s = m.CreateState(256);
        var rows = m.CreateState(256);
        var scratch = m.CreateState(1);
        var states = new[] { rows };
        var token = new int[1];
        int[] logitRow = [0];
        var logits = new float[m.Config.Vocab];
        void Step(int i)
        {
            m.Forward(s, i % m.Config.Vocab);                                         // duet generate, bench
            token[0] = i % m.Config.Vocab;
            m.ForwardRows(scratch, states, token, logitRow, logits, invariant: true); // the engine's decode row
        }
        for (int i = 0; i < 40; i++) Step(i); // past the JIT's tier-up (30 calls), so later steps run the final code
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 40; i < 140; i++) Step(i);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated == 0, $"{type}: 100 decode steps allocated {allocated} bytes");
    }
}
