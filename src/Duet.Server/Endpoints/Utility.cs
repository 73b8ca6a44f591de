// The routes beside the OpenAI API, as llama.cpp's server has them: POST /tokenize and /detokenize,
// GET /health (503 while the model loads), GET /metrics (Prometheus).
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Duet.Server.Endpoints;

internal static class Utility
{
    public static void Map(WebApplication app)
    {
        app.MapGet("/health", Health);
        app.MapGet("/metrics", (HttpContext c) =>
        {
            c.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            return c.Response.WriteAsync(c.RequestServices.GetRequiredService<ServerMetrics>().Render(c.RequestServices.GetRequiredService<ModelHost>()), c.RequestAborted);
        });
        app.MapPost("/tokenize", Tokenize);
        app.MapPost("/detokenize", Detokenize);
    }

    private static Task Health(HttpContext c)
    {
        var host = c.RequestServices.GetRequiredService<ModelHost>();
        // An idle model unloaded after its keep-alive loads again on the next request: the server is ok.
        if (host.Ready || (host.Unloaded && host.Error is null)) return OpenAi.WriteJson(c, w => { w.WriteStartObject(); w.WriteString("status", "ok"); w.WriteEndObject(); });
        c.Response.Headers.RetryAfter = "1";
        return OpenAi.WriteJson(c, w =>
        {
            w.WriteStartObject();
            w.WriteString("status", host.Error is null ? "loading" : "error");
            if (host.Error is not null) w.WriteString("message", host.Error);
            w.WriteEndObject();
        }, 503);
    }

    private static async Task Tokenize(HttpContext c)
    {
        var body = await DuetServer.ReadJson(c).ConfigureAwait(false);
        var (host, lease) = await OpenAi.Use(c, body).ConfigureAwait(false);
        using var _ = lease;
        var tok = host.Engine.Tokenizer;
        string content = body.String("content") ?? throw ApiException.Invalid("'content' (a string) is required", "content");
        bool addSpecial = body.Bool("add_special") ?? false;
        bool parseSpecial = body.Bool("parse_special") ?? true;
        bool pieces = body.Bool("with_pieces") ?? false;
        var ids = tok.Encode(content, addSpecial, parseSpecial);
        await OpenAi.WriteJson(c, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("tokens");
            foreach (int id in ids)
            {
                if (!pieces) { w.WriteNumberValue(id); continue; }
                w.WriteStartObject();
                w.WriteNumber("id", id);
                w.WriteString("piece", tok.IdToToken(id));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static async Task Detokenize(HttpContext c)
    {
        var body = await DuetServer.ReadJson(c).ConfigureAwait(false);
        var (host, lease) = await OpenAi.Use(c, body).ConfigureAwait(false);
        using var _ = lease;
        var e = host.Engine;
        if (body.Get("tokens") is not { } arr || arr.ValueKind != JsonValueKind.Array)
            throw ApiException.Invalid("'tokens' (an array of token ids) is required", "tokens");
        var ids = new int[arr.GetArrayLength()];
        int i = 0;
        foreach (var t in arr.EnumerateArray())
            ids[i++] = t.ValueKind == JsonValueKind.Number && t.TryGetInt32(out int id) && (uint)id < (uint)e.Model.Config.Vocab ? id
                : throw ApiException.Invalid($"'tokens' must hold token ids 0..{e.Model.Config.Vocab - 1}", "tokens");
        string text = e.Tokenizer.Decode(ids);
        await OpenAi.WriteJson(c, w => { w.WriteStartObject(); w.WriteString("content", text); w.WriteEndObject(); }).ConfigureAwait(false);
    }
}
