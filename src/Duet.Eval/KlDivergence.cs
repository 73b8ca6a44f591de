// KL divergence of a model (Q, often a quantization) from a base model on the same tokens, as llama-perplexity
// computes it, with its base file in llama-perplexity's --kl-divergence-base format, so that a base written by either
// tool is read by the other:
//   "_logits_", int32 ctx, int32 vocab, int32 chunks, int32 tokens[chunks·ctx] (the text's, before any BOS
//   replacement), then per chunk, per scored position (ctx/2 .. ctx-2), nv = 2·⌈vocab/2⌉ + 4 uint16 words: two floats
//   (scale, min_log_prob) and one code per token, log p_base(i) = scale·code(i) + min_log_prob, where the logits are
//   clipped 16 below their maximum and spread over 0..65535 (codes rounded to nearest, ties to even).
// For each scored position: NLL of both models, KL(base ‖ Q) = Σ_i p_base(i) (log p_base(i) − log q(i)) over the
// tokens with log p_base > −16, Δp = q(target) − p_base(target), and whether both put the same token on top. The
// statistics are llama-perplexity's: means with their uncertainties, the PPL ratio with the NLLs' covariance,
// percentiles (linear between ranks), RMS Δp, "same top".
using Duet.Formats;
using Duet.Model;
using Duet.Tokenizers;

namespace Duet.Eval;

/// <summary>llama-perplexity's KL-divergence statistics; probabilities as fractions (×100 for %).</summary>
public sealed record KlDivergenceResult
{
    public required int Chunks { get; init; }
    public required int Context { get; init; }
    public required int Count { get; init; }
    public required double Ppl { get; init; }
    public required double PplError { get; init; }
    public required double PplBase { get; init; }
    public required double PplBaseError { get; init; }
    /// <summary>Correlation of the two models' per-token NLLs.</summary>
    public required double Correlation { get; init; }
    public required double LogPplRatio { get; init; }
    public required double LogPplRatioError { get; init; }
    public double PplRatio => Math.Exp(LogPplRatio);
    public double PplRatioError => PplRatio * LogPplRatioError;
    public required double MeanKld { get; init; }
    public required double MeanKldError { get; init; }
    /// <summary>KLD percentiles: 0 (minimum), 1, 5, 10, 50 (median), 99, 99.9, 100 (maximum).</summary>
    public required IReadOnlyDictionary<double, double> KldPercentiles { get; init; }
    public required double MeanDeltaP { get; init; }
    public required double MeanDeltaPError { get; init; }
    public required double RmsDeltaP { get; init; }
    public required double RmsDeltaPError { get; init; }
    /// <summary>Δp percentiles: 0, 0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 100.</summary>
    public required IReadOnlyDictionary<double, double> DeltaPPercentiles { get; init; }
    public required double SameTop { get; init; }
    public required double SameTopError { get; init; }
}

public static class KlDivergence
{
    private static readonly byte[] s_magic = "_logits_"u8.ToArray();

    private static int Words(int vocab) => 2 * ((vocab + 1) / 2) + 4;

    /// <summary>
    /// Perplexity of <paramref name="model"/> on <paramref name="text"/> (as <see cref="Perplexity.Evaluate(LlamaModel, Tokenizer, string, PerplexityOptions?, Action{int, int}?)"/>),
    /// writing its log-probabilities to <paramref name="path"/> as a KL-divergence base (atomically: the file appears
    /// whole or not at all).
    /// </summary>
    public static PerplexityResult SaveBase(LlamaModel model, Tokenizer tokenizer, string text, string path, PerplexityOptions? options = null, Action<int, int>? progress = null)
    {
        return SaveBase(model, tokenizer.Encode(text, addSpecialTokens: true), Perplexity.BosOf(tokenizer), path, tokenizer, options, progress);
    }

    /// <summary>The same over token ids already made (<paramref name="bos"/> replaces each chunk's first token unless -1).</summary>
    public static PerplexityResult SaveBase(LlamaModel model, int[] ids, int bos, string path, Tokenizer? tokenizer = null, PerplexityOptions? options = null, Action<int, int>? progress = null)
    {
        options ??= new PerplexityOptions();
        int chunks = Perplexity.CheckedChunks(model, ids, options);
        int ctx = options.Context, vocab = model.Config.Vocab, nv = Words(vocab);
        PerplexityResult? result = null;
        AtomicFile.Write(path, s =>
        {
            using var w = new BinaryWriter(s, System.Text.Encoding.UTF8, leaveOpen: true);
            w.Write(s_magic); w.Write(ctx); w.Write(vocab); w.Write(chunks);
            for (int i = 0; i < chunks * ctx; i++) w.Write(ids[i]);
            var words = new ushort[nv];
            var bytes = new byte[nv * 2];
            result = Perplexity.Evaluate(model, ids, bos, tokenizer, options, progress, onRow: (_, _, logits, _) =>
            {
                Compress(logits, words);
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(words.AsSpan()).CopyTo(bytes);
                w.Write(bytes);
            });
        });
        return result!;
    }

