// Chat messages to prompt tokens with the model's own chat template (tokenizer.chat_template), ChatML
// when the model has none.
using Duet.Tokenizers;

namespace Duet.Inference;

public sealed class PromptFormatter(Tokenizer tokenizer)
{
    private readonly ChatStyle _style = ChatFormat.Detect(tokenizer.ChatTemplate);

    public string TemplateName => _style.ToString();

    public string Render(IReadOnlyList<ChatTurn> messages)
    {
        string bos = tokenizer.BosId >= 0 ? tokenizer.IdToToken(tokenizer.BosId) : "";
        return ChatFormat.Render(_style, messages, bos);
    }

    /// <summary>The prompt's tokens: special tokens the template writes (&lt;|im_start|&gt;, [INST]) are parsed as such.</summary>
    public int[] Encode(IReadOnlyList<ChatTurn> messages) => tokenizer.Encode(Render(messages), addSpecialTokens: false, parseSpecial: true);
}
