// Tool calls in a model's own words (issue 19). A chat template that renders tools teaches its model one way of
// calling them; the server must read the calls back from the generated text in that same way:
//   Hermes   Qwen2.5/Qwen3, Hermes 2 Pro/3 and Duet's ChatML fallback:
//              <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>   (one block per call)
//   Llama3   Llama 3.1/3.2/3.3 with JSON tools: the whole reply is {"name": "get_weather", "parameters": {...}}
//              (optionally after <|python_tag|>), one call
//   Mistral  Mistral v0.3, Nemo, Large: [TOOL_CALLS] [{"name": "get_weather", "arguments": {...}, "id": "a1B2c3D4e"}]
//              (ids of 9 letters and digits, which Mistral's templates check in the history)
// The style is read from the template's text (the markers it writes). A reply that starts like a call but does not
// parse as one (unbalanced JSON, no name, arguments that are not an object) is returned as text with no calls: a
// malformed call is the model's text, not a server error. Under tool_choice "required" or a named tool the
// constrained decoder makes the call parse (Duet.Inference.Constrained), so this fallback is for "auto".
// For a template that renders no tools (ChatML, Yi), the tools are described in a system message in the Hermes
// style (FallbackSystemPrompt), and the calls are read in that style.
using System.Text;
using System.Text.Json;

namespace Duet.Inference.Tools;

public enum ToolCallStyle { Hermes, Llama3, Mistral }

/// <summary>A call the model made: its id, the function's name and the arguments as a JSON object's text (compact).</summary>
public sealed record ToolCall(string Id, string Name, string Arguments);

public static class ToolCallFormat
{
    public const string HermesOpen = "<tool_call>", HermesClose = "</tool_call>", MistralMarker = "[TOOL_CALLS]", PythonTag = "<|python_tag|>";

    /// <summary>Whether a template renders tools itself (it reads the <c>tools</c> variable).</summary>
    public static bool RendersTools(string? templateSource) => templateSource is not null && templateSource.Contains("tools", StringComparison.Ordinal)
        && (templateSource.Contains(MistralMarker, StringComparison.Ordinal) || templateSource.Contains(HermesOpen, StringComparison.Ordinal)
            || templateSource.Contains("\"parameters\"", StringComparison.Ordinal) || templateSource.Contains("'parameters'", StringComparison.Ordinal));

    /// <summary>The style a template teaches (Hermes for one that renders no tools: the fallback prompt's style).</summary>
    public static ToolCallStyle Detect(string? templateSource)
    {
        if (templateSource is null) return ToolCallStyle.Hermes;
        if (templateSource.Contains(MistralMarker, StringComparison.Ordinal)) return ToolCallStyle.Mistral;
        if (templateSource.Contains(HermesOpen, StringComparison.Ordinal)) return ToolCallStyle.Hermes;
        if (templateSource.Contains("\"parameters\"", StringComparison.Ordinal) || templateSource.Contains("'parameters'", StringComparison.Ordinal)) return ToolCallStyle.Llama3;
        return ToolCallStyle.Hermes;
    }

    /// <summary>
    /// The reply's text and calls. <paramref name="newId"/> names calls the model did not name (Mistral's calls get a
    /// 9-character id when the model wrote none).
    /// A reply that holds a malformed call is all text.
    /// </summary>
    public static (string Content, IReadOnlyList<ToolCall> Calls) Parse(ToolCallStyle style, string output, Func<string> newId)
    {
        switch (style)
        {
            case ToolCallStyle.Hermes when ParseHermes(output, newId, out string content) is { Count: > 0 } calls: return (content, calls);
            case ToolCallStyle.Llama3 when ParseLlama3(output, newId) is { Count: > 0 } calls: return ("", calls);
            case ToolCallStyle.Mistral when ParseMistral(output, out string before) is { Count: > 0 } calls: return (before, calls);
        }
        return (output, []);
    }

    private static List<ToolCall>? ParseHermes(string output, Func<string> newId, out string content)
    {
        var calls = new List<ToolCall>();
        var text = new StringBuilder();
        int pos = 0;
        while (true)
        {
            int open = output.IndexOf(HermesOpen, pos, StringComparison.Ordinal);
            if (open < 0) { text.Append(output, pos, output.Length - pos); break; }
            text.Append(output, pos, open - pos);
            int start = open + HermesOpen.Length;
            int close = output.IndexOf(HermesClose, start, StringComparison.Ordinal);
            string body = close < 0 ? output[start..] : output[start..close]; // the last block may end at end-of-turn
            if (Call(body, "arguments", newId()) is not { } call) { content = output; return null; }
            calls.Add(call);
            if (close < 0) { pos = output.Length; break; }
            pos = close + HermesClose.Length;
        }
        content = text.ToString().Trim();
        return calls;
    }

    private static List<ToolCall>? ParseLlama3(string output, Func<string> newId)
    {
        var t = output.Trim();
        if (t.StartsWith(PythonTag, StringComparison.Ordinal)) t = t[PythonTag.Length..].Trim();
        if (!t.StartsWith('{')) return null;
        // Llama 3.1's own prompt asks for "parameters"; models trained elsewhere write "arguments": both are read.
        return Call(t, "parameters", newId()) is { } call ? [call] : null;
    }

