// The OpenAI Responses API (issue 19): POST /v1/responses, GET /v1/responses/{id}, DELETE /v1/responses/{id}.
//   input         a string, or items: messages ({"role", "content": string | [{"type": "input_text"|"output_text", "text"}]}),
//                 {"type": "function_call", "call_id", "name", "arguments"}, {"type": "function_call_output", "call_id", "output"}
//   instructions  a system message before the input (not carried over by previous_response_id, as OpenAI does)
//   tools         [{"type": "function", "name", "description", "parameters"}] (the flat shape of this API); tool_choice
//                 "auto" | "required" | "none" | {"type": "function", "name"}; parallel_tool_calls
//   text.format   {"type": "text" | "json_object" | "json_schema", "schema"}: constrained decoding
//   max_output_tokens, temperature, top_p, stream, store (default true), previous_response_id, metadata
// The reply is a response object whose output holds a message item (output_text) or function_call items; streamed,
// it is OpenAI's event sequence (response.created, response.in_progress, response.output_item.added,
// response.content_part.added, response.output_text.delta..., response.output_text.done, response.content_part.done,
// response.output_item.done, or response.function_call_arguments.delta/done for calls, response.completed), each
// with a sequence_number. Stored responses (their input and output items) live in memory, the newest
// ServerOptions.MaxStoredResponses kept; previous_response_id continues one.
using System.Collections.Concurrent;
using System.Text.Json;
using Duet.Inference;
using Duet.Inference.Serving;
using Duet.Inference.Tools;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Duet.Server.Endpoints;

internal static class Responses
{
    /// <summary>A stored response: the conversation it continued and its own output, as chat turns, and its JSON.</summary>
    private sealed record Stored(List<ChatTurn> Turns, string Json, long Order);

    private static readonly ConcurrentDictionary<string, Stored> s_store = new(StringComparer.Ordinal);
    private static long s_order;

    public static void Map(WebApplication app)
    {
        app.MapPost("/v1/responses", Create);
        app.MapGet("/v1/responses/{id}", (HttpContext c, string id) => s_store.TryGetValue(id, out var s)
            ? Results.Text(s.Json, "application/json") : throw new ApiException(404, $"no response with id '{GenerationParameters.Clip(id)}' is stored", "id", "not_found"));
        app.MapDelete("/v1/responses/{id}", (HttpContext c, string id) => s_store.TryRemove(id, out _)
            ? OpenAi.WriteJson(c, w => { w.WriteStartObject(); w.WriteString("id", id); w.WriteString("object", "response.deleted"); w.WriteBoolean("deleted", true); w.WriteEndObject(); })
            : throw new ApiException(404, $"no response with id '{GenerationParameters.Clip(id)}' is stored", "id", "not_found"));
    }

