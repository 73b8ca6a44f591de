// The generation fields chat and completion requests share, read and checked: sampling, limits, stop
// strings, logit bias, logprobs, response_format, streaming. Defaults follow llama.cpp's server
// (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05) where the OpenAI API leaves them open.
using System.Globalization;
using System.Text.Json;
using Duet.Inference;
using Duet.Inference.Constrained;
using Duet.Inference.Serving;

namespace Duet.Server;

internal sealed class GenerationParameters
{
    public int? MaxTokens;
    public SamplingOptions Sampling = new();
    public List<string> Stop = [];
    public Dictionary<int, float>? LogitBias;
    public int? TopLogprobs;
    public bool Stream, IncludeUsage, IgnoreEos;
    public JsonElement? Schema;
    public bool Json;
    /// <summary>A smaller context than the engine's for this request (Ollama's num_ctx).</summary>
    public int? NumCtx;
    /// <summary>Tool calling (chat): the request's tools, and tool_choice as "auto", "required", "none" or a function's name.</summary>
    public JsonElement? Tools;
    public List<(string Name, JsonElement Parameters)>? ToolList;
    public string ToolChoice = "auto";
    public string? ToolName;
    public bool ParallelToolCalls = true;
    /// <summary>Tools are offered and the reply is read for calls (tools given and tool_choice not "none").</summary>
    public bool UsesTools => ToolList is not null && ToolChoice != "none";

