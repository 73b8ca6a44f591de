// The sampler chain on 4-token distributions worked out by hand.
namespace Duet.Inference.Tests;

public class SamplerTests
{
    // logits ln(0.5), ln(0.25), ln(0.15), ln(0.1): probabilities 0.5, 0.25, 0.15, 0.1 in id order 2, 0, 3, 1.
    private static readonly float[] Logits = [MathF.Log(0.25f), MathF.Log(0.1f), MathF.Log(0.5f), MathF.Log(0.15f)];

    private static Dictionary<int, double> Frequencies(SamplingOptions o, int draws = 20000, int[]? history = null)
    {
        var s = new Sampler(4, o);
        var counts = new Dictionary<int, double>();
        for (int i = 0; i < draws; i++)
        {
            int t = s.Sample(Logits, history ?? []);
            counts[t] = counts.GetValueOrDefault(t) + 1.0 / draws;
        }
        return counts;
    }

    [Fact]
    public void Sample_TemperatureZero_IsArgmax() => Assert.Equal(2, new Sampler(4, SamplingOptions.Greedy).Sample(Logits, []));

    [Fact]
    public void Sample_TemperatureOne_FollowsTheDistribution()
    {
        var f = Frequencies(new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0 });
        Assert.Equal(0.5, f[2], 0.02); Assert.Equal(0.25, f[0], 0.02); Assert.Equal(0.15, f[3], 0.02); Assert.Equal(0.1, f[1], 0.02);
    }

    [Fact]
    public void Sample_TopK2_KeepsTheTwoMostLikelyRenormalized()
    {
        var f = Frequencies(new SamplingOptions { Temperature = 1, TopK = 2, TopP = 1, MinP = 0 });
        Assert.Equal([0, 2], f.Keys.Order());
        Assert.Equal(0.5 / 0.75, f[2], 0.02);
    }

    [Fact]
    public void Sample_TopP_KeepsTheSmallestSetReachingP()
    {
        // 0.5 + 0.25 = 0.75 >= 0.7: ids 2 and 0 only.
        var f = Frequencies(new SamplingOptions { Temperature = 1, TopK = 0, TopP = 0.7f, MinP = 0 });
        Assert.Equal([0, 2], f.Keys.Order());
    }

    [Fact]
    public void Sample_MinP_DropsTokensBelowAFractionOfTheTop()
    {
        // min-p 0.25: p >= 0.125 stays (0.5, 0.25, 0.15); 0.1 goes.
        var f = Frequencies(new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0.25f });
        Assert.Equal([0, 2, 3], f.Keys.Order());
        Assert.Equal(0.15 / 0.9, f[3], 0.02);
    }

    [Fact]
    public void Sample_RepeatPenalty_LowersRecentTokens()
    {
        // Penalty 100 on id 2 (logit ln 0.5 < 0 is multiplied): it becomes all but impossible; greedy then takes id 0.
        var s = new Sampler(4, new SamplingOptions { Temperature = 0.0001f, TopK = 0, TopP = 1, MinP = 0, RepeatPenalty = 100 });
        Assert.Equal(0, s.Sample(Logits, [2, 2]));
    }

    [Fact]
    public void Sample_TopK_OnALargeVocabulary_KeepsExactlyTheKLargest()
    {
        // 5000 logits with many ties; top-k 7 with a tiny temperature only ever returns one of the 7 largest.
        var rng = new Random(3);
        var logits = Enumerable.Range(0, 5000).Select(_ => (float)rng.Next(0, 400)).ToArray();
        var top = logits.Select((v, i) => (v, i)).OrderByDescending(p => p.v).ThenBy(p => p.i).Take(7).Select(p => p.v).Min();
        var s = new Sampler(5000, new SamplingOptions { Temperature = 50f, TopK = 7, TopP = 1, MinP = 0 });
        for (int i = 0; i < 300; i++) Assert.True(logits[s.Sample(logits, [])] >= top);
    }

    [Fact]
    public void Sample_SameSeed_SameSequence()
    {
        var o = new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = 42 };
        var a = new Sampler(4, o); var b = new Sampler(4, o);
        for (int i = 0; i < 100; i++) Assert.Equal(a.Sample(Logits, []), b.Sample(Logits, []));
    }

    [Fact]
    public void Options_Invalid_AreRejected()
    {
        Assert.Throws<ArgumentException>(() => new Sampler(4, new SamplingOptions { TopP = 0 }));
        Assert.Throws<ArgumentException>(() => new Sampler(4, new SamplingOptions { Temperature = -1 }));
        Assert.Throws<ArgumentException>(() => new Sampler(4, new SamplingOptions { MinP = 1 }));
    }
}
