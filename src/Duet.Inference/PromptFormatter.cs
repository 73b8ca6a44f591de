// Chat turns to prompt tokens with the model's own chat template (tokenizer.chat_template, rendered by the
// Jinja subset in Duet.Tokenizers.ChatTemplates as transformers renders it), ChatML when the model has none.
using Duet.Tokenizers;
using Duet.Tokenizers.ChatTemplates;

namespace Duet.Inference;

public sealed class PromptFormatter(Tokenizer tokenizer)
{
    private readonly ChatTemplate _template = ChatTemplate.ForTokenizer(tokenizer.ChatTemplate);
    private readonly string _bos = tokenizer.BosId >= 0 ? tokenizer.IdToToken(tokenizer.BosId) : "";
    private readonly string _eos = tokenizer.EosId >= 0 ? tokenizer.IdToToken(tokenizer.EosId) : "";

    /// <summary>"the model's template", or ChatML and why.</summary>
    public string TemplateName => tokenizer.ChatTemplate is null ? "ChatML (the model has no template)"
        : _template.FallbackReason is { } why ? $"ChatML (the model's template failed to parse: {why})" : "the model's own";

    /// <summary>The prompt text ending where the assistant's reply begins; ChatTemplateException when the template refuses the conversation.</summary>
    public string Render(IReadOnlyList<ChatTurn> messages) =>
        _template.Render(messages.Select(m => new ChatTemplateMessage(m.Role, m.Content)).ToList(), addGenerationPrompt: true, _bos, _eos);

    /// <summary>The prompt's tokens: special tokens the template writes (&lt;|im_start|&gt;, [INST]) are parsed as such.</summary>
    public int[] Encode(IReadOnlyList<ChatTurn> messages) => EncodeText(Render(messages));

    /// <summary>Tokens of text the template rendered (all of a prompt, or the part a new turn adds), special tokens parsed.</summary>
    public int[] EncodeText(string rendered) => tokenizer.Encode(rendered, addSpecialTokens: false, parseSpecial: true);
}
