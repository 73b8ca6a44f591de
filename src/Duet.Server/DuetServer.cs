// The OpenAI-compatible server on Kestrel with minimal APIs. This file wires it together: listening
// address, limits, the error and API-key middleware, static files for the chat page, and the routes
// (Endpoints/). Loopback by default; everything a client sends is checked before work starts.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Duet.Server;

public static class DuetServer
{
    public static WebApplication Build(ServerOptions options, ModelHost? host = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.None);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.Limits.MaxRequestHeadersTotalSize = 64 * 1024;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(30);
            k.Limits.MinRequestBodyDataRate = new MinDataRate(1024, TimeSpan.FromSeconds(10)); // a slow-loris body is cut off
            if (options.Host is "localhost") k.ListenLocalhost(options.Port);
            else k.Listen(System.Net.IPAddress.Parse(options.Host), options.Port);
        });
        host ??= new ModelHost(options);
        var registry = new ModelRegistry(options, host);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(host);
        builder.Services.AddSingleton(registry);
        builder.Services.AddSingleton(new ServerMetrics());
        var app = builder.Build();
        app.Lifetime.ApplicationStopping.Register(registry.Dispose);

        app.Use(ErrorsAndAuth);
        var web = Path.Combine(AppContext.BaseDirectory, "wwwroot");
        if (Directory.Exists(web))
        {
            var files = new PhysicalFileProvider(web);
            app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
            app.UseStaticFiles(new StaticFileOptions { FileProvider = files });
        }
        // Routing after the static files: otherwise the fallback route would claim "/" before index.html is found.
        app.UseRouting();
        Endpoints.OpenAi.Map(app);
        Endpoints.Ollama.Map(app);
        Endpoints.Responses.Map(app);
        Endpoints.Utility.Map(app);
        app.MapFallback((HttpContext c) =>
        {
            if (Routes.TryGetValue(c.Request.Path.Value?.TrimEnd('/') ?? "", out var method) && method != c.Request.Method)
            {
                c.Response.Headers.Allow = method;
                throw new ApiException(405, $"{Clip(c.Request.Path)} takes {method}, not {c.Request.Method}", code: "method_not_allowed");
            }
            throw new ApiException(404, $"no route {c.Request.Method} {Clip(c.Request.Path)}", code: "not_found");
        });
        return app;
    }

    /// <summary>Builds the server, starts loading the model, and runs until Ctrl+C.</summary>
    public static async Task RunAsync(ServerOptions options, Action<string>? log = null)
    {
        var host = new ModelHost(options);
        var app = Build(options, host);
        await app.StartAsync().ConfigureAwait(false);
        log?.Invoke($"listening on http://{(options.Host.Contains(':', StringComparison.Ordinal) ? $"[{options.Host}]" : options.Host)}:{options.Port} (loading {options.ModelPath}"
            + (options.ExtraModels.Count > 0 ? $"; {options.ExtraModels.Count} more models load on first use: {string.Join(", ", options.ExtraModels.Select(m => m.Name))}" : "") + ")");
        host.StartLoading();
        _ = host.Loading.ContinueWith(_ =>
            log?.Invoke(host.Ready
                ? $"model {host.Name} ready: {options.Parallel} slots x {host.Engine.Context} tokens, chat template {host.Prompts!.TemplateName}"
                : $"error: the model failed to load: {host.Error}"), TaskScheduler.Default);
        await app.WaitForShutdownAsync().ConfigureAwait(false);
    }

    private static readonly Dictionary<string, string> Routes = new(StringComparer.Ordinal)
    {
        ["/v1/chat/completions"] = "POST", ["/v1/completions"] = "POST", ["/v1/embeddings"] = "POST", ["/v1/models"] = "GET",
        ["/tokenize"] = "POST", ["/detokenize"] = "POST", ["/health"] = "GET", ["/metrics"] = "GET",
    };

    private static string Clip(PathString p) => GenerationParameters.Clip(p.Value ?? "");

    private static bool NeedsKey(PathString path) =>
        path.StartsWithSegments("/v1", StringComparison.Ordinal) || path.StartsWithSegments("/tokenize", StringComparison.Ordinal)
        || path.StartsWithSegments("/detokenize", StringComparison.Ordinal);

    private static async Task ErrorsAndAuth(HttpContext context, RequestDelegate next)
    {
        var options = context.RequestServices.GetRequiredService<ServerOptions>();
        var metrics = context.RequestServices.GetRequiredService<ServerMetrics>();
        try
        {
            if (options.ApiKey is { } key && NeedsKey(context.Request.Path) && !KeyMatches(context.Request.Headers.Authorization.ToString(), key))
                throw new ApiException(401, "a valid API key is needed: send the header 'Authorization: Bearer KEY'", code: "invalid_api_key");
            await next(context).ConfigureAwait(false);
        }
        catch (ApiException e)
        {
            await WriteError(context, e).ConfigureAwait(false);
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
        {
            await WriteError(context, e.StatusCode == 413
                ? new ApiException(413, $"the request body is larger than {options.MaxBodyBytes} bytes", code: "request_too_large")
                : new ApiException(e.StatusCode is >= 400 and < 500 ? e.StatusCode : 400, e.Message)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; the engine has already been told through RequestAborted.
        }
        catch (IOException) when (context.RequestAborted.IsCancellationRequested || context.Response.HasStarted)
        {
            // A write to a connection the client closed.
        }
        catch (Exception e)
        {
            // A bug, not the client's fault: say so in the API's shape and keep serving.
            context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Duet.Server").LogError(e, "{Method} {Path} failed", context.Request.Method, context.Request.Path.Value);
            await WriteError(context, new ApiException(500, "internal error: " + e.Message, code: "internal_error")).ConfigureAwait(false);
        }
        finally
        {
            metrics.CountRequest(RouteName(context), context.Response.StatusCode);
        }
    }

    private static string RouteName(HttpContext c) => c.GetEndpoint() is Microsoft.AspNetCore.Routing.RouteEndpoint re ? re.RoutePattern.RawText ?? "other" : c.Response.StatusCode == 404 ? "unmatched" : "static";

    private static bool KeyMatches(string header, string key)
    {
        const string prefix = "Bearer ";
        if (!header.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) return false;
        var given = Encoding.UTF8.GetBytes(header[prefix.Length..].Trim());
        var expected = Encoding.UTF8.GetBytes(key);
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(given), SHA256.HashData(expected));
    }

    internal static async Task WriteError(HttpContext context, ApiException e)
    {
        // The Ollama routes answer as Ollama does: {"error": "message"}.
        bool ollama = context.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal);
        void Ollama(Utf8JsonWriter w) { w.WriteStartObject(); w.WriteString("error", e.Message); w.WriteEndObject(); }
        if (context.Response.HasStarted)
        {
            // Mid-stream: an SSE error event, or an NDJSON error line, is all that can still be said.
            if (context.Response.ContentType?.StartsWith("text/event-stream", StringComparison.Ordinal) == true)
            {
                await context.Response.WriteAsync("data: " + Json(e.WriteJson) + "\n\n", context.RequestAborted).ConfigureAwait(false);
            }
            else if (context.Response.ContentType?.StartsWith("application/x-ndjson", StringComparison.Ordinal) == true)
            {
                await context.Response.WriteAsync(Json(Ollama) + "\n", context.RequestAborted).ConfigureAwait(false);
            }
            return;
        }
        context.Response.Clear();
        context.Response.StatusCode = e.Status;
        if (e.Status == 401) context.Response.Headers.WWWAuthenticate = "Bearer";
        if (e.Status == 503) context.Response.Headers.RetryAfter = "1";
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(ollama ? Json(Ollama) : Json(e.WriteJson), context.RequestAborted).ConfigureAwait(false);
    }

    internal static string Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            write(w);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The request body as JSON, within the size limit; 413 when larger, 400 when not JSON (invalid UTF-8 included).</summary>
    internal static async Task<JsonRequest> ReadJson(HttpContext context)
    {
        var options = context.RequestServices.GetRequiredService<ServerOptions>();
        var req = context.Request;
        if (req.ContentLength > options.MaxBodyBytes)
            throw new ApiException(413, $"the request body is {req.ContentLength} bytes; at most {options.MaxBodyBytes} are accepted", code: "request_too_large");
        // Any content type is read as JSON, as llama.cpp's server does: curl -d sends form-urlencoded by default.
        using var ms = new MemoryStream();
        var buf = new byte[16 * 1024];
        while (true)
        {
            int n = await req.Body.ReadAsync(buf, context.RequestAborted).ConfigureAwait(false);
            if (n == 0) break;
            if (ms.Length + n > options.MaxBodyBytes)
                throw new ApiException(413, $"the request body is larger than {options.MaxBodyBytes} bytes", code: "request_too_large");
            ms.Write(buf, 0, n);
        }
        if (ms.Length == 0) throw ApiException.Invalid("the request body is empty; send a JSON object");
        // System.Text.Json checks the structure but leaves string contents to GetString(), which would throw later.
        if (!System.Text.Unicode.Utf8.IsValid(ms.GetBuffer().AsSpan(0, (int)ms.Length)))
            throw ApiException.Invalid("the body is not valid UTF-8", code: "invalid_json");
        try
        {
            using var doc = JsonDocument.Parse(ms.GetBuffer().AsMemory(0, (int)ms.Length), new JsonDocumentOptions { MaxDepth = 64 });
            return new JsonRequest(doc.RootElement.Clone());
        }
        catch (JsonException e)
        {
            throw ApiException.Invalid($"the body is not valid JSON: {e.Message}", code: "invalid_json");
        }
    }
}