    /// <summary>One position's log-probabilities in the base file's form: [scale, min_log_prob] as two floats, then the codes.</summary>
    internal static void Compress(ReadOnlySpan<float> logits, Span<ushort> words)
    {
        float max = logits[0], min = logits[0];
        foreach (float v in logits) { if (v > max) max = v; if (v < min) min = v; }
        min = MathF.Max(min, max - 16);
        double sumExp = 0;
        foreach (float v in logits) sumExp += MathF.Exp(v - max);
        float logSumExp = (float)Math.Log(sumExp);
        float minLogProb = min - max - logSumExp;
        float scale = (max - min) / 65535f;
        var header = System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, float>(words[..4]);
        header[0] = scale; header[1] = minLogProb;
        var codes = words[4..];
        codes.Clear();
        if (scale != 0)
        {
            float inv = 1 / scale;
            for (int i = 0; i < logits.Length; i++) codes[i] = logits[i] > min ? (ushort)NearestInt(inv * (logits[i] - min)) : (ushort)0;
        }
    }

    // Round to nearest, ties to even, for 0 <= f < 2^22 (the float trick: f + 1.5·2^23 leaves the integer in the mantissa).
    private static int NearestInt(float f) => (BitConverter.SingleToInt32Bits(f + 12582912f) & 0x7FFFFF) - 0x400000;

    /// <summary>The header of a base file: context, vocabulary, chunks and the tokens; InvalidDataException naming the file for anything else.</summary>
    public static (int Context, int Vocab, int Chunks, int[] Tokens) ReadHeader(string path)
    {
        using var f = File.OpenRead(path);
        return ReadHeader(f, path);
    }

    private static (int Context, int Vocab, int Chunks, int[] Tokens) ReadHeader(FileStream f, string path)
    {
        using var r = new BinaryReader(f, System.Text.Encoding.UTF8, leaveOpen: true);
        long length = f.Length;
        if (length < 20 || !r.ReadBytes(8).AsSpan().SequenceEqual(s_magic))
            throw new InvalidDataException($"{path}: not a file of log-probabilities (llama-perplexity --kl-divergence-base or duet eval --save-logits): no '_logits_' at the start");
        int ctx = r.ReadInt32(), vocab = r.ReadInt32(), chunks = r.ReadInt32();
        if (ctx < 4 || vocab < 1 || chunks < 1 || ctx > 1 << 20 || vocab > 1 << 24)
            throw new InvalidDataException($"{path}: context {ctx}, vocabulary {vocab}, chunks {chunks}: not a valid header");
        long scored = ctx - 1 - ctx / 2;
        long expected = 20 + (long)chunks * ctx * 4 + (long)chunks * scored * Words(vocab) * 2;
        if (length != expected)
            throw new InvalidDataException($"{path}: {length} bytes, but a file of {chunks} chunks of {ctx} tokens over a vocabulary of {vocab} has {expected} (truncated, or not this format)");
        var tokens = new int[chunks * ctx];
        for (int i = 0; i < tokens.Length; i++)
        {
            tokens[i] = r.ReadInt32();
            if ((uint)tokens[i] >= (uint)vocab) throw new InvalidDataException($"{path}: token {tokens[i]} at {i} is outside the vocabulary of {vocab}");
        }
        return (ctx, vocab, chunks, tokens);
    }

