// Packed conversations (chat fine-tuning): two conversations in one sequence, with a block-diagonal causal mask and
// RoPE positions restarting at the second, give the same per-token losses and the same gradients as each conversation
// alone at the start of its own sequence (padding after it masked). Independent of the packing code: the model without
// packing is the reference, itself checked against PyTorch (StepTests).
using Duet.Model;
using Duet.Tensors.Parallel;

namespace Duet.Training.Tests;

public class PackingTests
{
    private static readonly LlamaConfig Config = new()
    {
        Dim = 32, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 8, RopeDim = 8, FfnDim = 64, Vocab = 50, ContextLength = 32,
        RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
    };

    [Fact]
    public void Packed_TwoConversations_SameLossesAndGradientsAsAlone()
    {
        const int T = 24, lenA = 10, lenB = 14;
        var rng = new Random(5);
        int[] a = Enumerable.Range(0, lenA + 1).Select(_ => rng.Next(Config.Vocab)).ToArray(), b = Enumerable.Range(0, lenB + 1).Select(_ => rng.Next(Config.Vocab)).ToArray();
        var canonical = CanonicalModel.Random(Config, 3, std: 0.2f);
        using var pool = new WorkerPool(2);

        // Alone: A in sequence 0, B in sequence 1, each from position 0, padded with masked targets.
        using var alone = new TrainingModel(Config, 2, T, pool);
        alone.Layout.Load(canonical, alone.Parameters);
        var inputs = new int[2 * T]; var targets = Enumerable.Repeat(-1, 2 * T).ToArray();
        for (int t = 0; t < lenA; t++) { inputs[t] = a[t]; targets[t] = a[t + 1]; }
        for (int t = 0; t < lenB; t++) { inputs[T + t] = b[t]; targets[T + t] = b[t + 1]; }
        var (sumAlone, countAlone) = alone.Forward(inputs, targets, 2);
        var lossesAlone = alone.RowLosses.ToArray();
        Array.Clear(alone.Gradients);
        alone.Backward(1f);

        // Packed: A then B in one sequence (B's inputs from its first token on, the target at A's end masked).
        using var packed = new TrainingModel(Config, 1, T, pool);
        packed.Layout.Load(canonical, packed.Parameters);
        var pin = new int[T]; var ptg = Enumerable.Repeat(-1, T).ToArray(); var starts = new int[T];
        for (int t = 0; t < lenA; t++) { pin[t] = a[t]; ptg[t] = a[t + 1]; }
        for (int t = 0; t < lenB; t++) { pin[lenA + t] = b[t]; ptg[lenA + t] = b[t + 1]; starts[lenA + t] = lenA; }
        var (sumPacked, countPacked) = packed.Forward(pin, ptg, 1, starts);
        var lossesPacked = packed.RowLosses.ToArray();
        Array.Clear(packed.Gradients);
        packed.Backward(1f);

        Assert.Equal(countAlone, countPacked);
        for (int t = 0; t < lenA; t++) Assert.Equal(lossesAlone[t], lossesPacked[t], 5);
        for (int t = 0; t < lenB; t++) Assert.Equal(lossesAlone[T + t], lossesPacked[lenA + t], 5);
        Assert.Equal(sumAlone, sumPacked, 4);
        double worst = 0;
        foreach (var s in alone.Layout.Slots)
        {
            var ga = alone.Gradients.AsSpan((int)s.Offset, (int)s.Length); var gp = packed.Gradients.AsSpan((int)s.Offset, (int)s.Length);
            double norm = Math.Sqrt(ga.ToArray().Sum(v => (double)v * v)) + 1e-12, diff = 0;
            for (int i = 0; i < ga.Length; i++) diff += Math.Pow(ga[i] - gp[i], 2);
            worst = Math.Max(worst, Math.Sqrt(diff) / norm);
        }
        Assert.True(worst <= 1e-5, $"gradients differ by {worst:E2} relative");

        // Without the starts the second conversation sees the first: the losses differ (the test can fail).
        var (sumUnmasked, _) = packed.Forward(pin, ptg, 1);
        Assert.NotEqual(sumPacked, sumUnmasked, 3);
    }

    [Fact]
    public void Packed_BadStarts_Throw()
    {
        using var pool = new WorkerPool(1);
        using var m = new TrainingModel(Config, 1, 4, pool);
        int[] ids = [1, 2, 3, 4];
        Assert.Throws<ArgumentException>(() => m.Forward(ids, ids, 1, [0, 0, 3, 2]));  // a start after its position's conversation began
        Assert.Throws<ArgumentException>(() => m.Forward(ids, ids, 1, [1, 1, 1, 1]));  // position 0 must start a conversation
        Assert.Throws<ArgumentException>(() => m.Forward(ids, ids, 1, [0, 0]));        // one start per position
    }
}

public class SftPackerTests
{
    private static Sft.SftExample Example(int[] tokens, params int[] trained) =>
        new(tokens, tokens.Select((_, i) => trained.Contains(i)).ToArray(), "x");

    [Fact]
    public void Pack_InOrder_TargetsOnRepliesOnly_StartsPerConversation()
    {
        var a = Example([1, 2, 3, 4], 3);          // 3 positions; token 4 is a reply token (predicted at position 2)
        var b = Example([5, 6, 7], 1, 2);           // 2 positions
        var c = Example([8, 9, 10, 11, 12, 13], 5); // 5 positions: does not fit after a and b in 6, starts a new sequence
        var seqs = Sft.SftPacker.Pack([a, b, c], 6, out int truncated);
        Assert.Equal(0, truncated);
        Assert.Equal(2, seqs.Count);
        Assert.Equal([1, 2, 3, 5, 6, 0], seqs[0].Inputs);
        Assert.Equal([-1, -1, 4, 6, 7, -1], seqs[0].Targets);
        Assert.Equal([0, 0, 0, 3, 3, 5], seqs[0].Starts);
        Assert.Equal([8, 9, 10, 11, 12, 0], seqs[1].Inputs);
        Assert.Equal([-1, -1, -1, -1, 13, -1], seqs[1].Targets);
        Assert.Equal([0, 0, 0, 0, 0, 5], seqs[1].Starts);
        Assert.Equal(3, seqs[0].TrainTokens);
    }

    [Fact]
    public void Pack_LongerThanASequence_IsCutAndCounted()
    {
        var seqs = Sft.SftPacker.Pack([Example(Enumerable.Range(1, 10).ToArray(), 9)], 4, out int truncated);
        Assert.Equal(1, truncated);
        Assert.Equal([1, 2, 3, 4], Assert.Single(seqs).Inputs);
        Assert.Equal([-1, -1, -1, -1], seqs[0].Targets); // the reply token fell past the cut
    }
}
