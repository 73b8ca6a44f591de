// The OpenAI routes: POST /v1/chat/completions, POST /v1/completions (both streamed as server-sent events
// or whole), POST /v1/embeddings, GET /v1/models. Response shapes follow the OpenAI API reference, so the
// official SDKs read them.
using System.Text;
using System.Text.Json;
using Duet.Inference;
using Duet.Inference.Serving;
using Duet.Inference.Tools;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Duet.Server.Endpoints;

internal static class OpenAi
{
    public static void Map(WebApplication app)
    {
        app.MapPost("/v1/chat/completions", (HttpContext c) => Generate(c, chat: true));
        app.MapPost("/v1/completions", (HttpContext c) => Generate(c, chat: false));
        app.MapPost("/v1/embeddings", Embeddings);
        app.MapGet("/v1/models", Models);
        app.MapGet("/v1/models/{id}", (HttpContext c, string id) => Model(c, id));
    }

    private static ModelRegistry Registry(HttpContext c) => c.RequestServices.GetRequiredService<ModelRegistry>();

    /// <summary>The model a request names in "model" (none: the first one served), loaded and leased for the request's life.</summary>
    internal static async Task<(ModelHost Host, IDisposable Lease)> Use(HttpContext c, JsonRequest body)
    {
        if (body.Get("model") is { } model && model.ValueKind != JsonValueKind.String) throw ApiException.Invalid("'model' must be a string", "model");
        return await Registry(c).UseAsync(body.String("model"), c.RequestAborted).ConfigureAwait(false);
    }

