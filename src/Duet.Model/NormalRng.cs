// The portable random numbers of Duet: random model weights (CanonicalModel.Random, ParameterLayout.Initialize) and
// the sampler's draws come from this generator, so a seed gives the same model and the same text on every machine
// and runtime (System.Random's algorithm is not promised across .NET versions).
namespace Duet.Model;

/// <summary>Portable seeded normal deviates: SplitMix64 uniforms, Box-Muller (the same numbers on every machine and runtime).</summary>
public sealed class NormalRng(ulong seed)
{
    private ulong _state = seed;
    private float? _spare;

    /// <summary>The next SplitMix64 output.</summary>
    public ulong NextUInt64() => Mix(_state += 0x9E3779B97F4A7C15UL);

    /// <summary>
    /// SplitMix64's output function on its own: a stateless hash of x (for values that must be a function of their
    /// indices, such as noise a resumed run draws again, or a shipped file's shuffles).
    /// </summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Fisher-Yates with this generator's numbers: the same order on every machine and runtime.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = (int)(NextUInt64() % (ulong)(i + 1));
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>Uniform in (0, 1].</summary>
    public double NextDouble() => ((NextUInt64() >> 11) + 1) * (1.0 / (1UL << 53));

    /// <summary>A standard normal deviate (mean 0, variance 1); Box-Muller makes them in pairs, the second is kept for the next call.</summary>
    public float Next()
    {
        if (_spare is float s) { _spare = null; return s; }
        double u1 = NextDouble(), u2 = NextDouble();
        double r = Math.Sqrt(-2 * Math.Log(u1)), th = 2 * Math.PI * u2;
        _spare = (float)(r * Math.Sin(th));
        return (float)(r * Math.Cos(th));
    }
}
