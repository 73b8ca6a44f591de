// KL divergence against a base file in llama-perplexity's --kl-divergence-base format: the file's layout, its
// compressed log-probabilities against the exact ones, and the statistics against a float64 computation from both
// models' own logits (independent of the file's compression and of the code under test's loop). Reading a base
// written by llama-perplexity, and the agreement with llama-perplexity's statistics, are checked beside llama.cpp
// (bench/kld_llamacpp.sh, docs/eval.md).
using Duet.Model;
using Duet.Tensors;

namespace Duet.Eval.Tests;

public sealed class KlDivergenceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("duet-kld-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly LlamaConfig Config = new()
    {
        Dim = 64, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 16, RopeDim = 16, FfnDim = 128, Vocab = 300, ContextLength = 64,
        RopeStyle = Tensors.Kernels.RopeStyle.NeoX,
    };

    private (string Base, string Quant) Models()
    {
        var m = CanonicalModel.Random(Config, 9, std: 0.3f);
        string b = Path.Combine(_dir, "f32.gguf"), q = Path.Combine(_dir, "q4_0.gguf");
        ModelPackage.WriteGguf(m, b, GgmlType.F32);
        ModelPackage.WriteGguf(m, q, GgmlType.Q4_0);
        return (b, q);
    }

    private static int[] Ids(int n) { var rng = new Random(4); return Enumerable.Range(0, n).Select(_ => rng.Next(Config.Vocab)).ToArray(); }

    private static double[] LogSoftmax(float[,] logits, int row)
    {
        int v = logits.GetLength(1);
        double max = double.NegativeInfinity;
        for (int i = 0; i < v; i++) max = Math.Max(max, logits[row, i]);
        double s = 0;
        for (int i = 0; i < v; i++) s += Math.Exp(logits[row, i] - max);
        var r = new double[v];
        for (int i = 0; i < v; i++) r[i] = logits[row, i] - max - Math.Log(s);
        return r;
    }

    [Fact]
    public void SaveBase_Layout_AndLogProbsWithinTheirQuantizationStep()
    {
        var (basePath, _) = Models();
        using var model = LlamaModel.Load(basePath);
        const int ctx = 32, bos = 1;
        var ids = Ids(3 * ctx + 5);
        string file = Path.Combine(_dir, "base.kld");
        var r = WriteBase(model, ids, bos, ctx, file);
        var (c, v, chunks, tokens) = KlDivergence.ReadHeader(file);
        Assert.Equal((ctx, Config.Vocab, 3), (c, v, chunks));
        Assert.Equal(ids[..(3 * ctx)], tokens); // the text's tokens, before BOS takes each chunk's first place
        int nv = 2 * ((Config.Vocab + 1) / 2) + 4, scored = ctx - 1 - ctx / 2;
        var bytes = File.ReadAllBytes(file);
        Assert.Equal(20 + 3 * ctx * 4 + 3 * scored * nv * 2, bytes.Length);
        Assert.Equal("_logits_"u8.ToArray(), bytes[..8]);
        for (int chunk = 0; chunk < 3; chunk++)
        {
            var input = ids.AsSpan(chunk * ctx, ctx).ToArray();
            input[0] = bos;
            var logits = model.LogitsOf(input);
            for (int j = ctx / 2; j < ctx - 1; j++)
            {
                int at = 20 + 3 * ctx * 4 + ((chunk * scored) + j - ctx / 2) * nv * 2;
                float scale = BitConverter.ToSingle(bytes, at), minLogProb = BitConverter.ToSingle(bytes, at + 4);
                var exact = LogSoftmax(logits, j);
                double top = exact.Max();
                for (int i = 0; i < Config.Vocab; i++)
                {
                    double got = scale * BitConverter.ToUInt16(bytes, at + 8 + 2 * i) + minLogProb;
                    if (exact[i] > top - 16) Assert.True(Math.Abs(got - exact[i]) <= scale * 0.51 + 1e-4, $"chunk {chunk} position {j} token {i}: {got} vs {exact[i]}");
                    else Assert.True(got <= top - 15.99, $"below the clip: {got}");
                }
            }
        }
        Assert.Equal(3 * scored, r.ScoredTokens);
    }

    private static PerplexityResult WriteBase(LlamaModel model, int[] ids, int bos, int ctx, string file) =>
        KlDivergence.SaveBase(model, ids, bos, file, options: new PerplexityOptions { Context = ctx });

    [Fact]
    public void Evaluate_QuantizedAgainstBase_MatchesFloat64FromBothModelsLogits()
    {
        var (basePath, quantPath) = Models();
        const int ctx = 32, bos = 1;
        var ids = Ids(4 * ctx);
        string file = Path.Combine(_dir, "base.kld");
        using (var baseModel = LlamaModel.Load(basePath)) WriteBase(baseModel, ids, bos, ctx, file);
        using var quant = LlamaModel.Load(quantPath);
        using var exactBase = LlamaModel.Load(basePath);
        var k = KlDivergence.Evaluate(quant, file, bos);

        // Independent: KL(base || Q), NLLs and top tokens from both models' float logits, in float64.
        double kl = 0, nllQ = 0, nllB = 0;
        int same = 0, n = 0;
        for (int c = 0; c < 4; c++)
        {
            var input = ids.AsSpan(c * ctx, ctx).ToArray();
            input[0] = bos;
            var lq = quant.LogitsOf(input);
            var lb = exactBase.LogitsOf(input);
            for (int j = ctx / 2; j < ctx - 1; j++)
            {
                var pq = LogSoftmax(lq, j);
                var pb = LogSoftmax(lb, j);
                for (int i = 0; i < pb.Length; i++) kl += Math.Exp(pb[i]) * (pb[i] - pq[i]);
                int target = ids[c * ctx + j + 1];
                nllQ -= pq[target]; nllB -= pb[target];
                if (Array.IndexOf(pq, pq.Max()) == Array.IndexOf(pb, pb.Max())) same++;
                n++;
            }
        }
        Assert.Equal(n, k.Count);
        Assert.True(kl / n > 1e-4, $"the Q4_0 model should differ measurably: KLD {kl / n}");
        Assert.True(Math.Abs(k.MeanKld / (kl / n) - 1) <= 0.02, $"mean KLD {k.MeanKld} vs {kl / n}");
        Assert.True(Math.Abs(k.Ppl / Math.Exp(nllQ / n) - 1) <= 1e-5, $"PPL(Q) {k.Ppl} vs {Math.Exp(nllQ / n)}");
        Assert.True(Math.Abs(k.PplBase / Math.Exp(nllB / n) - 1) <= 1e-4, $"PPL(base) {k.PplBase} vs {Math.Exp(nllB / n)}");
        Assert.True(Math.Abs(k.SameTop - (double)same / n) <= 2.0 / n, $"same top {k.SameTop} vs {(double)same / n}");
        Assert.True(k.KldPercentiles[0] <= k.KldPercentiles[50] && k.KldPercentiles[50] <= k.KldPercentiles[100]);

        // The base against itself: no divergence beyond the file's rounding, every top token the same.
        var self = KlDivergence.Evaluate(exactBase, file, bos);
        Assert.True(self.MeanKld < 1e-6, $"self KLD {self.MeanKld}");
        Assert.Equal(1.0, self.SameTop);
    }

    [Fact]
    public void Evaluate_BadBaseFiles_OneClearErrorNamingTheFile()
    {
        var (basePath, _) = Models();
        using var model = LlamaModel.Load(basePath);
        string file = Path.Combine(_dir, "base.kld");
        WriteBase(model, Ids(2 * 32), 1, 32, file);
        var good = File.ReadAllBytes(file);

        string truncated = Path.Combine(_dir, "truncated.kld");
        File.WriteAllBytes(truncated, good[..^7]);
        var e = Assert.Throws<InvalidDataException>(() => KlDivergence.Evaluate(model, truncated, 1));
        Assert.Contains("truncated.kld", e.Message);
        Assert.Contains("truncated", e.Message);

        string magic = Path.Combine(_dir, "magic.kld");
        var m = (byte[])good.Clone(); m[0] = (byte)'x';
        File.WriteAllBytes(magic, m);
        Assert.Contains("_logits_", Assert.Throws<InvalidDataException>(() => KlDivergence.Evaluate(model, magic, 1)).Message);

        string vocab = Path.Combine(_dir, "vocab.kld");
        var v = (byte[])good.Clone(); BitConverter.TryWriteBytes(v.AsSpan(12), 301);
        File.WriteAllBytes(vocab, v);
        Assert.IsType<InvalidDataException>(Record.Exception(() => KlDivergence.Evaluate(model, vocab, 1)));

        string token = Path.Combine(_dir, "token.kld");
        var t = (byte[])good.Clone(); BitConverter.TryWriteBytes(t.AsSpan(20 + 4 * 5), 5000);
        File.WriteAllBytes(token, t);
        Assert.Contains("outside the vocabulary", Assert.Throws<InvalidDataException>(() => KlDivergence.Evaluate(model, token, 1)).Message);
    }
}