    private static List<ToolCall>? ParseMistral(string output, out string before)
    {
        int at = output.IndexOf(MistralMarker, StringComparison.Ordinal);
        before = at < 0 ? output : output[..at].Trim();
        if (at < 0) return null;
        var json = output[(at + MistralMarker.Length)..].Trim();
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException) { return null; }
        using (doc)
        {
            var items = doc.RootElement.ValueKind == JsonValueKind.Array ? doc.RootElement.EnumerateArray().ToList()
                : doc.RootElement.ValueKind == JsonValueKind.Object ? [doc.RootElement] : null;
            if (items is null || items.Count == 0) return null;
            var calls = new List<ToolCall>();
            foreach (var item in items)
            {
                string id = item.ValueKind == JsonValueKind.Object && item.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String && IsMistralId(i.GetString()!)
                    ? i.GetString()! : MistralId();
                if (Call(item, "arguments", id) is not { } call) return null;
                calls.Add(call);
            }
            return calls;
        }
    }

    /// <summary>One call from a JSON object {"name": ..., "arguments"|"parameters": {...} or a JSON string of one}; null if it is not one.</summary>
    private static ToolCall? Call(string json, string argumentsKey, string id)
    {
        try
        {
            using var doc = JsonDocument.Parse(json.Trim());
            return Call(doc.RootElement, argumentsKey, id);
        }
        catch (JsonException) { return null; }
    }

    private static ToolCall? Call(JsonElement o, string argumentsKey, string id)
    {
        if (o.ValueKind != JsonValueKind.Object || !o.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || name.GetString()!.Length == 0) return null;
        if (!o.TryGetProperty(argumentsKey, out var args) && !o.TryGetProperty(argumentsKey == "arguments" ? "parameters" : "arguments", out args))
            return new ToolCall(id, name.GetString()!, "{}");
        if (args.ValueKind == JsonValueKind.String)
        {
            try
            {
                using var inner = JsonDocument.Parse(args.GetString()!);
                return inner.RootElement.ValueKind == JsonValueKind.Object ? new ToolCall(id, name.GetString()!, Compact(inner.RootElement)) : null;
            }
            catch (JsonException) { return null; }
        }
        return args.ValueKind == JsonValueKind.Object ? new ToolCall(id, name.GetString()!, Compact(args)) : null;
    }

    private static string Compact(JsonElement e) => JsonSerializer.Serialize(e, s_compact);
    private static readonly JsonSerializerOptions s_compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static bool IsMistralId(string s) => s.Length == 9 && s.All(char.IsAsciiLetterOrDigit);

    /// <summary>A fresh 9-character id of letters and digits, as Mistral's templates require of a call's id.</summary>
    public static string MistralId()
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        Span<char> id = stackalloc char[9];
        for (int i = 0; i < id.Length; i++) id[i] = alphabet[System.Security.Cryptography.RandomNumberGenerator.GetInt32(alphabet.Length)];
        return new string(id);
    }

    /// <summary>
    /// The system text that offers tools to a model whose template renders none (ChatML, Yi): the tools' JSON in
    /// &lt;tools&gt; tags and the Hermes call format, as Qwen2.5's and Hermes' templates word it.
    /// </summary>
    public static string FallbackSystemPrompt(string? system, JsonElement tools)
    {
        var sb = new StringBuilder();
        if (!string.IsNullOrEmpty(system)) sb.Append(system).Append("\n\n");
        sb.Append("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n");
        sb.Append("You are provided with function signatures within <tools></tools> XML tags:\n<tools>");
        foreach (var t in tools.EnumerateArray()) sb.Append('\n').Append(Compact(t));
        sb.Append("\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n");
        sb.Append("<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>");
        return sb.ToString();
    }
}

/// <summary>
/// A streamed reply that may hold tool calls: text is passed on as it comes unless it could be (the start of) a
/// call in the style, which is held back; at the end the held text is parsed, giving calls, or released as text
/// if it was none (a malformed call is text).
/// </summary>
public sealed class ToolCallStream(ToolCallStyle style)
{
    private readonly StringBuilder _text = new();
    private int _emitted;

    public ToolCallStyle Style => style;
    private bool _plain; // Llama 3: the reply is not a call (it does not start like one)

    /// <summary>Adds generated text; returns the part that can be sent as content now.</summary>
    public string Push(string text)
    {
        _text.Append(text);
        var s = _text.ToString();
        int safe = Math.Max(_emitted, SafeLength(s));
        var output = s[_emitted..safe];
        _emitted = safe;
        return output;
    }

    /// <summary>The reply is complete, its last text <paramref name="trailing"/>: its calls, and the text not sent yet that is content (all of it when there are no calls).</summary>
    public (string Unsent, IReadOnlyList<ToolCall> Calls) Finish(string trailing, Func<string> newId)
    {
        var free = Push(trailing);
        var (unsent, calls) = Finish(newId);
        return (free + unsent, calls);
    }

    private (string Unsent, IReadOnlyList<ToolCall> Calls) Finish(Func<string> newId)
    {
        var s = _text.ToString();
        var (_, calls) = ToolCallFormat.Parse(style, s, newId);
        return calls.Count > 0 ? ("", calls) : (s[_emitted..], calls);
    }

    private int SafeLength(string s)
    {
        if (style == ToolCallStyle.Llama3)
        {
            if (_plain) return s.Length;
            var t = s.TrimStart();
            if (t.Length == 0 || t.StartsWith('{') || t.StartsWith(ToolCallFormat.PythonTag, StringComparison.Ordinal) || ToolCallFormat.PythonTag.StartsWith(t, StringComparison.Ordinal)) return _emitted;
            _plain = true;
            return s.Length;
        }
        string marker = style == ToolCallStyle.Hermes ? ToolCallFormat.HermesOpen : ToolCallFormat.MistralMarker;
        int at = s.IndexOf(marker, StringComparison.Ordinal);
        if (at >= 0) return at;
        for (int k = Math.Min(marker.Length - 1, s.Length); k > 0; k--)
            if (s.AsSpan(s.Length - k).SequenceEqual(marker.AsSpan(0, k))) return s.Length - k;
        return s.Length;
    }
}
