// The generation loop: feed the prompt, then sample, stream and stop. Stops at any end-of-turn token the
// vocabulary has (EOS, and <|im_end|>, <|eot_id|>, <|end_of_text|>, </s>): Yi's config names </s> as EOS
// while its ChatML turns end with <|im_end|>, so both must stop generation.
using Duet.Model;
using Duet.Tokenizers;

namespace Duet.Inference;

public sealed class Generator(LlamaModel model, Tokenizer tokenizer)
{
    public LlamaModel Model { get; } = model;
    public Tokenizer Tokenizer { get; } = tokenizer;

    public IReadOnlySet<int> StopTokens { get; } = StopTokensOf(tokenizer);

    public static HashSet<int> StopTokensOf(Tokenizer t)
    {
        var set = new HashSet<int>();
        if (t.EosId >= 0) set.Add(t.EosId);
        foreach (var s in new[] { "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "</s>", "<|endoftext|>" })
            if (t.TokenToId(s) is int id && t.AddedTokens.IsAdded(id)) set.Add(id);
        return set;
    }

    /// <summary>Generates up to <paramref name="maxTokens"/> tokens after <paramref name="promptIds"/>, streaming text pieces.</summary>
    public IEnumerable<string> Generate(IReadOnlyList<int> promptIds, int maxTokens, SamplingOptions options, LlamaState? state = null,
        Action<int>? onToken = null, CancellationToken cancel = default)
    {
        if (promptIds.Count == 0) throw new ArgumentException("the prompt has no tokens");
        state ??= Model.CreateState(Math.Min(Model.Config.ContextLength, promptIds.Count + maxTokens));
        if (state.Length + promptIds.Count > state.Capacity)
            throw new ArgumentException($"the prompt ({promptIds.Count} tokens) does not fit in the context ({state.Capacity - state.Length} left)");
        var sampler = new Sampler(Model.Config.Vocab, options);
        var history = new List<int>(promptIds);
        Model.Prefill(state, promptIds.ToArray());
        var decoder = Tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        decoder.Prime(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history)); // text continues the prompt's
        for (int i = 0; i < maxTokens && !cancel.IsCancellationRequested; i++)
        {
            int next = sampler.Sample(state.Logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history));
            onToken?.Invoke(next);
            if (StopTokens.Contains(next)) break;
            history.Add(next);
            var text = decoder.Push(next);
            if (text.Length > 0) yield return text;
            if (state.Length >= state.Capacity) break;
            Model.Forward(state, next);
        }
        var rest = decoder.Flush();
        if (rest.Length > 0) yield return rest;
    }
}
