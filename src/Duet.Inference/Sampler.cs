// Sampling as a chain of small steps over the candidate list, in llama.cpp's default order:
//   penalties (repeat, presence, frequency) -> top-k -> top-p -> min-p -> temperature -> draw.
// Temperature 0 is greedy (argmax, ties to the lowest id) after the penalties, and ignores the rest. The RNG is seeded and
// portable, so a seed reproduces a generation on any machine. No allocation per token.
using Duet.Model;

namespace Duet.Inference;

public sealed record SamplingOptions
{
    public float Temperature { get; init; } = 0.8f;
    public int TopK { get; init; } = 40;
    public float TopP { get; init; } = 0.95f;
    public float MinP { get; init; } = 0.05f;
    public float RepeatPenalty { get; init; } = 1.0f;
    public int RepeatLastN { get; init; } = 64;
    public float PresencePenalty { get; init; }
    public float FrequencyPenalty { get; init; }
    public ulong Seed { get; init; } = 0x5EED;

    public static SamplingOptions Greedy => new() { Temperature = 0 };

    public void Validate()
    {
        if (!(Temperature >= 0)) throw new ArgumentException($"temperature {Temperature} must be >= 0");
        if (TopK < 0) throw new ArgumentException($"top-k {TopK} must be >= 0 (0 disables it)");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p {TopP} must be in (0, 1]");
        if (!(MinP >= 0 && MinP < 1)) throw new ArgumentException($"min-p {MinP} must be in [0, 1)");
        if (!(RepeatPenalty > 0)) throw new ArgumentException($"repeat penalty {RepeatPenalty} must be > 0");
    }
}

public sealed class Sampler
{
    private readonly SamplingOptions _o;
    private readonly NormalRng _rng;
    private readonly int[] _ids;
    private readonly float[] _values;
    private readonly Dictionary<int, int> _counts = new();

    public Sampler(int vocab, SamplingOptions options)
    {
        options.Validate();
        _o = options;
        _rng = new NormalRng(options.Seed);
        _ids = new int[vocab];
        _values = new float[vocab];
    }

    /// <summary>Picks the next token from <paramref name="logits"/>, given the tokens so far.</summary>
    public int Sample(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        int n = logits.Length;
        bool penalties = _o.RepeatPenalty != 1 || _o.PresencePenalty != 0 || _o.FrequencyPenalty != 0;
        if (_o.Temperature == 0 && !penalties) return Argmax(logits);
        for (int i = 0; i < n; i++) { _ids[i] = i; _values[i] = logits[i]; }
        ApplyPenalties(history, n);
        if (_o.Temperature == 0) return Argmax(_values.AsSpan(0, n)); // greedy over the penalized logits
        int count = n;
        count = TopK(count);
        count = TopP(count);
        count = MinP(count);
        return Draw(count);
    }

    public static int Argmax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    // llama.cpp penalties: repeat divides positive logits (multiplies negative), presence subtracts once,
    // frequency subtracts per occurrence, over the last RepeatLastN tokens.
    private void ApplyPenalties(ReadOnlySpan<int> history, int n)
    {
        if (_o.RepeatPenalty == 1 && _o.PresencePenalty == 0 && _o.FrequencyPenalty == 0) return;
        _counts.Clear();
        var recent = history.Length > _o.RepeatLastN ? history[^_o.RepeatLastN..] : history;
        foreach (int t in recent) if ((uint)t < (uint)n) _counts[t] = _counts.GetValueOrDefault(t) + 1;
        foreach (var (t, c) in _counts)
        {
            float v = _values[t];
            v = v > 0 ? v / _o.RepeatPenalty : v * _o.RepeatPenalty;
            _values[t] = v - c * _o.FrequencyPenalty - _o.PresencePenalty;
        }
    }

    private static readonly Comparer<float> s_descending = Comparer<float>.Create((a, b) => b.CompareTo(a));

    // Keeps the k most likely, sorted descending (top-p and min-p need them sorted). With a small k, a
    // quickselect moves them to the front first, so only k values are sorted, not the whole vocabulary.
    private int TopK(int count)
    {
        int k = _o.TopK <= 0 || _o.TopK > count ? count : _o.TopK;
        if (k < count) SelectLargest(k, count);
        Array.Sort(_values, _ids, 0, k, s_descending);
        return k;
    }

    // Hoare-style quickselect on (_values, _ids): afterwards the k largest values are in [0, k), in any order.
    private void SelectLargest(int k, int count)
    {
        int lo = 0, hi = count - 1;
        while (lo < hi)
        {
            float pivot = _values[(lo + hi) >>> 1];
            int i = lo, j = hi;
            while (i <= j)
            {
                while (_values[i] > pivot) i++;
                while (_values[j] < pivot) j--;
                if (i <= j)
                {
                    (_values[i], _values[j]) = (_values[j], _values[i]);
                    (_ids[i], _ids[j]) = (_ids[j], _ids[i]);
                    i++; j--;
                }
            }
            if (k - 1 <= j) hi = j;
            else if (k - 1 >= i) lo = i;
            else return;
        }
    }


    private int TopP(int count)
    {
        if (_o.TopP >= 1) return count;
        float max = _values[0];
        double sum = 0;
        for (int i = 0; i < count; i++) sum += Math.Exp(_values[i] - max);
        double cum = 0;
        for (int i = 0; i < count; i++)
        {
            cum += Math.Exp(_values[i] - max) / sum;
            if (cum >= _o.TopP) return i + 1;
        }
        return count;
    }

    // Keeps tokens whose probability is at least MinP times the top token's: logit >= max + ln(MinP).
    private int MinP(int count)
    {
        if (_o.MinP <= 0) return count;
        float bound = _values[0] + MathF.Log(_o.MinP);
        int keep = 1;
        while (keep < count && _values[keep] >= bound) keep++;
        return keep;
    }

    private int Draw(int count)
    {
        float t = _o.Temperature, max = _values[0];
        double sum = 0;
        for (int i = 0; i < count; i++) sum += Math.Exp((_values[i] - max) / t);
        double u = _rng.NextDouble() * sum, acc = 0;
        for (int i = 0; i < count; i++)
        {
            acc += Math.Exp((_values[i] - max) / t);
            if (u <= acc) return _ids[i];
        }
        return _ids[count - 1];
    }
}
