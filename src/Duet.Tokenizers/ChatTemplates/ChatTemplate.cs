// Chat templates: the Jinja subset that models' tokenizer.chat_template strings use (ChatML for Yi and Qwen,
// Llama 2, Llama 3.x, Mistral and its variants), rendered as Hugging Face transformers renders them
// (jinja2 sandbox, trim_blocks and lstrip_blocks on, raise_exception, strftime_now, tojson with
// ensure_ascii off). A template is data from an untrusted file: there is no I/O and no reflection, and loop
// iterations, output size and call depth are bounded, so a hostile template fails with a
// ChatTemplateException instead of hanging or exhausting memory.
namespace Duet.Tokenizers.ChatTemplates;

public sealed record ChatTemplateMessage(string Role, string Content);

public sealed class ChatTemplateException(string message) : Exception(message);

public sealed class ChatTemplate
{
    private readonly Node[] _body;

    public string Source { get; }

    /// <summary>Why <see cref="ForTokenizer"/> fell back to ChatML, if it did.</summary>
    public string? FallbackReason { get; private init; }

    private ChatTemplate(string source, Node[] body)
    {
        Source = source;
        _body = body;
    }

    /// <summary>Parses a template; throws ChatTemplateException (with line and column) on a syntax error.</summary>
    public static ChatTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new ChatTemplate(source, new Parser(Lexer.Tokenize(source)).ParseTemplate());
    }

    public const string ChatMlSource =
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
        + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private static readonly Lazy<ChatTemplate> s_chatMl = new(() => Parse(ChatMlSource));

    /// <summary>ChatML, as Yi and Qwen use it: the fallback when a model has no template.</summary>
    public static ChatTemplate ChatMl => s_chatMl.Value;

    /// <summary>The model's template, or ChatML when it has none or it does not parse (FallbackReason says why).</summary>
    public static ChatTemplate ForTokenizer(string? templateSource)
    {
        if (string.IsNullOrWhiteSpace(templateSource)) return ChatMl;
        try { return Parse(templateSource); }
        catch (ChatTemplateException e) { return new ChatTemplate(ChatMlSource, ChatMl._body) { FallbackReason = e.Message }; }
    }

    /// <summary>The prompt for <paramref name="messages"/>; throws ChatTemplateException for raise_exception(...) and runtime errors.</summary>
    public string Render(IReadOnlyList<ChatTemplateMessage> messages, bool addGenerationPrompt, string bosToken, string eosToken,
        IReadOnlyDictionary<string, object?>? extra = null, Func<DateTime>? clock = null)
    {
        var list = new List<object?>(messages.Count);
        foreach (var m in messages)
            list.Add(new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content });
        var globals = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = list,
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = bosToken,
            ["eos_token"] = eosToken,
        };
        if (extra is not null) foreach (var (k, v) in extra) globals[k] = v;
        return RenderValues(globals, clock);
    }

    /// <summary>Renders with template variables already in the interpreter's value model (lists, dictionaries, long, double, string, bool, null).</summary>
    internal string RenderValues(Dictionary<string, object?> globals, Func<DateTime>? clock = null) =>
        new Interpreter(globals, clock ?? (() => DateTime.Now)).Run(_body);

    /// <summary>A JSON value in the interpreter's value model.</summary>
    internal static object? FromJson(System.Text.Json.JsonElement e) => e.ValueKind switch
    {
        System.Text.Json.JsonValueKind.String => e.GetString(),
        System.Text.Json.JsonValueKind.Number => e.TryGetInt64(out long l) ? l : e.GetDouble(),
        System.Text.Json.JsonValueKind.True => true,
        System.Text.Json.JsonValueKind.False => false,
        System.Text.Json.JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        System.Text.Json.JsonValueKind.Object => e.EnumerateObject().ToDictionary(p => p.Name, p => FromJson(p.Value), StringComparer.Ordinal),
        _ => null,
    };
}
