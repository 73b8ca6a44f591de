// The Ollama API on the same port (issue 19), so Ollama's clients (OllamaSharp, the `ollama` npm and Python packages,
// apps built for a local Ollama) talk to Duet unchanged:
//   POST /api/chat       {model, messages, tools?, format?, options?, stream = true, keep_alive?}
//   POST /api/generate   {model, prompt, system?, raw?, format?, options?, stream = true, keep_alive?}
//   POST /api/embed      {model, input: string | [string], truncate = true}
//   GET  /api/tags, POST /api/show {model}, GET /api/ps, GET /api/version
// Streams are NDJSON (one JSON object per line), the last with "done": true, the done_reason and Ollama's counts and
// durations (nanoseconds). Options map to the sampler (temperature, top_k, top_p, min_p, seed, stop, num_predict,
// repeat_penalty, presence_penalty, frequency_penalty, repeat_last_n; num_ctx up to the served context). format
// "json" or a JSON schema constrains the reply. Tools work as in /v1/chat/completions (ToolCallFormat), with
// Ollama's object-valued arguments. Errors are Ollama's {"error": "..."} (DuetServer.WriteError).
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Duet.Inference;
using Duet.Inference.Serving;
using Duet.Inference.Tools;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Duet.Server.Endpoints;

internal static class Ollama
{
    /// <summary>The Ollama API version reported by /api/version: the one whose shapes these routes follow.</summary>
    public const string ApiVersion = "0.12.0";

    public static void Map(WebApplication app)
    {
        app.MapPost("/api/chat", (HttpContext c) => Generate(c, chat: true));
        app.MapPost("/api/generate", (HttpContext c) => Generate(c, chat: false));
        app.MapPost("/api/embed", Embed);
        app.MapGet("/api/tags", Tags);
        app.MapPost("/api/show", Show);
        app.MapGet("/api/ps", Ps);
        app.MapGet("/api/version", (HttpContext c) => OpenAi.WriteJson(c, w => { w.WriteStartObject(); w.WriteString("version", ApiVersion); w.WriteEndObject(); }));
    }

    private static ModelRegistry Registry(HttpContext c) => c.RequestServices.GetRequiredService<ModelRegistry>();

