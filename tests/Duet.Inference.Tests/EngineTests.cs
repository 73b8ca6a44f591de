// Continuous batching: rows of several sequences in one forward pass, and the engine that schedules them.
// The reference for a batched sequence is the same sequence run alone, token by token, through
// LlamaModel.Forward: with the batch-invariant kernels the logits must be the same bits.
using Duet.Inference.Serving;
using Duet.Model;
using Duet.Tensors;
using Duet.Tokenizers;
using Duet.Tokenizers.Trainer;

namespace Duet.Inference.Tests;

public sealed class TinyModelFile : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-engine-").FullName;

    public static LlamaConfig Config(int dim = 64, int vocab = 300) => new()
    {
        Dim = dim, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = dim / 4, RopeDim = dim / 4, FfnDim = 2 * dim, Vocab = vocab, ContextLength = 128,
        RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
    };

    public string Write(GgmlType type, LlamaConfig? config = null, Tokenizer? tokenizer = null, ulong seed = 7)
    {
        var path = Path.Combine(_dir, $"m-{type}-{seed}.gguf");
        ModelPackage.WriteGguf(CanonicalModel.Random(config ?? Config(), seed, tokenizer, std: 0.3f), path, type);
        return path;
    }

    public void Dispose() => Directory.Delete(_dir, true);
}

