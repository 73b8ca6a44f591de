// A model's chat template (tokenizer.chat_template in GGUF, chat_template in tokenizer_config.json), parsed once
// and rendered per request: messages -> the prompt text the model was trained on.
//
// The template language is the subset of Jinja2 that real chat templates use, evaluated as Hugging Face
// transformers evaluates it (apply_chat_template): jinja2's ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks, loop controls, the `generation` tag, HF's tojson filter and the raise_exception / strftime_now
// globals; values follow Python semantics (str() of None is "None", 7 // -2 == -4, strings index by code point).
// What is supported is listed in docs/tokenizers.md; anything else is refused at Parse with its position, so
// ForTokenizer can fall back to ChatML instead of rendering something the model never saw.
//
// Templates are untrusted data: there is no I/O, no reflection, and loops, output size and nesting are bounded
// (ChatTemplateLimits), so a hostile template fails with ChatTemplateException instead of hanging the server.
// A parsed ChatTemplate is immutable; Render is thread-safe.
using Duet.Tokenizers.Trainer;

namespace Duet.Tokenizers.ChatTemplates;

/// <summary>
/// One chat message: role ("system", "user", "assistant", "tool", ...) and its text; <see cref="Fields"/> adds the
/// other keys a template may read, as transformers passes them: an assistant's "tool_calls" ([{"id", "type",
/// "function": {"name", "arguments": {...}}}]), a tool result's "tool_call_id" and "name", or "content": null.
/// </summary>
public sealed record ChatTemplateMessage(string Role, string Content)
{
    /// <summary>More keys of the message (values as Render's extra takes them); they may replace "content", not "role".</summary>
    public IReadOnlyDictionary<string, object?>? Fields { get; init; }
}

/// <summary>Bounds on one Render call. A step is a loop iteration, a macro call, an element of a built list or 256 characters of built text.</summary>
public sealed record ChatTemplateLimits
{
    /// <summary>Maximum characters of the rendered prompt (and of any one string the template builds).</summary>
    public int MaxOutputChars { get; init; } = 16 << 20;
    /// <summary>Maximum steps of one render.</summary>
    public long MaxSteps { get; init; } = 2_000_000;
    /// <summary>Maximum nesting of macro calls.</summary>
    public int MaxCallDepth { get; init; } = 64;

    public static ChatTemplateLimits Default { get; } = new();
}

public sealed class ChatTemplate
{
    /// <summary>Templates longer than this are refused at Parse (real ones are a few KB).</summary>
    public const int MaxSourceChars = 1 << 20;

    private readonly TemplateBody _body;

    private ChatTemplate(string source, TemplateBody body, string? fallbackReason)
    {
        Source = source;
        _body = body;
        FallbackReason = fallbackReason;
    }

    /// <summary>The template text this instance renders.</summary>
    public string Source { get; }

    /// <summary>Why ForTokenizer used ChatML instead of the model's template (the parse error); null when it did not fall back.</summary>
    public string? FallbackReason { get; }

    /// <summary>True when this is the ChatML fallback chosen by ForTokenizer because the model's template could not be parsed.</summary>
    public bool IsFallback => FallbackReason is not null;

    public ChatTemplateLimits Limits { get; private init; } = ChatTemplateLimits.Default;

    /// <summary>The clock behind strftime_now (local time, as Python's datetime.now()).</summary>
    public TimeProvider TimeProvider { get; private init; } = TimeProvider.System;

    /// <summary>Parses a template. Throws ChatTemplateException (with Line and Column) on syntax errors and on filters, tests or tags outside the supported subset.</summary>
    public static ChatTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Length > MaxSourceChars)
            throw new ChatTemplateException($"chat template is {source.Length} characters long; at most {MaxSourceChars} are accepted");
        return new ChatTemplate(source, TemplateParser.Parse(source), null);
    }

    /// <summary>The fallback: ChatML, <c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n</c> per message, then <c>&lt;|im_start|&gt;assistant\n</c> when a generation prompt is asked for (the template BpeTrainer writes).</summary>
    public static ChatTemplate ChatMl { get; } = Parse(BpeTrainer.ChatMlTemplate);

    /// <summary>
    /// The template a tokenizer carries (Tokenizer.ChatTemplate): parsed, or ChatML when there is none. A template
    /// that does not parse also gives ChatML, with IsFallback set and FallbackReason saying why.
    /// </summary>
    public static ChatTemplate ForTokenizer(string? templateSource)
    {
        if (string.IsNullOrWhiteSpace(templateSource)) return ChatMl;
        try
        {
            return Parse(templateSource);
        }
        catch (ChatTemplateException e)
        {
            return new ChatTemplate(ChatMl.Source, ChatMl._body, "the model's chat template could not be used: " + e.Message);
        }
    }

    /// <summary>This template with other render limits.</summary>
    public ChatTemplate WithLimits(ChatTemplateLimits limits)
    {
        ArgumentNullException.ThrowIfNull(limits);
        return new ChatTemplate(Source, _body, FallbackReason) { Limits = limits, TimeProvider = TimeProvider };
    }

    /// <summary>This template with another clock for strftime_now (tests use a fixed one).</summary>
    public ChatTemplate WithTimeProvider(TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(timeProvider);
        return new ChatTemplate(Source, _body, FallbackReason) { Limits = Limits, TimeProvider = timeProvider };
    }

    /// <summary>
    /// Renders the prompt, with the variables Hugging Face passes: messages (a list of {role, content}),
    /// add_generation_prompt, bos_token, eos_token, tools and documents (none), then <paramref name="extra"/>
    /// (which may replace all of them but messages and add_generation_prompt). Extra values may be null, string,
    /// bool, integers, floating point, JsonElement / JsonNode, ChatTemplateMessage, dictionaries with string keys
    /// and sequences of those. Throws ChatTemplateException when the template calls raise_exception (Message is
    /// the template's message, RaisedByTemplate is set) or fails at run time.
    /// </summary>
    public string Render(IReadOnlyList<ChatTemplateMessage> messages, bool addGenerationPrompt, string bosToken, string eosToken,
        IReadOnlyDictionary<string, object?>? extra = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(bosToken);
        ArgumentNullException.ThrowIfNull(eosToken);
        var list = new List<object?>(messages.Count);
        foreach (var m in messages)
        {
            ArgumentNullException.ThrowIfNull(m, nameof(messages));
            list.Add(PyValues.FromMessage(m));
        }
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = new PyList(list),
            ["tools"] = null,
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = bosToken,
            ["eos_token"] = eosToken,
        };
        if (extra is not null)
        {
            foreach (var (name, value) in extra)
            {
                if (name is "messages" or "add_generation_prompt")
                    throw new ArgumentException($"'{name}' is a parameter of Render and cannot be passed in extra", nameof(extra));
                vars[name] = PyValues.FromDotNet(value, name);
            }
        }
        return new Interpreter(Limits, TimeProvider).Render(_body, vars);
    }

    /// <summary>Renders with exactly these variables (already template values or convertible .NET values); for tests of the language itself.</summary>
    internal string RenderVariables(IReadOnlyDictionary<string, object?> variables)
    {
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in variables) vars[name] = PyValues.FromDotNet(value, name);
        return new Interpreter(Limits, TimeProvider).Render(_body, vars);
    }
}