    /// <summary>
    /// KL divergence of <paramref name="model"/> from the base whose log-probabilities <paramref name="basePath"/>
    /// holds, on the base's tokens. <paramref name="bos"/>: the id put in place of each chunk's first token (the
    /// model's BOS where its vocabulary adds one), or -1.
    /// </summary>
    public static KlDivergenceResult Evaluate(LlamaModel model, string basePath, int bos, Action<int, int>? progress = null)
    {
        using var f = File.OpenRead(basePath);
        var (ctx, vocab, chunks, tokens) = ReadHeader(f, basePath);
        if (vocab != model.Config.Vocab)
            throw new InvalidDataException($"{basePath}: the base has a vocabulary of {vocab}, the model {model.Config.Vocab}: not the same model family");
        if (ctx > model.Config.ContextLength)
            throw new InvalidDataException($"{basePath}: the base was computed with a context of {ctx}, longer than the model's {model.Config.ContextLength}");
        int nv = Words(vocab), scoredPerChunk = ctx - 1 - ctx / 2, n = chunks * scoredPerChunk;
        var raw = new byte[nv * 2];
        var words = new ushort[nv];
        var kld = new double[n];
        var dp = new double[n];
        double sumNll = 0, sumNll2 = 0, sumBase = 0, sumBase2 = 0, sumCross = 0, sumKld = 0, sumKld2 = 0, sumDp = 0, sumDp2 = 0, sumDp4 = 0;
        int count = 0, sameTop = 0;
        Perplexity.RunChunks(model, tokens, bos, ctx, chunks, (c, j, logits, target) =>
        {
            f.ReadExactly(raw);
            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(raw).CopyTo(words);
            var header = System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, float>(words.AsSpan(0, 4));
            float scale = header[0], minLogProb = header[1];
            var codes = words.AsSpan(4, vocab);
            // The model's log softmax (float, as llama-perplexity keeps it).
            float max = logits[0];
            int top = 0;
            for (int i = 1; i < vocab; i++) if (logits[i] > max) { max = logits[i]; top = i; }
            double sumExp = 0;
            foreach (float v in logits) sumExp += MathF.Exp(v - max);
            float logSumExp = (float)Math.Log(sumExp);
            float nll = max + logSumExp - logits[target];
            float nllBase = -(scale * codes[target] + minLogProb);
            sumNll += nll; sumNll2 += nll * nll; sumBase += nllBase; sumBase2 += nllBase * nllBase; sumCross += nll * nllBase;
            float norm = max + logSumExp;
            double k = 0;
            int topBase = 0;
            float topBaseLog = 0;
            for (int i = 0; i < vocab; i++)
            {
                float pLogBase = scale * codes[i] + minLogProb;
                if (i == 0 || pLogBase > topBaseLog) { topBaseLog = pLogBase; topBase = i; }
                if (pLogBase > -16f) k += MathF.Exp(pLogBase) * (pLogBase - logits[i] + norm);
            }
            sumKld += k; sumKld2 += k * k;
            if (top == topBase) sameTop++;
            float d = MathF.Exp(-nll) - MathF.Exp(-nllBase);
            sumDp += d;
            double d2 = (double)d * d;
            sumDp2 += d2; sumDp4 += d2 * d2;
            kld[count] = k; dp[count] = d;
            count++;
        }, c => progress?.Invoke(c + 1, chunks));

        var (logPpl, logPplErr) = MeanAndError(sumNll, sumNll2, count);
        var (logBase, logBaseErr) = MeanAndError(sumBase, sumBase2, count);
        double cov = count < 10 ? 0 : (sumCross / count - sumNll / count * (sumBase / count)) / (count - 1);
        var (meanKld, meanKldErr) = MeanAndError(sumKld, sumKld2, count);
        var (meanDp, meanDpErr) = MeanAndError(sumDp, sumDp2, count);
        var (mse, mseErr) = MeanAndError(sumDp2, sumDp4, count);
        double rms = Math.Sqrt(mse);
        double same = (double)sameTop / count;
        Array.Sort(kld);
        Array.Sort(dp);
        return new KlDivergenceResult
        {
            Chunks = chunks, Context = ctx, Count = count,
            Ppl = Math.Exp(logPpl), PplError = Math.Exp(logPpl) * logPplErr,
            PplBase = Math.Exp(logBase), PplBaseError = Math.Exp(logBase) * logBaseErr,
            Correlation = cov / (logPplErr * logBaseErr),
            LogPplRatio = logPpl - logBase,
            LogPplRatioError = Math.Sqrt(Math.Max(0, logPplErr * logPplErr + logBaseErr * logBaseErr - 2 * cov)),
            MeanKld = meanKld, MeanKldError = meanKldErr,
            KldPercentiles = new[] { 0, 1, 5, 10, 50, 99, 99.9, 100 }.ToDictionary(p => p, p => p == 50 ? Median(kld) : Percentile(kld, p / 100)),
            MeanDeltaP = meanDp, MeanDeltaPError = meanDpErr,
            RmsDeltaP = rms, RmsDeltaPError = rms > 0 ? 0.5 / rms * mseErr : 0,
            DeltaPPercentiles = new[] { 0, 0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 100 }.ToDictionary(p => p, p => p == 50 ? Median(dp) : Percentile(dp, p / 100)),
            SameTop = same, SameTopError = count > 1 ? Math.Sqrt(same * (1 - same) / (count - 1)) : 0,
        };
    }

    // llama-perplexity's mean_and_uncertainty: the uncertainty only from more than 10 values.
    private static (double Mean, double Error) MeanAndError(double sum, double sum2, int count)
    {
        if (count < 1) return (0, 0);
        double f = sum / count, df = sum2 / count - f * f;
        return (f, df > 0 && count > 10 ? Math.Sqrt(df / (count - 1)) : 0);
    }

    private static double Median(double[] sorted) =>
        sorted.Length % 2 == 0 ? 0.5 * (sorted[sorted.Length / 2] + sorted[sorted.Length / 2 - 1]) : sorted[sorted.Length / 2];

    private static double Percentile(double[] sorted, double fraction)
    {
        if (fraction <= 0) return sorted[0];
        if (fraction >= 1) return sorted[^1];
        double p = fraction * (sorted.Length - 1);
        int ip = (int)p;
        p -= ip;
        return (1 - p) * sorted[ip] + p * sorted[Math.Min(ip + 1, sorted.Length - 1)];
    }
}