    public static GenerationParameters Read(JsonRequest r, ServerOptions o, InferenceEngine engine, bool chat)
    {
        var p = new GenerationParameters();
        int ctx = engine.Context, vocab = engine.Model.Config.Vocab;
        long? max = r.Integer("max_completion_tokens", 1, int.MaxValue) ?? r.Integer("max_tokens", 1, int.MaxValue);
        if (max > ctx)
            throw ApiException.Invalid($"max_tokens is {max}, but this model's context holds {ctx} tokens in all", r.Has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens", "context_length_exceeded");
        p.MaxTokens = (int?)max ?? (chat ? null : 16);
        if (r.Integer("n", 1, 128) is > 1) throw ApiException.Invalid("n > 1 is not supported: ask for one choice per request", "n");

        float temperature = (float)(r.Number("temperature", 0, 2) ?? 0.8);
        float topP = (float)(r.Number("top_p", 0, 1) ?? 0.95);
        if (topP == 0) { temperature = 0; topP = 1; }  // OpenAI accepts top_p 0: only the most likely token
        var seed = r.Get("seed") is { } sv
            ? (sv.ValueKind == JsonValueKind.Number && sv.TryGetInt64(out long sd) ? unchecked((ulong)sd) : throw ApiException.Invalid($"'seed' must be an integer, not {sv.GetRawText()}", "seed"))
            : (ulong)Random.Shared.NextInt64();
        p.Sampling = new SamplingOptions
        {
            Temperature = temperature,
            TopP = topP,
            TopK = (int)(r.Integer("top_k", 0, int.MaxValue) ?? 40),
            MinP = (float)(r.Number("min_p", 0, 0.999999) ?? 0.05),
            PresencePenalty = (float)(r.Number("presence_penalty", -2, 2) ?? 0),
            FrequencyPenalty = (float)(r.Number("frequency_penalty", -2, 2) ?? 0),
            RepeatPenalty = (float)(r.Number("repeat_penalty", 0.01, 10) ?? 1),
            Seed = seed,
        };

        if (r.Get("stop") is { } stop)
        {
            if (stop.ValueKind == JsonValueKind.String) p.Stop.Add(stop.GetString()!);
            else if (stop.ValueKind == JsonValueKind.Array)
            {
                if (stop.GetArrayLength() > o.MaxStopStrings) throw ApiException.Invalid($"'stop' has {stop.GetArrayLength()} strings; at most {o.MaxStopStrings} are allowed", "stop");
                foreach (var s in stop.EnumerateArray())
                    p.Stop.Add(s.ValueKind == JsonValueKind.String ? s.GetString()! : throw ApiException.Invalid("'stop' must be a string or an array of strings", "stop"));
            }
            else throw ApiException.Invalid($"'stop' must be a string or an array of strings, not {JsonRequest.Kind(stop.ValueKind)}", "stop");
            if (p.Stop.Any(s => s.Length > 512)) throw ApiException.Invalid("a stop string is longer than 512 characters", "stop");
        }

        if (r.Get("logit_bias") is { } lb)
        {
            if (lb.ValueKind != JsonValueKind.Object) throw ApiException.Invalid($"'logit_bias' must be an object of token id -> bias, not {JsonRequest.Kind(lb.ValueKind)}", "logit_bias");
            p.LogitBias = [];
            foreach (var prop in lb.EnumerateObject())
            {
                if (p.LogitBias.Count >= o.MaxLogitBias) throw ApiException.Invalid($"'logit_bias' has more than {o.MaxLogitBias} entries", "logit_bias");
                if (!int.TryParse(prop.Name, NumberStyles.None, CultureInfo.InvariantCulture, out int id) || id >= vocab)
                    throw ApiException.Invalid($"'logit_bias' key '{Clip(prop.Name)}' is not a token id (0..{vocab - 1})", "logit_bias");
                if (prop.Value.ValueKind != JsonValueKind.Number || !prop.Value.TryGetDouble(out double b) || b < -100 || b > 100)
                    throw ApiException.Invalid($"'logit_bias' value for token {id} must be a number between -100 and 100", "logit_bias");
                // -100 bans and +100 forces, as OpenAI documents it, whatever the logits' scale.
                p.LogitBias[id] = b <= -100 ? float.NegativeInfinity : b >= 100 ? 1e4f : (float)b;
            }
        }

        if (chat)
        {
            bool logprobs = r.Bool("logprobs") ?? false;
            long? top = r.Integer("top_logprobs", 0, 20);
            if (top is not null && !logprobs) throw ApiException.Invalid("'top_logprobs' needs 'logprobs': true", "top_logprobs");
            p.TopLogprobs = logprobs ? (int)(top ?? 0) : null;
        }
        else p.TopLogprobs = (int?)r.Integer("logprobs", 0, 20);

        p.Stream = r.Bool("stream") ?? false;
        if (r.Get("stream_options") is { } so)
        {
            if (so.ValueKind != JsonValueKind.Object) throw ApiException.Invalid("'stream_options' must be an object", "stream_options");
            if (so.TryGetProperty("include_usage", out var iu) && iu.ValueKind is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
                throw ApiException.Invalid("'stream_options.include_usage' must be a boolean", "stream_options");
            p.IncludeUsage = so.TryGetProperty("include_usage", out iu) && iu.ValueKind == JsonValueKind.True;
        }
        p.IgnoreEos = r.Bool("ignore_eos") ?? false;

        if (r.Get("response_format") is { } rf)
        {
            if (rf.ValueKind != JsonValueKind.Object || !rf.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String)
                throw ApiException.Invalid("'response_format' must be an object with a 'type'", "response_format");
            switch (t.GetString())
            {
                case "text": break;
                case "json_object": p.Json = true; break;
                case "json_schema":
                    if (!rf.TryGetProperty("json_schema", out var js) || js.ValueKind != JsonValueKind.Object)
                        throw ApiException.Invalid("'response_format.json_schema' must be an object with a 'schema'", "response_format");
                    p.Json = true;
                    if (js.TryGetProperty("schema", out var schema) && schema.ValueKind != JsonValueKind.Null)
                    {
                        if (schema.ValueKind is not (JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False))
                            throw ApiException.Invalid("'response_format.json_schema.schema' must be a JSON schema object", "response_format");
                        p.Schema = schema.Clone();
                    }
                    break;
                default: throw ApiException.Invalid($"'response_format.type' must be text, json_object or json_schema, not '{Clip(t.GetString()!)}'", "response_format");
            }
        }
        if (chat) ReadTools(r, p);
        foreach (var unsupported in chat ? new[] { "functions", "function_call", "audio", "prediction" } : ["tools", "tool_choice", "functions", "audio", "prediction"])
            if (r.Has(unsupported)) throw ApiException.Invalid($"'{unsupported}' is not supported by this server{(unsupported == "functions" ? "; use 'tools'" : "")}", unsupported);
        return p;
    }

    /// <summary>
    /// Under tool_choice "required" or a named function: the request with the constraint that makes its reply one call,
    /// in the model's own format, with arguments valid against the tool's schema (a 400 when the schema is outside the
    /// decoder's subset or the token limit cannot hold the shortest call). Otherwise the request as it is.
    /// </summary>
    public GenerationRequest WithToolConstraint(GenerationRequest request, InferenceEngine engine)
    {
        if (!UsesTools) return request;
        if (ToolChoice == "auto")
        {
            // Free text, until the reply starts a call: from there on it is constrained (unless a JSON response_format shapes it).
            if (request.Constraint is not null) return request;
            try
            {
                return request with
                {
                    Constraint = Duet.Inference.Tools.ToolCallConstraint.CreateLazy(engine.Tokenizer, Duet.Inference.Tools.ToolCallFormat.Detect(engine.Tokenizer.ChatTemplate),
                        engine.Tokenizer.ChatTemplate, ToolList!, engine.StopTokens, engine.Model.Config.Vocab, ParallelToolCalls),
                };
            }
            catch (Exception e) when (e is ArgumentException or SchemaException)
            {
                throw ApiException.Invalid($"tools: {e.Message}", "tools", "invalid_schema");
            }
        }
        if (ToolChoice is not ("required" or "named")) return request;
        JsonConstraint constraint;
        try
        {
            constraint = Duet.Inference.Tools.ToolCallConstraint.Create(engine.Tokenizer, Duet.Inference.Tools.ToolCallFormat.Detect(engine.Tokenizer.ChatTemplate),
                engine.Tokenizer.ChatTemplate, ToolList!, ToolName, engine.StopTokens, engine.Model.Config.Vocab, parallel: ParallelToolCalls && ToolChoice == "required");
        }
        catch (Exception e) when (e is ArgumentException or SchemaException)
        {
            throw ApiException.Invalid($"tools: {e.Message}", "tools", "invalid_schema");
        }
        if (request.MaxTokens < constraint.MinimumLength)
            throw ApiException.Invalid($"max_tokens {request.MaxTokens} cannot hold the shortest call of the tools ({constraint.MinimumLength} bytes)", "max_tokens");
        return request with { Constraint = constraint };
    }

    internal static void ReadTools(JsonRequest r, GenerationParameters p)
    {
        if (r.Get("tools") is { } tools && tools.ValueKind != JsonValueKind.Null)
        {
            try { p.ToolList = Duet.Inference.Tools.ToolCallConstraint.ReadTools(tools); }
            catch (ArgumentException e) { throw ApiException.Invalid(e.Message, "tools"); }
            p.Tools = tools.Clone();
        }
        if (r.Get("tool_choice") is { } choice && choice.ValueKind != JsonValueKind.Null)
        {
            if (p.ToolList is null) throw ApiException.Invalid("'tool_choice' is only allowed when 'tools' are specified", "tool_choice");
            if (choice.ValueKind == JsonValueKind.String)
                p.ToolChoice = choice.GetString() is "none" or "auto" or "required" ? choice.GetString()!
                    : throw ApiException.Invalid($"'tool_choice' must be none, auto, required or {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}, not '{Clip(choice.GetString()!)}'", "tool_choice");
            else if (choice.ValueKind == JsonValueKind.Object && choice.TryGetProperty("function", out var f) && f.ValueKind == JsonValueKind.Object
                && f.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String)
            {
                if (!p.ToolList.Any(t => t.Name == n.GetString())) throw ApiException.Invalid($"'tool_choice' names the function '{Clip(n.GetString()!)}', which is not among the tools", "tool_choice");
                p.ToolChoice = "named";
                p.ToolName = n.GetString();
            }
            else throw ApiException.Invalid("'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice");
        }
        if (r.Bool("parallel_tool_calls") is bool parallel) p.ParallelToolCalls = parallel;
        if (p.UsesTools && p.Json && p.ToolChoice != "auto")
            throw ApiException.Invalid("'response_format' json and a required tool call cannot both shape the reply", "response_format");
    }

    public GenerationRequest ToRequest(int[] prompt, InferenceEngine engine, Func<JsonElement?, ITokenConstraint>? constraints)
    {
        int ctx = NumCtx is int n && n < engine.Context ? n : engine.Context;
        if (prompt.Length >= ctx)
            throw ApiException.Invalid($"This model's maximum context length is {ctx} tokens. However, your prompt has {prompt.Length} tokens; at most {ctx - 1} leave room for a reply.", "messages", "context_length_exceeded");
        int max = MaxTokens ?? ctx - prompt.Length;
        if (prompt.Length + max > ctx)
            throw ApiException.Invalid($"This model's maximum context length is {ctx} tokens. However, you requested {prompt.Length + max} tokens ({prompt.Length} in the prompt, {max} for the completion). Please reduce the prompt or the completion length.", "max_tokens", "context_length_exceeded");
        ITokenConstraint? constraint = null;
        if (Json)
        {
            if (constraints is null) throw ApiException.Invalid("this server cannot constrain output to JSON", "response_format");
            try { constraint = constraints(Schema); }
            catch (Exception e) when (e is ArgumentException or NotSupportedException or FormatException or InvalidOperationException or SchemaException)
            {
                throw ApiException.Invalid($"response_format: {e.Message}", "response_format", "invalid_schema");
            }
            if (constraint is JsonConstraint jc && max < jc.MinimumLength)
                throw ApiException.Invalid($"max_tokens {max} cannot hold the shortest document the schema allows ({jc.MinimumLength} bytes)", "max_tokens");
        }
        return new GenerationRequest
        {
            Prompt = prompt, MaxTokens = max, Sampling = Sampling, Stop = Stop, LogitBias = LogitBias, TopLogprobs = TopLogprobs,
            Constraint = constraint, IgnoreEos = IgnoreEos,
        };
    }

    public static string Clip(string s) => s.Length <= 64 ? s : s[..64] + "…";
}