public class EngineTests
{
    // The sequence alone, one token per step, with the batch-invariant kernels; checked against Forward (the
    // single-token decode path, whose float dot products sum in another order) within float rounding.
    private static float[] ForwardAlone(LlamaModel m, int[] tokens)
    {
        var s = m.CreateState(64);
        var logits = new float[m.Config.Vocab];
        foreach (int t in tokens) m.ForwardRows(s, [s], [t], [0], logits, invariant: true);
        var r = m.CreateState(64);
        foreach (int t in tokens) m.Forward(r, t);
        Assert.True(logits.Zip(r.Logits).Max(p => Math.Abs(p.First - p.Second)) < 1e-4f);
        return logits;
    }

    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_K)]
    public void ForwardRows_ThreeSequencesInvariant_SameBitsAsEachAlone(GgmlType type)
    {
        using var files = new TinyModelFile();
        var config = type == GgmlType.Q4_K ? TinyModelFile.Config(dim: 256) : TinyModelFile.Config();
        using var m = LlamaModel.Load(files.Write(type, config));
        int[] a = [1, 5, 9, 200, 17, 3], b = [2, 8, 8, 8], c = [299, 0, 42, 42, 7, 7, 7, 11];
        var sa = m.CreateState(64); var sb = m.CreateState(64); var sc = m.CreateState(64);
        var scratch = m.CreateState(1);
        int v = m.Config.Vocab;
        // Step 1: the prompts of a and b as chunks, c's first token; step 2..: one token each, in a changing mix.
        var logits = new float[3 * v];
        m.ForwardRows(scratch, [sa, sa, sa, sb, sb, sc], [a[0], a[1], a[2], b[0], b[1], c[0]], [2, 4, 5], logits, invariant: true);
        m.ForwardRows(scratch, [sc, sa], [c[1], a[3]], [0, 1], logits, invariant: true);
        m.ForwardRows(scratch, [sb, sb, sc, sa, sa], [b[2], b[3], c[2], a[4], a[5]], [1, 2, 4], logits, invariant: true);
        Assert.Equal(ForwardAlone(m, b), logits.AsSpan(0, v).ToArray());
        Assert.Equal(ForwardAlone(m, c[..3]), logits.AsSpan(v, v).ToArray());
        Assert.Equal(ForwardAlone(m, a), logits.AsSpan(2 * v, v).ToArray());
        Assert.Equal([a.Length, b.Length, 3], new[] { sa.Length, sb.Length, sc.Length });
    }

    [Fact]
    public void ForwardRows_SplitSequence_Throws()
    {
        using var files = new TinyModelFile();
        using var m = LlamaModel.Load(files.Write(GgmlType.F32));
        var sa = m.CreateState(8); var sb = m.CreateState(8);
        Assert.Throws<ArgumentException>(() => m.ForwardRows(sa, [sa, sb, sa], [1, 2, 3], [], []));
        var full = m.CreateState(2);
        Assert.Throws<InvalidOperationException>(() => m.ForwardRows(full, [full, full, full], [1, 2, 3], [], []));
    }

    [Fact]
    public void Prefill_AllLogits_LastRowInStateLogits()
    {
        using var files = new TinyModelFile();
        using var m = LlamaModel.Load(files.Write(GgmlType.Q8_0));
        var ids = Enumerable.Range(0, 40).Select(i => (i * 37) % 300).ToArray();
        var all = new float[ids.Length * m.Config.Vocab];
        var s = m.CreateState(64);
        m.Prefill(s, ids, all);
        var s2 = m.CreateState(64);
        m.Prefill(s2, ids);
        // The fast (not invariant) kernels: batched and single-row sums are ordered differently, so close, not equal.
        var last = all.AsSpan((ids.Length - 1) * m.Config.Vocab).ToArray();
        Assert.True(last.Zip(s2.Logits).Max(p => Math.Abs(p.First - p.Second)) < 1e-3f);
        Assert.Equal(last, s.Logits);
        Assert.Equal(ids.Length, s.Length);
    }

    internal static Tokenizer SmallTokenizer()
    {
        var trainer = new BpeTrainer(new BpeTrainerOptions { VocabSize = 400 });
        trainer.AddText("Debian is a free operating system. 自由的操作系统。 The quick brown fox jumps over the lazy dog. 你好，世界！");
        return trainer.Train();
    }

    private static (LlamaModel, Tokenizer, TinyModelFile) EngineModel(GgmlType type = GgmlType.Q8_0)
    {
        var files = new TinyModelFile();
        var tok = SmallTokenizer();
        var model = LlamaModel.Load(files.Write(type, TinyModelFile.Config(vocab: tok.VocabSize), tok));
        return (model, tok, files);
    }

    private static int[] Tokens(GenerationStream s) => s.ReadAllAsync().GetAwaiter().GetResult().Tokens.Select(t => t.Token).ToArray();

    [Fact]
    public void Submit_ConcurrentGreedyRequests_SameTokensAsEachAlone()
    {
        var (m, tok, files) = EngineModel();
        using var _ = files;
        using var __ = m;
        var prompts = Enumerable.Range(0, 7).Select(i => tok.Encode($"Debian {i} 自由 the fox {new string('x', i)}")).ToArray();
        GenerationRequest Req(int[] p) => new() { Prompt = p, MaxTokens = 12 + p.Length % 5, Sampling = SamplingOptions.Greedy, IgnoreEos = true };
        var alone = new List<int[]>();
        using (var e = new InferenceEngine(m, tok, new EngineOptions { Slots = 1, Context = 64 }))
            foreach (var p in prompts) alone.Add(Tokens(e.Submit(Req(p))));
        using (var e = new InferenceEngine(m, tok, new EngineOptions { Slots = 4, Context = 64 }))
        {
            var streams = prompts.Select(p => e.Submit(Req(p))).ToArray();  // 7 requests, 4 slots: some wait in the queue
            for (int i = 0; i < prompts.Length; i++) Assert.Equal(alone[i], Tokens(streams[i]));
            Assert.True(e.Metrics.StepsTotal < alone.Sum(a => a.Length), "requests were not batched together");
            Assert.Equal(0, e.Metrics.BusySlotCount);
        }
    }

    [Fact]
    public async Task Submit_SharedPrefix_ReusesCacheWithSameTokens()
    {
        var (m, tok, files) = EngineModel();
        using var _ = files;
        using var __ = m;
        using var e = new InferenceEngine(m, tok, new EngineOptions { Slots = 2, Context = 96 });
        var first = tok.Encode("The quick brown fox jumps over the lazy dog. Debian is");
        var second = tok.Encode("The quick brown fox jumps over the lazy dog. 你好");
        var r1 = await e.Submit(new GenerationRequest { Prompt = first, MaxTokens = 5, Sampling = SamplingOptions.Greedy }).ReadAllAsync();
        var r2 = await e.Submit(new GenerationRequest { Prompt = second, MaxTokens = 5, Sampling = SamplingOptions.Greedy }).ReadAllAsync();
        int common = first.Zip(second).TakeWhile(p => p.First == p.Second).Count();
        Assert.Equal(0, r1.Result.CachedTokens);
        Assert.Equal(common, r2.Result.CachedTokens);
        using var fresh = new InferenceEngine(m, tok, new EngineOptions { Slots = 1, Context = 96 });
        var r3 = await fresh.Submit(new GenerationRequest { Prompt = second, MaxTokens = 5, Sampling = SamplingOptions.Greedy }).ReadAllAsync();
        Assert.Equal(r3.Tokens.Select(t => t.Token), r2.Tokens.Select(t => t.Token));
        // The same prompt again: all but the last token come from the cache.
        var r4 = await e.Submit(new GenerationRequest { Prompt = second, MaxTokens = 5, Sampling = SamplingOptions.Greedy }).ReadAllAsync();
        Assert.Equal(second.Length - 1, r4.Result.CachedTokens);
        Assert.Equal(r3.Text, r4.Text);
    }

    [Fact]
    public async Task Submit_CancelledMidStream_FreesSlotAtOnce()
    {
        var (m, tok, files) = EngineModel();
        using var _ = files;
        using var __ = m;
        using var e = new InferenceEngine(m, tok, new EngineOptions { Slots = 1, Context = 128 });
        using var cts = new CancellationTokenSource();
        var s = e.Submit(new GenerationRequest { Prompt = tok.Encode("Debian"), MaxTokens = 120, IgnoreEos = true }, cts.Token);
        await s.Tokens.ReadAsync();
        Assert.Equal(1, e.Metrics.BusySlotCount);
        var queued = e.Submit(new GenerationRequest { Prompt = tok.Encode("fox"), MaxTokens = 3, Sampling = SamplingOptions.Greedy, IgnoreEos = true });
        cts.Cancel();
        var result = await s.Result.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(FinishReason.Cancelled, result.Reason);
        Assert.True(result.CompletionTokens < 120);
        var next = await queued.ReadAllAsync().WaitAsync(TimeSpan.FromSeconds(10));   // the waiting request got the slot
        Assert.Equal(3, next.Result.CompletionTokens);
        Assert.Equal(0, e.Metrics.BusySlotCount);
        Assert.Equal(1, e.Metrics.RequestsCancelledTotal);
    }

    [Fact]
    public async Task Submit_StopString_EndsBeforeItAndHidesIt()
    {
        var (m, tok, files) = EngineModel();
        using var _ = files;
        using var __ = m;
        using var e = new InferenceEngine(m, tok, new EngineOptions { Slots = 1, Context = 64 });
        var p = tok.Encode("Debian");
        var full = (await e.Submit(new GenerationRequest { Prompt = p, MaxTokens = 20, Sampling = SamplingOptions.Greedy, IgnoreEos = true }).ReadAllAsync()).Text;
        Assert.True(full.Length >= 6, full);
        string stop = full.Substring(3, 2);
        var cut = await e.Submit(new GenerationRequest { Prompt = p, MaxTokens = 20, Sampling = SamplingOptions.Greedy, IgnoreEos = true, Stop = [stop] }).ReadAllAsync();
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], cut.Text);
        Assert.Equal(FinishReason.Stop, cut.Result.Reason);
    }

    [Fact]
    public void Submit_LogitBias_BansAndForces()
    {
        var (m, tok, files) = EngineModel();
        using var _ = files;
        using var __ = m;
        using var e = new InferenceEngine(m, tok, new EngineOptions { Slots = 1, Context = 64 });
        var p = tok.Encode("Debian");
        var free = Tokens(e.Submit(new GenerationRequest { Prompt = p, MaxTokens = 6, Sampling = SamplingOptions.Greedy, IgnoreEos = true }));
        var banned = Tokens(e.Submit(new GenerationRequest
        {
            Prompt = p, MaxTokens = 6, Sampling = SamplingOptions.Greedy, IgnoreEos = true,
            LogitBias = free.Distinct().ToDictionary(t => t, _ => float.NegativeInfinity),
        }));
        Assert.Empty(banned.Intersect(free));
        var forced = Tokens(e.Submit(new GenerationRequest { Prompt = p, MaxTokens = 4, IgnoreEos = true, LogitBias = new Dictionary<int, float> { [77] = 1e4f } }));
        Assert.All(forced, t => Assert.Equal(77, t));
    }

    [Fact]
    public async Task Submit_TopLogprobs_AreLogSoftmaxOfTheLogits()
    {
        var (m, tok, files) = EngineModel(GgmlType.F32);
        using var _ = files;
        using var __ = m;
        using var e = new InferenceEngine(m, tok, new EngineOptions { Slots = 1, Context = 64 });
        var p = tok.Encode("fox");
        var r = await e.Submit(new GenerationRequest { Prompt = p, MaxTokens = 1, Sampling = SamplingOptions.Greedy, TopLogprobs = 3, IgnoreEos = true }).ReadAllAsync();
        var s = m.CreateState(64);
        foreach (int t in p) m.Forward(s, t);
        foreach (int t in e.StopTokens) s.Logits[t] = float.NegativeInfinity;
        double max = s.Logits.Max(), lse = max + Math.Log(s.Logits.Sum(v => Math.Exp(v - max)));
        var expected = s.Logits.Select((v, i) => (i, lp: v - lse)).OrderByDescending(x => x.lp).Take(3).ToArray();
        var g = r.Tokens.Single();
        Assert.Equal(expected[0].i, g.Token);
        Assert.Equal(expected[0].lp, g.Logprob, 4);
        Assert.Equal(expected.Select(x => x.i), g.TopLogprobs!.Select(x => x.Token));
        for (int i = 0; i < 3; i++) Assert.Equal(expected[i].lp, g.TopLogprobs![i].Logprob, 4);
    }

    [Fact]
    public void Submit_BadRequests_Throw()
    {
        var (m, tok, files) = EngineModel();
        using var _ = files;
        using var __ = m;
        using var e = new InferenceEngine(m, tok, new EngineOptions { Slots = 1, Context = 16, MaxQueue = 2 });
        Assert.Throws<ArgumentException>(() => e.Submit(new GenerationRequest { Prompt = [], MaxTokens = 1 }));
        Assert.Throws<ArgumentException>(() => e.Submit(new GenerationRequest { Prompt = new int[16], MaxTokens = 1 }));
        Assert.Throws<ArgumentException>(() => e.Submit(new GenerationRequest { Prompt = [1], MaxTokens = 0 }));
        Assert.Throws<ArgumentException>(() => e.Submit(new GenerationRequest { Prompt = [100000], MaxTokens = 1 }));
        Assert.Throws<ArgumentException>(() => new InferenceEngine(m, tok, new EngineOptions { Slots = 0 }));
        Assert.Throws<ArgumentException>(() => new InferenceEngine(m, tok, new EngineOptions { Context = 100000 }));
    }

    [Fact]
    public async Task EmbedAsync_SameTextSameVector_UnitLength()
    {
        var (m, tok, files) = EngineModel();
        using var _ = files;
        using var __ = m;
        using var e = new InferenceEngine(m, tok, new EngineOptions { Slots = 1, Context = 64 });
        var a = await e.EmbedAsync(tok.Encode("Debian is free"));
        var b = await e.EmbedAsync(tok.Encode("Debian is free"));
        var c = await e.EmbedAsync(tok.Encode("你好，世界"));
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.Equal(1.0, Math.Sqrt(a.Sum(v => (double)v * v)), 5);
        Assert.Equal(m.Config.Dim, a.Length);
    }
}

public class StopStringsTests
{
    [Fact]
    public void Push_StopAcrossPieces_HoldsBackThenCuts()
    {
        var s = new StopStrings(["</a>"]);
        Assert.Equal("hello ", s.Push("hello <"));
        Assert.Equal("", s.Push("/"));
        Assert.Equal("", s.Push("a>tail"));
        Assert.True(s.Stopped);
        Assert.Equal("", s.Flush());
    }

    [Fact]
    public void Push_FalseStart_IsReleased()
    {
        var s = new StopStrings(["STOP", "xyz"]);
        Assert.Equal("ab", s.Push("abST"));
        Assert.Equal("ST", s.Push("x"));
        Assert.Equal("", s.Push("y"));
        Assert.Equal("xy", s.Flush());
        Assert.False(s.Stopped);
    }

    [Fact]
    public void Push_NoStops_PassesThrough()
    {
        var s = new StopStrings([]);
        Assert.Equal("abc", s.Push("abc"));
        Assert.Equal("", s.Flush());
    }

    [Fact]
    public void Push_EarliestOfSeveral_Wins()
    {
        var s = new StopStrings(["world", "lo w"]);
        Assert.Equal("hel", s.Push("hello world"));
    }
}
