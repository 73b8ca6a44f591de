// A conversation as training tokens with the loss on the assistant's replies only: rendered with the model's own
// chat template (ChatML when it has none), as transformers' apply_chat_template renders it, and cut into spans.
// Assistant turn i's span is what rendering messages[:i+1] (without a generation prompt) adds after rendering
// messages[:i] with the generation prompt: the reply as the template writes it, with its end-of-turn marker
// (<|im_end|>, </s>, <|eot_id|>). The rest (system, user turns, the assistant header) is context. A template that
// does not render a conversation incrementally (Qwen3 drops earlier turns' thinking, Mistral v0.3 moves the system
// prompt into the last user turn) cannot be masked this way and is refused with the reason.
// tests/reference/sft_spans.py makes the expected spans with Python jinja2 for the real templates under tests/.
using Duet.Tokenizers;
using Duet.Tokenizers.ChatTemplates;

namespace Duet.Training.Sft;

/// <summary>A piece of a rendered conversation, and whether the loss is taken on it.</summary>
public readonly record struct SftSpan(string Text, bool Train);

/// <summary>
/// A training sequence: token ids, and per token whether it is a target the loss counts (a token of an assistant
/// reply, predicted from the one before it).
/// </summary>
public sealed record SftExample(int[] Tokens, bool[] Train, string Where)
{
    public int TrainTokens => Train.Count(t => t);
}

public sealed class SftEncoder
{
    private readonly Tokenizer _tokenizer;
    private readonly ChatTemplate _template;
    private readonly string _bos, _eos;

    /// <param name="template">the chat template (default: the tokenizer's own, ChatML when it has none)</param>
    public SftEncoder(Tokenizer tokenizer, ChatTemplate? template = null, string? bosToken = null, string? eosToken = null)
    {
        _tokenizer = tokenizer;
        _template = template ?? ChatTemplate.ForTokenizer(tokenizer.ChatTemplate);
        _bos = bosToken ?? (tokenizer.BosId >= 0 ? tokenizer.IdToToken(tokenizer.BosId) : "");
        _eos = eosToken ?? (tokenizer.EosId >= 0 ? tokenizer.IdToToken(tokenizer.EosId) : "");
    }

    /// <summary>The conversation's rendered text in spans, assistant replies marked for training.</summary>
    public List<SftSpan> Spans(ChatConversation c)
    {
        var m = c.Messages;
        string full = Render(c, m.Count, generationPrompt: false);
        var spans = new List<SftSpan>();
        int pos = 0;
        for (int i = 0; i < m.Count; i++)
        {
            if (m[i].Role != "assistant") continue;
            string prompt = Render(c, i, generationPrompt: true), upto = Render(c, i + 1, generationPrompt: false);
            if (!upto.StartsWith(prompt, StringComparison.Ordinal) || !full.StartsWith(upto, StringComparison.Ordinal) || prompt.Length < pos)
                throw new InvalidDataException($"{c.Where}: the chat template does not render this conversation turn by turn (message {i}: a shorter conversation's rendering is not the start of a longer one's), so the replies cannot be told from the context");
            if (prompt.Length > pos) spans.Add(new SftSpan(prompt[pos..], false));
            if (upto.Length > prompt.Length) spans.Add(new SftSpan(upto[prompt.Length..], true));
            pos = upto.Length;
        }
        if (pos < full.Length) spans.Add(new SftSpan(full[pos..], false));
        if (!spans.Any(s => s.Train)) throw new InvalidDataException($"{c.Where}: the template renders no text for the assistant's replies");
        return spans;
    }

    /// <summary>
    /// The conversation's tokens: each span encoded on its own (special tokens the template writes parsed as such) and
    /// joined, so a token never straddles a reply's edge; the tokens of reply spans are targets.
    /// </summary>
    public SftExample Encode(ChatConversation c)
    {
        var tokens = new List<int>();
        var train = new List<bool>();
        foreach (var s in Spans(c))
        {
            var ids = _tokenizer.Encode(s.Text, addSpecialTokens: false, parseSpecial: true);
            tokens.AddRange(ids);
            for (int i = 0; i < ids.Length; i++) train.Add(s.Train);
        }
        if (tokens.Count > 0 && train[0]) train[0] = false; // the first token has nothing before it to predict it from
        return new SftExample(tokens.ToArray(), train.ToArray(), c.Where);
    }

    private string Render(ChatConversation c, int count, bool generationPrompt)
    {
        try { return _template.Render(c.Messages.Take(count).ToList(), generationPrompt, _bos, _eos); }
        catch (ChatTemplateException e) { throw new InvalidDataException($"{c.Where}: the chat template cannot render this conversation: {e.Message}"); }
    }
}