    /// <summary>
    /// The request's model ("name" or "name:latest"; Ollama requires one), loaded and leased for the request; its
    /// keep_alive ("5m", "30s", seconds, 0: unload when done, negative: for ever) applies after this request.
    /// </summary>
    private static async Task<(ModelHost Host, IDisposable Lease)> Use(HttpContext c, JsonRequest r)
    {
        string name = r.String("model") ?? r.String("name") ?? throw ApiException.Invalid("model is required", "model");
        var registry = Registry(c);
        ModelHost host;
        try { host = registry.Get(name); }
        catch (ApiException e) when (e.Status == 404) { throw new ApiException(404, $"model '{GenerationParameters.Clip(name)}' not found; {e.Message[(e.Message.IndexOf("this server", StringComparison.Ordinal) is int i and >= 0 ? i : 0)..]}", "model", "model_not_found"); }
        if (KeepAlive(r) is { } keep) host.KeepAlive = keep < TimeSpan.Zero ? null : keep;
        return await registry.UseAsync(host.Name, c.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Ollama's keep_alive: a duration string ("5m", "1h30m", "45s", "-1") or a number of seconds.</summary>
    internal static TimeSpan? KeepAlive(JsonRequest r)
    {
        if (r.Get("keep_alive") is not { } ka) return null;
        if (ka.ValueKind == JsonValueKind.Number && ka.TryGetDouble(out double seconds)) return TimeSpan.FromSeconds(seconds);
        if (ka.ValueKind != JsonValueKind.String) throw ApiException.Invalid("'keep_alive' must be a duration (\"5m\", \"1h\", \"-1\") or a number of seconds", "keep_alive");
        try { return ServerOptions.ParseDuration(ka.GetString()!); }
        catch (FormatException e) { throw ApiException.Invalid($"'keep_alive' {e.Message}", "keep_alive"); }
    }

    private static string Now() => DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Ollama's options object (and format) as generation parameters.</summary>
    private static GenerationParameters Parameters(JsonRequest r, ServerOptions o, InferenceEngine engine)
    {
        var p = new GenerationParameters { Stream = r.Bool("stream") ?? true };
        var opts = r.Get("options") is { } ov
            ? (ov.ValueKind == JsonValueKind.Object ? new JsonRequest(ov) : throw ApiException.Invalid("'options' must be an object", "options"))
            : (JsonRequest?)null;
        double? Num(string name, double min, double max) => opts?.Number(name, min, max);
        long? Int(string name, long min, long max) => opts?.Integer(name, min, max);
        if (Int("num_ctx", 1, int.MaxValue) is long numCtx && numCtx < engine.Context) p.NumCtx = (int)numCtx; // larger: the served context
        long? numPredict = Int("num_predict", -2, int.MaxValue);
        p.MaxTokens = numPredict is null or < 0 ? null : (int)Math.Max(1, numPredict.Value);
        p.Sampling = new SamplingOptions
        {
            Temperature = (float)(Num("temperature", 0, 100) ?? 0.8),
            TopK = (int)(Int("top_k", 0, int.MaxValue) ?? 40),
            TopP = (float)(Num("top_p", 0, 1) ?? 0.9),
            MinP = (float)(Num("min_p", 0, 0.999999) ?? 0),
            RepeatPenalty = (float)(Num("repeat_penalty", 0.01, 10) ?? 1.1),
            RepeatLastN = (int)(Int("repeat_last_n", -1, int.MaxValue) is long n and >= 0 ? n : 64),
            PresencePenalty = (float)(Num("presence_penalty", -2, 2) ?? 0),
            FrequencyPenalty = (float)(Num("frequency_penalty", -2, 2) ?? 0),
            Seed = opts?.Get("seed") is { } sv ? (sv.ValueKind == JsonValueKind.Number && sv.TryGetInt64(out long sd) ? unchecked((ulong)sd) : throw ApiException.Invalid("'options.seed' must be an integer", "options.seed"))
                : (ulong)Random.Shared.NextInt64(),
        };
        if (opts?.Get("stop") is { } stop)
        {
            if (stop.ValueKind == JsonValueKind.String) p.Stop.Add(stop.GetString()!);
            else if (stop.ValueKind == JsonValueKind.Array && stop.GetArrayLength() <= o.MaxStopStrings)
                foreach (var s in stop.EnumerateArray()) p.Stop.Add(s.ValueKind == JsonValueKind.String ? s.GetString()! : throw ApiException.Invalid("'options.stop' must be strings", "options.stop"));
            else throw ApiException.Invalid($"'options.stop' must be up to {o.MaxStopStrings} strings", "options.stop");
        }
        if (r.Get("format") is { } format)
        {
            p.Json = true;
            if (format.ValueKind == JsonValueKind.Object) p.Schema = format.Clone();
            else if (format.ValueKind != JsonValueKind.String || format.GetString() != "json") throw ApiException.Invalid("'format' must be \"json\" or a JSON schema object", "format");
        }
        if (r.Has("images")) throw ApiException.Invalid("'images': this model reads text only", "images");
        return p;
    }

    private static List<ChatTurn> Messages(JsonRequest r, ServerOptions o)
    {
        if (r.Get("messages") is not { } ms || ms.ValueKind != JsonValueKind.Array) throw ApiException.Invalid("'messages' must be an array", "messages");
        if (ms.GetArrayLength() > o.MaxMessages) throw ApiException.Invalid($"'messages' has {ms.GetArrayLength()} messages; at most {o.MaxMessages} are accepted", "messages");
        var list = new List<ChatTurn>();
        var lastCalls = new List<ToolCall>();
        int i = 0, callNo = 0;
        foreach (var m in ms.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw ApiException.Invalid($"'{at}' must be an object with a 'role'", at);
            string name = role.GetString()!;
            if (name is not ("system" or "user" or "assistant" or "tool")) throw ApiException.Invalid($"'{at}.role' must be system, user, assistant or tool", at + ".role");
            string content = m.TryGetProperty("content", out var cv) && cv.ValueKind == JsonValueKind.String ? cv.GetString()!
                : cv.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined ? "" : throw ApiException.Invalid($"'{at}.content' must be a string", at + ".content");
            if (m.TryGetProperty("images", out var img) && img.ValueKind != JsonValueKind.Null) throw ApiException.Invalid($"'{at}.images': this model reads text only", at + ".images");
            var turn = new ChatTurn(name, content);
            if (name == "assistant" && m.TryGetProperty("tool_calls", out var tc) && tc.ValueKind == JsonValueKind.Array)
            {
                // Ollama's calls carry no ids; ids are made here so templates that pair results with calls can.
                lastCalls = [];
                foreach (var call in tc.EnumerateArray())
                {
                    if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("function", out var f) || f.ValueKind != JsonValueKind.Object
                        || !f.TryGetProperty("name", out var fn) || fn.ValueKind != JsonValueKind.String)
                        throw ApiException.Invalid($"'{at}.tool_calls' must be [{{\"function\": {{\"name\", \"arguments\"}}}}]", at + ".tool_calls");
                    var args = f.TryGetProperty("arguments", out var a) && a.ValueKind == JsonValueKind.Object ? a.GetRawText()
                        : a.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null ? "{}" : throw ApiException.Invalid($"'{at}.tool_calls' arguments must be an object", at + ".tool_calls");
                    lastCalls.Add(new ToolCall(ToolCallFormat.MistralId(), fn.GetString()!, JsonSerializer.Serialize(JsonDocument.Parse(args).RootElement)));
                }
                turn = turn with { ToolCalls = lastCalls };
                callNo = 0;
            }
            if (name == "tool")
            {
                string? fname = m.TryGetProperty("tool_name", out var tn) && tn.ValueKind == JsonValueKind.String ? tn.GetString()
                    : m.TryGetProperty("name", out var nm) && nm.ValueKind == JsonValueKind.String ? nm.GetString() : null;
                // Results answer the calls before them in order.
                var call = callNo < lastCalls.Count ? lastCalls[callNo++] : null;
                turn = turn with { Name = fname ?? call?.Name, ToolCallId = call?.Id ?? "call_" + i };
            }
            list.Add(turn);
        }
        if (list.Count == 0) throw ApiException.Invalid("'messages' is empty", "messages");
        return list;
    }

    private static async Task Generate(HttpContext c, bool chat)
    {
        var o = c.RequestServices.GetRequiredService<ServerOptions>();
        var body = await DuetServer.ReadJson(c).ConfigureAwait(false);
        var (host, lease) = await Use(c, body).ConfigureAwait(false);
        using var _ = lease;
        var engine = host.Engine;
        var p = Parameters(body, o, engine);
        int[] prompt;
        ToolCallStream? tools = null;
        if (chat)
        {
            // Ollama's tools; "tool_choice" (OpenAI's, which Ollama lacks) is honoured too, as a Duet extension.
            GenerationParameters.ReadTools(body, p);
            if (p.UsesTools) tools = new ToolCallStream(ToolCallFormat.Detect(engine.Tokenizer.ChatTemplate));
            if (body.Get("messages") is { ValueKind: JsonValueKind.Array } ms0 && ms0.GetArrayLength() == 0) { await Loaded(c, host, chat: true).ConfigureAwait(false); return; }
            var messages = Messages(body, o);
            try { prompt = host.Prompts!.Encode(messages, p.UsesTools ? p.Tools : null); }
            catch (Duet.Tokenizers.ChatTemplates.ChatTemplateException e) { throw ApiException.Invalid($"the model's chat template refused the messages: {e.Message}", "messages"); }
        }
        else
        {
            string text = body.String("prompt") ?? "";
            if (body.Has("suffix")) throw ApiException.Invalid("'suffix' (fill in the middle) is not supported", "suffix");
            if (body.Has("template")) throw ApiException.Invalid("'template' is not supported: the model's own chat template is used (or raw)", "template");
            if (body.Has("context")) throw ApiException.Invalid("'context' is not supported: send the conversation to /api/chat", "context");
            if (text.Length == 0 && !body.Has("system")) { await Loaded(c, host, chat: false).ConfigureAwait(false); return; }
            if (body.Bool("raw") == true) prompt = engine.Tokenizer.Encode(text, addSpecialTokens: true);
            else
            {
                var turns = new List<ChatTurn>();
                if (body.String("system") is { Length: > 0 } system) turns.Add(new ChatTurn("system", system));
                turns.Add(new ChatTurn("user", text));
                prompt = host.Prompts!.Encode(turns);
            }
        }
        if (chat && prompt.Length == 0) throw ApiException.Invalid("the messages make an empty prompt", "messages");
        var request = p.WithToolConstraint(p.ToRequest(prompt, engine, host.Constraints), engine);
        var clock = Stopwatch.StartNew();
        using var handler = CancellationTokenSource.CreateLinkedTokenSource(c.RequestAborted);
        var stream = OpenAi.Submit(engine, request, handler.Token);
        try
        {
            var res = c.Response;
            res.StatusCode = 200;
            res.ContentType = p.Stream ? "application/x-ndjson" : "application/json; charset=utf-8";
            var ct = c.RequestAborted;
            async Task Line(Action<Utf8JsonWriter> write)
            {
                await res.WriteAsync(DuetServer.Json(write) + (p.Stream ? "\n" : ""), ct).ConfigureAwait(false);
                if (p.Stream) await res.Body.FlushAsync(ct).ConfigureAwait(false);
            }
            void Head(Utf8JsonWriter w)
            {
                w.WriteStartObject();
                w.WriteString("model", host.Name);
                w.WriteString("created_at", Now());
            }
            void Piece(Utf8JsonWriter w, string text, IReadOnlyList<ToolCall>? calls, bool done)
            {
                if (chat)
                {
                    w.WriteStartObject("message");
                    w.WriteString("role", "assistant");
                    w.WriteString("content", text);
                    if (calls is { Count: > 0 })
                    {
                        w.WriteStartArray("tool_calls");
                        foreach (var call in calls)
                        {
                            w.WriteStartObject();
                            w.WriteStartObject("function");
                            w.WriteString("name", call.Name);
                            w.WritePropertyName("arguments");
                            using (var doc = JsonDocument.Parse(call.Arguments)) doc.RootElement.WriteTo(w); // Ollama's arguments are an object
                            w.WriteEndObject();
                            w.WriteEndObject();
                        }
                        w.WriteEndArray();
                    }
                    w.WriteEndObject();
                }
                else w.WriteString("response", text);
                w.WriteBoolean("done", done);
            }

            var all = new StringBuilder();
            if (p.Stream)
            {
                await foreach (var t in stream.Tokens.ReadAllAsync(ct).ConfigureAwait(false))
                {
                    var free = tools is null ? t.Text : tools.Push(t.Text);
                    all.Append(t.Text);
                    if (free.Length > 0) await Line(w => { Head(w); Piece(w, free, null, false); w.WriteEndObject(); }).ConfigureAwait(false);
                }
            }
            else await foreach (var t in stream.Tokens.ReadAllAsync(ct).ConfigureAwait(false)) all.Append(t.Text);
            var result = await stream.Result.ConfigureAwait(false);
            if (result.Reason == FinishReason.Cancelled) return;
            all.Append(result.TrailingText);
            string last = result.TrailingText;
            IReadOnlyList<ToolCall> calls = [];
            if (tools is not null)
            {
                if (p.Stream)
                {
                    (last, calls) = tools.Finish(result.TrailingText, () => ToolCallFormat.MistralId());
                }
                else
                {
                    var (content, parsed) = ToolCallFormat.Parse(tools.Style, all.ToString(), () => ToolCallFormat.MistralId());
                    calls = parsed;
                    if (parsed.Count > 0) all.Clear().Append(content);
                }
            }
            long total = clock.Elapsed.Ticks * 100; // ns
            await Line(w =>
            {
                Head(w);
                Piece(w, p.Stream ? last : all.ToString(), calls, true);
                w.WriteString("done_reason", result.Reason == FinishReason.Length ? "length" : "stop");
                if (!chat)
                {
                    w.WriteStartArray("context");
                    foreach (int id in prompt) w.WriteNumberValue(id);
                    w.WriteEndArray();
                }
                w.WriteNumber("total_duration", total);
                w.WriteNumber("load_duration", 0);
                w.WriteNumber("prompt_eval_count", result.PromptTokens);
                w.WriteNumber("prompt_eval_duration", total / 4);
                w.WriteNumber("eval_count", result.CompletionTokens);
                w.WriteNumber("eval_duration", total - total / 4);
                w.WriteEndObject();
            }).ConfigureAwait(false);
        }
        finally
        {
            await handler.CancelAsync().ConfigureAwait(false);
        }
    }

    // Ollama answers an empty prompt (or messages) by loading the model and saying done: clients use it to preload.
    private static Task Loaded(HttpContext c, ModelHost host, bool chat) => OpenAi.WriteJson(c, w =>
    {
        w.WriteStartObject();
        w.WriteString("model", host.Name);
        w.WriteString("created_at", Now());
        if (chat) { w.WriteStartObject("message"); w.WriteString("role", "assistant"); w.WriteString("content", ""); w.WriteEndObject(); }
        else w.WriteString("response", "");
        w.WriteBoolean("done", true);
        w.WriteString("done_reason", "load");
        w.WriteEndObject();
    });

    private static async Task Embed(HttpContext c)
    {
        var o = c.RequestServices.GetRequiredService<ServerOptions>();
        var body = await DuetServer.ReadJson(c).ConfigureAwait(false);
        var (host, lease) = await Use(c, body).ConfigureAwait(false);
        using var _ = lease;
        var engine = host.Engine;
        bool truncate = body.Bool("truncate") ?? true;
        var texts = body.Get("input") is { } input
            ? input.ValueKind == JsonValueKind.String ? [input.GetString()!]
              : input.ValueKind == JsonValueKind.Array && input.GetArrayLength() <= o.MaxEmbeddingInputs
                ? input.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : throw ApiException.Invalid("'input' must be a string or strings", "input")).ToList()
                : throw ApiException.Invalid($"'input' must be a string or up to {o.MaxEmbeddingInputs} strings", "input")
            : throw ApiException.Invalid("'input' is required", "input");
        var clock = Stopwatch.StartNew();
        var vectors = new List<float[]>();
        int tokens = 0;
        foreach (var text in texts)
        {
            var ids = engine.Tokenizer.Encode(text, addSpecialTokens: true);
            if (ids.Length > engine.Context)
            {
                if (!truncate) throw ApiException.Invalid($"an input has {ids.Length} tokens; the context holds {engine.Context} (truncate is false)", "input");
                ids = ids[..engine.Context];
            }
            if (ids.Length == 0) throw ApiException.Invalid("an input has no tokens", "input");
            vectors.Add(await engine.EmbedAsync(ids, c.RequestAborted).ConfigureAwait(false));
            tokens += ids.Length;
        }
        await OpenAi.WriteJson(c, w =>
        {
            w.WriteStartObject();
            w.WriteString("model", host.Name);
            w.WriteStartArray("embeddings");
            foreach (var v in vectors)
            {
                w.WriteStartArray();
                foreach (float x in v) w.WriteNumberValue(x);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteNumber("total_duration", clock.Elapsed.Ticks * 100);
            w.WriteNumber("load_duration", 0);
            w.WriteNumber("prompt_eval_count", tokens);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static void Details(Utf8JsonWriter w, ModelHost host)
    {
        w.WriteStartObject("details");
        w.WriteString("parent_model", "");
        w.WriteString("format", "gguf");
        w.WriteString("family", "llama");
        w.WriteStartArray("families");
        w.WriteStringValue("llama");
        w.WriteEndArray();
        if (host.Ready)
        {
            var m = host.Engine.Model;
            double parameters = m.Weights.Layers.Length * (double)(4L * m.Config.Dim * m.Config.Dim + 3L * m.Config.Dim * m.Config.FfnDim) + 2.0 * m.Config.Vocab * m.Config.Dim;
            w.WriteString("parameter_size", parameters >= 1e9 ? $"{parameters / 1e9:F1}B" : $"{parameters / 1e6:F1}M");
            w.WriteString("quantization_level", m.Weights.MainType.ToString());
        }
        w.WriteEndObject();
    }

    private static void ModelEntry(Utf8JsonWriter w, ModelHost host, bool running)
    {
        w.WriteStartObject();
        w.WriteString("name", host.Name);
        w.WriteString("model", host.Name);
        long size = File.Exists(host.Path) ? new FileInfo(host.Path).Length : 0;
        if (!running) w.WriteString("modified_at", (File.Exists(host.Path) ? File.GetLastWriteTimeUtc(host.Path) : DateTime.UtcNow).ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture));
        w.WriteNumber("size", size);
        w.WriteString("digest", Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(host.Name + ":" + size))));
        Details(w, host);
        if (running)
        {
            var expires = host.KeepAlive is { } keep ? host.LastUsed + keep : DateTime.UtcNow.AddYears(100); // for ever: far ahead, as Ollama says it
            w.WriteString("expires_at", expires.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture));
            w.WriteNumber("size_vram", 0);
        }
        w.WriteEndObject();
    }

