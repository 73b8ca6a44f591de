// The tokens that end a reply: EOS and every end-of-turn token the vocabulary has as an added token
// (<|im_end|>, <|eot_id|>, <|end_of_text|>, </s>, <|endoftext|>). Yi's config names </s> as EOS while its ChatML
// turns end with <|im_end|>, so both must stop generation.
using Duet.Tokenizers;

namespace Duet.Inference;

public static class StopTokens
{
    /// <summary>The end-of-reply tokens of <paramref name="t"/>.</summary>
    public static HashSet<int> Of(Tokenizer t)
    {
        var set = new HashSet<int>();
        if (t.EosId >= 0) set.Add(t.EosId);
        foreach (var s in new[] { "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "</s>", "<|endoftext|>" })
            if (t.TokenToId(s) is int id && t.AddedTokens.IsAdded(id)) set.Add(id);
        return set;
    }
}
