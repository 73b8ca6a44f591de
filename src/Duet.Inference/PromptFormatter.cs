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
    public string Render(IReadOnlyList<ChatTurn> messages) => Render(messages, null);

    /// <summary>
    /// With <paramref name="tools"/> (OpenAI's tools array): a template that renders tools gets them, and the turns'
    /// calls and results as transformers passes them (arguments as objects); for one that does not (ChatML, Yi) the
    /// tools are described in the system message and calls and results are written in the Hermes style
    /// (ToolCallFormat), which is then how the reply is read.
    /// </summary>
    public string Render(IReadOnlyList<ChatTurn> messages, System.Text.Json.JsonElement? tools)
    {
        bool native = Tools.ToolCallFormat.RendersTools(tokenizer.ChatTemplate);
        var list = new List<ChatTemplateMessage>(messages.Count + 1);
        if (tools is { } t && !native)
        {
            string? system = messages.Count > 0 && messages[0].Role == "system" ? messages[0].Content : null;
            list.Add(new ChatTemplateMessage("system", Tools.ToolCallFormat.FallbackSystemPrompt(system, t)));
            messages = system is null ? messages : messages.Skip(1).ToList();
        }
        foreach (var m in messages) list.Add(native ? NativeMessage(m) : TextMessage(m));
        var extra = tools is { } tt && native ? new Dictionary<string, object?> { ["tools"] = tt } : null;
        return _template.Render(list, addGenerationPrompt: true, _bos, _eos, extra);
    }

    /// <summary>The prompt's tokens: special tokens the template writes (&lt;|im_start|&gt;, [INST]) are parsed as such.</summary>
    public int[] Encode(IReadOnlyList<ChatTurn> messages) => EncodeText(Render(messages));

    /// <inheritdoc cref="Render(IReadOnlyList{ChatTurn}, System.Text.Json.JsonElement?)"/>
    public int[] Encode(IReadOnlyList<ChatTurn> messages, System.Text.Json.JsonElement? tools) => EncodeText(Render(messages, tools));

    // A template that renders tools reads tool_calls (arguments as objects), tool_call_id and name, as transformers passes them.
    private static ChatTemplateMessage NativeMessage(ChatTurn m)
    {
        if (m.ToolCalls is not { Count: > 0 } && m.ToolCallId is null) return new ChatTemplateMessage(m.Role, m.Content);
        var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (m.ToolCalls is { Count: > 0 } calls)
        {
            if (m.Content.Length == 0) fields["content"] = null;
            fields["tool_calls"] = calls.Select(c => (object?)new Dictionary<string, object?>
            {
                ["id"] = c.Id, ["type"] = "function",
                ["function"] = new Dictionary<string, object?> { ["name"] = c.Name, ["arguments"] = System.Text.Json.JsonDocument.Parse(c.Arguments).RootElement.Clone() },
            }).ToList();
        }
        if (m.ToolCallId is not null) fields["tool_call_id"] = m.ToolCallId;
        if (m.Name is not null) fields["name"] = m.Name;
        return new ChatTemplateMessage(m.Role, m.Content) { Fields = fields };
    }

    // A template without tools sees text: an assistant's calls as Hermes blocks after its text, a result in <tool_response>.
    private static ChatTemplateMessage TextMessage(ChatTurn m)
    {
        if (m.ToolCalls is { Count: > 0 } calls)
        {
            var sb = new System.Text.StringBuilder(m.Content);
            foreach (var c in calls)
                sb.Append(sb.Length > 0 ? "\n" : "").Append(Tools.ToolCallFormat.HermesOpen).Append("\n{\"name\": ").Append(System.Text.Json.JsonSerializer.Serialize(c.Name))
                  .Append(", \"arguments\": ").Append(c.Arguments).Append("}\n").Append(Tools.ToolCallFormat.HermesClose);
            return new ChatTemplateMessage("assistant", sb.ToString());
        }
        if (m.Role == "tool") return new ChatTemplateMessage("tool", "<tool_response>\n" + m.Content + "\n</tool_response>");
        return new ChatTemplateMessage(m.Role, m.Content);
    }

    /// <summary>Tokens of text the template rendered (all of a prompt, or the part a new turn adds), special tokens parsed.</summary>
    public int[] EncodeText(string rendered) => tokenizer.Encode(rendered, addSpecialTokens: false, parseSpecial: true);
}