    private static Task Tags(HttpContext c) => OpenAi.WriteJson(c, w =>
    {
        w.WriteStartObject();
        w.WriteStartArray("models");
        foreach (var host in Registry(c).Hosts) ModelEntry(w, host, running: false);
        w.WriteEndArray();
        w.WriteEndObject();
    });

    private static Task Ps(HttpContext c) => OpenAi.WriteJson(c, w =>
    {
        w.WriteStartObject();
        w.WriteStartArray("models");
        foreach (var host in Registry(c).Hosts.Where(h => h.Ready)) ModelEntry(w, host, running: true);
        w.WriteEndArray();
        w.WriteEndObject();
    });

    private static async Task Show(HttpContext c)
    {
        var body = await DuetServer.ReadJson(c).ConfigureAwait(false);
        var (host, lease) = await Use(c, body).ConfigureAwait(false);
        using var _ = lease;
        var engine = host.Engine;
        var cfg = engine.Model.Config;
        await OpenAi.WriteJson(c, w =>
        {
            w.WriteStartObject();
            w.WriteString("modelfile", $"FROM {host.Path}\n");
            w.WriteString("parameters", "");
            w.WriteString("template", engine.Tokenizer.ChatTemplate ?? Duet.Tokenizers.ChatTemplates.ChatTemplate.ChatMl.Source);
            Details(w, host);
            w.WriteStartObject("model_info");
            w.WriteString("general.architecture", "llama");
            w.WriteNumber("llama.context_length", cfg.ContextLength);
            w.WriteNumber("llama.embedding_length", cfg.Dim);
            w.WriteNumber("llama.block_count", cfg.Layers);
            w.WriteNumber("llama.feed_forward_length", cfg.FfnDim);
            w.WriteNumber("llama.attention.head_count", cfg.Heads);
            w.WriteNumber("llama.attention.head_count_kv", cfg.KvHeads);
            w.WriteNumber("llama.rope.freq_base", cfg.RopeTheta);
            w.WriteNumber("llama.vocab_size", cfg.Vocab);
            w.WriteEndObject();
            w.WriteStartArray("capabilities");
            w.WriteStringValue("completion");
            w.WriteStringValue("tools");
            w.WriteEndArray();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }
}
