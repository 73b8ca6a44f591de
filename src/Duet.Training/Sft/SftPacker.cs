// Chat examples packed into fixed-length training sequences: conversations one after another (in order; a
// conversation that does not fit in what is left of a sequence starts the next), each with its own positions and an
// attention that does not cross into its neighbours (TrainingModel's starts), the loss only on its reply tokens. A
// conversation longer than a sequence is cut to its first SeqLen + 1 tokens (counted, so the caller can say so).
// Padding at a sequence's end is token 0 with no loss, a conversation of its own.
namespace Duet.Training.Sft;

/// <summary>One training sequence: inputs, targets (−1: no loss), and per position the start of its conversation.</summary>
public sealed record PackedSequence(int[] Inputs, int[] Targets, int[] Starts)
{
    public int TrainTokens => Targets.Count(t => t >= 0);
}

public static class SftPacker
{
    /// <summary>Packs the examples into sequences of <paramref name="seqLen"/> positions; <paramref name="truncated"/> counts those cut.</summary>
    public static List<PackedSequence> Pack(IEnumerable<SftExample> examples, int seqLen, out int truncated)
    {
        if (seqLen < 2) throw new ArgumentOutOfRangeException(nameof(seqLen), "a sequence needs at least 2 positions");
        truncated = 0;
        var sequences = new List<PackedSequence>();
        var inputs = new List<int>(seqLen); var targets = new List<int>(seqLen); var starts = new List<int>(seqLen);
        void Flush()
        {
            if (inputs.Count == 0) return;
            int pad = inputs.Count;
            while (inputs.Count < seqLen) { inputs.Add(0); targets.Add(-1); starts.Add(pad); }
            sequences.Add(new PackedSequence(inputs.ToArray(), targets.ToArray(), starts.ToArray()));
            inputs.Clear(); targets.Clear(); starts.Clear();
        }
        foreach (var e in examples)
        {
            int n = e.Tokens.Length - 1; // positions: each token but the last is an input predicting the next
            if (n < 1) continue;
            if (n > seqLen) { n = seqLen; truncated++; }
            if (inputs.Count + n > seqLen) Flush();
            int start = inputs.Count;
            for (int i = 0; i < n; i++)
            {
                inputs.Add(e.Tokens[i]);
                targets.Add(e.Train[i + 1] ? e.Tokens[i + 1] : -1);
                starts.Add(start);
            }
        }
        Flush();
        return sequences;
    }
}
