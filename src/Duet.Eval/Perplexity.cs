// Perplexity as llama-perplexity computes it (llama.cpp examples/perplexity, its default mode), so that a number from
// Duet means what the same number from llama.cpp means:
//   the text is tokenized whole (BOS first where the vocabulary adds one); chunks of ctx tokens, at most
//   len/ctx of them; each chunk runs from an empty cache with its first token replaced by BOS (where the vocabulary
//   adds one); only the second half is scored: for j in [ctx/2, ctx-2] the negative log-likelihood of token j+1
//   under softmax(logits at j). With n scored tokens: PPL = exp(Σnll/n), uncertainty PPL·sqrt((Σnll²/n − mean²)/(n−1)).
// Beside it, bits per byte and per character of the scored tokens' text, Σnll / ln 2 / bytes (or characters):
// comparable across tokenizers, and between English and Chinese, where a token holds very different amounts of text.
// Logits are computed only for the scored rows (as llama-perplexity asks for them), in prompt batches on the
// fast (not batch-invariant) kernels. tests/reference/perplexity_reference.py is the independent reference.
using System.Text;
using Duet.Model;
using Duet.Tokenizers;

namespace Duet.Eval;

public sealed record PerplexityOptions
{
    /// <summary>Tokens per chunk (llama-perplexity's -c).</summary>
    public int Context { get; init; } = 512;
    /// <summary>At most this many chunks (llama-perplexity's --chunks); null: as many as the text holds.</summary>
    public int? Chunks { get; init; }
}

/// <summary>What a perplexity run measured: sums over the scored tokens, and the figures made from them.</summary>
public sealed record PerplexityResult(int Chunks, int Context, int ScoredTokens, double NllSum, double NllSquaredSum, long ScoredBytes, long ScoredChars)
{
    /// <summary>Mean negative log-likelihood per scored token, in nats.</summary>
    public double MeanNll => NllSum / ScoredTokens;
    public double Ppl => Math.Exp(MeanNll);
    /// <summary>llama-perplexity's "+/-": PPL times the standard error of the mean NLL.</summary>
    public double PplError
    {
        get
        {
            double variance = NllSquaredSum / ScoredTokens - MeanNll * MeanNll;
            return variance > 0 && ScoredTokens > 1 ? Ppl * Math.Sqrt(variance / (ScoredTokens - 1)) : 0;
        }
    }
    /// <summary>Bits per UTF-8 byte of the scored tokens' text.</summary>
    public double BitsPerByte => NllSum / Math.Log(2) / ScoredBytes;
    /// <summary>Bits per character (Unicode scalar value) of the scored tokens' text.</summary>
    public double BitsPerChar => NllSum / Math.Log(2) / ScoredChars;
}

public static class Perplexity
{
    /// <summary>
    /// Perplexity of <paramref name="model"/> on <paramref name="text"/>, tokenized whole by <paramref name="tokenizer"/>.
    /// ArgumentException when the text has fewer than 2·Context tokens (llama-perplexity refuses it too).
    /// </summary>
    public static PerplexityResult Evaluate(LlamaModel model, Tokenizer tokenizer, string text, PerplexityOptions? options = null, Action<int, int>? progress = null)
    {
        return Evaluate(model, tokenizer.Encode(text, addSpecialTokens: true), BosOf(tokenizer), tokenizer, options, progress);
    }

    /// <summary>
    /// The id that takes each chunk's first place: the tokenizer's BOS where its vocabulary adds one to a text
    /// (llama-perplexity's add_bos), else -1.
    /// </summary>
    public static int BosOf(Tokenizer tokenizer)
    {
        if (tokenizer.BosId < 0) return -1;
        var probe = tokenizer.Encode("a", addSpecialTokens: true);
        return probe.Length > 0 && probe[0] == tokenizer.BosId ? tokenizer.BosId : -1;
    }