    private static string NewId(string prefix) => prefix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));

    private static Task Models(HttpContext c) => WriteJson(c, w =>
    {
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        foreach (var host in Registry(c).Hosts) WriteModel(w, host);
        w.WriteEndArray();
        w.WriteEndObject();
    });

    private static Task Model(HttpContext c, string id)
    {
        var host = Registry(c).Get(id);
        return WriteJson(c, w => WriteModel(w, host));
    }

    private static void WriteModel(Utf8JsonWriter w, ModelHost host)
    {
        w.WriteStartObject();
        w.WriteString("id", host.Name);
        w.WriteString("object", "model");
        w.WriteNumber("created", host.Created);
        w.WriteString("owned_by", "duet");
        if (host.Ready)
        {
            var e = host.Engine;
            w.WriteStartObject("meta");
            w.WriteNumber("n_ctx", e.Context);
            w.WriteNumber("n_vocab", e.Model.Config.Vocab);
            w.WriteNumber("n_embd", e.Model.Config.Dim);
            w.WriteNumber("n_layer", e.Model.Config.Layers);
            w.WriteNumber("slots", e.Options.Slots);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    internal static Task WriteJson(HttpContext c, Action<Utf8JsonWriter> write, int status = 200)
    {
        c.Response.StatusCode = status;
        c.Response.ContentType = "application/json";
        return c.Response.WriteAsync(DuetServer.Json(write), c.RequestAborted);
    }

    private static List<ChatTurn> ReadMessages(JsonRequest r, ServerOptions o)
    {
        if (r.Get("messages") is not { } ms || ms.ValueKind != JsonValueKind.Array)
            throw ApiException.Invalid("'messages' must be an array of {role, content} objects", "messages");
        int n = ms.GetArrayLength();
        if (n == 0) throw ApiException.Invalid("'messages' is empty", "messages");
        if (n > o.MaxMessages) throw ApiException.Invalid($"'messages' has {n} messages; at most {o.MaxMessages} are accepted", "messages");
        var list = new List<ChatTurn>(n);
        var callNames = new Dictionary<string, string>(StringComparer.Ordinal); // tool_call_id -> function, from the assistants' calls
        int i = 0;
        foreach (var m in ms.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw ApiException.Invalid($"'{at}' must be an object", at);
            if (!m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw ApiException.Invalid($"'{at}.role' must be a string", at + ".role");
            string name = role.GetString()!;
            if (name is not ("system" or "developer" or "user" or "assistant" or "tool"))
                throw ApiException.Invalid($"'{at}.role' is '{GenerationParameters.Clip(name)}'; it must be system, developer, user, assistant or tool", at + ".role");
            if (name == "developer") name = "system";
            var turn = new ChatTurn(name, ContentText(m, at));
            if (name == "assistant" && m.TryGetProperty("tool_calls", out var tc) && tc.ValueKind != JsonValueKind.Null)
            {
                var calls = ReadToolCalls(tc, at + ".tool_calls");
                foreach (var c in calls) callNames[c.Id] = c.Name;
                turn = turn with { ToolCalls = calls };
            }
            if (name == "tool")
            {
                if (!m.TryGetProperty("tool_call_id", out var id) || id.ValueKind != JsonValueKind.String)
                    throw ApiException.Invalid($"'{at}.tool_call_id' must be the id of the call this is the result of", at + ".tool_call_id");
                string? fn = m.TryGetProperty("name", out var nm) && nm.ValueKind == JsonValueKind.String ? nm.GetString() : callNames.GetValueOrDefault(id.GetString()!);
                turn = turn with { ToolCallId = id.GetString(), Name = fn };
            }
            list.Add(turn);
        }
        return list;
    }

    // An assistant's tool_calls: [{"id", "type": "function", "function": {"name", "arguments": "{...}"}}]; arguments a JSON object's text (or the object).
    private static List<ToolCall> ReadToolCalls(JsonElement tc, string at)
    {
        if (tc.ValueKind != JsonValueKind.Array) throw ApiException.Invalid($"'{at}' must be an array", at);
        var calls = new List<ToolCall>();
        int k = 0;
        foreach (var c in tc.EnumerateArray())
        {
            string where = $"{at}[{k++}]";
            if (c.ValueKind != JsonValueKind.Object || !c.TryGetProperty("function", out var f) || f.ValueKind != JsonValueKind.Object
                || !f.TryGetProperty("name", out var fname) || fname.ValueKind != JsonValueKind.String)
                throw ApiException.Invalid($"'{where}' must be {{\"id\", \"type\": \"function\", \"function\": {{\"name\", \"arguments\"}}}}", where);
            string id = c.TryGetProperty("id", out var idv) && idv.ValueKind == JsonValueKind.String ? idv.GetString()! : $"call_{k}";
            string args = "{}";
            if (f.TryGetProperty("arguments", out var a) && a.ValueKind != JsonValueKind.Null)
            {
                try
                {
                    using var doc = a.ValueKind == JsonValueKind.String ? JsonDocument.Parse(a.GetString()!) : JsonDocument.Parse(a.GetRawText());
                    if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new JsonException("not an object");
                    args = JsonSerializer.Serialize(doc.RootElement);
                }
                catch (JsonException) { throw ApiException.Invalid($"'{where}.function.arguments' must be a JSON object (as a string)", where + ".function.arguments"); }
            }
            calls.Add(new ToolCall(id, fname.GetString()!, args));
        }
        return calls;
    }

    // content: a string, null (an assistant turn with tool calls), or an array of parts of which only text is understood.
    private static string ContentText(JsonElement m, string at)
    {
        if (!m.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null) return "";
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw ApiException.Invalid($"'{at}.content' must be a string or an array of content parts", at + ".content");
        var sb = new StringBuilder();
        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                throw ApiException.Invalid($"'{at}.content' parts must be objects with a 'type'", at + ".content");
            if (type.GetString() is not ("text" or "input_text"))
                throw ApiException.Invalid($"'{at}.content' has a '{GenerationParameters.Clip(type.GetString()!)}' part; this model reads text only", at + ".content");
            if (!part.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
                throw ApiException.Invalid($"'{at}.content' text parts need a 'text' string", at + ".content");
            sb.Append(text.GetString());
        }
        return sb.ToString();
    }

    private static int[] ReadPrompt(JsonRequest r, InferenceEngine e)
    {
        if (r.Get("prompt") is not { } p) throw ApiException.Invalid("'prompt' is required", "prompt");
        if (r.Bool("echo") == true) throw ApiException.Invalid("'echo' is not supported", "echo");
        if (r.Has("suffix")) throw ApiException.Invalid("'suffix' is not supported", "suffix");
        if (p.ValueKind == JsonValueKind.Array && p.GetArrayLength() == 1 && p[0].ValueKind is JsonValueKind.String or JsonValueKind.Array) p = p[0];
        if (p.ValueKind == JsonValueKind.String)
            return e.Tokenizer.Encode(p.GetString()!, addSpecialTokens: true);
        if (p.ValueKind == JsonValueKind.Array)
        {
            var ids = new int[p.GetArrayLength()];
            int i = 0;
            foreach (var t in p.EnumerateArray())
            {
                if (t.ValueKind != JsonValueKind.Number || !t.TryGetInt32(out int id) || (uint)id >= (uint)e.Model.Config.Vocab)
                    throw ApiException.Invalid($"'prompt' as tokens must hold token ids 0..{e.Model.Config.Vocab - 1}", "prompt");
                ids[i++] = id;
            }
            if (ids.Length == 0) throw ApiException.Invalid("'prompt' is empty", "prompt");
            return ids;
        }
        throw ApiException.Invalid("'prompt' must be a string, an array of one string, or an array of token ids (one prompt per request)", "prompt");
    }

    /// <summary>Queues a request on the engine: 503 when its queue is full, 400 for a request it refuses.</summary>
    internal static GenerationStream Submit(InferenceEngine engine, GenerationRequest request, CancellationToken cancel)
    {
        try { return engine.Submit(request, cancel); }
        catch (EngineBusyException e) { throw new ApiException(503, e.Message, code: "server_busy"); }
        catch (ArgumentException e) { throw ApiException.Invalid(e.Message); }
    }

    private static async Task Generate(HttpContext c, bool chat)
    {
        var o = c.RequestServices.GetRequiredService<ServerOptions>();
        var body = await DuetServer.ReadJson(c).ConfigureAwait(false);
        var (host, lease) = await Use(c, body).ConfigureAwait(false);
        using var _ = lease;
        var engine = host.Engine;
        var p = GenerationParameters.Read(body, o, engine, chat);
        int[] prompt;
        if (chat)
        {
            var messages = ReadMessages(body, o);
            try { prompt = host.Prompts!.Encode(messages, p.UsesTools ? p.Tools : null); }
            catch (Duet.Tokenizers.ChatTemplates.ChatTemplateException e) { throw ApiException.Invalid($"the model's chat template refused the messages: {e.Message}", "messages"); }
            if (prompt.Length == 0) throw ApiException.Invalid("the messages make an empty prompt", "messages");
        }
        else prompt = ReadPrompt(body, engine);
        var request = p.WithToolConstraint(p.ToRequest(prompt, engine, host.Constraints), engine);
        var style = ToolCallFormat.Detect(engine.Tokenizer.ChatTemplate);
        // The request's slot is given back whenever this handler stops, whatever the reason: the client hung up
        // (RequestAborted), a write to a closed connection failed, or the reply is done.
        using var handler = CancellationTokenSource.CreateLinkedTokenSource(c.RequestAborted);
        var stream = OpenAi.Submit(engine, request, handler.Token);
        try
        {
            string id = NewId(chat ? "chatcmpl-" : "cmpl-");
            long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var tools = chat && p.UsesTools ? new ToolCallStream(style) : null;
            if (p.Stream) await Stream(c, host, engine, stream, p, id, created, chat, tools).ConfigureAwait(false);
            else await Whole(c, host, engine, stream, p, id, created, chat, tools).ConfigureAwait(false);
        }
        finally
        {
            await handler.CancelAsync().ConfigureAwait(false);
        }
    }

    private static string NewCallId() => NewId("call_");

    // parallel_tool_calls false: at most one call is returned.
    private static IReadOnlyList<ToolCall> Allowed(IReadOnlyList<ToolCall> calls, GenerationParameters p) => p.ParallelToolCalls || calls.Count <= 1 ? calls : [calls[0]];

    private static void WriteToolCalls(Utf8JsonWriter w, IReadOnlyList<ToolCall> calls)
    {
        w.WriteStartArray("tool_calls");
        foreach (var call in calls)
        {
            w.WriteStartObject();
            w.WriteString("id", call.Id);
            w.WriteString("type", "function");
            w.WriteStartObject("function");
            w.WriteString("name", call.Name);
            w.WriteString("arguments", call.Arguments);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static async Task Whole(HttpContext c, ModelHost host, InferenceEngine e, GenerationStream stream, GenerationParameters p, string id, long created, bool chat, ToolCallStream? tools)
    {
        var (text, tokens, result) = await stream.ReadAllAsync(c.RequestAborted).ConfigureAwait(false);
        IReadOnlyList<ToolCall> calls = [];
        if (tools is not null)
        {
            var parsed = ToolCallFormat.Parse(tools.Style, text, NewCallId);
            calls = Allowed(parsed.Calls, p);
            if (calls.Count > 0) text = parsed.Content;
        }
        await WriteJson(c, w =>
        {
            w.WriteStartObject();
            w.WriteString("id", id);
            w.WriteString("object", chat ? "chat.completion" : "text_completion");
            w.WriteNumber("created", created);
            w.WriteString("model", host.Name);
            w.WriteString("system_fingerprint", "duet");
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            if (chat)
            {
                w.WriteStartObject("message");
                w.WriteString("role", "assistant");
                if (calls.Count > 0 && text.Length == 0) w.WriteNull("content"); else w.WriteString("content", text);
                w.WriteNull("refusal");
                if (calls.Count > 0) WriteToolCalls(w, calls);
                w.WriteEndObject();
            }
            else w.WriteString("text", text);
            WriteLogprobs(w, e, tokens, p.TopLogprobs, chat);
            w.WriteString("finish_reason", calls.Count > 0 && result.Reason != FinishReason.Length ? "tool_calls" : result.ReasonText);
            w.WriteEndObject();
            w.WriteEndArray();
            WriteUsage(w, result);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static async Task Stream(HttpContext c, ModelHost host, InferenceEngine e, GenerationStream stream, GenerationParameters p, string id, long created, bool chat, ToolCallStream? tools)
    {
        var res = c.Response;
        // Nothing is sent until the first token is ready (the request has left the queue and its prompt is processed):
        // a replica behind a load balancer that dies before then has sent no byte, so the balancer can retry the
        // request elsewhere (deploy/nginx: proxy_next_upstream); and an error before then is a proper error status.
        await stream.Tokens.WaitToReadAsync(c.RequestAborted).ConfigureAwait(false);
        res.StatusCode = 200;
        res.ContentType = "text/event-stream; charset=utf-8";
        res.Headers.CacheControl = "no-cache";
        res.Headers["X-Accel-Buffering"] = "no";
        c.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        await res.StartAsync(c.RequestAborted).ConfigureAwait(false);
        var ct = c.RequestAborted;

        async Task Send(Action<Utf8JsonWriter> body)
        {
            await res.WriteAsync("data: " + DuetServer.Json(body) + "\n\n", ct).ConfigureAwait(false);
            await res.Body.FlushAsync(ct).ConfigureAwait(false);
        }

        void Head(Utf8JsonWriter w)
        {
            w.WriteString("id", id);
            w.WriteString("object", chat ? "chat.completion.chunk" : "text_completion");
            w.WriteNumber("created", created);
            w.WriteString("model", host.Name);
            w.WriteString("system_fingerprint", "duet");
        }

        void Chunk(Utf8JsonWriter w, string? text, GeneratedToken? token, string? finish, bool role)
        {
            w.WriteStartObject();
            Head(w);
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            if (chat)
            {
                w.WriteStartObject("delta");
                if (role) w.WriteString("role", "assistant");
                if (text is not null) w.WriteString("content", text);
                w.WriteEndObject();
            }
            else w.WriteString("text", text ?? "");
            if (token is not null) WriteLogprobs(w, e, [token], p.TopLogprobs, chat);
            else w.WriteNull("logprobs");
            if (finish is null) w.WriteNull("finish_reason"); else w.WriteString("finish_reason", finish);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }

        // One tool call's delta as OpenAI streams them: the call's header (id, type, name, empty arguments), then its arguments.
        void CallDelta(Utf8JsonWriter w, int index, ToolCall call, bool header)
        {
            w.WriteStartObject();
            Head(w);
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            w.WriteStartObject("delta");
            w.WriteStartArray("tool_calls");
            w.WriteStartObject();
            w.WriteNumber("index", index);
            if (header) { w.WriteString("id", call.Id); w.WriteString("type", "function"); }
            w.WriteStartObject("function");
            if (header) w.WriteString("name", call.Name);
            w.WriteString("arguments", header ? "" : call.Arguments);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteNull("logprobs");
            w.WriteNull("finish_reason");
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }

        if (chat) await Send(w => Chunk(w, "", null, null, role: true)).ConfigureAwait(false);
        await foreach (var t in stream.Tokens.ReadAllAsync(ct).ConfigureAwait(false))
        {
            if (tools is not null)
            {
                // Text that may be (the start of) a call is held back until the reply ends.
                var free = tools.Push(t.Text);
                if (free.Length > 0) await Send(w => Chunk(w, free, null, null, role: false)).ConfigureAwait(false);
                continue;
            }
            if (t.Text.Length == 0 && p.TopLogprobs is null) continue;
            await Send(w => Chunk(w, t.Text, p.TopLogprobs is null ? null : t, null, role: false)).ConfigureAwait(false);
        }
        var result = await stream.Result.ConfigureAwait(false);
        if (result.Reason == FinishReason.Cancelled) return;
        string trailing = result.TrailingText;
        IReadOnlyList<ToolCall> calls = [];
        if (tools is not null)
        {
            (trailing, var parsed) = tools.Finish(trailing, NewCallId);
            calls = Allowed(parsed, p);
        }
        for (int k = 0; k < calls.Count; k++)
        {
            int index = k;
            await Send(w => CallDelta(w, index, calls[index], header: true)).ConfigureAwait(false);
            await Send(w => CallDelta(w, index, calls[index], header: false)).ConfigureAwait(false);
        }
        string finish = calls.Count > 0 && result.Reason != FinishReason.Length ? "tool_calls" : result.ReasonText;
        await Send(w => Chunk(w, trailing.Length > 0 ? trailing : chat ? null : "", null, finish, role: false)).ConfigureAwait(false);
        if (p.IncludeUsage)
            await Send(w =>
            {
                w.WriteStartObject();
                Head(w);
                w.WriteStartArray("choices");
                w.WriteEndArray();
                WriteUsage(w, result);
                w.WriteEndObject();
            }).ConfigureAwait(false);
        await res.WriteAsync("data: [DONE]\n\n", ct).ConfigureAwait(false);
        await res.Body.FlushAsync(ct).ConfigureAwait(false);
    }

    private static void WriteUsage(Utf8JsonWriter w, GenerationResult r)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", r.PromptTokens);
        w.WriteNumber("completion_tokens", r.CompletionTokens);
        w.WriteNumber("total_tokens", r.PromptTokens + r.CompletionTokens);
        w.WriteStartObject("prompt_tokens_details");
        w.WriteNumber("cached_tokens", r.CachedTokens);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static string TokenText(InferenceEngine e, int id) => Encoding.UTF8.GetString(e.Tokenizer.DecodeToBytes([id]));

    private static void WriteLogprobs(Utf8JsonWriter w, InferenceEngine e, IReadOnlyList<GeneratedToken> tokens, int? top, bool chat)
    {
        if (top is null) { w.WriteNull("logprobs"); return; }
        w.WriteStartObject("logprobs");
        if (chat)
        {
            w.WriteStartArray("content");
            foreach (var t in tokens)
            {
                WriteTokenLogprob(w, e, t.Token, t.Logprob);
                w.WriteStartArray("top_logprobs");
                foreach (var alt in t.TopLogprobs ?? [])
                {
                    WriteTokenLogprob(w, e, alt.Token, alt.Logprob);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        else
        {
            // The legacy completions shape: parallel arrays, top_logprobs as {token: logprob} objects.
            w.WriteStartArray("tokens");
            foreach (var t in tokens) w.WriteStringValue(TokenText(e, t.Token));
            w.WriteEndArray();
            w.WriteStartArray("token_logprobs");
            foreach (var t in tokens) w.WriteNumberValue(t.Logprob);
            w.WriteEndArray();
            w.WriteStartArray("top_logprobs");
            foreach (var t in tokens)
            {
                w.WriteStartObject();
                foreach (var alt in t.TopLogprobs ?? []) w.WriteNumber(TokenText(e, alt.Token), alt.Logprob);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    // Leaves the object open for the caller to add top_logprobs.
    private static void WriteTokenLogprob(Utf8JsonWriter w, InferenceEngine e, int token, float logprob)
    {
        var bytes = e.Tokenizer.DecodeToBytes([token]);
        w.WriteStartObject();
        w.WriteString("token", Encoding.UTF8.GetString(bytes));
        w.WriteNumber("logprob", float.IsFinite(logprob) ? logprob : -9999f);
        w.WriteStartArray("bytes");
        foreach (byte b in bytes) w.WriteNumberValue(b);
        w.WriteEndArray();
    }

    private static async Task Embeddings(HttpContext c)
    {
        var o = c.RequestServices.GetRequiredService<ServerOptions>();
        var body = await DuetServer.ReadJson(c).ConfigureAwait(false);
        var (host, lease) = await Use(c, body).ConfigureAwait(false);
        using var _ = lease;
        var engine = host.Engine;
        var metrics = c.RequestServices.GetRequiredService<ServerMetrics>();
        string format = body.String("encoding_format") ?? "float";
        if (format is not ("float" or "base64")) throw ApiException.Invalid($"'encoding_format' must be float or base64, not '{GenerationParameters.Clip(format)}'", "encoding_format");
        if (body.Integer("dimensions", 1, int.MaxValue) is long dims && dims != engine.Model.Config.Dim)
            throw ApiException.Invalid($"this model's embeddings have {engine.Model.Config.Dim} dimensions, not {dims}", "dimensions");
        var inputs = ReadEmbeddingInputs(body, engine, o);
        var vectors = new List<float[]>(inputs.Count);
        int total = 0;
        foreach (var ids in inputs)
        {
            try { vectors.Add(await engine.EmbedAsync(ids, c.RequestAborted).ConfigureAwait(false)); }
            catch (ArgumentException e) { throw ApiException.Invalid(e.Message, "input"); }
            total += ids.Length;
        }
        metrics.CountEmbeddingTokens(total);
        await WriteJson(c, w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            for (int i = 0; i < vectors.Count; i++)
            {
                w.WriteStartObject();
                w.WriteString("object", "embedding");
                w.WriteNumber("index", i);
                if (format == "base64")
                {
                    var bytes = new byte[vectors[i].Length * 4];
                    Buffer.BlockCopy(vectors[i], 0, bytes, 0, bytes.Length); // little-endian float32, as OpenAI sends it
                    w.WriteString("embedding", Convert.ToBase64String(bytes));
                }
                else
                {
                    w.WriteStartArray("embedding");
                    foreach (float v in vectors[i]) w.WriteNumberValue(v);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteString("model", host.Name);
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", total);
            w.WriteNumber("total_tokens", total);
            w.WriteEndObject();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static List<int[]> ReadEmbeddingInputs(JsonRequest body, InferenceEngine e, ServerOptions o)
    {
        if (body.Get("input") is not { } input) throw ApiException.Invalid("'input' is required", "input");
        int vocab = e.Model.Config.Vocab;
        int[] Ids(JsonElement arr)
        {
            var ids = new int[arr.GetArrayLength()];
            int i = 0;
            foreach (var t in arr.EnumerateArray())
                ids[i++] = t.ValueKind == JsonValueKind.Number && t.TryGetInt32(out int id) && (uint)id < (uint)vocab ? id
                    : throw ApiException.Invalid($"'input' token arrays must hold token ids 0..{vocab - 1}", "input");
            return ids;
        }
        int[] Text(string s) => e.Tokenizer.Encode(s, addSpecialTokens: true);
        var list = new List<int[]>();
        if (input.ValueKind == JsonValueKind.String) list.Add(Text(input.GetString()!));
        else if (input.ValueKind == JsonValueKind.Array)
        {
            int n = input.GetArrayLength();
            if (n == 0) throw ApiException.Invalid("'input' is empty", "input");
            if (input[0].ValueKind == JsonValueKind.Number) list.Add(Ids(input));
            else
            {
                if (n > o.MaxEmbeddingInputs) throw ApiException.Invalid($"'input' has {n} items; at most {o.MaxEmbeddingInputs} per request", "input");
                foreach (var item in input.EnumerateArray())
                    list.Add(item.ValueKind switch
                    {
                        JsonValueKind.String => Text(item.GetString()!),
                        JsonValueKind.Array => Ids(item),
                        _ => throw ApiException.Invalid("'input' must be a string, an array of strings, or token id arrays", "input"),
                    });
            }
        }
        else throw ApiException.Invalid($"'input' must be a string or an array, not {JsonRequest.Kind(input.ValueKind)}", "input");
        foreach (var ids in list)
        {
            if (ids.Length == 0) throw ApiException.Invalid("an 'input' item has no tokens", "input");
            if (ids.Length > e.Context) throw ApiException.Invalid($"an 'input' item has {ids.Length} tokens; at most {e.Context} fit in the context", "input", "context_length_exceeded");
        }
        return list;
    }
}
