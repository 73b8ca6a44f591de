// The constraint that makes a reply one valid tool call (tool_choice "required" or a named function): the call's frame
// in the model's own format around a JSON object whose "name" is one of the tools (or the named one) and whose
// arguments validate against that tool's parameters schema, through the JSON-schema constrained decoder:
//   Hermes   <tool_call>\n{"name":"get_weather","arguments":{...}}\n</tool_call>
//   Llama3   {"name":"get_weather","parameters":{...}}
//   Mistral  [TOOL_CALLS] [{"name":"get_weather","arguments":{...}}]     ([TOOL_CALLS][ for templates that write it so)
// so ToolCallFormat.Parse always finds the call. The JSON is compact (the decoder writes no whitespace).
using System.Text.Json;
using System.Text.Json.Nodes;
using Duet.Inference.Constrained;
using Duet.Tokenizers;

namespace Duet.Inference.Tools;

public static class ToolCallConstraint
{
    /// <summary>The tools of a request, checked: [{"type": "function", "function": {"name", "description"?, "parameters"?}}].</summary>
    public static List<(string Name, JsonElement Parameters)> ReadTools(JsonElement tools)
    {
        if (tools.ValueKind != JsonValueKind.Array || tools.GetArrayLength() == 0) throw new ArgumentException("'tools' must be a non-empty array of function tools");
        var list = new List<(string, JsonElement)>();
        int i = 0;
        foreach (var t in tools.EnumerateArray())
        {
            string at = $"tools[{i++}]";
            if (t.ValueKind != JsonValueKind.Object || !t.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "function")
                throw new ArgumentException($"'{at}' must be an object with \"type\": \"function\"");
            if (!t.TryGetProperty("function", out var f) || f.ValueKind != JsonValueKind.Object)
                throw new ArgumentException($"'{at}.function' must be an object");
            if (!f.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String || name.GetString()!.Length is 0 or > 64)
                throw new ArgumentException($"'{at}.function.name' must be a string of 1 to 64 characters");
            if (list.Any(x => x.Item1 == name.GetString())) throw new ArgumentException($"'{at}.function.name' \"{name.GetString()}\" is given twice");
            JsonElement parameters;
            if (!f.TryGetProperty("parameters", out parameters) || parameters.ValueKind == JsonValueKind.Null)
                parameters = JsonDocument.Parse("""{"type":"object","properties":{}}""").RootElement.Clone();
            else if (parameters.ValueKind != JsonValueKind.Object) throw new ArgumentException($"'{at}.function.parameters' must be a JSON schema object");
            list.Add((name.GetString()!, Tidy(parameters)));
        }
        return list;
    }

    /// <summary>
    /// The schema as clients send it, tidied as servers that accept them do: keywords whose value is null, and an empty
    /// "enum" (OllamaSharp serializes every property's unset fields so), mean nothing and are dropped ("const": null stays).
    /// </summary>
    private static JsonElement Tidy(JsonElement schema)
    {
        static void Walk(JsonNode? node)
        {
            if (node is JsonObject o)
            {
                foreach (var key in o.Where(p => (p.Value is null && p.Key != "const") || (p.Key == "enum" && p.Value is JsonArray { Count: 0 })).Select(p => p.Key).ToList()) o.Remove(key);
                foreach (var (_, v) in o) Walk(v);
            }
            else if (node is JsonArray a) foreach (var v in a) Walk(v);
        }
        var root = JsonNode.Parse(schema.GetRawText());
        Walk(root);
        return JsonDocument.Parse(root!.ToJsonString()).RootElement.Clone();
    }

    /// <summary>The schema of one call: an object with the tool's name and its arguments (anyOf over the tools allowed).</summary>
    public static JsonElement CallSchema(ToolCallStyle style, IReadOnlyList<(string Name, JsonElement Parameters)> tools, string? only = null)
    {
        string argsKey = style == ToolCallStyle.Llama3 ? "parameters" : "arguments";
        var allowed = only is null ? tools : tools.Where(t => t.Name == only).ToList();
        if (allowed.Count == 0) throw new ArgumentException($"no tool named \"{only}\" among the request's tools ({string.Join(", ", tools.Select(t => t.Name))})");
        var options = new JsonArray();
        foreach (var (name, parameters) in allowed)
            options.Add(new JsonObject
            {
                ["type"] = "object",
                ["properties"] = new JsonObject { ["name"] = new JsonObject { ["const"] = name }, [argsKey] = JsonNode.Parse(parameters.GetRawText()) },
                ["required"] = new JsonArray("name", argsKey),
                ["additionalProperties"] = false,
            });
        var schema = options.Count == 1 ? options[0]!.DeepClone() : new JsonObject { ["anyOf"] = options };
        return JsonDocument.Parse(schema.ToJsonString()).RootElement.Clone();
    }

    /// <summary>The literal text around a call in a style (Mistral's spacing as the template writes it).</summary>
    public static (string Prefix, string Suffix) Frame(ToolCallStyle style, string? templateSource) => style switch
    {
        ToolCallStyle.Hermes => (ToolCallFormat.HermesOpen + "\n", "\n" + ToolCallFormat.HermesClose),
        ToolCallStyle.Mistral => (templateSource is not null && templateSource.Contains(ToolCallFormat.MistralMarker + "[", StringComparison.Ordinal)
            ? ToolCallFormat.MistralMarker + "[" : ToolCallFormat.MistralMarker + " [", "]"),
        _ => ("", ""),
    };

    /// <summary>
    /// A constraint whose output is one call of one of <paramref name="tools"/> (or of <paramref name="only"/>) in the
    /// style's frame. Throws SchemaException for a parameters schema outside the decoder's subset, ArgumentException
    /// for an unknown name.
    /// </summary>
    /// <summary>
    /// tool_choice "auto": free text until the reply starts a call in the style's frame, then that call constrained
    /// as <see cref="Create"/> constrains it (LazyToolConstraint).
    /// </summary>
    public static LazyToolConstraint CreateLazy(Tokenizer tokenizer, ToolCallStyle style, string? templateSource, IReadOnlyList<(string Name, JsonElement Parameters)> tools,
        IReadOnlyCollection<int> stopTokens, int vocab = 0, bool parallel = false)
    {
        _ = Create(tokenizer, style, templateSource, tools, null, stopTokens, vocab, parallel); // a schema outside the decoder's subset fails here, not mid-reply
        var (trigger, atStart) = style switch
        {
            ToolCallStyle.Hermes => (ToolCallFormat.HermesOpen, false),
            ToolCallStyle.Mistral => (ToolCallFormat.MistralMarker, false),
            _ => ("{", true),
        };
        return new LazyToolConstraint(tokenizer, trigger, atStart, () => Create(tokenizer, style, templateSource, tools, null, stopTokens, vocab, parallel));
    }

    /// <param name="parallel">more than one call may follow the first (Hermes' blocks one after another, Mistral's array;
    /// Llama 3 writes one call)</param>
    public static JsonConstraint Create(Tokenizer tokenizer, ToolCallStyle style, string? templateSource, IReadOnlyList<(string Name, JsonElement Parameters)> tools,
        string? only, IReadOnlyCollection<int> stopTokens, int vocab = 0, bool parallel = false)
    {
        var (prefix, suffix) = Frame(style, templateSource);
        string? between = !parallel ? null : style switch
        {
            ToolCallStyle.Hermes => suffix + "\n" + prefix,
            ToolCallStyle.Mistral => ",",
            _ => null,
        };
        return JsonConstraint.CreateFramed(tokenizer, CallSchema(style, tools, only), prefix, suffix, stopTokens, vocab, between);
    }
}