    /// <summary>
    /// Perplexity over token ids already made: <paramref name="bos"/> (or -1 for none) replaces each chunk's first
    /// token; <paramref name="tokenizer"/>, if given, supplies the bytes and characters of the scored tokens.
    /// <paramref name="nll"/>, if not empty, receives every scored token's NLL in order; <paramref name="onRow"/>, if
    /// given, sees every scored row's logits (KlDivergence writes its base file from them).
    /// </summary>
    public static PerplexityResult Evaluate(LlamaModel model, ReadOnlySpan<int> ids, int bos, Tokenizer? tokenizer = null, PerplexityOptions? options = null,
        Action<int, int>? progress = null, double[]? nll = null, ScoredRow? onRow = null)
    {
        options ??= new PerplexityOptions();
        int chunks = CheckedChunks(model, ids, options);
        int ctx = options.Context, first = ctx / 2;
        if (nll is not null && nll.Length < chunks * (ctx - 1 - first)) throw new ArgumentException("the NLL buffer is too small");
        var text = new List<byte>();
        var scratch = new float[model.Config.Vocab];
        double sum = 0, sum2 = 0;
        long bytes = 0, chars = 0;
        int scored = 0;
        RunChunks(model, ids, bos, ctx, chunks, (c, j, logits, target) =>
        {
            double v = -LogSoftmax(logits, target, scratch);
            if (nll is not null) nll[scored] = v;
            sum += v; sum2 += v * v; scored++;
            if (tokenizer is not null) text.AddRange(tokenizer.Decoder.BytesOf(target));
            onRow?.Invoke(c, j, logits, target);
        }, c =>
        {
            if (tokenizer is not null)
            {
                bytes += text.Count;
                foreach (var _ in Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(text)).EnumerateRunes()) chars++;
                text.Clear();
            }
            progress?.Invoke(c + 1, chunks);
        });
        return new PerplexityResult(chunks, ctx, scored, sum, sum2, bytes, chars);
    }

    /// <summary>A scored row: chunk, position j in it, the logits at j, and the token at j + 1 they are scored on.</summary>
    public delegate void ScoredRow(int chunk, int position, ReadOnlySpan<float> logits, int target);

    /// <summary>How many chunks the ids hold for these options; ArgumentException for what llama-perplexity refuses.</summary>
    internal static int CheckedChunks(LlamaModel model, ReadOnlySpan<int> ids, PerplexityOptions options)
    {
        int ctx = options.Context, vocab = model.Config.Vocab;
        if (ctx < 4) throw new ArgumentException($"the context must hold at least 4 tokens, not {ctx}");
        if (ctx > model.Config.ContextLength) throw new ArgumentException($"the context {ctx} is longer than the model's {model.Config.ContextLength}");
        if (ids.Length < 2 * ctx)
            throw new ArgumentException($"perplexity with a context of {ctx} needs at least {2 * ctx} tokens; the text has {ids.Length}");
        if (options.Chunks is <= 0) throw new ArgumentException($"chunks must be positive, not {options.Chunks}");
        foreach (int t in ids) if ((uint)t >= (uint)vocab) throw new ArgumentException($"token {t} is outside the model's vocabulary of {vocab}");
        return Math.Min(ids.Length / ctx, options.Chunks ?? int.MaxValue);
    }

    /// <summary>
    /// Runs each chunk from an empty cache (its first token replaced by <paramref name="bos"/> unless -1) and hands
    /// over the logits of the scored rows, positions ctx/2 .. ctx-2, in order; <paramref name="chunkDone"/> after each chunk.
    /// </summary>
    internal static void RunChunks(LlamaModel model, ReadOnlySpan<int> ids, int bos, int ctx, int chunks, ScoredRow row, Action<int> chunkDone)
    {
        const int B = LlamaState.MaxBatch;
        int vocab = model.Config.Vocab, first = ctx / 2;
        var state = model.CreateState(ctx);
        var rows = new LlamaState[B];
        Array.Fill(rows, state);
        var chunk = new int[ctx];
        var logitRows = new int[B];
        var logits = new float[B * vocab];
        for (int c = 0; c < chunks; c++)
        {
            ids.Slice(c * ctx, ctx).CopyTo(chunk);
            if (bos >= 0) chunk[0] = bos;
            state.Reset();
            for (int b0 = 0; b0 < ctx; b0 += B)
            {
                int n = Math.Min(B, ctx - b0), m = 0;
                for (int k = 0; k < n; k++)
                    if (b0 + k >= first && b0 + k < ctx - 1) logitRows[m++] = k;
                model.ForwardRows(state, rows.AsSpan(0, n), chunk.AsSpan(b0, n), logitRows.AsSpan(0, m), logits.AsSpan(0, m * vocab));
                for (int i = 0; i < m; i++)
                {
                    int pos = b0 + logitRows[i];
                    row(c, pos, logits.AsSpan(i * vocab, vocab), ids[c * ctx + pos + 1]);
                }
            }
            chunkDone(c);
        }
    }

    /// <summary>
    /// log softmax(z)[t]: exp(z − max) in vectors (TensorPrimitives), summed in double as llama-perplexity sums them.
    /// <paramref name="scratch"/> holds z.Length floats.   torch: z.log_softmax(-1)[t]
    /// </summary>
    internal static double LogSoftmax(ReadOnlySpan<float> z, int t, Span<float> scratch)
    {
        float max = System.Numerics.Tensors.TensorPrimitives.Max(z);
        var e = scratch[..z.Length];
        System.Numerics.Tensors.TensorPrimitives.Subtract(z, max, e);
        System.Numerics.Tensors.TensorPrimitives.Exp(e, e);
        double s = 0;
        foreach (float v in e) s += v;
        return z[t] - max - Math.Log(s);
    }
}