    private static string NewId(string prefix) => prefix + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(12));

    private static string Text(JsonElement content, string at)
    {
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw ApiException.Invalid($"'{at}' must be a string or an array of text parts", at);
        var sb = new System.Text.StringBuilder();
        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var t) || t.GetString() is not ("input_text" or "output_text" or "text")
                || !part.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
                throw ApiException.Invalid($"'{at}' parts must be input_text or output_text with a 'text' (this model reads text only)", at);
            sb.Append(text.GetString());
        }
        return sb.ToString();
    }

    /// <summary>The input items as chat turns; consecutive function calls become one assistant turn with several calls.</summary>
    private static List<ChatTurn> Input(JsonElement input, ServerOptions o)
    {
        if (input.ValueKind == JsonValueKind.String) return [new ChatTurn("user", input.GetString()!)];
        if (input.ValueKind != JsonValueKind.Array) throw ApiException.Invalid("'input' must be a string or an array of items", "input");
        if (input.GetArrayLength() > o.MaxMessages) throw ApiException.Invalid($"'input' has {input.GetArrayLength()} items; at most {o.MaxMessages} are accepted", "input");
        var turns = new List<ChatTurn>();
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        int i = 0;
        foreach (var item in input.EnumerateArray())
        {
            string at = $"input[{i++}]";
            if (item.ValueKind != JsonValueKind.Object) throw ApiException.Invalid($"'{at}' must be an object", at);
            string type = item.TryGetProperty("type", out var tv) && tv.ValueKind == JsonValueKind.String ? tv.GetString()! : "message";
            switch (type)
            {
                case "message":
                    if (!item.TryGetProperty("role", out var role) || role.GetString() is not ("user" or "assistant" or "system" or "developer"))
                        throw ApiException.Invalid($"'{at}.role' must be user, assistant, system or developer", at + ".role");
                    if (!item.TryGetProperty("content", out var content)) throw ApiException.Invalid($"'{at}.content' is required", at + ".content");
                    turns.Add(new ChatTurn(role.GetString() == "developer" ? "system" : role.GetString()!, Text(content, at + ".content")));
                    break;
                case "function_call":
                    {
                        string callId = item.TryGetProperty("call_id", out var cid) && cid.ValueKind == JsonValueKind.String ? cid.GetString()! : throw ApiException.Invalid($"'{at}.call_id' is required", at + ".call_id");
                        string name = item.TryGetProperty("name", out var nm) && nm.ValueKind == JsonValueKind.String ? nm.GetString()! : throw ApiException.Invalid($"'{at}.name' is required", at + ".name");
                        string args = "{}";
                        if (item.TryGetProperty("arguments", out var a) && a.ValueKind == JsonValueKind.String)
                        {
                            try
                            {
                                using var doc = JsonDocument.Parse(a.GetString()!);
                                args = doc.RootElement.ValueKind == JsonValueKind.Object ? JsonSerializer.Serialize(doc.RootElement) : throw new JsonException();
                            }
                            catch (JsonException) { throw ApiException.Invalid($"'{at}.arguments' must be a JSON object as a string", at + ".arguments"); }
                        }
                        names[callId] = name;
                        var call = new ToolCall(callId, name, args);
                        if (turns.Count > 0 && turns[^1] is { Role: "assistant", ToolCalls: { } prior }) turns[^1] = turns[^1] with { ToolCalls = [.. prior, call] };
                        else turns.Add(new ChatTurn("assistant", "") { ToolCalls = [call] });
                        break;
                    }
                case "function_call_output":
                    {
                        string callId = item.TryGetProperty("call_id", out var cid) && cid.ValueKind == JsonValueKind.String ? cid.GetString()! : throw ApiException.Invalid($"'{at}.call_id' is required", at + ".call_id");
                        string output = item.TryGetProperty("output", out var ov) ? ov.ValueKind == JsonValueKind.String ? ov.GetString()! : Text(ov, at + ".output") : "";
                        turns.Add(new ChatTurn("tool", output) { ToolCallId = callId, Name = names.GetValueOrDefault(callId) });
                        break;
                    }
                default: throw ApiException.Invalid($"'{at}.type' '{GenerationParameters.Clip(type)}' is not supported (message, function_call, function_call_output)", at + ".type");
            }
        }
        return turns;
    }

    /// <summary>The Responses API's flat tools as the chat API's ([{"type": "function", "function": {...}}]).</summary>
    private static JsonElement ChatTools(JsonElement tools)
    {
        if (tools.ValueKind != JsonValueKind.Array) throw ApiException.Invalid("'tools' must be an array", "tools");
        var array = new System.Text.Json.Nodes.JsonArray();
        foreach (var t in tools.EnumerateArray())
        {
            if (t.ValueKind != JsonValueKind.Object || !t.TryGetProperty("type", out var type) || type.GetString() != "function")
                throw ApiException.Invalid("'tools' may hold function tools only ({\"type\": \"function\", \"name\", \"parameters\"})", "tools");
            var f = new System.Text.Json.Nodes.JsonObject();
            foreach (var key in new[] { "name", "description", "parameters" })
                if (t.TryGetProperty(key, out var v)) f[key] = System.Text.Json.Nodes.JsonNode.Parse(v.GetRawText());
            array.Add(new System.Text.Json.Nodes.JsonObject { ["type"] = "function", ["function"] = f });
        }
        return JsonDocument.Parse(array.ToJsonString()).RootElement.Clone();
    }

    private static async Task Create(HttpContext c)
    {
        var o = c.RequestServices.GetRequiredService<ServerOptions>();
        var body = await DuetServer.ReadJson(c).ConfigureAwait(false);
        var (host, lease) = await OpenAi.Use(c, body).ConfigureAwait(false);
        using var leased = lease;
        var engine = host.Engine;
        var r = body.Root;
        // The request in the chat API's terms, so the same checks and defaults apply.
        var chat = new System.Text.Json.Nodes.JsonObject { ["messages"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["role"] = "user", ["content"] = "" }) };
        if (body.Integer("max_output_tokens", 1, int.MaxValue) is long max) chat["max_tokens"] = max;
        foreach (var key in new[] { "temperature", "top_p", "parallel_tool_calls", "stream" })
            if (r.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null) chat[key] = System.Text.Json.Nodes.JsonNode.Parse(v.GetRawText());
        if (r.TryGetProperty("tools", out var tools) && tools.ValueKind != JsonValueKind.Null && tools.GetArrayLength() > 0)
            chat["tools"] = System.Text.Json.Nodes.JsonNode.Parse(ChatTools(tools).GetRawText());
        if (r.TryGetProperty("tool_choice", out var choice) && choice.ValueKind != JsonValueKind.Null)
            chat["tool_choice"] = choice.ValueKind == JsonValueKind.Object && choice.TryGetProperty("name", out var cn)
                ? new System.Text.Json.Nodes.JsonObject { ["type"] = "function", ["function"] = new System.Text.Json.Nodes.JsonObject { ["name"] = cn.GetString() } }
                : System.Text.Json.Nodes.JsonNode.Parse(choice.GetRawText());
        if (r.TryGetProperty("text", out var textOptions) && textOptions.ValueKind == JsonValueKind.Object && textOptions.TryGetProperty("format", out var format))
        {
            string? ft = format.ValueKind == JsonValueKind.Object && format.TryGetProperty("type", out var ftv) ? ftv.GetString() : null;
            chat["response_format"] = ft switch
            {
                "text" => new System.Text.Json.Nodes.JsonObject { ["type"] = "text" },
                "json_object" => new System.Text.Json.Nodes.JsonObject { ["type"] = "json_object" },
                "json_schema" when format.TryGetProperty("schema", out var schema) => new System.Text.Json.Nodes.JsonObject
                {
                    ["type"] = "json_schema", ["json_schema"] = new System.Text.Json.Nodes.JsonObject { ["schema"] = System.Text.Json.Nodes.JsonNode.Parse(schema.GetRawText()) },
                },
                _ => throw ApiException.Invalid("'text.format' must be {\"type\": \"text\"}, {\"type\": \"json_object\"} or {\"type\": \"json_schema\", \"schema\"}", "text.format"),
            };
        }
        foreach (var unsupported in new[] { "reasoning", "background", "include", "conversation", "prompt" })
            if (body.Has(unsupported)) throw ApiException.Invalid($"'{unsupported}' is not supported by this server", unsupported);
        var p = GenerationParameters.Read(new JsonRequest(JsonDocument.Parse(chat.ToJsonString()).RootElement), o, engine, chat: true);

        var turns = new List<ChatTurn>();
        if (body.String("previous_response_id") is { } previous)
            turns.AddRange(s_store.TryGetValue(previous, out var stored) ? stored.Turns
                : throw new ApiException(404, $"previous_response_id '{GenerationParameters.Clip(previous)}' is not stored here", "previous_response_id", "not_found"));
        var own = body.Get("input") is { } input ? Input(input, o) : throw ApiException.Invalid("'input' is required", "input");
        turns.AddRange(own);
        var prompted = new List<ChatTurn>(turns);
        string? instructions = body.String("instructions");
        if (instructions is { Length: > 0 }) prompted.Insert(0, new ChatTurn("system", instructions));
        int[] prompt;
        try { prompt = host.Prompts!.Encode(prompted, p.UsesTools ? p.Tools : null); }
        catch (Duet.Tokenizers.ChatTemplates.ChatTemplateException e) { throw ApiException.Invalid($"the model's chat template refused the input: {e.Message}", "input"); }
        var request = p.WithToolConstraint(p.ToRequest(prompt, engine, host.Constraints), engine);
        using var handler = CancellationTokenSource.CreateLinkedTokenSource(c.RequestAborted);
        var stream = OpenAi.Submit(engine, request, handler.Token);
        try
        {
            var reply = new Reply(NewId("resp_"), DateTimeOffset.UtcNow.ToUnixTimeSeconds(), host.Name, r, p.Stream ? c : null, p.UsesTools ? new ToolCallStream(ToolCallFormat.Detect(engine.Tokenizer.ChatTemplate)) : null);
            await reply.Run(stream, c.RequestAborted).ConfigureAwait(false);
            if (reply.Result is not { } result) return;
            bool store = body.Bool("store") ?? true;
            var output = reply.Calls.Count > 0 ? new ChatTurn("assistant", reply.Text) { ToolCalls = reply.Calls } : new ChatTurn("assistant", reply.Text);
            string json = reply.Json(result, body.String("previous_response_id"), store);
            if (store)
            {
                s_store[reply.Id] = new Stored([.. turns, output], json, Interlocked.Increment(ref s_order));
                while (s_store.Count > o.MaxStoredResponses)
                    if (s_store.MinBy(kv => kv.Value.Order) is { Key: { } oldest }) s_store.TryRemove(oldest, out _);
            }
            if (!p.Stream)
            {
                c.Response.StatusCode = 200;
                c.Response.ContentType = "application/json";
                await c.Response.WriteAsync(json, c.RequestAborted).ConfigureAwait(false);
            }
            else await reply.Completed(json).ConfigureAwait(false);
        }
        finally
        {
            await handler.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One response being made: its text and calls, streamed as events when a context is given.</summary>
    private sealed class Reply(string id, long created, string model, JsonElement request, HttpContext? sse, ToolCallStream? tools)
    {
        public string Id => id;
        public string Text { get; private set; } = "";
        public IReadOnlyList<ToolCall> Calls { get; private set; } = [];
        public GenerationResult? Result { get; private set; }
        private readonly string _messageId = NewId("msg_");
        private int _sequence;
        private bool _messageOpen;
        private readonly System.Text.StringBuilder _text = new();

        private async Task Event(string type, Action<Utf8JsonWriter> fields)
        {
            var json = DuetServer.Json(w =>
            {
                w.WriteStartObject();
                w.WriteString("type", type);
                w.WriteNumber("sequence_number", _sequence++);
                fields(w);
                w.WriteEndObject();
            });
            await sse!.Response.WriteAsync($"event: {type}\ndata: {json}\n\n", sse.RequestAborted).ConfigureAwait(false);
            await sse.Response.Body.FlushAsync(sse.RequestAborted).ConfigureAwait(false);
        }

        private void WriteResponse(Utf8JsonWriter w, string status, GenerationResult? result, string? previous, bool store)
        {
            w.WriteStartObject();
            w.WriteString("id", id);
            w.WriteString("object", "response");
            w.WriteNumber("created_at", created);
            w.WriteString("status", status);
            w.WriteNull("error");
            if (status == "incomplete") { w.WriteStartObject("incomplete_details"); w.WriteString("reason", "max_output_tokens"); w.WriteEndObject(); }
            else w.WriteNull("incomplete_details");
            // The request's instructions are not echoed: newer clients read this field as a list of items.
            w.WriteNull("instructions");
            if (request.TryGetProperty("max_output_tokens", out var mot) && mot.ValueKind == JsonValueKind.Number) w.WriteNumber("max_output_tokens", mot.GetInt64()); else w.WriteNull("max_output_tokens");
            w.WriteString("model", model);
            w.WriteStartArray("output");
            if (result is not null) WriteOutput(w);
            w.WriteEndArray();
            w.WriteBoolean("parallel_tool_calls", !request.TryGetProperty("parallel_tool_calls", out var ptc) || ptc.ValueKind != JsonValueKind.False);
            if (previous is null) w.WriteNull("previous_response_id"); else w.WriteString("previous_response_id", previous);
            w.WriteBoolean("store", store);
            w.WriteNumber("temperature", request.TryGetProperty("temperature", out var t) && t.ValueKind == JsonValueKind.Number ? t.GetDouble() : 0.8);
            w.WriteNumber("top_p", request.TryGetProperty("top_p", out var tp) && tp.ValueKind == JsonValueKind.Number ? tp.GetDouble() : 0.95);
            w.WritePropertyName("text");
            if (request.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.Object) text.WriteTo(w);
            else { w.WriteStartObject(); w.WriteStartObject("format"); w.WriteString("type", "text"); w.WriteEndObject(); w.WriteEndObject(); }
            w.WritePropertyName("tool_choice");
            if (request.TryGetProperty("tool_choice", out var tc) && tc.ValueKind != JsonValueKind.Null) tc.WriteTo(w); else w.WriteStringValue("auto");
            w.WritePropertyName("tools");
            if (request.TryGetProperty("tools", out var tl) && tl.ValueKind == JsonValueKind.Array) tl.WriteTo(w); else { w.WriteStartArray(); w.WriteEndArray(); }
            w.WriteString("truncation", "disabled");
            if (result is not null)
            {
                w.WriteStartObject("usage");
                w.WriteNumber("input_tokens", result.PromptTokens);
                w.WriteStartObject("input_tokens_details");
                w.WriteNumber("cached_tokens", result.CachedTokens);
                w.WriteEndObject();
                w.WriteNumber("output_tokens", result.CompletionTokens);
                w.WriteStartObject("output_tokens_details");
                w.WriteNumber("reasoning_tokens", 0);
                w.WriteEndObject();
                w.WriteNumber("total_tokens", result.PromptTokens + result.CompletionTokens);
                w.WriteEndObject();
            }
            else w.WriteNull("usage");
            w.WritePropertyName("metadata");
            if (request.TryGetProperty("metadata", out var md) && md.ValueKind == JsonValueKind.Object) md.WriteTo(w); else { w.WriteStartObject(); w.WriteEndObject(); }
            w.WriteEndObject();
        }

        private void WriteMessage(Utf8JsonWriter w, string status, bool withText)
        {
            w.WriteStartObject();
            w.WriteString("id", _messageId);
            w.WriteString("type", "message");
            w.WriteString("status", status);
            w.WriteString("role", "assistant");
            w.WriteStartArray("content");
            if (withText) WritePart(w);
            w.WriteEndArray();
            w.WriteEndObject();
        }

        private void WritePart(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("type", "output_text");
            w.WriteString("text", Text);
            w.WriteStartArray("annotations");
            w.WriteEndArray();
            w.WriteStartArray("logprobs");
            w.WriteEndArray();
            w.WriteEndObject();
        }

        private static void WriteCall(Utf8JsonWriter w, ToolCall call, string status, bool withArguments)
        {
            w.WriteStartObject();
            w.WriteString("id", "fc_" + call.Id);
            w.WriteString("type", "function_call");
            w.WriteString("status", status);
            w.WriteString("call_id", call.Id);
            w.WriteString("name", call.Name);
            w.WriteString("arguments", withArguments ? call.Arguments : "");
            w.WriteEndObject();
        }

        private void WriteOutput(Utf8JsonWriter w)
        {
            if (Calls.Count == 0 || Text.Length > 0) WriteMessage(w, Result?.Reason == FinishReason.Length ? "incomplete" : "completed", true);
            foreach (var call in Calls) WriteCall(w, call, "completed", true);
        }

        public string Json(GenerationResult result, string? previous, bool store) =>
            DuetServer.Json(w => WriteResponse(w, result.Reason == FinishReason.Length && Calls.Count == 0 ? "incomplete" : "completed", result, previous, store));

        private async Task OpenMessage()
        {
            if (_messageOpen) return;
            _messageOpen = true;
            await Event("response.output_item.added", w => { w.WriteNumber("output_index", 0); w.WritePropertyName("item"); WriteMessage(w, "in_progress", false); }).ConfigureAwait(false);
            await Event("response.content_part.added", w =>
            {
                w.WriteString("item_id", _messageId); w.WriteNumber("output_index", 0); w.WriteNumber("content_index", 0);
                w.WritePropertyName("part"); w.WriteStartObject(); w.WriteString("type", "output_text"); w.WriteString("text", ""); w.WriteStartArray("annotations"); w.WriteEndArray(); w.WriteEndObject();
            }).ConfigureAwait(false);
        }

        private async Task Delta(string text)
        {
            if (text.Length == 0) return;
            await OpenMessage().ConfigureAwait(false);
            await Event("response.output_text.delta", w => { w.WriteString("item_id", _messageId); w.WriteNumber("output_index", 0); w.WriteNumber("content_index", 0); w.WriteString("delta", text); w.WriteStartArray("logprobs"); w.WriteEndArray(); }).ConfigureAwait(false);
        }

        public async Task Run(GenerationStream stream, CancellationToken ct)
        {
            if (sse is not null)
            {
                await stream.Tokens.WaitToReadAsync(ct).ConfigureAwait(false); // nothing sent before the first token (as chat streams, OpenAi.Stream)
                sse.Response.StatusCode = 200;
                sse.Response.ContentType = "text/event-stream; charset=utf-8";
                sse.Response.Headers.CacheControl = "no-cache";
                await sse.Response.StartAsync(ct).ConfigureAwait(false);
                await Event("response.created", w => { w.WritePropertyName("response"); WriteResponse(w, "in_progress", null, null, true); }).ConfigureAwait(false);
                await Event("response.in_progress", w => { w.WritePropertyName("response"); WriteResponse(w, "in_progress", null, null, true); }).ConfigureAwait(false);
            }
            await foreach (var t in stream.Tokens.ReadAllAsync(ct).ConfigureAwait(false))
            {
                _text.Append(t.Text);
                var free = tools is null ? t.Text : tools.Push(t.Text); // text that cannot be part of a call
                if (sse is not null) await Delta(free).ConfigureAwait(false);
            }
            var result = await stream.Result.ConfigureAwait(false);
            if (result.Reason == FinishReason.Cancelled) return;
            _text.Append(result.TrailingText);
            string rest = result.TrailingText;
            if (tools is not null)
            {
                (rest, var calls) = tools.Finish(result.TrailingText, () => NewId("call_"));
                Calls = calls;
                var (content, _) = ToolCallFormat.Parse(tools.Style, _text.ToString(), () => "");
                Text = calls.Count > 0 ? content : _text.ToString();
            }
            else Text = _text.ToString();
            if (sse is not null) await Delta(rest).ConfigureAwait(false);
            Result = result;
        }

        /// <summary>The closing events of a stream: the message's and the calls' done events, then response.completed.</summary>
        public async Task Completed(string json)
        {
            int index = 0;
            if (_messageOpen || Calls.Count == 0)
            {
                await OpenMessage().ConfigureAwait(false);
                await Event("response.output_text.done", w => { w.WriteString("item_id", _messageId); w.WriteNumber("output_index", 0); w.WriteNumber("content_index", 0); w.WriteString("text", Text); w.WriteStartArray("logprobs"); w.WriteEndArray(); }).ConfigureAwait(false);
                await Event("response.content_part.done", w => { w.WriteString("item_id", _messageId); w.WriteNumber("output_index", 0); w.WriteNumber("content_index", 0); w.WritePropertyName("part"); WritePart(w); }).ConfigureAwait(false);
                await Event("response.output_item.done", w => { w.WriteNumber("output_index", 0); w.WritePropertyName("item"); WriteMessage(w, Result?.Reason == FinishReason.Length ? "incomplete" : "completed", true); }).ConfigureAwait(false);
                index = 1;
            }
            foreach (var call in Calls)
            {
                int i = index++;
                await Event("response.output_item.added", w => { w.WriteNumber("output_index", i); w.WritePropertyName("item"); WriteCall(w, call, "in_progress", false); }).ConfigureAwait(false);
                await Event("response.function_call_arguments.delta", w => { w.WriteString("item_id", "fc_" + call.Id); w.WriteNumber("output_index", i); w.WriteString("delta", call.Arguments); }).ConfigureAwait(false);
                await Event("response.function_call_arguments.done", w => { w.WriteString("item_id", "fc_" + call.Id); w.WriteNumber("output_index", i); w.WriteString("arguments", call.Arguments); }).ConfigureAwait(false);
                await Event("response.output_item.done", w => { w.WriteNumber("output_index", i); w.WritePropertyName("item"); WriteCall(w, call, "completed", true); }).ConfigureAwait(false);
            }
            using var doc = JsonDocument.Parse(json);
            string status = doc.RootElement.GetProperty("status").GetString()!;
            await Event(status == "completed" ? "response.completed" : "response.incomplete", w => { w.WritePropertyName("response"); doc.RootElement.WriteTo(w); }).ConfigureAwait(false);
        }
    }
}
